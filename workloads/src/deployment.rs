//! The Deployment controller, as kube-controller-manager's: each Deployment (on its home
//! node) owns one ReplicaSet per pod template, named `<deployment>-<pod-template-hash>`,
//! and moves replicas from the old ReplicaSets to the new one by its strategy
//! (RollingUpdate within maxSurge/maxUnavailable, or Recreate), scales proportionally
//! during a rollout, keeps `revisionHistoryLimit` old ReplicaSets and writes the status and
//! conditions `kubectl rollout status` reads. Pods are the ReplicaSet controller's business:
//! this controller only reads the ReplicaSets' status.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beemesh_translator::deletion::{DeleteOptions, Propagation};
use beemesh_translator::service::{ObjectService, Part, WriteOptions, now_rfc3339};
use beemesh_translator::{ApiError, ResourceInfo};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::change_wait::wait_for_change;
use crate::controller_support::{ParsedCache, refresh_values};

/// Longest wait between passes without a change (progress deadlines, pods of old
/// ReplicaSets going away under Recreate).
const RESYNC: Duration = Duration::from_secs(2);
/// Shortest time between the starts of two passes.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Deployments reconciled at once in a pass.
const PARALLEL_SYNCS: usize = 32;

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Deployment annotations not copied to its ReplicaSets (upstream's skip list).
const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];
/// `progressDeadlineSeconds` at this value means "no deadline", as upstream.
const NO_DEADLINE: i64 = i32::MAX as i64;
/// Upstream's `rand.SafeEncodeString` alphabet: no vowels, no look-alikes.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-32a over the pod template (canonical JSON, keys sorted) and the collision count,
/// rendered as upstream's `ComputeHash`: the decimal hash through the safe alphabet.
pub fn template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    let mut canon = String::new();
    canonical(&semantic(template), &mut canon);
    feed(canon.as_bytes());
    if let Some(c) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(c as u32).to_le_bytes());
        feed(&bytes);
    }
    h.to_string()
        .bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// JSON with object keys sorted, whatever the map's own order.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `maxSurge`/`maxUnavailable` against `total`, as upstream's
/// `GetScaledValueFromIntOrPercent`: percentages round up for surge, down for unavailable.
pub fn scaled_value(v: Option<&Value>, default_pct: i64, total: i64, round_up: bool) -> i64 {
    let pct = match v {
        None | Some(Value::Null) => default_pct,
        Some(Value::Number(n)) => return n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) => p,
            None => return 0,
        },
        Some(_) => return 0,
    };
    let prod = pct * total;
    if round_up {
        (prod + 99).div_euclid(100)
    } else {
        prod.div_euclid(100)
    }
}

/// What the controller reads from a Deployment's spec, defaults applied.
#[derive(Debug, Clone)]
pub struct Spec {
    pub replicas: i64,
    pub recreate: bool,
    pub max_surge: Option<Value>,
    pub max_unavailable: Option<Value>,
    pub paused: bool,
    pub progress_deadline: i64,
    pub revision_history_limit: i64,
}

impl Spec {
    fn read(d: &Value) -> Spec {
        let spec = d.get("spec").cloned().unwrap_or(Value::Null);
        let int = |p: &str, def: i64| spec.pointer(p).and_then(Value::as_i64).unwrap_or(def);
        Spec {
            replicas: int("/replicas", 1),
            recreate: spec.pointer("/strategy/type").and_then(Value::as_str) == Some("Recreate"),
            max_surge: spec.pointer("/strategy/rollingUpdate/maxSurge").cloned(),
            max_unavailable: spec
                .pointer("/strategy/rollingUpdate/maxUnavailable")
                .cloned(),
            paused: spec.get("paused").and_then(Value::as_bool).unwrap_or(false),
            progress_deadline: int("/progressDeadlineSeconds", 600),
            revision_history_limit: int("/revisionHistoryLimit", 10),
        }
    }

    /// Upstream's `ResolveFenceposts`: (surge, unavailable), never both zero.
    pub fn fenceposts(&self) -> (i64, i64) {
        let surge = scaled_value(self.max_surge.as_ref(), 25, self.replicas, true);
        let unavailable = scaled_value(self.max_unavailable.as_ref(), 25, self.replicas, false);
        if surge == 0 && unavailable == 0 {
            return (0, 1);
        }
        (surge, unavailable)
    }

    pub fn max_surge(&self) -> i64 {
        if self.recreate {
            0
        } else {
            self.fenceposts().0
        }
    }

    pub fn max_unavailable(&self) -> i64 {
        if self.recreate || self.replicas == 0 {
            return 0;
        }
        self.fenceposts().1.min(self.replicas)
    }
}

/// One ReplicaSet owned by the Deployment, as the arithmetic needs it.
#[derive(Debug, Clone, Default)]
pub struct Rs {
    pub name: String,
    pub created: String,
    pub replicas: i64,
    pub status_replicas: i64,
    pub ready: i64,
    pub available: i64,
    pub revision: i64,
    pub max_replicas: Option<i64>,
    pub desired_replicas: Option<i64>,
    generation: i64,
    observed_generation: i64,
    uid: String,
    template: Value,
    annotations: Map<String, Value>,
    deleting: bool,
}

impl Rs {
    fn read(obj: &Value) -> Rs {
        let int = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        let annotations = obj
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let ann_int = |k: &str| {
            annotations
                .get(k)
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
        };
        Rs {
            name: str_at(obj, "/metadata/name").to_string(),
            uid: str_at(obj, "/metadata/uid").to_string(),
            created: str_at(obj, "/metadata/creationTimestamp").to_string(),
            replicas: obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1),
            status_replicas: int("/status/replicas"),
            ready: int("/status/readyReplicas"),
            available: int("/status/availableReplicas"),
            generation: int("/metadata/generation"),
            observed_generation: int("/status/observedGeneration"),
            revision: ann_int(REVISION).unwrap_or(0),
            max_replicas: ann_int(MAX_REPLICAS),
            desired_replicas: ann_int(DESIRED_REPLICAS),
            template: obj
                .pointer("/spec/template")
                .cloned()
                .unwrap_or(Value::Null),
            deleting: obj.pointer("/metadata/deletionTimestamp").is_some(),
            annotations,
        }
    }
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// Drops nulls, empty lists and empty objects (but `emptyDir: {}`, which means something),
/// as upstream's semantic equality does not tell a zero struct or an empty slice from an
/// absent one: `kubectl rollout undo` sends an old template back with `resources: {}`.
fn semantic(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k, semantic(x)))
                .filter(|(k, x)| match x {
                    Value::Null => false,
                    Value::Array(a) => !a.is_empty(),
                    Value::Object(o) => !o.is_empty() || k.as_str() == "emptyDir",
                    _ => true,
                })
                .map(|(k, x)| (k.clone(), x))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(semantic).collect()),
        other => other.clone(),
    }
}

