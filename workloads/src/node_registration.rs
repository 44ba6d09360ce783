//! The kubelet's registration and heartbeats for a BeeMesh node: the node writes its own
//! `Node` object (created, or brought up to date after a restart), posts its status
//! through `nodes/status` when something changed (or every 5 min, the kubelet's
//! `nodeStatusReportFrequency`), and renews its `Lease` in `kube-node-lease` a quarter of
//! the lease duration apart, as upstream's node lease controller does. Whether a node is
//! alive is judged by the node lifecycle controller (`node_lifecycle`) from that Lease.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use beemesh_translator::service::{ObjectService, Part, WriteOptions};
use beemesh_translator::validation::quantity::canonical_quantity;
use beemesh_translator::{ApiError, ResourceInfo};
use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// Where node Leases live (upstream's `corev1.NamespaceNodeLease`).
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// The kubelet's `maxPods` default.
pub const DEFAULT_MAX_PODS: u32 = 110;
/// The kubelet's `nodeStatusReportFrequency`: an unchanged status is still posted this often.
const STATUS_REPORT_FREQUENCY: Duration = Duration::from_secs(300);
/// The kubelet's default hard eviction thresholds, taken off capacity for allocatable
/// (`memory.available<100Mi`, `nodefs.available<10%`).
const EVICTION_MEMORY_BYTES: u64 = 100 * 1024 * 1024;
const EVICTION_NODEFS_PERCENT: u64 = 10;
/// The retry delay after a failed registration, lease or status write.
const RETRY: Duration = Duration::from_secs(1);

/// Errors in the node's flags.
#[derive(Debug, thiserror::Error)]
pub enum NodeFlagError {
    #[error("{flag}: {item:?} is not KEY=VALUE")]
    NotKeyValue { flag: &'static str, item: String },
    #[error("--capacity: {resource}={value:?} is not a quantity")]
    Quantity { resource: String, value: String },
    #[error("--capacity: {0:?} is not a resource name (cpu, memory, pods, ephemeral-storage, ...)")]
    Resource(String),
    #[error(
        "--register-with-taints: {0:?} is not <key>=<value>:<effect> with effect NoSchedule, PreferNoSchedule or NoExecute"
    )]
    Taint(String),
}

/// `k1=v1,k2=v2` flags (`--node-labels`), each item already split at commas by clap.
pub fn parse_key_values(
    flag: &'static str,
    items: &[String],
) -> Result<BTreeMap<String, String>, NodeFlagError> {
    let mut out = BTreeMap::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| NodeFlagError::NotKeyValue {
                flag,
                item: item.to_string(),
            })?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// `--capacity cpu=4,memory=16Gi,pods=110`: each value a quantity, stored canonical.
pub fn parse_capacity(items: &[String]) -> Result<BTreeMap<String, String>, NodeFlagError> {
    let raw = parse_key_values("--capacity", items)?;
    let mut out = BTreeMap::new();
    for (resource, value) in raw {
        let valid_name = !resource.is_empty()
            && resource
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/'));
        if !valid_name {
            return Err(NodeFlagError::Resource(resource));
        }
        let canonical = canonical_quantity(&value).ok_or_else(|| NodeFlagError::Quantity {
            resource: resource.clone(),
            value: value.clone(),
        })?;
        out.insert(resource, canonical);
    }
    Ok(out)
}

/// `--register-with-taints key=value:Effect,key2:Effect` (the kubelet's format).
pub fn parse_taints(items: &[String]) -> Result<Vec<Value>, NodeFlagError> {
    let mut out = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let bad = || NodeFlagError::Taint(item.to_string());
        let (kv, effect) = item.rsplit_once(':').ok_or_else(bad)?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(bad());
        }
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (kv, None),
        };
        if key.is_empty() {
            return Err(bad());
        }
        let mut taint = json!({"key": key, "effect": effect});
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            taint["value"] = json!(v);
        }
        out.push(taint);
    }
    Ok(out)
}

/// The NoSchedule taint of a node started without `--runtime`: it serves the API and
/// runs controllers, but pods must go to nodes that run them. Reconciled at every start,
/// so restarting with a runtime lifts it.
pub const NO_RUNTIME_TAINT: &str = "node.beemesh.io/no-runtime";

