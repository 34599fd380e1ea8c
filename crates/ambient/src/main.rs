//! The one binary: parses the command line and hands over to `server` (`dev`, `server`),
//! `agent` or `cli`. Errors print as one line on stderr with a non-zero exit code.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use agent::command::{StopSignals, init_tracing};
use anyhow::{Context, Result};
use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ambient",
    version,
    about = "Managed identities anywhere: token service, control plane, metadata agent and Key Vault in one binary",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: cli::GlobalArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Start a server and a local agent with embedded defaults (SQLite, generated CA, one tenant,
    /// one subscription, an admin) and print what to export.
    Dev(ServerArgs),
    /// Start the long-running server (SQLite path or PostgreSQL URL).
    Server(ServerArgs),
    /// Run the host agent: enroll with a join token, then serve the metadata endpoints for the
    /// resources placed on this host.
    Agent(agent::command::AgentArgs),
    /// Print a shell completion script, for example `source <(ambient completion bash)` in
    /// ~/.bashrc.
    Completion {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Cli(cli::Command),
}

#[derive(Args)]
struct ServerArgs {
    /// Data directory for keys, certificates, the SQLite database and the CLI profile
    /// [default: .ambient, or $AMBIENT_HOME].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the HTTPS listener [default: 127.0.0.1:8443]; port 0 picks a free port.
    #[arg(long, env = "AMBIENT_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// `postgres://...` for PostgreSQL, or a SQLite file path [default: DIR/ambient.db].
    #[arg(long, env = "AMBIENT_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// Vaults are served as `{name}.vault.{suffix}` [default: localhost].
    #[arg(long, env = "AMBIENT_DNS_SUFFIX", value_name = "SUFFIX")]
    dns_suffix: Option<String>,
    /// The one origin clients use, such as https://ambient.example.com (a proxy or load
    /// balancer in front of several servers): issuer, discovery, vault URIs and the CLI profile
    /// derive from it [default: https://localhost:PORT with the listening port].
    #[arg(long, env = "AMBIENT_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// File holding the base64 master key [default: DIR/master.key, created on first start].
    /// The variable AMBIENT_MASTER_KEY, when set, holds the key itself and wins.
    #[arg(long, env = "AMBIENT_MASTER_KEY_FILE", value_name = "FILE")]
    master_key_file: Option<PathBuf>,
    /// A TOML file with any of the settings above (keys spelled like the flags).
    #[arg(long, env = "AMBIENT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Lifetime in seconds of the client certificates issued to agents [default: 86400].
    #[arg(long, env = "AMBIENT_HOST_CERTIFICATE_LIFETIME", value_name = "SECS")]
    host_certificate_lifetime: Option<i64>,
    /// (dev) Where the local agent's shared IMDS listener binds [default: 127.0.0.1:0].
    #[arg(long, value_name = "ADDR")]
    imds_listen: Option<std::net::SocketAddr>,
    /// (dev) Reproduce Azure's IMDS limits: 20 requests per second and 5 concurrent per resource.
    #[arg(long, conflicts_with = "imds_rate_limit")]
    azure_rate_limits: bool,
    /// (dev) Requests per second each resource's metadata endpoint allows [default: 200].
    #[arg(long, value_name = "RPS")]
    imds_rate_limit: Option<u32>,
    /// Days the sign-in and activity logs keep events [default: 30].
    #[arg(long, env = "AMBIENT_LOG_RETENTION_DAYS", value_name = "DAYS")]
    log_retention_days: Option<i64>,
    /// Events each of the sign-in and activity logs keeps at most; the oldest go first
    /// [default: 1000000].
    #[arg(long, env = "AMBIENT_LOG_EVENTS_MAX", value_name = "EVENTS")]
    log_events_max: Option<i64>,
    /// Failed token requests per source address, and failed client authentications per client
    /// id, allowed per minute before the token endpoint answers 429; 0 turns throttling off
    /// [default: 60].
    #[arg(long, env = "AMBIENT_SIGN_IN_FAILURES_PER_MINUTE", value_name = "N")]
    sign_in_failures_per_minute: Option<u32>,
    /// Log filter, as RUST_LOG (for example `info` or `server=debug`).
    #[arg(long, env = "AMBIENT_LOG", value_name = "FILTER", default_value = "info")]
    log: String,
}

fn main() -> ExitCode {
    let matches = cli::refine_help(Cli::command()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: start async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Written, not `eprintln!`: a closed standard error must not turn into a panic.
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Dev(args) => serve(server::Mode::Dev, args, cli.global).await,
        Command::Server(args) => serve(server::Mode::Server, args, cli.global).await,
        Command::Agent(args) => run_agent(args).await,
        Command::Completion { shell } => {
            let mut command = cli::refine_help(Cli::command());
            clap_complete::generate(shell, &mut command, "ambient", &mut std::io::stdout());
            Ok(())
        }
        Command::Cli(command) => cli::run(command, cli.global).await,
    }
}

/// The web console at `/console/`, built by the server once its listener is bound.
fn console_router() -> server::RouterFactory {
    std::sync::Arc::new(|info: &server::ListenInfo| {
        console::router(console::ConsoleConfig {
            public_url: info.public_url.clone(),
            local_addr: info.local_addr,
            ca_pem: info.ca_pem.clone(),
            tenant_id: info.tenant_id.clone(),
            dns_suffix: info.dns_suffix.clone(),
            key: info.console_key.clone(),
        })
    })
}

async fn serve(mode: server::Mode, args: ServerArgs, global: cli::GlobalArgs) -> Result<()> {
    let signals = StopSignals::install()?;
    init_tracing(&args.log);
    let cwd = std::env::current_dir().context("read the working directory")?;
    let file = match &args.config {
        Some(path) => server::Settings::from_toml_file(path)?,
        None => server::Settings::default(),
    };
    let flags = server::Settings {
        // `--data-dir` wins; otherwise $AMBIENT_HOME (through the global flag) or `.ambient`.
        data_dir: args.data_dir.or(Some(global.home)),
        listen: args.listen,
        database_url: args.database_url,
        dns_suffix: args.dns_suffix,
        master_key_file: args.master_key_file,
        public_url: args.public_url,
        host_certificate_lifetime: args.host_certificate_lifetime,
        log_retention_days: args.log_retention_days,
        log_events_max: args.log_events_max,
        sign_in_failures_per_minute: args.sign_in_failures_per_minute,
    };
    let master_key = std::env::var("AMBIENT_MASTER_KEY").ok();
    let mut config = server::ServerConfig::resolve(mode, file.overlay(flags), master_key, &cwd)?;
    config.console = Some(console_router());
    // A first start that fails (a port in use) leaves no empty data directory behind.
    let data_dir = config.data_dir.clone();
    let data_dir_existed = data_dir.exists();
    let running = match server::start(config).await {
        Ok(running) => running,
        Err(error) => {
            if !data_dir_existed {
                // Removes the directory only if nothing was written into it.
                let _ = std::fs::remove_dir(&data_dir);
            }
            return Err(error.into());
        }
    };
    // `ambient dev` runs the agent for host `local` in this process, enrolled through the same
    // protocol as a remote agent.
    let agent = if mode == server::Mode::Dev {
        let token = running
            .join_token("local")
            .await
            .map_err(anyhow::Error::msg)
            .context("create host local")?;
        let ca = std::fs::read(running.ca_cert_path()).context("read the local CA")?;
        let rate_limit = match (args.azure_rate_limits, args.imds_rate_limit) {
            (true, _) => agent::RateLimit::azure(),
            (false, Some(rps)) => {
                agent::RateLimit { requests_per_second: rps, burst: rps, concurrent: 1024 }
            }
            (false, None) => agent::RateLimit::generous(),
        };
        let agent = agent::start(agent::AgentConfig {
            host: Some("local".to_owned()),
            join_token: Some(token.into()),
            imds_listen: Some(
                args.imds_listen.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            ),
            rate_limit,
            // The rest as for any agent: per-resource listeners on 127.0.0.1, the system clock.
            ..agent::AgentConfig::new(
                vec![running.local_url()],
                ca,
                running.data_dir().join("agent-local"),
            )
        })
        .await
        .context("start the local agent")?;
        print_dev_banner(&running, &agent)?;
        Some(agent)
    } else {
        None
    };
    signals.wait().await;
    tracing::info!("shutting down");
    if let Some(agent) = agent {
        agent.shutdown().await;
    }
    running.shutdown().await;
    Ok(())
}

/// The same as the `ambient-agent` binary.
async fn run_agent(args: agent::command::AgentArgs) -> Result<()> {
    let signals = StopSignals::install()?;
    init_tracing(&args.log);
    Ok(agent::command::run(args, signals).await?)
}

/// Prints the banner through `cli::print_line`: a reader that went away (`ambient dev | head`)
/// ends the process quietly rather than in a panic.
fn print_dev_banner(running: &server::RunningServer, agent: &agent::RunningAgent) -> Result<()> {
    let deployment = running.deployment();
    let env_path = running.data_dir().join("env.sh");
    let mut text = String::new();
    writeln!(text, "Ambient is running at {}", running.base_url())?;
    writeln!(text, "  tenant        {}", deployment.tenant_id)?;
    writeln!(text, "  subscription  {}", deployment.subscription_id)?;
    writeln!(
        text,
        "  admin app id  {} (credential in {})",
        deployment.admin_app_id,
        running.data_dir().join("admin.json").display()
    )?;
    writeln!(text)?;
    writeln!(
        text,
        "Export these in the shell that talks to Ambient (or run `. {}`):",
        env_path.display()
    )?;
    for (name, value) in running.env_exports() {
        writeln!(text, "  export {name}='{value}'")?;
    }
    writeln!(text)?;
    if let Some(imds) = agent.imds_address() {
        writeln!(text, "The local agent (host `local`) serves IMDS at http://{imds}.")?;
        writeln!(
            text,
            "`ambient run --as RESOURCE -g GROUP -- COMMAND` runs a command as a resource's workload;"
        )?;
        writeln!(
            text,
            "add --isolate (root) to give it 169.254.169.254 and vault names in a namespace of its own."
        )?;
        writeln!(text)?;
    }
    writeln!(text, "The Azure CLI (az, with REQUESTS_CA_BUNDLE exported) uses Ambient after:")?;
    for line in running.az_setup() {
        writeln!(text, "  {line}")?;
    }
    writeln!(text)?;
    writeln!(
        text,
        "Key Vault names are <vault>.vault.<suffix>; where they do not resolve, add to /etc/hosts"
    )?;
    writeln!(
        text,
        "the line `ambient keyvault create` prints for each vault (hosts files have no wildcards), and:"
    )?;
    writeln!(text, "  {}", running.hosts_line(&[]))?;
    writeln!(text)?;
    write!(text, "Press Ctrl-C to stop.")?;
    cli::print_line(&text).context("write the banner")
}
