//! A patch without a resourceVersion of its own is retried on a concurrent write, as
//! upstream's patcher does, instead of failing with 409; one that names a stale
//! resourceVersion still fails.

mod common;

use common::*;
use http::StatusCode;
use serde_json::json;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn concurrent_patches_all_land() {
    let node = Node::start().await;
    let created = node.create(CMS, configmap("shared", json!({}))).await;
    let patches = (0..16).map(|i| {
        let node = &node;
        async move {
            node.patch(&format!("{CMS}/shared"))
                .merge(&json!({"data": {format!("k{i}"): "v"}}))
                .send()
                .await
                .status
        }
    });
    let codes = futures::future::join_all(patches).await;
    assert!(codes.iter().all(|c| *c == StatusCode::OK), "{codes:?}");
    let got = node.get(&format!("{CMS}/shared")).send().await.json();
    assert_eq!(got["data"].as_object().map(|d| d.len()), Some(17), "{got}");

    node.patch(&format!("{CMS}/shared"))
        .merge(&json!({"metadata": {"resourceVersion": rv(&created)}, "data": {"late": "x"}}))
        .send()
        .await
        .status_error(409, "Conflict", "the object has been modified");
}

/// `kubectl scale` patches `/scale` while the object's controller writes its status: the
/// Scale's resourceVersion the patch inherits is no precondition either.
#[tokio::test]
async fn concurrent_scale_patches_and_status_writes_all_land() {
    const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";
    let node = Node::start().await;
    node.create(DEPLOYS, deployment("web", 1)).await;
    let scales = (0..8).map(|i| {
        let node = &node;
        async move {
            node.patch(&format!("{DEPLOYS}/web/scale"))
                .merge(&json!({"spec": {"replicas": i}}))
                .send()
                .await
                .status
        }
    });
    let statuses = (0..8).map(|i| {
        let node = &node;
        async move {
            node.patch(&format!("{DEPLOYS}/web/status"))
                .merge(&json!({"status": {"observedGeneration": i}}))
                .send()
                .await
                .status
        }
    });
    let (a, b) = futures::future::join(
        futures::future::join_all(scales),
        futures::future::join_all(statuses),
    )
    .await;
    assert!(
        a.iter().chain(&b).all(|c| *c == StatusCode::OK),
        "{a:?} {b:?}"
    );

    let scale = node
        .get(&format!("{DEPLOYS}/web/scale"))
        .send()
        .await
        .json();
    node.patch(&format!("{DEPLOYS}/web/status"))
        .merge(&json!({"status": {"observedGeneration": 99}}))
        .send()
        .await;
    node.put(&format!("{DEPLOYS}/web/scale"))
        .json(&json!({
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": rv(&scale)},
            "spec": {"replicas": 3}
        }))
        .send()
        .await
        .status_error(409, "Conflict", "the object has been modified");
}
