//! Ends graceful pod deletions. A DELETE of a pod bound to a node marks it with
//! `deletionTimestamp = now + grace` and `deletionGracePeriodSeconds` (see
//! `translator::deletion`); upstream's kubelet then stops the containers and removes the
//! pod with a zero grace period. On a node run with `--runtime`, its `pod_agent` does that
//! once the containers stopped. This controller is the fallback for every other pod (its
//! node runs no agent — the no-runtime taint —, is not Ready, or is gone; a Ready node
//! with an agent is left to finish, as upstream leaves it to the kubelet, so a pod is not
//! removed while its processes still run): once the deadline passes the pod's home node
//! deletes it with
//! `gracePeriodSeconds: 0` and a uid precondition (finalizers, if any, still hold it); a
//! pod an agent removed first is a 404, ignored.

use std::collections::BTreeSet;
use std::time::Duration;

use beemesh_translator::deletion::DeleteOptions;
use beemesh_translator::service::ObjectService;
use beemesh_translator::store::{ListRequest, Preconditions, parse_stored};
use beemesh_translator::{ApiError, ResourceInfo};

use crate::change_wait::wait_for_change;
use crate::node_registration::NO_RUNTIME_TAINT;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Longest sleep without an event (deadlines are also re-read from the store then).
const IDLE: Duration = Duration::from_secs(10);

/// A pod waiting for its grace period to end.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    deadline: DateTime<Utc>,
    namespace: String,
    name: String,
    uid: String,
    node: Option<String>,
}

/// The pod as a pending graceful deletion, if it is one.
fn pending(pod: &Value) -> Option<Pending> {
    let meta = pod.get("metadata")?;
    let grace = meta.get("deletionGracePeriodSeconds")?.as_i64()?;
    if grace <= 0 {
        return None;
    }
    let deadline = DateTime::parse_from_rfc3339(meta.get("deletionTimestamp")?.as_str()?)
        .ok()?
        .with_timezone(&Utc);
    Some(Pending {
        deadline,
        namespace: meta.get("namespace")?.as_str()?.to_string(),
        name: meta.get("name")?.as_str()?.to_string(),
        uid: meta.get("uid")?.as_str()?.to_string(),
        node: pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string),
    })
}

/// Whether a Node runs a pod agent and is Ready (so its agent ends its pods' deletions).
fn agent_runs_on(node: &Value) -> bool {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    let no_runtime = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .is_some_and(|ts| ts.iter().any(|t| t["key"] == NO_RUNTIME_TAINT));
    ready && !no_runtime
}

pub struct PodTerminationController {
    service: ObjectService,
}

impl PodTerminationController {
    pub fn new(service: ObjectService) -> Self {
        PodTerminationController { service }
    }

    fn pods(&self) -> Result<std::sync::Arc<ResourceInfo>, ApiError> {
        self.service.registry.served("", "v1", "pods")
    }

    /// Whether `node` is a Ready Node whose pod agent will finish the deletion itself.
    fn agent_runs(&self, node: &str) -> bool {
        let Some(nodes) = self.service.registry.get("", "v1", "nodes") else {
            return false;
        };
        self.service
            .store
            .get(&nodes, None, node)
            .is_ok_and(|n| agent_runs_on(&n))
    }

    /// Every pod in a graceful deletion on this replica.
    fn scan(&self, pods: &ResourceInfo) -> Result<BTreeSet<Pending>, ApiError> {
        let page = self.service.store.list(pods, &ListRequest::latest(None))?;
        let mut out = BTreeSet::new();
        for item in page.items {
            if let Some(p) = pending(&parse_stored(&item)?) {
                out.insert(p);
            }
        }
        Ok(out)
    }

    /// Deletes the pods whose grace period is over and that this node is home of;
    /// returns when the next one is due.
    pub async fn sweep(&self) -> Result<Option<DateTime<Utc>>, ApiError> {
        let pods = self.pods()?;
        let now = Utc::now();
        let mut next = None;
        for p in self.scan(&pods)? {
            if p.deadline > now {
                next = Some(next.map_or(p.deadline, |n: DateTime<Utc>| n.min(p.deadline)));
                continue;
            }
            if !self
                .service
                .store
                .is_home(&pods, Some(&p.namespace), &p.name)
            {
                continue;
            }
            if p.node.as_deref().is_some_and(|n| self.agent_runs(n)) {
                continue;
            }
            let opts = DeleteOptions {
                preconditions: Preconditions {
                    uid: Some(p.uid.clone()),
                    resource_version: None,
                },
                grace_period_seconds: Some(0),
                ..DeleteOptions::default()
            };
            match self
                .service
                .delete_with(&pods, Some(&p.namespace), &p.name, &opts)
                .await
            {
                Ok(_) => {}
                Err(e) if e.code() == 404 || e.code() == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(next)
    }

    /// Runs forever: sweeps when a pod changes, when a deadline passes and every `IDLE`.
    pub async fn run(self) {
        loop {
            // Read before the pass, so a change during it wakes the next one.
            let from = self.service.store.revision();
            let next = match self.sweep().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "pod termination sweep failed");
                    None
                }
            };
            let wait = next
                .and_then(|t| (t - Utc::now()).to_std().ok())
                .map_or(IDLE, |d| d.min(IDLE) + Duration::from_millis(50));
            let Ok(pods) = self.pods() else {
                return;
            };
            wait_for_change(&self.service, &pods, from, wait, |value| {
                parse_stored(value)
                    .ok()
                    .as_ref()
                    .and_then(pending)
                    .is_some()
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_pods_within_a_grace_period_are_pending() {
        let marked = json!({"metadata": {"name": "p", "namespace": "d", "uid": "u",
            "deletionTimestamp": "2026-01-01T00:00:30Z", "deletionGracePeriodSeconds": 30}});
        let p = pending(&marked).unwrap();
        assert_eq!(p.deadline.to_rfc3339(), "2026-01-01T00:00:30+00:00");
        let held = json!({"metadata": {"name": "p", "namespace": "d", "uid": "u",
            "deletionTimestamp": "2026-01-01T00:00:30Z", "deletionGracePeriodSeconds": 0}});
        assert!(pending(&held).is_none());
        assert!(pending(&json!({"metadata": {"name": "p"}})).is_none());
    }

    #[test]
    fn a_ready_node_with_an_agent_finishes_its_own_deletions() {
        let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(agent_runs_on(&ready));
        let mut no_runtime = ready.clone();
        no_runtime["spec"] = json!({"taints": [{"key": NO_RUNTIME_TAINT, "effect": "NoSchedule"}]});
        assert!(!agent_runs_on(&no_runtime));
        let silent = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert!(!agent_runs_on(&silent));
    }
}
