//! The two data paths workloads hit all day, each against a bare JSON answer from the same
//! listener in the same run:
//!
//! - cached IMDS token requests on a resource's metadata listener, against the listener's bare
//!   probe answer (`GET /metadata/identity/oauth2/token` without `Metadata: true`, a small JSON
//!   400 through the same stack); plus the latency of a cache miss (a new audience each time,
//!   so the agent asks the server and the server signs);
//! - workload attestation: cached IMDS token requests on listeners of resources with a `user`
//!   selector (the socket's owner, one sock_diag look-up) and with an `executable` selector (also
//!   the scan of `/proc/*/fd` for the process holding the socket), against the resource
//!   without selectors; on keep-alive connections (attested once per connection) and with a
//!   new connection for every request (attested every time);
//! - Key Vault `get secret` (token validation, RBAC, decryption) against `GET /healthz` on the
//!   server's HTTPS listener.
//!
//! Method: `ambient dev` runs pinned to core 0 (server and agent share that core); this process
//! re-runs itself pinned to core 1 and keeps 16 keep-alive connections busy, with a bounded number
//! of requests, in six one-second windows per kind, alternating with its baseline's windows so
//! that other load on the machine weighs on both alike. Run with
//! `cargo bench -p ambient --bench data_paths`.

// Each bench uses a part of what the benches share.
#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{CONNECTIONS, Dev, figure};

/// Each pair is measured in `ROUNDS` alternating windows of `WINDOW`, so that a change in the
/// machine's background load falls on the baseline and the subject alike.
const ROUNDS: u32 = 6;
const WINDOW: Duration = Duration::from_secs(1);
const WARMUP: Duration = Duration::from_millis(500);
const REQUESTS_MAX: u64 = 200_000;
const MISSES: usize = 200;
/// Requests of each window with a new connection per request (each leaves a port in TIME_WAIT).
const FRESH_REQUESTS_MAX: u64 = 2_000;

