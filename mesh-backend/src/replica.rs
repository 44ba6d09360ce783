//! The node's replica: a fjall keyspace of key → bytes, one strictly increasing revision
//! per change, and the recent history of changes that watches are served from.
//!
//! Revisions are assigned under the commit lock in commit order, so the revision sequence
//! has no gaps and no reordering (the pitfall that stalls watches in other API shims).
//! A write is answered only once fsynced; concurrent writers share one fsync (group
//! commit). Events reach history and watchers in revision order, after they are durable.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable, Snapshot};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{broadcast, oneshot};

use crate::digest::{BucketDigests, bucket_of};
use crate::version::{Hlc, Version};

const META_REVISION: &[u8] = b"revision";
const META_ORIGIN: &[u8] = b"origin";
/// Revisions are `epoch << REVISION_LOCAL_BITS | counter`; the epoch is per replica.
const REVISION_LOCAL_BITS: u32 = 40;
const REVISION_EPOCH_BITS: u32 = 22;

/// Errors of the storage layer (I/O, corruption). Client mistakes are not errors here.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("storage: {0}")]
    Storage(#[from] fjall::Error),
    #[error("storage i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored revision is corrupt")]
    CorruptRevision,
    #[error("the replica is shutting down")]
    Closed,
}

/// What changed at one revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change, as watchers see it.
#[derive(Debug, Clone)]
pub struct Event {
    pub revision: u64,
    pub kind: EventKind,
    pub key: Bytes,
    /// The new value; for a delete, the object's final state (stamped with this revision).
    pub value: Bytes,
    /// The value before this change, if the key existed.
    pub prev: Option<Bytes>,
    /// The change's global version.
    pub version: Version,
    /// True when this node assigned the version (a write it accepted as the key's home),
    /// false when it applied someone else's.
    pub local: bool,
}

/// One key's replicated state, as exchanged between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Bytes,
    pub version: Version,
    pub deleted: bool,
    /// The object (or, for a delete, its final state) as the sender stored it.
    pub value: Bytes,
}

/// What a compare-and-set expects to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// No live object (never written, or deleted).
    Absent,
    /// A live object at exactly this version.
    Version(Version),
}

/// A compare-and-set found something else: the key's current version (and whether it
/// is a tombstone), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasConflict {
    pub current: Option<(Version, bool)>,
}

/// Rewrites replicated bytes for local storage given the local revision (the object
/// layer stamps `metadata.resourceVersion`). `None` keeps the bytes as they are.
#[derive(Clone)]
pub struct Stamper(pub Arc<StampFn>);

/// `(replicated bytes, local revision) -> bytes to store` (`None`: store as they are).
pub type StampFn = dyn Fn(&[u8], u64) -> Option<Vec<u8>> + Send + Sync;

impl std::fmt::Debug for Stamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stamper")
    }
}

/// What a write decides, given the current value and the revision it would get.
pub enum Mutation {
    Put(Bytes),
    /// Remove the key; the bytes are the final state watchers receive.
    Delete(Bytes),
    /// Nothing to write: no revision is consumed and no event is sent.
    Unchanged,
}

/// Tuning of the replica.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// How many recent events are kept for watches that start in the past.
    pub history_events: usize,
    /// Upper bound on the bytes those events may hold.
    pub history_bytes: usize,
    /// fsync before answering writes (off only for throw-away test replicas).
    pub durable: bool,
    /// fjall block cache size.
    pub cache_bytes: u64,
    /// Largest in-memory table of the objects keyspace before it is flushed to disk:
    /// with the history and cache, this bounds the memory a node needs whatever it stores.
    pub memtable_bytes: u64,
    /// This node's id in versions it assigns; empty = a persisted random id.
    pub origin: Bytes,
    /// Start a new replica's revisions in a random epoch (high bits), so nodes of a mesh
    /// never issue the same resourceVersion. Off: revisions start at 1 (tests read better).
    pub revision_epoch: bool,
    /// How replicated bytes are stamped with the local revision.
    pub stamper: Option<Stamper>,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            history_events: 10_000,
            history_bytes: 16 << 20,
            durable: true,
            cache_bytes: 16 << 20,
            memtable_bytes: 16 << 20,
            origin: Bytes::new(),
            revision_epoch: false,
            stamper: None,
        }
    }
}

struct History {
    events: VecDeque<Arc<Event>>,
    bytes: usize,
    /// Revisions at or below this are no longer available for watches.
    compacted: u64,
}

struct PendingSync {
    events: Vec<Arc<Event>>,
    done: oneshot::Sender<Result<(), String>>,
}

/// A consistent read view: the store as of `revision`.
pub struct ReadView {
    snapshot: Snapshot,
    objects: Keyspace,
    pub revision: u64,
}

impl ReadView {
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>, ReplicaError> {
        Ok(self
            .snapshot
            .get(&self.objects, key)?
            .map(|v| Bytes::copy_from_slice(&v)))
    }

