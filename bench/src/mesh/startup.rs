//! `pod-startup`: placement and pod startup on N simulated nodes (issue #5 targets).
//!
//! One real `beemesh up --sim-nodes N` process (release) registers N kwok-style Nodes
//! (`bench-sim-0001` …, capacity `cpu=32,memory=256Gi,pods=110`) whose pods run on the
//! `sim` runtime; the node itself has no runtime and so carries the no-runtime taint:
//! exactly N nodes take pods. Once all N are Ready, the bench opens a watch on the pods of
//! `default` from the resourceVersion of a list taken before anything is created, then
//! creates `N × pods-per-node / replicas` Deployments of `replicas` pods each through the
//! API (JSON over HTTP/2 with the admin certificate, `create-concurrency` in flight, as
//! many `kubectl create` would), and reads the watch until every pod is Running (the
//! *saturation* phase). Then, on the cluster now holding those pods, the *latency* phase:
//! `latency-pods` Deployments of one replica each created at `latency-rate` per second (as
//! ClusterLoader2's density test creates its latency pods on a saturated cluster and
//! judges the pod startup SLO on them, not on the saturation pods), read until they run
//! too; then `settle` seconds more.
//!
//! Definitions (all times in the bench's clock):
//! - *created*: the pod's first watch event (ADDED) was read. The pod's
//!   `creationTimestamp` has one-second resolution, too coarse for a p99 of seconds;
//!   the ADDED event trails the create by the watch delivery (milliseconds, see
//!   `watch-latency`), so this is the upstream SLO's start point, observed.
//! - *Running*: the first watch event with `status.phase: Running` was read (upstream's
//!   pod startup SLO: creation → all containers started, observed via watch;
//!   ClusterLoader2's `PodStartupLatency` takes both times from its watch the same way).
//! - *startup latency*: created → Running. Also reported: Deployment create sent →
//!   Running (includes the Deployment and ReplicaSet controllers), and created → bound
//!   (`spec.nodeName` seen: placement's share).
//! - *pods/s to Running*: pods Running / (last pod Running − first Deployment create sent);
//!   for a run that timed out, / (timeout − first create sent).
//! - *over-placement*: per Deployment (pod label `bench-deploy`), the most pods that
//!   existed at once (ADDED minus DELETED, terminating pods included), against its
//!   replicas; and, once settled, the pods that exist. Also the most live pods bound to
//!   one node, against its `pods` capacity.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use reqwest::Client;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use super::cluster::MeshNode;
use super::stats::{Summary, cdf_points};

const PODS: &str = "/api/v1/namespaces/default/pods";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const DEPLOY_LABEL: &str = "bench-deploy";
/// Name prefix of the saturation phase's Deployments.
const SATURATION_PREFIX: &str = "startup-";
/// Name prefix of the latency phase's single-replica Deployments.
const LATENCY_PREFIX: &str = "latency-";
/// Requests of a saturation pod.
const SATURATION_REQUESTS: (&str, &str) = ("10m", "16Mi");
/// Requests of a latency pod: ClusterLoader2's density defaults (`LATENCY_POD_CPU` 100m,
/// `LATENCY_POD_MEMORY` 350M).
const LATENCY_REQUESTS: (&str, &str) = ("100m", "350M");
/// The capacity of every simulated node (kwok's default).
pub const SIM_CAPACITY: &str = "cpu=32,memory=256Gi,pods=110";

/// Targets of issue #5.
pub const TARGET_NODES: usize = 1000;
pub const TARGET_PODS_PER_SECOND: f64 = 1000.0;
pub const TARGET_P99_MS: f64 = 5000.0;
/// kube-scheduler's throughput on real clusters (the anchor the issue quotes).
pub const KUBE_SCHEDULER_PODS_PER_SECOND: (f64, f64) = (100.0, 300.0);

