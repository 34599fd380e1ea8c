//! A throwaway PostgreSQL server for tests: `initdb` into a temporary directory, `pg_ctl start`
//! on a free port on 127.0.0.1, and `pg_ctl stop` plus removal when dropped.
//!
//! When the variable `AMBIENT_TEST_DATABASE_URL` names a running server, that one is used instead
//! (each test still gets its own database). There is no silent fallback: if PostgreSQL cannot be
//! started, [`PostgresServer::start`] returns an error that says why, and the test fails.
//!
//! `initdb` refuses to run as root, so as root the server runs as the `postgres` system user
//! (through `runuser`), in a directory that user owns.
//!
//! A test binary with many PostgreSQL tests shares one server through [`PostgresServer::shared`]
//! and gives each test its own database. A shared server lives in a `static`, which Rust never
//! drops, so a small watchdog process stops it when the test process exits, however it exits.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

/// A running PostgreSQL server, stopped when dropped (unless it came from the environment).
pub struct PostgresServer {
    base_url: String,
    owned: Option<OwnedCluster>,
}

struct OwnedCluster {
    root: PathBuf,
    pg_ctl: PathBuf,
    run_as_postgres: bool,
    /// The server options (`-o`) it was started with, to start it again on the same port.
    options: String,
}

/// The server of [`PostgresServer::shared`] and the pipe its watchdog waits on.
struct SharedServer {
    server: PostgresServer,
    /// The write end of the watchdog's standard input; nothing is ever written to it. The kernel
    /// closes it when this process exits, and the watchdog then stops the server.
    _watchdog_stdin: Option<ChildStdin>,
}

static DATABASE_COUNTER: AtomicU32 = AtomicU32::new(0);

static SHARED: OnceLock<Result<SharedServer, String>> = OnceLock::new();

impl PostgresServer {
    /// One server for the whole test process, started by the first caller.
    ///
    /// Each test should still create its own database ([`Self::unique_database_name`]). The server
    /// is stopped and its directory removed by a watchdog process once this process exits. If the
    /// server cannot be started, every caller gets the same error.
    pub fn shared() -> Result<&'static PostgresServer> {
        let shared = SHARED.get_or_init(|| {
            let server = PostgresServer::start().map_err(|error| format!("{error:#}"))?;
            let watchdog_stdin = match &server.owned {
                Some(cluster) => {
                    Some(start_watchdog(cluster).map_err(|error| format!("{error:#}"))?)
                }
                None => None,
            };
            Ok(SharedServer { server, _watchdog_stdin: watchdog_stdin })
        });
        match shared {
            Ok(shared) => Ok(&shared.server),
            Err(error) => bail!("shared PostgreSQL server: {error}"),
        }
    }

    /// Starts a server, or attaches to the one `AMBIENT_TEST_DATABASE_URL` names.
    pub fn start() -> Result<Self> {
        if let Ok(url) = std::env::var("AMBIENT_TEST_DATABASE_URL") {
            return Ok(PostgresServer {
                base_url: url.trim_end_matches('/').to_owned(),
                owned: None,
            });
        }
        let bin_dir = find_bin_dir().context(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install the postgresql \
             package or put its bin directory on PATH",
        )?;
        let run_as_postgres = is_root();
        let root = std::env::temp_dir().join(format!(
            "ambient-pg-{}-{}",
            std::process::id(),
            DATABASE_COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        if root.exists() {
            std::fs::remove_dir_all(&root).ok();
        }
        std::fs::create_dir_all(&root).with_context(|| format!("create {}", root.display()))?;
        if run_as_postgres {
            let status =
                Command::new("chown").arg("postgres:").arg(&root).status().context("run chown")?;
            if !status.success() {
                bail!("chown postgres {} failed: is there a postgres system user?", root.display());
            }
        }
        let data = root.join("data");
        let initdb = bin_dir.join("initdb");
        run(
            command(run_as_postgres, &initdb).arg("-D").arg(&data).args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ]),
            "initdb",
        )?;
        let port = free_port()?;
        let pg_ctl = bin_dir.join("pg_ctl");
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            root.display()
        );
        let cluster = OwnedCluster { root, pg_ctl, run_as_postgres, options };
        cluster.pg_ctl_start()?;
        Ok(PostgresServer {
            base_url: format!("postgres://postgres@127.0.0.1:{port}"),
            owned: Some(cluster),
        })
    }

    /// Stops the server (`pg_ctl stop -m fast`: open connections are closed) and keeps its
    /// data, for tests of what clients do while the database is down.
    pub fn stop(&self) -> Result<()> {
        let cluster =
            self.owned.as_ref().context("a server from the environment is not ours to stop")?;
        run(
            command(cluster.run_as_postgres, &cluster.pg_ctl)
                .arg("-D")
                .arg(cluster.root.join("data"))
                .args(["-m", "fast", "-w", "-t", "60", "stop"]),
            "pg_ctl stop",
        )
    }

    /// Starts a server stopped with [`PostgresServer::stop`] again, on the same port.
    pub fn start_again(&self) -> Result<()> {
        self.owned
            .as_ref()
            .context("a server from the environment is not ours to start")?
            .pg_ctl_start()
    }

    /// The URL of the server's maintenance database, `postgres`.
    pub fn admin_url(&self) -> String {
        format!("{}/postgres", self.base_url_without_database())
    }

    /// A URL for a database named `name` (create it first with `CREATE DATABASE`).
    pub fn database_url(&self, name: &str) -> String {
        format!("{}/{name}", self.base_url_without_database())
    }

    /// A fresh database name, unique within this process.
    pub fn unique_database_name(prefix: &str) -> String {
        format!(
            "{prefix}_{}_{}",
            std::process::id(),
            DATABASE_COUNTER.fetch_add(1, Ordering::SeqCst)
        )
    }

    fn base_url_without_database(&self) -> String {
        // An environment URL may name a database; strip it so others can be addressed.
        match self.base_url.rfind('/') {
            Some(slash) if slash > "postgres://".len() && self.base_url[..slash].contains('@') => {
                self.base_url[..slash].to_owned()
            }
            _ => self.base_url.clone(),
        }
    }
}

