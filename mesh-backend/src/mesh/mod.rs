//! The libp2p mesh that keeps every node's replica full (ADR 0003).
//!
//! - **Membership**: a member is this node, or a peer with an open connection that
//!   announced our request-response protocol in identify, presented a credential over
//!   the join protocol (`/beemesh/join/1`, the only protocol open to non-members) and
//!   that the configured [`PeerAuthorizer`] accepted. Until then nothing is published,
//!   forwarded or gossiped to the peer and nothing it sends is applied; a refused peer, or
//!   one that is no member after 30 s, is disconnected. Members exchange a `Hello` when
//!   they meet (whether they finished their first sync, and the members they know, which
//!   the receiver dials), so
//!   small meshes become fully connected and every node sees the same member set. Losing
//!   the last connection to a peer removes it at once; ping closes dead connections.
//! - **Home routing**: the home of a key is the ready member XOR-closest to the key's
//!   sha256 (kad key distance). Members still catching up are not homes.
//! - **Writes**: [`MeshHandle::commit`] runs the home's compare-and-set in process when
//!   this node is the home, otherwise forwards it over request-response and applies the
//!   answer locally before returning (read-your-writes; durable on two nodes).
//! - **Publication**: every change this node versions (`Event::local`) is published on
//!   the key's topic; every node applies publications last-writer-wins.
//! - **Anti-entropy**: on every new member and periodically with a random member, the
//!   256 bucket digests are compared, then the differing buckets' version lists, then the
//!   newer entries are pulled in byte-bounded batches, several requests in flight.

mod behaviour;
mod config;
mod event_loop;
mod join;
mod placement;
mod publish;
mod routing;
mod sync;
mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod trust_tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::replica::{CasConflict, Entry, Expected, Replica, ReplicaError};
use crate::router::{CommitError, CommitFuture, WriteRouter};

pub use behaviour::{MEMBER_SCORE, gossipsub_behaviour};
pub use config::{AuthorizeFuture, MeshConfig, PeerAuthorizer, load_or_create_keypair};
pub use join::{AdmitFuture, Admitter, JOIN_PROTOCOL, request_admission};
pub use libp2p::identity::Keypair;
pub use libp2p::{Multiaddr, PeerId, multiaddr};
pub use placement::{MAX_PLACEMENT_BYTES, PlacementInbox, PlacementMessage, TENDER_TOPIC};
pub use routing::MemberView;
pub use sync::SyncReport;
pub use wire::{MAX_VALUE_BYTES, topic_of};

use event_loop::{Command, EventLoop};
use wire::{RpcRequest, RpcResponse, WireEntry};

/// Failures of the mesh. For a forwarded write, `Unreachable` means the home never got
/// the request or lost the connection (HTTP 503), `Timeout` that the outcome is unknown
/// (HTTP 504); neither is ever reported as success.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("node identity: {0}")]
    Keypair(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("transport: {0}")]
    Transport(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("cannot dial {addr}: {reason}")]
    Dial { addr: Multiaddr, reason: String },
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error("the replica's origin is not this node's peer id {0} (set ReplicaConfig::origin)")]
    OriginMismatch(PeerId),
    #[error("peer {peer} unreachable: {reason}")]
    Unreachable { peer: PeerId, reason: String },
    #[error("peer {peer} did not answer in time")]
    Timeout { peer: PeerId },
    #[error("peer {peer} refused: {message}")]
    Remote { peer: PeerId, message: String },
    #[error("peer {peer} answered nonsense: {reason}")]
    Protocol { peer: PeerId, reason: String },
    #[error("the mesh is shut down")]
    Closed,
}

