//! Behaviour of the decoding step and metadata rules against the built-in 1.33 catalog.

use super::*;
use crate::catalog::Catalog;
use serde_json::json;

fn resource(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    definition: &str,
) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        verbs: vec![],
        short_names: vec![],
        categories: vec![],
        subresources: vec![],
        list_kind: format!("{kind}List"),
        definition: definition.into(),
        custom: None,
    }
}

fn deployments() -> ResourceInfo {
    resource(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        "io.k8s.api.apps.v1.Deployment",
    )
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "web", "image": "nginx:1.27",
                    "ports": [{"containerPort": 80}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": 0.25}}
                }]}
            }
        }
    })
}

#[test]
fn valid_deployment_passes_every_step() {
    let mut d = deployment();
    let warnings = validate_and_prune(
        &deployments(),
        Catalog::builtin(),
        &mut d,
        FieldValidation::Strict,
    )
    .unwrap();
    assert!(warnings.is_empty());
    validate(&deployments(), &d).unwrap();
    // Quantities given as numbers are stored as strings in canonical form, as upstream
    // serialises them.
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "250m"
    );
}

#[test]
fn unknown_fields_strict_lists_all_with_paths() {
    let mut d = deployment();
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = json!("Always");
    d["spec"]["replicaz"] = json!(3);
    let err = validate_and_prune(
        &deployments(),
        Catalog::builtin(),
        &mut d,
        FieldValidation::Strict,
    )
    .unwrap_err();
    assert_eq!(err.code(), 400);
    assert_eq!(
        err.to_string(),
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: \
         unknown field \"spec.replicaz\", unknown field \"spec.template.spec.containers[0].imagePullPolcy\""
    );
}

#[test]
fn unknown_fields_warn_and_ignore_prune() {
    for (mode, want) in [(FieldValidation::Warn, 1), (FieldValidation::Ignore, 0)] {
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = json!("Always");
        let warnings =
            validate_and_prune(&deployments(), Catalog::builtin(), &mut d, mode).unwrap();
        assert_eq!(warnings.len(), want);
        if want == 1 {
            assert_eq!(
                warnings[0],
                "unknown field \"spec.template.spec.containers[0].imagePullPolcy\""
            );
        }
        assert!(
            d["spec"]["template"]["spec"]["containers"][0]
                .get("imagePullPolcy")
                .is_none()
        );
    }
}

#[test]
fn type_mismatch_is_400_with_go_decoder_wording() {
    let mut d = deployment();
    d["spec"]["replicas"] = json!("3");
    let err = validate_and_prune(
        &deployments(),
        Catalog::builtin(),
        &mut d,
        FieldValidation::Ignore,
    )
    .unwrap_err();
    assert_eq!(err.code(), 400);
    assert_eq!(
        err.to_string(),
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    );
    let mut d = deployment();
    d["spec"]["template"]["spec"]["containers"] = json!({"name": "web"});
    let err = validate_and_prune(
        &deployments(),
        Catalog::builtin(),
        &mut d,
        FieldValidation::Ignore,
    )
    .unwrap_err();
    assert!(err.to_string().ends_with(
        "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type []v1.Container"
    ), "{err}");
    let mut d = deployment();
    d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] =
        json!(3_000_000_000u64);
    let err = validate_and_prune(
        &deployments(),
        Catalog::builtin(),
        &mut d,
        FieldValidation::Ignore,
    )
    .unwrap_err();
    assert!(err.to_string().ends_with(
        "json: cannot unmarshal number 3000000000 into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"
    ), "{err}");
}

