//! The ownerReference garbage collector, as kube-controller-manager's, sharded over the
//! mesh: every node keeps the dependency graph of its replica (objects with
//! `ownerReferences`, indexed by the storage key their owners resolve to) and acts only
//! on objects it is the home of — a dependent is collected, orphaned or unblocked by its
//! home; an owner's `foregroundDeletion` / `orphan` finalizer is removed by the owner's
//! home once its dependents allow it. There is no leader: a reconcile reads the live
//! objects and writes with uid (and resourceVersion) preconditions, so it is idempotent
//! and a double reconcile during churn is harmless. State lives only in the objects, so
//! a restart rebuilds the graph from one scan of the replica and carries on.
//!
//! Rules (upstream's `attemptToDeleteItem`, `processDeletingDependentsItem`,
//! `attemptToOrphanWorker`):
//! - an owner reference resolves in the dependent's namespace (a cluster-scoped kind
//!   without one) and matches by uid; a cluster-scoped dependent naming a namespaced kind
//!   is invalid (a Warning event, and the dependent is left alone);
//! - a dependent whose owners are all absent is deleted with the propagation its own
//!   finalizers ask for (Background otherwise); an owner seen absent only counts once its
//!   deletion was observed or it stayed absent for `ABSENT_CONFIRM` (a dependent created
//!   before its owner reached this replica is not collected);
//! - with a live owner, references to absent owners and to owners deleting their
//!   dependents in the foreground are removed from the dependent;
//! - a dependent of a foreground-deleting owner is deleted (in the foreground itself when
//!   it has dependents; its own blocking references are unblocked first when one of
//!   those is also deleting in the foreground, which breaks ownership cycles);
//! - a foreground-deleting owner loses its finalizer when no dependent blocks it
//!   (`blockOwnerDeletion: true`); an orphaning owner loses its finalizer once no
//!   dependent names it (the dependents' homes strip the references).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use beemesh_translator::deletion::{
    DeleteOptions, FINALIZER_FOREGROUND, FINALIZER_ORPHAN, Propagation,
};
use beemesh_translator::service::{ObjectService, Part, WriteOptions, now_rfc3339};
use beemesh_translator::store::{EventKind, Preconditions, SubscriptionEnd, object_key};
use beemesh_translator::{ApiError, Registry, ResourceInfo};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// How long an owner must stay absent (without its deletion being observed) before its
/// dependents are collected: absorbs the race of a dependent created right after its owner
/// on another node, before the owner replicated here.
pub const ABSENT_CONFIRM: Duration = Duration::from_secs(2);
/// How often the registry is checked for resources added at run time (CRDs).
const REGISTRY_POLL: Duration = Duration::from_secs(2);
/// How often every dependent and held owner is re-evaluated without a change.
const RESYNC: Duration = Duration::from_secs(60);
/// Retry delay after a failed read or write.
const RETRY: Duration = Duration::from_secs(2);
/// How long a first sighting of an absent owner is remembered.
const ABSENT_FORGET: Duration = Duration::from_secs(600);
/// Retry delay after a write conflict (the object changed; look at its new state).
const CONFLICT_RETRY: Duration = Duration::from_millis(100);
/// Deleted owners' uids remembered (their dependents are collected without waiting).
const DELETED_UIDS: usize = 10_000;

/// The storage key of an object (`/<group>/<plural>/[<namespace>/]<name>`).
pub type Key = Vec<u8>;

/// One `metadata.ownerReferences` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRef {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub block_owner_deletion: Option<bool>,
}

impl OwnerRef {
    fn blocks(&self) -> bool {
        self.block_owner_deletion == Some(true)
    }

    fn group(&self) -> &str {
        match self.api_version.split_once('/') {
            Some((group, _)) => group,
            None => "",
        }
    }
}

/// The metadata the collector reads (parsed without building the whole object).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub deletion_timestamp: Option<String>,
    #[serde(default)]
    pub finalizers: Option<Vec<String>>,
    #[serde(default)]
    pub owner_references: Option<Vec<OwnerRef>>,
}

impl Meta {
    pub fn parse(bytes: &[u8]) -> Option<Meta> {
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(default)]
            metadata: Option<Meta>,
        }
        serde_json::from_slice::<Envelope>(bytes).ok()?.metadata
    }

    fn from_value(obj: &Value) -> Meta {
        obj.get("metadata")
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .unwrap_or_default()
    }

    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().flatten().any(|x| x == f)
    }

    fn being_deleted(&self) -> bool {
        self.deletion_timestamp.is_some()
    }

    /// Deleting its dependents in the foreground.
    fn deleting_dependents(&self) -> bool {
        self.being_deleted() && self.has_finalizer(FINALIZER_FOREGROUND)
    }

    fn orphaning(&self) -> bool {
        self.being_deleted() && self.has_finalizer(FINALIZER_ORPHAN)
    }

    fn owners(&self) -> &[OwnerRef] {
        self.owner_references.as_deref().unwrap_or_default()
    }

    /// What the object's dependents react to.
    fn owner_state(&self) -> (String, bool, bool, bool) {
        (
            self.uid.clone(),
            self.being_deleted(),
            self.has_finalizer(FINALIZER_FOREGROUND),
            self.has_finalizer(FINALIZER_ORPHAN),
        )
    }
}

