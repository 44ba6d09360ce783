//! The ReplicaSet controller through the HTTP API: pods from the template with a
//! controller reference, replacement, exact scaling, adoption and release, status.

mod common;

use std::time::{Duration, Instant};

use beemesh_workloads::{GarbageCollector, PodTerminationController, ReplicaSetController};
use common::*;
use http::StatusCode;
use serde_json::{Value, json};

const RS: &str = "/apis/apps/v1/namespaces/default/replicasets";
const RC: &str = "/api/v1/namespaces/default/replicationcontrollers";
const PODS: &str = "/api/v1/namespaces/default/pods";
const WAIT: Duration = Duration::from_secs(15);

async fn node() -> Node {
    let node = Node::start().await;
    tokio::spawn(GarbageCollector::new(node.state.service.clone()).run());
    tokio::spawn(PodTerminationController::new(node.state.service.clone()).run());
    tokio::spawn(ReplicaSetController::new(node.state.service.clone()).run());
    node
}

fn replicaset(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {"note": "x"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    })
}

/// Active pods (no deletionTimestamp) with label app=`app`.
async fn active_pods(node: &Node, app: &str) -> Vec<Value> {
    let list = node
        .get(&format!("{PODS}?labelSelector=app%3D{app}"))
        .send()
        .await
        .json();
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
        .collect()
}

