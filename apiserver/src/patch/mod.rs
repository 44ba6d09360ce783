//! The PATCH engines: JSON patch, JSON merge patch and strategic merge patch, chosen by the
//! request's Content-Type and answering with the status codes the upstream API server uses.

// ApiError carries a full Status (message, subject, causes); it is the crate-wide error type.

pub mod apply;
pub mod json;
pub mod merge;
pub mod strategic;

use beemesh_translator::ApiError;
use beemesh_translator::validation::SchemaLookup;
use serde_json::Value;

pub use strategic::StrategicPatchError;

/// The Content-Type of a PATCH request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

/// Media types a built-in resource accepts for PATCH, in upstream's order.
pub const BUILTIN_PATCH_TYPES: [&str; 4] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// Media types a custom resource accepts (no strategic merge patch: no patch metadata).
pub const CUSTOM_RESOURCE_PATCH_TYPES: [&str; 3] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

fn unsupported(accepted: &[&str]) -> ApiError {
    ApiError::unsupported_media_type(format!(
        "the body of the request was in an unknown format - accepted media types include: {}",
        accepted.join(", ")
    ))
}

impl PatchType {
    /// Parses a Content-Type header (parameters such as `; charset=utf-8` are ignored);
    /// anything else is 415 listing the accepted types, as upstream answers.
    pub fn from_content_type(content_type: &str) -> Result<PatchType, ApiError> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::StrategicMerge),
            "application/apply-patch+yaml" => Ok(PatchType::Apply),
            _ => Err(unsupported(&BUILTIN_PATCH_TYPES)),
        }
    }

    /// The media type this patch type is sent as.
    pub fn media_type(self) -> &'static str {
        match self {
            PatchType::Json => BUILTIN_PATCH_TYPES[0],
            PatchType::Merge => BUILTIN_PATCH_TYPES[1],
            PatchType::StrategicMerge => BUILTIN_PATCH_TYPES[2],
            PatchType::Apply => BUILTIN_PATCH_TYPES[3],
        }
    }
}

