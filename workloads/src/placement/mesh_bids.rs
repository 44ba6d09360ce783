//! Bids gathered on the mesh (ADR 0009, issue #5): the placement home publishes each
//! pass's pods as a batch of *tenders*; every process answers for the Nodes it hosts (the
//! Nodes labelled with its peer id: itself and its `--sim-nodes`) with a *bid* per node that
//! fits — its LeastAllocated score, Ready-since time and how many of the pod's siblings it
//! runs — or why it does not fit; the home awards the best bid with the usual
//! compare-and-set of `spec.nodeName`.
//!
//! - **No stall.** The home waits at most [`DEFAULT_WINDOW`] and stops as soon as every live
//!   member hosting a Ready Node answered. Nodes whose host did not answer (gone, slow, its
//!   inbox full) are evaluated from the home's replica instead (a *fallback*), as
//!   [`ReplicatedBids`] does for every node.
//! - **No waiting without remote bidders.** When no other live member hosts a Ready Node
//!   (one node, or 1,000 simulated Nodes in one process), the round *is* a
//!   [`ReplicatedBids`] round: the Nodes this process hosts need no network round trip.
//! - **The award's check.** A bid was computed on the bidder's replica when the tender
//!   arrived. The home re-checks the node's fit on its own replica plus the awards it made
//!   in this round: a bid whose capacity was taken meanwhile loses (the node is reported
//!   with the home's reasons), and a node awarded a pod earlier in the round is scored by
//!   the home (the bidder could not count that award). A node that declines is not placed
//!   on, whatever the home's replica says: the bidder knows its node best.
//! - The spread term (pods of the same controller, ADR 0009 "Spread") is normalised over
//!   every bid by the home, so it is carried as a count, not folded into the score.
//!
//! The transport is the [`TenderTransport`] trait (the binary implements it over the
//! libp2p mesh: a gossipsub topic for tenders, request-response for bids), so this crate
//! stays free of libp2p.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use beemesh_translator::service::ObjectService;
use beemesh_translator::store::{ListRequest, parse_stored};
use beemesh_translator::{ApiError, ResourceInfo};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::fit::{self, Candidate, Reason};
use super::{
    BidSource, ReplicatedBids, Round, SPREAD_WEIGHT, Tender, controller_uid, spread_scores,
    up_since,
};

/// The Node label naming the libp2p peer id of the process that hosts the Node.
pub const PEER_ID_LABEL: &str = "beemesh.io/peer-id";
/// How long the home waits for bids (it stops earlier once every expected host answered).
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(50);
/// How long a bidder tries to hand its bids to the home: past the window they are useless.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// The mesh as placement needs it. Peers are named by their peer id's text.
pub trait TenderTransport: Send + Sync {
    /// This process's peer id.
    fn local_peer(&self) -> String;
    /// The other live members.
    fn live_peers(&self) -> Vec<String>;
    /// Publishes a tender batch to every member.
    fn publish_tender(&self, payload: Vec<u8>) -> BoxFuture<'static, Result<(), String>>;
    /// Sends a bid batch to the home that tendered.
    fn send_bids(&self, home: &str, payload: Vec<u8>) -> BoxFuture<'static, Result<(), String>>;
}

/// What arrives from the mesh: `(sender peer id, payload)`.
pub type Inbound = mpsc::Receiver<(String, Vec<u8>)>;

/// Counters of the exchange, exported at `/metrics` (`beemesh_placement_*_total`).
#[derive(Debug, Default)]
pub struct PlacementStats {
    /// Pods tendered on the mesh.
    pub tenders_sent: AtomicU64,
    /// Node bids received from other members.
    pub bids_received: AtomicU64,
    /// Node bids this process sent for the Nodes it hosts.
    pub bids_sent: AtomicU64,
    /// Tender batches for which a member hosting Ready Nodes did not answer in the window
    /// (its Nodes were evaluated from the home's replica).
    pub fallbacks: AtomicU64,
    /// Bids that lost the award's check (capacity taken meanwhile).
    pub stale_bids: AtomicU64,
}

