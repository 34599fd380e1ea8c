//! Client-credential tokens per second on one core, against the bare RS256 signing rate of a
//! key of the same size measured in the same run; prints the ratio (target: at least 0.85).
//!
//! Method: the baseline signs in a loop on one thread for a fixed time. The server then runs
//! in its own process on a single-threaded runtime pinned to core 0 (with everything it
//! spawns), and a load generator pinned to core 1 keeps 16 keep-alive HTTPS connections busy
//! posting `grant_type=client_credentials` with the bootstrap admin's secret, for a fixed time
//! and a bounded number of requests; baseline and load take turns five times. The server is
//! stopped by its pid at the end.
//!
//! Then, on a machine with two cores or more, the same with the server on a two-thread runtime
//! on cores 0 and 1 (goal: 1.8x the one-core rate). The load generator then shares those cores,
//! so the bench also reads the CPU time the server and the load generator used (`/proc/PID/stat`)
//! and prints the server's tokens per CPU second on two cores against one, and the rate two
//! cores of its own would give at that efficiency. Run with
//! `cargo bench -p server --bench token_issuance`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BASELINE_TIME: Duration = Duration::from_secs(2);
const LOAD_TIME: Duration = Duration::from_secs(3);
const WARMUP: Duration = Duration::from_secs(1);
/// Baseline and load are measured in turn this many times each, so that other load on the
/// machine weighs on both alike.
const ROUNDS: usize = 5;
const CONNECTIONS: usize = 16;
const REQUESTS_MAX: u64 = 200_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--baseline") => println!("{}", bare_signing_rate(threads(args.get(2)))),
        Some("--serve") => serve(std::path::Path::new(&args[2]), threads(args.get(3))),
        Some("--load") => {
            let server_pid: u32 = args[7].parse().expect("server pid");
            let load = load(
                &args[2],
                &args[3],
                &args[4],
                &args[5],
                std::path::Path::new(&args[6]),
                server_pid,
            );
            println!("{} {} {}", load.rate, load.server_cpu, load.load_cpu);
        }
        _ => orchestrate(),
    }
}

/// Runs each part as its own process, pinned with `taskset`: on one core, the baseline and the
/// server on core 0 and the load generator on core 1; then, when the machine has two cores,
/// everything on both (the load generator then shares the server's cores).
fn orchestrate() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one = measure("0", if cores > 1 { "1" } else { "0" }, 1);
    println!("bare RS256 signing:        {:8.0} signatures/s (core 0)", one.baseline);
    println!(
        "client-credential tokens:  {:8.0} tokens/s (server pinned to core 0, {CONNECTIONS} connections from core 1)",
        one.rate
    );
    println!("ratio:                     {:8.2} (target >= 0.85)", one.rate / one.baseline);
    println!("ratio per round:           {}", one.rounds.join(", "));
    println!(
        "cores kept busy:           server {:.2}, load generator {:.2}; {:.0} tokens per server CPU second",
        one.server_cpu,
        one.load_cpu,
        one.per_server_core()
    );
    figure("issuance.signing", one.baseline, "per_s");
    figure("issuance.tokens", one.rate, "per_s");
    figure("issuance.server_cpu", one.server_cpu, "cores");
    figure("issuance.load_cpu", one.load_cpu, "cores");
    if cores < 2 {
        println!("two cores: not measured (this machine has one)");
        return;
    }
    let two = measure("0,1", "0,1", 2);
    println!(
        "two cores: {:8.0} tokens/s ({:.2}x one core; bare signing on two threads {:.0}/s, {:.2}x one), load generator on the same two cores",
        two.rate,
        two.rate / one.rate,
        two.baseline,
        two.baseline / one.baseline
    );
    // The load generator shares the two cores, so the server cannot have both; what it does with
    // the CPU it gets shows how it would scale with cores of its own.
    println!(
        "two cores kept busy: server {:.2}, load generator {:.2}; {:.0} tokens per server CPU second ({:.2} of one core's), {:.0} tokens/s if the server had both cores ({:.2}x one core)",
        two.server_cpu,
        two.load_cpu,
        two.per_server_core(),
        two.per_server_core() / one.per_server_core(),
        2.0 * two.per_server_core(),
        2.0 * two.per_server_core() / one.rate
    );
    figure("issuance.two_cores.signing", two.baseline, "per_s");
    figure("issuance.two_cores.tokens", two.rate, "per_s");
    figure("issuance.two_cores.server_cpu", two.server_cpu, "cores");
    figure("issuance.two_cores.load_cpu", two.load_cpu, "cores");
}

/// One configuration's mean rates over [`ROUNDS`] turns of baseline and load.
struct Measured {
    baseline: f64,
    rate: f64,
    /// Cores the server kept busy during the load (CPU seconds per second).
    server_cpu: f64,
    /// Cores the load generator kept busy.
    load_cpu: f64,
    rounds: Vec<String>,
}

impl Measured {
    /// Tokens per CPU second of the server.
    fn per_server_core(&self) -> f64 {
        self.rate / self.server_cpu
    }
}

/// What one load run measured after its warm-up.
struct Load {
    rate: f64,
    server_cpu: f64,
    load_cpu: f64,
}