/// Applies a PATCH body to the current object and returns the patched object (not yet
/// validated or defaulted). `kind_schema` is the definition schema of the object's kind, or
/// `None` for kinds without one (custom resources), which refuse strategic merge patches.
pub fn apply_patch<S: SchemaLookup + ?Sized>(
    kind_schema: Option<&Value>,
    schemas: &S,
    current: &Value,
    patch_type: PatchType,
    body: &[u8],
) -> Result<Value, ApiError> {
    if patch_type == PatchType::StrategicMerge && kind_schema.is_none() {
        return Err(unsupported(&CUSTOM_RESOURCE_PATCH_TYPES));
    }
    if patch_type == PatchType::Apply {
        return Err(ApiError::unsupported_media_type(
            "server-side apply (application/apply-patch+yaml) is performed by the field manager \
             (patch::apply), not as a patch",
        ));
    }
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    match patch_type {
        PatchType::Json => json::apply_json_patch(current, &patch),
        PatchType::Merge => merge::apply_merge_patch(current, &patch),
        PatchType::StrategicMerge => {
            let schema = kind_schema.ok_or_else(|| unsupported(&CUSTOM_RESOURCE_PATCH_TYPES))?;
            strategic::strategic_merge(current, &patch, schema, schemas).map_err(|e| match e {
                StrategicPatchError::BadRequest(m) => ApiError::bad_request(m),
                StrategicPatchError::Unprocessable(m) => {
                    tracing::debug!(error = %m, "strategic merge patch did not apply");
                    ApiError::Invalid {
                        message: json::REJECTED.to_string(),
                        subject: Default::default(),
                        causes: Vec::new(),
                    }
                }
            })
        }
        PatchType::Apply => Err(unsupported(&BUILTIN_PATCH_TYPES)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beemesh_translator::validation::SchemaMap;
    use serde_json::json;

    /// A slice of the built-in Deployment schema with upstream's patch extensions.
    fn deployment_schemas() -> SchemaMap {
        let r = |name: &str| json!({"allOf": [{"$ref": format!("#/components/schemas/{name}")}], "default": {}});
        SchemaMap::from_components(&json!({
            "io.k8s.api.apps.v1.Deployment": {"type": "object", "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                "metadata": r("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
                "spec": r("io.k8s.api.apps.v1.DeploymentSpec")}},
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {"type": "object", "properties": {
                "name": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                "finalizers": {"type": "array", "items": {"type": "string"},
                    "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"}}},
            "io.k8s.api.apps.v1.DeploymentSpec": {"type": "object", "properties": {
                "replicas": {"type": "integer"},
                "strategy": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}],
                    "x-kubernetes-patch-strategy": "retainKeys"},
                "template": r("io.k8s.api.core.v1.PodTemplateSpec")}},
            "io.k8s.api.apps.v1.DeploymentStrategy": {"type": "object", "properties": {
                "type": {"type": "string"}, "rollingUpdate": {"type": "object"}}},
            "io.k8s.api.core.v1.PodTemplateSpec": {"type": "object", "properties": {
                "metadata": r("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
                "spec": r("io.k8s.api.core.v1.PodSpec")}},
            "io.k8s.api.core.v1.PodSpec": {"type": "object", "properties": {
                "containers": {"type": "array", "items": r("io.k8s.api.core.v1.Container"),
                    "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
                "volumes": {"type": "array", "items": r("io.k8s.api.core.v1.Volume"),
                    "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge,retainKeys"}}},
            "io.k8s.api.core.v1.Volume": {"type": "object", "properties": {
                "name": {"type": "string"}, "emptyDir": {"type": "object"}, "configMap": {"type": "object"}}},
            "io.k8s.api.core.v1.Container": {"type": "object", "properties": {
                "name": {"type": "string"}, "image": {"type": "string"},
                "args": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"},
                "env": {"type": "array", "items": r("io.k8s.api.core.v1.EnvVar"),
                    "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
                "ports": {"type": "array", "items": r("io.k8s.api.core.v1.ContainerPort"),
                    "x-kubernetes-patch-merge-key": "containerPort", "x-kubernetes-patch-strategy": "merge"}}},
            "io.k8s.api.core.v1.EnvVar": {"type": "object", "properties": {
                "name": {"type": "string"}, "value": {"type": "string"}}},
            "io.k8s.api.core.v1.ContainerPort": {"type": "object", "properties": {
                "containerPort": {"type": "integer"}, "protocol": {"type": "string"}}}
        }))
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a"]},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                "template": {"spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.27", "args": ["a", "b"],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                         "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                        {"name": "sidecar", "image": "busybox"}
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}]
                }}
            }
        })
    }

    fn smp(current: &Value, patch: Value) -> Result<Value, ApiError> {
        let schemas = deployment_schemas();
        let schema = schemas.schema("io.k8s.api.apps.v1.Deployment").cloned();
        apply_patch(
            schema.as_ref(),
            &schemas,
            current,
            PatchType::StrategicMerge,
            patch.to_string().as_bytes(),
        )
    }

    #[test]
    fn content_types_are_recognised_with_parameters() {
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json").unwrap(),
            PatchType::Json
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8").unwrap(),
            PatchType::Merge
        );
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json").unwrap(),
            PatchType::StrategicMerge
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml").unwrap(),
            PatchType::Apply
        );
        let err = PatchType::from_content_type("application/json").unwrap_err();
        assert_eq!(err.code(), 415);
        assert_eq!(
            err.to_string(),
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, \
             application/strategic-merge-patch+json, application/apply-patch+yaml"
        );
        for t in [
            PatchType::Json,
            PatchType::Merge,
            PatchType::StrategicMerge,
            PatchType::Apply,
        ] {
            assert_eq!(PatchType::from_content_type(t.media_type()).unwrap(), t);
        }
    }

    #[test]
    fn kubectl_apply_patch_merges_container_by_name_and_keeps_the_other() {
        let out = smp(&deployment(), json!({"metadata": {"annotations": {"x": "y"}},
            "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                "containers": [{"image": "nginx:1.28", "name": "web"}]}}}})).unwrap();
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["name"], "web");
        assert_eq!(containers[0]["image"], "nginx:1.28");
        assert_eq!(
            containers[0]["env"][1]["value"], "2",
            "unpatched fields survive"
        );
        assert_eq!(
            containers[1],
            json!({"name": "sidecar", "image": "busybox"})
        );
        assert_eq!(out["metadata"]["annotations"], json!({"x": "y"}));
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
    }

    #[test]
    fn set_element_order_reorders_containers() {
        let out = smp(
            &deployment(),
            json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]}}}}),
        )
        .unwrap();
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sidecar", "web"]);
    }

    #[test]
    fn new_container_without_order_directive_goes_first_and_deleted_one_is_removed() {
        // Upstream ranks items named by the patch before server-only items unless the live
        // order relates them; a brand-new item therefore lands in front.
        let out = smp(
            &deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "$patch": "delete"}, {"name": "log", "image": "fluentd"}]}}}}),
        )
        .unwrap();
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["log", "web"]);
    }

    #[test]
    fn nested_merge_lists_merge_env_and_ports_by_their_keys() {
        let out = smp(
            &deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}],
             "ports": [{"containerPort": 443}]}]}}}}),
        )
        .unwrap();
        let web = &out["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            web["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "two"}, {"name": "C", "value": "3"}])
        );
        assert_eq!(
            web["ports"],
            json!([{"containerPort": 443}, {"containerPort": 80, "protocol": "TCP"}])
        );
    }

    #[test]
    fn atomic_lists_are_replaced() {
        let out = smp(
            &deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "args": ["c"]}]}}}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["c"])
        );
    }

    #[test]
    fn null_deletes_keys_and_primitive_merge_lists_are_unions() {
        let out = smp(
            &deployment(),
            json!({"metadata": {"labels": {"app": null, "tier": "fe"},
            "finalizers": ["b", "a"]}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"tier": "fe"}));
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
        let out = smp(
            &out,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn retain_keys_clears_rolling_update_when_switching_to_recreate() {
        // What kubectl apply sends when the manifest changes strategy to Recreate.
        let out = smp(
            &deployment(),
            json!({"spec": {"strategy": {
            "$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        // A key set by the patch but missing from $retainKeys is a bad request.
        let err = smp(
            &deployment(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
        )
        .unwrap_err();
        assert_eq!(err.code(), 400);
        assert_eq!(err.to_string(), "invalid patch format of retainKeys");
    }

    #[test]
    fn retain_keys_on_list_items_switches_volume_source() {
        let out = smp(&deployment(), json!({"spec": {"template": {"spec": {"volumes": [
            {"name": "data", "$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}}]}}}})).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "data", "configMap": {"name": "cm"}}])
        );
    }

    #[test]
    fn replace_directive_replaces_a_map_and_a_list() {
        let out = smp(
            &deployment(),
            json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"only": "this"}));
        let out = smp(
            &deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "replace"}, {"name": "solo", "image": "x"}]}}}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "solo", "image": "x"}])
        );
    }

    #[test]
    fn malformed_strategic_patches_are_400() {
        let d = deployment();
        for patch in [
            json!([{"op": "add"}]),
            json!({"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}}),
            json!({"metadata": {"labels": {"$patch": "frobnicate"}}}),
            json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "$patch": "merge"}]}}}}),
        ] {
            let err = smp(&d, patch.clone()).unwrap_err();
            assert_eq!(err.code(), 400, "{patch}: {err}");
        }
    }

    #[test]
    fn list_of_lists_is_422() {
        let current = json!({"metadata": {"finalizers": [["a"]]}});
        let err = smp(&current, json!({"metadata": {"finalizers": [["b"]]}})).unwrap_err();
        assert_eq!(err.code(), 422);
    }

    #[test]
    fn strategic_merge_patch_on_a_custom_resource_is_415() {
        let err = apply_patch(
            None,
            &deployment_schemas(),
            &json!({}),
            PatchType::StrategicMerge,
            b"{}",
        )
        .unwrap_err();
        assert_eq!(err.code(), 415);
        assert!(err.to_string().ends_with(
            "accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        ));
        // Merge and JSON patches work on custom resources.
        let out = apply_patch(
            None,
            &deployment_schemas(),
            &json!({"spec": {"a": 1}}),
            PatchType::Merge,
            br#"{"spec":{"b":2}}"#,
        )
        .unwrap();
        assert_eq!(out, json!({"spec": {"a": 1, "b": 2}}));
    }

    #[test]
    fn apply_patch_type_is_refused_clearly() {
        let err = apply_patch(
            None,
            &deployment_schemas(),
            &json!({}),
            PatchType::Apply,
            b"{}",
        )
        .unwrap_err();
        assert_eq!(err.code(), 415);
        assert!(err.to_string().contains("server-side apply"));
    }

    #[test]
    fn bodies_that_are_not_json_are_400() {
        let schemas = deployment_schemas();
        let schema = schemas.schema("io.k8s.api.apps.v1.Deployment").cloned();
        for t in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            for body in [&b""[..], b"{", b"not json", b"\xff\xfe"] {
                let err =
                    apply_patch(schema.as_ref(), &schemas, &deployment(), t, body).unwrap_err();
                assert_eq!(err.code(), 400, "{t:?} {body:?}");
                assert!(err.to_string().starts_with("invalid JSON patch"));
            }
        }
    }

    #[test]
    fn json_patch_through_the_dispatcher() {
        let schemas = deployment_schemas();
        let body = br#"[{"op":"replace","path":"/spec/replicas","value":4}]"#;
        let out = apply_patch(None, &schemas, &deployment(), PatchType::Json, body).unwrap();
        assert_eq!(out["spec"]["replicas"], 4);
    }
}

