//! The ReplicaSet controller, serving apps/v1 ReplicaSets and v1 ReplicationControllers
//! as upstream's ReplicaSetController does for both: keeps `spec.replicas` active pods
//! from `spec.template`, adopts matching orphans and releases pods that stop matching,
//! deletes surplus pods in upstream's order, and reports the counts in `/status`.
//!
//! Each controller is reconciled only by its home node. Creates and deletes are recorded
//! as expectations: a controller is not managed again until this node's replica has
//! observed them, so a second pass during churn cannot over-create or over-delete.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beemesh_translator::service::{ObjectService, Part, WriteOptions};
use beemesh_translator::{ApiError, ResourceInfo, selector::LabelSelector};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::change_wait::wait_for_change;
use crate::controller_support::{ParsedCache, refresh_values};

/// Longest sleep without an event.
const RESYNC: Duration = Duration::from_secs(10);
/// Re-check interval while expectations are pending or a minReadySeconds wait runs.
const SHORT: Duration = Duration::from_millis(250);
/// Unobserved creates/deletes stop blocking after this. Upstream waits 5 minutes, but its
/// informer sees every event; a pass here sees only the pods present, so a pod created and
/// deleted between two passes is never observed and must not hold the controller long.
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(30);
/// Shortest time between the starts of two passes.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Controllers synced at once in a pass.
const PARALLEL_SYNCS: usize = 32;
/// Upstream's burstReplicas: most pods created or deleted in one sync.
const BURST_REPLICAS: usize = 500;

/// The two kinds served, which differ only in API group and selector shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ReplicaSet,
    ReplicationController,
}

impl Kind {
    fn resource(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::ReplicaSet => ("apps", "v1", "replicasets"),
            Kind::ReplicationController => ("", "v1", "replicationcontrollers"),
        }
    }
    /// The event source upstream's controllers report as.
    fn component(self) -> &'static str {
        match self {
            Kind::ReplicaSet => "replicaset-controller",
            Kind::ReplicationController => "replication-controller",
        }
    }
    fn api_version(self) -> &'static str {
        match self {
            Kind::ReplicaSet => "apps/v1",
            Kind::ReplicationController => "v1",
        }
    }
    fn kind(self) -> &'static str {
        match self {
            Kind::ReplicaSet => "ReplicaSet",
            Kind::ReplicationController => "ReplicationController",
        }
    }
    /// The selector: a LabelSelector for ReplicaSets, a label map for RCs (defaulted
    /// from the template's labels when missing, as upstream's RC defaulting does).
    fn selector(self, obj: &Value) -> Result<LabelSelector, ApiError> {
        match self {
            Kind::ReplicaSet => LabelSelector::from_label_selector_object(
                obj.pointer("/spec/selector").unwrap_or(&Value::Null),
            ),
            Kind::ReplicationController => {
                let set = obj
                    .pointer("/spec/selector")
                    .and_then(Value::as_object)
                    .filter(|m| !m.is_empty())
                    .or_else(|| {
                        obj.pointer("/spec/template/metadata/labels")
                            .and_then(Value::as_object)
                    });
                Ok(match set {
                    Some(set) if !set.is_empty() => LabelSelector::from_set(set),
                    _ => LabelSelector::nothing(),
                })
            }
        }
    }
}

/// Creates and deletes a controller has made that this node's replica has not shown yet.
#[derive(Debug, Default)]
struct Expectation {
    /// Names of created pods not yet seen.
    adds: HashSet<String>,
    /// Uids of deleted pods still seen without a deletionTimestamp.
    dels: HashSet<String>,
    set_at: Option<Instant>,
}

/// Per-controller expectations, keyed by the controller's uid.
#[derive(Debug, Default)]
struct Expectations(Mutex<HashMap<String, Expectation>>);

impl Expectations {
    /// Clears what the pods (the namespace's current pods) show done; true when nothing
    /// remains or the expectations are older than the timeout.
    fn satisfied(&self, key: &str, pods: &[impl std::borrow::Borrow<Value>]) -> bool {
        let Ok(mut map) = self.0.lock() else {
            return true;
        };
        let Some(exp) = map.get_mut(key) else {
            return true;
        };
        exp.adds.retain(|name| {
            !pods
                .iter()
                .any(|p| meta(p.borrow(), "name") == Some(name.as_str()))
        });
        exp.dels.retain(|uid| {
            pods.iter().map(|p| p.borrow()).any(|p| {
                meta(p, "uid") == Some(uid.as_str())
                    && p.pointer("/metadata/deletionTimestamp").is_none()
            })
        });
        let expired = exp
            .set_at
            .is_some_and(|t| t.elapsed() > EXPECTATIONS_TIMEOUT);
        if (exp.adds.is_empty() && exp.dels.is_empty()) || expired {
            map.remove(key);
            return true;
        }
        false
    }

