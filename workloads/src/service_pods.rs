//! What the EndpointSlice and Endpoints controllers both need to know about a Service and
//! the pods it selects: which pods count, whether they are ready, and which port each
//! Service port reaches on each pod (upstream's `endpointutil` and `podutil.FindPort`).

use std::collections::{BTreeMap, HashMap};

use beemesh_translator::ApiError;
use beemesh_translator::ResourceInfo;
use beemesh_translator::selector::LabelSelector;
use beemesh_translator::service::ObjectService;
use beemesh_translator::store::{ListRequest, ReadAt, parse_stored};
use serde_json::{Map, Value};

/// The node label upstream copies into an endpoint's `zone`.
pub(crate) const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

pub(crate) fn meta<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// Every object of `res` on this node's replica.
pub(crate) fn list_all(
    service: &ObjectService,
    res: &ResourceInfo,
) -> Result<Vec<Value>, ApiError> {
    list_in(service, res, None)
}

/// The objects of `res` in `namespace` (all namespaces with `None`) on this replica.
pub(crate) fn list_in(
    service: &ObjectService,
    res: &ResourceInfo,
    namespace: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    let page = service.store.list(
        res,
        &ListRequest {
            namespace,
            read_at: ReadAt::Latest,
            limit: None,
            continue_token: None,
            filter: None,
        },
    )?;
    page.items.iter().map(|i| parse_stored(i)).collect()
}

/// The Services with a selector this node is home of (and that are not being deleted):
/// the only ones the endpoint controllers act on.
pub(crate) fn home_services_with_selector(
    service: &ObjectService,
    services_res: &ResourceInfo,
    services: &[Value],
) -> Vec<Value> {
    services
        .iter()
        .filter(|svc| {
            let (Some(ns), Some(name)) = (meta(svc, "namespace"), meta(svc, "name")) else {
                return false;
            };
            service_selector(svc).is_some()
                && svc.pointer("/metadata/deletionTimestamp").is_none()
                && service.store.is_home(services_res, Some(ns), name)
        })
        .cloned()
        .collect()
}

/// The pods of the namespaces `services` live in, by namespace (a Service only ever
/// selects pods of its own namespace). Only those namespaces are read, so a cluster
/// whose pods no Service selects costs no pod listing.
pub(crate) fn pods_for(
    service: &ObjectService,
    pods_res: &ResourceInfo,
    services: &[Value],
) -> Result<HashMap<String, Vec<Value>>, ApiError> {
    let mut by_ns: HashMap<String, Vec<Value>> = HashMap::new();
    for svc in services {
        if let Some(ns) = meta(svc, "namespace")
            && !by_ns.contains_key(ns)
        {
            by_ns.insert(ns.to_string(), list_in(service, pods_res, Some(ns))?);
        }
    }
    Ok(by_ns)
}

/// Node name → zone label, for the endpoints' `zone`.
pub(crate) fn node_zones(nodes: &[Value]) -> HashMap<String, String> {
    nodes
        .iter()
        .filter_map(|n| {
            let zone = n.pointer("/metadata/labels")?.get(ZONE_LABEL)?.as_str()?;
            Some((meta(n, "name")?.to_string(), zone.to_string()))
        })
        .collect()
}

/// The selector the controllers act on: a Service without one (or an ExternalName
/// Service) has its endpoints managed by someone else and is left alone.
pub(crate) fn service_selector(svc: &Value) -> Option<&Map<String, Value>> {
    if svc.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        return None;
    }
    svc.pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
}

/// The pods of `pods` (the Service's namespace) that the Service selects, sorted by name
/// so that the objects written from them are stable.
pub(crate) fn selected_pods<'a>(
    selector: &Map<String, Value>,
    pods: &'a [Value],
) -> Vec<&'a Value> {
    let sel = LabelSelector::from_set(selector);
    let mut out: Vec<&Value> = pods
        .iter()
        .filter(|p| sel.matches(p.pointer("/metadata/labels").unwrap_or(&Value::Null)))
        .collect();
    out.sort_by(|a, b| meta(a, "name").cmp(&meta(b, "name")));
    out
}

