//! `meta.k8s.io/v1` Table output (`kubectl get` asks for it), with exactly the columns and cell
//! logic of kube-apiserver 1.33's built-in printers; every other built-in resource gets
//! upstream's default `Name` / `Created At` table, and custom resources their CRD's
//! `additionalPrinterColumns` ([`custom_table`]).

mod cells;
mod columns;
mod custom;
mod jsonpath;

pub use custom::{PrinterColumn, custom_column_definitions, custom_row_cells, custom_table};
pub use jsonpath::JsonPath;

use beemesh_translator::ResourceInfo;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};

/// How much of each object a row carries (`includeObject`); upstream defaults to Metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

/// Which upstream printer renders a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Printer {
    Default,
    Pod,
    PodTemplate,
    PodDisruptionBudget,
    ReplicationController,
    ReplicaSet,
    DaemonSet,
    Job,
    CronJob,
    Service,
    Ingress,
    IngressClass,
    StatefulSet,
    Endpoints,
    Node,
    Event,
    Namespace,
    Secret,
    ServiceAccount,
    PersistentVolume,
    PersistentVolumeClaim,
    ComponentStatus,
    Deployment,
    HorizontalPodAutoscaler,
    ConfigMap,
    NetworkPolicy,
    RoleBinding,
    ClusterRoleBinding,
    CertificateSigningRequest,
    Lease,
    StorageClass,
    ControllerRevision,
    ResourceQuota,
    PriorityClass,
    RuntimeClass,
    VolumeAttachment,
    EndpointSlice,
    CsiNode,
    CsiDriver,
    CsiStorageCapacity,
    WebhookConfiguration,
    ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
    FlowSchema,
    PriorityLevelConfiguration,
    ServiceCidr,
    IpAddress,
    ApiService,
}

