//! Row cells of each built-in printer: a port of kube-apiserver 1.33's
//! `pkg/printers/internalversion` print functions, working on the stored v1 JSON.
//!
//! The apiserver always prints wide (`GenerateOptions{Wide: true}`), so every row carries the
//! priority-1 cells too; kubectl hides them unless `-o wide`. Upstream prints the internal,
//! defaulted object: where a v1 field may be absent but is always defaulted upstream, the
//! default is applied here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use beemesh_translator::selector::{LabelSelector, format_label_selector, format_labels};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Printer, human_duration};

// --- access helpers ----------------------------------------------------------------------------

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for p in path {
        cur = match cur.get(p) {
            Some(next) => next,
            None => return &Value::Null,
        };
    }
    cur
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).as_str().unwrap_or("")
}

fn int(v: &Value, path: &[&str]) -> i64 {
    at(v, path).as_i64().unwrap_or(0)
}

fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    at(v, path).as_i64()
}

fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path).as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn map_len(v: &Value, path: &[&str]) -> i64 {
    at(v, path).as_object().map_or(0, |m| m.len() as i64)
}

fn is_set(v: &Value, path: &[&str]) -> bool {
    !at(v, path).is_null()
}

/// A quantity's text (`Quantity.String()`); quantities are stored as strings.
fn quantity(v: &Value) -> Option<String> {
    match v {
        Value::String(q) => Some(q.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A Kubernetes timestamp; None for absent, unparseable or the zero time.
fn time(v: &Value) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()?
        .with_timezone(&Utc);
    (t.timestamp() != ZERO_TIME_SECONDS).then_some(t)
}

/// 0001-01-01T00:00:00Z, Go's zero `time.Time`.
const ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// `translateTimestampSince`.
fn since(v: &Value, now: DateTime<Utc>) -> String {
    match time(v) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

fn age(obj: &Value, now: DateTime<Utc>) -> Value {
    json!(since(at(obj, &["metadata", "creationTimestamp"]), now))
}

fn name(obj: &Value) -> Value {
    json!(s(obj, &["metadata", "name"]))
}

fn or_none(text: &str) -> String {
    if text.is_empty() {
        "<none>".to_string()
    } else {
        text.to_string()
    }
}

/// `layoutContainerCells`: comma-joined container names and images.
fn containers_and_images(containers: &[Value]) -> (Value, Value) {
    let names: Vec<&str> = containers.iter().map(|c| s(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, &["image"])).collect();
    (json!(names.join(",")), json!(images.join(",")))
}

/// `listWithMoreString`.
fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let joined = list.join(",");
    if more {
        return format!("{joined} + {} more...", count - max);
    }
    if joined.is_empty() {
        "<unset>".to_string()
    } else {
        joined
    }
}

fn go_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

fn is_deleting(obj: &Value) -> bool {
    is_set(obj, &["metadata", "deletionTimestamp"])
}

// --- dispatch -----------------------------------------------------------------------------------

/// The cells of one object's row.
pub(super) fn cells(printer: Printer, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    match printer {
        Printer::Default => default_cells(obj),
        Printer::Pod => pod_cells(obj, now),
        Printer::PodTemplate => {
            let (names, images) =
                containers_and_images(arr(obj, &["template", "spec", "containers"]));
            vec![
                name(obj),
                names,
                images,
                json!(format_labels(at(obj, &["template", "metadata", "labels"]))),
            ]
        }
        Printer::PodDisruptionBudget => {
            let int_or_string = |v: &Value| match v {
                Value::Null => "N/A".to_string(),
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            vec![
                name(obj),
                json!(int_or_string(at(obj, &["spec", "minAvailable"]))),
                json!(int_or_string(at(obj, &["spec", "maxUnavailable"]))),
                json!(int(obj, &["status", "disruptionsAllowed"])),
                age(obj, now),
            ]
        }
        Printer::ReplicationController => {
            let (names, images) =
                containers_and_images(arr(obj, &["spec", "template", "spec", "containers"]));
            vec![
                name(obj),
                json!(opt_int(obj, &["spec", "replicas"]).unwrap_or(1)),
                json!(int(obj, &["status", "replicas"])),
                json!(int(obj, &["status", "readyReplicas"])),
                age(obj, now),
                names,
                images,
                json!(format_labels(at(obj, &["spec", "selector"]))),
            ]
        }
        Printer::ReplicaSet => {
            let (names, images) =
                containers_and_images(arr(obj, &["spec", "template", "spec", "containers"]));
            vec![
                name(obj),
                json!(opt_int(obj, &["spec", "replicas"]).unwrap_or(1)),
                json!(int(obj, &["status", "replicas"])),
                json!(int(obj, &["status", "readyReplicas"])),
                age(obj, now),
                names,
                images,
                json!(format_label_selector(at(obj, &["spec", "selector"]))),
            ]
        }
        Printer::DaemonSet => {
            let (names, images) =
                containers_and_images(arr(obj, &["spec", "template", "spec", "containers"]));
            vec![
                name(obj),
                json!(int(obj, &["status", "desiredNumberScheduled"])),
                json!(int(obj, &["status", "currentNumberScheduled"])),
                json!(int(obj, &["status", "numberReady"])),
                json!(int(obj, &["status", "updatedNumberScheduled"])),
                json!(int(obj, &["status", "numberAvailable"])),
                json!(format_labels(at(
                    obj,
                    &["spec", "template", "spec", "nodeSelector"]
                ))),
                age(obj, now),
                names,
                images,
                json!(format_label_selector(at(obj, &["spec", "selector"]))),
            ]
        }
        Printer::Job => job_cells(obj, now),
        Printer::CronJob => {
            let last = if is_set(obj, &["status", "lastScheduleTime"]) {
                since(at(obj, &["status", "lastScheduleTime"]), now)
            } else {
                "<none>".to_string()
            };
            let tz = at(obj, &["spec", "timeZone"])
                .as_str()
                .map_or_else(|| "<none>".to_string(), str::to_string);
            // Defaulted to false upstream, so never <unset> for a stored object.
            let suspend = at(obj, &["spec", "suspend"]).as_bool().unwrap_or(false);
            let template = at(obj, &["spec", "jobTemplate", "spec"]);
            let (names, images) =
                containers_and_images(arr(template, &["template", "spec", "containers"]));
            vec![
                name(obj),
                json!(s(obj, &["spec", "schedule"])),
                json!(tz),
                json!(go_bool(suspend)),
                json!(arr(obj, &["status", "active"]).len()),
                json!(last),
                age(obj, now),
                names,
                images,
                json!(format_label_selector(at(template, &["selector"]))),
            ]
        }
        Printer::Service => service_cells(obj, now),
        Printer::Ingress => {
            let class = at(obj, &["spec", "ingressClassName"])
                .as_str()
                .map_or_else(|| "<none>".to_string(), str::to_string);
            let ports = if arr(obj, &["spec", "tls"]).is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                name(obj),
                json!(class),
                json!(ingress_hosts(arr(obj, &["spec", "rules"]))),
                json!(load_balancer_addresses(
                    arr(obj, &["status", "loadBalancer", "ingress"]),
                    true
                )),
                json!(ports),
                age(obj, now),
            ]
        }
        Printer::IngressClass => {
            let mut n = s(obj, &["metadata", "name"]).to_string();
            if s(
                obj,
                &[
                    "metadata",
                    "annotations",
                    "ingressclass.kubernetes.io/is-default-class",
                ],
            ) == "true"
            {
                n.push_str(" (default)");
            }
            let params = at(obj, &["spec", "parameters"]);
            let parameters = if params.is_object() {
                let mut p = s(params, &["kind"]).to_string();
                if let Some(g) = params.get("apiGroup").and_then(Value::as_str) {
                    p = format!("{p}.{g}");
                }
                format!("{p}/{}", s(params, &["name"]))
            } else {
                "<none>".to_string()
            };
            vec![
                json!(n),
                json!(s(obj, &["spec", "controller"])),
                json!(parameters),
                age(obj, now),
            ]
        }
        Printer::StatefulSet => {
            let (names, images) =
                containers_and_images(arr(obj, &["spec", "template", "spec", "containers"]));
            vec![
                name(obj),
                json!(format!(
                    "{}/{}",
                    int(obj, &["status", "readyReplicas"]),
                    opt_int(obj, &["spec", "replicas"]).unwrap_or(1)
                )),
                age(obj, now),
                names,
                images,
            ]
        }
        Printer::Endpoints => vec![name(obj), json!(format_endpoints(obj)), age(obj, now)],
        Printer::Node => node_cells(obj, now),
        Printer::Event => event_cells(obj, now),
        Printer::Namespace => vec![
            name(obj),
            json!(match s(obj, &["status", "phase"]) {
                "" => "Active",
                phase => phase,
            }),
            age(obj, now),
        ],
        Printer::Secret => vec![
            name(obj),
            json!(match s(obj, &["type"]) {
                "" => "Opaque",
                t => t,
            }),
            json!(map_len(obj, &["data"])),
            age(obj, now),
        ],
        Printer::ServiceAccount => vec![
            name(obj),
            json!(arr(obj, &["secrets"]).len()),
            age(obj, now),
        ],
        Printer::PersistentVolume => pv_cells(obj, now),
        Printer::PersistentVolumeClaim => pvc_cells(obj, now),
        Printer::ComponentStatus => {
            let mut status = "Unknown";
            let mut message = "";
            let mut error = "";
            if let Some(cond) = arr(obj, &["conditions"])
                .iter()
                .find(|c| s(c, &["type"]) == "Healthy")
            {
                status = if s(cond, &["status"]) == "True" {
                    "Healthy"
                } else {
                    "Unhealthy"
                };
                message = s(cond, &["message"]);
                error = s(cond, &["error"]);
            }
            vec![name(obj), json!(status), json!(message), json!(error)]
        }
        Printer::Deployment => {
            let (names, images) =
                containers_and_images(arr(obj, &["spec", "template", "spec", "containers"]));
            let selector =
                match LabelSelector::from_label_selector_object(at(obj, &["spec", "selector"])) {
                    Ok(sel) => sel.to_string(),
                    Err(_) => "<invalid>".to_string(),
                };
            vec![
                name(obj),
                json!(format!(
                    "{}/{}",
                    int(obj, &["status", "readyReplicas"]),
                    opt_int(obj, &["spec", "replicas"]).unwrap_or(1)
                )),
                json!(int(obj, &["status", "updatedReplicas"])),
                json!(int(obj, &["status", "availableReplicas"])),
                age(obj, now),
                names,
                images,
                json!(selector),
            ]
        }
        Printer::HorizontalPodAutoscaler => hpa_cells(obj, now),
        Printer::ConfigMap => vec![
            name(obj),
            json!(map_len(obj, &["data"]) + map_len(obj, &["binaryData"])),
            age(obj, now),
        ],
        Printer::NetworkPolicy => vec![
            name(obj),
            json!(format_label_selector(
                &match at(obj, &["spec", "podSelector"]) {
                    // A non-pointer field upstream: absent means the empty selector.
                    Value::Null => json!({}),
                    v => v.clone(),
                }
            )),
            age(obj, now),
        ],
        Printer::RoleBinding | Printer::ClusterRoleBinding => {
            let (users, groups, sas) = subjects(arr(obj, &["subjects"]));
            vec![
                name(obj),
                json!(format!(
                    "{}/{}",
                    s(obj, &["roleRef", "kind"]),
                    s(obj, &["roleRef", "name"])
                )),
                age(obj, now),
                json!(users.join(", ")),
                json!(groups.join(", ")),
                json!(sas.join(", ")),
            ]
        }
        Printer::CertificateSigningRequest => {
            let duration = opt_int(obj, &["spec", "expirationSeconds"]).map_or_else(
                || "<none>".to_string(),
                |secs| human_duration(chrono::TimeDelta::seconds(secs)),
            );
            vec![
                name(obj),
                age(obj, now),
                json!(or_none(s(obj, &["spec", "signerName"]))),
                json!(s(obj, &["spec", "username"])),
                json!(duration),
                json!(csr_status(obj)),
            ]
        }
        Printer::Lease => vec![
            name(obj),
            json!(s(obj, &["spec", "holderIdentity"])),
            age(obj, now),
        ],
        Printer::StorageClass => {
            let mut n = s(obj, &["metadata", "name"]).to_string();
            let annotations = &["metadata", "annotations"];
            let annotation = |key: &str| s(at(obj, annotations), &[key]) == "true";
            if annotation("storageclass.kubernetes.io/is-default-class")
                || annotation("storageclass.beta.kubernetes.io/is-default-class")
            {
                n.push_str(" (default)");
            }
            vec![
                json!(n),
                json!(s(obj, &["provisioner"])),
                json!(match s(obj, &["reclaimPolicy"]) {
                    "" => "Delete",
                    p => p,
                }),
                json!(match s(obj, &["volumeBindingMode"]) {
                    "" => "Immediate",
                    m => m,
                }),
                json!(
                    at(obj, &["allowVolumeExpansion"])
                        .as_bool()
                        .unwrap_or(false)
                ),
                age(obj, now),
            ]
        }
        Printer::ControllerRevision => {
            let controller = arr(obj, &["metadata", "ownerReferences"])
                .iter()
                .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
                .map_or_else(
                    || "<none>".to_string(),
                    |r| {
                        let api_version = s(r, &["apiVersion"]);
                        let group = api_version.split_once('/').map_or("", |(g, _)| g);
                        let kind = s(r, &["kind"]);
                        let group_kind = if group.is_empty() {
                            kind.to_string()
                        } else {
                            format!("{kind}.{group}")
                        };
                        if group_kind.is_empty() {
                            s(r, &["name"]).to_string()
                        } else {
                            format!("{}/{}", group_kind.to_lowercase(), s(r, &["name"]))
                        }
                    },
                );
            vec![
                name(obj),
                json!(controller),
                json!(int(obj, &["revision"])),
                age(obj, now),
            ]
        }
        Printer::ResourceQuota => resource_quota_cells(obj, now),
        Printer::PriorityClass => vec![
            name(obj),
            json!(int(obj, &["value"])),
            json!(at(obj, &["globalDefault"]).as_bool().unwrap_or(false)),
            age(obj, now),
            json!(match s(obj, &["preemptionPolicy"]) {
                "" => "PreemptLowerPriority",
                p => p,
            }),
        ],
        Printer::RuntimeClass => vec![name(obj), json!(s(obj, &["handler"])), age(obj, now)],
        Printer::VolumeAttachment => vec![
            name(obj),
            json!(s(obj, &["spec", "attacher"])),
            json!(s(obj, &["spec", "source", "persistentVolumeName"])),
            json!(s(obj, &["spec", "nodeName"])),
            json!(at(obj, &["status", "attached"]).as_bool().unwrap_or(false)),
            age(obj, now),
        ],
        Printer::EndpointSlice => vec![
            name(obj),
            json!(s(obj, &["addressType"])),
            json!(endpoint_slice_ports(arr(obj, &["ports"]))),
            json!(endpoint_slice_endpoints(arr(obj, &["endpoints"]))),
            age(obj, now),
        ],
        Printer::CsiNode => vec![
            name(obj),
            json!(arr(obj, &["spec", "drivers"]).len()),
            age(obj, now),
        ],
        Printer::CsiDriver => {
            let spec = at(obj, &["spec"]);
            let flag = |k: &str, default: bool| at(spec, &[k]).as_bool().unwrap_or(default);
            let token_requests = match at(spec, &["tokenRequests"]).as_array() {
                Some(reqs) => reqs
                    .iter()
                    .map(|r| s(r, &["audience"]))
                    .collect::<Vec<_>>()
                    .join(","),
                None => "<unset>".to_string(),
            };
            let modes = match at(spec, &["volumeLifecycleModes"]).as_array() {
                Some(m) if !m.is_empty() => m
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
                Some(_) => "<none>".to_string(),
                // Defaulted to [Persistent] upstream.
                None => "Persistent".to_string(),
            };
            vec![
                name(obj),
                json!(flag("attachRequired", true)),
                json!(flag("podInfoOnMount", false)),
                json!(flag("storageCapacity", false)),
                json!(token_requests),
                json!(flag("requiresRepublish", false)),
                json!(modes),
                age(obj, now),
            ]
        }
        Printer::CsiStorageCapacity => vec![
            name(obj),
            json!(s(obj, &["storageClassName"])),
            json!(quantity(at(obj, &["capacity"])).unwrap_or_else(|| "<unset>".to_string())),
        ],
        Printer::WebhookConfiguration => vec![
            name(obj),
            json!(arr(obj, &["webhooks"]).len()),
            age(obj, now),
        ],
        Printer::ValidatingAdmissionPolicy => {
            let param_kind = at(obj, &["spec", "paramKind"]);
            let param_kind = if param_kind.is_object() {
                format!(
                    "{}/{}",
                    s(param_kind, &["apiVersion"]),
                    s(param_kind, &["kind"])
                )
            } else {
                "<unset>".to_string()
            };
            vec![
                name(obj),
                json!(arr(obj, &["spec", "validations"]).len()),
                json!(param_kind),
                age(obj, now),
            ]
        }
        Printer::ValidatingAdmissionPolicyBinding => {
            let pr = at(obj, &["spec", "paramRef"]);
            let param = if !pr.is_object() {
                "<unset>".to_string()
            } else if !s(pr, &["name"]).is_empty() {
                match s(pr, &["namespace"]) {
                    "" => format!("*/{}", s(pr, &["name"])),
                    ns => format!("{ns}/{}", s(pr, &["name"])),
                }
            } else if pr.get("selector").is_some_and(|v| !v.is_null()) {
                // metav1.LabelSelector's Go String(): not worth mimicking byte for byte.
                at(pr, &["selector"]).to_string()
            } else {
                "<unset>".to_string()
            };
            vec![
                name(obj),
                json!(s(obj, &["spec", "policyName"])),
                json!(param),
                age(obj, now),
            ]
        }
        Printer::FlowSchema => {
            let distinguisher = match s(obj, &["spec", "distinguisherMethod", "type"]) {
                "" => "<none>",
                t => t,
            };
            let missing = arr(obj, &["status", "conditions"])
                .iter()
                .find(|c| s(c, &["type"]) == "Dangling")
                .map_or("?", |c| s(c, &["status"]));
            vec![
                name(obj),
                json!(s(obj, &["spec", "priorityLevelConfiguration", "name"])),
                json!(int(obj, &["spec", "matchingPrecedence"])),
                json!(distinguisher),
                age(obj, now),
                json!(missing),
            ]
        }
        Printer::ServiceCidr => {
            let cidrs: Vec<&str> = arr(obj, &["spec", "cidrs"])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            vec![name(obj), json!(cidrs.join(",")), age(obj, now)]
        }
        Printer::IpAddress => {
            let parent = at(obj, &["spec", "parentRef"]);
            let parent = if parent.is_object() {
                let resource = s(parent, &["resource"]);
                let mut text = match s(parent, &["group"]) {
                    "" => resource.to_lowercase(),
                    g => format!("{resource}.{g}").to_lowercase(),
                };
                if !s(parent, &["namespace"]).is_empty() {
                    text = format!("{text}/{}", s(parent, &["namespace"]));
                }
                format!("{text}/{}", s(parent, &["name"]))
            } else {
                "<none>".to_string()
            };
            vec![name(obj), json!(parent), age(obj, now)]
        }
        Printer::ApiService => {
            let svc = at(obj, &["spec", "service"]);
            let service = if svc.is_object() {
                format!("{}/{}", s(svc, &["namespace"]), s(svc, &["name"]))
            } else {
                "Local".to_string()
            };
            let available = arr(obj, &["status", "conditions"])
                .iter()
                .find(|c| s(c, &["type"]) == "Available")
                .map_or_else(
                    || "Unknown".to_string(),
                    |c| match (s(c, &["status"]), s(c, &["reason"])) {
                        ("True", _) => "True".to_string(),
                        (status, "") => status.to_string(),
                        (status, reason) => format!("{status} ({reason})"),
                    },
                );
            vec![name(obj), json!(service), json!(available), age(obj, now)]
        }
        Printer::PriorityLevelConfiguration => {
            let none = json!("<none>");
            let limited = at(obj, &["spec", "limited"]);
            let (mut ncs, mut queues, mut hand, mut limit) =
                (none.clone(), none.clone(), none.clone(), none);
            if limited.is_object() {
                ncs = json!(int(limited, &["nominalConcurrencyShares"]));
                let q = at(limited, &["limitResponse", "queuing"]);
                if q.is_object() {
                    queues = json!(int(q, &["queues"]));
                    hand = json!(int(q, &["handSize"]));
                    limit = json!(int(q, &["queueLengthLimit"]));
                }
            }
            vec![
                name(obj),
                json!(s(obj, &["spec", "type"])),
                ncs,
                queues,
                hand,
                limit,
                age(obj, now),
            ]
        }
    }
}

/// `rest.defaultTableConvertor`: name and RFC 3339 creation time (UTC).
fn default_cells(obj: &Value) -> Vec<Value> {
    let created = time(at(obj, &["metadata", "creationTimestamp"]))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![name(obj), json!(created)]
}

// --- pods ---------------------------------------------------------------------------------------

fn later(
    current: Option<DateTime<Utc>>,
    candidate: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (current, candidate) {
        (Some(a), Some(b)) if b > a => Some(b),
        (None, b) => b,
        (a, _) => a,
    }
}

fn last_termination(status: &Value) -> Option<Option<DateTime<Utc>>> {
    let t = at(status, &["lastState", "terminated"]);
    t.is_object().then(|| time(at(t, &["finishedAt"])))
}

fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let spec = at(pod, &["spec"]);
    let status = at(pod, &["status"]);
    let init_specs = arr(spec, &["initContainers"]);
    let restartable: HashMap<&str, bool> = init_specs
        .iter()
        .map(|c| (s(c, &["name"]), s(c, &["restartPolicy"]) == "Always"))
        .collect();
    let is_restartable = |name: &str| restartable.get(name).copied().unwrap_or(false);

    let mut restarts: i64 = 0;
    let mut restartable_restarts: i64 = 0;
    let total = arr(spec, &["containers"]).len() + restartable.values().filter(|r| **r).count();
    let mut ready = 0usize;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_restartable_restart: Option<DateTime<Utc>> = None;

    let phase = s(status, &["phase"]);
    let mut reason = phase.to_string();
    if !s(status, &["reason"]).is_empty() {
        reason = s(status, &["reason"]).to_string();
    }
    for c in arr(status, &["conditions"]) {
        if s(c, &["type"]) == "PodScheduled" && s(c, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }

    let mut initializing = false;
    for (i, c) in arr(status, &["initContainerStatuses"]).iter().enumerate() {
        let cname = s(c, &["name"]);
        restarts += int(c, &["restartCount"]);
        if let Some(finished) = last_termination(c) {
            last_restart = later(last_restart, finished);
        }
        if is_restartable(cname) {
            restartable_restarts += int(c, &["restartCount"]);
            if let Some(finished) = last_termination(c) {
                last_restartable_restart = later(last_restartable_restart, finished);
            }
        }
        let terminated = at(c, &["state", "terminated"]);
        let waiting = at(c, &["state", "waiting"]);
        if terminated.is_object() && int(terminated, &["exitCode"]) == 0 {
            continue;
        }
        if is_restartable(cname) && at(c, &["started"]).as_bool() == Some(true) {
            if at(c, &["ready"]).as_bool() == Some(true) {
                ready += 1;
            }
            continue;
        }
        if terminated.is_object() {
            reason = match s(terminated, &["reason"]) {
                "" if int(terminated, &["signal"]) != 0 => {
                    format!("Init:Signal:{}", int(terminated, &["signal"]))
                }
                "" => format!("Init:ExitCode:{}", int(terminated, &["exitCode"])),
                r => format!("Init:{r}"),
            };
        } else if waiting.is_object()
            && !s(waiting, &["reason"]).is_empty()
            && s(waiting, &["reason"]) != "PodInitializing"
        {
            reason = format!("Init:{}", s(waiting, &["reason"]));
        } else {
            reason = format!("Init:{}/{}", i, init_specs.len());
        }
        initializing = true;
        break;
    }

    let initialized = arr(status, &["conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == "Initialized")
        .is_some_and(|c| s(c, &["status"]) == "True");
    if !initializing || initialized {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for c in arr(status, &["containerStatuses"]).iter().rev() {
            restarts += int(c, &["restartCount"]);
            if let Some(finished) = last_termination(c) {
                last_restart = later(last_restart, finished);
            }
            let waiting = at(c, &["state", "waiting"]);
            let terminated = at(c, &["state", "terminated"]);
            if waiting.is_object() && !s(waiting, &["reason"]).is_empty() {
                reason = s(waiting, &["reason"]).to_string();
            } else if terminated.is_object() && !s(terminated, &["reason"]).is_empty() {
                reason = s(terminated, &["reason"]).to_string();
            } else if terminated.is_object() {
                reason = if int(terminated, &["signal"]) != 0 {
                    format!("Signal:{}", int(terminated, &["signal"]))
                } else {
                    format!("ExitCode:{}", int(terminated, &["exitCode"]))
                };
            } else if at(c, &["ready"]).as_bool() == Some(true)
                && at(c, &["state", "running"]).is_object()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = arr(status, &["conditions"])
                .iter()
                .any(|c| s(c, &["type"]) == "Ready" && s(c, &["status"]) == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    if is_deleting(pod) && s(status, &["reason"]) == "NodeLost" {
        reason = "Unknown".to_string();
    } else if is_deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };

    let pod_ip = arr(status, &["podIPs"])
        .first()
        .map(|p| s(p, &["ip"]))
        .unwrap_or_else(|| s(status, &["podIP"]));
    let gates = arr(spec, &["readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_conditions = gates
            .iter()
            .filter(|g| {
                arr(status, &["conditions"])
                    .iter()
                    .find(|c| s(c, &["type"]) == s(g, &["conditionType"]))
                    .is_some_and(|c| s(c, &["status"]) == "True")
            })
            .count();
        format!("{}/{}", true_conditions, gates.len())
    };
    vec![
        name(pod),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_text),
        age(pod, now),
        json!(or_none(pod_ip)),
        json!(or_none(s(spec, &["nodeName"]))),
        json!(or_none(s(status, &["nominatedNodeName"]))),
        json!(readiness_gates),
    ]
}

/// The row conditions upstream attaches to pod rows (`Completed` for terminal pods).
pub(super) fn pod_conditions(pod: &Value) -> Option<Value> {
    match s(pod, &["status", "phase"]) {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."
        }])),
        "Failed" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."
        }])),
        _ => None,
    }
}

