//! Mesh benchmarks (subcommands of `beemesh-bench`): publication delivery in a simulated
//! mesh of many libp2p nodes, cross-node watch latency on real `beemesh up` processes, and
//! the time a fresh node takes to join a loaded mesh.

pub mod cluster;
pub mod join;
pub mod plot;
pub mod sim;
pub mod startup;
pub mod stats;
pub mod watch;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::chart::SeriesLabelPosition;
use serde::Serialize;

use crate::report::{Machine, load_average};
use plot::{Chart, Series};

/// The mesh benchmarks.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum MeshCommand {
    /// Publication delivery latency and hop counts in a simulated mesh of N libp2p nodes
    /// in this process, running the mesh's own gossipsub configuration.
    GossipSim(sim::SimArgs),
    /// Cross-node watch latency on a mesh of real `beemesh up` processes: writes paced
    /// through node A, watches on every node.
    WatchLatency(watch::WatchArgs),
    /// Time for a fresh node to join a mesh holding N objects and answer `/readyz` 200.
    JoinTime(join::JoinArgs),
    /// Pods to Running per second and pod startup latency on N simulated nodes
    /// (`beemesh up --sim-nodes N`), 30 pods per node created as Deployments.
    PodStartup(startup::StartupArgs),
}

/// Target: at 100 writes/s, p99 watch latency on the other nodes ≤ 50 ms.
pub const TARGET_WATCH_RATE: u32 = 100;
pub const TARGET_WATCH_P99_MS: f64 = 50.0;
/// Target: a fresh node joins a mesh of 100,000 objects and is ready within 5 s.
pub const TARGET_JOIN_OBJECTS: u64 = 100_000;
pub const TARGET_JOIN_SECONDS: f64 = 5.0;

/// Target: a 1,000-node mesh delivers to every node with p99 ≤ 1 s.
pub const TARGET_SIM_NODES: usize = 1000;
pub const TARGET_SIM_P99_MS: f64 = 1000.0;

pub async fn run(command: MeshCommand) -> anyhow::Result<()> {
    match command {
        MeshCommand::GossipSim(args) => gossip_sim(args).await,
        MeshCommand::WatchLatency(args) => watch_latency(args).await,
        MeshCommand::JoinTime(args) => join_time(args).await,
        MeshCommand::PodStartup(args) => pod_startup(args).await,
    }
}

/// Results directory of the crate (committed figures live there).
pub fn results_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("results")
}

/// What every results file of these benchmarks holds.
#[derive(Serialize)]
struct MeshReport<'a, R: Serialize> {
    date: String,
    machine: Machine,
    method: &'static str,
    command: String,
    runs: &'a [R],
}

impl<'a, R: Serialize> MeshReport<'a, R> {
    fn new(mut machine: Machine, method: &'static str, runs: &'a [R]) -> Self {
        machine.load_average_end = load_average();
        MeshReport {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine,
            method,
            command: std::env::args().collect::<Vec<_>>().join(" "),
            runs,
        }
    }
}

async fn gossip_sim(args: sim::SimArgs) -> anyhow::Result<()> {
    let machine = Machine::probe();
    let runs = sim::run(&args).await?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| results_dir().join("gossip-sim.json"));
    let report = MeshReport::new(
        machine,
        "N swarms in one process, each with the mesh's gossipsub behaviour \
                 (gossipsub_behaviour: config, signing, scoring, member score) and a recorder \
                 instead of a replica; each node dials --dials random earlier nodes; latency = \
                 publish call -> Message event at each node (one clock); hops rebuilt from \
                 first-arrival propagation sources",
        &runs,
    );
    write_json(&output, &report)?;
    println!("{}", sim_table(&runs));
    let chart_base = output.with_extension("");
    match sim_charts(&runs, &chart_base) {
        Ok(files) => println!("plots: {}", join_paths(&files)),
        Err(e) => eprintln!("no plot drawn: {e:#}"),
    }
    println!("results written to {}", output.display());
    Ok(())
}