/// What a node says about itself.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The Node's name (`--node-name`).
    pub name: String,
    /// The libp2p peer id (label `beemesh.io/peer-id`).
    pub peer_id: String,
    /// `status.addresses` InternalIP.
    pub internal_ip: IpAddr,
    /// `status.daemonEndpoints.kubeletEndpoint.Port`: where this node serves node-level
    /// requests (its API port).
    pub daemon_port: u16,
    /// `status.nodeInfo.kubeletVersion` (the server's git version).
    pub kubelet_version: String,
    /// The BeeMesh version (`containerRuntimeVersion` is `beemesh://<version>`).
    pub beemesh_version: String,
    /// The data directory: ephemeral-storage is its file system's size.
    pub data_dir: PathBuf,
    /// Capacity from `--capacity` (then allocatable = capacity); `None` measures the machine.
    pub capacity: Option<BTreeMap<String, String>>,
    /// `--node-labels`.
    pub labels: BTreeMap<String, String>,
    /// `--register-with-taints`.
    pub taints: Vec<Value>,
    /// Whether this node runs the pods bound to it (`--runtime`). A node without a runtime
    /// carries the `NO_RUNTIME_TAINT` so placement never binds a pod nobody would run.
    pub has_runtime: bool,
    /// The Lease's `leaseDurationSeconds` (the kubelet's `nodeLeaseDurationSeconds`, 40).
    pub lease_duration_seconds: u32,
    /// How often the status is computed and posted if changed (the kubelet's
    /// `nodeStatusUpdateFrequency`, 10 s).
    pub status_update_frequency: Duration,
}

/// Adds (`on`) or removes the `NO_RUNTIME_TAINT`, leaving every other taint alone.
fn set_no_runtime_taint(taints: &mut Vec<Value>, on: bool) {
    taints.retain(|t| t.get("key").and_then(Value::as_str) != Some(NO_RUNTIME_TAINT));
    if on {
        taints.push(json!({"key": NO_RUNTIME_TAINT, "effect": "NoSchedule"}));
    }
}

fn has_no_runtime_taint(node: &Value) -> bool {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .is_some_and(|ts| {
            ts.iter()
                .any(|t| t.get("key").and_then(Value::as_str) == Some(NO_RUNTIME_TAINT))
        })
}

/// Go's `GOARCH` for this build (`kubernetes.io/arch`).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "arm" => "arm",
        other => other,
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `PRETTY_NAME` of /etc/os-release, as the kubelet's osImage.
fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    os_image_of(&text)
}

fn os_image_of(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".to_string())
}

