//! The one binary: parses the command line and hands over to `server` (`dev`, `server`),
//! `agent` or `cli`. Errors print as one line on stderr with a non-zero exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

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
    /// The host name clients use in URLs [default: localhost].
    #[arg(long, env = "AMBIENT_PUBLIC_HOST", value_name = "HOST")]
    public_host: Option<String>,
    /// File holding the base64 master key [default: DIR/master.key, created on first start].
    /// The variable AMBIENT_MASTER_KEY, when set, holds the key itself and wins.
    #[arg(long, env = "AMBIENT_MASTER_KEY_FILE", value_name = "FILE")]
    master_key_file: Option<PathBuf>,
    /// A TOML file with any of the settings above (keys spelled like the flags).
    #[arg(long, env = "AMBIENT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log filter, as RUST_LOG (for example `info` or `server=debug`).
    #[arg(long, env = "AMBIENT_LOG", value_name = "FILTER", default_value = "info")]
    log: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Dev(args) => serve(server::Mode::Dev, args, cli.global).await,
        Command::Server(args) => serve(server::Mode::Server, args, cli.global).await,
        Command::Cli(command) => cli::run(command, cli.global).await,
    }
}

async fn serve(mode: server::Mode, args: ServerArgs, global: cli::GlobalArgs) -> Result<()> {
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
        public_host: args.public_host,
    };
    let master_key = std::env::var("AMBIENT_MASTER_KEY").ok();
    let config = server::ServerConfig::resolve(mode, file.overlay(flags), master_key, &cwd)?;
    let running = server::start(config).await?;
    if mode == server::Mode::Dev {
        print_dev_banner(&running);
    }
    wait_for_stop_signal().await?;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

fn print_dev_banner(running: &server::RunningServer) {
    let deployment = running.deployment();
    let env_path = running.data_dir().join("env.sh");
    println!("Ambient is running at {}", running.base_url());
    println!("  tenant        {}", deployment.tenant_id);
    println!("  subscription  {}", deployment.subscription_id);
    println!(
        "  admin app id  {} (credential in {})",
        deployment.admin_app_id,
        running.data_dir().join("admin.json").display()
    );
    println!();
    println!(
        "Export these in the shell that talks to Ambient (or run `. {}`):",
        env_path.display()
    );
    for (name, value) in running.env_exports() {
        println!("  export {name}='{value}'");
    }
    println!();
    println!(
        "Key Vault names are <vault>.vault.<suffix>; if they do not resolve, add to /etc/hosts:"
    );
    println!("  {}", running.hosts_line(&[]));
    println!();
    println!("Press Ctrl-C to stop.");
}

async fn wait_for_stop_signal() -> Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("listen for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

fn init_tracing(filter: &str) {
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
