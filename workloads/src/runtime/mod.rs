//! Container runtimes behind one trait: what the pod agent (`pod_agent`, the kubelet's
//! role) asks of whatever actually runs a pod's containers.
//!
//! Three providers (`--runtime`, ADR 0010): `sim` (kwok-style, nothing runs), `docker`
//! (the Docker Engine API through bollard: a sandbox container owning the pod's network
//! plus one container per pod container) and `process` (each container's command as a
//! host process in a per-pod working directory, SIGTERM then SIGKILL after the grace
//! period).
//!
//! The pod agent owns the Kubernetes side (pod status, conditions, deletion); a runtime
//! only starts, stops and reports. Runtimes are keyed by pod uid, so a pod deleted and
//! recreated under the same name is a different pod to them.

pub mod docker;
pub mod process;
pub mod sim;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use docker::{DockerConfig, DockerRuntime};
pub use process::{ProcessConfig, ProcessRuntime};
pub use sim::{SimConfig, SimRuntime};

/// A boxed future, so `dyn Runtime` works (async fns in traits are not object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Errors a runtime reports.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("unknown runtime {0:?} (one of sim, process, docker)")]
    Unknown(String),
    /// The node's pod address range is used up.
    #[error("no free pod IP in {0}")]
    NoFreeIp(String),
    /// The runtime does not do this (the `sim` runtime runs no processes to log or exec).
    #[error(
        "the {0} runtime runs no containers: logs, exec, attach and port-forward need --runtime docker or process"
    )]
    Unsupported(&'static str),
    /// The runtime does not hold this pod or container (gone, or not started yet).
    #[error("{0}")]
    NotFound(String),
    /// The container exists but is not in a state that allows this (not running; no
    /// previous run for `--previous`).
    #[error("{0}")]
    BadRequest(String),
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

/// One container of a pod, as a runtime needs it: everything the pod agent resolved from
/// the API already (env from ConfigMaps, Secrets and the downward API; volumes written
/// to the host), so a runtime never reads the store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never` (defaulted by the API).
    pub image_pull_policy: String,
    /// `command` (the image's entrypoint when empty).
    pub command: Vec<String>,
    /// `args` (the image's cmd when both are empty).
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    /// Resolved environment, in the order the container declares it (later wins).
    pub env: Vec<(String, String)>,
    /// Volumes, materialised on the host by the agent.
    pub mounts: Vec<VolumeMount>,
    /// Declared `containerPort`s (TCP), for port-forward and probes by name.
    pub ports: Vec<NamedPort>,
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
}

/// One `volumeMounts[]` entry, with its volume already on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// Where the volume's content is on this host (a directory, or a file with `subPath`).
    pub host_path: std::path::PathBuf,
    /// `mountPath` inside the container.
    pub container_path: String,
    pub read_only: bool,
}

/// A declared container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPort {
    pub name: Option<String>,
    pub port: u16,
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
    /// `terminationGracePeriodSeconds` (30 by default): how long a container gets between
    /// SIGTERM and SIGKILL when the runtime restarts it (liveness failure).
    pub termination_grace: Duration,
}

/// A container's state, as `containerStatuses[].state` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Waiting {
        reason: String,
        /// Why, for a reason such as `ErrImagePull` or `CrashLoopBackOff` (the kubelet's
        /// `back-off 10s restarting failed container=...`).
        message: Option<String>,
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
    /// The previous run's end (`lastState.terminated`), once the container restarted.
    pub last_state: Option<ContainerState>,
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

/// A stream of bytes from a container (logs, stdout, stderr).
pub type ByteStream = Pin<Box<dyn futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send>>;

/// `kubectl logs` options (`PodLogOptions`), as the runtime applies them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    /// Only the last N lines.
    pub tail_lines: Option<u64>,
    /// Only lines written at or after this time (`sinceSeconds` / `sinceTime`).
    pub since: Option<DateTime<Utc>>,
    /// Prefix each line with its RFC 3339 (nanosecond) time and a space.
    pub timestamps: bool,
    /// The previous (terminated) run of the container.
    pub previous: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
}

/// What an exec or attach asks for (the streams the client opened).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamRequest {
    /// The command to run (exec); empty for attach.
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A terminal size change (`resize` channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    pub width: u16,
    pub height: u16,
}

/// A running exec or attach: the protocol layer copies between these and the client.
pub struct StreamSession {
    /// The process's stdin, when asked for; dropping it closes stdin.
    pub stdin: Option<Pin<Box<dyn tokio::io::AsyncWrite + Send>>>,
    pub stdout: Option<ByteStream>,
    /// With a tty, stderr is merged into stdout and this is `None`.
    pub stderr: Option<ByteStream>,
    /// Terminal resizes, when a tty was asked for.
    pub resize: Option<tokio::sync::mpsc::UnboundedSender<TerminalSize>>,
    /// The exit code once the process ends (attach: when the container's process ends).
    pub exit: BoxFuture<'static, Result<i32, RuntimeError>>,
}

/// A byte stream both ways (port-forward's connection to the pod's port).
pub trait Duplex: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Duplex for T {}

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

    /// Drops what the runtime keeps of a stopped pod (its logs, working directory) once the
    /// pod is gone from the API; until then a finished pod's logs stay readable, as the
    /// kubelet keeps them. Called after `stop_pod`; a pod it does not know is fine.
    fn forget_pod<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, ()> {
        let _ = uid;
        Box::pin(async {})
    }

    /// Where the agent writes this pod's volumes (ConfigMap, Secret, downward API files,
    /// emptyDirs) for the runtime to mount; `None` for a runtime that runs nothing (`sim`),
    /// which also skips resolving env from ConfigMaps and Secrets.
    fn pod_volume_dir(&self, uid: &str) -> Option<std::path::PathBuf> {
        let _ = uid;
        None
    }

    /// Kills and restarts one container (a failed liveness probe), counting the restart.
    fn restart_container<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        let _ = (uid, container, grace);
        Box::pin(async move { Err(RuntimeError::Unsupported(self.name())) })
    }

    /// A container's log (`kubectl logs`).
    fn logs<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, Result<ByteStream, RuntimeError>> {
        let _ = (uid, container, options);
        Box::pin(async move { Err(RuntimeError::Unsupported(self.name())) })
    }

    /// Runs a command in a running container (`kubectl exec`, and exec probes).
    fn exec<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        request: &'a StreamRequest,
    ) -> BoxFuture<'a, Result<StreamSession, RuntimeError>> {
        let _ = (uid, container, request);
        Box::pin(async move { Err(RuntimeError::Unsupported(self.name())) })
    }

    /// Attaches to a running container's main process (`kubectl attach`, `run -i`).
    fn attach<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        request: &'a StreamRequest,
    ) -> BoxFuture<'a, Result<StreamSession, RuntimeError>> {
        let _ = (uid, container, request);
        Box::pin(async move { Err(RuntimeError::Unsupported(self.name())) })
    }

    /// A connection to `port` in the pod's network namespace (`kubectl port-forward`).
    fn port_forward<'a>(
        &'a self,
        uid: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Box<dyn Duplex>, RuntimeError>> {
        let _ = (uid, port);
        Box::pin(async move { Err(RuntimeError::Unsupported(self.name())) })
    }
}
