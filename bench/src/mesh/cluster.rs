//! Real `beemesh up` processes on 127.0.0.1 joined into one mesh.
//!
//! A node prints its interface on stdout (`api:`, `p2p:` with `/p2p/<peer id>`,
//! `kubeconfig:`, `join-token:`, then `ready:`), which goes to its log file here; the
//! first node founds the mesh, the others `--join` its TCP address with
//! `--join-token-file` pointing at its `DIR/join-token`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Client;

use crate::beemesh::BeeMeshTarget;
use crate::load::Target;
use crate::procs::{ChildGuard, Instance};

/// How long a node may take to print its addresses.
const START_LIMIT: Duration = Duration::from_secs(60);

/// A running node of the mesh.
pub struct MeshNode {
    pub name: String,
    pub instance: Instance,
    pub data_dir: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub api: String,
    /// The TCP p2p address, ending in `/p2p/<peer id>`.
    pub p2p: String,
    pub target: BeeMeshTarget,
    /// When the process was spawned.
    pub spawned: Instant,
}

/// Who a new node joins through.
pub struct JoinVia<'a> {
    pub p2p: &'a str,
    pub token_file: &'a Path,
}

impl MeshNode {
    /// Spawns `beemesh up` with a fresh data dir, an ephemeral API port and a TCP p2p
    /// listener on 127.0.0.1, and waits until it printed its API and p2p addresses (not
    /// until it is ready: see [`MeshNode::wait_ready`]).
    pub async fn spawn(bin: &Path, name: &str, join: Option<JoinVia<'_>>) -> anyhow::Result<Self> {
        Self::spawn_with(bin, name, join, &[]).await
    }

    /// [`MeshNode::spawn`] with more `beemesh up` flags (e.g. `--sim-nodes 100`).
    pub async fn spawn_with(
        bin: &Path,
        name: &str,
        join: Option<JoinVia<'_>>,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("beemesh-bench-mesh-")
            .tempdir()?;
        let data = dir.path().join("data");
        let mut cmd = Command::new(bin);
        cmd.arg("up")
            .arg("--data-dir")
            .arg(&data)
            .arg("--node-name")
            .arg(name)
            .arg("--api-listen")
            .arg("127.0.0.1:0")
            .arg("--p2p-listen")
            .arg("/ip4/127.0.0.1/tcp/0")
            .args(extra)
            // `BEEMESH_BENCH_NODE_LOG` (a `BEEMESH_LOG` filter) to see a node's debug lines.
            .env(
                "BEEMESH_LOG",
                std::env::var("BEEMESH_BENCH_NODE_LOG").unwrap_or_else(|_| "warn".into()),
            );
        if let Some(via) = &join {
            cmd.arg("--join")
                .arg(via.p2p)
                .arg("--join-token-file")
                .arg(via.token_file);
        }
        let log = dir.path().join("server.log");
        let spawned = Instant::now();
        let child = ChildGuard::spawn("beemesh", cmd, &log)?;
        let mut instance = Instance { child, dir };
        let (api, p2p) = wait_addresses(&mut instance)
            .await
            .with_context(|| format!("{name} did not start; log:\n{}", instance.log_tail()))?;
        let kubeconfig = std::fs::read_to_string(data.join("kubeconfig"))
            .with_context(|| format!("{name}: reading its kubeconfig"))?;
        let target = BeeMeshTarget::from_kubeconfig(&kubeconfig, false)?;
        Ok(Self {
            name: name.to_string(),
            instance,
            data_dir: data,
            api,
            p2p,
            target,
            spawned,
        })
    }

    pub fn token_file(&self) -> PathBuf {
        self.data_dir.join("join-token")
    }

    /// A new HTTPS client with the admin certificate (its own connection).
    pub fn client(&self) -> anyhow::Result<Client> {
        self.target.client()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// Polls `/readyz` every `every` until it answers 200; returns when it did.
    pub async fn wait_ready(
        &mut self,
        limit: Duration,
        every: Duration,
    ) -> anyhow::Result<Instant> {
        let client = self.client()?;
        let deadline = Instant::now() + limit;
        let mut last;
        loop {
            self.instance
                .child
                .check_alive()
                .with_context(|| self.instance.log_tail())?;
            match client
                .get(self.url("/readyz"))
                .timeout(Duration::from_secs(5))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => return Ok(Instant::now()),
                Ok(r) => last = format!("/readyz answered {}", r.status()),
                Err(e) => last = format!("/readyz: {e}"),
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready within {limit:?} ({last}); log:\n{}",
                    self.name,
                    self.instance.log_tail()
                );
            }
            tokio::time::sleep(every).await;
        }
    }
}

async fn wait_addresses(instance: &mut Instance) -> anyhow::Result<(String, String)> {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        instance.child.check_alive()?;
        let log = std::fs::read_to_string(instance.log_path()).unwrap_or_default();
        let api = log.lines().find_map(|l| l.strip_prefix("api: "));
        let p2p = log
            .lines()
            .filter_map(|l| l.strip_prefix("p2p: "))
            .find(|a| a.contains("/tcp/"));
        if let (Some(api), Some(p2p)) = (api, p2p) {
            return Ok((api.trim().to_string(), p2p.trim().to_string()));
        }
        if Instant::now() > deadline {
            bail!("no `api:` and TCP `p2p:` lines within {START_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts `n` nodes: the first founds the mesh, the others join through it; returns once
/// every node answers `/readyz` 200.
pub async fn start_mesh(bin: &Path, n: usize) -> anyhow::Result<Vec<MeshNode>> {
    anyhow::ensure!((1..=16).contains(&n), "1..=16 nodes");
    let mut first = MeshNode::spawn(bin, "node-a", None).await?;
    first
        .wait_ready(Duration::from_secs(60), Duration::from_millis(50))
        .await?;
    let token = first.token_file();
    let p2p = first.p2p.clone();
    let mut nodes = vec![first];
    for i in 1..n {
        let name = format!("node-{}", (b'a' + i as u8) as char);
        let node = MeshNode::spawn(
            bin,
            &name,
            Some(JoinVia {
                p2p: &p2p,
                token_file: &token,
            }),
        )
        .await?;
        nodes.push(node);
    }
    for node in nodes.iter_mut().skip(1) {
        node.wait_ready(Duration::from_secs(60), Duration::from_millis(50))
            .await?;
    }
    Ok(nodes)
}
