//! A raw HTTPS client of one node's Kubernetes API with the admin certificate of a
//! kubeconfig: what the multi-node cases use where kubectl is too slow or too coarse
//! (timing a watch event, racing two PUTs, creating 10,000 objects).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

/// How long one ordinary request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a client could not be built or a request not be sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiClientError {
    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig { path: String, reason: String },
    #[error("{0}")]
    Http(#[from] reqwest::Error),
}

/// The answer to one request: status code and body (JSON when it parses, else a string).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// `metadata.resourceVersion` of the body.
    pub fn resource_version(&self) -> Option<&str> {
        self.body.pointer("/metadata/resourceVersion")?.as_str()
    }
}

/// The admin identity and CA of a kubeconfig, reusable for every node of a mesh.
#[derive(Clone)]
pub struct Credentials {
    ca_pem: Vec<u8>,
    identity_pem: Vec<u8>,
    /// The kubeconfig's (first) server URL.
    pub server: String,
}

impl Credentials {
    /// Reads the first cluster's server and CA and the first user's client certificate.
    pub fn from_kubeconfig(path: &Path) -> Result<Credentials, ApiClientError> {
        let bad = |reason: String| ApiClientError::Kubeconfig {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let doc: Value = serde_yaml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let field = |pointer: &str| -> Result<String, ApiClientError> {
            doc.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| bad(format!("no {pointer}")))
        };
        let decode = |pointer: &str| -> Result<Vec<u8>, ApiClientError> {
            base64::engine::general_purpose::STANDARD
                .decode(field(pointer)?)
                .map_err(|e| bad(format!("{pointer}: {e}")))
        };
        let mut identity_pem = decode("/users/0/user/client-certificate-data")?;
        identity_pem.extend(decode("/users/0/user/client-key-data")?);
        Ok(Credentials {
            ca_pem: decode("/clusters/0/cluster/certificate-authority-data")?,
            identity_pem,
            server: field("/clusters/0/cluster/server")?,
        })
    }
}

/// One node's API (`https://host:port`), authenticated as the mesh admin.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    client: reqwest::blocking::Client,
}

