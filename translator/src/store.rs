//! Kubernetes objects over the replica: keys laid out like etcd's `/registry`, every
//! stored object stamped with the replica revision as `metadata.resourceVersion`, and the
//! preconditions (existence, resourceVersion, uid) checked atomically with the commit.

use std::sync::Arc;

use base64::Engine;
use beemesh_mesh_backend::{
    CasConflict, CommitError, Expected, LocalRouter, ReadView, Replica, ReplicaConfig,
    ReplicaError, Version, WriteRouter,
};
pub use beemesh_mesh_backend::{EventKind, Subscription, SubscriptionEnd};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::conversion;
use crate::error::{ApiError, Result};
use crate::registry::ResourceInfo;
use crate::stored;

impl From<ReplicaError> for ApiError {
    fn from(e: ReplicaError) -> Self {
        ApiError::internal(e.to_string())
    }
}

/// The storage key of an object: `/<group|core>/<plural>/[<namespace>/]<name>`.
/// Sorting by key sorts by namespace then name, as upstream lists do.
pub fn object_key(res: &ResourceInfo, namespace: Option<&str>, name: &str) -> Vec<u8> {
    let mut key = list_prefix(res, namespace);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The key prefix of a list: all namespaces when `namespace` is `None`.
pub fn list_prefix(res: &ResourceInfo, namespace: Option<&str>) -> Vec<u8> {
    // Resources served by several groups (events) share the storage group's keys.
    let group = match conversion::storage_group(&res.group, &res.plural) {
        "" => "core",
        group => group,
    };
    match namespace {
        Some(ns) if res.namespaced => format!("/{group}/{}/{ns}/", res.plural).into_bytes(),
        _ => format!("/{group}/{}/", res.plural).into_bytes(),
    }
}

/// Which state a list reads (`resourceVersion` + `resourceVersionMatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAt {
    /// `""`: the most recent state.
    Latest,
    /// `"0"` or `NotOlderThan`: any state at or after the revision.
    NotOlderThan(u64),
    /// `Exact`: precisely that revision.
    Exact(u64),
}

/// One page of a list.
pub struct ListPage {
    /// Stored objects (JSON), in key order.
    pub items: Vec<Bytes>,
    pub revision: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// What a list asks for.
pub struct ListRequest<'a> {
    pub namespace: Option<&'a str>,
    pub read_at: ReadAt,
    pub limit: Option<usize>,
    pub continue_token: Option<&'a str>,
    /// Keeps an item when true; `None` keeps everything (and allows `remainingItemCount`).
    pub filter: Option<&'a dyn Fn(&Value) -> bool>,
}

impl<'a> ListRequest<'a> {
    /// Everything in `namespace` (all namespaces with `None`) at the latest revision, in
    /// one page: what a controller reads from its own replica.
    pub fn latest(namespace: Option<&'a str>) -> Self {
        ListRequest {
            namespace,
            read_at: ReadAt::Latest,
            limit: None,
            continue_token: None,
            filter: None,
        }
    }
}

/// Preconditions a write must meet (from the URL, body or DeleteOptions).
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    pub resource_version: Option<String>,
    pub uid: Option<String>,
}

/// A store of Kubernetes objects backed by the node's replica.
#[derive(Clone)]
pub struct ObjectStore {
    replica: Arc<Replica>,
    router: Arc<dyn WriteRouter>,
}

/// The replica settings the object layer needs (its stamp of `resourceVersion`).
pub fn replica_config() -> ReplicaConfig {
    ReplicaConfig {
        stamper: Some(stored::stamper()),
        revision_epoch: true,
        ..ReplicaConfig::default()
    }
}

/// The stored value as a JSON object, or an internal error (never a client's fault).
pub fn parse_stored(bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::internal(format!("stored object: {e}")))
}