/// Counters for `/metrics` and tests.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub publications_sent: AtomicU64,
    pub publications_received: AtomicU64,
    pub publications_rejected: AtomicU64,
    pub publications_ignored: AtomicU64,
    pub publications_dropped: AtomicU64,
    pub publications_applied: AtomicU64,
    pub forwarded_commits: AtomicU64,
    pub forward_failures: AtomicU64,
    pub sync_rounds: AtomicU64,
    pub sync_failures: AtomicU64,
    pub entries_pulled: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// A snapshot of the mesh's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeshStats {
    pub publications_sent: u64,
    pub publications_received: u64,
    /// Malformed, mis-addressed or forged publications.
    pub publications_rejected: u64,
    /// Publications relayed by peers that are not members.
    pub publications_ignored: u64,
    /// Valid publications not applied because the apply queue was full (anti-entropy
    /// repairs them).
    pub publications_dropped: u64,
    /// Entries that publications changed in the replica.
    pub publications_applied: u64,
    pub forwarded_commits: u64,
    pub forward_failures: u64,
    pub sync_rounds: u64,
    pub sync_failures: u64,
    /// Entries that anti-entropy changed in the replica.
    pub entries_pulled: u64,
}

/// State the event loop publishes and every handle reads without a round trip.
pub(crate) struct Shared {
    pub local: PeerId,
    pub replica: Arc<Replica>,
    pub view: watch::Sender<MemberView>,
    pub synced: watch::Sender<bool>,
    pub listen: watch::Sender<Vec<Multiaddr>>,
    pub counters: Counters,
    pub forward_timeout: Duration,
    pub sync_timeout: Duration,
    pub placement: placement::PlacementSinks,
}

/// Starts meshes.
pub struct Mesh;

impl Mesh {
    /// Starts the swarm on `config.listen`, dials `config.join`, and returns once every
    /// listener has an address. The replica's origin must be this node's peer id, so
    /// that every version names the member that assigned it.
    pub async fn start(config: MeshConfig, replica: Arc<Replica>) -> Result<MeshHandle, MeshError> {
        let local = config.keypair.public().to_peer_id();
        if replica.origin().as_ref() != local.to_bytes().as_slice() {
            return Err(MeshError::OriginMismatch(local));
        }
        let (commands_tx, commands_rx) = mpsc::channel(1024);
        let shared = Arc::new(Shared {
            local,
            replica,
            view: watch::Sender::new(MemberView::default()),
            synced: watch::Sender::new(config.join.is_empty()),
            listen: watch::Sender::new(Vec::new()),
            counters: Counters::default(),
            forward_timeout: config.forward_timeout,
            sync_timeout: config.sync_request_timeout,
            placement: placement::PlacementSinks::new(),
        });
        let handle = MeshHandle {
            shared: shared.clone(),
            commands: commands_tx,
        };
        let listeners = config.listen.len();
        let standalone_after = config.standalone_after;
        EventLoop::spawn(config, handle.clone(), commands_rx)?;
        if let Some(after) = standalone_after
            && !handle.is_synced()
        {
            let handle = handle.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                if !handle.is_synced() && handle.member_view().peers.is_empty() {
                    tracing::warn!(
                        ?after,
                        "no mesh member reachable; serving from this node's own replica"
                    );
                    handle.shared.synced.send_replace(true);
                }
            });
        }
        let mut listen = shared.listen.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            listen.wait_for(|addrs| addrs.len() >= listeners),
        )
        .await;
        Ok(handle)
    }
}

/// A cloneable client of one node's mesh.
#[derive(Clone)]
pub struct MeshHandle {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for MeshHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshHandle")
            .field("local", &self.shared.local)
            .finish()
    }
}

