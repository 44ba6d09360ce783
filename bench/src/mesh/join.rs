//! `join-time`: how long a fresh node takes to join a mesh that holds N objects and
//! become ready.
//!
//! - `--mode processes` (default): node A is a real `beemesh up` process loaded with N
//!   ConfigMaps of 1 KiB through its API (64 writers); a fresh `beemesh up --join A
//!   --join-token-file A/join-token` is spawned and timed from spawn to its first `/readyz`
//!   200 (polled every 10 ms), which needs admission, the whole anti-entropy pull, and the
//!   system namespaces. The new node then lists every ConfigMap to check it holds all N.
//! - `--mode in-process`: two `Mesh`es in this process on durable replicas configured as
//!   the node's (`store::replica_config`), A filled with N entries directly; timed from
//!   `Mesh::start` of the fresh node to `MeshHandle::synced()`. This is the mesh's sync
//!   alone, without process start, admission or the API.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use beemesh_mesh_backend::mesh::{Keypair, Mesh, MeshConfig, MeshHandle, Multiaddr};
use beemesh_mesh_backend::{Entry, Replica, ReplicaConfig, Version};
use bytes::Bytes;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::cluster::{JoinVia, MeshNode};
use crate::load::{self, PutPlan};

/// How long a join may take before the run fails.
const JOIN_LIMIT: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JoinMode {
    /// Real `beemesh up` processes, ready = `/readyz` 200.
    Processes,
    /// Two meshes in this process, ready = `MeshHandle::synced()`.
    InProcess,
}

