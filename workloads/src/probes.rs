//! The kubelet's container probes for runtimes that run processes: `startupProbe`,
//! `livenessProbe` and `readinessProbe` with `exec` (through `Runtime::exec`), `httpGet`
//! (a plain HTTP/1.1 GET; 200–399 is success) and `tcpSocket` (a connect), honouring
//! `initialDelaySeconds`, `periodSeconds`, `timeoutSeconds`, `successThreshold` and
//! `failureThreshold`. Results are kept per container run (a new container id starts
//! over). Until a startup probe succeeds the others do not run; readiness is false until
//! the readiness probe first succeeds; a liveness (or startup) failure restarts the container.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::runtime::{ContainerState, PodRuntimeStatus, Runtime, StreamRequest};

fn int(v: &Value, key: &str, default: u64) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(default)
}

/// One probe's spec and its running tally.
#[derive(Debug, Clone)]
struct ProbeState {
    spec: Value,
    next: Instant,
    successes: u64,
    failures: u64,
    /// The last verdict after thresholds (`None` before the first).
    ok: Option<bool>,
}

impl ProbeState {
    fn new(spec: &Value, started: Instant) -> Self {
        ProbeState {
            spec: spec.clone(),
            next: started + Duration::from_secs(int(spec, "initialDelaySeconds", 0)),
            successes: 0,
            failures: 0,
            ok: None,
        }
    }

    fn period(&self) -> Duration {
        Duration::from_secs(int(&self.spec, "periodSeconds", 10).max(1))
    }

    /// Counts one result; returns the verdict when it changed.
    fn record(&mut self, success: bool) -> Option<bool> {
        if success {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        let verdict = if success && self.successes >= int(&self.spec, "successThreshold", 1) {
            Some(true)
        } else if !success && self.failures >= int(&self.spec, "failureThreshold", 3) {
            Some(false)
        } else {
            None
        };
        match verdict {
            Some(v) if self.ok != Some(v) => {
                self.ok = Some(v);
                Some(v)
            }
            Some(v) => {
                self.ok = Some(v);
                None
            }
            None => None,
        }
    }
}

/// A container run's probes.
#[derive(Debug, Clone)]
struct ContainerProbes {
    container_id: String,
    startup: Option<ProbeState>,
    liveness: Option<ProbeState>,
    readiness: Option<ProbeState>,
}

/// What a round of probing found that the agent acts on.
#[derive(Debug, Default)]
pub struct ProbeOutcome {
    /// Running containers not ready (readiness not yet passed, or startup not yet done).
    pub unready: Vec<String>,
    /// Containers to restart, with the failure message (`Liveness probe failed: ...`).
    pub restart: Vec<(String, String)>,
    /// `Unhealthy` event messages (probe kind failures as the kubelet words them).
    pub unhealthy: Vec<String>,
    /// When a probe is next due.
    pub next: Option<Duration>,
}

/// Probe state of every pod the agent runs.
#[derive(Default)]
pub struct Prober {
    pods: Mutex<HashMap<String, HashMap<String, ContainerProbes>>>,
    /// When each pod's `Unhealthy` message was last reported: a failing probe is reported
    /// once a minute, not every period (the kubelet's recorder folds repeats into a count).
    reported: Mutex<HashMap<(String, String), Instant>>,
}

/// How often the same `Unhealthy` message is reported for a pod.
const REPORT_EVERY: Duration = Duration::from_secs(60);

async fn http_get(host: IpAddr, port: u16, path: &str, timeout: Duration) -> Result<(), String> {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("Get \"http://{host}:{port}{path}\": {e}"))?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        let head = String::from_utf8_lossy(&buf[..n]);
        let code: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| "malformed HTTP response".to_string())?;
        if (200..400).contains(&code) {
            Ok(())
        } else {
            Err(format!("HTTP probe failed with statuscode: {code}"))
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "Get \"http://{host}:{port}{path}\": context deadline exceeded"
            ))
        })
}

