//! Client-credential tokens per second on one core, against the bare RS256 signing rate of a
//! key of the same size measured in the same run; prints the ratio (target: at least 0.85).
//!
//! Method: the baseline signs in a loop on one thread for a fixed time. The server then runs
//! in its own process on a single-threaded runtime pinned to core 0 (with everything it
//! spawns), and a load generator pinned to core 1 (`test_support::load`, a minimal HTTP/1.1
//! client over rustls, so that it takes little CPU) keeps 16 keep-alive HTTPS connections busy posting
//! `grant_type=client_credentials` with the bootstrap admin's secret, for a fixed time and a
//! bounded number of requests; baseline and load take turns five times. The server is stopped
//! by its pid at the end.
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
            let waiting = Waiting::parse(args.get(8).map_or("sleep", String::as_str));
            let load = load(
                &args[2],
                &args[3],
                &args[4],
                &args[5],
                std::path::Path::new(&args[6]),
                server_pid,
                waiting,
            );
            println!("{} {} {}", load.rate, load.server_cpu, load.load_cpu);
        }
        _ => orchestrate(),
    }
}

/// How the load generator waits for answers.
///
/// On loopback the kernel delivers each answer to the client in the context of the server's
/// write, and when the client is asleep in `epoll_wait` that includes waking it on its own core
/// (an inter-processor interrupt, which under virtualization exits to the hypervisor). A client
/// on another machine costs the server none of that. A client that polls, on a core of its own,
/// is never asleep, so the server's core pays for its own work and the loopback delivery only.
#[derive(Clone, Copy, PartialEq)]
enum Waiting {
    /// Never sleeps: one task yields in a loop, so the runtime polls its sockets without
    /// blocking. Takes its whole core.
    Poll,
    /// Sleeps in `epoll_wait` until an answer comes, as most clients do.
    Sleep,
}

impl Waiting {
    fn parse(text: &str) -> Self {
        match text {
            "poll" => Self::Poll,
            "sleep" => Self::Sleep,
            other => panic!("unknown waiting {other:?}: poll or sleep"),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Sleep => "sleep",
        }
    }
}

/// Runs each part as its own process, pinned with `taskset`: on one core, the baseline and the
/// server on core 0 and the load generator on core 1, once polling and once sleeping; then, when
/// the machine has two cores, everything on both with a sleeping load generator (which then
/// shares the server's cores, so it must not poll).
fn orchestrate() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one = measure("0", if cores > 1 { "1" } else { "0" }, 1, &[Waiting::Poll, Waiting::Sleep]);
    let (baseline, polled, slept) = (one.baseline(), one.load(0), one.load(1));
    println!("bare RS256 signing:        {baseline:8.0} signatures/s (core 0)");
    println!(
        "client-credential tokens:  {:8.0} tokens/s (server pinned to core 0, {CONNECTIONS} connections from a polling client on core 1)",
        polled.rate
    );
    println!("ratio:                     {:8.2} (target >= 0.85)", polled.rate / baseline);
    println!("ratio per round:           {}", one.rounds(0));
    println!(
        "with a sleeping client:    {:8.0} tokens/s, ratio {:.2} (per round {}): the kernel's wake-ups of the client on loopback are charged to the server's core",
        slept.rate,
        slept.rate / baseline,
        one.rounds(1)
    );
    println!(
        "cores kept busy:           server {:.2}, load generator {:.2} polling, {:.2} sleeping; {:.0} tokens per server CPU second (sleeping client)",
        slept.server_cpu,
        polled.load_cpu,
        slept.load_cpu,
        slept.per_server_core()
    );
    figure("issuance.signing", baseline, "per_s");
    figure("issuance.tokens", polled.rate, "per_s");
    figure("issuance.tokens_sleeping_client", slept.rate, "per_s");
    figure("issuance.server_cpu", slept.server_cpu, "cores");
    figure("issuance.load_cpu", slept.load_cpu, "cores");
    if cores < 2 {
        println!("two cores: not measured (this machine has one)");
        return;
    }
    let two = measure("0,1", "0,1", 2, &[Waiting::Sleep]);
    let both = two.load(0);
    println!(
        "two cores: {:8.0} tokens/s ({:.2}x one core with a sleeping client; bare signing on two threads {:.0}/s, {:.2}x one), load generator on the same two cores",
        both.rate,
        both.rate / slept.rate,
        two.baseline(),
        two.baseline() / baseline
    );
    // The load generator shares the two cores, so the server cannot have both; what it does with
    // the CPU it gets shows how it would scale with cores of its own.
    println!(
        "two cores kept busy: server {:.2}, load generator {:.2}; {:.0} tokens per server CPU second ({:.2} of one core's), {:.0} tokens/s if the server had both cores ({:.2}x one core)",
        both.server_cpu,
        both.load_cpu,
        both.per_server_core(),
        both.per_server_core() / slept.per_server_core(),
        2.0 * both.per_server_core(),
        2.0 * both.per_server_core() / slept.rate
    );
    figure("issuance.two_cores.signing", two.baseline(), "per_s");
    figure("issuance.two_cores.tokens", both.rate, "per_s");
    figure("issuance.two_cores.server_cpu", both.server_cpu, "cores");
    figure("issuance.two_cores.load_cpu", both.load_cpu, "cores");
}

