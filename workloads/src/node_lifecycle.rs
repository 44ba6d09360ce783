//! Upstream's node lifecycle controller and taint eviction, sharded: each `Node` is
//! watched by its home node only (`is_home`, as every BeeMesh controller).
//!
//! - Health: a Node whose Lease `renewTime` (or Ready heartbeat) has not moved for the
//!   grace period (`--node-monitor-grace-period`, 40 s) gets its kubelet conditions set
//!   to `Unknown` ("Kubelet stopped posting node status."). As upstream, the clock is this
//!   node's: the grace period runs from when a change was last *observed*, so clock skew
//!   between nodes does not matter (a new home starts observing afresh).
//! - Taints: `node.kubernetes.io/{not-ready,unreachable}` NoSchedule and NoExecute from
//!   the Ready condition, the pressure NoSchedule taints from their conditions, and
//!   `node.kubernetes.io/unschedulable:NoSchedule` from `spec.unschedulable`
//!   (`kubectl cordon`). Other taints are left alone.
//! - Eviction: pods bound to a node with NoExecute taints are deleted (gracefully, with a
//!   `DisruptionTarget` condition) once they do not tolerate a taint, or when their
//!   shortest matching `tolerationSeconds` has passed since the taint's `timeAdded`.
//! - When Ready leaves True, the node's pods get `Ready=False` (upstream's MarkPodsNotReady).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use beemesh_translator::deletion::DeleteOptions;
use beemesh_translator::service::{ObjectService, Part, WriteOptions};
use beemesh_translator::store::{ListRequest, ReadAt, parse_stored};
use beemesh_translator::{ApiError, ResourceInfo};

use crate::change_wait::wait_for_change;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::node_registration::{Involved, NODE_LEASE_NAMESPACE, record_event};

/// The component name upstream's node lifecycle controller records events as.
const CONTROLLER: &str = "node-controller";

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
/// Upstream's default `--node-monitor-grace-period`.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(40);
/// Upstream's `--node-monitor-period`.
const MONITOR_PERIOD: Duration = Duration::from_secs(5);

/// Taint keys this controller owns, with the effects it manages for each.
const MANAGED: [(&str, &[&str]); 7] = [
    (TAINT_NOT_READY, &["NoSchedule", "NoExecute"]),
    (TAINT_UNREACHABLE, &["NoSchedule", "NoExecute"]),
    (TAINT_UNSCHEDULABLE, &["NoSchedule"]),
    (TAINT_MEMORY_PRESSURE, &["NoSchedule"]),
    (TAINT_DISK_PRESSURE, &["NoSchedule"]),
    (TAINT_PID_PRESSURE, &["NoSchedule"]),
    (TAINT_NETWORK_UNAVAILABLE, &["NoSchedule"]),
];

