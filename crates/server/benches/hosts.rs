//! How the server carries many connected hosts: 1,000 simulated agents (real enrollment, real
//! client certificates over real TLS, each following its assignment watch as `ambient-agent`
//! does) on one server. Reports the server's memory and CPU per connected agent while they wait
//! in their long polls, and the time from one change that affects every host (deleting a
//! user-assigned identity held by a VM on each) to the last agent seeing its new assignments,
//! which is when a real agent drops the identity's cached tokens (goal: under 5 s).
//!
//! Method: the server runs in its own process pinned to core 0 (`--serve`); the agents run in
//! this process on core 1, one HTTPS connection each. Memory is the server's resident set
//! (`/proc/PID/status`), CPU its user and system time (`/proc/PID/stat`) over a fixed quiet
//! period, each compared with the same server before the agents connected. Run with
//! `cargo bench -p server --bench hosts`; `AMBIENT_BENCH_AGENTS` (default 1000) sets the count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

const QUIET: Duration = Duration::from_secs(10);
const PROPAGATION_LIMIT: Duration = Duration::from_secs(60);
const MANAGEMENT: &str = "https://management.azure.com/.default";
const API: &str = "api-version=2024-11-01";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--serve") => serve(std::path::Path::new(&args[2])),
        Some("--agents") => agents(&args[2..]),
        _ => orchestrate(),
    }
}

fn orchestrate() {
    let me = std::env::current_exe().expect("own path");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = |core: usize| {
        let mut command = std::process::Command::new("taskset");
        command.arg("-c").arg(core.min(cores - 1).to_string()).arg(&me);
        command
    };
    let dir = std::env::temp_dir().join(format!("ambient-bench-hosts-{}", std::process::id()));
    let mut server = pinned(0)
        .arg("--serve")
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start server");
    let ready = read_line(&mut server);
    let status = pinned(1)
        .arg("--agents")
        .args(ready.split_whitespace())
        .arg(server.id().to_string())
        .arg(&dir)
        .status()
        .expect("run agents");
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "the agents' side failed");
}

fn read_line(child: &mut std::process::Child) -> String {
    use std::io::BufRead as _;
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).expect("read child output");
    line.trim().to_owned()
}

/// The server on a two-thread runtime; prints `URL TENANT SUBSCRIPTION` when ready.
fn serve(dir: &std::path::Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let settings = server::Settings {
            data_dir: Some(dir.to_owned()),
            listen: Some("127.0.0.1:0".to_owned()),
            ..server::Settings::default()
        };
        let config = server::ServerConfig::resolve(server::Mode::Server, settings, None, dir)
            .expect("config");
        let running = server::start(config).await.expect("start server");
        let deployment = running.deployment();
        println!("{} {} {}", running.base_url(), deployment.tenant_id, deployment.subscription_id);
        std::future::pending::<()>().await;
    });
}

/// The server's resident set (bytes) and CPU time so far (seconds).
fn server_usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss_kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are utime and stime; index 0 here is field 3.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    (rss_kb * 1024, ticks as f64 / 100.0)
}

struct Deployment {
    base: String,
    tenant: String,
    subscription: String,
    ca: Vec<u8>,
    admin_app_id: String,
    admin_secret: String,
}

impl Deployment {
    fn http(&self, identity: Option<&[u8]>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&self.ca).expect("ca")])
            .pool_max_idle_per_host(2);
        if let Some(pem) = identity {
            builder = builder.identity(reqwest::Identity::from_pem(pem).expect("identity"));
        }
        builder.build().expect("client")
    }

    async fn admin_token(&self, http: &reqwest::Client) -> String {
        let response = http
            .post(format!("{}/{}/oauth2/v2.0/token", self.base, self.tenant))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.admin_app_id),
                ("client_secret", &self.admin_secret),
                ("scope", MANAGEMENT),
            ])
            .send()
            .await
            .expect("token");
        let body: Value = response.json().await.expect("token body");
        body["access_token"].as_str().expect("access_token").to_owned()
    }
}

