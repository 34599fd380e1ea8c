//! The small per-host binary: the metadata agent alone, without the server, its SQL drivers or
//! the CA code. It takes the options of `ambient agent` (`agent::command::AgentArgs`) and runs
//! the same `agent::command::run`; errors print as one line on stderr with a non-zero exit code.

use std::process::ExitCode;

use agent::command::{AgentArgs, StopSignals, init_tracing};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "ambient-agent",
    version,
    about = "Ambient's host agent: enroll with a join token, then serve the metadata endpoints for the resources placed on this host"
)]
struct Cli {
    #[command(flatten)]
    agent: AgentArgs,
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
    match runtime.block_on(run(cli.agent)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let signals = StopSignals::install()?;
    init_tracing(&args.log);
    Ok(agent::command::run(args, signals).await?)
}
