//! Upstream's defaulting (k8s.io/kubernetes/pkg/apis/*/v1/defaults.go, plus the defaults
//! the registries apply on create) for the common built-in kinds, so objects read back the
//! way `kubectl get -o yaml` shows them against a real cluster.

use serde_json::{Map, Value, json};

use crate::registry::ResourceInfo;

/// Fills the fields upstream defaults when they are missing (or null). Unknown kinds are
/// left alone.
pub fn apply_defaults(res: &ResourceInfo, obj: &mut Value) {
    let Value::Object(root) = obj else {
        return;
    };
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => {
            if let Some(spec) = object_at(root, "spec") {
                pod_spec_defaults(spec);
                pod_only_defaults(spec);
            }
        }
        ("", "PodTemplate") => template_defaults(root, "template"),
        ("", "ReplicationController") => replication_controller_defaults(root),
        ("", "Service") => {
            if let Some(spec) = object_at(root, "spec") {
                service_defaults(spec);
            }
        }
        ("", "Secret") => {
            merge_string_data(root);
            set(root, "type", json!("Opaque"));
        }
        ("", "Namespace") => namespace_defaults(root),
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = object_at(root, "spec") {
                set(spec, "volumeMode", json!("Filesystem"));
            }
            set(status(root), "phase", json!("Pending"));
        }
        ("", "PersistentVolume") => {
            if let Some(spec) = object_at(root, "spec") {
                set(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
                set(spec, "volumeMode", json!("Filesystem"));
            }
            set(status(root), "phase", json!("Pending"));
        }
        ("", "Endpoints") => {
            for subset in list_at(root, "subsets") {
                for port in list_at(subset, "ports") {
                    set(port, "protocol", json!("TCP"));
                }
            }
        }
        ("apps", "Deployment") => deployment_defaults(root),
        ("apps", "ReplicaSet") => {
            if let Some(spec) = object_at(root, "spec") {
                set(spec, "replicas", json!(1));
                template_defaults(spec, "template");
            }
        }
        ("apps", "StatefulSet") => stateful_set_defaults(root),
        ("apps", "DaemonSet") => daemon_set_defaults(root),
        ("batch", "Job") => {
            if let Some(spec) = object_at(root, "spec") {
                job_spec_defaults(spec);
            }
        }
        ("batch", "CronJob") => cron_job_defaults(root),
        ("networking.k8s.io", "NetworkPolicy") => network_policy_defaults(root),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            // SetDefaults_Subject: Users and Groups get the RBAC group. A ServiceAccount's
            // default is "", which Go's omitempty leaves out of the object entirely.
            for subject in list_at(root, "subjects") {
                if matches!(
                    subject.get("kind").and_then(Value::as_str),
                    Some("User" | "Group")
                ) && subject
                    .get("apiGroup")
                    .is_none_or(|g| g.is_null() || g.as_str() == Some(""))
                {
                    subject.insert("apiGroup".into(), json!("rbac.authorization.k8s.io"));
                }
            }
        }
        ("storage.k8s.io", "CSIDriver") => {
            // SetDefaults_CSIDriver (seLinuxMount: the SELinuxMountReadWriteOncePod gate is
            // on in v1.33).
            if let Some(spec) = object_at(root, "spec") {
                set(spec, "attachRequired", json!(true));
                set(spec, "podInfoOnMount", json!(false));
                set(spec, "storageCapacity", json!(false));
                set(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
                set(spec, "requiresRepublish", json!(false));
                set(spec, "seLinuxMount", json!(false));
                if list_len(spec, "volumeLifecycleModes") == 0 {
                    spec.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
                }
            }
        }
        ("networking.k8s.io", "IngressClass") => {
            if let Some(params) = object_at(root, "spec").and_then(|s| object_at(s, "parameters")) {
                set(params, "scope", json!("Cluster"));
            }
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            // Upstream's SetDefaults_EndpointPort: `name` is a pointer defaulted to "",
            // which clients dereference (kubectl describe svc).
            for port in list_at(root, "ports") {
                set(port, "protocol", json!("TCP"));
                set(port, "name", json!(""));
            }
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            if let Some(spec) = object_at(root, "spec") {
                set(spec, "failurePolicy", json!("Fail"));
                if let Some(constraints) = object_at(spec, "matchConstraints") {
                    match_resources_defaults(constraints);
                }
            }
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            if let Some(resources) =
                object_at(root, "spec").and_then(|s| object_at(s, "matchResources"))
            {
                match_resources_defaults(resources);
            }
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            webhook_configuration_defaults(root, false);
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            webhook_configuration_defaults(root, true);
        }
        ("storage.k8s.io", "StorageClass") => {
            set(root, "reclaimPolicy", json!("Delete"));
            set(root, "volumeBindingMode", json!("Immediate"));
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            set(root, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            if let Some(spec) = object_at(root, "spec") {
                set(spec, "minReplicas", json!(1));
                if res.version == "v2" {
                    hpa_behavior_defaults(spec);
                }
                if res.version == "v2" && list_len(spec, "metrics") == 0 {
                    spec.insert(
                        "metrics".into(),
                        json!([{"type": "Resource", "resource": {"name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 80}}}]),
                    );
                }
            }
        }
        _ => {}
    }
}

fn is_missing(map: &Map<String, Value>, key: &str) -> bool {
    map.get(key).is_none_or(Value::is_null)
}

/// Sets `key` unless it already has a value.
fn set(map: &mut Map<String, Value>, key: &str, value: Value) {
    if is_missing(map, key) {
        map.insert(key.to_string(), value);
    }
}

/// Upstream's v1 → internal Secret conversion: each `stringData` entry overwrites `data`
/// (base64-encoded) and `stringData` itself is write-only, never stored or returned.
fn merge_string_data(root: &mut Map<String, Value>) {
    use base64::Engine as _;
    let Some(Value::Object(strings)) = root.remove("stringData") else {
        return;
    };
    if strings.is_empty() {
        return;
    }
    if !matches!(root.get("data"), Some(Value::Object(_))) {
        root.insert("data".to_string(), Value::Object(Map::new()));
    }
    if let Some(Value::Object(data)) = root.get_mut("data") {
        for (key, value) in strings {
            let text = value.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
            data.insert(key, Value::String(encoded));
        }
    }
}

/// The object at `key`, if it is one.
fn object_at<'m>(map: &'m mut Map<String, Value>, key: &str) -> Option<&'m mut Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// The object at `key`, created when missing (a non-object there is replaced).
fn object_or_new<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let slot = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    ensure_object(slot)
}

/// Turns the value into an object if needed and borrows the map inside it.
fn ensure_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        // Not reachable: the value was made an object above.
        other => ensure_object(other),
    }
}