/// A template without the `pod-template-hash` label, compared semantically, so a
/// ReplicaSet's template compares equal to the Deployment's it came from.
fn without_hash(template: &Value) -> Value {
    let mut t = semantic(template);
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    semantic(&t)
}

/// Upstream's `NewRSNewReplicas`: how many replicas the new ReplicaSet may have now.
pub fn new_rs_replicas(spec: &Spec, all: &[Rs], new: &Rs) -> i64 {
    if spec.recreate {
        return spec.replicas;
    }
    if new.replicas == spec.replicas {
        return new.replicas;
    }
    let current: i64 = all.iter().map(|r| r.replicas).sum();
    let max_total = spec.replicas + spec.max_surge();
    if current >= max_total {
        return new.replicas;
    }
    let up = (max_total - current).min(spec.replicas - new.replicas);
    new.replicas + up
}

/// Upstream's `reconcileOldReplicaSets` arithmetic: the new sizes of the old ReplicaSets
/// (oldest first) — unhealthy replicas are dropped first, then healthy ones, never below
/// `replicas - maxUnavailable` available.
pub fn scale_down_old(spec: &Spec, old: &[Rs], new: Option<&Rs>) -> Vec<i64> {
    let mut sizes: Vec<i64> = old.iter().map(|r| r.replicas).collect();
    let old_count: i64 = sizes.iter().sum();
    if old_count == 0 {
        return sizes;
    }
    let new_replicas = new.map_or(0, |n| n.replicas);
    let all_count = old_count + new_replicas;
    let min_available = spec.replicas - spec.max_unavailable();
    let new_unavailable = new.map_or(0, |n| n.replicas - n.available);
    let max_scaled_down = all_count - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return sizes;
    }
    let mut order: Vec<usize> = (0..old.len()).collect();
    order.sort_by(|a, b| old[*a].created.cmp(&old[*b].created));
    // Unhealthy replicas first.
    let mut cleaned = 0;
    for &i in &order {
        if cleaned >= max_scaled_down {
            break;
        }
        if sizes[i] == 0 || sizes[i] == old[i].available {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(sizes[i] - old[i].available);
        sizes[i] -= down;
        cleaned += down;
    }
    // Then available ones, while more than minAvailable are available.
    let available: i64 =
        old.iter().map(|r| r.available).sum::<i64>() + new.map_or(0, |n| n.available);
    if available <= min_available {
        return sizes;
    }
    let total_down = available - min_available;
    let mut scaled = 0;
    for &i in &order {
        if scaled >= total_down {
            break;
        }
        if sizes[i] == 0 {
            continue;
        }
        let down = sizes[i].min(total_down - scaled);
        sizes[i] -= down;
        scaled += down;
    }
    sizes
}

/// Upstream's proportional scaling (`scale` for a RollingUpdate with several active
/// ReplicaSets): the new size of each of `active`.
pub fn proportional_sizes(spec: &Spec, status_replicas: i64, active: &[Rs]) -> Vec<i64> {
    let current: i64 = active.iter().map(|r| r.replicas).sum();
    let allowed = if spec.replicas > 0 {
        spec.replicas + spec.max_surge()
    } else {
        0
    };
    let to_add = allowed - current;
    let mut order: Vec<usize> = (0..active.len()).collect();
    // Larger first; ties: newer first when adding, older first when removing.
    order.sort_by(|&a, &b| {
        let (x, y) = (&active[a], &active[b]);
        match y.replicas.cmp(&x.replicas) {
            Ordering::Equal if to_add > 0 => y.created.cmp(&x.created),
            Ordering::Equal => x.created.cmp(&y.created),
            o => o,
        }
    });
    let mut sizes: Vec<i64> = active.iter().map(|r| r.replicas).collect();
    let mut added = 0;
    if to_add != 0 {
        for &i in &order {
            let rs = &active[i];
            if rs.replicas == 0 || to_add == added {
                continue;
            }
            let fraction = if spec.replicas == 0 {
                -rs.replicas
            } else {
                let max = spec.replicas + spec.max_surge();
                let annotated = rs.max_replicas.unwrap_or(status_replicas);
                if annotated == 0 {
                    0
                } else {
                    ((rs.replicas * max) as f64 / annotated as f64).round() as i64 - rs.replicas
                }
            };
            let left = to_add - added;
            let p = if to_add > 0 {
                fraction.min(left)
            } else {
                fraction.max(left)
            };
            sizes[i] += p;
            added += p;
        }
    }
    if to_add != added
        && let Some(&first) = order.first()
    {
        sizes[first] = (sizes[first] + to_add - added).max(0);
    }
    sizes
}

/// The status computed from the ReplicaSets, before conditions (upstream's
/// `calculateStatus` counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i64,
    pub updated: i64,
    pub ready: i64,
    pub available: i64,
    pub unavailable: i64,
}

pub fn counts(all: &[Rs], new: Option<&Rs>) -> Counts {
    let available: i64 = all.iter().map(|r| r.available).sum();
    let total: i64 = all.iter().map(|r| r.replicas).sum();
    Counts {
        replicas: all.iter().map(|r| r.status_replicas).sum(),
        updated: new.map_or(0, |n| n.status_replicas),
        ready: all.iter().map(|r| r.ready).sum(),
        available,
        unavailable: (total - available).max(0),
    }
}

fn status_counts(status: &Value) -> Counts {
    let int = |k: &str| status.get(k).and_then(Value::as_i64).unwrap_or(0);
    Counts {
        replicas: int("replicas"),
        updated: int("updatedReplicas"),
        ready: int("readyReplicas"),
        available: int("availableReplicas"),
        unavailable: int("unavailableReplicas"),
    }
}

fn condition<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

