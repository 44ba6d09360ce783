//! `dryRun=All` on every write path: the answer is the object as it would be stored
//! (server-set metadata, defaults, generation), yet nothing is stored, no revision is
//! consumed and no watcher hears of it.

mod common;

use std::time::Duration;

use common::{Node, Stream, deployment, rv};
use http::StatusCode;
use serde_json::{Value, json};

const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments";

/// A watch on deployments from the current revision.
async fn watch_from_now(node: &Node) -> Stream {
    let r = node.get(DEPLOY).send().await.json();
    let from = r["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let w = node
        .get(&format!("{DEPLOY}?watch=true&resourceVersion={from}"))
        .stream()
        .await;
    assert_eq!(w.status, StatusCode::OK);
    w
}

/// Asserts that `write` answered `code`, changed nothing and emitted nothing.
async fn assert_dry(node: &Node, watch: &mut Stream, what: &str, stored: &Value, before: u64) {
    assert_eq!(node.revision(), before, "{what}: a revision was consumed");
    let now = node.get(&format!("{DEPLOY}/web")).send().await.json();
    assert_eq!(&now, stored, "{what}: the stored object changed");
    let ev = watch.next_within(Duration::from_millis(200)).await;
    assert!(ev.is_none(), "{what}: a watch event was sent: {ev:?}");
}

#[tokio::test]
async fn every_write_path_answers_without_storing() {
    let node = Node::start().await;
    let stored = node.create(DEPLOY, deployment("web", 1)).await;
    let before = node.revision();
    let mut watch = watch_from_now(&node).await;

    // create: uid, creationTimestamp, generation and defaults, but no resourceVersion
    // (upstream copies the object it would create, which has none yet).
    let r = node
        .post(&format!("{DEPLOY}?dryRun=All"))
        .json(&deployment("new", 2))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let would = r.json();
    assert!(
        would["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty())
    );
    assert!(would["metadata"]["creationTimestamp"].is_string());
    assert_eq!(would["metadata"]["generation"], 1);
    assert!(
        would["metadata"].get("resourceVersion").is_none(),
        "{would}"
    );
    assert_eq!(
        would["spec"]["strategy"]["type"], "RollingUpdate",
        "defaults applied"
    );
    assert_eq!(would["spec"]["revisionHistoryLimit"], 10);
    assert!(would.get("status").is_none());
    node.get(&format!("{DEPLOY}/new"))
        .send()
        .await
        .status_error(404, "NotFound", "deployments.apps \"new\" not found");
    assert_dry(&node, &mut watch, "create", &stored, before).await;

    // update (PUT): the new spec bumps the generation; the resourceVersion stays the
    // current one (nothing new was written).
    let mut put = stored.clone();
    put["spec"]["replicas"] = json!(3);
    let r = node
        .put(&format!("{DEPLOY}/web?dryRun=All"))
        .json(&put)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let would = r.json();
    assert_eq!(would["spec"]["replicas"], 3);
    assert_eq!(would["metadata"]["generation"], 2);
    assert_eq!(rv(&would), rv(&stored));
    assert_eq!(would["metadata"]["uid"], stored["metadata"]["uid"]);
    assert_dry(&node, &mut watch, "update", &stored, before).await;

    // A stale resourceVersion still conflicts under dryRun.
    let mut stale = put.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    node.put(&format!("{DEPLOY}/web?dryRun=All"))
        .json(&stale)
        .send()
        .await
        .status_error(409, "Conflict", "the object has been modified");

    // Every patch type.
    let patched = [
        (
            "merge",
            node.patch(&format!("{DEPLOY}/web?dryRun=All"))
                .merge(&json!({"spec": {"replicas": 4}})),
        ),
        (
            "strategic",
            node.patch(&format!("{DEPLOY}/web?dryRun=All")).strategic(
                &json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}}),
            ),
        ),
        (
            "json",
            node.patch(&format!("{DEPLOY}/web?dryRun=All"))
                .json_patch(&json!([{"op": "replace", "path": "/spec/replicas", "value": 5}])),
        ),
    ];
    for (what, req) in patched {
        let r = req.send().await;
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text());
        let would = r.json();
        assert_eq!(would["metadata"]["generation"], 2, "{what}: {would}");
        assert_dry(&node, &mut watch, what, &stored, before).await;
    }

    // status and scale subresources.
    let r = node
        .put(&format!("{DEPLOY}/web/status?dryRun=All"))
        .json(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": "web"}, "status": {"replicas": 1, "readyReplicas": 1}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["status"]["readyReplicas"], 1);
    assert_dry(&node, &mut watch, "status put", &stored, before).await;
    let r = node
        .patch(&format!("{DEPLOY}/web/status?dryRun=All"))
        .merge(&json!({"status": {"availableReplicas": 1}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_dry(&node, &mut watch, "status patch", &stored, before).await;
    let r = node
        .patch(&format!("{DEPLOY}/web/scale?dryRun=All"))
        .merge(&json!({"spec": {"replicas": 7}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["spec"]["replicas"], 7);
    assert_dry(&node, &mut watch, "scale patch", &stored, before).await;
    let r = node
        .put(&format!("{DEPLOY}/web/scale?dryRun=All"))
        .json(&json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                      "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 6}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["spec"]["replicas"], 6);
    assert_dry(&node, &mut watch, "scale put", &stored, before).await;

    // delete (query and DeleteOptions forms) and deletecollection.
    let r = node
        .delete(&format!("{DEPLOY}/web?dryRun=All"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_dry(&node, &mut watch, "delete", &stored, before).await;
    let r = node
        .delete(&format!("{DEPLOY}/web"))
        .json(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_dry(&node, &mut watch, "delete (options)", &stored, before).await;
    let r = node.delete(&format!("{DEPLOY}?dryRun=All")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(common::names(&r.json()), ["web"]);
    assert_dry(&node, &mut watch, "deletecollection", &stored, before).await;

    // The watch was live all along: a real write reaches it.
    let r = node
        .patch(&format!("{DEPLOY}/web"))
        .merge(&json!({"spec": {"replicas": 2}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let ev = watch.next().await;
    assert_eq!(ev["type"], "MODIFIED");
    assert_eq!(ev["object"]["spec"]["replicas"], 2);
    assert!(node.revision() > before);
}

#[tokio::test]
async fn dry_run_delete_checks_preconditions() {
    let node = Node::start().await;
    let stored = node.create(DEPLOY, deployment("web", 1)).await;
    let before = node.revision();
    node.delete(&format!("{DEPLOY}/web?dryRun=All"))
        .json(&json!({"kind": "DeleteOptions", "apiVersion": "v1",
                      "preconditions": {"uid": "not-the-uid"}}))
        .send()
        .await
        .status_error(
            409,
            "Conflict",
            "Precondition failed: UID in precondition: not-the-uid",
        );
    node.delete(&format!("{DEPLOY}/web?dryRun=All"))
        .json(&json!({"kind": "DeleteOptions", "apiVersion": "v1",
                      "preconditions": {"resourceVersion": "1"}}))
        .send()
        .await
        .status_error(409, "Conflict", "Precondition failed");
    let r = node
        .delete(&format!("{DEPLOY}/web?dryRun=All"))
        .json(&json!({"kind": "DeleteOptions", "apiVersion": "v1",
                      "preconditions": {"uid": stored["metadata"]["uid"], "resourceVersion": rv(&stored)}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(node.revision(), before);
    node.delete(&format!("{DEPLOY}/missing?dryRun=All"))
        .send()
        .await
        .status_error(404, "NotFound", "not found");
}
