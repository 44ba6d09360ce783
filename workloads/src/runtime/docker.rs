//! The `docker` runtime: a pod's containers as Docker containers, through the Docker Engine
//! API (bollard, over the local socket).
//!
//! - **Sandbox**: each pod gets a small container that only sleeps and owns the pod's
//!   network namespace (the pause container's role). Its image, `beemesh-sandbox`, is made
//!   on first use by importing the host's static busybox (`busybox-static`) into an empty
//!   image, since there is no registry to pull `pause` from. App and init containers join
//!   it with `network_mode: container:<sandbox>`, so they share localhost and the pod IP,
//!   and a crashing app container does not take the pod's address with it.
//! - **Network**: one bridge network per node, `beemesh-<node>`, `internal` (nothing is
//!   routed off the machine), on the node's pod range (`sim::pod_cidr`) when free, else on
//!   a range Docker picks. `status.podIP` is the sandbox's address on it; the host reaches
//!   it directly (port-forward connects there).
//! - **Images**: never pulled when present locally (whatever `imagePullPolicy` says: there
//!   is no registry here). A missing image under `Never` is `ErrImageNeverPull`; otherwise
//!   the pull is tried, and its failure is `ErrImagePull` with the engine's message, then
//!   `ImagePullBackOff` while the next try waits (10 s doubling to 5 min, as the kubelet).
//! - **Restarts**: every run of a container is a new Docker container named as dockershim
//!   named them (`k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`); the previous run is
//!   kept until the next restart so `logs --previous` reads it. Exits restart per the
//!   pod's `restartPolicy` with the kubelet's CrashLoopBackOff (first restart at once,
//!   then 10 s doubling to 5 min).
//! - **Labels** (`io.kubernetes.pod.uid`, `.name`, `.namespace`, `io.kubernetes.container.name`,
//!   `beemesh.io/node`, `beemesh.io/attempt`) make the engine the record: `pods()` lists them,
//!   and after a node restart `start_pod` adopts the containers it finds instead of starting
//!   new ones.
//! - **Finished pods**: stopping a pod whose containers have all exited only removes its
//!   sandbox (the kubelet keeps exited containers so their logs stay readable); a later
//!   stop (the pod's deletion) removes the rest.
//!
//! One task per pod watches its containers (an inspect per container per second) and
//! keeps a snapshot `pod_status` returns; the snapshot asks the agent to look again every
//! second, since the trait has no change notification.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, HostConfig, Ipam,
    IpamConfig, NetworkCreateRequest,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    ResizeContainerTTYOptionsBuilder, ResizeExecOptionsBuilder, StopContainerOptionsBuilder,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{
    BoxFuture, ByteStream, ContainerSpec, ContainerState, ContainerStatus, Duplex, LogOptions,
    PodRuntimeStatus, PodStart, Runtime, RuntimeError, StreamRequest, StreamSession, TerminalSize,
};

const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const LABEL_CONTAINER: &str = "io.kubernetes.container.name";
const LABEL_NODE: &str = "beemesh.io/node";
const LABEL_ATTEMPT: &str = "beemesh.io/attempt";
/// The container name of a pod's sandbox (dockershim's `POD`).
const SANDBOX: &str = "POD";
const SANDBOX_REPO: &str = "beemesh-sandbox";
/// Where the static busybox the sandbox image is made of is looked for.
const BUSYBOX_PATHS: [&str; 3] = ["/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"];

/// How often a pod's containers are inspected, and the agent asked to look again.
const TICK: Duration = Duration::from_secs(1);
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A run this long resets the crash backoff (the kubelet: twice the maximum backoff).
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// How long a failed pull shows `ErrImagePull` before `ImagePullBackOff`.
const ERR_IMAGE_PULL_SHOWN: Duration = Duration::from_secs(3);
const PULL_TIMEOUT: Duration = Duration::from_secs(60);

/// How a docker node's runtime is set up.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The node's name: labels, the network's name and its address range derive from it.
    pub node_name: String,
    /// Labels added to every container and network this runtime makes (tests put their
    /// owner label here, so what a killed test leaves behind is found and removed).
    pub extra_labels: Vec<(String, String)>,
    /// The node's data directory: pod volumes are written under `pods/<uid>/volumes` and
    /// bind-mounted from there (so it must be a path the engine sees, i.e. this host's).
    pub data_dir: std::path::PathBuf,
}

/// The `docker` runtime of one node.
pub struct DockerRuntime {
    shared: Arc<Shared>,
    /// `<data dir>/pods`, absolute.
    pods_dir: std::path::PathBuf,
    pods: Mutex<HashMap<String, PodHandle>>,
}

/// What every pod task of the node uses.
struct Shared {
    docker: Docker,
    node: String,
    network: String,
    extra_labels: Vec<(String, String)>,
    /// The network and sandbox image, made once.
    setup: tokio::sync::Mutex<Option<Setup>>,
}

#[derive(Clone)]
struct Setup {
    sandbox_image: String,
}

/// One running pod task.
struct PodHandle {
    status: Arc<Mutex<PodRuntimeStatus>>,
    cancel: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn docker_err(e: DockerError) -> RuntimeError {
    RuntimeError::Other(engine_message(&e))
}

/// The engine's own message for an error (what `docker` would print).
fn engine_message(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// `[a-zA-Z0-9_.-]` only (Docker object names).
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn parse_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(text?)
        .ok()?
        .with_timezone(&Utc);
    // The engine reports "0001-01-01T00:00:00Z" for never.
    (t.timestamp() > 0).then_some(t)
}

/// `Entrypoint` and `Cmd` for a container, by Kubernetes' rules: `command` replaces the
/// image's ENTRYPOINT (and drops its CMD), `args` replace its CMD.
fn entrypoint_and_cmd(spec: &ContainerSpec) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let entrypoint = (!spec.command.is_empty()).then(|| spec.command.clone());
    let cmd = (!spec.args.is_empty()).then(|| spec.args.clone());
    (entrypoint, cmd)
}

/// The kubelet's `back-off 10s restarting failed container=...` message.
fn crash_message(backoff: Duration, container: &str, pod: &PodStart) -> String {
    format!(
        "back-off {}s restarting failed container={container} pod={}_{}({})",
        backoff.as_secs(),
        pod.name,
        pod.namespace,
        pod.uid
    )
}

/// A tar archive of one executable file (the sandbox image's only content).
fn single_file_tar(path: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let name = path.trim_start_matches('/').as_bytes();
    header[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{:0width$o}\0", value, width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    };
    octal(&mut header[100..108], 0o755);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], content.len() as u64);
    octal(&mut header[136..148], 0);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

impl Shared {
    fn labels(&self, pod: &PodStart, container: &str, attempt: u32) -> HashMap<String, String> {
        let mut labels: HashMap<String, String> = self.extra_labels.iter().cloned().collect();
        labels.insert(LABEL_POD_UID.into(), pod.uid.clone());
        labels.insert(LABEL_POD_NAME.into(), pod.name.clone());
        labels.insert(LABEL_POD_NAMESPACE.into(), pod.namespace.clone());
        labels.insert(LABEL_CONTAINER.into(), container.into());
        labels.insert(LABEL_NODE.into(), self.node.clone());
        labels.insert(LABEL_ATTEMPT.into(), attempt.to_string());
        labels
    }

    /// The node's network and the sandbox image, made on first use.
    async fn setup(&self) -> Result<Setup, RuntimeError> {
        let mut guard = self.setup.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        self.ensure_network().await?;
        let sandbox_image = self.ensure_sandbox_image().await?;
        let s = Setup { sandbox_image };
        *guard = Some(s.clone());
        Ok(s)
    }

