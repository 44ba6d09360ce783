//! The kubelet's container lifecycle events (`Pulled`, `Created`, `Started`, `BackOff`),
//! derived by comparing the container statuses last written to the pod with what the
//! runtime reports now: more runs than the stored status shows (restart count, and whether
//! it ran) means one was started; a container newly waiting in `CrashLoopBackOff` (or
//! again, after one more restart) is backing off. Several runs between two looks of the
//! agent are reported as one.

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

/// How many runs a stored container status shows started: `restartCount + 1` once it
/// ran (running, terminated, or waiting after a run), else 0.
fn stored_runs(before: Option<&Value>) -> u64 {
    let Some(b) = before else { return 0 };
    let count = b.get("restartCount").and_then(Value::as_u64).unwrap_or(0);
    let ran = b.pointer("/state/running").is_some()
        || b.pointer("/state/terminated").is_some()
        || b.pointer("/state/waiting/reason").and_then(Value::as_str) == Some("CrashLoopBackOff")
        || b.pointer("/lastState/terminated").is_some();
    if ran { count + 1 } else { 0 }
}

/// The same for what the runtime reports now.
fn reported_runs(c: &ContainerStatus) -> u64 {
    let ran = match &c.state {
        ContainerState::Running { .. } | ContainerState::Terminated { .. } => true,
        ContainerState::Waiting { reason, .. } => {
            reason == "CrashLoopBackOff" || c.last_state.is_some()
        }
    };
    if ran {
        u64::from(c.restart_count) + 1
    } else {
        0
    }
}

fn of_container(pod: &Value, list: &str, c: &ContainerStatus, out: &mut Vec<ContainerEvent>) {
    let before = previous(pod, list, &c.name);
    // A run started since the last look (also one that already ended again).
    if reported_runs(c) > stored_runs(before) {
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
    match &c.state {
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
        // Image trouble (the docker runtime): the kubelet's Failed and BackOff events, once
        // per change of the waiting reason.
        ContainerState::Waiting { reason, message }
            if matches!(
                reason.as_str(),
                "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull"
            ) =>
        {
            let was = before
                .and_then(|b| b.pointer("/state/waiting/reason"))
                .and_then(Value::as_str);
            if was == Some(reason.as_str()) {
                return;
            }
            let detail = message.clone().unwrap_or_default();
            match reason.as_str() {
                "ErrImagePull" => out.push((
                    "Warning",
                    "Failed",
                    format!("Failed to pull image \"{}\": {detail}", c.image),
                )),
                "ImagePullBackOff" => out.push((
                    "Normal",
                    "BackOff",
                    format!("Back-off pulling image \"{}\"", c.image),
                )),
                _ => out.push(("Warning", "ErrImageNeverPull", detail)),
            }
            out.push(("Warning", "Failed", format!("Error: {reason}")));
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
        let stored = json!({"metadata": {"name": "p", "namespace": "d", "uid": "u"},
            "status": {"containerStatuses": [
            {"name": "c", "containerID": "process://1", "restartCount": 0, "state": {"running": {}}}]}});
        assert!(transitions(&stored, &running).is_empty());
        let backoff = status(
            ContainerState::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: None,
            },
            "process://1",
            1,
        );
        // Runs that started and ended between two looks still count as started.
        let e = transitions(&stored, &backoff);
        let reasons: Vec<&str> = e.iter().map(|e| e.1).collect();
        assert_eq!(reasons, ["Pulled", "Created", "Started", "BackOff"]);
        assert_eq!(
            e[3].2,
            "Back-off restarting failed container c in pod p_d(u)"
        );
        let waiting = json!({"status": {"containerStatuses": [
            {"name": "c", "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert!(transitions(&waiting, &backoff).is_empty());
    }

    #[test]
    fn image_pull_failures_are_reported_once_per_reason() {
        let fresh = json!({"metadata": {"name": "p", "namespace": "d", "uid": "u"}});
        let failed = status(
            ContainerState::Waiting {
                reason: "ErrImagePull".into(),
                message: Some("pull access denied".into()),
            },
            "",
            0,
        );
        let e = transitions(&fresh, &failed);
        assert_eq!(
            e,
            [
                (
                    "Warning",
                    "Failed",
                    "Failed to pull image \"busybox\": pull access denied".to_string()
                ),
                ("Warning", "Failed", "Error: ErrImagePull".to_string()),
            ]
        );
        let stored = json!({"status": {"containerStatuses": [
            {"name": "c", "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull"}}}]}});
        assert!(transitions(&stored, &failed).is_empty());
        let backoff = status(
            ContainerState::Waiting {
                reason: "ImagePullBackOff".into(),
                message: None,
            },
            "",
            0,
        );
        let reasons: Vec<&str> = transitions(&stored, &backoff).iter().map(|e| e.1).collect();
        assert_eq!(reasons, ["BackOff", "Failed"]);
    }
}
