//! Column definitions of each built-in printer, as kube-apiserver 1.33's
//! `pkg/printers/internalversion` declares them. Descriptions are the API field docs
//! (`SwaggerDoc()` upstream), read from k8s-openapi's schemas so they stay verbatim.

use std::collections::HashMap;
use std::sync::LazyLock;

use k8s_openapi::api::{
    apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
    certificates::v1 as certificates, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, flowcontrol::v1 as flowcontrol, networking::v1 as networking,
    rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde_json::{Value, json};

use super::Printer;

/// The description of `field` in `T`'s schema, "" when the field is undocumented.
fn doc<T: JsonSchema>(field: &str) -> String {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
    schema
        .as_value()
        .get("properties")
        .and_then(|p| p.get(field))
        .and_then(|p| p.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn column(name: &str, ty: &str, format: &str, description: String, priority: i32) -> Value {
    json!({
        "name": name,
        "type": ty,
        "format": format,
        "description": description,
        "priority": priority,
    })
}

/// A priority-0 column (always shown).
fn c(name: &str, ty: &str, description: impl Into<String>) -> Value {
    column(name, ty, "", description.into(), 0)
}

/// A priority-1 column (shown by `-o wide`).
fn w(name: &str, ty: &str, description: impl Into<String>) -> Value {
    column(name, ty, "", description.into(), 1)
}

fn name_col() -> Value {
    column("Name", "string", "name", doc::<ObjectMeta>("name"), 0)
}

fn age_col() -> Value {
    c("Age", "string", doc::<ObjectMeta>("creationTimestamp"))
}

fn containers_col() -> Value {
    w(
        "Containers",
        "string",
        "Names of each container in the template.",
    )
}

fn images_col() -> Value {
    w(
        "Images",
        "string",
        "Images referenced by each container in the template.",
    )
}

fn columns_of(printer: Printer) -> Vec<Value> {
    match printer {
        Printer::Default => vec![
            name_col(),
            c("Created At", "date", doc::<ObjectMeta>("creationTimestamp")),
        ],
        Printer::Pod => vec![
            name_col(),
            c(
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            c(
                "Status",
                "string",
                "The aggregate status of the containers in this pod.",
            ),
            c(
                "Restarts",
                "string",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            age_col(),
            w("IP", "string", doc::<core::PodStatus>("podIP")),
            w("Node", "string", doc::<core::PodSpec>("nodeName")),
            w(
                "Nominated Node",
                "string",
                doc::<core::PodStatus>("nominatedNodeName"),
            ),
            w(
                "Readiness Gates",
                "string",
                doc::<core::PodSpec>("readinessGates"),
            ),
        ],
        Printer::PodTemplate => vec![
            name_col(),
            c(
                "Containers",
                "string",
                "Names of each container in the template.",
            ),
            c(
                "Images",
                "string",
                "Images referenced by each container in the template.",
            ),
            c("Pod Labels", "string", "The labels for the pod template."),
        ],
        Printer::PodDisruptionBudget => vec![
            name_col(),
            c(
                "Min Available",
                "string",
                "The minimum number of pods that must be available.",
            ),
            c(
                "Max Unavailable",
                "string",
                "The maximum number of pods that may be unavailable.",
            ),
            c(
                "Allowed Disruptions",
                "integer",
                "Calculated number of pods that may be disrupted at this time.",
            ),
            age_col(),
        ],
        Printer::ReplicationController => vec![
            name_col(),
            c(
                "Desired",
                "integer",
                doc::<core::ReplicationControllerSpec>("replicas"),
            ),
            c(
                "Current",
                "integer",
                doc::<core::ReplicationControllerStatus>("replicas"),
            ),
            c(
                "Ready",
                "integer",
                doc::<core::ReplicationControllerStatus>("readyReplicas"),
            ),
            age_col(),
            containers_col(),
            images_col(),
            w(
                "Selector",
                "string",
                doc::<core::ReplicationControllerSpec>("selector"),
            ),
        ],
        Printer::ReplicaSet => vec![
            name_col(),
            c(
                "Desired",
                "integer",
                doc::<apps::ReplicaSetSpec>("replicas"),
            ),
            c(
                "Current",
                "integer",
                doc::<apps::ReplicaSetStatus>("replicas"),
            ),
            c(
                "Ready",
                "integer",
                doc::<apps::ReplicaSetStatus>("readyReplicas"),
            ),
            age_col(),
            containers_col(),
            images_col(),
            w(
                "Selector",
                "string",
                doc::<apps::ReplicaSetSpec>("selector"),
            ),
        ],
        Printer::DaemonSet => vec![
            name_col(),
            c(
                "Desired",
                "integer",
                doc::<apps::DaemonSetStatus>("desiredNumberScheduled"),
            ),
            c(
                "Current",
                "integer",
                doc::<apps::DaemonSetStatus>("currentNumberScheduled"),
            ),
            c(
                "Ready",
                "integer",
                doc::<apps::DaemonSetStatus>("numberReady"),
            ),
            c(
                "Up-to-date",
                "integer",
                doc::<apps::DaemonSetStatus>("updatedNumberScheduled"),
            ),
            c(
                "Available",
                "integer",
                doc::<apps::DaemonSetStatus>("numberAvailable"),
            ),
            c(
                "Node Selector",
                "string",
                doc::<core::PodSpec>("nodeSelector"),
            ),
            age_col(),
            containers_col(),
            images_col(),
            w("Selector", "string", doc::<apps::DaemonSetSpec>("selector")),
        ],
        Printer::Job => vec![
            name_col(),
            c("Status", "string", "Status of the job."),
            c(
                "Completions",
                "string",
                doc::<batch::JobStatus>("succeeded"),
            ),
            c("Duration", "string", "Time required to complete the job."),
            age_col(),
            containers_col(),
            images_col(),
            w("Selector", "string", doc::<batch::JobSpec>("selector")),
        ],
        Printer::CronJob => vec![
            name_col(),
            c("Schedule", "string", doc::<batch::CronJobSpec>("schedule")),
            c("Timezone", "string", doc::<batch::CronJobSpec>("timeZone")),
            c("Suspend", "boolean", doc::<batch::CronJobSpec>("suspend")),
            c("Active", "integer", doc::<batch::CronJobStatus>("active")),
            c(
                "Last Schedule",
                "string",
                doc::<batch::CronJobStatus>("lastScheduleTime"),
            ),
            age_col(),
            containers_col(),
            images_col(),
            w("Selector", "string", doc::<batch::JobSpec>("selector")),
        ],
        Printer::Service => vec![
            name_col(),
            c("Type", "string", doc::<core::ServiceSpec>("type")),
            c(
                "Cluster-IP",
                "string",
                doc::<core::ServiceSpec>("clusterIP"),
            ),
            c(
                "External-IP",
                "string",
                doc::<core::ServiceSpec>("externalIPs"),
            ),
            c("Port(s)", "string", doc::<core::ServiceSpec>("ports")),
            age_col(),
            w("Selector", "string", doc::<core::ServiceSpec>("selector")),
        ],
        Printer::Ingress => vec![
            name_col(),
            c(
                "Class",
                "string",
                "The name of the IngressClass resource that should be used for additional configuration",
            ),
            c(
                "Hosts",
                "string",
                "Hosts that incoming requests are matched against before the ingress rule",
            ),
            c(
                "Address",
                "string",
                "Address is a list containing ingress points for the load-balancer",
            ),
            c("Ports", "string", "Ports of TLS configurations that open"),
            age_col(),
        ],
        Printer::IngressClass => vec![
            name_col(),
            c(
                "Controller",
                "string",
                "Controller that is responsible for handling this class",
            ),
            c(
                "Parameters",
                "string",
                "A reference to a resource with additional parameters",
            ),
            age_col(),
        ],
        Printer::StatefulSet => vec![
            name_col(),
            c("Ready", "string", "Number of the pod with ready state"),
            age_col(),
            containers_col(),
            images_col(),
        ],
        Printer::Endpoints => vec![
            name_col(),
            c("Endpoints", "string", doc::<core::Endpoints>("subsets")),
            age_col(),
        ],
        Printer::Node => vec![
            name_col(),
            c("Status", "string", "The status of the node"),
            c("Roles", "string", "The roles of the node"),
            age_col(),
            c(
                "Version",
                "string",
                doc::<core::NodeSystemInfo>("kubeletVersion"),
            ),
            w(
                "Internal-IP",
                "string",
                doc::<core::NodeStatus>("addresses"),
            ),
            w(
                "External-IP",
                "string",
                doc::<core::NodeStatus>("addresses"),
            ),
            w("OS-Image", "string", doc::<core::NodeSystemInfo>("osImage")),
            w(
                "Kernel-Version",
                "string",
                doc::<core::NodeSystemInfo>("kernelVersion"),
            ),
            w(
                "Container-Runtime",
                "string",
                doc::<core::NodeSystemInfo>("containerRuntimeVersion"),
            ),
        ],
        Printer::Event => vec![
            c("Last Seen", "string", doc::<core::Event>("lastTimestamp")),
            c("Type", "string", doc::<core::Event>("type")),
            c("Reason", "string", doc::<core::Event>("reason")),
            c("Object", "string", doc::<core::Event>("involvedObject")),
            w(
                "Subobject",
                "string",
                doc::<core::ObjectReference>("fieldPath"),
            ),
            w("Source", "string", doc::<core::Event>("source")),
            c("Message", "string", doc::<core::Event>("message")),
            w("First Seen", "string", doc::<core::Event>("firstTimestamp")),
            w("Count", "string", doc::<core::Event>("count")),
            column("Name", "string", "name", doc::<ObjectMeta>("name"), 1),
        ],
        Printer::Namespace => vec![
            name_col(),
            c("Status", "string", "The status of the namespace"),
            age_col(),
        ],
        Printer::Secret => vec![
            name_col(),
            c("Type", "string", doc::<core::Secret>("type")),
            c("Data", "string", doc::<core::Secret>("data")),
            age_col(),
        ],
        Printer::ServiceAccount => vec![
            name_col(),
            c("Secrets", "string", doc::<core::ServiceAccount>("secrets")),
            age_col(),
        ],
        Printer::PersistentVolume => vec![
            name_col(),
            c(
                "Capacity",
                "string",
                doc::<core::PersistentVolumeSpec>("capacity"),
            ),
            c(
                "Access Modes",
                "string",
                doc::<core::PersistentVolumeSpec>("accessModes"),
            ),
            c(
                "Reclaim Policy",
                "string",
                doc::<core::PersistentVolumeSpec>("persistentVolumeReclaimPolicy"),
            ),
            c(
                "Status",
                "string",
                doc::<core::PersistentVolumeStatus>("phase"),
            ),
            c(
                "Claim",
                "string",
                doc::<core::PersistentVolumeSpec>("claimRef"),
            ),
            c("StorageClass", "string", "StorageClass of the pv"),
            c(
                "VolumeAttributesClass",
                "string",
                "VolumeAttributesClass of the pv",
            ),
            c(
                "Reason",
                "string",
                doc::<core::PersistentVolumeStatus>("reason"),
            ),
            age_col(),
            w(
                "VolumeMode",
                "string",
                doc::<core::PersistentVolumeSpec>("volumeMode"),
            ),
        ],
        Printer::PersistentVolumeClaim => vec![
            name_col(),
            c(
                "Status",
                "string",
                doc::<core::PersistentVolumeClaimStatus>("phase"),
            ),
            c(
                "Volume",
                "string",
                doc::<core::PersistentVolumeClaimSpec>("volumeName"),
            ),
            c(
                "Capacity",
                "string",
                doc::<core::PersistentVolumeClaimStatus>("capacity"),
            ),
            c(
                "Access Modes",
                "string",
                doc::<core::PersistentVolumeClaimStatus>("accessModes"),
            ),
            c("StorageClass", "string", "StorageClass of the pvc"),
            c(
                "VolumeAttributesClass",
                "string",
                "VolumeAttributesClass of the pvc",
            ),
            age_col(),
            w(
                "VolumeMode",
                "string",
                doc::<core::PersistentVolumeClaimSpec>("volumeMode"),
            ),
        ],
        Printer::ComponentStatus => vec![
            name_col(),
            c("Status", "string", "Status of the component conditions"),
            c("Message", "string", "Message of the component conditions"),
            c("Error", "string", "Error of the component conditions"),
        ],
        Printer::Deployment => vec![
            name_col(),
            c("Ready", "string", "Number of the pod with ready state"),
            c(
                "Up-to-date",
                "string",
                doc::<apps::DeploymentStatus>("updatedReplicas"),
            ),
            c(
                "Available",
                "string",
                doc::<apps::DeploymentStatus>("availableReplicas"),
            ),
            age_col(),
            containers_col(),
            images_col(),
            w(
                "Selector",
                "string",
                doc::<apps::DeploymentSpec>("selector"),
            ),
        ],
        Printer::HorizontalPodAutoscaler => vec![
            name_col(),
            c(
                "Reference",
                "string",
                doc::<autoscaling::HorizontalPodAutoscalerSpec>("scaleTargetRef"),
            ),
            c(
                "Targets",
                "string",
                doc::<autoscaling::HorizontalPodAutoscalerSpec>("metrics"),
            ),
            c(
                "MinPods",
                "string",
                doc::<autoscaling::HorizontalPodAutoscalerSpec>("minReplicas"),
            ),
            c(
                "MaxPods",
                "string",
                doc::<autoscaling::HorizontalPodAutoscalerSpec>("maxReplicas"),
            ),
            c(
                "Replicas",
                "string",
                doc::<autoscaling::HorizontalPodAutoscalerStatus>("currentReplicas"),
            ),
            age_col(),
        ],
        Printer::ConfigMap => vec![
            name_col(),
            c("Data", "string", doc::<core::ConfigMap>("data")),
            age_col(),
        ],
        Printer::NetworkPolicy => vec![
            name_col(),
            c(
                "Pod-Selector",
                "string",
                doc::<networking::NetworkPolicySpec>("podSelector"),
            ),
            age_col(),
        ],
        Printer::RoleBinding => vec![
            name_col(),
            c("Role", "string", doc::<rbac::RoleBinding>("roleRef")),
            age_col(),
            w("Users", "string", "Users in the roleBinding"),
            w("Groups", "string", "Groups in the roleBinding"),
            w(
                "ServiceAccounts",
                "string",
                "ServiceAccounts in the roleBinding",
            ),
        ],
        Printer::ClusterRoleBinding => vec![
            name_col(),
            c("Role", "string", doc::<rbac::ClusterRoleBinding>("roleRef")),
            age_col(),
            w("Users", "string", "Users in the clusterRoleBinding"),
            w("Groups", "string", "Groups in the clusterRoleBinding"),
            w(
                "ServiceAccounts",
                "string",
                "ServiceAccounts in the clusterRoleBinding",
            ),
        ],
        Printer::CertificateSigningRequest => vec![
            name_col(),
            age_col(),
            c(
                "SignerName",
                "string",
                doc::<certificates::CertificateSigningRequestSpec>("signerName"),
            ),
            c(
                "Requestor",
                "string",
                doc::<certificates::CertificateSigningRequestSpec>("request"),
            ),
            c(
                "RequestedDuration",
                "string",
                doc::<certificates::CertificateSigningRequestSpec>("expirationSeconds"),
            ),
            c(
                "Condition",
                "string",
                doc::<certificates::CertificateSigningRequestStatus>("conditions"),
            ),
        ],
        Printer::Lease => vec![
            name_col(),
            c(
                "Holder",
                "string",
                doc::<coordination::LeaseSpec>("holderIdentity"),
            ),
            age_col(),
        ],
        Printer::StorageClass => vec![
            name_col(),
            c(
                "Provisioner",
                "string",
                doc::<storage::StorageClass>("provisioner"),
            ),
            c(
                "ReclaimPolicy",
                "string",
                doc::<storage::StorageClass>("reclaimPolicy"),
            ),
            c(
                "VolumeBindingMode",
                "string",
                doc::<storage::StorageClass>("volumeBindingMode"),
            ),
            c(
                "AllowVolumeExpansion",
                "string",
                doc::<storage::StorageClass>("allowVolumeExpansion"),
            ),
            age_col(),
        ],
        Printer::ControllerRevision => vec![
            name_col(),
            c("Controller", "string", "Controller of the object"),
            c(
                "Revision",
                "string",
                doc::<apps::ControllerRevision>("revision"),
            ),
            age_col(),
        ],
        Printer::ResourceQuota => vec![
            name_col(),
            c(
                "Request",
                "string",
                "Request represents a minimum amount of cpu/memory that a container may consume.",
            ),
            c(
                "Limit",
                "string",
                "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
            ),
            age_col(),
        ],
        Printer::PriorityClass => vec![
            name_col(),
            c(
                "Value",
                "integer",
                doc::<scheduling::PriorityClass>("value"),
            ),
            c(
                "Global-Default",
                "boolean",
                doc::<scheduling::PriorityClass>("globalDefault"),
            ),
            age_col(),
            w(
                "PreemptionPolicy",
                "string",
                doc::<scheduling::PriorityClass>("preemptionPolicy"),
            ),
        ],
        Printer::RuntimeClass => vec![
            name_col(),
            // Upstream looks "handler" up in ObjectMeta's docs, which has no such field.
            c("Handler", "string", ""),
            age_col(),
        ],
        Printer::VolumeAttachment => vec![
            name_col(),
            column(
                "Attacher",
                "string",
                "name",
                doc::<storage::VolumeAttachmentSpec>("attacher"),
                0,
            ),
            c(
                "PV",
                "string",
                doc::<storage::VolumeAttachmentSource>("persistentVolumeName"),
            ),
            c(
                "Node",
                "string",
                doc::<storage::VolumeAttachmentSpec>("nodeName"),
            ),
            c(
                "Attached",
                "boolean",
                doc::<storage::VolumeAttachmentStatus>("attached"),
            ),
            age_col(),
        ],
        Printer::EndpointSlice => vec![
            name_col(),
            c(
                "AddressType",
                "string",
                doc::<discovery::EndpointSlice>("addressType"),
            ),
            c("Ports", "string", doc::<discovery::EndpointSlice>("ports")),
            c(
                "Endpoints",
                "string",
                doc::<discovery::EndpointSlice>("endpoints"),
            ),
            age_col(),
        ],
        Printer::CsiNode => vec![
            name_col(),
            c(
                "Drivers",
                "integer",
                "Drivers indicates the number of CSI drivers registered on the node",
            ),
            age_col(),
        ],
        Printer::CsiDriver => vec![
            name_col(),
            c(
                "AttachRequired",
                "boolean",
                doc::<storage::CSIDriverSpec>("attachRequired"),
            ),
            c(
                "PodInfoOnMount",
                "boolean",
                doc::<storage::CSIDriverSpec>("podInfoOnMount"),
            ),
            c(
                "StorageCapacity",
                "boolean",
                doc::<storage::CSIDriverSpec>("storageCapacity"),
            ),
            c(
                "TokenRequests",
                "string",
                doc::<storage::CSIDriverSpec>("tokenRequests"),
            ),
            c(
                "RequiresRepublish",
                "boolean",
                doc::<storage::CSIDriverSpec>("requiresRepublish"),
            ),
            c(
                "Modes",
                "string",
                doc::<storage::CSIDriverSpec>("volumeLifecycleModes"),
            ),
            age_col(),
        ],
        Printer::CsiStorageCapacity => vec![
            name_col(),
            c(
                "StorageClassName",
                "string",
                doc::<storage::CSIStorageCapacity>("storageClassName"),
            ),
            c(
                "Capacity",
                "string",
                doc::<storage::CSIStorageCapacity>("capacity"),
            ),
        ],
        Printer::WebhookConfiguration => vec![
            name_col(),
            c(
                "Webhooks",
                "integer",
                "Webhooks indicates the number of webhooks registered in this configuration",
            ),
            age_col(),
        ],
        Printer::ValidatingAdmissionPolicy => vec![
            name_col(),
            c(
                "Validations",
                "integer",
                "Validations indicates the number of validation rules defined in this configuration",
            ),
            c(
                "ParamKind",
                "string",
                "ParamKind specifies the kind of resources used to parameterize this policy",
            ),
            age_col(),
        ],
        Printer::ValidatingAdmissionPolicyBinding => vec![
            name_col(),
            c(
                "PolicyName",
                "string",
                "PolicyName indicates the policy definition which the policy binding binded to",
            ),
            c(
                "ParamRef",
                "string",
                "ParamRef indicates the param resource which sets the configration param",
            ),
            age_col(),
        ],
        Printer::FlowSchema => vec![
            name_col(),
            c(
                "PriorityLevel",
                "string",
                doc::<flowcontrol::PriorityLevelConfigurationReference>("name"),
            ),
            c(
                "MatchingPrecedence",
                "string",
                doc::<flowcontrol::FlowSchemaSpec>("matchingPrecedence"),
            ),
            c(
                "DistinguisherMethod",
                "string",
                doc::<flowcontrol::FlowSchemaSpec>("distinguisherMethod"),
            ),
            age_col(),
            c(
                "MissingPL",
                "string",
                "references a broken or non-existent PriorityLevelConfiguration",
            ),
        ],
        Printer::ServiceCidr => vec![
            name_col(),
            c(
                "CIDRs",
                "string",
                doc::<networking::ServiceCIDRSpec>("cidrs"),
            ),
            age_col(),
        ],
        // Upstream declares two columns but prints three cells (name, parent, age).
        Printer::IpAddress => vec![
            name_col(),
            c(
                "ParentRef",
                "string",
                doc::<networking::IPAddressSpec>("parentRef"),
            ),
        ],
        Printer::ApiService => vec![
            name_col(),
            c(
                "Service",
                "string",
                "The reference to the service that hosts this API endpoint.",
            ),
            c("Available", "string", "Whether this service is available."),
            age_col(),
        ],
        Printer::PriorityLevelConfiguration => vec![
            name_col(),
            c(
                "Type",
                "string",
                doc::<flowcontrol::PriorityLevelConfigurationSpec>("type"),
            ),
            c(
                "NominalConcurrencyShares",
                "string",
                doc::<flowcontrol::LimitedPriorityLevelConfiguration>("nominalConcurrencyShares"),
            ),
            c(
                "Queues",
                "string",
                doc::<flowcontrol::QueuingConfiguration>("queues"),
            ),
            c(
                "HandSize",
                "string",
                doc::<flowcontrol::QueuingConfiguration>("handSize"),
            ),
            c(
                "QueueLengthLimit",
                "string",
                doc::<flowcontrol::QueuingConfiguration>("queueLengthLimit"),
            ),
            age_col(),
        ],
    }
}

/// Every printer's columns, computed once (schema generation is not free).
static COLUMNS: LazyLock<HashMap<Printer, Vec<Value>>> =
    LazyLock::new(|| Printer::ALL.iter().map(|p| (*p, columns_of(*p))).collect());

/// The column definitions of a printer.
pub(super) fn columns(printer: Printer) -> Vec<Value> {
    COLUMNS
        .get(&printer)
        .cloned()
        .unwrap_or_else(|| columns_of(printer))
}