fn sim_table(runs: &[sim::SimRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| nodes | transport | connect s | mesh degree min/med/max | publications reaching all | deliveries | delivery p50 ms | delivery p99 ms | delivery max ms | all reached p50 ms | all reached max ms | hops mean | hops max | hop histogram (1,2,..) | RSS MiB | CPU cores idle | CPU ms / publication |"
    );
    let _ = writeln!(
        out,
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    for r in runs {
        let d = r.delivery.as_ref();
        let all = r.delivered_to_all.as_ref();
        let hist: Vec<String> = r
            .hops_histogram
            .iter()
            .skip(1)
            .map(|c| c.to_string())
            .collect();
        let _ = writeln!(
            out,
            "| {} | {:?} | {:.2} | {}/{}/{} | {}/{} | {}/{} | {} | {} | {} | {} | {} | {:.2} | {} | {} | {:.0} | {:.2} | {:.0} |",
            r.nodes,
            r.transport,
            r.connect_seconds,
            r.mesh_degree_min,
            r.mesh_degree_median,
            r.mesh_degree_max,
            r.publications_reaching_all,
            r.publications,
            r.deliveries,
            r.deliveries_expected,
            ms(d.map(|s| s.p50_ms)),
            ms(d.map(|s| s.p99_ms)),
            ms(d.map(|s| s.max_ms)),
            ms(all.map(|s| s.p50_ms)),
            ms(all.map(|s| s.max_ms)),
            r.hops_mean,
            r.hops_max,
            hist.join(","),
            r.rss_bytes as f64 / 1048576.0,
            r.idle_cpu_cores,
            r.cpu_ms_per_publication,
        );
    }
    if let Some(r) = runs.iter().find(|r| r.nodes == TARGET_SIM_NODES) {
        let p99 = r.delivery.as_ref().map_or(f64::INFINITY, |s| s.p99_ms);
        let met = r.publications_reaching_all == r.publications && p99 <= TARGET_SIM_P99_MS;
        let _ = writeln!(
            out,
            "\nTarget: {TARGET_SIM_NODES}-node mesh delivers every publication to every node, p99 ≤ {TARGET_SIM_P99_MS:.0} ms — {} ({}/{} publications reached all, p99 {p99:.1} ms)",
            if met { "met" } else { "MISSED" },
            r.publications_reaching_all,
            r.publications
        );
    }
    out
}

/// Latency against mesh size, and hops against mesh size.
fn sim_charts(runs: &[sim::SimRun], base: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let line = |label: &str, pick: &dyn Fn(&sim::SimRun) -> Option<f64>| Series {
        label: label.to_string(),
        points: runs
            .iter()
            .filter_map(|r| pick(r).map(|v| (r.nodes as f64, v)))
            .collect(),
        markers: true,
        dashed: false,
    };
    let series = [
        line("delivery p50", &|r| r.delivery.as_ref().map(|s| s.p50_ms)),
        line("delivery p99", &|r| r.delivery.as_ref().map(|s| s.p99_ms)),
        line("delivered to every node (max)", &|r| {
            r.delivered_to_all.as_ref().map(|s| s.max_ms)
        }),
    ];
    let transport = runs
        .first()
        .map_or("".into(), |r| format!("{:?}", r.transport).to_lowercase());
    let title = format!("Gossip publication delivery vs mesh size ({transport}, one process)");
    let mut files = plot::draw(
        &Chart {
            title: &title,
            x_label: "nodes in the mesh",
            y_label: "latency after publish (ms)",
            series: &series,
            x_range: None,
            y_range: None,
            legend_at: SeriesLabelPosition::UpperLeft,
            x_decimals: 0,
            y_decimals: 0,
        },
        base,
    )?;
    let hops = [
        line("mean hops", &|r| Some(r.hops_mean)),
        line("max hops", &|r| Some(r.hops_max as f64)),
    ];
    let mut hops_base = base.as_os_str().to_owned();
    hops_base.push("-hops");
    files.extend(plot::draw(
        &Chart {
            title: "Gossip hops to reach a node vs mesh size",
            x_label: "nodes in the mesh",
            y_label: "hops from the publisher",
            series: &hops,
            x_range: None,
            y_range: None,
            legend_at: SeriesLabelPosition::UpperLeft,
            x_decimals: 0,
            y_decimals: 0,
        },
        Path::new(&hops_base),
    )?);
    Ok(files)
}

async fn watch_latency(args: watch::WatchArgs) -> anyhow::Result<()> {
    let machine = Machine::probe();
    let runs = watch::run(&args).await?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| results_dir().join("watch-latency.json"));
    let report = MeshReport::new(
        machine,
        "real `beemesh up` release processes on 127.0.0.1 (TCP p2p), one mesh; ConfigMap \
         writes through node A at a fixed open-loop rate over one HTTP/2 connection (creates \
         with a 1 KiB value and merge-patches of pre-created ConfigMaps), watches on every \
         node from the revision of a list just before; latency = write answered at A -> \
         event chunk read from the node's watch, in the bench's clock",
        &runs,
    );
    write_json(&output, &report)?;
    println!("{}", watch_table(&runs));
    match watch_chart(&runs, &output.with_extension("")) {
        Ok(files) => println!("plots: {}", join_paths(&files)),
        Err(e) => eprintln!("no plot drawn: {e:#}"),
    }
    println!("results written to {}", output.display());
    Ok(())
}