impl MeshHandle {
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local
    }

    /// The replica this mesh fills.
    pub fn replica(&self) -> &Arc<Replica> {
        &self.shared.replica
    }

    /// Addresses this node listens on, each ending in `/p2p/<peer id>` (ready to `--join`).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.shared
            .listen
            .borrow()
            .iter()
            .map(|a| a.clone().with_p2p(self.shared.local).unwrap_or_else(|a| a))
            .collect()
    }

    /// The live members, this node included, in peer id order.
    pub fn members(&self) -> Vec<PeerId> {
        let view = self.shared.view.borrow();
        let mut out: Vec<PeerId> = view.peers.keys().copied().collect();
        out.push(self.shared.local);
        out.sort();
        out
    }

    /// The other members and whether each finished its first sync.
    pub fn member_view(&self) -> MemberView {
        self.shared.view.borrow().clone()
    }

    /// Notified on every membership change.
    pub fn watch_members(&self) -> watch::Receiver<MemberView> {
        self.shared.view.subscribe()
    }

    /// The member that versions writes of `key`.
    pub fn home_of(&self, key: &[u8]) -> PeerId {
        let self_ready = *self.shared.synced.borrow();
        routing::home_of(
            key,
            self.shared.local,
            self_ready,
            &self.shared.view.borrow(),
        )
    }

    /// Whether the first full sync with a member finished (or nothing needed syncing:
    /// no join addresses were configured).
    pub fn is_synced(&self) -> bool {
        *self.shared.synced.borrow()
    }

    /// Resolves once [`Self::is_synced`] is true.
    pub async fn synced(&self) {
        let mut rx = self.shared.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// The compare-and-set of ADR 0003, at the key's home: `Ok(Ok(entry))` once the home
    /// stored the change and this node applied it (the entry as stored here, unless a
    /// newer version superseded it meanwhile); `Ok(Err(conflict))` when the home's state
    /// did not match `expected`; `Err` when the home could not be asked or did not
    /// answer — then the outcome is unknown or nothing happened, never a success.
    pub async fn commit(
        &self,
        key: &[u8],
        expected: Expected,
        deleted: bool,
        value: Bytes,
    ) -> Result<Result<Entry, CasConflict>, MeshError> {
        let home = self.home_of(key);
        if home == self.shared.local {
            return Ok(self
                .shared
                .replica
                .cas(key, &expected, deleted, value)
                .await?);
        }
        bump(&self.shared.counters.forwarded_commits, 1);
        let request = RpcRequest::Cas {
            key: Bytes::copy_from_slice(key),
            expected: wire::expected_to_wire(&expected),
            deleted,
            value,
        };
        let result = self
            .request(home, request, self.shared.forward_timeout)
            .await
            .and_then(|response| match response {
                RpcResponse::Cas(Ok(entry)) => {
                    if entry.key.as_ref() != key || entry.deleted != deleted {
                        return Err(MeshError::Protocol {
                            peer: home,
                            reason: "the stored entry is not the one requested".into(),
                        });
                    }
                    Ok(Ok(Entry::from(entry)))
                }
                RpcResponse::Cas(Err(current)) => Ok(Err(wire::conflict_from_wire(current))),
                RpcResponse::Error(message) => Err(MeshError::Remote {
                    peer: home,
                    message,
                }),
                other => Err(MeshError::Protocol {
                    peer: home,
                    reason: format!("expected a CAS answer, got {}", response_name(&other)),
                }),
            });
        let entry = match result {
            Ok(Ok(entry)) => entry,
            Ok(Err(conflict)) => return Ok(Err(conflict)),
            Err(e) => {
                bump(&self.shared.counters.forward_failures, 1);
                return Err(e);
            }
        };
        let replica = &self.shared.replica;
        replica.apply(entry.clone()).await?;
        // A local tombstone keeps no value: a delete answers with the final state the
        // home sent (what DELETE returns to the client), stamped with the home's revision.
        let stored = replica
            .entry(key)?
            .filter(|e| e.version == entry.version && !e.deleted)
            .unwrap_or(entry);
        Ok(Ok(stored))
    }

    /// The addresses of the current members (each ending in `/p2p/<peer id>`), for a
    /// restarted node to find the mesh again.
    pub async fn known_peers(&self) -> Result<Vec<Multiaddr>, MeshError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::KnownPeers { reply }).await?;
        rx.await.map_err(|_| MeshError::Closed)
    }

    /// Runs one anti-entropy round with `peer` now.
    pub async fn sync_with(&self, peer: PeerId) -> Result<SyncReport, MeshError> {
        sync::sync_with(self, peer).await
    }

    /// Dials another node (e.g. a late `--join`).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), MeshError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Dial { addr, reply }).await?;
        rx.await.map_err(|_| MeshError::Closed)?
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MeshStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MeshStats {
            publications_sent: get(&c.publications_sent),
            publications_received: get(&c.publications_received),
            publications_rejected: get(&c.publications_rejected),
            publications_ignored: get(&c.publications_ignored),
            publications_dropped: get(&c.publications_dropped),
            publications_applied: get(&c.publications_applied),
            forwarded_commits: get(&c.forwarded_commits),
            forward_failures: get(&c.forward_failures),
            sync_rounds: get(&c.sync_rounds),
            sync_failures: get(&c.sync_failures),
            entries_pulled: get(&c.entries_pulled),
        }
    }

    /// Stops the swarm and the mesh's tasks; the replica stays open.
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    async fn send(&self, command: Command) -> Result<(), MeshError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| MeshError::Closed)
    }

    /// Sends `request` to `peer` and waits at most `timeout` (queueing included).
    pub(crate) async fn request(
        &self,
        peer: PeerId,
        request: RpcRequest,
        timeout: Duration,
    ) -> Result<RpcResponse, MeshError> {
        let exchange = async {
            let (reply, rx) = oneshot::channel();
            self.send(Command::Request {
                peer,
                request,
                reply,
            })
            .await?;
            rx.await.map_err(|_| MeshError::Closed)?
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| MeshError::Timeout { peer })?
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) async fn command(&self, command: Command) -> Result<(), MeshError> {
        self.send(command).await
    }
}