/// A stored item re-encoded as `res` serves it (for resources served at a version other
/// than their storage version).
fn served_bytes(res: &ResourceInfo, stored: &[u8]) -> Result<Bytes> {
    let served = conversion::to_served(res, parse_stored(stored)?);
    serde_json::to_vec(&served)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Upstream's reason for an optimistic-concurrency conflict.
const MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// Parses a client-supplied resourceVersion; anything but a decimal is a 400.
pub fn parse_resource_version(rv: &str) -> Result<u64> {
    rv.parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

/// A resourceVersion another node issued: revisions are per node, so the client must
/// re-list here (informers do on 410).
fn foreign_resource_version(rv: u64) -> ApiError {
    ApiError::gone(format!(
        "too old resource version: {rv} (it was issued by another node; re-list from this node)"
    ))
}

/// A revision this node has not reached: upstream's 504 (`storage.NewTooLargeResourceVersionError`
/// through `NewTimeoutError`), which clients answer by re-listing.
fn too_large_resource_version(requested: u64, current: u64) -> ApiError {
    ApiError::Timeout {
        message: format!("Timeout: Too large resource version: {requested}, current: {current}"),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: u64,
    start: String,
}

fn encode_continue(revision: u64, last_key: &[u8], prefix: &[u8]) -> String {
    let start = String::from_utf8_lossy(&last_key[prefix.len()..]).into_owned();
    let token = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv: revision,
        start,
    };
    let raw = serde_json::to_vec(&token).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE.encode(raw)
}

fn decode_continue(token: &str) -> Result<ContinueToken> {
    let bad = |why: &str| {
        ApiError::bad_request(format!(
            "invalid continue token: continue key is not valid: {why}"
        ))
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad("not base64"))?;
    let token: ContinueToken = serde_json::from_slice(&raw).map_err(|_| bad("malformed"))?;
    if token.v != "meta.k8s.io/v1" {
        return Err(bad(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    if token.start.contains("..") || token.start.starts_with('/') {
        return Err(bad("invalid start key"));
    }
    Ok(token)
}

impl ObjectStore {
    /// A store whose node is the home of every key (a single node).
    pub fn new(replica: Arc<Replica>) -> Self {
        let router = Arc::new(LocalRouter::new(replica.clone()));
        ObjectStore { replica, router }
    }

    /// A store whose writes go through `router` (the mesh).
    pub fn with_router(replica: Arc<Replica>, router: Arc<dyn WriteRouter>) -> Self {
        ObjectStore { replica, router }
    }

    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    /// Whether this node is the home of the object (controllers act only on those).
    pub fn is_home(&self, res: &ResourceInfo, namespace: Option<&str>, name: &str) -> bool {
        self.router.is_home(&object_key(res, namespace, name))
    }

    /// When the object was last written — created or updated — as milliseconds since the
    /// epoch: the wall-clock part of its global version's hybrid logical clock, assigned
    /// by the key's home on every commit (so every node reads the same time).
    pub fn last_write_millis(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<u64>> {
        Ok(self
            .replica
            .current(&object_key(res, namespace, name))?
            .map(|(_, version)| version.hlc >> 16))
    }

    /// The current revision of this node's replica.
    pub fn revision(&self) -> u64 {
        self.replica.revision()
    }

    pub fn get(&self, res: &ResourceInfo, namespace: Option<&str>, name: &str) -> Result<Value> {
        let bytes = self
            .replica
            .get(&object_key(res, namespace, name))?
            .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
        Ok(conversion::to_served(res, parse_stored(&bytes)?))
    }

    /// Reads one page of a list.
    pub fn list(&self, res: &ResourceInfo, req: &ListRequest<'_>) -> Result<ListPage> {
        let prefix = list_prefix(res, req.namespace);
        let (view, start): (Arc<ReadView>, Option<Vec<u8>>) = match req.continue_token {
            Some(token) if !token.is_empty() => {
                let token = decode_continue(token)?;
                let view = self.replica.view_at(token.rv).ok_or_else(|| {
                    ApiError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    )
                })?;
                let mut start = prefix.clone();
                start.extend_from_slice(token.start.as_bytes());
                (view, Some(start))
            }
            _ => {
                if let ReadAt::NotOlderThan(rv) | ReadAt::Exact(rv) = req.read_at
                    && rv != 0
                    && !self.replica.issued_here(rv)
                {
                    return Err(foreign_resource_version(rv));
                }
                let view = match req.read_at {
                    ReadAt::Latest => self.replica.view(),
                    ReadAt::NotOlderThan(rv) => {
                        let view = self.replica.view();
                        if view.revision < rv {
                            return Err(too_large_resource_version(rv, view.revision));
                        }
                        view
                    }
                    ReadAt::Exact(rv) if rv > self.replica.revision() => {
                        return Err(too_large_resource_version(rv, self.replica.revision()));
                    }
                    // Only pinned snapshots are kept: older revisions read as compacted
                    // (upstream's etcd answer for a compacted revision).
                    ReadAt::Exact(rv) => self.replica.view_at(rv).ok_or_else(|| {
                        ApiError::gone("The resourceVersion for the provided list is too old.")
                    })?,
                };
                (view, None)
            }
        };
        let limit = req.limit.filter(|l| *l > 0);
        let mut items = Vec::new();
        let mut last_key: Option<Bytes> = None;
        let mut more = false;
        let mut remaining: i64 = 0;
        for kv in view.scan(&prefix, start.as_deref()) {
            let (key, value) = kv?;
            if let Some(limit) = limit
                && items.len() >= limit
            {
                more = true;
                if req.filter.is_some() {
                    break;
                }
                remaining += 1;
                continue;
            }
            if let Some(filter) = req.filter {
                // Selectors name the fields of the served version.
                let obj = conversion::to_served(res, parse_stored(&value)?);
                if !filter(&obj) {
                    continue;
                }
            }
            items.push(if conversion::needs_conversion(res) {
                served_bytes(res, &value)?
            } else {
                value
            });
            last_key = Some(key);
        }
        let continue_token = match (more, last_key) {
            (true, Some(key)) => {
                self.replica.pin_view(view.clone());
                Some(encode_continue(view.revision, &key, &prefix))
            }
            _ => None,
        };
        let remaining = (continue_token.is_some() && req.filter.is_none()).then_some(remaining);
        Ok(ListPage {
            items,
            revision: view.revision,
            continue_token,
            remaining,
        })
    }

    /// Every object of `res` (all namespaces) at the latest revision, with its storage
    /// key, as served, and that revision: a controller that keeps parsed objects between
    /// passes follows changes from there (`Replica::subscribe`) instead of listing again.
    pub fn list_entries(&self, res: &ResourceInfo) -> Result<(u64, Vec<(Bytes, Bytes)>)> {
        let prefix = list_prefix(res, None);
        let view = self.replica.view();
        let mut out = Vec::new();
        for kv in view.scan(&prefix, None) {
            let (key, value) = kv?;
            let value = if conversion::needs_conversion(res) {
                served_bytes(res, &value)?
            } else {
                value
            };
            out.push((key, value));
        }
        Ok((view.revision, out))
    }

    /// Reads the live object and its global version (what a write must expect).
    fn current(&self, res: &ResourceInfo, name: &str, key: &[u8]) -> Result<(Value, Version)> {
        let (bytes, version) = self
            .replica
            .current(key)?
            .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
        Ok((parse_stored(&bytes)?, version))
    }

    /// Commits through the router; the result is the object as stored on this node.
    async fn commit(
        &self,
        key: &[u8],
        expected: Expected,
        deleted: bool,
        obj: &Value,
    ) -> Result<std::result::Result<Value, CasConflict>> {
        let bytes = stored::encode(obj, 0).map_err(|e| ApiError::internal(e.to_string()))?;
        match self
            .router
            .commit(key, expected, deleted, Bytes::from(bytes))
            .await
        {
            Ok(Ok(entry)) => Ok(Ok(parse_stored(&entry.value)?)),
            Ok(Err(conflict)) => Ok(Err(conflict)),
            Err(CommitError::Unavailable(why)) => Err(ApiError::ServiceUnavailable {
                message: format!("the write could not be committed: {why}"),
            }),
            Err(CommitError::Timeout(why)) => Err(ApiError::Timeout {
                message: format!("the write's outcome is unknown: {why}"),
            }),
            Err(CommitError::Replica(e)) => Err(e.into()),
        }
    }

    /// Stores a new object; fails with AlreadyExists if the key is taken.
    pub async fn create(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        obj: Value,
    ) -> Result<Value> {
        let name = meta_str(&obj, "name")
            .ok_or_else(|| ApiError::bad_request("metadata.name is required"))?
            .to_string();
        let key = object_key(res, namespace, &name);
        let obj = conversion::to_storage(res, obj);
        self.commit(&key, Expected::Absent, false, &obj)
            .await?
            .map(|stored| conversion::to_served(res, stored))
            .map_err(|_| ApiError::already_exists(&res.group, &res.plural, &name))
    }

    /// Replaces an object: `decide` gets the current object and returns the new one (or
    /// `None` to leave it unchanged); preconditions are checked first, and the write only
    /// lands if nobody changed the object in between (409 otherwise).
    /// An object with `deletionTimestamp` whose last finalizer is removed is deleted.
    pub async fn update(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        pre: &Preconditions,
        decide: impl FnOnce(Value) -> Result<Option<Value>>,
    ) -> Result<Value> {
        let key = object_key(res, namespace, name);
        let (current, version) = self.current(res, name, &key)?;
        check_preconditions(
            res,
            name,
            &current,
            pre,
            PreconditionSource::ReadBeforeWrite,
        )?;
        // `decide` sees and returns the object as `res` serves it; the store keeps the
        // storage version.
        let served = conversion::to_served(res, current.clone());
        let Some(new) = decide(served.clone())? else {
            return Ok(served);
        };
        let new = conversion::to_storage(res, new);
        if same_except_version(&current, &new) {
            return Ok(served);
        }
        // Upstream's `shouldDeleteDuringUpdate`: a graceful deletion still running (a pod
        // within its grace period) is finished by whoever ends it, not by the update.
        let finalizing = new
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
            && current
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .is_none_or(|g| g == 0)
            && no_finalizers(&new, "/metadata/finalizers")
            && (!is_namespaces(res) || no_finalizers(&new, "/spec/finalizers"));
        self.commit(&key, Expected::Version(version), finalizing, &new)
            .await?
            .map(|stored| conversion::to_served(res, stored))
            .map_err(|_| ApiError::conflict(&res.group, &res.plural, name, MODIFIED))
    }

    /// Deletes an object now, or — when it has finalizers — marks it with
    /// `deletionTimestamp` and keeps it. Returns the last state and whether it is gone.
    pub async fn delete(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        pre: &Preconditions,
        now: &str,
    ) -> Result<(Value, bool)> {
        let key = object_key(res, namespace, name);
        let (mut obj, version) = self.current(res, name, &key)?;
        check_preconditions(res, name, &obj, pre, PreconditionSource::Client)?;
        let has_finalizers = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        let conflict = |_| ApiError::conflict(&res.group, &res.plural, name, MODIFIED);
        if has_finalizers {
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok((conversion::to_served(res, obj), false));
            }
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("deletionTimestamp".into(), json!(now));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            let stored = self
                .commit(&key, Expected::Version(version), false, &obj)
                .await?
                .map_err(conflict)?;
            return Ok((conversion::to_served(res, stored), false));
        }
        let stored = self
            .commit(&key, Expected::Version(version), true, &obj)
            .await?
            .map_err(conflict)?;
        Ok((conversion::to_served(res, stored), true))
    }

    /// Deletes through `decide`, which sees the live object (as served) after the client's
    /// preconditions passed and says whether to remove it, keep it in a new state
    /// (`deletionTimestamp`, finalizers) or leave it; the write only lands if nobody
    /// changed the object in between (409 otherwise). Returns the last state and whether
    /// it is gone.
    pub async fn delete_with(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        pre: &Preconditions,
        decide: impl FnOnce(&Value) -> Result<DeleteStep>,
    ) -> Result<(Value, bool)> {
        let key = object_key(res, namespace, name);
        let (current, version) = self.current(res, name, &key)?;
        check_preconditions(res, name, &current, pre, PreconditionSource::Client)?;
        let served = conversion::to_served(res, current.clone());
        let conflict = |_| ApiError::conflict(&res.group, &res.plural, name, MODIFIED);
        match decide(&served)? {
            DeleteStep::Unchanged => Ok((served, false)),
            DeleteStep::Keep(new) => {
                let new = conversion::to_storage(res, new);
                // A repeated delete that changes nothing is not a write (etcd's no-op
                // update keeps the revision).
                if same_except_version(&current, &new) {
                    return Ok((served, false));
                }
                let stored = self
                    .commit(&key, Expected::Version(version), false, &new)
                    .await?
                    .map_err(conflict)?;
                Ok((conversion::to_served(res, stored), false))
            }
            DeleteStep::Remove => {
                let stored = self
                    .commit(&key, Expected::Version(version), true, &current)
                    .await?
                    .map_err(conflict)?;
                Ok((conversion::to_served(res, stored), true))
            }
        }
    }

    /// Starts a watch: the current objects (when `from` is `None`) and then every change
    /// after them; from a revision, only changes after it. 410 when it is too old.
    pub fn watch(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        from: Option<u64>,
    ) -> Result<WatchSource> {
        let prefix = list_prefix(res, namespace);
        let too_old = |rv: u64| {
            ApiError::gone(format!(
                "too old resource version: {rv} ({})",
                self.replica.compacted_revision() + 1
            ))
        };
        match from {
            Some(rv) if rv != 0 && !self.replica.issued_here(rv) => {
                Err(foreign_resource_version(rv))
            }
            Some(rv) => {
                let sub = self.replica.subscribe(rv).ok_or_else(|| too_old(rv))?;
                Ok(WatchSource {
                    initial: Vec::new(),
                    revision: rv,
                    subscription: sub,
                    prefix,
                })
            }
            None => {
                let view = self.replica.view();
                let sub = self
                    .replica
                    .subscribe(view.revision)
                    .ok_or_else(|| too_old(view.revision))?;
                let mut initial = Vec::new();
                for kv in view.scan(&prefix, None) {
                    initial.push(kv?.1);
                }
                Ok(WatchSource {
                    initial,
                    revision: view.revision,
                    subscription: sub,
                    prefix,
                })
            }
        }
    }
}

/// What a delete does to the live object (see `ObjectStore::delete_with`).
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteStep {
    /// Remove the key now.
    Remove,
    /// Keep the object in this new state (marked for deletion).
    Keep(Value),
    /// Leave the object as it is (its deletion is already under way).
    Unchanged,
}

/// A client's DeleteOptions.preconditions against the live object (for dry runs, which
/// check without writing).
pub fn check_delete_preconditions(
    res: &ResourceInfo,
    name: &str,
    current: &Value,
    pre: &Preconditions,
) -> Result<()> {
    check_preconditions(res, name, current, pre, PreconditionSource::Client)
}

fn no_finalizers(obj: &Value, pointer: &str) -> bool {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .is_none_or(|f| f.is_empty())
}

/// Namespaces also wait on `spec.finalizers` (the namespace controller's `kubernetes`).
fn is_namespaces(res: &ResourceInfo) -> bool {
    res.group.is_empty() && res.plural == "namespaces"
}

/// Who set a precondition, which decides how a failed resourceVersion check is worded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PreconditionSource {
    /// The client's DeleteOptions.preconditions: upstream's `Precondition failed: ...`.
    Client,
    /// The revision an update was computed from: the optimistic-concurrency conflict
    /// clients re-read and retry on.
    ReadBeforeWrite,
}

fn check_preconditions(
    res: &ResourceInfo,
    name: &str,
    current: &Value,
    pre: &Preconditions,
    source: PreconditionSource,
) -> Result<()> {
    if let Some(uid) = pre.uid.as_deref().filter(|u| !u.is_empty())
        && meta_str(current, "uid") != Some(uid)
    {
        return Err(ApiError::conflict(
            &res.group,
            &res.plural,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta_str(current, "uid").unwrap_or_default()
            ),
        ));
    }
    if let Some(rv) = pre.resource_version.as_deref().filter(|r| !r.is_empty())
        && meta_str(current, "resourceVersion") != Some(rv)
    {
        let why = match source {
            PreconditionSource::Client => format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta_str(current, "resourceVersion").unwrap_or_default()
            ),
            PreconditionSource::ReadBeforeWrite => "the object has been modified; please apply your changes to the latest version and try again".to_string(),
        };
        return Err(ApiError::conflict(&res.group, &res.plural, name, &why));
    }
    Ok(())
}

/// Equal apart from `metadata.resourceVersion` (a no-op write keeps its revision).
fn same_except_version(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        v
    };
    strip(a) == strip(b)
}

