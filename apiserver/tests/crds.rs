//! CustomResourceDefinitions through the API: a CRD becomes Established and serves its
//! kind (CRUD, list, watch, every served version), bad CRDs and bad custom resources are
//! 422 with upstream's field paths, unknown fields are pruned (or refused under Strict),
//! defaults apply, `/status` and `/scale` behave like upstream's, and deleting the CRD
//! deletes its custom resources and the kind.

mod common;

use std::time::Duration;

use beemesh_workloads::{CrdController, CrdRegistrar};
use common::Node;
use http::StatusCode;
use serde_json::{Value, json};

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";

/// A node with the CRD registrar and controller running, as `beemesh up` runs them.
async fn node() -> Node {
    let node = Node::start().await;
    let service = node.state.service.clone();
    CrdRegistrar::new(service.clone()).start();
    tokio::spawn(CrdController::new(service).run());
    node
}

fn version(name: &str, storage: bool) -> Value {
    json!({"name": name, "served": true, "storage": storage,
        "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"],
                "x-kubernetes-validations": [{"rule": "self.size <= self.maxSize", "message": "size must not exceed maxSize"}],
                "properties": {
                "size": {"type": "integer", "minimum": 1},
                "maxSize": {"type": "integer", "default": 10},
                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                "replicas": {"type": "integer"},
                "selector": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
            "status": {"type": "object", "properties": {
                "replicas": {"type": "integer"}, "phase": {"type": "string"}}}}}},
        "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".spec.selector"}},
        "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
        "selectableFields": [{"jsonPath": ".spec.color"}]})
}

fn widget_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
            "versions": [version("v1", true), version("v1beta1", false)]}})
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

/// Waits until the CRD reports Established=True and its kind is served.
async fn established(node: &Node, name: &str) -> Value {
    for _ in 0..100 {
        let r = node.get(&format!("{CRDS}/{name}")).send().await;
        let crd = r.json();
        let established = crd["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        let plural = crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let group = crd["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let version = crd["spec"]["versions"][0]["name"]
            .as_str()
            .unwrap_or("v1")
            .to_string();
        let served = node
            .get(&format!("/apis/{group}/{version}"))
            .send()
            .await
            .json()["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["name"] == plural.as_str());
        if established && served {
            return crd;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never became established");
}

#[tokio::test]
async fn crd_is_established_and_serves_crud_list_and_watch() {
    let node = node().await;
    let created = node.create(CRDS, widget_crd()).await;
    assert_eq!(
        created["metadata"]["finalizers"],
        json!(["customresourcecleanup.apiextensions.k8s.io"])
    );
    assert_eq!(created["status"]["storedVersions"], json!(["v1"]));
    let crd = established(&node, "widgets.example.com").await;
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "Widget");
    assert_eq!(crd["status"]["acceptedNames"]["listKind"], "WidgetList");
    assert_eq!(crd["status"]["acceptedNames"]["shortNames"], json!(["wd"]));
    let names_accepted = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "NamesAccepted")
        .unwrap();
    assert_eq!(names_accepted["status"], "True");
    assert_eq!(names_accepted["reason"], "NoConflicts");

    let discovery = node.get("/apis/example.com/v1").send().await.json();
    let res = &discovery["resources"][0];
    assert_eq!(res["name"], "widgets");
    assert_eq!(res["kind"], "Widget");
    assert_eq!(res["shortNames"], json!(["wd"]));
    assert!(res["namespaced"].as_bool().unwrap());

    let mut watch = node.get(&format!("{WIDGETS}?watch=true")).stream().await;
    let w = node.create(WIDGETS, widget("a", json!({"size": 2}))).await;
    assert_eq!(w["metadata"]["generation"], 1);
    assert_eq!(w["spec"]["color"], "red", "defaulted");
    assert_eq!(w["spec"]["maxSize"], 10, "defaulted");
    let ev = watch.next().await;
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["metadata"]["name"], "a");

    // Every served version reads the same object, with its own apiVersion.
    let beta = node
        .get("/apis/example.com/v1beta1/namespaces/default/widgets/a")
        .send()
        .await
        .json();
    assert_eq!(beta["apiVersion"], "example.com/v1beta1");
    assert_eq!(beta["spec"]["size"], 2);
    let list = node.get(WIDGETS).send().await.json();
    assert_eq!(list["kind"], "WidgetList");
    assert_eq!(list["apiVersion"], "example.com/v1");
    assert_eq!(list["items"][0]["apiVersion"], "example.com/v1");
    let beta_list = node
        .get("/apis/example.com/v1beta1/widgets")
        .send()
        .await
        .json();
    assert_eq!(beta_list["items"][0]["apiVersion"], "example.com/v1beta1");

    // Written through v1beta1, read through v1.
    let mut via_beta = widget("b", json!({"size": 3}));
    via_beta["apiVersion"] = json!("example.com/v1beta1");
    node.create(
        "/apis/example.com/v1beta1/namespaces/default/widgets",
        via_beta,
    )
    .await;
    let b = node.get(&format!("{WIDGETS}/b")).send().await.json();
    assert_eq!(b["apiVersion"], "example.com/v1");

    // Merge and JSON patches work; strategic merge patch is 415 as upstream.
    let patched = node
        .patch(&format!("{WIDGETS}/a"))
        .merge(&json!({"spec": {"size": 5}}))
        .send()
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    assert_eq!(patched.json()["spec"]["size"], 5);
    assert_eq!(patched.json()["metadata"]["generation"], 2);
    let ev = watch.next().await;
    assert_eq!(ev["type"], "ADDED");
    let ev = watch.next().await;
    assert_eq!(ev["type"], "MODIFIED");
    let jp = node
        .patch(&format!("{WIDGETS}/a"))
        .json_patch(&json!([{"op": "replace", "path": "/spec/size", "value": 6}]))
        .send()
        .await;
    assert_eq!(jp.status, StatusCode::OK, "{}", jp.text());
    node.patch(&format!("{WIDGETS}/a"))
        .strategic(&json!({"spec": {"size": 7}}))
        .send()
        .await
        .status_error(415, "UnsupportedMediaType", "application/merge-patch+json");

    let gone = node.delete(&format!("{WIDGETS}/b")).send().await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text());
    assert_eq!(node.get(&format!("{WIDGETS}/b")).send().await.status, 404);
}

