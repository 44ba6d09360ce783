//! The pod stream subresources: `pods/log`, `pods/exec`, `pods/attach` and
//! `pods/portforward`. Upstream the API server proxies these to the kubelet of the pod's
//! node; here every node is both, so a node serves the pods it runs from its own runtime
//! and proxies the others to the node they are bound to (`proxy`, ADR 0011).
//!
//! Transports: logs are a chunked `text/plain` body; exec and attach speak the channel
//! protocol over WebSocket (`websocket`) or SPDY/3.1 (`spdy_streams`); port-forward speaks
//! SPDY, directly or tunnelled in a WebSocket (kubectl 1.31+), or the WebSocket channel
//! protocol `portforward.k8s.io`.

pub mod logs;
pub mod proxy;
pub mod session;
pub mod spdy_streams;
pub mod websocket;

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::request::Parts;
use serde_json::Value;

use beemesh_translator::ApiError;
use beemesh_workloads::runtime::{Runtime, RuntimeError};

use crate::auth::UserInfo;
use crate::request::{Query, ResourceTarget};
use crate::state::AppState;

/// The subresources served here.
pub const STREAM_SUBRESOURCES: &[&str] = &["log", "exec", "attach", "portforward"];

/// Whether a request addresses a pod stream subresource.
pub fn is_pod_stream(target: &ResourceTarget) -> bool {
    target.resource.group.is_empty()
        && target.resource.plural == "pods"
        && target.name.is_some()
        && target
            .subresource
            .as_deref()
            .is_some_and(|s| STREAM_SUBRESOURCES.contains(&s))
}

/// The RBAC verb a stream request is checked with: `get` on `pods/log`, `create` on the
/// others whatever the method (kubectl's WebSocket GET for exec is a create upstream).
pub fn authorization_verb(subresource: &str) -> &'static str {
    if subresource == "log" {
        "get"
    } else {
        "create"
    }
}

/// The pod a stream request addresses, as the runtime knows it.
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub pod: Value,
}

/// Serves a pod stream request, here or on the pod's node.
pub async fn handle(
    state: &AppState,
    user: &UserInfo,
    parts: Parts,
    body: Body,
    target: ResourceTarget,
    query: Query,
) -> Result<Response, ApiError> {
    let sub = target.subresource.clone().unwrap_or_default();
    let allowed_methods: &[http::Method] = if sub == "log" {
        &[http::Method::GET]
    } else {
        &[http::Method::GET, http::Method::POST]
    };
    if !allowed_methods.contains(&parts.method) {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} pods/{sub})",
            parts.method
        )));
    }
    let proxied = proxy::is_proxied(user, &parts.headers);
    let user = proxy::carried_user(user, &parts.headers);
    let verb = authorization_verb(&sub);
    tracing::debug!(user = %user.username, verb, subresource = %sub, "pod stream");
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = target.name.clone().unwrap_or_default();
    let pod = state
        .service
        .store
        .get(&target.resource, Some(&namespace), &name)?;
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let pod = PodRef {
        namespace,
        name,
        uid,
        pod,
    };
    let container = if sub == "portforward" {
        String::new()
    } else {
        choose_container(&pod, query.get("container"))?
    };
    let node_name = pod
        .pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if node_name.is_empty() {
        return Err(if sub == "portforward" {
            ApiError::bad_request(format!("pod {} does not have a host assigned", pod.name))
        } else {
            waiting_to_start(&pod, &container, "ContainerCreating")
        });
    }
    let streams = state.node_streams();
    let here = streams.as_ref().is_some_and(|s| s.node_name == node_name);
    if !here {
        // A request already proxied once is never proxied again (no loops when two nodes
        // disagree about a binding for a moment).
        if proxied {
            return Err(ApiError::bad_request(format!(
                "pod {} is not running on this node ({node_name} runs it)",
                pod.name
            )));
        }
        let client = streams
            .as_ref()
            .and_then(|s| s.peer_client.clone())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "pod {} runs on node {node_name}, and this node cannot reach other nodes",
                    pod.name
                ))
            })?;
        return proxy::forward(state, &client, &node_name, &user, parts, body).await;
    }
    if sub != "portforward" {
        check_container_started(&pod, &container)?;
    }
    let runtime: Arc<dyn Runtime> = streams
        .as_ref()
        .and_then(|s| s.runtime.clone())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "pod {} is bound to node {node_name}, which runs no containers (no --runtime)",
                pod.name
            ))
        })?;
    match sub.as_str() {
        "log" => logs::serve(runtime, &pod, &container, &query).await,
        "exec" | "attach" => {
            let request = session::stream_request(&sub, &query)?;
            let target = session::ExecTarget {
                runtime,
                uid: pod.uid.clone(),
                container,
                request,
                attach: sub == "attach",
            };
            if websocket::is_websocket(&parts.headers) {
                websocket::exec(parts, target).await
            } else {
                spdy_streams::exec(parts, target).await
            }
        }
        _ => {
            if websocket::is_websocket(&parts.headers) {
                websocket::port_forward(parts, runtime, pod.uid.clone(), &query).await
            } else {
                spdy_streams::port_forward(parts, runtime, pod.uid.clone()).await
            }
        }
    }
}

