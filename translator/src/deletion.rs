//! What a DELETE does before (or instead of) removing the key, as upstream's generic
//! registry store decides it (`rest.BeforeDelete`, `deletionFinalizersForGarbageCollection`,
//! `updateForGracefulDeletionAndFinalizers`, `markAsDeleting`):
//!
//! - the garbage collector's finalizers: `orphan` (Orphan, or the kind's legacy default)
//!   and `foregroundDeletion` (Foreground) hold the object with a `deletionTimestamp`
//!   until the collector (`workloads::garbage_collector`) has orphaned or deleted the
//!   dependents; Background removes the object now and leaves the dependents to it;
//! - graceful deletion of pods: a pod bound to a node gets `deletionTimestamp = now +
//!   grace` and `deletionGracePeriodSeconds` and stays until its home node removes it
//!   (`workloads::pod_termination`); an unbound or finished pod goes at once;
//! - dry runs: the object as the delete would leave it, nothing written.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::error::{ApiError, Result};
use crate::registry::ResourceInfo;
use crate::service::ObjectService;
use crate::store::{DeleteStep, Preconditions};

/// Held by the garbage collector until the dependents no longer name the owner.
pub const FINALIZER_ORPHAN: &str = "orphan";
/// Held by the garbage collector until the blocking dependents are gone.
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

/// `DeleteOptions.propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

impl Propagation {
    pub fn parse(s: &str) -> Option<Propagation> {
        match s {
            "Orphan" => Some(Propagation::Orphan),
            "Background" => Some(Propagation::Background),
            "Foreground" => Some(Propagation::Foreground),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Orphan => "Orphan",
            Propagation::Background => "Background",
            Propagation::Foreground => "Foreground",
        }
    }
}

/// The DeleteOptions that change what a delete does (already validated by the caller).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub preconditions: Preconditions,
    pub dry_run: bool,
    pub propagation: Option<Propagation>,
    /// The deprecated `orphanDependents` (never set together with `propagation`).
    pub orphan_dependents: Option<bool>,
    pub grace_period_seconds: Option<i64>,
}

/// A kind's `DefaultGarbageCollectionPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcPolicy {
    DeleteDependents,
    OrphanDependents,
    /// The kind can never own anything (events): no GC finalizer is ever set.
    Unsupported,
}

/// Upstream's per-kind defaults when a client names no policy: the legacy versions of the
/// workload kinds, ReplicationControllers and batch/v1 Jobs orphan their dependents (for
/// backwards compatibility), events cannot take GC finalizers, everything else deletes
/// them (Background).
pub fn default_gc_policy(res: &ResourceInfo) -> GcPolicy {
    let workload = matches!(
        res.plural.as_str(),
        "deployments" | "replicasets" | "daemonsets" | "statefulsets"
    );
    match (
        res.group.as_str(),
        res.version.as_str(),
        res.plural.as_str(),
    ) {
        ("" | "events.k8s.io", _, "events") => GcPolicy::Unsupported,
        ("", "v1", "replicationcontrollers") | ("batch", "v1", "jobs") => {
            GcPolicy::OrphanDependents
        }
        ("extensions", _, _) if workload => GcPolicy::OrphanDependents,
        ("apps", "v1beta1" | "v1beta2", _) if workload => GcPolicy::OrphanDependents,
        _ => GcPolicy::DeleteDependents,
    }
}

fn has(finalizers: &[String], f: &str) -> bool {
    finalizers.iter().any(|x| x == f)
}

/// `shouldOrphanDependents`: options first, then a finalizer already set, then the default.
fn should_orphan(policy: GcPolicy, finalizers: &[String], opts: &DeleteOptions) -> bool {
    if policy == GcPolicy::Unsupported {
        return false;
    }
    if let Some(orphan) = opts.orphan_dependents {
        return orphan;
    }
    if let Some(p) = opts.propagation {
        return p == Propagation::Orphan;
    }
    if has(finalizers, FINALIZER_ORPHAN) {
        return true;
    }
    if has(finalizers, FINALIZER_FOREGROUND) {
        return false;
    }
    policy == GcPolicy::OrphanDependents
}

