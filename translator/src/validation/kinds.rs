//! Per-kind semantic rules kubectl users meet daily, worded as upstream's
//! pkg/apis/*/validation. Each rule appends causes; a table maps (group, kind) to its rule.

use serde_json::{Map, Value};

use super::field::{
    child, duplicate, forbidden, index, invalid, invalid_str, key, not_supported, required,
    too_long,
};
use super::names::{
    is_config_map_key, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value,
};
use crate::error::Cause;

/// Upstream's limit on the data of a ConfigMap or Secret.
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;

type Rule = fn(&Value, &mut Vec<Cause>);

/// The semantic rule of a kind, if it has one.
fn rule_for(group: &str, kind: &str) -> Option<Rule> {
    Some(match (group, kind) {
        ("", "Pod") => validate_pod,
        ("", "PodTemplate") => validate_pod_template,
        ("", "ReplicationController") => validate_replication_controller,
        ("", "Service") => validate_service,
        ("", "ConfigMap") => validate_config_map,
        ("", "Secret") => validate_secret,
        ("apps", "Deployment") => |o, c| validate_workload(o, c, "deployment", true),
        ("apps", "ReplicaSet") => |o, c| validate_workload(o, c, "replicaset", true),
        ("apps", "StatefulSet") => |o, c| validate_workload(o, c, "statefulset", true),
        ("apps", "DaemonSet") => |o, c| validate_workload(o, c, "daemonset", false),
        ("batch", "Job") => validate_job,
        ("batch", "CronJob") => validate_cron_job,
        ("", "Event") => super::events::validate_core_event,
        ("events.k8s.io", "Event") => super::events::validate_events_v1_event,
        ("coordination.k8s.io", "Lease") => super::leases::validate_lease,
        _ => return None,
    })
}

/// Causes for everything the kind's own rules reject.
pub fn kind_causes(group: &str, kind: &str, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(rule) = rule_for(group, kind) {
        rule(obj, &mut causes);
    }
    causes
}

fn str_at<'v>(v: &'v Value, name: &str) -> Option<&'v str> {
    v.get(name).and_then(Value::as_str)
}

fn list_at<'v>(v: &'v Value, name: &str) -> &'v [Value] {
    v.get(name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn int_at(v: &Value, name: &str) -> Option<i64> {
    v.get(name).and_then(Value::as_i64)
}

fn non_negative(v: &Value, name: &str, path: &str, causes: &mut Vec<Cause>) {
    if let Some(n) = int_at(v, name)
        && n < 0
    {
        causes.push(invalid(
            &child(path, name),
            &Value::from(n),
            "must be greater than or equal to 0",
        ));
    }
}

fn valid_port_num(port: i64) -> bool {
    (1..=65535).contains(&port)
}

const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";

fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if !port
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || port.is_empty()
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !port.chars().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];

fn check_protocol(v: &Value, path: &str, causes: &mut Vec<Cause>) {
    match v.get("protocol") {
        None | Some(Value::Null) => {}
        Some(Value::String(p)) if PROTOCOLS.contains(&p.as_str()) => {}
        Some(other) => causes.push(not_supported(&child(path, "protocol"), other, &PROTOCOLS)),
    }
}

