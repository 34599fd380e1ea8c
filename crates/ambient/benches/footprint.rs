//! Idle memory (issue 16): the resident set of `ambient server` on an empty database, and of the
//! host agent serving one VM, each a few seconds after it is ready (goals: server below 64 MB,
//! agent below 16 MB), with the size of each binary.
//!
//! Method: `ambient server` starts on a fresh data directory (SQLite); once `/healthz` answers
//! and [`SETTLE`] has passed, its RSS is read from `/proc`. Then a host is created through the
//! API, the agent enrolls with its join token, a VM with a system-assigned identity is placed
//! on it, and once its metadata endpoint has answered a token and [`SETTLE`] has passed, the
//! agent's RSS is read. The agent is `ambient-agent` from the same target directory when it
//! has been built (`cargo xtask bench` builds it first); otherwise `ambient agent`, the same
//! code in the larger binary, and the report says which. Both are stopped by their pid.
//! Run with `cargo bench -p ambient --bench footprint`.

// Each bench uses a part of what the benches share.
#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{client_credentials_token, endpoint_of, figure, labelled_figure, rss_bytes};

/// How long each process idles after it is ready before its memory is read.
const SETTLE: Duration = Duration::from_secs(3);
const MANAGEMENT: &str = "https://management.azure.com/.default";

/// A child process, stopped by its pid on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(footprint());
}

async fn footprint() {
    let binary = env!("CARGO_BIN_EXE_ambient");
    let dir = std::env::temp_dir().join(format!("ambient-footprint-{}", std::process::id()));
    let server = Process(
        Command::new(binary)
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .env("AMBIENT_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start ambient server"),
    );
    let started = Instant::now();
    let (url, https) = ready(&dir).await;
    let ready_after = started.elapsed();
    tokio::time::sleep(SETTLE).await;
    let server_rss = rss_bytes(server.0.id());

    let admin: Value =
        serde_json::from_slice(&std::fs::read(dir.join("admin.json")).expect("admin.json"))
            .expect("admin json");
    let token = client_credentials_token(
        &https,
        &url,
        admin["tenant"].as_str().expect("tenant"),
        admin["appId"].as_str().expect("appId"),
        admin["password"].as_str().expect("password"),
        MANAGEMENT,
    )
    .await;
    let call = |method: reqwest::Method, path: String, body: Value| {
        let https = https.clone();
        let url = url.clone();
        let token = token.clone();
        async move {
            let response = https
                .request(method, format!("{url}{path}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("request");
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert!(status.is_success(), "{path}: {status} {body}");
            body
        }
    };
    let host = call(reqwest::Method::PUT, "/hosting/hosts/idle-1".to_owned(), Value::Null).await;
    let join_token = host["joinToken"].as_str().expect("joinToken").to_owned();
    let (agent_binary, agent_args, agent_name) = agent_command(binary);
    let agent_dir = dir.join("agent");
    let agent = Process(
        Command::new(&agent_binary)
            .args(&agent_args)
            .args(["--server", &url, "--join-token", &join_token])
            .arg("--data-dir")
            .arg(&agent_dir)
            .arg("--ca-bundle")
            .arg(dir.join("ca.pem"))
            .env("AMBIENT_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the agent"),
    );
    let subscriptions =
        call(reqwest::Method::GET, "/subscriptions?api-version=2022-12-01".to_owned(), Value::Null)
            .await;
    let subscription =
        subscriptions["value"][0]["subscriptionId"].as_str().expect("subscription").to_owned();
    let group = format!("/subscriptions/{subscription}/resourceGroups/idle");
    call(
        reqwest::Method::PUT,
        format!("{group}?api-version=2024-07-01"),
        json!({"location": "local"}),
    )
    .await;
    let vm = format!("{group}/providers/Microsoft.Compute/virtualMachines/idle-vm");
    call(
        reqwest::Method::PUT,
        format!("{vm}?api-version=2024-07-01"),
        json!({"location": "local", "identity": {"type": "SystemAssigned"}, "properties": {"hostId": "idle-1"}}),
    )
    .await;
    let endpoint = endpoint_of(&https, &url, &token, &vm).await;
    let plain = reqwest::Client::builder().no_proxy().build().expect("client");
    let answer = plain
        .get(format!(
            "{endpoint}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
        ))
        .header("Metadata", "true")
        .send()
        .await
        .expect("metadata token");
    assert_eq!(answer.status(), 200, "the agent answers a token");
    tokio::time::sleep(SETTLE).await;
    let agent_rss = rss_bytes(agent.0.id());
    let server_rss_serving = rss_bytes(server.0.id());
    drop(agent);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);

    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |metadata| metadata.len());
    println!(
        "ambient server, empty database: {:.1} MiB resident {} s after ready ({:.0} ms to ready; goal < 64 MB), {:.1} MiB with one host and VM",
        mib(server_rss),
        SETTLE.as_secs(),
        ready_after.as_secs_f64() * 1000.0,
        mib(server_rss_serving)
    );
    println!("{agent_name}, one VM: {:.1} MiB resident (goal < 16 MB)", mib(agent_rss));
    println!(
        "binaries: ambient {:.1} MiB, {agent_name} {:.1} MiB",
        mib(size(Path::new(binary))),
        mib(size(&agent_binary))
    );
    figure("footprint.server_rss", mib(server_rss), "MiB");
    figure("footprint.server_rss_serving", mib(server_rss_serving), "MiB");
    figure("footprint.server_ready", ready_after.as_secs_f64() * 1000.0, "ms");
    labelled_figure("footprint.agent_rss", mib(agent_rss), "MiB", &agent_name);
    figure("footprint.server_binary", mib(size(Path::new(binary))), "MiB");
    labelled_figure("footprint.agent_binary", mib(size(&agent_binary)), "MiB", &agent_name);
    assert!(mib(server_rss) * 1.048_576 < 64.0, "idle server above 64 MB");
    assert!(mib(agent_rss) * 1.048_576 < 16.0, "idle agent above 16 MB");
}

/// The agent to measure: `ambient-agent` beside this bench's target directory when built,
/// otherwise `ambient agent`; with its arguments before the options, and its name.
fn agent_command(ambient: &str) -> (PathBuf, Vec<String>, String) {
    let small = Path::new(ambient).with_file_name("ambient-agent");
    if small.is_file() {
        (small, Vec::new(), "ambient-agent".to_owned())
    } else {
        (PathBuf::from(ambient), vec!["agent".to_owned()], "ambient agent".to_owned())
    }
}

/// Waits until the server in `dir` answers `/healthz`; its URL and a client trusting its CA.
async fn ready(dir: &Path) -> (String, reqwest::Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let port = std::fs::read_to_string(dir.join("listen-port")).ok();
        let ca = std::fs::read(dir.join("ca.pem")).ok();
        if let (Some(port), Some(ca), true) = (port, ca, dir.join("admin.json").is_file()) {
            let url = format!("https://localhost:{}", port.trim());
            let https = reqwest::Client::builder()
                .no_proxy()
                .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("ca")])
                .build()
                .expect("client");
            if https
                .get(format!("{url}/healthz"))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success())
            {
                return (url, https);
            }
        }
        assert!(Instant::now() < deadline, "ambient server not ready after 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