impl Printer {
    const ALL: &'static [Printer] = &[
        Printer::Default,
        Printer::Pod,
        Printer::PodTemplate,
        Printer::PodDisruptionBudget,
        Printer::ReplicationController,
        Printer::ReplicaSet,
        Printer::DaemonSet,
        Printer::Job,
        Printer::CronJob,
        Printer::Service,
        Printer::Ingress,
        Printer::IngressClass,
        Printer::StatefulSet,
        Printer::Endpoints,
        Printer::Node,
        Printer::Event,
        Printer::Namespace,
        Printer::Secret,
        Printer::ServiceAccount,
        Printer::PersistentVolume,
        Printer::PersistentVolumeClaim,
        Printer::ComponentStatus,
        Printer::Deployment,
        Printer::HorizontalPodAutoscaler,
        Printer::ConfigMap,
        Printer::NetworkPolicy,
        Printer::RoleBinding,
        Printer::ClusterRoleBinding,
        Printer::CertificateSigningRequest,
        Printer::Lease,
        Printer::StorageClass,
        Printer::ControllerRevision,
        Printer::ResourceQuota,
        Printer::PriorityClass,
        Printer::RuntimeClass,
        Printer::VolumeAttachment,
        Printer::EndpointSlice,
        Printer::CsiNode,
        Printer::CsiDriver,
        Printer::CsiStorageCapacity,
        Printer::WebhookConfiguration,
        Printer::ValidatingAdmissionPolicy,
        Printer::ValidatingAdmissionPolicyBinding,
        Printer::FlowSchema,
        Printer::PriorityLevelConfiguration,
        Printer::ServiceCidr,
        Printer::IpAddress,
        Printer::ApiService,
    ];

    /// The printer upstream registers for a resource, by group and plural (any version).
    fn of(res: &ResourceInfo) -> Printer {
        match (res.group.as_str(), res.plural.as_str()) {
            ("", "pods") => Printer::Pod,
            ("", "podtemplates") => Printer::PodTemplate,
            ("", "replicationcontrollers") => Printer::ReplicationController,
            ("", "services") => Printer::Service,
            ("", "endpoints") => Printer::Endpoints,
            ("", "nodes") => Printer::Node,
            ("", "events") | ("events.k8s.io", "events") => Printer::Event,
            ("", "namespaces") => Printer::Namespace,
            ("", "secrets") => Printer::Secret,
            ("", "serviceaccounts") => Printer::ServiceAccount,
            ("", "persistentvolumes") => Printer::PersistentVolume,
            ("", "persistentvolumeclaims") => Printer::PersistentVolumeClaim,
            ("", "componentstatuses") => Printer::ComponentStatus,
            ("", "configmaps") => Printer::ConfigMap,
            ("", "resourcequotas") => Printer::ResourceQuota,
            ("apps", "replicasets") => Printer::ReplicaSet,
            ("apps", "daemonsets") => Printer::DaemonSet,
            ("apps", "statefulsets") => Printer::StatefulSet,
            ("apps", "deployments") => Printer::Deployment,
            ("apps", "controllerrevisions") => Printer::ControllerRevision,
            ("batch", "jobs") => Printer::Job,
            ("batch", "cronjobs") => Printer::CronJob,
            ("policy", "poddisruptionbudgets") => Printer::PodDisruptionBudget,
            ("autoscaling", "horizontalpodautoscalers") => Printer::HorizontalPodAutoscaler,
            ("networking.k8s.io", "ingresses") => Printer::Ingress,
            ("networking.k8s.io", "ingressclasses") => Printer::IngressClass,
            ("networking.k8s.io", "networkpolicies") => Printer::NetworkPolicy,
            ("networking.k8s.io", "servicecidrs") => Printer::ServiceCidr,
            ("networking.k8s.io", "ipaddresses") => Printer::IpAddress,
            ("rbac.authorization.k8s.io", "rolebindings") => Printer::RoleBinding,
            ("rbac.authorization.k8s.io", "clusterrolebindings") => Printer::ClusterRoleBinding,
            ("certificates.k8s.io", "certificatesigningrequests") => {
                Printer::CertificateSigningRequest
            }
            ("coordination.k8s.io", "leases") => Printer::Lease,
            ("storage.k8s.io", "storageclasses") => Printer::StorageClass,
            ("storage.k8s.io", "volumeattachments") => Printer::VolumeAttachment,
            ("storage.k8s.io", "csinodes") => Printer::CsiNode,
            ("storage.k8s.io", "csidrivers") => Printer::CsiDriver,
            ("storage.k8s.io", "csistoragecapacities") => Printer::CsiStorageCapacity,
            ("scheduling.k8s.io", "priorityclasses") => Printer::PriorityClass,
            ("node.k8s.io", "runtimeclasses") => Printer::RuntimeClass,
            ("discovery.k8s.io", "endpointslices") => Printer::EndpointSlice,
            ("admissionregistration.k8s.io", "mutatingwebhookconfigurations")
            | ("admissionregistration.k8s.io", "validatingwebhookconfigurations") => {
                Printer::WebhookConfiguration
            }
            ("admissionregistration.k8s.io", "validatingadmissionpolicies") => {
                Printer::ValidatingAdmissionPolicy
            }
            ("admissionregistration.k8s.io", "validatingadmissionpolicybindings") => {
                Printer::ValidatingAdmissionPolicyBinding
            }
            ("flowcontrol.apiserver.k8s.io", "flowschemas") => Printer::FlowSchema,
            ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations") => {
                Printer::PriorityLevelConfiguration
            }
            ("apiregistration.k8s.io", "apiservices") => Printer::ApiService,
            _ => Printer::Default,
        }
    }
}

/// The `columnDefinitions` a 1.33 kube-apiserver returns for this resource (priority 1 are
/// the columns `kubectl get -o wide` adds).
pub fn column_definitions(res: &ResourceInfo) -> Vec<Value> {
    columns::columns(Printer::of(res))
}

/// One row's cells for an object of this resource, ages measured against `now`. Always the
/// wide set: the server prints wide and kubectl drops priority-1 cells itself.
pub fn row_cells(res: &ResourceInfo, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let printer = Printer::of(res);
    if printer == Printer::Event && res.group == "events.k8s.io" {
        return cells::cells(printer, &cells::core_event_view(obj), now);
    }
    cells::cells(printer, obj, now)
}

/// Row conditions upstream attaches (only pods, `Completed` once terminal).
pub fn row_conditions(res: &ResourceInfo, obj: &Value) -> Option<Value> {
    match Printer::of(res) {
        Printer::Pod => cells::pod_conditions(obj),
        _ => None,
    }
}

