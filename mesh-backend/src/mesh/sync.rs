//! Anti-entropy: digests, then version lists of the differing buckets, then the newer
//! entries in byte-bounded batches with several requests in flight while earlier
//! batches are written. Also the serving side of those requests.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use libp2p::PeerId;
use rand::seq::IteratorRandom;
use tokio::sync::mpsc;

use super::event_loop::Command;
use super::wire::{
    FETCH_BATCH_BYTES, MAX_KEY_BYTES, MAX_VALUE_BYTES, RpcRequest, RpcResponse, WireEntry,
    WireVersionOf, topic_of,
};
use super::{MeshError, MeshHandle, bump};
use crate::digest::{BUCKETS, bucket_of};
use crate::replica::{Entry, Replica, ReplicaError};
use crate::version::Version;

/// Buckets per version-list request (~400 keys a bucket at 100k objects).
const BUCKETS_PER_REQUEST: usize = 16;
const VERSION_REQUESTS_IN_FLIGHT: usize = 4;
/// Keys per fetch request; the response stops earlier at [`FETCH_BATCH_BYTES`].
const KEYS_PER_FETCH: usize = 2048;
const FETCHES_IN_FLIGHT: usize = 4;
const APPLY_QUEUE: usize = 8;

/// What one anti-entropy round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Whether the peer had finished its own first sync.
    pub peer_ready: bool,
    /// Buckets whose digests differed.
    pub buckets: usize,
    /// Entries the peer had newer.
    pub wanted: usize,
    /// Entries that changed this replica.
    pub applied: usize,
    pub elapsed: Duration,
}

/// Syncs with every new member, and every `interval` with a random one. Marks the node
/// synced after the first round with a ready member, or, when no member is ready yet
/// (a whole mesh starting together), after a round with every member.
pub async fn run_driver(
    handle: MeshHandle,
    mut triggers: mpsc::Receiver<PeerId>,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut synced_with: HashSet<PeerId> = HashSet::new();
    loop {
        let peer = tokio::select! {
            Some(peer) = triggers.recv() => peer,
            _ = tick.tick() => {
                let view = handle.member_view();
                let ready = view.peers.iter().filter(|(_, r)| **r).map(|(p, _)| *p);
                let pick = ready.choose(&mut rand::rng())
                    .or_else(|| view.peers.keys().copied().choose(&mut rand::rng()));
                match pick {
                    Some(peer) => peer,
                    None => continue,
                }
            }
        };
        if !handle.member_view().peers.contains_key(&peer) {
            continue;
        }
        match sync_with(&handle, peer).await {
            Ok(report) => {
                synced_with.insert(peer);
                if report.wanted > 0 {
                    tracing::info!(%peer, ?report, "mesh anti-entropy pulled entries");
                }
                if !handle.is_synced() {
                    let view = handle.member_view();
                    let nobody_ready = view.peers.values().all(|r| !r);
                    let all_done = view.peers.keys().all(|p| synced_with.contains(p));
                    if report.peer_ready || (nobody_ready && all_done) {
                        handle.shared().synced.send_replace(true);
                        tracing::info!(%peer, "mesh replica synced");
                        if handle.command(Command::AnnounceReady).await.is_err() {
                            return;
                        }
                    }
                }
            }
            Err(error) => {
                bump(&handle.shared().counters.sync_failures, 1);
                tracing::debug!(%peer, %error, "mesh anti-entropy round failed");
            }
        }
    }
}

fn protocol(peer: PeerId, reason: impl Into<String>) -> MeshError {
    MeshError::Protocol {
        peer,
        reason: reason.into(),
    }
}

fn refused(peer: PeerId, response: RpcResponse) -> MeshError {
    match response {
        RpcResponse::Error(message) => MeshError::Remote { peer, message },
        _ => protocol(peer, "unexpected answer"),
    }
}