#[derive(clap::Args, Debug, Clone)]
pub struct StartupArgs {
    /// Simulated node counts, one run (fresh process) each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    pub nodes: Vec<usize>,
    /// Pods created per simulated node.
    #[arg(long, default_value_t = 30)]
    pub pods_per_node: usize,
    /// Replicas of each Deployment (N × pods-per-node / replicas Deployments).
    #[arg(long, default_value_t = 30)]
    pub replicas: usize,
    /// Deployment creates in flight.
    #[arg(long, default_value_t = 8)]
    pub create_concurrency: usize,
    /// Seconds to wait for every pod to run before giving up on a run.
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
    /// Latency phase: single-replica Deployments created after every saturation pod runs
    /// (ClusterLoader2's density test: max(500, nodes) at 5/s); 0 skips the phase.
    #[arg(long, default_value_t = 500)]
    pub latency_pods: usize,
    /// Latency phase: Deployment creates per second (ClusterLoader2's `Uniform5qps`).
    #[arg(long, default_value_t = 5.0)]
    pub latency_rate: f64,
    /// Seconds the watch is read after the last pod ran (over-placement check).
    #[arg(long, default_value_t = 5.0)]
    pub settle: f64,
    /// Path of the beemesh binary [default: next to this binary, then $CARGO_TARGET_DIR/release].
    #[arg(long)]
    pub beemesh_bin: Option<PathBuf>,
    /// JSON results [default: bench/results/pod-startup.json]; plots go next to it.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// One node count's figures.
#[derive(Debug, Clone, Serialize)]
pub struct StartupRun {
    pub nodes: usize,
    pub deployments: usize,
    pub replicas: usize,
    pub pods_expected: usize,
    pub pods_running: usize,
    /// Process start → all N simulated Nodes Ready.
    pub nodes_ready_seconds: f64,
    /// First Deployment create sent → last Deployment create answered.
    pub create_seconds: f64,
    /// First Deployment create sent → last pod Running.
    pub wall_seconds: f64,
    pub pods_per_second: f64,
    /// Pod ADDED seen → Running seen (the headline).
    pub startup: Option<Summary>,
    /// Pod ADDED seen → `spec.nodeName` seen.
    pub placement: Option<Summary>,
    /// Deployment create sent → pod Running seen.
    pub since_deployment_create: Option<Summary>,
    /// CDF of `startup` (ms, fraction), at most 200 points.
    pub startup_cdf: Vec<(f64, f64)>,
    /// The most pods that existed at once for one Deployment, and its replicas.
    pub max_pods_per_deployment: usize,
    /// Deployments that ever had more pods than replicas (a transient surplus).
    pub deployments_over_replicas: usize,
    /// After settling: Deployments whose pod count is not exactly `replicas`.
    pub deployments_off_when_settled: usize,
    /// The most live pods bound to one node at once, and the nodes' `pods` capacity.
    pub max_pods_per_node: usize,
    pub node_pod_capacity: usize,
    pub watch_events: usize,
    pub node_rss_bytes: u64,
    pub node_peak_rss_bytes: u64,
    /// Load average when the run started and ended.
    pub load_average: (String, String),
    /// The latency phase on the saturated cluster (`None`: skipped, or the saturation
    /// phase did not finish).
    pub latency: Option<LatencyPhase>,
}

/// Single-replica Deployments created at a steady rate once the saturation pods run:
/// ClusterLoader2's "latency pods", on which upstream judges the pod startup SLO.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyPhase {
    pub pods_expected: usize,
    pub pods_running: usize,
    /// Creates per second asked for, and achieved (creates sent / first → last sent).
    pub rate_per_second: f64,
    pub achieved_rate_per_second: f64,
    /// Last saturation pod Running → first latency Deployment create sent.
    pub gap_after_saturation_seconds: f64,
    /// First latency create sent → last latency pod Running.
    pub wall_seconds: f64,
    /// Pod ADDED seen → Running seen (the SLO figure, as ClusterLoader2 measures it).
    pub startup: Option<Summary>,
    /// Pod ADDED seen → `spec.nodeName` seen.
    pub placement: Option<Summary>,
    /// Deployment create sent → pod Running seen.
    pub since_deployment_create: Option<Summary>,
    /// CDF of `startup` (ms, fraction), at most 200 points.
    pub startup_cdf: Vec<(f64, f64)>,
    /// Per latency pod, in creation order: (s from the first latency create sent to its
    /// ADDED event, startup ms) — where in the phase the slow ones were.
    pub startup_by_creation: Vec<(f64, f64)>,
}

