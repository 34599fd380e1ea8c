//! The two data paths workloads hit all day, each against a bare JSON answer from the same
//! listener in the same run:
//!
//! - cached IMDS token requests on a resource's metadata listener, against the listener's bare
//!   probe answer (`GET /metadata/identity/oauth2/token` without `Metadata: true`, a small JSON
//!   400 through the same stack); plus the latency of a cache miss (a new audience each time,
//!   so the agent asks the server and the server signs);
//! - workload attestation: cached IMDS token requests on listeners of resources with a `user`
//!   selector (the socket's owner in `/proc/net/tcp`) and with an `executable` selector (also
//!   the scan of `/proc/*/fd` for the process holding the socket), against the resource
//!   without selectors; on keep-alive connections (attested once per connection) and with a
//!   new connection for every request (attested every time);
//! - Key Vault `get secret` (token validation, RBAC, decryption) against `GET /healthz` on the
//!   server's HTTPS listener.
//!
//! Method: `ambient dev` runs pinned to core 0 (server and agent share that core); this process
//! re-runs itself pinned to core 1 and keeps 16 keep-alive connections busy for a fixed time with
//! a bounded number of requests. Run with `cargo bench -p ambient --bench data_paths`.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CONNECTIONS: usize = 16;
const LOAD_TIME: Duration = Duration::from_secs(5);
const WARMUP: Duration = Duration::from_secs(1);
const REQUESTS_MAX: u64 = 500_000;
const MISSES: usize = 200;
/// Requests of each run with a new connection per request (each leaves a port in TIME_WAIT).
const FRESH_REQUESTS_MAX: u64 = 10_000;