/// The served resources as the collector needs them: by storage-key prefix and by
/// (group, kind). Rebuilt when the registry's resource set changes.
#[derive(Default)]
pub struct Kinds {
    by_prefix: HashMap<Vec<u8>, Arc<ResourceInfo>>,
    by_group_kind: HashMap<(String, String), Arc<ResourceInfo>>,
    fingerprint: Vec<(String, String, String)>,
}

impl Kinds {
    pub fn of(registry: &Registry) -> Kinds {
        let mut kinds = Kinds::default();
        // Preferred versions first, so a kind resolves to the version discovery prefers.
        let order: HashMap<(String, String), usize> = registry
            .groups()
            .into_iter()
            .flat_map(|g| {
                g.versions
                    .into_iter()
                    .enumerate()
                    .map(move |(i, v)| ((g.name.clone(), v), i))
            })
            .collect();
        let mut all = registry.all();
        all.sort_by_key(|r| {
            order
                .get(&(r.group.clone(), r.version.clone()))
                .copied()
                .unwrap_or(usize::MAX)
        });
        for res in all {
            kinds
                .fingerprint
                .push((res.group.clone(), res.version.clone(), res.plural.clone()));
            let prefix = object_key(&res, None, "");
            kinds.by_prefix.entry(prefix).or_insert_with(|| res.clone());
            kinds
                .by_group_kind
                .entry((res.group.clone(), res.kind.clone()))
                .or_insert(res);
        }
        kinds.fingerprint.sort();
        kinds
    }

    fn same_set(&self, registry: &Registry) -> bool {
        let mut now: Vec<_> = registry
            .all()
            .iter()
            .map(|r| (r.group.clone(), r.version.clone(), r.plural.clone()))
            .collect();
        now.sort();
        now == self.fingerprint
    }

    /// The resource, namespace and name a storage key names.
    pub fn locate(&self, key: &[u8]) -> Option<(Arc<ResourceInfo>, Option<String>, String)> {
        // `/<group>/<plural>/` is the part up to the third slash.
        let third = key
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .nth(2)?
            .0;
        let res = self.by_prefix.get(&key[..=third])?.clone();
        let rest = std::str::from_utf8(&key[third + 1..]).ok()?;
        if res.namespaced {
            let (ns, name) = rest.split_once('/')?;
            Some((res, Some(ns.to_string()), name.to_string()))
        } else {
            Some((res, None, rest.to_string()))
        }
    }

    /// Where an owner reference of a dependent in `namespace` points.
    pub fn resolve(&self, namespace: Option<&str>, r: &OwnerRef) -> Resolved {
        let Some(res) = self
            .by_group_kind
            .get(&(r.group().to_string(), r.kind.clone()))
        else {
            return Resolved::UnknownKind;
        };
        if !res.namespaced {
            return Resolved::At(object_key(res, None, &r.name));
        }
        match namespace.filter(|ns| !ns.is_empty()) {
            Some(ns) => Resolved::At(object_key(res, Some(ns), &r.name)),
            None => Resolved::NamespacedOwnerOfClusterScoped,
        }
    }
}

/// An owner reference, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    At(Key),
    /// The kind is not served (yet): a CRD may add it; retried.
    UnknownKind,
    /// A cluster-scoped dependent cannot have a namespaced owner.
    NamespacedOwnerOfClusterScoped,
}

/// One dependent: its uid and its owner references with where they point.
#[derive(Debug, Clone)]
pub struct Node {
    pub uid: String,
    pub owners: Vec<(OwnerRef, Resolved)>,
}

/// Dependents by key, and the reverse edges (owner key → dependent keys).
#[derive(Default)]
pub struct Graph {
    nodes: HashMap<Key, Node>,
    dependents: HashMap<Key, HashSet<Key>>,
    unresolved: HashSet<Key>,
}