    /// Keys and values under `prefix`, in key order, strictly after `after` if given.
    pub fn scan<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
    ) -> impl Iterator<Item = Result<(Bytes, Bytes), ReplicaError>> + 'a {
        let iter = match after {
            Some(start) => {
                let mut lower = start.to_vec();
                lower.push(0);
                let upper = prefix_upper_bound(prefix);
                match upper {
                    Some(upper) => self.snapshot.range(&self.objects, lower..upper),
                    None => self.snapshot.range(&self.objects, lower..),
                }
            }
            None => self.snapshot.prefix(&self.objects, prefix),
        };
        iter.map(|guard| {
            let (k, v) = guard.into_inner()?;
            Ok((Bytes::copy_from_slice(&k), Bytes::copy_from_slice(&v)))
        })
    }
}

fn version_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(bucket_of(key));
    k.extend_from_slice(key);
    k
}

fn encode_version_value(version: &Version, deleted: bool) -> Vec<u8> {
    let mut v = vec![deleted as u8];
    v.extend_from_slice(&version.encode());
    v
}

fn decode_version_value(bytes: &[u8]) -> Option<(Version, bool)> {
    let (&flag, rest) = bytes.split_first()?;
    Some((Version::decode(rest)?, flag == 1))
}

fn rand_id() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        chunk.copy_from_slice(&h.finish().to_be_bytes()[..chunk.len()]);
    }
    out
}

fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut upper = prefix.to_vec();
    while let Some(last) = upper.pop() {
        if last < 0xff {
            upper.push(last + 1);
            return Some(upper);
        }
    }
    None
}

/// The node-local store.
pub struct Replica {
    db: Database,
    objects: Keyspace,
    /// bucket byte ‖ key → deleted flag ‖ encoded version (tombstones live only here).
    versions: Keyspace,
    meta: Keyspace,
    hlc: Hlc,
    origin: Bytes,
    /// Guarded by the commit lock's discipline: only changed while `revision` is held.
    digests: Mutex<BucketDigests>,
    /// The last assigned revision; the lock is the commit lock.
    revision: Mutex<u64>,
    history: RwLock<History>,
    live: broadcast::Sender<Arc<Event>>,
    sync_tx: Mutex<Option<std_mpsc::Sender<PendingSync>>>,
    pinned: Mutex<VecDeque<(u64, Instant, Arc<ReadView>)>>,
    config: ReplicaConfig,
    /// Where local writes wait (debug log of the sync thread, once a second).
    stats: WriteStats,
}

/// Nanoseconds local writes spent waiting for the commit lock and inside the store's
/// commit (which waits for the journal while an fsync holds it).
#[derive(Default)]
struct WriteStats {
    lock_wait_ns: std::sync::atomic::AtomicU64,
    commit_ns: std::sync::atomic::AtomicU64,
    commits: std::sync::atomic::AtomicU64,
}

