//! Bytes and keys: the node's fjall replica with its revision counter and event
//! history (and, with the mesh, the libp2p swarm that fills it).

pub mod replica;

pub use replica::{
    Event, EventKind, Mutation, ReadView, Replica, ReplicaConfig, ReplicaError, Subscription,
    SubscriptionEnd,
};