    async fn ensure_network(&self) -> Result<(), RuntimeError> {
        match self.docker.inspect_network(&self.network, None).await {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(docker_err(e)),
        }
        let mut labels: HashMap<String, String> = self.extra_labels.iter().cloned().collect();
        labels.insert(LABEL_NODE.into(), self.node.clone());
        let base = super::sim::pod_cidr(&self.node).octets();
        let request = |ipam: Option<Ipam>| NetworkCreateRequest {
            name: self.network.clone(),
            driver: Some("bridge".into()),
            internal: Some(true),
            ipam,
            labels: Some(labels.clone()),
            ..Default::default()
        };
        let own_range = Ipam {
            config: Some(vec![IpamConfig {
                subnet: Some(format!("{}.{}.{}.0/24", base[0], base[1], base[2])),
                gateway: Some(format!("{}.{}.{}.1", base[0], base[1], base[2])),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let created = match self.docker.create_network(request(Some(own_range))).await {
            Ok(_) => Ok(()),
            // The node's range overlaps another network: let the engine choose.
            Err(first) => match self.docker.create_network(request(None)).await {
                Ok(_) => Ok(()),
                Err(e) => Err(format!(
                    "{}; {}",
                    engine_message(&first),
                    engine_message(&e)
                )),
            },
        };
        if let Err(message) = created {
            // Another node process on this engine may have made it meanwhile.
            if self
                .docker
                .inspect_network(&self.network, None)
                .await
                .is_err()
            {
                return Err(RuntimeError::Other(format!(
                    "creating network {}: {message}",
                    self.network
                )));
            }
        }
        tracing::info!(network = %self.network, "docker runtime network ready");
        Ok(())
    }

    /// `beemesh-sandbox:<size>-<hash>`: an empty image with the host's static busybox.
    async fn ensure_sandbox_image(&self) -> Result<String, RuntimeError> {
        let (path, content) = BUSYBOX_PATHS
            .iter()
            .find_map(|p| std::fs::read(p).ok().map(|c| (*p, c)))
            .ok_or_else(|| {
                RuntimeError::Other(
                    "the docker runtime makes its pod sandbox image from a static busybox: \
                     install busybox-static (none at /bin/busybox)"
                        .into(),
                )
            })?;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in &content {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let tag = format!("{}-{h:016x}", content.len());
        let image = format!("{SANDBOX_REPO}:{tag}");
        if self.docker.inspect_image(&image).await.is_ok() {
            return Ok(image);
        }
        tracing::info!(%image, from = path, "importing the pod sandbox image");
        let tar = single_file_tar("bin/busybox", &content);
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(SANDBOX_REPO)
            .tag(&tag)
            .build();
        let mut progress = self.docker.create_image(
            Some(options),
            Some(bollard::body_full(Bytes::from(tar))),
            None,
        );
        while let Some(item) = progress.next().await {
            item.map_err(|e| {
                RuntimeError::Other(format!("importing {image}: {}", engine_message(&e)))
            })?;
        }
        Ok(image)
    }

    /// The pod's containers on this engine (all states), any node.
    async fn list_pod(&self, uid: &str) -> Result<Vec<Found>, RuntimeError> {
        let filters: HashMap<&str, Vec<String>> =
            [("label", vec![format!("{LABEL_POD_UID}={uid}")])].into();
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(docker_err)?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let labels = c.labels.unwrap_or_default();
                Some(Found {
                    id: c.id?,
                    container: labels.get(LABEL_CONTAINER)?.clone(),
                    attempt: labels
                        .get(LABEL_ATTEMPT)
                        .and_then(|a| a.parse().ok())
                        .unwrap_or(0),
                    running: matches!(
                        c.state,
                        Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
                    ),
                })
            })
            .collect())
    }

    /// The container running (or last run) for `container`: the newest run, or with
    /// `previous` the last one that ended (`lastState.terminated`: the newest when it is
    /// not running — a container waiting out its back-off — else the one before).
    async fn find(
        &self,
        uid: &str,
        container: &str,
        previous: bool,
    ) -> Result<Option<Found>, RuntimeError> {
        let mut runs: Vec<Found> = self
            .list_pod(uid)
            .await?
            .into_iter()
            .filter(|f| f.container == container)
            .collect();
        runs.sort_by_key(|f| std::cmp::Reverse(f.attempt));
        let skip = usize::from(previous && runs.first().is_some_and(|f| f.running));
        Ok(runs.into_iter().nth(skip))
    }

    async fn remove(&self, id: &str) {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => tracing::warn!(container = id, error = %e, "removing a container failed"),
        }
    }

    async fn stop(&self, id: &str, grace: Duration) {
        let t = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(t).build();
        match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => tracing::warn!(container = id, error = %e, "stopping a container failed"),
        }
    }
}

/// A container of a pod found on the engine.
#[derive(Debug, Clone)]
struct Found {
    id: String,
    container: String,
    attempt: u32,
    running: bool,
}

/// One container of a pod, as its task tracks it.
struct Slot {
    spec: ContainerSpec,
    init: bool,
    /// How many Docker containers were made for it (restart count + 1 once started).
    attempt: u32,
    current: Option<String>,
    previous: Option<String>,
    state: ContainerState,
    last_state: Option<ContainerState>,
    image_id: String,
    not_before: Option<Instant>,
    crash_backoff: Duration,
    pull_backoff: Duration,
    pull_failed_at: Option<Instant>,
    pull_error: String,
    /// Exited and not to be restarted.
    done: bool,
}

impl Slot {
    fn new(spec: ContainerSpec, init: bool) -> Slot {
        Slot {
            spec,
            init,
            attempt: 0,
            current: None,
            previous: None,
            state: waiting("ContainerCreating"),
            last_state: None,
            image_id: String::new(),
            not_before: None,
            crash_backoff: Duration::ZERO,
            pull_backoff: BACKOFF_START,
            pull_failed_at: None,
            pull_error: String::new(),
            done: false,
        }
    }

    fn status(&self) -> ContainerStatus {
        ContainerStatus {
            name: self.spec.name.clone(),
            image: self.spec.image.clone(),
            image_id: if self.image_id.is_empty() {
                String::new()
            } else {
                format!("docker://{}", self.image_id)
            },
            container_id: self
                .current
                .as_ref()
                .or(self.previous.as_ref())
                .map(|id| format!("docker://{id}"))
                .unwrap_or_default(),
            state: self.state.clone(),
            last_state: self.last_state.clone(),
            restart_count: self.attempt.saturating_sub(1),
        }
    }

    /// Whether an exit with `code` is followed by a new run.
    fn restarts(&self, policy: &str, code: i32) -> bool {
        match policy {
            "Never" => false,
            "OnFailure" => code != 0,
            // Init containers of `Always` pods are retried only until they succeed.
            _ => !self.init || code != 0,
        }
    }
}

fn waiting(reason: &str) -> ContainerState {
    ContainerState::Waiting {
        reason: reason.into(),
        message: None,
    }
}

/// The task that runs one pod's containers.
struct PodTask {
    shared: Arc<Shared>,
    pod: PodStart,
    status: Arc<Mutex<PodRuntimeStatus>>,
    cancel: watch::Receiver<bool>,
    sandbox: Option<String>,
    ip: Option<IpAddr>,
    init: Vec<Slot>,
    containers: Vec<Slot>,
    sandbox_backoff: Duration,
}

impl PodTask {
    fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    fn publish(&self) {
        let snapshot = PodRuntimeStatus {
            init_containers: self.init.iter().map(Slot::status).collect(),
            containers: self.containers.iter().map(Slot::status).collect(),
            ips: self.ip.into_iter().collect(),
            recheck_after: Some(TICK),
        };
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = snapshot;
    }

