//! Mesh benchmarks (subcommands of `beemesh-bench`): publication delivery in a simulated
//! mesh of many libp2p nodes, cross-node watch latency on real `beemesh up` processes, and
//! the time a fresh node takes to join a loaded mesh.

pub mod plot;
pub mod sim;
pub mod stats;

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
}

/// Target: a 1,000-node mesh delivers to every node with p99 ≤ 1 s.
pub const TARGET_SIM_NODES: usize = 1000;
pub const TARGET_SIM_P99_MS: f64 = 1000.0;

pub async fn run(command: MeshCommand) -> anyhow::Result<()> {
    match command {
        MeshCommand::GossipSim(args) => gossip_sim(args).await,
    }
}

/// Results directory of the crate (committed figures live there).
pub fn results_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("results")
}

#[derive(Serialize)]
struct SimReport<'a> {
    date: String,
    machine: Machine,
    method: &'static str,
    command: String,
    runs: &'a [sim::SimRun],
}

async fn gossip_sim(args: sim::SimArgs) -> anyhow::Result<()> {
    let machine = Machine::probe();
    let runs = sim::run(&args).await?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| results_dir().join("gossip-sim.json"));
    let mut machine = machine;
    machine.load_average_end = load_average();
    let report = SimReport {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine,
        method: "N swarms in one process, each with the mesh's gossipsub behaviour \
                 (gossipsub_behaviour: config, signing, scoring, member score) and a recorder \
                 instead of a replica; each node dials --dials random earlier nodes; latency = \
                 publish call -> Message event at each node (one clock); hops rebuilt from \
                 first-arrival propagation sources",
        command: std::env::args().collect::<Vec<_>>().join(" "),
        runs: &runs,
    };
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