/// Polls until `check` holds on the active pods; panics with the last state otherwise.
async fn until_pods(
    node: &Node,
    app: &str,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let pods = active_pods(node, app).await;
        if check(&pods) {
            return pods;
        }
        assert!(
            start.elapsed() < WAIT,
            "{what}: {} pods {pods:?}",
            pods.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn until_status(
    node: &Node,
    path: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let obj = node.get(path).send().await.json();
        if check(&obj["status"]) {
            return obj;
        }
        assert!(start.elapsed() < WAIT, "{what}: {obj}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scale(node: &Node, path: &str, replicas: i64) {
    let r = node
        .patch(&format!("{path}/scale"))
        .merge(&json!({"spec": {"replicas": replicas}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// Holds for a while: the count must stay exact, not just pass through the target.
async fn stays(node: &Node, app: &str, n: usize) {
    for _ in 0..10 {
        let pods = active_pods(node, app).await;
        assert_eq!(pods.len(), n, "{pods:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn creates_replaces_and_scales_exactly() {
    let node = node().await;
    let rs = node.create(RS, replicaset("web", 3)).await;
    let uid = rs["metadata"]["uid"].as_str().unwrap().to_string();
    let pods = until_pods(&node, "web", "3 pods", |p| p.len() == 3).await;
    for p in &pods {
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with("web-"));
        assert_eq!(p["metadata"]["generateName"], "web-");
        assert_eq!(p["metadata"]["annotations"]["note"], "x");
        assert_eq!(
            p["metadata"]["ownerReferences"],
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": uid,
                    "controller": true, "blockOwnerDeletion": true}])
        );
    }
    stays(&node, "web", 3).await;
    // `kubectl describe rs` shows the controller's events.
    let events = node
        .get("/api/v1/namespaces/default/events")
        .send()
        .await
        .json();
    let created: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["uid"] == uid.as_str() && e["reason"] == "SuccessfulCreate")
        .collect();
    assert_eq!(created.len(), 3, "{events}");
    assert!(
        created[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Created pod: web-")
    );
    assert_eq!(created[0]["source"]["component"], "replicaset-controller");
    until_status(&node, &format!("{RS}/web"), "status", |s| {
        s["replicas"] == 3 && s["fullyLabeledReplicas"] == 3 && s["observedGeneration"] == 1
    })
    .await;

    // A deleted pod is replaced.
    let victim = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    let r = node.delete(&format!("{PODS}/{victim}")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    until_pods(&node, "web", "replaced", |p| {
        p.len() == 3 && p.iter().all(|p| p["metadata"]["name"] != victim.as_str())
    })
    .await;

    scale(&node, &format!("{RS}/web"), 5).await;
    until_pods(&node, "web", "5 pods", |p| p.len() == 5).await;
    stays(&node, "web", 5).await;
    scale(&node, &format!("{RS}/web"), 1).await;
    until_pods(&node, "web", "1 pod", |p| p.len() == 1).await;
    stays(&node, "web", 1).await;
    until_status(&node, &format!("{RS}/web"), "scaled status", |s| {
        s["replicas"] == 1 && s["observedGeneration"] == 3
    })
    .await;
}

#[tokio::test]
async fn ready_pods_are_counted_and_failed_pods_replaced() {
    let node = node().await;
    node.create(RS, replicaset("ready", 2)).await;
    let pods = until_pods(&node, "ready", "2 pods", |p| p.len() == 2).await;
    let first = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    let r = node
        .patch(&format!("{PODS}/{first}/status"))
        .merge(&json!({"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    until_status(&node, &format!("{RS}/ready"), "ready status", |s| {
        s["replicas"] == 2 && s["readyReplicas"] == 1 && s["availableReplicas"] == 1
    })
    .await;
    // kubectl get rs reads these columns from status.
    let second = pods[1]["metadata"]["name"].as_str().unwrap().to_string();
    let r = node
        .patch(&format!("{PODS}/{second}/status"))
        .merge(&json!({"status": {"phase": "Failed"}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    until_pods(&node, "ready", "failed pod replaced", |p| {
        p.iter()
            .filter(|p| p["status"]["phase"] != "Failed")
            .count()
            == 2
    })
    .await;
}

#[tokio::test]
async fn adopts_orphans_and_releases_pods_that_stop_matching() {
    let node = node().await;
    let mut orphan = pod("orphan", None);
    orphan["metadata"]["labels"] = json!({"app": "adopt"});
    node.create(PODS, orphan).await;
    let rs = node.create(RS, replicaset("adopt", 2)).await;
    let pods = until_pods(&node, "adopt", "2 pods", |p| p.len() == 2).await;
    stays(&node, "adopt", 2).await;
    let adopted = node.get(&format!("{PODS}/orphan")).send().await.json();
    assert_eq!(
        adopted["metadata"]["ownerReferences"][0]["uid"],
        rs["metadata"]["uid"]
    );
    // Relabel one: it is released and replaced.
    let name = pods
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .find(|n| n != "orphan")
        .unwrap();
    let r = node
        .patch(&format!("{PODS}/{name}"))
        .merge(&json!({"metadata": {"labels": {"app": "gone"}}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    until_pods(&node, "adopt", "replacement", |p| p.len() == 2).await;
    let start = Instant::now();
    loop {
        let released = node.get(&format!("{PODS}/{name}")).send().await.json();
        if released["metadata"].get("ownerReferences").is_none()
            || released["metadata"]["ownerReferences"] == json!([])
        {
            break;
        }
        assert!(start.elapsed() < WAIT, "not released: {released}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn replication_controllers_get_pods_too() {
    let node = node().await;
    let rc = node
        .create(
            RC,
            json!({
                "apiVersion": "v1", "kind": "ReplicationController",
                "metadata": {"name": "legacy"},
                "spec": {"replicas": 2, "selector": {"app": "legacy"},
                         "template": {"metadata": {"labels": {"app": "legacy"}},
                                      "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
            }),
        )
        .await;
    let pods = until_pods(&node, "legacy", "2 pods", |p| p.len() == 2).await;
    assert_eq!(
        pods[0]["metadata"]["ownerReferences"][0]["kind"],
        "ReplicationController"
    );
    assert_eq!(
        pods[0]["metadata"]["ownerReferences"][0]["apiVersion"],
        "v1"
    );
    assert_eq!(
        pods[0]["metadata"]["ownerReferences"][0]["uid"],
        rc["metadata"]["uid"]
    );
    until_status(&node, &format!("{RC}/legacy"), "rc status", |s| {
        s["replicas"] == 2
    })
    .await;
    // Deleting the RC with background propagation (what kubectl sends; a bare v1 DELETE
    // orphans) lets the garbage collector take the pods.
    let r = node
        .delete(&format!("{RC}/legacy"))
        .json(&json!({"propagationPolicy": "Background"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    until_pods(&node, "legacy", "pods collected", |p| p.is_empty()).await;
}

/// Two controllers acting on the same ReplicaSets (as two nodes may during membership
/// churn) may briefly over-create, but the count settles at exactly `replicas`.
#[tokio::test]
async fn a_double_reconcile_settles_at_replicas() {
    let node = node().await;
    tokio::spawn(ReplicaSetController::new(node.state.service.clone()).run());
    node.create(RS, replicaset("twice", 4)).await;
    until_pods(&node, "twice", "4 pods", |p| p.len() == 4).await;
    stays(&node, "twice", 4).await;
    scale(&node, &format!("{RS}/twice"), 2).await;
    until_pods(&node, "twice", "2 pods", |p| p.len() == 2).await;
    stays(&node, "twice", 2).await;
}
