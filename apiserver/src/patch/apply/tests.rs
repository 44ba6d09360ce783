//! The ownership engine against the built-in Deployment schema and a schemaless kind.

use beemesh_translator::catalog::Catalog;
use serde_json::{Value, json};

use super::fieldpath::path_string;
use super::managers::{Managed, Operation, Scope, Who};
use super::typed::Typed;

const NOW: &str = "2026-11-29T15:00:00Z";

fn typed() -> Typed<'static> {
    let catalog = Catalog::builtin();
    Typed::new(catalog, catalog.schema("io.k8s.api.apps.v1.Deployment"))
}

fn who(manager: &str, operation: Operation) -> Who {
    Who {
        manager: manager.into(),
        operation,
        api_version: "apps/v1".into(),
        subresource: String::new(),
    }
}

fn deployment(replicas: i64, containers: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers}}}})
}

fn fields_v1(managed: &Managed, manager: &str) -> Value {
    managed
        .entries
        .iter()
        .find(|e| e.manager == manager)
        .map(|e| e.set.to_fields_v1())
        .unwrap_or(Value::Null)
}

#[test]
fn field_set_uses_list_map_keys_atomic_selector_and_dot_members() {
    let t = typed();
    let d = deployment(
        1,
        json!([{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]),
    );
    let fv = t.field_set(&d).to_fields_v1();
    assert_eq!(
        fv["f:spec"]["f:selector"],
        json!({}),
        "LabelSelector is an atomic map"
    );
    let c = &fv["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
    assert_eq!(c["."], json!({}));
    assert_eq!(c["f:image"], json!({}));
    // A port without protocol is keyed with upstream's default TCP.
    assert!(
        c["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"].is_object(),
        "{c}"
    );
    assert_eq!(fv["f:metadata"]["f:labels"]["f:app"], json!({}));
    assert!(fv["f:metadata"]["f:labels"].get(".").is_none());
}

#[test]
fn apply_conflicts_with_an_updater_and_force_takes_ownership() {
    let t = typed();
    let mut m = Managed::default();
    let d1 = deployment(1, json!([{"name": "web", "image": "nginx"}]));
    let live = m
        .apply(
            &t,
            Scope::ExceptStatus,
            &json!({}),
            &d1,
            &who("kubectl", Operation::Apply),
            false,
            NOW,
        )
        .unwrap()
        .unwrap();
    // Someone scales.
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    m.update(
        &t,
        Scope::ExceptStatus,
        &live,
        &scaled,
        &who("kubectl-scale", Operation::Update),
        NOW,
    );
    assert_eq!(
        fields_v1(&m, "kubectl-scale"),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        fields_v1(&m, "kubectl")["f:spec"]
            .get("f:replicas")
            .is_none(),
        "the applier lost replicas"
    );
    // Applying another value conflicts; the same value shares ownership.
    let d3 = deployment(3, json!([{"name": "web", "image": "nginx"}]));
    let conflicts = m
        .clone()
        .apply(
            &t,
            Scope::ExceptStatus,
            &scaled,
            &d3,
            &who("kubectl", Operation::Apply),
            false,
            NOW,
        )
        .unwrap_err();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].manager, "\"kubectl-scale\" using apps/v1");
    assert_eq!(path_string(&conflicts[0].path), ".spec.replicas");
    let err = super::conflict_error(&conflicts);
    assert_eq!(err.code(), 409);
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
    );
    let status = err.status();
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldManagerConflict"
    );
    assert_eq!(status["details"]["causes"][0]["field"], ".spec.replicas");
    let mut forced = m.clone();
    let out = forced
        .apply(
            &t,
            Scope::ExceptStatus,
            &scaled,
            &d3,
            &who("kubectl", Operation::Apply),
            true,
            NOW,
        )
        .unwrap()
        .unwrap();
    assert_eq!(out["spec"]["replicas"], 3);
    assert!(
        forced.entries.iter().all(|e| e.manager != "kubectl-scale"),
        "empty entries are dropped"
    );
}