impl PlacementStats {
    /// The process's counters (what `/metrics` shows).
    pub fn global() -> Arc<PlacementStats> {
        static GLOBAL: LazyLock<Arc<PlacementStats>> = LazyLock::new(Arc::default);
        GLOBAL.clone()
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// A batch of tenders: the pods, cut down to what a bidder's fit reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenderBatch {
    /// Unique per batch (the home's peer id and a counter): bids name it.
    pub id: String,
    pub pods: Vec<Value>,
}

/// One host's answers to a tender batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BidBatch {
    pub tender: String,
    pub pods: Vec<PodAnswers>,
}

/// A host's answer for one pod: one entry per Node it hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodAnswers {
    pub uid: String,
    pub nodes: Vec<NodeAnswer>,
}

/// One Node's answer to one tender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "camelCase")]
pub enum NodeAnswer {
    /// The node fits: LeastAllocated score (without the spread term), Ready-since time,
    /// and how many pods of the pod's controller it runs.
    #[serde(rename_all = "camelCase")]
    Bid {
        node: String,
        score: i64,
        up_since: String,
        siblings: i64,
    },
    /// The node does not fit, with kube-scheduler's reasons.
    Unfit {
        node: String,
        reasons: Vec<WireReason>,
    },
}

impl NodeAnswer {
    fn node(&self) -> &str {
        match self {
            NodeAnswer::Bid { node, .. } | NodeAnswer::Unfit { node, .. } => node,
        }
    }
}

/// A [`Reason`] on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireReason {
    pub text: String,
    pub resolvable: bool,
}

/// The pod fields the fit and the score read; the rest of the spec stays home.
pub fn tender_pod(pod: &Value) -> Value {
    let mut metadata = Map::new();
    for key in ["name", "namespace", "uid", "labels", "ownerReferences"] {
        if let Some(v) = pod["metadata"].get(key) {
            metadata.insert(key.into(), v.clone());
        }
    }
    let containers = |key: &str| -> Option<Value> {
        let list = pod["spec"].get(key)?.as_array()?;
        Some(Value::Array(
            list.iter()
                .map(|c| {
                    let mut out = Map::new();
                    for k in ["name", "resources", "restartPolicy"] {
                        if let Some(v) = c.get(k) {
                            out.insert(k.into(), v.clone());
                        }
                    }
                    Value::Object(out)
                })
                .collect(),
        ))
    };
    let mut spec = Map::new();
    for key in ["containers", "initContainers"] {
        if let Some(v) = containers(key) {
            spec.insert(key.into(), v);
        }
    }
    for key in ["overhead", "nodeSelector", "affinity", "tolerations"] {
        if let Some(v) = pod["spec"].get(key) {
            spec.insert(key.into(), v.clone());
        }
    }
    json!({"metadata": metadata, "spec": spec})
}

