//! Container runtimes behind one trait: what the pod agent (`pod_agent`, the kubelet's
//! role) asks of whatever actually runs a pod's containers.
//!
//! The trait is shaped for three providers (`--runtime`): `sim` (here: kwok-style, nothing
//! runs), and next `docker` (the Docker Engine API through bollard: one container per pod
//! container plus a pause-like network owner, `stop_pod` = `docker stop -t grace`) and
//! `process` (each container's command as a host process in a per-pod working directory,
//! SIGTERM then SIGKILL after the grace period). Those two are not built yet; `beemesh up`
//! refuses them at startup.
//!
//! The pod agent owns the Kubernetes side (pod status, conditions, deletion); a runtime
//! only starts, stops and reports. Runtimes are keyed by pod uid, so a pod deleted and
//! recreated under the same name is a different pod to them.

pub mod sim;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use sim::{SimConfig, SimRuntime};

/// A boxed future, so `dyn Runtime` works (async fns in traits are not object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Errors a runtime reports.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The `--runtime` named is not one BeeMesh has (yet).
    #[error("--runtime {0}: not implemented yet (available: sim)")]
    NotImplemented(String),
    #[error("unknown runtime {0:?} (one of sim, process, docker)")]
    Unknown(String),
    /// The node's pod address range is used up.
    #[error("no free pod IP in {0}")]
    NoFreeIp(String),
    #[error("{0}")]
    Other(String),
}

/// Which runtime a node runs (`--runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    Sim,
    Process,
    Docker,
}

impl std::str::FromStr for RuntimeKind {
    type Err = RuntimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sim" => Ok(RuntimeKind::Sim),
            "process" => Ok(RuntimeKind::Process),
            "docker" => Ok(RuntimeKind::Docker),
            other => Err(RuntimeError::Unknown(other.to_string())),
        }
    }
}

impl RuntimeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Sim => "sim",
            RuntimeKind::Process => "process",
            RuntimeKind::Docker => "docker",
        }
    }
}

/// One container of a pod, as a runtime needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
}

/// What to start: the parts of a pod's spec a runtime acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodStart {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub init_containers: Vec<ContainerSpec>,
    pub containers: Vec<ContainerSpec>,
    /// `Always`, `OnFailure` or `Never`.
    pub restart_policy: String,
    /// The pod's annotations (the sim runtime reads `sim.beemesh.io/*` from them).
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// A container's state, as `containerStatuses[].state` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Waiting {
        reason: String,
    },
    Running {
        started_at: DateTime<Utc>,
    },
    Terminated {
        exit_code: i32,
        reason: String,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
    },
}

/// One container as the runtime sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub name: String,
    pub image: String,
    pub image_id: String,
    /// `<runtime>://<id>` (e.g. `sim://...`, `docker://...`).
    pub container_id: String,
    pub state: ContainerState,
    pub restart_count: u32,
}

/// A pod as the runtime sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRuntimeStatus {
    pub init_containers: Vec<ContainerStatus>,
    pub containers: Vec<ContainerStatus>,
    /// The pod's addresses (the first is `status.podIP`).
    pub ips: Vec<IpAddr>,
    /// When the state will move on by itself (a sim delay or completion), so the agent
    /// looks again then; real runtimes report such changes as events instead.
    pub recheck_after: Option<Duration>,
}

/// What runs pods on a node. Every method is keyed by pod uid and idempotent: starting a
/// started pod or stopping a stopped one does nothing.
pub trait Runtime: Send + Sync {
    /// `sim`, `process` or `docker` (the scheme of container ids).
    fn name(&self) -> &'static str;

    /// Creates the pod's sandbox (its IP) and starts its containers.
    fn start_pod<'a>(&'a self, pod: &'a PodStart) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// Stops the pod's containers, each given `grace` between the polite and the forced
    /// stop, and releases the sandbox.
    fn stop_pod<'a>(
        &'a self,
        uid: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>>;

    /// The pod's containers now, `None` when the runtime does not know the pod.
    fn pod_status<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, Option<PodRuntimeStatus>>;

    /// The uids of every pod the runtime holds (the agent stops those no longer bound here).
    fn pods(&self) -> BoxFuture<'_, Vec<String>>;
}