    async fn run(mut self) {
        self.adopt().await;
        loop {
            if self.cancelled() {
                return;
            }
            if let Err(e) = self.step().await {
                tracing::warn!(pod = %format!("{}/{}", self.pod.namespace, self.pod.name),
                    error = %e, "docker pod step failed");
            }
            self.publish();
            let mut cancel = self.cancel.clone();
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = cancel.changed() => return,
            }
        }
    }

    /// Takes over what a previous run of this node left on the engine for this pod.
    async fn adopt(&mut self) {
        let Ok(found) = self.shared.list_pod(&self.pod.uid).await else {
            return;
        };
        let mut any_app = false;
        for slot in &mut self.containers {
            let mut runs: Vec<&Found> = found
                .iter()
                .filter(|f| f.container == slot.spec.name)
                .collect();
            runs.sort_by_key(|f| std::cmp::Reverse(f.attempt));
            if let Some(newest) = runs.first() {
                any_app = true;
                slot.attempt = newest.attempt;
                slot.current = Some(newest.id.clone());
                slot.previous = runs.get(1).map(|f| f.id.clone());
                for old in runs.iter().skip(2) {
                    self.shared.remove(&old.id).await;
                }
            }
        }
        if any_app {
            let now = Utc::now();
            for slot in &mut self.init {
                slot.state = ContainerState::Terminated {
                    exit_code: 0,
                    reason: "Completed".into(),
                    started_at: now,
                    finished_at: now,
                };
                slot.done = true;
            }
        }
        if let Some(sandbox) = found.iter().find(|f| f.container == SANDBOX) {
            if sandbox.running {
                self.sandbox = Some(sandbox.id.clone());
                self.ip = self.sandbox_ip(&sandbox.id).await;
            } else {
                self.shared.remove(&sandbox.id).await;
            }
        }
        if self.sandbox.is_some() {
            tracing::info!(pod = %format!("{}/{}", self.pod.namespace, self.pod.name),
                "adopted the pod's containers");
        }
    }

    async fn sandbox_ip(&self, id: &str) -> Option<IpAddr> {
        let inspect = self.shared.docker.inspect_container(id, None).await.ok()?;
        let networks = inspect.network_settings?.networks?;
        networks
            .get(&self.shared.network)?
            .ip_address
            .as_deref()?
            .parse()
            .ok()
    }

    async fn step(&mut self) -> Result<(), RuntimeError> {
        if self.sandbox.is_none() {
            if let Err(e) = self.start_sandbox().await {
                let message = e.to_string();
                for slot in self.init.iter_mut().chain(self.containers.iter_mut()) {
                    slot.state = ContainerState::Waiting {
                        reason: "ContainerCreating".into(),
                        message: Some(message.clone()),
                    };
                }
                self.sandbox_backoff = (self.sandbox_backoff * 2)
                    .clamp(Duration::from_secs(1), Duration::from_secs(30));
                let mut cancel = self.cancel.clone();
                tokio::select! {
                    _ = tokio::time::sleep(self.sandbox_backoff) => {}
                    _ = cancel.changed() => {}
                }
                return Err(e);
            }
            for slot in self.containers.iter_mut() {
                if !self.init.is_empty() {
                    slot.state = waiting("PodInitializing");
                }
            }
        }
        let Some(sandbox) = self.sandbox.clone() else {
            return Ok(());
        };
        // Init containers one after the other, each until it succeeds.
        for i in 0..self.init.len() {
            if self.init[i].done {
                continue;
            }
            let mut slot =
                std::mem::replace(&mut self.init[i], Slot::new(ContainerSpec::default(), true));
            let r = self.advance(&mut slot, &sandbox).await;
            self.init[i] = slot;
            r?;
            if !self.init[i].done {
                return Ok(());
            }
            if matches!(self.init[i].state, ContainerState::Terminated { exit_code, .. } if exit_code != 0)
            {
                // Failed for good (`restartPolicy: Never`): the app containers never start.
                return Ok(());
            }
        }
        for i in 0..self.containers.len() {
            if self.cancelled() {
                return Ok(());
            }
            let mut slot = std::mem::replace(
                &mut self.containers[i],
                Slot::new(ContainerSpec::default(), false),
            );
            let r = self.advance(&mut slot, &sandbox).await;
            self.containers[i] = slot;
            r?;
        }
        Ok(())
    }

    async fn start_sandbox(&mut self) -> Result<(), RuntimeError> {
        let setup = self.shared.setup().await?;
        // A sandbox left from an earlier try of this pod is replaced.
        for f in self.shared.list_pod(&self.pod.uid).await? {
            if f.container == SANDBOX {
                self.shared.remove(&f.id).await;
            }
        }
        let name = format!(
            "k8s_{SANDBOX}_{}_{}_{}_0",
            self.pod.name, self.pod.namespace, self.pod.uid
        );
        let hostname: String = self.pod.name.chars().take(63).collect();
        let body = ContainerCreateBody {
            image: Some(setup.sandbox_image.clone()),
            entrypoint: Some(vec!["/bin/busybox".into()]),
            cmd: Some(vec!["sleep".into(), "2147483647".into()]),
            hostname: Some(hostname),
            labels: Some(self.shared.labels(&self.pod, SANDBOX, 0)),
            host_config: Some(HostConfig {
                network_mode: Some(self.shared.network.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .shared
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                body,
            )
            .await
            .map_err(|e| {
                // The network may have been removed under us: make it again next time.
                if let Ok(mut setup) = self.shared.setup.try_lock() {
                    *setup = None;
                }
                RuntimeError::Other(format!("creating the pod sandbox: {}", engine_message(&e)))
            })?;
        if let Err(e) = self.shared.docker.start_container(&created.id, None).await {
            self.shared.remove(&created.id).await;
            return Err(RuntimeError::Other(format!(
                "starting the pod sandbox: {}",
                engine_message(&e)
            )));
        }
        self.ip = self.sandbox_ip(&created.id).await;
        self.sandbox = Some(created.id);
        self.sandbox_backoff = Duration::ZERO;
        Ok(())
    }

    /// One look at a container: its state now, and a new run when one is due.
    async fn advance(&mut self, slot: &mut Slot, sandbox: &str) -> Result<(), RuntimeError> {
        if slot.done {
            return Ok(());
        }
        let now = Instant::now();
        if let Some(id) = slot.current.clone() {
            let inspect = match self.shared.docker.inspect_container(&id, None).await {
                Ok(i) => i,
                Err(e) if is_not_found(&e) => {
                    // Removed behind our back: run it again.
                    slot.current = None;
                    return Ok(());
                }
                Err(e) => return Err(docker_err(e)),
            };
            self.observe(slot, &inspect).await;
            return Ok(());
        }
        if slot.not_before.is_some_and(|t| t > now) {
            if let (Some(failed), ContainerState::Waiting { reason, .. }) =
                (slot.pull_failed_at, &slot.state)
                && reason == "ErrImagePull"
                && now.duration_since(failed) >= ERR_IMAGE_PULL_SHOWN
            {
                slot.state = ContainerState::Waiting {
                    reason: "ImagePullBackOff".into(),
                    message: Some(format!("Back-off pulling image \"{}\"", slot.spec.image)),
                };
            }
            return Ok(());
        }
        if !self.ensure_image(slot, now).await? {
            return Ok(());
        }
        self.create_and_start(slot, sandbox).await
    }

    /// Whether the image is here; when not, the pull is tried and its failure reported.
    async fn ensure_image(&mut self, slot: &mut Slot, now: Instant) -> Result<bool, RuntimeError> {
        let image = slot.spec.image.clone();
        match self.shared.docker.inspect_image(&image).await {
            Ok(i) => {
                slot.image_id = i.id.unwrap_or_default();
                slot.pull_failed_at = None;
                slot.pull_backoff = BACKOFF_START;
                return Ok(true);
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(docker_err(e)),
        }
        if slot.spec.image_pull_policy == "Never" {
            slot.state = ContainerState::Waiting {
                reason: "ErrImageNeverPull".into(),
                message: Some(format!(
                    "Container image \"{image}\" is not present with pull policy of Never"
                )),
            };
            slot.not_before = Some(now + BACKOFF_START);
            return Ok(false);
        }
        let options = CreateImageOptionsBuilder::new().from_image(&image).build();
        let mut pull = self.shared.docker.create_image(Some(options), None, None);
        let mut cancel = self.cancel.clone();
        let result: Result<(), String> = tokio::select! {
            r = tokio::time::timeout(PULL_TIMEOUT, async {
                while let Some(item) = pull.next().await {
                    if let Err(e) = item {
                        return Err(engine_message(&e));
                    }
                }
                Ok(())
            }) => r.unwrap_or_else(|_| Err(format!("pulling {image}: timed out"))),
            _ = cancel.changed() => return Ok(false),
        };
        match result {
            Ok(()) => match self.shared.docker.inspect_image(&image).await {
                Ok(i) => {
                    slot.image_id = i.id.unwrap_or_default();
                    Ok(true)
                }
                Err(e) => Err(docker_err(e)),
            },
            Err(message) => {
                tracing::info!(%image, %message, "image pull failed");
                slot.pull_error = message.clone();
                slot.state = ContainerState::Waiting {
                    reason: "ErrImagePull".into(),
                    message: Some(message),
                };
                slot.pull_failed_at = Some(now);
                slot.not_before = Some(now + slot.pull_backoff);
                slot.pull_backoff = (slot.pull_backoff * 2).min(BACKOFF_MAX);
                Ok(false)
            }
        }
    }

    async fn create_and_start(
        &mut self,
        slot: &mut Slot,
        sandbox: &str,
    ) -> Result<(), RuntimeError> {
        let attempt = slot.attempt + 1;
        let spec = &slot.spec;
        let name = format!(
            "k8s_{}_{}_{}_{}_{attempt}",
            spec.name, self.pod.name, self.pod.namespace, self.pod.uid
        );
        let (entrypoint, cmd) = entrypoint_and_cmd(spec);
        let binds: Vec<String> = spec
            .mounts
            .iter()
            .map(|m| {
                format!(
                    "{}:{}{}",
                    m.host_path.display(),
                    m.container_path,
                    if m.read_only { ":ro" } else { "" }
                )
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint,
            cmd,
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: spec.working_dir.clone(),
            tty: Some(spec.tty),
            open_stdin: Some(spec.stdin),
            stdin_once: Some(spec.stdin_once),
            attach_stdin: Some(spec.stdin),
            labels: Some(self.shared.labels(&self.pod, &spec.name, attempt)),
            host_config: Some(HostConfig {
                network_mode: Some(format!("container:{sandbox}")),
                binds: (!binds.is_empty()).then_some(binds),
                ..Default::default()
            }),
            ..Default::default()
        };
        // A container of this attempt left by an interrupted earlier try is replaced.
        let stale = self.shared.find(&self.pod.uid, &spec.name, false).await?;
        if let Some(f) = stale.filter(|f| f.attempt == attempt) {
            self.shared.remove(&f.id).await;
        }
        let created = match self
            .shared
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                body,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                slot.state = ContainerState::Waiting {
                    reason: "CreateContainerError".into(),
                    message: Some(engine_message(&e)),
                };
                slot.not_before = Some(Instant::now() + BACKOFF_START);
                return Ok(());
            }
        };
        slot.attempt = attempt;
        // The ended run stays as `previous` (for `--previous`) until the next one ends.
        slot.current = Some(created.id.clone());
        slot.not_before = None;
        if let Err(e) = self.shared.docker.start_container(&created.id, None).await {
            // The engine could not run it (no such executable, bad mount): the kubelet's
            // RunContainerError, counted as an exit with 128 and restarted with back-off.
            let message = engine_message(&e);
            tracing::info!(container = %slot.spec.name, %message, "container failed to start");
            let now = Utc::now();
            let term = ContainerState::Terminated {
                exit_code: 128,
                reason: "ContainerCannotRun".into(),
                started_at: now,
                finished_at: now,
            };
            self.exited(slot, term, 128, Some(("RunContainerError", message)));
            return Ok(());
        }
        if let Ok(inspect) = self
            .shared
            .docker
            .inspect_container(&created.id, None)
            .await
        {
            self.observe(slot, &inspect).await;
        }
        Ok(())
    }

    /// The container's state from an inspect; an exit leads to a restart or to `done`.
    async fn observe(&mut self, slot: &mut Slot, inspect: &ContainerInspectResponse) {
        let Some(state) = inspect.state.as_ref() else {
            return;
        };
        let started = parse_time(state.started_at.as_deref());
        match state.status {
            Some(ContainerStateStatusEnum::RUNNING)
            | Some(ContainerStateStatusEnum::PAUSED)
            | Some(ContainerStateStatusEnum::RESTARTING) => {
                let started_at = started.unwrap_or_else(Utc::now);
                if (Utc::now() - started_at).to_std().unwrap_or_default() >= BACKOFF_RESET {
                    slot.crash_backoff = Duration::ZERO;
                }
                slot.state = ContainerState::Running { started_at };
            }
            Some(ContainerStateStatusEnum::CREATED) => {
                // Created but never started (this node stopped in between): start it.
                if let Some(id) = slot.current.clone()
                    && let Err(e) = self.shared.docker.start_container(&id, None).await
                {
                    let at = Utc::now();
                    let term = ContainerState::Terminated {
                        exit_code: 128,
                        reason: "ContainerCannotRun".into(),
                        started_at: at,
                        finished_at: at,
                    };
                    self.exited(
                        slot,
                        term,
                        128,
                        Some(("RunContainerError", engine_message(&e))),
                    );
                }
            }
            _ => {
                let code = i32::try_from(state.exit_code.unwrap_or(0)).unwrap_or(1);
                let reason = if state.oom_killed == Some(true) {
                    "OOMKilled"
                } else if code == 0 {
                    "Completed"
                } else {
                    "Error"
                };
                let finished = parse_time(state.finished_at.as_deref()).unwrap_or_else(Utc::now);
                let term = ContainerState::Terminated {
                    exit_code: code,
                    reason: reason.into(),
                    started_at: started.unwrap_or(finished),
                    finished_at: finished,
                };
                self.exited(slot, term, code, None);
            }
        }
    }

    /// A run ended: restart (at once the first time, then with back-off) or stay ended.
    fn exited(
        &self,
        slot: &mut Slot,
        term: ContainerState,
        code: i32,
        waiting_reason: Option<(&str, String)>,
    ) {
        if !slot.restarts(&self.pod.restart_policy, code) {
            slot.state = term;
            slot.done = true;
            return;
        }
        let delay = slot.crash_backoff;
        slot.crash_backoff = if delay.is_zero() {
            BACKOFF_START
        } else {
            (delay * 2).min(BACKOFF_MAX)
        };
        slot.last_state = Some(term.clone());
        // The ended run becomes `previous` when the next one is made.
        slot.not_before = Some(Instant::now() + delay);
        slot.previous = match (slot.previous.take(), slot.current.take()) {
            (Some(old), Some(cur)) => {
                let shared = self.shared.clone();
                tokio::spawn(async move { shared.remove(&old).await });
                Some(cur)
            }
            (old, cur) => cur.or(old),
        };
        slot.state = match waiting_reason {
            Some((reason, message)) => ContainerState::Waiting {
                reason: reason.into(),
                message: Some(message),
            },
            None if delay.is_zero() => term,
            None => ContainerState::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(crash_message(delay, &slot.spec.name, &self.pod)),
            },
        };
    }
}

impl DockerRuntime {
    /// Connects to the local engine (`DOCKER_HOST` or `/var/run/docker.sock`), agreeing on
    /// the API version the engine speaks.
    pub async fn connect(config: DockerConfig) -> Result<Self, RuntimeError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| RuntimeError::Other(format!("connecting to the Docker Engine: {e}")))?
            .negotiate_version()
            .await
            .map_err(|e| RuntimeError::Other(format!("connecting to the Docker Engine: {e}")))?;
        docker
            .ping()
            .await
            .map_err(|e| RuntimeError::Other(format!("the Docker Engine does not answer: {e}")))?;
        let network = format!("beemesh-{}", sanitize(&config.node_name));
        let pods_dir = config.data_dir.join("pods");
        let pods_dir = std::fs::create_dir_all(&pods_dir)
            .and_then(|()| std::fs::canonicalize(&pods_dir))
            .map_err(|e| RuntimeError::Other(format!("{}: {e}", pods_dir.display())))?;
        Ok(DockerRuntime {
            pods_dir,
            shared: Arc::new(Shared {
                docker,
                node: config.node_name,
                network,
                extra_labels: config.extra_labels,
                setup: tokio::sync::Mutex::new(None),
            }),
            pods: Mutex::new(HashMap::new()),
        })
    }

    /// The pod sandbox image (imported from the host's static busybox on first use); its
    /// `/bin/busybox` makes it a usable test image too.
    pub async fn sandbox_image(&self) -> Result<String, RuntimeError> {
        Ok(self.shared.setup().await?.sandbox_image)
    }

    /// `<data dir>/pods/<uid>` (None for a uid that is not a plain name).
    fn pod_dir(&self, uid: &str) -> Option<std::path::PathBuf> {
        let plain = !uid.is_empty()
            && uid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        plain.then(|| self.pods_dir.join(uid))
    }

    /// The node's Docker network (`beemesh-<node>`).
    pub fn network(&self) -> &str {
        &self.shared.network
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PodHandle>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The container's current run, for exec/attach (which need it running).
    async fn running(&self, uid: &str, container: &str) -> Result<String, RuntimeError> {
        let found = self
            .shared
            .find(uid, container, false)
            .await?
            .ok_or_else(|| {
                RuntimeError::NotFound(format!("container {container} not found in pod {uid}"))
            })?;
        if !found.running {
            return Err(RuntimeError::BadRequest(format!(
                "container {container} is not running"
            )));
        }
        Ok(found.id)
    }

    /// The pod's container names in memory, and what a waiting one waits for.
    fn waiting_reason(&self, uid: &str, container: &str) -> Option<String> {
        let pods = self.lock();
        let status = pods.get(uid)?.status.lock().ok()?.clone();
        status
            .init_containers
            .iter()
            .chain(status.containers.iter())
            .find(|c| c.name == container)
            .and_then(|c| match &c.state {
                ContainerState::Waiting { reason, .. } => Some(reason.clone()),
                _ => None,
            })
    }
}