/// The pieces a watch is served from.
pub struct WatchSource {
    /// Objects to send as ADDED first (empty when watching from a revision).
    pub initial: Vec<Bytes>,
    /// The revision `initial` reflects (or the one the watch started from).
    pub revision: u64,
    /// Changes after `revision`, for every key: filter by `prefix`.
    pub subscription: Subscription,
    pub prefix: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configmaps() -> ResourceInfo {
        ResourceInfo {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            singular: "configmap".into(),
            namespaced: true,
            verbs: vec![],
            short_names: vec![],
            categories: vec![],
            subresources: vec![],
            list_kind: "ConfigMapList".into(),
            definition: String::new(),
            custom: None,
        }
    }

    fn cm(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}})
    }

    async fn store() -> (tempfile::TempDir, ObjectStore) {
        let dir = tempfile::tempdir().unwrap();
        let config = ReplicaConfig {
            revision_epoch: false,
            ..replica_config()
        };
        let r = Replica::open(dir.path(), config).unwrap();
        (dir, ObjectStore::new(r))
    }

    #[tokio::test]
    async fn create_get_conflict_and_stale_update() {
        let (_d, s) = store().await;
        let res = configmaps();
        let created = s.create(&res, Some("default"), cm("a")).await.unwrap();
        assert_eq!(created["metadata"]["resourceVersion"], "1");
        let err = s.create(&res, Some("default"), cm("a")).await.unwrap_err();
        assert_eq!(err.code(), 409);
        assert_eq!(err.reason(), "AlreadyExists");
        let pre = Preconditions {
            resource_version: Some("1".into()),
            uid: None,
        };
        let upd = |v: Value| {
            let mut v = v;
            v["data"] = json!({"k": "v"});
            Ok(Some(v))
        };
        let updated = s
            .update(&res, Some("default"), "a", &pre, upd)
            .await
            .unwrap();
        assert_eq!(updated["metadata"]["resourceVersion"], "2");
        let stale = s
            .update(&res, Some("default"), "a", &pre, upd)
            .await
            .unwrap_err();
        assert_eq!(stale.reason(), "Conflict");
        // A no-op update keeps the revision.
        let same = s
            .update(&res, Some("default"), "a", &Preconditions::default(), upd)
            .await
            .unwrap();
        assert_eq!(same["metadata"]["resourceVersion"], "2");
        assert_eq!(s.revision(), 2);
    }

    #[tokio::test]
    async fn paginated_list_is_consistent_and_counts_remaining() {
        let (_d, s) = store().await;
        let res = configmaps();
        for n in ["c", "a", "b", "d"] {
            s.create(&res, Some("default"), cm(n)).await.unwrap();
        }
        let req = |token: Option<&'static str>| ListRequest {
            namespace: Some("default"),
            read_at: ReadAt::Latest,
            limit: Some(2),
            continue_token: token,
            filter: None,
        };
        let page = s.list(&res, &req(None)).unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.remaining, Some(2));
        let token: &'static str = Box::leak(page.continue_token.unwrap().into_boxed_str());
        // A write between pages does not show up in the second page.
        s.create(&res, Some("default"), cm("e")).await.unwrap();
        let page2 = s.list(&res, &req(Some(token))).unwrap();
        let names: Vec<String> = page2
            .items
            .iter()
            .map(|b| {
                parse_stored(b).unwrap()["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(names, vec!["c", "d"]);
        assert!(page2.continue_token.is_none());
        assert_eq!(page2.revision, 4);
        let bad = s.list(&res, &req(Some("!!notbase64"))).err().unwrap();
        assert_eq!(bad.code(), 400);
    }

    #[tokio::test]
    async fn finalizers_hold_deletion_until_removed() {
        let (_d, s) = store().await;
        let res = configmaps();
        let mut obj = cm("f");
        obj["metadata"]["finalizers"] = json!(["example.com/hold"]);
        s.create(&res, Some("default"), obj).await.unwrap();
        let (marked, gone) = s
            .delete(
                &res,
                Some("default"),
                "f",
                &Preconditions::default(),
                "2026-01-01T00:00:00Z",
            )
            .await
            .unwrap();
        assert!(!gone);
        assert_eq!(
            marked["metadata"]["deletionTimestamp"],
            "2026-01-01T00:00:00Z"
        );
        s.update(
            &res,
            Some("default"),
            "f",
            &Preconditions::default(),
            |mut v| {
                v["metadata"]["finalizers"] = json!([]);
                Ok(Some(v))
            },
        )
        .await
        .unwrap();
        assert_eq!(s.get(&res, Some("default"), "f").unwrap_err().code(), 404);
    }
}
