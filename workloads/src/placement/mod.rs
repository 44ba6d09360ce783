//! Placement: the home node of an unbound pod awards it to a node (no scheduler process;
//! DESIGN "Placement"). The award is a compare-and-set of `spec.nodeName` through the
//! binding semantics (`beemesh_translator::binding`), so a pod is bound at most once even
//! when two nodes both think they are its home during churn.
//!
//! Where bids come from is behind [`BidSource`]. The node binary uses
//! [`mesh_bids::MeshBids`]: the home tenders on the mesh and the processes hosting the Nodes
//! bid. [`ReplicatedBids`] evaluates every Node from the replica (every Node and bound pod is
//! replicated to every node): what `MeshBids` falls back to for hosts that do not answer,
//! and all it is when no other member hosts a Node (docs/adr/0009-placement.md).

pub mod fit;
pub mod mesh_bids;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beemesh_translator::binding;
use beemesh_translator::service::{ObjectService, Part, WriteOptions};
use beemesh_translator::store::parse_stored;
use beemesh_translator::{ApiError, ResourceInfo};
use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use serde_json::{Value, json};

use bytes::Bytes;

use crate::change_wait::wait_for_change;
use crate::controller_support::ParsedCache;
use crate::node_registration::{Involved, record_event};
use fit::Candidate;

/// The schedulers whose pods BeeMesh places (`spec.schedulerName`).
const DEFAULT_SCHEDULER: &str = "default-scheduler";
const BEEMESH_SCHEDULER: &str = "beemesh";
/// Upstream's pod backoff: 1 s doubling to 10 s for a pod that fits nowhere.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Longest sleep without a change.
const IDLE: Duration = Duration::from_secs(10);

/// One node's offer for a pod: its score (higher wins) and how long it has been up
/// (longer-lived wins ties, as DESIGN says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bid {
    pub node: String,
    pub score: i64,
    /// RFC 3339 time since which the node has been Ready (or its creation time).
    pub up_since: String,
}

/// What a tender for one pod gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tender {
    /// Nodes that can run the pod.
    Bids(Vec<Bid>),
    /// Nothing fits: kube-scheduler's FailedScheduling message.
    NoFit(String),
}

/// Where the bids for pods come from. A pass opens one round and tenders its pods in it,
/// so a source can gather its view of the mesh once per pass, not once per pod.
pub trait BidSource: Send + Sync {
    fn round(&self) -> Result<Box<dyn Round>, ApiError>;
}

/// One pass's tenders.
pub trait Round: Send {
    /// Gathers what the tenders of `pods` need, before they are tendered one by one (the
    /// mesh's bids: [`mesh_bids`]). A source that holds everything already gathers nothing.
    fn prepare<'a>(&'a mut self, _pods: &'a [Value]) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// The bids for `pod`, or why no node can take it.
    fn tender(&mut self, pod: &Value) -> Tender;
    /// `pod` was bound to `node`: later tenders in this round count it there.
    fn awarded(&mut self, pod: &Value, node: &str);
}

/// The best bid: highest score, then longest up, then name (deterministic).
pub fn award(bids: &[Bid]) -> Option<&Bid> {
    bids.iter().max_by(|a, b| {
        a.score
            .cmp(&b.score)
            .then_with(|| b.up_since.cmp(&a.up_since))
            .then_with(|| b.node.cmp(&a.node))
    })
}

/// Bids computed from this node's replica of every Node and pod.
pub struct ReplicatedBids {
    service: ObjectService,
    /// What rounds need of each pod and Node, derived once per stored version: a round
    /// re-reads only what changed since the last one instead of parsing 30,000 pods and
    /// 1,000 Nodes per pass.
    pods: Mutex<ParsedCache<PodFacts>>,
    nodes: Mutex<ParsedCache<NodeFacts>>,
}

impl ReplicatedBids {
    pub fn new(service: ObjectService) -> Self {
        ReplicatedBids {
            service,
            pods: Mutex::default(),
            nodes: Mutex::default(),
        }
    }
}

pub(crate) fn up_since(node: &Value) -> String {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .and_then(|c| c["lastTransitionTime"].as_str())
        .or_else(|| {
            node.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
        })
        .unwrap_or("")
        .to_string()
}

/// Evaluates every node for `pod` (pure: the nodes and all pods are given).
pub fn evaluate(pod: &Value, nodes: &[Value], pods: &[Value]) -> Tender {
    ReplicatedRound::new(nodes.to_vec(), pods.to_vec()).tender(pod)
}