#[test]
fn quantity_int_or_string_time_and_bytes_are_checked() {
    let mut d = deployment();
    d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = json!("lots");
    let err = validate_and_prune(
        &deployments(),
        Catalog::builtin(),
        &mut d,
        FieldValidation::Ignore,
    )
    .unwrap_err();
    assert!(err.to_string().ends_with(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    ));
    let mut d = deployment();
    d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = json!(1.5);
    let err = validate_and_prune(
        &deployments(),
        Catalog::builtin(),
        &mut d,
        FieldValidation::Ignore,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("json: cannot unmarshal number 1.5 into Go value of type int32"),
        "{err}"
    );
    let mut d = deployment();
    d["metadata"]["creationTimestamp"] = json!("yesterday");
    let err = validate_and_prune(
        &deployments(),
        Catalog::builtin(),
        &mut d,
        FieldValidation::Ignore,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("parsing time \"yesterday\" as \"2006-01-02T15:04:05Z07:00\""),
        "{err}"
    );

    let secrets = resource(
        "",
        "v1",
        "Secret",
        "secrets",
        true,
        "io.k8s.api.core.v1.Secret",
    );
    let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
                       "data": {"ok": "aGVsbG8=", "bad": "not base64!"}});
    let err = validate_and_prune(
        &secrets,
        Catalog::builtin(),
        &mut s,
        FieldValidation::Strict,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3"
    );
}

#[test]
fn nulls_are_dropped_and_missing_type_meta_filled() {
    let mut d = deployment();
    d.as_object_mut().unwrap().remove("kind");
    d["spec"]["paused"] = Value::Null;
    d["metadata"]["labels"]["x"] = Value::Null;
    validate_and_prune(
        &deployments(),
        Catalog::builtin(),
        &mut d,
        FieldValidation::Strict,
    )
    .unwrap();
    assert_eq!(d["kind"], "Deployment");
    assert!(d["spec"].get("paused").is_none());
    assert_eq!(d["metadata"]["labels"]["x"], "");
}

#[test]
fn objects_without_schema_pass_through() {
    let widgets = resource("example.com", "v1", "Widget", "widgets", true, "");
    let mut w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"anything": 1}});
    assert!(
        validate_and_prune(
            &widgets,
            Catalog::builtin(),
            &mut w,
            FieldValidation::Strict
        )
        .unwrap()
        .is_empty()
    );
    assert_eq!(w["spec"]["anything"], 1);
}

#[test]
fn api_version_mismatch_is_400() {
    let configmaps = resource(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        true,
        "io.k8s.api.core.v1.ConfigMap",
    );
    let cm = json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d"}});
    let err = validate_metadata(&configmaps, &cm).unwrap_err();
    assert_eq!(err.code(), 400);
    assert_eq!(
        err.to_string(),
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    );
}

