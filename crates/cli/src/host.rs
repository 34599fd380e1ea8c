//! `ambient host create|list|show|revoke`: the hosts agents run on, and their join tokens;
//! `ambient host fault set|show|clear`: faults injected on a host's or a resource's metadata
//! endpoints, for testing clients (`/hosting/hosts/{name}/faults`, `/hosting/faults`).

use anyhow::{Context, Result, bail};
use api_types::hosting::{Faults, InjectedError};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::GlobalArgs;
use crate::output::Printed;
use crate::profile;

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Create a host (or give it a new join token) and print its one-time join token.
    Create {
        #[arg(long, short = 'n')]
        name: String,
    },
    /// List hosts.
    List,
    /// Show a host and the resources placed on it.
    Show {
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Revoke a host: its agent gets nothing more.
    Revoke {
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Inject faults on a host's or a resource's metadata endpoints, for testing clients.
    #[command(subcommand)]
    Fault(FaultCommand),
}

#[derive(Debug, Subcommand)]
pub enum FaultCommand {
    /// Replace the faults of a host (--name) or of one resource (--resource).
    Set {
        #[command(flatten)]
        target: FaultTarget,
        /// Milliseconds added before every answer.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// STATUS:PERCENT, a share of token requests answered with 429, 500 or 503 (repeatable).
        #[arg(long = "error", value_name = "STATUS:PERCENT")]
        errors: Vec<String>,
        /// Retry-After (seconds) on the injected 429 and 503 answers.
        #[arg(long)]
        retry_after: Option<u64>,
        /// Answer IMDS paths with Docker Desktop's 403 for an unreachable 169.254.169.254.
        #[arg(long)]
        imds_unreachable: bool,
        /// Accept requests and never answer them.
        #[arg(long)]
        no_answer: bool,
        /// Token lifetime in seconds (at least 60).
        #[arg(long)]
        token_lifetime: Option<i64>,
        /// Seconds added to the absolute times the endpoints answer (negative: behind).
        #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
        clock_offset: i64,
    },
    /// Show the faults of a host or of one resource.
    Show {
        #[command(flatten)]
        target: FaultTarget,
    },
    /// Remove the faults of a host or of one resource.
    Clear {
        #[command(flatten)]
        target: FaultTarget,
    },
}

#[derive(Debug, Args)]
pub struct FaultTarget {
    /// The host.
    #[arg(long, short = 'n', required_unless_present = "resource", conflicts_with = "resource")]
    name: Option<String>,
    /// The resource's id.
    #[arg(long)]
    resource: Option<String>,
}

impl FaultTarget {
    fn path(&self) -> String {
        match (&self.name, &self.resource) {
            (Some(name), _) => format!("/hosting/hosts/{}/faults", client::encode(name)),
            (None, Some(resource)) => {
                format!("/hosting/faults?resourceId={}", client::encode(resource))
            }
            (None, None) => "/hosting/faults".to_owned(),
        }
    }
}

fn parse_error(text: &str) -> Result<InjectedError> {
    let (status, percent) = text
        .split_once(':')
        .with_context(|| format!("--error {text}: write STATUS:PERCENT, as in 429:30"))?;
    let status = status.trim().parse().with_context(|| format!("--error {text}: status"))?;
    let percent = percent
        .trim()
        .trim_end_matches('%')
        .parse()
        .with_context(|| format!("--error {text}: percent"))?;
    if !(1..=100).contains(&percent) {
        bail!("--error {text}: the percent must be 1 to 100");
    }
    Ok(InjectedError { status, percent })
}

async fn fault(client: &client::Client, command: FaultCommand) -> Result<Value> {
    Ok(match command {
        FaultCommand::Set {
            target,
            latency_ms,
            errors,
            retry_after,
            imds_unreachable,
            no_answer,
            token_lifetime,
            clock_offset,
        } => {
            let faults = Faults {
                latency_ms,
                errors: errors.iter().map(|text| parse_error(text)).collect::<Result<_>>()?,
                retry_after_secs: retry_after,
                imds_unreachable,
                no_answer,
                token_lifetime_secs: token_lifetime,
                clock_offset_secs: clock_offset,
            };
            client.put(&target.path(), &serde_json::to_value(&faults)?).await?
        }
        FaultCommand::Show { target } => client.get(&target.path()).await?,
        FaultCommand::Clear { target } => client.delete(&target.path()).await?,
    })
}

pub async fn run(command: HostCommand, global: &GlobalArgs) -> Result<Printed> {
    let client = profile::client(&global.home, &profile::load(&global.home)?)?;
    Ok(Printed::plain(match command {
        HostCommand::Create { name } => {
            client.put(&format!("/hosting/hosts/{}", client::encode(&name)), &Value::Null).await?
        }
        HostCommand::List => Value::Array(client::values(client.get("/hosting/hosts").await?)),
        HostCommand::Show { name } => {
            client.get(&format!("/hosting/hosts/{}", client::encode(&name))).await?
        }
        HostCommand::Revoke { name } => {
            client
                .post(&format!("/hosting/hosts/{}/revoke", client::encode(&name)), &Value::Null)
                .await?
        }
        HostCommand::Fault(command) => fault(&client, command).await?,
    }))
}
