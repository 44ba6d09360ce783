//! `/beemesh/join/1`: the one protocol a peer may use before it is a member.
//!
//! - `Credential`: "show me your membership credential" (the member certificate). Both
//!   sides of every new connection ask it of each other, and the [`PeerAuthorizer`] judges
//!   the answer; nothing else is exchanged with a peer before that.
//! - `Admit`: a node that holds a join token asks a member for the mesh's secrets. The
//!   request and the answer are opaque to the mesh; the configured [`Admitter`] decides.
//!
//! [`request_admission`] is the joiner's side: a short-lived swarm that speaks only this
//! protocol, run before the node's real mesh starts (it needs the answer to build its
//! credential).
//!
//! [`PeerAuthorizer`]: super::PeerAuthorizer

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport, cbor};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, noise, tcp, yamux};
use serde::{Deserialize, Serialize};

use super::MeshError;

/// The join protocol's name.
pub const JOIN_PROTOCOL: StreamProtocol = StreamProtocol::new("/beemesh/join/1");

/// Credentials and admission payloads are small (a certificate, a CA bundle).
const MAX_JOIN_MESSAGE_BYTES: u64 = 64 << 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum JoinRequest {
    /// The responder's membership credential, please.
    Credential,
    /// Admit me: an admission request the responder's [`Admitter`] understands.
    Admit(Bytes),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum JoinResponse {
    /// The responder's credential (empty when it has none).
    Credential(Bytes),
    /// What the admitter hands a new member.
    Admitted(Bytes),
    /// Admission refused, and why.
    Refused(String),
}

/// The admitter's answer: the bytes handed to the joiner, or why it was refused.
pub type AdmitFuture = Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send>>;

/// Decides `Admit` requests: called with the joiner's (noise-authenticated) peer id and
/// its request. A node without one refuses every admission.
#[derive(Clone)]
pub struct Admitter(pub Arc<dyn Fn(PeerId, Bytes) -> AdmitFuture + Send + Sync>);

impl std::fmt::Debug for Admitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admitter")
    }
}

pub type JoinBehaviour = cbor::Behaviour<JoinRequest, JoinResponse>;

/// The join protocol's behaviour (inside the mesh and in the joiner's short-lived swarm).
pub fn behaviour() -> JoinBehaviour {
    let codec = cbor::codec::Codec::default()
        .set_request_size_maximum(MAX_JOIN_MESSAGE_BYTES)
        .set_response_size_maximum(MAX_JOIN_MESSAGE_BYTES);
    request_response::Behaviour::with_codec(
        codec,
        [(JOIN_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(10))
            .with_max_concurrent_streams(16),
    )
}

fn join_swarm(keypair: &Keypair) -> Result<Swarm<JoinBehaviour>, MeshError> {
    let base = SwarmBuilder::with_existing_identity(keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| MeshError::Transport(e.to_string()))?;
    #[cfg(feature = "quic")]
    let base = base.with_quic();
    Ok(base
        .with_behaviour(|_| behaviour())
        .map_err(|e| MeshError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build())
}

/// Asks the member at `addr` to admit this node (`keypair`). `request` builds the
/// admission request once the member's peer id is known (noise authenticated it, so a
/// request bound to it is useless to anyone else). Returns the member's peer id and its
/// answer; a refusal is [`MeshError::Remote`].
pub async fn request_admission(
    keypair: &Keypair,
    addr: Multiaddr,
    request: impl FnOnce(PeerId) -> Bytes,
    timeout: Duration,
) -> Result<(PeerId, Bytes), MeshError> {
    let mut swarm = join_swarm(keypair)?;
    swarm.dial(addr.clone()).map_err(|e| MeshError::Dial {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    let exchange = async {
        let mut request = Some(request);
        let mut member = None;
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    if let Some(build) = request.take() {
                        member = Some(peer_id);
                        let payload = build(peer_id);
                        swarm
                            .behaviour_mut()
                            .send_request(&peer_id, JoinRequest::Admit(payload));
                    }
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    return Err(MeshError::Dial {
                        addr: addr.clone(),
                        reason: error.to_string(),
                    });
                }
                SwarmEvent::Behaviour(request_response::Event::Message {
                    peer,
                    message: request_response::Message::Response { response, .. },
                    ..
                }) if Some(peer) == member => {
                    return match response {
                        JoinResponse::Admitted(bytes) => Ok((peer, bytes)),
                        JoinResponse::Refused(message) => Err(MeshError::Remote { peer, message }),
                        JoinResponse::Credential(_) => Err(MeshError::Protocol {
                            peer,
                            reason: "answered an admission with a credential".into(),
                        }),
                    };
                }
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    peer,
                    error,
                    ..
                }) => {
                    return Err(MeshError::Unreachable {
                        peer,
                        reason: format!("{error} (is it a beemesh node of this version?)"),
                    });
                }
                _ => {}
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(MeshError::Dial {
            addr,
            reason: format!("no admission answer within {timeout:?}"),
        }),
    }
}
