//! Controllers that act on stored objects. Each reconcile is idempotent, so running one
//! twice (or on two nodes during churn) is harmless.

pub mod crds;
pub mod event_ttl;
pub mod namespaces;

pub use crds::{CrdController, CrdRegistrar};
pub use event_ttl::EventTtlController;
pub use namespaces::NamespaceController;
