//! Soak (issue 16): mixed traffic for ten minutes from a bounded load generator on loopback —
//! cached IMDS tokens, client-credential tokens, ARM reads, ARM writes (a tag on a resource
//! group, at most ten a second) and Key Vault gets — against one `ambient dev`, reporting errors,
//! p50/p99 per kind, and the server's resident set size each second.
//! Goals: no errors, and memory flat (the mean RSS of the last minute within 10 % of the
//! second minute's).
//!
//! Method: `ambient dev` runs pinned to core 0, this process pinned to core 1 with 16
//! keep-alive connections shared among the kinds. `AMBIENT_SOAK_SECS` sets the duration
//! (default 600; with less than 180 the windows compared are a sixth of the run each instead
//! of minutes). `AMBIENT_SOAK_WRITE_PAUSE_MS` sets the writer's pause between writes (default
//! 100). Run with `cargo bench -p ambient --bench soak`.

// Each bench uses a part of what the benches share.
#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Dev, figure, rss_bytes, status_bytes};

/// Requests sent at most, over all kinds.
const REQUESTS_MAX: u64 = 20_000_000;
/// Pause between two ARM writes of the one writing connection, unless
/// `AMBIENT_SOAK_WRITE_PAUSE_MS` says otherwise.
const WRITE_PAUSE: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Imds,
    Token,
    ArmRead,
    ArmWrite,
    KeyVault,
}

/// How many of the 16 connections each kind gets.
const MIX: [(Kind, usize); 5] = [
    (Kind::Imds, 4),
    (Kind::Token, 2),
    (Kind::ArmRead, 4),
    (Kind::ArmWrite, 1),
    (Kind::KeyVault, 5),
];