/// Pod spec rules: containers, names, images, ports, volumes and the enumerations.
pub fn validate_pod_spec(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let mut volume_names: Vec<&str> = Vec::new();
    for (i, volume) in list_at(spec, "volumes").iter().enumerate() {
        let vpath = index(&child(path, "volumes"), i);
        match str_at(volume, "name") {
            None | Some("") => causes.push(required(&child(&vpath, "name"), "")),
            Some(name) => {
                for msg in is_dns1123_label(name) {
                    causes.push(invalid_str(&child(&vpath, "name"), name, &msg));
                }
                if volume_names.contains(&name) {
                    causes.push(duplicate(&child(&vpath, "name"), &Value::from(name)));
                }
                volume_names.push(name);
            }
        }
    }

    let containers = list_at(spec, "containers");
    if containers.is_empty() {
        causes.push(required(&child(path, "containers"), ""));
    }
    let mut container_names: Vec<&str> = Vec::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in list_at(spec, list).iter().enumerate() {
            validate_container(
                c,
                &index(&child(path, list), i),
                &volume_names,
                &mut container_names,
                causes,
            );
        }
    }

    check_enum(
        spec,
        "restartPolicy",
        path,
        &["Always", "OnFailure", "Never"],
        causes,
    );
    check_enum(
        spec,
        "dnsPolicy",
        path,
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        causes,
    );
    non_negative(spec, "terminationGracePeriodSeconds", path, causes);
    if let Some(n) = int_at(spec, "activeDeadlineSeconds")
        && n <= 0
    {
        causes.push(invalid(
            &child(path, "activeDeadlineSeconds"),
            &Value::from(n),
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    if let Some(Value::Object(selector)) = spec.get("nodeSelector") {
        validate_labels(selector, &child(path, "nodeSelector"), causes);
    }
}

fn check_enum(v: &Value, name: &str, path: &str, allowed: &[&str], causes: &mut Vec<Cause>) {
    match v.get(name) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
        Some(other) => causes.push(not_supported(&child(path, name), other, allowed)),
    }
}

fn validate_container<'v>(
    c: &'v Value,
    path: &str,
    volume_names: &[&str],
    seen: &mut Vec<&'v str>,
    causes: &mut Vec<Cause>,
) {
    match str_at(c, "name") {
        None | Some("") => causes.push(required(&child(path, "name"), "")),
        Some(name) => {
            for msg in is_dns1123_label(name) {
                causes.push(invalid_str(&child(path, "name"), name, &msg));
            }
            if seen.contains(&name) {
                causes.push(duplicate(&child(path, "name"), &Value::from(name)));
            }
            seen.push(name);
        }
    }
    match str_at(c, "image") {
        None => causes.push(required(&child(path, "image"), "")),
        Some(image) if image.trim() != image => causes.push(invalid_str(
            &child(path, "image"),
            image,
            "must not have leading or trailing whitespace",
        )),
        Some("") => causes.push(required(&child(path, "image"), "")),
        Some(_) => {}
    }
    let mut port_names: Vec<&str> = Vec::new();
    for (i, port) in list_at(c, "ports").iter().enumerate() {
        let ppath = index(&child(path, "ports"), i);
        if let Some(name) = str_at(port, "name")
            && !name.is_empty()
        {
            for msg in is_valid_port_name(name) {
                causes.push(invalid_str(&child(&ppath, "name"), name, &msg));
            }
            if port_names.contains(&name) {
                causes.push(duplicate(&child(&ppath, "name"), &Value::from(name)));
            }
            port_names.push(name);
        }
        match int_at(port, "containerPort") {
            None | Some(0) => causes.push(required(&child(&ppath, "containerPort"), "")),
            Some(p) if !valid_port_num(p) => causes.push(invalid(
                &child(&ppath, "containerPort"),
                &Value::from(p),
                PORT_RANGE,
            )),
            Some(_) => {}
        }
        if let Some(p) = int_at(port, "hostPort")
            && p != 0
            && !valid_port_num(p)
        {
            causes.push(invalid(
                &child(&ppath, "hostPort"),
                &Value::from(p),
                PORT_RANGE,
            ));
        }
        check_protocol(port, &ppath, causes);
    }
    for (i, env) in list_at(c, "env").iter().enumerate() {
        let epath = index(&child(path, "env"), i);
        if str_at(env, "name").is_none_or(str::is_empty) {
            causes.push(required(&child(&epath, "name"), ""));
        }
    }
    for (i, mount) in list_at(c, "volumeMounts").iter().enumerate() {
        let mpath = index(&child(path, "volumeMounts"), i);
        match str_at(mount, "name") {
            None | Some("") => causes.push(required(&child(&mpath, "name"), "")),
            Some(name) if !volume_names.contains(&name) => causes.push(Cause::new(
                "FieldValueNotFound",
                child(&mpath, "name"),
                format!("Not found: {}", super::field::go_quote(name)),
            )),
            Some(_) => {}
        }
        if str_at(mount, "mountPath").is_none_or(str::is_empty) {
            causes.push(required(&child(&mpath, "mountPath"), ""));
        }
    }
    check_enum(
        c,
        "imagePullPolicy",
        path,
        &["Always", "IfNotPresent", "Never"],
        causes,
    );
    check_enum(
        c,
        "terminationMessagePolicy",
        path,
        &["File", "FallbackToLogsOnError"],
        causes,
    );
}