fn main() {
    common::pin_self("1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    // `AMBIENT_BENCH_BINARIES=old:new` measures other builds of `ambient` one after the other
    // in this run (e.g. before and after a change); by default the one this bench was built with.
    let binaries = std::env::var("AMBIENT_BENCH_BINARIES")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ambient").to_owned());
    for binary in binaries.split(':') {
        println!("{binary}");
        runtime.block_on(bench(binary));
    }
}

async fn bench(binary: &str) {
    let dev = Dev::start(binary, "0", "data");
    let scene = dev.scene().await;
    let https = &dev.https;
    let (url, endpoint, vault_uri, vault_token) =
        (&dev.url, &scene.endpoint, &scene.vault_uri, &scene.vault_token);
    let http =
        reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");
    let token_url_at = |endpoint: &str| {
        format!(
            "{endpoint}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
        )
    };
    let token_url = token_url_at(endpoint);
    let probe_url = format!("{endpoint}/metadata/identity/oauth2/token");

    let imds = |client, url, status, requests_max| Target {
        client,
        url,
        header: (status == 200).then_some(("Metadata", "true")),
        bearer: None,
        status,
        requests_max,
    };
    let (probe, cached) = paired(
        imds(&http, &probe_url, 400, REQUESTS_MAX),
        imds(&http, &token_url, 200, REQUESTS_MAX),
    )
    .await;

    // The same VM with workload selectors matching this process: its user, and its executable.
    use std::os::unix::fs::MetadataExt as _;
    let uid = std::fs::metadata("/proc/self").expect("/proc/self").uid();
    let executable = std::fs::read_link("/proc/self/exe").expect("own executable");
    let mut selected = Vec::new();
    for (name, selectors) in [
        ("bench-vm-uid", json!({"user": uid.to_string()})),
        ("bench-vm-exe", json!({"executable": executable.display().to_string()})),
    ] {
        let vm = dev
            .put(
                &scene.arm_token,
                &format!("{}/providers/Microsoft.Compute/virtualMachines/{name}", scene.group),
                json!({"location": "local", "identity": {"type": "SystemAssigned"},
                       "properties": {"ambient": {"workloadSelectors": selectors}}}),
            )
            .await;
        let endpoint = dev.endpoint_of(&scene.arm_token, vm["id"].as_str().expect("id")).await;
        selected.push(token_url_at(&endpoint));
    }
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let mut attestation = Vec::new();
    for (selector, url) in ["user", "executable"].into_iter().zip(&selected) {
        let kept =
            paired(imds(&http, &token_url, 200, REQUESTS_MAX), imds(&http, url, 200, REQUESTS_MAX))
                .await;
        let new = paired(
            imds(&fresh, &token_url, 200, FRESH_REQUESTS_MAX),
            imds(&fresh, url, 200, FRESH_REQUESTS_MAX),
        )
        .await;
        attestation.push((selector, kept, new));
    }
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
    let (healthz, secret) = paired(
        Target {
            client: https,
            url: &format!("{url}/healthz"),
            header: None,
            bearer: None,
            status: 200,
            requests_max: REQUESTS_MAX,
        },
        Target {
            client: https,
            url: &format!("{vault_uri}secrets/db-password?api-version=7.5"),
            header: None,
            bearer: Some(vault_token),
            status: 200,
            requests_max: REQUESTS_MAX,
        },
    )
    .await;
    drop(dev);

    println!("IMDS probe answer (baseline):   {:8.0} req/s  p99 {:6.2} ms", probe.0, probe.1);
    println!("IMDS cached token:              {:8.0} req/s  p99 {:6.2} ms", cached.0, cached.1);
    println!("  ratio cached / probe:         {:8.2} (target >= 0.6)", cached.0 / probe.0);
    figure("imds.probe", probe.0, "per_s");
    figure("imds.cached", cached.0, "per_s");
    figure("imds.cached_p99", cached.1, "ms");
    for (selector, kept, new) in &attestation {
        println!(
            "IMDS cached token, {selector} selector, keep-alive: {:8.0} req/s against {:8.0} without selectors: ratio {:.2}",
            kept.1.0,
            kept.0.0,
            kept.1.0 / kept.0.0
        );
        println!(
            "IMDS cached token, {selector} selector, new connection per request: {:8.0} req/s against {:8.0}: ratio {:.2}",
            new.1.0,
            new.0.0,
            new.1.0 / new.0.0
        );
        figure(&format!("attestation.{selector}.kept"), kept.1.0, "per_s");
        figure(&format!("attestation.{selector}.kept_baseline"), kept.0.0, "per_s");
        figure(&format!("attestation.{selector}.new"), new.1.0, "per_s");
        figure(&format!("attestation.{selector}.new_baseline"), new.0.0, "per_s");
    }
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
    figure("imds.miss_p50", misses[MISSES / 2].as_secs_f64() * 1000.0, "ms");
    figure("imds.miss_p99", misses[MISSES * 99 / 100].as_secs_f64() * 1000.0, "ms");
    figure("vault.healthz", healthz.0, "per_s");
    figure("vault.get_secret", secret.0, "per_s");
    figure("vault.get_secret_p99", secret.1, "ms");
}

/// One kind of request under load.
struct Target<'a> {
    client: &'a reqwest::Client,
    url: &'a str,
    header: Option<(&'static str, &'static str)>,
    bearer: Option<&'a str>,
    status: u16,
    /// Requests counted at most per window.
    requests_max: u64,
}

/// Requests per second and p99 latency (ms) of `baseline` and of `subject`, each measured in
/// [`ROUNDS`] windows taken in turn after one warm-up window each.
async fn paired(baseline: Target<'_>, subject: Target<'_>) -> ((f64, f64), (f64, f64)) {
    load(&baseline, WARMUP).await;
    load(&subject, WARMUP).await;
    let mut totals = [(0u64, Duration::ZERO, Vec::new()), (0u64, Duration::ZERO, Vec::new())];
    for _ in 0..ROUNDS {
        for (target, total) in [&baseline, &subject].into_iter().zip(totals.iter_mut()) {
            let started = Instant::now();
            let latencies = load(target, WINDOW).await;
            total.0 += latencies.len() as u64;
            total.1 += started.elapsed();
            total.2.extend(latencies);
        }
    }
    let [baseline, subject] = totals.map(|(count, elapsed, mut latencies)| {
        latencies.sort();
        let p99 = latencies
            .get(latencies.len() * 99 / 100)
            .map_or(0.0, |latency| latency.as_secs_f64() * 1000.0);
        (count as f64 / elapsed.as_secs_f64(), p99)
    });
    (baseline, subject)
}

/// The latencies of the requests `CONNECTIONS` keep-alive connections complete in `window`
/// (at most [`REQUESTS_MAX`]).
async fn load(target: &Target<'_>, window: Duration) -> Vec<Duration> {
    let counted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, url, counted) =
            (target.client.clone(), target.url.to_owned(), counted.clone());
        let (header, status, requests_max) = (target.header, target.status, target.requests_max);
        let bearer = target.bearer.map(str::to_owned);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < window && counted.load(Ordering::Relaxed) < requests_max {
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
                counted.fetch_add(1, Ordering::Relaxed);
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    latencies
}
