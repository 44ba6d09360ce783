//! What a runtime that runs real processes needs before a pod starts, resolved by the
//! agent from the local replica: volumes written to the runtime's directory
//! (`pod_volumes`), each container's environment and expanded command line (`pod_env`),
//! its mounts. When that fails the pod does not start: its containers wait with the
//! kubelet's reason (`CreateContainerConfigError` for env, `ContainerCreating` for a volume
//! that cannot be set up) and the message, and the agent tries again a little later.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use beemesh_translator::service::ObjectService;
use serde_json::Value;

use crate::pod_env::{self, Sources};
use crate::pod_volumes;
use crate::runtime::{ContainerSpec, ContainerState, ContainerStatus, PodRuntimeStatus, PodStart};

/// How soon a pod that could not be prepared is tried again (the kubelet's sync retries).
pub const RETRY_PREPARE: Duration = Duration::from_secs(2);

/// Why containers cannot start yet, per container name: (reason, message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareError {
    pub failures: Vec<(String, &'static str, String)>,
}

/// Fills `start`'s containers with resolved env, command, args and mounts, writing the
/// pod's volumes under `volume_dir`.
pub fn prepare(
    service: &ObjectService,
    pod: &Value,
    mut start: PodStart,
    volume_dir: &Path,
    host_ip: IpAddr,
) -> Result<PodStart, PrepareError> {
    let ns = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut sources = Sources::new(service, ns);
    let host = host_ip.to_string();
    let pod_ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .unwrap_or(&host)
        .to_string();
    let every = |start: &PodStart| -> Vec<String> {
        start
            .init_containers
            .iter()
            .chain(&start.containers)
            .map(|c| c.name.clone())
            .collect()
    };
    let volumes = match pod_volumes::materialise(&mut sources, pod, volume_dir, &host) {
        Ok(v) => v,
        Err(e) => {
            return Err(PrepareError {
                failures: every(&start)
                    .into_iter()
                    .map(|n| (n, "ContainerCreating", e.0.clone()))
                    .collect(),
            });
        }
    };
    let mut failures = Vec::new();
    for (list, specs) in [
        ("/spec/initContainers", &mut start.init_containers),
        ("/spec/containers", &mut start.containers),
    ] {
        let declared = pod
            .pointer(list)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for spec in specs.iter_mut() {
            let Some(c) = declared.iter().find(|c| c["name"] == spec.name.as_str()) else {
                continue;
            };
            let resolved = pod_env::resolve(&mut sources, pod, c, &pod_ip, &host)
                .and_then(|r| Ok((r, pod_volumes::mounts(c, &volumes)?)));
            match resolved {
                Ok((r, mounts)) => fill(spec, r, mounts),
                Err(e) => failures.push((spec.name.clone(), "CreateContainerConfigError", e.0)),
            }
        }
    }
    if failures.is_empty() {
        Ok(start)
    } else {
        Err(PrepareError { failures })
    }
}

fn fill(
    spec: &mut ContainerSpec,
    r: pod_env::ResolvedContainer,
    mounts: Vec<crate::runtime::VolumeMount>,
) {
    spec.env = r.env;
    spec.command = r.command;
    spec.args = r.args;
    spec.mounts = mounts;
}

/// The status of a pod whose containers could not be prepared: each waits, with its own
/// failure or `ContainerCreating`.
pub fn waiting_status(start: &PodStart, error: &PrepareError) -> PodRuntimeStatus {
    let status = |c: &ContainerSpec| {
        let (reason, message) = error
            .failures
            .iter()
            .find(|(n, _, _)| *n == c.name)
            .map_or(("ContainerCreating", None), |(_, r, m)| {
                (*r, Some(m.clone()))
            });
        ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone(),
            image_id: String::new(),
            container_id: String::new(),
            state: ContainerState::Waiting {
                reason: reason.to_string(),
                message,
            },
            last_state: None,
            restart_count: 0,
        }
    };
    PodRuntimeStatus {
        init_containers: start.init_containers.iter().map(status).collect(),
        containers: start.containers.iter().map(status).collect(),
        ips: Vec::new(),
        recheck_after: Some(RETRY_PREPARE),
    }
}