/// One anti-entropy round: pull everything `peer` has newer than this replica.
pub async fn sync_with(handle: &MeshHandle, peer: PeerId) -> Result<SyncReport, MeshError> {
    let started = Instant::now();
    let timeout = handle.shared().sync_timeout;
    let replica = handle.replica().clone();
    let (remote, peer_ready) = match handle.request(peer, RpcRequest::Digests, timeout).await? {
        RpcResponse::Digests { digests, ready } if digests.len() == BUCKETS * 32 => {
            (digests, ready)
        }
        other => return Err(refused(peer, other)),
    };
    let local = replica.digests();
    // A bucket the peer has empty holds nothing to pull; one this replica has empty is
    // pulled whole, without comparing version lists.
    let empty = [0u8; 32];
    let differing: Vec<u8> = (0..BUCKETS)
        .filter(|&b| {
            remote[b * 32..(b + 1) * 32] != local[b] && remote[b * 32..(b + 1) * 32] != empty
        })
        .map(|b| b as u8)
        .collect();
    let (missing, compared): (Vec<u8>, Vec<u8>) =
        differing.iter().partition(|&&b| local[b as usize] == empty);
    bump(&handle.shared().counters.sync_rounds, 1);
    let mut report = SyncReport {
        peer_ready,
        buckets: differing.len(),
        ..SyncReport::default()
    };
    if differing.is_empty() {
        report.elapsed = started.elapsed();
        return Ok(report);
    }

    let (apply_tx, mut apply_rx) = mpsc::channel::<Vec<Entry>>(APPLY_QUEUE);
    let writer = {
        let replica = replica.clone();
        tokio::spawn(async move {
            let mut applied = 0usize;
            let mut topics = BTreeSet::new();
            while let Some(batch) = apply_rx.recv().await {
                for entry in &batch {
                    topics.insert(topic_of(&entry.key));
                }
                applied += replica.apply_many(batch).await?;
            }
            Ok::<_, ReplicaError>((applied, topics))
        })
    };

    let wholes: Vec<Vec<u8>> = missing
        .chunks(BUCKETS_PER_REQUEST)
        .map(<[u8]>::to_vec)
        .collect();
    let pulled = stream::iter(wholes)
        .map(|buckets| pull_buckets(handle, peer, buckets, timeout, apply_tx.clone()))
        .buffer_unordered(FETCHES_IN_FLIGHT)
        .try_collect::<Vec<usize>>();
    let chunks: Vec<Bytes> = compared
        .chunks(BUCKETS_PER_REQUEST)
        .map(Bytes::copy_from_slice)
        .collect();
    let wanted_total = std::sync::atomic::AtomicUsize::new(0);
    let fetched = stream::iter(chunks)
        .map(|chunk| wanted_in(handle, peer, chunk, timeout))
        .buffered(VERSION_REQUESTS_IN_FLIGHT)
        .map_ok(|keys| {
            wanted_total.fetch_add(keys.len(), std::sync::atomic::Ordering::Relaxed);
            let batches: Vec<Result<Vec<Bytes>, MeshError>> = keys
                .chunks(KEYS_PER_FETCH)
                .map(|c| Ok(c.to_vec()))
                .collect();
            stream::iter(batches)
        })
        .try_flatten()
        .map_ok(|keys| fetch_all(handle, peer, keys, timeout, apply_tx.clone()))
        .try_buffer_unordered(FETCHES_IN_FLIGHT)
        .try_collect::<Vec<()>>();
    let (pulled, fetched) = futures::join!(pulled, fetched);
    drop(apply_tx);
    let written = writer
        .await
        .map_err(|e| MeshError::Io(std::io::Error::other(e.to_string())))?;
    fetched?;
    let whole: usize = pulled?.into_iter().sum();
    let (applied, topics) = written?;
    report.wanted = wanted_total.into_inner() + whole;
    report.applied = applied;
    report.elapsed = started.elapsed();
    bump(&handle.shared().counters.entries_pulled, applied as u64);
    if !topics.is_empty() {
        handle
            .command(Command::Subscribe {
                topics: topics.into_iter().collect(),
            })
            .await?;
    }
    Ok(report)
}

