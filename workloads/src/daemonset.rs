//! The DaemonSet controller, as upstream's: one pod per eligible Node. A Node is eligible
//! when the pod would pass the node-level filters (`nodeSelector`, required node affinity,
//! NoSchedule/NoExecute taints against the pod's tolerations plus the ones upstream adds
//! to every daemon pod); a pod keeps running while only NoExecute taints and affinity
//! still allow it. Pods are not bound here: each gets required node affinity
//! `matchFields metadata.name In [<node>]`, as upstream, and placement binds it there.
//!
//! Templates are versioned as ControllerRevisions `<ds>-<hash>` (what `kubectl rollout
//! history/undo daemonset` read); pods carry `controller-revision-hash` and
//! `pod-template-generation`. RollingUpdate replaces pods of older revisions within
//! `maxUnavailable` (delete, then create) or `maxSurge` (create, then delete the old one
//! once the new is available); OnDelete only creates pods where none run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use beemesh_translator::service::{ObjectService, Part, WriteOptions};
use beemesh_translator::store::parse_stored;
use beemesh_translator::{ApiError, ResourceInfo};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::change_wait::wait_for_change;
use crate::controller_support::{
    Client, Expectations, controlled_by, controller_ref, deleting, is_active, is_available,
    is_ready, meta, str_at,
};
use crate::deployment::{scaled_value, template_hash};
use crate::placement::fit::{matches_node_selector, tolerates};

