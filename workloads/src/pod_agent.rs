//! The kubelet's pod work for one BeeMesh node: every pod whose `spec.nodeName` is this
//! node is started on the node's `Runtime`, and its status is written through
//! `pods/status` as the kubelet writes it (phase, the five pod conditions with transition
//! times, container statuses, pod and host IPs, start time). A pod marked for deletion
//! (`deletionTimestamp`) is stopped with its grace period and then deleted with
//! `gracePeriodSeconds: 0` and a uid precondition, as the kubelet's status manager does.
//!
//! Which pods: a watch on this node's replica, pre-filtered on the raw bytes for the
//! `"nodeName":"..."` it serves (one node, or the many simulated nodes of `--sim-nodes`)
//! so the agent parses only its own pods' changes, and a full
//! list at start, after a broken watch and every `RESYNC` (which also stops runtime pods
//! no longer bound here). `pod_termination` stays as the fallback for pods whose node runs
//! no agent (no `--runtime`) or is gone: it deletes them once their grace period is over.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use beemesh_translator::deletion::DeleteOptions;
use beemesh_translator::service::{ObjectService, Part, WriteOptions};
use beemesh_translator::store::{EventKind, ListRequest, Preconditions, parse_stored};
use beemesh_translator::{ApiError, ResourceInfo};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::container_events;
use crate::pod_prepare;
use crate::probes::{ProbeOutcome, Prober};
use crate::runtime::{
    ContainerSpec, ContainerState, ContainerStatus, NamedPort, PodRuntimeStatus, PodStart, Runtime,
};