/// A probe's port: a number or a declared container port's name.
fn port_of(v: &Value, container: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(name) => name.parse().ok().or_else(|| {
            container
                .get("ports")?
                .as_array()?
                .iter()
                .find(|p| p["name"] == name.as_str())?
                .get("containerPort")?
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
        }),
        _ => None,
    }
}

/// Runs one probe once.
async fn probe_once(
    runtime: &dyn Runtime,
    uid: &str,
    container: &Value,
    spec: &Value,
    pod_ip: IpAddr,
) -> Result<(), String> {
    let timeout = Duration::from_secs(int(spec, "timeoutSeconds", 1).max(1));
    let name = container["name"].as_str().unwrap_or("");
    if let Some(exec) = spec.get("exec") {
        let command: Vec<String> = exec
            .get("command")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        let req = StreamRequest {
            command,
            stdout: true,
            stderr: true,
            ..StreamRequest::default()
        };
        let session = runtime
            .exec(uid, name, &req)
            .await
            .map_err(|e| e.to_string())?;
        let out = async {
            use futures::StreamExt;
            let mut text = Vec::new();
            for s in [session.stdout, session.stderr].into_iter().flatten() {
                let mut s = s;
                while let Some(Ok(b)) = s.next().await {
                    text.extend_from_slice(&b);
                }
            }
            (
                String::from_utf8_lossy(&text).trim().to_string(),
                session.exit.await,
            )
        };
        return match tokio::time::timeout(timeout, out).await {
            Ok((_, Ok(0))) => Ok(()),
            Ok((text, Ok(code))) if text.is_empty() => {
                Err(format!("command terminated with exit code {code}"))
            }
            Ok((text, _)) => Err(text),
            Err(_) => Err(format!("command timed out after {}s", timeout.as_secs())),
        };
    }
    if let Some(h) = spec.get("httpGet") {
        let port = port_of(h.get("port").unwrap_or(&Value::Null), container)
            .ok_or_else(|| "invalid port".to_string())?;
        let path = h.get("path").and_then(Value::as_str).unwrap_or("/");
        return http_get(pod_ip, port, path, timeout).await;
    }
    if let Some(t) = spec.get("tcpSocket") {
        let port = port_of(t.get("port").unwrap_or(&Value::Null), container)
            .ok_or_else(|| "invalid port".to_string())?;
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((pod_ip, port)))
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {pod_ip}:{port}: {e}")),
            Err(_) => Err(format!("dial tcp {pod_ip}:{port}: i/o timeout")),
        };
    }
    Ok(())
}

