//! `POST pods/<name>/binding`: sets `spec.nodeName` once, as upstream's BindingREST. The
//! write is a compare-and-set on the stored pod's version, retried on a lost race after
//! re-reading, so of two concurrent bindings exactly one wins; the other sees the pod bound
//! and gets 409, as upstream's `assignPod`.

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Cause;
use crate::service::ObjectService;
use crate::store::Preconditions;
use crate::{ApiError, ResourceInfo};

/// Checks a Binding body (as upstream's `ValidatePodBinding`) and that its name is the
/// pod's; returns the target node's name.
pub fn target_node(binding: &Value, pod_name: &str) -> Result<String, ApiError> {
    let name = binding
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name != pod_name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Binding object",
        ));
    }
    let kind = binding
        .pointer("/target/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut causes = Vec::new();
    if !kind.is_empty() && kind != "Node" {
        causes.push(Cause::new(
            "FieldValueNotSupported",
            "target.kind",
            format!("Unsupported value: \"{kind}\": supported values: \"Node\", \"<empty>\""),
        ));
    }
    if node.is_empty() {
        causes.push(Cause::required("target.name"));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid("", "Binding", name, causes));
    }
    Ok(node.to_string())
}

/// Binds the pod to `node`: sets `spec.nodeName`, the binding's annotations, and the
/// `PodScheduled=True` condition in one compare-and-set on the stored pod (as upstream's
/// `assignPod`, straight to storage: a binding is not a pod update). `uid` and
/// `resource_version` are the binding's preconditions.
#[allow(clippy::too_many_arguments)]
pub async fn bind(
    service: &ObjectService,
    pods: &ResourceInfo,
    namespace: &str,
    name: &str,
    node: &str,
    annotations: Option<&serde_json::Map<String, Value>>,
    uid: Option<&str>,
    resource_version: Option<&str>,
) -> Result<Value, ApiError> {
    let conflict = |why: String| ApiError::conflict("", "pods/binding", name, &why);
    let pre = Preconditions {
        uid: uid.filter(|u| !u.is_empty()).map(str::to_string),
        resource_version: resource_version
            .filter(|r| !r.is_empty())
            .map(str::to_string),
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        // Set when the pod itself refuses the binding, so that conflict is final.
        let refused = AtomicBool::new(false);
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let result = service
            .store
            .update(pods, Some(namespace), name, &pre, |cur| {
                if cur.pointer("/metadata/deletionTimestamp").is_some() {
                    refused.store(true, Ordering::Relaxed);
                    return Err(conflict(format!(
                        "pod {name} is being deleted, cannot be assigned to a host"
                    )));
                }
                let bound = cur
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !bound.is_empty() {
                    refused.store(true, Ordering::Relaxed);
                    return Err(conflict(format!(
                        "pod {name} is already assigned to node \"{bound}\""
                    )));
                }
                let mut new = cur;
                new["spec"]["nodeName"] = json!(node);
                if let Some(extra) = annotations.filter(|a| !a.is_empty()) {
                    if !new["metadata"]["annotations"].is_object() {
                        new["metadata"]["annotations"] = json!({});
                    }
                    for (k, v) in extra {
                        new["metadata"]["annotations"][k] = v.clone();
                    }
                }
                set_condition(
                    &mut new,
                    json!({"type": "PodScheduled", "status": "True",
                           "lastProbeTime": null, "lastTransitionTime": now}),
                );
                Ok(Some(new))
            })
            .await;
        match result {
            // Someone else wrote the pod between our read and write: read it again.
            Err(e)
                if e.code() == 409
                    && !refused.load(Ordering::Relaxed)
                    && pre.resource_version.is_none()
                    && attempts < 20 =>
            {
                continue;
            }
            other => return other,
        }
    }
}

/// Puts `condition` in `status.conditions`, replacing the one of its type; a transition
/// time is kept when the status did not change.
pub fn set_condition(pod: &mut Value, condition: Value) {
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    if !pod["status"]["conditions"].is_array() {
        pod["status"]["conditions"] = json!([]);
    }
    let kind = condition["type"].clone();
    if let Some(list) = pod["status"]["conditions"].as_array_mut() {
        match list.iter_mut().find(|c| c["type"] == kind) {
            Some(c) => {
                let mut condition = condition;
                if c["status"] == condition["status"] && c.get("lastTransitionTime").is_some() {
                    condition["lastTransitionTime"] = c["lastTransitionTime"].clone();
                }
                *c = condition;
            }
            None => list.push(condition),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_names_its_pod_and_a_node() {
        let ok = json!({"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
        assert_eq!(target_node(&ok, "p").unwrap(), "n1");
        let other = json!({"metadata": {"name": "q"}, "target": {"name": "n1"}});
        assert_eq!(target_node(&other, "p").unwrap_err().code(), 400);
        let no_node = json!({"metadata": {"name": "p"}, "target": {"kind": "Service"}});
        let err = target_node(&no_node, "p").unwrap_err();
        assert_eq!(err.code(), 422);
        let status = err.status();
        assert_eq!(status["details"]["causes"][0]["field"], "target.kind");
        assert_eq!(status["details"]["causes"][1]["field"], "target.name");
    }

    #[test]
    fn a_condition_keeps_its_transition_time_while_its_status_holds() {
        let mut pod = json!({"status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "lastTransitionTime": "t0"}]}});
        set_condition(
            &mut pod,
            json!({"type": "PodScheduled", "status": "False", "lastTransitionTime": "t1", "message": "m"}),
        );
        assert_eq!(pod["status"]["conditions"][0]["lastTransitionTime"], "t0");
        set_condition(
            &mut pod,
            json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": "t2"}),
        );
        assert_eq!(pod["status"]["conditions"][0]["lastTransitionTime"], "t2");
        assert_eq!(pod["status"]["conditions"].as_array().unwrap().len(), 1);
    }
}