#[cfg(test)]
mod builtin_catalog_tests {
    use super::*;
    use beemesh_translator::catalog::Catalog;
    use serde_json::json;

    fn smp(definition: &str, current: &Value, patch: Value) -> Result<Value, ApiError> {
        let catalog = Catalog::builtin();
        apply_patch(
            catalog.schema(definition),
            catalog,
            current,
            PatchType::StrategicMerge,
            patch.to_string().as_bytes(),
        )
    }

    #[test]
    fn kubectl_set_image_and_apply_against_the_real_deployment_schema() {
        let current = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "finalizers": ["a"]},
            "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                "template": {"spec": {
                    "containers": [{"name": "web", "image": "nginx:1.27", "env": [{"name": "A", "value": "1"}]},
                                   {"name": "log", "image": "busybox"}],
                    "tolerations": [{"key": "a", "operator": "Exists"}]}}}});
        let out = smp("io.k8s.api.apps.v1.Deployment", &current, json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "log"}],
            "containers": [{"name": "web", "image": "nginx:1.28", "env": [{"name": "B", "value": "2"}]}],
            "tolerations": [{"key": "b", "operator": "Exists"}]}}}})).unwrap();
        let spec = &out["spec"]["template"]["spec"];
        assert_eq!(spec["containers"][0]["image"], "nginx:1.28");
        assert_eq!(
            spec["containers"][0]["env"].as_array().unwrap().len(),
            2,
            "env merges by name"
        );
        assert_eq!(spec["containers"][1]["name"], "log");
        // tolerations have no patch strategy: replaced.
        assert_eq!(
            spec["tolerations"],
            json!([{"key": "b", "operator": "Exists"}])
        );
        let out = smp("io.k8s.api.apps.v1.Deployment", &current,
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}})).unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let out = smp(
            "io.k8s.api.apps.v1.Deployment",
            &current,
            json!({"metadata": {"finalizers": ["b"]}}),
        )
        .unwrap();
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["b", "a"]),
            "finalizers merge as a set"
        );
    }

    #[test]
    fn service_ports_merge_by_port_number() {
        let current =
            json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
        let out = smp(
            "io.k8s.api.core.v1.Service",
            &current,
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"name": "http", "port": 80, "targetPort": 9090}])
        );
    }
}
