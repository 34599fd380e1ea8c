//! `cargo xtask flamegraph`: a flame graph of the server while it issues client-credential
//! tokens on one core, written to `docs/flamegraph-issuance.svg` (which the benchmark report
//! shows).
//!
//! It builds the `token_issuance` bench with line tables and symbols in a target directory of
//! its own (`flamegraph` under the usual one), starts the bench's server pinned to core 0 and
//! its load generator on core 1 (the same two parts `cargo bench` runs), with the generator
//! sleeping between answers so that the wake-ups loopback charges to the server show, records the server with
//! `perf record --call-graph dwarf` for [`RECORD_SECS`] seconds, folds the stacks with
//! `inferno-collapse-perf` and draws them with `inferno-flamegraph`. It needs `perf` (Debian's
//! `linux-perf`), `taskset`, and inferno (`cargo install inferno`); it says which is missing.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail, ensure};

/// Where the flame graph goes, from the workspace root.
pub const OUTPUT_PATH: &str = "docs/flamegraph-issuance.svg";
/// How long `perf` records the server.
const RECORD_SECS: u32 = 8;
/// Load runs back to back, each four seconds (one of warm-up), to cover the recording.
const LOAD_RUNS: u32 = 3;

/// A child process, stopped by its pid on drop.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn flamegraph(root: &Path) -> Result<()> {
    for (tool, hint) in [
        ("perf", "install Debian's linux-perf"),
        ("taskset", "install util-linux"),
        ("inferno-collapse-perf", "cargo install inferno"),
        ("inferno-flamegraph", "cargo install inferno"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        ensure!(found, "`{tool}` is not on PATH ({hint})");
    }
    let bench = build(root)?;
    let dir = std::env::temp_dir().join(format!("ambient-flamegraph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("create a scratch directory")?;
    let result = record(&bench, &dir, &root.join(OUTPUT_PATH));
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    eprintln!("xtask: wrote {OUTPUT_PATH}");
    Ok(())
}

/// Builds the bench with symbols and returns its executable.
fn build(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let target = std::env::var("CARGO_TARGET_DIR")
        .map_or_else(|_| root.join("target"), PathBuf::from)
        .join("flamegraph");
    eprintln!("xtask: building the token_issuance bench with symbols in {}", target.display());
    let output = Command::new(cargo)
        .args(["bench", "-p", "server", "--bench", "token_issuance", "--no-run"])
        .arg("--message-format=json-render-diagnostics")
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "line-tables-only")
        .env("CARGO_PROFILE_RELEASE_STRIP", "none")
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("run cargo bench --no-run")?;
    ensure!(output.status.success(), "building the bench failed ({})", output.status);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == "token_issuance")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .context("cargo named no token_issuance executable")
}

/// Runs server and load, records the server, and draws the graph to `output`.
fn record(bench: &Path, dir: &Path, output: &Path) -> Result<()> {
    let data_dir = dir.join("server");
    let mut server = Stopped(
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(bench)
            .arg("--serve")
            .arg(&data_dir)
            .arg("1")
            .stdout(Stdio::piped())
            .spawn()
            .context("start the bench's server")?,
    );
    let mut ready = String::new();
    BufReader::new(server.0.stdout.as_mut().context("server stdout")?)
        .read_line(&mut ready)
        .context("read the server's address")?;
    let parts: Vec<&str> = ready.split_whitespace().collect();
    let [url, tenant, app_id] = parts[..] else { bail!("unexpected server line {ready:?}") };
    let admin: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data_dir.join("admin.json"))?)?;
    let secret = admin["password"].as_str().context("admin password")?;
    let pid = server.0.id().to_string();
    let load_command = format!(
        "for i in $(seq {LOAD_RUNS}); do taskset -c 1 \"$0\" --load \"$1\" \"$2\" \"$3\" \"$4\" \"$5\" \"$6\" sleep >/dev/null || exit 1; done"
    );
    let mut load = Stopped(
        Command::new("sh")
            .args(["-c", &load_command])
            .arg(bench)
            .args([url, tenant, app_id, secret])
            .arg(data_dir.join("ca.pem"))
            .arg(&pid)
            .spawn()
            .context("start the load")?,
    );
    // Past the load's warm-up before recording.
    Command::new("sleep").arg("1.5").status().context("run sleep")?;
    let perf_data = dir.join("perf.data");
    let status = Command::new("perf")
        .args(["record", "-F", "999", "--call-graph", "dwarf,16384", "-p", &pid, "-o"])
        .arg(&perf_data)
        .args(["--", "sleep", &RECORD_SECS.to_string()])
        .stdout(Stdio::null())
        .status()
        .context("run perf record")?;
    ensure!(status.success(), "perf record failed ({status})");
    let load_status = load.0.wait().context("wait for the load")?;
    ensure!(load_status.success(), "the load failed ({load_status})");
    drop(server);
    let script = Command::new("perf")
        .args(["script", "-i"])
        .arg(&perf_data)
        .stderr(Stdio::null())
        .output()
        .context("run perf script")?;
    ensure!(script.status.success(), "perf script failed ({})", script.status);
    let folded = pipe("inferno-collapse-perf", &[], &script.stdout)?;
    let svg = pipe(
        "inferno-flamegraph",
        &["--title", "ambient server issuing client-credential tokens on one core"],
        &folded,
    )?;
    std::fs::write(output, svg).with_context(|| format!("write {}", output.display()))
}

/// Runs `program` with `input` on its standard input and returns its standard output.
fn pipe(program: &str, args: &[&str], input: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {program}"))?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let input = input.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let output = child.wait_with_output().with_context(|| format!("wait for {program}"))?;
    writer.join().map_err(|_| anyhow::anyhow!("writing to {program} panicked"))??;
    ensure!(output.status.success(), "{program} failed ({})", output.status);
    Ok(output.stdout)
}