#[derive(Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    object: PodObject,
}

#[derive(Deserialize)]
struct PodObject {
    #[serde(default)]
    metadata: PodMeta,
    #[serde(default)]
    spec: PodSpec,
    #[serde(default)]
    status: PodStatus,
}

#[derive(Deserialize, Default)]
struct PodMeta {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    labels: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct PodSpec {
    #[serde(rename = "nodeName", default)]
    node_name: Option<String>,
}

#[derive(Deserialize, Default)]
struct PodStatus {
    #[serde(default)]
    phase: Option<String>,
}

/// What the watch saw of one pod.
struct PodSeen {
    deployment: String,
    added: Instant,
    bound: Option<Instant>,
    node: Option<String>,
    running: Option<Instant>,
    gone: bool,
}

/// Everything the watch reader gathered.
#[derive(Default)]
struct Observed {
    pods: HashMap<String, PodSeen>,
    live_per_deployment: HashMap<String, usize>,
    max_per_deployment: HashMap<String, usize>,
    live_per_node: HashMap<String, usize>,
    max_per_node: usize,
    events: usize,
}

impl Observed {
    /// Applies one event read at `at`; returns the Deployment of a pod that just turned
    /// Running.
    fn apply(&mut self, event: WatchEvent, at: Instant) -> Option<&str> {
        self.events += 1;
        let PodObject {
            metadata,
            spec,
            status,
        } = event.object;
        if metadata.uid.is_empty() {
            return None;
        }
        let deployment = metadata
            .labels
            .get(DEPLOY_LABEL)
            .cloned()
            .unwrap_or_default();
        let pod = self.pods.entry(metadata.uid).or_insert_with(|| {
            *self
                .live_per_deployment
                .entry(deployment.clone())
                .or_default() += 1;
            let live = self.live_per_deployment[&deployment];
            let max = self
                .max_per_deployment
                .entry(deployment.clone())
                .or_default();
            *max = (*max).max(live);
            PodSeen {
                deployment,
                added: at,
                bound: None,
                node: None,
                running: None,
                gone: false,
            }
        });
        if pod.gone {
            return None;
        }
        if let Some(node) = spec.node_name.filter(|n| !n.is_empty())
            && pod.node.is_none()
        {
            pod.bound = Some(at);
            let live = self.live_per_node.entry(node.clone()).or_default();
            *live += 1;
            self.max_per_node = self.max_per_node.max(*live);
            pod.node = Some(node);
        }
        if event.kind == "DELETED" {
            pod.gone = true;
            if let Some(n) = self.live_per_deployment.get_mut(&pod.deployment) {
                *n = n.saturating_sub(1);
            }
            if let Some(node) = &pod.node
                && let Some(n) = self.live_per_node.get_mut(node)
            {
                *n = n.saturating_sub(1);
            }
            return None;
        }
        if pod.running.is_none() && status.phase.as_deref() == Some("Running") {
            pod.running = Some(at);
            return Some(&pod.deployment);
        }
        None
    }
}

/// Runs every node count, each on a fresh process.
pub async fn run(args: &StartupArgs) -> anyhow::Result<Vec<StartupRun>> {
    anyhow::ensure!(
        args.nodes.iter().all(|&n| (1..=5000).contains(&n)),
        "--nodes must be within 1..=5000"
    );
    anyhow::ensure!(
        (1..=110).contains(&args.pods_per_node),
        "--pods-per-node must be 1..=110 (the simulated nodes' pod capacity)"
    );
    anyhow::ensure!(
        (1..=10_000).contains(&args.replicas),
        "--replicas must be 1..=10000"
    );
    anyhow::ensure!(
        (1..=256).contains(&args.create_concurrency),
        "--create-concurrency must be 1..=256"
    );
    anyhow::ensure!(
        args.timeout > 0.0 && args.timeout <= 3600.0,
        "--timeout must be in (0, 3600] s"
    );
    anyhow::ensure!(
        args.latency_pods <= 100_000,
        "--latency-pods must be at most 100000"
    );
    anyhow::ensure!(
        args.latency_rate > 0.0 && args.latency_rate <= 1000.0,
        "--latency-rate must be in (0, 1000] per second"
    );
    anyhow::ensure!(
        (0.0..=600.0).contains(&args.settle),
        "--settle must be in [0, 600] s"
    );
    let bin = crate::beemesh::locate(args.beemesh_bin.as_deref())?;
    eprintln!(
        "== pod startup: {} ({})",
        bin.display(),
        crate::beemesh::version(&bin)
    );
    let mut runs = Vec::new();
    for &n in &args.nodes {
        let run = run_one(&bin, args, n)
            .await
            .with_context(|| format!("{n} simulated nodes"))?;
        eprintln!("   {}", one_line(&run));
        runs.push(run);
    }
    Ok(runs)
}

fn one_line(r: &StartupRun) -> String {
    let ms = |s: &Option<Summary>, f: fn(&Summary) -> f64| s.as_ref().map_or(f64::NAN, f);
    format!(
        "{} nodes: {}/{} pods Running in {:.1} s = {:.0} pods/s; startup p50 {:.0} p99 {:.0} ms; \
         placement p99 {:.0} ms; max pods/Deployment {} (replicas {}), over {}; max pods/node {}{}",
        r.nodes,
        r.pods_running,
        r.pods_expected,
        r.wall_seconds,
        r.pods_per_second,
        ms(&r.startup, |s| s.p50_ms),
        ms(&r.startup, |s| s.p99_ms),
        ms(&r.placement, |s| s.p99_ms),
        r.max_pods_per_deployment,
        r.replicas,
        r.deployments_over_replicas,
        r.max_pods_per_node,
        r.latency.as_ref().map_or(String::new(), |l| format!(
            "; latency pods {}/{} at {:.1}/s: startup p50 {:.0} p90 {:.0} p99 {:.0} ms",
            l.pods_running,
            l.pods_expected,
            l.achieved_rate_per_second,
            ms(&l.startup, |s| s.p50_ms),
            ms(&l.startup, |s| s.p90_ms),
            ms(&l.startup, |s| s.p99_ms),
        )),
    )
}

fn deployment(name: &str, replicas: usize, (cpu, memory): (&str, &str)) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {DEPLOY_LABEL: name}},
            "template": {
                "metadata": {"labels": {DEPLOY_LABEL: name}},
                "spec": {
                    "containers": [{
                        "name": "app",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": cpu, "memory": memory}},
                    }],
                },
            },
        },
    })
}