fn node_name(node: &Value) -> &str {
    node.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn host_of(node: &Value) -> Option<&str> {
    node.pointer("/metadata/labels")
        .and_then(|l| l.get(PEER_ID_LABEL))
        .and_then(Value::as_str)
}

fn is_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn pod_uid(pod: &Value) -> &str {
    pod.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Some Nodes and the pods bound to them, indexed once, updated as a round awards: what a
/// bidder evaluates its own Nodes with, and what the home checks bids and falls back with.
struct NodeBook {
    nodes: Vec<Value>,
    names: Vec<String>,
    states: Vec<fit::NodeState>,
    up: Vec<String>,
    index: HashMap<String, usize>,
    /// Active pods bound to each node (for required anti-affinity).
    bound: Vec<Vec<Value>>,
    any_anti_affinity: bool,
    /// Active pods per (node, controller uid).
    owned: HashMap<(usize, String), i64>,
    /// Nodes awarded a pod in this round (their bids predate it).
    touched: Vec<bool>,
}

impl NodeBook {
    fn new(nodes: Vec<Value>, pods: &[Value]) -> Self {
        let names: Vec<String> = nodes.iter().map(|n| node_name(n).to_string()).collect();
        let index: HashMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let mut bound: Vec<Vec<Value>> = vec![Vec::new(); nodes.len()];
        let mut owned: HashMap<(usize, String), i64> = HashMap::new();
        for p in pods {
            if let Some(&i) = p
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .and_then(|n| index.get(n))
                && fit::is_active(p)
            {
                if let Some(owner) = controller_uid(p) {
                    *owned.entry((i, owner.to_string())).or_default() += 1;
                }
                bound[i].push(p.clone());
            }
        }
        let states: Vec<fit::NodeState> = nodes
            .iter()
            .zip(&bound)
            .map(|(n, b)| fit::NodeState::new(n, &b.iter().collect::<Vec<_>>()))
            .collect();
        NodeBook {
            any_anti_affinity: states.iter().any(|s| s.anti_affinity),
            up: nodes.iter().map(up_since).collect(),
            touched: vec![false; nodes.len()],
            nodes,
            names,
            states,
            index,
            bound,
            owned,
        }
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Every node with its pods, when anti-affinity can matter for `pod`.
    fn cluster(&self, pod: &Value) -> Option<Vec<Candidate<'_>>> {
        (self.any_anti_affinity || fit::has_anti_affinity(pod)).then(|| {
            self.nodes
                .iter()
                .zip(&self.bound)
                .map(|(node, pods)| Candidate {
                    node,
                    pods: pods.iter().collect(),
                })
                .collect()
        })
    }

    /// Node `i`'s answer for `pod` (`want` is its requests).
    fn answer(
        &self,
        i: usize,
        pod: &Value,
        want: &std::collections::BTreeMap<String, i128>,
        cluster: Option<&[Candidate]>,
    ) -> NodeAnswer {
        let state = &self.states[i];
        let why = fit::unfit_with(pod, want, &self.nodes[i], state, cluster);
        if why.is_empty() {
            NodeAnswer::Bid {
                node: self.names[i].clone(),
                score: fit::score_with(want, state),
                up_since: self.up[i].clone(),
                siblings: controller_uid(pod).map_or(0, |o| {
                    self.owned.get(&(i, o.to_string())).copied().unwrap_or(0)
                }),
            }
        } else {
            NodeAnswer::Unfit {
                node: self.names[i].clone(),
                reasons: why
                    .into_iter()
                    .map(|r| WireReason {
                        text: r.text,
                        resolvable: r.resolvable,
                    })
                    .collect(),
            }
        }
    }

    /// Every node's answer for `pod`.
    fn answers(&self, pod: &Value) -> Vec<NodeAnswer> {
        let want = fit::pod_requests(pod);
        let cluster = self.cluster(pod);
        (0..self.len())
            .map(|i| self.answer(i, pod, &want, cluster.as_deref()))
            .collect()
    }

    fn awarded(&mut self, pod: &Value, node: &str) {
        let Some(&i) = self.index.get(node) else {
            return;
        };
        if let Some(owner) = controller_uid(pod) {
            *self.owned.entry((i, owner.to_string())).or_default() += 1;
        }
        let mut bound = pod.clone();
        bound["spec"]["nodeName"] = json!(node);
        self.states[i].add(&bound);
        self.any_anti_affinity |= fit::has_anti_affinity(&bound);
        self.bound[i].push(bound);
        self.touched[i] = true;
    }
}

/// The tender's outcome from every node's answer: the bids with the spread term added, or
/// kube-scheduler's message when none fits.
pub fn settle(answers: Vec<NodeAnswer>) -> Tender {
    let total = answers.len();
    let mut bids = Vec::new();
    let mut siblings = Vec::new();
    let mut reasons = Vec::new();
    for answer in answers {
        match answer {
            NodeAnswer::Bid {
                node,
                score,
                up_since,
                siblings: s,
            } => {
                bids.push(super::Bid {
                    node,
                    score,
                    up_since,
                });
                siblings.push(s);
            }
            NodeAnswer::Unfit { reasons: r, .. } => reasons.push(
                r.into_iter()
                    .map(|w| Reason {
                        text: w.text,
                        resolvable: w.resolvable,
                    })
                    .collect::<Vec<_>>(),
            ),
        }
    }
    for (bid, spread) in bids.iter_mut().zip(spread_scores(&siblings)) {
        bid.score += SPREAD_WEIGHT * spread;
    }
    if bids.is_empty() {
        Tender::NoFit(fit::failed_scheduling_message(total, &reasons))
    } else {
        Tender::Bids(bids)
    }
}

/// Answers a tender batch for `hosted` Nodes, given every pod of the bidder's replica.
pub fn bid(batch: &TenderBatch, hosted: Vec<Value>, pods: &[Value]) -> BidBatch {
    let book = NodeBook::new(hosted, pods);
    BidBatch {
        tender: batch.id.clone(),
        pods: batch
            .pods
            .iter()
            .map(|pod| PodAnswers {
                uid: pod_uid(pod).to_string(),
                nodes: book.answers(pod),
            })
            .collect(),
    }
}

type Waiters = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<(String, BidBatch)>>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The mesh's bids: tenders published by the home, bids from every process for the Nodes
/// it hosts, the replica for the rest.
pub struct MeshBids {
    service: ObjectService,
    transport: Arc<dyn TenderTransport>,
    stats: Arc<PlacementStats>,
    window: Duration,
    waiters: Waiters,
    next: Arc<AtomicU64>,
    replicated: ReplicatedBids,
}

impl MeshBids {
    /// Starts answering tenders (`tenders`) for the Nodes this process hosts and routing
    /// bids (`bids`) to the rounds that wait for them, at most `window` each
    /// ([`DEFAULT_WINDOW`]).
    pub fn start(
        service: ObjectService,
        transport: Arc<dyn TenderTransport>,
        (tenders, bids): (Inbound, Inbound),
        stats: Arc<PlacementStats>,
        window: Duration,
    ) -> Arc<MeshBids> {
        let mesh = Arc::new(MeshBids {
            replicated: ReplicatedBids::new(service.clone()),
            service,
            transport,
            stats,
            window,
            waiters: Arc::default(),
            // Tender ids must not repeat after a restart either: gossipsub drops a message
            // whose content it saw recently, and the same pods would make the same batch.
            next: Arc::new(AtomicU64::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
            )),
        });
        tokio::spawn(route_bids(mesh.waiters.clone(), bids));
        tokio::spawn(serve_tenders(
            mesh.service.clone(),
            mesh.transport.clone(),
            mesh.stats.clone(),
            tenders,
        ));
        mesh
    }

    fn list(&self, plural: &str) -> Result<Vec<Value>, ApiError> {
        let res: Arc<ResourceInfo> = self.service.registry.served("", "v1", plural)?;
        let page = self.service.store.list(&res, &ListRequest::latest(None))?;
        page.items.iter().map(|i| parse_stored(i)).collect()
    }
}

impl BidSource for MeshBids {
    fn round(&self) -> Result<Box<dyn Round>, ApiError> {
        let live: HashSet<String> = self.transport.live_peers().into_iter().collect();
        if live.is_empty() {
            // Alone (or 1,000 simulated Nodes in one process): nothing to ask or to parse.
            return self.replicated.round();
        }
        let nodes = self.list("nodes")?;
        let local = self.transport.local_peer();
        // Other processes hosting Ready Nodes: the bidders worth waiting for.
        let mut hosts: HashSet<String> = HashSet::new();
        let mut gone: HashSet<String> = HashSet::new();
        for node in nodes.iter().filter(|n| is_ready(n)) {
            match host_of(node) {
                Some(h) if h == local => {}
                Some(h) if live.contains(h) => {
                    hosts.insert(h.to_string());
                }
                Some(h) => {
                    gone.insert(h.to_string());
                }
                None => {}
            }
        }
        if hosts.is_empty() && gone.is_empty() {
            // Nobody else to ask: exactly the replicated round, no waiting at all.
            return self.replicated.round();
        }
        // A Node whose host left the mesh cannot run what it would win (its agent is gone
        // with it): it stays out until the host is back, rather than winning pods until
        // the lifecycle controller marks it NotReady.
        let nodes: Vec<Value> = nodes
            .into_iter()
            .filter(|n| host_of(n).is_none_or(|h| !gone.contains(h)))
            .collect();
        let pods = self.list("pods")?;
        Ok(Box::new(MeshRound {
            book: NodeBook::new(nodes, &pods),
            transport: self.transport.clone(),
            stats: self.stats.clone(),
            window: self.window,
            waiters: self.waiters.clone(),
            next: self.next.clone(),
            local,
            hosts,
            gone,
            answers: HashMap::new(),
        }))
    }
}

/// One pass's tenders on the mesh.
struct MeshRound {
    book: NodeBook,
    transport: Arc<dyn TenderTransport>,
    stats: Arc<PlacementStats>,
    window: Duration,
    waiters: Waiters,
    next: Arc<AtomicU64>,
    local: String,
    /// Live members hosting Ready Nodes.
    hosts: HashSet<String>,
    /// Hosts of Ready Nodes that are no members now (their Nodes are left out).
    gone: HashSet<String>,
    /// The bids of the last batch: pod uid → node → answer.
    answers: HashMap<String, HashMap<String, NodeAnswer>>,
}

impl MeshRound {
    /// Publishes the tenders and waits for the hosts' bids (at most the window).
    async fn gather(&mut self, pods: &[Value]) {
        self.answers.clear();
        let id = format!(
            "{}-{}",
            self.local,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let batch = TenderBatch {
            id: id.clone(),
            pods: pods.iter().map(tender_pod).collect(),
        };
        let payload = match serde_json::to_vec(&batch) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "encoding a tender batch failed; placing from the replica");
                return;
            }
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        lock(&self.waiters).insert(id.clone(), tx);
        let published = self.transport.publish_tender(payload).await;
        let mut answered: HashSet<String> = HashSet::new();
        match published {
            Err(e) => {
                tracing::warn!(tender = %id, error = %e, "publishing a tender failed; placing from the replica")
            }
            Ok(()) => {
                bump(&self.stats.tenders_sent, pods.len() as u64);
                tracing::debug!(tender = %id, pods = pods.len(), hosts = self.hosts.len(), "tender published");
                let started = tokio::time::Instant::now();
                let deadline = started + self.window;
                while answered.len() < self.hosts.len() {
                    let Ok(Some((peer, bids))) = tokio::time::timeout_at(deadline, rx.recv()).await
                    else {
                        break;
                    };
                    if self.hosts.contains(&peer) && answered.insert(peer.clone()) {
                        self.take(&peer, bids);
                    }
                }
                tracing::debug!(tender = %id, pods = pods.len(), hosts = self.hosts.len(),
                    answered = answered.len(), waited = ?started.elapsed(), "tender closed");
            }
        }
        lock(&self.waiters).remove(&id);
        for host in self.hosts.iter().filter(|h| !answered.contains(*h)) {
            bump(&self.stats.fallbacks, 1);
            tracing::info!(tender = %id, peer = %host, window = ?self.window,
                "no bids from a member hosting Ready Nodes; its Nodes are evaluated from the replica");
        }
        for host in &self.gone {
            tracing::debug!(tender = %id, peer = %host,
                "a host of Ready Nodes is no member; its Nodes take no pods");
        }
    }

    /// Keeps a host's answers for the Nodes it hosts (a bid for another's Node is ignored).
    fn take(&mut self, peer: &str, bids: BidBatch) {
        let mut count = 0u64;
        for pod in bids.pods {
            for answer in pod.nodes {
                let hosted = self
                    .book
                    .index
                    .get(answer.node())
                    .is_some_and(|&i| host_of(&self.book.nodes[i]) == Some(peer));
                if !hosted {
                    continue;
                }
                if matches!(answer, NodeAnswer::Bid { .. }) {
                    count += 1;
                }
                self.answers
                    .entry(pod.uid.clone())
                    .or_default()
                    .insert(answer.node().to_string(), answer);
            }
        }
        bump(&self.stats.bids_received, count);
        tracing::debug!(peer, bids = count, "bids received");
    }
}