impl Replica {
    /// Opens (or creates) the replica in `dir`; the revision counter continues where it was.
    pub fn open(dir: &Path, config: ReplicaConfig) -> Result<Arc<Replica>, ReplicaError> {
        let db = Database::builder(dir)
            .cache_size(config.cache_bytes)
            .manual_journal_persist(true)
            .open()?;
        let memtable = config.memtable_bytes;
        let objects = db.keyspace("objects", || {
            KeyspaceCreateOptions::default().max_memtable_size(memtable)
        })?;
        let versions = db.keyspace("versions", || {
            KeyspaceCreateOptions::default().max_memtable_size((memtable / 4).max(1 << 20))
        })?;
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default)?;
        let origin = if !config.origin.is_empty() {
            config.origin.clone()
        } else if let Some(o) = meta.get(META_ORIGIN)? {
            Bytes::copy_from_slice(&o)
        } else {
            let id: [u8; 16] = rand_id();
            meta.insert(META_ORIGIN, id.as_slice())?;
            Bytes::copy_from_slice(&id)
        };
        let hlc = Hlc::default();
        let mut digests = BucketDigests::default();
        for kv in versions.iter() {
            let (k, v) = kv.into_inner()?;
            if let Some((version, deleted)) = decode_version_value(&v) {
                hlc.observe(version.hlc);
                digests.replace(&k[1..], None, Some((&version, deleted)));
            }
        }
        let revision = match meta.get(META_REVISION)? {
            Some(v) => {
                let arr: [u8; 8] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| ReplicaError::CorruptRevision)?;
                u64::from_be_bytes(arr)
            }
            // A new replica starts its revisions at a random multiple of 2^40, so no two
            // nodes issue the same resourceVersion: one from another node is recognisably
            // foreign (410 on watch, 409 on a conditional write) instead of silently
            // meaning something else here.
            None if !config.revision_epoch => 0,
            None => {
                let epoch = u64::from_be_bytes(rand_id()[..8].try_into().unwrap_or([0; 8]));
                let base = (epoch % ((1 << REVISION_EPOCH_BITS) - 1) + 1) << REVISION_LOCAL_BITS;
                meta.insert(META_REVISION, base.to_be_bytes().as_slice())?;
                base
            }
        };
        let (live, _) = broadcast::channel(65_536);
        let (sync_tx, sync_rx) = std_mpsc::channel::<PendingSync>();
        let replica = Arc::new(Replica {
            db,
            objects,
            versions,
            meta,
            hlc,
            origin,
            digests: Mutex::new(digests),
            revision: Mutex::new(revision),
            history: RwLock::new(History {
                events: VecDeque::new(),
                bytes: 0,
                compacted: revision,
            }),
            live,
            sync_tx: Mutex::new(Some(sync_tx)),
            pinned: Mutex::new(VecDeque::new()),
            config,
            stats: WriteStats::default(),
        });
        let weak = Arc::downgrade(&replica);
        std::thread::Builder::new()
            .name("replica-sync".into())
            .spawn(move || sync_loop(weak, sync_rx))?;
        Ok(replica)
    }

    /// The last assigned revision.
    pub fn revision(&self) -> u64 {
        *self.revision.lock()
    }

    /// Whether `revision` could have been issued by this replica (same revision epoch).
    /// Revisions of other nodes are not comparable with ours.
    pub fn issued_here(&self, revision: u64) -> bool {
        revision >> REVISION_LOCAL_BITS == self.revision() >> REVISION_LOCAL_BITS
    }

    /// The oldest revision a watch may start from (exclusive lower bound).
    pub fn compacted_revision(&self) -> u64 {
        self.history.read().compacted
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>, ReplicaError> {
        Ok(self.objects.get(key)?.map(|v| Bytes::copy_from_slice(&v)))
    }

    /// A consistent view of the whole store at the current revision.
    pub fn view(&self) -> Arc<ReadView> {
        let rev = self.revision.lock();
        Arc::new(ReadView {
            snapshot: self.db.snapshot(),
            objects: self.objects.clone(),
            revision: *rev,
        })
    }

    /// Keeps `view` for later pages of a paginated list (bounded count and age).
    pub fn pin_view(&self, view: Arc<ReadView>) {
        let mut pinned = self.pinned.lock();
        let now = Instant::now();
        pinned.retain(|(_, t, _)| now.duration_since(*t) < Duration::from_secs(120));
        if pinned.iter().any(|(r, _, _)| *r == view.revision) {
            return;
        }
        if pinned.len() >= 32 {
            pinned.pop_front();
        }
        pinned.push_back((view.revision, now, view));
    }

    /// A pinned view at exactly `revision`, or the live store when nothing changed since.
    pub fn view_at(&self, revision: u64) -> Option<Arc<ReadView>> {
        if let Some((_, _, v)) = self.pinned.lock().iter().find(|(r, _, _)| *r == revision) {
            return Some(v.clone());
        }
        let view = self.view();
        (view.revision == revision).then_some(view)
    }

    /// Atomically reads `key`, lets `decide` choose a mutation given the current value and
    /// the revision the change would get, commits it, and waits until it is durable.
    /// Returns whatever `decide` returned alongside the committed revision.
    pub async fn write<T, E>(
        &self,
        key: &[u8],
        decide: impl FnOnce(Option<&[u8]>, u64) -> Result<(Mutation, T), E>,
    ) -> Result<Result<(u64, T), E>, ReplicaError> {
        let (done_rx, revision, out) = {
            let asked = Instant::now();
            let mut rev = self.revision.lock();
            self.stats.lock_wait_ns.fetch_add(
                asked.elapsed().as_nanos() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            let current = self.objects.get(key)?;
            let current_version = self.version_locked(key)?;
            let next = *rev + 1;
            let (mutation, out) = match decide(current.as_deref(), next) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            if matches!(mutation, Mutation::Unchanged) {
                return Ok(Ok((*rev, out)));
            }
            let version = Version {
                hlc: self
                    .hlc
                    .next_after(current_version.as_ref().map_or(0, |(v, _)| v.hlc)),
                origin: self.origin.clone(),
            };
            let prev = current.map(|c| Bytes::copy_from_slice(&c));
            let (kind, value) = match mutation {
                Mutation::Put(value) => (EventKind::Put, value),
                Mutation::Delete(value) => (EventKind::Delete, value),
                Mutation::Unchanged => return Ok(Ok((*rev, out))),
            };
            let event = Event {
                revision: next,
                kind,
                key: Bytes::copy_from_slice(key),
                value,
                prev,
                version,
                local: true,
            };
            let done_rx = self.commit_locked(&mut rev, current_version, event)?;
            (done_rx, next, out)
        };
        match done_rx.await {
            Ok(Ok(())) => Ok(Ok((revision, out))),
            Ok(Err(msg)) => Err(ReplicaError::Io(std::io::Error::other(msg))),
            Err(_) => Err(ReplicaError::Closed),
        }
    }

    /// Replicated bytes as this node stores them at `revision` (the configured stamp).
    fn stamp(&self, bytes: Bytes, revision: u64) -> Bytes {
        match &self.config.stamper {
            Some(stamper) => stamper.0(&bytes, revision)
                .map(Bytes::from)
                .unwrap_or(bytes),
            None => bytes,
        }
    }

    fn version_locked(&self, key: &[u8]) -> Result<Option<(Version, bool)>, ReplicaError> {
        Ok(self
            .versions
            .get(version_key(key))?
            .and_then(|v| decode_version_value(&v)))
    }

    /// The live value of `key` with its global version, read from one snapshot so the
    /// two belong together (what a compare-and-set should expect).
    pub fn current(&self, key: &[u8]) -> Result<Option<(Bytes, Version)>, ReplicaError> {
        let snapshot = self.db.snapshot();
        let Some(value) = snapshot.get(&self.objects, key)? else {
            return Ok(None);
        };
        let version = snapshot
            .get(&self.versions, version_key(key))?
            .and_then(|v| decode_version_value(&v))
            .map(|(v, _)| v)
            .ok_or(ReplicaError::CorruptRevision)?;
        Ok(Some((Bytes::copy_from_slice(&value), version)))
    }

    /// The global version of `key` and whether it is a tombstone.
    pub fn version(&self, key: &[u8]) -> Result<Option<(Version, bool)>, ReplicaError> {
        self.version_locked(key)
    }

    /// This node's id in the versions it assigns.
    pub fn origin(&self) -> &Bytes {
        &self.origin
    }

    /// Writes `event` (already numbered `rev + 1`) with its version, updates the digests,
    /// and queues it for the durability thread. Call with the commit lock held.
    fn commit_locked(
        &self,
        rev: &mut u64,
        old_version: Option<(Version, bool)>,
        event: Event,
    ) -> Result<oneshot::Receiver<Result<(), String>>, ReplicaError> {
        let key = event.key.as_ref();
        let deleted = event.kind == EventKind::Delete;
        let mut batch = self.db.batch();
        if deleted {
            batch.remove(&self.objects, key);
        } else {
            batch.insert(&self.objects, key, event.value.as_ref());
        }
        batch.insert(
            &self.versions,
            version_key(key),
            encode_version_value(&event.version, deleted),
        );
        batch.insert(
            &self.meta,
            META_REVISION,
            event.revision.to_be_bytes().as_slice(),
        );
        let committing = Instant::now();
        batch.commit()?;
        self.stats.commit_ns.fetch_add(
            committing.elapsed().as_nanos() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.stats
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.digests.lock().replace(
            key,
            old_version.as_ref().map(|(v, d)| (v, *d)),
            Some((&event.version, deleted)),
        );
        *rev = event.revision;
        self.queue_sync(vec![Arc::new(event)])
    }

    fn queue_sync(
        &self,
        events: Vec<Arc<Event>>,
    ) -> Result<oneshot::Receiver<Result<(), String>>, ReplicaError> {
        let (done_tx, done_rx) = oneshot::channel();
        let sender = self.sync_tx.lock();
        let Some(sender) = sender.as_ref() else {
            return Err(ReplicaError::Closed);
        };
        sender
            .send(PendingSync {
                events,
                done: done_tx,
            })
            .map_err(|_| ReplicaError::Closed)?;
        Ok(done_rx)
    }

    /// The home node's compare-and-set: if the key's current state matches `expected`,
    /// stores `value` (or deletes, keeping `value` as the final state) under a new version
    /// this node assigns, stamped with the local revision, and returns the entry as
    /// stored. Durable on return.
    pub async fn cas(
        &self,
        key: &[u8],
        expected: &Expected,
        deleted: bool,
        value: Bytes,
    ) -> Result<Result<Entry, CasConflict>, ReplicaError> {
        let (done_rx, entry) = {
            let mut rev = self.revision.lock();
            let current_version = self.version_locked(key)?;
            let live = current_version.as_ref().filter(|(_, d)| !d).map(|(v, _)| v);
            let ok = match expected {
                Expected::Absent => live.is_none(),
                Expected::Version(v) => live == Some(v),
            };
            if !ok {
                return Ok(Err(CasConflict {
                    current: current_version,
                }));
            }
            let current = self.objects.get(key)?;
            if deleted && current.is_none() {
                return Ok(Err(CasConflict {
                    current: current_version,
                }));
            }
            let next = *rev + 1;
            let stored = self.stamp(value, next);
            let version = Version {
                hlc: self
                    .hlc
                    .next_after(current_version.as_ref().map_or(0, |(v, _)| v.hlc)),
                origin: self.origin.clone(),
            };
            let entry = Entry {
                key: Bytes::copy_from_slice(key),
                version: version.clone(),
                deleted,
                value: stored.clone(),
            };
            let event = Event {
                revision: next,
                kind: if deleted {
                    EventKind::Delete
                } else {
                    EventKind::Put
                },
                key: entry.key.clone(),
                value: stored,
                prev: current.map(|c| Bytes::copy_from_slice(&c)),
                version,
                local: true,
            };
            (self.commit_locked(&mut rev, current_version, event)?, entry)
        };
        match done_rx.await {
            Ok(Ok(())) => Ok(Ok(entry)),
            Ok(Err(msg)) => Err(ReplicaError::Io(std::io::Error::other(msg))),
            Err(_) => Err(ReplicaError::Closed),
        }
    }

    /// Applies a replicated entry if it is newer than what this replica holds
    /// (last-writer-wins by version); returns whether it was applied. Durable on return.
    pub async fn apply(&self, entry: Entry) -> Result<bool, ReplicaError> {
        let done_rx = {
            let mut rev = self.revision.lock();
            let current_version = self.version_locked(&entry.key)?;
            if let Some((v, _)) = &current_version
                && *v >= entry.version
            {
                return Ok(false);
            }
            self.hlc.observe(entry.version.hlc);
            let current = self.objects.get(&entry.key)?;
            if entry.deleted && current.is_none() {
                // A tombstone for something never seen here: remember it, tell no watcher.
                self.versions.insert(
                    version_key(&entry.key),
                    encode_version_value(&entry.version, true),
                )?;
                self.digests.lock().replace(
                    &entry.key,
                    current_version.as_ref().map(|(v, d)| (v, *d)),
                    Some((&entry.version, true)),
                );
                self.queue_sync(Vec::new())?
            } else {
                let next = *rev + 1;
                let value = self.stamp(entry.value.clone(), next);
                let event = Event {
                    revision: next,
                    kind: if entry.deleted {
                        EventKind::Delete
                    } else {
                        EventKind::Put
                    },
                    key: entry.key.clone(),
                    value,
                    prev: current.map(|c| Bytes::copy_from_slice(&c)),
                    version: entry.version.clone(),
                    local: false,
                };
                self.commit_locked(&mut rev, current_version, event)?
            }
        };
        match done_rx.await {
            Ok(Ok(())) => Ok(true),
            Ok(Err(msg)) => Err(ReplicaError::Io(std::io::Error::other(msg))),
            Err(_) => Err(ReplicaError::Closed),
        }
    }

    /// Applies many replicated entries under one hold of the commit lock, one storage batch
    /// and one fsync (anti-entropy pulls, bursts of publications): per key exactly what
    /// `apply` does (last-writer-wins; of several entries for one key only the newest
    /// counts). A delete that arrives without its final state (anti-entropy tombstones
    /// carry none) gives watchers the last local state instead. Returns how many entries
    /// changed the replica. Durable on return.
    pub async fn apply_many(&self, entries: Vec<Entry>) -> Result<usize, ReplicaError> {
        let mut newest: HashMap<Bytes, Entry> = HashMap::with_capacity(entries.len());
        for entry in entries {
            match newest.get(&entry.key) {
                Some(seen) if seen.version >= entry.version => {}
                _ => {
                    newest.insert(entry.key.clone(), entry);
                }
            }
        }
        if newest.is_empty() {
            return Ok(0);
        }
        let (done_rx, applied) = {
            let mut rev = self.revision.lock();
            let mut batch = self.db.batch();
            let mut next = *rev;
            let mut events = Vec::new();
            let mut digest_changes = Vec::new();
            for entry in newest.into_values() {
                let current_version = self.version_locked(&entry.key)?;
                if let Some((v, _)) = &current_version
                    && *v >= entry.version
                {
                    continue;
                }
                self.hlc.observe(entry.version.hlc);
                batch.insert(
                    &self.versions,
                    version_key(&entry.key),
                    encode_version_value(&entry.version, entry.deleted),
                );
                let current = self.objects.get(&entry.key)?;
                if !(entry.deleted && current.is_none()) {
                    next += 1;
                    let replicated = if entry.deleted && entry.value.is_empty() {
                        current
                            .as_ref()
                            .map(|c| Bytes::copy_from_slice(c))
                            .unwrap_or_default()
                    } else {
                        entry.value.clone()
                    };
                    let value = self.stamp(replicated, next);
                    if entry.deleted {
                        batch.remove(&self.objects, entry.key.as_ref());
                    } else {
                        batch.insert(&self.objects, entry.key.as_ref(), value.as_ref());
                    }
                    events.push(Arc::new(Event {
                        revision: next,
                        kind: if entry.deleted {
                            EventKind::Delete
                        } else {
                            EventKind::Put
                        },
                        key: entry.key.clone(),
                        value,
                        prev: current.map(|c| Bytes::copy_from_slice(&c)),
                        version: entry.version.clone(),
                        local: false,
                    }));
                }
                digest_changes.push((entry.key, current_version, entry.version, entry.deleted));
            }
            if digest_changes.is_empty() {
                return Ok(0);
            }
            if next > *rev {
                batch.insert(&self.meta, META_REVISION, next.to_be_bytes().as_slice());
            }
            batch.commit()?;
            {
                let mut digests = self.digests.lock();
                for (key, old, new, deleted) in &digest_changes {
                    digests.replace(
                        key,
                        old.as_ref().map(|(v, d)| (v, *d)),
                        Some((new, *deleted)),
                    );
                }
            }
            *rev = next;
            (self.queue_sync(events)?, digest_changes.len())
        };
        match done_rx.await {
            Ok(Ok(())) => Ok(applied),
            Ok(Err(msg)) => Err(ReplicaError::Io(std::io::Error::other(msg))),
            Err(_) => Err(ReplicaError::Closed),
        }
    }

    /// The per-bucket digests of (key, version) pairs, for anti-entropy.
    pub fn digests(&self) -> Vec<[u8; 32]> {
        self.digests.lock().all().to_vec()
    }

    /// Every (key, version, deleted) of one bucket.
    pub fn bucket_versions(&self, bucket: u8) -> Result<Vec<(Bytes, Version, bool)>, ReplicaError> {
        let mut out = Vec::new();
        for kv in self.versions.prefix([bucket]) {
            let (k, v) = kv.into_inner()?;
            if let Some((version, deleted)) = decode_version_value(&v) {
                out.push((Bytes::copy_from_slice(&k[1..]), version, deleted));
            }
        }
        Ok(out)
    }

    /// The replicated state of `key` (a tombstone's value is empty).
    pub fn entry(&self, key: &[u8]) -> Result<Option<Entry>, ReplicaError> {
        let Some((version, deleted)) = self.version_locked(key)? else {
            return Ok(None);
        };
        let value = if deleted {
            Bytes::new()
        } else {
            self.get(key)?.unwrap_or_default()
        };
        Ok(Some(Entry {
            key: Bytes::copy_from_slice(key),
            version,
            deleted,
            value,
        }))
    }

    /// Subscribes to changes after `after`: the retained history past it, then live events.
    /// `None` when `after` is older than the retained history (the client must re-list).
    pub fn subscribe(&self, after: u64) -> Option<Subscription> {
        let history = self.history.read();
        if after < history.compacted {
            return None;
        }
        let live = self.live.subscribe();
        let backlog: Vec<Arc<Event>> = history
            .events
            .iter()
            .filter(|e| e.revision > after)
            .cloned()
            .collect();
        Some(Subscription {
            backlog: backlog.into(),
            live,
            last: after,
        })
    }

    fn publish(&self, events: Vec<Arc<Event>>) {
        let mut history = self.history.write();
        for event in events {
            history.bytes += event.value.len() + event.prev.as_ref().map_or(0, |p| p.len());
            history.events.push_back(event.clone());
            // A send error only means nobody is watching.
            let _ = self.live.send(event);
        }
        while history.events.len() > self.config.history_events
            || history.bytes > self.config.history_bytes
        {
            let Some(old) = history.events.pop_front() else {
                break;
            };
            history.bytes -= old.value.len() + old.prev.as_ref().map_or(0, |p| p.len());
            history.compacted = old.revision;
        }
    }

    /// Flushes and stops the sync thread; later writes fail with `Closed`.
    pub fn close(&self) {
        self.sync_tx.lock().take();
        let _ = self.db.persist(PersistMode::SyncAll);
    }
}

/// Events for one watcher, in revision order, with no gaps.
pub struct Subscription {
    backlog: VecDeque<Arc<Event>>,
    live: broadcast::Receiver<Arc<Event>>,
    last: u64,
}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionEnd {
    /// The watcher fell too far behind; it must re-list.
    Lagged,
    Closed,
}

impl Subscription {
    /// The next event, skipping any at or below revisions already delivered.
    pub async fn next(&mut self) -> Result<Arc<Event>, SubscriptionEnd> {
        loop {
            let event = match self.backlog.pop_front() {
                Some(e) => e,
                None => match self.live.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Err(SubscriptionEnd::Lagged);
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(SubscriptionEnd::Closed);
                    }
                },
            };
            if event.revision > self.last {
                self.last = event.revision;
                return Ok(event);
            }
        }
    }

    /// The newest revision this subscription has delivered or skipped past.
    pub fn last_revision(&self) -> u64 {
        self.last
    }

    /// Advances the low-water mark: events at or below `revision` are skipped.
    pub fn skip_through(&mut self, revision: u64) {
        self.last = self.last.max(revision);
    }
}