#[derive(Deserialize)]
struct NodeList {
    items: Vec<NodeItem>,
}

#[derive(Deserialize)]
struct NodeItem {
    #[serde(default)]
    status: NodeStatus,
}

#[derive(Deserialize, Default)]
struct NodeStatus {
    #[serde(default)]
    conditions: Vec<NodeCondition>,
}

#[derive(Deserialize)]
struct NodeCondition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
}

#[derive(Deserialize)]
struct ListMeta {
    metadata: ListVersion,
}

#[derive(Deserialize)]
struct ListVersion {
    #[serde(rename = "resourceVersion")]
    resource_version: String,
}

/// Waits until `n` simulated Nodes report Ready.
async fn wait_nodes_ready(node: &mut MeshNode, client: &Client, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let url = node.url("/api/v1/nodes?labelSelector=beemesh.io%2Fsimulated%3Dtrue");
    loop {
        node.instance
            .child
            .check_alive()
            .with_context(|| node.instance.log_tail())?;
        let response = client.get(&url).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            bail!("listing Nodes answered {status}");
        }
        let list: NodeList = serde_json::from_slice(&body).context("parsing the NodeList")?;
        let ready = list
            .items
            .iter()
            .filter(|i| {
                i.status
                    .conditions
                    .iter()
                    .any(|c| c.kind == "Ready" && c.status == "True")
            })
            .count();
        if ready >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{ready} of {n} simulated Nodes Ready after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Running pods counted by the watch reader, per phase.
#[derive(Default)]
struct RunningCounts {
    saturation: AtomicUsize,
    latency: AtomicUsize,
}

/// Reads the pod watch into `observed` until `stop`; counts Running pods in `running`.
async fn read_watch(
    response: reqwest::Response,
    mut stop: watch::Receiver<bool>,
    running: Arc<RunningCounts>,
) -> Observed {
    let mut observed = Observed::default();
    let mut stream = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let chunk = tokio::select! {
            chunk = stream.next() => chunk,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Some(Ok(chunk)) = chunk else { break };
        let at = Instant::now();
        buffer.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(pos) = buffer[start..].iter().position(|&b| b == b'\n') {
            let line = &buffer[start..start + pos];
            start += pos + 1;
            if let Ok(event) = serde_json::from_slice::<WatchEvent>(line)
                && let Some(deployment) = observed.apply(event, at)
            {
                let counter = if deployment.starts_with(LATENCY_PREFIX) {
                    &running.latency
                } else {
                    &running.saturation
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        buffer.drain(..start);
    }
    observed
}

async fn run_one(
    bin: &std::path::Path,
    args: &StartupArgs,
    n: usize,
) -> anyhow::Result<StartupRun> {
    let load_start = crate::report::load_average();
    let total = n * args.pods_per_node;
    let deployments = total.div_ceil(args.replicas);
    let extra = [
        "--sim-nodes".to_string(),
        n.to_string(),
        "--sim-node-capacity".to_string(),
        SIM_CAPACITY.to_string(),
    ];
    let mut node = MeshNode::spawn_with(bin, "bench", None, &extra).await?;
    node.wait_ready(Duration::from_secs(120), Duration::from_millis(50))
        .await?;
    let client = node.client()?;
    wait_nodes_ready(&mut node, &client, n).await?;
    let nodes_ready_seconds = node.spawned.elapsed().as_secs_f64();
    eprintln!("   {n} simulated nodes Ready {nodes_ready_seconds:.1} s after start");

    // The watch starts from a revision before the first create: no pod event is missed.
    let response = client
        .get(node.url(&format!("{PODS}?limit=1")))
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("listing pods answered {status}");
    }
    let rv = serde_json::from_slice::<ListMeta>(&body)?
        .metadata
        .resource_version;
    let watch_client = node.client()?;
    let response = watch_client
        .get(node.url(&format!("{PODS}?watch=true&resourceVersion={rv}")))
        .timeout(Duration::from_secs(7200))
        .send()
        .await
        .context("opening the pod watch")?;
    if !response.status().is_success() {
        bail!("the pod watch answered {}", response.status());
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let running = Arc::new(RunningCounts::default());
    let reader = tokio::spawn(read_watch(response, stop_rx, running.clone()));

    // Saturation: Deployments through the API, `create_concurrency` at a time.
    let started = Instant::now();
    let plans: Vec<(String, usize)> = (0..deployments)
        .map(|i| {
            let replicas = args.replicas.min(total - i * args.replicas);
            (format!("{SATURATION_PREFIX}{:05}", i + 1), replicas)
        })
        .collect();
    let sent: Vec<anyhow::Result<(String, Instant)>> = futures::stream::iter(plans.clone())
        .map(|(name, replicas)| {
            let request = client.post(node.url(DEPLOYMENTS)).json(&deployment(
                &name,
                replicas,
                SATURATION_REQUESTS,
            ));
            create(request, name)
        })
        .buffer_unordered(args.create_concurrency)
        .collect()
        .await;
    let sent: HashMap<String, Instant> = sent.into_iter().collect::<anyhow::Result<_>>()?;
    let create_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "   {deployments} Deployments of {} created in {create_seconds:.1} s",
        args.replicas
    );
    let deadline = started + Duration::from_secs_f64(args.timeout);
    let stopped = wait_running(&mut node, &running.saturation, total, deadline, started).await?;
    let saturated = running.saturation.load(Ordering::Relaxed) >= total;

    // Latency: single-replica Deployments at a steady rate on the saturated cluster.
    let mut latency_plans: Vec<(String, usize)> = Vec::new();
    let mut latency_sent: HashMap<String, Instant> = HashMap::new();
    let mut latency_window: Option<(Instant, Instant, Instant)> = None;
    if saturated && args.latency_pods > 0 {
        latency_plans = (0..args.latency_pods)
            .map(|i| (format!("{LATENCY_PREFIX}{:05}", i + 1), 1))
            .collect();
        let period = Duration::from_secs_f64(1.0 / args.latency_rate);
        let latency_started = Instant::now();
        let mut ticks = tokio::time::interval_at(latency_started.into(), period);
        // A late tick does not bunch the creates that follow it.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut creates = Vec::with_capacity(latency_plans.len());
        for (name, replicas) in &latency_plans {
            ticks.tick().await;
            let request = client.post(node.url(DEPLOYMENTS)).json(&deployment(
                name,
                *replicas,
                LATENCY_REQUESTS,
            ));
            // Sent at the rate whatever the answers take, as ClusterLoader2's qpsLoad does.
            creates.push(tokio::spawn(create(request, name.clone())));
        }
        let last_sent = Instant::now();
        for handle in creates {
            let (name, at) = handle.await.context("a latency create")??;
            latency_sent.insert(name, at);
        }
        eprintln!(
            "   {} latency Deployments of 1 created at {} per second in {:.1} s",
            latency_plans.len(),
            args.latency_rate,
            last_sent.duration_since(latency_started).as_secs_f64()
        );
        let deadline = last_sent + Duration::from_secs_f64(args.timeout);
        let latency_stopped = wait_running(
            &mut node,
            &running.latency,
            latency_plans.len(),
            deadline,
            latency_started,
        )
        .await?;
        latency_window = Some((latency_started, last_sent, latency_stopped));
    } else if args.latency_pods > 0 {
        eprintln!("   latency phase skipped: the saturation pods did not all run");
    }

    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let _ = stop_tx.send(true);
    let observed = reader.await.context("the watch reader")?;
    let memory = node.instance.child.memory()?;
    // `BEEMESH_BENCH_KEEP_LOG=<dir>`: the node's log outlives its temporary directory.
    if let Ok(dir) = std::env::var("BEEMESH_BENCH_KEEP_LOG") {
        let to = PathBuf::from(dir).join(format!("pod-startup-{n}-nodes.log"));
        if let Err(e) = std::fs::copy(node.instance.log_path(), &to) {
            eprintln!("   keeping the node log as {}: {e}", to.display());
        }
    }
    drop(node);

    let saturation = PhaseFigures::of(&observed, &sent, started);
    // A run that timed out is timed to its end, not to the last pod that made it.
    let wall_seconds = if saturation.pods_running < total {
        stopped.duration_since(started).as_secs_f64()
    } else {
        saturation
            .last_running
            .duration_since(started)
            .as_secs_f64()
    };
    let latency = latency_window.map(|(latency_started, last_sent, latency_stopped)| {
        let mut figures = PhaseFigures::of(&observed, &latency_sent, latency_started);
        let expected = latency_plans.len();
        let end = if figures.pods_running < expected {
            latency_stopped
        } else {
            figures.last_running
        };
        let sending = last_sent.duration_since(latency_started).as_secs_f64();
        LatencyPhase {
            pods_expected: expected,
            pods_running: figures.pods_running,
            rate_per_second: args.latency_rate,
            achieved_rate_per_second: if sending > 0.0 && expected > 1 {
                (expected - 1) as f64 / sending
            } else {
                0.0
            },
            gap_after_saturation_seconds: latency_started
                .saturating_duration_since(saturation.last_running)
                .as_secs_f64(),
            wall_seconds: end.duration_since(latency_started).as_secs_f64(),
            startup_cdf: cdf_points(&figures.startup, 200),
            startup_by_creation: {
                let mut by = figures
                    .by_creation
                    .iter()
                    .map(|(added, ms)| (added.duration_since(latency_started).as_secs_f64(), *ms))
                    .collect::<Vec<_>>();
                by.sort_by(|a, b| a.0.total_cmp(&b.0));
                by
            },
            startup: Summary::of(&mut figures.startup),
            placement: Summary::of(&mut figures.placement),
            since_deployment_create: Summary::of(&mut figures.since_create),
        }
    });
    let PhaseFigures {
        mut startup,
        mut placement,
        mut since_create,
        pods_running,
        ..
    } = saturation;
    let startup_summary = Summary::of(&mut startup);
    let replicas_of: HashMap<&str, usize> = plans
        .iter()
        .chain(&latency_plans)
        .map(|(n, r)| (n.as_str(), *r))
        .collect();
    let over = observed
        .max_per_deployment
        .iter()
        .filter(|(d, max)| replicas_of.get(d.as_str()).is_some_and(|r| *max > r))
        .count();
    let off_when_settled = plans
        .iter()
        .chain(&latency_plans)
        .filter(|(d, r)| observed.live_per_deployment.get(d).copied().unwrap_or(0) != *r)
        .count();
    Ok(StartupRun {
        nodes: n,
        deployments,
        replicas: args.replicas,
        pods_expected: total,
        pods_running,
        nodes_ready_seconds,
        create_seconds,
        wall_seconds,
        pods_per_second: if wall_seconds > 0.0 {
            pods_running as f64 / wall_seconds
        } else {
            0.0
        },
        startup_cdf: cdf_points(&startup, 200),
        startup: startup_summary,
        placement: Summary::of(&mut placement),
        since_deployment_create: Summary::of(&mut since_create),
        max_pods_per_deployment: observed
            .max_per_deployment
            .values()
            .copied()
            .max()
            .unwrap_or(0),
        deployments_over_replicas: over,
        deployments_off_when_settled: off_when_settled,
        max_pods_per_node: observed.max_per_node,
        node_pod_capacity: 110,
        watch_events: observed.events,
        node_rss_bytes: memory.rss_bytes,
        node_peak_rss_bytes: memory.peak_rss_bytes,
        load_average: (load_start, crate::report::load_average()),
        latency,
    })
}

/// Sends one Deployment create; answers its name and when it was sent.
async fn create(
    request: reqwest::RequestBuilder,
    name: String,
) -> anyhow::Result<(String, Instant)> {
    let at = Instant::now();
    let response = request.send().await?;
    let status = response.status();
    if !status.is_success() {
        bail!("creating {name}: {status}: {}", response.text().await?);
    }
    Ok((name, at))
}

/// Waits until `running` reaches `expected` or `deadline`; answers when it stopped.
async fn wait_running(
    node: &mut MeshNode,
    running: &AtomicUsize,
    expected: usize,
    deadline: Instant,
    started: Instant,
) -> anyhow::Result<Instant> {
    let mut last_report = Instant::now();
    loop {
        let done = running.load(Ordering::Relaxed);
        if done >= expected {
            break;
        }
        node.instance
            .child
            .check_alive()
            .with_context(|| node.instance.log_tail())?;
        if Instant::now() > deadline {
            eprintln!(
                "   timed out after {:.0} s with {done} of {expected} pods Running",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "   {:.0} s: {done} of {expected} pods Running",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Instant::now())
}

/// The latencies of the pods of one phase's Deployments (`sent`: name → create sent).
struct PhaseFigures {
    startup: Vec<f64>,
    placement: Vec<f64>,
    since_create: Vec<f64>,
    /// (ADDED seen, startup ms) of each pod that ran.
    by_creation: Vec<(Instant, f64)>,
    pods_running: usize,
    last_running: Instant,
}

impl PhaseFigures {
    fn of(observed: &Observed, sent: &HashMap<String, Instant>, started: Instant) -> Self {
        let mut figures = Self {
            startup: Vec::new(),
            placement: Vec::new(),
            since_create: Vec::new(),
            by_creation: Vec::new(),
            pods_running: 0,
            last_running: started,
        };
        for pod in observed.pods.values() {
            let Some(s) = sent.get(&pod.deployment) else {
                continue;
            };
            if let Some(b) = pod.bound {
                figures
                    .placement
                    .push(b.duration_since(pod.added).as_secs_f64() * 1000.0);
            }
            if let Some(r) = pod.running {
                figures.pods_running += 1;
                figures.last_running = figures.last_running.max(r);
                let ms = r.duration_since(pod.added).as_secs_f64() * 1000.0;
                figures.startup.push(ms);
                figures.by_creation.push((pod.added, ms));
                figures
                    .since_create
                    .push(r.duration_since(*s).as_secs_f64() * 1000.0);
            }
        }
        figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, uid: &str, node: Option<&str>, phase: &str) -> WatchEvent {
        serde_json::from_value(json!({
            "type": kind,
            "object": {
                "metadata": {"uid": uid, "labels": {DEPLOY_LABEL: "d"}},
                "spec": {"nodeName": node},
                "status": {"phase": phase},
            },
        }))
        .unwrap()
    }

    #[test]
    fn the_watch_counts_running_pods_and_pods_per_owner() {
        let mut o = Observed::default();
        let t = Instant::now();
        assert_eq!(o.apply(event("ADDED", "a", None, "Pending"), t), None);
        assert_eq!(o.apply(event("ADDED", "b", None, "Pending"), t), None);
        assert_eq!(
            o.apply(event("MODIFIED", "a", Some("n1"), "Pending"), t),
            None
        );
        assert_eq!(
            o.apply(event("MODIFIED", "a", Some("n1"), "Running"), t),
            Some("d")
        );
        // Running is counted once.
        assert_eq!(
            o.apply(event("MODIFIED", "a", Some("n1"), "Running"), t),
            None
        );
        assert_eq!(o.max_per_deployment["d"], 2);
        assert_eq!(o.max_per_node, 1);
        assert_eq!(o.apply(event("DELETED", "b", None, "Pending"), t), None);
        assert_eq!(o.live_per_deployment["d"], 1);
        assert_eq!(o.max_per_deployment["d"], 2);
    }

    #[test]
    fn each_phase_counts_only_the_pods_of_its_own_deployments() {
        let mut o = Observed::default();
        let t = Instant::now();
        let pod = |uid: &str, deployment: &str, phase: &str| -> WatchEvent {
            serde_json::from_value(json!({
                "type": "MODIFIED",
                "object": {
                    "metadata": {"uid": uid, "labels": {DEPLOY_LABEL: deployment}},
                    "spec": {"nodeName": "n1"},
                    "status": {"phase": phase},
                },
            }))
            .unwrap()
        };
        o.apply(pod("s1", "startup-00001", "Running"), t);
        o.apply(pod("s2", "startup-00001", "Pending"), t);
        let later = t + Duration::from_millis(1500);
        assert_eq!(
            o.apply(pod("l1", "latency-00001", "Running"), later),
            Some("latency-00001")
        );
        let saturation = HashMap::from([("startup-00001".to_string(), t)]);
        let latency = HashMap::from([("latency-00001".to_string(), t)]);
        let s = PhaseFigures::of(&o, &saturation, t);
        assert_eq!((s.pods_running, s.placement.len()), (1, 2));
        let l = PhaseFigures::of(&o, &latency, t);
        assert_eq!(l.pods_running, 1);
        assert_eq!(l.since_create, vec![1500.0]);
        assert_eq!(l.by_creation, vec![(later, 0.0)]);
        assert_eq!(l.last_running, later);
    }
}