/// Upstream's `SetDeploymentCondition`: no change when status and reason are the same;
/// the transition time is kept while the status is.
pub fn set_condition(
    status: &mut Value,
    kind: &str,
    state: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    let current = condition(status, kind).cloned();
    if let Some(c) = &current
        && str_at(c, "/status") == state
        && str_at(c, "/reason") == reason
    {
        return;
    }
    let transition = match &current {
        Some(c) if str_at(c, "/status") == state => str_at(c, "/lastTransitionTime").to_string(),
        _ => now.to_string(),
    };
    remove_condition(status, kind);
    let cond = json!({"type": kind, "status": state, "lastUpdateTime": now,
        "lastTransitionTime": transition, "reason": reason, "message": message});
    if let Some(list) = status
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])))
        .and_then(Value::as_array_mut)
    {
        list.push(cond);
    }
}

fn remove_condition(status: &mut Value, kind: &str) {
    if let Some(list) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        list.retain(|c| c.get("type").and_then(Value::as_str) != Some(kind));
    }
}

/// The status upstream's `syncRolloutStatus` writes (or `syncDeploymentStatus` when
/// `rollout` is false: a scale or a paused Deployment leaves Progressing as it is).
pub fn next_status(
    d: &Value,
    spec: &Spec,
    all: &[Rs],
    new: Option<&Rs>,
    rollout: bool,
    now: DateTime<Utc>,
) -> Value {
    let old_status = d.get("status").cloned().unwrap_or_else(|| json!({}));
    let c = counts(all, new);
    let now_s = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut st = json!({"observedGeneration": d.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0)});
    for (k, v) in [
        ("replicas", c.replicas),
        ("updatedReplicas", c.updated),
        ("readyReplicas", c.ready),
        ("availableReplicas", c.available),
        ("unavailableReplicas", c.unavailable),
    ] {
        if v != 0 {
            st[k] = json!(v);
        }
    }
    if let Some(cc) = old_status.get("collisionCount") {
        st["collisionCount"] = cc.clone();
    }
    if let Some(conds) = old_status.get("conditions") {
        st["conditions"] = conds.clone();
    }
    if c.available >= spec.replicas - spec.max_unavailable() {
        set_condition(
            &mut st,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            &now_s,
        );
    } else {
        set_condition(
            &mut st,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            &now_s,
        );
    }
    let has_deadline = spec.progress_deadline != NO_DEADLINE;
    if !has_deadline {
        remove_condition(&mut st, "Progressing");
    }
    if !rollout || !has_deadline {
        return st;
    }
    let mut current = condition(&old_status, "Progressing").cloned();
    // A new ReplicaSet found without a Progressing condition (e.g. status wiped): upstream's
    // getNewReplicaSet records FoundNewReplicaSet before the rollout status is computed.
    if current.is_none()
        && let Some(n) = new
    {
        let msg = format!("Found new replica set \"{}\"", n.name);
        set_condition(
            &mut st,
            "Progressing",
            "True",
            "FoundNewReplicaSet",
            &msg,
            &now_s,
        );
        current = condition(&st, "Progressing").cloned();
    }
    let complete_before = c.replicas == c.updated
        && current
            .as_ref()
            .is_some_and(|x| str_at(x, "/reason") == "NewReplicaSetAvailable");
    if complete_before {
        return st;
    }
    let generation = d
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let complete = c.updated == spec.replicas
        && c.replicas == spec.replicas
        && c.available == spec.replicas
        && generation <= st["observedGeneration"].as_i64().unwrap_or(0);
    let before = status_counts(&old_status);
    let progressing = c.updated > before.updated
        || c.ready > before.ready
        || c.available > before.available
        || (c.replicas - c.updated) < (before.replicas - before.updated);
    let new_name = new.map(|n| n.name.as_str());
    if complete {
        let msg = new_name.map_or("Deployment has successfully progressed.".to_string(), |n| {
            format!("ReplicaSet \"{n}\" has successfully progressed.")
        });
        set_condition(
            &mut st,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &msg,
            &now_s,
        );
    } else if progressing {
        let msg = new_name.map_or("Deployment is progressing.".to_string(), |n| {
            format!("ReplicaSet \"{n}\" is progressing.")
        });
        let transition = match &current {
            Some(x) if str_at(x, "/status") == "True" => {
                str_at(x, "/lastTransitionTime").to_string()
            }
            _ => now_s.clone(),
        };
        remove_condition(&mut st, "Progressing");
        set_condition(
            &mut st,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &msg,
            &now_s,
        );
        if let Some(list) = st.get_mut("conditions").and_then(Value::as_array_mut)
            && let Some(last) = list.last_mut()
        {
            last["lastTransitionTime"] = json!(transition);
        }
    } else if let Some(cur) = &current {
        let timed_out = match str_at(cur, "/reason") {
            "NewReplicaSetAvailable" => false,
            "ProgressDeadlineExceeded" => true,
            _ => DateTime::parse_from_rfc3339(str_at(cur, "/lastUpdateTime"))
                .map(|t| {
                    t.with_timezone(&Utc) + chrono::Duration::seconds(spec.progress_deadline) < now
                })
                .unwrap_or(false),
        };
        if timed_out {
            let msg = new_name.map_or("Deployment has timed out progressing.".to_string(), |n| {
                format!("ReplicaSet \"{n}\" has timed out progressing.")
            });
            set_condition(
                &mut st,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &msg,
                &now_s,
            );
        }
    }
    st
}

pub struct DeploymentController {
    service: ObjectService,
    /// Parsed Deployments and ReplicaSets kept between passes.
    deployments: Mutex<ParsedCache<Value>>,
    replicasets: Mutex<ParsedCache<Value>>,
    /// Per Deployment uid, the Deployment and ReplicaSets its last reconcile saw and
    /// when, if it succeeded: the same objects reconcile to the same writes (none), so
    /// they are looked at again only after `RESYNC` (progress deadlines depend on time).
    settled: Mutex<HashMap<String, Settled>>,
}

struct Settled {
    seen: Vec<Arc<Value>>,
    at: Instant,
}

fn ignore_missing<T>(r: Result<T, ApiError>) -> Result<(), ApiError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code() == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

impl DeploymentController {
    pub fn new(service: ObjectService) -> Self {
        DeploymentController {
            service,
            deployments: Mutex::default(),
            replicasets: Mutex::default(),
            settled: Mutex::default(),
        }
    }

    fn resource(&self, plural: &str) -> Result<Arc<ResourceInfo>, ApiError> {
        let (group, version) = if plural == "pods" {
            ("", "v1")
        } else {
            ("apps", "v1")
        };
        self.service.registry.served(group, version, plural)
    }

