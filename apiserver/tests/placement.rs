//! Placement through the HTTP API: the home node binds unbound pods to a fitting Node
//! (fake Node objects registered here), a pod that fits nowhere stays Pending with
//! kube-scheduler's FailedScheduling event and condition, and `pods/<name>/binding`
//! binds exactly once.

mod common;

use std::time::{Duration, Instant};

use beemesh_workloads::PlacementController;
use common::*;
use http::StatusCode;
use serde_json::{Value, json};

const PODS: &str = "/api/v1/namespaces/default/pods";
const NODES: &str = "/api/v1/nodes";
const WAIT: Duration = Duration::from_secs(15);

fn fake_node(name: &str, cpu: &str, ready_since: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "lastHeartbeatTime": ready_since, "lastTransitionTime": ready_since}],
        },
    })
}

fn pod_with(name: &str, spec: Value) -> Value {
    let mut p = pod(name, None);
    if let (Some(p), Some(extra)) = (p["spec"].as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            p.insert(k.clone(), v.clone());
        }
    }
    p
}

async fn cluster(nodes: &[Value]) -> Node {
    let node = Node::start().await;
    for n in nodes {
        node.create(NODES, n.clone()).await;
    }
    tokio::spawn(PlacementController::new(node.state.service.clone()).run());
    node
}