#[tokio::test]
async fn bad_crds_are_invalid_with_upstream_paths_and_nothing_is_stored() {
    let node = node().await;
    let mut crd = widget_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("type");
    let r = node.post(CRDS).json(&crd).send().await;
    let status = r.status_error(
        422,
        "Invalid",
        "CustomResourceDefinition.apiextensions.k8s.io \"widgets.example.com\" is invalid",
    );
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"spec.versions[0].schema.openAPIV3Schema.properties[spec].type"),
        "{fields:?}"
    );
    assert_eq!(
        node.get(&format!("{CRDS}/widgets.example.com"))
            .send()
            .await
            .status,
        404
    );

    let mut wrong_name = widget_crd();
    wrong_name["metadata"]["name"] = json!("gadgets.example.com");
    let s = node.post(CRDS).json(&wrong_name).send().await.status_error(
        422,
        "Invalid",
        "must be spec.names.plural",
    );
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");

    let mut two_storage = widget_crd();
    two_storage["spec"]["versions"][1]["storage"] = json!(true);
    let s = node
        .post(CRDS)
        .json(&two_storage)
        .send()
        .await
        .status_error(
            422,
            "Invalid",
            "must have exactly one version marked as storage version",
        );
    assert_eq!(s["details"]["causes"][0]["field"], "spec.versions");
}