/// One log entry (`<RFC 3339 nano> <line>`) kept when written at or after `since`, with its
/// timestamp when asked for; without `since`, as it came.
fn since_filter(entry: Bytes, since: Option<DateTime<Utc>>, timestamps: bool) -> Option<Bytes> {
    let Some(since) = since else {
        return Some(entry);
    };
    let Some(space) = entry.iter().position(|b| *b == b' ') else {
        return Some(entry);
    };
    let written = std::str::from_utf8(&entry[..space])
        .ok()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    if written.is_some_and(|w| w.with_timezone(&Utc) < since) {
        return None;
    }
    Some(if timestamps {
        entry
    } else {
        entry.slice(space + 1..)
    })
}

/// Output of an exec or attach split into stdout and stderr; the returned receiver fires
/// when the output ended.
fn demux(
    output: std::pin::Pin<
        Box<dyn Stream<Item = Result<bollard::container::LogOutput, DockerError>> + Send>,
    >,
    want_stdout: bool,
    want_stderr: bool,
) -> (
    Option<ByteStream>,
    Option<ByteStream>,
    tokio::sync::oneshot::Receiver<()>,
) {
    let (out_tx, out_rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let (err_tx, err_rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut output = output;
        while let Some(item) = output.next().await {
            use bollard::container::LogOutput;
            let sent = match item {
                Ok(LogOutput::StdErr { message }) => err_tx.send(Ok(message)).await,
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    out_tx.send(Ok(message)).await
                }
                Ok(LogOutput::StdIn { .. }) => Ok(()),
                Err(e) => {
                    let _ = out_tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    break;
                }
            };
            // A stream nobody reads (not asked for) is dropped; keep draining the rest.
            let _ = sent;
        }
        let _ = done_tx.send(());
    });
    let stream = |rx: mpsc::Receiver<std::io::Result<Bytes>>| -> ByteStream {
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    };
    (
        want_stdout.then(|| stream(out_rx)),
        want_stderr.then(|| stream(err_rx)),
        done_rx,
    )
}

impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn start_pod<'a>(&'a self, pod: &'a PodStart) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let mut pods = self.lock();
            if pods.get(&pod.uid).is_some_and(|h| !h.task.is_finished()) {
                return Ok(());
            }
            let init: Vec<Slot> = pod
                .init_containers
                .iter()
                .map(|c| Slot::new(c.clone(), true))
                .collect();
            let containers: Vec<Slot> = pod
                .containers
                .iter()
                .map(|c| Slot::new(c.clone(), false))
                .collect();
            let status = Arc::new(Mutex::new(PodRuntimeStatus {
                init_containers: init.iter().map(Slot::status).collect(),
                containers: containers.iter().map(Slot::status).collect(),
                ips: vec![],
                recheck_after: Some(TICK),
            }));
            let (cancel, cancel_rx) = watch::channel(false);
            let task = PodTask {
                shared: self.shared.clone(),
                pod: pod.clone(),
                status: status.clone(),
                cancel: cancel_rx,
                sandbox: None,
                ip: None,
                init,
                containers,
                sandbox_backoff: Duration::ZERO,
            };
            let task = tokio::spawn(task.run());
            pods.insert(
                pod.uid.clone(),
                PodHandle {
                    status,
                    cancel,
                    task,
                },
            );
            Ok(())
        })
    }

    fn stop_pod<'a>(
        &'a self,
        uid: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let handle = self.lock().remove(uid);
            if let Some(handle) = handle {
                let _ = handle.cancel.send(true);
                let mut task = handle.task;
                if tokio::time::timeout(Duration::from_secs(70), &mut task)
                    .await
                    .is_err()
                {
                    task.abort();
                }
            }
            // The app containers get the grace period, then the sandbox (and the pod's
            // address) goes. The exited containers stay, for `kubectl logs`, until
            // `forget_pod` (the pod is gone from the API).
            let found = self.shared.list_pod(uid).await?;
            let stops = found
                .iter()
                .filter(|f| f.running && f.container != SANDBOX)
                .map(|f| self.shared.stop(&f.id, grace));
            futures::future::join_all(stops).await;
            for f in found.iter().filter(|f| f.container == SANDBOX) {
                self.shared.remove(&f.id).await;
            }
            Ok(())
        })
    }

    fn forget_pod<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.lock().contains_key(uid) {
                return;
            }
            if let Ok(found) = self.shared.list_pod(uid).await {
                for f in &found {
                    self.shared.remove(&f.id).await;
                }
            }
            if let Some(dir) = self.pod_dir(uid)
                && let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %dir.display(), error = %e, "removing a pod directory failed");
            }
        })
    }

    fn pod_volume_dir(&self, uid: &str) -> Option<std::path::PathBuf> {
        Some(self.pod_dir(uid)?.join("volumes"))
    }

    fn pod_status<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, Option<PodRuntimeStatus>> {
        Box::pin(async move {
            let pods = self.lock();
            let handle = pods.get(uid)?;
            handle.status.lock().map(|s| s.clone()).ok()
        })
    }

    fn pods(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut uids: Vec<String> = self.lock().keys().cloned().collect();
            // This node's containers: its name, and the extra labels (two test nodes with
            // one name on one engine each see only their own).
            let mut labels = vec![format!("{LABEL_NODE}={}", self.shared.node)];
            labels.extend(
                self.shared
                    .extra_labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}")),
            );
            let filters: HashMap<&str, Vec<String>> = [("label", labels)].into();
            if let Ok(list) = self
                .shared
                .docker
                .list_containers(Some(
                    ListContainersOptionsBuilder::new()
                        .all(true)
                        .filters(&filters)
                        .build(),
                ))
                .await
            {
                uids.extend(
                    list.into_iter()
                        .filter_map(|c| c.labels?.get(LABEL_POD_UID).cloned()),
                );
            }
            uids.sort();
            uids.dedup();
            uids
        })
    }

    fn restart_container<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let id = self.running(uid, container).await?;
            // The pod's task sees the exit and restarts it per the restart policy.
            self.shared.stop(&id, grace).await;
            Ok(())
        })
    }

    fn logs<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, Result<ByteStream, RuntimeError>> {
        Box::pin(async move {
            let found = self.shared.find(uid, container, options.previous).await?;
            let Some(found) = found else {
                if options.previous {
                    return Err(RuntimeError::BadRequest(format!(
                        "previous terminated container \"{container}\" in pod not found"
                    )));
                }
                return Err(match self.waiting_reason(uid, container) {
                    Some(reason) => RuntimeError::BadRequest(format!(
                        "container \"{container}\" in pod is waiting to start: {reason}"
                    )),
                    None => RuntimeError::NotFound(format!(
                        "container \"{container}\" not found in pod"
                    )),
                });
            };
            // The engine's `since` is whole seconds: ask for timestamps and drop the lines
            // before the exact time here (and the timestamps again when not asked for).
            let since = options.since;
            let timestamps = options.timestamps;
            let mut builder = LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .follow(options.follow)
                .timestamps(timestamps || since.is_some());
            if let Some(n) = options.tail_lines {
                builder = builder.tail(&n.to_string());
            }
            if let Some(since) = since {
                builder = builder.since(i32::try_from(since.timestamp()).unwrap_or(0));
            }
            let stream = self
                .shared
                .docker
                .logs(&found.id, Some(builder.build()))
                .filter_map(move |item| {
                    let out = match item {
                        Ok(entry) => since_filter(entry.into_bytes(), since, timestamps).map(Ok),
                        Err(e) => Some(Err(std::io::Error::other(e.to_string()))),
                    };
                    futures::future::ready(out)
                });
            let stream: ByteStream = match options.limit_bytes {
                None => Box::pin(stream),
                Some(limit) => Box::pin(stream.scan(limit, |left, item| {
                    let out = match item {
                        Ok(_) if *left == 0 => None,
                        Ok(bytes) => {
                            let take = bytes
                                .len()
                                .min(usize::try_from(*left).unwrap_or(usize::MAX));
                            *left -= take as u64;
                            Some(Ok(bytes.slice(..take)))
                        }
                        Err(e) => Some(Err(e)),
                    };
                    futures::future::ready(out)
                })),
            };
            Ok(stream)
        })
    }

    fn exec<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        request: &'a StreamRequest,
    ) -> BoxFuture<'a, Result<StreamSession, RuntimeError>> {
        Box::pin(async move {
            let id = self.running(uid, container).await?;
            let docker = &self.shared.docker;
            let exec = docker
                .create_exec(
                    &id,
                    CreateExecOptions {
                        attach_stdin: Some(request.stdin),
                        attach_stdout: Some(request.stdout),
                        attach_stderr: Some(request.stderr),
                        tty: Some(request.tty),
                        cmd: Some(request.command.clone()),
                        ..Default::default()
                    },
                )
                .await
                .map_err(docker_err)?;
            let started = docker
                .start_exec(
                    &exec.id,
                    Some(StartExecOptions {
                        detach: false,
                        tty: request.tty,
                        output_capacity: None,
                    }),
                )
                .await
                .map_err(docker_err)?;
            let StartExecResults::Attached { output, input } = started else {
                return Err(RuntimeError::Other("exec started detached".into()));
            };
            let (stdout, stderr, done) =
                demux(output, request.stdout, request.stderr && !request.tty);
            let resize = request.tty.then(|| {
                let (tx, mut rx) = mpsc::unbounded_channel::<TerminalSize>();
                let docker = docker.clone();
                let exec_id = exec.id.clone();
                tokio::spawn(async move {
                    while let Some(size) = rx.recv().await {
                        let options = ResizeExecOptionsBuilder::new()
                            .h(i32::from(size.height))
                            .w(i32::from(size.width))
                            .build();
                        let _ = docker.resize_exec(&exec_id, options).await;
                    }
                });
                tx
            });
            let docker = docker.clone();
            let exec_id = exec.id.clone();
            let exit: BoxFuture<'static, Result<i32, RuntimeError>> = Box::pin(async move {
                let _ = done.await;
                let inspect = docker.inspect_exec(&exec_id).await.map_err(docker_err)?;
                Ok(i32::try_from(inspect.exit_code.unwrap_or(0)).unwrap_or(1))
            });
            Ok(StreamSession {
                stdin: request.stdin.then_some(input),
                stdout,
                stderr,
                resize,
                exit,
            })
        })
    }

    fn attach<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        request: &'a StreamRequest,
    ) -> BoxFuture<'a, Result<StreamSession, RuntimeError>> {
        Box::pin(async move {
            let id = self.running(uid, container).await?;
            let docker = &self.shared.docker;
            let options = AttachContainerOptionsBuilder::new()
                .stream(true)
                .stdin(request.stdin)
                .stdout(request.stdout)
                .stderr(request.stderr)
                .build();
            let attached = docker
                .attach_container(&id, Some(options))
                .await
                .map_err(docker_err)?;
            let (stdout, stderr, _done) = demux(
                attached.output,
                request.stdout,
                request.stderr && !request.tty,
            );
            let resize = request.tty.then(|| {
                let (tx, mut rx) = mpsc::unbounded_channel::<TerminalSize>();
                let docker = docker.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    while let Some(size) = rx.recv().await {
                        let options = ResizeContainerTTYOptionsBuilder::new()
                            .h(i32::from(size.height))
                            .w(i32::from(size.width))
                            .build();
                        let _ = docker.resize_container_tty(&id, options).await;
                    }
                });
                tx
            });
            let docker = docker.clone();
            let exit: BoxFuture<'static, Result<i32, RuntimeError>> = Box::pin(async move {
                let mut wait = docker.wait_container(&id, None);
                match wait.next().await {
                    Some(Ok(r)) => Ok(i32::try_from(r.status_code).unwrap_or(1)),
                    Some(Err(DockerError::DockerContainerWaitError { code, .. })) => {
                        Ok(i32::try_from(code).unwrap_or(1))
                    }
                    Some(Err(e)) => Err(docker_err(e)),
                    None => Ok(0),
                }
            });
            Ok(StreamSession {
                stdin: request.stdin.then_some(attached.input),
                stdout,
                stderr,
                resize,
                exit,
            })
        })
    }

    fn port_forward<'a>(
        &'a self,
        uid: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Box<dyn Duplex>, RuntimeError>> {
        Box::pin(async move {
            let ip = {
                let pods = self.lock();
                pods.get(uid)
                    .and_then(|h| h.status.lock().ok()?.ips.first().copied())
            };
            let ip = ip.ok_or_else(|| {
                RuntimeError::NotFound(format!("pod {uid} has no sandbox on this node"))
            })?;
            let stream = tokio::net::TcpStream::connect((ip, port))
                .await
                .map_err(|e| {
                    RuntimeError::Other(format!(
                        "connecting to port {port} of pod {uid} at {ip}: {e}"
                    ))
                })?;
            Ok(Box::new(stream) as Box<dyn Duplex>)
        })
    }
}