fn watch_table(runs: &[watch::WatchRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| writes/s | achieved/s | writes ok | write p50 ms | write p99 ms | node | events seen | since answer p50 ms | p90 ms | p99 ms | max ms | before answer | since sent p50 ms | since sent p99 ms |"
    );
    let _ = writeln!(
        out,
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for r in runs {
        for n in &r.nodes {
            let l = n.since_answered.as_ref();
            let s = n.since_sent.as_ref();
            let _ = writeln!(
                out,
                "| {} | {:.0} | {}/{} | {} | {} | {}{} | {}/{} | {} | {} | {} | {} | {} | {} | {} |",
                r.rate,
                r.achieved_rate,
                r.writes_ok,
                r.writes_planned,
                f(r.write_latency.as_ref().map(|s| s.p50_ms)),
                f(r.write_latency.as_ref().map(|s| s.p99_ms)),
                n.node,
                if n.writer { " (writer)" } else { "" },
                n.events_seen,
                n.events_expected,
                f(l.map(|s| s.p50_ms)),
                f(l.map(|s| s.p90_ms)),
                f(l.map(|s| s.p99_ms)),
                f(l.map(|s| s.max_ms)),
                n.before_answer,
                f(s.map(|s| s.p50_ms)),
                f(s.map(|s| s.p99_ms)),
            );
        }
    }
    if let Some(r) = runs.iter().find(|r| r.rate == TARGET_WATCH_RATE) {
        let others: Vec<&watch::NodeLatency> = r.nodes.iter().filter(|n| !n.writer).collect();
        let worst = others
            .iter()
            .map(|n| {
                n.since_answered
                    .as_ref()
                    .map_or(f64::INFINITY, |s| s.p99_ms)
            })
            .fold(f64::NEG_INFINITY, f64::max);
        let complete = others.iter().all(|n| n.events_seen == n.events_expected);
        let met = complete && worst <= TARGET_WATCH_P99_MS;
        let _ = writeln!(
            out,
            "\nTarget: at {TARGET_WATCH_RATE} writes/s, p99 (write answered at A -> event on another node) ≤ {TARGET_WATCH_P99_MS:.0} ms — {} (worst other node p99 {worst:.2} ms; every event seen: {complete})",
            if met { "met" } else { "MISSED" }
        );
    }
    out
}

/// Per rate, two CDF charts (latency since A answered each write, and since it was sent),
/// each with a line per node: rates differ by an order of magnitude, so they get their own
/// x axes.
fn watch_chart(runs: &[watch::WatchRun], base: &Path) -> anyhow::Result<Vec<PathBuf>> {
    type Pick = fn(&watch::NodeLatency) -> &[(f64, f64)];
    let metrics: [(&str, &str, &str, Pick); 2] = [
        (
            "cdf-answered",
            "answered at A -> event",
            "ms after A answered the write (negative: the event came first)",
            |n| &n.cdf_since_answered,
        ),
        (
            "cdf-sent",
            "sent to A -> event",
            "ms after the write was sent to A",
            |n| &n.cdf_since_sent,
        ),
    ];
    let mut files = Vec::new();
    for r in runs {
        for (suffix, what, x_label, pick) in metrics {
            let series: Vec<Series> = r
                .nodes
                .iter()
                .map(|n| Series {
                    label: format!("{}{}", n.node, if n.writer { " (writer)" } else { "" }),
                    points: pick(n).to_vec(),
                    markers: false,
                    dashed: n.writer,
                })
                .collect();
            let title = format!(
                "Watch latency CDF, {}-node mesh, {} writes/s via A: {what}",
                r.nodes.len(),
                r.rate
            );
            let mut chart_base = base.as_os_str().to_owned();
            chart_base.push(format!("-{}-{suffix}", r.rate));
            files.extend(plot::draw(
                &Chart {
                    title: &title,
                    x_label,
                    y_label: "fraction of writes",
                    series: &series,
                    x_range: Some(watch::cdf_x_range(std::slice::from_ref(r), pick)),
                    y_range: Some((0.0, 1.0)),
                    legend_at: SeriesLabelPosition::LowerRight,
                    x_decimals: 1,
                    y_decimals: 1,
                },
                Path::new(&chart_base),
            )?);
        }
    }
    Ok(files)
}

async fn join_time(args: join::JoinArgs) -> anyhow::Result<()> {
    let machine = Machine::probe();
    let runs = join::run(&args).await?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| results_dir().join("join-time.json"));
    let report = MeshReport::new(
        machine,
        match args.mode {
            join::JoinMode::Processes => {
                "node-a = `beemesh up` (release) loaded with N ConfigMaps of 1 KiB through its \
                 API; each fresh node = `beemesh up --join A --join-token-file`, timed from \
                 spawn to its first /readyz 200 (polled every 10 ms), then its ConfigMap list \
                 is counted"
            }
            join::JoinMode::InProcess => {
                "two Mesh instances in one process on durable replicas (store::replica_config), \
                 A filled with N ConfigMap-shaped entries of ~1.2 KiB; timed from Mesh::start of \
                 the fresh node to MeshHandle::synced()"
            }
        },
        &runs,
    );
    write_json(&output, &report)?;
    println!("{}", join_table(&runs));
    println!("results written to {}", output.display());
    Ok(())
}