#[tokio::test]
async fn bad_custom_resources_are_invalid_with_paths_and_unknown_fields_are_pruned() {
    let node = node().await;
    node.create(CRDS, widget_crd()).await;
    established(&node, "widgets.example.com").await;

    let bad = widget(
        "bad",
        json!({"size": "big", "color": "pink", "tags": ["a", "a"]}),
    );
    let s = node.post(WIDGETS).json(&bad).send().await.status_error(
        422,
        "Invalid",
        "Widget.example.com \"bad\" is invalid",
    );
    let causes: Vec<(String, String)> = s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        causes.contains(&(
            "spec.size".into(),
            "Invalid value: \"string\": spec.size in body must be of type integer: \"string\""
                .into()
        )),
        "{causes:?}"
    );
    assert!(causes.contains(&(
        "spec.color".into(),
        "Unsupported value: \"pink\": supported values: \"red\", \"blue\"".into()
    )));
    assert!(causes.contains(&("spec.tags[1]".into(), "Duplicate value: \"a\"".into())));
    let missing = node
        .post(WIDGETS)
        .json(&widget("missing", json!({})))
        .send()
        .await
        .status_error(422, "Invalid", "spec.size: Required value");
    assert_eq!(missing["details"]["causes"][0]["field"], "spec.size");

    // CEL rule.
    let cel = node
        .post(WIDGETS)
        .json(&widget("big", json!({"size": 20, "maxSize": 5})))
        .send()
        .await
        .status_error(422, "Invalid", "size must not exceed maxSize");
    assert_eq!(cel["details"]["causes"][0]["field"], "spec");

    // Unknown fields: Warn (the default) drops them with a warning; Strict refuses.
    let r = node
        .post(WIDGETS)
        .json(&widget(
            "pruned",
            json!({"size": 1, "bogus": true, "extra": {"kept": 1}}),
        ))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.json()["spec"].get("bogus").is_none());
    assert_eq!(r.json()["spec"]["extra"]["kept"], 1);
    assert!(
        r.warnings()
            .iter()
            .any(|w| w.contains("unknown field") && w.contains("spec.bogus")),
        "{:?}",
        r.warnings()
    );
    node.post(&format!("{WIDGETS}?fieldValidation=Strict"))
        .json(&widget("strict", json!({"size": 1, "bogus": true})))
        .send()
        .await
        .status_error(
            400,
            "BadRequest",
            "strict decoding error: unknown field \"spec.bogus\"",
        );
    let ignored = node
        .post(&format!("{WIDGETS}?fieldValidation=Ignore"))
        .json(&widget("ignored", json!({"size": 1, "bogus": true})))
        .send()
        .await;
    assert_eq!(ignored.status, StatusCode::CREATED);
    assert!(ignored.warnings().is_empty());
}

