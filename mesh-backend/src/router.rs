//! Where a write is decided: the key's home. `WriteRouter` is what the object layer
//! commits through; `LocalRouter` is the single-node case (this node is every key's
//! home), the mesh handle the multi-node one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::replica::{CasConflict, Entry, Expected, Replica, ReplicaError};

/// Why a commit did not happen (a conflict is not an error: it is `Ok(Err(_))`).
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The key's home could not be reached or did not answer in time; nothing was written.
    #[error("the home node of this object is unavailable: {0}")]
    Unavailable(String),
    /// The home got the request but did not answer in time: the write may or may not
    /// have happened there.
    #[error("the home node of this object did not answer in time: {0}")]
    Timeout(String),
}

/// The outcome of a commit: the entry as stored in *this* node's replica, or a conflict.
pub type CommitResult = Result<Result<Entry, CasConflict>, CommitError>;

/// A boxed commit future (the trait is object safe).
pub type CommitFuture<'a> = Pin<Box<dyn Future<Output = CommitResult> + Send + 'a>>;

/// Sends a compare-and-set to the key's home and, once it succeeded there, makes it
/// visible in this node's replica before returning (read-your-writes).
pub trait WriteRouter: Send + Sync {
    fn commit<'a>(
        &'a self,
        key: &'a [u8],
        expected: Expected,
        deleted: bool,
        value: Bytes,
    ) -> CommitFuture<'a>;

    /// Whether this node is the key's home now: controllers reconcile only the objects
    /// they are home for, which shards the work without leader election.
    fn is_home(&self, _key: &[u8]) -> bool {
        true
    }
}

/// Every key's home is this node.
pub struct LocalRouter {
    replica: Arc<Replica>,
}

impl LocalRouter {
    pub fn new(replica: Arc<Replica>) -> Self {
        LocalRouter { replica }
    }
}

impl WriteRouter for LocalRouter {
    fn commit<'a>(
        &'a self,
        key: &'a [u8],
        expected: Expected,
        deleted: bool,
        value: Bytes,
    ) -> CommitFuture<'a> {
        Box::pin(async move { Ok(self.replica.cas(key, &expected, deleted, value).await?) })
    }
}
