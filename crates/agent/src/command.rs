//! The agent as a command, shared by the `ambient agent` subcommand and the small
//! `ambient-agent` binary so that both take the same options and behave the same:
//! [`AgentArgs`] (the options, clap derive), [`run`] (start the agent and serve until a stop
//! signal), and the process set-up every Ambient binary needs ([`StopSignals`], [`init_tracing`]).
//!
//! A binary's `main` stays thin:
//!
//! ```text
//! let signals = StopSignals::install()?;   // first, so a signal during start-up stops cleanly
//! init_tracing(&args.log);
//! agent::command::run(args, signals).await?;
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use crate::{AgentConfig, RateLimit};

/// The options of the agent command.
#[derive(Clone, Debug, clap::Args)]
pub struct AgentArgs {
    /// A server's URL; repeat for each server of the deployment (the agent moves to the next
    /// when one does not answer). Remembered in the data directory: needed on the first start.
    #[arg(long = "server", value_name = "URL")]
    pub servers: Vec<String>,
    /// The one-time join token from `ambient host create` (only for the first start).
    #[arg(long, env = "AMBIENT_JOIN_TOKEN", value_name = "TOKEN")]
    pub join_token: Option<String>,
    /// Where the agent keeps its key and certificate.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The CA that signed the server's certificate (PEM) [default: the system's trust store].
    #[arg(long, env = "AMBIENT_CA_BUNDLE", value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// The shared IMDS listener (169.254.169.254:80 on a host that has that address).
    #[arg(long, value_name = "ADDR")]
    pub imds_listen: Option<SocketAddr>,
    /// Reproduce Azure's IMDS limits: 20 requests per second and 5 concurrent per resource.
    #[arg(long)]
    pub azure_rate_limits: bool,
    /// Log filter, as RUST_LOG.
    #[arg(long, env = "AMBIENT_LOG", value_name = "FILTER", default_value = "info")]
    pub log: String,
}