impl BidSource for ReplicatedBids {
    fn round(&self) -> Result<Box<dyn Round>, ApiError> {
        let nodes = self.service.registry.served("", "v1", "nodes")?;
        let pods = self.service.registry.served("", "v1", "pods")?;
        // A cache left half-refreshed by a panic only costs parses.
        let nodes = self
            .nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refresh(&self.service, &nodes, |b| {
                NodeFacts::new(beemesh_translator::store::parse_stored(b)?)
            })?;
        let pods = self
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refresh(&self.service, &pods, |b| PodFacts::from_stored(b.clone()))?;
        Ok(Box::new(ReplicatedRound::from_facts(nodes, &pods)))
    }
}

/// What a round needs of one stored pod.
pub(crate) struct PodFacts {
    /// `spec.nodeName`, when bound.
    node: Option<String>,
    /// Not Succeeded or Failed: it holds its node's resources.
    active: bool,
    owner: Option<String>,
    requests: BTreeMap<String, i128>,
    anti_affinity: bool,
    /// The stored pod, parsed again only when a round checks anti-affinity.
    raw: Bytes,
}

impl PodFacts {
    fn from_stored(raw: Bytes) -> Result<Self, ApiError> {
        let pod = beemesh_translator::store::parse_stored(&raw)?;
        Ok(PodFacts {
            node: pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            active: fit::is_active(&pod),
            owner: controller_uid(&pod).map(str::to_string),
            requests: fit::pod_requests(&pod),
            anti_affinity: fit::has_anti_affinity(&pod),
            raw,
        })
    }

    fn from_value(pod: &Value) -> Result<Self, ApiError> {
        let raw = serde_json::to_vec(pod).map_err(|e| ApiError::internal(e.to_string()))?;
        PodFacts::from_stored(Bytes::from(raw))
    }
}

/// What a round needs of one Node, worked out once per stored version of it.
pub(crate) struct NodeFacts {
    node: Value,
    name: String,
    up_since: String,
    unschedulable: bool,
    /// Its NoSchedule and NoExecute taints (the others never keep a pod off).
    taints: Vec<Value>,
    /// Allocatable and readiness, with no pods counted.
    empty: fit::NodeState,
}

impl NodeFacts {
    fn new(node: Value) -> Result<Self, ApiError> {
        let taints = node
            .pointer("/spec/taints")
            .and_then(Value::as_array)
            .map(|ts| {
                ts.iter()
                    .filter(|t| matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute")))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(NodeFacts {
            name: fit_name(&node).to_string(),
            up_since: up_since(&node),
            unschedulable: node.pointer("/spec/unschedulable").and_then(Value::as_bool)
                == Some(true),
            taints,
            empty: fit::NodeState::new(&node, &[]),
            node,
        })
    }
}

/// A node's room in the few numbers the common fit check reads (kept from its
/// [`fit::NodeState`]): pods allowed, cpu/memory/ephemeral-storage allocatable and requested.
#[derive(Debug, Clone, Copy, Default)]
struct Room {
    pods: Option<i128>,
    active: i128,
    cap: [i128; 3],
    used: [i128; 3],
    nonzero: (i128, i128),
}

const ROOM_RESOURCES: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];

impl Room {
    fn of(state: &fit::NodeState) -> Self {
        let get = |m: &BTreeMap<String, i128>, k: &str| m.get(k).copied().unwrap_or(0);
        Room {
            pods: state.allocatable.get("pods").copied(),
            active: i128::try_from(state.active).unwrap_or(i128::MAX),
            cap: ROOM_RESOURCES.map(|k| get(&state.allocatable, k)),
            used: ROOM_RESOURCES.map(|k| get(&state.requested, k)),
            nonzero: state.nonzero,
        }
    }
}

/// What a tender needs of the pod, worked out once rather than once per node.
struct Need<'a> {
    tolerations: &'a [Value],
    tolerates_unschedulable: bool,
    tolerates_not_ready: bool,
    /// The pod has a nodeSelector or required node affinity.
    selects: bool,
    /// cpu, memory, ephemeral-storage.
    want: [i128; 3],
    nonzero: (i128, i128),
    /// Extended resources (hugepages, vendor/...) requested: the full check runs.
    extended: bool,
}

