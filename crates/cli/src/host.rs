//! `ambient host create|list|show|revoke`: the hosts agents run on, and their join tokens.

use anyhow::Result;
use clap::Subcommand;
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
    }))
}
