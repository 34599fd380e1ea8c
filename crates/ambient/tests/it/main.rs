//! Tests of the `ambient` binary as a user runs it: a real process, real HTTPS with the
//! generated CA, real SQLite and PostgreSQL. `Ambient` starts a process and kills it on drop.

mod agent;
mod attestation;
mod az;
mod console;
mod control_plane;
mod deployment;
mod docs;
mod flavours;
mod foundation;
mod hostile;
mod identity;
mod keyvault;
mod sts;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_ambient");

/// A running `ambient dev` or `ambient server` process.
pub struct Ambient {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Ambient {
    /// Starts `ambient ARGS...` with `--data-dir DIR --listen 127.0.0.1:0` (unless `extra`
    /// names a `--listen`) and waits until it has written `env.sh` for this run.
    pub fn start(
        subcommand: &str,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Ambient {
        let env_path = data_dir.join("env.sh");
        let _ = std::fs::remove_file(&env_path);
        let mut command = Command::new(BINARY);
        command
            .arg(subcommand)
            .arg("--data-dir")
            .arg(data_dir)
            .args(if extra.contains(&"--listen") {
                &[][..]
            } else {
                &["--listen", "127.0.0.1:0"][..]
            })
            .args(extra)
            .env_remove("AMBIENT_HOME")
            .env("AMBIENT_LOG", "warn")
            // Files, not pipes: nobody reads a pipe while the test runs, and a process whose
            // pipe fills up stops answering.
            .stdout(log_file(data_dir, "stdout.log"))
            .stderr(log_file(data_dir, "stderr.log"));
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start ambient");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !env_path.exists() {
            if let Some(status) = child.try_wait().expect("poll ambient") {
                let stderr =
                    std::fs::read_to_string(data_dir.join("stderr.log")).unwrap_or_default();
                panic!("ambient exited early ({status}): {stderr}");
            }
            assert!(Instant::now() < deadline, "ambient did not start within 60 s");
            std::thread::park_timeout(Duration::from_millis(50));
        }
        let env = parse_env_sh(&std::fs::read_to_string(&env_path).unwrap());
        Ambient { child: Some(child), data_dir: data_dir.to_owned(), env }
    }

    pub fn var(&self, name: &str) -> &str {
        &self
            .env
            .iter()
            .find(|(key, _)| key == name)
            .unwrap_or_else(|| panic!("{name} not in env.sh"))
            .1
    }

    pub fn url(&self) -> &str {
        self.var("AMBIENT_URL")
    }

    /// The address the process listens on (the public URL may name a proxy instead).
    pub fn listen_addr(&self) -> std::net::SocketAddr {
        let port: u16 = std::fs::read_to_string(self.data_dir.join("listen-port"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .expect("a listen port is remembered for --listen 127.0.0.1:0");
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// The process id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// An HTTPS client that trusts only the generated CA.
    pub fn client(&self) -> reqwest::Client {
        let ca = std::fs::read(self.var("AMBIENT_CA_BUNDLE")).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .build()
            .unwrap()
    }

    /// The first lines the process printed on stdout (the banner), after it stops.
    pub fn stop_with(mut self, signal: &str) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let status = child.wait().unwrap();
        let stdout = std::fs::read_to_string(self.data_dir.join("stdout.log")).unwrap_or_default();
        (status, stdout.trim_end().to_owned())
    }
}

impl Drop for Ambient {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                let stderr = std::fs::read(self.data_dir.join("stderr.log")).unwrap_or_default();
                let tail = String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(4000)..]);
                eprintln!("--- ambient's stderr ({}), last part:\n{tail}", self.data_dir.display());
            }
        }
    }
}

/// A fresh file in `dir` for the process's output (the directory is created if needed).
fn log_file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::File::create(dir.join(name)).unwrap()
}

pub fn parse_env_sh(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.trim_matches('\'').to_owned()))
        .collect()
}

/// Runs `ambient ARGS` to completion and returns (exit code, stdout, stderr).
pub fn run_ambient(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(BINARY);
    command.args(args).env_remove("AMBIENT_HOME").env("AMBIENT_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run ambient");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn tempdir(label: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ambient-it-{label}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Python interpreter of the end-to-end venv (`tests/e2e/requirements.txt`), building the
/// venv on first use. `AMBIENT_E2E_PYTHON` names another interpreter. A failure to build it
/// fails the test: the real clients are the point of these tests.
pub fn python() -> PathBuf {
    if let Ok(python) = std::env::var("AMBIENT_E2E_PYTHON") {
        return PathBuf::from(python);
    }
    venv("e2e-venv", "requirements.txt").join("bin/python")
}

/// The real Azure CLI (`azure-cli` from PyPI, `tests/e2e/az-requirements.txt`), in a venv of
/// its own: its pinned management libraries differ from the SDKs the other tests use.
pub fn az() -> PathBuf {
    venv("az-venv", "az-requirements.txt").join("bin/az")
}

/// A venv under the target directory with `tests/e2e/{requirements}` installed, rebuilt when
/// the requirements change.
fn venv(name: &str, requirements: &str) -> PathBuf {
    let requirements_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e").join(requirements);
    let wanted =
        std::fs::read_to_string(&requirements_path).expect("read the e2e requirements file");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap();
    let lock =
        std::fs::File::create(Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.lock")))
            .unwrap();
    lock.lock().expect("lock the venv");
    let stamp = venv.join("requirements.stamp");
    let python = venv.join("bin/python");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let _ = std::fs::remove_dir_all(&venv);
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("run python3 -m venv");
        assert!(status.success(), "python3 -m venv failed");
        let output = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements_path)
            .output()
            .expect("run pip");
        assert!(
            output.status.success(),
            "pip install failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&stamp, &wanted).unwrap();
    }
    venv
}

/// Runs `tests/e2e/{script}` with the venv's Python and `env`, and parses the JSON it prints.
pub fn run_python(script: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e").join(script);
    let mut command = Command::new(python());
    command.arg(&path);
    // Never let a client fall back to the real instance metadata address.
    for name in [
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("{script} printed no JSON ({error}): {stdout}"))
}

/// Runs the CLI against a running Ambient (its `AMBIENT_HOME`) and parses its JSON output.
pub fn cli_json(ambient: &Ambient, args: &[&str]) -> serde_json::Value {
    let home = ambient.data_dir.to_str().unwrap().to_owned();
    let (code, stdout, stderr) = run_ambient(args, &[("AMBIENT_HOME", home.as_str())]);
    assert_eq!(code, 0, "ambient {args:?} failed: {stderr}");
    serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("ambient {args:?} printed no JSON ({error}): {stdout}"))
}