#[test]
fn reapply_removes_what_only_the_applier_owned_and_keeps_what_others_own() {
    let t = typed();
    let mut m = Managed::default();
    let kubectl = who("kubectl", Operation::Apply);
    let d1 = deployment(
        1,
        json!([{"name": "web", "image": "nginx"}, {"name": "log", "image": "busybox"}]),
    );
    let live = m
        .apply(
            &t,
            Scope::ExceptStatus,
            &json!({}),
            &d1,
            &kubectl,
            false,
            NOW,
        )
        .unwrap()
        .unwrap();
    // Another applier shares the list-map: it adds an env var to "web".
    let other = who("sidecar-injector", Operation::Apply);
    let patch = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "A", "value": "1"}]}]}}}});
    let live = m
        .apply(&t, Scope::ExceptStatus, &live, &patch, &other, false, NOW)
        .unwrap()
        .unwrap();
    let web = &live["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(web["image"], "nginx");
    assert_eq!(web["env"][0]["name"], "A");
    // kubectl drops the "log" container and "web": both go but "web" stays (co-owned key).
    let d2 = deployment(1, json!([]));
    let out = m
        .apply(&t, Scope::ExceptStatus, &live, &d2, &kubectl, false, NOW)
        .unwrap()
        .unwrap();
    let containers = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "{out}");
    assert_eq!(containers[0]["name"], "web");
    assert!(
        containers[0].get("image").is_none(),
        "image was only kubectl's: {out}"
    );
    assert_eq!(containers[0]["env"][0]["value"], "1");
}

#[test]
fn same_config_twice_is_a_no_op() {
    let t = typed();
    let mut m = Managed::default();
    let kubectl = who("kubectl", Operation::Apply);
    let d1 = deployment(2, json!([{"name": "web", "image": "nginx"}]));
    let live = m
        .apply(
            &t,
            Scope::ExceptStatus,
            &json!({}),
            &d1,
            &kubectl,
            false,
            NOW,
        )
        .unwrap()
        .unwrap();
    let before = m.clone();
    let again = m
        .apply(
            &t,
            Scope::ExceptStatus,
            &live,
            &d1,
            &kubectl,
            false,
            "2030-01-01T00:00:00Z",
        )
        .unwrap();
    assert!(again.is_none());
    assert_eq!(m, before, "no time bump");
}

#[test]
fn update_takes_changed_fields_and_keeps_time_when_nothing_changed() {
    let t = typed();
    let mut m = Managed::default();
    let d = deployment(1, json!([{"name": "web", "image": "nginx"}]));
    let create = who("kubectl-create", Operation::Update);
    m.update(&t, Scope::ExceptStatus, &json!({}), &d, &create, NOW);
    let mut edited = d.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let edit = who("kubectl-edit", Operation::Update);
    m.update(&t, Scope::ExceptStatus, &d, &edited, &edit, NOW);
    let c = "k:{\"name\":\"web\"}";
    assert_eq!(
        fields_v1(&m, "kubectl-edit")["f:spec"]["f:template"]["f:spec"]["f:containers"][c],
        json!({"f:image": {}})
    );
    assert!(
        fields_v1(&m, "kubectl-create")["f:spec"]["f:template"]["f:spec"]["f:containers"][c]
            .get("f:image")
            .is_none()
    );
    let before = m.clone();
    m.update(
        &t,
        Scope::ExceptStatus,
        &edited,
        &edited,
        &edit,
        "2030-01-01T00:00:00Z",
    );
    assert_eq!(m, before);
    // Encoded order: Apply before Update, then by time and manager.
    let encoded = m.encode();
    assert_eq!(encoded[0]["manager"], "kubectl-create");
    assert_eq!(encoded[0]["fieldsType"], "FieldsV1");
    assert_eq!(Managed::decode(Some(&encoded)).unwrap(), m);
}

#[test]
fn status_is_not_owned_through_the_main_resource() {
    let t = typed();
    let mut m = Managed::default();
    let mut d = deployment(1, json!([]));
    d["status"] = json!({"replicas": 1});
    m.update(
        &t,
        Scope::ExceptStatus,
        &json!({}),
        &d,
        &who("a", Operation::Update),
        NOW,
    );
    assert!(fields_v1(&m, "a").get("f:status").is_none());
    let mut s = d.clone();
    s["status"]["replicas"] = json!(2);
    s["spec"]["replicas"] = json!(9);
    m.update(
        &t,
        Scope::OnlyStatus,
        &d,
        &s,
        &who("b", Operation::Update),
        NOW,
    );
    assert_eq!(fields_v1(&m, "b"), json!({"f:status": {"f:replicas": {}}}));
}

#[test]
fn schemaless_objects_have_granular_maps_and_atomic_lists() {
    let t = Typed::new(Catalog::builtin(), None);
    let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 1, "tags": ["a", "b"], "nested": {"x": 1}}});
    let fv = t.field_set(&obj).to_fields_v1();
    assert_eq!(fv["f:spec"]["f:tags"], json!({}));
    assert_eq!(fv["f:spec"]["f:nested"], json!({".": {}, "f:x": {}}));
    let mut m = Managed::default();
    let a = who("a", Operation::Apply);
    let live = m
        .apply(&t, Scope::Everything, &json!({}), &obj, &a, false, NOW)
        .unwrap()
        .unwrap();
    let smaller = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 2}});
    let out = m
        .apply(&t, Scope::Everything, &live, &smaller, &a, false, NOW)
        .unwrap()
        .unwrap();
    assert_eq!(out["spec"], json!({"size": 2}));
}

