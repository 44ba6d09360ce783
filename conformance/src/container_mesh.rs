//! A mesh of BeeMesh nodes as Docker containers on private (`--internal`) networks of this
//! machine: the mesh network carries only p2p traffic, each node's API is on a second
//! network the host reaches, and each node's data directory is bind-mounted from a temp dir.
//! A node can be cut off the mesh (`docker network disconnect`) or stopped (`docker stop`),
//! which is what the partition and node-loss cases need and local processes cannot give.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::api::ApiClient;
use crate::docker::{DockerScope, docker, engine_version};
use crate::locate::beemesh_binary;
use crate::skip;

const API_PORT: u16 = 6443;
const P2P_PORT: u16 = 7000;

/// One container node: its addresses on the two networks and its bind-mounted data dir.
pub struct ContainerNode {
    pub label: String,
    pub container: String,
    pub mesh_ip: String,
    pub data_dir: PathBuf,
    pub api: ApiClient,
}

impl ContainerNode {
    /// The node's last lines of output, headed by its label.
    pub fn logs(&self) -> String {
        format!(
            "--- {} ({}) ---\n{}",
            self.label,
            self.container,
            container_logs(&self.container, 30)
        )
    }

    /// `/ip4/<mesh ip>/tcp/7000/p2p/<peer id>` from what the node printed.
    pub fn p2p_addr(&self) -> Option<String> {
        docker(&["logs", &self.container])
            .ok()?
            .lines()
            .filter_map(|l| l.strip_prefix("p2p: "))
            .find(|a| a.contains("/tcp/"))
            .map(str::to_string)
    }

    /// The node's kubeconfig (written by the node into its data dir).
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("kubeconfig")
    }
}

/// Nodes `A`, `B`, `C`… as containers; everything is removed on drop (and the nodes' last
/// output printed when the test is failing).
pub struct ContainerMesh {
    pub scope: DockerScope,
    pub nodes: Vec<ContainerNode>,
    /// The full name of the mesh network (for `docker network disconnect`).
    pub mesh_net: String,
    work: tempfile::TempDir,
}

impl Drop for ContainerMesh {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in &self.nodes {
                eprintln!("{}", node.logs());
            }
        }
    }
}

impl ContainerMesh {
    /// Builds the node image, creates the two networks and starts `count` nodes named
    /// `node-a`, `node-b`…: the first makes a new mesh, the others join through it. `extra`
    /// goes to every node's `beemesh up`. Skips the test when there is no Docker Engine.
    pub fn start(case: &str, count: usize, extra: &[&str]) -> ContainerMesh {
        let version = match engine_version() {
            Ok(v) => v,
            Err(why) => skip(why),
        };
        eprintln!("Docker Engine {version}");
        let bin = beemesh_binary().unwrap_or_else(|e| panic!("{e}"));
        let work = tempfile::Builder::new()
            .prefix(&format!("beemesh-{case}-"))
            .tempdir()
            .expect("temp dir");
        let mut scope = DockerScope::new(case);
        let image = scope
            .build_node_image(&bin, work.path())
            .unwrap_or_else(|e| panic!("building the node image: {e}"));
        let mesh_prefix = scope
            .create_internal_network("mesh")
            .unwrap_or_else(|e| panic!("{e}"));
        let api_prefix = scope
            .create_internal_network("api")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut mesh = ContainerMesh {
            mesh_net: scope.network("mesh"),
            scope,
            nodes: Vec::new(),
            work,
        };
        let api_net = mesh.scope.network("api");
        let mut join: Vec<String> = Vec::new();
        for i in 0..count {
            let label = char::from(b'A' + i as u8).to_string();
            let host = 11 + i;
            let mesh_ip = format!("{mesh_prefix}.{host}");
            let api_ip = format!("{api_prefix}.{host}");
            let data_dir = mesh.work.path().join(&label);
            std::fs::create_dir_all(&data_dir).expect("data dir");
            let (uid, gid) = owner_ids(&data_dir);
            let options = vec![
                "--network".to_string(),
                api_net.clone(),
                "--ip".into(),
                api_ip.clone(),
                "--user".into(),
                format!("{uid}:{gid}"),
                "-v".into(),
                format!("{}:/data", data_dir.display()),
                "-e".into(),
                format!(
                    "BEEMESH_LOG={}",
                    std::env::var("BEEMESH_LOG").unwrap_or_else(|_| "info".into())
                ),
            ];
            let mut command: Vec<String> = [
                "up",
                "--data-dir",
                "/data",
                "--node-name",
                &format!("node-{}", label.to_lowercase()),
                "--api-listen",
                &format!("{api_ip}:{API_PORT}"),
                "--p2p-listen",
                &format!("/ip4/{mesh_ip}/tcp/{P2P_PORT}"),
                "--p2p-listen",
                &format!("/ip4/{mesh_ip}/udp/{P2P_PORT}/quic-v1"),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            command.extend(extra.iter().map(|s| s.to_string()));
            command.extend(join.iter().cloned());
            let container = mesh
                .scope
                .create_container(&format!("node-{label}"), &options, &image, &command)
                .unwrap_or_else(|e| panic!("{e}"));
            docker(&[
                "network",
                "connect",
                "--ip",
                &mesh_ip,
                &mesh.mesh_net,
                &container,
            ])
            .unwrap_or_else(|e| panic!("{e}"));
            docker(&["start", &container]).unwrap_or_else(|e| panic!("{e}"));
            let api = wait_ready(&label, &container, &data_dir);
            let node = ContainerNode {
                label,
                container,
                mesh_ip,
                data_dir,
                api,
            };
            if join.is_empty() {
                let addr = wait_for("A's p2p address", Duration::from_secs(30), || {
                    node.p2p_addr()
                });
                let token = std::fs::read_to_string(node.data_dir.join("join-token"))
                    .expect("A's join token");
                join = vec![
                    "--join".into(),
                    addr,
                    "--join-token".into(),
                    token.trim().to_string(),
                ];
            }
            mesh.nodes.push(node);
        }
        mesh
    }
}

/// The owner of `dir`, so files the container writes stay removable by this process.
fn owner_ids(dir: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).expect("data dir metadata");
    (meta.uid(), meta.gid())
}

/// Waits for the node's kubeconfig, then for `/readyz` = 200 through it.
fn wait_ready(label: &str, container: &str, data_dir: &Path) -> ApiClient {
    let started = Instant::now();
    let kubeconfig = data_dir.join("kubeconfig");
    loop {
        if kubeconfig.is_file()
            && let Ok(api) = ApiClient::from_kubeconfig(&kubeconfig)
            && api.ready(Duration::from_secs(2))
        {
            return api;
        }
        let running = docker(&["inspect", "-f", "{{.State.Running}}", container]);
        if started.elapsed() > Duration::from_secs(60) || running.as_deref() != Ok("true") {
            panic!(
                "node {label} ({container}) not ready (running: {running:?}):\n{}",
                container_logs(container, 40)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The container's last `lines` lines of output (stdout and stderr).
pub fn container_logs(container: &str, lines: usize) -> String {
    std::process::Command::new("docker")
        .args(["logs", "--tail", &lines.to_string(), container])
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_else(|e| format!("docker logs: {e}"))
}

/// Polls `check` every 20 ms until it gives a value; panics after `limit`.
#[track_caller]
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