#[cfg(test)]
mod tests {
    //! Against the machine's real Docker Engine (skipped, saying so, when there is none).
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TEST_OWNER: &str = "beemesh.test.owner";

    async fn runtime(case: &str) -> Option<DockerRuntime> {
        let config = DockerConfig {
            node_name: format!("wl-{case}-{}", std::process::id()),
            extra_labels: vec![(TEST_OWNER.into(), std::process::id().to_string())],
            data_dir: std::env::temp_dir()
                .join(format!("beemesh-docker-{case}-{}", std::process::id())),
        };
        match DockerRuntime::connect(config).await {
            Ok(rt) => {
                remove_orphans(&rt).await;
                Some(rt)
            }
            Err(e) => {
                eprintln!("SKIPPED: no usable Docker Engine here: {e}");
                None
            }
        }
    }

    /// What test processes that died mid-case (a failed assertion) left on the engine.
    async fn remove_orphans(rt: &DockerRuntime) {
        let gone = |labels: Option<&HashMap<String, String>>| {
            labels
                .and_then(|l| l.get(TEST_OWNER))
                .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        };
        let filters: HashMap<&str, Vec<String>> = [("label", vec![TEST_OWNER.to_string()])].into();
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        for c in rt
            .shared
            .docker
            .list_containers(Some(options))
            .await
            .unwrap_or_default()
        {
            if gone(c.labels.as_ref())
                && let Some(id) = c.id
            {
                rt.shared.remove(&id).await;
            }
        }
        let options = bollard::query_parameters::ListNetworksOptionsBuilder::new()
            .filters(&filters)
            .build();
        for n in rt
            .shared
            .docker
            .list_networks(Some(options))
            .await
            .unwrap_or_default()
        {
            if gone(n.labels.as_ref())
                && let Some(name) = n.name
            {
                let _ = rt.shared.docker.remove_network(&name).await;
            }
        }
    }