#[test]
fn manager_names_and_validation() {
    assert_eq!(
        super::manager_name(None, Some("kubectl/v1.33.0 (linux/amd64) kubernetes/abc")),
        "kubectl"
    );
    assert_eq!(
        super::manager_name(Some("mine"), Some("kubectl/v1")),
        "mine"
    );
    assert_eq!(super::manager_name(None, None), "");
    let err = super::validate_field_manager(None, "PatchOptions", true).unwrap_err();
    assert_eq!(err.code(), 422);
    assert_eq!(
        err.to_string(),
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let long = "x".repeat(129);
    assert_eq!(
        super::validate_field_manager(Some(&long), "UpdateOptions", false)
            .unwrap_err()
            .code(),
        422
    );
    assert!(super::validate_field_manager(Some("ok"), "UpdateOptions", false).is_ok());
}

#[test]
fn more_than_ten_updaters_fold_the_oldest_into_ancient_changes() {
    let t = typed();
    let mut m = Managed::default();
    let mut live = deployment(1, json!([{"name": "web", "image": "nginx"}]));
    m.update(
        &t,
        Scope::ExceptStatus,
        &json!({}),
        &live,
        &who("creator", Operation::Update),
        "2026-01-01T00:00:00Z",
    );
    for i in 0..11 {
        let mut next = live.clone();
        next["metadata"]["labels"][format!("l{i}")] = json!("x");
        let time = format!("2026-01-01T00:00:{:02}Z", i + 1);
        m.update(
            &t,
            Scope::ExceptStatus,
            &live,
            &next,
            &who(&format!("m{i}"), Operation::Update),
            &time,
        );
        live = next;
    }
    assert_eq!(
        m.entries.len(),
        10,
        "{:?}",
        m.entries.iter().map(|e| &e.manager).collect::<Vec<_>>()
    );
    let ancient = m
        .entries
        .iter()
        .find(|e| e.manager == "ancient-changes")
        .unwrap();
    assert!(ancient.set.has(&[
        super::fieldpath::PathElement::Field("spec".into()),
        super::fieldpath::PathElement::Field("replicas".into())
    ]));
    assert!(
        m.entries
            .iter()
            .all(|e| e.manager != "creator" && e.manager != "m0")
    );
}

#[test]
fn custom_resource_schema_with_list_map_and_preserved_fields() {
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}});
    let t = Typed::new(Catalog::builtin(), Some(&schema)).custom();
    let a = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"x": "1"}},
        "spec": {"ports": [{"name": "http", "port": 80}], "extra": {"free": {"form": true}}}});
    let fv = t.field_set(&a).to_fields_v1();
    assert_eq!(
        fv["f:spec"]["f:ports"]["k:{\"name\":\"http\"}"],
        json!({".": {}, "f:name": {}, "f:port": {}})
    );
    assert_eq!(
        fv["f:spec"]["f:extra"]["f:free"],
        json!({".": {}, "f:form": {}})
    );
    assert_eq!(
        fv["f:metadata"]["f:labels"]["f:x"],
        json!({}),
        "metadata read as ObjectMeta"
    );
    let mut m = Managed::default();
    let live = m
        .apply(
            &t,
            Scope::Everything,
            &json!({}),
            &a,
            &who("a", Operation::Apply),
            false,
            NOW,
        )
        .unwrap()
        .unwrap();
    let b = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"ports": [{"name": "grpc", "port": 90}]}});
    let out = m
        .apply(
            &t,
            Scope::Everything,
            &live,
            &b,
            &who("b", Operation::Apply),
            false,
            NOW,
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        out["spec"]["ports"],
        json!([{"name": "http", "port": 80}, {"name": "grpc", "port": 90}])
    );
}

#[test]
fn yaml_configurations_decode_and_duplicates_follow_field_validation() {
    use beemesh_translator::validation::FieldValidation;
    let res = beemesh_translator::ResourceInfo {
        version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
        ..Default::default()
    };
    let yaml =
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: \"1\"\n  a: \"2\"\n";
    let (cfg, warnings) = super::decode_config(&res, "c", yaml, FieldValidation::Ignore).unwrap();
    assert_eq!(cfg["data"]["a"], "2", "the last key wins");
    assert!(warnings.is_empty());
    let (_, warnings) = super::decode_config(&res, "c", yaml, FieldValidation::Warn).unwrap();
    assert_eq!(warnings, ["duplicate field \"data.a\""]);
    let err = super::decode_config(&res, "c", yaml, FieldValidation::Strict).unwrap_err();
    assert_eq!(err.code(), 400);
    assert!(
        err.to_string().starts_with("error strict decoding YAML"),
        "{err}"
    );
}
