//! Bytes and keys: the node's fjall replica with its revision counter and event
//! history (and, with the mesh, the libp2p swarm that fills it).

pub mod digest;
pub mod mesh;
pub mod replica;
pub mod router;
pub mod trust;
pub mod version;

pub use replica::{
    CasConflict, Entry, Event, EventKind, Expected, Mutation, ReadView, Replica, ReplicaConfig,
    ReplicaError, Stamper, Subscription, SubscriptionEnd,
};
pub use router::{CommitError, CommitFuture, CommitResult, LocalRouter, WriteRouter};
pub use version::{Hlc, Version};