/// Label keys and values, as `ValidateLabels`.
pub fn validate_labels(labels: &Map<String, Value>, path: &str, causes: &mut Vec<Cause>) {
    for (k, v) in labels {
        for msg in is_qualified_name(k) {
            causes.push(invalid_str(path, k, &msg));
        }
        let value = v.as_str().unwrap_or_default();
        for msg in is_valid_label_value(value) {
            causes.push(invalid_str(path, value, &msg));
        }
    }
}

fn validate_pod(obj: &Value, causes: &mut Vec<Cause>) {
    validate_pod_spec(obj.get("spec").unwrap_or(&Value::Null), "spec", causes);
}

fn validate_pod_template(obj: &Value, causes: &mut Vec<Cause>) {
    let template = obj.get("template").unwrap_or(&Value::Null);
    validate_template_metadata(template, "template", causes);
    validate_pod_spec(
        template.get("spec").unwrap_or(&Value::Null),
        "template.spec",
        causes,
    );
}

fn validate_template_metadata(template: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(Value::Object(labels)) = template.pointer("/metadata/labels") {
        validate_labels(labels, &format!("{path}.metadata.labels"), causes);
    }
}

/// Does a `metav1.LabelSelector` select these labels?
pub fn selector_matches(selector: &Value, labels: &Map<String, Value>) -> bool {
    if let Some(Value::Object(match_labels)) = selector.get("matchLabels")
        && match_labels.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return false;
    }
    list_at(selector, "matchExpressions").iter().all(|expr| {
        let key = str_at(expr, "key").unwrap_or_default();
        let values: Vec<&str> = list_at(expr, "values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let have = labels.get(key).and_then(Value::as_str);
        match str_at(expr, "operator") {
            Some("In") => have.is_some_and(|h| values.contains(&h)),
            Some("NotIn") => have.is_none_or(|h| !values.contains(&h)),
            Some("Exists") => have.is_some(),
            Some("DoesNotExist") => have.is_none(),
            _ => false,
        }
    })
}

fn selector_is_empty(selector: &Value) -> bool {
    selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty)
        && list_at(selector, "matchExpressions").is_empty()
}