// --- jobs ---------------------------------------------------------------------------------------

fn has_condition(obj: &Value, kind: &str) -> bool {
    arr(obj, &["status", "conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == kind)
        .is_some_and(|c| s(c, &["status"]) == "True")
}

fn job_cells(job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = int(job, &["status", "succeeded"]);
    let completions_set = opt_int(job, &["spec", "completions"]);
    let parallelism_set = opt_int(job, &["spec", "parallelism"]);
    // Upstream defaulting: both unset means both 1; parallelism alone defaults to 1.
    let (completions, parallelism) = match (completions_set, parallelism_set) {
        (None, None) => (Some(1), 1),
        (c, p) => (c, p.unwrap_or(1)),
    };
    let completions = match completions {
        Some(c) => format!("{succeeded}/{c}"),
        None if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
        None => format!("{succeeded}/1"),
    };
    let start = time(at(job, &["status", "startTime"]));
    let end = time(at(job, &["status", "completionTime"]));
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    let status = if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if is_deleting(job) {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(job, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (names, images) =
        containers_and_images(arr(job, &["spec", "template", "spec", "containers"]));
    vec![
        name(job),
        json!(status),
        json!(completions),
        json!(duration),
        age(job, now),
        names,
        images,
        json!(format_label_selector(at(job, &["spec", "selector"]))),
    ]
}

// --- services and networking --------------------------------------------------------------------

const LOAD_BALANCER_WIDTH: usize = 16;

/// `loadBalancerStatusStringer`: sorted unique IPs/hostnames, clipped unless wide.
fn load_balancer_addresses(ingress: &[Value], wide: bool) -> String {
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|i| match (s(i, &["ip"]), s(i, &["hostname"])) {
            ("", "") => None,
            ("", host) => Some(host),
            (ip, _) => Some(ip),
        })
        .collect();
    let mut r = set.into_iter().collect::<Vec<_>>().join(",");
    if !wide && r.len() > LOAD_BALANCER_WIDTH {
        r.truncate(LOAD_BALANCER_WIDTH - 3);
        r.push_str("...");
    }
    r
}

fn service_type(svc: &Value) -> &str {
    match s(svc, &["spec", "type"]) {
        "" => "ClusterIP",
        t => t,
    }
}

fn external_ip(svc: &Value) -> String {
    let external: Vec<&str> = arr(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match service_type(svc) {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            // The server prints wide, so load balancer addresses are never clipped.
            let lb =
                load_balancer_addresses(arr(svc, &["status", "loadBalancer", "ingress"]), true);
            if !external.is_empty() {
                let mut all: Vec<&str> = if lb.is_empty() {
                    Vec::new()
                } else {
                    lb.split(',').collect()
                };
                all.extend(external);
                return all.join(",");
            }
            if lb.is_empty() {
                "<pending>".to_string()
            } else {
                lb
            }
        }
        "ExternalName" => s(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn service_ports(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let protocol = match s(p, &["protocol"]) {
                "" => "TCP",
                proto => proto,
            };
            let port = int(p, &["port"]);
            let node_port = int(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn service_cells(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let cluster_ip = arr(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or_else(|| s(svc, &["spec", "clusterIP"]));
    vec![
        name(svc),
        json!(service_type(svc)),
        json!(or_none(cluster_ip)),
        json!(external_ip(svc)),
        json!(or_none(&service_ports(arr(svc, &["spec", "ports"])))),
        age(svc, now),
        json!(format_labels(at(svc, &["spec", "selector"]))),
    ]
}

fn ingress_hosts(rules: &[Value]) -> String {
    let max = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == max {
            more = true;
        }
        if !more && !s(rule, &["host"]).is_empty() {
            list.push(s(rule, &["host"]));
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - max)
    } else {
        joined
    }
}

/// `formatEndpoints` with all ports.
fn format_endpoints(ep: &Value) -> String {
    let subsets = arr(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addresses = arr(ss, &["addresses"]);
        let ports = arr(ss, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(s(a, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(join_host_port(s(a, &["ip"]), int(port, &["port"])));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - max)
    } else {
        joined
    }
}

/// `net.JoinHostPort`: IPv6 hosts in brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn endpoint_slice_ports(ports: &[Value]) -> String {
    let max = 3;
    let mut list = Vec::new();
    let mut more = false;
    for p in ports {
        if list.len() < max {
            let text = match (opt_int(p, &["port"]), p.get("name").and_then(Value::as_str)) {
                (Some(port), _) => port.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            };
            list.push(text);
        } else if list.len() == max {
            more = true;
        }
    }
    list_with_more(&list, more, ports.len(), max)
}

fn endpoint_slice_endpoints(endpoints: &[Value]) -> String {
    let max = 3;
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for e in endpoints {
        for a in arr(e, &["addresses"]) {
            if list.len() < max {
                list.push(a.as_str().unwrap_or("").to_string());
            } else if list.len() == max {
                more = true;
            }
            count += 1;
        }
    }
    list_with_more(&list, more, count, max)
}

// --- nodes --------------------------------------------------------------------------------------

fn node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let conditions = arr(node, &["status", "conditions"]);
    // The last Ready condition wins, as upstream builds a map by type.
    let ready = conditions.iter().rev().find(|c| s(c, &["type"]) == "Ready");
    let mut status: Vec<&str> = match ready {
        Some(c) if s(c, &["status"]) == "True" => vec!["Ready"],
        Some(_) => vec!["NotReady"],
        None => vec!["Unknown"],
    };
    if at(node, &["spec", "unschedulable"]).as_bool() == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles = BTreeSet::new();
    if let Some(labels) = at(node, &["metadata", "labels"]).as_object() {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role"
                && let Some(v) = v.as_str().filter(|v| !v.is_empty())
            {
                roles.insert(v.to_string());
            }
        }
    }
    let roles = roles.into_iter().collect::<Vec<_>>().join(",");
    let info = at(node, &["status", "nodeInfo"]);
    let unknown = |v: &str| {
        if v.is_empty() {
            "<unknown>".to_string()
        } else {
            v.to_string()
        }
    };
    let mut kernel = unknown(s(info, &["kernelVersion"]));
    if !s(info, &["architecture"]).is_empty() {
        kernel = format!("{kernel} ({})", s(info, &["architecture"]));
    }
    let address = |kind: &str| {
        arr(node, &["status", "addresses"])
            .iter()
            .find(|a| s(a, &["type"]) == kind)
            .map_or_else(|| "<none>".to_string(), |a| s(a, &["address"]).to_string())
    };
    vec![
        name(node),
        json!(status.join(",")),
        json!(or_none(&roles)),
        age(node, now),
        json!(s(info, &["kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(unknown(s(info, &["osImage"]))),
        json!(kernel),
        json!(unknown(s(info, &["containerRuntimeVersion"]))),
    ]
}

// --- events -------------------------------------------------------------------------------------

/// An events.k8s.io/v1 Event in the core/v1 shape the printer reads (both are the same
/// internal type upstream).
pub(super) fn core_event_view(event: &Value) -> Value {
    json!({
        "metadata": at(event, &["metadata"]),
        "involvedObject": at(event, &["regarding"]),
        "reason": at(event, &["reason"]),
        "message": at(event, &["note"]),
        "source": at(event, &["deprecatedSource"]),
        "firstTimestamp": at(event, &["deprecatedFirstTimestamp"]),
        "lastTimestamp": at(event, &["deprecatedLastTimestamp"]),
        "count": at(event, &["deprecatedCount"]),
        "type": at(event, &["type"]),
        "eventTime": at(event, &["eventTime"]),
        "series": at(event, &["series"]),
        "reportingComponent": at(event, &["reportingController"]),
        "reportingInstance": at(event, &["reportingInstance"]),
    })
}

fn event_cells(event: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first = if time(at(event, &["firstTimestamp"])).is_some() {
        since(at(event, &["firstTimestamp"]), now)
    } else {
        since(at(event, &["eventTime"]), now)
    };
    let mut last = if time(at(event, &["lastTimestamp"])).is_some() {
        since(at(event, &["lastTimestamp"]), now)
    } else {
        first.clone()
    };
    let mut count = int(event, &["count"]);
    let series = at(event, &["series"]);
    if series.is_object() {
        last = since(at(series, &["lastObservedTime"]), now);
        count = int(series, &["count"]);
    } else if count == 0 {
        count = 1;
    }
    let kind = s(event, &["involvedObject", "kind"]).to_lowercase();
    let target = match s(event, &["involvedObject", "name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let first_non_empty = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            a.to_string()
        }
    };
    let component = first_non_empty(
        s(event, &["source", "component"]),
        s(event, &["reportingComponent"]),
    );
    let instance = first_non_empty(
        s(event, &["source", "host"]),
        s(event, &["reportingInstance"]),
    );
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(s(event, &["type"])),
        json!(s(event, &["reason"])),
        json!(target),
        json!(s(event, &["involvedObject", "fieldPath"])),
        json!(source),
        json!(s(event, &["message"]).trim()),
        json!(first),
        json!(count),
        name(event),
    ]
}

// --- storage ------------------------------------------------------------------------------------

/// `GetAccessModesAsString`.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn storage_class_of(obj: &Value) -> String {
    let beta = at(
        obj,
        &[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ],
    );
    match beta.as_str() {
        Some(class) => class.to_string(),
        None => s(obj, &["spec", "storageClassName"]).to_string(),
    }
}

fn or_unset(v: &Value) -> String {
    v.as_str()
        .map_or_else(|| "<unset>".to_string(), str::to_string)
}

fn pv_cells(pv: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let claim = at(pv, &["spec", "claimRef"]);
    let claim = if claim.is_object() {
        format!("{}/{}", s(claim, &["namespace"]), s(claim, &["name"]))
    } else {
        String::new()
    };
    let phase = if is_deleting(pv) {
        "Terminating"
    } else {
        match s(pv, &["status", "phase"]) {
            "" => "Pending",
            p => p,
        }
    };
    let volume_mode = match at(pv, &["spec", "volumeMode"]) {
        Value::Null => "Filesystem".to_string(),
        v => or_unset(v),
    };
    vec![
        name(pv),
        json!(quantity(at(pv, &["spec", "capacity", "storage"])).unwrap_or_else(|| "0".into())),
        json!(access_modes(arr(pv, &["spec", "accessModes"]))),
        json!(match s(pv, &["spec", "persistentVolumeReclaimPolicy"]) {
            "" => "Retain",
            p => p,
        }),
        json!(phase),
        json!(claim),
        json!(storage_class_of(pv)),
        json!(or_unset(at(pv, &["spec", "volumeAttributesClassName"]))),
        json!(s(pv, &["status", "reason"])),
        age(pv, now),
        json!(volume_mode),
    ]
}

fn pvc_cells(pvc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let phase = if is_deleting(pvc) {
        "Terminating"
    } else {
        match s(pvc, &["status", "phase"]) {
            "" => "Pending",
            p => p,
        }
    };
    let volume_name = s(pvc, &["spec", "volumeName"]);
    let (capacity, modes) = if volume_name.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(pvc, &["status", "capacity", "storage"])).unwrap_or_else(|| "0".into()),
            access_modes(arr(pvc, &["status", "accessModes"])),
        )
    };
    let class = match at(
        pvc,
        &[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ],
    )
    .as_str()
    {
        Some(c) => c.to_string(),
        None => s(pvc, &["spec", "storageClassName"]).to_string(),
    };
    let volume_mode = match at(pvc, &["spec", "volumeMode"]) {
        Value::Null => "Filesystem".to_string(),
        v => or_unset(v),
    };
    vec![
        name(pvc),
        json!(phase),
        json!(volume_name),
        json!(capacity),
        json!(modes),
        json!(class),
        json!(or_unset(at(pvc, &["spec", "volumeAttributesClassName"]))),
        age(pvc, now),
        json!(volume_mode),
    ]
}

// --- autoscaling --------------------------------------------------------------------------------

/// The autoscaling/v2 view (spec.metrics, status.currentMetrics) of an HPA of any version,
/// with upstream's defaulting (cpu at 80% when no metric is set).
fn hpa_metrics(hpa: &Value) -> (Vec<Value>, Vec<Value>) {
    let mut specs = arr(hpa, &["spec", "metrics"]).to_vec();
    let mut statuses = arr(hpa, &["status", "currentMetrics"]).to_vec();
    if let Some(target) = opt_int(hpa, &["spec", "targetCPUUtilizationPercentage"]) {
        specs = vec![json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": target}}})];
    }
    if let Some(current) = opt_int(hpa, &["status", "currentCPUUtilizationPercentage"]) {
        statuses = vec![json!({"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": current}}})];
    }
    if specs.is_empty() {
        specs = vec![json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 80}}})];
    }
    (specs, statuses)
}

