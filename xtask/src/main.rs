//! Repository automation: `cargo xtask ci` runs everything CI runs (format, lints, layering,
//! tidy checks and every test, PostgreSQL included). Green here means green in CI.
//! `cargo xtask gen-roles` regenerates the `rbac` crate's table of Azure built-in roles.

mod gen_roles;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(args.iter().any(|arg| arg == "--fast")),
        Some("layering") => layering(),
        Some("gen-roles") => match gen_roles_options(&args[1..]) {
            Some(options) => gen_roles::gen_roles(&options, &root().join(gen_roles::OUTPUT_PATH)),
            None => {
                eprintln!("{GEN_ROLES_USAGE}");
                return std::process::ExitCode::from(2);
            }
        },
        _ => {
            eprintln!(
                "usage: cargo xtask ci [--fast] | layering | gen-roles ...\n{GEN_ROLES_USAGE}"
            );
            return std::process::ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

const GEN_ROLES_USAGE: &str =
    "usage: cargo xtask gen-roles <roles.json | docs-dir> --provenance <text>
  <roles.json>  `az role definition list --query \"[?roleType=='BuiltInRole']\"` output, or ARM's
                `{\"value\": [..]}` from GET /providers/Microsoft.Authorization/roleDefinitions
  <docs-dir>    MicrosoftDocs/azure-docs articles/role-based-access-control/built-in-roles/
  --provenance  where the source came from (repository, path, commit, date); may span lines";

/// `<source> --provenance <text>`, in either order; `None` when either is missing.
fn gen_roles_options(args: &[String]) -> Option<gen_roles::GenRolesOptions> {
    let mut source_path = None;
    let mut provenance = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--provenance" {
            provenance = Some(args.next()?.clone());
        } else if source_path.is_none() && !arg.starts_with("--") {
            source_path = Some(PathBuf::from(arg));
        } else {
            return None;
        }
    }
    Some(gen_roles::GenRolesOptions { source_path: source_path?, provenance: provenance? })
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
}

/// `--fast`: format, lints and unit tests only.
fn ci(fast: bool) -> Result<()> {
    let started = Instant::now();
    step("format", cargo(&["fmt", "--all", "--check"]))?;
    step("clippy", cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    step("layering", layering())?;
    if fast {
        step("unit tests", cargo(&["test", "--workspace", "--lib", "--bins"]))?;
    } else {
        step("tests", cargo(&["test", "--workspace", "--no-fail-fast"]))?;
    }
    eprintln!("xtask: ci passed in {:.0?}", started.elapsed());
    Ok(())
}

fn step(name: &str, result: Result<()>) -> Result<()> {
    result.with_context(|| format!("step `{name}` failed"))?;
    eprintln!("xtask: {name} ok");
    Ok(())
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status =
        Command::new(cargo).args(args).current_dir(root()).status().context("run cargo")?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The agent runs on every host, so it must not link the crates that hold keys and data.
fn layering() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["tree", "-p", "agent", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(root())
        .output()
        .context("run cargo tree")?;
    if !output.status.success() {
        bail!("cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let forbidden = tidy::forbidden_in_agent(&tree);
    if !forbidden.is_empty() {
        bail!("the agent links {forbidden:?}; it must never depend on store, issuer or vault");
    }
    Ok(())
}
