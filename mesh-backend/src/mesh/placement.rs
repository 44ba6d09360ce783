//! The transport of placement's tender/bid exchange (ADR 0009): a placement home
//! publishes a batch of tenders on the gossipsub topic [`TENDER_TOPIC`]; every member
//! that hosts Nodes answers the home with its bids over the request-response protocol
//! (`RpcRequest::Bids`). The payloads are opaque here (the workloads crate encodes them),
//! so the mesh carries them without knowing what a pod or a bid is.
//!
//! Only members' tenders are handed on (a non-member's gossip is ignored like any other
//! publication), and bids are requests, which only members may send.

use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::wire::{RpcRequest, RpcResponse};
use super::{MeshError, MeshHandle, PeerId, event_loop::Command, response_name};

/// The gossipsub topic tenders travel on. Outside `beemesh/v1/`: it replicates nothing.
pub const TENDER_TOPIC: &str = "beemesh/placement/tenders";
/// Largest tender batch or bid batch the mesh carries.
pub const MAX_PLACEMENT_BYTES: usize = 1 << 20;
/// Tenders and bids waiting for the placement code; more are dropped (a dropped tender
/// gets no bid and the home falls back to its replica; a dropped bid likewise).
const INBOX: usize = 256;

/// What arrived for placement: `(sender, payload)`.
pub type PlacementMessage = (PeerId, Bytes);

/// The receiving ends, taken once by the placement code.
pub struct PlacementInbox {
    /// Tender batches other members published.
    pub tenders: mpsc::Receiver<PlacementMessage>,
    /// Bid batches other members sent to this node as a tender's home.
    pub bids: mpsc::Receiver<PlacementMessage>,
}

/// The event loop's sending ends and the inbox until it is taken.
pub(crate) struct PlacementSinks {
    pub tenders: mpsc::Sender<PlacementMessage>,
    pub bids: mpsc::Sender<PlacementMessage>,
    inbox: Mutex<Option<PlacementInbox>>,
}

impl PlacementSinks {
    pub fn new() -> Self {
        let (tenders, tenders_rx) = mpsc::channel(INBOX);
        let (bids, bids_rx) = mpsc::channel(INBOX);
        PlacementSinks {
            tenders,
            bids,
            inbox: Mutex::new(Some(PlacementInbox {
                tenders: tenders_rx,
                bids: bids_rx,
            })),
        }
    }
}

impl MeshHandle {
    /// The tenders and bids that reach this node; `None` after the first call.
    pub fn placement_inbox(&self) -> Option<PlacementInbox> {
        self.shared().placement.inbox.lock().take()
    }

    /// Publishes a tender batch to every member (none when this node is alone).
    pub async fn publish_tender(&self, payload: Vec<u8>) -> Result<(), MeshError> {
        if payload.len() > MAX_PLACEMENT_BYTES {
            return Err(MeshError::Transport(format!(
                "a tender batch of {} bytes is over {MAX_PLACEMENT_BYTES}",
                payload.len()
            )));
        }
        self.command(Command::Publish {
            topic: TENDER_TOPIC.to_string(),
            data: payload,
        })
        .await
    }

    /// Sends a bid batch to the home that tendered, waiting at most `timeout`.
    pub async fn send_bids(
        &self,
        home: PeerId,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<(), MeshError> {
        if payload.len() > MAX_PLACEMENT_BYTES {
            return Err(MeshError::Transport(format!(
                "a bid batch of {} bytes is over {MAX_PLACEMENT_BYTES}",
                payload.len()
            )));
        }
        match self
            .request(home, RpcRequest::Bids(payload), timeout)
            .await?
        {
            RpcResponse::BidsTaken => Ok(()),
            RpcResponse::Error(message) => Err(MeshError::Remote {
                peer: home,
                message,
            }),
            other => Err(MeshError::Protocol {
                peer: home,
                reason: format!("expected bids taken, got {}", response_name(&other)),
            }),
        }
    }
}
