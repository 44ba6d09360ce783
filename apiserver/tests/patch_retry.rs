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