/// Every Node and pod as this replica held them when the round began, plus the round's
/// own awards, indexed once: each node's allocatable and the requests of the pods bound to
/// it are summed when the round opens and kept up to date as it awards, so a tender costs
/// one cheap check per node instead of a pass over every pod per node.
struct ReplicatedRound {
    nodes: Vec<Arc<NodeFacts>>,
    states: Vec<fit::NodeState>,
    rooms: Vec<Room>,
    index: HashMap<String, usize>,
    /// The active pods bound to each node when the round opened, and those it awarded
    /// (for required anti-affinity only, parsed when first needed).
    bound: Vec<Vec<Bytes>>,
    awarded: Vec<Vec<Value>>,
    parsed: Option<Vec<Vec<Value>>>,
    /// Whether any bound pod has required anti-affinity terms.
    any_anti_affinity: bool,
    /// Active pods per controller uid and node: the spread term of the score.
    owned: HashMap<String, HashMap<usize, i64>>,
}

impl ReplicatedRound {
    fn new(nodes: Vec<Value>, pods: Vec<Value>) -> Self {
        let nodes = nodes
            .into_iter()
            .filter_map(|n| NodeFacts::new(n).ok().map(Arc::new))
            .collect();
        let pods: Vec<Arc<PodFacts>> = pods
            .iter()
            .filter_map(|p| PodFacts::from_value(p).ok().map(Arc::new))
            .collect();
        ReplicatedRound::from_facts(nodes, &pods)
    }

    fn from_facts(nodes: Vec<Arc<NodeFacts>>, pods: &[Arc<PodFacts>]) -> Self {
        let index: HashMap<String, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let mut states: Vec<fit::NodeState> = nodes.iter().map(|n| n.empty.clone()).collect();
        let mut bound: Vec<Vec<Bytes>> = vec![Vec::new(); nodes.len()];
        let mut owned: HashMap<String, HashMap<usize, i64>> = HashMap::new();
        for p in pods {
            if let Some(&i) = p.node.as_ref().and_then(|n| index.get(n))
                && p.active
            {
                if let Some(owner) = &p.owner {
                    *owned
                        .entry(owner.clone())
                        .or_default()
                        .entry(i)
                        .or_default() += 1;
                }
                states[i].add_requests(&p.requests, p.anti_affinity);
                bound[i].push(p.raw.clone());
            }
        }
        let any_anti_affinity = states.iter().any(|s| s.anti_affinity);
        ReplicatedRound {
            rooms: states.iter().map(Room::of).collect(),
            awarded: vec![Vec::new(); nodes.len()],
            nodes,
            states,
            index,
            bound,
            parsed: None,
            any_anti_affinity,
            owned,
        }
    }

    /// Parses the pods bound when the round opened, once, for anti-affinity.
    fn parse_bound(&mut self) {
        if self.parsed.is_none() {
            self.parsed = Some(
                self.bound
                    .iter()
                    .map(|raws| {
                        raws.iter()
                            .filter_map(|r| beemesh_translator::store::parse_stored(r).ok())
                            .collect()
                    })
                    .collect(),
            );
        }
    }

    /// Every node with its bound pods (after [`Self::parse_bound`]).
    fn cluster(&self) -> Vec<Candidate<'_>> {
        let parsed = self.parsed.as_deref().unwrap_or_default();
        self.nodes
            .iter()
            .zip(parsed.iter().zip(&self.awarded))
            .map(|(n, (bound, awarded))| Candidate {
                node: &n.node,
                pods: bound.iter().chain(awarded).collect(),
            })
            .collect()
    }

    /// The common case of [`fit::unfit_with`] without anti-affinity or extended
    /// resources, from precomputed facts: true when the node certainly fits. A node that
    /// does not is checked again by `unfit_with` for kube-scheduler's reasons.
    fn fits(&self, pod: &Value, need: &Need, i: usize) -> bool {
        let facts = &self.nodes[i];
        if facts.unschedulable && !need.tolerates_unschedulable {
            return false;
        }
        if facts
            .taints
            .iter()
            .any(|t| !need.tolerations.iter().any(|tol| fit::tolerates(tol, t)))
        {
            return false;
        }
        if !self.states[i].ready && !need.tolerates_not_ready {
            return false;
        }
        if need.selects && !fit::matches_node_selector(pod, &facts.node) {
            return false;
        }
        let room = &self.rooms[i];
        if room.pods.is_some_and(|max| (room.active + 1) * 1000 > max) {
            return false;
        }
        (0..3).all(|k| need.want[k] == 0 || need.want[k] <= room.cap[k] - room.used[k])
    }
}

/// The uid of the pod's controlling owner (its ReplicaSet, Job, ...), if any.
pub(crate) fn controller_uid(pod: &Value) -> Option<&str> {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
}