/// One configuration's [`ROUNDS`] turns of baseline and each load.
struct Measured {
    /// The baseline's rate in each round.
    baselines: Vec<f64>,
    /// One per kind of load generator asked for, in that order: its run in each round.
    runs: Vec<Vec<Load>>,
}

impl Measured {
    /// The baseline's mean rate.
    fn baseline(&self) -> f64 {
        mean(self.baselines.iter().copied())
    }

    /// The mean of load `index`'s runs.
    fn load(&self, index: usize) -> Load {
        let runs = &self.runs[index];
        Load {
            rate: mean(runs.iter().map(|run| run.rate)),
            server_cpu: mean(runs.iter().map(|run| run.server_cpu)),
            load_cpu: mean(runs.iter().map(|run| run.load_cpu)),
        }
    }

    /// The ratio of load `index` to the baseline in each round.
    fn rounds(&self, index: usize) -> String {
        self.baselines
            .iter()
            .zip(&self.runs[index])
            .map(|(baseline, run)| format!("{:.2}", run.rate / baseline))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn mean(values: impl ExactSizeIterator<Item = f64>) -> f64 {
    let count = values.len();
    values.sum::<f64>() / count as f64
}

/// What one load run measured after its warm-up, or the mean of several.
struct Load {
    rate: f64,
    /// Cores the server kept busy during the load (CPU seconds per second).
    server_cpu: f64,
    /// Cores the load generator kept busy.
    load_cpu: f64,
}

impl Load {
    /// Tokens per CPU second of the server.
    fn per_server_core(&self) -> f64 {
        self.rate / self.server_cpu
    }
}

fn measure(server_cores: &str, load_cores: &str, threads: usize, kinds: &[Waiting]) -> Measured {
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
    let mut baselines = Vec::new();
    let mut runs: Vec<Vec<Load>> = kinds.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        baselines.push(baseline_rate());
        for (kind, runs) in kinds.iter().zip(&mut runs) {
            let output = pinned(load_cores)
                .args(["--load", base_url, tenant, app_id, secret])
                .arg(dir.join("ca.pem"))
                .arg(server.id().to_string())
                .arg(kind.as_str())
                .output()
                .expect("run load");
            assert!(
                output.status.success(),
                "load failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let stdout = String::from_utf8_lossy(&output.stdout);
            let values: Vec<f64> = stdout
                .split_whitespace()
                .map(|value| value.parse().expect("load figure"))
                .collect();
            runs.push(Load { rate: values[0], server_cpu: values[1], load_cpu: values[2] });
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    Measured { baselines, runs }
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
///
/// The generator runs on one thread with `test_support::load`'s minimal HTTP/1.1 client, which
/// verifies the server's certificate like any client but takes little CPU.
fn load(
    base_url: &str,
    tenant: &str,
    app_id: &str,
    secret: &str,
    ca_path: &std::path::Path,
    server_pid: u32,
    waiting: Waiting,
) -> Load {
    let ca = std::fs::read(ca_path).expect("ca.pem");
    let authority = base_url.strip_prefix("https://").expect("https URL").trim_end_matches('/');
    let (host, port) = authority.rsplit_once(':').expect("host:port");
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port.parse().expect("port")));
    let request: Arc<[u8]> = test_support::load::form_post(
        authority,
        &format!("/{tenant}/oauth2/v2.0/token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", app_id),
            ("client_secret", secret),
            ("scope", "https://management.azure.com/.default"),
        ],
    )
    .into();
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let counted = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        // Whether the load goes on: within its time and its bound of requests.
        let running = move |counted: &AtomicU64| {
            started.elapsed() < WARMUP + LOAD_TIME && counted.load(Ordering::Relaxed) < REQUESTS_MAX
        };
        let own_pid = std::process::id();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..CONNECTIONS {
            let mut connection =
                test_support::load::Connection::connect(address, host, &ca).await.expect("connect");
            let (request, counted) = (request.clone(), counted.clone());
            workers.spawn(async move {
                while running(&counted) {
                    let status = connection.exchange(&request).await.expect("token request");
                    assert_eq!(status, 200, "token request failed");
                    if started.elapsed() > WARMUP {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        if waiting == Waiting::Poll {
            let counted = counted.clone();
            tokio::spawn(async move {
                while running(&counted) {
                    tokio::task::yield_now().await;
                }
            });
        }
        tokio::time::sleep(WARMUP.saturating_sub(started.elapsed())).await;
        let cpu_before = (cpu_seconds(server_pid), cpu_seconds(own_pid));
        while let Some(done) = workers.join_next().await {
            done.expect("worker");
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
