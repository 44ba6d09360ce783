//! Deletion semantics through the HTTP API with the garbage collector and the pod
//! termination controller running on the node: propagation policies, several owners,
//! cycles, dangling owners, dry runs, deleteCollection, pod grace periods, bad owner
//! references.

mod common;

use std::time::{Duration, Instant};

use beemesh_workloads::{GarbageCollector, PodTerminationController};
use common::*;
use http::StatusCode;
use serde_json::{Value, json};

const CM: &str = "/api/v1/namespaces/default/configmaps";
const PODS: &str = "/api/v1/namespaces/default/pods";

async fn node_with_gc() -> Node {
    let node = Node::start().await;
    tokio::spawn(GarbageCollector::new(node.state.service.clone()).run());
    tokio::spawn(PodTerminationController::new(node.state.service.clone()).run());
    node
}

fn owned_by(name: &str, owners: &[(&Value, bool)]) -> Value {
    let mut obj = configmap(name, json!({}));
    obj["metadata"]["ownerReferences"] = Value::Array(
        owners
            .iter()
            .map(|(o, block)| {
                json!({"apiVersion": o["apiVersion"].as_str().unwrap_or("v1"),
                       "kind": o["kind"], "name": o["metadata"]["name"],
                       "uid": o["metadata"]["uid"], "blockOwnerDeletion": block})
            })
            .collect(),
    );
    obj
}