/// How often every pod bound here is looked at again without a change (the kubelet's
/// periodic pod sync is 1 min).
const RESYNC: Duration = Duration::from_secs(60);
/// The delay before a failed write or start is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// Pods synced at once (their status writes then share group commits).
const PARALLEL_SYNCS: usize = 64;
/// Watch events gathered into one batch at most.
const MAX_BATCH: usize = 1024;
/// The longest grace period the agent waits for while stopping a pod.
const MAX_GRACE: Duration = Duration::from_secs(300);

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn specs(list: Option<&Value>) -> Vec<ContainerSpec> {
    list.and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| ContainerSpec {
                    name: str_at(c, "/name").to_string(),
                    image: str_at(c, "/image").to_string(),
                    image_pull_policy: str_at(c, "/imagePullPolicy").to_string(),
                    command: strings(c.get("command")),
                    args: strings(c.get("args")),
                    working_dir: c
                        .get("workingDir")
                        .and_then(Value::as_str)
                        .filter(|d| !d.is_empty())
                        .map(str::to_string),
                    ports: c
                        .get("ports")
                        .and_then(Value::as_array)
                        .map(|ps| {
                            ps.iter()
                                .filter_map(|p| {
                                    Some(NamedPort {
                                        name: p
                                            .get("name")
                                            .and_then(Value::as_str)
                                            .map(str::to_string),
                                        port: u16::try_from(p.get("containerPort")?.as_u64()?)
                                            .ok()?,
                                    })
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    stdin: c.get("stdin").and_then(Value::as_bool).unwrap_or(false),
                    stdin_once: c.get("stdinOnce").and_then(Value::as_bool).unwrap_or(false),
                    tty: c.get("tty").and_then(Value::as_bool).unwrap_or(false),
                    ..ContainerSpec::default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the runtime needs of a pod.
pub fn pod_start(pod: &Value) -> PodStart {
    let annotations = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let policy = match str_at(pod, "/spec/restartPolicy") {
        "" => "Always",
        p => p,
    };
    PodStart {
        uid: str_at(pod, "/metadata/uid").to_string(),
        namespace: str_at(pod, "/metadata/namespace").to_string(),
        name: str_at(pod, "/metadata/name").to_string(),
        init_containers: specs(pod.pointer("/spec/initContainers")),
        containers: specs(pod.pointer("/spec/containers")),
        restart_policy: policy.to_string(),
        annotations,
        termination_grace: Duration::from_secs(
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(30),
        ),
    }
}

/// `containerStatuses[]` entry as the kubelet writes it.
fn container_status(c: &ContainerStatus, ready: bool) -> Value {
    let (state, started) = match &c.state {
        ContainerState::Waiting { reason, message } => {
            let mut w = json!({"reason": reason});
            if let Some(m) = message {
                w["message"] = json!(m);
            }
            (json!({"waiting": w}), false)
        }
        ContainerState::Running { started_at } => (
            json!({"running": {"startedAt": rfc3339(*started_at)}}),
            true,
        ),
        ContainerState::Terminated {
            exit_code,
            reason,
            started_at,
            finished_at,
        } => (
            json!({"terminated": {
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": rfc3339(*started_at),
                "finishedAt": rfc3339(*finished_at),
                "containerID": c.container_id,
            }}),
            false,
        ),
    };
    let last = match &c.last_state {
        Some(ContainerState::Terminated {
            exit_code,
            reason,
            started_at,
            finished_at,
        }) => json!({"terminated": {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": rfc3339(*started_at),
            "finishedAt": rfc3339(*finished_at),
        }}),
        _ => json!({}),
    };
    let mut out = json!({
        "name": c.name,
        "state": state,
        "lastState": last,
        "ready": ready,
        "restartCount": c.restart_count,
        "image": c.image,
        "imageID": c.image_id,
        "started": started,
    });
    if !matches!(c.state, ContainerState::Waiting { .. }) {
        out["containerID"] = json!(c.container_id);
    }
    out
}

/// One pod condition, keeping the stored `lastTransitionTime` when its status is unchanged.
fn condition(
    stored: &Value,
    kind: &str,
    ok: bool,
    reason: Option<(&str, String)>,
    now: &str,
) -> Value {
    let status = if ok { "True" } else { "False" };
    let previous = stored
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind));
    let since = match previous {
        Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let mut c = json!({"type": kind, "status": status, "lastProbeTime": null,
        "lastTransitionTime": since});
    if let Some((reason, message)) = reason.filter(|_| !ok) {
        c["reason"] = json!(reason);
        if !message.is_empty() {
            c["message"] = json!(message);
        }
    }
    c
}

/// The pod's phase from its containers, as the kubelet's `getPhase`: any container not yet
/// started → Pending; any running → Running; all exited → Succeeded when every exit code
/// is 0, else Failed under `Never` (and Running while `OnFailure`/`Always` restart them).
fn phase(containers: &[ContainerStatus], restart_policy: &str) -> &'static str {
    if containers.is_empty() {
        return "Pending";
    }
    let mut running = false;
    let mut failed = false;
    for c in containers {
        match &c.state {
            ContainerState::Waiting { .. } => return "Pending",
            ContainerState::Running { .. } => running = true,
            ContainerState::Terminated { exit_code, .. } => failed |= *exit_code != 0,
        }
    }
    if running {
        "Running"
    } else if !failed {
        "Succeeded"
    } else if restart_policy == "Never" {
        "Failed"
    } else {
        "Running"
    }
}

/// The phase the runtime's report means for this pod.
fn phase_of(rt: &PodRuntimeStatus, start: &PodStart) -> &'static str {
    let init_failed = rt
        .init_containers
        .iter()
        .any(|c| matches!(c.state, ContainerState::Terminated { exit_code, .. } if exit_code != 0));
    if init_failed && start.restart_policy == "Never" {
        // A failed init container is not retried under `Never`: the pod has failed.
        return "Failed";
    }
    phase(&rt.containers, &start.restart_policy)
}

/// Init containers that have not completed (not terminated with exit code 0).
fn incomplete_init(rt: &PodRuntimeStatus) -> Vec<&str> {
    rt.init_containers
        .iter()
        .filter(|c| !matches!(c.state, ContainerState::Terminated { exit_code: 0, .. }))
        .map(|c| c.name.as_str())
        .collect()
}

/// The pod's whole `status` from what the runtime reports, as the kubelet computes it
/// (`generateAPIPodStatus`). Fields the agent does not own (`qosClass`, conditions other
/// agents add such as `DisruptionTarget`, `nominatedNodeName`) are kept.
pub fn pod_status(pod: &Value, rt: &PodRuntimeStatus, host_ip: IpAddr, now: &str) -> Value {
    pod_status_probed(pod, rt, host_ip, now, &[])
}

/// `pod_status` with the containers whose probes say they are not ready (readiness not
/// passed yet, or startup not done): not `ready`, and the pod not Ready.
pub fn pod_status_probed(
    pod: &Value,
    rt: &PodRuntimeStatus,
    host_ip: IpAddr,
    now: &str,
    unready: &[String],
) -> Value {
    let start = pod_start(pod);
    let phase = phase_of(rt, &start);
    let terminal = phase == "Succeeded" || phase == "Failed";
    let ready_of = |c: &ContainerStatus| {
        matches!(c.state, ContainerState::Running { .. }) && !unready.contains(&c.name)
    };
    let mut containers: Vec<&ContainerStatus> = rt.containers.iter().collect();
    // The kubelet sorts container statuses by name.
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    let not_ready: Vec<&str> = rt
        .containers
        .iter()
        .filter(|c| !ready_of(c))
        .map(|c| c.name.as_str())
        .collect();
    let all_ready = not_ready.is_empty();
    let unready = if terminal {
        ("PodCompleted", String::new())
    } else {
        (
            "ContainersNotReady",
            format!("containers with unready status: [{}]", not_ready.join(" ")),
        )
    };
    let sandbox = !terminal;
    let incomplete = incomplete_init(rt);
    let mut conditions = vec![
        condition(pod, "PodReadyToStartContainers", sandbox, None, now),
        condition(
            pod,
            "Initialized",
            incomplete.is_empty(),
            Some((
                "ContainersNotInitialized",
                format!(
                    "containers with incomplete status: [{}]",
                    incomplete.join(" ")
                ),
            )),
            now,
        ),
        condition(pod, "Ready", all_ready, Some(unready.clone()), now),
        condition(pod, "ContainersReady", all_ready, Some(unready), now),
        condition(pod, "PodScheduled", true, None, now),
    ];
    // Conditions other writers own (DisruptionTarget, readiness gates) stay as they are.
    let ours: HashSet<&str> = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    .into();
    if let Some(others) = pod.pointer("/status/conditions").and_then(Value::as_array) {
        conditions.extend(
            others
                .iter()
                .filter(|c| !ours.contains(str_at(c, "/type")))
                .cloned(),
        );
    }
    let mut status = pod.get("status").cloned().unwrap_or_else(|| json!({}));
    if !status.is_object() {
        status = json!({});
    }
    let start_time = pod
        .pointer("/status/startTime")
        .cloned()
        .unwrap_or_else(|| json!(now));
    status["phase"] = json!(phase);
    status["conditions"] = Value::Array(conditions);
    status["hostIP"] = json!(host_ip.to_string());
    status["hostIPs"] = json!([{"ip": host_ip.to_string()}]);
    // A runtime without a network of the pod's own (`process`) reports no address: the pod
    // shares the host's, as the kubelet shows `hostNetwork` pods.
    let host_ips = [host_ip];
    let ips: &[IpAddr] = if rt.ips.is_empty() {
        &host_ips
    } else {
        &rt.ips
    };
    if let Some(ip) = ips.first() {
        status["podIP"] = json!(ip.to_string());
        status["podIPs"] =
            Value::Array(ips.iter().map(|ip| json!({"ip": ip.to_string()})).collect());
    }
    status["startTime"] = start_time;
    let init: Vec<Value> = rt
        .init_containers
        .iter()
        .map(|c| {
            container_status(
                c,
                matches!(c.state, ContainerState::Terminated { exit_code: 0, .. }),
            )
        })
        .collect();
    if !init.is_empty() {
        status["initContainerStatuses"] = Value::Array(init);
    }
    status["containerStatuses"] = Value::Array(
        containers
            .into_iter()
            .map(|c| container_status(c, ready_of(c)))
            .collect(),
    );
    status
}

/// Stops a pod marked for deletion, then removes it (grace 0, uid precondition).
async fn terminate(
    service: &ObjectService,
    runtime: &dyn Runtime,
    pods: &ResourceInfo,
    pod: &Value,
    start: &PodStart,
) -> Result<(), ApiError> {
    let grace = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_u64)
        .map_or(Duration::ZERO, Duration::from_secs)
        .min(MAX_GRACE);
    runtime
        .stop_pod(&start.uid, grace)
        .await
        .map_err(|e| ApiError::internal(format!("stopping the pod: {e}")))?;
    if pod.pointer("/metadata/deletionGracePeriodSeconds") == Some(&json!(0)) {
        // Already a zero-grace delete: only finalizers hold the pod now.
        return Ok(());
    }
    let opts = DeleteOptions {
        preconditions: Preconditions {
            uid: Some(start.uid.clone()),
            resource_version: None,
        },
        grace_period_seconds: Some(0),
        ..DeleteOptions::default()
    };
    match service
        .delete_with(pods, Some(&start.namespace), &start.name, &opts)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == 404 || e.code() == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The kubelet's pod loop for one node, or for many simulated nodes at once
/// (`beemesh up --sim-nodes`): one watch and one list serve every node it runs pods for.
pub struct PodAgent {
    service: ObjectService,
    host_ip: IpAddr,
    /// The nodes this agent is the kubelet of, each with its runtime.
    nodes: HashMap<String, Arc<dyn Runtime>>,
    /// Container probes of the pods run by real runtimes.
    prober: Prober,
    /// Uids of pods whose graceful stop runs in a task now.
    terminating: Arc<std::sync::Mutex<HashSet<String>>>,
}

/// A pod to look at again at a time (a runtime delay or a failed write).
type Timers = HashMap<(String, String), Instant>;

fn pod_key(pod: &Value) -> (String, String) {
    (
        str_at(pod, "/metadata/namespace").to_string(),
        str_at(pod, "/metadata/name").to_string(),
    )
}

/// Records when to look at a synced pod again.
fn schedule(
    timers: &mut Timers,
    key: (String, String),
    result: Result<Option<Duration>, ApiError>,
) {
    match result {
        Ok(Some(after)) => {
            timers.insert(key, Instant::now() + after);
        }
        Ok(None) => {
            timers.remove(&key);
        }
        Err(e) => {
            tracing::warn!(pod = %format!("{}/{}", key.0, key.1), error = %e, "pod sync failed");
            timers.insert(key, Instant::now() + RETRY);
        }
    }
}

/// The bytes just before a bound pod's node name in its stored JSON.
const NODE_NAME_NEEDLE: &[u8] = b"\"nodeName\":\"";

/// The node name a stored pod is bound to, read from its raw bytes without parsing (node
/// names are DNS subdomains: no escapes inside the string).
fn raw_node_name(raw: &[u8]) -> Option<&[u8]> {
    let at = raw
        .windows(NODE_NAME_NEEDLE.len())
        .position(|w| w == NODE_NAME_NEEDLE)?
        + NODE_NAME_NEEDLE.len();
    let len = raw[at..].iter().position(|&b| b == b'"')?;
    Some(&raw[at..at + len])
}

impl PodAgent {
    pub fn new(
        service: ObjectService,
        node_name: String,
        host_ip: IpAddr,
        runtime: Arc<dyn Runtime>,
    ) -> Self {
        PodAgent::for_nodes(service, host_ip, [(node_name, runtime)])
    }

    /// One agent for several nodes of this process (the simulated nodes of
    /// `--sim-nodes`, and the node itself when it has a runtime).
    pub fn for_nodes(
        service: ObjectService,
        host_ip: IpAddr,
        nodes: impl IntoIterator<Item = (String, Arc<dyn Runtime>)>,
    ) -> Self {
        PodAgent {
            service,
            host_ip,
            nodes: nodes.into_iter().collect(),
            prober: Prober::default(),
            terminating: Arc::default(),
        }
    }

    fn pods(&self) -> Result<Arc<ResourceInfo>, ApiError> {
        self.service.registry.served("", "v1", "pods")
    }

    /// The runtime of the node `pod` is bound to, when that node is served here.
    fn runtime_of(&self, pod: &Value) -> Option<&Arc<dyn Runtime>> {
        self.nodes.get(str_at(pod, "/spec/nodeName"))
    }

    fn is_mine(&self, pod: &Value) -> bool {
        self.runtime_of(pod).is_some()
    }

    fn might_be_mine(&self, raw: &[u8]) -> bool {
        raw_node_name(raw)
            .and_then(|n| std::str::from_utf8(n).ok())
            .is_some_and(|n| self.nodes.contains_key(n))
    }

    /// Every pod bound to this node, from the local replica.
    fn list_mine(&self, pods: &ResourceInfo) -> Result<Vec<Value>, ApiError> {
        let page = self.service.store.list(pods, &ListRequest::latest(None))?;
        let mut out = Vec::new();
        for item in page.items {
            if !self.might_be_mine(&item) {
                continue;
            }
            let pod = parse_stored(&item)?;
            if self.is_mine(&pod) {
                out.push(pod);
            }
        }
        Ok(out)
    }

    /// Brings one pod bound here in step: started, status written, or stopped and deleted.
    /// Returns when to look at it again, if the runtime said so.
    pub async fn sync_pod(
        &self,
        pods: &ResourceInfo,
        pod: &Value,
    ) -> Result<Option<Duration>, ApiError> {
        let Some(runtime) = self.runtime_of(pod) else {
            return Ok(None);
        };
        let start = pod_start(pod);
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            let graceful = pod
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                > 0;
            if !graceful || runtime.pod_volume_dir(&start.uid).is_none() {
                return terminate(&self.service, runtime.as_ref(), pods, pod, &start)
                    .await
                    .map(|_| None);
            }
            // A real process may take its whole grace period to end: that wait runs in a
            // task of its own, so the other pods' syncs and probes go on meanwhile.
            let fresh = self
                .terminating
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(start.uid.clone());
            if fresh {
                let service = self.service.clone();
                let runtime = runtime.clone();
                let terminating = self.terminating.clone();
                let pod = pod.clone();
                tokio::spawn(async move {
                    for _ in 0..10 {
                        let Some(pods) = service.registry.get("", "v1", "pods") else {
                            break;
                        };
                        match terminate(&service, runtime.as_ref(), &pods, &pod, &start).await {
                            Ok(()) => break,
                            Err(e) => {
                                tracing::warn!(uid = %start.uid, error = %e, "ending a pod failed");
                                tokio::time::sleep(RETRY).await;
                            }
                        }
                    }
                    terminating
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&start.uid);
                });
            }
            return Ok(None);
        }
        let phase = str_at(pod, "/status/phase");
        let known = runtime.pod_status(&start.uid).await;
        if known.is_none() && (phase == "Succeeded" || phase == "Failed") {
            // Finished pods are not run again (also after a restart of this node).
            return Ok(None);
        }
        if known.is_none() {
            // A runtime that runs processes gets resolved env, command lines and volumes;
            // what cannot be resolved yet keeps the containers waiting, with the reason.
            let ready = match runtime.pod_volume_dir(&start.uid) {
                None => start.clone(),
                Some(dir) => {
                    match pod_prepare::prepare(
                        &self.service,
                        pod,
                        start.clone(),
                        &dir,
                        self.host_ip,
                    ) {
                        Ok(ready) => ready,
                        Err(e) => {
                            let rt = pod_prepare::waiting_status(&start, &e);
                            self.write_status(pods, &start, &rt, &[], true).await?;
                            return Ok(rt.recheck_after);
                        }
                    }
                }
            };
            runtime
                .start_pod(&ready)
                .await
                .map_err(|e| ApiError::internal(format!("starting the pod: {e}")))?;
        }
        let Some(rt) = runtime.pod_status(&start.uid).await else {
            return Ok(Some(RETRY));
        };
        // Probes and lifecycle events for runtimes that run something.
        let real = runtime.pod_volume_dir(&start.uid).is_some();
        let probed = if real {
            let pod_ip = rt.ips.first().copied().unwrap_or(self.host_ip);
            self.prober.run(runtime.as_ref(), pod, &rt, pod_ip).await
        } else {
            ProbeOutcome::default()
        };
        for message in &probed.unhealthy {
            self.event(pod, "Warning", "Unhealthy", message.clone())
                .await;
        }
        for (container, why) in &probed.restart {
            self.event(
                pod,
                "Normal",
                "Killing",
                format!(
                    "Container {container} failed {} probe, will be restarted",
                    why.split_whitespace().next().unwrap_or("").to_lowercase()
                ),
            )
            .await;
            if let Err(e) = runtime
                .restart_container(&start.uid, container, start.termination_grace)
                .await
            {
                tracing::warn!(error = %e, %container, "restarting an unhealthy container failed");
            }
        }
        let stored = self
            .write_status(pods, &start, &rt, &probed.unready, real)
            .await?;
        let terminal = matches!(phase_of(&rt, &start), "Succeeded" | "Failed");
        if stored && terminal {
            // As the kubelet tears down a finished pod's sandbox: the IP is free again, and
            // the stored status (podIP included) stays as the record.
            runtime
                .stop_pod(&start.uid, Duration::ZERO)
                .await
                .map_err(|e| ApiError::internal(format!("stopping the pod: {e}")))?;
            self.prober.forget(&start.uid);
            return Ok(None);
        }
        Ok(match (rt.recheck_after, probed.next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// An event on a pod as the kubelet records it (`Unhealthy`, `Killing`); failing to
    /// record one is not an error.
    async fn event(&self, pod: &Value, type_: &str, reason: &str, message: String) {
        let Some(events) = self.service.registry.get("", "v1", "events") else {
            return;
        };
        let ns = str_at(pod, "/metadata/namespace");
        let name = str_at(pod, "/metadata/name");
        let now = beemesh_translator::service::now_rfc3339();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let host = str_at(pod, "/spec/nodeName");
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{nanos:x}"), "namespace": ns},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": name,
                               "namespace": ns, "uid": str_at(pod, "/metadata/uid"),
                               "resourceVersion": str_at(pod, "/metadata/resourceVersion")},
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": "kubelet", "host": host},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": "kubelet",
            "reportingInstance": host,
        });
        if let Err(e) = self
            .service
            .create(&events, Some(ns), event, &WriteOptions::default())
            .await
        {
            tracing::debug!(error = %e, "kubelet event not recorded");
        }
    }

    /// Writes the pod's status; true once it is stored (false: the pod is gone or replaced).
    async fn write_status(
        &self,
        pods: &ResourceInfo,
        start: &PodStart,
        rt: &PodRuntimeStatus,
        unready: &[String],
        record_events: bool,
    ) -> Result<bool, ApiError> {
        let now = rfc3339(Utc::now());
        let current = match self
            .service
            .store
            .get(pods, Some(&start.namespace), &start.name)
        {
            Ok(current) => current,
            Err(e) if e.code() == 404 => return Ok(false),
            Err(e) => return Err(e),
        };
        if str_at(&current, "/metadata/uid") != start.uid {
            return Ok(false);
        }
        let wanted = pod_status_probed(&current, rt, self.host_ip, &now, unready);
        if current.get("status") == Some(&wanted) {
            return Ok(true);
        }
        let events = if record_events {
            container_events::transitions(&current, rt)
        } else {
            Vec::new()
        };
        let result = self
            .service
            .update(
                pods,
                Some(&start.namespace),
                &start.name,
                Part::Status,
                &WriteOptions::default(),
                |cur| {
                    if str_at(cur, "/metadata/uid") != start.uid {
                        return Err(ApiError::conflict(
                            "",
                            "pods",
                            &start.name,
                            "the pod was replaced",
                        ));
                    }
                    let mut new = cur.clone();
                    new["status"] = pod_status_probed(cur, rt, self.host_ip, &now, unready);
                    Ok(new)
                },
            )
            .await;
        match result {
            Ok(_) => {
                for (type_, reason, message) in events {
                    self.event(&current, type_, reason, message).await;
                }
                Ok(true)
            }
            Err(e) if e.code() == 404 || e.code() == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every pod bound here synced; runtime pods no longer bound here stopped.
    async fn resync(&self, pods: &ResourceInfo, timers: &mut Timers) -> Result<(), ApiError> {
        let mine = self.list_mine(pods)?;
        let uids: HashSet<String> = mine
            .iter()
            .map(|p| str_at(p, "/metadata/uid").to_string())
            .collect();
        for runtime in self.nodes.values() {
            for uid in runtime.pods().await {
                if !uids.contains(&uid) {
                    match runtime.stop_pod(&uid, Duration::ZERO).await {
                        Ok(()) => runtime.forget_pod(&uid).await,
                        Err(e) => {
                            tracing::warn!(%uid, error = %e, "stopping a pod no longer bound here failed");
                        }
                    }
                }
            }
        }
        timers.clear();
        for pod in &mine {
            self.sync_and_schedule(pods, pod, timers).await;
        }
        Ok(())
    }

    async fn sync_and_schedule(&self, pods: &ResourceInfo, pod: &Value, timers: &mut Timers) {
        let result = self.sync_pod(pods, pod).await;
        schedule(timers, pod_key(pod), result);
    }

    /// Syncs a batch of pods (one entry per pod) concurrently, so their status writes
    /// share the write path's group commits instead of paying one fsync each.
    async fn sync_batch(&self, pods: &ResourceInfo, batch: Vec<Value>, timers: &mut Timers) {
        let started = Instant::now();
        let size = batch.len();
        let results: Vec<_> = futures::stream::iter(batch)
            .map(|pod| async move {
                let result = self.sync_pod(pods, &pod).await;
                (pod_key(&pod), result)
            })
            .buffer_unordered(PARALLEL_SYNCS)
            .collect()
            .await;
        for (key, result) in results {
            schedule(timers, key, result);
        }
        if size > 0 {
            tracing::debug!(
                pods = size,
                ms = started.elapsed().as_millis() as u64,
                "pod agent batch"
            );
        }
    }

    /// The pod a watch event asks to sync, if it is bound here; a deleted pod is stopped
    /// and forgotten here and yields nothing.
    async fn pod_of_event(
        &self,
        prefix: &[u8],
        key: &[u8],
        value: &[u8],
        kind: EventKind,
    ) -> Option<Value> {
        if !key.starts_with(prefix) || !self.might_be_mine(value) {
            return None;
        }
        let pod = parse_stored(value).ok()?;
        let runtime = self.runtime_of(&pod)?;
        if kind == EventKind::Delete {
            let uid = str_at(&pod, "/metadata/uid");
            match runtime.stop_pod(uid, Duration::ZERO).await {
                // Gone from the API: its logs and volumes go too.
                Ok(()) => {
                    runtime.forget_pod(uid).await;
                    self.prober.forget(uid);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "stopping a deleted pod failed");
                }
            }
            return None;
        }
        Some(pod)
    }

    /// Runs forever.
    pub async fn run(self) {
        let Ok(pods) = self.pods() else {
            return;
        };
        let mut timers = Timers::new();
        loop {
            let from = self.service.store.revision();
            if let Err(e) = self.resync(&pods, &mut timers).await {
                tracing::warn!(error = %e, "pod agent resync failed");
                tokio::time::sleep(RETRY).await;
                continue;
            }
            let Ok(mut source) = self.service.store.watch(&pods, None, Some(from)) else {
                tokio::time::sleep(RETRY).await;
                continue;
            };
            let resync_at = Instant::now() + RESYNC;
            loop {
                let next = timers.values().min().copied().unwrap_or(resync_at);
                let wake = next.min(resync_at);
                tokio::select! {
                    ev = source.subscription.next() => {
                        // This event and every one already waiting (up to a batch), the
                        // latest change of each pod synced once.
                        let mut batch: Vec<Value> = Vec::new();
                        let mut at: HashMap<(String, String), usize> = HashMap::new();
                        let mut ended = false;
                        let mut next = Some(ev);
                        while let Some(ev) = next.take() {
                            match ev {
                                Ok(e) => {
                                    if let Some(pod) = self
                                        .pod_of_event(&source.prefix, &e.key, &e.value, e.kind)
                                        .await {
                                        match at.get(&pod_key(&pod)) {
                                            Some(&i) => batch[i] = pod,
                                            None => {
                                                at.insert(pod_key(&pod), batch.len());
                                                batch.push(pod);
                                            }
                                        }
                                    }
                                }
                                // The history moved past us or the replica closed: list again.
                                Err(_) => {
                                    ended = true;
                                    break;
                                }
                            }
                            if batch.len() < MAX_BATCH {
                                next = source.subscription.next().now_or_never();
                            }
                        }
                        self.sync_batch(&pods, batch, &mut timers).await;
                        if ended {
                            break;
                        }
                    }
                    _ = tokio::time::sleep_until(wake) => {
                        if Instant::now() >= resync_at {
                            break;
                        }
                        let due: Vec<(String, String)> = timers
                            .iter()
                            .filter(|(_, t)| **t <= Instant::now())
                            .map(|(k, _)| k.clone())
                            .collect();
                        for key in due {
                            timers.remove(&key);
                            match self.service.store.get(&pods, Some(&key.0), &key.1) {
                                Ok(pod) if self.is_mine(&pod) => {
                                    self.sync_and_schedule(&pods, &pod, &mut timers).await;
                                }
                                Ok(_) => {}
                                Err(e) if e.code() == 404 => {}
                                Err(_) => {
                                    timers.insert(key, Instant::now() + RETRY);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0)
            .single()
            .unwrap_or_default()
    }

    fn c(name: &str, state: ContainerState) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            image: "img".into(),
            image_id: "sim://img".into(),
            container_id: format!("sim://{name}"),
            state,
            last_state: None,
            restart_count: 0,
        }
    }

    fn running(name: &str) -> ContainerStatus {
        c(name, ContainerState::Running { started_at: at(0) })
    }

    fn exited(name: &str, code: i32) -> ContainerStatus {
        c(
            name,
            ContainerState::Terminated {
                exit_code: code,
                reason: "x".into(),
                started_at: at(0),
                finished_at: at(1),
            },
        )
    }

    #[test]
    fn phase_follows_the_containers() {
        let waiting = c(
            "w",
            ContainerState::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
        );
        assert_eq!(phase(&[running("a"), waiting], "Always"), "Pending");
        assert_eq!(phase(&[running("a"), exited("b", 0)], "Never"), "Running");
        assert_eq!(
            phase(&[exited("a", 0), exited("b", 0)], "Never"),
            "Succeeded"
        );
        assert_eq!(phase(&[exited("a", 0), exited("b", 1)], "Never"), "Failed");
        assert_eq!(phase(&[exited("a", 1)], "OnFailure"), "Running");
        assert_eq!(phase(&[], "Always"), "Pending");
    }

    #[test]
    fn status_keeps_transition_times_and_foreign_fields() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u"},
            "spec": {"nodeName": "n", "containers": [{"name": "a", "image": "img"}]},
            "status": {"phase": "Pending", "qosClass": "BestEffort", "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
                {"type": "DisruptionTarget", "status": "True", "reason": "x"},
            ]},
        });
        let rt = PodRuntimeStatus {
            init_containers: vec![],
            containers: vec![running("a")],
            ips: vec!["10.64.0.2".parse().unwrap()],
            recheck_after: None,
        };
        let s = pod_status(
            &pod,
            &rt,
            "10.0.0.1".parse().unwrap(),
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["qosClass"], "BestEffort");
        assert_eq!(s["podIP"], "10.64.0.2");
        assert_eq!(s["startTime"], "2026-01-01T00:00:00Z");
        let conds = s["conditions"].as_array().unwrap();
        let find = |k: &str| conds.iter().find(|c| c["type"] == k).unwrap();
        assert_eq!(
            find("PodScheduled")["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        assert_eq!(find("Ready")["lastTransitionTime"], "2026-01-01T00:00:00Z");
        assert_eq!(find("DisruptionTarget")["reason"], "x");
        assert_eq!(s["containerStatuses"][0]["containerID"], "sim://a");
        // A second computation from its own output changes nothing (no rewrite loop).
        let mut again = pod.clone();
        again["status"] = s.clone();
        assert_eq!(
            pod_status(
                &again,
                &rt,
                "10.0.0.1".parse().unwrap(),
                "2026-01-01T00:09:00Z"
            ),
            s
        );
    }

    #[test]
    fn unready_containers_are_named() {
        let pod = json!({"metadata": {"uid": "u"}, "spec": {"containers": []}});
        let rt = PodRuntimeStatus {
            init_containers: vec![],
            containers: vec![
                running("a"),
                c(
                    "b",
                    ContainerState::Waiting {
                        reason: "ContainerCreating".into(),
                        message: None,
                    },
                ),
            ],
            ips: vec![],
            recheck_after: None,
        };
        let s = pod_status(
            &pod,
            &rt,
            "10.0.0.1".parse().unwrap(),
            "2026-01-01T00:00:00Z",
        );
        let ready = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "ContainersNotReady");
        assert_eq!(ready["message"], "containers with unready status: [b]");
        assert!(s["containerStatuses"][1].get("containerID").is_none());
        assert_eq!(s["containerStatuses"][1]["started"], false);
    }

    #[test]
    fn the_node_name_is_read_from_the_raw_pod() {
        let mine = serde_json::to_vec(&json!({"spec": {"nodeName": "n-1"}})).unwrap();
        let other = serde_json::to_vec(&json!({"spec": {"nodeName": "n-10"}})).unwrap();
        let unbound = serde_json::to_vec(&json!({"spec": {"containers": []}})).unwrap();
        assert_eq!(raw_node_name(&mine), Some(&b"n-1"[..]));
        // The whole string is read: `n-1` does not match `n-10`.
        assert_eq!(raw_node_name(&other), Some(&b"n-10"[..]));
        assert_eq!(raw_node_name(&unbound), None);
    }
}