impl Round for MeshRound {
    fn prepare<'a>(&'a mut self, pods: &'a [Value]) -> BoxFuture<'a, ()> {
        Box::pin(self.gather(pods))
    }

    fn tender(&mut self, pod: &Value) -> Tender {
        combine(&self.book, pod, self.answers.get(pod_uid(pod)), &self.stats)
    }

    fn awarded(&mut self, pod: &Value, node: &str) {
        self.book.awarded(pod, node);
    }
}

/// The tender of `pod` from the hosts' answers (`remote`: node → answer) and the home's
/// book: a declining node stays out; a bid must pass the award's check on the home's
/// replica plus the round's awards (and a node awarded in this round is scored by the
/// home); a node without an answer (its host is this process, or did not answer) is
/// evaluated from the book.
fn combine(
    book: &NodeBook,
    pod: &Value,
    remote: Option<&HashMap<String, NodeAnswer>>,
    stats: &PlacementStats,
) -> Tender {
    let want = fit::pod_requests(pod);
    let cluster = book.cluster(pod);
    let mut out = Vec::with_capacity(book.len());
    for i in 0..book.len() {
        let answer = match remote.and_then(|r| r.get(&book.names[i])) {
            Some(declined @ NodeAnswer::Unfit { .. }) => declined.clone(),
            Some(bid @ NodeAnswer::Bid { .. }) => {
                let check = book.answer(i, pod, &want, cluster.as_deref());
                match check {
                    NodeAnswer::Unfit { .. } => {
                        bump(&stats.stale_bids, 1);
                        check
                    }
                    NodeAnswer::Bid { .. } if book.touched[i] => check,
                    NodeAnswer::Bid { .. } => bid.clone(),
                }
            }
            None => book.answer(i, pod, &want, cluster.as_deref()),
        };
        out.push(answer);
    }
    settle(out)
}

