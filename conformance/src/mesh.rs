//! Several `beemesh up` processes on 127.0.0.1 joined into one mesh: node 1 creates it,
//! the others join with its join token through its p2p address. Every node writes its own
//! kubeconfig (same CA and admin certificate, its own server URL). Nodes can be stopped
//! and started again on the same data directory, and new nodes can join later.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::HarnessError;
use crate::api::{ApiClient, Credentials};
use crate::locate::beemesh_binary;

/// How long a node may take from spawn to `GET /readyz` = 200.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One node of a [`Mesh`]: a data directory and, while running, its process.
pub struct MeshNode {
    /// `node-1`, `node-2`, ...
    pub name: String,
    data_dir: PathBuf,
    log: PathBuf,
    /// `up` flags besides the data dir, API address and name (the join flags).
    extra: Vec<String>,
    child: Option<Child>,
    /// Where this run's output starts in the log (earlier runs' output comes before).
    log_offset: u64,
    url: String,
    api: Option<ApiClient>,
}

impl MeshNode {
    fn new(root: &Path, name: &str, extra: Vec<String>) -> MeshNode {
        MeshNode {
            name: name.to_string(),
            data_dir: root.join(name),
            log: root.join(format!("{name}.log")),
            extra,
            child: None,
            log_offset: 0,
            url: String::new(),
            api: None,
        }
    }

    /// Spawns `beemesh up` on this node's data directory without waiting for readiness;
    /// returns once the node printed its API URL.
    pub fn spawn(&mut self) -> Result<(), HarnessError> {
        let bin = beemesh_binary()?;
        std::fs::create_dir_all(&self.data_dir)?;
        self.log_offset = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let log = File::options().create(true).append(true).open(&self.log)?;
        let child = Command::new(bin)
            .arg("up")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--api-listen", "127.0.0.1:0", "--node-name", &self.name])
            .args(&self.extra)
            .env(
                "BEEMESH_LOG",
                std::env::var("BEEMESH_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Some(url) = self.printed("api") {
                self.url = url;
                break;
            }
            self.check_alive(started)?;
            std::thread::sleep(Duration::from_millis(10));
        }
        // The kubeconfig is written before the URL is printed.
        let api = Credentials::from_kubeconfig(&self.kubeconfig())
            .and_then(|c| ApiClient::new(&self.url, &c))
            .map_err(|e| self.not_ready(e.to_string()))?;
        self.api = Some(api);
        Ok(())
    }

    /// Spawns the node and waits until `/readyz` answers 200; returns how long that took
    /// from spawn.
    pub fn start(&mut self) -> Result<Duration, HarnessError> {
        let started = Instant::now();
        self.spawn()?;
        self.wait_ready(started)?;
        Ok(started.elapsed())
    }

    /// Polls `/readyz` every 10 ms until 200.
    pub fn wait_ready(&mut self, started: Instant) -> Result<(), HarnessError> {
        let api = self.api();
        loop {
            if api.ready(Duration::from_secs(2)) {
                return Ok(());
            }
            self.check_alive(started)?;
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn check_alive(&mut self, started: Instant) -> Result<(), HarnessError> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            return Err(self.not_ready(format!("the node exited with {status}")));
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(self.not_ready("GET /readyz never answered 200".into()));
        }
        Ok(())
    }

    fn not_ready(&self, reason: String) -> HarnessError {
        HarnessError::NodeNotReady {
            secs: READY_TIMEOUT.as_secs(),
            reason: format!("{}: {reason}", self.name),
            log: self.log_tail(40),
        }
    }

    /// Stops the node (SIGTERM, so it saves its peers; SIGKILL after 10 s) and keeps its
    /// data directory.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let started = Instant::now();
        while matches!(child.try_wait(), Ok(None)) {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.wait();
    }

    /// Kills the node outright (SIGKILL: no goodbye to its peers, no final writes) and
    /// keeps its data directory.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The value of the last `key: value` line this run printed (`api`, `ready`, ...).
    pub fn printed(&self, key: &str) -> Option<String> {
        self.printed_all(key).pop()
    }