/// `MemTotal` of /proc/meminfo in bytes.
fn memory_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Size in bytes of the file system holding `dir`.
fn filesystem_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` is a valid, writable statvfs.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
    if rc != 0 {
        return None;
    }
    Some((st.f_blocks as u64).saturating_mul(st.f_frsize as u64))
}

/// Bytes as the kubelet prints memory quantities (`Ki`, BinarySI).
fn ki(bytes: u64) -> String {
    format!("{}Ki", bytes / 1024)
}

/// (capacity, allocatable) measured on this machine: cpu count, MemTotal, 110 pods,
/// the data dir's file system; allocatable is capacity minus the kubelet's default hard
/// eviction thresholds (no kube/system reservations by default).
fn measured_resources(data_dir: &std::path::Path) -> (Map<String, Value>, Map<String, Value>) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory =
        memory_bytes(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default()).unwrap_or(0);
    let storage = filesystem_bytes(data_dir).unwrap_or(0);
    let mut capacity = Map::new();
    capacity.insert("cpu".into(), json!(cpus.to_string()));
    capacity.insert("ephemeral-storage".into(), json!(ki(storage)));
    capacity.insert("hugepages-1Gi".into(), json!("0"));
    capacity.insert("hugepages-2Mi".into(), json!("0"));
    capacity.insert("memory".into(), json!(ki(memory)));
    capacity.insert("pods".into(), json!(DEFAULT_MAX_PODS.to_string()));
    let mut allocatable = capacity.clone();
    allocatable.insert(
        "memory".into(),
        json!(ki(memory.saturating_sub(EVICTION_MEMORY_BYTES))),
    );
    // Upstream prints this one in plain bytes (a scaled value is not a whole Ki).
    let reserved = storage / 100 * EVICTION_NODEFS_PERCENT;
    allocatable.insert(
        "ephemeral-storage".into(),
        json!(storage.saturating_sub(reserved).to_string()),
    );
    (capacity, allocatable)
}

fn rfc3339_now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A `MicroTime` (the Lease's `renewTime`/`acquireTime`).
fn micro_now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The four conditions the kubelet posts, in its order.
const CONDITIONS: [(&str, &str, &str, &str); 4] = [
    (
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
    ),
    (
        "DiskPressure",
        "False",
        "KubeletHasNoDiskPressure",
        "kubelet has no disk pressure",
    ),
    (
        "PIDPressure",
        "False",
        "KubeletHasSufficientPID",
        "kubelet has sufficient PID available",
    ),
    (
        "Ready",
        "True",
        "KubeletReady",
        "kubelet is posting ready status",
    ),
];

/// The node's conditions as of `now`, keeping each stored condition's
/// `lastTransitionTime` while its status is unchanged (as the kubelet's setters do).
fn conditions(stored: Option<&Value>, now: &str) -> Value {
    let old = stored
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let out: Vec<Value> = CONDITIONS
        .iter()
        .map(|(kind, status, reason, message)| {
            let previous = old
                .iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(kind));
            let transition = previous
                .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| json!(now));
            json!({
                "type": kind, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": transition,
            })
        })
        .collect();
    Value::Array(out)
}

/// A status without heartbeat times, to tell a real change from a heartbeat (the
/// kubelet's `nodeStatusHasChanged`).
fn without_heartbeats(status: &Value) -> Value {
    let mut s = status.clone();
    if let Some(conds) = s.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conds {
            if let Some(m) = c.as_object_mut() {
                m.remove("lastHeartbeatTime");
            }
        }
    }
    s
}

/// What an Event is about.
#[derive(Clone, Copy)]
pub(crate) struct Involved<'a> {
    pub kind: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub uid: &'a str,
}

/// Records a core/v1 Event as client-go's recorder writes it (name `<object>.<hex
/// nanos>`, count 1, first = last timestamp). Node events live in `default`, as
/// upstream's. A failure is logged: an event is never worth failing the work it reports.
pub(crate) async fn record_event(
    service: &ObjectService,
    involved: Involved<'_>,
    component: (&str, &str),
    kind: &str,
    reason: &str,
    message: &str,
) {
    let Some(events) = service.registry.get("", "v1", "events") else {
        return;
    };
    let ns = involved.namespace.unwrap_or("default");
    let now = rfc3339_now();
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let (component, host) = component;
    let mut object = json!({"apiVersion": "v1", "kind": involved.kind, "name": involved.name,
                            "uid": involved.uid});
    if let Some(namespace) = involved.namespace {
        object["namespace"] = json!(namespace);
    }
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{}.{nanos:x}", involved.name), "namespace": ns},
        "involvedObject": object,
        "reason": reason, "message": message, "type": kind,
        "source": if host.is_empty() { json!({"component": component}) }
                  else { json!({"component": component, "host": host}) },
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        "reportingComponent": component, "reportingInstance": host,
    });
    if let Err(e) = service
        .create(&events, Some(ns), event, &WriteOptions::default())
        .await
    {
        tracing::debug!(error = %e, reason, "recording an event failed");
    }
}

/// Registers this node's Node and keeps it and its Lease current.
pub struct NodeRegistration {
    service: ObjectService,
    config: NodeConfig,
    /// Measured once: the machine does not change under a running node.
    resources: (Map<String, Value>, Map<String, Value>),
    os_image: String,
    kernel_version: String,
    machine_id: String,
    boot_id: String,
}

impl NodeRegistration {
    pub fn new(service: ObjectService, config: NodeConfig) -> Self {
        let resources = match &config.capacity {
            Some(flags) => {
                let map: Map<String, Value> =
                    flags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                (map.clone(), map)
            }
            None => measured_resources(&config.data_dir),
        };
        let machine_id = read_trimmed("/etc/machine-id");
        NodeRegistration {
            service,
            config,
            resources,
            os_image: os_image(),
            kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
            machine_id,
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        }
    }

    fn resource(&self, group: &str, plural: &str) -> Result<Arc<ResourceInfo>, ApiError> {
        self.service.registry.served(group, "v1", plural)
    }

    /// The labels this node owns: the kubelet's defaults, the peer id and `--node-labels`.
    fn labels(&self) -> Map<String, Value> {
        let mut labels = Map::new();
        let arch = go_arch();
        labels.insert("beta.kubernetes.io/arch".into(), json!(arch));
        labels.insert("beta.kubernetes.io/os".into(), json!("linux"));
        labels.insert("kubernetes.io/arch".into(), json!(arch));
        labels.insert("kubernetes.io/hostname".into(), json!(self.config.name));
        labels.insert("kubernetes.io/os".into(), json!("linux"));
        labels.insert("beemesh.io/peer-id".into(), json!(self.config.peer_id));
        for (k, v) in &self.config.labels {
            labels.insert(k.clone(), json!(v));
        }
        labels
    }