/// `ValidateLabelSelector`: label syntax and operator/values agreement.
fn validate_label_selector(selector: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(Value::Object(labels)) = selector.get("matchLabels") {
        validate_labels(labels, &child(path, "matchLabels"), causes);
    }
    for (i, expr) in list_at(selector, "matchExpressions").iter().enumerate() {
        let epath = index(&child(path, "matchExpressions"), i);
        let values = list_at(expr, "values");
        match str_at(expr, "operator") {
            Some("In" | "NotIn") if values.is_empty() => causes.push(required(
                &child(&epath, "values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            Some("Exists" | "DoesNotExist") if !values.is_empty() => causes.push(forbidden(
                &child(&epath, "values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
            other => causes.push(invalid(
                &child(&epath, "operator"),
                &other.map(Value::from).unwrap_or(Value::Null),
                "not a valid selector operator",
            )),
        }
        let key_value = str_at(expr, "key").unwrap_or_default();
        for msg in is_qualified_name(key_value) {
            causes.push(invalid_str(&child(&epath, "key"), key_value, &msg));
        }
    }
}

/// `pod_spec` with a placeholder volume for each of the StatefulSet's
/// `volumeClaimTemplates` that no pod volume already names.
fn with_claim_volumes(pod_spec: &Value, spec: &Value) -> Value {
    let mut pod_spec = pod_spec.clone();
    let claims: Vec<String> = list_at(spec, "volumeClaimTemplates")
        .iter()
        .filter_map(|t| t.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    if claims.is_empty() {
        return pod_spec;
    }
    let Some(obj) = pod_spec.as_object_mut() else {
        return pod_spec;
    };
    let volumes = obj
        .entry("volumes")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !volumes.is_array() {
        *volumes = Value::Array(Vec::new());
    }
    if let Value::Array(volumes) = volumes {
        for name in claims {
            if !volumes.iter().any(|v| v["name"] == name.as_str()) {
                volumes.push(
                    serde_json::json!({"name": name, "persistentVolumeClaim": {"claimName": name}}),
                );
            }
        }
    }
    pod_spec
}

/// Deployment, ReplicaSet, StatefulSet and DaemonSet: selector present, non-empty and
/// matching the template's labels; replicas not negative; pods restart Always.
fn validate_workload(obj: &Value, causes: &mut Vec<Cause>, noun: &str, has_replicas: bool) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if has_replicas {
        non_negative(spec, "replicas", "spec", causes);
    }
    non_negative(spec, "minReadySeconds", "spec", causes);
    non_negative(spec, "revisionHistoryLimit", "spec", causes);
    let template = spec.get("template").unwrap_or(&Value::Null);
    let empty = Map::new();
    let template_labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    match spec.get("selector") {
        None | Some(Value::Null) => causes.push(required("spec.selector", "")),
        Some(selector) => {
            validate_label_selector(selector, "spec.selector", causes);
            if selector_is_empty(selector) {
                causes.push(invalid(
                    "spec.selector",
                    selector,
                    &format!("empty selector is invalid for {noun}"),
                ));
            } else if !selector_matches(selector, template_labels) {
                causes.push(invalid(
                    "spec.template.metadata.labels",
                    &Value::Object(template_labels.clone()),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    validate_template_metadata(template, "spec.template", causes);
    let pod_spec = template.get("spec").unwrap_or(&Value::Null);
    if noun == "statefulset" {
        // A StatefulSet's containers mount its volumeClaimTemplates by name too: upstream
        // checks mounts against the union, so the claims count as volumes here.
        validate_pod_spec(
            &with_claim_volumes(pod_spec, spec),
            "spec.template.spec",
            causes,
        );
    } else {
        validate_pod_spec(pod_spec, "spec.template.spec", causes);
    }
    if let Some(policy) = pod_spec.get("restartPolicy").filter(|p| !p.is_null())
        && policy.as_str() != Some("Always")
    {
        causes.push(not_supported(
            "spec.template.spec.restartPolicy",
            policy,
            &["Always"],
        ));
    }
    if noun == "deployment"
        && let Some(strategy) = spec.pointer("/strategy/type")
    {
        check_enum(
            spec.get("strategy").unwrap_or(&Value::Null),
            "type",
            "spec.strategy",
            &["Recreate", "RollingUpdate"],
            causes,
        );
        if strategy.as_str() == Some("Recreate")
            && spec
                .pointer("/strategy/rollingUpdate")
                .is_some_and(|r| !r.is_null())
        {
            causes.push(forbidden(
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'",
            ));
        }
    }
}

fn validate_replication_controller(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    non_negative(spec, "replicas", "spec", causes);
    let template = spec.get("template").unwrap_or(&Value::Null);
    let empty = Map::new();
    let labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if let Some(Value::Object(selector)) = spec.get("selector") {
        if selector.is_empty() {
            causes.push(required("spec.selector", ""));
        } else if selector.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            causes.push(invalid(
                "spec.template.metadata.labels",
                &Value::Object(labels.clone()),
                "`selector` does not match template `labels`",
            ));
        }
    }
    validate_template_metadata(template, "spec.template", causes);
    validate_pod_spec(
        template.get("spec").unwrap_or(&Value::Null),
        "spec.template.spec",
        causes,
    );
}

fn validate_job_template_spec(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    for field in ["parallelism", "completions", "backoffLimit"] {
        non_negative(spec, field, path, causes);
    }
    let template = spec.get("template").unwrap_or(&Value::Null);
    validate_template_metadata(template, &child(path, "template"), causes);
    let pod_spec = template.get("spec").unwrap_or(&Value::Null);
    let pod_path = child(path, "template.spec");
    validate_pod_spec(pod_spec, &pod_path, causes);
    match pod_spec.get("restartPolicy") {
        Some(Value::String(p)) if p == "OnFailure" || p == "Never" => {}
        None | Some(Value::Null) => causes.push(required(&child(&pod_path, "restartPolicy"), "")),
        Some(other) => causes.push(not_supported(
            &child(&pod_path, "restartPolicy"),
            other,
            &["OnFailure", "Never"],
        )),
    }
}

fn validate_job(obj: &Value, causes: &mut Vec<Cause>) {
    validate_job_template_spec(obj.get("spec").unwrap_or(&Value::Null), "spec", causes);
}

fn validate_cron_job(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if str_at(spec, "schedule").is_none_or(str::is_empty) {
        causes.push(required("spec.schedule", ""));
    }
    check_enum(
        spec,
        "concurrencyPolicy",
        "spec",
        &["Allow", "Forbid", "Replace"],
        causes,
    );
    for field in [
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
        "startingDeadlineSeconds",
    ] {
        non_negative(spec, field, "spec", causes);
    }
    let job_spec = spec.pointer("/jobTemplate/spec").unwrap_or(&Value::Null);
    validate_job_template_spec(job_spec, "spec.jobTemplate.spec", causes);
}

const SERVICE_TYPES: [&str; 4] = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

fn validate_service(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let service_type = str_at(spec, "type").unwrap_or("ClusterIP");
    check_enum(spec, "type", "spec", &SERVICE_TYPES, causes);
    check_enum(
        spec,
        "sessionAffinity",
        "spec",
        &["ClientIP", "None"],
        causes,
    );
    let headless = str_at(spec, "clusterIP") == Some("None");
    let ports = list_at(spec, "ports");
    if service_type == "ExternalName" {
        match str_at(spec, "externalName") {
            None | Some("") => causes.push(required("spec.externalName", "")),
            Some(name) => {
                for msg in is_dns1123_subdomain(name.trim_end_matches('.')) {
                    causes.push(invalid_str("spec.externalName", name, &msg));
                }
            }
        }
    }
    if ports.is_empty() && !headless && service_type != "ExternalName" {
        causes.push(required("spec.ports", ""));
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let ppath = index("spec.ports", i);
        match str_at(port, "name") {
            None | Some("") if ports.len() > 1 => causes.push(required(&child(&ppath, "name"), "")),
            None | Some("") => {}
            Some(name) => {
                for msg in is_dns1123_label(name) {
                    causes.push(invalid_str(&child(&ppath, "name"), name, &msg));
                }
                if names.contains(&name) {
                    causes.push(duplicate(&child(&ppath, "name"), &Value::from(name)));
                }
                names.push(name);
            }
        }
        match int_at(port, "port") {
            Some(p) if valid_port_num(p) => {}
            Some(p) => causes.push(invalid(&child(&ppath, "port"), &Value::from(p), PORT_RANGE)),
            None => causes.push(invalid(&child(&ppath, "port"), &Value::from(0), PORT_RANGE)),
        }
        check_protocol(port, &ppath, causes);
        match port.get("targetPort") {
            Some(Value::Number(n)) => {
                let p = n.as_i64().unwrap_or(0);
                if p != 0 && !valid_port_num(p) {
                    causes.push(invalid(
                        &child(&ppath, "targetPort"),
                        &Value::from(p),
                        PORT_RANGE,
                    ));
                }
            }
            Some(Value::String(name)) => {
                for msg in is_valid_port_name(name) {
                    causes.push(invalid_str(&child(&ppath, "targetPort"), name, &msg));
                }
            }
            _ => {}
        }
        if let Some(p) = int_at(port, "nodePort")
            && p != 0
            && !valid_port_num(p)
        {
            causes.push(invalid(
                &child(&ppath, "nodePort"),
                &Value::from(p),
                PORT_RANGE,
            ));
        }
    }
    if let Some(Value::Object(selector)) = spec.get("selector") {
        validate_labels(selector, "spec.selector", causes);
    }
}

fn validate_data_keys(
    obj: &Value,
    field_name: &str,
    other: Option<&Map<String, Value>>,
    other_name: &str,
    causes: &mut Vec<Cause>,
) {
    if let Some(Value::Object(data)) = obj.get(field_name) {
        for k in data.keys() {
            for msg in is_config_map_key(k) {
                causes.push(invalid_str(&key(field_name, k), k, &msg));
            }
            if other.is_some_and(|o| o.contains_key(k)) {
                causes.push(invalid_str(
                    &key(field_name, k),
                    k,
                    &format!("duplicate of key present in {other_name}"),
                ));
            }
        }
    }
}

fn validate_config_map(obj: &Value, causes: &mut Vec<Cause>) {
    validate_data_keys(obj, "data", None, "", causes);
    let data = obj.get("data").and_then(Value::as_object);
    validate_data_keys(obj, "binaryData", data, "data", causes);
    let mut total = 0usize;
    for field in ["data", "binaryData"] {
        if let Some(Value::Object(map)) = obj.get(field) {
            for (k, v) in map {
                let len = match (field, v.as_str()) {
                    ("binaryData", Some(s)) => decoded_len(s),
                    (_, Some(s)) => s.len(),
                    _ => 0,
                };
                total += k.len() + len;
            }
        }
    }
    if total > MAX_SECRET_SIZE {
        causes.push(too_long("", MAX_SECRET_SIZE));
    }
}

fn decoded_len(b64: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map(|d| d.len())
        .unwrap_or(b64.len())
}

fn validate_secret(obj: &Value, causes: &mut Vec<Cause>) {
    validate_data_keys(obj, "data", None, "", causes);
    let mut total = 0usize;
    if let Some(Value::Object(data)) = obj.get("data") {
        for v in data.values() {
            total += v.as_str().map(decoded_len).unwrap_or(0);
        }
    }
    // stringData is merged into data before validation upstream; count it too.
    if let Some(Value::Object(data)) = obj.get("stringData") {
        for (k, v) in data {
            for msg in is_config_map_key(k) {
                causes.push(invalid_str(&key("stringData", k), k, &msg));
            }
            total += v.as_str().map(str::len).unwrap_or(0);
        }
    }
    if total > MAX_SECRET_SIZE {
        causes.push(too_long("data", MAX_SECRET_SIZE));
    }
    let has_key = |k: &str| {
        ["data", "stringData"]
            .iter()
            .any(|f| obj.get(f).and_then(|d| d.get(k)).is_some())
    };
    let required_keys: &[&str] = match str_at(obj, "type") {
        Some("kubernetes.io/tls") => &["tls.crt", "tls.key"],
        Some("kubernetes.io/dockerconfigjson") => &[".dockerconfigjson"],
        Some("kubernetes.io/dockercfg") => &[".dockercfg"],
        Some("kubernetes.io/ssh-auth") => &["ssh-privatekey"],
        _ => &[],
    };
    for k in required_keys {
        if !has_key(k) {
            causes.push(required(&key("data", k), ""));
        }
    }
    if str_at(obj, "type") == Some("kubernetes.io/service-account-token")
        && obj
            .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        causes.push(required(
            "metadata.annotations[kubernetes.io/service-account.name]",
            "",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(causes: &[Cause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    fn deployment(spec: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec})
    }

    fn good_template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "web", "image": "nginx"}]}})
    }

    #[test]
    fn valid_deployment_has_no_causes() {
        let d = deployment(
            json!({"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": good_template()}),
        );
        assert!(kind_causes("apps", "Deployment", &d).is_empty());
    }

    #[test]
    fn deployment_selector_rules() {
        let d = deployment(json!({"template": good_template()}));
        assert_eq!(
            messages(&kind_causes("apps", "Deployment", &d)),
            ["spec.selector: Required value"]
        );
        let d = deployment(
            json!({"selector": {"matchLabels": {"app": "db"}}, "template": good_template()}),
        );
        assert_eq!(
            messages(&kind_causes("apps", "Deployment", &d)),
            [
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
            ]
        );
        let d = deployment(json!({"selector": {}, "template": good_template()}));
        assert!(
            messages(&kind_causes("apps", "Deployment", &d))[0]
                .ends_with("empty selector is invalid for deployment")
        );
        let d = deployment(
            json!({"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "x"]}]}, "template": good_template()}),
        );
        assert!(kind_causes("apps", "Deployment", &d).is_empty());
    }

    #[test]
    fn negative_replicas_and_wrong_restart_policy() {
        let mut t = good_template();
        t["spec"]["restartPolicy"] = json!("Never");
        let d = deployment(
            json!({"replicas": -1, "selector": {"matchLabels": {"app": "web"}}, "template": t}),
        );
        assert_eq!(
            messages(&kind_causes("apps", "ReplicaSet", &d)),
            [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ]
        );
    }

    #[test]
    fn pod_container_rules() {
        let pod = json!({"spec": {"containers": [
            {"name": "web", "image": "nginx", "ports": [{"containerPort": 70000}, {"containerPort": 80, "protocol": "tcp"}]},
            {"name": "web"},
            {"image": "x"},
        ]}});
        assert_eq!(
            messages(&kind_causes("", "Pod", &pod)),
            [
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[1].protocol: Unsupported value: \"tcp\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.containers[1].name: Duplicate value: \"web\"",
                "spec.containers[1].image: Required value",
                "spec.containers[2].name: Required value",
            ]
        );
        assert_eq!(
            messages(&kind_causes("", "Pod", &json!({"spec": {}}))),
            ["spec.containers: Required value"]
        );
    }

    #[test]
    fn volume_mounts_must_name_a_volume() {
        let pod = json!({"spec": {"volumes": [{"name": "data"}], "containers": [{"name": "c", "image": "i",
            "volumeMounts": [{"name": "data", "mountPath": "/d"}, {"name": "cache", "mountPath": "/c"}]}]}});
        assert_eq!(
            messages(&kind_causes("", "Pod", &pod)),
            ["spec.containers[0].volumeMounts[1].name: Not found: \"cache\""]
        );
    }

    #[test]
    fn statefulset_mounts_may_name_a_claim_template() {
        let sts = |mount: &str| {
            json!({"spec": {"selector": {"matchLabels": {"a": "b"}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i",
                    "volumeMounts": [{"name": mount, "mountPath": "/d"}]}]}}}})
        };
        assert!(messages(&kind_causes("apps", "StatefulSet", &sts("data"))).is_empty());
        assert_eq!(
            messages(&kind_causes("apps", "StatefulSet", &sts("other"))),
            ["spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"other\""]
        );
    }

    #[test]
    fn service_rules() {
        let svc = json!({"spec": {"selector": {"app": "web"}}});
        assert_eq!(
            messages(&kind_causes("", "Service", &svc)),
            ["spec.ports: Required value"]
        );
        let headless = json!({"spec": {"clusterIP": "None"}});
        assert!(kind_causes("", "Service", &headless).is_empty());
        let external = json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert!(kind_causes("", "Service", &external).is_empty());
        let svc = json!({"spec": {"ports": [{"port": 0}, {"name": "b", "port": 80, "targetPort": "Http"}]}});
        let m = messages(&kind_causes("", "Service", &svc));
        assert_eq!(m[0], "spec.ports[0].name: Required value");
        assert_eq!(
            m[1],
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        assert!(m[2].starts_with(
            "spec.ports[1].targetPort: Invalid value: \"Http\": must contain only alpha-numeric"
        ));
        let svc = json!({"spec": {"type": "Weird", "ports": [{"port": 80}]}});
        assert_eq!(
            messages(&kind_causes("", "Service", &svc)),
            [
                "spec.type: Unsupported value: \"Weird\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
            ]
        );
    }

    #[test]
    fn config_map_keys_and_size() {
        let cm =
            json!({"data": {"good.key": "v", "bad/key": "v"}, "binaryData": {"good.key": "dg=="}});
        assert_eq!(
            messages(&kind_causes("", "ConfigMap", &cm)),
            [
                "data[bad/key]: Invalid value: \"bad/key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                "binaryData[good.key]: Invalid value: \"good.key\": duplicate of key present in data",
            ]
        );
        let big = json!({"data": {"k": "x".repeat(MAX_SECRET_SIZE)}});
        assert_eq!(
            messages(&kind_causes("", "ConfigMap", &big)),
            [": Too long: may not be more than 1048576 bytes"]
        );
    }

    #[test]
    fn secret_type_requirements() {
        let s = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
        assert_eq!(
            messages(&kind_causes("", "Secret", &s)),
            ["data[tls.key]: Required value"]
        );
        let s = json!({"type": "Opaque", "stringData": {"a": "b"}, "data": {"c": "ZA=="}});
        assert!(kind_causes("", "Secret", &s).is_empty());
    }

    #[test]
    fn job_restart_policy_must_be_on_failure_or_never() {
        let job = json!({"spec": {"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "i"}]}}}});
        assert_eq!(
            messages(&kind_causes("batch", "Job", &job)),
            [
                "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
            ]
        );
        let cj = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}}});
        assert_eq!(
            messages(&kind_causes("batch", "CronJob", &cj)),
            ["spec.schedule: Required value"]
        );
    }
}
