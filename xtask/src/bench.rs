//! `cargo xtask bench [--quick]`: runs every benchmark with `cargo bench` (release), reads the
//! `BENCH name=value unit=...` lines each prints beside its human report, and writes
//! `docs/benchmarks-report.md` (the machine, then one table per section, each figure beside its
//! baseline from the same run) and SVG line charts of cost against size in `docs/charts/`.
//! `--quick` runs small sizes and finishes in a few minutes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Where the report goes, from the workspace root.
pub const REPORT_PATH: &str = "docs/benchmarks-report.md";
/// Where the charts go, from the workspace root.
pub const CHARTS_DIR: &str = "docs/charts";

/// One figure a benchmark printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub value: f64,
    pub unit: String,
    /// A human name, when the figure's name is made from one.
    pub label: Option<String>,
    /// Its line in its benchmark's output, so that tables keep the benchmark's order.
    pub order: usize,
}

/// Figures by name, from every run.
pub type Figures = BTreeMap<String, Figure>;

/// One `cargo bench` run.
pub struct Run {
    pub package: &'static str,
    pub bench: &'static str,
    pub env: Vec<(&'static str, String)>,
    pub elapsed: Duration,
    pub success: bool,
}

impl Run {
    fn command(&self) -> String {
        let env: String = self.env.iter().map(|(key, value)| format!("{key}={value} ")).collect();
        format!("{env}cargo bench -p {} --bench {}", self.package, self.bench)
    }
}

/// The machine and the code that were measured.
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory: String,
    pub kernel: String,
    pub date: String,
    pub commit: String,
}