impl OwnedCluster {
    fn pg_ctl_start(&self) -> Result<()> {
        run(
            command(self.run_as_postgres, &self.pg_ctl)
                .arg("-D")
                .arg(self.root.join("data"))
                .arg("-o")
                .arg(&self.options)
                .arg("-l")
                .arg(self.root.join("server.log"))
                .args(["-w", "-t", "60", "start"]),
            "pg_ctl start",
        )
        .with_context(|| log_tail(&self.root.join("server.log")))
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(cluster) = &self.owned {
            let data = cluster.root.join("data");
            let _ = command(cluster.run_as_postgres, &cluster.pg_ctl)
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
            let _ = std::fs::remove_dir_all(&cluster.root);
        }
    }
}

/// Starts a process that waits for end of file on its standard input, then stops the cluster and
/// removes its directory. Returns the write end of that input; it must stay open while the cluster
/// is in use.
fn start_watchdog(cluster: &OwnedCluster) -> Result<ChildStdin> {
    // `$0` is the directory to remove; the remaining arguments are the stop command.
    let script = r#"cat >/dev/null; "$@" >/dev/null 2>&1; rm -rf -- "$0""#;
    let stop = command(cluster.run_as_postgres, &cluster.pg_ctl);
    let mut watchdog = Command::new("sh");
    watchdog
        .arg("-c")
        .arg(script)
        .arg(&cluster.root)
        .arg(stop.get_program())
        .args(stop.get_args())
        .arg("-D")
        .arg(cluster.root.join("data"))
        .args(["-m", "immediate", "-w", "stop"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = watchdog.spawn().context("start the PostgreSQL watchdog")?;
    // The child is not waited for: it outlives this process by design.
    child.stdin.take().context("watchdog standard input")
}

fn command(run_as_postgres: bool, program: &Path) -> Command {
    if run_as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let output = command.output().with_context(|| format!("run {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    format!("server log: {}", lines[lines.len().saturating_sub(20)..].join("\n"))
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The directory holding `initdb` and `pg_ctl`: on PATH, or Debian's versioned directory.
fn find_bin_dir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}