fn measure(server_cores: &str, load_cores: &str, threads: usize) -> Measured {
    let me = std::env::current_exe().expect("own path");
    let pinned = |cores: &str| {
        let mut command = std::process::Command::new("taskset");
        command.arg("-c").arg(cores).arg(&me);
        command
    };
    let baseline_rate = || -> f64 {
        read_line(
            &mut pinned(server_cores)
                .arg("--baseline")
                .arg(threads.to_string())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("taskset"),
        )
        .parse()
        .expect("baseline rate")
    };
    let dir = std::env::temp_dir().join(format!("ambient-bench-{}-{threads}", std::process::id()));
    let mut server = pinned(server_cores)
        .arg("--serve")
        .arg(&dir)
        .arg(threads.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start server");
    let ready = read_line(&mut server);
    let parts: Vec<&str> = ready.split_whitespace().collect();
    let (base_url, tenant, app_id) = (parts[0], parts[1], parts[2]);
    let admin: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("admin.json")).expect("admin.json"))
            .expect("admin json");
    let secret = admin["password"].as_str().expect("password");
    let (mut baselines, mut rates, mut server_cpu, mut load_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        baselines.push(baseline_rate());
        let output = pinned(load_cores)
            .args(["--load", base_url, tenant, app_id, secret])
            .arg(dir.join("ca.pem"))
            .arg(server.id().to_string())
            .output()
            .expect("run load");
        assert!(
            output.status.success(),
            "load failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let values: Vec<f64> =
            stdout.split_whitespace().map(|value| value.parse().expect("load figure")).collect();
        rates.push(values[0]);
        server_cpu.push(values[1]);
        load_cpu.push(values[2]);
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    let rounds = baselines
        .iter()
        .zip(&rates)
        .map(|(baseline, rate)| format!("{:.2}", rate / baseline))
        .collect();
    Measured {
        baseline: mean(&baselines),
        rate: mean(&rates),
        server_cpu: mean(&server_cpu),
        load_cpu: mean(&load_cpu),
        rounds,
    }
}

/// CPU seconds (user and system, all threads) that process `pid` has used, from
/// `/proc/PID/stat` in clock ticks of 1/100 s (Linux's fixed `USER_HZ`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> =
        stat.rsplit_once(')').expect("stat format").1.split_whitespace().collect();
    // utime and stime are the 14th and 15th fields of the line, 12th and 13th after `)`.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}

fn read_line(child: &mut std::process::Child) -> String {
    use std::io::BufRead as _;
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).expect("read child output");
    line.trim().to_owned()
}

fn threads(arg: Option<&String>) -> usize {
    arg.and_then(|text| text.parse().ok()).unwrap_or(1)
}

/// The server on a runtime of `threads` threads (the caller's own thread when 1); prints
/// `URL TENANT ADMIN_APP_ID` when ready.
fn serve(dir: &std::path::Path, threads: usize) {
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }
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
        println!("{} {} {}", running.base_url(), deployment.tenant_id, deployment.admin_app_id);
        std::future::pending::<()>().await;
    });
}

/// Keeps `CONNECTIONS` requests in flight for `LOAD_TIME` (bounded by `REQUESTS_MAX`) and
/// returns tokens per second after the warm-up, with the cores the server (`server_pid`) and
/// this process kept busy meanwhile.
fn load(
    base_url: &str,
    tenant: &str,
    app_id: &str,
    secret: &str,
    ca_path: &std::path::Path,
    server_pid: u32,
) -> Load {
    let ca = std::fs::read(ca_path).expect("ca.pem");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("ca")])
            .pool_max_idle_per_host(CONNECTIONS)
            .build()
            .expect("client");
        let url = format!("{base_url}/{tenant}/oauth2/v2.0/token");
        let form = Arc::new(vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_id".to_owned(), app_id.to_owned()),
            ("client_secret".to_owned(), secret.to_owned()),
            ("scope".to_owned(), "https://management.azure.com/.default".to_owned()),
        ]);
        let counted = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let own_pid = std::process::id();
        let mut workers = Vec::new();
        for _ in 0..CONNECTIONS {
            let (client, url, form, counted) =
                (client.clone(), url.clone(), form.clone(), counted.clone());
            workers.push(tokio::spawn(async move {
                while started.elapsed() < WARMUP + LOAD_TIME
                    && counted.load(Ordering::Relaxed) < REQUESTS_MAX
                {
                    let response =
                        client.post(&url).form(form.as_slice()).send().await.expect("request");
                    assert!(
                        response.status().is_success(),
                        "token request failed: {}",
                        response.status()
                    );
                    response.bytes().await.expect("body");
                    if started.elapsed() > WARMUP {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        tokio::time::sleep(WARMUP).await;
        let cpu_before = (cpu_seconds(server_pid), cpu_seconds(own_pid));
        for worker in workers {
            worker.await.expect("worker");
        }
        let measured = (started.elapsed() - WARMUP).as_secs_f64();
        let cpu_after = (cpu_seconds(server_pid), cpu_seconds(own_pid));
        Load {
            rate: counted.load(Ordering::Relaxed) as f64 / measured,
            server_cpu: (cpu_after.0 - cpu_before.0) / measured,
            load_cpu: (cpu_after.1 - cpu_before.1) / measured,
        }
    })
}

/// Signatures per second of `threads` threads signing in a loop, each with its own key.
fn bare_signing_rate(threads: usize) -> f64 {
    let rates: Vec<std::thread::JoinHandle<f64>> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let key = crypto::jws::RsaSigningKey::generate_2048().expect("key");
                let message = [7u8; 400];
                let begun = Instant::now();
                let mut count = 0u64;
                while begun.elapsed() < BASELINE_TIME {
                    std::hint::black_box(key.sign_rs256(&message).expect("sign"));
                    count += 1;
                }
                count as f64 / begun.elapsed().as_secs_f64()
            })
        })
        .collect();
    rates.into_iter().map(|handle| handle.join().expect("signer")).sum()
}

/// One machine-readable line per figure, which `cargo xtask bench` reads.
fn figure(name: &str, value: f64, unit: &str) {
    println!("BENCH {name}={value} unit={unit}");
}