/// The keys of `buckets` that `peer` holds newer than this replica.
async fn wanted_in(
    handle: &MeshHandle,
    peer: PeerId,
    buckets: Bytes,
    timeout: Duration,
) -> Result<Vec<Bytes>, MeshError> {
    let response = handle
        .request(
            peer,
            RpcRequest::Versions {
                buckets: buckets.clone(),
            },
            timeout,
        )
        .await?;
    let remote = match response {
        RpcResponse::Versions(items) => items,
        other => return Err(refused(peer, other)),
    };
    let replica = handle.replica().clone();
    let asked = buckets.clone();
    let local = tokio::task::spawn_blocking(move || {
        let mut local: HashMap<Bytes, Version> = HashMap::new();
        for &bucket in asked.iter() {
            for (key, version, _) in replica.bucket_versions(bucket)? {
                local.insert(key, version);
            }
        }
        Ok::<_, ReplicaError>(local)
    })
    .await
    .map_err(|e| MeshError::Io(std::io::Error::other(e.to_string())))??;
    let mut wanted = Vec::new();
    for item in remote {
        if item.key.is_empty()
            || item.key.len() > MAX_KEY_BYTES
            || !buckets.contains(&bucket_of(&item.key))
        {
            return Err(protocol(peer, "version list outside the asked buckets"));
        }
        let version: Version = item.version.into();
        if local.get(&item.key).is_none_or(|mine| *mine < version) {
            wanted.push(item.key);
        }
    }
    Ok(wanted)
}

/// Pulls `keys` from `peer` (as many requests as the byte bound needs) and queues the
/// entries for writing.
async fn fetch_all(
    handle: &MeshHandle,
    peer: PeerId,
    mut keys: Vec<Bytes>,
    timeout: Duration,
    apply: mpsc::Sender<Vec<Entry>>,
) -> Result<(), MeshError> {
    while !keys.is_empty() {
        let response = handle
            .request(peer, RpcRequest::Fetch { keys: keys.clone() }, timeout)
            .await?;
        let (entries, served) = match response {
            RpcResponse::Fetch { entries, served } => (entries, served as usize),
            other => return Err(refused(peer, other)),
        };
        if served == 0 || served > keys.len() || entries.len() > served {
            return Err(protocol(peer, "fetch answer does not match the request"));
        }
        let asked: HashSet<&Bytes> = keys[..served].iter().collect();
        let mut batch = Vec::with_capacity(entries.len());
        for entry in entries {
            if !asked.contains(&entry.key) || entry.value.len() > MAX_VALUE_BYTES {
                return Err(protocol(peer, "fetched an entry that was not asked for"));
            }
            batch.push(Entry::from(entry));
        }
        keys.drain(..served);
        if !batch.is_empty() && apply.send(batch).await.is_err() {
            return Err(MeshError::Closed);
        }
    }
    Ok(())
}

/// Pulls every entry of `buckets` from `peer` (resuming where each byte-bounded batch
/// stopped) and queues them for writing; returns how many entries arrived.
async fn pull_buckets(
    handle: &MeshHandle,
    peer: PeerId,
    mut buckets: Vec<u8>,
    timeout: Duration,
    apply: mpsc::Sender<Vec<Entry>>,
) -> Result<usize, MeshError> {
    let mut after: Option<Bytes> = None;
    let mut received = 0;
    while !buckets.is_empty() {
        let request = RpcRequest::Buckets {
            buckets: Bytes::copy_from_slice(&buckets),
            after: after.clone(),
        };
        let (entries, complete) = match handle.request(peer, request, timeout).await? {
            RpcResponse::Buckets { entries, complete } => (entries, complete as usize),
            other => return Err(refused(peer, other)),
        };
        if complete > buckets.len() || (complete == 0 && entries.is_empty()) {
            return Err(protocol(peer, "bucket answer does not match the request"));
        }
        let asked: HashSet<u8> = buckets[..(complete + 1).min(buckets.len())]
            .iter()
            .copied()
            .collect();
        let mut batch = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.key.is_empty()
                || entry.key.len() > MAX_KEY_BYTES
                || entry.value.len() > MAX_VALUE_BYTES
                || !asked.contains(&bucket_of(&entry.key))
            {
                return Err(protocol(peer, "pulled an entry outside the asked buckets"));
            }
            batch.push(Entry::from(entry));
        }
        buckets.drain(..complete);
        after = if complete > 0 { None } else { after };
        if let Some(last) = batch.last()
            && buckets.first() == Some(&bucket_of(&last.key))
        {
            after = Some(last.key.clone());
        }
        received += batch.len();
        if !batch.is_empty() && apply.send(batch).await.is_err() {
            return Err(MeshError::Closed);
        }
    }
    Ok(received)
}