#[derive(clap::Args, Debug, Clone)]
pub struct JoinArgs {
    /// Objects the mesh holds when the fresh node joins, ascending; one mesh is loaded
    /// up to each count in turn.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub counts: Vec<u64>,
    /// Fresh nodes joined (one after the other) at each count; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub joins: usize,
    #[arg(long, value_enum, default_value = "processes")]
    pub mode: JoinMode,
    /// Path of the beemesh binary [default: next to this binary, then $CARGO_TARGET_DIR/release].
    #[arg(long)]
    pub beemesh_bin: Option<PathBuf>,
    /// JSON results [default: bench/results/join-time.json].
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// One count's joins.
#[derive(Debug, Clone, Serialize)]
pub struct JoinRun {
    pub mode: JoinMode,
    pub objects: u64,
    /// Seconds to load the mesh up to `objects` (from the previous count).
    pub load_seconds: f64,
    /// Spawn (or `Mesh::start`) → ready, one per joined node, seconds.
    pub ready_seconds: Vec<f64>,
    pub ready_median_seconds: f64,
    /// Processes only: spawn → the API's first answer of any status (process start,
    /// admission, certificates, opening the store), seconds.
    pub api_up_seconds: Vec<f64>,
    /// Objects the fresh node held when ready (checked against the mesh's count).
    pub objects_on_new_node: Vec<u64>,
    /// RSS of the fresh node once ready, bytes (processes only).
    pub new_node_rss_bytes: Vec<u64>,
}

#[derive(Deserialize)]
struct ListItems {
    items: Vec<serde::de::IgnoredAny>,
}

pub async fn run(args: &JoinArgs) -> anyhow::Result<Vec<JoinRun>> {
    let mut counts = args.counts.clone();
    counts.sort_unstable();
    counts.dedup();
    anyhow::ensure!(
        counts.iter().all(|&c| (1..=2_000_000).contains(&c)),
        "--counts must be within 1..=2000000"
    );
    anyhow::ensure!((1..=20).contains(&args.joins), "--joins must be 1..=20");
    match args.mode {
        JoinMode::Processes => run_processes(args, &counts).await,
        JoinMode::InProcess => run_in_process(args, &counts).await,
    }
}

async fn run_processes(args: &JoinArgs, counts: &[u64]) -> anyhow::Result<Vec<JoinRun>> {
    let bin = crate::beemesh::locate(args.beemesh_bin.as_deref())?;
    eprintln!(
        "== join time (processes): {} ({})",
        bin.display(),
        crate::beemesh::version(&bin)
    );
    let mut a = MeshNode::spawn(&bin, "node-a", None).await?;
    a.wait_ready(Duration::from_secs(60), Duration::from_millis(50))
        .await?;
    let kubeconfig = std::fs::read_to_string(a.data_dir.join("kubeconfig"))?;
    let loader: Arc<dyn load::Target> = Arc::new(crate::beemesh::BeeMeshTarget::from_kubeconfig(
        &kubeconfig,
        false,
    )?);
    let a_client = a.client()?;
    let mut stored = 0u64;
    let mut runs = Vec::new();
    for &count in counts {
        let started = Instant::now();
        let loaded = load::run_puts(
            loader.clone(),
            &PutPlan {
                prefix: "obj".into(),
                concurrency: 64,
                start: stored,
                end: count,
                max_duration: Duration::from_secs(1800),
            },
        )
        .await?;
        anyhow::ensure!(
            loaded.errors == 0 && stored + loaded.ok == count,
            "loading {count} objects into node-a: {} stored, {} failed: {}",
            stored + loaded.ok,
            loaded.errors,
            loaded.first_error.as_deref().unwrap_or("timed out")
        );
        let load_seconds = started.elapsed().as_secs_f64();
        stored = count;
        a.instance
            .child
            .check_alive()
            .with_context(|| a.instance.log_tail())?;
        let on_a = count_configmaps(&a_client, &a.url("")).await?;
        eprintln!("   node-a holds {on_a} ConfigMaps ({count} loaded in {load_seconds:.1} s)");
        // Let A flush and settle so each join meets the same state.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut run = JoinRun {
            mode: JoinMode::Processes,
            objects: count,
            load_seconds,
            ready_seconds: Vec::new(),
            ready_median_seconds: 0.0,
            api_up_seconds: Vec::new(),
            objects_on_new_node: Vec::new(),
            new_node_rss_bytes: Vec::new(),
        };
        for j in 0..args.joins {
            let token = a.token_file();
            let mut fresh = MeshNode::spawn(
                &bin,
                &format!("join-{count}-{j}"),
                Some(JoinVia {
                    p2p: &a.p2p,
                    token_file: &token,
                }),
            )
            .await?;
            let (api_up, ready) = time_ready(&mut fresh).await?;
            let rss = fresh.instance.child.memory().map_or(0, |m| m.rss_bytes);
            let held = count_configmaps(&fresh.client()?, &fresh.url("")).await?;
            eprintln!(
                "   join {j} at {count}: API up after {:.2} s, ready after {:.2} s, holds {held} ConfigMaps, RSS {:.0} MiB",
                api_up,
                ready,
                rss as f64 / 1048576.0
            );
            if held < on_a {
                bail!("the fresh node was ready holding {held} of node-a's {on_a} ConfigMaps");
            }
            run.api_up_seconds.push(api_up);
            run.ready_seconds.push(ready);
            run.objects_on_new_node.push(held);
            run.new_node_rss_bytes.push(rss);
            // Dropping the node stops it and removes its data dir; A forgets it.
            drop(fresh);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        run.ready_median_seconds = median(&run.ready_seconds);
        runs.push(run);
    }
    Ok(runs)
}

/// Polls the fresh node's `/readyz` every 10 ms from its spawn: (API up, ready) seconds.
async fn time_ready(node: &mut MeshNode) -> anyhow::Result<(f64, f64)> {
    let client = node.client()?;
    let url = node.url("/readyz");
    let mut api_up = None;
    loop {
        node.instance
            .child
            .check_alive()
            .with_context(|| node.instance.log_tail())?;
        let elapsed = node.spawned.elapsed();
        if elapsed > JOIN_LIMIT {
            bail!(
                "{} not ready within {JOIN_LIMIT:?}; log:\n{}",
                node.name,
                node.instance.log_tail()
            );
        }
        if let Ok(response) = client
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            let at = node.spawned.elapsed().as_secs_f64();
            api_up.get_or_insert(at);
            if response.status().is_success() {
                return Ok((api_up.unwrap_or(at), at));
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn count_configmaps(client: &reqwest::Client, api: &str) -> anyhow::Result<u64> {
    let response = client
        .get(format!("{api}/api/v1/namespaces/default/configmaps"))
        .header("Accept", "application/json")
        .timeout(Duration::from_secs(120))
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("list answered {status}");
    }
    let list: ListItems = serde_json::from_slice(&body)?;
    Ok(list.items.len() as u64)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

struct InProcessNode {
    _dir: tempfile::TempDir,
    replica: Arc<Replica>,
    mesh: MeshHandle,
}

async fn start_in_process(join: Vec<Multiaddr>) -> anyhow::Result<InProcessNode> {
    let dir = tempfile::Builder::new()
        .prefix("beemesh-bench-join-")
        .tempdir()?;
    let keypair = Keypair::generate_ed25519();
    let replica = Replica::open(
        dir.path(),
        ReplicaConfig {
            origin: keypair.public().to_peer_id().to_bytes().into(),
            ..beemesh_translator::store::replica_config()
        },
    )?;
    let mut config = MeshConfig::new(keypair);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.join = join;
    let mesh = Mesh::start(config, replica.clone()).await?;
    Ok(InProcessNode {
        _dir: dir,
        replica,
        mesh,
    })
}

/// A stored ConfigMap of about 1 KiB, as the object layer stores it.
fn stored_configmap(i: u64) -> Bytes {
    let mut value = vec![0u8; load::VALUE_BYTES];
    load::fill_value(i, &mut value);
    Bytes::from(
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": format!("obj-{i}"),
                "namespace": "default",
                "uid": format!("00000000-0000-4000-8000-{i:012}"),
                "resourceVersion": "1",
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "data": {"value": String::from_utf8_lossy(&value)},
        })
        .to_string(),
    )
}

async fn run_in_process(args: &JoinArgs, counts: &[u64]) -> anyhow::Result<Vec<JoinRun>> {
    eprintln!("== join time (in process, durable replicas)");
    let a = start_in_process(Vec::new()).await?;
    let origin: Bytes = a.mesh.local_peer_id().to_bytes().into();
    let a_addr = a
        .mesh
        .listen_addrs()
        .into_iter()
        .find(|addr| addr.to_string().contains("/tcp/"))
        .context("node A has no TCP address")?;
    let mut stored = 0u64;
    let mut runs = Vec::new();
    for &count in counts {
        let started = Instant::now();
        let mut i = stored;
        while i < count {
            let end = (i + 1000).min(count);
            let entries = (i..end)
                .map(|k| Entry {
                    key: Bytes::from(format!("/core/configmaps/default/obj-{k}")),
                    version: Version {
                        hlc: 1 + k,
                        origin: origin.clone(),
                    },
                    deleted: false,
                    value: stored_configmap(k),
                })
                .collect();
            a.replica.apply_many(entries).await?;
            i = end;
        }
        stored = count;
        let load_seconds = started.elapsed().as_secs_f64();
        eprintln!("   A holds {count} entries (loaded in {load_seconds:.1} s)");
        let mut run = JoinRun {
            mode: JoinMode::InProcess,
            objects: count,
            load_seconds,
            ready_seconds: Vec::new(),
            ready_median_seconds: 0.0,
            api_up_seconds: Vec::new(),
            objects_on_new_node: Vec::new(),
            new_node_rss_bytes: Vec::new(),
        };
        for j in 0..args.joins {
            let started = Instant::now();
            let fresh = start_in_process(vec![a_addr.clone()]).await?;
            tokio::time::timeout(JOIN_LIMIT, fresh.mesh.synced())
                .await
                .context("the fresh mesh did not sync in time")?;
            let took = started.elapsed().as_secs_f64();
            let same = fresh.replica.digests() == a.replica.digests();
            eprintln!("   join {j} at {count}: synced after {took:.2} s (digests equal: {same})");
            anyhow::ensure!(same, "the fresh replica differs from A's after sync");
            run.ready_seconds.push(took);
            run.objects_on_new_node.push(count);
            fresh.mesh.shutdown().await;
            fresh.replica.close();
        }
        run.ready_median_seconds = median(&run.ready_seconds);
        runs.push(run);
    }
    a.mesh.shutdown().await;
    a.replica.close();
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
        assert!(median(&[]).is_nan());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_fresh_in_process_node_pulls_everything_before_it_is_synced() {
        let runs = run(&JoinArgs {
            counts: vec![300],
            joins: 1,
            mode: JoinMode::InProcess,
            beemesh_bin: None,
            output: None,
        })
        .await
        .unwrap();
        assert_eq!(runs[0].objects, 300);
        assert_eq!(runs[0].ready_seconds.len(), 1);
    }
}
