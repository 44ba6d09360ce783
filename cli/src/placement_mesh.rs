//! Placement's tender/bid exchange over this node's mesh (ADR 0009): the workloads crate
//! speaks [`TenderTransport`] with peer ids as text; this adapts it to the libp2p mesh
//! (tenders on gossipsub, bids by request-response).

use std::sync::Arc;
use std::time::Duration;

use beemesh_mesh_backend::mesh::{MeshHandle, PeerId, PlacementInbox, PlacementMessage};
use beemesh_translator::service::ObjectService;
use beemesh_workloads::placement::mesh_bids::{
    DEFAULT_WINDOW, Inbound, MeshBids, PlacementStats, TenderTransport,
};
use tokio::sync::mpsc;

/// `futures::future::BoxFuture`, spelled out (this crate does not depend on futures).
type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// How long a bidder's request to the home may take (the home waits far less).
const BID_TIMEOUT: Duration = Duration::from_secs(1);

/// [`TenderTransport`] over a [`MeshHandle`].
pub struct MeshTransport(pub MeshHandle);

impl TenderTransport for MeshTransport {
    fn local_peer(&self) -> String {
        self.0.local_peer_id().to_string()
    }

    fn live_peers(&self) -> Vec<String> {
        self.0
            .member_view()
            .peers
            .keys()
            .map(PeerId::to_string)
            .collect()
    }

    fn publish_tender(&self, payload: Vec<u8>) -> BoxFuture<Result<(), String>> {
        let mesh = self.0.clone();
        Box::pin(async move {
            mesh.publish_tender(payload)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn send_bids(&self, home: &str, payload: Vec<u8>) -> BoxFuture<Result<(), String>> {
        let mesh = self.0.clone();
        let home = home.parse::<PeerId>();
        Box::pin(async move {
            let home = home.map_err(|e| format!("bad home peer id: {e}"))?;
            mesh.send_bids(home, payload.into(), BID_TIMEOUT)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Forwards the mesh's receiving end as `(peer id text, payload)`.
fn inbound(mut rx: mpsc::Receiver<PlacementMessage>) -> Inbound {
    let (tx, out) = mpsc::channel(256);
    tokio::spawn(async move {
        while let Some((peer, payload)) = rx.recv().await {
            if tx.send((peer.to_string(), payload.to_vec())).await.is_err() {
                return;
            }
        }
    });
    out
}

/// Starts the exchange on `mesh` (once per process: it takes the mesh's placement inbox);
/// `None` if the inbox was taken already.
pub fn start(mesh: &MeshHandle, service: ObjectService) -> Option<Arc<MeshBids>> {
    let PlacementInbox { tenders, bids } = mesh.placement_inbox()?;
    Some(MeshBids::start(
        service,
        Arc::new(MeshTransport(mesh.clone())),
        (inbound(tenders), inbound(bids)),
        PlacementStats::global(),
        DEFAULT_WINDOW,
    ))
}
