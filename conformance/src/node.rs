//! A live `beemesh up` process in a temporary data directory, killed on drop.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::HarnessError;
use crate::locate::beemesh_binary;

/// How long a node may take from spawn to `GET /readyz` = 200.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts when the picked port was taken by someone else in the meantime.
const START_ATTEMPTS: usize = 3;

/// One running node.
pub struct Node {
    child: Child,
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    url: String,
}

impl Node {
    /// Starts a node on a free loopback port and waits until it answers `/readyz`.
    pub fn start() -> Result<Node, HarnessError> {
        Self::start_with(&[])
    }

    /// `start` with extra `beemesh up` flags (e.g. `--event-ttl 3s`).
    pub fn start_with(extra: &[&str]) -> Result<Node, HarnessError> {
        let bin = beemesh_binary()?;
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&bin, extra) {
                Ok(node) => return Ok(node),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::NodeNotReady {
            secs: 0,
            reason: "no attempt made".into(),
            log: String::new(),
        }))
    }

    fn start_once(bin: &Path, extra: &[&str]) -> Result<Node, HarnessError> {
        let dir = tempfile::Builder::new().prefix("beemesh-node-").tempdir()?;
        let data_dir = dir.path().join("data");
        let port = free_port()?;
        let log = File::create(dir.path().join("node.log"))?;
        let child = Command::new(bin)
            .arg("up")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--api-listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--node-name")
            .arg("conformance")
            .args(extra)
            .env(
                "BEEMESH_LOG",
                std::env::var("BEEMESH_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut node = Node {
            child,
            dir,
            data_dir,
            url: format!("https://127.0.0.1:{port}"),
        };
        node.wait_ready()?;
        Ok(node)
    }

    fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let started = Instant::now();
        let not_ready = |node: &Node, reason: String| HarnessError::NodeNotReady {
            secs: READY_TIMEOUT.as_secs(),
            reason,
            log: node.log_tail(40),
        };
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(not_ready(self, format!("the node exited with {status}")));
            }
            if self.kubeconfig().is_file() && self.readyz()? {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(not_ready(self, "GET /readyz never answered 200".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /readyz` with curl (TLS without verification: readiness needs no trust).
    fn readyz(&self) -> Result<bool, HarnessError> {
        let status = Command::new("curl")
            .args(["-ksf", "--max-time", "2", "-o", "/dev/null"])
            .arg(format!("{}/readyz", self.url))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        Ok(status.success())
    }

    /// The admin kubeconfig the node wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("kubeconfig")
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The node's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A scratch directory that is removed with the node.
    pub fn scratch_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last `lines` lines of the node's stdout+stderr, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The process id, for callers that must signal the node themselves.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