impl Graph {
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Records the object at `key`; returns the owner keys whose dependents changed (old
    /// and new), which may now be unblocked or need their finalizer removed.
    pub fn set(&mut self, key: &[u8], meta: &Meta, kinds: &Kinds) -> Vec<Key> {
        let owners: Vec<(OwnerRef, Resolved)> = meta
            .owners()
            .iter()
            .map(|r| (r.clone(), kinds.resolve(meta.namespace.as_deref(), r)))
            .collect();
        if let Some(old) = self.nodes.get(key)
            && old.uid == meta.uid
            && old.owners == owners
        {
            return Vec::new();
        }
        let mut touched = self.remove_edges(key);
        if owners.is_empty() {
            return touched;
        }
        let mut unresolved = false;
        for (_, at) in &owners {
            match at {
                Resolved::At(owner) => {
                    self.dependents
                        .entry(owner.clone())
                        .or_default()
                        .insert(key.to_vec());
                    touched.push(owner.clone());
                }
                Resolved::UnknownKind => unresolved = true,
                Resolved::NamespacedOwnerOfClusterScoped => {}
            }
        }
        if unresolved {
            self.unresolved.insert(key.to_vec());
        }
        self.nodes.insert(
            key.to_vec(),
            Node {
                uid: meta.uid.clone(),
                owners,
            },
        );
        touched
    }

    fn remove_edges(&mut self, key: &[u8]) -> Vec<Key> {
        let Some(old) = self.nodes.remove(key) else {
            return Vec::new();
        };
        self.unresolved.remove(key);
        let mut owners = Vec::new();
        for (_, at) in old.owners {
            if let Resolved::At(owner) = at {
                if let Some(deps) = self.dependents.get_mut(&owner) {
                    deps.remove(key);
                    if deps.is_empty() {
                        self.dependents.remove(&owner);
                    }
                }
                owners.push(owner);
            }
        }
        owners
    }

    /// Forgets a deleted object: returns its dependents (an owner is gone) and its owners
    /// (a dependent is gone).
    pub fn remove(&mut self, key: &[u8]) -> (Vec<Key>, Vec<Key>) {
        let owners = self.remove_edges(key);
        let deps = self
            .dependents
            .get(key)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default();
        (deps, owners)
    }

    /// Dependents of the object at `owner` that name it by `uid`, with their reference.
    pub fn dependents_of(&self, owner: &[u8], uid: &str) -> Vec<(Key, OwnerRef)> {
        let mut out = Vec::new();
        for dep in self.dependents.get(owner).into_iter().flatten() {
            let Some(node) = self.nodes.get(dep) else {
                continue;
            };
            for (r, at) in &node.owners {
                if r.uid == uid && *at == Resolved::At(owner.to_vec()) {
                    out.push((dep.clone(), r.clone()));
                }
            }
        }
        out
    }

    /// Every key with a dependent in `owner`'s reverse index (whatever uid it names).
    pub fn dependent_keys(&self, owner: &[u8]) -> Vec<Key> {
        self.dependents
            .get(owner)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn keys(&self) -> Vec<Key> {
        self.nodes.keys().cloned().collect()
    }

    /// Resolves again the references whose kind was unknown; returns the keys to evaluate.
    pub fn re_resolve(&mut self, kinds: &Kinds, metas: &HashMap<Key, Meta>) -> Vec<Key> {
        let keys: Vec<Key> = self.unresolved.iter().cloned().collect();
        let mut out = Vec::new();
        for key in keys {
            if let Some(meta) = metas.get(&key) {
                out.extend(self.set(&key, meta, kinds));
                out.push(key);
            }
        }
        out
    }
}

/// The work queue: each key at most once, plus delayed retries.
#[derive(Default)]
struct Queue {
    ready: VecDeque<Key>,
    queued: HashSet<Key>,
    delayed: BTreeMap<(Instant, u64), Key>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, key: Key) {
        if self.queued.insert(key.clone()) {
            self.ready.push_back(key);
        }
    }

    fn push_after(&mut self, key: Key, delay: Duration) {
        self.seq += 1;
        self.delayed.insert((Instant::now() + delay, self.seq), key);
    }

    fn pop(&mut self) -> Option<Key> {
        let now = Instant::now();
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.push(key);
        }
        let key = self.ready.pop_front()?;
        self.queued.remove(&key);
        Some(key)
    }

    fn next_due(&self) -> Option<Instant> {
        self.delayed.keys().next().map(|(t, _)| *t)
    }
}

/// What the graph builder shares with the worker.
#[derive(Default)]
struct Shared {
    graph: Graph,
    kinds: Kinds,
    queue: Queue,
    /// Objects with a GC finalizer and a deletionTimestamp (owners the collector holds).
    held: HashSet<Key>,
    /// Metadata of dependents with an unresolved owner kind (to resolve them later).
    unresolved_meta: HashMap<Key, Meta>,
    /// Dependents whose own resource is not served here yet (a CRD not registered yet).
    unlocated: HashSet<Key>,
    /// Uids whose deletion this node observed, oldest first.
    deleted: HashSet<String>,
    deleted_order: VecDeque<String>,
    /// When an owner reference was first seen dangling (dependent key, owner uid).
    absent_since: HashMap<(Key, String), Instant>,
    /// Dependents already reported as invalid (one event each).
    reported: HashSet<String>,
}

impl Shared {
    fn remember_deleted(&mut self, uid: String) {
        if uid.is_empty() || !self.deleted.insert(uid.clone()) {
            return;
        }
        self.deleted_order.push_back(uid);
        while self.deleted_order.len() > DELETED_UIDS {
            if let Some(old) = self.deleted_order.pop_front() {
                self.deleted.remove(&old);
            }
        }
    }

