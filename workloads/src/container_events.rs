//! The kubelet's container lifecycle events (`Pulled`, `Created`, `Started`, `BackOff`),
//! derived by comparing the container statuses last written to the pod with what the
//! runtime reports now: a container seen running under a new container id was started,
//! one newly waiting in `CrashLoopBackOff` is backing off. A run that starts and ends
//! between two looks of the agent goes unreported, which only thins the event stream.

use serde_json::Value;

use crate::runtime::{ContainerState, ContainerStatus, PodRuntimeStatus};

/// One event to record on the pod: (type, reason, message).
pub type ContainerEvent = (&'static str, &'static str, String);

fn previous<'a>(pod: &'a Value, list: &str, name: &str) -> Option<&'a Value> {
    pod.pointer(&format!("/status/{list}"))
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["name"] == name)
}

fn of_container(pod: &Value, list: &str, c: &ContainerStatus, out: &mut Vec<ContainerEvent>) {
    let before = previous(pod, list, &c.name);
    match &c.state {
        ContainerState::Running { .. } => {
            let seen = before
                .and_then(|b| b.get("containerID"))
                .and_then(Value::as_str)
                == Some(c.container_id.as_str());
            if !seen {
                out.push((
                    "Normal",
                    "Pulled",
                    format!("Container image \"{}\" already present on machine", c.image),
                ));
                out.push((
                    "Normal",
                    "Created",
                    format!("Created container: {}", c.name),
                ));
                out.push(("Normal", "Started", format!("Started container {}", c.name)));
            }
        }
        ContainerState::Waiting { reason, .. } if reason == "CrashLoopBackOff" => {
            let was = before
                .and_then(|b| b.pointer("/state/waiting/reason"))
                .and_then(Value::as_str);
            let restarts = before
                .and_then(|b| b.get("restartCount"))
                .and_then(Value::as_u64);
            if was != Some("CrashLoopBackOff") || restarts != Some(u64::from(c.restart_count)) {
                let meta = |k: &str| {
                    pod.pointer(&format!("/metadata/{k}"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                };
                out.push((
                    "Warning",
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {} in pod {}_{}({})",
                        c.name,
                        meta("name"),
                        meta("namespace"),
                        meta("uid")
                    ),
                ));
            }
        }
        _ => {}
    }
}

/// The events the change from `pod`'s stored status to `rt` means.
pub fn transitions(pod: &Value, rt: &PodRuntimeStatus) -> Vec<ContainerEvent> {
    let mut out = Vec::new();
    for c in &rt.init_containers {
        of_container(pod, "initContainerStatuses", c, &mut out);
    }
    for c in &rt.containers {
        of_container(pod, "containerStatuses", c, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(state: ContainerState, id: &str, restarts: u32) -> PodRuntimeStatus {
        PodRuntimeStatus {
            init_containers: vec![],
            containers: vec![ContainerStatus {
                name: "c".into(),
                image: "busybox".into(),
                image_id: String::new(),
                container_id: id.into(),
                state,
                last_state: None,
                restart_count: restarts,
            }],
            ips: vec![],
            recheck_after: None,
        }
    }

    #[test]
    fn a_new_run_is_started_once_and_a_back_off_reported_once_per_restart() {
        let running = status(
            ContainerState::Running {
                started_at: chrono::Utc::now(),
            },
            "process://1",
            0,
        );
        let fresh = json!({"metadata": {"name": "p", "namespace": "d", "uid": "u"}});
        let reasons: Vec<&str> = transitions(&fresh, &running).iter().map(|e| e.1).collect();
        assert_eq!(reasons, ["Pulled", "Created", "Started"]);
        let stored = json!({"status": {"containerStatuses": [
            {"name": "c", "containerID": "process://1", "restartCount": 0}]}});
        assert!(transitions(&stored, &running).is_empty());
        let backoff = status(
            ContainerState::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: None,
            },
            "process://1",
            1,
        );
        let e = transitions(&fresh, &backoff);
        assert_eq!(
            e[0].2,
            "Back-off restarting failed container c in pod p_d(u)"
        );
        let waiting = json!({"status": {"containerStatuses": [
            {"name": "c", "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert!(transitions(&waiting, &backoff).is_empty());
    }
}