/// The conditions the kubelet posts; all turn Unknown when it stops.
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn condition<'a>(node: &'a Value, kind: &str) -> Option<&'a Value> {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn condition_status<'a>(node: &'a Value, kind: &str) -> &'a str {
    condition(node, kind).map_or("", |c| str_at(c, "/status"))
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The conditions after the kubelet went silent: each kubelet condition not already
/// Unknown becomes Unknown (`NodeStatusUnknown`), a missing one is added
/// (`NodeStatusNeverUpdated`), as upstream's `tryUpdateNodeHealth`. `None` when nothing
/// changes.
pub fn unknown_conditions(node: &Value, now: &str) -> Option<Value> {
    let mut conds = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut changed = false;
    for kind in KUBELET_CONDITIONS {
        match conds
            .iter_mut()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        {
            Some(c) if str_at(c, "/status") == "Unknown" => {}
            Some(c) => {
                c["status"] = json!("Unknown");
                c["reason"] = json!("NodeStatusUnknown");
                c["message"] = json!("Kubelet stopped posting node status.");
                c["lastTransitionTime"] = json!(now);
                changed = true;
            }
            None => {
                let heartbeat = node
                    .pointer("/metadata/creationTimestamp")
                    .cloned()
                    .unwrap_or_else(|| json!(now));
                conds.push(json!({
                    "type": kind, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": heartbeat, "lastTransitionTime": now,
                }));
                changed = true;
            }
        }
    }
    changed.then_some(Value::Array(conds))
}

/// The node's taints with the managed ones brought in line with its conditions and
/// `spec.unschedulable`; `None` when they already are. A taint that stays keeps its
/// `timeAdded`; a new one gets `now`.
pub fn reconciled_taints(node: &Value, now: &str) -> Option<Value> {
    let ready = condition_status(node, "Ready");
    let mut want: Vec<(&str, &str)> = Vec::new();
    match ready {
        "False" => want.extend([
            (TAINT_NOT_READY, "NoSchedule"),
            (TAINT_NOT_READY, "NoExecute"),
        ]),
        "Unknown" => want.extend([
            (TAINT_UNREACHABLE, "NoSchedule"),
            (TAINT_UNREACHABLE, "NoExecute"),
        ]),
        _ => {}
    }
    for (kind, key) in [
        ("MemoryPressure", TAINT_MEMORY_PRESSURE),
        ("DiskPressure", TAINT_DISK_PRESSURE),
        ("PIDPressure", TAINT_PID_PRESSURE),
        ("NetworkUnavailable", TAINT_NETWORK_UNAVAILABLE),
    ] {
        if condition_status(node, kind) == "True" {
            want.push((key, "NoSchedule"));
        }
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        want.push((TAINT_UNSCHEDULABLE, "NoSchedule"));
    }
    let current = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let managed = |t: &Value| {
        let (key, effect) = (str_at(t, "/key"), str_at(t, "/effect"));
        MANAGED
            .iter()
            .any(|(k, effects)| *k == key && effects.contains(&effect))
    };
    let mut out: Vec<Value> = current.iter().filter(|t| !managed(t)).cloned().collect();
    for (key, effect) in want {
        let existing = current
            .iter()
            .find(|t| str_at(t, "/key") == key && str_at(t, "/effect") == effect);
        // Upstream's SwapNodeControllerTaint stamps every taint it adds.
        out.push(match existing {
            Some(t) => t.clone(),
            None => json!({"key": key, "effect": effect, "timeAdded": now}),
        });
    }
    let same = out.len() == current.len() && out.iter().all(|t| current.contains(t));
    (!same).then_some(Value::Array(out))
}

/// Whether `toleration` tolerates `taint` (upstream's `Toleration.ToleratesTaint`).
fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let effect = str_at(toleration, "/effect");
    if !effect.is_empty() && effect != str_at(taint, "/effect") {
        return false;
    }
    let key = str_at(toleration, "/key");
    if !key.is_empty() && key != str_at(taint, "/key") {
        return false;
    }
    match str_at(toleration, "/operator") {
        "Exists" => true,
        "" | "Equal" => str_at(toleration, "/value") == str_at(taint, "/value"),
        _ => false,
    }
}

/// How long a pod may stay on a node with these NoExecute taints: `None` if some taint
/// is not tolerated (evict now), `Some(None)` forever, `Some(Some(s))` for `s` seconds
/// (the smallest `tolerationSeconds` among the tolerations used; negative is 0).
pub fn toleration_time(pod: &Value, taints: &[Value]) -> Option<Option<i64>> {
    let tolerations = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut min: Option<i64> = None;
    for taint in taints {
        let used: Vec<&Value> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if used.is_empty() {
            return None;
        }
        for t in used {
            if let Some(s) = t.get("tolerationSeconds").and_then(Value::as_i64) {
                let s = s.max(0);
                min = Some(min.map_or(s, |m| m.min(s)));
            }
        }
    }
    Some(min)
}

/// What this node last saw of a Node it is home of.
struct Observed {
    /// The Lease's renewTime and the Ready heartbeat, as last seen.
    beat: (String, String),
    /// When `beat` last changed, on this node's clock.
    probe: Instant,
}

pub struct NodeLifecycleController {
    service: ObjectService,
    grace: Duration,
    observed: HashMap<String, Observed>,
    /// When a NoExecute taint without `timeAdded` was first seen, per (node, key).
    first_seen: HashMap<(String, String), DateTime<Utc>>,
}

impl NodeLifecycleController {
    pub fn new(service: ObjectService, grace: Duration) -> Self {
        NodeLifecycleController {
            service,
            grace,
            observed: HashMap::new(),
            first_seen: HashMap::new(),
        }
    }

    fn resource(&self, group: &str, plural: &str) -> Result<Arc<ResourceInfo>, ApiError> {
        self.service.registry.served(group, "v1", plural)
    }

    /// One pass over the Nodes this node is home of; returns when an eviction is next due.
    pub async fn reconcile_all(&mut self) -> Result<Option<DateTime<Utc>>, ApiError> {
        let nodes = self.resource("", "nodes")?;
        let page = self
            .service
            .store
            .list(&nodes, &ListRequest::latest(None))?;
        let mut mine = Vec::new();
        for item in page.items {
            let node = parse_stored(&item)?;
            let name = str_at(&node, "/metadata/name").to_string();
            if name.is_empty() || !self.service.store.is_home(&nodes, None, &name) {
                continue;
            }
            mine.push((name, node));
        }
        // Forget nodes that are gone or homed elsewhere now (a new home starts afresh).
        self.observed
            .retain(|name, _| mine.iter().any(|(n, _)| n == name));
        self.first_seen
            .retain(|(name, _), _| mine.iter().any(|(n, _)| n == name));
        let mut next = None;
        for (name, node) in mine {
            match self.reconcile(&nodes, &name, node).await {
                Ok(due) => {
                    if let Some(due) = due {
                        next = Some(next.map_or(due, |n: DateTime<Utc>| n.min(due)));
                    }
                }
                Err(e) if e.code() == 404 || e.code() == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(next)
    }

    async fn reconcile(
        &mut self,
        nodes: &ResourceInfo,
        name: &str,
        mut node: Value,
    ) -> Result<Option<DateTime<Utc>>, ApiError> {
        let leases = self
            .service
            .registry
            .served("coordination.k8s.io", "v1", "leases")?;
        let renew = self
            .service
            .store
            .get(&leases, Some(NODE_LEASE_NAMESPACE), name)
            .map(|l| str_at(&l, "/spec/renewTime").to_string())
            .unwrap_or_default();
        let heartbeat = condition(&node, "Ready")
            .map(|c| str_at(c, "/lastHeartbeatTime").to_string())
            .unwrap_or_default();
        let beat = (renew, heartbeat);
        let now = Instant::now();
        let observed = self
            .observed
            .entry(name.to_string())
            .or_insert_with(|| Observed {
                beat: beat.clone(),
                probe: now,
            });
        if observed.beat != beat {
            observed.beat = beat;
            observed.probe = now;
        }
        let silent = now.duration_since(observed.probe) > self.grace;

        let was_ready = condition_status(&node, "Ready") == "True";
        if silent && let Some(conds) = unknown_conditions(&node, &now_rfc3339()) {
            tracing::info!(node = name, grace = ?self.grace, "the node stopped renewing its Lease; marking it Unknown");
            let written = self
                .service
                .update(
                    nodes,
                    None,
                    name,
                    Part::Status,
                    &WriteOptions::default(),
                    |cur| {
                        let mut new = cur.clone();
                        new["status"]["conditions"] = conds.clone();
                        Ok(new)
                    },
                )
                .await?;
            node = written.object;
            if was_ready {
                // Node events carry the name as uid (the kubelet's convention, which
                // `kubectl describe node` searches by).
                record_event(
                    &self.service,
                    Involved {
                        kind: "Node",
                        namespace: None,
                        name,
                        uid: name,
                    },
                    (CONTROLLER, ""),
                    "Normal",
                    "NodeNotReady",
                    &format!("Node {name} status is now: NodeNotReady"),
                )
                .await;
                if let Err(e) = self.mark_pods_not_ready(name).await {
                    tracing::warn!(node = name, error = %e, "marking the node's pods not ready failed");
                }
            }
        }

        if let Some(taints) = reconciled_taints(&node, &now_rfc3339()) {
            let written = self
                .service
                .update(
                    nodes,
                    None,
                    name,
                    Part::Main,
                    &WriteOptions::default(),
                    |cur| {
                        let mut new = cur.clone();
                        // Recomputed on the current object (a concurrent cordon).
                        let taints = reconciled_taints(cur, &now_rfc3339())
                            .unwrap_or_else(|| taints.clone());
                        if !new.get("spec").is_some_and(Value::is_object) {
                            new["spec"] = json!({});
                        }
                        if taints.as_array().is_some_and(Vec::is_empty) {
                            if let Some(spec) = new["spec"].as_object_mut() {
                                spec.remove("taints");
                            }
                        } else {
                            new["spec"]["taints"] = taints;
                        }
                        Ok(new)
                    },
                )
                .await?;
            node = written.object;
        }
        self.evict(name, &node).await
    }

    /// Upstream's MarkPodsNotReady: the node's pods' Ready condition turns False.
    async fn mark_pods_not_ready(&self, node: &str) -> Result<(), ApiError> {
        let pods = self.resource("", "pods")?;
        for pod in self.pods_on(&pods, node)? {
            let ready = pod
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| str_at(c, "/type") == "Ready"));
            if ready.is_none_or(|c| str_at(c, "/status") == "False") {
                continue;
            }
            let (ns, name) = (
                str_at(&pod, "/metadata/namespace").to_string(),
                str_at(&pod, "/metadata/name").to_string(),
            );
            let now = now_rfc3339();
            let result = self
                .service
                .update(
                    &pods,
                    Some(&ns),
                    &name,
                    Part::Status,
                    &WriteOptions::default(),
                    |cur| {
                        let mut new = cur.clone();
                        if let Some(cs) = new
                            .pointer_mut("/status/conditions")
                            .and_then(Value::as_array_mut)
                        {
                            for c in cs.iter_mut().filter(|c| str_at(c, "/type") == "Ready") {
                                if str_at(c, "/status") != "False" {
                                    c["status"] = json!("False");
                                    c["lastTransitionTime"] = json!(now);
                                }
                            }
                        }
                        Ok(new)
                    },
                )
                .await;
            match result {
                Ok(_) => {
                    record_event(
                        &self.service,
                        Involved {
                            kind: "Pod",
                            namespace: Some(&ns),
                            name: &name,
                            uid: str_at(&pod, "/metadata/uid"),
                        },
                        (CONTROLLER, ""),
                        "Warning",
                        "NodeNotReady",
                        "Node is not ready",
                    )
                    .await;
                }
                Err(e) if e.code() == 404 || e.code() == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Pods bound to `node`.
    fn pods_on(&self, pods: &ResourceInfo, node: &str) -> Result<Vec<Value>, ApiError> {
        let on_node = |p: &Value| str_at(p, "/spec/nodeName") == node;
        let page = self.service.store.list(
            pods,
            &ListRequest {
                namespace: None,
                read_at: ReadAt::Latest,
                limit: None,
                continue_token: None,
                filter: Some(&on_node),
            },
        )?;
        page.items.iter().map(|i| parse_stored(i)).collect()
    }

    /// Deletes the pods of `node` whose NoExecute toleration has run out; returns when the
    /// next one is due.
    async fn evict(&mut self, name: &str, node: &Value) -> Result<Option<DateTime<Utc>>, ApiError> {
        let taints: Vec<Value> = node
            .pointer("/spec/taints")
            .and_then(Value::as_array)
            .map(|ts| {
                ts.iter()
                    .filter(|t| str_at(t, "/effect") == "NoExecute")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        self.first_seen
            .retain(|(n, key), _| n != name || taints.iter().any(|t| str_at(t, "/key") == key));
        if taints.is_empty() {
            return Ok(None);
        }
        // The eviction clock starts when the taints were added (the latest of them).
        let mut since: Option<DateTime<Utc>> = None;
        for t in &taints {
            let added = DateTime::parse_from_rfc3339(str_at(t, "/timeAdded"))
                .map(|d| d.with_timezone(&Utc))
                .unwrap_or_else(|_| {
                    *self
                        .first_seen
                        .entry((name.to_string(), str_at(t, "/key").to_string()))
                        .or_insert_with(Utc::now)
                });
            since = Some(since.map_or(added, |s: DateTime<Utc>| s.max(added)));
        }
        let since = since.unwrap_or_else(Utc::now);
        let pods = self.resource("", "pods")?;
        let now = Utc::now();
        let mut next = None;
        for pod in self.pods_on(&pods, name)? {
            if pod.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let due = match toleration_time(&pod, &taints) {
                None => now,
                Some(None) => continue,
                Some(Some(secs)) => since + chrono::Duration::seconds(secs),
            };
            if due > now {
                next = Some(next.map_or(due, |n: DateTime<Utc>| n.min(due)));
                continue;
            }
            self.evict_pod(&pods, &pod).await?;
        }
        Ok(next)
    }

    /// Upstream's `addConditionAndDeletePod`: a `DisruptionTarget` condition, then a
    /// graceful delete (uid-preconditioned, so a replacement of the same name is safe).
    async fn evict_pod(&self, pods: &ResourceInfo, pod: &Value) -> Result<(), ApiError> {
        let ns = str_at(pod, "/metadata/namespace").to_string();
        let name = str_at(pod, "/metadata/name").to_string();
        let uid = str_at(pod, "/metadata/uid").to_string();
        tracing::info!(pod = %format!("{ns}/{name}"), node = str_at(pod, "/spec/nodeName"),
                       "evicting a pod that does not tolerate the node's NoExecute taints");
        let now = now_rfc3339();
        let marked = self
            .service
            .update(
                pods,
                Some(&ns),
                &name,
                Part::Status,
                &WriteOptions::default(),
                |cur| {
                    let mut new = cur.clone();
                    if str_at(cur, "/metadata/uid") != uid {
                        return Err(ApiError::conflict(
                            "",
                            "pods",
                            &name,
                            "the pod was replaced",
                        ));
                    }
                    if !new.get("status").is_some_and(Value::is_object) {
                        new["status"] = json!({});
                    }
                    let mut conds = new["status"]["conditions"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    conds.retain(|c| str_at(c, "/type") != "DisruptionTarget");
                    conds.push(json!({
                        "type": "DisruptionTarget", "status": "True",
                        "reason": "DeletionByTaintManager",
                        "message": "Taint manager: deleting due to NoExecute taint",
                        "lastProbeTime": null, "lastTransitionTime": now,
                    }));
                    new["status"]["conditions"] = Value::Array(conds);
                    Ok(new)
                },
            )
            .await;
        match marked {
            Ok(_) => {}
            Err(e) if e.code() == 404 || e.code() == 409 => return Ok(()),
            Err(e) => return Err(e),
        }
        record_event(
            &self.service,
            Involved {
                kind: "Pod",
                namespace: Some(&ns),
                name: &name,
                uid: &uid,
            },
            ("taint-eviction-controller", ""),
            "Normal",
            "TaintManagerEviction",
            &format!("Marking for deletion Pod {ns}/{name}"),
        )
        .await;
        let opts = DeleteOptions {
            preconditions: beemesh_translator::store::Preconditions {
                uid: Some(uid),
                resource_version: None,
            },
            ..DeleteOptions::default()
        };
        match self
            .service
            .delete_with(pods, Some(&ns), &name, &opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == 404 || e.code() == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs forever: a pass every monitor period (5 s, or a quarter of a shorter grace
    /// period), on every Node change, and when an eviction is due.
    pub async fn run(mut self) {
        let period = MONITOR_PERIOD
            .min(self.grace / 4)
            .max(Duration::from_millis(100));
        loop {
            let next = match self.reconcile_all().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "node lifecycle pass failed");
                    None
                }
            };
            let wait = next
                .and_then(|t| (t - Utc::now()).to_std().ok())
                .map_or(period, |d| d.min(period) + Duration::from_millis(20));
            let Ok(nodes) = self.resource("", "nodes") else {
                return;
            };
            let from = self.service.store.revision();
            wait_for_change(&self.service, &nodes, from, wait, |_| true).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ready: &str, extra_spec: Value) -> Value {
        json!({
            "metadata": {"name": "n", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": extra_spec,
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": ready, "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
            ]},
        })
    }

    #[test]
    fn a_silent_node_turns_unknown_once() {
        let n = node("True", json!({}));
        let conds = unknown_conditions(&n, "2026-01-01T00:01:00Z").unwrap();
        let ready = conds
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "Unknown");
        assert_eq!(ready["reason"], "NodeStatusUnknown");
        assert_eq!(ready["message"], "Kubelet stopped posting node status.");
        assert_eq!(ready["lastHeartbeatTime"], "2026-01-01T00:00:00Z");
        let disk = conds
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "DiskPressure")
            .unwrap();
        assert_eq!(disk["reason"], "NodeStatusNeverUpdated");
        let mut again = n.clone();
        again["status"]["conditions"] = conds;
        assert!(unknown_conditions(&again, "2026-01-01T00:02:00Z").is_none());
    }

    #[test]
    fn taints_follow_ready_and_unschedulable_and_leave_others_alone() {
        let user = json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"});
        let n = node("Unknown", json!({"taints": [user.clone()]}));
        let t = reconciled_taints(&n, "2026-01-01T00:01:00Z").unwrap();
        assert_eq!(
            t,
            json!([user, {"key": TAINT_UNREACHABLE, "effect": "NoSchedule", "timeAdded": "2026-01-01T00:01:00Z"},
                   {"key": TAINT_UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-01-01T00:01:00Z"}])
        );
        let mut tainted = n.clone();
        tainted["spec"]["taints"] = t;
        assert!(reconciled_taints(&tainted, "2026-01-01T00:09:00Z").is_none());
        // Back to Ready: the unreachable taints go, the user's stays.
        tainted["status"]["conditions"][1]["status"] = json!("True");
        assert_eq!(
            reconciled_taints(&tainted, "x").unwrap(),
            json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
        );
        let cordoned = node("True", json!({"unschedulable": true}));
        assert_eq!(
            reconciled_taints(&cordoned, "x").unwrap(),
            json!([{"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule", "timeAdded": "x"}])
        );
        assert!(reconciled_taints(&node("True", json!({})), "x").is_none());
    }

    #[test]
    fn toleration_time_is_the_shortest_matching_toleration() {
        let taint = json!({"key": TAINT_UNREACHABLE, "effect": "NoExecute"});
        let none = json!({"spec": {}});
        assert_eq!(toleration_time(&none, std::slice::from_ref(&taint)), None);
        let defaulted = json!({"spec": {"tolerations": [
            {"key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 20},
        ]}});
        assert_eq!(
            toleration_time(&defaulted, std::slice::from_ref(&taint)),
            Some(Some(20))
        );
        let forever = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        assert_eq!(
            toleration_time(&forever, std::slice::from_ref(&taint)),
            Some(None)
        );
        let wrong_value = json!({"spec": {"tolerations": [
            {"key": TAINT_UNREACHABLE, "operator": "Equal", "value": "x", "effect": "NoExecute"}]}});
        assert_eq!(toleration_time(&wrong_value, &[taint]), None);
    }
}