    fn expect(&self, key: &str, adds: Vec<String>, dels: Vec<String>) {
        if adds.is_empty() && dels.is_empty() {
            return;
        }
        if let Ok(mut map) = self.0.lock() {
            let exp = map.entry(key.to_string()).or_default();
            exp.adds.extend(adds);
            exp.dels.extend(dels);
            exp.set_at = Some(Instant::now());
        }
    }

    fn forget_others(&self, live: &HashSet<String>) {
        if let Ok(mut map) = self.0.lock() {
            map.retain(|k, _| live.contains(k));
        }
    }
}

fn meta<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// The controller ownerReference of an object, if any.
fn controller_ref(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// Upstream's IsPodActive: not Succeeded, not Failed, not being deleted.
fn is_active(pod: &Value) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    phase != Some("Succeeded")
        && phase != Some("Failed")
        && pod.pointer("/metadata/deletionTimestamp").is_none()
}

fn ready_condition(pod: &Value) -> Option<&Value> {
    pod.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
}

fn is_ready(pod: &Value) -> bool {
    ready_condition(pod).and_then(|c| c.get("status")?.as_str()) == Some("True")
}

fn time_of(v: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v?.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn ready_since(pod: &Value) -> Option<DateTime<Utc>> {
    if !is_ready(pod) {
        return None;
    }
    time_of(ready_condition(pod).and_then(|c| c.get("lastTransitionTime")))
}

/// Upstream's IsPodAvailable: ready for at least `min_ready` seconds.
fn is_available(pod: &Value, min_ready: i64, now: DateTime<Utc>) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready <= 0 {
        return true;
    }
    ready_since(pod).is_some_and(|t| t + chrono::Duration::seconds(min_ready) <= now)
}

fn phase_ordinal(pod: &Value) -> u8 {
    match pod.pointer("/status/phase").and_then(Value::as_str) {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 3,
    }
}

fn deletion_cost(pod: &Value) -> i32 {
    pod.pointer("/metadata/annotations/controller.kubernetes.io~1pod-deletion-cost")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn max_restarts(pod: &Value) -> i64 {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|f| pod.get("status")?.get(*f)?.as_array())
        .flatten()
        .filter_map(|c| c.get("restartCount")?.as_i64())
        .max()
        .unwrap_or(0)
}

/// floor(log2(age in ns)), -1 for no age: upstream's LogarithmicScaleDown buckets.
fn log_bucket(t: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let ns = (now - t).num_nanoseconds().unwrap_or(i64::MAX);
    if ns > 0 {
        (ns as f64).log2() as i64
    } else {
        -1
    }
}

/// Compares two timestamps as upstream does: missing first, then later (younger) first,
/// equal log2 buckets broken by uid.
fn younger_first(
    a: Option<DateTime<Utc>>,
    b: Option<DateTime<Utc>>,
    pa: &Value,
    pb: &Value,
    now: DateTime<Utc>,
) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) if a == b => Ordering::Equal,
        (Some(a), Some(b)) => match log_bucket(a, now).cmp(&log_bucket(b, now)) {
            Ordering::Equal => meta(pa, "uid").cmp(&meta(pb, "uid")),
            o => o,
        },
    }
}