pub(crate) fn pod_ip(pod: &Value) -> Option<&str> {
    pod.pointer("/status/podIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
}

pub(crate) fn is_terminating(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// Upstream's ShouldPodBeInEndpoints: an address, not terminal, and — unless
/// `include_terminating` — not being deleted.
pub(crate) fn should_be_in_endpoints(pod: &Value, include_terminating: bool) -> bool {
    if pod_ip(pod).is_none() {
        return false;
    }
    if !include_terminating && is_terminating(pod) {
        return false;
    }
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    !matches!(phase, Some("Failed") | Some("Succeeded"))
}

/// The pod's Ready condition is True.
pub(crate) fn is_pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

pub(crate) fn publish_not_ready(svc: &Value) -> bool {
    svc.pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Upstream's FindPort: the port number a Service port's `targetPort` means on `pod` —
/// the number itself, or the container port of that name and protocol. None when a
/// named port is not declared by any container (the pod then has no such port).
pub(crate) fn resolve_target_port(pod: &Value, svc_port: &Value) -> Option<i64> {
    let protocol = svc_port
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("TCP");
    match svc_port.get("targetPort") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => {
            if let Ok(n) = s.parse::<i64>() {
                return Some(n);
            }
            let containers = pod.pointer("/spec/containers").and_then(Value::as_array)?;
            containers
                .iter()
                .filter_map(|c| c.get("ports").and_then(Value::as_array))
                .flatten()
                .find(|p| {
                    p.get("name").and_then(Value::as_str) == Some(s.as_str())
                        && p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == protocol
                })
                .and_then(|p| p.get("containerPort").and_then(Value::as_i64))
        }
        _ => svc_port.get("port").and_then(Value::as_i64),
    }
}

/// One resolved Service port: what both Endpoints and EndpointSlices list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ResolvedPort {
    pub name: String,
    pub port: i64,
    pub protocol: String,
    pub app_protocol: Option<String>,
}

/// The Service's ports as they land on `pod` (ports a pod cannot resolve are skipped, as
/// upstream does).
pub(crate) fn resolved_ports(svc: &Value, pod: &Value) -> Vec<ResolvedPort> {
    let Some(ports) = svc.pointer("/spec/ports").and_then(Value::as_array) else {
        return Vec::new();
    };
    ports
        .iter()
        .filter_map(|p| {
            Some(ResolvedPort {
                name: p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                port: resolve_target_port(pod, p)?,
                protocol: p
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP")
                    .to_string(),
                app_protocol: p
                    .get("appProtocol")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        })
        .collect()
}

/// The Service's labels the managed objects copy (upstream copies all of them, then sets
/// its own on top), plus the headless marker when the Service has no cluster IP.
pub(crate) fn inherited_labels(svc: &Value) -> BTreeMap<String, Value> {
    let mut labels: BTreeMap<String, Value> = svc
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    if svc.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None") {
        labels.insert(
            "service.kubernetes.io/headless".into(),
            Value::String(String::new()),
        );
    } else {
        labels.remove("service.kubernetes.io/headless");
    }
    labels
}

/// Upstream's trigger-time annotation value: now, RFC 3339 with nanoseconds.
pub(crate) fn trigger_time() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn target_ports_resolve_by_number_name_and_default() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "ports": [{"name": "http", "containerPort": 8080},
                                     {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}]}});
        assert_eq!(
            resolve_target_port(&pod, &json!({"port": 80, "targetPort": 9376})),
            Some(9376)
        );
        assert_eq!(
            resolve_target_port(&pod, &json!({"port": 80, "targetPort": "http"})),
            Some(8080)
        );
        assert_eq!(resolve_target_port(&pod, &json!({"port": 80})), Some(80));
        assert_eq!(
            resolve_target_port(
                &pod,
                &json!({"port": 53, "targetPort": "dns", "protocol": "UDP"})
            ),
            Some(53)
        );
        assert_eq!(
            resolve_target_port(&pod, &json!({"port": 53, "targetPort": "dns"})),
            None
        );
        assert_eq!(
            resolve_target_port(&pod, &json!({"port": 1, "targetPort": "nope"})),
            None
        );
    }

    #[test]
    fn terminal_addressless_and_terminating_pods_are_left_out() {
        let running = json!({"status": {"phase": "Running", "podIP": "10.0.0.1"}});
        assert!(should_be_in_endpoints(&running, false));
        let no_ip = json!({"status": {"phase": "Pending"}});
        assert!(!should_be_in_endpoints(&no_ip, true));
        let done = json!({"status": {"phase": "Succeeded", "podIP": "10.0.0.1"}});
        assert!(!should_be_in_endpoints(&done, true));
        let going = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"},
                           "status": {"phase": "Running", "podIP": "10.0.0.1"}});
        assert!(!should_be_in_endpoints(&going, false));
        assert!(should_be_in_endpoints(&going, true));
    }
}