    fn printed_all(&self, key: &str) -> Vec<String> {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let start = (self.log_offset as usize).min(text.len());
        let prefix = format!("{key}: ");
        String::from_utf8_lossy(&text[start..])
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    /// The node's TCP p2p address with `/p2p/<peer id>`, as it printed it.
    pub fn p2p_addr(&self) -> Option<String> {
        self.printed_all("p2p")
            .into_iter()
            .find(|a| a.contains("/tcp/"))
    }

    /// The mesh's join token (`DIR/join-token`).
    pub fn join_token(&self) -> std::io::Result<String> {
        Ok(std::fs::read_to_string(self.data_dir.join("join-token"))?
            .trim()
            .to_string())
    }

    /// `https://127.0.0.1:PORT` of the current run.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The node's own admin kubeconfig (its server URL, the mesh CA).
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("kubeconfig")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A raw API client of this node (current run).
    #[track_caller]
    pub fn api(&self) -> ApiClient {
        match &self.api {
            Some(api) => api.clone(),
            None => panic!("{} has not been started", self.name),
        }
    }

    /// The last `lines` lines of the node's output (all runs).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for MeshNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// N nodes in one mesh, in one temporary directory; all killed on drop (their log tails
/// are printed when the test is failing).
pub struct Mesh {
    pub nodes: Vec<MeshNode>,
    root: tempfile::TempDir,
    /// `up` flags every node of this mesh gets (`start_with`).
    common: Vec<String>,
}

impl Mesh {
    /// Starts node 1 (a new mesh), then nodes 2..=n joining through it, each ready.
    pub fn start(n: usize) -> Result<Mesh, HarnessError> {
        Self::start_with(n, &[])
    }

    /// `start` with extra `up` flags for every node, joiners added later included.
    pub fn start_with(n: usize, extra: &[&str]) -> Result<Mesh, HarnessError> {
        let root = tempfile::Builder::new().prefix("beemesh-mesh-").tempdir()?;
        let common: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut mesh = Mesh {
            nodes: Vec::new(),
            root,
            common: common.clone(),
        };
        let mut first = MeshNode::new(mesh.root.path(), "node-1", common);
        first.start()?;
        mesh.nodes.push(first);
        for _ in 1..n {
            mesh.add_node()?;
        }
        Ok(mesh)
    }

    /// A new node that joins through node 1 with the mesh's token, not started yet.
    pub fn new_joiner(&self) -> Result<MeshNode, HarnessError> {
        let first = &self.nodes[0];
        let join = first.p2p_addr().ok_or_else(|| HarnessError::NodeNotReady {
            secs: 0,
            reason: "node-1 printed no TCP p2p address".into(),
            log: first.log_tail(20),
        })?;
        let token = first.join_token()?;
        let name = format!("node-{}", self.nodes.len() + 1);
        let mut extra = vec!["--join".into(), join, "--join-token".into(), token];
        extra.extend(self.common.iter().cloned());
        Ok(MeshNode::new(self.root.path(), &name, extra))
    }

    /// Starts one more node joining the mesh and waits until it is ready.
    pub fn add_node(&mut self) -> Result<&mut MeshNode, HarnessError> {
        let mut node = self.new_joiner()?;
        node.start()?;
        self.nodes.push(node);
        let last = self.nodes.len() - 1;
        Ok(&mut self.nodes[last])
    }

    /// Node `i` (0-based: 0 is node-1).
    pub fn node(&self, i: usize) -> &MeshNode {
        &self.nodes[i]
    }

    /// Node `i`, mutably (to stop and start it).
    pub fn node_mut(&mut self, i: usize) -> &mut MeshNode {
        &mut self.nodes[i]
    }

    /// A scratch directory removed with the mesh.
    pub fn scratch_dir(&self) -> &Path {
        self.root.path()
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in &self.nodes {
                eprintln!("--- {} log (tail) ---\n{}", node.name, node.log_tail(30));
            }
        }
    }
}