    /// Applies one object's new state (`None`: deleted) to the graph and queues the work
    /// it causes.
    fn observe(&mut self, key: &[u8], prev: Option<&Meta>, meta: Option<&Meta>) {
        if ignored(key) {
            return;
        }
        match meta {
            Some(meta) => {
                let touched = self.graph.set(key, meta, &self.kinds);
                if self.graph.unresolved.contains(key) {
                    self.unresolved_meta.insert(key.to_vec(), meta.clone());
                } else {
                    self.unresolved_meta.remove(key);
                }
                for owner in touched {
                    self.queue.push(owner);
                }
                if !meta.owners().is_empty() {
                    self.queue.push(key.to_vec());
                }
                if meta.orphaning() || meta.deleting_dependents() {
                    self.held.insert(key.to_vec());
                    self.queue.push(key.to_vec());
                } else {
                    self.held.remove(key);
                }
                if prev.map(Meta::owner_state) != Some(meta.owner_state()) {
                    for dep in self.graph.dependent_keys(key) {
                        self.queue.push(dep);
                    }
                }
            }
            None => {
                let (deps, owners) = self.graph.remove(key);
                // Only owners are worth remembering (upstream's absentOwnerCache).
                if let Some(prev) = prev
                    && !deps.is_empty()
                {
                    self.remember_deleted(prev.uid.clone());
                }
                self.held.remove(key);
                self.unresolved_meta.remove(key);
                for k in deps.into_iter().chain(owners) {
                    self.queue.push(k);
                }
            }
        }
    }
}

/// Events are never owners nor collected (upstream ignores them).
fn ignored(key: &[u8]) -> bool {
    key.starts_with(b"/core/events/") || key.starts_with(b"/events.k8s.io/events/")
}

/// The collector; `run` starts the graph builder and the worker.
pub struct GarbageCollector {
    service: ObjectService,
    shared: Arc<Mutex<Shared>>,
    wake: Arc<Notify>,
}

/// What an evaluation leads to.
enum Next {
    Done,
    /// Look again later (an owner not yet confirmed absent, a failed write, a conflict).
    After(Duration),
}