fn join_table(runs: &[join::JoinRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| mode | objects | joins | ready s (median) | ready s (each) | API up s (each) | objects on new node | new node RSS MiB |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|---|---|---|");
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for r in runs {
        let _ = writeln!(
            out,
            "| {:?} | {} | {} | {:.2} | {} | {} | {} | {} |",
            r.mode,
            r.objects,
            r.ready_seconds.len(),
            r.ready_median_seconds,
            list(&r.ready_seconds),
            if r.api_up_seconds.is_empty() {
                "-".into()
            } else {
                list(&r.api_up_seconds)
            },
            r.objects_on_new_node
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if r.new_node_rss_bytes.is_empty() {
                "-".into()
            } else {
                r.new_node_rss_bytes
                    .iter()
                    .map(|b| format!("{:.0}", *b as f64 / 1048576.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        );
    }
    if let Some(r) = runs.iter().find(|r| r.objects == TARGET_JOIN_OBJECTS) {
        let met = r.ready_median_seconds <= TARGET_JOIN_SECONDS;
        let _ = writeln!(
            out,
            "\nTarget: a fresh node joins a mesh of {TARGET_JOIN_OBJECTS} objects and is ready in ≤ {TARGET_JOIN_SECONDS:.0} s — {} (median {:.2} s, {:?})",
            if met { "met" } else { "MISSED" },
            r.ready_median_seconds,
            r.mode
        );
    }
    out
}

async fn pod_startup(args: startup::StartupArgs) -> anyhow::Result<()> {
    let machine = Machine::probe();
    let runs = startup::run(&args).await?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| results_dir().join("pod-startup.json"));
    let report = MeshReport::new(
        machine,
        "one `beemesh up --sim-nodes N` release process (N kwok-style Nodes, sim runtime, \
         one pod agent), the node itself untainted of pods by having no runtime; N x 30 pods \
         as Deployments of 30 replicas created over HTTP/2 (8 in flight); a pod watch on \
         `default` from a revision before the first create; startup = pod ADDED read -> \
         first event with status.phase Running read; pods/s = Running pods / (last Running \
         - first create sent); over-placement = most pods existing at once per Deployment; \
         then the latency phase (ClusterLoader2 density): single-replica Deployments created \
         at a steady rate on the saturated cluster, their startup measured the same way",
        &runs,
    );
    write_json(&output, &report)?;
    println!("{}", startup_table(&runs));
    match startup_charts(&runs, &output.with_extension("")) {
        Ok(files) => println!("plots: {}", join_paths(&files)),
        Err(e) => eprintln!("no plot drawn: {e:#}"),
    }
    println!("results written to {}", output.display());
    Ok(())
}

fn startup_table(runs: &[startup::StartupRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| nodes | pods Running | wall s | pods/s to Running | vs kube-scheduler 100–300/s | startup p50 ms | p90 ms | p99 ms | max ms | placement p50 / p99 ms | Deployment create → Running p99 ms | max pods per Deployment (replicas) | Deployments over replicas ever / when settled | max pods per node (capacity) | nodes Ready s | node RSS MiB |"
    );
    let _ = writeln!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|---|---:|---:|"
    );
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    let (lo, hi) = startup::KUBE_SCHEDULER_PODS_PER_SECOND;
    for r in runs {
        let s = r.startup.as_ref();
        let p = r.placement.as_ref();
        let _ = writeln!(
            out,
            "| {} | {}/{} | {:.1} | {:.0} | {:.1}x–{:.1}x | {} | {} | {} | {} | {} / {} | {} | {} ({}) | {} / {} | {} ({}) | {:.1} | {:.0} |",
            r.nodes,
            r.pods_running,
            r.pods_expected,
            r.wall_seconds,
            r.pods_per_second,
            r.pods_per_second / hi,
            r.pods_per_second / lo,
            f(s.map(|s| s.p50_ms)),
            f(s.map(|s| s.p90_ms)),
            f(s.map(|s| s.p99_ms)),
            f(s.map(|s| s.max_ms)),
            f(p.map(|s| s.p50_ms)),
            f(p.map(|s| s.p99_ms)),
            f(r.since_deployment_create.as_ref().map(|s| s.p99_ms)),
            r.max_pods_per_deployment,
            r.replicas,
            r.deployments_over_replicas,
            r.deployments_off_when_settled,
            r.max_pods_per_node,
            r.node_pod_capacity,
            r.nodes_ready_seconds,
            r.node_rss_bytes as f64 / 1048576.0,
        );
    }
    let _ = writeln!(
        out,
        "\nLatency phase (ClusterLoader2's latency pods: single-replica Deployments at a steady rate on the saturated cluster; the saturation pods' p99 alongside):\n"
    );
    let _ = writeln!(
        out,
        "| nodes | latency pods Running | creates/s asked / achieved | latency startup p50 ms | p90 ms | p99 ms | max ms | placement p50 / p99 ms | Deployment create → Running p99 ms | saturation startup p99 ms |"
    );
    let _ = writeln!(out, "|---:|---:|---|---:|---:|---:|---:|---|---:|---:|");
    for r in runs {
        let Some(l) = &r.latency else {
            let _ = writeln!(
                out,
                "| {} | (not run) | | | | | | | | {} |",
                r.nodes,
                f(r.startup.as_ref().map(|s| s.p99_ms))
            );
            continue;
        };
        let s = l.startup.as_ref();
        let p = l.placement.as_ref();
        let _ = writeln!(
            out,
            "| {} | {}/{} | {:.1} / {:.1} | {} | {} | {} | {} | {} / {} | {} | {} |",
            r.nodes,
            l.pods_running,
            l.pods_expected,
            l.rate_per_second,
            l.achieved_rate_per_second,
            f(s.map(|s| s.p50_ms)),
            f(s.map(|s| s.p90_ms)),
            f(s.map(|s| s.p99_ms)),
            f(s.map(|s| s.max_ms)),
            f(p.map(|s| s.p50_ms)),
            f(p.map(|s| s.p99_ms)),
            f(l.since_deployment_create.as_ref().map(|s| s.p99_ms)),
            f(r.startup.as_ref().map(|s| s.p99_ms)),
        );
    }
    if let Some(r) = runs.iter().find(|r| r.nodes == startup::TARGET_NODES) {
        let p99 = r.startup.as_ref().map_or(f64::INFINITY, |s| s.p99_ms);
        let all = r.pods_running == r.pods_expected;
        let rate_met = all && r.pods_per_second >= startup::TARGET_PODS_PER_SECOND;
        let p99_met = all && p99 <= startup::TARGET_P99_MS;
        let exact = r.deployments_off_when_settled == 0;
        let latency = r
            .latency
            .as_ref()
            .map_or("latency phase not run".to_string(), |l| {
                let p99 = l.startup.as_ref().map_or(f64::INFINITY, |s| s.p99_ms);
                let met = l.pods_running == l.pods_expected && p99 <= startup::TARGET_P99_MS;
                format!(
                    "latency pods (as ClusterLoader2 judges the SLO) — {} ({:.2} s)",
                    if met { "met" } else { "MISSED" },
                    p99 / 1000.0
                )
            });
        let _ = writeln!(
            out,
            "\nTargets on {} simulated nodes: ≥ {:.0} pods/s to Running — {} ({:.0}/s; kube-scheduler {lo:.0}–{hi:.0}/s); startup p99 ≤ {:.0} s (the Kubernetes SLO): {latency}; saturation pods (stricter) — {} ({:.2} s); no over-placement once settled — {} (max {} pods per Deployment of {}; {} Deployments ever above replicas)",
            startup::TARGET_NODES,
            startup::TARGET_PODS_PER_SECOND,
            if rate_met { "met" } else { "MISSED" },
            r.pods_per_second,
            startup::TARGET_P99_MS / 1000.0,
            if p99_met { "met" } else { "MISSED" },
            p99 / 1000.0,
            if exact { "met" } else { "MISSED" },
            r.max_pods_per_deployment,
            r.replicas,
            r.deployments_over_replicas,
        );
    }
    out
}

/// Pods/s against N, and startup latency against N, each with its target.
fn startup_charts(runs: &[startup::StartupRun], base: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let line = |label: &str, pick: &dyn Fn(&startup::StartupRun) -> Option<f64>| Series {
        label: label.to_string(),
        points: runs
            .iter()
            .filter_map(|r| pick(r).map(|v| (r.nodes as f64, v)))
            .collect(),
        markers: true,
        dashed: false,
    };
    let flat = |label: &str, y: f64| Series {
        label: label.to_string(),
        points: runs.iter().map(|r| (r.nodes as f64, y)).collect(),
        markers: false,
        dashed: true,
    };
    let (lo, hi) = startup::KUBE_SCHEDULER_PODS_PER_SECOND;
    let rate = [
        line("pods/s to Running", &|r| Some(r.pods_per_second)),
        flat("target 1,000/s", startup::TARGET_PODS_PER_SECOND),
        flat("kube-scheduler 300/s", hi),
        flat("kube-scheduler 100/s", lo),
    ];
    let mut rate_base = base.as_os_str().to_owned();
    rate_base.push("-rate");
    let mut files = plot::draw(
        &Chart {
            title: "Pods to Running per second vs simulated nodes (30 pods per node)",
            x_label: "simulated nodes",
            y_label: "pods Running per second",
            series: &rate,
            x_range: None,
            y_range: None,
            legend_at: SeriesLabelPosition::UpperRight,
            x_decimals: 0,
            y_decimals: 0,
        },
        Path::new(&rate_base),
    )?;
    let secs = |s: Option<&stats::Summary>, f: fn(&stats::Summary) -> f64| s.map(|s| f(s) / 1000.0);
    let latency = [
        line("saturation startup p50", &|r| {
            secs(r.startup.as_ref(), |s| s.p50_ms)
        }),
        line("saturation startup p99", &|r| {
            secs(r.startup.as_ref(), |s| s.p99_ms)
        }),
        line("saturation placement p99", &|r| {
            secs(r.placement.as_ref(), |s| s.p99_ms)
        }),
        line("latency pods startup p50", &|r| {
            secs(r.latency.as_ref()?.startup.as_ref(), |s| s.p50_ms)
        }),
        line("latency pods startup p99", &|r| {
            secs(r.latency.as_ref()?.startup.as_ref(), |s| s.p99_ms)
        }),
        flat("SLO p99 5 s", startup::TARGET_P99_MS / 1000.0),
    ];
    let mut latency_base = base.as_os_str().to_owned();
    latency_base.push("-latency");
    files.extend(plot::draw(
        &Chart {
            title: "Pod startup latency (created -> Running, via watch) vs simulated nodes",
            x_label: "simulated nodes",
            y_label: "seconds",
            series: &latency,
            x_range: None,
            y_range: None,
            legend_at: SeriesLabelPosition::UpperLeft,
            x_decimals: 0,
            y_decimals: 1,
        },
        Path::new(&latency_base),
    )?);
    Ok(files)
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
