//! The `sim` runtime, kwok-style: a pod's containers are Running as soon as it is started
//! (or after `SimConfig::start_delay`), and nothing is ever executed. A pod is a few
//! strings and a timestamp in one map, and its state is computed from the clock when
//! asked (no task or timer per pod), so 1,000 simulated nodes × 30 pods fit in one process.
//!
//! Pod annotations shape what the simulated containers do, so Jobs can be tested:
//! - `sim.beemesh.io/complete-after: 2s` — with `restartPolicy: Never` or `OnFailure`, the
//!   containers exit that long after they started (`Completed`, exit code 0 → the pod
//!   Succeeds); ignored under `Always`, where containers never exit.
//! - `sim.beemesh.io/exit-code: "1"` — the exit code they then exit with (non-zero →
//!   `Error`; under `Never` the pod Fails).
//!
//! Pod IPs come from the node's own /24 (`pod_cidr`), lowest free address first.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    BoxFuture, ContainerSpec, ContainerState, ContainerStatus, PodRuntimeStatus, PodStart, Runtime,
    RuntimeError,
};

pub const COMPLETE_AFTER: &str = "sim.beemesh.io/complete-after";
pub const EXIT_CODE: &str = "sim.beemesh.io/exit-code";

/// How a simulated node behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The node's name: its pod range is derived from it.
    pub node_name: String,
    /// How long containers stay `ContainerCreating` before they run.
    pub start_delay: Duration,
}

/// The node's pod range: `10.<64 + h/256>.<h%256>.0/24` for a 14-bit FNV-1a hash `h` of
/// the node name, i.e. inside 10.64.0.0/10. Nodes have no `spec.podCIDR` allocated by a
/// controller, so each derives its own; two of 16,384 ranges may collide, which a
/// simulation tolerates (no packets flow).
pub fn pod_cidr(node_name: &str) -> Ipv4Addr {
    let mut h: u32 = 0x811c_9dc5;
    for b in node_name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let h = (h ^ (h >> 14)) & 0x3fff;
    Ipv4Addr::new(10, 64 + (h >> 8) as u8, (h & 0xff) as u8, 0)
}

/// `500ms`, `2s`, `1m30s`, `1h` (Go duration syntax, non-negative, integer parts).
fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => return None,
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// One simulated pod.
struct SimPod {
    init_containers: Vec<ContainerSpec>,
    containers: Vec<ContainerSpec>,
    uid: String,
    ip: u8,
    started: DateTime<Utc>,
    /// When the containers exit by themselves, and with which code.
    completes: Option<(Duration, i32)>,
}

/// The `sim` runtime of one node.
pub struct SimRuntime {
    config: SimConfig,
    base: Ipv4Addr,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    pods: HashMap<String, SimPod>,
    used: BTreeSet<u8>,
}

impl SimRuntime {
    pub fn new(config: SimConfig) -> Self {
        let base = pod_cidr(&config.node_name);
        SimRuntime {
            config,
            base,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn status_of(&self, pod: &SimPod, now: DateTime<Utc>) -> PodRuntimeStatus {
        let delay = chrono::Duration::from_std(self.config.start_delay).unwrap_or_default();
        let running_at = pod.started + delay;
        let id = |c: &ContainerSpec| format!("sim://{}", container_id(&pod.uid, &c.name));
        let status = |c: &ContainerSpec, state: ContainerState| ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone(),
            image_id: format!("sim://{}", c.image),
            container_id: id(c),
            state,
            last_state: None,
            restart_count: 0,
        };
        // Init containers complete the moment the pod starts.
        let init = pod
            .init_containers
            .iter()
            .map(|c| {
                status(
                    c,
                    ContainerState::Terminated {
                        exit_code: 0,
                        reason: "Completed".into(),
                        started_at: pod.started,
                        finished_at: pod.started,
                    },
                )
            })
            .collect();
        let mut recheck_after = None;
        let state = if now < running_at {
            recheck_after = (running_at - now).to_std().ok();
            ContainerState::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            }
        } else {
            match pod.completes {
                Some((after, code)) => {
                    let done = running_at + chrono::Duration::from_std(after).unwrap_or_default();
                    if now < done {
                        recheck_after = (done - now).to_std().ok();
                        ContainerState::Running {
                            started_at: running_at,
                        }
                    } else {
                        ContainerState::Terminated {
                            exit_code: code,
                            reason: if code == 0 { "Completed" } else { "Error" }.into(),
                            started_at: running_at,
                            finished_at: done,
                        }
                    }
                }
                None => ContainerState::Running {
                    started_at: running_at,
                },
            }
        };
        PodRuntimeStatus {
            init_containers: init,
            containers: pod
                .containers
                .iter()
                .map(|c| status(c, state.clone()))
                .collect(),
            ips: vec![IpAddr::V4(self.ip(pod.ip))],
            recheck_after,
        }
    }

    fn ip(&self, host: u8) -> Ipv4Addr {
        let [a, b, c, _] = self.base.octets();
        Ipv4Addr::new(a, b, c, host)
    }
}

