//! A BeeMesh node (the release `beemesh` binary) driven over HTTPS with the admin client
//! certificate from the kubeconfig it writes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::{Certificate, Client, Identity, RequestBuilder};
use serde::Deserialize;
use serde_json::json;

use crate::load::Target;
use crate::procs::{ChildGuard, Instance, free_ports};

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// Finds the node binary: `--beemesh-bin`, then `beemesh` next to this executable (both are
/// built into the same target dir), then `$CARGO_TARGET_DIR/release/beemesh`.
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("beemesh"));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("release").join("beemesh"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/beemesh"));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .context("beemesh binary not found: run `cargo build --release -p beemesh-cli` first, or pass --beemesh-bin")
}

/// `beemesh version`, first line.
pub fn version(bin: &Path) -> String {
    Command::new(bin)
        .arg("version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Starts a node on loopback with a fresh data dir and waits for `/readyz`.
pub async fn start(bin: &Path, http1_only: bool) -> anyhow::Result<(Instance, BeeMeshTarget)> {
    let dir = tempfile::Builder::new()
        .prefix("beemesh-bench-node-")
        .tempdir()?;
    let data = dir.path().join("data");
    let port = free_ports(1)?[0];
    let mut cmd = Command::new(bin);
    cmd.arg("up")
        .arg("--data-dir")
        .arg(&data)
        .arg("--api-listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("BEEMESH_LOG", "warn");
    let log = dir.path().join("server.log");
    let child = ChildGuard::spawn("beemesh", cmd, &log)?;
    let mut instance = Instance { child, dir };
    let target = wait_ready(&mut instance, &data.join("kubeconfig"), http1_only)
        .await
        .with_context(|| {
            format!(
                "beemesh did not become ready; log:\n{}",
                instance.log_tail()
            )
        })?;
    Ok((instance, target))
}

async fn wait_ready(
    instance: &mut Instance,
    kubeconfig: &Path,
    http1_only: bool,
) -> anyhow::Result<BeeMeshTarget> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_error = String::from("no kubeconfig yet");
    loop {
        instance.child.check_alive()?;
        if Instant::now() > deadline {
            bail!("timed out after 60 s ({last_error})");
        }
        // The kubeconfig may be missing or half-written at first: retry until it parses.
        let target = match std::fs::read_to_string(kubeconfig)
            .map_err(anyhow::Error::from)
            .and_then(|text| BeeMeshTarget::from_kubeconfig(&text, http1_only))
        {
            Ok(t) => t,
            Err(e) => {
                last_error = format!("{e:#}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let client = target.client()?;
        match target.warm_up(&client).send().await {
            Ok(resp) if resp.status().is_success() => return Ok(target),
            Ok(resp) => last_error = format!("/readyz answered {}", resp.status()),
            Err(e) => last_error = format!("/readyz: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// ConfigMap create and list over the Kubernetes REST API (JSON).
pub struct BeeMeshTarget {
    server: String,
    ca_pem: Vec<u8>,
    identity_pem: Vec<u8>,
    http1_only: bool,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Kubeconfig {
    clusters: Vec<ClusterEntry>,
    users: Vec<UserEntry>,
}

#[derive(Deserialize)]
struct ClusterEntry {
    cluster: Cluster,
}

#[derive(Deserialize)]
struct Cluster {
    server: String,
    #[serde(rename = "certificate-authority-data")]
    ca_data: String,
}

#[derive(Deserialize)]
struct UserEntry {
    user: User,
}

#[derive(Deserialize)]
struct User {
    #[serde(rename = "client-certificate-data")]
    cert_data: String,
    #[serde(rename = "client-key-data")]
    key_data: String,
}

#[derive(Deserialize)]
struct ConfigMapList {
    items: Vec<serde::de::IgnoredAny>,
}

impl BeeMeshTarget {
    /// Server URL, CA and admin client certificate from the node's kubeconfig.
    pub fn from_kubeconfig(text: &str, http1_only: bool) -> anyhow::Result<Self> {
        let config: Kubeconfig = serde_yaml::from_str(text).context("parsing kubeconfig")?;
        let cluster = &config
            .clusters
            .first()
            .context("kubeconfig has no cluster")?
            .cluster;
        let user = &config.users.first().context("kubeconfig has no user")?.user;
        let decode = |field: &str, s: &str| {
            B64.decode(s.trim())
                .with_context(|| format!("kubeconfig {field} is not base64"))
        };
        let mut identity_pem = decode("client-certificate-data", &user.cert_data)?;
        identity_pem.push(b'\n');
        identity_pem.extend(decode("client-key-data", &user.key_data)?);
        Ok(Self {
            server: cluster.server.trim_end_matches('/').to_string(),
            ca_pem: decode("certificate-authority-data", &cluster.ca_data)?,
            identity_pem,
            http1_only,
            timeout: Duration::from_secs(120),
        })
    }
}

impl Target for BeeMeshTarget {
    fn client(&self) -> anyhow::Result<Client> {
        let mut builder = Client::builder()
            .tls_certs_only([Certificate::from_pem(&self.ca_pem)?])
            .identity(Identity::from_pem(&self.identity_pem)?)
            .timeout(self.timeout);
        if self.http1_only {
            builder = builder.http1_only();
        }
        Ok(builder.build()?)
    }

    fn warm_up(&self, client: &Client) -> RequestBuilder {
        client.get(format!("{}/readyz", self.server))
    }

    fn put(&self, client: &Client, name: &str, value: &[u8]) -> RequestBuilder {
        let body = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name},
            "data": {"value": String::from_utf8_lossy(value)},
        });
        client
            .post(format!("{}{CONFIGMAPS}", self.server))
            .header("Accept", "application/json")
            .json(&body)
    }

    fn list(&self, client: &Client) -> RequestBuilder {
        client
            .get(format!("{}{CONFIGMAPS}", self.server))
            .header("Accept", "application/json")
    }

    fn listed_items(&self, body: &[u8]) -> anyhow::Result<usize> {
        let parsed: ConfigMapList =
            serde_json::from_slice(body).context("parsing the ConfigMapList")?;
        Ok(parsed.items.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_server_ca_and_client_identity_from_a_kubeconfig() {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: n1\n  cluster:\n    server: https://127.0.0.1:6443/\n    certificate-authority-data: {}\ncontexts:\n- name: n1\n  context:\n    cluster: n1\n    user: beemesh-admin\ncurrent-context: n1\nusers:\n- name: beemesh-admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\npreferences: {{}}\n",
            B64.encode("CA"),
            B64.encode("CERT"),
            B64.encode("KEY")
        );
        let t = BeeMeshTarget::from_kubeconfig(&text, false).unwrap();
        assert_eq!(t.server, "https://127.0.0.1:6443");
        assert_eq!(t.ca_pem, b"CA");
        assert_eq!(t.identity_pem, b"CERT\nKEY");
    }

    #[test]
    fn a_half_written_kubeconfig_is_an_error_not_a_panic() {
        assert!(
            BeeMeshTarget::from_kubeconfig("apiVersion: v1\nclusters:\n- name: n1\n", false)
                .is_err()
        );
    }
}