/// Group commit: drain every queued write, fsync once, then publish and answer them all.
fn sync_loop(replica: std::sync::Weak<Replica>, rx: std_mpsc::Receiver<PendingSync>) {
    // Per second: fsyncs, the writes they covered and the time they took (debug log).
    let mut window = Instant::now();
    let (mut syncs, mut synced, mut sync_time) = (0u64, 0u64, Duration::ZERO);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let Some(replica) = replica.upgrade() else {
            return;
        };
        let syncing = Instant::now();
        let result = if replica.config.durable {
            replica
                .db
                .persist(PersistMode::SyncData)
                .map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        syncs += 1;
        synced += batch.len() as u64;
        sync_time += syncing.elapsed();
        if window.elapsed() >= Duration::from_secs(1) {
            use std::sync::atomic::Ordering::Relaxed;
            let wall = window.elapsed();
            tracing::debug!(
                syncs,
                writes = synced,
                fsync_busy = sync_time.as_secs_f64() / wall.as_secs_f64(),
                fsync_mean_us = sync_time.as_micros() as u64 / syncs.max(1),
                lock_wait_ms = replica.stats.lock_wait_ns.swap(0, Relaxed) / 1_000_000,
                commit_ms = replica.stats.commit_ns.swap(0, Relaxed) / 1_000_000,
                commits = replica.stats.commits.swap(0, Relaxed),
                "replica group commit"
            );
            window = Instant::now();
            (syncs, synced, sync_time) = (0, 0, Duration::ZERO);
        }
        let mut events = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        for pending in batch {
            events.extend(pending.events);
            waiters.push(pending.done);
        }
        if result.is_ok() {
            replica.publish(events);
        } else {
            tracing::error!(error = ?result, "replica fsync failed");
        }
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(v: &'static str) -> impl FnOnce(Option<&[u8]>, u64) -> Result<(Mutation, ()), ()> {
        move |_, _| Ok((Mutation::Put(Bytes::from_static(v.as_bytes())), ()))
    }

    #[tokio::test]
    async fn revisions_increase_and_survive_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let r = Replica::open(dir.path(), ReplicaConfig::default()).unwrap();
            let (r1, ()) = r.write(b"a", put("1")).await.unwrap().unwrap();
            let (r2, ()) = r.write(b"b", put("2")).await.unwrap().unwrap();
            assert_eq!((r1, r2), (1, 2));
            r.close();
        }
        let r = Replica::open(dir.path(), ReplicaConfig::default()).unwrap();
        assert_eq!(r.revision(), 2);
        assert_eq!(r.get(b"a").unwrap().unwrap(), Bytes::from_static(b"1"));
        let (r3, ()) = r.write(b"a", put("3")).await.unwrap().unwrap();
        assert_eq!(r3, 3);
        // History before the restart is gone: watching from 1 must re-list.
        assert!(r.subscribe(1).is_none());
        assert!(r.subscribe(2).is_some());
    }

    #[tokio::test]
    async fn subscription_sees_every_change_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let r = Replica::open(dir.path(), ReplicaConfig::default()).unwrap();
        r.write(b"a", put("1")).await.unwrap().unwrap();
        let mut sub = r.subscribe(0).unwrap();
        let writer = {
            let r = r.clone();
            tokio::spawn(async move {
                for i in 0..50u8 {
                    let key = [b'k', i];
                    r.write(&key, put("x")).await.unwrap().unwrap();
                }
            })
        };
        let mut seen = Vec::new();
        while seen.len() < 51 {
            seen.push(sub.next().await.unwrap().revision);
        }
        writer.await.unwrap();
        assert_eq!(seen, (1..=51).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn decide_can_refuse_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let r = Replica::open(dir.path(), ReplicaConfig::default()).unwrap();
        let out: Result<(u64, ()), &str> = r.write(b"a", |_, _| Err("no")).await.unwrap();
        assert_eq!(out.unwrap_err(), "no");
        assert_eq!(r.revision(), 0);
        assert!(r.get(b"a").unwrap().is_none());
    }

    #[tokio::test]
    async fn views_are_consistent_and_scan_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let r = Replica::open(dir.path(), ReplicaConfig::default()).unwrap();
        for k in ["/p/b", "/p/a", "/q/a", "/p/c"] {
            r.write(k.as_bytes(), put("v")).await.unwrap().unwrap();
        }
        let view = r.view();
        r.write(b"/p/d", put("v")).await.unwrap().unwrap();
        let keys: Vec<Bytes> = view.scan(b"/p/", None).map(|kv| kv.unwrap().0).collect();
        assert_eq!(keys, vec!["/p/a", "/p/b", "/p/c"]);
        let after: Vec<Bytes> = view
            .scan(b"/p/", Some(b"/p/a"))
            .map(|kv| kv.unwrap().0)
            .collect();
        assert_eq!(after, vec!["/p/b", "/p/c"]);
        assert_eq!(view.revision, 4);
    }

    #[tokio::test]
    async fn history_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let config = ReplicaConfig {
            history_events: 3,
            ..ReplicaConfig::default()
        };
        let r = Replica::open(dir.path(), config).unwrap();
        for _ in 0..10 {
            r.write(b"a", put("v")).await.unwrap().unwrap();
        }
        assert_eq!(r.compacted_revision(), 7);
        assert!(r.subscribe(6).is_none());
        let mut sub = r.subscribe(7).unwrap();
        assert_eq!(sub.next().await.unwrap().revision, 8);
    }

    #[tokio::test]
    async fn apply_is_last_writer_wins_and_replicas_converge() {
        let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cfg = |o: &'static [u8]| ReplicaConfig {
            origin: Bytes::from_static(o),
            ..ReplicaConfig::default()
        };
        let a = Replica::open(da.path(), cfg(b"a")).unwrap();
        let b = Replica::open(db_.path(), cfg(b"b")).unwrap();
        a.write(b"k", put("from-a")).await.unwrap().unwrap();
        b.write(b"k", put("from-b")).await.unwrap().unwrap();
        let ea = a.entry(b"k").unwrap().unwrap();
        let eb = b.entry(b"k").unwrap().unwrap();
        // Exchange both ways, in either order: the larger version wins on both.
        let a_applied = a.apply(eb.clone()).await.unwrap();
        let b_applied = b.apply(ea.clone()).await.unwrap();
        assert_ne!(
            a_applied, b_applied,
            "exactly one side adopts the other's version"
        );
        assert_eq!(a.get(b"k").unwrap(), b.get(b"k").unwrap());
        assert_eq!(a.digests(), b.digests());
        // A stale entry is refused; a tombstone propagates and hides the object.
        let older = if ea.version < eb.version { ea } else { eb };
        assert!(!a.apply(older).await.unwrap());
        b.write(b"k", |_, _| {
            Ok::<_, ()>((Mutation::Delete(Bytes::from_static(b"last")), ()))
        })
        .await
        .unwrap()
        .unwrap();
        let tomb = b.entry(b"k").unwrap().unwrap();
        assert!(tomb.deleted);
        assert!(a.apply(tomb).await.unwrap());
        assert!(a.get(b"k").unwrap().is_none());
        assert_eq!(a.digests(), b.digests());
        assert_eq!(a.bucket_versions(bucket_of(b"k")).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn applied_entries_are_stamped_and_flagged_remote() {
        let dir = tempfile::tempdir().unwrap();
        let stamper = Stamper(Arc::new(|v: &[u8], rev: u64| {
            Some(format!("{}@{rev}", String::from_utf8_lossy(v)).into_bytes())
        }));
        let r = Replica::open(
            dir.path(),
            ReplicaConfig {
                stamper: Some(stamper),
                ..ReplicaConfig::default()
            },
        )
        .unwrap();
        let mut sub = r.subscribe(0).unwrap();
        let entry = Entry {
            key: Bytes::from_static(b"x"),
            version: Version {
                hlc: 42,
                origin: Bytes::from_static(b"peer"),
            },
            deleted: false,
            value: Bytes::from_static(b"obj"),
        };
        assert!(r.apply(entry).await.unwrap());
        let ev = sub.next().await.unwrap();
        assert_eq!(ev.value, Bytes::from_static(b"obj@1"));
        assert!(!ev.local);
        // The clock moved past the remote version.
        r.write(b"x", put("mine")).await.unwrap().unwrap();
        assert!(r.version(b"x").unwrap().unwrap().0.hlc > 42);
    }

    #[tokio::test]
    async fn cas_checks_the_expected_version() {
        let dir = tempfile::tempdir().unwrap();
        let r = Replica::open(dir.path(), ReplicaConfig::default()).unwrap();
        let created = r
            .cas(b"k", &Expected::Absent, false, Bytes::from_static(b"v1"))
            .await
            .unwrap()
            .unwrap();
        let again = r
            .cas(b"k", &Expected::Absent, false, Bytes::from_static(b"v1"))
            .await
            .unwrap();
        assert_eq!(again.unwrap_err().current.unwrap().0, created.version);
        let updated = r
            .cas(
                b"k",
                &Expected::Version(created.version.clone()),
                false,
                Bytes::from_static(b"v2"),
            )
            .await
            .unwrap()
            .unwrap();
        assert!(updated.version > created.version);
        // The old version no longer matches: exactly one of two racing updates wins.
        let stale = r
            .cas(
                b"k",
                &Expected::Version(created.version),
                false,
                Bytes::from_static(b"v3"),
            )
            .await
            .unwrap();
        assert!(stale.is_err());
        assert_eq!(r.get(b"k").unwrap().unwrap(), Bytes::from_static(b"v2"));
        let gone = r
            .cas(
                b"k",
                &Expected::Version(updated.version),
                true,
                Bytes::from_static(b"v2"),
            )
            .await
            .unwrap()
            .unwrap();
        assert!(gone.deleted);
        assert!(r.get(b"k").unwrap().is_none());
        // Re-creating over a tombstone is allowed.
        assert!(
            r.cas(b"k", &Expected::Absent, false, Bytes::from_static(b"v4"))
                .await
                .unwrap()
                .is_ok()
        );
    }

    #[tokio::test]
    async fn apply_many_is_lww_per_key_in_one_batch() {
        let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Replica::open(da.path(), ReplicaConfig::default()).unwrap();
        let b = Replica::open(db_.path(), ReplicaConfig::default()).unwrap();
        for k in ["k1", "k2", "k3"] {
            a.cas(
                k.as_bytes(),
                &Expected::Absent,
                false,
                Bytes::from_static(b"v1"),
            )
            .await
            .unwrap()
            .unwrap();
        }
        let old_k1 = a.entry(b"k1").unwrap().unwrap();
        let new_k1 = a
            .cas(
                b"k1",
                &Expected::Version(old_k1.version.clone()),
                false,
                Bytes::from_static(b"v2"),
            )
            .await
            .unwrap()
            .unwrap();
        let mut sub = b.subscribe(0).unwrap();
        let batch = vec![
            new_k1.clone(),
            a.entry(b"k2").unwrap().unwrap(),
            old_k1.clone(),
            a.entry(b"k3").unwrap().unwrap(),
        ];
        assert_eq!(b.apply_many(batch.clone()).await.unwrap(), 3);
        assert_eq!(b.get(b"k1").unwrap().unwrap(), Bytes::from_static(b"v2"));
        assert_eq!(a.digests(), b.digests());
        let mut revisions = Vec::new();
        for _ in 0..3 {
            let ev = sub.next().await.unwrap();
            assert!(!ev.local);
            revisions.push(ev.revision);
        }
        assert_eq!(revisions, vec![1, 2, 3]);
        // Replays change nothing.
        assert_eq!(b.apply_many(batch).await.unwrap(), 0);
        assert_eq!(b.revision(), 3);
        // An anti-entropy tombstone (no final state) hides the object; watchers get the
        // last local state.
        let tomb = Entry {
            key: Bytes::from_static(b"k2"),
            version: Version {
                hlc: new_k1.version.hlc + 10,
                origin: Bytes::from_static(b"x"),
            },
            deleted: true,
            value: Bytes::new(),
        };
        assert_eq!(b.apply_many(vec![tomb]).await.unwrap(), 1);
        assert!(b.get(b"k2").unwrap().is_none());
        let ev = sub.next().await.unwrap();
        assert_eq!(ev.kind, EventKind::Delete);
        assert_eq!(ev.value, Bytes::from_static(b"v1"));
    }

    #[tokio::test]
    async fn revision_epochs_make_other_replicas_revisions_foreign() {
        let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cfg = || ReplicaConfig {
            revision_epoch: true,
            ..ReplicaConfig::default()
        };
        let a = Replica::open(da.path(), cfg()).unwrap();
        let b = Replica::open(db_.path(), cfg()).unwrap();
        let (ra, ()) = a.write(b"k", put("x")).await.unwrap().unwrap();
        let (rb, ()) = b.write(b"k", put("x")).await.unwrap().unwrap();
        assert_ne!(ra, rb);
        assert!(a.issued_here(ra) && !a.issued_here(rb));
        assert!(b.issued_here(rb) && !b.issued_here(ra));
        // The epoch survives a restart.
        a.close();
        drop(a);
        let a = Replica::open(da.path(), cfg()).unwrap();
        assert!(a.issued_here(ra));
        assert_eq!(a.revision(), ra);
    }
}