impl ApiClient {
    /// A client of `base` (`https://127.0.0.1:6443`) with `credentials`.
    pub fn new(base: &str, credentials: &Credentials) -> Result<ApiClient, ApiClientError> {
        install_crypto_provider();
        let client = reqwest::blocking::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&credentials.ca_pem)?])
            .identity(reqwest::Identity::from_pem(&credentials.identity_pem)?)
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(ApiClient {
            base: base.trim_end_matches('/').to_string(),
            client,
        })
    }

    /// A client of the server a kubeconfig names.
    pub fn from_kubeconfig(path: &Path) -> Result<ApiClient, ApiClientError> {
        let credentials = Credentials::from_kubeconfig(path)?;
        ApiClient::new(&credentials.server.clone(), &credentials)
    }

    /// `https://host:port`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn send(&self, request: reqwest::blocking::RequestBuilder) -> Result<Reply, reqwest::Error> {
        let response = request.send()?;
        let status = response.status().as_u16();
        let text = response.text()?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Reply { status, body })
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Reply, reqwest::Error> {
        self.send(self.client.get(self.url(path)))
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Reply, reqwest::Error> {
        self.send(self.client.post(self.url(path)).json(body))
    }

    /// `PUT path` with a JSON body.
    pub fn put(&self, path: &str, body: &Value) -> Result<Reply, reqwest::Error> {
        self.send(self.client.put(self.url(path)).json(body))
    }

    /// `PATCH path` with a JSON merge patch.
    pub fn merge_patch(&self, path: &str, patch: &Value) -> Result<Reply, reqwest::Error> {
        self.send(
            self.client
                .patch(self.url(path))
                .header("Content-Type", "application/merge-patch+json")
                .body(patch.to_string()),
        )
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Result<Reply, reqwest::Error> {
        self.send(self.client.delete(self.url(path)))
    }

    /// Whether `GET /readyz` answers 200 within `timeout`.
    pub fn ready(&self, timeout: Duration) -> bool {
        self.client
            .get(self.url("/readyz"))
            .timeout(timeout)
            .send()
            .is_ok_and(|r| r.status().is_success())
    }

    /// The items of a list (one request, no paging) and the list's resourceVersion.
    #[track_caller]
    pub fn list(&self, path: &str) -> (Vec<Value>, String) {
        let reply = match self.get(path) {
            Ok(r) => r,
            Err(e) => panic!("GET {}{path}: {e}", self.base),
        };
        assert_eq!(reply.status, 200, "GET {}{path}: {}", self.base, reply.body);
        let items = reply
            .body
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let rv = reply.resource_version().unwrap_or_default().to_string();
        (items, rv)
    }

    /// The names of the Nodes whose Ready condition is True, as this node lists them.
    pub fn ready_nodes(&self) -> std::collections::BTreeSet<String> {
        let (nodes, _) = self.list("/api/v1/nodes");
        nodes
            .iter()
            .filter(|n| {
                n["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }

    /// Starts `GET path` with `watch=true` appended (`path` may carry a query) and reads its
    /// events in the background, each with the instant it arrived.
    pub fn watch(&self, path: &str) -> Result<Watch, reqwest::Error> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = self.url(&format!("{path}{sep}watch=true"));
        let response = self
            .client
            .get(&url)
            .timeout(Duration::from_secs(3600))
            .send()?;
        let status = response.status().as_u16();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(response).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send((Instant::now(), value)).is_err() {
                    break;
                }
            }
        });
        Ok(Watch {
            url,
            status,
            events: rx,
            seen: Vec::new(),
        })
    }

    /// POSTs every body to `path` from `concurrency` threads; returns how many were
    /// created. A 5xx or transport error is retried (up to 3 times; a 409 on a retry
    /// means the first attempt landed); anything else panics with the answer.
    #[track_caller]
    pub fn create_many(&self, path: &str, bodies: Vec<Value>, concurrency: usize) -> usize {
        let bodies = Arc::new(bodies);
        let next = Arc::new(AtomicUsize::new(0));
        let failure = Arc::new(Mutex::new(None::<String>));
        let created = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                let (client, path) = (self.clone(), path.to_string());
                let (bodies, next, failure, created) = (
                    bodies.clone(),
                    next.clone(),
                    failure.clone(),
                    created.clone(),
                );
                std::thread::spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { return };
                        match client.create_with_retries(&path, body) {
                            Ok(()) => {
                                created.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                if let Ok(mut f) = failure.lock() {
                                    f.get_or_insert(e);
                                }
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            let _ = worker.join();
        }
        if let Some(e) = failure.lock().ok().and_then(|mut f| f.take()) {
            panic!(
                "creating {} objects at {}{path}: {e}",
                bodies.len(),
                self.base
            );
        }
        created.load(Ordering::Relaxed)
    }

    fn create_with_retries(&self, path: &str, body: &Value) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 0..4 {
            match self.post(path, body) {
                Ok(r) if r.status == 201 => return Ok(()),
                Ok(r) if r.status == 409 && attempt > 0 => return Ok(()),
                Ok(r) if r.status >= 500 => last = format!("{}: {}", r.status, r.body),
                Ok(r) => return Err(format!("{}: {}", r.status, r.body)),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(last)
    }
}

/// A watch response being read in the background.
pub struct Watch {
    url: String,
    /// The HTTP status of the watch response.
    pub status: u16,
    events: Receiver<(Instant, Value)>,
    seen: Vec<Value>,
}

impl Watch {
    /// Waits for an event that satisfies `pred`; returns it with the instant it arrived,
    /// or `None` on timeout or end of stream.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<(Instant, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((at, event)) => {
                    let hit = pred(&event);
                    self.seen.push(event.clone());
                    if hit {
                        return Some((at, event));
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None;
                }
            }
        }
    }

    /// A one-line description for failure messages.
    pub fn describe(&self) -> String {
        let types: Vec<String> = self
            .seen
            .iter()
            .map(|e| {
                let kind = e.get("type").and_then(Value::as_str).unwrap_or("?");
                let name = e
                    .pointer("/object/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                format!("{kind} {name}")
            })
            .collect();
        format!("watch {} ({}): events {types:?}", self.url, self.status)
    }
}

/// An event of `kind` (`ADDED`, `DELETED`, ...) for the object `name`.
pub fn is_event(event: &Value, kind: &str, name: &str) -> bool {
    event.get("type").and_then(Value::as_str) == Some(kind)
        && event
            .pointer("/object/metadata/name")
            .and_then(Value::as_str)
            == Some(name)
}

/// reqwest is built without a rustls provider (libp2p's QUIC pulls a second one into the
/// workspace); pin ring once per process.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