impl GarbageCollector {
    pub fn new(service: ObjectService) -> Self {
        GarbageCollector {
            service,
            shared: Arc::new(Mutex::new(Shared::default())),
            wake: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs forever: the graph builder follows the replica, the worker reconciles.
    pub async fn run(self) {
        let this = Arc::new(self);
        let builder = this.clone();
        tokio::spawn(async move { builder.build_forever().await });
        this.work_forever().await;
    }

    /// Rebuilds the graph from a scan of the replica, then follows its changes; rebuilds
    /// again when the subscription lags behind.
    async fn build_forever(&self) {
        loop {
            match self.build_once().await {
                Ok(()) => return,
                Err(why) => {
                    tracing::info!(%why, "garbage collector graph rebuilds");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Ok when the replica closed (shutdown); Err to rebuild.
    async fn build_once(&self) -> Result<(), String> {
        let revision = self.scan_now().map_err(|e| e.to_string())?;
        let Some(mut sub) = self.service.store.replica().subscribe(revision) else {
            return Err("history compacted during the scan".into());
        };
        self.wake.notify_one();
        let mut poll = tokio::time::interval(REGISTRY_POLL);
        let mut resync = tokio::time::interval(RESYNC);
        resync.tick().await;
        loop {
            tokio::select! {
                ev = sub.next() => match ev {
                    Ok(ev) => {
                        let meta = Meta::parse(&ev.value);
                        let prev = ev.prev.as_deref().and_then(Meta::parse);
                        let mut shared = self.lock();
                        match ev.kind {
                            EventKind::Put => shared.observe(&ev.key, prev.as_ref(), meta.as_ref()),
                            EventKind::Delete => {
                                let prev = prev.or(meta);
                                shared.observe(&ev.key, prev.as_ref(), None)
                            }
                        }
                        drop(shared);
                        self.wake.notify_one();
                    }
                    Err(SubscriptionEnd::Closed) => return Ok(()),
                    Err(SubscriptionEnd::Lagged) => return Err("fell behind the replica".into()),
                },
                _ = poll.tick() => {
                    if !self.lock().kinds.same_set(&self.service.registry) {
                        let kinds = Kinds::of(&self.service.registry);
                        let mut shared = self.lock();
                        shared.kinds = kinds;
                        let metas = std::mem::take(&mut shared.unresolved_meta);
                        let Shared { graph, kinds, .. } = &mut *shared;
                        let keys = graph.re_resolve(kinds, &metas);
                        for (k, m) in metas {
                            if shared.graph.unresolved.contains(&k) {
                                shared.unresolved_meta.insert(k, m);
                            }
                        }
                        let unlocated = std::mem::take(&mut shared.unlocated);
                        for k in keys.into_iter().chain(unlocated) {
                            shared.queue.push(k);
                        }
                        drop(shared);
                        self.wake.notify_one();
                    }
                }
                _ = resync.tick() => {
                    let mut shared = self.lock();
                    // Absences long settled one way or the other.
                    shared.absent_since.retain(|_, since| since.elapsed() < ABSENT_FORGET);
                    let keys: Vec<Key> = shared.graph.keys().into_iter()
                        .chain(shared.held.iter().cloned()).collect();
                    for k in keys {
                        shared.queue.push(k);
                    }
                    drop(shared);
                    self.wake.notify_one();
                }
            }
        }
    }

    /// Takes keys off the queue one at a time; sleeps until woken or a retry is due.
    async fn work_forever(&self) {
        loop {
            let (key, due) = {
                let mut shared = self.lock();
                (shared.queue.pop(), shared.queue.next_due())
            };
            let Some(key) = key else {
                let wait = due
                    .map(|t| t.saturating_duration_since(Instant::now()))
                    .unwrap_or(RESYNC);
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            };
            let next = match self.evaluate(&key).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::debug!(error = %e, key = %String::from_utf8_lossy(&key), "garbage collection retries");
                    Next::After(RETRY)
                }
            };
            if let Next::After(delay) = next {
                self.lock().queue.push_after(key, delay);
            }
            // Local reads and writes often complete without suspending: let the graph
            // builder (and everything else on this runtime) run between items.
            tokio::task::yield_now().await;
        }
    }

    /// Processes the queue until it is empty (for tests; `run` does this forever).
    pub async fn drain(&self) -> Result<(), ApiError> {
        loop {
            let key = self.lock().queue.pop();
            let Some(key) = key else {
                return Ok(());
            };
            if let Next::After(delay) = self.evaluate(&key).await? {
                self.lock().queue.push_after(key, delay);
            }
        }
    }

    /// Reconciles the object at `key` if this node is its home.
    async fn evaluate(&self, key: &[u8]) -> Result<Next, ApiError> {
        let located = self.lock().kinds.locate(key);
        let Some((res, ns, name)) = located else {
            // Not a served resource (yet): looked at again when the registry changes.
            let mut shared = self.lock();
            if shared.graph.nodes.contains_key(key) {
                shared.unlocated.insert(key.to_vec());
            }
            return Ok(Next::Done);
        };
        let ns = ns.as_deref();
        if !self.service.store.is_home(&res, ns, &name) {
            return Ok(Next::Done);
        }
        let obj = match self.service.store.get(&res, ns, &name) {
            Ok(obj) => obj,
            Err(e) if e.code() == 404 => return Ok(Next::Done),
            Err(e) => return Err(e),
        };
        let meta = Meta::from_value(&obj);
        // The dependents' homes strip references to an orphaning owner, whatever state
        // the dependent is in.
        let orphaning = self.owners_orphaning(&meta, ns);
        if !orphaning.is_empty() {
            self.remove_references(&res, ns, &name, &meta.uid, &orphaning)
                .await?;
            return Ok(Next::Done);
        }
        if meta.deleting_dependents() {
            return self.finish_foreground(key, &res, ns, &name, &meta).await;
        }
        if meta.orphaning() {
            return self.finish_orphan(key, &res, ns, &name, &meta).await;
        }
        if meta.being_deleted() || meta.owners().is_empty() {
            return Ok(Next::Done);
        }
        self.collect(key, &res, ns, &name, &obj, &meta).await
    }

    /// Uids of this dependent's owners that are being deleted with the orphan policy.
    fn owners_orphaning(&self, meta: &Meta, ns: Option<&str>) -> HashSet<String> {
        let mut out = HashSet::new();
        for r in meta.owners() {
            if let Some(owner) = self.live_owner(ns, r)
                && owner.orphaning()
            {
                out.insert(r.uid.clone());
            }
        }
        out
    }

    /// The owner a reference names, if it exists here with that uid.
    fn live_owner(&self, ns: Option<&str>, r: &OwnerRef) -> Option<Meta> {
        let resolved = self.lock().kinds.resolve(ns, r);
        let Resolved::At(key) = resolved else {
            return None;
        };
        let (res, ons, oname) = self.lock().kinds.locate(&key)?;
        let owner = self.service.store.get(&res, ons.as_deref(), &oname).ok()?;
        let meta = Meta::from_value(&owner);
        (meta.uid == r.uid).then_some(meta)
    }

    /// `processDeletingDependentsItem`: drop `foregroundDeletion` once nothing blocks.
    async fn finish_foreground(
        &self,
        key: &[u8],
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        meta: &Meta,
    ) -> Result<Next, ApiError> {
        let blocking: Vec<Key> = self
            .lock()
            .graph
            .dependents_of(key, &meta.uid)
            .into_iter()
            .filter(|(_, r)| r.blocks())
            .map(|(k, _)| k)
            .collect();
        if blocking.is_empty() {
            self.remove_finalizer(res, ns, name, &meta.uid, FINALIZER_FOREGROUND)
                .await?;
            return Ok(Next::Done);
        }
        // The blocking dependents' homes delete them (they are queued on every node when
        // the owner changed); their deletion events bring this owner back here. Those
        // already deleting their own dependents are left to that (as upstream), so two
        // such owners never requeue each other.
        let waiting: Vec<Key> = blocking
            .into_iter()
            .filter(|k| !self.is_deleting_dependents(k))
            .collect();
        let mut shared = self.lock();
        for k in waiting {
            shared.queue.push(k);
        }
        Ok(Next::Done)
    }

    /// The owner half of orphaning: drop `orphan` once no dependent names the owner.
    async fn finish_orphan(
        &self,
        key: &[u8],
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        meta: &Meta,
    ) -> Result<Next, ApiError> {
        let named = self.lock().graph.dependents_of(key, &meta.uid);
        if named.is_empty() {
            self.remove_finalizer(res, ns, name, &meta.uid, FINALIZER_ORPHAN)
                .await?;
        } else {
            let mut shared = self.lock();
            for (k, _) in named {
                shared.queue.push(k);
            }
        }
        Ok(Next::Done)
    }

    /// `attemptToDeleteItem` for a dependent that is not being deleted.
    async fn collect(
        &self,
        key: &[u8],
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        obj: &Value,
        meta: &Meta,
    ) -> Result<Next, ApiError> {
        let mut solid = Vec::new();
        let mut dangling = Vec::new();
        let mut waiting = Vec::new();
        let mut unconfirmed = false;
        for r in meta.owners() {
            let resolved = self.lock().kinds.resolve(ns, r);
            match resolved {
                // Re-queued when the registry gains the kind (and at every resync).
                Resolved::UnknownKind => return Ok(Next::Done),
                Resolved::NamespacedOwnerOfClusterScoped => {
                    self.report_invalid(res, meta, r).await;
                    return Ok(Next::Done);
                }
                Resolved::At(_) => {}
            }
            let owner = self.live_owner(ns, r);
            if owner.is_some() {
                self.forget_absence(key, &r.uid);
            }
            match owner {
                Some(owner) if owner.deleting_dependents() => waiting.push(r.uid.clone()),
                Some(_) => solid.push(r.uid.clone()),
                None => {
                    if self.absence_confirmed(key, &r.uid) {
                        dangling.push(r.uid.clone());
                    } else {
                        unconfirmed = true;
                    }
                }
            }
        }
        if !solid.is_empty() {
            // An owner not yet confirmed absent is looked at again: its reference goes
            // once it is.
            let next = if unconfirmed {
                Next::After(ABSENT_CONFIRM)
            } else {
                Next::Done
            };
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(next);
            }
            let drop: HashSet<String> = dangling.into_iter().chain(waiting).collect();
            self.remove_references(res, ns, name, &meta.uid, &drop)
                .await?;
            return Ok(next);
        }
        if unconfirmed {
            return Ok(Next::After(ABSENT_CONFIRM));
        }
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut rv = rv;
        let has_dependents = !self.lock().graph.dependents_of(key, &meta.uid).is_empty();
        let policy = if !waiting.is_empty() && has_dependents {
            // Deleted in the foreground itself; unblock first if one of its dependents is
            // also deleting in the foreground (an ownership cycle would wait forever).
            if self.any_dependent_deleting_dependents(key, &meta.uid) {
                self.unblock_references(res, ns, name, &meta.uid).await?;
                // The unblocking write moved the resourceVersion; the uid still guards.
                rv = None;
            }
            Propagation::Foreground
        } else if meta.has_finalizer(FINALIZER_ORPHAN) {
            Propagation::Orphan
        } else if meta.has_finalizer(FINALIZER_FOREGROUND) {
            Propagation::Foreground
        } else {
            Propagation::Background
        };
        let opts = DeleteOptions {
            preconditions: Preconditions {
                uid: Some(meta.uid.clone()),
                resource_version: rv,
            },
            propagation: Some(policy),
            ..DeleteOptions::default()
        };
        match self.service.delete_with(res, ns, name, &opts).await {
            Ok(_) => {
                tracing::debug!(object = %String::from_utf8_lossy(key), policy = policy.as_str(), "garbage collected");
                Ok(Next::Done)
            }
            Err(e) if e.code() == 404 => Ok(Next::Done),
            // Changed since it was read (adopted, or a new owner): look again.
            Err(e) if e.code() == 409 => Ok(Next::After(CONFLICT_RETRY)),
            Err(e) => Err(e),
        }
    }

    fn any_dependent_deleting_dependents(&self, key: &[u8], uid: &str) -> bool {
        let deps = self.lock().graph.dependents_of(key, uid);
        deps.into_iter()
            .any(|(k, _)| self.is_deleting_dependents(&k))
    }

    /// Whether the live object at `key` is deleting its dependents in the foreground.
    fn is_deleting_dependents(&self, key: &[u8]) -> bool {
        let located = self.lock().kinds.locate(key);
        located.is_some_and(|(res, ns, name)| {
            self.service
                .store
                .get(&res, ns.as_deref(), &name)
                .is_ok_and(|o| Meta::from_value(&o).deleting_dependents())
        })
    }

    /// Whether a dangling reference may be acted on: its owner's deletion was observed,
    /// or it has been absent for `ABSENT_CONFIRM`.
    fn absence_confirmed(&self, key: &[u8], owner_uid: &str) -> bool {
        let mut shared = self.lock();
        if shared.deleted.contains(owner_uid) {
            return true;
        }
        let since = *shared
            .absent_since
            .entry((key.to_vec(), owner_uid.to_string()))
            .or_insert_with(Instant::now);
        since.elapsed() >= ABSENT_CONFIRM
    }

    /// The owner showed up (it had not replicated here yet).
    fn forget_absence(&self, key: &[u8], owner_uid: &str) {
        let mut shared = self.lock();
        if !shared.absent_since.is_empty() {
            shared
                .absent_since
                .remove(&(key.to_vec(), owner_uid.to_string()));
        }
    }

    /// Removes the references to `uids` from the dependent (uid precondition).
    async fn remove_references(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        uid: &str,
        uids: &HashSet<String>,
    ) -> Result<(), ApiError> {
        self.rewrite(res, ns, name, uid, |meta| {
            if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
                refs.retain(|r| {
                    !r.get("uid")
                        .and_then(Value::as_str)
                        .is_some_and(|u| uids.contains(u))
                });
                if refs.is_empty() {
                    meta.remove("ownerReferences");
                }
            }
        })
        .await
    }

    /// Sets `blockOwnerDeletion: false` on every reference of the dependent.
    async fn unblock_references(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        uid: &str,
    ) -> Result<(), ApiError> {
        self.rewrite(res, ns, name, uid, |meta| {
            if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
                for r in refs {
                    if r.get("blockOwnerDeletion") == Some(&Value::Bool(true)) {
                        r["blockOwnerDeletion"] = json!(false);
                    }
                }
            }
        })
        .await
    }

    async fn remove_finalizer(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        uid: &str,
        finalizer: &str,
    ) -> Result<(), ApiError> {
        self.rewrite(res, ns, name, uid, |meta| {
            if let Some(Value::Array(f)) = meta.get_mut("finalizers") {
                f.retain(|x| x.as_str() != Some(finalizer));
                if f.is_empty() {
                    meta.remove("finalizers");
                }
            }
        })
        .await
    }

    /// An update of the object's metadata, only if it still has `uid` (else 409 and the
    /// next event re-evaluates it). A vanished object is fine.
    async fn rewrite(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        uid: &str,
        edit: impl Fn(&mut serde_json::Map<String, Value>),
    ) -> Result<(), ApiError> {
        let result = self
            .service
            .update(res, ns, name, Part::Main, &WriteOptions::default(), |cur| {
                let mut new = cur.clone();
                if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                    edit(meta);
                    meta.insert("uid".into(), json!(uid));
                    meta.remove("resourceVersion");
                }
                Ok(new)
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A Warning event on a cluster-scoped dependent that names a namespaced owner
    /// (upstream's `OwnerRefInvalidNamespace`); the dependent is left alone.
    async fn report_invalid(&self, res: &ResourceInfo, meta: &Meta, r: &OwnerRef) {
        if !self.lock().reported.insert(meta.uid.clone()) {
            return;
        }
        let Some(events) = self.service.registry.get("", "v1", "events") else {
            return;
        };
        let now = now_rfc3339();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            // Named as client-go's recorder names events: `<object>.<hex nanoseconds>`.
            "metadata": {"name": format!("{}.{:x}", meta.name, nanos), "namespace": "default"},
            "involvedObject": {"apiVersion": res.api_version(), "kind": res.kind,
                               "name": meta.name, "uid": meta.uid},
            "reason": "OwnerRefInvalidNamespace",
            "message": format!(
                "ownerRef [{}/{}, namespace: , name: {}, uid: {}] does not exist in namespace \"\"",
                r.api_version, r.kind, r.name, r.uid
            ),
            "type": "Warning",
            "source": {"component": "garbage-collector-controller"},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": "garbage-collector-controller",
        });
        if let Err(e) = self
            .service
            .create(&events, Some("default"), event, &WriteOptions::default())
            .await
        {
            tracing::debug!(error = %e, "garbage collector event not recorded");
        }
    }

    /// Builds the graph from one consistent view of the replica and queues every
    /// dependent and held owner (whatever happened while this node was down is
    /// reconciled); returns the view's revision.
    pub fn scan_now(&self) -> Result<u64, ApiError> {
        let view = self.service.store.replica().view();
        let kinds = Kinds::of(&self.service.registry);
        let mut shared = self.lock();
        shared.graph = Graph::default();
        shared.held.clear();
        shared.unresolved_meta.clear();
        shared.kinds = kinds;
        for kv in view.scan(b"/", None) {
            let (key, value) = kv.map_err(|e| ApiError::internal(e.to_string()))?;
            if let Some(meta) = Meta::parse(&value) {
                shared.observe(&key, None, Some(&meta));
            }
        }
        tracing::info!(
            dependents = shared.graph.len(),
            "garbage collector graph built"
        );
        Ok(view.revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds() -> Kinds {
        Kinds::of(&Registry::builtin())
    }

    fn owner(kind: &str, api_version: &str, name: &str, uid: &str, block: bool) -> OwnerRef {
        OwnerRef {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            block_owner_deletion: Some(block),
        }
    }

    fn meta(ns: Option<&str>, name: &str, uid: &str, owners: Vec<OwnerRef>) -> Meta {
        Meta {
            name: name.into(),
            namespace: ns.map(str::to_string),
            uid: uid.into(),
            owner_references: Some(owners),
            ..Meta::default()
        }
    }

    #[test]
    fn references_resolve_in_the_dependents_namespace_or_cluster_wide() {
        let k = kinds();
        let cm = owner("ConfigMap", "v1", "a", "u", false);
        assert_eq!(
            k.resolve(Some("ns1"), &cm),
            Resolved::At(b"/core/configmaps/ns1/a".to_vec())
        );
        assert_eq!(
            k.resolve(None, &cm),
            Resolved::NamespacedOwnerOfClusterScoped
        );
        let node = owner("Namespace", "v1", "ns1", "u", false);
        assert_eq!(
            k.resolve(Some("x"), &node),
            Resolved::At(b"/core/namespaces/ns1".to_vec())
        );
        let widget = owner("Widget", "example.com/v1", "w", "u", false);
        assert_eq!(k.resolve(Some("x"), &widget), Resolved::UnknownKind);
        let rs = owner("ReplicaSet", "apps/v1", "r", "u", true);
        assert_eq!(
            k.resolve(Some("d"), &rs),
            Resolved::At(b"/apps/replicasets/d/r".to_vec())
        );
        let (res, ns, name) = k.locate(b"/apps/replicasets/d/r").unwrap();
        assert_eq!(
            (res.kind.as_str(), ns.as_deref(), name.as_str()),
            ("ReplicaSet", Some("d"), "r")
        );
        let (res, ns, _) = k.locate(b"/core/namespaces/n").unwrap();
        assert_eq!((res.kind.as_str(), ns), ("Namespace", None));
    }

    #[test]
    fn graph_tracks_several_owners_and_forgets_removed_edges() {
        let k = kinds();
        let mut g = Graph::default();
        let a = b"/core/configmaps/d/a".to_vec();
        let b = b"/core/configmaps/d/b".to_vec();
        let dep = b"/core/configmaps/d/dep".to_vec();
        let touched = g.set(
            &dep,
            &meta(
                Some("d"),
                "dep",
                "ud",
                vec![
                    owner("ConfigMap", "v1", "a", "ua", true),
                    owner("ConfigMap", "v1", "b", "ub", false),
                ],
            ),
            &k,
        );
        assert_eq!(touched, vec![a.clone(), b.clone()]);
        assert_eq!(g.dependents_of(&a, "ua").len(), 1);
        assert!(g.dependents_of(&a, "other-uid").is_empty());
        assert!(g.dependents_of(&b, "ub")[0].1.block_owner_deletion == Some(false));
        // Unchanged: nothing to do.
        assert!(
            g.set(
                &dep,
                &meta(
                    Some("d"),
                    "dep",
                    "ud",
                    vec![
                        owner("ConfigMap", "v1", "a", "ua", true),
                        owner("ConfigMap", "v1", "b", "ub", false),
                    ],
                ),
                &k,
            )
            .is_empty()
        );
        // One reference removed: both owners hear of it; b has no dependent left.
        let touched = g.set(
            &dep,
            &meta(
                Some("d"),
                "dep",
                "ud",
                vec![owner("ConfigMap", "v1", "a", "ua", true)],
            ),
            &k,
        );
        assert!(touched.contains(&b) && touched.contains(&a));
        assert!(g.dependent_keys(&b).is_empty());
        // The dependent goes: its owner is told; an owner going tells its dependents.
        let (deps, owners) = g.remove(&a);
        assert_eq!(deps, vec![dep.clone()]);
        assert!(owners.is_empty());
        let (_, owners) = g.remove(&dep);
        assert_eq!(owners, vec![a.clone()]);
        assert!(g.is_empty() && g.dependent_keys(&a).is_empty());
    }

    #[test]
    fn cycles_are_plain_edges_and_unknown_kinds_resolve_later() {
        let k = kinds();
        let mut g = Graph::default();
        let a = b"/core/configmaps/d/a".to_vec();
        let b = b"/core/configmaps/d/b".to_vec();
        g.set(
            &a,
            &meta(
                Some("d"),
                "a",
                "ua",
                vec![owner("ConfigMap", "v1", "b", "ub", true)],
            ),
            &k,
        );
        g.set(
            &b,
            &meta(
                Some("d"),
                "b",
                "ub",
                vec![owner("ConfigMap", "v1", "a", "ua", true)],
            ),
            &k,
        );
        assert_eq!(g.dependents_of(&a, "ua")[0].0, b);
        assert_eq!(g.dependents_of(&b, "ub")[0].0, a);
        let w = b"/core/configmaps/d/w".to_vec();
        let m = meta(
            Some("d"),
            "w",
            "uw",
            vec![owner("Widget", "example.com/v1", "x", "ux", true)],
        );
        g.set(&w, &m, &k);
        assert!(g.unresolved.contains(&w));
        let registry = Registry::builtin();
        registry.insert(ResourceInfo {
            group: "example.com".into(),
            version: "v1".into(),
            kind: "Widget".into(),
            plural: "widgets".into(),
            namespaced: true,
            verbs: vec!["list".into()],
            list_kind: "WidgetList".into(),
            ..ResourceInfo::default()
        });
        let k2 = Kinds::of(&registry);
        assert!(!k.same_set(&registry));
        let metas = HashMap::from([(w.clone(), m)]);
        let keys = g.re_resolve(&k2, &metas);
        assert!(keys.contains(&b"/example.com/widgets/d/x".to_vec()));
        assert!(!g.unresolved.contains(&w));
    }

    #[test]
    fn queue_dedupes_and_delays() {
        let mut q = Queue::default();
        q.push(b"a".to_vec());
        q.push(b"a".to_vec());
        q.push_after(b"b".to_vec(), Duration::from_secs(60));
        assert_eq!(q.pop(), Some(b"a".to_vec()));
        assert_eq!(q.pop(), None);
        assert!(q.next_due().is_some());
    }
}
