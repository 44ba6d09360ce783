//! `Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1[beta1]`, as
//! client-go's metadata client and metadata-only informers send it: get, paged lists,
//! watches, protobuf-first Accept headers (answered in JSON), and 406s.

mod common;

use common::{Node, configmap};
use http::StatusCode;
use serde_json::json;

const CM: &str = "/api/v1/namespaces/default/configmaps";
/// What client-go's metadata client sends for a Get and a Watch.
const POM: &str = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
/// What it sends for a List.
const POM_LIST: &str = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

#[tokio::test]
async fn get_answers_metadata_only() {
    let node = Node::start().await;
    let created = node.create(CM, configmap("a", json!({"app": "web"}))).await;
    for (accept, version) in [
        (POM, "meta.k8s.io/v1"),
        (
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1",
            "meta.k8s.io/v1beta1",
        ),
    ] {
        let r = node.get(&format!("{CM}/a")).accept(accept).send().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "JSON even when protobuf is preferred: {:?}",
            r.header("content-type")
        );
        let body = r.json();
        assert_eq!(
            body,
            json!({"kind": "PartialObjectMetadata", "apiVersion": version,
                   "metadata": created["metadata"]})
        );
        assert!(body.get("data").is_none());
    }
}

#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let node = Node::start().await;
    for name in ["a", "b", "c"] {
        node.create(CM, configmap(name, json!({}))).await;
    }
    let r = node
        .get(&format!("{CM}?limit=2"))
        .accept(POM_LIST)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let page = r.json();
    assert_eq!(page["kind"], "PartialObjectMetadataList");
    assert_eq!(page["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(common::names(&page), ["a", "b"]);
    assert_eq!(page["metadata"]["remainingItemCount"], 1);
    for item in page["items"].as_array().unwrap() {
        assert_eq!(item["kind"], "PartialObjectMetadata");
        assert_eq!(item["apiVersion"], "meta.k8s.io/v1");
        assert!(item.get("data").is_none(), "{item}");
        assert!(item["metadata"]["uid"].is_string());
    }
    let token = page["metadata"]["continue"].as_str().unwrap();
    let rest = node
        .get(&format!("{CM}?limit=2&continue={token}"))
        .accept(POM_LIST)
        .send()
        .await
        .json();
    assert_eq!(common::names(&rest), ["c"]);
    assert!(rest["metadata"].get("continue").is_none());
    assert_eq!(
        rest["metadata"]["resourceVersion"], page["metadata"]["resourceVersion"],
        "one snapshot"
    );
    let beta = node
        .get(CM)
        .accept("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1")
        .send()
        .await
        .json();
    assert_eq!(beta["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(beta["items"][0]["apiVersion"], "meta.k8s.io/v1beta1");
}

#[tokio::test]
async fn watch_events_carry_partial_object_metadata() {
    let node = Node::start().await;
    node.create(CM, configmap("a", json!({}))).await;
    let mut w = node
        .get(&format!("{CM}?watch=true"))
        .accept(POM)
        .stream()
        .await;
    assert_eq!(w.status, StatusCode::OK);
    let ev = w.next().await;
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(ev["object"]["metadata"]["name"], "a");
    assert!(ev["object"].get("data").is_none());
    let r = node
        .patch(&format!("{CM}/a"))
        .merge(&json!({"metadata": {"labels": {"x": "1"}}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let ev = w.next().await;
    assert_eq!(ev["type"], "MODIFIED");
    assert_eq!(
        ev["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
               "metadata": r.json()["metadata"]})
    );
}

#[tokio::test]
async fn unacceptable_kinds_are_406() {
    let node = Node::start().await;
    node.create(CM, configmap("a", json!({}))).await;
    for accept in [
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v2",
        "application/json;as=PartialObjectMetadata;g=apps;v=v1",
        "application/json;as=Partial;g=meta.k8s.io;v=v1",
    ] {
        let r = node.get(&format!("{CM}/a")).accept(accept).send().await;
        r.status_error(406, "NotAcceptable", "");
    }
    // The kind must fit the endpoint (upstream's asPartialObjectMetadata[List]).
    node.get(&format!("{CM}/a"))
        .accept("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
        .send()
        .await
        .status_error(
            406,
            "NotAcceptable",
            "you requested PartialObjectMetadataList, but the requested object is not a list (*core.ConfigMap)",
        );
    node.get(CM)
        .accept("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")
        .send()
        .await
        .status_error(
            406,
            "NotAcceptable",
            "you requested PartialObjectMetadata, but the requested object is a list (*core.ConfigMapList)",
        );
}