fn main() {
    if std::env::var_os("AMBIENT_BENCH_PINNED").is_none() {
        let me = std::env::current_exe().expect("own path");
        let status = Command::new("taskset")
            .args(["-c", "1"])
            .arg(me)
            .env("AMBIENT_BENCH_PINNED", "1")
            .status()
            .expect("taskset");
        std::process::exit(status.code().unwrap_or(1));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

struct Dev {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn bench() {
    let dir = std::env::temp_dir().join(format!("ambient-bench-data-{}", std::process::id()));
    let mut child = Command::new("taskset")
        .args([
            "-c",
            "0",
            env!("CARGO_BIN_EXE_ambient"),
            "dev",
            "--listen",
            "127.0.0.1:0",
            "--imds-rate-limit",
            "1000000000",
            "--data-dir",
        ])
        .arg(&dir)
        .env("AMBIENT_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start ambient dev");
    let stdout = child.stdout.take().expect("stdout");
    let dev = Dev { child, dir: dir.clone() };
    for line in std::io::BufReader::new(stdout).lines() {
        if line.expect("banner").starts_with("Press Ctrl-C") {
            break;
        }
    }
    let env: Vec<(String, String)> = std::fs::read_to_string(dir.join("env.sh"))
        .expect("env.sh")
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.trim_matches('\'').to_owned()))
        .collect();
    let var = |name: &str| {
        env.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone()).expect(name)
    };
    let url = var("AMBIENT_URL");
    let tenant = var("AMBIENT_TENANT_ID");
    let subscription = var("AMBIENT_SUBSCRIPTION_ID");
    let ca = std::fs::read(var("AMBIENT_CA_BUNDLE")).expect("ca");
    let port: u16 = url.rsplit(':').next().expect("port").parse().expect("port");
    let https = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("ca")])
        .resolve("benchvault.vault.localhost", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .expect("client");
    let admin: Value =
        serde_json::from_slice(&std::fs::read(dir.join("admin.json")).expect("admin.json"))
            .expect("admin");
    let token = |scope: &'static str| {
        let https = https.clone();
        let (url, tenant, admin) = (url.clone(), tenant.clone(), admin.clone());
        async move {
            let body: Value = https
                .post(format!("{url}/{tenant}/oauth2/v2.0/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", admin["appId"].as_str().expect("appId")),
                    ("client_secret", admin["password"].as_str().expect("password")),
                    ("scope", scope),
                ])
                .send()
                .await
                .expect("token")
                .json()
                .await
                .expect("token json");
            body["access_token"].as_str().expect("access_token").to_owned()
        }
    };
    let arm = token("https://management.azure.com/.default").await;
    let put = |path: String, body: Value| {
        let (https, url, arm) = (https.clone(), url.clone(), arm.clone());
        async move {
            let response = https
                .put(format!("{url}{path}?api-version=2024-07-01"))
                .bearer_auth(arm)
                .json(&body)
                .send()
                .await
                .expect("put");
            assert!(response.status().is_success(), "PUT {path}: {}", response.status());
            response.json::<Value>().await.expect("json")
        }
    };
    let group = format!("/subscriptions/{subscription}/resourceGroups/bench");
    put(group.clone(), json!({"location": "local"})).await;
    let vm = put(
        format!("{group}/providers/Microsoft.Compute/virtualMachines/bench-vm"),
        json!({"location": "local", "identity": {"type": "SystemAssigned"}}),
    )
    .await;
    // The same VM with workload selectors matching this process: its user, and its executable.
    use std::os::unix::fs::MetadataExt as _;
    let uid = std::fs::metadata("/proc/self").expect("/proc/self").uid();
    let executable = std::fs::read_link("/proc/self/exe").expect("own executable");
    let vm_uid = put(
        format!("{group}/providers/Microsoft.Compute/virtualMachines/bench-vm-uid"),
        json!({"location": "local", "identity": {"type": "SystemAssigned"},
               "properties": {"ambient": {"workloadSelectors": {"user": uid.to_string()}}}}),
    )
    .await;
    let vm_exe = put(
        format!("{group}/providers/Microsoft.Compute/virtualMachines/bench-vm-exe"),
        json!({"location": "local", "identity": {"type": "SystemAssigned"},
               "properties": {"ambient": {"workloadSelectors": {"executable": executable.display().to_string()}}}}),
    )
    .await;
    let vault = put(
        format!("{group}/providers/Microsoft.KeyVault/vaults/benchvault"),
        json!({"location": "local"}),
    )
    .await;
    let admin_oid = {
        let list: Value = https
            .get(format!(
                "{url}/v1.0/servicePrincipals?$filter=displayName%20eq%20%27ambient-admin%27"
            ))
            .bearer_auth(token("https://graph.microsoft.com/.default").await)
            .send()
            .await
            .expect("sp")
            .json()
            .await
            .expect("json");
        list["value"][0]["id"].as_str().expect("admin oid").to_owned()
    };
    put(
        format!("{}/providers/Microsoft.Authorization/roleAssignments/{}", vault["id"].as_str().expect("id"), uuid::Uuid::new_v4()),
        json!({"properties": {"roleDefinitionId": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "principalId": admin_oid}}),
    )
    .await;
    let vault_uri = vault["properties"]["vaultUri"].as_str().expect("vaultUri").to_owned();
    let vault_token =
        token(Box::leak(format!("https://vault.localhost:{port}/.default").into_boxed_str())).await;
    let response = https
        .put(format!("{vault_uri}secrets/db-password?api-version=7.5"))
        .bearer_auth(&vault_token)
        .json(&json!({"value": "s3cr3t"}))
        .send()
        .await
        .expect("set secret");
    assert!(response.status().is_success(), "set secret: {}", response.status());

    // The VMs' metadata listeners, once the agent reports them.
    let endpoint_of = |resource: Value| {
        let (https, url, arm) = (https.clone(), url.clone(), arm.clone());
        async move {
            loop {
                let answer: Value = https
                    .get(format!(
                        "{url}/hosting/endpoints?resourceId={}",
                        resource["id"].as_str().expect("id").replace('/', "%2F")
                    ))
                    .bearer_auth(&arm)
                    .send()
                    .await
                    .expect("endpoints")
                    .json()
                    .await
                    .expect("json");
                if let Some(endpoint) = answer["endpoint"].as_str() {
                    break endpoint.to_owned();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let endpoint = endpoint_of(vm).await;
    let endpoint_uid = endpoint_of(vm_uid).await;
    let endpoint_exe = endpoint_of(vm_exe).await;
    let http =
        reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");
    let token_url = format!(
        "{endpoint}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
    );
    let probe_url = format!("{endpoint}/metadata/identity/oauth2/token");

    let probe = load(&http, &probe_url, None, None, 400, REQUESTS_MAX).await;
    let cached = load(&http, &token_url, Some(("Metadata", "true")), None, 200, REQUESTS_MAX).await;
    let token_url_of =
        |endpoint: &str| token_url.replacen(endpoint_url_base(&token_url), endpoint, 1);
    let metadata = Some(("Metadata", "true"));
    let cached_uid =
        load(&http, &token_url_of(&endpoint_uid), metadata, None, 200, REQUESTS_MAX).await;
    let cached_exe =
        load(&http, &token_url_of(&endpoint_exe), metadata, None, 200, REQUESTS_MAX).await;
    // A new connection for every request: each one is attested.
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let fresh_none = load(&fresh, &token_url, metadata, None, 200, FRESH_REQUESTS_MAX).await;
    let fresh_uid =
        load(&fresh, &token_url_of(&endpoint_uid), metadata, None, 200, FRESH_REQUESTS_MAX).await;
    let fresh_exe =
        load(&fresh, &token_url_of(&endpoint_exe), metadata, None, 200, FRESH_REQUESTS_MAX).await;
    // The baseline again: runs with new connections slow down as TIME_WAIT sockets pile up.
    let fresh_none_after = load(&fresh, &token_url, metadata, None, 200, FRESH_REQUESTS_MAX).await;
    let fresh_none =
        ((fresh_none.0 + fresh_none_after.0) / 2.0, fresh_none.1.max(fresh_none_after.1));
    let mut misses = Vec::with_capacity(MISSES);
    for index in 0..MISSES {
        let started = Instant::now();
        let response = http
            .get(format!("{endpoint}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://bench-{index}.example"))
            .header("Metadata", "true")
            .send()
            .await
            .expect("miss");
        assert_eq!(response.status(), 200);
        response.bytes().await.expect("body");
        misses.push(started.elapsed());
    }
    misses.sort();
    let healthz = load(&https, &format!("{url}/healthz"), None, None, 200, REQUESTS_MAX).await;
    let secret = load(
        &https,
        &format!("{vault_uri}secrets/db-password?api-version=7.5"),
        None,
        Some(&vault_token),
        200,
        REQUESTS_MAX,
    )
    .await;
    drop(dev);

    println!("IMDS probe answer (baseline):   {:8.0} req/s  p99 {:6.2} ms", probe.0, probe.1);
    println!("IMDS cached token:              {:8.0} req/s  p99 {:6.2} ms", cached.0, cached.1);
    println!("  ratio cached / probe:         {:8.2} (target >= 0.6)", cached.0 / probe.0);
    println!(
        "IMDS cached token, user selector:   {:8.0} req/s  p99 {:6.2} ms",
        cached_uid.0, cached_uid.1
    );
    println!("  ratio user selector / none:         {:8.2}", cached_uid.0 / cached.0);
    println!(
        "IMDS cached token, executable selector: {:8.0} req/s  p99 {:6.2} ms",
        cached_exe.0, cached_exe.1
    );
    println!("  ratio executable selector / none:   {:8.2}", cached_exe.0 / cached.0);
    println!(
        "New connection per request, no selectors (mean of a run before and after): {:8.0} req/s  p99 {:6.2} ms",
        fresh_none.0, fresh_none.1
    );
    println!(
        "New connection per request, user selector: {:8.0} req/s  p99 {:6.2} ms",
        fresh_uid.0, fresh_uid.1
    );
    println!("  ratio user selector / none:         {:8.2}", fresh_uid.0 / fresh_none.0);
    println!(
        "New connection per request, executable selector: {:8.0} req/s  p99 {:6.2} ms",
        fresh_exe.0, fresh_exe.1
    );
    println!("  ratio executable selector / none:   {:8.2}", fresh_exe.0 / fresh_none.0);
    println!(
        "IMDS cache miss (agent + server issuance): p50 {:.2} ms, p99 {:.2} ms over {MISSES} requests",
        misses[MISSES / 2].as_secs_f64() * 1000.0,
        misses[MISSES * 99 / 100].as_secs_f64() * 1000.0
    );
    println!(
        "GET /healthz over HTTPS (baseline): {:8.0} req/s  p99 {:6.2} ms",
        healthz.0, healthz.1
    );
    println!("Key Vault get secret:               {:8.0} req/s  p99 {:6.2} ms", secret.0, secret.1);
    println!("  ratio get secret / healthz:       {:8.2} (target >= 0.5)", secret.0 / healthz.0);
}

/// `http://IP:PORT` of a listener's URL.
fn endpoint_url_base(url: &str) -> &str {
    let path = url["http://".len()..].find('/').expect("a path") + "http://".len();
    &url[..path]
}

/// Requests per second and p99 latency (ms) of `url` with `CONNECTIONS` in flight, at most
/// `requests_max` counted.
async fn load(
    client: &reqwest::Client,
    url: &str,
    header: Option<(&'static str, &'static str)>,
    bearer: Option<&str>,
    status: u16,
    requests_max: u64,
) -> (f64, f64) {
    let counted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, url, counted) = (client.clone(), url.to_owned(), counted.clone());
        let bearer = bearer.map(str::to_owned);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < WARMUP + LOAD_TIME
                && counted.load(Ordering::Relaxed) < requests_max
            {
                let sent = Instant::now();
                let mut request = client.get(&url);
                if let Some((name, value)) = header {
                    request = request.header(name, value);
                }
                if let Some(bearer) = &bearer {
                    request = request.bearer_auth(bearer);
                }
                let response = request.send().await.expect("request");
                assert_eq!(response.status().as_u16(), status, "{url}");
                response.bytes().await.expect("body");
                if started.elapsed() > WARMUP {
                    counted.fetch_add(1, Ordering::Relaxed);
                    latencies.push(sent.elapsed());
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    latencies.sort();
    let rate = counted.load(Ordering::Relaxed) as f64 / (started.elapsed() - WARMUP).as_secs_f64();
    let p99 = latencies
        .get(latencies.len() * 99 / 100)
        .map_or(0.0, |latency| latency.as_secs_f64() * 1000.0);
    (rate, p99)
}