/// Weight of the spread term against LeastAllocated (upstream's default profile weighs
/// PodTopologySpread 2 and NodeResourcesFit 1).
pub(crate) const SPREAD_WEIGHT: i64 = 2;

/// The spread term (0–100) of each bidding node: upstream's default topology spread
/// (`kubernetes.io/hostname`, ScheduleAnyway) scores a node by how few of the pod's
/// siblings — pods of the same controller — it already runs, normalised so the node with
/// the most gets 0 and nodes with none get 100.
pub(crate) fn spread_scores(counts: &[i64]) -> Vec<i64> {
    let most = counts.iter().copied().max().unwrap_or(0);
    counts
        .iter()
        .map(|&c| {
            if most == 0 {
                100
            } else {
                (most - c) * 100 / most
            }
        })
        .collect()
}

/// The key whose home places `pod`: its controller's (so one node places every pod of a
/// ReplicaSet or Job in one round and the spread term sees them all, instead of several
/// homes racing on the same emptiest node), else the pod's own name.
pub fn placement_key(pod: &Value) -> String {
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    match controller_uid(pod) {
        Some(uid) => format!("owner-{uid}"),
        None => name.to_string(),
    }
}

fn fit_name(node: &Value) -> &str {
    node.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl Round for ReplicatedRound {
    /// Only the winning bid is returned: this round holds every node's bid, and
    /// materialising 1,000 of them per pod cost more than deciding among them.
    fn tender(&mut self, pod: &Value) -> Tender {
        let want = fit::pod_requests(pod);
        // Anti-affinity needs every node's pods; without any terms it cannot reject.
        let anti = self.any_anti_affinity || fit::has_anti_affinity(pod);
        if anti {
            self.parse_bound();
        }
        let need = Need {
            tolerations: pod
                .pointer("/spec/tolerations")
                .and_then(Value::as_array)
                .map_or(&[], Vec::as_slice),
            tolerates_unschedulable: fit::tolerated_by(pod, "node.kubernetes.io/unschedulable"),
            tolerates_not_ready: fit::tolerated_by(pod, "node.kubernetes.io/not-ready"),
            selects: pod.pointer("/spec/nodeSelector").is_some()
                || pod
                    .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution")
                    .is_some(),
            want: ROOM_RESOURCES.map(|k| want.get(k).copied().unwrap_or(0)),
            nonzero: fit::nonzero_requests(&want),
            extended: want.iter().any(|(name, need)| {
                *need != 0 && (name.starts_with("hugepages-") || name.contains('/'))
            }),
        };
        let owner = controller_uid(pod);
        let siblings_of = owner.and_then(|o| self.owned.get(o));
        // (node, LeastAllocated score, siblings there) of each node that fits.
        let mut fitting: Vec<(usize, i64, i64)> = Vec::new();
        let mut reasons = Vec::new();
        let full_check = anti || need.extended;
        let cluster = anti.then(|| self.cluster());
        for i in 0..self.nodes.len() {
            let fits = !full_check && self.fits(pod, &need, i);
            let why = if fits {
                Vec::new()
            } else {
                fit::unfit_with(
                    pod,
                    &want,
                    &self.nodes[i].node,
                    &self.states[i],
                    cluster.as_deref(),
                )
            };
            if why.is_empty() {
                let room = &self.rooms[i];
                let score =
                    fit::least_allocated((room.cap[0], room.cap[1]), room.nonzero, need.nonzero);
                let siblings = siblings_of.and_then(|m| m.get(&i)).copied().unwrap_or(0);
                fitting.push((i, score, siblings));
            } else {
                reasons.push(why);
            }
        }
        drop(cluster);
        if fitting.is_empty() {
            return Tender::NoFit(fit::failed_scheduling_message(self.nodes.len(), &reasons));
        }
        let spread = spread_scores(&fitting.iter().map(|f| f.2).collect::<Vec<_>>());
        let best = fitting
            .iter()
            .zip(spread)
            .map(|(&(i, score, _), spread)| (i, score + SPREAD_WEIGHT * spread))
            .max_by(|(a, sa), (b, sb)| {
                let (a, b) = (&self.nodes[*a], &self.nodes[*b]);
                sa.cmp(sb)
                    .then_with(|| b.up_since.cmp(&a.up_since))
                    .then_with(|| b.name.cmp(&a.name))
            });
        match best {
            Some((i, score)) => Tender::Bids(vec![Bid {
                node: self.nodes[i].name.clone(),
                score,
                up_since: self.nodes[i].up_since.clone(),
            }]),
            None => Tender::NoFit(fit::failed_scheduling_message(self.nodes.len(), &reasons)),
        }
    }

    fn awarded(&mut self, pod: &Value, node: &str) {
        let Some(&i) = self.index.get(node) else {
            return;
        };
        if !fit::is_active(pod) {
            return;
        }
        if let Some(owner) = controller_uid(pod) {
            *self
                .owned
                .entry(owner.to_string())
                .or_default()
                .entry(i)
                .or_default() += 1;
        }
        let anti = fit::has_anti_affinity(pod);
        self.states[i].add_requests(&fit::pod_requests(pod), anti);
        self.rooms[i] = Room::of(&self.states[i]);
        self.any_anti_affinity |= anti;
        let mut bound = pod.clone();
        bound["spec"]["nodeName"] = json!(node);
        self.awarded[i].push(bound);
    }
}

/// Whether this placement places the pod: unbound, not terminating, not finished, and for
/// the default scheduler or `beemesh`.
pub fn wants_placement(pod: &Value) -> bool {
    let unbound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    let scheduler = pod
        .pointer("/spec/schedulerName")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_SCHEDULER);
    unbound
        && pod.pointer("/metadata/deletionTimestamp").is_none()
        && fit::is_active(pod)
        && (scheduler == DEFAULT_SCHEDULER
            || scheduler == BEEMESH_SCHEDULER
            || scheduler.is_empty())
}