    /// Runs forever: a pass on start, on every Deployment or ReplicaSet change and every
    /// `RESYNC`.
    pub async fn run(self) {
        let (Ok(deployments), Ok(replicasets)) =
            (self.resource("deployments"), self.resource("replicasets"))
        else {
            return;
        };
        loop {
            let from = self.service.store.revision();
            let started = std::time::Instant::now();
            if let Err(e) = self.reconcile_all().await {
                tracing::warn!(error = %e, "deployment reconcile failed");
            }
            tokio::select! {
                _ = wait_for_change(&self.service, &deployments, from, RESYNC, |_| true) => {}
                _ = wait_for_change(&self.service, &replicasets, from, RESYNC, |_| true) => {}
            }
            // While many ReplicaSets report status, one pass covers a batch of changes.
            if let Some(rest) = MIN_INTERVAL.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    }

    fn list(&self, res: &ResourceInfo) -> Result<Vec<Value>, ApiError> {
        let page = self
            .service
            .store
            .list(res, &beemesh_translator::store::ListRequest::latest(None))?;
        page.items
            .iter()
            .map(|i| beemesh_translator::store::parse_stored(i))
            .collect()
    }

    /// One pass over every Deployment this node is home of.
    pub async fn reconcile_all(&self) -> Result<(), ApiError> {
        let deployments = self.resource("deployments")?;
        let rs_res = self.resource("replicasets")?;
        // ReplicaSets by (namespace, controlling owner uid), grouped once per pass.
        let mut by_owner: HashMap<(String, String), Vec<Arc<Value>>> = HashMap::new();
        for rs in refresh_values(&self.replicasets, &self.service, &rs_res)? {
            let owner = rs
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .and_then(|refs| {
                    refs.iter()
                        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
                })
                .map(|r| str_at(r, "/uid").to_string());
            if let Some(owner) = owner {
                let ns = str_at(&rs, "/metadata/namespace").to_string();
                by_owner.entry((ns, owner)).or_default().push(rs);
            }
        }
        let mut pods: Option<Vec<Value>> = None;
        let mut work = Vec::new();
        let mut settled =
            std::mem::take(&mut *self.settled.lock().unwrap_or_else(|e| e.into_inner()));
        let mut kept = HashMap::new();
        for d in refresh_values(&self.deployments, &self.service, &deployments)? {
            let ns = str_at(&d, "/metadata/namespace").to_string();
            let name = str_at(&d, "/metadata/name").to_string();
            if !self.service.store.is_home(&deployments, Some(&ns), &name)
                || d.pointer("/metadata/deletionTimestamp").is_some()
            {
                continue;
            }
            let uid = str_at(&d, "/metadata/uid").to_string();
            let rss = by_owner
                .remove(&(ns.clone(), uid.clone()))
                .unwrap_or_default();
            let recreate = Spec::read(&d).recreate;
            let mut seen = Vec::with_capacity(rss.len() + 1);
            seen.push(d.clone());
            seen.extend(rss.iter().cloned());
            // Recreate also reads the pods, which are not among the objects compared.
            if !recreate
                && let Some(last) = settled.remove(&uid)
                && last.at.elapsed() < RESYNC
                && last.seen.len() == seen.len()
                && last.seen.iter().zip(&seen).all(|(a, b)| Arc::ptr_eq(a, b))
            {
                kept.insert(uid, last);
                continue;
            }
            let owned: Vec<Rs> = rss.iter().map(|r| Rs::read(r)).collect();
            if recreate && pods.is_none() {
                let pods_res = self.resource("pods")?;
                pods = Some(self.list(&pods_res)?);
            }
            work.push((d, owned, ns, name, uid, seen));
        }
        // Deployments are independent: reconciled together, their writes share commits.
        let pods = pods.as_deref().unwrap_or(&[]);
        let done: Vec<Option<(String, Settled)>> = futures::stream::iter(work)
            .map(|(d, owned, ns, name, uid, seen)| async move {
                let at = Instant::now();
                match self.reconcile(&d, owned, pods).await {
                    Ok(()) => Some((uid, Settled { seen, at })),
                    Err(e) => {
                        tracing::warn!(deployment = %name, namespace = %ns, error = %e, "deployment sync failed");
                        None
                    }
                }
            })
            .buffer_unordered(PARALLEL_SYNCS)
            .collect()
            .await;
        kept.extend(done.into_iter().flatten());
        *self.settled.lock().unwrap_or_else(|e| e.into_inner()) = kept;
        Ok(())
    }

    async fn reconcile(&self, d: &Value, rss: Vec<Rs>, pods: &[Value]) -> Result<(), ApiError> {
        let spec = Spec::read(d);
        let template = d.pointer("/spec/template").cloned().unwrap_or(Value::Null);
        let want = without_hash(&template);
        let (mut new, mut old): (Vec<Rs>, Vec<Rs>) = rss
            .into_iter()
            .partition(|r| without_hash(&r.template) == want);
        // The oldest matching one is the new ReplicaSet, as upstream's FindNewReplicaSet.
        new.sort_by(|a, b| a.created.cmp(&b.created));
        let mut new_rs = if new.is_empty() {
            None
        } else {
            Some(new.remove(0))
        };
        old.extend(new);
        let max_old_revision = old.iter().map(|r| r.revision).max().unwrap_or(0);

        // Paused, or only a scale: no rollout (upstream's `sync`).
        let scaling = old
            .iter()
            .chain(new_rs.iter())
            .any(|r| r.replicas > 0 && r.desired_replicas.is_some_and(|x| x != spec.replicas));
        if spec.paused || scaling {
            if let Some(n) = &mut new_rs {
                self.sync_new_annotations(d, n, max_old_revision).await?;
            }
            self.scale(d, &spec, new_rs.as_ref(), &old).await?;
            if spec.paused {
                self.cleanup(&spec, d, &old).await?;
            }
            return self
                .write_status(d, &spec, new_rs.as_ref(), &old, false)
                .await;
        }

        if spec.recreate {
            let active: Vec<&Rs> = old.iter().filter(|r| r.replicas > 0).collect();
            let mut scaled = false;
            for r in active {
                self.scale_rs(d, &spec, r, 0).await?;
                scaled = true;
            }
            if scaled {
                return self
                    .write_status(d, &spec, new_rs.as_ref(), &old, true)
                    .await;
            }
            if old_pods_running(&old, pods) {
                return self
                    .write_status(d, &spec, new_rs.as_ref(), &old, true)
                    .await;
            }
        }

        let new_rs = match new_rs {
            Some(mut n) => {
                self.sync_new_annotations(d, &mut n, max_old_revision)
                    .await?;
                n
            }
            None => {
                // The next pass (woken by this write) rolls out with the new ReplicaSet.
                return self.create_new(d, &spec, &old, max_old_revision).await;
            }
        };

        if spec.recreate {
            if new_rs.replicas != spec.replicas {
                self.scale_rs(d, &spec, &new_rs, spec.replicas).await?;
                return self.write_status(d, &spec, Some(&new_rs), &old, true).await;
            }
        } else {
            let all: Vec<Rs> = old.iter().cloned().chain([new_rs.clone()]).collect();
            let want_new = new_rs_replicas(&spec, &all, &new_rs);
            if want_new != new_rs.replicas {
                self.scale_rs(d, &spec, &new_rs, want_new).await?;
                return self.write_status(d, &spec, Some(&new_rs), &old, true).await;
            }
            let sizes = scale_down_old(&spec, &old, Some(&new_rs));
            let mut scaled = false;
            for (r, size) in old.iter().zip(sizes) {
                if size != r.replicas {
                    self.scale_rs(d, &spec, r, size).await?;
                    scaled = true;
                }
            }
            if scaled {
                return self.write_status(d, &spec, Some(&new_rs), &old, true).await;
            }
        }
        let all: Vec<Rs> = old.iter().cloned().chain([new_rs.clone()]).collect();
        let c = counts(&all, Some(&new_rs));
        if c.updated == spec.replicas && c.replicas == spec.replicas && c.available == spec.replicas
        {
            self.cleanup(&spec, d, &old).await?;
        }
        self.write_status(d, &spec, Some(&new_rs), &old, true).await
    }

    /// Upstream's `scale` for a paused Deployment or a scaling event.
    async fn scale(
        &self,
        d: &Value,
        spec: &Spec,
        new: Option<&Rs>,
        old: &[Rs],
    ) -> Result<(), ApiError> {
        let mut active: Vec<Rs> = old
            .iter()
            .chain(new)
            .filter(|r| r.replicas > 0)
            .cloned()
            .collect();
        if active.len() <= 1 {
            let target = match (active.pop(), new) {
                (Some(a), _) => Some(a),
                (None, Some(n)) => Some(n.clone()),
                (None, None) => old.iter().max_by(|a, b| a.created.cmp(&b.created)).cloned(),
            };
            if let Some(t) = target
                && (t.replicas != spec.replicas || t.desired_replicas != Some(spec.replicas))
            {
                self.scale_rs(d, spec, &t, spec.replicas).await?;
            }
            return Ok(());
        }
        if let Some(n) = new
            && n.desired_replicas == Some(spec.replicas)
            && n.replicas == spec.replicas
            && n.available == spec.replicas
        {
            for r in old.iter().filter(|r| r.replicas > 0) {
                self.scale_rs(d, spec, r, 0).await?;
            }
            return Ok(());
        }
        if spec.recreate {
            return Ok(());
        }
        let status_replicas = d
            .pointer("/status/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let sizes = proportional_sizes(spec, status_replicas, &active);
        for (r, size) in active.iter().zip(sizes) {
            self.scale_rs(d, spec, r, size).await?;
        }
        Ok(())
    }

    /// Sets a ReplicaSet's size and its desired/max-replicas annotations, if they differ.
    async fn scale_rs(&self, d: &Value, spec: &Spec, rs: &Rs, size: i64) -> Result<(), ApiError> {
        let max = spec.replicas + spec.max_surge();
        if rs.replicas == size
            && rs.desired_replicas == Some(spec.replicas)
            && rs.max_replicas == Some(max)
        {
            return Ok(());
        }
        let res = self.resource("replicasets")?;
        let ns = str_at(d, "/metadata/namespace");
        let desired = spec.replicas.to_string();
        let uid = rs.uid.clone();
        let r = self
            .service
            .update(
                &res,
                Some(ns),
                &rs.name,
                Part::Main,
                &WriteOptions::default(),
                |cur| {
                    let mut new = cur.clone();
                    new["metadata"]["uid"] = json!(uid);
                    new["spec"]["replicas"] = json!(size);
                    let ann = &mut new["metadata"]["annotations"];
                    if !ann.is_object() {
                        *ann = json!({});
                    }
                    ann[DESIRED_REPLICAS] = json!(desired);
                    ann[MAX_REPLICAS] = json!(max.to_string());
                    Ok(new)
                },
            )
            .await;
        ignore_missing(r)
    }

    /// Keeps the new ReplicaSet's annotations as upstream's `SetNewReplicaSetAnnotations`:
    /// the Deployment's (change-cause among them) and the newest revision.
    async fn sync_new_annotations(
        &self,
        d: &Value,
        rs: &mut Rs,
        max_old_revision: i64,
    ) -> Result<(), ApiError> {
        let wanted = copied_annotations(d);
        let revision = if rs.revision <= max_old_revision {
            max_old_revision + 1
        } else {
            rs.revision
        };
        let mut ann = rs.annotations.clone();
        for (k, v) in &wanted {
            ann.insert(k.clone(), v.clone());
        }
        if revision != rs.revision {
            if rs.revision > 0 {
                let history = match ann.get(REVISION_HISTORY).and_then(Value::as_str) {
                    Some(h) if !h.is_empty() => format!("{h},{}", rs.revision),
                    _ => rs.revision.to_string(),
                };
                ann.insert(REVISION_HISTORY.into(), json!(history));
            }
            ann.insert(REVISION.into(), json!(revision.to_string()));
        }
        if ann != rs.annotations {
            let res = self.resource("replicasets")?;
            let ns = str_at(d, "/metadata/namespace");
            let set = ann.clone();
            let r = self
                .service
                .update(
                    &res,
                    Some(ns),
                    &rs.name,
                    Part::Main,
                    &WriteOptions::default(),
                    |cur| {
                        let mut new = cur.clone();
                        new["metadata"]["annotations"] = Value::Object(set.clone());
                        Ok(new)
                    },
                )
                .await;
            ignore_missing(r)?;
            rs.annotations = ann;
            rs.revision = revision;
        }
        self.set_deployment_revision(d, revision).await
    }

    /// The Deployment's own `deployment.kubernetes.io/revision` follows its new ReplicaSet.
    async fn set_deployment_revision(&self, d: &Value, revision: i64) -> Result<(), ApiError> {
        let rev = revision.to_string();
        if d.pointer("/metadata/annotations")
            .and_then(|a| a.get(REVISION))
            .and_then(Value::as_str)
            == Some(rev.as_str())
        {
            return Ok(());
        }
        let res = self.resource("deployments")?;
        let uid = str_at(d, "/metadata/uid").to_string();
        let r = self
            .service
            .update(
                &res,
                Some(str_at(d, "/metadata/namespace")),
                str_at(d, "/metadata/name"),
                Part::Main,
                &WriteOptions::default(),
                |cur| {
                    let mut new = cur.clone();
                    new["metadata"]["uid"] = json!(uid);
                    let ann = &mut new["metadata"]["annotations"];
                    if !ann.is_object() {
                        *ann = json!({});
                    }
                    ann[REVISION] = json!(rev);
                    Ok(new)
                },
            )
            .await;
        ignore_missing(r)
    }

    /// Creates the new ReplicaSet; on a name taken by another template, bumps
    /// `status.collisionCount` so the next pass hashes to another name (as upstream).
    async fn create_new(
        &self,
        d: &Value,
        spec: &Spec,
        old: &[Rs],
        max_old_revision: i64,
    ) -> Result<(), ApiError> {
        let ns = str_at(d, "/metadata/namespace").to_string();
        let dname = str_at(d, "/metadata/name").to_string();
        let collision = d.pointer("/status/collisionCount").and_then(Value::as_i64);
        let mut template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let hash = template_hash(&template, collision);
        let name = format!("{dname}-{hash}");
        if !template.get("metadata").is_some_and(Value::is_object) {
            template["metadata"] = json!({});
        }
        if !template["metadata"]
            .get("labels")
            .is_some_and(Value::is_object)
        {
            template["metadata"]["labels"] = json!({});
        }
        template["metadata"]["labels"][HASH_LABEL] = json!(hash);
        let labels = template["metadata"]["labels"].clone();
        let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
        if !selector.get("matchLabels").is_some_and(Value::is_object) {
            selector["matchLabels"] = json!({});
        }
        selector["matchLabels"][HASH_LABEL] = json!(hash);
        let revision = max_old_revision + 1;
        let mut annotations = copied_annotations(d);
        annotations.insert(REVISION.into(), json!(revision.to_string()));
        annotations.insert(DESIRED_REPLICAS.into(), json!(spec.replicas.to_string()));
        annotations.insert(
            MAX_REPLICAS.into(),
            json!((spec.replicas + spec.max_surge()).to_string()),
        );
        let stub = Rs::default();
        let all: Vec<Rs> = old.to_vec();
        let replicas = new_rs_replicas(spec, &all, &stub);
        let mut rs_spec = json!({"replicas": replicas, "selector": selector, "template": template});
        if let Some(m) = d.pointer("/spec/minReadySeconds") {
            rs_spec["minReadySeconds"] = m.clone();
        }
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": name, "namespace": ns, "labels": labels, "annotations": annotations,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                    "name": dname, "uid": str_at(d, "/metadata/uid"),
                    "controller": true, "blockOwnerDeletion": true}],
            },
            "spec": rs_spec,
        });
        let res = self.resource("replicasets")?;
        match self
            .service
            .create(&res, Some(&ns), obj, &WriteOptions::default())
            .await
        {
            Ok(_) => {
                self.set_deployment_revision(d, revision).await?;
                let msg = format!("Created new replica set \"{name}\"");
                self.update_status(d, |st| {
                    if spec.progress_deadline != NO_DEADLINE {
                        set_condition(
                            st,
                            "Progressing",
                            "True",
                            "NewReplicaSetCreated",
                            &msg,
                            &now_rfc3339(),
                        );
                    }
                })
                .await
            }
            Err(e) if e.code() == 409 => {
                // Ours with this template (a stale read)? Then the next pass finds it.
                // Not on this replica yet (homed on another node): no collision either
                // until the next pass can tell.
                let Ok(existing) = self.service.store.get(&res, Some(&ns), &name) else {
                    return Err(e);
                };
                let owned = existing
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| str_at(r, "/uid") == str_at(d, "/metadata/uid"))
                    });
                let same = existing
                    .pointer("/spec/template")
                    .map(without_hash)
                    .is_some_and(|t| {
                        t == without_hash(d.pointer("/spec/template").unwrap_or(&Value::Null))
                    });
                if owned && same {
                    return Ok(());
                }
                let next = collision.unwrap_or(0) + 1;
                self.update_status(d, |st| st["collisionCount"] = json!(next))
                    .await
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes the oldest fully scaled-down ReplicaSets past `revisionHistoryLimit`.
    async fn cleanup(&self, spec: &Spec, d: &Value, old: &[Rs]) -> Result<(), ApiError> {
        let mut alive: Vec<&Rs> = old.iter().filter(|r| !r.deleting).collect();
        let excess = alive.len() as i64 - spec.revision_history_limit.max(0);
        if excess <= 0 {
            return Ok(());
        }
        alive.sort_by(|a, b| a.revision.cmp(&b.revision).then(a.created.cmp(&b.created)));
        let res = self.resource("replicasets")?;
        let ns = str_at(d, "/metadata/namespace");
        for r in alive.into_iter().take(excess as usize) {
            if r.status_replicas != 0 || r.replicas != 0 || r.generation > r.observed_generation {
                continue;
            }
            let opts = DeleteOptions {
                propagation: Some(Propagation::Background),
                ..DeleteOptions::default()
            };
            ignore_missing(
                self.service
                    .delete_with(&res, Some(ns), &r.name, &opts)
                    .await,
            )?;
        }
        Ok(())
    }

    async fn write_status(
        &self,
        d: &Value,
        spec: &Spec,
        new: Option<&Rs>,
        old: &[Rs],
        rollout: bool,
    ) -> Result<(), ApiError> {
        // Re-read the ReplicaSets: this pass may have scaled them.
        let res = self.resource("replicasets")?;
        let ns = str_at(d, "/metadata/namespace");
        let fresh = |r: &Rs| match self.service.store.get(&res, Some(ns), &r.name) {
            Ok(v) => Rs::read(&v),
            Err(_) => r.clone(),
        };
        let new = new.map(fresh);
        let mut all: Vec<Rs> = old.iter().map(fresh).collect();
        all.extend(new.clone());
        let mut st = next_status(d, spec, &all, new.as_ref(), rollout, Utc::now());
        paused_condition(spec, &mut st);
        if d.get("status") == Some(&st) {
            return Ok(());
        }
        // `collisionCount` is the one field not derived from what this pass saw: the stored
        // one wins over this pass's (possibly older) copy, so a concurrent write to it
        // (the controller's own bump, a client's patch) is not undone.
        self.update_status(d, move |s| {
            let current = s.get("collisionCount").cloned();
            *s = st.clone();
            if let Some(m) = s.as_object_mut() {
                match current {
                    Some(cc) => m.insert("collisionCount".into(), cc),
                    None => m.remove("collisionCount"),
                };
            }
        })
        .await
    }

    async fn update_status(&self, d: &Value, f: impl Fn(&mut Value)) -> Result<(), ApiError> {
        let res = self.resource("deployments")?;
        let uid = str_at(d, "/metadata/uid").to_string();
        let r = self
            .service
            .update(
                &res,
                Some(str_at(d, "/metadata/namespace")),
                str_at(d, "/metadata/name"),
                Part::Status,
                &WriteOptions::default(),
                |cur| {
                    let mut new = cur.clone();
                    new["metadata"]["uid"] = json!(uid);
                    if !new.get("status").is_some_and(Value::is_object) {
                        new["status"] = json!({});
                    }
                    f(&mut new["status"]);
                    Ok(new)
                },
            )
            .await;
        ignore_missing(r)
    }
}