/// `shouldDeleteDependents` (foreground).
fn should_foreground(policy: GcPolicy, finalizers: &[String], opts: &DeleteOptions) -> bool {
    if policy == GcPolicy::Unsupported || opts.orphan_dependents.is_some() {
        return false;
    }
    if let Some(p) = opts.propagation {
        return p == Propagation::Foreground;
    }
    has(finalizers, FINALIZER_FOREGROUND)
}

/// The finalizers after the delete's GC decision, or `None` when they stay as they are.
pub fn gc_finalizers(
    res: &ResourceInfo,
    finalizers: &[String],
    opts: &DeleteOptions,
) -> Option<Vec<String>> {
    let policy = default_gc_policy(res);
    let orphan = should_orphan(policy, finalizers, opts);
    let foreground = should_foreground(policy, finalizers, opts);
    let mut new: Vec<String> = finalizers
        .iter()
        .filter(|f| *f != FINALIZER_ORPHAN && *f != FINALIZER_FOREGROUND)
        .cloned()
        .collect();
    if orphan {
        new.push(FINALIZER_ORPHAN.into());
    }
    if foreground {
        new.push(FINALIZER_FOREGROUND.into());
    }
    let same = new.len() == finalizers.len() && new.iter().all(|f| has(finalizers, f));
    (!same).then_some(new)
}

/// `metadata.finalizers` as strings.
pub fn finalizers_of(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn set_finalizers(obj: &mut Value, finalizers: Vec<String>) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if finalizers.is_empty() {
            meta.remove("finalizers");
        } else {
            meta.insert("finalizers".into(), json!(finalizers));
        }
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_timestamp(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn is_pods(res: &ResourceInfo) -> bool {
    res.group.is_empty() && res.plural == "pods"
}

/// Whether the kind deletes gracefully (upstream's `RESTGracefulDeleteStrategy`: pods).
pub fn supports_graceful_deletion(res: &ResourceInfo) -> bool {
    is_pods(res)
}

/// What `BeforeDelete` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grace {
    /// Not a graceful kind, or a graceful deletion already ran out: decide by finalizers.
    NotGraceful,
    /// Marked for graceful deletion with this period (0 = remove now unless finalizers).
    Graceful(i64),
    /// A graceful deletion is already under way and this request does not shorten it.
    Pending,
}

/// The pod strategy's `CheckGracefulDelete`: the requested period, else the pod's
/// `terminationGracePeriodSeconds`; 0 for a pod no node runs or one that has finished.
fn pod_grace_period(pod: &Value, requested: Option<i64>) -> i64 {
    let mut period = requested
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(0);
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if node.is_empty() {
        period = 0;
    }
    if matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Failed" | "Succeeded")
    ) {
        period = 0;
    }
    period
}

/// `rest.BeforeDelete` after the preconditions: sets `deletionTimestamp` and
/// `deletionGracePeriodSeconds` on a graceful kind.
fn before_delete(
    res: &ResourceInfo,
    obj: &mut Value,
    opts: &DeleteOptions,
    now: DateTime<Utc>,
) -> Grace {
    // Negative periods count as 1 s on the delete path.
    let requested = opts.grace_period_seconds.map(|g| if g < 0 { 1 } else { g });
    if !supports_graceful_deletion(res) {
        return Grace::NotGraceful;
    }
    let period = pod_grace_period(obj, requested);
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Grace::NotGraceful;
    };
    if let Some(ts) = meta
        .get("deletionTimestamp")
        .filter(|t| !t.is_null())
        .cloned()
    {
        // Already being deleted: a period of 0 (or none) means the removal itself is
        // what is left; otherwise only a shorter period changes anything.
        let current = meta
            .get("deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .map(|g| if g < 0 { 1 } else { g });
        let Some(current) = current.filter(|g| *g > 0) else {
            return Grace::NotGraceful;
        };
        let Some(period) = requested else {
            return Grace::Pending;
        };
        if period >= current {
            return Grace::Pending;
        }
        let deadline = parse_timestamp(&ts).unwrap_or(now) - Duration::seconds(current)
            + Duration::seconds(period);
        meta.insert("deletionTimestamp".into(), json!(timestamp(deadline)));
        meta.insert("deletionGracePeriodSeconds".into(), json!(period));
        return Grace::Graceful(period);
    }
    meta.insert(
        "deletionTimestamp".into(),
        json!(timestamp(now + Duration::seconds(period))),
    );
    meta.insert("deletionGracePeriodSeconds".into(), json!(period));
    bump_generation(meta);
    Grace::Graceful(period)
}