/// Hands each bid batch to the round waiting for its tender (late ones are dropped).
async fn route_bids(waiters: Waiters, mut bids: Inbound) {
    while let Some((peer, payload)) = bids.recv().await {
        let batch: BidBatch = match serde_json::from_slice(&payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "a bid batch that does not decode is dropped");
                continue;
            }
        };
        let waiter = lock(&waiters).get(&batch.tender).cloned();
        match waiter {
            Some(tx) => {
                let _ = tx.send((peer, batch));
            }
            None => {
                tracing::debug!(%peer, tender = %batch.tender, "bids after the window are dropped")
            }
        }
    }
}

/// Answers every tender for the Nodes this process hosts.
async fn serve_tenders(
    service: ObjectService,
    transport: Arc<dyn TenderTransport>,
    stats: Arc<PlacementStats>,
    mut tenders: Inbound,
) {
    let local = transport.local_peer();
    while let Some((home, payload)) = tenders.recv().await {
        let batch: TenderBatch = match serde_json::from_slice(&payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(%home, error = %e, "a tender batch that does not decode is dropped");
                continue;
            }
        };
        // Listing and fitting is CPU work: off the async workers.
        let (svc, me) = (service.clone(), local.clone());
        let answer = match tokio::task::spawn_blocking(move || local_bids(&svc, &me, &batch)).await
        {
            Ok(Ok(Some(a))) => a,
            Ok(Ok(None)) => continue,
            Ok(Err(e)) => {
                tracing::warn!(%home, error = %e, "answering a tender failed");
                continue;
            }
            Err(e) => {
                tracing::warn!(%home, error = %e, "answering a tender panicked");
                continue;
            }
        };
        let count = answer
            .pods
            .iter()
            .flat_map(|p| &p.nodes)
            .filter(|a| matches!(a, NodeAnswer::Bid { .. }))
            .count() as u64;
        let payload = match serde_json::to_vec(&answer) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "encoding bids failed");
                continue;
            }
        };
        let send = transport.send_bids(&home, payload);
        let stats = stats.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(SEND_TIMEOUT, send).await {
                Ok(Ok(())) => {
                    bump(&stats.bids_sent, count);
                    tracing::debug!(%home, tender = %answer.tender, bids = count, "bids sent");
                }
                Ok(Err(e)) => tracing::debug!(%home, error = %e, "sending bids failed"),
                Err(_) => tracing::debug!(%home, "sending bids timed out"),
            }
        });
    }
}

