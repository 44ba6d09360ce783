//! The task that owns the swarm: membership, request routing, publication and the
//! hand-off of received publications to the applier.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, PublishError, TopicHash};
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, mdns, ping};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::AbortHandle;

use super::behaviour::{
    MEMBER_SCORE, MeshBehaviour, MeshBehaviourEvent, NON_MEMBER_SCORE, RPC_PROTOCOL, build_swarm,
};
use super::config::{MeshConfig, PeerAuthorizer};
use super::join::{Admitter, JoinRequest, JoinResponse};
use super::placement::{MAX_PLACEMENT_BYTES, TENDER_TOPIC};
use super::routing::MemberView;
use super::wire::{
    Hello, PeerAddrs, RpcRequest, RpcResponse, TOPIC_PREFIX, decode_publication, topic_of,
};
use super::{MeshError, MeshHandle, bump, publish, sync};
use crate::replica::Entry;

/// What handles ask of the event loop.
pub enum Command {
    Request {
        peer: PeerId,
        request: RpcRequest,
        reply: oneshot::Sender<Result<RpcResponse, MeshError>>,
    },
    Publish {
        topic: String,
        data: Vec<u8>,
    },
    Subscribe {
        topics: Vec<String>,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), MeshError>>,
    },
    /// This node finished its first sync: tell every member.
    AnnounceReady,
    /// The addresses of the current members, each ending in `/p2p/<peer id>`.
    KnownPeers {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// What the loop's own helper tasks report back.
enum Internal {
    Respond {
        channel: ResponseChannel<RpcResponse>,
        response: RpcResponse,
    },
    Authorized {
        peer: PeerId,
        allowed: bool,
    },
    JoinRespond {
        channel: ResponseChannel<JoinResponse>,
        response: JoinResponse,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// Not identified as one of ours (yet).
    Unknown,
    Pending,
    Allowed,
    Denied,
}

struct PeerState {
    /// When the first connection of this spell was established.
    since: Instant,
    connections: usize,
    auth: Auth,
    ready: bool,
    addrs: Vec<Multiaddr>,
    /// Requests that arrived before the authorizer answered.
    queued: Vec<(RpcRequest, ResponseChannel<RpcResponse>)>,
}

impl PeerState {
    fn new() -> Self {
        PeerState {
            since: Instant::now(),
            connections: 0,
            auth: Auth::Unknown,
            ready: false,
            addrs: Vec::new(),
            queued: Vec::new(),
        }
    }

    fn add_addr(&mut self, addr: Multiaddr) {
        if !self.addrs.contains(&addr) {
            if self.addrs.len() >= MAX_ADDRS_PER_PEER {
                self.addrs.remove(0);
            }
            self.addrs.push(addr);
        }
    }
}

/// A member whose last connection closed (a crash, a restart, a network cut): dialled
/// again with backoff, so a mesh heals after a partition from both sides (a side that still
/// has members would otherwise never look for the other).
struct LostMember {
    addrs: Vec<Multiaddr>,
    since: Instant,
    next_dial: Instant,
    backoff: Duration,
}

enum Pending {
    Client(oneshot::Sender<Result<RpcResponse, MeshError>>),
    Hello,
}

struct Retry {
    topic: String,
    data: Vec<u8>,
    give_up: Instant,
}

const MAX_ADDRS_PER_PEER: usize = 8;
const MAX_QUEUED_PER_PEER: usize = 32;
const MAX_TOPICS: usize = 4096;
const MAX_RETRIES: usize = 4096;
const MAX_INBOUND_HANDLERS: usize = 128;
const PUBLISH_RETRY_FOR: Duration = Duration::from_secs(3);
const AUTHORIZE_TIMEOUT: Duration = Duration::from_secs(10);
const DENY_FOR: Duration = Duration::from_secs(600);
/// A connected peer that has not become a member by then is disconnected (it never
/// identified as one of ours, or never presented a credential).
const AUTH_DEADLINE: Duration = Duration::from_secs(30);
/// Admission requests handled at once (each is cheap; this bounds abuse).
const MAX_ADMISSIONS: usize = 4;
const TICK: Duration = Duration::from_millis(200);
/// First redial of a lost member after this, doubling up to [`LOST_REDIAL_MAX`].
const LOST_REDIAL_FIRST: Duration = Duration::from_secs(1);
const LOST_REDIAL_MAX: Duration = Duration::from_secs(4);
/// A lost member not seen again for this long is forgotten (saved peers and `--join`
/// still find it after a restart).
const LOST_FORGET_AFTER: Duration = Duration::from_secs(3600);
const MAX_LOST: usize = 1024;
const APPLY_QUEUE: usize = 4096;

pub struct EventLoop {
    swarm: Swarm<MeshBehaviour>,
    handle: MeshHandle,
    commands: mpsc::Receiver<Command>,
    internal_tx: mpsc::Sender<Internal>,
    internal_rx: mpsc::Receiver<Internal>,
    sync_triggers: mpsc::Sender<PeerId>,
    applier: mpsc::Sender<Entry>,
    authorizer: PeerAuthorizer,
    credential: Bytes,
    admitter: Option<Admitter>,
    admissions: Arc<Semaphore>,
    credential_requests: HashMap<OutboundRequestId, PeerId>,
    peers: HashMap<PeerId, PeerState>,
    lost: HashMap<PeerId, LostMember>,
    denied: HashMap<PeerId, Instant>,
    pending: HashMap<OutboundRequestId, Pending>,
    listeners: usize,
    subscribed: HashSet<String>,
    retries: VecDeque<Retry>,
    joins: Vec<Multiaddr>,
    anti_entropy_interval: Duration,
    last_redial: Instant,
    last_bootstrap: Instant,
    inbound: Arc<Semaphore>,
    tasks: Vec<AbortHandle>,
}

impl EventLoop {
    /// Builds the swarm, starts listening and dialling, and spawns the loop with its
    /// helper tasks (publisher, applier, anti-entropy driver).
    pub fn spawn(
        config: MeshConfig,
        handle: MeshHandle,
        commands: mpsc::Receiver<Command>,
    ) -> Result<(), MeshError> {
        let mut swarm = build_swarm(&config.keypair, config.mdns)?;
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| MeshError::Listen {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
        }
        for addr in &config.join {
            swarm.dial(addr.clone()).map_err(|e| MeshError::Dial {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        }
        let (internal_tx, internal_rx) = mpsc::channel(256);
        let (sync_tx, sync_rx) = mpsc::channel(256);
        let (apply_tx, apply_rx) = mpsc::channel(APPLY_QUEUE);
        let tasks = vec![
            tokio::spawn(publish::run_publisher(handle.clone())).abort_handle(),
            tokio::spawn(publish::run_applier(handle.clone(), apply_rx)).abort_handle(),
            tokio::spawn(sync::run_driver(
                handle.clone(),
                sync_rx,
                config.anti_entropy_interval,
            ))
            .abort_handle(),
        ];
        let mut event_loop = EventLoop {
            swarm,
            handle,
            commands,
            internal_tx,
            internal_rx,
            sync_triggers: sync_tx,
            applier: apply_tx,
            authorizer: config.authorizer,
            credential: config.credential,
            admitter: config.admitter,
            admissions: Arc::new(Semaphore::new(MAX_ADMISSIONS)),
            credential_requests: HashMap::new(),
            peers: HashMap::new(),
            lost: HashMap::new(),
            denied: HashMap::new(),
            pending: HashMap::new(),
            listeners: config.listen.len(),
            subscribed: HashSet::new(),
            retries: VecDeque::new(),
            joins: config.join,
            anti_entropy_interval: config.anti_entropy_interval,
            last_redial: Instant::now(),
            last_bootstrap: Instant::now(),
            inbound: Arc::new(Semaphore::new(MAX_INBOUND_HANDLERS)),
            tasks,
        };
        for topic in &config.topics {
            event_loop.ensure_subscribed(topic);
        }
        event_loop.ensure_subscribed(TENDER_TOPIC);
        tokio::spawn(event_loop.run());
        Ok(())
    }

    async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    None => break,
                    Some(Command::Shutdown { reply }) => {
                        self.stop();
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => self.on_command(command),
                },
                Some(internal) = self.internal_rx.recv() => self.on_internal(internal),
                _ = tick.tick() => self.on_tick(),
            }
        }
        self.stop();
    }

    fn stop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for (_, pending) in self.pending.drain() {
            if let Pending::Client(reply) = pending {
                let _ = reply.send(Err(MeshError::Closed));
            }
        }
    }

    fn local(&self) -> PeerId {
        self.handle.shared().local
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Request {
                peer,
                request,
                reply,
            } => {
                if peer == self.local() {
                    let _ = reply.send(Err(MeshError::Unreachable {
                        peer,
                        reason: "a node does not send requests to itself".into(),
                    }));
                    return;
                }
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, request);
                self.pending.insert(id, Pending::Client(reply));
            }
            Command::Publish { topic, data } => self.publish(topic, data),
            Command::Subscribe { topics } => {
                for topic in topics {
                    self.ensure_subscribed(&topic);
                }
            }
            Command::Dial { addr, reply } => {
                let result = self.swarm.dial(addr.clone()).map_err(|e| MeshError::Dial {
                    addr,
                    reason: e.to_string(),
                });
                let _ = reply.send(result);
            }
            Command::AnnounceReady => {
                let members: Vec<PeerId> = self
                    .peers
                    .iter()
                    .filter(|(_, s)| s.auth == Auth::Allowed)
                    .map(|(p, _)| *p)
                    .collect();
                for peer in members {
                    self.send_hello(peer);
                }
            }
            Command::KnownPeers { reply } => {
                let addrs = self
                    .peers
                    .iter()
                    .filter(|(_, s)| s.auth == Auth::Allowed)
                    .flat_map(|(peer, s)| {
                        s.addrs
                            .iter()
                            .map(|a| a.clone().with_p2p(*peer).unwrap_or_else(|a| a))
                    })
                    .collect();
                let _ = reply.send(addrs);
            }
            Command::Shutdown { .. } => {}
        }
    }

    fn on_internal(&mut self, internal: Internal) {
        match internal {
            Internal::Respond { channel, response } => {
                // Fails only when the requester is gone; nothing to do then.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .rpc
                    .send_response(channel, response);
            }
            Internal::Authorized { peer, allowed } => self.on_authorized(peer, allowed),
            Internal::JoinRespond { channel, response } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .join
                    .send_response(channel, response);
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        if !self.retries.is_empty() {
            let due: Vec<Retry> = self.retries.drain(..).collect();
            for retry in due {
                if retry.give_up <= now {
                    bump(&self.handle.shared().counters.publications_dropped, 1);
                    continue;
                }
                self.try_publish(retry.topic, retry.data, retry.give_up);
            }
        }
        let has_members = self.peers.values().any(|s| s.auth == Auth::Allowed);
        if !has_members
            && !self.joins.is_empty()
            && now.duration_since(self.last_redial) >= self.anti_entropy_interval
        {
            self.last_redial = now;
            for addr in self.joins.clone() {
                let _ = self.swarm.dial(addr);
            }
        }
        self.redial_lost(now);
        if has_members && now.duration_since(self.last_bootstrap) >= Duration::from_secs(60) {
            self.last_bootstrap = now;
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
        self.denied
            .retain(|_, since| now.duration_since(*since) < DENY_FOR);
        let overdue: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, s)| s.auth != Auth::Allowed && now.duration_since(s.since) > AUTH_DEADLINE)
            .map(|(p, _)| *p)
            .collect();
        for peer in overdue {
            tracing::debug!(%peer, "mesh peer never became a member; disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn remember_lost(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if addrs.is_empty() || (self.lost.len() >= MAX_LOST && !self.lost.contains_key(&peer)) {
            return;
        }
        let now = Instant::now();
        self.lost.insert(
            peer,
            LostMember {
                addrs,
                since: now,
                next_dial: now + LOST_REDIAL_FIRST,
                backoff: LOST_REDIAL_FIRST,
            },
        );
    }

    /// Dials the lost members that are due (a connection removes them from the list).
    fn redial_lost(&mut self, now: Instant) {
        self.lost
            .retain(|_, lost| now.duration_since(lost.since) < LOST_FORGET_AFTER);
        let due: Vec<(PeerId, Vec<Multiaddr>)> = self
            .lost
            .iter_mut()
            .filter(|(_, lost)| lost.next_dial <= now)
            .map(|(peer, lost)| {
                lost.backoff = (lost.backoff * 2).min(LOST_REDIAL_MAX);
                lost.next_dial = now + lost.backoff;
                (*peer, lost.addrs.clone())
            })
            .collect();
        for (peer, addrs) in due {
            if self.denied.contains_key(&peer) {
                continue;
            }
            let _ = self.swarm.dial(
                DialOpts::peer_id(peer)
                    .addresses(addrs)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
            );
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<MeshBehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                if self.denied.contains_key(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                self.lost.remove(&peer_id);
                let state = self.peers.entry(peer_id).or_insert_with(PeerState::new);
                state.connections += 1;
                if state.auth != Auth::Allowed {
                    // Gossipsub registered the peer before this event reached us, and has
                    // not heard its subscriptions yet: nothing reaches it until it is a member.
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .set_application_score(&peer_id, NON_MEMBER_SCORE);
                }
                if let ConnectedPoint::Dialer { address, .. } = endpoint {
                    state.add_addr(address);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                if num_established == 0
                    && let Some(state) = self.peers.remove(&peer_id)
                {
                    if state.auth == Auth::Allowed {
                        self.remember_lost(peer_id, state.addrs.clone());
                    }
                    for (_, channel) in state.queued {
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .rpc
                            .send_response(channel, RpcResponse::Error("disconnected".into()));
                    }
                    self.publish_view();
                } else if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.connections = num_established as usize;
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                self.handle.shared().listen.send_modify(|addrs| {
                    if !addrs.contains(&address) {
                        addrs.push(address);
                    }
                });
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.handle
                    .shared()
                    .listen
                    .send_modify(|addrs| addrs.retain(|a| *a != address));
            }
            SwarmEvent::ListenerClosed { reason, .. } => {
                tracing::warn!(?reason, "mesh listener closed");
                self.listeners = self.listeners.saturating_sub(1);
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "mesh dial failed");
            }
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: MeshBehaviourEvent) {
        match event {
            MeshBehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                self.on_identified(peer_id, info)
            }
            MeshBehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let acceptance = if message.topic.as_str() == TENDER_TOPIC {
                    self.on_tender(propagation_source, message)
                } else {
                    self.on_publication(propagation_source, message)
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
            }
            MeshBehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { topic, .. }) => {
                self.follow(&topic)
            }
            MeshBehaviourEvent::Rpc(request_response::Event::Message { peer, message, .. }) => {
                match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => self.on_request(peer, request, channel),
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => self.on_response(peer, request_id, Ok(response)),
                }
            }
            MeshBehaviourEvent::Rpc(request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            }) => self.on_response(peer, request_id, Err(error)),
            MeshBehaviourEvent::Join(request_response::Event::Message {
                peer, message, ..
            }) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_join_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(peer) = self.credential_requests.remove(&request_id) {
                        let credential = match response {
                            JoinResponse::Credential(bytes) => bytes,
                            _ => Bytes::new(),
                        };
                        self.authorize(peer, credential);
                    }
                }
            },
            MeshBehaviourEvent::Join(request_response::Event::OutboundFailure {
                request_id,
                error,
                ..
            }) => {
                if let Some(peer) = self.credential_requests.remove(&request_id) {
                    tracing::debug!(%peer, %error, "mesh peer presented no credential");
                    self.authorize(peer, Bytes::new());
                }
            }
            MeshBehaviourEvent::Rpc(request_response::Event::InboundFailure {
                peer,
                error,
                ..
            }) => {
                tracing::debug!(%peer, %error, "mesh inbound request failed");
            }
            // A joiner's short-lived connection speaks only the join protocol; it is no
            // member and the authorization deadline closes it if it lingers.
            MeshBehaviourEvent::Ping(ping::Event {
                result: Err(ping::Failure::Unsupported),
                ..
            }) => {}
            MeshBehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(error),
            }) => {
                tracing::debug!(%peer, %error, "mesh ping failed; closing the connection");
                self.close(connection);
            }
            MeshBehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    if !self.peers.contains_key(&peer) && !self.denied.contains_key(&peer) {
                        let _ = self.swarm.dial(
                            DialOpts::peer_id(peer)
                                .addresses(vec![addr])
                                .condition(PeerCondition::DisconnectedAndNotDialing)
                                .build(),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn close(&mut self, connection: ConnectionId) {
        self.swarm.close_connection(connection);
    }

    fn on_identified(&mut self, peer: PeerId, info: identify::Info) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        for addr in info.listen_addrs.iter().take(MAX_ADDRS_PER_PEER) {
            state.add_addr(addr.clone());
        }
        if !info.protocols.contains(&RPC_PROTOCOL) || state.auth != Auth::Unknown {
            return;
        }
        state.auth = Auth::Pending;
        for addr in info.listen_addrs.into_iter().take(MAX_ADDRS_PER_PEER) {
            self.swarm.behaviour_mut().kad.add_address(&peer, addr);
        }
        let id = self
            .swarm
            .behaviour_mut()
            .join
            .send_request(&peer, JoinRequest::Credential);
        self.credential_requests.insert(id, peer);
    }

    /// Asks the authorizer about `peer` and its credential.
    fn authorize(&mut self, peer: PeerId, credential: Bytes) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        let decision = (self.authorizer.0)(peer, credential);
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            let allowed = tokio::time::timeout(AUTHORIZE_TIMEOUT, decision)
                .await
                .unwrap_or(false);
            let _ = internal.send(Internal::Authorized { peer, allowed }).await;
        });
    }

    fn on_authorized(&mut self, peer: PeerId, allowed: bool) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        let queued = std::mem::take(&mut state.queued);
        if allowed {
            state.auth = Auth::Allowed;
            self.swarm
                .behaviour_mut()
                .gossipsub
                .set_application_score(&peer, MEMBER_SCORE);
            self.publish_view();
            self.send_hello(peer);
            for (request, channel) in queued {
                self.dispatch(peer, request, channel);
            }
            // A full trigger queue only delays this sync to the next periodic round.
            let _ = self.sync_triggers.try_send(peer);
        } else {
            tracing::warn!(%peer, "mesh peer refused by the authorizer");
            state.auth = Auth::Denied;
            for (_, channel) in queued {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .rpc
                    .send_response(channel, RpcResponse::Error("not authorized".into()));
            }
            self.denied.insert(peer, Instant::now());
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn publish_view(&mut self) {
        let view = MemberView {
            peers: self
                .peers
                .iter()
                .filter(|(_, s)| s.auth == Auth::Allowed)
                .map(|(p, s)| (*p, s.ready))
                .collect(),
        };
        self.handle.shared().view.send_if_modified(|current| {
            if *current == view {
                false
            } else {
                *current = view;
                true
            }
        });
    }

    fn hello(&self) -> Hello {
        Hello {
            ready: *self.handle.shared().synced.borrow(),
            peers: self
                .peers
                .iter()
                .filter(|(_, s)| s.auth == Auth::Allowed)
                .map(|(p, s)| PeerAddrs {
                    peer: p.to_bytes().into(),
                    addrs: s.addrs.iter().map(|a| a.to_vec().into()).collect(),
                })
                .collect(),
        }
    }

    fn send_hello(&mut self, peer: PeerId) {
        let hello = self.hello();
        let id = self
            .swarm
            .behaviour_mut()
            .rpc
            .send_request(&peer, RpcRequest::Hello(hello));
        self.pending.insert(id, Pending::Hello);
    }

    fn on_hello(&mut self, peer: PeerId, hello: Hello) {
        if let Some(state) = self.peers.get_mut(&peer)
            && state.ready != hello.ready
        {
            state.ready = hello.ready;
            self.publish_view();
        }
        let local = self.local();
        for known in hello.peers.into_iter().take(1024) {
            let Ok(other) = PeerId::from_bytes(&known.peer) else {
                continue;
            };
            if other == local || self.peers.contains_key(&other) || self.denied.contains_key(&other)
            {
                continue;
            }
            let addrs: Vec<Multiaddr> = known
                .addrs
                .into_iter()
                .take(MAX_ADDRS_PER_PEER)
                .filter_map(|a| Multiaddr::try_from(a.to_vec()).ok())
                .collect();
            if addrs.is_empty() {
                continue;
            }
            let _ = self.swarm.dial(
                DialOpts::peer_id(other)
                    .addresses(addrs)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
            );
        }
    }

    fn on_request(
        &mut self,
        peer: PeerId,
        request: RpcRequest,
        channel: ResponseChannel<RpcResponse>,
    ) {
        let auth = self.peers.get(&peer).map(|s| s.auth);
        match auth {
            Some(Auth::Allowed) => self.dispatch(peer, request, channel),
            Some(Auth::Unknown | Auth::Pending) => {
                if let Some(state) = self.peers.get_mut(&peer)
                    && state.queued.len() < MAX_QUEUED_PER_PEER
                {
                    state.queued.push((request, channel));
                } else {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .rpc
                        .send_response(channel, RpcResponse::Error("busy".into()));
                }
            }
            Some(Auth::Denied) | None => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .rpc
                    .send_response(channel, RpcResponse::Error("not a member".into()));
            }
        }
    }

    /// The join protocol is open to every connected peer: it reveals only our (public)
    /// credential, and admission is the admitter's call.
    fn on_join_request(
        &mut self,
        peer: PeerId,
        request: JoinRequest,
        channel: ResponseChannel<JoinResponse>,
    ) {
        let payload = match request {
            JoinRequest::Credential => {
                let credential = self.credential.clone();
                self.answer_join(channel, JoinResponse::Credential(credential));
                return;
            }
            JoinRequest::Admit(payload) => payload,
        };
        let Some(admitter) = self.admitter.clone() else {
            self.answer_join(
                channel,
                JoinResponse::Refused("this node admits no one".into()),
            );
            return;
        };
        let Ok(permit) = self.admissions.clone().try_acquire_owned() else {
            self.answer_join(channel, JoinResponse::Refused("busy; retry".into()));
            return;
        };
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            let response = match (admitter.0)(peer, payload).await {
                Ok(bytes) => {
                    tracing::info!(%peer, "mesh admitted a new member");
                    JoinResponse::Admitted(bytes)
                }
                Err(reason) => {
                    tracing::warn!(%peer, %reason, "mesh refused an admission");
                    JoinResponse::Refused(reason)
                }
            };
            drop(permit);
            let _ = internal
                .send(Internal::JoinRespond { channel, response })
                .await;
        });
    }

    fn answer_join(&mut self, channel: ResponseChannel<JoinResponse>, response: JoinResponse) {
        // Fails only when the requester is gone.
        let _ = self
            .swarm
            .behaviour_mut()
            .join
            .send_response(channel, response);
    }

    fn dispatch(
        &mut self,
        peer: PeerId,
        request: RpcRequest,
        channel: ResponseChannel<RpcResponse>,
    ) {
        if let RpcRequest::Hello(hello) = request {
            self.on_hello(peer, hello);
            let answer = RpcResponse::Hello(self.hello());
            let _ = self
                .swarm
                .behaviour_mut()
                .rpc
                .send_response(channel, answer);
            return;
        }
        if let RpcRequest::Bids(payload) = request {
            // Handed to placement as is; a full inbox drops it (the home falls back).
            let answer = match self
                .handle
                .shared()
                .placement
                .bids
                .try_send((peer, payload))
            {
                Ok(()) => RpcResponse::BidsTaken,
                Err(_) => RpcResponse::Error("busy".into()),
            };
            let _ = self
                .swarm
                .behaviour_mut()
                .rpc
                .send_response(channel, answer);
            return;
        }
        let Ok(permit) = self.inbound.clone().try_acquire_owned() else {
            let _ = self
                .swarm
                .behaviour_mut()
                .rpc
                .send_response(channel, RpcResponse::Error("busy".into()));
            return;
        };
        let replica = self.handle.shared().replica.clone();
        let ready = *self.handle.shared().synced.borrow();
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            let response = match request {
                RpcRequest::Cas {
                    key,
                    expected,
                    deleted,
                    value,
                } => super::serve_cas(&replica, key, expected, deleted, value).await,
                other => sync::serve(replica, other, ready).await,
            };
            drop(permit);
            let _ = internal.send(Internal::Respond { channel, response }).await;
        });
    }

    fn on_response(
        &mut self,
        peer: PeerId,
        id: OutboundRequestId,
        result: Result<RpcResponse, OutboundFailure>,
    ) {
        match self.pending.remove(&id) {
            Some(Pending::Client(reply)) => {
                let result = result.map_err(|failure| match failure {
                    OutboundFailure::Timeout => MeshError::Timeout { peer },
                    other => MeshError::Unreachable {
                        peer,
                        reason: other.to_string(),
                    },
                });
                let _ = reply.send(result);
            }
            Some(Pending::Hello) => {
                if let Ok(RpcResponse::Hello(hello)) = result {
                    self.on_hello(peer, hello);
                }
            }
            None => {}
        }
    }

    fn is_member(&self, peer: &PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|s| s.auth == Auth::Allowed)
    }

    /// Validates a publication and queues it for the applier.
    fn on_publication(&mut self, relay: PeerId, message: gossipsub::Message) -> MessageAcceptance {
        let counters = &self.handle.shared().counters;
        bump(&counters.publications_received, 1);
        if !self.is_member(&relay) {
            bump(&counters.publications_ignored, 1);
            return MessageAcceptance::Ignore;
        }
        let entry = match decode_publication(&message.data) {
            Ok(entry) => entry,
            Err(error) => {
                tracing::debug!(%relay, %error, "mesh publication rejected");
                bump(&counters.publications_rejected, 1);
                return MessageAcceptance::Reject;
            }
        };
        let author_matches = message
            .source
            .is_some_and(|author| entry.version.origin.as_ref() == author.to_bytes().as_slice());
        if !author_matches || topic_of(&entry.key) != message.topic.as_str() {
            tracing::debug!(%relay, "mesh publication with a forged origin or wrong topic");
            bump(&counters.publications_rejected, 1);
            return MessageAcceptance::Reject;
        }
        if self.applier.try_send(entry).is_err() {
            bump(&counters.publications_dropped, 1);
        }
        MessageAcceptance::Accept
    }

    /// A member's tender batch (signed by its author, who is the home to answer) goes to
    /// placement; it is forwarded on only when it came from a member.
    fn on_tender(&mut self, relay: PeerId, message: gossipsub::Message) -> MessageAcceptance {
        if !self.is_member(&relay) {
            return MessageAcceptance::Ignore;
        }
        let Some(author) = message.source else {
            return MessageAcceptance::Reject;
        };
        if message.data.len() > MAX_PLACEMENT_BYTES {
            return MessageAcceptance::Reject;
        }
        let sinks = &self.handle.shared().placement;
        if sinks
            .tenders
            .try_send((author, Bytes::from(message.data)))
            .is_err()
        {
            tracing::debug!(%author, "placement inbox full; a tender is dropped");
        }
        MessageAcceptance::Accept
    }

    /// Full replication: subscribe to every resource topic a peer uses.
    fn follow(&mut self, topic: &TopicHash) {
        let name = topic.as_str();
        if !name.starts_with(TOPIC_PREFIX) {
            return;
        }
        let name = name.to_string();
        self.ensure_subscribed(&name);
        // Publications that found nobody subscribed may now have a receiver.
        if self.retries.iter().any(|r| r.topic == name) {
            let (now, later): (Vec<Retry>, Vec<Retry>) =
                self.retries.drain(..).partition(|r| r.topic == name);
            self.retries = later.into();
            for retry in now {
                self.try_publish(retry.topic, retry.data, retry.give_up);
            }
        }
    }

    fn ensure_subscribed(&mut self, topic: &str) {
        if self.subscribed.contains(topic) || self.subscribed.len() >= MAX_TOPICS {
            return;
        }
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&IdentTopic::new(topic))
        {
            Ok(_) => {
                self.subscribed.insert(topic.to_string());
            }
            Err(error) => tracing::warn!(topic, %error, "mesh cannot subscribe"),
        }
    }

    fn publish(&mut self, topic: String, data: Vec<u8>) {
        self.ensure_subscribed(&topic);
        // Nobody to tell (a mesh of one): skip gossipsub's signing; anti-entropy hands the
        // change to whoever joins.
        if !self.peers.values().any(|s| s.auth == Auth::Allowed) {
            return;
        }
        self.try_publish(topic, data, Instant::now() + PUBLISH_RETRY_FOR);
    }

    fn try_publish(&mut self, topic: String, data: Vec<u8>, give_up: Instant) {
        let result = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(IdentTopic::new(topic.clone()), data.clone());
        let counters = &self.handle.shared().counters;
        match result {
            Ok(_) | Err(PublishError::Duplicate) => bump(&counters.publications_sent, 1),
            Err(PublishError::NoPeersSubscribedToTopic | PublishError::AllQueuesFull(_)) => {
                // Nobody to tell yet: members that follow the topic will subscribe soon;
                // without members, anti-entropy hands the change to whoever joins.
                let has_members = self.peers.values().any(|s| s.auth == Auth::Allowed);
                if has_members && self.retries.len() < MAX_RETRIES {
                    self.retries.push_back(Retry {
                        topic,
                        data,
                        give_up,
                    });
                } else if has_members {
                    bump(&counters.publications_dropped, 1);
                }
            }
            Err(error) => {
                tracing::warn!(topic, %error, "mesh publish failed");
                bump(&counters.publications_dropped, 1);
            }
        }
    }
}