/// A stable 64-bit hex id for a pod's container (the same on every ask).
fn container_id(uid: &str, name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uid.bytes().chain([0]).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl Runtime for SimRuntime {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn start_pod<'a>(&'a self, pod: &'a PodStart) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let mut inner = self.lock();
            if inner.pods.contains_key(&pod.uid) {
                return Ok(());
            }
            // .1 is left for a gateway, as CNI bridges do.
            let host = (2..=254u8)
                .find(|h| !inner.used.contains(h))
                .ok_or_else(|| RuntimeError::NoFreeIp(format!("{}/24", self.base)))?;
            let completes = if pod.restart_policy == "Always" {
                None
            } else {
                pod.annotations
                    .get(COMPLETE_AFTER)
                    .and_then(|t| parse_duration(t))
                    .map(|after| {
                        let code = pod
                            .annotations
                            .get(EXIT_CODE)
                            .and_then(|c| c.trim().parse().ok())
                            .unwrap_or(0);
                        (after, code)
                    })
            };
            inner.used.insert(host);
            inner.pods.insert(
                pod.uid.clone(),
                SimPod {
                    init_containers: pod.init_containers.clone(),
                    containers: pod.containers.clone(),
                    uid: pod.uid.clone(),
                    ip: host,
                    started: Utc::now(),
                    completes,
                },
            );
            Ok(())
        })
    }

    fn stop_pod<'a>(
        &'a self,
        uid: &'a str,
        _grace: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        // Simulated containers exit on the first SIGTERM: the grace period is never used.
        Box::pin(async move {
            let mut inner = self.lock();
            if let Some(pod) = inner.pods.remove(uid) {
                inner.used.remove(&pod.ip);
            }
            Ok(())
        })
    }

    fn pod_status<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, Option<PodRuntimeStatus>> {
        Box::pin(async move {
            let inner = self.lock();
            inner.pods.get(uid).map(|p| self.status_of(p, Utc::now()))
        })
    }

    fn pods(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move { self.lock().pods.keys().cloned().collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, policy: &str, annotations: &[(&str, &str)]) -> PodStart {
        PodStart {
            uid: uid.into(),
            namespace: "default".into(),
            name: uid.into(),
            init_containers: vec![],
            containers: vec![ContainerSpec {
                name: "app".into(),
                image: "nginx".into(),
                ..ContainerSpec::default()
            }],
            restart_policy: policy.into(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            termination_grace: Duration::from_secs(30),
        }
    }

    fn sim(delay: Duration) -> SimRuntime {
        SimRuntime::new(SimConfig {
            node_name: "node-1".into(),
            start_delay: delay,
        })
    }

    #[tokio::test]
    async fn containers_run_at_once_with_an_ip_from_the_node_range() {
        let rt = sim(Duration::ZERO);
        rt.start_pod(&pod("u1", "Always", &[])).await.unwrap();
        rt.start_pod(&pod("u1", "Always", &[])).await.unwrap();
        rt.start_pod(&pod("u2", "Always", &[])).await.unwrap();
        let s = rt.pod_status("u1").await.unwrap();
        assert!(matches!(
            s.containers[0].state,
            ContainerState::Running { .. }
        ));
        assert!(s.containers[0].container_id.starts_with("sim://"));
        assert_eq!(s.recheck_after, None);
        let base = pod_cidr("node-1").octets();
        assert_eq!(
            s.ips,
            [IpAddr::V4(Ipv4Addr::new(base[0], base[1], base[2], 2))]
        );
        let s2 = rt.pod_status("u2").await.unwrap();
        assert_ne!(s.ips, s2.ips);
        rt.stop_pod("u1", Duration::from_secs(30)).await.unwrap();
        assert!(rt.pod_status("u1").await.is_none());
        assert_eq!(rt.pods().await, ["u2"]);
        // The freed address is handed out again.
        rt.start_pod(&pod("u3", "Always", &[])).await.unwrap();
        assert_eq!(rt.pod_status("u3").await.unwrap().ips, s.ips);
    }

    #[tokio::test]
    async fn a_start_delay_keeps_containers_creating() {
        let rt = sim(Duration::from_secs(60));
        rt.start_pod(&pod("u", "Always", &[])).await.unwrap();
        let s = rt.pod_status("u").await.unwrap();
        assert!(
            matches!(&s.containers[0].state, ContainerState::Waiting { reason, .. } if reason == "ContainerCreating")
        );
        assert!(s.recheck_after.is_some());
    }

    #[tokio::test]
    async fn job_like_pods_complete_after_the_annotated_time() {
        let rt = sim(Duration::ZERO);
        rt.start_pod(&pod("done", "Never", &[(COMPLETE_AFTER, "0s")]))
            .await
            .unwrap();
        let s = rt.pod_status("done").await.unwrap();
        assert!(matches!(&s.containers[0].state,
            ContainerState::Terminated { exit_code: 0, reason, .. } if reason == "Completed"));
        rt.start_pod(&pod(
            "err",
            "Never",
            &[(COMPLETE_AFTER, "0s"), (EXIT_CODE, "3")],
        ))
        .await
        .unwrap();
        assert!(matches!(
            rt.pod_status("err").await.unwrap().containers[0].state,
            ContainerState::Terminated { exit_code: 3, .. }
        ));
        rt.start_pod(&pod("later", "OnFailure", &[(COMPLETE_AFTER, "1h")]))
            .await
            .unwrap();
        assert!(
            rt.pod_status("later")
                .await
                .unwrap()
                .recheck_after
                .is_some()
        );
        // Under Always, containers never exit.
        rt.start_pod(&pod("svc", "Always", &[(COMPLETE_AFTER, "0s")]))
            .await
            .unwrap();
        assert!(matches!(
            rt.pod_status("svc").await.unwrap().containers[0].state,
            ContainerState::Running { .. }
        ));
    }

    #[test]
    fn durations_and_ranges() {
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), None);
        assert_eq!(parse_duration("x"), None);
        let a = pod_cidr("node-1");
        assert_eq!(a.octets()[0], 10);
        assert!((64..128).contains(&a.octets()[1]));
        assert_eq!(a, pod_cidr("node-1"));
        assert_ne!(a, pod_cidr("node-2"));
    }
}
