//! Custom resources as clients discover and print them: discovery documents, OpenAPI
//! documents, Table output from `additionalPrinterColumns`, and deprecation warnings, as soon
//! as a CRD version is in the registry (here inserted directly, as CRD registration does).

mod common;

use std::sync::Arc;

use beemesh_apiserver::discovery::storage_version_hash;
use beemesh_translator::registry::CustomVersion;
use beemesh_translator::{ResourceInfo, SubresourceInfo};
use common::*;
use http::StatusCode;
use serde_json::{Value, json};

const V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const V2BETA1: &str = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";

fn widget_version(version: &str, storage: bool, deprecation: Option<&str>) -> ResourceInfo {
    let verbs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    ResourceInfo {
        group: "example.com".into(),
        version: version.into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
        singular: "widget".into(),
        namespaced: true,
        // As registration stores them; discovery lists them in upstream's CRD order.
        verbs: verbs(&[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]),
        short_names: vec!["wd".into()],
        categories: vec!["all".into(), "gadgets".into()],
        subresources: vec![
            SubresourceInfo {
                name: "status".into(),
                group: "example.com".into(),
                version: version.into(),
                kind: "Widget".into(),
                verbs: verbs(&["get", "patch", "update"]),
            },
            SubresourceInfo {
                name: "scale".into(),
                group: "autoscaling".into(),
                version: "v1".into(),
                kind: "Scale".into(),
                verbs: verbs(&["get", "patch", "update"]),
            },
        ],
        list_kind: "WidgetList".into(),
        definition: String::new(),
        custom: Some(Arc::new(CustomVersion {
            crd_name: "widgets.example.com".into(),
            schema: Some(json!({
                "type": "object",
                "description": "Widget is a test kind.",
                "properties": {
                    "spec": {
                        "type": "object",
                        "description": "What the widget should be.",
                        "properties": {
                            "replicas": {"type": "integer", "description": "How many."},
                            "colour": {"type": "string"}
                        }
                    },
                    "status": {
                        "type": "object",
                        "properties": {
                            "conditions": {"type": "array", "items": {
                                "type": "object",
                                "properties": {"type": {"type": "string"}, "status": {"type": "string"}}
                            }}
                        }
                    }
                }
            })),
            printer_columns: vec![
                json!({"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}),
                json!({"name": "Ready", "type": "string",
                       "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}),
                json!({"name": "Colour", "type": "string", "jsonPath": ".spec.colour",
                       "priority": 1, "description": "The paint."}),
                json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
            ],
            scale: Some(json!({"specReplicasPath": ".spec.replicas",
                               "statusReplicasPath": ".status.replicas"})),
            status: true,
            storage,
            deprecation_warning: deprecation.map(str::to_string),
            selectable_fields: Vec::new(),
        })),
    }
}

/// A node serving widgets at v1 (storage), v1beta1 (deprecated) and v2alpha1.
async fn node_with_widgets() -> Node {
    let node = Node::start().await;
    // Inserted out of priority order: discovery must still prefer v1.
    node.state.registry.insert(widget_version(
        "v1beta1",
        false,
        Some("example.com/v1beta1 Widget is deprecated"),
    ));
    node.state
        .registry
        .insert(widget_version("v2alpha1", false, None));
    node.state.registry.insert(widget_version("v1", true, None));
    node
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .find(|e| e[key] == value)
        .unwrap_or_else(|| panic!("no {key}={value} in {list}"))
}

#[tokio::test]
async fn discovery_lists_custom_resources_with_the_preferred_version_first() {
    let node = Node::start().await;
    let before = node.get("/apis").send().await.json();
    assert!(
        before["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["name"] != "example.com")
    );
    node.state.registry.insert(widget_version(
        "v1beta1",
        false,
        Some("example.com/v1beta1 Widget is deprecated"),
    ));
    node.state
        .registry
        .insert(widget_version("v2alpha1", false, None));
    node.state.registry.insert(widget_version("v1", true, None));

    // Legacy discovery.
    let groups = node.get("/apis").send().await.json();
    let group = find(&groups["groups"], "name", "example.com");
    assert_eq!(group["preferredVersion"]["version"], "v1");
    let versions: Vec<&str> = group["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v1", "v1beta1", "v2alpha1"]);
    let g = node.get("/apis/example.com").send().await.json();
    assert_eq!(g["preferredVersion"]["groupVersion"], "example.com/v1");

    let list = node.get("/apis/example.com/v1beta1").send().await;
    assert_eq!(list.status, StatusCode::OK);
    let list = list.json();
    let widgets = find(&list["resources"], "name", "widgets");
    assert_eq!(widgets["singularName"], "widget");
    assert_eq!(widgets["kind"], "Widget");
    assert_eq!(widgets["shortNames"], json!(["wd"]));
    assert_eq!(widgets["categories"], json!(["all", "gadgets"]));
    assert_eq!(
        widgets["verbs"],
        json!([
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch"
        ])
    );
    // Every served version reports the storage version's hash.
    assert_eq!(
        widgets["storageVersionHash"],
        storage_version_hash("example.com", "v1", "Widget")
    );
    let scale = find(&list["resources"], "name", "widgets/scale");
    assert_eq!(scale["group"], "autoscaling");
    assert_eq!(scale["version"], "v1");
    assert_eq!(scale["kind"], "Scale");
    let status = find(&list["resources"], "name", "widgets/status");
    assert_eq!(status["verbs"], json!(["get", "patch", "update"]));

    // Aggregated discovery, both versions kubectl asks for.
    for accept in [V2, V2BETA1] {
        let doc = node.get("/apis").accept(accept).send().await;
        assert_eq!(doc.header("content-type"), Some(accept));
        let doc = doc.json();
        let item = doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "example.com")
            .unwrap();
        assert_eq!(item["versions"][0]["version"], "v1");
        let widgets = find(&item["versions"][0]["resources"], "resource", "widgets");
        assert_eq!(widgets["scope"], "Namespaced");
        assert_eq!(widgets["singularResource"], "widget");
        assert_eq!(widgets["shortNames"], json!(["wd"]));
        assert_eq!(widgets["categories"], json!(["all", "gadgets"]));
        let scale = find(&widgets["subresources"], "subresource", "scale");
        assert_eq!(
            scale["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
    }

    // And they go away with the CRD.
    for v in ["v1", "v1beta1", "v2alpha1"] {
        node.state.registry.remove("example.com", v, "widgets");
    }
    let doc = node.get("/apis").accept(V2).send().await.json();
    assert!(
        doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["metadata"]["name"] != "example.com")
    );
    let r = node.get("/apis/example.com/v1").send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn openapi_documents_follow_custom_resources() {
    let node = Node::start().await;
    let index = node.get("/openapi/v3").send().await.json();
    assert!(index["paths"].get("apis/example.com/v1").is_none());
    // Build the documents once before the CRD arrives, so staleness would show.
    let v2_before: Value = node.get("/openapi/v2").send().await.json();
    assert!(
        v2_before["definitions"]
            .get("com.example.v1.Widget")
            .is_none()
    );

    node.state.registry.insert(widget_version("v1", true, None));
    let index = node.get("/openapi/v3").send().await.json();
    let url = index["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .expect("the CRD's group-version is in the v3 index")
        .to_string();
    let doc = node.get(&url).send().await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.header("cache-control"), Some("public, immutable"));
    let doc = doc.json();
    let widget = &doc["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(
        widget["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "Widget", "version": "v1"}])
    );
    assert_eq!(
        widget["properties"]["spec"]["properties"]["replicas"]["description"],
        "How many."
    );
    assert!(
        doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object()
    );

    let v2: Value = node.get("/openapi/v2").send().await.json();
    assert_eq!(
        v2["definitions"]["com.example.v1.Widget"]["properties"]["spec"]["description"],
        "What the widget should be."
    );
    assert_eq!(
        v2["definitions"]["com.example.v1.WidgetList"]["x-kubernetes-group-version-kind"][0]["kind"],
        "WidgetList"
    );
    let proto = node
        .get("/openapi/v2")
        .accept("application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
        .send()
        .await;
    assert_eq!(proto.status, StatusCode::OK);
    assert!(
        proto
            .body
            .windows(b"com.example.v1.Widget".len())
            .any(|w| w == b"com.example.v1.Widget")
    );
}

fn widget(name: &str, replicas: i64, ready: &str) -> Value {
    json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "colour": "blue"},
        "status": {"conditions": [{"type": "Synced", "status": "True"},
                                  {"type": "Ready", "status": ready}]}
    })
}

#[tokio::test]
async fn tables_print_the_crd_columns() {
    let node = Node::start().await;
    // Without the status subresource, so the created object keeps its conditions.
    let mut v1 = widget_version("v1", true, None);
    v1.subresources.retain(|s| s.name != "status");
    if let Some(c) = v1.custom.as_mut() {
        Arc::make_mut(c).status = false;
    }
    node.state.registry.insert(v1);
    node.create(WIDGETS, widget("w1", 3, "False")).await;

    let r = node.get(WIDGETS).accept(TABLE_ACCEPT).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let t = r.json();
    assert_eq!(t["kind"], "Table");
    let columns: Vec<(&str, &str, i64)> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["type"].as_str().unwrap(),
                c["priority"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        columns,
        [
            ("Name", "string", 0),
            ("Replicas", "integer", 0),
            ("Ready", "string", 0),
            ("Colour", "string", 1),
            ("Age", "date", 0)
        ]
    );
    assert_eq!(t["columnDefinitions"][3]["description"], "The paint.");
    assert_eq!(
        t["columnDefinitions"][1]["description"],
        "Custom resource definition column (in JSONPath format): .spec.replicas"
    );
    let cells = &t["rows"][0]["cells"];
    assert_eq!(cells[0], "w1");
    assert_eq!(cells[1], 3);
    assert_eq!(cells[2], "False");
    assert_eq!(cells[3], "blue");
    // Dates are ages, as upstream renders them.
    let age = cells[4].as_str().unwrap();
    assert!(age.ends_with('s'), "{age}");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");

    // A single object too.
    let one = node
        .get(&format!("{WIDGETS}/w1"))
        .accept(TABLE_ACCEPT)
        .send()
        .await
        .json();
    assert_eq!(one["rows"][0]["cells"][1], 3);

    // Watches carry Tables with the same columns (definitions on the first event only).
    let mut watch = node
        .get(&format!("{WIDGETS}?watch=true"))
        .accept(TABLE_ACCEPT)
        .stream()
        .await;
    let first = watch.next().await;
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["kind"], "Table");
    assert_eq!(first["object"]["columnDefinitions"][1]["name"], "Replicas");
    assert_eq!(first["object"]["rows"][0]["cells"][2], "False");
}

#[tokio::test]
async fn crds_without_columns_print_name_and_age() {
    let node = Node::start().await;
    let mut plain = widget_version("v1", true, None);
    if let Some(c) = plain.custom.as_mut() {
        Arc::make_mut(c).printer_columns.clear();
    }
    node.state.registry.insert(plain);
    node.create(WIDGETS, widget("w1", 1, "True")).await;
    let t = node.get(WIDGETS).accept(TABLE_ACCEPT).send().await.json();
    let names: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Age"]);
    assert_eq!(t["columnDefinitions"][1]["type"], "date");
    assert_eq!(t["rows"][0]["cells"][0], "w1");
}

#[tokio::test]
async fn deprecated_versions_warn() {
    let node = node_with_widgets().await;
    let path = "/apis/example.com/v1beta1/namespaces/default/widgets";
    let r = node.get(path).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.warnings(),
        ["299 - \"example.com/v1beta1 Widget is deprecated\"".to_string()]
    );
    // Errors warn too.
    let r = node.get(&format!("{path}/missing")).send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.warnings().len(), 1);
    // A version's own text wins, an empty one silences the warning; others do not warn.
    node.state
        .registry
        .insert(widget_version("v1beta1", false, Some("")));
    assert!(node.get(path).send().await.warnings().is_empty());
    node.state.registry.insert(widget_version(
        "v1beta1",
        false,
        Some("example.com/v1beta1 Widget is going away; use v1"),
    ));
    let r = node.get(path).send().await;
    assert_eq!(
        r.warnings(),
        ["299 - \"example.com/v1beta1 Widget is going away; use v1\"".to_string()]
    );
    let r = node.get(WIDGETS).send().await;
    assert!(r.warnings().is_empty());
}
