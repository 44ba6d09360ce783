//! Controllers that act on stored objects. Each reconcile is idempotent, so running one
//! twice (or on two nodes during churn) is harmless.

mod change_wait;
pub mod container_events;
mod controller_support;
pub mod crds;
pub mod cron_schedule;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod event_ttl;
pub mod garbage_collector;
pub mod job;
pub mod namespaces;
pub mod node_lifecycle;
pub mod node_registration;
pub mod placement;
pub mod pod_agent;
pub mod pod_env;
pub mod pod_prepare;
pub mod pod_termination;
pub mod pod_volumes;
pub mod probes;
pub mod replicaset;
pub mod resource_quota;
pub mod runtime;
mod service_pods;
pub mod sim_nodes;

pub use crds::{CrdController, CrdRegistrar};
pub use cronjob::CronJobController;
pub use daemonset::DaemonSetController;
pub use deployment::DeploymentController;
pub use endpoints::EndpointsController;
pub use endpointslice::EndpointSliceController;
pub use event_ttl::EventTtlController;
pub use garbage_collector::GarbageCollector;
pub use job::JobController;
pub use namespaces::NamespaceController;
pub use node_lifecycle::NodeLifecycleController;
pub use node_registration::{NodeConfig, NodeRegistration};
pub use placement::PlacementController;
pub use pod_agent::PodAgent;
pub use pod_termination::PodTerminationController;
pub use replicaset::ReplicaSetController;
pub use resource_quota::ResourceQuotaController;