/// Pods tendered together (one mesh exchange for all of them).
const TENDER_BATCH: usize = 128;
/// Bindings written at once at the end of a pass.
const PARALLEL_BINDINGS: usize = 64;
/// Awards decided before their bindings are written (a pass over a long backlog binds as
/// it goes).
const BINDINGS_PER_FLUSH: usize = 256;

/// A pod awarded to a node in a pass, to be bound.
struct Award {
    ns: String,
    name: String,
    uid: String,
    node: String,
    component: &'static str,
}

/// Whether a stored pod is bound (`"nodeName":"<non-empty>"` in its raw JSON; a key inside
/// an escaped string has backslashes before its quotes and does not match).
fn raw_is_bound(raw: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"\"nodeName\":\"";
    raw.windows(NEEDLE.len())
        .position(|w| w == NEEDLE)
        .is_some_and(|at| raw.get(at + NEEDLE.len()).is_some_and(|&b| b != b'"'))
}

/// A pod's retry state after it fit nowhere.
struct Backoff {
    next: Instant,
    delay: Duration,
}

/// Places the unbound pods this node is home of.
pub struct PlacementController {
    service: ObjectService,
    bids: Arc<dyn BidSource>,
    backoff: HashMap<String, Backoff>,
    /// Each stored pod that wants placement, parsed once per stored version (bound pods,
    /// nearly all of them, are told from their bytes and hold nothing).
    unbound: ParsedCache<Option<Value>>,
    /// Where the current pass's time went (debug log per pass).
    timing: PassTiming,
}

/// Time a placement pass spent in each stage, and what it did.
#[derive(Default)]
struct PassTiming {
    tendered: usize,
    awarded: usize,
    /// Gathering bids and deciding (`prepare` + `decide`).
    deciding: Duration,
    /// Waiting for bindings and their events to be written.
    binding: Duration,
}

impl PlacementController {
    pub fn new(service: ObjectService) -> Self {
        let bids = Arc::new(ReplicatedBids::new(service.clone()));
        PlacementController::with_bids(service, bids)
    }

    pub fn with_bids(service: ObjectService, bids: Arc<dyn BidSource>) -> Self {
        PlacementController {
            service,
            bids,
            backoff: HashMap::new(),
            unbound: ParsedCache::default(),
            timing: PassTiming::default(),
        }
    }

    fn resource(&self, plural: &str) -> Result<Arc<ResourceInfo>, ApiError> {
        self.service.registry.served("", "v1", plural)
    }