/// This process's answers to `batch`, or `None` when it hosts no Node.
fn local_bids(
    service: &ObjectService,
    local: &str,
    batch: &TenderBatch,
) -> Result<Option<BidBatch>, ApiError> {
    let list = |plural: &str| -> Result<Vec<Value>, ApiError> {
        let res = service.registry.served("", "v1", plural)?;
        let page = service.store.list(&res, &ListRequest::latest(None))?;
        page.items.iter().map(|i| parse_stored(i)).collect()
    };
    let hosted: Vec<Value> = list("nodes")?
        .into_iter()
        .filter(|n| host_of(n) == Some(local))
        .collect();
    if hosted.is_empty() {
        return Ok(None);
    }
    let pods = list("pods")?;
    Ok(Some(bid(batch, hosted, &pods)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::award;

    fn node(name: &str, host: &str, cpu: &str, ready_since: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                     PEER_ID_LABEL: host}},
               "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
                          "conditions": [{"type": "Ready", "status": "True",
                                          "lastTransitionTime": ready_since}]}})
    }

    fn pod(name: &str, cpu: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "d", "uid": format!("uid-{name}"),
                            "labels": {"app": "web"},
                            "annotations": {"big": "x".repeat(1000)}},
               "spec": {"containers": [{"name": "c", "image": "nginx", "env": [{"name": "A"}],
                                        "resources": {"requests": {"cpu": cpu}}}],
                        "volumes": [{"name": "v"}]},
               "status": {"phase": "Pending"}})
    }

    #[test]
    fn a_tender_carries_what_fit_reads_and_round_trips() {
        let mut full = pod("p", "1");
        full["spec"]["nodeSelector"] = json!({"disk": "ssd"});
        let trimmed = tender_pod(&full);
        assert_eq!(
            trimmed,
            json!({"metadata": {"name": "p", "namespace": "d", "uid": "uid-p",
                                "labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "c",
                                            "resources": {"requests": {"cpu": "1"}}}],
                            "nodeSelector": {"disk": "ssd"}}})
        );
        let batch = TenderBatch {
            id: "home-1".into(),
            pods: vec![trimmed],
        };
        let bytes = serde_json::to_vec(&batch).unwrap();
        assert_eq!(
            serde_json::from_slice::<TenderBatch>(&bytes).unwrap(),
            batch
        );
        let bids = BidBatch {
            tender: "home-1".into(),
            pods: vec![PodAnswers {
                uid: "uid-p".into(),
                nodes: vec![
                    NodeAnswer::Bid {
                        node: "a".into(),
                        score: 80,
                        up_since: "2026-01-01T00:00:00Z".into(),
                        siblings: 2,
                    },
                    NodeAnswer::Unfit {
                        node: "b".into(),
                        reasons: vec![WireReason {
                            text: "Insufficient cpu".into(),
                            resolvable: true,
                        }],
                    },
                ],
            }],
        };
        let text = serde_json::to_string(&bids).unwrap();
        assert!(text.contains(r#""answer":"bid""#), "{text}");
        assert!(text.contains(r#""upSince""#), "{text}");
        assert_eq!(serde_json::from_str::<BidBatch>(&text).unwrap(), bids);
    }

    #[test]
    fn a_bidder_answers_for_its_own_nodes_only_what_fit_says() {
        let batch = TenderBatch {
            id: "t".into(),
            pods: vec![tender_pod(&json!({"metadata": {"name": "p", "uid": "u"},
                "spec": {"containers": [{"resources": {"requests": {"cpu": "2"}}}]}}))],
        };
        let hosted = vec![node("big", "me", "4", "t"), node("small", "me", "1", "t")];
        let answer = bid(&batch, hosted, &[]);
        assert_eq!(answer.tender, "t");
        let nodes = &answer.pods[0].nodes;
        assert!(matches!(&nodes[0], NodeAnswer::Bid { node, .. } if node == "big"));
        assert!(matches!(&nodes[1], NodeAnswer::Unfit { node, reasons }
                if node == "small" && reasons[0].text == "Insufficient cpu"));
    }

    #[test]
    fn nodes_whose_host_did_not_answer_are_evaluated_from_the_replica() {
        // "far" is hosted by a member that never answered: its node still gets a bid.
        let book = NodeBook::new(
            vec![
                node("near", "me", "2", "t1"),
                node("far", "gone", "8", "t0"),
            ],
            &[],
        );
        let stats = PlacementStats::default();
        let p = pod("p", "1");
        let Tender::Bids(bids) = combine(&book, &p, None, &stats) else {
            panic!("both nodes fit");
        };
        assert_eq!(bids.len(), 2);
        assert_eq!(award(&bids).unwrap().node, "far", "the emptier node wins");
    }

    #[test]
    fn a_remote_bid_ranks_a_declining_node_stays_out_and_a_stale_bid_loses() {
        let mut book = NodeBook::new(
            vec![node("a", "p1", "4", "t"), node("b", "p2", "4", "t")],
            &[],
        );
        let stats = PlacementStats::default();
        let p = pod("p", "1");
        let bid = |node: &str, score| NodeAnswer::Bid {
            node: node.into(),
            score,
            up_since: "t".into(),
            siblings: 0,
        };
        // The bidder's own score ranks (it may know more than the replica).
        let remote: HashMap<String, NodeAnswer> =
            [("a".into(), bid("a", 10)), ("b".into(), bid("b", 90))].into();
        let Tender::Bids(bids) = combine(&book, &p, Some(&remote), &stats) else {
            panic!("both bid");
        };
        assert_eq!(award(&bids).unwrap().node, "b");
        // A node that declines is not placed on, although the home's replica finds room.
        let declined: HashMap<String, NodeAnswer> = [
            ("a".into(), bid("a", 10)),
            (
                "b".into(),
                NodeAnswer::Unfit {
                    node: "b".into(),
                    reasons: vec![WireReason {
                        text: "Insufficient memory".into(),
                        resolvable: true,
                    }],
                },
            ),
        ]
        .into();
        let Tender::Bids(bids) = combine(&book, &p, Some(&declined), &stats) else {
            panic!("a bids");
        };
        assert_eq!(
            bids.iter().map(|b| b.node.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        // Capacity taken in this round: b's bid (made before) loses at the award's check.
        book.awarded(&pod("q", "4"), "b");
        let Tender::Bids(bids) = combine(&book, &p, Some(&remote), &stats) else {
            panic!("a still fits");
        };
        assert_eq!(award(&bids).unwrap().node, "a");
        assert_eq!(PlacementStats::get(&stats.stale_bids), 1);
    }

    #[test]
    fn when_nothing_fits_the_message_counts_every_nodes_reasons() {
        let book = NodeBook::new(vec![node("a", "me", "1", "t")], &[]);
        let remote: HashMap<String, NodeAnswer> = HashMap::new();
        let stats = PlacementStats::default();
        let mut answers = match combine(&book, &pod("p", "2"), Some(&remote), &stats) {
            Tender::NoFit(m) => vec![m],
            other => panic!("{other:?}"),
        };
        answers.push(
            match settle(vec![NodeAnswer::Unfit {
                node: "x".into(),
                reasons: vec![WireReason {
                    text: "node(s) didn't match Pod's node affinity/selector".into(),
                    resolvable: false,
                }],
            }]) {
                Tender::NoFit(m) => m,
                other => panic!("{other:?}"),
            },
        );
        assert!(
            answers[0].starts_with("0/1 nodes are available: 1 Insufficient cpu."),
            "{}",
            answers[0]
        );
        assert!(
            answers[1].contains("Preemption is not helpful"),
            "{}",
            answers[1]
        );
    }
}