    /// Removes what the case left (containers of its node, then its network).
    async fn cleanup(rt: &DockerRuntime) {
        for uid in rt.pods().await {
            let _ = rt.stop_pod(&uid, Duration::ZERO).await;
            rt.forget_pod(&uid).await;
        }
        let _ = std::fs::remove_dir_all(rt.pods_dir.parent().unwrap_or(&rt.pods_dir));
        let _ = rt.shared.docker.remove_network(rt.network()).await;
    }

    fn pod(uid: &str, policy: &str, containers: Vec<ContainerSpec>) -> PodStart {
        PodStart {
            uid: uid.into(),
            namespace: "default".into(),
            name: format!("p-{uid}"),
            init_containers: vec![],
            containers,
            restart_policy: policy.into(),
            annotations: Default::default(),
            termination_grace: Duration::from_secs(1),
        }
    }

    fn busybox(image: &str, name: &str, script: &str) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            image: image.into(),
            image_pull_policy: "IfNotPresent".into(),
            command: vec!["/bin/busybox".into(), "sh".into(), "-c".into()],
            args: vec![script.into()],
            env: vec![("GREETING".into(), "hello".into())],
            ..ContainerSpec::default()
        }
    }

    /// Polls the pod's status until `check` accepts it (30 s at most).
    async fn until(
        rt: &DockerRuntime,
        uid: &str,
        what: &str,
        check: impl Fn(&PodRuntimeStatus) -> bool,
    ) -> PodRuntimeStatus {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let status = rt.pod_status(uid).await;
            if let Some(s) = &status
                && check(s)
            {
                return s.clone();
            }
            assert!(Instant::now() < deadline, "{what}: last status {status:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn collect(mut stream: ByteStream) -> String {
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn a_pod_runs_with_an_ip_logs_exec_and_port_forward() {
        let Some(rt) = runtime("run").await else {
            return;
        };
        let image = rt.sandbox_image().await.unwrap();
        let uid = format!("run-{}", std::process::id());
        let mut spec = busybox(
            &image,
            "app",
            "echo $GREETING; sleep 1; echo oops >&2; exec /bin/busybox httpd -f -p 8080 -h /",
        );
        // A volume the agent would have written, mounted read-only.
        let volume = rt.pod_volume_dir(&uid).unwrap().join("cfg");
        std::fs::create_dir_all(&volume).unwrap();
        std::fs::write(volume.join("mode"), "dev").unwrap();
        spec.mounts = vec![super::super::VolumeMount {
            host_path: volume,
            container_path: "/etc/cfg".into(),
            read_only: true,
        }];
        spec.working_dir = Some("/etc/cfg".into());
        rt.start_pod(&pod(&uid, "Always", vec![spec]))
            .await
            .unwrap();
        let s = until(&rt, &uid, "running", |s| {
            matches!(s.containers[0].state, ContainerState::Running { .. })
        })
        .await;
        let ip = s.ips[0];
        assert!(s.containers[0].container_id.starts_with("docker://"));
        assert_eq!(s.containers[0].restart_count, 0);
        assert!(rt.pods().await.contains(&uid));

        let mut logs = String::new();
        for _ in 0..50 {
            logs = collect(rt.logs(&uid, "app", &LogOptions::default()).await.unwrap()).await;
            if logs.contains("oops") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(logs, "hello\noops\n");
        let stamped = LogOptions {
            timestamps: true,
            tail_lines: Some(1),
            ..LogOptions::default()
        };
        let tail = collect(rt.logs(&uid, "app", &stamped).await.unwrap()).await;
        assert!(tail.ends_with("Z oops\n"), "{tail}");
        assert_eq!(tail.lines().count(), 1);
        // `since` just before the second line's time: only that line (the first is 1 s older).
        let written = DateTime::parse_from_rfc3339(tail.split(' ').next().unwrap())
            .unwrap()
            .with_timezone(&Utc);
        let since = LogOptions {
            since: Some(written - chrono::Duration::milliseconds(100)),
            ..LogOptions::default()
        };
        let recent = collect(rt.logs(&uid, "app", &since).await.unwrap()).await;
        assert_eq!(recent, "oops\n");

        let request = StreamRequest {
            command: vec![
                "/bin/busybox".into(),
                "sh".into(),
                "-c".into(),
                "echo hi; echo err >&2; exit 7".into(),
            ],
            stdout: true,
            stderr: true,
            ..StreamRequest::default()
        };
        let session = rt.exec(&uid, "app", &request).await.unwrap();
        let out = collect(session.stdout.unwrap()).await;
        let err = collect(session.stderr.unwrap()).await;
        assert_eq!((out.as_str(), err.as_str()), ("hi\n", "err\n"));
        assert_eq!(session.exit.await.unwrap(), 7);

        let request = StreamRequest {
            command: vec![
                "/bin/busybox".into(),
                "sh".into(),
                "-c".into(),
                "cat mode; /bin/busybox touch x 2>/dev/null || echo read-only".into(),
            ],
            stdout: true,
            ..StreamRequest::default()
        };
        let session = rt.exec(&uid, "app", &request).await.unwrap();
        assert_eq!(collect(session.stdout.unwrap()).await, "devread-only\n");

        // stdin is passed through.
        let request = StreamRequest {
            command: vec!["/bin/busybox".into(), "cat".into()],
            stdin: true,
            stdout: true,
            ..StreamRequest::default()
        };
        let mut session = rt.exec(&uid, "app", &request).await.unwrap();
        let mut stdin = session.stdin.take().unwrap();
        stdin.write_all(b"ping\n").await.unwrap();
        stdin.shutdown().await.unwrap();
        drop(stdin);
        let out = collect(session.stdout.take().unwrap()).await;
        assert_eq!(out, "ping\n");

        let mut conn = rt.port_forward(&uid, 8080).await.unwrap();
        conn.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
        let mut reply = Vec::new();
        conn.read_to_end(&mut reply).await.unwrap();
        assert!(
            reply.starts_with(b"HTTP/1."),
            "{}",
            String::from_utf8_lossy(&reply)
        );
        eprintln!("pod IP {ip}");

        rt.stop_pod(&uid, Duration::from_secs(1)).await.unwrap();
        assert!(rt.pod_status(&uid).await.is_none());
        // Stopped: the sandbox is gone, the app container stays (its log) until forgotten.
        assert_eq!(rt.shared.list_pod(&uid).await.unwrap().len(), 1);
        rt.forget_pod(&uid).await;
        assert!(rt.shared.list_pod(&uid).await.unwrap().is_empty());
        assert!(!rt.pods().await.contains(&uid));
        cleanup(&rt).await;
    }

    #[tokio::test]
    async fn a_crashing_container_backs_off_and_keeps_its_previous_log() {
        let Some(rt) = runtime("crash").await else {
            return;
        };
        let image = rt.sandbox_image().await.unwrap();
        let uid = format!("crash-{}", std::process::id());
        let spec = busybox(&image, "app", "echo run; exit 3");
        rt.start_pod(&pod(&uid, "Always", vec![spec]))
            .await
            .unwrap();
        let s = until(&rt, &uid, "CrashLoopBackOff", |s| {
            matches!(&s.containers[0].state,
                ContainerState::Waiting { reason, .. } if reason == "CrashLoopBackOff")
        })
        .await;
        let c = &s.containers[0];
        assert!(c.restart_count >= 1, "{c:?}");
        assert!(matches!(&c.last_state,
            Some(ContainerState::Terminated { exit_code: 3, reason, .. }) if reason == "Error"));
        let ContainerState::Waiting { message, .. } = &c.state else {
            unreachable!()
        };
        assert!(
            message
                .as_deref()
                .unwrap_or("")
                .starts_with("back-off 10s restarting failed container=app"),
            "{message:?}"
        );
        let previous = LogOptions {
            previous: true,
            ..LogOptions::default()
        };
        let logs = collect(rt.logs(&uid, "app", &previous).await.unwrap()).await;
        assert_eq!(logs, "run\n");
        cleanup(&rt).await;
        assert!(rt.shared.list_pod(&uid).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn after_a_restart_previous_logs_are_the_run_before() {
        let Some(rt) = runtime("previous").await else {
            return;
        };
        let image = rt.sandbox_image().await.unwrap();
        let uid = format!("prev-{}", std::process::id());
        // Runs are counted in a volume (the only state that outlives a container).
        let mut spec = busybox(
            &image,
            "app",
            "n=$(cat /v/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /v/n; echo run $n; \
             [ $n -ge 2 ] && exec /bin/busybox sleep 3600; exit 3",
        );
        let volume = rt.pod_volume_dir(&uid).unwrap().join("state");
        std::fs::create_dir_all(&volume).unwrap();
        spec.mounts = vec![super::super::VolumeMount {
            host_path: volume,
            container_path: "/v".into(),
            read_only: false,
        }];
        rt.start_pod(&pod(&uid, "Always", vec![spec]))
            .await
            .unwrap();
        let s = until(&rt, &uid, "running again", |s| {
            matches!(s.containers[0].state, ContainerState::Running { .. })
                && s.containers[0].restart_count == 1
        })
        .await;
        assert!(matches!(
            s.containers[0].last_state,
            Some(ContainerState::Terminated { exit_code: 3, .. })
        ));
        let previous = LogOptions {
            previous: true,
            ..LogOptions::default()
        };
        let before = collect(rt.logs(&uid, "app", &previous).await.unwrap()).await;
        assert_eq!(before, "run 1\n");
        let mut now = String::new();
        for _ in 0..50 {
            now = collect(rt.logs(&uid, "app", &LogOptions::default()).await.unwrap()).await;
            if !now.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(now, "run 2\n");
        cleanup(&rt).await;
    }

    #[tokio::test]
    async fn missing_images_are_reported_as_the_kubelet_does() {
        let Some(rt) = runtime("images").await else {
            return;
        };
        let uid = format!("img-{}", std::process::id());
        let missing = ContainerSpec {
            name: "pull".into(),
            image: "beemesh.invalid/no-such-image:1".into(),
            image_pull_policy: "IfNotPresent".into(),
            ..ContainerSpec::default()
        };
        let never = ContainerSpec {
            name: "never".into(),
            image_pull_policy: "Never".into(),
            ..missing.clone()
        };
        rt.start_pod(&pod(&uid, "Always", vec![missing, never]))
            .await
            .unwrap();
        let s = until(&rt, &uid, "ErrImagePull", |s| {
            matches!(&s.containers[0].state,
                ContainerState::Waiting { reason, .. } if reason == "ErrImagePull")
        })
        .await;
        assert!(matches!(&s.containers[1].state,
            ContainerState::Waiting { reason, message: Some(m) }
                if reason == "ErrImageNeverPull" && m.contains("pull policy of Never")));
        until(&rt, &uid, "ImagePullBackOff", |s| {
            matches!(&s.containers[0].state,
                ContainerState::Waiting { reason, .. } if reason == "ImagePullBackOff")
        })
        .await;
        // The pod's sandbox has its address even though no container runs.
        assert_eq!(rt.pod_status(&uid).await.unwrap().ips.len(), 1);
        let err = rt.logs(&uid, "pull", &LogOptions::default()).await.err();
        assert!(matches!(err, Some(RuntimeError::BadRequest(m)) if m.contains("waiting to start")));
        cleanup(&rt).await;
    }

    #[tokio::test]
    async fn a_restarted_node_adopts_its_pods_and_finished_pods_keep_their_logs() {
        let Some(rt) = runtime("adopt").await else {
            return;
        };
        let image = rt.sandbox_image().await.unwrap();
        let uid = format!("adopt-{}", std::process::id());
        let start = pod(&uid, "Always", vec![busybox(&image, "app", "sleep 3600")]);
        rt.start_pod(&start).await.unwrap();
        let before = until(&rt, &uid, "running", |s| {
            matches!(s.containers[0].state, ContainerState::Running { .. })
        })
        .await;
        // A second runtime of the same node (the node process restarted).
        let again = runtime("adopt").await.unwrap();
        assert!(again.pods().await.contains(&uid));
        again.start_pod(&start).await.unwrap();
        let after = until(&again, &uid, "adopted", |s| {
            matches!(s.containers[0].state, ContainerState::Running { .. })
        })
        .await;
        assert_eq!(
            after.containers[0].container_id,
            before.containers[0].container_id
        );
        assert_eq!(after.ips, before.ips);
        drop(rt);

        // A pod that ran to completion: stopping it keeps the exited container's log.
        let done_uid = format!("done-{}", std::process::id());
        let done = pod(
            &done_uid,
            "Never",
            vec![busybox(&image, "job", "echo finished")],
        );
        again.start_pod(&done).await.unwrap();
        until(&again, &done_uid, "completed", |s| {
            matches!(&s.containers[0].state,
                ContainerState::Terminated { exit_code: 0, reason, .. } if reason == "Completed")
        })
        .await;
        again.stop_pod(&done_uid, Duration::ZERO).await.unwrap();
        let logs = collect(
            again
                .logs(&done_uid, "job", &LogOptions::default())
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(logs, "finished\n");
        // Its deletion removes the rest.
        again.forget_pod(&done_uid).await;
        assert!(again.shared.list_pod(&done_uid).await.unwrap().is_empty());
        cleanup(&again).await;
    }

    #[tokio::test]
    async fn attach_reaches_the_main_process() {
        let Some(rt) = runtime("attach").await else {
            return;
        };
        let image = rt.sandbox_image().await.unwrap();
        let uid = format!("attach-{}", std::process::id());
        let mut spec = busybox(&image, "app", "exec /bin/busybox cat");
        spec.stdin = true;
        // The first attach's end closes the container's stdin (kubectl run -i --rm).
        spec.stdin_once = true;
        rt.start_pod(&pod(&uid, "Never", vec![spec])).await.unwrap();
        until(&rt, &uid, "running", |s| {
            matches!(s.containers[0].state, ContainerState::Running { .. })
        })
        .await;
        let request = StreamRequest {
            stdin: true,
            stdout: true,
            stderr: true,
            ..StreamRequest::default()
        };
        let mut session = rt.attach(&uid, "app", &request).await.unwrap();
        let mut stdin = session.stdin.take().unwrap();
        stdin.write_all(b"echoed\n").await.unwrap();
        let mut stdout = session.stdout.take().unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), stdout.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(&first[..], b"echoed\n");
        // Closing stdin ends `cat` (stdinOnce), the main process: attach sees the exit.
        stdin.shutdown().await.unwrap();
        drop(stdin);
        let code = tokio::time::timeout(Duration::from_secs(10), session.exit)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(code, 0);
        until(&rt, &uid, "completed", |s| {
            matches!(
                &s.containers[0].state,
                ContainerState::Terminated { exit_code: 0, .. }
            )
        })
        .await;
        cleanup(&rt).await;
    }

    #[test]
    fn since_is_exact_below_the_engines_seconds() {
        let entry = Bytes::from_static(b"2026-01-01T00:00:00.500000000Z line\n");
        let at = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        assert_eq!(
            since_filter(entry.clone(), None, false),
            Some(entry.clone())
        );
        assert_eq!(
            since_filter(entry.clone(), at("2026-01-01T00:00:00.4Z"), false),
            Some(Bytes::from_static(b"line\n"))
        );
        assert_eq!(
            since_filter(entry.clone(), at("2026-01-01T00:00:00.4Z"), true),
            Some(entry.clone())
        );
        assert_eq!(
            since_filter(entry, at("2026-01-01T00:00:00.6Z"), false),
            None
        );
    }

    #[test]
    fn entrypoint_and_cmd_follow_kubernetes() {
        let spec = |command: &[&str], args: &[&str]| ContainerSpec {
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..ContainerSpec::default()
        };
        assert_eq!(entrypoint_and_cmd(&spec(&[], &[])), (None, None));
        assert_eq!(
            entrypoint_and_cmd(&spec(&["sh"], &[])),
            (Some(vec!["sh".to_string()]), None)
        );
        assert_eq!(
            entrypoint_and_cmd(&spec(&[], &["x"])),
            (None, Some(vec!["x".to_string()]))
        );
        assert_eq!(sanitize("node 1/a"), "node-1-a");
        let tar = single_file_tar("bin/busybox", b"abc");
        assert_eq!(tar.len(), 512 + 512 + 1024);
        assert_eq!(&tar[257..262], b"ustar");
    }
}
