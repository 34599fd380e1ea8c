//! Repository automation: `cargo xtask ci` runs everything CI runs (format, lints, the
//! dependency checks of `cargo xtask tidy`, the tidy tests and every test, PostgreSQL included).
//! Green here means green in CI.
//! `cargo xtask bench [--quick]` runs every benchmark and writes `docs/benchmarks-report.md`.
//! `cargo xtask flamegraph` profiles token issuance into `docs/flamegraph-issuance.svg`.
//! `cargo xtask gen-roles` regenerates the `rbac` crate's table of Azure built-in roles.

mod bench;
mod flamegraph;
mod gen_roles;
mod layering;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(args.iter().any(|arg| arg == "--fast")),
        // `layering` is the command's former name.
        Some("tidy" | "layering") => tidy(),
        Some("bench") => match &args[1..] {
            [] => bench::bench(&root(), false),
            [quick] if quick == "--quick" => bench::bench(&root(), true),
            _ => {
                eprintln!("usage: cargo xtask bench [--quick]");
                return std::process::ExitCode::from(2);
            }
        },
        Some("flamegraph") => flamegraph::flamegraph(&root()),
        Some("gen-roles") => match gen_roles_options(&args[1..]) {
            Some(options) => gen_roles::gen_roles(&options, &root().join(gen_roles::OUTPUT_PATH)),
            None => {
                eprintln!("{GEN_ROLES_USAGE}");
                return std::process::ExitCode::from(2);
            }
        },
        _ => {
            eprintln!(
                "usage: cargo xtask ci [--fast] | tidy | bench [--quick] | flamegraph | gen-roles ...\n{GEN_ROLES_USAGE}"
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

/// The workspace being checked. `cargo run` sets `CARGO_MANIFEST_DIR` for the process, which
/// names the checkout that invoked it even when a shared target directory holds an `xtask`
/// built from another checkout; the compile-time value is the fallback.
fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir.parent().expect("xtask lives in the workspace").to_owned()
}

/// `--fast`: format, lints and unit tests only.
fn ci(fast: bool) -> Result<()> {
    let started = Instant::now();
    step("format", cargo(&["fmt", "--all", "--check"]))?;
    step("clippy", cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    step("tidy", tidy())?;
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

/// The dependency checks: every edge between workspace crates is one the table in
/// ARCHITECTURE.md allows, the agents' trees hold no server, store, issuer or vault (a host
/// must never link the crates that hold keys and data), and every `[dependencies]` entry is
/// used. Prints every violation before failing.
fn tidy() -> Result<()> {
    let mut violations = metadata_violations()?;
    for agent in layering::AGENT_PACKAGES {
        let tree = cargo_output(&[
            "tree", "-p", agent, "-e", "normal", "--prefix", "none", "--format", "{p}",
        ])?;
        for forbidden in layering::forbidden_in_tree(&tree) {
            violations.push(format!(
                "`{agent}` links `{forbidden}`; a host must never link {}",
                layering::FORBIDDEN_ON_HOSTS.join(", ")
            ));
        }
    }
    if !violations.is_empty() {
        for violation in &violations {
            eprintln!("xtask: {violation}");
        }
        bail!("{} dependency problem(s)", violations.len());
    }
    Ok(())
}

/// The table and unused-dependency checks, which need only `cargo metadata --no-deps`.
fn metadata_violations() -> Result<Vec<String>> {
    let architecture =
        std::fs::read_to_string(root().join("ARCHITECTURE.md")).context("read ARCHITECTURE.md")?;
    let table = layering::parse_table(&architecture)?;
    let packages = layering::parse_metadata(&cargo_output(&[
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
    ])?)?;
    let mut violations = layering::table_violations(&table, &packages);
    for (krate, _, _) in layering::UNUSED_DEPENDENCY_EXCEPTIONS {
        if !packages.iter().any(|package| package.name == *krate) {
            violations.push(format!(
                "UNUSED_DEPENDENCY_EXCEPTIONS in xtask/src/layering.rs names `{krate}`, which is not a crate of the workspace"
            ));
        }
    }
    for package in &packages {
        let sources = package_sources(package)?;
        violations.extend(layering::unused_dependencies(
            package,
            &sources,
            layering::UNUSED_DEPENDENCY_EXCEPTIONS,
        ));
    }
    Ok(violations)
}

fn cargo_output(args: &[&str]) -> Result<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(root())
        .output()
        .with_context(|| format!("run cargo {}", args.join(" ")))?;
    if !output.status.success() {
        bail!("cargo {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    }
    String::from_utf8(output.stdout).with_context(|| format!("cargo {} output", args.join(" ")))
}

/// The text of every Rust file in the package's library and binary sources.
fn package_sources(package: &layering::Package) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for path in &package.source_paths {
        if path.is_dir() {
            rust_files(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    files
        .iter()
        .map(|file| {
            std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            out.push(path);
        }
    }
    Ok(())
}