/// Upstream's `checkPausedConditions`: Progressing Unknown while paused, and once resumed.
fn paused_condition(spec: &Spec, st: &mut Value) {
    if spec.progress_deadline == NO_DEADLINE {
        return;
    }
    let reason = condition(st, "Progressing").map(|c| str_at(c, "/reason").to_string());
    let now = now_rfc3339();
    if spec.paused && reason.as_deref() != Some("DeploymentPaused") {
        set_condition(
            st,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
            &now,
        );
    } else if !spec.paused && reason.as_deref() == Some("DeploymentPaused") {
        set_condition(
            st,
            "Progressing",
            "Unknown",
            "DeploymentResumed",
            "Deployment is resumed",
            &now,
        );
    }
}

/// The Deployment's annotations a ReplicaSet carries (change-cause among them).
fn copied_annotations(d: &Value) -> Map<String, Value> {
    d.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|a| {
            a.iter()
                .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether pods of the old ReplicaSets still exist (Recreate waits for them), by the
/// ReplicaSets' status and by the pods themselves.
fn old_pods_running(old: &[Rs], pods: &[Value]) -> bool {
    if old.iter().any(|r| r.status_replicas > 0) {
        return true;
    }
    let uids: BTreeMap<&str, ()> = old.iter().map(|r| (r.uid.as_str(), ())).collect();
    pods.iter().any(|p| {
        let phase = str_at(p, "/status/phase");
        phase != "Succeeded"
            && phase != "Failed"
            && p.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter().any(|r| {
                        r.get("controller").and_then(Value::as_bool) == Some(true)
                            && uids.contains_key(str_at(r, "/uid"))
                    })
                })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(replicas: i64, surge: Value, unavail: Value) -> Spec {
        Spec::read(&json!({"spec": {"replicas": replicas,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavail}}}}))
    }

    fn rs(name: &str, created: &str, replicas: i64, available: i64) -> Rs {
        Rs {
            name: name.into(),
            created: created.into(),
            replicas,
            status_replicas: replicas,
            ready: available,
            available,
            ..Rs::default()
        }
    }

    #[test]
    fn hash_is_safe_encoded_and_depends_on_collision_count() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let h = template_hash(&t, None);
        assert!(!h.is_empty() && h.len() <= 10);
        assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
        assert_eq!(h, template_hash(&t, None));
        assert_ne!(h, template_hash(&t, Some(1)));
        // Key order does not matter.
        let reordered = json!({"spec": {"containers": [{"image": "nginx", "name": "c"}]}, "metadata": {"labels": {"app": "web"}}});
        assert_eq!(h, template_hash(&reordered, None));
    }

    #[test]
    fn fnv32a_matches_the_reference_vector() {
        // FNV-1a 32 of "a" is 0xe40c292c = 3826002220; its digits map through the alphabet.
        let mut h: u32 = 0x811c_9dc5;
        h ^= u32::from(b'a');
        h = h.wrapping_mul(0x0100_0193);
        assert_eq!(h, 0xe40c_292c);
    }

    #[test]
    fn surge_rounds_up_unavailable_down() {
        let s = spec(10, json!("25%"), json!("25%"));
        assert_eq!(s.fenceposts(), (3, 2));
        let s = spec(3, json!(0), json!(0));
        assert_eq!(s.fenceposts(), (0, 1));
        let s = spec(1, json!("10%"), json!("10%"));
        assert_eq!(s.fenceposts(), (1, 0));
        let s = spec(4, json!(2), json!(10));
        assert_eq!(s.max_unavailable(), 4);
        let r = Spec::read(&json!({"spec": {"replicas": 4, "strategy": {"type": "Recreate"}}}));
        assert_eq!((r.max_surge(), r.max_unavailable()), (0, 0));
        let defaults = Spec::read(&json!({"spec": {"replicas": 4}}));
        assert_eq!(defaults.fenceposts(), (1, 1));
    }

    #[test]
    fn rolling_update_respects_surge_and_unavailable() {
        // 10 replicas, maxSurge 3, maxUnavailable 2: new grows to 3, old drops to 8.
        let s = spec(10, json!(3), json!(2));
        let old = vec![rs("old", "1", 10, 10)];
        let new = rs("new", "2", 0, 0);
        let all = vec![old[0].clone(), new.clone()];
        assert_eq!(new_rs_replicas(&s, &all, &new), 3);
        let new = rs("new", "2", 3, 0);
        // 13 total, 10 available, min 8 available: old may lose 2 (its pods are all ready).
        assert_eq!(scale_down_old(&s, &old, Some(&new)), vec![8]);
        // Simulate the rollout, new pods turning available after each scale-up; the
        // invariants hold at every step.
        let mut old_n = 10i64;
        let mut new_n = 0i64;
        let mut steps = 0;
        while (old_n > 0 || new_n < 10) && steps < 50 {
            steps += 1;
            let o = rs("old", "1", old_n, old_n);
            let n = rs("new", "2", new_n, new_n);
            new_n = new_rs_replicas(&s, &[o.clone(), n.clone()], &n);
            assert!(old_n + new_n <= 13, "more than replicas + maxSurge");
            // Old pods go before the new ones are available: never below 8 available.
            let not_ready = rs("new", "2", new_n, n.available);
            let down = scale_down_old(&s, std::slice::from_ref(&o), Some(&not_ready))[0];
            assert!(
                down + n.available >= 8,
                "fewer than replicas - maxUnavailable"
            );
            old_n = down;
        }
        assert_eq!((old_n, new_n), (0, 10));
    }

    #[test]
    fn unhealthy_old_replicas_go_first() {
        let s = spec(4, json!(1), json!(1));
        let old = vec![rs("a", "1", 2, 0), rs("b", "2", 3, 3)];
        let new = rs("n", "3", 0, 0);
        // 5 total, min 3 available, 0 unavailable new: max 2 down; a's 2 unhealthy go.
        assert_eq!(scale_down_old(&s, &old, Some(&new)), vec![0, 3]);
    }

    #[test]
    fn proportional_scaling_as_upstream() {
        // 10 -> 15 mid-rollout with old 8 and new 5 (surge 3): allowed 15+3=18.
        let s = spec(15, json!(3), json!(2));
        let mut old = rs("old", "1", 8, 8);
        old.max_replicas = Some(13);
        let mut new = rs("new", "2", 5, 0);
        new.max_replicas = Some(13);
        let sizes = proportional_sizes(&s, 13, &[old, new]);
        assert_eq!(sizes.iter().sum::<i64>(), 18);
        assert_eq!(sizes, vec![11, 7]);
        // Down to 0.
        let z = spec(0, json!(3), json!(2));
        let sizes = proportional_sizes(&z, 13, &[rs("o", "1", 8, 8), rs("n", "2", 5, 5)]);
        assert_eq!(sizes, vec![0, 0]);
    }

    #[test]
    fn conditions_progress_complete_and_time_out() {
        let s = spec(2, json!(1), json!(0));
        let now = Utc::now();
        let d = json!({"metadata": {"generation": 1}, "spec": {}, "status": {"conditions": [
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated",
             "message": "Created new replica set \"web-abc\"", "lastUpdateTime": "2020-01-01T00:00:00Z",
             "lastTransitionTime": "2020-01-01T00:00:00Z"}]}});
        let new = rs("web-abc", "1", 2, 1);
        let st = next_status(&d, &s, std::slice::from_ref(&new), Some(&new), true, now);
        let p = condition(&st, "Progressing").cloned().unwrap_or_default();
        assert_eq!(p["reason"], "ReplicaSetUpdated");
        assert_eq!(p["message"], "ReplicaSet \"web-abc\" is progressing.");
        assert_eq!(p["lastTransitionTime"], "2020-01-01T00:00:00Z");
        let a = condition(&st, "Available").cloned().unwrap_or_default();
        assert_eq!(
            (a["status"].as_str(), a["reason"].as_str()),
            (Some("False"), Some("MinimumReplicasUnavailable"))
        );
        // Nothing moved since and the deadline (600s) passed: timed out.
        let d2 = json!({"metadata": {"generation": 1}, "spec": {}, "status": st});
        let st2 = next_status(
            &d2,
            &s,
            std::slice::from_ref(&new),
            Some(&new),
            true,
            now + chrono::Duration::seconds(601),
        );
        let p = condition(&st2, "Progressing").cloned().unwrap_or_default();
        assert_eq!(p["reason"], "ProgressDeadlineExceeded");
        assert_eq!(p["status"], "False");
        assert_eq!(
            p["message"],
            "ReplicaSet \"web-abc\" has timed out progressing."
        );
        // All available: complete.
        let done = rs("web-abc", "1", 2, 2);
        let st3 = next_status(&d2, &s, std::slice::from_ref(&done), Some(&done), true, now);
        let p = condition(&st3, "Progressing").cloned().unwrap_or_default();
        assert_eq!(p["reason"], "NewReplicaSetAvailable");
        assert_eq!(
            p["message"],
            "ReplicaSet \"web-abc\" has successfully progressed."
        );
        assert_eq!(st3["updatedReplicas"], 2);
        assert_eq!(st3["availableReplicas"], 2);
        assert!(st3.get("unavailableReplicas").is_none());
        let a = condition(&st3, "Available").cloned().unwrap_or_default();
        assert_eq!(a["message"], "Deployment has minimum availability.");
    }

    #[test]
    fn found_new_replicaset_when_no_progressing_condition() {
        let s = spec(2, json!(1), json!(0));
        let d = json!({"metadata": {"generation": 3}, "spec": {}, "status": {"observedGeneration": 3,
            "replicas": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1}});
        let new = rs("web-abc", "1", 2, 1);
        let st = next_status(
            &d,
            &s,
            std::slice::from_ref(&new),
            Some(&new),
            true,
            Utc::now(),
        );
        let p = condition(&st, "Progressing").cloned().unwrap_or_default();
        assert_eq!(p["reason"], "FoundNewReplicaSet");
        assert_eq!(p["message"], "Found new replica set \"web-abc\"");
    }

    #[test]
    fn templates_compare_without_the_hash_label() {
        let a = json!({"metadata": {"labels": {"app": "x", HASH_LABEL: "abc"}}, "spec": {}});
        let b = json!({"metadata": {"labels": {"app": "x"}}, "spec": {}});
        assert_eq!(without_hash(&a), without_hash(&b));
        let c = json!({"metadata": {"labels": {HASH_LABEL: "abc"}, "creationTimestamp": null}, "spec": {}});
        assert_eq!(without_hash(&c), json!({}));
        let undo = json!({"spec": {"containers": [{"name": "c", "resources": {}, "env": []}],
            "volumes": [{"name": "v", "emptyDir": {}}]}});
        let stored = json!({"spec": {"containers": [{"name": "c"}], "volumes": [{"name": "v", "emptyDir": {}}]}});
        assert_eq!(without_hash(&undo), without_hash(&stored));
        assert_eq!(template_hash(&undo, None), template_hash(&stored, None));
    }
}