/// Why the agent command stopped with an error. The messages leave the cause out: binaries
/// print the whole chain (`{:#}` through `anyhow`), one `: cause` at a time.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// A `--server` value is not an `https://` URL.
    #[error("--server must be an https:// URL (got {0})")]
    ServerUrl(String),
    /// The `--ca-bundle` file could not be read.
    #[error("read {}", path.display())]
    ReadCaBundle {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A stop signal's handler could not be installed.
    #[error("listen for {signal}")]
    Signal {
        /// `Ctrl-C` or `SIGTERM`.
        signal: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The agent did not start.
    #[error("start the agent")]
    Start(#[source] crate::Error),
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for from the start of the process: a signal that
/// arrives while the server or agent is still starting stops it cleanly too.
pub struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

/// Starts the agent described by `args`, prints one line when it runs, serves until `signals`
/// fires and then shuts it down (letting in-flight requests finish).
pub async fn run(args: AgentArgs, signals: StopSignals) -> Result<(), CommandError> {
    let config = agent_config(args)?;
    let running = crate::start(config).await.map_err(CommandError::Start)?;
    eprintln!("agent for host {} is running", running.host());
    signals.wait().await;
    running.shutdown().await;
    Ok(())
}

/// Logs to stderr with `filter` (RUST_LOG syntax); `RUST_LOG`, when set, wins, and a filter
/// that does not parse falls back to `info`. Colours only on a terminal.
pub fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

impl StopSignals {
    /// Installs the handlers; call it before anything slow starts.
    pub fn install() -> Result<StopSignals, CommandError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())
                .map_err(|source| CommandError::Signal { signal: "Ctrl-C", source })?,
            terminate: signal(SignalKind::terminate())
                .map_err(|source| CommandError::Signal { signal: "SIGTERM", source })?,
        })
    }

    /// Returns when either signal arrives.
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// The agent's configuration from the command's options: checks the server URLs, reads the CA
/// bundle, and takes the host name from the join token (`host.secret`).
fn agent_config(args: AgentArgs) -> Result<AgentConfig, CommandError> {
    if let Some(bad) = args.servers.iter().find(|url| !url.starts_with("https://")) {
        return Err(CommandError::ServerUrl(bad.clone()));
    }
    let ca = match &args.ca_bundle {
        Some(path) => std::fs::read(path)
            .map_err(|source| CommandError::ReadCaBundle { path: path.clone(), source })?,
        None => Vec::new(),
    };
    let host = args
        .join_token
        .as_deref()
        .and_then(|token| token.split_once('.'))
        .map(|(host, _)| host.to_owned());
    let rate_limit =
        if args.azure_rate_limits { RateLimit::azure() } else { RateLimit::generous() };
    Ok(AgentConfig {
        server_urls: args.servers,
        server_ca_pem: ca,
        data_dir: args.data_dir,
        host,
        join_token: args.join_token.map(Into::into),
        imds_listen: args.imds_listen,
        resource_listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        rate_limit,
        clock: Arc::new(domain::SystemClock),
    })
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};
    use expect_test::{Expect, expect};

    use super::*;

    /// The command line as a binary sees it.
    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        agent: AgentArgs,
    }

    /// Parses `command_line` as a binary would, except that `AMBIENT_*` variables of the
    /// environment running the tests are ignored.
    fn parse(command_line: &str) -> Result<AgentArgs, clap::Error> {
        let words = std::iter::once("ambient-agent").chain(command_line.split_whitespace());
        let matches = TestCli::command()
            .mut_args(|arg| arg.env(None::<&'static str>))
            .try_get_matches_from(words)?;
        TestCli::from_arg_matches(&matches).map(|cli| cli.agent)
    }

    /// Parses `command_line` as the agent command and prints the configuration it yields (with
    /// the CA bundle's length), or the error chain.
    #[track_caller]
    fn check(command_line: &str, expect: Expect) {
        let actual = match parse(command_line) {
            Err(error) => format!("usage error: {}", error.kind()),
            Ok(args) => match agent_config(args) {
                Ok(config) => {
                    format!("{config:#?}\nserver_ca_pem: {} bytes", config.server_ca_pem.len())
                }
                Err(error) => {
                    let mut chain = error.to_string();
                    let mut source = std::error::Error::source(&error);
                    while let Some(cause) = source {
                        chain.push_str(&format!(": {cause}"));
                        source = cause.source();
                    }
                    chain
                }
            },
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn the_options_are_consistent() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn first_start_takes_the_host_name_from_the_join_token() {
        check(
            "--server https://a:8443 --server https://b:8443 --join-token edge-1.s3cr3t --data-dir /var/lib/agent",
            expect![[r#"
                AgentConfig {
                    server_urls: [
                        "https://a:8443",
                        "https://b:8443",
                    ],
                    data_dir: "/var/lib/agent",
                    host: Some(
                        "edge-1",
                    ),
                    join_token: Some(
                        [redacted],
                    ),
                    imds_listen: None,
                    resource_listen_ip: 127.0.0.1,
                    rate_limit: RateLimit {
                        requests_per_second: 200,
                        burst: 400,
                        concurrent: 64,
                    },
                    ..
                }
                server_ca_pem: 0 bytes"#]],
        );
    }

    #[test]
    fn a_restart_needs_only_the_data_directory() {
        check(
            "--data-dir d --imds-listen 169.254.169.254:80 --azure-rate-limits",
            expect![[r#"
                AgentConfig {
                    server_urls: [],
                    data_dir: "d",
                    host: None,
                    join_token: None,
                    imds_listen: Some(
                        169.254.169.254:80,
                    ),
                    resource_listen_ip: 127.0.0.1,
                    rate_limit: RateLimit {
                        requests_per_second: 20,
                        burst: 20,
                        concurrent: 5,
                    },
                    ..
                }
                server_ca_pem: 0 bytes"#]],
        );
    }

    #[test]
    fn the_ca_bundle_is_read_at_start() {
        let path =
            std::env::temp_dir().join(format!("agent-command-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let args = parse(&format!("--data-dir d --ca-bundle {}", path.display())).unwrap();
        let config = agent_config(args).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(config.server_ca_pem, b"-----BEGIN CERTIFICATE-----\n");
    }

    #[test]
    fn a_missing_ca_bundle_is_an_error() {
        check(
            "--data-dir d --ca-bundle /nonexistent/ca.pem",
            expect!["read /nonexistent/ca.pem: No such file or directory (os error 2)"],
        );
    }

    #[test]
    fn plain_http_servers_are_refused() {
        check(
            "--server https://a:8443 --server http://b:80 --data-dir d",
            expect!["--server must be an https:// URL (got http://b:80)"],
        );
    }

    #[test]
    fn the_data_directory_is_required() {
        check(
            "--server https://a:8443",
            expect!["usage error: one or more required arguments were not provided"],
        );
    }
}