/// `Quantity.String()` of an optional quantity; a nil pointer prints `<nil>` in Go.
fn q(v: &Value) -> String {
    quantity(v).unwrap_or_else(|| "<nil>".to_string())
}

fn format_hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let max = 2;
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i).unwrap_or(&Value::Null);
        let unknown = || "<unknown>".to_string();
        let entry = match s(spec, &["type"]) {
            "External" => {
                let target = at(spec, &["external", "target"]);
                let current = at(status, &["external", "current"]);
                if is_set(target, &["averageValue"]) {
                    let cur = if is_set(current, &["averageValue"]) {
                        q(at(current, &["averageValue"]))
                    } else {
                        unknown()
                    };
                    format!("{cur}/{} (avg)", q(at(target, &["averageValue"])))
                } else {
                    let cur = if is_set(status, &["external"]) {
                        q(at(current, &["value"]))
                    } else {
                        unknown()
                    };
                    format!("{cur}/{}", q(at(target, &["value"])))
                }
            }
            "Pods" => {
                let cur = if is_set(status, &["pods"]) {
                    q(at(status, &["pods", "current", "averageValue"]))
                } else {
                    unknown()
                };
                format!("{cur}/{}", q(at(spec, &["pods", "target", "averageValue"])))
            }
            "Object" => {
                let target = at(spec, &["object", "target"]);
                let current = at(status, &["object", "current"]);
                if is_set(target, &["averageValue"]) {
                    let cur = if is_set(current, &["averageValue"]) {
                        q(at(current, &["averageValue"]))
                    } else {
                        unknown()
                    };
                    format!("{cur}/{} (avg)", q(at(target, &["averageValue"])))
                } else {
                    let cur = if is_set(status, &["object"]) {
                        q(at(current, &["value"]))
                    } else {
                        unknown()
                    };
                    format!("{cur}/{}", q(at(target, &["value"])))
                }
            }
            kind @ ("Resource" | "ContainerResource") => {
                let key = if kind == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let source = at(spec, &[key]);
                let target = at(source, &["target"]);
                let current = at(status, &[key, "current"]);
                let resource = s(source, &["name"]);
                if is_set(target, &["averageValue"]) {
                    let cur = if is_set(status, &[key]) {
                        q(at(current, &["averageValue"]))
                    } else {
                        unknown()
                    };
                    format!("{resource}: {cur}/{}", q(at(target, &["averageValue"])))
                } else {
                    let cur = match opt_int(current, &["averageUtilization"]) {
                        Some(u) if is_set(status, &[key]) => format!("{u}%"),
                        _ => unknown(),
                    };
                    let tgt = opt_int(target, &["averageUtilization"])
                        .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
                    format!("{resource}: {cur}/{tgt}")
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(entry);
    }
    let count = list.len();
    if count > max {
        list.truncate(max);
        return format!("{} + {} more...", list.join(", "), count - max);
    }
    list.join(", ")
}

fn hpa_cells(hpa: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (specs, statuses) = hpa_metrics(hpa);
    // minReplicas is defaulted to 1 upstream.
    let min = opt_int(hpa, &["spec", "minReplicas"]).unwrap_or(1);
    vec![
        name(hpa),
        json!(format!(
            "{}/{}",
            s(hpa, &["spec", "scaleTargetRef", "kind"]),
            s(hpa, &["spec", "scaleTargetRef", "name"])
        )),
        json!(format_hpa_metrics(&specs, &statuses)),
        json!(min.to_string()),
        json!(int(hpa, &["spec", "maxReplicas"])),
        json!(int(hpa, &["status", "currentReplicas"])),
        age(hpa, now),
    ]
}

// --- rbac, certificates, quotas -----------------------------------------------------------------

/// `rbac.SubjectsStrings`: users, groups and `namespace/name` service accounts.
fn subjects(subjects: &[Value]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut sas = Vec::new();
    for subject in subjects {
        match s(subject, &["kind"]) {
            "ServiceAccount" => sas.push(format!(
                "{}/{}",
                s(subject, &["namespace"]),
                s(subject, &["name"])
            )),
            "User" => users.push(s(subject, &["name"]).to_string()),
            "Group" => groups.push(s(subject, &["name"]).to_string()),
            _ => {}
        }
    }
    (users, groups, sas)
}

fn csr_status(csr: &Value) -> String {
    let conditions = arr(csr, &["status", "conditions"]);
    let has = |kind: &str| conditions.iter().any(|c| s(c, &["type"]) == kind);
    let mut status = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !s(csr, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

fn resource_quota_cells(quota: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let hard: BTreeMap<&String, &Value> = at(quota, &["status", "hard"])
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    for (resource, hard_q) in hard {
        let used = quantity(at(quota, &["status", "used", resource])).unwrap_or_else(|| "0".into());
        let entry = format!(
            "{resource}: {used}/{}",
            quantity(hard_q).unwrap_or_else(|| "0".into())
        );
        let pieces: Vec<&str> = resource.split('.').collect();
        if pieces.len() > 1 && pieces[0] == "limits" {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        name(quota),
        json!(requests.join(", ")),
        json!(limits.join(", ")),
        age(quota, now),
    ]
}