fn container_names(pod: &Value, list: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The container a request means: the one named, else the default-container annotation,
/// else the only one (upstream's messages when none of these decides).
pub fn choose_container(pod: &PodRef, asked: Option<&str>) -> Result<String, ApiError> {
    let containers = container_names(&pod.pod, "containers");
    let init = container_names(&pod.pod, "initContainers");
    let ephemeral = container_names(&pod.pod, "ephemeralContainers");
    let name = match asked.filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None => {
            let annotated = pod
                .pod
                .pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container")
                .and_then(Value::as_str)
                .filter(|c| containers.iter().any(|x| x == c));
            match (annotated, containers.as_slice()) {
                (Some(c), _) => c.to_string(),
                (None, [only]) => only.clone(),
                _ => {
                    let mut msg = format!(
                        "a container name must be specified for pod {}, choose one of: [{}]",
                        pod.name,
                        containers.join(" ")
                    );
                    if !init.is_empty() {
                        msg.push_str(&format!(
                            " or one of the init containers: [{}]",
                            init.join(" ")
                        ));
                    }
                    if !ephemeral.is_empty() {
                        msg.push_str(&format!(
                            " or one of the ephemeral containers: [{}]",
                            ephemeral.join(" ")
                        ));
                    }
                    return Err(ApiError::bad_request(msg));
                }
            }
        }
    };
    if containers.contains(&name) || init.contains(&name) || ephemeral.contains(&name) {
        Ok(name)
    } else {
        Err(ApiError::bad_request(format!(
            "container {name} is not valid for pod {}",
            pod.name
        )))
    }
}

fn waiting_to_start(pod: &PodRef, container: &str, reason: &str) -> ApiError {
    ApiError::bad_request(format!(
        "container {container:?} in pod {:?} is waiting to start: {reason}",
        pod.name
    ))
}

/// Upstream's kubelet check: a container that never started has no logs and takes no exec.
fn check_container_started(pod: &PodRef, container: &str) -> Result<(), ApiError> {
    let status = ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|list| pod.pod.pointer(&format!("/status/{list}")))
        .filter_map(Value::as_array)
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(container));
    let Some(status) = status else {
        return Err(waiting_to_start(pod, container, "ContainerCreating"));
    };
    let waiting = status.pointer("/state/waiting");
    let ran_before = status.pointer("/lastState/terminated").is_some();
    if let Some(waiting) = waiting
        && !ran_before
    {
        let reason = waiting
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("ContainerCreating");
        return Err(waiting_to_start(pod, container, reason));
    }
    Ok(())
}

/// A runtime's refusal as the client sees it.
pub fn runtime_error(e: RuntimeError) -> ApiError {
    match e {
        RuntimeError::NotFound(message) => ApiError::NotFound {
            message,
            subject: Default::default(),
        },
        RuntimeError::Unsupported(_) | RuntimeError::BadRequest(_) => {
            ApiError::bad_request(e.to_string())
        }
        other => ApiError::internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(v: Value) -> PodRef {
        PodRef {
            namespace: "default".into(),
            name: "p".into(),
            uid: "u".into(),
            pod: v,
        }
    }

    #[test]
    fn the_container_is_the_named_one_the_annotated_one_or_the_only_one() {
        let one = pod(json!({"spec": {"containers": [{"name": "a"}]}}));
        assert_eq!(choose_container(&one, None).unwrap(), "a");
        let err = choose_container(&one, Some("c")).unwrap_err();
        assert_eq!(err.code(), 400);
        assert!(
            err.to_string()
                .contains("container c is not valid for pod p"),
            "{err}"
        );

        let two = pod(json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}));
        let err = choose_container(&two, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("a container name must be specified for pod p, choose one of: [a b]"),
            "{err}"
        );
        assert_eq!(choose_container(&two, Some("b")).unwrap(), "b");

        let annotated = pod(json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/default-container": "b"}},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        }));
        assert_eq!(choose_container(&annotated, None).unwrap(), "b");
    }

    #[test]
    fn a_container_not_started_yet_is_waiting_to_start() {
        let p = pod(json!({
            "spec": {"containers": [{"name": "a"}]},
            "status": {"containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "ErrImagePull"}}}]},
        }));
        let err = check_container_started(&p, "a").unwrap_err();
        assert!(
            err.to_string()
                .contains(r#"container "a" in pod "p" is waiting to start: ErrImagePull"#),
            "{err}"
        );
        let none = pod(json!({"spec": {"containers": [{"name": "a"}]}}));
        assert!(
            check_container_started(&none, "a")
                .unwrap_err()
                .to_string()
                .contains("ContainerCreating")
        );
    }
}