fn status(root: &mut Map<String, Value>) -> &mut Map<String, Value> {
    object_or_new(root, "status")
}

/// The objects of the list at `key` (non-objects skipped).
fn list_at<'m>(
    map: &'m mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'m mut Map<String, Value>> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn list_len(map: &Map<String, Value>, key: &str) -> usize {
    map.get(key).and_then(Value::as_array).map_or(0, Vec::len)
}

fn template_defaults(parent: &mut Map<String, Value>, key: &str) {
    if let Some(template) = object_at(parent, key)
        && let Some(spec) = object_at(template, "spec")
    {
        pod_spec_defaults(spec);
    }
}

/// `SetDefaults_PodSpec` and what it cascades to: containers, ports, probes, volumes.
fn pod_spec_defaults(spec: &mut Map<String, Value>) {
    set(spec, "dnsPolicy", json!("ClusterFirst"));
    set(spec, "restartPolicy", json!("Always"));
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set(spec, "securityContext", json!({}));
    set(spec, "schedulerName", json!("default-scheduler"));
    let host_network = spec.get("hostNetwork") == Some(&Value::Bool(true));
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for container in list_at(spec, list) {
            container_defaults(container, host_network);
        }
    }
    for volume in list_at(spec, "volumes") {
        volume_defaults(volume);
    }
}

/// Defaults upstream applies to Pods but not to pod templates.
fn pod_only_defaults(spec: &mut Map<String, Value>) {
    set(spec, "enableServiceLinks", json!(true));
    for list in ["initContainers", "containers"] {
        for container in list_at(spec, list) {
            // Requests default to limits when a limit is given without a request.
            let limits = container
                .get("resources")
                .and_then(|r| r.get("limits"))
                .and_then(Value::as_object)
                .cloned();
            if let Some(limits) = limits {
                let resources = object_or_new(container, "resources");
                let requests = object_or_new(resources, "requests");
                for (k, v) in limits {
                    requests.entry(k).or_insert(v);
                }
            }
        }
    }
}

