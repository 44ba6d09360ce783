//! `watch-latency`: a 3-node mesh of real `beemesh up` processes; ConfigMap writes paced
//! at a fixed rate through node A, watches open on every node; per write and node, the
//! time from the write's answer at A to the watch event's arrival.
//!
//! Writes are open-loop: write `i` is sent at `start + i / rate` whatever happened to
//! earlier ones (at most `--max-in-flight` outstanding), over one HTTP/2 connection to A.
//! A `--update-fraction` of them are merge-patches of a pre-created pool of ConfigMaps, the
//! rest creates; every write carries `data.seq`, which identifies its watch event (ADDED
//! or MODIFIED) on each node. Watches start from the resourceVersion of a list on the
//! same node just before the writes, so no event is missed or replayed. Everything runs
//! in this process's clock: "answered" is when A's response body was read, "arrived" when
//! the chunk holding the event was read from the node's watch stream.
//!
//! Latency since the answer at A can be negative: when B or C is the key's home it
//! versions and stores the write (and its own watch fires) before A hears back.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use reqwest::Client;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Semaphore, watch};

use super::cluster::{MeshNode, start_mesh};
use super::stats::{Summary, cdf_points};

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
/// How long after the last answer events may still arrive.
const EVENT_GRACE: Duration = Duration::from_secs(5);

#[derive(clap::Args, Debug, Clone)]
pub struct WatchArgs {
    /// Write rates (writes per second through node A), one run each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    pub rates: Vec<u32>,
    /// Seconds of writing per rate.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// ConfigMaps created before measuring, which the updates patch.
    #[arg(long, default_value_t = 1000)]
    pub pool: usize,
    /// Share of writes that are updates (merge-patches of pool objects); the rest create.
    #[arg(long, default_value_t = 0.5)]
    pub update_fraction: f64,
    /// Outstanding writes at most (the schedule slips if A answers slower than this).
    #[arg(long, default_value_t = 512)]
    pub max_in_flight: usize,
    /// Bytes of `data.value` in created ConfigMaps.
    #[arg(long, default_value_t = 1024)]
    pub value_bytes: usize,
    /// Nodes in the mesh (A writes; every node watches).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Path of the beemesh binary [default: next to this binary, then $CARGO_TARGET_DIR/release].
    #[arg(long)]
    pub beemesh_bin: Option<PathBuf>,
    /// JSON results [default: bench/results/watch-latency.json]; plots go next to it.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// One rate's figures.
#[derive(Debug, Clone, Serialize)]
pub struct WatchRun {
    pub rate: u32,
    pub seconds: f64,
    pub writes_planned: usize,
    pub writes_ok: usize,
    pub writes_failed: usize,
    pub first_error: Option<String>,
    pub creates: usize,
    pub updates: usize,
    /// Answered writes per second over the sending period.
    pub achieved_rate: f64,
    /// How far the last send fell behind its slot (0 = the schedule held).
    pub schedule_slip_ms: f64,
    /// Write request sent → response read, at A.
    pub write_latency: Option<Summary>,
    pub nodes: Vec<NodeLatency>,
}

/// Watch latency on one node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeLatency {
    pub node: String,
    /// Whether this node took the writes.
    pub writer: bool,
    pub events_expected: usize,
    pub events_seen: usize,
    /// Write answered at A → event read from this node's watch.
    pub since_answered: Option<Summary>,
    /// Events that arrived before A's answer (this node was the key's home).
    pub before_answer: usize,
    /// Write sent to A → event read from this node's watch.
    pub since_sent: Option<Summary>,
    /// CDFs of `since_answered` and `since_sent` (ms, fraction), at most 200 points each.
    pub cdf_since_answered: Vec<(f64, f64)>,
    pub cdf_since_sent: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
struct WriteRecord {
    sent: Instant,
    answered: Instant,
    ok: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
struct WatchEvent {
    object: EventObject,
}

#[derive(Deserialize)]
struct EventObject {
    data: Option<SeqOnly>,
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: Option<String>,
}

#[derive(Deserialize)]
struct ListHead {
    metadata: ListMeta,
    #[serde(default)]
    items: Vec<ItemName>,
}

#[derive(Deserialize)]
struct ListMeta {
    #[serde(rename = "resourceVersion")]
    resource_version: String,
}

#[derive(Deserialize)]
struct ItemName {
    metadata: NameOnly,
}

#[derive(Deserialize)]
struct NameOnly {
    name: String,
}

/// Starts the mesh, runs every rate, and stops the mesh.
pub async fn run(args: &WatchArgs) -> anyhow::Result<Vec<WatchRun>> {
    anyhow::ensure!(
        args.rates.iter().all(|&r| (1..=20_000).contains(&r)),
        "--rates must be within 1..=20000"
    );
    anyhow::ensure!(
        args.duration > 0.0 && args.duration <= 600.0,
        "--duration must be in (0, 600] s"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.update_fraction),
        "--update-fraction must be within 0..=1"
    );
    anyhow::ensure!(
        args.update_fraction == 0.0 || args.pool > 0,
        "updates need a --pool"
    );
    anyhow::ensure!(args.pool <= 100_000, "--pool at most 100000");
    anyhow::ensure!(
        (1..=10_000).contains(&args.max_in_flight),
        "--max-in-flight must be 1..=10000"
    );
    anyhow::ensure!((2..=8).contains(&args.nodes), "--nodes must be 2..=8");
    anyhow::ensure!(
        args.value_bytes <= 512 * 1024,
        "--value-bytes at most 512 KiB"
    );
    let bin = crate::beemesh::locate(args.beemesh_bin.as_deref())?;
    eprintln!(
        "== watch latency: {} nodes of {} ({})",
        args.nodes,
        bin.display(),
        crate::beemesh::version(&bin)
    );
    let started = Instant::now();
    let mut nodes = start_mesh(&bin, args.nodes).await?;
    eprintln!(
        "   mesh of {} ready in {:.2} s",
        nodes.len(),
        started.elapsed().as_secs_f64()
    );
    let writer = nodes[0].client()?;
    create_pool(&nodes, &writer, args).await?;
    let mut runs = Vec::new();
    for &rate in &args.rates {
        let run = run_rate(&nodes, &writer, args, rate)
            .await
            .with_context(|| format!("{rate} writes/s"))?;
        eprintln!("   {}", one_line(&run));
        runs.push(run);
        for node in nodes.iter_mut() {
            node.instance
                .child
                .check_alive()
                .with_context(|| node.instance.log_tail())?;
        }
    }
    Ok(runs)
}

fn one_line(r: &WatchRun) -> String {
    let mut s = format!(
        "{} writes/s: {}/{} ok ({:.0}/s achieved, slip {:.0} ms), write p50 {:.2} ms p99 {:.2} ms",
        r.rate,
        r.writes_ok,
        r.writes_planned,
        r.achieved_rate,
        r.schedule_slip_ms,
        r.write_latency.as_ref().map_or(f64::NAN, |s| s.p50_ms),
        r.write_latency.as_ref().map_or(f64::NAN, |s| s.p99_ms),
    );
    for n in &r.nodes {
        let l = n.since_answered.as_ref();
        s.push_str(&format!(
            "; {} events {}/{} p50 {:.2} p99 {:.2} ms",
            n.node,
            n.events_seen,
            n.events_expected,
            l.map_or(f64::NAN, |s| s.p50_ms),
            l.map_or(f64::NAN, |s| s.p99_ms)
        ));
    }
    s
}

fn value_of(seed: u64, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    crate::load::fill_value(seed, &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn configmap(name: &str, seq: &str, value: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"beemesh-bench": "watch"}},
        "data": {"seq": seq, "value": value},
    })
}

