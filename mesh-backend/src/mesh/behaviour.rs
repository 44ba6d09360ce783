//! The swarm: one composed behaviour over TCP (and QUIC), noise and yamux.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};
use libp2p::request_response::{self, ProtocolSupport, cbor};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, Swarm, SwarmBuilder, gossipsub, identify, kad, mdns, noise, ping, tcp, yamux,
};
use sha2::{Digest, Sha256};

use super::MeshError;
use super::join::{self, JoinBehaviour};
use super::wire::{
    MAX_GOSSIP_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, MAX_VALUE_BYTES, RpcRequest,
    RpcResponse,
};

/// Our request-response protocol; a peer that lists it in identify is a candidate member.
pub const RPC_PROTOCOL: StreamProtocol = StreamProtocol::new("/beemesh/rpc/1.0.0");
const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/beemesh/kad/1.0.0");
const IDENTIFY_PROTOCOL: &str = "/beemesh/1.0.0";

#[derive(NetworkBehaviour)]
pub struct MeshBehaviour {
    pub identify: identify::Behaviour,
    pub kad: kad::Behaviour<MemoryStore>,
    pub gossipsub: gossipsub::Behaviour,
    pub rpc: cbor::Behaviour<RpcRequest, RpcResponse>,
    pub join: JoinBehaviour,
    pub ping: ping::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
}

fn behaviour(key: &Keypair, mdns_on: bool) -> Result<MeshBehaviour, MeshError> {
    let peer_id = key.public().to_peer_id();
    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())
            .with_agent_version(format!("beemesh/{}", env!("CARGO_PKG_VERSION")))
            .with_push_listen_addr_updates(true),
    );
    // Sized for records of real object counts, not the 1,024-record default.
    let store = MemoryStore::with_config(
        peer_id,
        MemoryStoreConfig {
            max_records: 1_000_000,
            max_value_bytes: MAX_VALUE_BYTES,
            max_provided_keys: 1_000_000,
            max_providers_per_key: 20,
        },
    );
    let mut kad = kad::Behaviour::with_config(peer_id, store, kad::Config::new(KAD_PROTOCOL));
    // Answer queries even before an external address is confirmed (loopback, LAN).
    kad.set_mode(Some(kad::Mode::Server));
    let gossipsub = gossipsub_behaviour(key)?;
    let codec = cbor::codec::Codec::default()
        .set_request_size_maximum(MAX_REQUEST_BYTES)
        .set_response_size_maximum(MAX_RESPONSE_BYTES);
    let rpc = request_response::Behaviour::with_codec(
        codec,
        [(RPC_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(60))
            .with_max_concurrent_streams(256),
    );
    let ping = ping::Behaviour::new(
        ping::Config::new()
            .with_interval(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(10)),
    );
    let mdns = if mdns_on {
        Some(mdns::tokio::Behaviour::new(
            mdns::Config::default(),
            peer_id,
        )?)
    } else {
        None
    };
    Ok(MeshBehaviour {
        identify,
        kad,
        gossipsub,
        rpc,
        join: join::behaviour(),
        ping,
        mdns: Toggle::from(mdns),
    })
}

/// The gossip every node runs: configuration, signing and peer scoring. Public so that
/// simulations of large meshes (`beemesh-bench gossip-sim`) run exactly this gossip.
pub fn gossipsub_behaviour(key: &Keypair) -> Result<gossipsub::Behaviour, MeshError> {
    let gossip_config = gossipsub::ConfigBuilder::default()
        .max_transmit_size(MAX_GOSSIP_BYTES)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(&Sha256::digest(&m.data)[..20])
        })
        .build()
        .map_err(|e| MeshError::Transport(format!("gossipsub config: {e}")))?;
    let mut gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossip_config,
    )
    .map_err(|e| MeshError::Transport(format!("gossipsub: {e}")))?;
    gossipsub
        .with_peer_score(
            peer_score_params(),
            gossipsub::PeerScoreThresholds::default(),
        )
        .map_err(|e| MeshError::Transport(format!("gossipsub scoring: {e}")))?;
    Ok(gossipsub)
}

/// Application score of a connected peer that is not (yet) a member: below gossipsub's
/// graylist threshold, so nothing is published, forwarded or gossiped to it and its RPCs
/// are dropped (its subscriptions are still recorded for when it becomes a member).
pub const NON_MEMBER_SCORE: f64 = -1000.0;
/// Application score of a member: high enough that the occasional behaviour penalty
/// never pushes it out of the mesh.
pub const MEMBER_SCORE: f64 = 100.0;

/// Scoring is used only to keep non-members out of gossip: the application score (set
/// by membership) dominates; many peers on one IP (loopback meshes, NAT) are normal.
fn peer_score_params() -> gossipsub::PeerScoreParams {
    gossipsub::PeerScoreParams {
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: -1.0,
        ..gossipsub::PeerScoreParams::default()
    }
}

/// Connections stay up while the peers are members; liveness is ping's job.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

pub fn build_swarm(key: &Keypair, mdns_on: bool) -> Result<Swarm<MeshBehaviour>, MeshError> {
    let base = SwarmBuilder::with_existing_identity(key.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| MeshError::Transport(e.to_string()))?;
    #[cfg(feature = "quic")]
    let base = base.with_quic();
    let swarm = base
        .with_behaviour(|key| {
            behaviour(key, mdns_on)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|e| MeshError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}