/// The object a row carries: PartialObjectMetadata, the object itself, or nothing (null).
fn row_object(res: &ResourceInfo, obj: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
        IncludeObject::Object => {
            let mut full = obj.clone();
            if let Some(m) = full.as_object_mut() {
                m.entry("kind").or_insert_with(|| json!(res.kind));
                m.entry("apiVersion")
                    .or_insert_with(|| json!(res.api_version()));
            }
            full
        }
    }
}

/// Flow schemas are listed in matching precedence order, then by name (upstream sorts them).
fn flow_schema_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    let precedence = |v: &Value| v["spec"]["matchingPrecedence"].as_i64().unwrap_or(0);
    let name = |v: &Value| v["metadata"]["name"].as_str().unwrap_or("").to_string();
    precedence(a)
        .cmp(&precedence(b))
        .then_with(|| name(a).cmp(&name(b)))
}

/// Assembles a `meta.k8s.io/v1` Table for a list page (or a single object / watch event):
/// columns, one row per object with its cells, conditions and object, and the list metadata.
pub fn table(
    res: &ResourceInfo,
    objects: &[Value],
    include_object: IncludeObject,
    resource_version: &str,
    continue_token: Option<&str>,
    remaining: Option<i64>,
    now: DateTime<Utc>,
) -> Value {
    if let Some(custom) = &res.custom {
        let columns = custom_columns(&custom.printer_columns);
        return custom_table(
            res,
            &columns,
            objects,
            include_object,
            resource_version,
            continue_token,
            remaining,
            now,
        );
    }
    let printer = Printer::of(res);
    let mut ordered: Vec<&Value> = objects.iter().collect();
    if printer == Printer::FlowSchema {
        ordered.sort_by(|a, b| flow_schema_order(a, b));
    }
    let rows: Vec<Value> = ordered
        .into_iter()
        .map(|obj| {
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(row_cells(res, obj, now)));
            if let Some(conditions) = row_conditions(res, obj) {
                row.insert("conditions".into(), conditions);
            }
            row.insert("object".into(), row_object(res, obj, include_object));
            Value::Object(row)
        })
        .collect();
    // The default convertor appends to a nil slice: an empty list has `rows: null`.
    let rows = if rows.is_empty() && printer == Printer::Default {
        Value::Null
    } else {
        Value::Array(rows)
    };
    assemble(
        list_metadata(resource_version, continue_token, remaining),
        column_definitions(res),
        rows,
    )
}

/// A CRD version's printer columns. CRD validation refuses paths upstream cannot parse; one
/// that slips through is left out (logged) rather than failing every list of the resource.
fn custom_columns(declared: &[Value]) -> Vec<PrinterColumn> {
    match PrinterColumn::from_declared(declared) {
        Ok(columns) => columns,
        Err(e) => {
            tracing::warn!(error = %e, "printer column left out");
            declared
                .iter()
                .filter_map(|c| PrinterColumn::from_declared(std::slice::from_ref(c)).ok())
                .flatten()
                .collect()
        }
    }
}

/// A Table's ListMeta (`resourceVersion`, `continue`, `remainingItemCount`, all omitempty).
fn list_metadata(
    resource_version: &str,
    continue_token: Option<&str>,
    remaining: Option<i64>,
) -> Map<String, Value> {
    let mut metadata = Map::new();
    if !resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), json!(resource_version));
    }
    if let Some(token) = continue_token.filter(|t| !t.is_empty()) {
        metadata.insert("continue".into(), json!(token));
    }
    if let Some(count) = remaining {
        metadata.insert("remainingItemCount".into(), json!(count));
    }
    metadata
}

fn assemble(metadata: Map<String, Value>, columns: Vec<Value>, rows: Value) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// Rewrites a Table (and the PartialObjectMetadata in its rows) as `meta.k8s.io/v1beta1`, for
/// clients that asked for the beta Table.
pub fn to_v1beta1(mut table: Value) -> Value {
    table["apiVersion"] = json!("meta.k8s.io/v1beta1");
    if let Some(rows) = table["rows"].as_array_mut() {
        for row in rows {
            if row["object"]["kind"] == "PartialObjectMetadata" {
                row["object"]["apiVersion"] = json!("meta.k8s.io/v1beta1");
            }
        }
    }
    table
}

/// `duration.HumanDuration`: `5s`, `3m2s`, `10m`, `2d3h`, `4y` ... with 2–3 significant figures;
/// a little negative skew reads as `0s`, more as `<invalid>`.
pub fn human_duration(d: TimeDelta) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests;