/// The label with the revision a daemon pod (and ControllerRevision) was made from.
pub const REVISION_HASH: &str = "controller-revision-hash";
/// The label with the DaemonSet generation a daemon pod was made from.
pub const TEMPLATE_GENERATION: &str = "pod-template-generation";
const RESYNC: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(250);
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The tolerations upstream's DaemonSet controller adds to every daemon pod
/// (`AddOrUpdateDaemonPodTolerations`).
fn daemon_tolerations(host_network: bool) -> Vec<Value> {
    let mut out = vec![
        json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}),
        json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}),
        json!({"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}),
    ];
    if host_network {
        out.push(
            json!({"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                        "effect": "NoSchedule"}),
        );
    }
    out
}

/// The daemon pod for `node`: the template, the revision labels, the controller
/// reference, node affinity to exactly that node and the daemon tolerations.
pub fn pod_for(ds: &Value, hash: &str, node: &str) -> Value {
    let name = meta(ds, "name");
    let template = ds
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut metadata = Map::new();
    metadata.insert("generateName".into(), json!(format!("{name}-")));
    for field in ["labels", "annotations", "finalizers"] {
        if let Some(v) = template.pointer(&format!("/metadata/{field}")) {
            metadata.insert(field.into(), v.clone());
        }
    }
    let mut labels = metadata
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(REVISION_HASH.into(), json!(hash));
    if let Some(g) = ds.pointer("/metadata/generation").and_then(Value::as_i64) {
        labels.insert(TEMPLATE_GENERATION.into(), json!(g.to_string()));
    }
    metadata.insert("labels".into(), Value::Object(labels));
    metadata.insert(
        "ownerReferences".into(),
        json!([controller_ref("apps/v1", "DaemonSet", ds)]),
    );
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    pin_to_node(&mut spec, node);
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    if !spec.get("tolerations").is_some_and(Value::is_array) {
        spec["tolerations"] = json!([]);
    }
    if let Some(tols) = spec["tolerations"].as_array_mut() {
        for t in daemon_tolerations(host_network) {
            if !tols.iter().any(|have| {
                str_at(have, "/key") == str_at(&t, "/key")
                    && str_at(have, "/effect") == str_at(&t, "/effect")
            }) {
                tols.push(t);
            }
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

/// Upstream's `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity's
/// terms all get `matchFields metadata.name In [node]` (replacing other matchFields), or
/// one term with only that when there is none.
fn pin_to_node(spec: &mut Value, node: &str) {
    let field = json!([{"key": "metadata.name", "operator": "In", "values": [node]}]);
    let terms = spec
        .pointer_mut("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array_mut);
    match terms {
        Some(terms) if !terms.is_empty() => {
            for t in terms {
                t["matchFields"] = field.clone();
            }
        }
        _ => {
            if !spec.get("affinity").is_some_and(Value::is_object) {
                spec["affinity"] = json!({});
            }
            if !spec["affinity"]
                .get("nodeAffinity")
                .is_some_and(Value::is_object)
            {
                spec["affinity"]["nodeAffinity"] = json!({});
            }
            spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
                json!({"nodeSelectorTerms": [{"matchFields": field}]});
        }
    }
}

/// The node a daemon pod is for: its binding, else its node affinity's `metadata.name`.
fn node_of(pod: &Value) -> Option<String> {
    let bound = str_at(pod, "/spec/nodeName");
    if !bound.is_empty() {
        return Some(bound.to_string());
    }
    pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")?
        .as_array()?
        .iter()
        .flat_map(|t| t.get("matchFields").and_then(Value::as_array).into_iter().flatten())
        .find(|f| str_at(f, "/key") == "metadata.name" && str_at(f, "/operator") == "In")
        .and_then(|f| f.pointer("/values/0")?.as_str().map(String::from))
}

/// Upstream's `NodeShouldRunDaemonPod`: (should run, should continue running).
pub fn node_should_run(pod: &Value, node: &Value) -> (bool, bool) {
    let wanted = str_at(pod, "/spec/nodeName");
    if !wanted.is_empty() && wanted != meta(node, "name") {
        return (false, false);
    }
    if !matches_node_selector(pod, node) {
        return (false, false);
    }
    let tolerations = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let taints = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let untolerated = |effects: &[&str]| {
        taints.iter().any(|t| {
            effects.contains(&str_at(t, "/effect"))
                && !tolerations.iter().any(|tol| tolerates(tol, t))
        })
    };
    (
        !untolerated(&["NoSchedule", "NoExecute"]),
        !untolerated(&["NoExecute"]),
    )
}

/// What eligibility reads from a Node (labels, taints, schedulability, readiness), so
/// heartbeats alone do not wake the controller.
fn node_fingerprint(node: &Value) -> String {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| str_at(c, "/type") == "Ready"))
        .map(|c| str_at(c, "/status"));
    json!([
        node.pointer("/metadata/labels"),
        node.pointer("/spec/taints"),
        node.pointer("/spec/unschedulable"),
        ready
    ])
    .to_string()
}

/// One pass's decision for a DaemonSet.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Nodes to create a daemon pod for.
    pub create: Vec<String>,
    /// Pods (names) to delete.
    pub delete: Vec<String>,
    pub status: Value,
    /// A pod becomes available after minReadySeconds: look again then.
    pub recheck: bool,
}

fn is_current(pod: &Value, hash: &str) -> bool {
    str_at(pod, "/metadata/labels/controller-revision-hash") == hash
}

/// Upstream's syncNodes + rollingUpdate + updateDaemonSetStatus, pure: `pods` are the
/// DaemonSet's own pods, `hash` the current revision's.
pub fn plan(ds: &Value, hash: &str, nodes: &[Value], pods: &[&Value], now: DateTime<Utc>) -> Plan {
    let mut out = Plan::default();
    let min_ready = ds
        .pointer("/spec/minReadySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let rolling = str_at(ds, "/spec/updateStrategy/type") != "OnDelete";
    let mut by_node: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    let node_names: HashSet<&str> = nodes.iter().map(|n| meta(n, "name")).collect();
    let mut terminating: HashSet<String> = HashSet::new();
    for pod in pods {
        match node_of(pod) {
            // Finished daemon pods are deleted, so a new one replaces them.
            Some(_)
                if matches!(str_at(pod, "/status/phase"), "Failed" | "Succeeded")
                    && !deleting(pod) =>
            {
                out.delete.push(meta(pod, "name").to_string());
            }
            Some(n) if node_names.contains(n.as_str()) && is_active(pod) => {
                by_node.entry(n).or_default().push(pod);
            }
            // A terminating pod still holds its node (host ports, say): as upstream, no
            // replacement until it is gone.
            Some(n)
                if node_names.contains(n.as_str())
                    && deleting(pod)
                    && !matches!(str_at(pod, "/status/phase"), "Failed" | "Succeeded") =>
            {
                terminating.insert(n);
            }
            Some(n) if node_names.contains(n.as_str()) => {}
            // A pod for a Node that no longer exists.
            _ if is_active(pod) => out.delete.push(meta(pod, "name").to_string()),
            _ => {}
        }
    }
    let (mut desired, mut current, mut misscheduled, mut ready, mut available, mut updated) =
        (0i64, 0i64, 0i64, 0i64, 0i64, 0i64);
    // Nodes that should run the daemon, with their pods oldest first.
    let mut eligible: Vec<(String, Vec<&Value>)> = Vec::new();
    for node in nodes {
        let name = meta(node, "name").to_string();
        let probe = pod_for(ds, hash, &name);
        let (should_run, should_continue) = node_should_run(&probe, node);
        let mut here = by_node.remove(&name).unwrap_or_default();
        here.sort_by(|a, b| {
            str_at(a, "/metadata/creationTimestamp")
                .cmp(str_at(b, "/metadata/creationTimestamp"))
                .then(meta(a, "name").cmp(meta(b, "name")))
        });
        if should_run {
            desired += 1;
        } else if !here.is_empty() {
            misscheduled += 1;
        }
        if !should_continue {
            out.delete
                .extend(here.iter().map(|p| meta(p, "name").to_string()));
            continue;
        }
        if !should_run && here.is_empty() {
            continue;
        }
        if should_run && here.is_empty() {
            if terminating.contains(&name) {
                out.recheck = true;
            } else {
                out.create.push(name.clone());
            }
        }
        // Duplicates: keep the oldest (during a surge, the oldest of each revision).
        let mut keep: Vec<&Value> = Vec::new();
        for p in here {
            let same_kind = keep
                .iter()
                .any(|k| is_current(k, hash) == is_current(p, hash));
            if keep.is_empty() || (rolling && !same_kind) {
                keep.push(p);
            } else {
                out.delete.push(meta(p, "name").to_string());
            }
        }
        if should_run {
            if !keep.is_empty() {
                current += 1;
            }
            if keep.iter().any(|p| is_ready(p)) {
                ready += 1;
            }
            if keep.iter().any(|p| is_available(p, min_ready, now)) {
                available += 1;
            } else if keep.iter().any(|p| is_ready(p)) {
                out.recheck = true;
            }
            if keep.iter().any(|p| is_current(p, hash)) {
                updated += 1;
            }
            eligible.push((name, keep));
        }
    }
    if rolling {
        rolling_update(ds, hash, desired, &eligible, min_ready, now, &mut out);
    }
    let mut status = Map::new();
    status.insert("currentNumberScheduled".into(), json!(current));
    status.insert("numberMisscheduled".into(), json!(misscheduled));
    status.insert("desiredNumberScheduled".into(), json!(desired));
    status.insert("numberReady".into(), json!(ready));
    if let Some(g) = ds.pointer("/metadata/generation").and_then(Value::as_i64) {
        status.insert("observedGeneration".into(), json!(g));
    }
    for (field, n) in [
        ("updatedNumberScheduled", updated),
        ("numberAvailable", available),
        ("numberUnavailable", desired - available),
    ] {
        if n > 0 {
            status.insert(field.into(), json!(n));
        }
    }
    if let Some(c) = ds.pointer("/status/collisionCount") {
        status.insert("collisionCount".into(), c.clone());
    }
    if let Some(c) = ds.pointer("/status/conditions") {
        status.insert("conditions".into(), c.clone());
    }
    out.status = Value::Object(status);
    out
}

/// Upstream's rollingUpdate: old pods give way within maxUnavailable, or with maxSurge a
/// new pod starts beside the old one, which goes once the new one is available.
fn rolling_update(
    ds: &Value,
    hash: &str,
    desired: i64,
    eligible: &[(String, Vec<&Value>)],
    min_ready: i64,
    now: DateTime<Utc>,
    out: &mut Plan,
) {
    let ru = ds.pointer("/spec/updateStrategy/rollingUpdate");
    let mut max_surge = scaled_value(ru.and_then(|r| r.get("maxSurge")), 0, desired, true);
    let mut max_unavailable =
        scaled_value(ru.and_then(|r| r.get("maxUnavailable")), -1, desired, false);
    if ru.and_then(|r| r.get("maxUnavailable")).is_none() {
        max_unavailable = 1;
    }
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    if max_surge > 0 {
        max_unavailable = max_unavailable.max(0);
    } else {
        max_surge = 0;
    }
    let avail = |p: &Value| is_available(p, min_ready, now);
    if max_surge == 0 {
        let mut unavailable = eligible
            .iter()
            .filter(|(_, pods)| !pods.iter().any(|p| avail(p)))
            .count() as i64;
        let mut candidates = Vec::new();
        for (_, pods) in eligible {
            for p in pods.iter().filter(|p| !is_current(p, hash)) {
                if !avail(p) {
                    // Already unavailable: replacing it costs nothing.
                    out.delete.push(meta(p, "name").to_string());
                } else {
                    candidates.push(meta(p, "name").to_string());
                }
            }
        }
        for name in candidates {
            if unavailable >= max_unavailable {
                break;
            }
            out.delete.push(name);
            unavailable += 1;
        }
        return;
    }
    let mut surging = eligible
        .iter()
        .filter(|(_, pods)| {
            pods.iter().any(|p| is_current(p, hash)) && pods.iter().any(|p| !is_current(p, hash))
        })
        .count() as i64;
    for (node, pods) in eligible {
        let new = pods.iter().find(|p| is_current(p, hash));
        let old: Vec<&&Value> = pods.iter().filter(|p| !is_current(p, hash)).collect();
        match (new, old.is_empty()) {
            (_, true) => {}
            (Some(n), false) => {
                if avail(n) {
                    out.delete
                        .extend(old.iter().map(|p| meta(p, "name").to_string()));
                }
            }
            (None, false) => {
                if !old.iter().any(|p| avail(p)) {
                    out.delete
                        .extend(old.iter().map(|p| meta(p, "name").to_string()));
                    out.create.push(node.clone());
                } else if surging < max_surge {
                    out.create.push(node.clone());
                    surging += 1;
                }
            }
        }
    }
}

/// The ControllerRevision payload for a template: upstream's `getPatch`, the template
/// under `spec` with `$patch: replace`, which `kubectl rollout undo` applies as a
/// strategic merge patch.
pub fn revision_data(ds: &Value) -> Value {
    let mut template = ds
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(t) = template.as_object_mut() {
        t.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The DaemonSet controller of one node.
pub struct DaemonSetController {
    client: Client,
    expectations: Expectations,
}

impl DaemonSetController {
    pub fn new(service: ObjectService) -> Self {
        DaemonSetController {
            client: Client {
                service,
                component: "daemonset-controller",
            },
            expectations: Expectations::default(),
        }
    }

    /// Runs forever: a pass on start, on any DaemonSet, pod or Node change, and every
    /// `RESYNC`.
    pub async fn run(self) {
        let (Ok(dss), Ok(pods), Ok(nodes)) = (
            self.client.resource("apps", "v1", "daemonsets"),
            self.client.resource("", "v1", "pods"),
            self.client.resource("", "v1", "nodes"),
        ) else {
            return;
        };
        loop {
            let from = self.client.service.store.revision();
            let started = Instant::now();
            let (wait, seen) = match self.reconcile_all(&dss, &pods, &nodes).await {
                Ok((true, seen)) => (SHORT, seen),
                Ok((false, seen)) => (RESYNC, seen),
                Err(e) => {
                    tracing::warn!(error = %e, "daemonset reconcile failed");
                    (SHORT, HashMap::new())
                }
            };
            // Node heartbeats change Nodes all the time: only a new Node or a change of
            // what eligibility reads (labels, taints, schedulability, readiness) wakes
            // the controller, and only while DaemonSets exist.
            let node_changed = |bytes: &[u8]| {
                !seen.is_empty()
                    && parse_stored(bytes)
                        .is_ok_and(|n| seen.get(meta(&n, "name")) != Some(&node_fingerprint(&n)))
            };
            tokio::select! {
                _ = wait_for_change(&self.client.service, &dss, from, wait, |_| true) => {}
                _ = wait_for_change(&self.client.service, &pods, from, wait, |_| true) => {}
                _ = wait_for_change(&self.client.service, &nodes, from, wait, node_changed) => {}
            }
            if let Some(rest) = MIN_INTERVAL.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    }

    async fn reconcile_all(
        &self,
        dss_res: &ResourceInfo,
        pods_res: &ResourceInfo,
        nodes_res: &ResourceInfo,
    ) -> Result<(bool, HashMap<String, String>), ApiError> {
        let dss = self.client.list(dss_res)?;
        if dss.is_empty() {
            return Ok((false, HashMap::new()));
        }
        let nodes = self.client.list(nodes_res)?;
        let seen = nodes
            .iter()
            .map(|n| (meta(n, "name").to_string(), node_fingerprint(n)))
            .collect();
        let all_pods = self.client.list(pods_res)?;
        let revs_res = self.client.resource("apps", "v1", "controllerrevisions")?;
        let all_revs = self.client.list(&revs_res)?;
        let mut soon = false;
        let mut live = HashSet::new();
        for ds in &dss {
            let uid = meta(ds, "uid");
            live.insert(uid.to_string());
            if !self.client.is_home(dss_res, ds) || deleting(ds) {
                continue;
            }
            let pods: Vec<&Value> = all_pods
                .iter()
                .filter(|p| meta(p, "namespace") == meta(ds, "namespace") && controlled_by(p, uid))
                .collect();
            let revs: Vec<&Value> = all_revs
                .iter()
                .filter(|r| meta(r, "namespace") == meta(ds, "namespace") && controlled_by(r, uid))
                .collect();
            match self
                .sync(dss_res, pods_res, &revs_res, ds, &nodes, &pods, &revs)
                .await
            {
                Ok(s) => soon |= s,
                Err(e) => {
                    tracing::warn!(error = %e, daemonset = meta(ds, "name"), "daemonset sync failed");
                    soon = true;
                }
            }
        }
        self.expectations.forget_others(&live);
        Ok((soon, seen))
    }

    #[allow(clippy::too_many_arguments)]
    async fn sync(
        &self,
        dss_res: &ResourceInfo,
        pods_res: &ResourceInfo,
        revs_res: &ResourceInfo,
        ds: &Value,
        nodes: &[Value],
        pods: &[&Value],
        revs: &[&Value],
    ) -> Result<bool, ApiError> {
        let uid = meta(ds, "uid");
        let hash = self.current_revision(revs_res, ds, revs).await?;
        if !self.expectations.satisfied(uid, pods) {
            return Ok(true);
        }
        let plan = plan(ds, &hash, nodes, pods, Utc::now());
        let mut deleted = Vec::new();
        for name in &plan.delete {
            if let Some(pod) = pods.iter().find(|p| meta(p, "name") == name)
                && self.client.delete(pods_res, pod, None).await?
            {
                deleted.push(meta(pod, "uid").to_string());
                self.client
                    .event(
                        ds,
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    )
                    .await;
            }
        }
        let (created, refused) = self
            .client
            .create_pods(
                pods_res,
                ds,
                plan.create
                    .iter()
                    .map(|node| pod_for(ds, &hash, node))
                    .collect(),
            )
            .await;
        let changed = !created.is_empty() || !deleted.is_empty();
        self.expectations.expect(uid, created, deleted);
        self.client.write_status(dss_res, ds, &plan.status).await?;
        self.cleanup_history(revs_res, ds, revs, &hash, pods)
            .await?;
        Ok(plan.recheck || refused.is_some() || changed)
    }

    /// Makes sure a ControllerRevision holds the current template with the highest
    /// revision number (bumping an older identical one, as upstream's dedup), and returns
    /// its hash.
    async fn current_revision(
        &self,
        revs_res: &ResourceInfo,
        ds: &Value,
        revs: &[&Value],
    ) -> Result<String, ApiError> {
        let data = revision_data(ds);
        let max = revs
            .iter()
            .filter_map(|r| r.get("revision").and_then(Value::as_i64))
            .max()
            .unwrap_or(0);
        let mut matching: Vec<&&Value> = revs
            .iter()
            .filter(|r| r.get("data") == Some(&data))
            .collect();
        matching.sort_by_key(|r| {
            std::cmp::Reverse(r.get("revision").and_then(Value::as_i64).unwrap_or(0))
        });
        if let Some(found) = matching.first() {
            let hash = str_at(found, "/metadata/labels/controller-revision-hash").to_string();
            let rev = found.get("revision").and_then(Value::as_i64).unwrap_or(0);
            if rev < max {
                let next = max + 1;
                self.client
                    .service
                    .update(
                        revs_res,
                        Some(meta(found, "namespace")),
                        meta(found, "name"),
                        Part::Main,
                        &WriteOptions::default(),
                        |cur| {
                            let mut new = cur.clone();
                            new["revision"] = json!(next);
                            Ok(new)
                        },
                    )
                    .await?;
            }
            if !hash.is_empty() {
                return Ok(hash);
            }
        }
        let ns = meta(ds, "namespace");
        let mut collision = ds.pointer("/status/collisionCount").and_then(Value::as_i64);
        let template = ds.pointer("/spec/template").cloned().unwrap_or(Value::Null);
        for _ in 0..5 {
            let hash = template_hash(&template, collision);
            let name = format!("{}-{hash}", meta(ds, "name"));
            let mut labels = ds
                .pointer("/spec/template/metadata/labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            labels.insert(REVISION_HASH.into(), json!(hash));
            let rev = json!({
                "apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": name, "namespace": ns, "labels": labels,
                             "ownerReferences": [controller_ref("apps/v1", "DaemonSet", ds)]},
                "data": data, "revision": max + 1,
            });
            match self
                .client
                .service
                .create(revs_res, Some(ns), rev, &WriteOptions::default())
                .await
            {
                Ok(_) => return Ok(hash),
                Err(e) if e.code() == 409 => {
                    // Same name: ours with this template (a replica lagging) is fine;
                    // anything else is a hash collision. A revision homed on another node
                    // may not have reached this replica yet: that is no collision, and
                    // the next pass judges it once it has.
                    match self.client.service.store.get(revs_res, Some(ns), &name) {
                        Ok(existing)
                            if existing.get("data") == Some(&data)
                                && controlled_by(&existing, meta(ds, "uid")) =>
                        {
                            return Ok(hash);
                        }
                        Ok(_) => {}
                        Err(_) => return Err(e),
                    }
                    let next = collision.unwrap_or(0) + 1;
                    collision = Some(next);
                    let mut st = ds
                        .get("status")
                        .cloned()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    st["collisionCount"] = json!(next);
                    let dss_res = self.client.resource("apps", "v1", "daemonsets")?;
                    self.client.write_status(&dss_res, ds, &st).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::internal(
            "no free ControllerRevision name after 5 hash collisions",
        ))
    }

    /// Upstream's cleanupHistory: keeps `revisionHistoryLimit` (default 10) old revisions
    /// besides the current one and those a live pod still uses.
    async fn cleanup_history(
        &self,
        revs_res: &ResourceInfo,
        ds: &Value,
        revs: &[&Value],
        hash: &str,
        pods: &[&Value],
    ) -> Result<(), ApiError> {
        let limit = ds
            .pointer("/spec/revisionHistoryLimit")
            .and_then(Value::as_i64)
            .unwrap_or(10)
            .max(0) as usize;
        let in_use: HashSet<&str> = pods
            .iter()
            .map(|p| str_at(p, "/metadata/labels/controller-revision-hash"))
            .chain(std::iter::once(hash))
            .collect();
        let mut old: Vec<&&Value> = revs
            .iter()
            .filter(|r| !in_use.contains(str_at(r, "/metadata/labels/controller-revision-hash")))
            .collect();
        if old.len() <= limit {
            return Ok(());
        }
        old.sort_by_key(|r| r.get("revision").and_then(Value::as_i64).unwrap_or(0));
        let n = old.len() - limit;
        let mut by_name: HashMap<&str, &Value> = HashMap::new();
        for r in old.into_iter().take(n) {
            by_name.insert(meta(r, "name"), r);
        }
        for r in by_name.values() {
            self.client.delete(revs_res, r, None).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints},
               "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    }

    fn ds(spec: Value) -> Value {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "default", "uid": "d1", "generation": 2},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}}});
        if let (Some(s), Some(extra)) = (d["spec"].as_object_mut(), spec.as_object()) {
            s.extend(extra.clone());
        }
        d
    }

    fn pod(name: &str, node: &str, hash: &str, ready: bool) -> Value {
        let mut p = json!({"metadata": {"name": name, "uid": format!("u-{name}"),
                                        "creationTimestamp": "2026-01-01T00:00:00Z",
                                        "labels": {REVISION_HASH: hash}},
                           "spec": {"nodeName": node}, "status": {"phase": "Running"}});
        if ready {
            p["status"]["conditions"] = json!([{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
        }
        p
    }

    #[test]
    fn daemon_pods_are_pinned_by_node_affinity_and_tolerate_node_conditions() {
        let d = ds(json!({}));
        let p = pod_for(&d, "h1", "n1");
        assert_eq!(p["metadata"]["labels"][REVISION_HASH], "h1");
        assert_eq!(p["metadata"]["labels"][TEMPLATE_GENERATION], "2");
        assert_eq!(node_of(&p).as_deref(), Some("n1"));
        let n1 = node("n1", json!({}), json!([]));
        let n2 = node("n2", json!({}), json!([]));
        assert!(matches_node_selector(&p, &n1) && !matches_node_selector(&p, &n2));
        let keys: Vec<&str> = p["spec"]["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| str_at(t, "/key"))
            .collect();
        assert!(
            keys.contains(&"node.kubernetes.io/unschedulable"),
            "{keys:?}"
        );
    }

    #[test]
    fn eligible_nodes_follow_selector_and_taints() {
        let d = ds(
            json!({"template": {"metadata": {"labels": {"app": "agent"}},
            "spec": {"nodeSelector": {"disk": "ssd"}, "containers": [{"name": "a", "image": "i"}]}}}),
        );
        let nodes = vec![
            node("ssd", json!({"disk": "ssd"}), json!([])),
            node("hdd", json!({"disk": "hdd"}), json!([])),
            node(
                "tainted",
                json!({"disk": "ssd"}),
                json!([{"key": "gpu", "effect": "NoSchedule"}]),
            ),
        ];
        let stray = pod("stray", "hdd", "h", true);
        let p = plan(&d, "h", &nodes, &[&stray], Utc::now());
        assert_eq!(p.create, ["ssd"]);
        assert_eq!(p.delete, ["stray"]);
        assert_eq!(p.status["desiredNumberScheduled"], 1);
        assert_eq!(p.status["numberMisscheduled"], 1);
        // Only NoExecute taints evict a running daemon pod.
        let (run, keep) = node_should_run(&pod_for(&d, "h", "tainted"), &nodes[2]);
        assert!(!run && keep);
    }

    #[test]
    fn rolling_update_replaces_within_max_unavailable() {
        let d = ds(json!({}));
        let nodes: Vec<Value> = (1..=3)
            .map(|i| node(&format!("n{i}"), json!({}), json!([])))
            .collect();
        let pods: Vec<Value> = (1..=3)
            .map(|i| pod(&format!("p{i}"), &format!("n{i}"), "old", true))
            .collect();
        let refs: Vec<&Value> = pods.iter().collect();
        let p = plan(&d, "new", &nodes, &refs, Utc::now());
        assert_eq!(p.delete.len(), 1, "default maxUnavailable 1: {p:?}");
        assert!(p.create.is_empty());
        assert_eq!(p.status["numberReady"], 3);
        assert!(p.status.get("updatedNumberScheduled").is_none());
        // maxSurge 1: a new pod next to an old one; the old goes once the new is ready.
        let d = ds(json!({"updateStrategy": {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}));
        let p = plan(&d, "new", &nodes, &refs, Utc::now());
        assert_eq!(p.create.len(), 1);
        assert!(p.delete.is_empty());
        let new1 = pod("q1", "n1", "new", true);
        let mut refs2 = refs.clone();
        refs2.push(&new1);
        let p = plan(&d, "new", &nodes, &refs2, Utc::now());
        assert_eq!(p.delete, ["p1"]);
        assert_eq!(p.status["updatedNumberScheduled"], 1);
        // A node whose old pod is still terminating waits for it.
        let mut going = pod("p1", "n1", "old", true);
        going["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:01:00Z");
        let rest: Vec<&Value> = vec![&going, &pods[1], &pods[2]];
        let d1 = ds(json!({}));
        let p = plan(&d1, "new", &nodes, &rest, Utc::now());
        assert!(p.create.is_empty(), "{p:?}");
        assert!(p.recheck);
        let p = plan(&d1, "new", &nodes, &refs[1..], Utc::now());
        assert_eq!(p.create, ["n1"]);
        // OnDelete never replaces.
        let d = ds(json!({"updateStrategy": {"type": "OnDelete"}}));
        let p = plan(&d, "new", &nodes, &refs, Utc::now());
        assert!(p.delete.is_empty() && p.create.is_empty());
    }

    #[test]
    fn revision_data_replaces_the_template() {
        let d = ds(json!({}));
        let data = revision_data(&d);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        assert_eq!(
            data["spec"]["template"]["spec"]["containers"][0]["image"],
            "agent:1"
        );
    }
}