async fn send(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.expect("request");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {body}");
    body
}

fn agents(args: &[String]) {
    let (base, tenant, subscription) = (&args[0], &args[1], &args[2]);
    let pid: u32 = args[3].parse().expect("pid");
    let dir = std::path::Path::new(&args[4]);
    let count: usize = std::env::var("AMBIENT_BENCH_AGENTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1000);
    let admin: Value =
        serde_json::from_slice(&std::fs::read(dir.join("admin.json")).expect("admin.json"))
            .expect("admin json");
    let deployment = Arc::new(Deployment {
        base: base.clone(),
        tenant: tenant.clone(),
        subscription: subscription.clone(),
        ca: std::fs::read(dir.join("ca.pem")).expect("ca.pem"),
        admin_app_id: admin["appId"].as_str().expect("appId").to_owned(),
        admin_secret: admin["password"].as_str().expect("password").to_owned(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(deployment, pid, count));
}

async fn run(deployment: Arc<Deployment>, pid: u32, count: usize) {
    let admin = deployment.http(None);
    let token = deployment.admin_token(&admin).await;
    let base = &deployment.base;
    let group = format!("/subscriptions/{}/resourceGroups/hosts", deployment.subscription);
    send(
        admin
            .put(format!("{base}{group}?{API}"))
            .bearer_auth(&token)
            .json(&json!({"location": "westus"})),
    )
    .await;
    let identity =
        format!("{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/shared");
    send(
        admin
            .put(format!("{base}{identity}?{API}"))
            .bearer_auth(&token)
            .json(&json!({"location": "westus"})),
    )
    .await;

    // Enroll every host and place a VM holding the shared identity on each, 8 at a time.
    let setup_started = Instant::now();
    let clients = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (deployment, admin, token, clients, next, group, identity) = (
            deployment.clone(),
            admin.clone(),
            token.clone(),
            clients.clone(),
            next.clone(),
            group.clone(),
            identity.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= count {
                    return;
                }
                let host = format!("bench-{n}");
                let base = &deployment.base;
                let created = send(admin.put(format!("{base}/hosting/hosts/{host}")).bearer_auth(&token)).await;
                let csr = crypto::pki::generate_csr(&host).expect("csr");
                let issued = send(admin.post(format!("{base}/hosting/enroll")).json(&json!({
                    "host": host,
                    "joinToken": created["joinToken"],
                    "csr": csr.csr_pem,
                })))
                .await;
                let pem = format!(
                    "{}\n{}",
                    issued["certificate"].as_str().expect("certificate"),
                    csr.key_pem.as_str()
                );
                let vm = format!("{group}/providers/Microsoft.Compute/virtualMachines/vm-{n}");
                send(admin.put(format!("{base}{vm}?{API}")).bearer_auth(&token).json(&json!({
                    "location": "westus",
                    "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity.as_str(): {}}},
                    "properties": {"hostId": host},
                })))
                .await;
                clients.lock().await.push(deployment.http(Some(pem.as_bytes())));
            }
        }));
    }
    for worker in workers {
        worker.await.expect("setup worker");
    }
    let setup = setup_started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_before, cpu_before_start) = server_usage(pid);
    tokio::time::sleep(QUIET).await;
    let (_, cpu_before_end) = server_usage(pid);
    let idle_cpu = (cpu_before_end - cpu_before_start) / QUIET.as_secs_f64();

    // Every agent follows its watch; each records when it first sees the identity gone.
    let clients = std::mem::take(&mut *clients.lock().await);
    let seen_gone: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let parked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let identity_key = identity.to_ascii_lowercase();
    for client in clients {
        let (base, seen_gone, parked, identity_key) =
            (deployment.base.clone(), seen_gone.clone(), parked.clone(), identity_key.clone());
        tokio::spawn(async move {
            let mut version = String::new();
            let mut first = true;
            loop {
                let answer = send(
                    client
                        .get(format!("{base}/hosting/assignments"))
                        .query(&[("version", version.as_str()), ("wait", "25")]),
                )
                .await;
                version = answer["version"].as_str().unwrap_or_default().to_owned();
                let holds = answer.to_string().to_ascii_lowercase().contains(&identity_key);
                if first {
                    assert!(holds, "the host's VM holds the shared identity: {answer}");
                    first = false;
                    parked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                } else if !holds {
                    seen_gone.lock().await.push(Instant::now());
                    return;
                }
            }
        });
    }
    while parked.load(std::sync::atomic::Ordering::Relaxed) < count {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_after, cpu_start) = server_usage(pid);
    tokio::time::sleep(QUIET).await;
    let (_, cpu_end) = server_usage(pid);
    let watching_cpu = (cpu_end - cpu_start) / QUIET.as_secs_f64();

    // One change that affects every host.
    let changed_at = Instant::now();
    send(admin.delete(format!("{base}{identity}?{API}")).bearer_auth(&token)).await;
    let deleted_after = changed_at.elapsed();
    let deadline = Instant::now() + PROPAGATION_LIMIT;
    while seen_gone.lock().await.len() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies: Vec<Duration> =
        seen_gone.lock().await.iter().map(|at| at.duration_since(changed_at)).collect();
    latencies.sort();
    assert_eq!(latencies.len(), count, "every agent saw the change within {PROPAGATION_LIMIT:?}");

    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "agents:                                {count} (set up in {:.1} s)",
        setup.as_secs_f64()
    );
    println!("server RSS before the agents connect:  {:8.1} MiB", mib(rss_before));
    println!("server RSS with every agent watching:  {:8.1} MiB", mib(rss_after));
    println!(
        "memory per connected agent:            {:8.1} KiB",
        (rss_after.saturating_sub(rss_before)) as f64 / 1024.0 / count as f64
    );
    println!("server CPU, hosts enrolled, no watch:  {:8.1} % of a core", idle_cpu * 100.0);
    println!("server CPU, every agent watching:      {:8.1} % of a core", watching_cpu * 100.0);
    println!(
        "CPU per watching agent:                {:8.3} % of a core",
        (watching_cpu - idle_cpu).max(0.0) * 100.0 / count as f64
    );
    println!("delete answered after:                 {:8.0} ms", deleted_after.as_secs_f64() * 1e3);
    println!(
        "change seen by agents: p50 {:.0} ms, p99 {:.0} ms, last {:.0} ms (goal: last < 5000 ms)",
        latencies[count / 2].as_secs_f64() * 1e3,
        latencies[count * 99 / 100].as_secs_f64() * 1e3,
        latencies[count - 1].as_secs_f64() * 1e3
    );
    let prefix = format!("hosts.{count}");
    figure(&format!("{prefix}.setup"), setup.as_secs_f64(), "s");
    figure(&format!("{prefix}.rss_before"), mib(rss_before), "MiB");
    figure(&format!("{prefix}.rss_after"), mib(rss_after), "MiB");
    figure(&format!("{prefix}.cpu_idle"), idle_cpu * 100.0, "percent_core");
    figure(&format!("{prefix}.cpu_watching"), watching_cpu * 100.0, "percent_core");
    figure(&format!("{prefix}.delete"), deleted_after.as_secs_f64() * 1e3, "ms");
    figure(&format!("{prefix}.seen_p50"), latencies[count / 2].as_secs_f64() * 1e3, "ms");
    figure(&format!("{prefix}.seen_p99"), latencies[count * 99 / 100].as_secs_f64() * 1e3, "ms");
    figure(&format!("{prefix}.seen_last"), latencies[count - 1].as_secs_f64() * 1e3, "ms");
}

/// One machine-readable line per figure, which `cargo xtask bench` reads.
fn figure(name: &str, value: f64, unit: &str) {
    println!("BENCH {name}={value} unit={unit}");
}