#[tokio::test]
async fn status_and_scale_subresources() {
    let node = node().await;
    node.create(CRDS, widget_crd()).await;
    established(&node, "widgets.example.com").await;
    let mut w = widget("s", json!({"size": 1, "replicas": 2, "selector": "app=s"}));
    w["status"] = json!({"phase": "Ignored"});
    let created = node.create(WIDGETS, w).await;
    assert!(
        created.get("status").is_none(),
        "status is dropped on create"
    );

    // /status changes only status, and does not bump the generation.
    let mut st = created.clone();
    st["status"] = json!({"phase": "Ready", "replicas": 1});
    st["spec"]["size"] = json!(9);
    let r = node
        .put(&format!("{WIDGETS}/s/status"))
        .json(&st)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let after = r.json();
    assert_eq!(after["status"]["phase"], "Ready");
    assert_eq!(after["spec"]["size"], 1);
    assert_eq!(after["metadata"]["generation"], 1);

    // The main endpoint ignores status changes.
    let r = node
        .patch(&format!("{WIDGETS}/s"))
        .merge(&json!({"status": {"phase": "Hacked"}, "spec": {"size": 3}}))
        .send()
        .await;
    let after = r.json();
    assert_eq!(after["status"]["phase"], "Ready");
    assert_eq!(after["spec"]["size"], 3);
    assert_eq!(after["metadata"]["generation"], 2);

    // Scale reads and writes through the CRD's paths.
    let scale = node.get(&format!("{WIDGETS}/s/scale")).send().await.json();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "app=s");
    let r = node
        .patch(&format!("{WIDGETS}/s/scale"))
        .merge(&json!({"spec": {"replicas": 5}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["spec"]["replicas"], 5);
    let mut put = r.json();
    put["spec"]["replicas"] = json!(4);
    let r = node
        .put(&format!("{WIDGETS}/s/scale"))
        .json(&put)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let w = node.get(&format!("{WIDGETS}/s")).send().await.json();
    assert_eq!(w["spec"]["replicas"], 4);
}

#[tokio::test]
async fn deleting_the_crd_deletes_its_resources_and_the_kind() {
    let node = node().await;
    node.create(CRDS, widget_crd()).await;
    established(&node, "widgets.example.com").await;
    for n in ["x", "y"] {
        node.create(WIDGETS, widget(n, json!({"size": 1}))).await;
    }
    let mut watch = node
        .get(&format!(
            "{WIDGETS}?watch=true&resourceVersion={}",
            node.revision()
        ))
        .stream()
        .await;
    let r = node
        .delete(&format!("{CRDS}/widgets.example.com"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for _ in 0..100 {
        if node
            .get(&format!("{CRDS}/widgets.example.com"))
            .send()
            .await
            .status
            == StatusCode::NOT_FOUND
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        node.get(&format!("{CRDS}/widgets.example.com"))
            .send()
            .await
            .status,
        404,
        "the finalizer was removed"
    );
    for _ in 0..100 {
        if node.get(WIDGETS).send().await.status == StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        node.get(WIDGETS).send().await.status,
        404,
        "the kind is gone"
    );
    // The watch saw both instances go, then ended with the kind.
    for _ in 0..2 {
        assert_eq!(watch.next().await["type"], "DELETED");
    }
    assert!(
        watch.ends_within(Duration::from_secs(5)).await,
        "the watch outlived its CRD"
    );
    // Re-creating the CRD serves an empty kind: the old instances were deleted.
    node.create(CRDS, widget_crd()).await;
    established(&node, "widgets.example.com").await;
    let list = node.get(WIDGETS).send().await.json();
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn a_terminating_crd_waits_for_held_resources_and_refuses_new_ones() {
    let node = node().await;
    node.create(CRDS, widget_crd()).await;
    established(&node, "widgets.example.com").await;
    let mut held = widget("held", json!({"size": 1}));
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    node.create(WIDGETS, held).await;
    let r = node
        .delete(&format!("{CRDS}/widgets.example.com"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // The controller marks it Terminating and deletes the instance, which its own
    // finalizer holds.
    let mut terminating = Value::Null;
    for _ in 0..100 {
        let crd = node
            .get(&format!("{CRDS}/widgets.example.com"))
            .send()
            .await
            .json();
        if let Some(c) = crd["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Terminating")
        {
            terminating = c.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(terminating["status"], "True", "{terminating}");
    assert_eq!(terminating["reason"], "InstanceDeletionInProgress");
    node.post(WIDGETS)
        .json(&widget("late", json!({"size": 1})))
        .send()
        .await
        .status_error(
            405,
            "MethodNotAllowed",
            "create not allowed while custom resource definition is terminating",
        );
    let w = node.get(&format!("{WIDGETS}/held")).send().await.json();
    assert!(w["metadata"]["deletionTimestamp"].is_string(), "{w}");
    // Releasing the instance lets the CRD go.
    let r = node
        .patch(&format!("{WIDGETS}/held"))
        .merge(&json!({"metadata": {"finalizers": null}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for _ in 0..100 {
        if node
            .get(&format!("{CRDS}/widgets.example.com"))
            .send()
            .await
            .status
            == StatusCode::NOT_FOUND
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the CRD was not removed once its last instance went");
}

#[tokio::test]
async fn a_conflicting_crd_is_not_accepted() {
    let node = node().await;
    node.create(CRDS, widget_crd()).await;
    established(&node, "widgets.example.com").await;
    let mut other = widget_crd();
    other["metadata"]["name"] = json!("gizmos.example.com");
    other["spec"]["names"] = json!({"plural": "gizmos", "singular": "gizmo", "kind": "Widget"});
    node.create(CRDS, other).await;
    for _ in 0..100 {
        let crd = node
            .get(&format!("{CRDS}/gizmos.example.com"))
            .send()
            .await
            .json();
        if let Some(c) = crd["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "NamesAccepted")
        {
            assert_eq!(c["status"], "False");
            assert_eq!(c["reason"], "KindConflict");
            let est = crd["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "Established")
                .unwrap();
            assert_eq!(est["status"], "False");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gizmos never got a NamesAccepted condition");
}

#[tokio::test]
async fn cluster_scoped_kinds_embedded_resources_and_version_changes() {
    let node = node().await;
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "templates.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster",
            "names": {"plural": "templates", "kind": "Template"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "port": {"x-kubernetes-int-or-string": true},
                        "object": {"type": "object", "x-kubernetes-embedded-resource": true,
                            "x-kubernetes-preserve-unknown-fields": true}}}}}}}]}});
    let created = node.create(CRDS, crd).await;
    assert_eq!(
        created["spec"]["names"]["singular"], "template",
        "defaulted"
    );
    assert_eq!(created["spec"]["names"]["listKind"], "TemplateList");
    let mut crd = established(&node, "templates.example.com").await;
    // Established here means served at v1alpha1.
    let path = "/apis/example.com/v1alpha1/templates";
    let ok = json!({"apiVersion": "example.com/v1alpha1", "kind": "Template",
        "metadata": {"name": "t"},
        "spec": {"port": "http", "object": {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "bogus": 1}, "data": {"a": "b"}}}});
    let r = node.post(path).json(&ok).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let t = r.json();
    assert!(t["metadata"].get("namespace").is_none());
    assert_eq!(t["spec"]["object"]["data"]["a"], "b", "kept");
    assert!(
        t["spec"]["object"]["metadata"].get("bogus").is_none(),
        "pruned"
    );
    let mut bad = ok.clone();
    bad["metadata"]["name"] = json!("u");
    bad["spec"]["port"] = json!(true);
    bad["spec"]["object"] = json!({"data": {}});
    let s = node.post(path).json(&bad).send().await.status_error(
        422,
        "Invalid",
        "Template.example.com \"u\" is invalid",
    );
    let fields: Vec<&str> = s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    for f in ["spec.port", "spec.object.apiVersion", "spec.object.kind"] {
        assert!(fields.contains(&f), "{f}: {fields:?}");
    }

    // A new served version appears; an unserved one disappears.
    let v1 = json!({"name": "v1", "served": true, "storage": false,
        "schema": crd["spec"]["versions"][0]["schema"].clone()});
    crd["spec"]["versions"].as_array_mut().unwrap().push(v1);
    let r = node
        .put(&format!("{CRDS}/templates.example.com"))
        .json(&crd)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut served = false;
    for _ in 0..100 {
        if node
            .get("/apis/example.com/v1/templates/t")
            .send()
            .await
            .status
            == StatusCode::OK
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "v1 is served after the update");
    let mut crd = node
        .get(&format!("{CRDS}/templates.example.com"))
        .send()
        .await
        .json();
    crd["spec"]["versions"][0]["served"] = json!(false);
    let r = node
        .put(&format!("{CRDS}/templates.example.com"))
        .json(&crd)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for _ in 0..100 {
        if node.get(path).send().await.status == StatusCode::NOT_FOUND {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("v1alpha1 is still served");
}

#[tokio::test]
async fn field_selectors_take_metadata_and_selectable_fields() {
    let node = node().await;
    node.create(CRDS, widget_crd()).await;
    established(&node, "widgets.example.com").await;
    node.create(WIDGETS, widget("r", json!({"size": 1}))).await;
    node.create(WIDGETS, widget("b", json!({"size": 1, "color": "blue"})))
        .await;
    let names = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let blue = node
        .get(&format!("{WIDGETS}?fieldSelector=spec.color%3Dblue"))
        .send()
        .await;
    assert_eq!(blue.status, StatusCode::OK, "{}", blue.text());
    assert_eq!(names(blue.json()), ["b"]);
    // A defaulted value selects too.
    let red = node
        .get(&format!("{WIDGETS}?fieldSelector=spec.color%3Dred"))
        .send()
        .await;
    assert_eq!(names(red.json()), ["r"]);
    let by_name = node
        .get(&format!("{WIDGETS}?fieldSelector=metadata.name%3Dr"))
        .send()
        .await;
    assert_eq!(names(by_name.json()), ["r"]);
    node.get(&format!("{WIDGETS}?fieldSelector=spec.size%3D1"))
        .send()
        .await
        .status_error(400, "BadRequest", "field label not supported: spec.size");
}

/// Rules as Gateway API writes them: `duration()` comparisons and a property named like a
/// CEL keyword (`namespace`, selected as `__namespace__`) are evaluated as upstream does;
/// an object written through a deprecated version reads at the storage version without
/// that version's own defaulted field.
#[tokio::test]
async fn gateway_style_rules_and_deprecated_version_reads() {
    let node = node().await;
    let rules_schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "parentRefs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "namespace": {"type": "string"}, "sectionName": {"type": "string"}}},
            "x-kubernetes-validations": [{
                "message": "sectionName must be specified when parentRefs includes 2 or more references to the same parent",
                "rule": "self.all(p1, self.all(p2, p1.name == p2.name && (((!has(p1.__namespace__) || p1.__namespace__ == '') && (!has(p2.__namespace__) || p2.__namespace__ == '')) || (has(p1.__namespace__) && has(p2.__namespace__) && p1.__namespace__ == p2.__namespace__)) ? ((!has(p1.sectionName) || p1.sectionName == '') == (!has(p2.sectionName) || p2.sectionName == '')) : true))"}]},
        "timeouts": {"type": "object", "properties": {"request": {"type": "string"}, "backendRequest": {"type": "string"}},
            "x-kubernetes-validations": [{
                "message": "backendRequest timeout cannot be longer than request timeout",
                "rule": "!(has(self.request) && has(self.backendRequest) && duration(self.request) != duration('0s') && duration(self.backendRequest) > duration(self.request))"}]}}}}});
    let mut beta_schema = rules_schema.clone();
    beta_schema["properties"]["spec"]["properties"]["legacyMode"] =
        json!({"type": "string", "default": "compat"});
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "routes.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "routes", "singular": "route", "kind": "Route"},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": rules_schema}},
                {"name": "v1beta1", "served": true, "storage": false, "deprecated": true,
                    "schema": {"openAPIV3Schema": beta_schema}}]}});
    node.create(CRDS, crd).await;
    established(&node, "routes.example.com").await;
    const ROUTES: &str = "/apis/example.com/v1/namespaces/default/routes";
    let route = |name: &str, spec: Value| json!({"apiVersion": "example.com/v1", "kind": "Route", "metadata": {"name": name}, "spec": spec});

    let ok = route(
        "ok",
        json!({"parentRefs": [{"name": "gw", "namespace": "a"}, {"name": "gw", "namespace": "b", "sectionName": "x"}],
            "timeouts": {"request": "10s", "backendRequest": "2s"}}),
    );
    assert_eq!(
        node.post(ROUTES).json(&ok).send().await.status,
        StatusCode::CREATED
    );

    let same_parent = route(
        "same-parent",
        json!({"parentRefs": [{"name": "gw", "namespace": "a"}, {"name": "gw", "namespace": "a", "sectionName": "x"}]}),
    );
    let s = node
        .post(ROUTES)
        .json(&same_parent)
        .send()
        .await
        .status_error(422, "Invalid", "sectionName must be specified");
    assert_eq!(s["details"]["causes"][0]["field"], "spec.parentRefs");

    let slow_backend = route(
        "slow-backend",
        json!({"timeouts": {"request": "1s", "backendRequest": "1m"}}),
    );
    let s = node
        .post(ROUTES)
        .json(&slow_backend)
        .send()
        .await
        .status_error(
            422,
            "Invalid",
            "backendRequest timeout cannot be longer than request timeout",
        );
    assert_eq!(s["details"]["causes"][0]["field"], "spec.timeouts");

    let legacy = json!({"apiVersion": "example.com/v1beta1", "kind": "Route",
        "metadata": {"name": "legacy"}, "spec": {"parentRefs": [{"name": "gw"}]}});
    let r = node
        .post("/apis/example.com/v1beta1/namespaces/default/routes")
        .json(&legacy)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["spec"]["legacyMode"], "compat");
    let at_v1 = node.get(&format!("{ROUTES}/legacy")).send().await.json();
    assert_eq!(at_v1["apiVersion"], "example.com/v1");
    assert_eq!(at_v1["spec"], json!({"parentRefs": [{"name": "gw"}]}));
    let at_beta = node
        .get("/apis/example.com/v1beta1/namespaces/default/routes/legacy")
        .send()
        .await
        .json();
    assert_eq!(at_beta["spec"]["legacyMode"], "compat");
}