/// `:latest` or no tag pulls Always; a tag or digest pulls IfNotPresent.
fn image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    match last_segment.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn container_defaults(c: &mut Map<String, Value>, host_network: bool) {
    set(c, "terminationMessagePath", json!("/dev/termination-log"));
    set(c, "terminationMessagePolicy", json!("File"));
    if is_missing(c, "imagePullPolicy")
        && let Some(image) = c.get("image").and_then(Value::as_str)
    {
        let policy = image_pull_policy(image);
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    for port in list_at(c, "ports") {
        set(port, "protocol", json!("TCP"));
        if host_network
            && is_missing(port, "hostPort")
            && let Some(p) = port.get("containerPort").cloned()
        {
            port.insert("hostPort".into(), p);
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = object_at(c, probe) {
            probe_defaults(p);
        }
    }
    for env in list_at(c, "env") {
        if let Some(field_ref) = env
            .get_mut("valueFrom")
            .and_then(Value::as_object_mut)
            .and_then(|v| object_at(v, "fieldRef"))
        {
            set(field_ref, "apiVersion", json!("v1"));
        }
    }
}

fn probe_defaults(p: &mut Map<String, Value>) {
    set(p, "timeoutSeconds", json!(1));
    set(p, "periodSeconds", json!(10));
    set(p, "successThreshold", json!(1));
    set(p, "failureThreshold", json!(3));
    if let Some(http) = object_at(p, "httpGet") {
        set(http, "path", json!("/"));
        set(http, "scheme", json!("HTTP"));
    }
}

const VOLUME_SOURCES: [&str; 30] = [
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn volume_defaults(v: &mut Map<String, Value>) {
    if !VOLUME_SOURCES.iter().any(|s| !is_missing(v, s)) {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = object_at(v, source) {
            set(s, "defaultMode", json!(420));
        }
    }
    if let Some(host_path) = object_at(v, "hostPath") {
        set(host_path, "type", json!(""));
    }
}

fn deployment_defaults(root: &mut Map<String, Value>) {
    let Some(spec) = object_at(root, "spec") else {
        return;
    };
    set(spec, "replicas", json!(1));
    let strategy = object_or_new(spec, "strategy");
    set(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let rolling = object_or_new(strategy, "rollingUpdate");
        set(rolling, "maxUnavailable", json!("25%"));
        set(rolling, "maxSurge", json!("25%"));
    }
    set(spec, "revisionHistoryLimit", json!(10));
    set(spec, "progressDeadlineSeconds", json!(600));
    template_defaults(spec, "template");
}

fn stateful_set_defaults(root: &mut Map<String, Value>) {
    let Some(spec) = object_at(root, "spec") else {
        return;
    };
    set(spec, "podManagementPolicy", json!("OrderedReady"));
    let strategy = object_or_new(spec, "updateStrategy");
    if is_missing(strategy, "type") {
        strategy.insert("type".into(), json!("RollingUpdate"));
        set(strategy, "rollingUpdate", json!({}));
    }
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
        && let Some(rolling) = object_at(strategy, "rollingUpdate")
    {
        set(rolling, "partition", json!(0));
    }
    set(spec, "replicas", json!(1));
    set(spec, "revisionHistoryLimit", json!(10));
    let retention = object_or_new(spec, "persistentVolumeClaimRetentionPolicy");
    set(retention, "whenDeleted", json!("Retain"));
    set(retention, "whenScaled", json!("Retain"));
    for claim in list_at(spec, "volumeClaimTemplates") {
        if let Some(claim_spec) = object_at(claim, "spec") {
            set(claim_spec, "volumeMode", json!("Filesystem"));
        }
        set(object_or_new(claim, "status"), "phase", json!("Pending"));
    }
    template_defaults(spec, "template");
}

fn daemon_set_defaults(root: &mut Map<String, Value>) {
    let Some(spec) = object_at(root, "spec") else {
        return;
    };
    let strategy = object_or_new(spec, "updateStrategy");
    set(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let rolling = object_or_new(strategy, "rollingUpdate");
        set(rolling, "maxUnavailable", json!(1));
        set(rolling, "maxSurge", json!(0));
    }
    set(spec, "revisionHistoryLimit", json!(10));
    template_defaults(spec, "template");
}

fn job_spec_defaults(spec: &mut Map<String, Value>) {
    if is_missing(spec, "completions") && is_missing(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    set(spec, "parallelism", json!(1));
    let backoff = if is_missing(spec, "backoffLimitPerIndex") {
        6
    } else {
        i64::from(i32::MAX)
    };
    set(spec, "backoffLimit", json!(backoff));
    set(spec, "completionMode", json!("NonIndexed"));
    set(spec, "suspend", json!(false));
    let replacement = if is_missing(spec, "podFailurePolicy") {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    set(spec, "podReplacementPolicy", json!(replacement));
    // SetDefaults_Job: an onPodConditions pattern without a status matches `True`.
    if let Some(policy) = object_at(spec, "podFailurePolicy") {
        for rule in list_at(policy, "rules") {
            for pattern in list_at(rule, "onPodConditions") {
                set_if_empty(pattern, "status", json!("True"));
            }
        }
    }
    template_defaults(spec, "template");
}

/// Sets `key` when it is missing or the empty string (Go's zero value for a plain string).
fn set_if_empty(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map
        .get(key)
        .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
    {
        map.insert(key.to_string(), value);
    }
}

/// autoscaling/v2 `SetDefaults_HorizontalPodAutoscalerBehavior`: when `behavior` is given,
/// each direction's unset parts come from upstream's defaults (scale-down keeps its
/// stabilization window unset: the controller's flag decides it).
fn hpa_behavior_defaults(spec: &mut Map<String, Value>) {
    let Some(behavior) = object_at(spec, "behavior") else {
        return;
    };
    for (direction, window, policies) in [
        (
            "scaleUp",
            Some(json!(0)),
            json!([{"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}]),
        ),
        (
            "scaleDown",
            None,
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        ),
    ] {
        let rules = object_or_new(behavior, direction);
        if let Some(window) = window {
            set(rules, "stabilizationWindowSeconds", window);
        }
        set(rules, "selectPolicy", json!("Max"));
        set(rules, "policies", policies);
    }
}

/// admissionregistration/v1 `SetDefaults_MatchResources` (and `_Rule` for its rules), for
/// admission policies' `matchConstraints` and bindings' `matchResources`.
fn match_resources_defaults(resources: &mut Map<String, Value>) {
    set(resources, "matchPolicy", json!("Equivalent"));
    set(resources, "namespaceSelector", json!({}));
    set(resources, "objectSelector", json!({}));
    for key in ["resourceRules", "excludeResourceRules"] {
        for rule in list_at(resources, key) {
            set(rule, "scope", json!("*"));
        }
    }
}

/// admissionregistration/v1 `SetDefaults_{Validating,Mutating}Webhook`, `_Rule` and
/// `_ServiceReference`: what a webhook configuration reads back with on a real cluster.
fn webhook_configuration_defaults(root: &mut Map<String, Value>, mutating: bool) {
    for webhook in list_at(root, "webhooks") {
        set(webhook, "failurePolicy", json!("Fail"));
        set(webhook, "matchPolicy", json!("Equivalent"));
        set(webhook, "namespaceSelector", json!({}));
        set(webhook, "objectSelector", json!({}));
        set(webhook, "timeoutSeconds", json!(10));
        if mutating {
            set(webhook, "reinvocationPolicy", json!("Never"));
        }
        for rule in list_at(webhook, "rules") {
            set(rule, "scope", json!("*"));
        }
        if let Some(service) =
            object_at(webhook, "clientConfig").and_then(|c| object_at(c, "service"))
        {
            set(service, "port", json!(443));
        }
    }
}

fn cron_job_defaults(root: &mut Map<String, Value>) {
    let Some(spec) = object_at(root, "spec") else {
        return;
    };
    set(spec, "concurrencyPolicy", json!("Allow"));
    set(spec, "suspend", json!(false));
    set(spec, "successfulJobsHistoryLimit", json!(3));
    set(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(job_spec) = object_at(spec, "jobTemplate").and_then(|t| object_at(t, "spec")) {
        template_defaults(job_spec, "template");
    }
}

fn replication_controller_defaults(root: &mut Map<String, Value>) {
    let template_labels = root
        .get("spec")
        .and_then(|s| s.pointer("/template/metadata/labels"))
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(spec) = object_at(root, "spec")
            && spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
        {
            spec.insert("selector".into(), labels.clone());
        }
        let metadata = object_or_new(root, "metadata");
        if metadata
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
        {
            metadata.insert("labels".into(), labels);
        }
    }
    if let Some(spec) = object_at(root, "spec") {
        set(spec, "replicas", json!(1));
        template_defaults(spec, "template");
    }
}

fn service_defaults(spec: &mut Map<String, Value>) {
    set(spec, "sessionAffinity", json!("None"));
    set(spec, "type", json!("ClusterIP"));
    let service_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP") {
        let config = object_or_new(spec, "sessionAffinityConfig");
        let client_ip = object_or_new(config, "clientIP");
        set(client_ip, "timeoutSeconds", json!(10800));
    }
    for port in list_at(spec, "ports") {
        set(port, "protocol", json!("TCP"));
        let unset = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if unset && let Some(p) = port.get("port").cloned() {
            port.insert("targetPort".into(), p);
        }
    }
    if service_type == "NodePort" || service_type == "LoadBalancer" {
        set(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if service_type == "LoadBalancer" {
        set(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if service_type != "ExternalName" {
        set(spec, "internalTrafficPolicy", json!("Cluster"));
        let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
        let has_selector = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_some_and(|s| !s.is_empty());
        let policy = if headless && !has_selector {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        set(spec, "ipFamilyPolicy", json!(policy));
        set(spec, "ipFamilies", json!(["IPv4"]));
    }
}

fn namespace_defaults(root: &mut Map<String, Value>) {
    let name = root
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(name) = name {
        let labels = object_or_new(object_or_new(root, "metadata"), "labels");
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    set(
        object_or_new(root, "spec"),
        "finalizers",
        json!(["kubernetes"]),
    );
    set(status(root), "phase", json!("Active"));
}

fn network_policy_defaults(root: &mut Map<String, Value>) {
    let Some(spec) = object_at(root, "spec") else {
        return;
    };
    for rules in ["ingress", "egress"] {
        for rule in list_at(spec, rules) {
            for port in list_at(rule, "ports") {
                set(port, "protocol", json!("TCP"));
            }
        }
    }
    if list_len(spec, "policyTypes") == 0 {
        let mut types = vec![json!("Ingress")];
        if list_len(spec, "egress") > 0 {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(group: &str, version: &str, kind: &str) -> ResourceInfo {
        ResourceInfo {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: String::new(),
            singular: String::new(),
            namespaced: true,
            verbs: vec![],
            short_names: vec![],
            categories: vec![],
            subresources: vec![],
            list_kind: String::new(),
            definition: String::new(),
            custom: None,
        }
    }

    fn defaulted(group: &str, version: &str, kind: &str, mut obj: Value) -> Value {
        apply_defaults(&resource(group, version, kind), &mut obj);
        obj
    }

    #[test]
    fn pod_gets_kubelet_facing_defaults() {
        let pod = defaulted(
            "",
            "v1",
            "Pod",
            json!({"spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}],
             "resources": {"limits": {"cpu": "1"}},
             "readinessProbe": {"httpGet": {"port": 80}}},
            {"name": "b", "image": "nginx:1.27"},
            {"name": "c", "image": "registry:5000/app:latest"},
            {"name": "d", "image": "busybox@sha256:abc"},
            {"name": "e", "image": "localhost:5000/app"}
        ], "volumes": [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "x"}}]}}),
        );
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        let c = &spec["containers"];
        assert_eq!(c[0]["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c[0]["terminationMessagePolicy"], "File");
        let policies: Vec<&str> = (0..5)
            .map(|i| c[i]["imagePullPolicy"].as_str().unwrap())
            .collect();
        assert_eq!(
            policies,
            ["Always", "IfNotPresent", "Always", "IfNotPresent", "Always"]
        );
        assert_eq!(c[0]["ports"][0]["protocol"], "TCP");
        assert_eq!(c[0]["resources"]["requests"], json!({"cpu": "1"}));
        assert_eq!(
            c[0]["readinessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
            "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(spec["volumes"][1]["configMap"]["defaultMode"], 420);
    }

    #[test]
    fn explicit_values_are_kept() {
        let pod = defaulted(
            "",
            "v1",
            "Pod",
            json!({"spec": {"restartPolicy": "Never", "containers": [
            {"name": "a", "image": "nginx", "imagePullPolicy": "Never"}]}}),
        );
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Never");
    }

    #[test]
    fn deployment_defaults_and_template_without_pod_only_fields() {
        let d = defaulted(
            "apps",
            "v1",
            "Deployment",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx"}]}}}}),
        );
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert!(
            d["spec"]["template"]["spec"]
                .get("enableServiceLinks")
                .is_none()
        );
        let recreate = defaulted(
            "apps",
            "v1",
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        );
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn statefulset_daemonset_replicaset() {
        let s = defaulted("apps", "v1", "StatefulSet", json!({"spec": {}}));
        assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            s["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(s["spec"]["replicas"], 1);
        assert_eq!(
            s["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        let ds = defaulted("apps", "v1", "DaemonSet", json!({"spec": {}}));
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        let rs = defaulted("apps", "v1", "ReplicaSet", json!({"spec": {}}));
        assert_eq!(rs["spec"]["replicas"], 1);
    }

    #[test]
    fn job_and_cronjob() {
        let j = defaulted(
            "batch",
            "v1",
            "Job",
            json!({"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": []}}}}),
        );
        assert_eq!(j["spec"]["completions"], 1);
        assert_eq!(j["spec"]["parallelism"], 1);
        assert_eq!(j["spec"]["backoffLimit"], 6);
        assert_eq!(j["spec"]["completionMode"], "NonIndexed");
        assert_eq!(j["spec"]["suspend"], false);
        assert_eq!(j["spec"]["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(j["spec"]["template"]["spec"]["restartPolicy"], "Never");
        let j = defaulted("batch", "v1", "Job", json!({"spec": {"parallelism": 3}}));
        assert!(j["spec"].get("completions").is_none());
        let cj = defaulted(
            "batch",
            "v1",
            "CronJob",
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {}}}}}}),
        );
        assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
        assert_eq!(
            cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
            "ClusterFirst"
        );
    }

    #[test]
    fn service_defaults_match_kubectl_expose() {
        let s = defaulted(
            "",
            "v1",
            "Service",
            json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}}),
        );
        let spec = &s["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["ports"][1]["targetPort"], "https");
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert!(spec.get("externalTrafficPolicy").is_none());
        let lb = defaulted(
            "",
            "v1",
            "Service",
            json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
        );
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        let ext = defaulted(
            "",
            "v1",
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "x.example.com"}}),
        );
        assert!(ext["spec"].get("ipFamilies").is_none());
        assert!(ext["spec"].get("internalTrafficPolicy").is_none());
    }

    #[test]
    fn secret_namespace_and_others() {
        assert_eq!(defaulted("", "v1", "Secret", json!({}))["type"], "Opaque");
        let merged = defaulted(
            "",
            "v1",
            "Secret",
            json!({"data": {"a": "eA==", "b": "eA=="}, "stringData": {"b": "yz"}}),
        );
        assert_eq!(merged["data"], json!({"a": "eA==", "b": "eXo="}));
        assert!(merged.get("stringData").is_none());
        let ns = defaulted(
            "",
            "v1",
            "Namespace",
            json!({"metadata": {"name": "team-a"}}),
        );
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-a"
        );
        let sa = json!({"metadata": {"name": "default"}});
        assert_eq!(defaulted("", "v1", "ServiceAccount", sa.clone()), sa);
        let rb = defaulted(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            json!({"subjects": [
            {"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "x", "namespace": "y"}]}),
        );
        assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        assert!(rb["subjects"][1].get("apiGroup").is_none(), "{rb}");
        let rc = defaulted(
            "",
            "v1",
            "ReplicationController",
            json!({"spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {}}}}),
        );
        assert_eq!(rc["spec"]["selector"], json!({"app": "x"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "x"}));
        assert_eq!(rc["spec"]["replicas"], 1);
    }

    #[test]
    fn non_objects_and_unknown_kinds_are_untouched() {
        let mut v = json!([1]);
        apply_defaults(&resource("", "v1", "Pod"), &mut v);
        assert_eq!(v, json!([1]));
        let w = json!({"spec": {}});
        assert_eq!(defaulted("example.com", "v1", "Widget", w.clone()), w);
    }

    /// Upstream's defaults for kinds every install ships: webhook configurations, CSI
    /// drivers, ingress classes, endpoint slices, HPA behavior, job pod-failure policies.
    #[test]
    fn install_kinds_get_upstream_defaults() {
        let hook = defaulted(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            json!({"webhooks": [{"name": "a.example.com", "sideEffects": "None",
                "clientConfig": {"service": {"name": "s", "namespace": "n"}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]}),
        );
        let w = &hook["webhooks"][0];
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["matchPolicy"], "Equivalent");
        assert_eq!(w["namespaceSelector"], json!({}));
        assert_eq!(w["objectSelector"], json!({}));
        assert_eq!(w["timeoutSeconds"], 10);
        assert_eq!(w["reinvocationPolicy"], "Never");
        assert_eq!(w["rules"][0]["scope"], "*");
        assert_eq!(w["clientConfig"]["service"]["port"], 443);
        let validating = defaulted(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            json!({"webhooks": [{"name": "v.example.com", "failurePolicy": "Ignore"}]}),
        );
        assert_eq!(validating["webhooks"][0]["failurePolicy"], "Ignore");
        assert!(
            validating["webhooks"][0]
                .get("reinvocationPolicy")
                .is_none()
        );

        let policy = defaulted(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
            json!({"spec": {"matchConstraints": {"resourceRules": [{"apiGroups": ["apps"],
                "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"]}]},
                "validations": [{"expression": "true"}]}}),
        );
        assert_eq!(policy["spec"]["failurePolicy"], "Fail");
        let constraints = &policy["spec"]["matchConstraints"];
        assert_eq!(constraints["matchPolicy"], "Equivalent");
        assert_eq!(constraints["namespaceSelector"], json!({}));
        assert_eq!(constraints["objectSelector"], json!({}));
        assert_eq!(constraints["resourceRules"][0]["scope"], "*");
        let binding = defaulted(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
            json!({"spec": {"policyName": "p", "matchResources": {}, "validationActions": ["Deny"]}}),
        );
        assert_eq!(
            binding["spec"]["matchResources"],
            json!({"matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {}})
        );

        let csi = defaulted(
            "storage.k8s.io",
            "v1",
            "CSIDriver",
            json!({"spec": {"attachRequired": false}}),
        );
        assert_eq!(
            csi["spec"],
            json!({"attachRequired": false, "podInfoOnMount": false, "storageCapacity": false,
                "fsGroupPolicy": "ReadWriteOnceWithFSType", "requiresRepublish": false,
                "seLinuxMount": false, "volumeLifecycleModes": ["Persistent"]})
        );
        let class = defaulted(
            "networking.k8s.io",
            "v1",
            "IngressClass",
            json!({"spec": {"controller": "k8s.io/x", "parameters": {"kind": "P", "name": "p"}}}),
        );
        assert_eq!(class["spec"]["parameters"]["scope"], "Cluster");
        let slice = defaulted(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            json!({"addressType": "IPv4", "ports": [{"port": 80}]}),
        );
        assert_eq!(slice["ports"][0]["protocol"], "TCP");

        let hpa = defaulted(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            json!({"spec": {"maxReplicas": 3, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
        );
        assert_eq!(
            hpa["spec"]["behavior"],
            json!({"scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                        {"type": "Percent", "value": 100, "periodSeconds": 15}]}})
        );
        let no_behavior = defaulted(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            json!({"spec": {"maxReplicas": 3}}),
        );
        assert!(no_behavior["spec"].get("behavior").is_none());

        let job = defaulted(
            "batch",
            "v1",
            "Job",
            json!({"spec": {"podFailurePolicy": {"rules": [{"action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget"}]}]}, "template": {"spec": {"containers": []}}}}),
        );
        assert_eq!(
            job["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
            "True"
        );
    }
}