/// A benchmark to run: package, bench target and environment.
type Job = (&'static str, &'static str, Vec<(&'static str, String)>);

/// An operation's label and its (size, median µs) points.
type Operation = (String, Vec<(u64, f64)>);

/// The sizes of one run.
struct Plan {
    growth_sizes: &'static str,
    agents: &'static [u32],
    soak_secs: u32,
}

const QUICK: Plan = Plan { growth_sizes: "10,1000,10000", agents: &[10, 100], soak_secs: 60 };
const FULL: Plan =
    Plan { growth_sizes: "10,10000,1000000", agents: &[10, 100, 1000], soak_secs: 600 };

/// Runs every benchmark and writes the report and charts under `root`.
pub fn bench(root: &Path, quick: bool) -> Result<()> {
    let plan = if quick { QUICK } else { FULL };
    let mut jobs: Vec<Job> = vec![
        ("server", "token_issuance", vec![]),
        ("server", "authorization", vec![]),
        ("ambient", "growth", vec![("AMBIENT_GROWTH_SIZES", plan.growth_sizes.to_owned())]),
    ];
    for agents in plan.agents {
        jobs.push(("server", "hosts", vec![("AMBIENT_BENCH_AGENTS", agents.to_string())]));
    }
    jobs.extend([
        ("ambient", "footprint", vec![]),
        ("ambient", "data_paths", vec![]),
        ("ambient", "nodes", vec![]),
        ("ambient", "soak", vec![("AMBIENT_SOAK_SECS", plan.soak_secs.to_string())]),
    ]);
    // The code measured, and when the run began.
    let machine = machine(root);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // Everything is built first, so that each run's time is its own: each package's benches as
    // its runs will build them, and `ambient-agent`, whose idle memory `footprint` reads.
    let build_started = Instant::now();
    let mut builds: Vec<Vec<&str>> = Vec::new();
    for (package, _, _) in &jobs {
        let build = vec!["bench", "-p", package, "--no-run"];
        if !builds.contains(&build) {
            builds.push(build);
        }
    }
    builds.push(vec!["build", "--release", "-p", "ambient-agent"]);
    for args in &builds {
        eprintln!("xtask: cargo {}", args.join(" "));
        let status = Command::new(&cargo)
            .args(args)
            .current_dir(root)
            .status()
            .with_context(|| format!("run cargo {}", args.join(" ")))?;
        anyhow::ensure!(status.success(), "cargo {} failed ({status})", args.join(" "));
    }
    let build = build_started.elapsed();
    let mut figures = Figures::new();
    let mut runs = Vec::new();
    for (package, bench, env) in jobs {
        let mut run = Run { package, bench, env, elapsed: Duration::ZERO, success: false };
        eprintln!("xtask: {}", run.command());
        let started = Instant::now();
        let output = Command::new(&cargo)
            .args(["bench", "-p", package, "--bench", bench])
            .envs(run.env.iter().map(|(key, value)| (*key, value)))
            .current_dir(root)
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("run {}", run.command()))?;
        run.elapsed = started.elapsed();
        run.success = output.status.success();
        let stdout = String::from_utf8_lossy(&output.stdout);
        print!("{stdout}");
        if !run.success {
            eprintln!(
                "xtask: {} failed ({}); its figures are left out",
                run.command(),
                output.status
            );
        }
        figures.extend(parse_figures(&stdout));
        runs.push(run);
    }
    let charts = charts(&figures);
    let charts_dir = root.join(CHARTS_DIR);
    std::fs::create_dir_all(&charts_dir).with_context(|| format!("create {CHARTS_DIR}"))?;
    for (file, chart) in &charts {
        std::fs::write(charts_dir.join(file), svg(chart))
            .with_context(|| format!("write {CHARTS_DIR}/{file}"))?;
    }
    let report = report(&machine, build, &runs, &figures, quick);
    std::fs::write(root.join(REPORT_PATH), report)
        .with_context(|| format!("write {REPORT_PATH}"))?;
    eprintln!("xtask: wrote {REPORT_PATH} and {} chart(s) in {CHARTS_DIR}", charts.len());
    Ok(())
}

/// The figures in a benchmark's output: lines `BENCH name=value unit=u`, optionally followed by
/// `label=` and free text to the end of the line. Other lines are the human report and are
/// skipped, as are figures whose value is not a number.
pub fn parse_figures(output: &str) -> Figures {
    let mut figures = Figures::new();
    for (order, line) in output.lines().enumerate() {
        let Some(rest) = line.trim().strip_prefix("BENCH ") else { continue };
        let (rest, label) = match rest.split_once(" label=") {
            Some((rest, label)) => (rest, Some(label.trim().to_owned())),
            None => (rest, None),
        };
        let mut words = rest.split_whitespace();
        let Some((name, value)) = words.next().and_then(|word| word.split_once('=')) else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else { continue };
        if !value.is_finite() {
            continue;
        }
        let unit = words.find_map(|word| word.strip_prefix("unit=")).unwrap_or("").to_owned();
        figures.insert(name.to_owned(), Figure { value, unit, label, order });
    }
    figures
}

fn machine(root: &Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cores = cpuinfo.lines().filter(|line| line.starts_with("processor")).count();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':').map(|(_, model)| model))
        .map_or("unknown".to_owned(), |model| model.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or("unknown".to_owned(), |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("unknown".to_owned(), |release| release.trim().to_owned());
    let run = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let date = run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let mut commit = run("git", &["rev-parse", "--short=12", "HEAD"]);
    let status = run("git", &["status", "--porcelain", "--untracked-files=no"]);
    if !status.is_empty() && status != "unknown" {
        commit.push_str(" with uncommitted changes");
    }
    Machine { cores: cores.max(1), cpu, memory, kernel, date, commit }
}

/// A line chart of one or more series against a size on a logarithmic x axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// The charts the figures allow, by file name: growth with rows per backend, and growth with
/// hosts (memory, and the time for one change to reach every agent).
pub fn charts(figures: &Figures) -> Vec<(String, Chart)> {
    let mut charts = Vec::new();
    for (backend, operations) in growth(figures) {
        let series: Vec<(String, Vec<(f64, f64)>)> = operations
            .into_iter()
            .map(|(label, points)| {
                (label, points.into_iter().map(|(size, us)| (size as f64, us)).collect())
            })
            .collect();
        charts.push((
            format!("growth-rows-{backend}.svg"),
            Chart {
                title: format!(
                    "Median latency per request against rows, {}",
                    backend_name(&backend)
                ),
                x_label: "rows (log scale)".to_owned(),
                y_label: "median latency (µs)".to_owned(),
                series,
            },
        ));
    }
    let agents = agent_counts(figures);
    if !agents.is_empty() {
        let series = |metric: &str, label: &str| {
            let points = agents
                .iter()
                .filter_map(|count| Some((*count as f64, hosts(figures, *count, metric)?)))
                .collect();
            (label.to_owned(), points)
        };
        charts.push((
            "growth-hosts-memory.svg".to_owned(),
            Chart {
                title: "Server memory against connected agents".to_owned(),
                x_label: "agents (log scale)".to_owned(),
                y_label: "server RSS (MiB)".to_owned(),
                series: vec![
                    series("rss_after", "every agent watching"),
                    series("rss_before", "before the agents connect"),
                ],
            },
        ));
        charts.push((
            "growth-hosts-change.svg".to_owned(),
            Chart {
                title: "One change seen by every agent, against agents".to_owned(),
                x_label: "agents (log scale)".to_owned(),
                y_label: "time after the change (ms)".to_owned(),
                series: vec![series("seen_last", "last agent"), series("seen_p50", "median agent")],
            },
        ));
    }
    for (_, chart) in &mut charts {
        chart.series.retain(|(_, points)| !points.is_empty());
    }
    charts
}

fn backend_name(backend: &str) -> &str {
    match backend {
        "sqlite" => "SQLite",
        "postgres" => "PostgreSQL",
        other => other,
    }
}

/// Growth with rows: per backend, each operation's label and its (size, median µs) points, in
/// the order the benchmark printed them (start-up and fill time are not operations).
fn growth(figures: &Figures) -> BTreeMap<String, Vec<Operation>> {
    let mut backends: BTreeMap<String, Vec<Operation>> = BTreeMap::new();
    let mut printed: Vec<(&String, &Figure)> = figures.iter().collect();
    printed.sort_by_key(|(_, figure)| figure.order);
    for (name, figure) in printed {
        let Some(rest) = name.strip_prefix("growth.") else { continue };
        let mut parts = rest.split('.');
        let (Some(backend), Some(operation), Some(size), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(size) = size.parse::<u64>() else { continue };
        if figure.unit != "us" {
            continue;
        }
        let label = figure.label.clone().unwrap_or_else(|| operation.to_owned());
        let operations = backends.entry(backend.to_owned()).or_default();
        match operations.iter_mut().find(|(known, _)| *known == label) {
            Some((_, points)) => points.push((size, figure.value)),
            None => operations.push((label, vec![(size, figure.value)])),
        }
    }
    for operations in backends.values_mut() {
        for (_, points) in operations.iter_mut() {
            points.sort_by_key(|(size, _)| *size);
        }
    }
    backends
}

/// Every size any of `operations` was measured at, smallest first.
fn sizes(operations: &[Operation]) -> Vec<u64> {
    let mut sizes: Vec<u64> =
        operations.iter().flat_map(|(_, points)| points.iter().map(|(size, _)| *size)).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// The agent counts the hosts benchmark ran with, smallest first.
fn agent_counts(figures: &Figures) -> Vec<u64> {
    let mut counts: Vec<u64> = figures
        .keys()
        .filter_map(|name| name.strip_prefix("hosts.")?.split('.').next()?.parse().ok())
        .collect();
    counts.sort_unstable();
    counts.dedup();
    counts
}

fn hosts(figures: &Figures, count: u64, metric: &str) -> Option<f64> {
    value(figures, &format!("hosts.{count}.{metric}"))
}

fn value(figures: &Figures, name: &str) -> Option<f64> {
    figures.get(name).map(|figure| figure.value)
}

/// A figure with its unit, or `—` when the run did not measure it.
fn show(figures: &Figures, name: &str) -> String {
    figures.get(name).map_or("—".to_owned(), |figure| with_unit(figure.value, &figure.unit))
}

fn with_unit(value: f64, unit: &str) -> String {
    match unit {
        "per_s" => format!("{} /s", thousands(value.round() as u64)),
        "us" => format!("{} µs", thousands(value.round() as u64)),
        "ms" => format!("{value:.1} ms"),
        "s" => format!("{value:.1} s"),
        "MiB" => format!("{value:.1} MiB"),
        "KiB" => format!("{value:.1} KiB"),
        "percent_core" => format!("{value:.2} % of a core"),
        "cores" => format!("{value:.2} cores"),
        "count" => thousands(value.round() as u64),
        other => format!("{value:.2} {other}"),
    }
}

/// `1234567` as `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn ratio(figures: &Figures, figure: &str, baseline: &str) -> String {
    match (value(figures, figure), value(figures, baseline)) {
        (Some(figure), Some(baseline)) if baseline != 0.0 => format!("{:.2}", figure / baseline),
        _ => "—".to_owned(),
    }
}

/// The report's Markdown, one sentence per line.
pub fn report(
    machine: &Machine,
    build: Duration,
    runs: &[Run],
    figures: &Figures,
    quick: bool,
) -> String {
    let mut out = String::new();
    let mode = if quick { " --quick" } else { "" };
    let _ = writeln!(out, "# Benchmark report\n");
    let _ = writeln!(out, "Written by `cargo xtask bench{mode}`; do not edit by hand.");
    if quick {
        let _ = writeln!(
            out,
            "This is a **quick run**: rows {}, agents {}, a {} s soak; its sizes are too small to show growth, it checks that every benchmark runs.",
            QUICK
                .growth_sizes
                .split(',')
                .map(|size| size.parse().map_or(size.to_owned(), thousands))
                .collect::<Vec<_>>()
                .join(", "),
            QUICK.agents.iter().map(u32::to_string).collect::<Vec<_>>().join(" and "),
            QUICK.soak_secs
        );
    }
    let _ = writeln!(
        out,
        "Every ratio is against a baseline measured in the same run; the method of each benchmark is in its source's top comment and in [benchmarks.md](benchmarks.md).\n"
    );
    let _ = writeln!(out, "## Machine\n");
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| cores | {} |", machine.cores);
    let _ = writeln!(out, "| CPU | {} |", machine.cpu);
    let _ = writeln!(out, "| memory | {} |", machine.memory);
    let _ = writeln!(out, "| kernel | {} |", machine.kernel);
    let _ = writeln!(out, "| date | {} |", machine.date);
    let _ = writeln!(out, "| commit | {} |\n", machine.commit);

    let _ = writeln!(out, "## Runs\n");
    let _ = writeln!(
        out,
        "Everything was built first ({:.0} s); each time below is the run alone.\n",
        build.as_secs_f64()
    );
    let _ = writeln!(out, "| command | time | result |\n|---|---|---|");
    for run in runs {
        let result = if run.success { "ok" } else { "failed" };
        let _ = writeln!(
            out,
            "| `{}` | {:.0} s | {result} |",
            run.command(),
            run.elapsed.as_secs_f64()
        );
    }
    out.push('\n');

    let _ = writeln!(out, "## Per-request ratios\n");
    let _ = writeln!(out, "| measure | figure | baseline | baseline figure | ratio | goal |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let mut rows: Vec<(String, String, String, String, &str)> = vec![
        (
            "client-credential tokens, server on one core, client polling on the other".into(),
            "issuance.tokens".into(),
            "bare RS256 signing, one core".into(),
            "issuance.signing".into(),
            ">= 0.85",
        ),
        (
            "the same, client sleeping between answers (its wake-ups charged to the server's core)"
                .into(),
            "issuance.tokens_sleeping_client".into(),
            "bare RS256 signing, one core".into(),
            "issuance.signing".into(),
            "",
        ),
        (
            "authorization decision, 100,000 assignments".into(),
            "authorization.large".into(),
            "the same with 10".into(),
            "authorization.small".into(),
            "1.0 = no growth",
        ),
        (
            "IMDS cached token".into(),
            "imds.cached".into(),
            "IMDS probe answer".into(),
            "imds.probe".into(),
            ">= 0.6",
        ),
    ];
    for selector in ["user", "executable"] {
        rows.push((
            format!("IMDS cached token, `{selector}` selector, keep-alive"),
            format!("attestation.{selector}.kept"),
            "the same without selectors".into(),
            format!("attestation.{selector}.kept_baseline"),
            "",
        ));
        rows.push((
            format!("IMDS cached token, `{selector}` selector, new connection per request"),
            format!("attestation.{selector}.new"),
            "the same without selectors".into(),
            format!("attestation.{selector}.new_baseline"),
            "",
        ));
    }
    rows.push((
        "Key Vault get secret".into(),
        "vault.get_secret".into(),
        "`GET /healthz` over HTTPS".into(),
        "vault.healthz".into(),
        ">= 0.5",
    ));
    for (measure, figure, baseline_name, baseline, goal) in &rows {
        let _ = writeln!(
            out,
            "| {measure} | {} | {baseline_name} | {} | {} | {goal} |",
            show(figures, figure),
            show(figures, baseline),
            ratio(figures, figure, baseline)
        );
    }
    let _ = writeln!(
        out,
        "\nIMDS cache miss (agent and server issuance): p50 {}, p99 {}.\n",
        show(figures, "imds.miss_p50"),
        show(figures, "imds.miss_p99")
    );
    let _ = writeln!(
        out,
        "Where the server's time goes while it issues client-credential tokens on one core to a load generator that sleeps between answers, profiled with `perf` by `cargo xtask flamegraph`, which makes it again; the RSA signature is the wide tower:\n\n![Flame graph of token issuance](flamegraph-issuance.svg)\n"
    );

    let _ = writeln!(out, "## Growth with rows\n");
    let _ = writeln!(
        out,
        "Median latency per request on one keep-alive connection, with its ratio to the smallest size in the same run (goal: within 1.5x).\n"
    );
    for (backend, operations) in growth(figures) {
        let sizes = sizes(&operations);
        let _ =
            writeln!(out, "{} (ratio to {} rows):\n", backend_name(&backend), thousands(sizes[0]));
        let header: String =
            sizes.iter().map(|size| format!(" {} rows |", thousands(*size))).collect();
        let _ = writeln!(out, "| operation |{header}");
        let _ = writeln!(out, "|---|{}", "---|".repeat(sizes.len()));
        for (label, points) in &operations {
            let base = points.first().map(|(_, us)| *us);
            let cells: String = sizes
                .iter()
                .map(|size| match (points.iter().find(|(known, _)| known == size), base) {
                    (Some((_, us)), Some(base)) if base > 0.0 => {
                        format!(" {} µs ({:.2}) |", thousands(us.round() as u64), us / base)
                    }
                    _ => " — |".to_owned(),
                })
                .collect();
            let _ = writeln!(out, "| {label} |{cells}");
        }
        let cells: String = sizes
            .iter()
            .map(|size| {
                format!(" {} |", show(figures, &format!("growth.{backend}.start_up.{size}")))
            })
            .collect();
        let _ = writeln!(out, "| start-up to ready |{cells}");
        let cells: String = sizes
            .iter()
            .map(|size| format!(" {} |", show(figures, &format!("growth.{backend}.fill.{size}"))))
            .collect();
        let _ = writeln!(out, "| fill time |{cells}");
        let _ = writeln!(
            out,
            "\n![{} growth with rows](charts/growth-rows-{backend}.svg)\n",
            backend_name(&backend)
        );
    }

    let _ = writeln!(out, "## Growth with hosts\n");
    let agents = agent_counts(figures);
    if agents.is_empty() {
        let _ = writeln!(out, "Not measured in this run.\n");
    } else {
        let _ = writeln!(
            out,
            "Simulated agents each following its assignment watch over its own TLS connection; the baseline is the same server before they connect, and CPU idle is the same server with hosts enrolled but not watching.\n"
        );
        let _ = writeln!(
            out,
            "| agents | RSS before | RSS watching | per agent | CPU idle | CPU watching | change seen: p50 | p99 | last (goal < 5 s) |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
        for count in &agents {
            let per_agent =
                match (hosts(figures, *count, "rss_after"), hosts(figures, *count, "rss_before")) {
                    (Some(after), Some(before)) => {
                        format!("{:.1} KiB", (after - before).max(0.0) * 1024.0 / *count as f64)
                    }
                    _ => "—".to_owned(),
                };
            let metric = |metric: &str| show(figures, &format!("hosts.{count}.{metric}"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {per_agent} | {} | {} | {} | {} | {} |",
                thousands(*count),
                metric("rss_before"),
                metric("rss_after"),
                metric("cpu_idle"),
                metric("cpu_watching"),
                metric("seen_p50"),
                metric("seen_p99"),
                metric("seen_last"),
            );
        }
        let _ =
            writeln!(out, "\n![Server memory against agents](charts/growth-hosts-memory.svg)\n");
        let _ =
            writeln!(out, "![One change seen by every agent](charts/growth-hosts-change.svg)\n");
    }

    let _ = writeln!(out, "## Cores and nodes\n");
    let _ = writeln!(
        out,
        "Client-credential tokens with the server on one core (load generator on the other) and on two cores (the load generator shares them: this machine has no third core), both with a load generator that sleeps between answers, and on two nodes sharing one PostgreSQL.\n"
    );
    let one_core = "issuance.tokens_sleeping_client";
    let _ = writeln!(out, "| measure | figure | baseline | ratio | goal |\n|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| tokens, server on two cores | {} | one core: {} | {} | >= 1.8 |",
        show(figures, "issuance.two_cores.tokens"),
        show(figures, one_core),
        ratio(figures, "issuance.two_cores.tokens", one_core)
    );
    let per_cpu = |tokens: &str, cpu: &str| -> Option<f64> {
        let tokens = value(figures, tokens)?;
        let cpu = value(figures, cpu)?;
        (cpu > 0.0).then(|| tokens / cpu)
    };
    let one_cpu = per_cpu(one_core, "issuance.server_cpu");
    let two_cpu = per_cpu("issuance.two_cores.tokens", "issuance.two_cores.server_cpu");
    let per_cpu_text =
        |rate: Option<f64>| rate.map_or("—".to_owned(), |rate| with_unit(rate, "per_s"));
    let _ = writeln!(
        out,
        "| tokens per second of server CPU, two cores | {} | one core: {} | {} | |",
        per_cpu_text(two_cpu),
        per_cpu_text(one_cpu),
        match (two_cpu, one_cpu) {
            (Some(two), Some(one)) => format!("{:.2}", two / one),
            _ => "—".to_owned(),
        }
    );
    let _ = writeln!(
        out,
        "| tokens, server on two cores of its own (estimate: twice its rate per CPU second) | {} | one core: {} | {} | |",
        per_cpu_text(two_cpu.map(|rate| 2.0 * rate)),
        show(figures, one_core),
        match (two_cpu, value(figures, one_core)) {
            (Some(two), Some(one)) if one > 0.0 => format!("{:.2}", 2.0 * two / one),
            _ => "—".to_owned(),
        }
    );
    let _ = writeln!(
        out,
        "| tokens, two nodes on one PostgreSQL | {} | one node: {} | {} | |\n",
        show(figures, "nodes.two"),
        show(figures, "nodes.one"),
        ratio(figures, "nodes.two", "nodes.one")
    );
    let _ = writeln!(
        out,
        "Cores kept busy on one core: server {}, load generator {}; on two cores: server {}, load generator {}. Bare RS256 signing on two threads: {} ({}x one thread).\n",
        show(figures, "issuance.server_cpu"),
        show(figures, "issuance.load_cpu"),
        show(figures, "issuance.two_cores.server_cpu"),
        show(figures, "issuance.two_cores.load_cpu"),
        show(figures, "issuance.two_cores.signing"),
        ratio(figures, "issuance.two_cores.signing", "issuance.signing")
    );

    let _ = writeln!(out, "## Memory and start-up\n");
    let _ = writeln!(out, "| measure | figure | baseline or goal |\n|---|---|---|");
    let agent_name = figures
        .get("footprint.agent_rss")
        .and_then(|figure| figure.label.clone())
        .unwrap_or_else(|| "agent".to_owned());
    let _ = writeln!(
        out,
        "| `ambient server` idle, empty database | {} | goal < 64 MB |",
        show(figures, "footprint.server_rss")
    );
    let _ = writeln!(
        out,
        "| `{agent_name}` idle, serving one VM | {} | goal < 16 MB |",
        show(figures, "footprint.agent_rss")
    );
    let _ = writeln!(
        out,
        "| `ambient server` start-up to ready, empty data directory (first start: keys, CA) | {} | |",
        show(figures, "footprint.server_ready")
    );
    let _ = writeln!(
        out,
        "| binaries: `ambient`, `{agent_name}` | {} | {} |",
        show(figures, "footprint.server_binary"),
        show(figures, "footprint.agent_binary")
    );
    for (backend, operations) in growth(figures) {
        let sizes = sizes(&operations);
        if let (Some(smallest), Some(largest)) = (sizes.first(), sizes.last()) {
            let _ = writeln!(
                out,
                "| start-up to ready, {}, {} rows | {} | {} rows: {} |",
                backend_name(&backend),
                thousands(*largest),
                show(figures, &format!("growth.{backend}.start_up.{largest}")),
                thousands(*smallest),
                show(figures, &format!("growth.{backend}.start_up.{smallest}")),
            );
        }
    }
    if let Some(count) = agents.last() {
        let _ = writeln!(
            out,
            "| server RSS, {} agents watching | {} | before they connect: {} |",
            thousands(*count),
            show(figures, &format!("hosts.{count}.rss_after")),
            show(figures, &format!("hosts.{count}.rss_before")),
        );
    }
    let _ = writeln!(
        out,
        "| server RSS at the soak's peak | {} | 2 s after the load: {} |\n",
        show(figures, "soak.rss_peak"),
        show(figures, "soak.rss_after")
    );

    let _ = writeln!(out, "## Soak\n");
    let _ = writeln!(
        out,
        "Mixed traffic for {} from 16 connections against one `ambient dev`; goals: no errors, and the mean RSS of the last window within 10 % of the second window's (windows of {}).\n",
        show(figures, "soak.secs"),
        show(figures, "soak.rss_window")
    );
    let _ =
        writeln!(out, "| kind | requests | rate | p50 | p99 | errors |\n|---|---|---|---|---|---|");
    for kind in ["imds", "token", "armread", "armwrite", "keyvault"] {
        let metric = |metric: &str| show(figures, &format!("soak.{kind}.{metric}"));
        let _ = writeln!(
            out,
            "| {kind} | {} | {} | {} | {} | {} |",
            metric("requests"),
            metric("rate"),
            metric("p50"),
            metric("p99"),
            metric("errors")
        );
    }
    let _ = writeln!(
        out,
        "\nServer RSS: {} in the last window against {} in the second (ratio {}); errors: {}.",
        show(figures, "soak.rss_last"),
        show(figures, "soak.rss_second"),
        ratio(figures, "soak.rss_last", "soak.rss_second"),
        show(figures, "soak.errors")
    );
    let mut seconds: Vec<u64> = figures
        .keys()
        .filter_map(|name| name.strip_prefix("soak.at.")?.split('.').next()?.parse().ok())
        .collect();
    seconds.sort_unstable();
    seconds.dedup();
    if !seconds.is_empty() {
        let _ = writeln!(
            out,
            "\nThe server's memory at the end of each window, with the database (SQLite file and write-ahead log):\n"
        );
        let _ = writeln!(
            out,
            "| after | RSS | anonymous | file-backed | database |\n|---|---|---|---|---|"
        );
        for second in seconds {
            let part = |part: &str| value(figures, &format!("soak.at.{second}.{part}"));
            let total = match (part("anonymous"), part("file")) {
                (Some(anonymous), Some(file)) => with_unit(anonymous + file, "MiB"),
                _ => "—".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {second} s | {total} | {} | {} | {} |",
                show(figures, &format!("soak.at.{second}.anonymous")),
                show(figures, &format!("soak.at.{second}.file")),
                show(figures, &format!("soak.at.{second}.database"))
            );
        }
    }
    out
}

/// Text for an SVG text node or attribute.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A short label for an axis value: `10k`, `1M`, `2.5`.
fn tick_label(value: f64) -> String {
    if value >= 1e6 && (value / 1e6).fract() == 0.0 {
        format!("{}M", value / 1e6)
    } else if value >= 1e3 && (value / 1e3).fract() == 0.0 {
        format!("{}k", value / 1e3)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

/// The chart as a standalone SVG document: the x axis is logarithmic with a tick at each size
/// measured, the y axis linear from zero with five ticks, one polyline and its points per
/// series, and a legend.
pub fn svg(chart: &Chart) -> String {
    let (width, height) = (640.0, 400.0);
    let (left, right, top, bottom) = (70.0, 200.0, 40.0, 50.0);
    let plot_width = width - left - right;
    let plot_height = height - top - bottom;
    let points =
        chart.series.iter().flat_map(|(_, points)| points.iter()).filter(|(x, _)| *x > 0.0);
    let mut xs: Vec<f64> = points.clone().map(|(x, _)| *x).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let y_max = points.map(|(_, y)| *y).fold(0.0, f64::max);
    let (x_min, x_max) = match (xs.first(), xs.last()) {
        (Some(min), Some(max)) if max > min => (min.log10(), max.log10()),
        (Some(min), _) => (min.log10() - 0.5, min.log10() + 0.5),
        _ => (0.0, 1.0),
    };
    let y_top = if y_max > 0.0 { nice_ceiling(y_max) } else { 1.0 };
    let x_at = |x: f64| left + (x.log10() - x_min) / (x_max - x_min) * plot_width;
    let y_at = |y: f64| top + plot_height - y / y_top * plot_height;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{width}" height="{height}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>"#,
        left + plot_width / 2.0,
        escape(&chart.title)
    );
    let _ = writeln!(
        out,
        r#"<path d="M{left} {top} V{} H{}" fill="none" stroke="black"/>"#,
        top + plot_height,
        left + plot_width
    );
    for x in &xs {
        let at = x_at(*x);
        let _ = writeln!(
            out,
            r##"<line x1="{at:.1}" y1="{top}" x2="{at:.1}" y2="{}" stroke="#ddd"/>"##,
            top + plot_height
        );
        let _ = writeln!(
            out,
            r#"<text x="{at:.1}" y="{}" text-anchor="middle">{}</text>"#,
            top + plot_height + 16.0,
            tick_label(*x)
        );
    }
    for step in 0..=5 {
        let y = y_top * f64::from(step) / 5.0;
        let at = y_at(y);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{at:.1}" x2="{}" y2="{at:.1}" stroke="#ddd"/>"##,
            left + plot_width
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 6.0,
            at + 4.0,
            tick_label(y)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        left + plot_width / 2.0,
        height - 12.0,
        escape(&chart.x_label)
    );
    let _ = writeln!(
        out,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
        top + plot_height / 2.0,
        top + plot_height / 2.0,
        escape(&chart.y_label)
    );
    for (index, (name, points)) in chart.series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let mut points: Vec<(f64, f64)> =
            points.iter().copied().filter(|(x, _)| *x > 0.0).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> =
            points.iter().map(|(x, y)| format!("{:.1},{:.1}", x_at(*x), y_at(*y))).collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for (x, y) in &points {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                x_at(*x),
                y_at(*y)
            );
        }
        let legend_y = top + 10.0 + 18.0 * index as f64;
        let legend_x = left + plot_width + 12.0;
        let _ = writeln!(
            out,
            r#"<line x1="{legend_x}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="{color}" stroke-width="2"/>"#,
            legend_x + 16.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}">{}</text>"#,
            legend_x + 22.0,
            legend_y + 4.0,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The smallest of 1, 2, 2.5 or 5 times a power of ten at or above `value`.
fn nice_ceiling(value: f64) -> f64 {
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// Prints the figures parsed from `output`, one a line.
    #[track_caller]
    fn check_parse(output: &str, expect: Expect) {
        let lines: Vec<String> = parse_figures(output)
            .iter()
            .map(|(name, figure)| {
                format!("{name} = {} {} {:?}", figure.value, figure.unit, figure.label)
            })
            .collect();
        expect.assert_eq(&lines.join("\n"));
    }

    #[test]
    fn figures_are_read_from_bench_lines_and_prose_is_skipped() {
        check_parse(
            "bare RS256 signing:            1234 signatures/s (core 0)\n\
             BENCH issuance.signing=1234.5 unit=per_s\n\
             \x20 BENCH imds.miss_p50=0.75 unit=ms\n\
             BENCH growth.sqlite.arm_list_group_10_a_page.10=3276 unit=us label=ARM list group, 10 a page\n\
             BENCH soak.errors=0 unit=count\n\
             BENCH broken=NaN unit=ms\n\
             BENCH broken2=fast unit=ms\n\
             BENCH nounit=3\n\
             BENCHMARK other=1 unit=ms\n",
            expect![[r#"
                growth.sqlite.arm_list_group_10_a_page.10 = 3276 us Some("ARM list group, 10 a page")
                imds.miss_p50 = 0.75 ms None
                issuance.signing = 1234.5 per_s None
                nounit = 3  None
                soak.errors = 0 count None"#]],
        );
    }

    /// Checks that `svg` is well-formed XML as far as this writer produces it (every element
    /// closed in order, attributes quoted, text without raw `<` or `&`), and prints its elements
    /// with their counts.
    #[track_caller]
    fn check_svg(chart: &Chart, expect: Expect) {
        let svg = svg(chart);
        let mut stack: Vec<String> = Vec::new();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut rest = svg.as_str();
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            assert!(!text.contains('>'), "raw > in text {text:?}");
            assert!(
                text.split('&').skip(1).all(|entity| ["amp;", "lt;", "gt;", "quot;"]
                    .iter()
                    .any(|known| entity.starts_with(known))),
                "raw & in text {text:?}"
            );
            let close = open + rest[open..].find('>').expect("tag closed");
            let tag = &rest[open + 1..close];
            rest = &rest[close + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "closing tag matches");
                continue;
            }
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let (name, attributes) = tag.split_once(' ').unwrap_or((tag, ""));
            assert_eq!(attributes.matches('"').count() % 2, 0, "attributes quoted in {tag:?}");
            for attribute in
                attributes.split('"').step_by(2).map(str::trim).filter(|a| !a.is_empty())
            {
                assert!(attribute.ends_with('='), "attribute {attribute:?} has a quoted value");
            }
            *counts.entry(name.to_owned()).or_default() += 1;
            if !self_closing {
                stack.push(name.to_owned());
            }
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
        assert!(rest.trim().is_empty(), "text after the root element");
        let counts: Vec<String> =
            counts.iter().map(|(name, count)| format!("{name}: {count}")).collect();
        expect.assert_eq(&counts.join("\n"));
    }

    #[test]
    fn a_chart_is_well_formed_svg_with_a_line_per_series() {
        let chart = Chart {
            title: "Latency & rows <log>".to_owned(),
            x_label: "rows".to_owned(),
            y_label: "µs".to_owned(),
            series: vec![
                (
                    "token issuance".to_owned(),
                    vec![(10.0, 1342.0), (10_000.0, 1151.0), (1e6, 858.0)],
                ),
                ("ARM GET".to_owned(), vec![(1e6, 278.0), (10.0, 383.0)]),
            ],
        };
        check_svg(
            &chart,
            expect![[r#"
                circle: 5
                line: 11
                path: 1
                polyline: 2
                rect: 1
                svg: 1
                text: 14"#]],
        );
        let svg = svg(&chart);
        assert!(svg.contains("Latency &amp; rows &lt;log&gt;"), "the title is escaped");
        assert!(
            svg.contains(">10</text>") && svg.contains(">10k</text>") && svg.contains(">1M</text>")
        );
        assert!(svg.contains(">2k</text>"), "the y axis ends at a round value above the largest");
    }

    #[test]
    fn a_chart_with_one_size_or_none_is_still_well_formed() {
        let one = Chart {
            title: "one".to_owned(),
            x_label: "agents".to_owned(),
            y_label: "MiB".to_owned(),
            series: vec![("rss".to_owned(), vec![(100.0, 21.5)])],
        };
        check_svg(
            &one,
            expect![[r#"
            circle: 1
            line: 8
            path: 1
            polyline: 1
            rect: 1
            svg: 1
            text: 11"#]],
        );
        let none = Chart { series: vec![], ..one };
        check_svg(
            &none,
            expect![[r#"
            line: 6
            path: 1
            rect: 1
            svg: 1
            text: 9"#]],
        );
    }

    fn machine() -> Machine {
        Machine {
            cores: 2,
            cpu: "test".to_owned(),
            memory: "1 GiB".to_owned(),
            kernel: "6".to_owned(),
            date: "today".to_owned(),
            commit: "abc".to_owned(),
        }
    }

    #[test]
    fn the_report_measures_issuance_with_a_polling_client_and_cores_with_sleeping_ones() {
        let figures = parse_figures(
            "BENCH issuance.tokens=2200 unit=per_s\n\
             BENCH issuance.tokens_sleeping_client=2000 unit=per_s\n\
             BENCH issuance.signing=1800 unit=per_s\n\
             BENCH issuance.two_cores.signing=3600 unit=per_s\n\
             BENCH issuance.server_cpu=1.0 unit=cores\n\
             BENCH issuance.two_cores.tokens=3000 unit=per_s\n\
             BENCH issuance.two_cores.server_cpu=1.6 unit=cores\n\
             BENCH footprint.agent_rss=9.5 unit=MiB label=ambient-agent\n\
             BENCH soak.at.60.anonymous=10 unit=MiB\n\
             BENCH soak.at.60.file=20 unit=MiB\n\
             BENCH soak.at.60.database=5 unit=MiB\n",
        );
        let report = report(&machine(), Duration::from_secs(90), &[], &figures, false);
        for line in [
            "Everything was built first (90 s)",
            "| tokens, server on two cores | 3,000 /s | one core: 2,000 /s | 1.50 | >= 1.8 |",
            "| tokens per second of server CPU, two cores | 1,875 /s | one core: 2,000 /s | 0.94 | |",
            "| tokens, server on two cores of its own (estimate: twice its rate per CPU second) | 3,750 /s | one core: 2,000 /s | 1.88 | |",
            "| client-credential tokens, server on one core, client polling on the other | 2,200 /s | bare RS256 signing, one core | 1,800 /s | 1.22 | >= 0.85 |",
            "| `ambient-agent` idle, serving one VM | 9.5 MiB | goal < 16 MB |",
            "| 60 s | 30.0 MiB | 10.0 MiB | 20.0 MiB | 5.0 MiB |",
            "Bare RS256 signing on two threads: 3,600 /s (2.00x one thread).",
        ] {
            assert!(report.contains(line), "missing {line:?} in\n{report}");
        }
        assert!(!report.contains("quick run"), "a full run says nothing of a quick one");
    }

    /// Prints each chart's file name and its series as `name: x=y, ...`.
    #[track_caller]
    fn check_charts(output: &str, expect: Expect) {
        let lines: Vec<String> = charts(&parse_figures(output))
            .iter()
            .map(|(file, chart)| {
                let series: Vec<String> = chart
                    .series
                    .iter()
                    .map(|(name, points)| {
                        let points: Vec<String> =
                            points.iter().map(|(x, y)| format!("{x}={y}")).collect();
                        format!("  {name}: {}", points.join(", "))
                    })
                    .collect();
                format!("{file}: {}\n{}", chart.title, series.join("\n"))
            })
            .collect();
        expect.assert_eq(&lines.join("\n"));
    }

    #[test]
    fn charts_gather_sizes_per_operation_and_agent_counts() {
        check_charts(
            "BENCH growth.sqlite.token_issuance.10000=900 unit=us label=token issuance\n\
             BENCH growth.sqlite.token_issuance.10=1000 unit=us label=token issuance\n\
             BENCH growth.sqlite.arm_get.10=300 unit=us label=ARM GET\n\
             BENCH growth.sqlite.start_up.10=12 unit=ms\n\
             BENCH hosts.100.rss_before=21 unit=MiB\n\
             BENCH hosts.100.rss_after=25 unit=MiB\n\
             BENCH hosts.10.rss_after=21.5 unit=MiB\n\
             BENCH hosts.10.seen_last=40 unit=ms\n",
            expect![[r#"
                growth-rows-sqlite.svg: Median latency per request against rows, SQLite
                  token issuance: 10=1000, 10000=900
                  ARM GET: 10=300
                growth-hosts-memory.svg: Server memory against connected agents
                  every agent watching: 10=21.5, 100=25
                  before the agents connect: 100=21
                growth-hosts-change.svg: One change seen by every agent, against agents
                  last agent: 10=40"#]],
        );
    }
}
