//! Publishing the changes this node versions, and applying what others publish.

use tokio::sync::mpsc;

use super::event_loop::Command;
use super::wire::{MAX_GOSSIP_BYTES, encode_publication, topic_of};
use super::{MeshHandle, bump};
use crate::replica::{Entry, EventKind, ReplicaError, SubscriptionEnd};

/// Publishes every change this node assigned a version to (`Event::local`) on the key's
/// topic, in revision order. Changes missed while lagging are left to anti-entropy.
pub async fn run_publisher(handle: MeshHandle) {
    let replica = handle.replica().clone();
    let Some(mut events) = replica.subscribe(replica.revision()) else {
        return;
    };
    loop {
        match events.next().await {
            Ok(event) => {
                if !event.local {
                    continue;
                }
                let entry = Entry {
                    key: event.key.clone(),
                    version: event.version.clone(),
                    deleted: event.kind == EventKind::Delete,
                    value: event.value.clone(),
                };
                let data = encode_publication(&entry);
                if data.len() > MAX_GOSSIP_BYTES - 1024 {
                    tracing::warn!(
                        key = %String::from_utf8_lossy(&entry.key),
                        bytes = data.len(),
                        "change too large to publish; anti-entropy will carry it"
                    );
                    continue;
                }
                let command = Command::Publish {
                    topic: topic_of(&entry.key),
                    data,
                };
                if handle.command(command).await.is_err() {
                    return;
                }
            }
            Err(SubscriptionEnd::Lagged) => {
                let from = events.last_revision();
                tracing::debug!(from, "mesh publisher lagged behind the replica");
                let resumed = replica
                    .subscribe(from)
                    .or_else(|| replica.subscribe(replica.revision()));
                match resumed {
                    Some(s) => events = s,
                    None => return,
                }
            }
            Err(SubscriptionEnd::Closed) => return,
        }
    }
}

const APPLY_BATCH_ENTRIES: usize = 1024;
const APPLY_BATCH_BYTES: usize = 8 << 20;

/// Applies received publications, batching whatever queued up into one fsync.
pub async fn run_applier(handle: MeshHandle, mut queue: mpsc::Receiver<Entry>) {
    let replica = handle.replica().clone();
    while let Some(first) = queue.recv().await {
        let mut bytes = first.value.len();
        let mut batch = vec![first];
        while batch.len() < APPLY_BATCH_ENTRIES && bytes < APPLY_BATCH_BYTES {
            match queue.try_recv() {
                Ok(entry) => {
                    bytes += entry.value.len();
                    batch.push(entry);
                }
                Err(_) => break,
            }
        }
        match replica.apply_many(batch).await {
            Ok(applied) => bump(
                &handle.shared().counters.publications_applied,
                applied as u64,
            ),
            Err(ReplicaError::Closed) => return,
            Err(error) => tracing::error!(%error, "mesh cannot apply publications"),
        }
    }
}