/// Creates `pool-0..pool-N` through A and waits until every node lists them all.
async fn create_pool(nodes: &[MeshNode], writer: &Client, args: &WatchArgs) -> anyhow::Result<()> {
    if args.pool == 0 || args.update_fraction == 0.0 {
        return Ok(());
    }
    let started = Instant::now();
    let a = &nodes[0];
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..args.pool)
        .map(|k| {
            let body = configmap(
                &format!("pool-{k}"),
                "pool",
                &value_of(k as u64, args.value_bytes),
            );
            let request = writer.post(a.url(CONFIGMAPS)).json(&body);
            async move {
                let response = request.send().await?;
                let status = response.status();
                if !status.is_success() {
                    bail!("creating pool-{k}: {status}: {}", response.text().await?);
                }
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    for node in nodes {
        let client = node.client()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let list = list_head(&client, node, Some("beemesh-bench=watch")).await?;
            let pool = list
                .items
                .iter()
                .filter(|i| i.metadata.name.starts_with("pool-"))
                .count();
            if pool >= args.pool {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{} holds {pool} of {} pool objects after 60 s",
                    node.name,
                    args.pool
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "   pool of {} ConfigMaps created through {} and on every node in {:.2} s",
        args.pool,
        a.name,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn list_head(
    client: &Client,
    node: &MeshNode,
    selector: Option<&str>,
) -> anyhow::Result<ListHead> {
    let url = match selector {
        // Selectors here are `key=value` of plain characters; only `=` needs escaping.
        Some(s) => format!(
            "{}?labelSelector={}",
            node.url(CONFIGMAPS),
            s.replace('=', "%3D")
        ),
        None => node.url(CONFIGMAPS),
    };
    let response = client.get(url).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("{}: list answered {status}", node.name);
    }
    serde_json::from_slice(&body).with_context(|| format!("{}: parsing the list", node.name))
}

/// Reads one node's watch until `stop` turns true; returns seq → arrival.
async fn read_watch(
    response: reqwest::Response,
    mut stop: watch::Receiver<bool>,
    prefix: String,
    counted: Arc<AtomicUsize>,
) -> HashMap<String, Instant> {
    let mut arrivals = HashMap::new();
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
                && let Some(seq) = event.object.data.and_then(|d| d.seq)
            {
                if seq.starts_with(&prefix) && !arrivals.contains_key(&seq) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                arrivals.entry(seq).or_insert(at);
            }
        }
        buffer.drain(..start);
    }
    arrivals
}

async fn run_rate(
    nodes: &[MeshNode],
    writer: &Client,
    args: &WatchArgs,
    rate: u32,
) -> anyhow::Result<WatchRun> {
    let run_tag = format!("r{rate}");
    let planned = ((rate as f64) * args.duration).round().max(1.0) as usize;

    // Watches first, each on its own connection, from the node's current revision.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut watchers = Vec::new();
    let mut counters = Vec::new();
    for node in nodes {
        let client = node.client()?;
        let head = list_head(&client, node, None).await?;
        let response = client
            .get(format!(
                "{}?watch=true&resourceVersion={}",
                node.url(CONFIGMAPS),
                head.metadata.resource_version
            ))
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .with_context(|| format!("{}: opening the watch", node.name))?;
        if !response.status().is_success() {
            bail!("{}: watch answered {}", node.name, response.status());
        }
        let counted = Arc::new(AtomicUsize::new(0));
        counters.push(counted.clone());
        watchers.push(tokio::spawn(read_watch(
            response,
            stop_rx.clone(),
            format!("{run_tag}-"),
            counted,
        )));
    }
    // Let the watch streams settle before the first write.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let records: Arc<Mutex<Vec<Option<WriteRecord>>>> = Arc::new(Mutex::new(vec![None; planned]));
    let in_flight = Arc::new(Semaphore::new(args.max_in_flight));
    let a = &nodes[0];
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut updates = 0usize;
    let mut slip = Duration::ZERO;
    let mut tasks = Vec::with_capacity(planned);
    for i in 0..planned {
        let slot = start + period * i as u32;
        tokio::time::sleep_until(slot).await;
        let permit = in_flight.clone().acquire_owned().await?;
        slip = slip.max(tokio::time::Instant::now().saturating_duration_since(slot));
        let seq = format!("{run_tag}-{i}");
        let is_update = ((i + 1) as f64 * args.update_fraction).floor()
            > (i as f64 * args.update_fraction).floor();
        let request = if is_update {
            let k = updates % args.pool;
            updates += 1;
            writer
                .patch(a.url(&format!("{CONFIGMAPS}/pool-{k}")))
                .header("Content-Type", "application/merge-patch+json")
                .body(json!({"data": {"seq": seq}}).to_string())
        } else {
            let body = configmap(
                &format!("w{run_tag}-{i}"),
                &seq,
                &value_of(i as u64, args.value_bytes),
            );
            writer.post(a.url(CONFIGMAPS)).json(&body)
        };
        let records = records.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(_) if status.is_success() => Ok(()),
                        Ok(body) => Err(format!(
                            "{status}: {}",
                            String::from_utf8_lossy(&body[..body.len().min(300)])
                        )),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            let answered = Instant::now();
            drop(permit);
            let record = WriteRecord {
                sent,
                answered,
                ok: outcome.is_ok(),
                error: outcome.err(),
            };
            if let Ok(mut r) = records.lock() {
                r[i] = Some(record);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let sending_seconds = start.elapsed().as_secs_f64();
    let records: Vec<Option<WriteRecord>> = records
        .lock()
        .map_err(|_| anyhow::anyhow!("a write task panicked"))?
        .clone();
    let ok: Vec<(usize, &WriteRecord)> = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().filter(|r| r.ok).map(|r| (i, r)))
        .collect();

    // Wait for the events, then stop the watches.
    let deadline = Instant::now() + EVENT_GRACE;
    while Instant::now() < deadline
        && counters
            .iter()
            .any(|c| c.load(Ordering::Relaxed) < ok.len())
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    let mut arrivals = Vec::new();
    for (node, watcher) in nodes.iter().zip(watchers) {
        arrivals.push(
            watcher
                .await
                .with_context(|| format!("{}: watch reader", node.name))?,
        );
    }

    let mut per_node = Vec::new();
    for (index, (node, seen)) in nodes.iter().zip(&arrivals).enumerate() {
        let mut since_answered = Vec::with_capacity(ok.len());
        let mut since_sent = Vec::with_capacity(ok.len());
        let mut before_answer = 0;
        for (i, record) in &ok {
            let Some(at) = seen.get(&format!("{run_tag}-{i}")) else {
                continue;
            };
            let signed_ms = |from: Instant| {
                if *at >= from {
                    at.duration_since(from).as_secs_f64() * 1000.0
                } else {
                    -(from.duration_since(*at).as_secs_f64() * 1000.0)
                }
            };
            let ms = signed_ms(record.answered);
            if ms < 0.0 {
                before_answer += 1;
            }
            since_answered.push(ms);
            since_sent.push(signed_ms(record.sent));
        }
        let events_seen = since_answered.len();
        let since_answered_summary = Summary::of(&mut since_answered);
        per_node.push(NodeLatency {
            node: node.name.clone(),
            writer: index == 0,
            events_expected: ok.len(),
            events_seen,
            since_answered: since_answered_summary,
            before_answer,
            since_sent: Summary::of(&mut since_sent),
            cdf_since_answered: cdf_points(&since_answered, 200),
            cdf_since_sent: cdf_points(&since_sent, 200),
        });
    }
    let mut write_ms: Vec<f64> = ok
        .iter()
        .map(|(_, r)| r.answered.duration_since(r.sent).as_secs_f64() * 1000.0)
        .collect();
    let failed: Vec<&WriteRecord> = records.iter().flatten().filter(|r| !r.ok).collect();
    Ok(WatchRun {
        rate,
        seconds: args.duration,
        writes_planned: planned,
        writes_ok: ok.len(),
        writes_failed: failed.len(),
        first_error: failed.first().and_then(|r| r.error.clone()),
        creates: planned - updates,
        updates,
        achieved_rate: ok.len() as f64 / sending_seconds,
        schedule_slip_ms: slip.as_secs_f64() * 1000.0,
        write_latency: Summary::of(&mut write_ms),
        nodes: per_node,
    })
}

/// The x range that shows the body of every CDF picked by `cdf`: from the lowest p0.5 to
/// the highest p99.5, plus a margin (the extreme tails are in the tables).
pub fn cdf_x_range(runs: &[WatchRun], cdf: impl Fn(&NodeLatency) -> &[(f64, f64)]) -> (f64, f64) {
    let mut lo: f64 = 0.0;
    let mut hi: f64 = 1.0;
    for n in runs.iter().flat_map(|r| &r.nodes) {
        let points = cdf(n);
        let at = |q: f64| points.iter().find(|p| p.1 >= q).map(|p| p.0);
        if let (Some(low), Some(high)) = (at(0.005), at(0.995)) {
            lo = lo.min(low);
            hi = hi.max(high);
        }
    }
    let margin = (hi - lo) * 0.05;
    (lo - margin, hi + margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(points: Vec<(f64, f64)>) -> NodeLatency {
        NodeLatency {
            node: "n".into(),
            writer: false,
            events_expected: 0,
            events_seen: 0,
            since_answered: None,
            before_answer: 0,
            since_sent: None,
            cdf_since_answered: points.clone(),
            cdf_since_sent: points,
        }
    }

    #[test]
    fn cdf_range_covers_the_body_not_the_extreme_tails() {
        let mut values: Vec<f64> = (0..1000).map(|i| f64::from(i) / 100.0).collect();
        values[0] = -500.0;
        values[999] = 900.0;
        let run = WatchRun {
            rate: 100,
            seconds: 1.0,
            writes_planned: 0,
            writes_ok: 0,
            writes_failed: 0,
            first_error: None,
            creates: 0,
            updates: 0,
            achieved_rate: 0.0,
            schedule_slip_ms: 0.0,
            write_latency: None,
            nodes: vec![node(cdf_points(&values, 1000))],
        };
        let (lo, hi) = cdf_x_range(&[run], |n| &n.cdf_since_sent);
        assert!(lo < 0.0 && lo > -1.0, "{lo}");
        assert!(hi > 9.9 && hi < 11.0, "{hi}");
    }

    #[test]
    fn created_values_have_the_asked_size() {
        assert_eq!(value_of(3, 1024).len(), 1024);
        assert_ne!(value_of(3, 64), value_of(4, 64));
    }
}