    /// One pass over the unbound pods; returns the soonest backoff end, if any.
    pub async fn pass(&mut self) -> Result<Option<Instant>, ApiError> {
        let started = Instant::now();
        self.timing = PassTiming::default();
        let pods = self.resource("pods")?;
        let listed = self.unbound.refresh(&self.service, &pods, |raw| {
            if raw_is_bound(raw) {
                return Ok(None);
            }
            let pod = parse_stored(raw)?;
            Ok(wants_placement(&pod).then_some(pod))
        })?;
        let now = Instant::now();
        // Opened on the first pod that needs it: most passes place nothing.
        let mut round: Option<Box<dyn Round>> = None;
        let mut batch = Vec::new();
        let mut seen = Vec::new();
        let mut soonest: Option<Instant> = None;
        let mut awards = Vec::new();
        for pod in listed.iter().filter_map(|p| p.as_ref().as_ref()) {
            let ns = pod["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
            if !self
                .service
                .store
                .is_home(&pods, Some(&ns), &placement_key(pod))
            {
                continue;
            }
            seen.push(uid.clone());
            if let Some(b) = self.backoff.get(&uid)
                && b.next > now
            {
                soonest = Some(soonest.map_or(b.next, |s| s.min(b.next)));
                continue;
            }
            batch.push(pod.clone());
            if batch.len() >= TENDER_BATCH {
                let batch = std::mem::take(&mut batch);
                self.tender_batch(&pods, &mut round, batch, &mut awards, &mut soonest)
                    .await?;
            }
        }
        self.tender_batch(&pods, &mut round, batch, &mut awards, &mut soonest)
            .await?;
        let binding = Instant::now();
        self.bind_all(&pods, awards).await;
        self.timing.binding += binding.elapsed();
        let seen: HashSet<String> = seen.into_iter().collect();
        self.backoff.retain(|uid, _| seen.contains(uid));
        let t = &self.timing;
        if t.tendered > 0 {
            tracing::debug!(
                listed = listed.len(),
                tendered = t.tendered,
                awarded = t.awarded,
                deciding_ms = t.deciding.as_millis() as u64,
                binding_ms = t.binding.as_millis() as u64,
                total_ms = started.elapsed().as_millis() as u64,
                "placement pass"
            );
        }
        Ok(soonest)
    }

    /// Tenders `batch` in the pass's round (opened on the first batch): the round gathers
    /// what it needs for all of them at once, then each pod is decided in order.
    async fn tender_batch(
        &mut self,
        pods: &ResourceInfo,
        round: &mut Option<Box<dyn Round>>,
        batch: Vec<Value>,
        awards: &mut Vec<Award>,
        soonest: &mut Option<Instant>,
    ) -> Result<(), ApiError> {
        if batch.is_empty() {
            return Ok(());
        }
        let deciding = Instant::now();
        let mut binding = Duration::ZERO;
        self.timing.tendered += batch.len();
        let round = match round {
            Some(r) => r,
            None => round.insert(self.bids.round()?),
        };
        round.prepare(&batch).await;
        for pod in &batch {
            let text = |p: &str| pod.pointer(p).and_then(Value::as_str).unwrap_or("");
            let (ns, name, uid) = (
                text("/metadata/namespace").to_string(),
                text("/metadata/name").to_string(),
                text("/metadata/uid").to_string(),
            );
            match self
                .decide(pods, round.as_mut(), pod, &ns, &name, &uid)
                .await
            {
                Ok(Some(award)) => {
                    self.backoff.remove(&uid);
                    awards.push(award);
                    self.timing.awarded += 1;
                    // A long backlog is bound as it is decided, not only at the end.
                    if awards.len() >= BINDINGS_PER_FLUSH {
                        let flush = Instant::now();
                        self.bind_all(pods, std::mem::take(awards)).await;
                        binding += flush.elapsed();
                    }
                }
                Ok(None) => {
                    let delay = self
                        .backoff
                        .get(&uid)
                        .map_or(INITIAL_BACKOFF, |b| (b.delay * 2).min(MAX_BACKOFF));
                    let next = Instant::now() + delay;
                    *soonest = Some(soonest.map_or(next, |s| s.min(next)));
                    self.backoff.insert(uid, Backoff { next, delay });
                }
                Err(e) => {
                    tracing::warn!(pod = %name, namespace = %ns, error = %e, "placing a pod failed")
                }
            }
        }
        self.timing.binding += binding;
        self.timing.deciding += deciding.elapsed().saturating_sub(binding);
        Ok(())
    }

    /// Writes awards' bindings. The round has counted them already: they are written
    /// together, so the write path commits them in groups rather than one at a time.
    async fn bind_all(&self, pods: &ResourceInfo, awards: Vec<Award>) {
        futures::stream::iter(awards)
            .map(|award| self.bind(pods, award))
            .buffer_unordered(PARALLEL_BINDINGS)
            .collect::<Vec<()>>()
            .await;
    }

    /// Writes one award's binding and its `Scheduled` event.
    async fn bind(&self, pods: &ResourceInfo, award: Award) {
        let Award {
            ns,
            name,
            uid,
            node,
            component,
        } = award;
        match binding::bind(
            &self.service,
            pods,
            &ns,
            &name,
            &node,
            None,
            Some(&uid),
            None,
        )
        .await
        {
            Ok(_) => {
                tracing::debug!(pod = %name, namespace = %ns, node = %node, "pod placed");
                let involved = Involved {
                    kind: "Pod",
                    namespace: Some(&ns),
                    name: &name,
                    uid: &uid,
                };
                record_event(
                    &self.service,
                    involved,
                    (component, ""),
                    "Normal",
                    "Scheduled",
                    &format!("Successfully assigned {ns}/{name} to {node}"),
                )
                .await;
            }
            // Bound meanwhile (another home during churn) or gone: nothing to do.
            Err(e) if e.code() == 409 || e.code() == 404 => {}
            Err(e) => {
                tracing::warn!(pod = %name, namespace = %ns, error = %e, "binding a pod failed")
            }
        }
    }

    /// Tenders one pod and awards it to the best bid (counted in the round; the binding is
    /// written later); `None` when it fits nowhere, which is recorded on the pod.
    async fn decide(
        &self,
        pods: &ResourceInfo,
        round: &mut dyn Round,
        pod: &Value,
        ns: &str,
        name: &str,
        uid: &str,
    ) -> Result<Option<Award>, ApiError> {
        let component = match pod.pointer("/spec/schedulerName").and_then(Value::as_str) {
            Some(BEEMESH_SCHEDULER) => BEEMESH_SCHEDULER,
            _ => DEFAULT_SCHEDULER,
        };
        match round.tender(pod) {
            Tender::Bids(bids) => {
                let Some(best) = award(&bids) else {
                    return Ok(None);
                };
                round.awarded(pod, &best.node);
                Ok(Some(Award {
                    ns: ns.to_string(),
                    name: name.to_string(),
                    uid: uid.to_string(),
                    node: best.node.clone(),
                    component,
                }))
            }
            Tender::NoFit(message) => {
                let changed = self.mark_unschedulable(pods, ns, name, &message).await?;
                if changed {
                    let involved = Involved {
                        kind: "Pod",
                        namespace: Some(ns),
                        name,
                        uid,
                    };
                    record_event(
                        &self.service,
                        involved,
                        (component, ""),
                        "Warning",
                        "FailedScheduling",
                        &message,
                    )
                    .await;
                }
                Ok(None)
            }
        }
    }

    /// Sets `PodScheduled=False` (`Unschedulable`) with the message; `true` when the
    /// condition's message changed (a new event is worth recording then).
    async fn mark_unschedulable(
        &self,
        pods: &ResourceInfo,
        ns: &str,
        name: &str,
        message: &str,
    ) -> Result<bool, ApiError> {
        let current = self.service.store.get(pods, Some(ns), name)?;
        let same = current
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled"))
            .is_some_and(|c| {
                c["status"] == "False" && c["reason"] == "Unschedulable" && c["message"] == message
            });
        if same {
            return Ok(false);
        }
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let written = self
            .service
            .update(
                pods,
                Some(ns),
                name,
                Part::Status,
                &WriteOptions::default(),
                |cur| {
                    let mut new = cur.clone();
                    binding::set_condition(
                        &mut new,
                        json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                               "message": message, "lastProbeTime": null,
                               "lastTransitionTime": now}),
                    );
                    if new["status"].get("phase").is_none() {
                        new["status"]["phase"] = json!("Pending");
                    }
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove("resourceVersion");
                    }
                    Ok(new)
                },
            )
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(e) if e.code() == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs forever: a pass whenever a pod or Node changes, a backoff ends, or `IDLE`.
    pub async fn run(mut self) {
        loop {
            let from = self.service.store.revision();
            let soonest = match self.pass().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "placement pass failed");
                    None
                }
            };
            let wait = soonest
                .map(|t| t.saturating_duration_since(Instant::now()) + Duration::from_millis(20))
                .map_or(IDLE, |d| d.min(IDLE));
            let (Ok(pods), Ok(nodes)) = (self.resource("pods"), self.resource("nodes")) else {
                return;
            };
            // Any pod change (a new pod, one freed or deleted) or Node change can make room.
            tokio::select! {
                _ = wait_for_change(&self.service, &pods, from, wait, |_| true) => {}
                _ = wait_for_change(&self.service, &nodes, from, wait, |_| true) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cpu: &str, ready_since: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
               "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
                          "conditions": [{"type": "Ready", "status": "True",
                                          "lastTransitionTime": ready_since}]}})
    }

    #[test]
    fn the_best_bid_wins_and_the_longest_up_breaks_ties() {
        let nodes = [
            node("young", "2", "2026-01-02T00:00:00Z"),
            node("old", "2", "2026-01-01T00:00:00Z"),
            node("small", "1", "2025-01-01T00:00:00Z"),
        ];
        let pod =
            json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [{}]}});
        let Tender::Bids(bids) = evaluate(&pod, &nodes, &[]) else {
            panic!("every node fits");
        };
        assert_eq!(award(&bids).unwrap().node, "old");
    }

    #[test]
    fn a_controllers_pods_spread_over_equal_nodes() {
        let nodes = vec![
            node("a", "4", "2026-01-01T00:00:00Z"),
            node("b", "4", "2026-01-02T00:00:00Z"),
            node("c", "4", "2026-01-03T00:00:00Z"),
        ];
        // A sibling already runs on the longest-up node, which would win the tie.
        let sibling = |name: &str, node: Option<&str>| {
            json!({"metadata": {"name": name, "namespace": "d", "ownerReferences": [
                      {"kind": "ReplicaSet", "name": "rs", "uid": "rs-1", "controller": true}]},
                   "spec": {"containers": [{}], "nodeName": node}})
        };
        let mut round = ReplicatedRound::new(nodes, vec![sibling("p0", Some("a"))]);
        let mut placed = Vec::new();
        for name in ["p1", "p2", "p3"] {
            let pod = sibling(name, None);
            let Tender::Bids(bids) = round.tender(&pod) else {
                panic!("every node fits");
            };
            let node = award(&bids).unwrap().node.clone();
            round.awarded(&pod, &node);
            placed.push(node);
        }
        assert_eq!(placed, ["b", "c", "a"]);
        assert_eq!(placement_key(&sibling("p1", None)), "owner-rs-1");
        assert_eq!(
            placement_key(&json!({"metadata": {"name": "solo"}})),
            "solo"
        );
    }

    #[test]
    fn a_pod_that_fits_nowhere_gets_the_schedulers_message() {
        let nodes = [node("a", "1", "t"), node("b", "1", "t")];
        let pod = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [
            {"resources": {"requests": {"cpu": "2"}}}]}});
        assert_eq!(
            evaluate(&pod, &nodes, &[]),
            Tender::NoFit(
                "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: \
                 2 No preemption victims found for incoming pod."
                    .into()
            )
        );
    }

    #[test]
    fn a_round_counts_its_own_awards() {
        let mut round = ReplicatedRound::new(vec![node("only", "1", "t")], Vec::new());
        let pod = |name: &str| {
            json!({"metadata": {"name": name, "namespace": "d"}, "spec": {"containers": [
                {"resources": {"requests": {"cpu": "600m"}}}]}})
        };
        let Tender::Bids(bids) = round.tender(&pod("a")) else {
            panic!("the first pod fits");
        };
        round.awarded(&pod("a"), &bids[0].node);
        assert!(
            matches!(round.tender(&pod("b")), Tender::NoFit(m) if m.contains("1 Insufficient cpu"))
        );
    }

    #[test]
    fn bound_pods_are_told_from_their_raw_bytes() {
        let raw = |v: Value| serde_json::to_vec(&v).unwrap();
        assert!(raw_is_bound(&raw(json!({"spec": {"nodeName": "n1"}}))));
        assert!(!raw_is_bound(&raw(json!({"spec": {"nodeName": ""}}))));
        assert!(!raw_is_bound(&raw(json!({"spec": {}}))));
        // A nominated node or a nodeName inside an annotation's text is no binding.
        assert!(!raw_is_bound(&raw(
            json!({"status": {"nominatedNodeName": "n1"}})
        )));
        assert!(!raw_is_bound(&raw(
            json!({"metadata": {"annotations": {"a": "{\"nodeName\":\"n1\"}"}}})
        )));
    }

    #[test]
    fn only_unbound_live_pods_of_our_schedulers_are_placed() {
        let base =
            json!({"metadata": {"name": "p"}, "spec": {"schedulerName": "default-scheduler"}});
        assert!(wants_placement(&base));
        let mut bound = base.clone();
        bound["spec"]["nodeName"] = json!("n1");
        assert!(!wants_placement(&bound));
        let mut other = base.clone();
        other["spec"]["schedulerName"] = json!("volcano");
        assert!(!wants_placement(&other));
        let mut ours = base.clone();
        ours["spec"]["schedulerName"] = json!("beemesh");
        assert!(wants_placement(&ours));
        let mut going = base.clone();
        going["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(!wants_placement(&going));
    }
}