/// Orders pods so the ones to delete first come first, as upstream's
/// ActivePodsWithRanks: unscheduled < scheduled; Pending < Unknown < Running; not ready <
/// ready; lower pod-deletion-cost first; more pods of the controller on the same node
/// first; ready for less time first; more restarts first; newer first.
fn deletion_order(pods: &mut [&Value], now: DateTime<Utc>) {
    let node = |p: &Value| {
        p.pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut on_node: HashMap<String, usize> = HashMap::new();
    for p in pods.iter() {
        let n = node(p);
        if !n.is_empty() {
            *on_node.entry(n).or_default() += 1;
        }
    }
    let rank = |p: &Value| on_node.get(&node(p)).copied().unwrap_or(0);
    pods.sort_by(|a, b| {
        let (na, nb) = (node(a), node(b));
        (!na.is_empty())
            .cmp(&!nb.is_empty())
            .then(phase_ordinal(a).cmp(&phase_ordinal(b)))
            .then(is_ready(a).cmp(&is_ready(b)))
            .then(deletion_cost(a).cmp(&deletion_cost(b)))
            .then(rank(b).cmp(&rank(a)))
            .then_with(|| {
                if is_ready(a) && is_ready(b) {
                    younger_first(ready_since(a), ready_since(b), a, b, now)
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .then(max_restarts(b).cmp(&max_restarts(a)))
            .then_with(|| {
                younger_first(
                    time_of(a.pointer("/metadata/creationTimestamp")),
                    time_of(b.pointer("/metadata/creationTimestamp")),
                    a,
                    b,
                    now,
                )
            })
    });
}

/// The pod a controller creates: its template with `generateName: <name>-` and a
/// controller ownerReference (upstream's GetPodFromTemplate).
fn pod_from_template(kind: Kind, owner: &Value) -> Value {
    let name = meta(owner, "name").unwrap_or_default();
    let template = owner
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
    metadata.insert("ownerReferences".into(), json!([owner_ref(kind, owner)]));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

fn owner_ref(kind: Kind, owner: &Value) -> Value {
    json!({
        "apiVersion": kind.api_version(),
        "kind": kind.kind(),
        "name": meta(owner, "name"),
        "uid": meta(owner, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// The status upstream's calculateStatus computes (zero counts omitted as the Go types'
/// `omitempty` does, `replicas` always present).
fn calculate_status(
    owner: &Value,
    pods: &[&Value],
    failure: Option<(&str, String)>,
    now: DateTime<Utc>,
) -> Value {
    let template_labels = owner
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let min_ready = owner
        .pointer("/spec/minReadySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let labeled = pods
        .iter()
        .filter(|p| {
            let labels = p.pointer("/metadata/labels").and_then(Value::as_object);
            template_labels
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let available = pods
        .iter()
        .filter(|p| is_available(p, min_ready, now))
        .count();
    let mut status = Map::new();
    status.insert("replicas".into(), json!(pods.len()));
    for (field, n) in [
        ("fullyLabeledReplicas", labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ] {
        if n > 0 {
            status.insert(field.into(), json!(n));
        }
    }
    if let Some(g) = owner
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        && g != 0
    {
        status.insert("observedGeneration".into(), json!(g));
    }
    // Other conditions stay; ReplicaFailure is set on a failed create/delete and removed
    // once a sync manages without error.
    let mut conditions: Vec<Value> = owner
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let existing = conditions
        .iter()
        .position(|c| c.get("type").and_then(Value::as_str) == Some("ReplicaFailure"));
    match (failure, existing) {
        (Some((reason, message)), None) => conditions.push(json!({
            "type": "ReplicaFailure",
            "status": "True",
            "lastTransitionTime": beemesh_translator::service::now_rfc3339(),
            "reason": reason,
            "message": message,
        })),
        (None, Some(i)) => {
            conditions.remove(i);
        }
        _ => {}
    }
    if !conditions.is_empty() {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    Value::Object(status)
}

/// The result of one controller's sync, for the pass's next wake-up.
#[derive(Debug, Default)]
struct Sync {
    /// Expectations are pending or a pod becomes available soon: check again shortly.
    soon: bool,
}

pub struct ReplicaSetController {
    service: ObjectService,
    expectations: Expectations,
    /// Parsed pods, ReplicaSets and ReplicationControllers kept between passes.
    pods: Mutex<ParsedCache<Pod>>,
    owners: [Mutex<ParsedCache<Value>>; 2],
    /// Per controller uid, the objects its last sync saw when that sync left nothing to
    /// look at again: while they are the same objects a sync would change nothing.
    settled: Mutex<HashMap<String, Vec<Arc<Value>>>>,
}

/// A cached pod with what the grouping of a pass reads, worked out once.
struct Pod {
    namespace: Option<String>,
    /// Its controller's uid.
    owner: Option<String>,
    pod: Arc<Value>,
}

impl Pod {
    fn parse(raw: &[u8]) -> Result<Self, ApiError> {
        let pod = beemesh_translator::store::parse_stored(raw)?;
        Ok(Pod {
            namespace: meta(&pod, "namespace").map(str::to_string),
            owner: controller_ref(&pod)
                .and_then(|r| r.get("uid").and_then(Value::as_str))
                .map(str::to_string),
            pod: Arc::new(pod),
        })
    }
}

/// A controller uid and the objects of its sync that settled.
type SettledSync = (String, Vec<Arc<Value>>);

/// Whether two lists hold the very same cached objects (same stored bytes).
fn same_objects(a: &[Arc<Value>], b: &[Arc<Value>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
}

impl ReplicaSetController {
    pub fn new(service: ObjectService) -> Self {
        ReplicaSetController {
            service,
            expectations: Expectations::default(),
            pods: Mutex::default(),
            owners: Default::default(),
            settled: Mutex::default(),
        }
    }

    fn resource(&self, (g, v, p): (&str, &str, &str)) -> Result<Arc<ResourceInfo>, ApiError> {
        self.service.registry.served(g, v, p)
    }

    /// Runs forever: a pass on start, on every change to pods, ReplicaSets or
    /// ReplicationControllers, and every `RESYNC`.
    pub async fn run(self) {
        loop {
            let from = self.service.store.revision();
            let started = Instant::now();
            let wait = match self.reconcile_all().await {
                Ok(true) => SHORT,
                Ok(false) => RESYNC,
                Err(e) => {
                    tracing::warn!(error = %e, "replicaset reconcile failed");
                    SHORT
                }
            };
            let pass = started.elapsed();
            let (Ok(pods), Ok(rs), Ok(rc)) = (
                self.resource(("", "v1", "pods")),
                self.resource(Kind::ReplicaSet.resource()),
                self.resource(Kind::ReplicationController.resource()),
            ) else {
                return;
            };
            tokio::select! {
                _ = wait_for_change(&self.service, &pods, from, wait, |_| true) => {}
                _ = wait_for_change(&self.service, &rs, from, wait, |_| true) => {}
                _ = wait_for_change(&self.service, &rc, from, wait, |_| true) => {}
            }
            let waited = started.elapsed() - pass;
            // Under churn (pod status updates from many kubelets) one pass then covers a
            // batch of changes instead of one pass per change.
            if let Some(rest) = MIN_INTERVAL.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
            tracing::debug!(
                pass_ms = pass.as_millis() as u64,
                waited_ms = waited.as_millis() as u64,
                paced_ms = (started.elapsed() - pass - waited).as_millis() as u64,
                "replicaset loop"
            );
        }
    }

    /// One pass over every ReplicaSet and ReplicationController this node is home of;
    /// true when one wants another look soon.
    pub async fn reconcile_all(&self) -> Result<bool, ApiError> {
        let pods_res = self.resource(("", "v1", "pods"))?;
        // A controller only looks at the pods it controls and the orphans of its
        // namespace (it may adopt those): grouped once per pass, not filtered per owner.
        let all_pods = self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refresh(&self.service, &pods_res, |raw| Pod::parse(raw))?;
        let mut by_owner: HashMap<(&str, &str), Vec<Arc<Value>>> = HashMap::new();
        let mut orphans: BTreeMap<&str, Vec<Arc<Value>>> = BTreeMap::new();
        for p in &all_pods {
            let Some(ns) = p.namespace.as_deref() else {
                continue;
            };
            match p.owner.as_deref() {
                Some(owner) => by_owner.entry((ns, owner)).or_default().push(p.pod.clone()),
                None => orphans.entry(ns).or_default().push(p.pod.clone()),
            }
        }
        let mut live = HashSet::new();
        let mut work = Vec::new();
        let mut settled =
            std::mem::take(&mut *self.settled.lock().unwrap_or_else(|e| e.into_inner()));
        let mut kept = HashMap::new();
        let mut owners = Vec::new();
        for (kind, cache) in [Kind::ReplicaSet, Kind::ReplicationController]
            .into_iter()
            .zip(&self.owners)
        {
            let res = self.resource(kind.resource())?;
            for owner in refresh_values(cache, &self.service, &res)? {
                owners.push((kind, res.clone(), owner));
            }
        }
        {
            for (kind, res, owner) in &owners {
                let (Some(ns), Some(name), Some(uid)) = (
                    meta(owner, "namespace"),
                    meta(owner, "name"),
                    meta(owner, "uid"),
                ) else {
                    continue;
                };
                live.insert(uid.to_string());
                if !self.service.store.is_home(res, Some(ns), name) {
                    continue;
                }
                let mut pods = by_owner.remove(&(ns, uid)).unwrap_or_default();
                pods.extend(orphans.get(ns).into_iter().flatten().cloned());
                // The owner and its pods are the objects of a sync that settled: it would
                // write nothing and find nothing to do.
                let mut seen = Vec::with_capacity(pods.len() + 1);
                seen.push(owner.clone());
                seen.extend(pods.iter().cloned());
                if let Some(last) = settled.remove(uid)
                    && same_objects(&last, &seen)
                {
                    kept.insert(uid.to_string(), last);
                    continue;
                }
                work.push((*kind, res.clone(), owner.clone(), pods, seen));
            }
        }
        tracing::debug!(pods = all_pods.len(), syncs = work.len(), "replicaset pass");
        // Controllers are independent: synced together, their writes share group commits.
        let pods_res = &pods_res;
        let results: Vec<(bool, Option<SettledSync>)> = futures::stream::iter(work)
            .map(|(kind, res, owner, pods, seen)| async move {
                match self.sync(kind, &res, pods_res, &owner, &pods).await {
                    Ok(s) if !s.soon => (
                        false,
                        meta(&owner, "uid").map(|uid| (uid.to_string(), seen)),
                    ),
                    Ok(_) => (true, None),
                    Err(e) if e.code() == 404 || e.code() == 409 => (true, None),
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            kind = kind.kind(),
                            namespace = meta(&owner, "namespace").unwrap_or_default(),
                            name = meta(&owner, "name").unwrap_or_default(),
                            "sync failed"
                        );
                        (true, None)
                    }
                }
            })
            .buffer_unordered(PARALLEL_SYNCS)
            .collect()
            .await;
        let mut soon = false;
        for (again, done) in results {
            soon |= again;
            kept.extend(done);
        }
        *self.settled.lock().unwrap_or_else(|e| e.into_inner()) = kept;
        self.expectations.forget_others(&live);
        Ok(soon)
    }

    /// Upstream's syncReplicaSet for one controller.
    async fn sync(
        &self,
        kind: Kind,
        res: &ResourceInfo,
        pods_res: &ResourceInfo,
        owner: &Value,
        ns_pods: &[Arc<Value>],
    ) -> Result<Sync, ApiError> {
        let now = Utc::now();
        let ns = meta(owner, "namespace").unwrap_or_default();
        let name = meta(owner, "name").unwrap_or_default();
        let uid = meta(owner, "uid").unwrap_or_default();
        let deleting = owner.pointer("/metadata/deletionTimestamp").is_some();
        let selector = kind.selector(owner)?;
        // Validation rejects these; should one be stored anyway, its own pods would never
        // match and every pass would create more.
        if selector.matches_nothing() || selector.is_empty() {
            return Ok(Sync::default());
        }
        let satisfied = self.expectations.satisfied(uid, ns_pods);
        let mut out = Sync { soon: !satisfied };

        // Claim: keep ours that match, release ours that do not, adopt matching orphans.
        let mut claimed: Vec<Arc<Value>> = Vec::new();
        for pod in ns_pods.iter().filter(|p| is_active(p)) {
            match controller_ref(pod) {
                Some(r) if r.get("uid").and_then(Value::as_str) != Some(uid) => {}
                Some(_) => {
                    if selector.matches_object(pod) {
                        claimed.push(pod.clone());
                    } else if !deleting {
                        self.release(pods_res, pod, uid).await?;
                    }
                }
                None => {
                    if deleting || !selector.matches_object(pod) || !self.can_adopt(res, owner) {
                        continue;
                    }
                    if let Some(p) = self.adopt(kind, pods_res, pod, owner).await? {
                        claimed.push(Arc::new(p));
                    }
                }
            }
        }

        let mut failure = None;
        if satisfied && !deleting {
            failure = self
                .manage(kind, pods_res, owner, &claimed, now)
                .await
                .err();
            out.soon |= failure.is_some();
        }
        let claimed_refs: Vec<&Value> = claimed.iter().map(|p| p.as_ref()).collect();
        let status = calculate_status(owner, &claimed_refs, failure, now);
        if owner.get("status") != Some(&status) {
            let wanted = status.clone();
            self.service
                .update(
                    res,
                    Some(ns),
                    name,
                    Part::Status,
                    &WriteOptions::default(),
                    |cur| {
                        if meta(cur, "uid") != Some(uid) {
                            return Err(ApiError::conflict(
                                &res.group,
                                &res.plural,
                                name,
                                "uid changed",
                            ));
                        }
                        let mut new = cur.clone();
                        new["status"] = wanted.clone();
                        Ok(new)
                    },
                )
                .await?;
        }
        // A pod turning available after minReadySeconds produces no event: look again.
        let min_ready = owner
            .pointer("/spec/minReadySeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let ready = status
            .get("readyReplicas")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let available = status
            .get("availableReplicas")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if min_ready > 0 && available < ready {
            out.soon = true;
        }
        Ok(out)
    }

    /// An event on the controller, as upstream's recorder writes it (`SuccessfulCreate`,
    /// `SuccessfulDelete`, `FailedCreate`, ...); failing to record one is not an error.
    async fn event(&self, kind: Kind, owner: &Value, type_: &str, reason: &str, message: String) {
        let Some(events) = self.service.registry.get("", "v1", "events") else {
            return;
        };
        let (Some(ns), Some(name)) = (meta(owner, "namespace"), meta(owner, "name")) else {
            return;
        };
        let now = beemesh_translator::service::now_rfc3339();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{nanos:x}"), "namespace": ns},
            "involvedObject": {"apiVersion": kind.api_version(), "kind": kind.kind(),
                               "name": name, "namespace": ns, "uid": meta(owner, "uid"),
                               "resourceVersion": meta(owner, "resourceVersion")},
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": kind.component()},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": kind.component(),
        });
        if let Err(e) = self
            .service
            .create(&events, Some(ns), event, &WriteOptions::default())
            .await
        {
            tracing::debug!(error = %e, "replicaset event not recorded");
        }
    }

    /// Upstream's canAdopt: a fresh read shows the same, not deleting, controller.
    fn can_adopt(&self, res: &ResourceInfo, owner: &Value) -> bool {
        let ns = meta(owner, "namespace");
        let name = meta(owner, "name").unwrap_or_default();
        match self.service.store.get(res, ns, name) {
            Ok(fresh) => {
                meta(&fresh, "uid") == meta(owner, "uid")
                    && fresh.pointer("/metadata/deletionTimestamp").is_none()
            }
            Err(_) => false,
        }
    }

    /// Adds our controller ownerReference to an orphan; None when it changed meanwhile.
    async fn adopt(
        &self,
        kind: Kind,
        pods_res: &ResourceInfo,
        pod: &Value,
        owner: &Value,
    ) -> Result<Option<Value>, ApiError> {
        let reference = owner_ref(kind, owner);
        let pod_uid = meta(pod, "uid").unwrap_or_default().to_string();
        let result = self
            .service
            .update(
                pods_res,
                meta(pod, "namespace"),
                meta(pod, "name").unwrap_or_default(),
                Part::Main,
                &WriteOptions::default(),
                |cur| {
                    if meta(cur, "uid") != Some(pod_uid.as_str()) || controller_ref(cur).is_some() {
                        return Err(ApiError::conflict("", "pods", "", "pod changed"));
                    }
                    let mut new = cur.clone();
                    let refs = new["metadata"]
                        .as_object_mut()
                        .map(|m| m.entry("ownerReferences").or_insert_with(|| json!([])));
                    if let Some(Value::Array(refs)) = refs {
                        refs.push(reference.clone());
                    }
                    Ok(new)
                },
            )
            .await;
        match result {
            Ok(w) => Ok(Some(w.object)),
            Err(e) if e.code() == 404 || e.code() == 409 || e.code() == 422 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes our ownerReference from a pod that no longer matches the selector.
    async fn release(
        &self,
        pods_res: &ResourceInfo,
        pod: &Value,
        uid: &str,
    ) -> Result<(), ApiError> {
        let pod_uid = meta(pod, "uid").unwrap_or_default().to_string();
        let result = self
            .service
            .update(
                pods_res,
                meta(pod, "namespace"),
                meta(pod, "name").unwrap_or_default(),
                Part::Main,
                &WriteOptions::default(),
                |cur| {
                    if meta(cur, "uid") != Some(pod_uid.as_str()) {
                        return Err(ApiError::conflict("", "pods", "", "pod changed"));
                    }
                    let mut new = cur.clone();
                    if let Some(refs) = new
                        .pointer_mut("/metadata/ownerReferences")
                        .and_then(Value::as_array_mut)
                    {
                        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                    }
                    Ok(new)
                },
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == 404 || e.code() == 409 || e.code() == 422 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Upstream's manageReplicas: creates missing pods in slow-start batches (1, 2, 4…,
    /// stopping at the first error) or deletes the surplus. The error, if any, is the
    /// ReplicaFailure condition's (reason, message).
    async fn manage(
        &self,
        kind: Kind,
        pods_res: &ResourceInfo,
        owner: &Value,
        claimed: &[Arc<Value>],
        now: DateTime<Utc>,
    ) -> Result<(), (&'static str, String)> {
        let ns = meta(owner, "namespace").unwrap_or_default();
        let uid = meta(owner, "uid").unwrap_or_default();
        let replicas = owner
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(0) as usize;
        if claimed.len() < replicas {
            let mut remaining = (replicas - claimed.len()).min(BURST_REPLICAS);
            let mut batch = 1usize;
            let opts = WriteOptions::default();
            let created_events = |names: Vec<String>| {
                futures::future::join_all(names.into_iter().map(|n| {
                    self.event(
                        kind,
                        owner,
                        "Normal",
                        "SuccessfulCreate",
                        format!("Created pod: {n}"),
                    )
                }))
            };
            // A batch's SuccessfulCreate events are written with the next batch's creates
            // (upstream's recorder writes them asynchronously too), so each slow-start
            // step waits for one commit, not two.
            let mut unrecorded: Vec<String> = Vec::new();
            while remaining > 0 {
                let n = batch.min(remaining);
                let creates = futures::future::join_all((0..n).map(|_| {
                    self.service
                        .create(pods_res, Some(ns), pod_from_template(kind, owner), &opts)
                }));
                let (results, _) =
                    futures::join!(creates, created_events(std::mem::take(&mut unrecorded)));
                let mut names = Vec::new();
                let mut error = None;
                for r in results {
                    match r {
                        Ok(w) => {
                            if let Some(n) = meta(&w.object, "name") {
                                names.push(n.to_string());
                            }
                        }
                        Err(e) => error = Some(e),
                    }
                }
                self.expectations.expect(uid, names.clone(), Vec::new());
                unrecorded = names;
                if let Some(e) = error {
                    created_events(std::mem::take(&mut unrecorded)).await;
                    // A terminating namespace refuses new pods; upstream does not report it.
                    if e.code() == 403 && e.to_string().contains("being terminated") {
                        return Ok(());
                    }
                    self.event(
                        kind,
                        owner,
                        "Warning",
                        "FailedCreate",
                        format!("Error creating: {e}"),
                    )
                    .await;
                    return Err(("FailedCreate", e.to_string()));
                }
                remaining -= n;
                batch *= 2;
            }
            created_events(unrecorded).await;
        } else if claimed.len() > replicas {
            let surplus = (claimed.len() - replicas).min(BURST_REPLICAS);
            let mut ordered: Vec<&Value> = claimed.iter().map(|p| p.as_ref()).collect();
            deletion_order(&mut ordered, now);
            let mut deleted = Vec::new();
            let mut error = None;
            for pod in ordered.into_iter().take(surplus) {
                let (Some(name), Some(pod_uid)) = (meta(pod, "name"), meta(pod, "uid")) else {
                    continue;
                };
                let opts = beemesh_translator::deletion::DeleteOptions {
                    preconditions: beemesh_translator::store::Preconditions {
                        uid: Some(pod_uid.to_string()),
                        resource_version: None,
                    },
                    ..Default::default()
                };
                match self
                    .service
                    .delete_with(pods_res, Some(ns), name, &opts)
                    .await
                {
                    Ok(_) => {
                        deleted.push(pod_uid.to_string());
                        self.event(
                            kind,
                            owner,
                            "Normal",
                            "SuccessfulDelete",
                            format!("Deleted pod: {name}"),
                        )
                        .await;
                    }
                    Err(e) if e.code() == 404 || e.code() == 409 => {}
                    Err(e) => {
                        self.event(
                            kind,
                            owner,
                            "Warning",
                            "FailedDelete",
                            format!("Error deleting: {e}"),
                        )
                        .await;
                        error = Some(e);
                    }
                }
            }
            self.expectations.expect(uid, Vec::new(), deleted);
            if let Some(e) = error {
                return Err(("FailedDelete", e.to_string()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, phase: &str, ready: Option<&str>, created: &str) -> Value {
        let mut p = json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"), "creationTimestamp": created},
            "spec": {},
            "status": {"phase": phase},
        });
        if !node.is_empty() {
            p["spec"]["nodeName"] = json!(node);
        }
        if let Some(t) = ready {
            p["status"]["conditions"] =
                json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]);
        }
        p
    }

    fn order(pods: &[Value]) -> Vec<String> {
        let now = Utc::now();
        let mut refs: Vec<&Value> = pods.iter().collect();
        deletion_order(&mut refs, now);
        refs.iter()
            .map(|p| meta(p, "name").unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn surplus_goes_unscheduled_then_pending_then_not_ready_first() {
        let t = "2026-01-01T00:00:00Z";
        let pods = vec![
            pod("ready", "n1", "Running", Some(t), t),
            pod("running", "n2", "Running", None, t),
            pod("pending", "n3", "Pending", None, t),
            pod("unscheduled", "", "Pending", None, t),
            pod("unknown", "n4", "Unknown", None, t),
        ];
        assert_eq!(
            order(&pods),
            ["unscheduled", "pending", "unknown", "running", "ready"]
        );
    }

    #[test]
    fn surplus_prefers_low_deletion_cost_doubled_up_and_young_pods() {
        let old = "2020-01-01T00:00:00Z";
        let young = &beemesh_translator::service::now_rfc3339();
        let mut cheap = pod("cheap", "n9", "Running", Some(old), old);
        cheap["metadata"]["annotations"] =
            json!({"controller.kubernetes.io/pod-deletion-cost": "-5"});
        let pods = vec![
            pod("alone-old", "n1", "Running", Some(old), old),
            pod("pair-a", "n2", "Running", Some(old), old),
            pod("pair-b", "n2", "Running", Some(old), old),
            cheap,
            pod("alone-young", "n3", "Running", Some(young), young),
        ];
        let got = order(&pods);
        assert_eq!(got[0], "cheap");
        assert!(got[1].starts_with("pair-") && got[2].starts_with("pair-"));
        assert_eq!(got[3], "alone-young");
        assert_eq!(got[4], "alone-old");
    }

    #[test]
    fn expectations_block_until_creates_and_deletes_are_observed() {
        let exp = Expectations::default();
        assert!(exp.satisfied("rs", &[] as &[Value]));
        exp.expect("rs", vec!["a".into()], vec!["uid-b".into()]);
        let b = pod("b", "", "Pending", None, "2026-01-01T00:00:00Z");
        assert!(!exp.satisfied("rs", std::slice::from_ref(&b)));
        let a = pod("a", "", "Pending", None, "2026-01-01T00:00:00Z");
        // a seen, b still there without deletionTimestamp: still waiting.
        assert!(!exp.satisfied("rs", &[a.clone(), b.clone()]));
        let mut b_deleting = b.clone();
        b_deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:30Z");
        assert!(exp.satisfied("rs", &[a, b_deleting]));
        // Satisfied expectations are dropped, so the next pass is free too.
        assert!(exp.satisfied("rs", &[] as &[Value]));
    }

    #[test]
    fn status_counts_ready_available_and_labeled_pods() {
        let now = Utc::now();
        let long_ago = "2020-01-01T00:00:00Z";
        let just_now = beemesh_translator::service::now_rfc3339();
        let owner = json!({
            "metadata": {"name": "x", "generation": 3},
            "spec": {"minReadySeconds": 60, "template": {"metadata": {"labels": {"app": "x", "tier": "web"}}}},
        });
        let mut a = pod("a", "n", "Running", Some(long_ago), long_ago);
        a["metadata"]["labels"] = json!({"app": "x", "tier": "web"});
        let mut b = pod("b", "n", "Running", Some(&just_now), long_ago);
        b["metadata"]["labels"] = json!({"app": "x"});
        let c = pod("c", "n", "Pending", None, long_ago);
        let status = calculate_status(&owner, &[&a, &b, &c], None, now);
        assert_eq!(
            status,
            json!({"replicas": 3, "fullyLabeledReplicas": 1, "readyReplicas": 2,
                   "availableReplicas": 1, "observedGeneration": 3})
        );
        let failed = calculate_status(&owner, &[], Some(("FailedCreate", "quota".into())), now);
        assert_eq!(failed["conditions"][0]["type"], "ReplicaFailure");
        assert_eq!(failed["conditions"][0]["reason"], "FailedCreate");
        assert_eq!(failed["replicas"], 0);
    }

    #[test]
    fn pods_come_from_the_template_with_a_controller_reference() {
        let owner = json!({
            "metadata": {"name": "web", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        });
        let p = pod_from_template(Kind::ReplicaSet, &owner);
        assert_eq!(p["metadata"]["generateName"], "web-");
        assert_eq!(p["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(p["metadata"]["annotations"], json!({"a": "b"}));
        assert_eq!(
            p["metadata"]["ownerReferences"],
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u1",
                    "controller": true, "blockOwnerDeletion": true}])
        );
        assert_eq!(p["spec"]["containers"][0]["name"], "c");
    }
}