#[test]
fn bad_name_is_422_with_upstream_message() {
    let configmaps = resource(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        true,
        "io.k8s.api.core.v1.ConfigMap",
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name", "namespace": "default"}});
    let err = validate_metadata(&configmaps, &cm).unwrap_err();
    assert_eq!(err.code(), 422);
    assert_eq!(
        err.to_string(),
        "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    let status = err.status();
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueInvalid"
    );
    assert_eq!(status["details"]["kind"], "ConfigMap");
}

#[test]
fn missing_name_and_namespace_rules() {
    let configmaps = resource(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        true,
        "io.k8s.api.core.v1.ConfigMap",
    );
    let err =
        validate_metadata(&configmaps, &json!({"metadata": {"namespace": "default"}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required"
    );
    let namespaces = resource(
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
        "io.k8s.api.core.v1.Namespace",
    );
    let err = validate_metadata(
        &namespaces,
        &json!({"metadata": {"name": "a.b", "namespace": "x"}}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Namespace \"a.b\" is invalid: [metadata.name: Invalid value: \"a.b\": must not contain dots, metadata.namespace: Forbidden: not allowed on this type]"
    );
    let services = resource(
        "",
        "v1",
        "Service",
        "services",
        true,
        "io.k8s.api.core.v1.Service",
    );
    let err = validate_metadata(
        &services,
        &json!({"metadata": {"name": "1web", "namespace": "default"}}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("a DNS-1035 label must consist"));
    let roles = resource(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        "",
    );
    validate_metadata(
        &roles,
        &json!({"metadata": {"name": "system:controller:x"}}),
    )
    .unwrap();
}

#[test]
fn labels_and_annotations() {
    let configmaps = resource(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        true,
        "io.k8s.api.core.v1.ConfigMap",
    );
    let cm = json!({"metadata": {"name": "c", "namespace": "default",
        "labels": {"app": "-bad-", "ok/x": "y"},
        "annotations": {"UPPER.example.com/Key": "fine", "a/b/c": "x", "big": "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT)}}});
    let err = validate_metadata(&configmaps, &cm).unwrap_err();
    let ApiError::Invalid { causes, .. } = &err else {
        panic!("{err:?}")
    };
    let fields: Vec<(&str, &str)> = causes
        .iter()
        .map(|c| (c.field.as_str(), c.reason.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("metadata.labels", "FieldValueInvalid"),
            ("metadata.annotations", "FieldValueInvalid"),
            ("metadata.annotations", "FieldValueTooLong"),
        ]
    );
    assert!(
        causes[0]
            .message
            .starts_with("Invalid value: \"-bad-\": a valid label must be an empty string")
    );
    assert!(
        causes[1]
            .message
            .starts_with("Invalid value: \"a/b/c\": a qualified name must consist")
    );
}

#[test]
fn generate_name_prefix_is_checked() {
    let pods = resource("", "v1", "Pod", "pods", true, "io.k8s.api.core.v1.Pod");
    validate_metadata(
        &pods,
        &json!({"metadata": {"generateName": "web-", "name": "web-x7k2p", "namespace": "d"}}),
    )
    .unwrap();
    let err = validate_metadata(
        &pods,
        &json!({"metadata": {"generateName": "Web-", "namespace": "d"}}),
    )
    .unwrap_err();
    let ApiError::Invalid { causes, .. } = &err else {
        panic!()
    };
    assert_eq!(causes[0].field, "metadata.generateName");
    assert_eq!(
        causes[1].message,
        "Required value: name or generateName is required"
    );
}

#[test]
fn validate_combines_metadata_and_kind_causes() {
    let mut d = deployment();
    d["metadata"]["name"] = json!("Web");
    d["spec"]["replicas"] = json!(-1);
    let err = validate(&deployments(), &d).unwrap_err();
    assert_eq!(err.code(), 422);
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "Deployment.apps \"Web\" is invalid: [metadata.name: Invalid value: \"Web\""
        ),
        "{msg}"
    );
    assert!(msg.contains("spec.replicas: Invalid value: -1: must be greater than or equal to 0"));
}

#[test]
fn update_may_not_change_name_or_uid() {
    let old = json!({"metadata": {"name": "web", "namespace": "default", "uid": "1"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": deployment()["spec"]["template"].clone()}});
    let mut new = old.clone();
    new["metadata"]["uid"] = json!("2");
    let err = validate_update(&deployments(), &new, &old).unwrap_err();
    assert!(
        err.to_string()
            .contains("metadata.uid: Invalid value: \"2\": field is immutable"),
        "{err}"
    );
}

#[test]
fn field_validation_query_values() {
    assert_eq!(
        FieldValidation::from_query("", "CreateOptions").unwrap(),
        FieldValidation::Warn
    );
    assert_eq!(
        FieldValidation::from_query("Strict", "CreateOptions").unwrap(),
        FieldValidation::Strict
    );
    assert_eq!(
        FieldValidation::from_query("Ignore", "PatchOptions").unwrap(),
        FieldValidation::Ignore
    );
    let err = FieldValidation::from_query("strict", "CreateOptions").unwrap_err();
    assert_eq!(err.code(), 422);
    assert_eq!(
        err.to_string(),
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"strict\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
    );
}

#[test]
fn duplicate_fields_in_the_body_follow_field_validation() {
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"d","name":"b"},"data":{"k":"v"},"bogus":1}"#;
    let configmaps = resource(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        true,
        "io.k8s.api.core.v1.ConfigMap",
    );
    let err = validate_body_and_prune(
        &configmaps,
        Catalog::builtin(),
        body,
        FieldValidation::Strict,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: duplicate field \"metadata.name\", unknown field \"bogus\""
    );
    let (obj, warnings) =
        validate_body_and_prune(&configmaps, Catalog::builtin(), body, FieldValidation::Warn)
            .unwrap();
    assert_eq!(
        warnings,
        [
            "duplicate field \"metadata.name\"",
            "unknown field \"bogus\""
        ]
    );
    assert_eq!(
        obj["metadata"]["name"], "b",
        "the last occurrence wins, as in Go"
    );
    let err = validate_body_and_prune(&configmaps, Catalog::builtin(), b"{", FieldValidation::Warn)
        .unwrap_err();
    assert_eq!(err.code(), 400);
}