/// Polls until GET answers 404 (true) or `within` passes (false).
async fn gone_within(node: &Node, path: &str, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if node.get(path).send().await.status == StatusCode::NOT_FOUND {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn get(node: &Node, path: &str) -> Value {
    let r = node.get(path).send().await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    r.json()
}

async fn delete(node: &Node, path: &str, body: Value) -> Value {
    let r = node.delete(path).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    r.json()
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn background_deletes_the_owner_now_and_the_dependents_after() {
    let node = node_with_gc().await;
    let owner = node.create(CM, configmap("owner", json!({}))).await;
    node.create(CM, owned_by("dep1", &[(&owner, false)])).await;
    node.create(CM, owned_by("dep2", &[(&owner, true)])).await;
    // A dependent of a dependent goes too (cascade).
    let dep2 = get(&node, &format!("{CM}/dep2")).await;
    node.create(CM, owned_by("grandchild", &[(&dep2, false)]))
        .await;
    let status = delete(
        &node,
        &format!("{CM}/owner"),
        json!({"propagationPolicy": "Background"}),
    )
    .await;
    assert_eq!(status["kind"], "Status", "{status}");
    node.get(&format!("{CM}/owner")).send().await.status_error(
        404,
        "NotFound",
        "configmaps \"owner\" not found",
    );
    for dep in ["dep1", "dep2", "grandchild"] {
        assert!(
            gone_within(&node, &format!("{CM}/{dep}"), WAIT).await,
            "{dep}"
        );
    }
}

#[tokio::test]
async fn foreground_holds_the_owner_until_blocking_dependents_are_gone() {
    let node = node_with_gc().await;
    let owner = node.create(CM, configmap("fg", json!({}))).await;
    let mut held = owned_by("held-dep", &[(&owner, true)]);
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    node.create(CM, held).await;
    node.create(CM, owned_by("free-dep", &[(&owner, false)]))
        .await;
    let marked = delete(
        &node,
        &format!("{CM}/fg"),
        json!({"propagationPolicy": "Foreground"}),
    )
    .await;
    assert_eq!(
        marked["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    // Dependents are deleted; the held one only gets its deletionTimestamp.
    assert!(gone_within(&node, &format!("{CM}/free-dep"), WAIT).await);
    let start = Instant::now();
    loop {
        let dep = get(&node, &format!("{CM}/held-dep")).await;
        if dep["metadata"]["deletionTimestamp"].is_string() {
            break;
        }
        assert!(start.elapsed() < WAIT, "held-dep was never deleted: {dep}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = get(&node, &format!("{CM}/fg")).await;
    assert_eq!(
        still["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    let r = node
        .patch(&format!("{CM}/held-dep"))
        .merge(&json!({"metadata": {"finalizers": null}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(gone_within(&node, &format!("{CM}/fg"), WAIT).await);
}

#[tokio::test]
async fn orphan_strips_the_reference_and_keeps_the_dependents() {
    let node = node_with_gc().await;
    let owner = node.create(CM, configmap("or", json!({}))).await;
    node.create(CM, owned_by("kept", &[(&owner, true)])).await;
    let marked = delete(
        &node,
        &format!("{CM}/or"),
        json!({"propagationPolicy": "Orphan"}),
    )
    .await;
    assert_eq!(marked["metadata"]["finalizers"], json!(["orphan"]));
    assert!(gone_within(&node, &format!("{CM}/or"), WAIT).await);
    let kept = get(&node, &format!("{CM}/kept")).await;
    assert!(kept["metadata"].get("ownerReferences").is_none(), "{kept}");
    // The legacy orphanDependents=true asks for the same.
    let owner = node.create(CM, configmap("or2", json!({}))).await;
    node.create(CM, owned_by("kept2", &[(&owner, false)])).await;
    delete(&node, &format!("{CM}/or2?orphanDependents=true"), json!({})).await;
    assert!(gone_within(&node, &format!("{CM}/or2"), WAIT).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    get(&node, &format!("{CM}/kept2")).await;
}

#[tokio::test]
async fn several_owners_keep_a_dependent_until_the_last_goes() {
    let node = node_with_gc().await;
    let a = node.create(CM, configmap("a", json!({}))).await;
    let b = node.create(CM, configmap("b", json!({}))).await;
    node.create(CM, owned_by("shared", &[(&a, false), (&b, false)]))
        .await;
    delete(&node, &format!("{CM}/a"), json!({})).await;
    // The dangling reference is dropped; the dependent stays with its live owner.
    let start = Instant::now();
    loop {
        let dep = get(&node, &format!("{CM}/shared")).await;
        let refs = dep["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if refs.len() == 1 {
            assert_eq!(refs[0]["name"], "b");
            break;
        }
        assert!(start.elapsed() < WAIT, "{dep}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    delete(&node, &format!("{CM}/b"), json!({})).await;
    assert!(gone_within(&node, &format!("{CM}/shared"), WAIT).await);
}

#[tokio::test]
async fn foreground_deletion_of_an_ownership_cycle_finishes() {
    let node = node_with_gc().await;
    let a = node.create(CM, configmap("ca", json!({}))).await;
    let b = node.create(CM, owned_by("cb", &[(&a, true)])).await;
    let r = node
        .patch(&format!("{CM}/ca"))
        .merge(
            &json!({"metadata": {"ownerReferences": [{"apiVersion": "v1",
            "kind": "ConfigMap", "name": "cb", "uid": b["metadata"]["uid"],
            "blockOwnerDeletion": true}]}}),
        )
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    delete(
        &node,
        &format!("{CM}/ca"),
        json!({"propagationPolicy": "Foreground"}),
    )
    .await;
    assert!(gone_within(&node, &format!("{CM}/ca"), WAIT).await);
    assert!(gone_within(&node, &format!("{CM}/cb"), WAIT).await);
}

#[tokio::test]
async fn a_dependent_of_a_missing_owner_is_collected_after_a_short_delay() {
    let node = node_with_gc().await;
    let ghost = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-00000000dead"}});
    node.create(CM, owned_by("orphaned", &[(&ghost, false)]))
        .await;
    // Still there right after creation (the owner might not have replicated yet).
    get(&node, &format!("{CM}/orphaned")).await;
    assert!(gone_within(&node, &format!("{CM}/orphaned"), WAIT).await);
    // An owner of the same name but another uid is not the owner.
    node.create(CM, configmap("ghost", json!({}))).await;
    node.create(CM, owned_by("wrong-uid", &[(&ghost, false)]))
        .await;
    assert!(gone_within(&node, &format!("{CM}/wrong-uid"), WAIT).await);
    get(&node, &format!("{CM}/ghost")).await;
}

#[tokio::test]
async fn dry_run_delete_returns_the_held_object_and_changes_nothing() {
    let node = node_with_gc().await;
    let owner = node.create(CM, configmap("dry", json!({}))).await;
    let before = node.revision();
    let r = node
        .delete(&format!("{CM}/dry?dryRun=All"))
        .json(&json!({"propagationPolicy": "Foreground"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let would = r.json();
    assert_eq!(
        would["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    assert!(would["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(node.revision(), before);
    let now = get(&node, &format!("{CM}/dry")).await;
    assert_eq!(now, owner);
    // Background dry run: the success Status, nothing removed.
    let r = node
        .delete(&format!("{CM}/dry?dryRun=All&propagationPolicy=Background"))
        .send()
        .await;
    assert_eq!(r.json()["kind"], "Status");
    get(&node, &format!("{CM}/dry")).await;
}

#[tokio::test]
async fn delete_collection_applies_the_policy_to_each_object() {
    let node = node_with_gc().await;
    let mut owners = Vec::new();
    for n in ["o1", "o2"] {
        let mut obj = configmap(n, json!({"role": "owner"}));
        obj["metadata"]["labels"] = json!({"role": "owner"});
        owners.push(node.create(CM, obj).await);
    }
    node.create(CM, owned_by("d1", &[(&owners[0], true)])).await;
    node.create(CM, owned_by("d2", &[(&owners[1], true)])).await;
    let r = node
        .delete(&format!("{CM}?labelSelector=role%3Downer"))
        .json(&json!({"propagationPolicy": "Orphan"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let list = r.json();
    for item in list["items"].as_array().cloned().unwrap_or_default() {
        assert_eq!(item["metadata"]["finalizers"], json!(["orphan"]), "{item}");
    }
    for n in ["o1", "o2"] {
        assert!(gone_within(&node, &format!("{CM}/{n}"), WAIT).await);
    }
    for n in ["d1", "d2"] {
        let d = get(&node, &format!("{CM}/{n}")).await;
        assert!(d["metadata"].get("ownerReferences").is_none(), "{d}");
    }
}

#[tokio::test]
async fn pods_bound_to_a_node_wait_for_their_grace_period() {
    let node = node_with_gc().await;
    node.create(PODS, pod("unbound", None)).await;
    let status = delete(&node, &format!("{PODS}/unbound"), json!({})).await;
    assert_eq!(status["kind"], "Pod");
    node.get(&format!("{PODS}/unbound"))
        .send()
        .await
        .status_error(404, "NotFound", "pods \"unbound\" not found");

    node.create(PODS, pod("bound", Some("node-a"))).await;
    let marked = delete(
        &node,
        &format!("{PODS}/bound"),
        json!({"gracePeriodSeconds": 2}),
    )
    .await;
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 2);
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    get(&node, &format!("{PODS}/bound")).await;
    // A longer period does not extend it.
    let again = delete(
        &node,
        &format!("{PODS}/bound"),
        json!({"gracePeriodSeconds": 30}),
    )
    .await;
    assert_eq!(again["metadata"]["deletionGracePeriodSeconds"], 2);
    assert!(gone_within(&node, &format!("{PODS}/bound"), WAIT).await);

    node.create(PODS, pod("forced", Some("node-a"))).await;
    delete(
        &node,
        &format!("{PODS}/forced?gracePeriodSeconds=0"),
        json!({}),
    )
    .await;
    node.get(&format!("{PODS}/forced"))
        .send()
        .await
        .status_error(404, "NotFound", "pods \"forced\" not found");
}

#[tokio::test]
async fn bad_owner_references_are_422() {
    let node = Node::start().await;
    let mut obj = configmap("bad", json!({}));
    obj["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "x"}]);
    let r = node.post(CM).json(&obj).send().await;
    let s = r.status_error(422, "Invalid", "");
    let fields: Vec<&str> = s["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert!(fields.contains(&"metadata.ownerReferences.uid"), "{s}");
    obj["metadata"]["ownerReferences"] = json!([
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1", "controller": true},
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "y", "uid": "2", "controller": true},
    ]);
    let r = node.post(CM).json(&obj).send().await;
    let s = r.status_error(422, "Invalid", "");
    assert!(
        s["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Only one reference can have Controller set to true"),
        "{s}"
    );
}

#[tokio::test]
async fn a_cluster_scoped_dependent_of_a_namespaced_owner_is_left_alone_with_an_event() {
    let node = node_with_gc().await;
    let owner = node.create(CM, configmap("ns-owner", json!({}))).await;
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "invalid-dependent", "ownerReferences": [{"apiVersion": "v1",
            "kind": "ConfigMap", "name": "ns-owner", "uid": owner["metadata"]["uid"]}]},
        "rules": []});
    let roles = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
    node.create(roles, role).await;
    let start = Instant::now();
    let event = loop {
        let events = get(&node, "/api/v1/namespaces/default/events").await;
        let found = events["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["reason"] == "OwnerRefInvalidNamespace")
            .cloned();
        if let Some(e) = found {
            break e;
        }
        assert!(start.elapsed() < WAIT, "no OwnerRefInvalidNamespace event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(event["involvedObject"]["name"], "invalid-dependent");
    assert_eq!(event["type"], "Warning");
    tokio::time::sleep(Duration::from_millis(500)).await;
    get(&node, &format!("{roles}/invalid-dependent")).await;
}

#[tokio::test]
async fn an_event_cannot_be_an_owner() {
    let node = Node::start().await;
    let mut obj = configmap("owned-by-event", json!({}));
    obj["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1"}]);
    let s = node.post(CM).json(&obj).send().await.status_error(
        422,
        "Invalid",
        "/v1, Kind=Event is disallowed from being an owner",
    );
    assert_eq!(
        s["details"]["causes"][0]["field"],
        "metadata.ownerReferences"
    );
}

#[tokio::test]
async fn a_collector_started_later_finishes_what_was_left() {
    // No collector yet: deletions only mark objects (as if every node had restarted).
    let node = Node::start().await;
    let bg = node.create(CM, configmap("bg-owner", json!({}))).await;
    node.create(CM, owned_by("bg-dep", &[(&bg, false)])).await;
    let fg = node.create(CM, configmap("fg-owner", json!({}))).await;
    node.create(CM, owned_by("fg-dep", &[(&fg, true)])).await;
    delete(&node, &format!("{CM}/bg-owner"), json!({})).await;
    delete(
        &node,
        &format!("{CM}/fg-owner"),
        json!({"propagationPolicy": "Foreground"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    get(&node, &format!("{CM}/bg-dep")).await;
    get(&node, &format!("{CM}/fg-owner")).await;
    // The collector rebuilds its graph from the store and carries on.
    tokio::spawn(GarbageCollector::new(node.state.service.clone()).run());
    for name in ["bg-dep", "fg-dep", "fg-owner"] {
        assert!(
            gone_within(&node, &format!("{CM}/{name}"), WAIT).await,
            "{name}"
        );
    }
}

#[tokio::test]
async fn cluster_scoped_owners_and_legacy_cascading_delete() {
    let node = node_with_gc().await;
    let roles = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
    let role = node
        .create(
            roles,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "cluster-owner"}, "rules": []}),
        )
        .await;
    let mut dep = configmap("owned-by-cluster-role", json!({}));
    dep["metadata"]["ownerReferences"] = json!([{"apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole", "name": "cluster-owner", "uid": role["metadata"]["uid"],
        "blockOwnerDeletion": true}]);
    node.create(CM, dep).await;
    // orphanDependents=false asks the generic store for no finalizer at all (only
    // namespaces read it as foreground): removed now, the dependent collected after.
    let r = node
        .delete(&format!("{roles}/cluster-owner"))
        .json(&json!({"orphanDependents": false}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["kind"], "Status");
    assert!(gone_within(&node, &format!("{CM}/owned-by-cluster-role"), WAIT).await);
    // Kept by another finalizer, the same request answers 202 Accepted.
    let mut held = configmap("held-owner", json!({}));
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    node.create(CM, held).await;
    let r = node
        .delete(&format!("{CM}/held-owner"))
        .json(&json!({"orphanDependents": false}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert!(r.json()["metadata"]["deletionTimestamp"].is_string());
}

#[tokio::test]
async fn custom_resources_added_at_run_time_own_and_are_resolved_later() {
    let node = node_with_gc().await;
    let service = node.state.service.clone();
    beemesh_workloads::CrdRegistrar::new(service.clone()).start();
    tokio::spawn(beemesh_workloads::CrdController::new(service).run());
    // A reference to a kind nobody serves yet is left alone...
    let mut early = configmap("early", json!({}));
    early["metadata"]["ownerReferences"] = json!([{"apiVersion": "example.com/v1",
        "kind": "Gadget", "name": "none", "uid": "00000000-0000-0000-0000-0000000000aa"}]);
    node.create(CM, early).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    get(&node, &format!("{CM}/early")).await;
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    node.create(
        crds,
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "gadgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]}}),
    )
    .await;
    let gadgets = "/apis/example.com/v1/namespaces/default/gadgets";
    let start = Instant::now();
    let owner = loop {
        let r = node
            .post(gadgets)
            .json(&json!({"apiVersion": "example.com/v1", "kind": "Gadget",
                "metadata": {"name": "g"}}))
            .send()
            .await;
        if r.status == StatusCode::CREATED {
            break r.json();
        }
        assert!(start.elapsed() < WAIT, "gadgets never served: {}", r.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // ... and collected once the kind is known and no such owner exists.
    assert!(gone_within(&node, &format!("{CM}/early"), WAIT).await);
    // A custom resource owns like any object.
    node.create(CM, owned_by("owned-by-gadget", &[(&owner, true)]))
        .await;
    delete(&node, &format!("{gadgets}/g"), json!({})).await;
    assert!(gone_within(&node, &format!("{CM}/owned-by-gadget"), WAIT).await);
}
