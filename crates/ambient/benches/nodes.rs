//! Token issuance with two server nodes against one, in the same run (issue 10).
//!
//! Method: a throwaway PostgreSQL; node A (`ambient server`) pinned to core 0, and this process
//! keeping 16 keep-alive connections busy with client-credential token requests for a fixed
//! time (bounded in requests) against A alone; then node B, pinned to core 1, joins the same
//! database and public URL and the same load is spread over A and B. The machine has two cores,
//! so in the second phase the load generator shares core 1 with node B: the ratio is a floor of
//! what two nodes on two machines give. Run with `cargo bench -p ambient --bench nodes`.

// Each bench uses a part of what the benches share.
#[allow(dead_code)]
mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::figure;

const CONNECTIONS: usize = 16;
const LOAD_TIME: Duration = Duration::from_secs(6);
const WARMUP: Duration = Duration::from_secs(1);
const REQUESTS_MAX: u64 = 200_000;
const MASTER_KEY: &str = "q2C1HnDYk8oZ8oVtD0xP2WbJ1J3g3Qbq0tQj5h2XbQk=";

struct Node {
    child: Child,
    dir: std::path::PathBuf,
    address: SocketAddr,
}

impl Node {
    fn start(name: &str, core: usize, database: &str, public_url: &str) -> Node {
        let dir = std::env::temp_dir().join(format!("ambient-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let child = Command::new("taskset")
            .args(["-c", &core.to_string(), env!("CARGO_BIN_EXE_ambient"), "server"])
            .args(["--listen", "127.0.0.1:0", "--public-url", public_url, "--data-dir"])
            .arg(&dir)
            .env("AMBIENT_LOG", "warn")
            .env("AMBIENT_MASTER_KEY", MASTER_KEY)
            .env("AMBIENT_DATABASE_URL", database)
            .stdout(Stdio::null())
            .spawn()
            .expect("start ambient server");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dir.join("env.sh").exists() {
            assert!(Instant::now() < deadline, "node {name} did not start");
            std::thread::park_timeout(Duration::from_millis(50));
        }
        let port: u16 = std::fs::read_to_string(dir.join("listen-port"))
            .expect("listen-port")
            .trim()
            .parse()
            .expect("port");
        Node { child, dir, address: SocketAddr::from(([127, 0, 0, 1], port)) }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn main() {
    let postgres = test_postgres::PostgresServer::start().expect("start throwaway PostgreSQL");
    let name = test_postgres::PostgresServer::unique_database_name("bench");
    let output = Command::new("psql")
        .arg(postgres.admin_url())
        .args(["-v", "ON_ERROR_STOP=1", "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let database = postgres.database_url(&name);
    // Clients address every node by the public URL's host name; the port differs per node.
    let public_url = "https://localhost:8443";
    let node_a = Node::start("a", 0, &database, public_url);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let admin: Value =
        serde_json::from_slice(&std::fs::read(node_a.dir.join("admin.json")).expect("admin.json"))
            .expect("admin");
    let tenant = std::fs::read_to_string(node_a.dir.join("env.sh"))
        .expect("env.sh")
        .lines()
        .find_map(|line| line.strip_prefix("export AMBIENT_TENANT_ID='"))
        .map(|rest| rest.trim_end_matches('\'').to_owned())
        .expect("tenant");
    let ca = std::fs::read(node_a.dir.join("ca.pem")).expect("ca");
    let one = runtime.block_on(load(&[node_a.address], &ca, &tenant, &admin));
    let node_b = Node::start("b", 1, &database, public_url);
    let two = runtime.block_on(load(&[node_a.address, node_b.address], &ca, &tenant, &admin));
    println!("client-credential tokens, {CONNECTIONS} connections, {LOAD_TIME:?} each:");
    println!("  one node (core 0):                       {one:>8.0} tokens/s");
    println!("  two nodes (cores 0 and 1, one database): {two:>8.0} tokens/s");
    println!("  ratio two / one: {:.2}", two / one);
    figure("nodes.one", one, "per_s");
    figure("nodes.two", two, "per_s");
    drop((node_a, node_b));
}

/// Tokens per second over `nodes`, each connection bound to one node in turn, from
/// `test_support::load`'s minimal HTTPS client (which leaves the nodes most of the cores).
async fn load(nodes: &[SocketAddr], ca: &[u8], tenant: &str, admin: &Value) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + WARMUP;
    let stop = start + LOAD_TIME;
    let mut tasks = Vec::new();
    for connection in 0..CONNECTIONS {
        let address = nodes[connection % nodes.len()];
        let request = test_support::load::form_post(
            &format!("localhost:{}", address.port()),
            &format!("/{tenant}/oauth2/v2.0/token"),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", admin["appId"].as_str().expect("appId")),
                ("client_secret", admin["password"].as_str().expect("password")),
                ("scope", "https://management.azure.com/.default"),
            ],
        );
        let mut client = test_support::load::Connection::connect(address, "localhost", ca)
            .await
            .expect("connect");
        let (done, failed) = (done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop && done.load(Ordering::Relaxed) < REQUESTS_MAX {
                let ok = matches!(client.exchange(&request).await, Ok(200));
                if Instant::now() >= start {
                    if ok {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("load task");
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed token requests");
    done.load(Ordering::Relaxed) as f64 / LOAD_TIME.as_secs_f64()
}
