//! Server-side apply and managedFields over HTTP, checked against upstream's answers:
//! entries on every verb, apply creating, conflicts (409 with FieldManagerConflict
//! causes), force, removal of dropped fields, dry run, no-op applies.

mod common;

use common::*;
use http::StatusCode;
use serde_json::{Value, json};

const CM: &str = "/api/v1/namespaces/default/configmaps";
const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments";
const APPLY: &str = "application/apply-patch+yaml";

fn entries(obj: &Value) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn entry<'a>(list: &'a [Value], manager: &str, operation: &str) -> &'a Value {
    list.iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
        .unwrap_or_else(|| panic!("no {operation} entry for {manager}: {list:?}"))
}

async fn apply(node: &Node, path: &str, query: &str, body: &str) -> Resp {
    node.patch(&format!("{path}?{query}"))
        .body(APPLY, body.to_string())
        .send()
        .await
}

const CM_YAML: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: applied
  labels:
    team: a
data:
  one: \"1\"
  two: \"2\"
";

#[tokio::test]
async fn create_update_and_patch_record_update_entries_by_manager() {
    let node = Node::start().await;
    let created = node
        .post(&format!("{CM}?fieldManager=creator"))
        .json(&configmap("c", json!({"a": "1"})))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let created = created.json();
    let list = entries(&created);
    let e = entry(&list, "creator", "Update");
    assert_eq!(e["apiVersion"], "v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert!(e["time"].is_string());
    assert_eq!(
        e["fieldsV1"],
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
    );
    // The default manager is the User-Agent's first segment.
    let r = node
        .patch(&format!("{CM}/c"))
        .header("user-agent", "my-tool/1.0 (linux)")
        .merge(&json!({"data": {"k": "changed"}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let patched = r.json();
    let list = entries(&patched);
    assert_eq!(
        entry(&list, "my-tool", "Update")["fieldsV1"],
        json!({"f:data": {"f:k": {}}})
    );
    assert_eq!(
        entry(&list, "creator", "Update")["fieldsV1"],
        json!({"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}}),
        "the changed field moved to the patcher"
    );
    // PUT without managedFields keeps them (the live ones are used).
    let mut body = patched.clone();
    body["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    body["metadata"]["labels"]["b"] = json!("2");
    let r = node
        .put(&format!("{CM}/c?fieldManager=editor"))
        .json(&body)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let list = entries(&r.json());
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(
        entry(&list, "editor", "Update")["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:b": {}}}})
    );
    // An empty list resets them; the writer then owns only what it changed.
    let mut body = r.json();
    body["metadata"]["managedFields"] = json!([]);
    let r = node
        .put(&format!("{CM}/c?fieldManager=editor"))
        .json(&body)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(entries(&r.json()).is_empty(), "{}", r.text());
}

#[tokio::test]
async fn status_and_scale_writes_record_their_subresource() {
    let node = Node::start().await;
    node.create(DEPLOY, deployment("web", 1)).await;
    let r = node
        .patch(&format!("{DEPLOY}/web/status?fieldManager=ctrl"))
        .merge(&json!({"status": {"replicas": 1}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let list = entries(&r.json());
    let e = entry(&list, "ctrl", "Update");
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
    let r = node
        .patch(&format!("{DEPLOY}/web/scale?fieldManager=scaler"))
        .merge(&json!({"spec": {"replicas": 3}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let d = node.get(&format!("{DEPLOY}/web")).send().await.json();
    let list = entries(&d);
    let e = entry(&list, "scaler", "Update");
    assert_eq!(e["subresource"], "scale");
    assert_eq!(e["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
}

#[tokio::test]
async fn apply_creates_then_no_op_keeps_resource_version() {
    let node = Node::start().await;
    let r = apply(&node, &format!("{CM}/applied"), "fieldManager=me", CM_YAML).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let created = r.json();
    assert_eq!(created["data"], json!({"one": "1", "two": "2"}));
    assert!(created["metadata"]["uid"].is_string());
    let list = entries(&created);
    let e = entry(&list, "me", "Apply");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:data": {"f:one": {}, "f:two": {}}, "f:metadata": {"f:labels": {"f:team": {}}}})
    );
    let before = node.revision();
    let r = apply(&node, &format!("{CM}/applied"), "fieldManager=me", CM_YAML).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        created,
        "a no-op apply changes nothing, not even the time"
    );
    assert_eq!(node.revision(), before, "no revision consumed");
}

#[tokio::test]
async fn apply_conflict_is_409_with_causes_and_force_takes_over() {
    let node = Node::start().await;
    apply(&node, &format!("{CM}/applied"), "fieldManager=me", CM_YAML).await;
    let r = node
        .patch(&format!("{CM}/applied?fieldManager=other"))
        .merge(&json!({"data": {"one": "uno"}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let changed = CM_YAML
        .replace("\"1\"", "\"one\"")
        .replace("team: a", "team: b");
    let r = apply(&node, &format!("{CM}/applied"), "fieldManager=me", &changed).await;
    let s = r.status_error(
        409,
        "Conflict",
        "Apply failed with 1 conflict: conflict with \"other\" using v1: .data.one",
    );
    assert_eq!(
        s["details"],
        json!({"causes": [{"reason": "FieldManagerConflict", "message": "conflict with \"other\" using v1", "field": ".data.one"}]})
    );
    let r = apply(
        &node,
        &format!("{CM}/applied"),
        "fieldManager=me&force=true",
        &changed,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let obj = r.json();
    assert_eq!(obj["data"]["one"], "one");
    assert_eq!(obj["metadata"]["labels"]["team"], "b");
    assert!(
        entries(&obj).iter().all(|e| e["manager"] != "other"),
        "{obj}"
    );
}

#[tokio::test]
async fn multiple_conflicts_are_grouped_by_manager() {
    let node = Node::start().await;
    apply(&node, &format!("{CM}/applied"), "fieldManager=me", CM_YAML).await;
    node.patch(&format!("{CM}/applied?fieldManager=x"))
        .merge(&json!({"data": {"one": "a", "two": "b"}}))
        .send()
        .await;
    let r = apply(
        &node,
        &format!("{CM}/applied"),
        "fieldManager=me",
        &CM_YAML.replace("\"1\"", "\"9\"").replace("\"2\"", "\"8\""),
    )
    .await;
    let s = r.status_error(
        409,
        "Conflict",
        "Apply failed with 2 conflicts: conflicts with \"x\" using v1:\n- .data.one\n- .data.two",
    );
    assert_eq!(s["details"]["causes"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn dropped_fields_are_removed_unless_someone_else_owns_them() {
    let node = Node::start().await;
    apply(&node, &format!("{CM}/applied"), "fieldManager=me", CM_YAML).await;
    // Another applier also sets data.two to the same value: shared ownership.
    let shared =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  two: \"2\"\n";
    let r = apply(
        &node,
        &format!("{CM}/applied"),
        "fieldManager=friend",
        shared,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let fewer =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  three: \"3\"\n";
    let r = apply(&node, &format!("{CM}/applied"), "fieldManager=me", fewer).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let obj = r.json();
    assert_eq!(obj["data"], json!({"two": "2", "three": "3"}));
    assert!(
        obj["metadata"]
            .get("labels")
            .is_none_or(|l| l.get("team").is_none()),
        "{obj}"
    );
}

#[tokio::test]
async fn apply_dry_run_stores_nothing() {
    let node = Node::start().await;
    let before = node.revision();
    let r = apply(
        &node,
        &format!("{CM}/applied"),
        "fieldManager=me&dryRun=All",
        CM_YAML,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["data"]["one"], "1");
    assert_eq!(node.revision(), before);
    let r = node.get(&format!("{CM}/applied")).send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    apply(&node, &format!("{CM}/applied"), "fieldManager=me", CM_YAML).await;
    let before = node.revision();
    let r = apply(
        &node,
        &format!("{CM}/applied"),
        "fieldManager=me&dryRun=All",
        &CM_YAML.replace("team: a", "team: z"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["metadata"]["labels"]["team"], "z");
    assert_eq!(node.revision(), before);
    let got = node.get(&format!("{CM}/applied")).send().await.json();
    assert_eq!(got["metadata"]["labels"]["team"], "a");
}

#[tokio::test]
async fn apply_options_and_body_are_checked() {
    let node = Node::start().await;
    let path = format!("{CM}/applied");
    let r = apply(&node, &path, "", CM_YAML).await;
    let s = r.status_error(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch");
    assert_eq!(s["details"]["causes"][0]["field"], "fieldManager");
    let long = "m".repeat(129);
    let r = apply(&node, &path, &format!("fieldManager={long}"), CM_YAML).await;
    r.status_error(422, "Invalid", "fieldManager: Too long");
    let r = node
        .patch(&format!("{path}?force=true"))
        .merge(&json!({}))
        .send()
        .await;
    r.status_error(
        422,
        "Invalid",
        "force: Forbidden: may not be specified for non-apply patch",
    );
    let r = apply(
        &node,
        &path,
        "fieldManager=me",
        &CM_YAML.replace("apiVersion: v1", "apiVersion: v2"),
    )
    .await;
    r.status_error(
        400,
        "BadRequest",
        "Incorrect version specified in apply patch. Specified patch version: v2, expected: v1",
    );
    let r = apply(
        &node,
        &path,
        "fieldManager=me",
        &CM_YAML.replace("kind: ConfigMap", "kind: Secret"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = apply(&node, &format!("{CM}/other"), "fieldManager=me", CM_YAML).await;
    r.status_error(400, "BadRequest", "does not match the name on the URL");
    let with_mf = CM_YAML.replace("  labels:", "  managedFields: []\n  labels:");
    let r = apply(&node, &path, "fieldManager=me", &with_mf).await;
    r.status_error(400, "BadRequest", "metadata.managedFields must be nil");
    // JSON bodies are YAML too; duplicate fields are a 400 under Strict.
    let r = apply(&node, &path, "fieldManager=me&fieldValidation=Strict",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied"},"data":{"a":"1","a":"2"}}"#).await;
    r.status_error(400, "BadRequest", "duplicate field");
    let r = apply(&node, &path, "fieldManager=me&fieldValidation=Warn",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied"},"data":{"a":"1","a":"2"}}"#).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(
        r.warnings().iter().any(|w| w.contains("duplicate field")),
        "{:?}",
        r.warnings()
    );
}

#[tokio::test]
async fn apply_to_a_deployment_merges_containers_and_defaults() {
    let node = Node::start().await;
    let d = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx
";
    let r = apply(&node, &format!("{DEPLOY}/web"), "fieldManager=me", d).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let obj = r.json();
    assert_eq!(obj["spec"]["replicas"], 1, "defaulted as on create");
    assert_eq!(obj["metadata"]["generation"], 1);
    let sidecar = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: log
        image: busybox
";
    let r = apply(
        &node,
        &format!("{DEPLOY}/web"),
        "fieldManager=side",
        sidecar,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let obj = r.json();
    let names: Vec<&str> = obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "log"]);
    assert_eq!(obj["metadata"]["generation"], 2);
    let list = entries(&obj);
    assert!(
        entry(&list, "side", "Apply")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
            .get("k:{\"name\":\"log\"}")
            .is_some()
    );
}

#[tokio::test]
async fn apply_field_validation_on_unknown_fields() {
    let node = Node::start().await;
    let path = format!("{CM}/applied");
    let bogus = CM_YAML.replace("\ndata:", "\nbogus: 1\ndata:");
    let r = apply(
        &node,
        &path,
        "fieldManager=me&fieldValidation=Strict",
        &bogus,
    )
    .await;
    r.status_error(400, "BadRequest", "unknown field \"bogus\"");
    let r = apply(&node, &path, "fieldManager=me&fieldValidation=Warn", &bogus).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(
        r.warnings()
            .iter()
            .any(|w| w.contains("unknown field") && w.contains("bogus")),
        "{:?}",
        r.warnings()
    );
    assert!(r.json().get("bogus").is_none(), "pruned");
    let r = apply(
        &node,
        &path,
        "fieldManager=me&fieldValidation=Ignore",
        &bogus,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.warnings().is_empty());
}

#[tokio::test]
async fn apply_to_scale_owns_replicas_through_the_scale_subresource() {
    let node = Node::start().await;
    let d = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx
";
    apply(&node, &format!("{DEPLOY}/web"), "fieldManager=me", d).await;
    let scale =
        "apiVersion: autoscaling/v1\nkind: Scale\nmetadata:\n  name: web\nspec:\n  replicas: 5\n";
    let path = format!("{DEPLOY}/web/scale");
    let r = apply(&node, &path, "fieldManager=hpa", scale).await;
    r.status_error(
        409,
        "Conflict",
        "Apply failed with 1 conflict: conflict with \"me\": .spec.replicas",
    );
    let r = apply(&node, &path, "fieldManager=hpa&force=true", scale).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["spec"]["replicas"], 5);
    assert_eq!(r.json()["kind"], "Scale");
    let obj = node.get(&format!("{DEPLOY}/web")).send().await.json();
    assert_eq!(obj["spec"]["replicas"], 5);
    let list = entries(&obj);
    let e = entry(&list, "hpa", "Apply");
    assert_eq!(e["subresource"], "scale");
    assert_eq!(e["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    let r = apply(
        &node,
        &path,
        "fieldManager=hpa",
        &scale.replace("kind: Scale", "kind: Deployment"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn non_canonical_quantities_are_no_op_writes() {
    let node = Node::start().await;
    const LR: &str = "/api/v1/namespaces/default/limitranges";
    let lr = "apiVersion: v1
kind: LimitRange
metadata:
  name: defaults
spec:
  limits:
  - type: Container
    defaultRequest:
      cpu: 0.1
";
    let r = apply(&node, &format!("{LR}/defaults"), "fieldManager=me", lr).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(
        r.json()["spec"]["limits"][0]["defaultRequest"]["cpu"],
        "100m"
    );
    let before = node.revision();
    // Re-applying `0.1` over the stored `100m` is no change (upstream compares decoded
    // objects and keeps managedFields timestamps when only they would move).
    let r = apply(&node, &format!("{LR}/defaults"), "fieldManager=me", lr).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(node.revision(), before);
    // The same through a patch by another manager: no ownership moves, no write.
    let r = node
        .patch(&format!("{LR}/defaults?fieldManager=other"))
        .strategic(
            &json!({"spec": {"limits": [{"type": "Container", "defaultRequest": {"cpu": 0.1}}]}}),
        )
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(node.revision(), before);
    assert!(entries(&r.json()).iter().all(|e| e["manager"] != "other"));
}

/// kubectl's `apply --server-side` on an object that has a last-applied annotation rewrites
/// it to the configuration as sent, explicit nulls included (`creationTimestamp: null`, as
/// generated manifests carry): upstream's lastAppliedUpdater encodes the applied object.
#[tokio::test]
async fn kubectl_server_side_apply_records_the_sent_configuration_as_last_applied() {
    let node = Node::start().await;
    let created = node
        .post(CM)
        .json(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "la", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "data": {"a": "1"}}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let body = "apiVersion: v1
kind: ConfigMap
metadata:
  name: la
  creationTimestamp: null
data:
  a: \"2\"
";
    let r = apply(
        &node,
        &format!("{CM}/la"),
        "fieldManager=kubectl&force=true",
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let obj = r.json();
    assert!(obj["metadata"]["creationTimestamp"].is_string());
    assert_eq!(obj["data"]["a"], "2");
    let last: Value = serde_json::from_str(
        obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        last,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "la", "creationTimestamp": null}, "data": {"a": "2"}})
    );
}