fn main() {
    common::pin_self("1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let failed = runtime.block_on(soak());
    std::process::exit(i32::from(failed));
}

/// Runs the soak and prints the report; true when a goal is missed.
async fn soak() -> bool {
    let secs: u64 = std::env::var("AMBIENT_SOAK_SECS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(600)
        .max(12);
    let write_pause = std::env::var("AMBIENT_SOAK_WRITE_PAUSE_MS")
        .ok()
        .and_then(|text| text.parse().ok())
        .map_or(WRITE_PAUSE, Duration::from_millis);
    let window = if secs >= 180 { 60 } else { (secs / 6) as usize };
    let dev = Dev::start(env!("CARGO_BIN_EXE_ambient"), "0", "soak");
    let scene = Arc::new(dev.scene().await);
    let plain = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(common::CONNECTIONS)
        .build()
        .expect("client");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let sent = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for (kind, connections) in MIX {
        for worker in 0..connections {
            let (https, plain, scene, sent) =
                (dev.https.clone(), plain.clone(), scene.clone(), sent.clone());
            let (url, tenant) = (dev.url.clone(), dev.tenant.clone());
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = Vec::new();
                let mut count = 0u64;
                while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < REQUESTS_MAX
                {
                    count += 1;
                    let request = match kind {
                        Kind::Imds => plain
                            .get(format!(
                                "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net",
                                scene.endpoint
                            ))
                            .header("Metadata", "true"),
                        Kind::Token => https
                            .post(format!("{url}/{tenant}/oauth2/v2.0/token"))
                            .form(&[
                                ("grant_type", "client_credentials"),
                                ("client_id", scene.admin_app_id.as_str()),
                                ("client_secret", scene.admin_secret.as_str()),
                                ("scope", "https://management.azure.com/.default"),
                            ]),
                        Kind::ArmRead => https
                            .get(format!("{url}{}?api-version=2024-07-01", scene.vm_id))
                            .bearer_auth(&scene.arm_token),
                        Kind::ArmWrite => https
                            .put(format!("{url}{}?api-version=2024-07-01", scene.group))
                            .bearer_auth(&scene.arm_token)
                            .json(&json!({"location": "local", "tags": {"soak": format!("{worker}-{count}")}})),
                        Kind::KeyVault => https
                            .get(format!("{}secrets/db-password?api-version=7.5", scene.vault_uri))
                            .bearer_auth(&scene.vault_token),
                    };
                    let begun = Instant::now();
                    match request.send().await {
                        Ok(response) => {
                            let status = response.status();
                            let body = response.bytes().await;
                            if !status.is_success() || body.is_err() {
                                errors.push(format!("{status}"));
                            }
                        }
                        Err(error) => errors.push(error.to_string()),
                    }
                    latencies.push(begun.elapsed());
                    if kind == Kind::ArmWrite {
                        tokio::time::sleep(write_pause).await;
                    }
                }
                (kind, latencies, errors)
            }));
        }
    }
    // The server's RSS, once a second, until the load ends.
    let pid = dev.pid();
    let mut rss = Vec::new();
    let mut windows = Vec::new();
    while Instant::now() < deadline {
        rss.push(rss_bytes(pid));
        if rss.len() % window == 0 {
            windows.push((rss.len(), memory_parts(pid), dev.database_bytes()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut results: Vec<(Kind, Vec<Duration>, Vec<String>)> =
        MIX.iter().map(|(kind, _)| (*kind, Vec::new(), Vec::new())).collect();
    for worker in workers {
        let (kind, latencies, errors) = worker.await.expect("worker");
        let slot = results.iter_mut().find(|(k, _, _)| *k == kind).expect("kind");
        slot.1.extend(latencies);
        slot.2.extend(errors);
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_bytes(pid);
    drop(dev);

    println!("soak: {secs} s of mixed traffic, 16 connections (server on core 0, load on core 1)");
    println!(
        "{:<10} {:>10} {:>8} {:>9} {:>9} {:>7}",
        "kind", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let mut error_total = 0;
    for (kind, mut latencies, errors) in results {
        latencies.sort();
        let at = |q: usize| {
            latencies.get(latencies.len() * q / 100).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "{:<10} {:>10} {:>8.0} {:>9.2} {:>9.2} {:>7}",
            format!("{kind:?}"),
            latencies.len(),
            latencies.len() as f64 / elapsed,
            at(50),
            at(99),
            errors.len()
        );
        let kind = format!("{kind:?}").to_lowercase();
        figure(&format!("soak.{kind}.requests"), latencies.len() as f64, "count");
        figure(&format!("soak.{kind}.rate"), latencies.len() as f64 / elapsed, "per_s");
        figure(&format!("soak.{kind}.p50"), at(50), "ms");
        figure(&format!("soak.{kind}.p99"), at(99), "ms");
        figure(&format!("soak.{kind}.errors"), errors.len() as f64, "count");
        if let Some(first) = errors.first() {
            println!("  first error: {first}");
        }
        error_total += errors.len();
    }
    let mean = |samples: &[u64]| samples.iter().sum::<u64>() as f64 / samples.len().max(1) as f64;
    let second = mean(rss.get(window..2 * window).unwrap_or_default());
    let last = mean(&rss[rss.len().saturating_sub(window)..]);
    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    println!(
        "server RSS: {:.1} MiB in the second window of {window} s, {:.1} MiB in the last ({:+.1} %), {:.1} MiB at peak, {:.1} MiB 2 s after the load",
        mib(second),
        mib(last),
        (last / second - 1.0) * 100.0,
        mib(rss.iter().copied().max().unwrap_or(0) as f64),
        mib(rss_after as f64)
    );
    for (second, (anonymous, file), database) in windows {
        println!(
            "  at {second:>4} s: server RSS {:.1} MiB ({:.1} anonymous, {:.1} file-backed), database {:.1} MiB",
            mib((anonymous + file) as f64),
            mib(anonymous as f64),
            mib(file as f64),
            mib(database as f64)
        );
        figure(&format!("soak.at.{second}.anonymous"), mib(anonymous as f64), "MiB");
        figure(&format!("soak.at.{second}.file"), mib(file as f64), "MiB");
        figure(&format!("soak.at.{second}.database"), mib(database as f64), "MiB");
    }
    let flat = last <= second * 1.10;
    figure("soak.secs", secs as f64, "s");
    figure("soak.rss_window", window as f64, "s");
    figure("soak.rss_second", mib(second), "MiB");
    figure("soak.rss_last", mib(last), "MiB");
    figure("soak.rss_peak", mib(rss.iter().copied().max().unwrap_or(0) as f64), "MiB");
    figure("soak.rss_after", mib(rss_after as f64), "MiB");
    figure("soak.errors", error_total as f64, "count");
    println!("goals: errors {error_total} (goal 0); memory flat: {flat}");
    error_total > 0 || !flat
}

/// The process's resident anonymous and file-backed bytes, from `/proc/PID/status`.
fn memory_parts(pid: u32) -> (u64, u64) {
    (status_bytes(pid, "RssAnon"), status_bytes(pid, "RssFile") + status_bytes(pid, "RssShmem"))
}