/// The object layer commits through the mesh like through the single-node router. A
/// home that did not answer in time becomes `Unavailable` too, although the write may
/// have happened there (it then reaches this node by publication or anti-entropy).
impl WriteRouter for MeshHandle {
    fn commit<'a>(
        &'a self,
        key: &'a [u8],
        expected: Expected,
        deleted: bool,
        value: Bytes,
    ) -> CommitFuture<'a> {
        Box::pin(async move {
            MeshHandle::commit(self, key, expected, deleted, value)
                .await
                .map_err(|e| match e {
                    MeshError::Replica(e) => CommitError::Replica(e),
                    e @ MeshError::Timeout { .. } => CommitError::Timeout(e.to_string()),
                    other => CommitError::Unavailable(other.to_string()),
                })
        })
    }

    fn is_home(&self, key: &[u8]) -> bool {
        self.home_of(key) == self.shared.local
    }
}

fn response_name(response: &RpcResponse) -> &'static str {
    match response {
        RpcResponse::Hello(_) => "hello",
        RpcResponse::Cas(_) => "cas",
        RpcResponse::Digests { .. } => "digests",
        RpcResponse::Versions(_) => "versions",
        RpcResponse::Fetch { .. } => "fetch",
        RpcResponse::Buckets { .. } => "buckets",
        RpcResponse::Error(_) => "error",
        RpcResponse::BidsTaken => "bids taken",
    }
}

/// Serves a forwarded compare-and-set as the home.
pub(crate) async fn serve_cas(
    replica: &Replica,
    key: Bytes,
    expected: Option<wire::WireVersion>,
    deleted: bool,
    value: Bytes,
) -> RpcResponse {
    if key.is_empty() || key.len() > wire::MAX_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
        return RpcResponse::Error("key or value too large".into());
    }
    let expected = wire::expected_from_wire(expected);
    match replica.cas(&key, &expected, deleted, value).await {
        Ok(Ok(entry)) => RpcResponse::Cas(Ok(WireEntry::from(&entry))),
        Ok(Err(conflict)) => RpcResponse::Cas(Err(wire::conflict_to_wire(conflict))),
        Err(e) => RpcResponse::Error(format!("home storage: {e}")),
    }
}