    /// The status the node reports now, against the stored one (`None` before creation).
    pub fn status(&self, stored: Option<&Value>) -> Value {
        let now = rfc3339_now();
        let (capacity, allocatable) = &self.resources;
        json!({
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": conditions(stored.and_then(|s| s.get("conditions")), &now),
            "addresses": [
                {"type": "InternalIP", "address": self.config.internal_ip.to_string()},
                {"type": "Hostname", "address": self.config.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.config.daemon_port}},
            "nodeInfo": {
                "machineID": self.machine_id,
                "systemUUID": self.machine_id,
                "bootID": self.boot_id,
                "kernelVersion": self.kernel_version,
                "osImage": self.os_image,
                "containerRuntimeVersion": format!("beemesh://{}", self.config.beemesh_version),
                "kubeletVersion": self.config.kubelet_version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": go_arch(),
            },
        })
    }

    /// The Node as first registered.
    fn initial_node(&self) -> Value {
        let mut node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.config.name,
                "labels": self.labels(),
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": {},
            "status": self.status(None),
        });
        let mut taints = self.config.taints.clone();
        set_no_runtime_taint(&mut taints, !self.config.has_runtime);
        if !taints.is_empty() {
            node["spec"]["taints"] = json!(taints);
        }
        node
    }

    /// Creates the Node, or (after a restart, or a Node made by someone else) updates the
    /// labels this node owns, as the kubelet's `tryRegisterWithAPIServer`; then posts the
    /// status. Returns the Node.
    pub async fn register(&self) -> Result<Value, ApiError> {
        let nodes = self.resource("", "nodes")?;
        let name = self.config.name.as_str();
        match self
            .service
            .create(&nodes, None, self.initial_node(), &WriteOptions::default())
            .await
        {
            Ok(written) => {
                tracing::info!(node = name, "registered the Node");
                self.record_start_events(None).await;
                return Ok(written.object);
            }
            Err(e) if e.code() == 409 => {}
            Err(e) => return Err(e),
        }
        let labels = self.labels();
        let current = self.service.store.get(&nodes, None, name)?;
        let stale_labels = labels
            .iter()
            .any(|(k, v)| current.pointer("/metadata/labels").and_then(|l| l.get(k)) != Some(v));
        let no_runtime = !self.config.has_runtime;
        let stale_taint = has_no_runtime_taint(&current) != no_runtime;
        if stale_labels || stale_taint {
            self.service
                .update(
                    &nodes,
                    None,
                    name,
                    Part::Main,
                    &WriteOptions::default(),
                    |cur| {
                        let mut new = cur.clone();
                        let meta = new
                            .get_mut("metadata")
                            .and_then(Value::as_object_mut)
                            .ok_or_else(|| ApiError::internal("a Node without metadata"))?;
                        let all = meta.entry("labels").or_insert_with(|| json!({}));
                        if !all.is_object() {
                            *all = json!({});
                        }
                        if let Some(all) = all.as_object_mut() {
                            for (k, v) in &labels {
                                all.insert(k.clone(), v.clone());
                            }
                        }
                        let mut taints: Vec<Value> = new
                            .pointer("/spec/taints")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        set_no_runtime_taint(&mut taints, no_runtime);
                        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                            if taints.is_empty() {
                                spec.remove("taints");
                            } else {
                                spec.insert("taints".into(), json!(taints));
                            }
                        }
                        Ok(new)
                    },
                )
                .await?;
        }
        let node = self.post_status(true).await?;
        tracing::info!(node = name, "the Node exists; updated it");
        self.record_start_events(Some(&current)).await;
        Ok(node)
    }

    /// The kubelet's events on start: `Starting`, then a `NodeReady`-style event per
    /// condition that the registration set or changed (`before` is the Node as found).
    async fn record_start_events(&self, before: Option<&Value>) {
        let name = self.config.name.as_str();
        // The kubelet's recorder uses the node's name as the involved object's uid.
        let node = Involved {
            kind: "Node",
            namespace: None,
            name,
            uid: name,
        };
        record_event(
            &self.service,
            node,
            ("kubelet", name),
            "Normal",
            "Starting",
            "Starting kubelet.",
        )
        .await;
        for (kind, status, _, _) in CONDITIONS {
            let was = before
                .and_then(|n| n.pointer("/status/conditions"))
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
                })
                .and_then(|c| c.get("status").and_then(Value::as_str));
            if was == Some(status) {
                continue;
            }
            let event_reason = match kind {
                "MemoryPressure" => "NodeHasSufficientMemory",
                "DiskPressure" => "NodeHasNoDiskPressure",
                "PIDPressure" => "NodeHasSufficientPID",
                _ => "NodeReady",
            };
            record_event(
                &self.service,
                node,
                ("kubelet", name),
                "Normal",
                event_reason,
                &format!("Node {name} status is now: {event_reason}"),
            )
            .await;
        }
    }

    /// Posts the status through `nodes/status` when it changed (ignoring heartbeat
    /// times) or when `force` (the report frequency elapsed). Returns the stored Node.
    pub async fn post_status(&self, force: bool) -> Result<Value, ApiError> {
        let nodes = self.resource("", "nodes")?;
        let current = self.service.store.get(&nodes, None, &self.config.name)?;
        let stored = current.get("status");
        let status = self.status(stored);
        let changed = stored.map(without_heartbeats) != Some(without_heartbeats(&status));
        if !changed && !force {
            return Ok(current);
        }
        let written = self
            .service
            .update(
                &nodes,
                None,
                &self.config.name,
                Part::Status,
                &WriteOptions::default(),
                |cur| {
                    let mut new = cur.clone();
                    new["status"] = self.status(cur.get("status"));
                    Ok(new)
                },
            )
            .await?;
        Ok(written.object)
    }

    /// The kubelet's Lease: holder = the node, owned by the Node.
    fn lease(&self, node_uid: &str, existing: Option<&Value>) -> Value {
        let mut lease = existing.cloned().unwrap_or_else(|| {
            json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.config.name, "namespace": NODE_LEASE_NAMESPACE},
                "spec": {},
            })
        });
        lease["spec"]["holderIdentity"] = json!(self.config.name);
        lease["spec"]["leaseDurationSeconds"] = json!(self.config.lease_duration_seconds);
        lease["spec"]["renewTime"] = json!(micro_now());
        let owned = lease
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| {
                refs.iter().any(|r| {
                    r.get("uid").and_then(Value::as_str) == Some(node_uid)
                        && r.get("kind").and_then(Value::as_str) == Some("Node")
                })
            });
        if !owned && !node_uid.is_empty() {
            lease["metadata"]["ownerReferences"] = json!([{
                "apiVersion": "v1", "kind": "Node", "name": self.config.name, "uid": node_uid,
            }]);
        }
        lease
    }

    /// Renews (or creates) the Lease.
    pub async fn renew_lease(&self) -> Result<(), ApiError> {
        let leases = self
            .service
            .registry
            .served("coordination.k8s.io", "v1", "leases")?;
        let nodes = self.resource("", "nodes")?;
        let node_uid = self
            .service
            .store
            .get(&nodes, None, &self.config.name)
            .ok()
            .and_then(|n| {
                n.pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let ns = Some(NODE_LEASE_NAMESPACE);
        match self.service.store.get(&leases, ns, &self.config.name) {
            Ok(_) => {
                self.service
                    .update(
                        &leases,
                        ns,
                        &self.config.name,
                        Part::Main,
                        &WriteOptions::default(),
                        |cur| Ok(self.lease(&node_uid, Some(cur))),
                    )
                    .await?;
            }
            Err(e) if e.code() == 404 => {
                let mut lease = self.lease(&node_uid, None);
                lease["spec"]["acquireTime"] = lease["spec"]["renewTime"].clone();
                match self
                    .service
                    .create(&leases, ns, lease, &WriteOptions::default())
                    .await
                {
                    Ok(_) => {}
                    // Created concurrently (a previous attempt that timed out): next round.
                    Err(e) if e.code() == 409 => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Runs forever: registers (retrying), then renews the Lease every quarter of its
    /// duration and posts the status every `status_update_frequency` when it changed.
    pub async fn run(self) {
        while let Err(e) = self.register().await {
            tracing::warn!(error = %e, node = %self.config.name, "registering the Node failed; retrying");
            tokio::time::sleep(RETRY).await;
        }
        let renew = Duration::from_millis(u64::from(self.config.lease_duration_seconds) * 250)
            .max(Duration::from_millis(100));
        let mut next_lease = Instant::now();
        let mut next_status = Instant::now() + self.config.status_update_frequency;
        let mut last_report = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_lease {
                next_lease = match self.renew_lease().await {
                    Ok(()) => now + renew,
                    Err(e) => {
                        tracing::warn!(error = %e, "renewing the node Lease failed");
                        now + RETRY.min(renew)
                    }
                };
            }
            if now >= next_status {
                let force = last_report.elapsed() >= STATUS_REPORT_FREQUENCY;
                match self.post_status(force).await {
                    Ok(_) => {
                        if force {
                            last_report = Instant::now();
                        }
                        next_status = now + self.config.status_update_frequency;
                    }
                    // The Node was deleted under us: register again, as the kubelet does.
                    Err(e) if e.code() == 404 => {
                        if let Err(e) = self.register().await {
                            tracing::warn!(error = %e, "registering the Node again failed");
                        }
                        next_status = now + RETRY;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "posting the node status failed");
                        next_status = now + RETRY;
                    }
                }
            }
            let wake = next_lease.min(next_status);
            tokio::time::sleep(wake.saturating_duration_since(Instant::now())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn capacity_flags_are_canonical_quantities() {
        let cap = parse_capacity(&strings(&["cpu=4", "memory=16384Mi", "pods=110"])).unwrap();
        assert_eq!(cap["cpu"], "4");
        assert_eq!(cap["memory"], "16Gi");
        assert_eq!(cap["pods"], "110");
        let bad = parse_capacity(&strings(&["cpu=lots"]))
            .unwrap_err()
            .to_string();
        assert!(bad.contains("cpu=\"lots\""), "{bad}");
        assert!(parse_capacity(&strings(&["cpu"])).is_err());
    }

    #[test]
    fn taints_in_the_kubelet_format() {
        let t = parse_taints(&strings(&["dedicated=gpu:NoSchedule", "spot:NoExecute"])).unwrap();
        assert_eq!(
            t,
            vec![
                json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}),
                json!({"key": "spot", "effect": "NoExecute"}),
            ]
        );
        assert!(parse_taints(&strings(&["a=b"])).is_err());
        assert!(parse_taints(&strings(&["a=b:Sometimes"])).is_err());
        assert!(parse_taints(&strings(&["=b:NoSchedule"])).is_err());
    }

    #[test]
    fn labels_are_key_value() {
        let l = parse_key_values("--node-labels", &strings(&["zone=a", "role="])).unwrap();
        assert_eq!(l["zone"], "a");
        assert_eq!(l["role"], "");
        assert!(parse_key_values("--node-labels", &strings(&["zone"])).is_err());
    }

    #[test]
    fn machine_facts_parse() {
        assert_eq!(
            memory_bytes("MemTotal:       16303552 kB\nMemFree: 1 kB\n"),
            Some(16303552 * 1024)
        );
        assert_eq!(
            os_image_of("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
            "Debian GNU/Linux 12 (bookworm)"
        );
        let (cap, alloc) = measured_resources(std::path::Path::new("/"));
        assert_eq!(cap["pods"], "110");
        assert!(cap["memory"].as_str().unwrap().ends_with("Ki"));
        assert_ne!(cap["memory"], alloc["memory"]);
    }

    #[test]
    fn transition_times_survive_an_unchanged_status_and_move_on_a_change() {
        let old = json!([
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z",
             "lastHeartbeatTime": "2026-01-01T00:00:00Z"},
            {"type": "MemoryPressure", "status": "Unknown", "lastTransitionTime": "2026-01-01T00:00:00Z"},
        ]);
        let now = "2026-01-02T00:00:00Z";
        let new = conditions(Some(&old), now);
        let find = |t: &str| {
            new.as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == t)
                .unwrap()
                .clone()
        };
        assert_eq!(find("Ready")["lastTransitionTime"], "2026-01-01T00:00:00Z");
        assert_eq!(find("Ready")["lastHeartbeatTime"], now);
        assert_eq!(find("MemoryPressure")["lastTransitionTime"], now);
        assert_eq!(find("MemoryPressure")["status"], "False");
        let types: Vec<&str> = new
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        );
        assert_eq!(
            without_heartbeats(&json!({"conditions": new.clone()})),
            without_heartbeats(
                &json!({"conditions": conditions(Some(&new), "2030-01-01T00:00:00Z")})
            )
        );
    }
}