fn bump_generation(meta: &mut serde_json::Map<String, Value>) {
    if let Some(g) = meta
        .get("generation")
        .and_then(Value::as_i64)
        .filter(|g| *g > 0)
    {
        meta.insert("generation".into(), json!(g + 1));
    }
}

/// `markAsDeleting`: the deletion of an object its finalizers hold.
fn mark_as_deleting(obj: &mut Value, now: DateTime<Utc>) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let existing = meta
        .get("deletionTimestamp")
        .filter(|t| !t.is_null())
        .map(parse_timestamp);
    if existing.is_none() {
        bump_generation(meta);
    }
    match existing {
        Some(Some(t)) if t <= now => {}
        _ => {
            meta.insert("deletionTimestamp".into(), json!(timestamp(now)));
        }
    }
    meta.insert("deletionGracePeriodSeconds".into(), json!(0));
}

/// Decides what deleting `current` does: the generic store's delete path, in one step.
pub fn plan(
    res: &ResourceInfo,
    current: &Value,
    opts: &DeleteOptions,
    now: DateTime<Utc>,
) -> DeleteStep {
    let mut obj = current.clone();
    let grace = before_delete(res, &mut obj, opts, now);
    if grace == Grace::Pending {
        return DeleteStep::Unchanged;
    }
    let had_finalizers = !finalizers_of(current).is_empty();
    let gc = gc_finalizers(res, &finalizers_of(&obj), opts);
    let graceful = matches!(grace, Grace::Graceful(_));
    if !graceful && !had_finalizers && gc.is_none() {
        return DeleteStep::Remove;
    }
    if let Some(f) = gc {
        set_finalizers(&mut obj, f);
    }
    let pending = !finalizers_of(&obj).is_empty();
    match grace {
        Grace::Graceful(period) if pending || period > 0 => DeleteStep::Keep(obj),
        Grace::Graceful(_) => DeleteStep::Remove,
        _ if pending => {
            mark_as_deleting(&mut obj, now);
            DeleteStep::Keep(obj)
        }
        _ => DeleteStep::Remove,
    }
}

/// The namespace registry's delete: Terminating first (the namespace controller empties
/// it and drops `spec.finalizers`), with the GC finalizers the options ask for
/// (`shouldHaveOrphanFinalizer` / `shouldHaveDeleteDependentsFinalizer`).
fn plan_namespace(current: &Value, opts: &DeleteOptions, now: DateTime<Utc>) -> DeleteStep {
    let spec_finalizers = current
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if current
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        // Already Terminating: only the namespace controller finishes it.
        return DeleteStep::Unchanged;
    }
    let mut obj = current.clone();
    let finalizers = finalizers_of(&obj);
    let orphan = match (opts.orphan_dependents, opts.propagation) {
        (Some(o), _) => o,
        (None, Some(p)) => p == Propagation::Orphan,
        (None, None) => has(&finalizers, FINALIZER_ORPHAN),
    };
    let foreground = match (opts.orphan_dependents, opts.propagation) {
        (Some(o), _) => !o,
        (None, Some(p)) => p == Propagation::Foreground,
        (None, None) => has(&finalizers, FINALIZER_FOREGROUND),
    };
    let mut new: Vec<String> = finalizers
        .iter()
        .filter(|f| *f != FINALIZER_ORPHAN && *f != FINALIZER_FOREGROUND)
        .cloned()
        .collect();
    if orphan {
        new.push(FINALIZER_ORPHAN.into());
    }
    if foreground {
        new.push(FINALIZER_FOREGROUND.into());
    }
    set_finalizers(&mut obj, new);
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("deletionTimestamp".into(), json!(timestamp(now)));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
    }
    obj["status"] = json!({"phase": "Terminating"});
    if !spec_finalizers && finalizers_of(&obj).is_empty() {
        return DeleteStep::Remove;
    }
    DeleteStep::Keep(obj)
}