impl Prober {
    /// Forgets a pod (stopped or gone).
    pub fn forget(&self, uid: &str) {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
        self.reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(u, _), _| u != uid);
    }

    /// Whether a failure message is due to be reported again.
    fn due(&self, uid: &str, message: &str) -> bool {
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        let key = (uid.to_string(), message.to_string());
        let now = Instant::now();
        match reported.get(&key) {
            Some(at) if now.duration_since(*at) < REPORT_EVERY => false,
            _ => {
                reported.insert(key, now);
                true
            }
        }
    }

    /// Runs the probes due for `pod`'s running containers and reports what follows.
    pub async fn run(
        &self,
        runtime: &dyn Runtime,
        pod: &Value,
        rt: &PodRuntimeStatus,
        pod_ip: IpAddr,
    ) -> ProbeOutcome {
        let uid = pod
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let declared = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut out = ProbeOutcome::default();
        let now = Instant::now();
        for status in &rt.containers {
            let Some(c) = declared.iter().find(|c| c["name"] == status.name.as_str()) else {
                continue;
            };
            let has_probes = ["startupProbe", "livenessProbe", "readinessProbe"]
                .iter()
                .any(|k| c.get(*k).is_some());
            if !has_probes || !matches!(status.state, ContainerState::Running { .. }) {
                continue;
            }
            // This run's probes (a restarted container starts over).
            let mut state = {
                let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
                let entry = pods.entry(uid.clone()).or_default();
                match entry.get(&status.name) {
                    Some(p) if p.container_id == status.container_id => p.clone(),
                    _ => ContainerProbes {
                        container_id: status.container_id.clone(),
                        startup: c.get("startupProbe").map(|s| ProbeState::new(s, now)),
                        liveness: c.get("livenessProbe").map(|s| ProbeState::new(s, now)),
                        readiness: c.get("readinessProbe").map(|s| ProbeState::new(s, now)),
                    },
                }
            };
            let started = state.startup.as_ref().is_none_or(|s| s.ok == Some(true));
            let kinds: Vec<(&str, &mut Option<ProbeState>)> = if started {
                vec![
                    ("Liveness", &mut state.liveness),
                    ("Readiness", &mut state.readiness),
                ]
            } else {
                vec![("Startup", &mut state.startup)]
            };
            for (kind, probe) in kinds {
                let Some(p) = probe.as_mut() else { continue };
                if p.next <= now {
                    let result = probe_once(runtime, &uid, c, &p.spec, pod_ip).await;
                    p.next = Instant::now() + p.period();
                    if let Err(message) = &result {
                        let message = format!("{kind} probe failed: {message}");
                        if self.due(&uid, &message) {
                            out.unhealthy.push(message);
                        }
                    }
                    let changed = p.record(result.is_ok());
                    if kind != "Readiness" && changed == Some(false) {
                        let why = result.err().unwrap_or_default();
                        out.restart
                            .push((status.name.clone(), format!("{kind} probe failed: {why}")));
                    }
                }
                let due = p.next.saturating_duration_since(Instant::now());
                out.next = Some(out.next.map_or(due, |n: Duration| n.min(due)));
            }
            let started = state.startup.as_ref().is_none_or(|s| s.ok == Some(true));
            let ready = started && state.readiness.as_ref().is_none_or(|r| r.ok == Some(true));
            if !ready {
                out.unready.push(status.name.clone());
            }
            if out.restart.iter().any(|(n, _)| *n == status.name) {
                // The next run is probed afresh.
                state.container_id.clear();
            }
            self.pods
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(uid.clone())
                .or_default()
                .insert(status.name.clone(), state);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thresholds_decide_the_verdict() {
        let mut p = ProbeState::new(
            &json!({"failureThreshold": 2, "successThreshold": 2}),
            Instant::now(),
        );
        assert_eq!(p.record(false), None);
        assert_eq!(p.record(false), Some(false));
        assert_eq!(p.record(false), None);
        assert_eq!(p.record(true), None);
        assert_eq!(p.record(true), Some(true));
    }

    #[tokio::test]
    async fn http_get_judges_the_status_code() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = vec![0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let code = if head.starts_with("GET /healthz ") {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let _ = s
                    .write_all(format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let t = Duration::from_secs(1);
        assert_eq!(http_get(ip, port, "/healthz", t).await, Ok(()));
        assert_eq!(
            http_get(ip, port, "/other", t).await,
            Err("HTTP probe failed with statuscode: 503".into())
        );
        assert!(http_get(ip, 1, "/", t).await.is_err());
    }

    #[test]
    fn a_repeated_failure_is_reported_once_a_minute() {
        let p = Prober::default();
        assert!(p.due("u", "Liveness probe failed: x"));
        assert!(!p.due("u", "Liveness probe failed: x"));
        assert!(p.due("u", "Liveness probe failed: y"));
        assert!(p.due("v", "Liveness probe failed: x"));
        p.forget("u");
        assert!(p.due("u", "Liveness probe failed: x"));
    }

    #[test]
    fn ports_by_number_or_name() {
        let c = json!({"ports": [{"name": "http", "containerPort": 8080}]});
        assert_eq!(port_of(&json!(80), &c), Some(80));
        assert_eq!(port_of(&json!("http"), &c), Some(8080));
        assert_eq!(port_of(&json!("nope"), &c), None);
    }
}
