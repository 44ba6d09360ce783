//! How a node joins the mesh: its identity, addresses, peers to join and the hook that
//! decides which peers are trusted.

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};

use super::MeshError;
use super::join::Admitter;

/// The answer of a [`PeerAuthorizer`].
pub type AuthorizeFuture = Pin<Box<dyn Future<Output = bool> + Send>>;

/// Decides whether an identified peer that speaks our protocols may become a member,
/// given the credential it presented over the join protocol (empty if it presented
/// none). Until it answers, the peer's requests wait, nothing is published to it and its
/// publications are ignored; a refused peer is disconnected. The mesh CA plugs its
/// certificate check in here.
#[derive(Clone)]
pub struct PeerAuthorizer(pub Arc<dyn Fn(PeerId, Bytes) -> AuthorizeFuture + Send + Sync>);

impl PeerAuthorizer {
    /// Trusts every peer (tests, and meshes without a CA).
    pub fn allow_all() -> Self {
        PeerAuthorizer(Arc::new(|_, _| Box::pin(async { true })))
    }
}

impl std::fmt::Debug for PeerAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerAuthorizer")
    }
}

/// Everything [`super::Mesh::start`] needs besides the replica.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// The node's identity; its peer id must be the replica's origin.
    pub keypair: Keypair,
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/7946` and `/ip4/0.0.0.0/udp/7946/quic-v1`.
    pub listen: Vec<Multiaddr>,
    /// Members to join through (any one reachable member is enough).
    pub join: Vec<Multiaddr>,
    /// Discover peers on the local network by multicast. Off unless asked for: it sends
    /// packets out of the machine's real interfaces.
    pub mdns: bool,
    /// How long a forwarded write waits for the home's answer.
    pub forward_timeout: Duration,
    /// How long an anti-entropy request (digests, version lists, batches) may take.
    pub sync_request_timeout: Duration,
    /// How often anti-entropy runs with a random member (it also runs on every new
    /// connection).
    pub anti_entropy_interval: Duration,
    /// Topics (`beemesh/v1/<group>/<plural>`) to subscribe to from the start. Topics that
    /// peers subscribe to or that appear in the replica are followed as they show up.
    pub topics: Vec<String>,
    /// Which peers may become members.
    pub authorizer: PeerAuthorizer,
    /// What this node presents to peers that ask for its credential (its member
    /// certificate); empty = nothing.
    pub credential: Bytes,
    /// Who may join through this node; `None` refuses every admission.
    pub admitter: Option<Admitter>,
    /// A node that was a member before and meets no member within this time serves from
    /// its own replica (it counts as synced). `None` waits for a member forever.
    pub standalone_after: Option<Duration>,
}

impl MeshConfig {
    /// A node with `keypair` that listens on nothing and joins nobody yet.
    pub fn new(keypair: Keypair) -> Self {
        MeshConfig {
            keypair,
            listen: Vec::new(),
            join: Vec::new(),
            mdns: false,
            forward_timeout: Duration::from_secs(5),
            sync_request_timeout: Duration::from_secs(30),
            anti_entropy_interval: Duration::from_secs(5),
            topics: Vec::new(),
            authorizer: PeerAuthorizer::allow_all(),
            credential: Bytes::new(),
            admitter: None,
            standalone_after: None,
        }
    }
}

/// Loads the node's ed25519 identity from `path`, creating it (mode 0600) on first use,
/// so that the peer id survives restarts.
pub fn load_or_create_keypair(path: &Path) -> Result<Keypair, MeshError> {
    match std::fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| MeshError::Keypair(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keypair = Keypair::generate_ed25519();
            let encoded = keypair
                .to_protobuf_encoding()
                .map_err(|e| MeshError::Keypair(e.to_string()))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("tmp");
            {
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(&tmp)?;
                file.write_all(&encoded)?;
                file.sync_all()?;
            }
            std::fs::rename(&tmp, path)?;
            Ok(keypair)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keypair_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p2p").join("identity.key");
        let first = load_or_create_keypair(&path).unwrap();
        let again = load_or_create_keypair(&path).unwrap();
        assert_eq!(first.public().to_peer_id(), again.public().to_peer_id());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(
            load_or_create_keypair(&path),
            Err(MeshError::Keypair(_))
        ));
    }
}