/// Polls the pod until `check` holds; panics with its last state otherwise.
async fn until_pod(node: &Node, name: &str, check: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let got = node.get(&format!("{PODS}/{name}")).send().await.json();
        if check(&got) {
            return got;
        }
        assert!(start.elapsed() < WAIT, "pod {name} never got there: {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn node_name(pod: &Value) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or("")
}

fn scheduled(pod: &Value) -> Value {
    pod["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Polls until `name` has an event with `reason`.
async fn event_with_reason(node: &Node, name: &str, reason: &str) -> Value {
    let start = std::time::Instant::now();
    loop {
        if let Some(ev) = events_for(node, name)
            .await
            .into_iter()
            .find(|e| e["reason"] == reason)
        {
            return ev;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "no {reason} event for {name}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn events_for(node: &Node, name: &str) -> Vec<Value> {
    let list = node
        .get(&format!(
            "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3D{name}"
        ))
        .send()
        .await
        .json();
    list["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn pods_are_bound_to_the_node_they_fit() {
    let node = cluster(&[
        fake_node("small", "1", "2026-01-01T00:00:00Z"),
        fake_node("big", "8", "2026-01-02T00:00:00Z"),
    ])
    .await;
    let p = pod_with(
        "web",
        json!({"containers": [{"name": "c", "image": "busybox",
                               "resources": {"requests": {"cpu": "2"}}}]}),
    );
    node.create(PODS, p).await;
    let got = until_pod(&node, "web", |p| !node_name(p).is_empty()).await;
    assert_eq!(node_name(&got), "big");
    assert_eq!(scheduled(&got)["status"], "True");
    // The event is recorded just after the binding it reports.
    let ev = event_with_reason(&node, "web", "Scheduled").await;
    assert_eq!(ev["message"], "Successfully assigned default/web to big");
    assert_eq!(ev["source"]["component"], "default-scheduler");
}

#[tokio::test]
async fn a_pod_too_big_for_every_node_stays_pending_with_the_schedulers_event() {
    let node = cluster(&[
        fake_node("a", "1", "2026-01-01T00:00:00Z"),
        fake_node("b", "1", "2026-01-01T00:00:00Z"),
    ])
    .await;
    let p = pod_with(
        "huge",
        json!({"containers": [{"name": "c", "image": "busybox",
                               "resources": {"requests": {"cpu": "64"}}}]}),
    );
    node.create(PODS, p).await;
    let want = "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: \
                2 No preemption victims found for incoming pod.";
    let got = until_pod(&node, "huge", |p| scheduled(p)["status"] == "False").await;
    let cond = scheduled(&got);
    assert_eq!(cond["reason"], "Unschedulable");
    assert_eq!(cond["message"], want);
    assert_eq!(got["status"]["phase"], "Pending");
    assert_eq!(node_name(&got), "");
    let start = Instant::now();
    let ev = loop {
        let events = events_for(&node, "huge").await;
        if let Some(e) = events.iter().find(|e| e["reason"] == "FailedScheduling") {
            break e.clone();
        }
        assert!(
            start.elapsed() < WAIT,
            "no FailedScheduling event: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ev["type"], "Warning");
    assert_eq!(ev["message"], want);
    assert_eq!(ev["reportingComponent"], "default-scheduler");
    assert_eq!(ev["involvedObject"]["kind"], "Pod");

    // A Node with room arrives: the pod is retried and bound.
    node.create(NODES, fake_node("c", "128", "2026-01-01T00:00:00Z"))
        .await;
    let got = until_pod(&node, "huge", |p| !node_name(p).is_empty()).await;
    assert_eq!(node_name(&got), "c");
}

#[tokio::test]
async fn node_selectors_and_taints_steer_pods() {
    let mut labelled = fake_node("ssd", "2", "2026-01-02T00:00:00Z");
    labelled["metadata"]["labels"]["disk"] = json!("ssd");
    let mut tainted = fake_node("gpu", "64", "2026-01-01T00:00:00Z");
    tainted["spec"] = json!({"taints": [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]});
    let node = cluster(&[
        labelled,
        tainted,
        fake_node("plain", "4", "2026-01-03T00:00:00Z"),
    ])
    .await;

    node.create(
        PODS,
        pod_with("picky", json!({"nodeSelector": {"disk": "ssd"}})),
    )
    .await;
    let got = until_pod(&node, "picky", |p| !node_name(p).is_empty()).await;
    assert_eq!(node_name(&got), "ssd");

    // The roomy tainted node is skipped without a toleration, chosen with one.
    node.create(PODS, pod("plain-pod", None)).await;
    let got = until_pod(&node, "plain-pod", |p| !node_name(p).is_empty()).await;
    assert_ne!(node_name(&got), "gpu");
    node.create(
        PODS,
        pod_with(
            "tolerant",
            json!({"tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]}),
        ),
    )
    .await;
    let got = until_pod(&node, "tolerant", |p| !node_name(p).is_empty()).await;
    assert_eq!(node_name(&got), "gpu");

    node.create(
        PODS,
        pod_with("nowhere", json!({"nodeSelector": {"disk": "tape"}})),
    )
    .await;
    let got = until_pod(&node, "nowhere", |p| scheduled(p)["status"] == "False").await;
    assert_eq!(
        scheduled(&got)["message"],
        "0/3 nodes are available: 1 node(s) had untolerated taint {gpu: true}, \
         2 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}

#[tokio::test]
async fn required_anti_affinity_spreads_three_pods_over_three_nodes() {
    let node = cluster(&[
        fake_node("n1", "4", "2026-01-01T00:00:00Z"),
        fake_node("n2", "4", "2026-01-01T00:00:00Z"),
        fake_node("n3", "4", "2026-01-01T00:00:00Z"),
    ])
    .await;
    let spread = |name: &str| {
        let mut p = pod_with(
            name,
            json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "spread"}},
                 "topologyKey": "kubernetes.io/hostname"}]}}}),
        );
        p["metadata"]["labels"] = json!({"app": "spread"});
        p
    };
    for name in ["s1", "s2", "s3", "s4"] {
        node.create(PODS, spread(name)).await;
    }
    let mut hosts = Vec::new();
    for name in ["s1", "s2", "s3"] {
        let got = until_pod(&node, name, |p| !node_name(p).is_empty()).await;
        hosts.push(node_name(&got).to_string());
    }
    hosts.sort();
    assert_eq!(hosts, ["n1", "n2", "n3"]);
    let got = until_pod(&node, "s4", |p| scheduled(p)["status"] == "False").await;
    assert_eq!(
        scheduled(&got)["message"],
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. \
         preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
}

#[tokio::test]
async fn a_binding_sets_the_node_once() {
    // No placement controller here: the binding is the client's.
    let node = Node::start().await;
    let mut p = pod("bound", None);
    p["spec"]["schedulerName"] = json!("my-scheduler");
    node.create(PODS, p).await;
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bound"},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}});
    let resp = node
        .post(&format!("{PODS}/bound/binding"))
        .json(&binding)
        .send()
        .await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["status"], "Success");
    assert_eq!(body["code"], 201);
    let got = node.get(&format!("{PODS}/bound")).send().await.json();
    assert_eq!(node_name(&got), "n1");
    assert_eq!(scheduled(&got)["status"], "True");

    let mut again = binding.clone();
    again["target"]["name"] = json!("n2");
    node.post(&format!("{PODS}/bound/binding"))
        .json(&again)
        .send()
        .await
        .status_error(
            409,
            "Conflict",
            "Operation cannot be fulfilled on pods/binding \"bound\": pod bound is already assigned to node \"n1\"",
        );

    // The bindings collection takes the pod's name from the body.
    node.create(PODS, pod("other", None)).await;
    let mut other = binding.clone();
    other["metadata"]["name"] = json!("other");
    let resp = node
        .post("/api/v1/namespaces/default/bindings")
        .json(&other)
        .send()
        .await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text());

    let bad = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "other"},
                     "target": {"kind": "Node"}});
    let s = node
        .post(&format!("{PODS}/other/binding"))
        .json(&bad)
        .send()
        .await
        .status_error(422, "Invalid", "target.name: Required value");
    assert_eq!(s["details"]["causes"][0]["field"], "target.name");
    node.post(&format!("{PODS}/missing/binding"))
        .json(&json!({"metadata": {"name": "missing"}, "target": {"name": "n1"}}))
        .send()
        .await
        .status_error(404, "NotFound", "pods \"missing\" not found");
}

#[tokio::test]
async fn racing_bindings_bind_exactly_once() {
    let node = Node::start().await;
    for i in 0..5 {
        let mut p = pod(&format!("race-{i}"), None);
        p["spec"]["schedulerName"] = json!("my-scheduler");
        node.create(PODS, p).await;
    }
    for i in 0..5 {
        let name = format!("race-{i}");
        let sends = (0..4).map(|n| {
            let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                                 "target": {"kind": "Node", "name": format!("n{n}")}});
            let path = format!("{PODS}/{name}/binding");
            let node = &node;
            async move { node.post(&path).json(&binding).send().await.status }
        });
        let codes = futures::future::join_all(sends).await;
        let created = codes.iter().filter(|c| **c == StatusCode::CREATED).count();
        let conflicts = codes.iter().filter(|c| **c == StatusCode::CONFLICT).count();
        assert_eq!((created, conflicts), (1, 3), "{codes:?}");
    }
}