const MAX_FETCH_KEYS: usize = 16 * 1024;

/// Answers an anti-entropy request from the replica (blocking reads off the runtime).
pub async fn serve(replica: Arc<Replica>, request: RpcRequest, ready: bool) -> RpcResponse {
    match tokio::task::spawn_blocking(move || serve_blocking(&replica, request, ready)).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => RpcResponse::Error(format!("storage: {error}")),
        Err(error) => RpcResponse::Error(format!("internal: {error}")),
    }
}

fn serve_blocking(
    replica: &Replica,
    request: RpcRequest,
    ready: bool,
) -> Result<RpcResponse, ReplicaError> {
    match request {
        RpcRequest::Digests => {
            let mut out = Vec::with_capacity(BUCKETS * 32);
            for digest in replica.digests() {
                out.extend_from_slice(&digest);
            }
            Ok(RpcResponse::Digests {
                digests: out.into(),
                ready,
            })
        }
        RpcRequest::Versions { buckets } => {
            let mut items = Vec::new();
            let unique: BTreeSet<u8> = buckets.iter().copied().collect();
            for bucket in unique {
                for (key, version, deleted) in replica.bucket_versions(bucket)? {
                    items.push(WireVersionOf {
                        key,
                        version: (&version).into(),
                        deleted,
                    });
                }
            }
            Ok(RpcResponse::Versions(items))
        }
        RpcRequest::Fetch { keys } => {
            if keys.len() > MAX_FETCH_KEYS {
                return Ok(RpcResponse::Error("too many keys".into()));
            }
            let mut entries = Vec::new();
            let mut bytes = 0usize;
            let mut served = 0u32;
            for key in &keys {
                if bytes >= FETCH_BATCH_BYTES {
                    break;
                }
                served += 1;
                if key.len() > MAX_KEY_BYTES {
                    continue;
                }
                if let Some(entry) = replica.entry(key)? {
                    bytes += entry.key.len() + entry.value.len() + 64;
                    entries.push(WireEntry::from(&entry));
                }
            }
            Ok(RpcResponse::Fetch { entries, served })
        }
        RpcRequest::Buckets { buckets, after } => {
            let mut entries = Vec::new();
            let mut bytes = 0usize;
            let mut complete = 0u16;
            'buckets: for (i, &bucket) in buckets.iter().take(BUCKETS).enumerate() {
                for (key, _, _) in replica.bucket_versions(bucket)? {
                    if i == 0 && after.as_ref().is_some_and(|after| key <= after) {
                        continue;
                    }
                    if bytes >= FETCH_BATCH_BYTES {
                        break 'buckets;
                    }
                    if let Some(entry) = replica.entry(&key)? {
                        bytes += entry.key.len() + entry.value.len() + 64;
                        entries.push(WireEntry::from(&entry));
                    }
                }
                complete += 1;
            }
            Ok(RpcResponse::Buckets { entries, complete })
        }
        RpcRequest::Hello(_) | RpcRequest::Cas { .. } | RpcRequest::Bids(_) => {
            Ok(RpcResponse::Error("not an anti-entropy request".into()))
        }
    }
}