fn is_namespaces(res: &ResourceInfo) -> bool {
    res.group.is_empty() && res.plural == "namespaces"
}

/// How often a delete is retried when the object changed under it.
const DELETE_ATTEMPTS: usize = 20;

impl ObjectService {
    /// DELETE with its options: removes the object, or marks it (`deletionTimestamp`,
    /// GC finalizers, grace period) and keeps it. Returns the object as it was removed or
    /// as it now is, and whether it is gone. A dry run computes the same and writes
    /// nothing.
    pub async fn delete_with(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(Value, bool)> {
        let ns = if res.namespaced { namespace } else { None };
        if is_namespaces(res) && matches!(name, "default" | "kube-system" | "kube-public") {
            return Err(ApiError::forbidden(
                "",
                "namespaces",
                name,
                format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
            ));
        }
        let decide = |cur: &Value| {
            let now = Utc::now();
            if is_namespaces(res) {
                plan_namespace(cur, opts, now)
            } else {
                plan(res, cur, opts, now)
            }
        };
        if opts.dry_run {
            let current = self.store.get(res, ns, name)?;
            crate::store::check_delete_preconditions(res, name, &current, &opts.preconditions)?;
            return Ok(match decide(&current) {
                DeleteStep::Remove => (current, true),
                DeleteStep::Keep(obj) => (obj, false),
                DeleteStep::Unchanged => (current, false),
            });
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .store
                .delete_with(res, ns, name, &opts.preconditions, |cur| Ok(decide(cur)))
                .await
            {
                // The object changed between the read and the write: decide again on the
                // new state (the preconditions are checked again too).
                Err(e) if e.reason() == "Conflict" && attempt < DELETE_ATTEMPTS => {
                    if e.to_string().contains("Precondition failed") {
                        return Err(e);
                    }
                    continue;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(group: &str, version: &str, plural: &str) -> ResourceInfo {
        ResourceInfo {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            namespaced: true,
            ..ResourceInfo::default()
        }
    }

    fn opts(p: Option<Propagation>) -> DeleteOptions {
        DeleteOptions {
            propagation: p,
            ..DeleteOptions::default()
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap()
    }

    #[test]
    fn background_removes_now_and_foreground_orphan_hold() {
        let cms = res("", "v1", "configmaps");
        let cm = json!({"metadata": {"name": "a", "uid": "u"}});
        assert!(matches!(
            plan(&cms, &cm, &opts(None), now()),
            DeleteStep::Remove
        ));
        assert!(matches!(
            plan(&cms, &cm, &opts(Some(Propagation::Background)), now()),
            DeleteStep::Remove
        ));
        let DeleteStep::Keep(fg) = plan(&cms, &cm, &opts(Some(Propagation::Foreground)), now())
        else {
            panic!("foreground keeps the owner")
        };
        assert_eq!(fg["metadata"]["finalizers"], json!(["foregroundDeletion"]));
        assert_eq!(fg["metadata"]["deletionTimestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(fg["metadata"]["deletionGracePeriodSeconds"], 0);
        let DeleteStep::Keep(or) = plan(&cms, &cm, &opts(Some(Propagation::Orphan)), now()) else {
            panic!("orphan keeps the owner")
        };
        assert_eq!(or["metadata"]["finalizers"], json!(["orphan"]));
        let legacy = DeleteOptions {
            orphan_dependents: Some(true),
            ..DeleteOptions::default()
        };
        assert!(matches!(
            plan(&cms, &cm, &legacy, now()),
            DeleteStep::Keep(_)
        ));
    }

    #[test]
    fn kind_defaults_and_switching_policy_while_terminating() {
        let jobs = res("batch", "v1", "jobs");
        let job = json!({"metadata": {"name": "j", "generation": 1}});
        let DeleteStep::Keep(held) = plan(&jobs, &job, &opts(None), now()) else {
            panic!("batch/v1 jobs orphan by default")
        };
        assert_eq!(held["metadata"]["finalizers"], json!(["orphan"]));
        assert_eq!(held["metadata"]["generation"], 2);
        // A Background delete of the held object drops the orphan finalizer: gone now.
        assert!(matches!(
            plan(&jobs, &held, &opts(Some(Propagation::Background)), now()),
            DeleteStep::Remove
        ));
        let deploys = res("apps", "v1", "deployments");
        assert!(matches!(
            plan(&deploys, &job, &opts(None), now()),
            DeleteStep::Remove
        ));
        let events = res("", "v1", "events");
        assert!(matches!(
            plan(&events, &job, &opts(Some(Propagation::Foreground)), now()),
            DeleteStep::Remove
        ));
        // A user finalizer keeps its object; a second delete changes nothing.
        let mut held = json!({"metadata": {"name": "h", "finalizers": ["example.com/x"]}});
        let DeleteStep::Keep(marked) = plan(&deploys, &held, &opts(None), now()) else {
            panic!()
        };
        held = marked;
        let DeleteStep::Keep(again) = plan(&deploys, &held, &opts(None), now()) else {
            panic!()
        };
        assert_eq!(again, held);
    }

    #[test]
    fn pods_grace() {
        let pods = res("", "v1", "pods");
        let unbound =
            json!({"metadata": {"name": "p"}, "spec": {"terminationGracePeriodSeconds": 30}});
        assert!(matches!(
            plan(&pods, &unbound, &opts(None), now()),
            DeleteStep::Remove
        ));
        let bound = json!({"metadata": {"name": "p"},
            "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30}});
        let DeleteStep::Keep(marked) = plan(&pods, &bound, &opts(None), now()) else {
            panic!("a bound pod waits for its grace period")
        };
        assert_eq!(
            marked["metadata"]["deletionTimestamp"],
            "2026-01-01T00:00:30Z"
        );
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
        // Again without a shorter period: pending, unchanged.
        assert!(matches!(
            plan(&pods, &marked, &opts(None), now()),
            DeleteStep::Unchanged
        ));
        let longer = DeleteOptions {
            grace_period_seconds: Some(60),
            ..DeleteOptions::default()
        };
        assert!(matches!(
            plan(&pods, &marked, &longer, now()),
            DeleteStep::Unchanged
        ));
        // Shorter: the deadline moves; 0 removes it.
        let shorter = DeleteOptions {
            grace_period_seconds: Some(5),
            ..DeleteOptions::default()
        };
        let DeleteStep::Keep(sooner) = plan(&pods, &marked, &shorter, now()) else {
            panic!()
        };
        assert_eq!(
            sooner["metadata"]["deletionTimestamp"],
            "2026-01-01T00:00:05Z"
        );
        let force = DeleteOptions {
            grace_period_seconds: Some(0),
            ..DeleteOptions::default()
        };
        assert!(matches!(
            plan(&pods, &marked, &force, now()),
            DeleteStep::Remove
        ));
        assert!(matches!(
            plan(&pods, &bound, &force, now()),
            DeleteStep::Remove
        ));
        let finished = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"},
            "status": {"phase": "Succeeded"}});
        assert!(matches!(
            plan(&pods, &finished, &opts(None), now()),
            DeleteStep::Remove
        ));
    }
}
