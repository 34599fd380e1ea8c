//! The command-line client, shaped like `az`: `ambient <group> <verb> [flags]`.
//!
//! [`Command`] is the clap subcommand tree the `ambient` binary flattens into its own; [`run`]
//! executes one. The CLI talks to the server only through `client` and its public API, and
//! finds the server and its credential in the profile under the data directory
//! (`$AMBIENT_HOME/profile.json`, written by `ambient dev`).

mod profile;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

/// Where the CLI looks for its profile.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The data directory holding the CLI profile (as written by `ambient dev`).
    #[arg(
        long = "home",
        env = "AMBIENT_HOME",
        global = true,
        value_name = "DIR",
        default_value = ".ambient"
    )]
    pub home: PathBuf,
}

/// The CLI's command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the signed-in account (the CLI profile).
    #[command(subcommand)]
    Account(AccountCommand),
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Print the current profile: server, tenant, subscription and credential reference.
    Show,
}

/// Runs one CLI command.
pub async fn run(command: Command, global: GlobalArgs) -> Result<()> {
    match command {
        Command::Account(AccountCommand::Show) => {
            let profile = profile::load(&global.home)?;
            println!("{}", serde_json::to_string_pretty(&profile::account_view(&profile))?);
            Ok(())
        }
    }
}
