//! Nodes over HTTP: a registered Node (and its Lease) as clients read it, the Table
//! kubectl prints, a Node created with its status, pods getting the DefaultTolerationSeconds
//! tolerations, and the node lifecycle controller's Unknown conditions, taints and
//! evictions.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use beemesh_workloads::NodeLifecycleController;
use beemesh_workloads::node_registration::{NodeConfig, NodeRegistration};
use common::{Node, TABLE_ACCEPT};
use http::StatusCode;
use serde_json::{Value, json};

fn config(name: &str) -> NodeConfig {
    NodeConfig {
        name: name.into(),
        peer_id: "12D3KooWTest".into(),
        internal_ip: "10.1.2.3".parse().unwrap(),
        daemon_port: 6443,
        kubelet_version: "v1.33.0-beemesh".into(),
        beemesh_version: "0.1.0".into(),
        data_dir: std::env::temp_dir(),
        capacity: Some(BTreeMap::from([
            ("cpu".to_string(), "8".to_string()),
            ("memory".to_string(), "32Gi".to_string()),
            ("pods".to_string(), "110".to_string()),
        ])),
        labels: BTreeMap::from([("zone".to_string(), "a".to_string())]),
        taints: vec![json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"})],
        has_runtime: true,
        lease_duration_seconds: 40,
        status_update_frequency: Duration::from_secs(10),
    }
}

fn condition<'a>(node: &'a Value, kind: &str) -> &'a Value {
    node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

/// Reasons of the events in `default` about `kind`/`name`.
async fn event_reasons(node: &Node, kind: &str, name: &str) -> Vec<String> {
    let list = node
        .get("/api/v1/namespaces/default/events")
        .send()
        .await
        .json();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["kind"] == kind && e["involvedObject"]["name"] == name)
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn a_registered_node_reads_as_the_kubelet_writes_it() {
    let node = Node::start().await;
    let reg = NodeRegistration::new(node.state.service.clone(), config("sim-1"));
    reg.register().await.unwrap();
    reg.renew_lease().await.unwrap();

    let got = node.get("/api/v1/nodes/sim-1").send().await.json();
    assert_eq!(got["metadata"]["labels"]["kubernetes.io/hostname"], "sim-1");
    assert_eq!(got["metadata"]["labels"]["zone"], "a");
    assert_eq!(
        got["metadata"]["labels"]["beemesh.io/peer-id"],
        "12D3KooWTest"
    );
    assert_eq!(got["spec"]["taints"][0]["key"], "dedicated");
    assert_eq!(
        got["status"]["capacity"],
        json!({"cpu": "8", "memory": "32Gi", "pods": "110"})
    );
    assert_eq!(got["status"]["allocatable"], got["status"]["capacity"]);
    assert_eq!(condition(&got, "Ready")["status"], "True");
    assert_eq!(
        got["status"]["nodeInfo"]["containerRuntimeVersion"],
        "beemesh://0.1.0"
    );
    assert_eq!(
        got["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
        6443
    );

    let lease = node
        .get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/sim-1")
        .send()
        .await
        .json();
    assert_eq!(lease["spec"]["holderIdentity"], "sim-1");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    assert_eq!(
        lease["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Node", "name": "sim-1", "uid": got["metadata"]["uid"]}])
    );
    let renewed = lease["spec"]["renewTime"].as_str().unwrap().to_string();
    // MicroTime: six fractional digits.
    assert_eq!(
        renewed.split('.').nth(1).map(str::len),
        Some(7),
        "{renewed}"
    );

    // An unchanged status is not rewritten (only heartbeats would move).
    let rv = got["metadata"]["resourceVersion"].clone();
    reg.post_status(false).await.unwrap();
    let again = node.get("/api/v1/nodes/sim-1").send().await.json();
    assert_eq!(again["metadata"]["resourceVersion"], rv);

    // Registering again (a restart) keeps the Node and its uid.
    reg.register().await.unwrap();
    let after = node.get("/api/v1/nodes/sim-1").send().await.json();
    assert_eq!(after["metadata"]["uid"], got["metadata"]["uid"]);

    // The kubelet's events: Starting and the conditions it set, on the Node.
    let reasons = event_reasons(&node, "Node", "sim-1").await;
    for want in ["Starting", "NodeHasSufficientMemory", "NodeReady"] {
        assert!(reasons.iter().any(|r| r == want), "{want} in {reasons:?}");
    }

    let table = node
        .get("/api/v1/nodes")
        .accept(TABLE_ACCEPT)
        .send()
        .await
        .json();
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "Name",
            "Status",
            "Roles",
            "Age",
            "Version",
            "Internal-IP",
            "External-IP",
            "OS-Image",
            "Kernel-Version",
            "Container-Runtime"
        ]
    );
    let cells = &table["rows"][0]["cells"];
    assert_eq!(cells[0], "sim-1");
    assert_eq!(cells[1], "Ready");
    assert_eq!(cells[2], "<none>");
    assert_eq!(cells[4], "v1.33.0-beemesh");
    assert_eq!(cells[5], "10.1.2.3");
    assert_eq!(cells[9], "beemesh://0.1.0");
}

#[tokio::test]
async fn pods_get_the_default_toleration_seconds() {
    let node = Node::start().await;
    let pod = node
        .create(
            "/api/v1/namespaces/default/pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}],
                            "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                             "effect": "NoExecute", "tolerationSeconds": 60}]}}),
        )
        .await;
    assert_eq!(
        pod["spec"]["tolerations"],
        json!([
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ])
    );
}

#[tokio::test]
async fn a_silent_node_turns_unknown_tainted_and_loses_intolerant_pods() {
    let node = Node::start().await;
    // A Node created with its status (upstream keeps it on create), and no Lease.
    let created = node
        .create(
            "/api/v1/nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "silent"},
                   "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                       "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}),
        )
        .await;
    assert_eq!(condition(&created, "Ready")["status"], "True");
    let pods = "/api/v1/namespaces/default/pods";
    for (name, tolerations) in [
        (
            "intolerant",
            json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0}]),
        ),
        ("forever", json!([{"operator": "Exists"}])),
    ] {
        node.create(
            pods,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                   "spec": {"nodeName": "silent", "containers": [{"name": "c", "image": "busybox"}],
                            "tolerations": tolerations}}),
        )
        .await;
    }

    let mut lifecycle =
        NodeLifecycleController::new(node.state.service.clone(), Duration::from_millis(300));
    lifecycle.reconcile_all().await.unwrap();
    let fresh = node.get("/api/v1/nodes/silent").send().await.json();
    assert_eq!(
        condition(&fresh, "Ready")["status"],
        "True",
        "within the grace period"
    );
    assert!(fresh["spec"]["taints"].is_null(), "{fresh}");

    tokio::time::sleep(Duration::from_millis(400)).await;
    lifecycle.reconcile_all().await.unwrap();
    let lost = node.get("/api/v1/nodes/silent").send().await.json();
    let ready = condition(&lost, "Ready");
    assert_eq!(ready["status"], "Unknown", "{lost}");
    assert_eq!(ready["reason"], "NodeStatusUnknown");
    assert_eq!(ready["message"], "Kubelet stopped posting node status.");
    assert_eq!(ready["lastHeartbeatTime"], "2026-01-01T00:00:00Z");
    assert_eq!(
        condition(&lost, "MemoryPressure")["reason"],
        "NodeStatusNeverUpdated"
    );
    let taints: Vec<(String, String)> = lost["spec"]["taints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap().into(),
                t["effect"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        taints,
        [
            (
                "node.kubernetes.io/unreachable".to_string(),
                "NoSchedule".to_string()
            ),
            (
                "node.kubernetes.io/unreachable".to_string(),
                "NoExecute".to_string()
            ),
        ]
    );
    let table = node
        .get("/api/v1/nodes")
        .accept(TABLE_ACCEPT)
        .send()
        .await
        .json();
    assert_eq!(table["rows"][0]["cells"][1], "NotReady");

    let evicted = node.get(&format!("{pods}/intolerant")).send().await.json();
    assert!(
        evicted["metadata"]["deletionTimestamp"].is_string(),
        "{evicted}"
    );
    let target = evicted["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "DisruptionTarget"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(target["reason"], "DeletionByTaintManager", "{evicted}");
    assert_eq!(
        event_reasons(&node, "Node", "silent").await,
        ["NodeNotReady"]
    );
    assert_eq!(
        event_reasons(&node, "Pod", "intolerant").await,
        ["TaintManagerEviction"]
    );
    let kept = node.get(&format!("{pods}/forever")).send().await.json();
    assert!(kept["metadata"]["deletionTimestamp"].is_null(), "{kept}");

    // Cordon: the unschedulable taint joins; the status column says so.
    let r = node
        .patch("/api/v1/nodes/silent")
        .strategic(&json!({"spec": {"unschedulable": true}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    lifecycle.reconcile_all().await.unwrap();
    let cordoned = node.get("/api/v1/nodes/silent").send().await.json();
    assert!(
        cordoned["spec"]["taints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/unschedulable" && t["effect"] == "NoSchedule"),
        "{cordoned}"
    );
    let table = node
        .get("/api/v1/nodes")
        .accept(TABLE_ACCEPT)
        .send()
        .await
        .json();
    assert_eq!(table["rows"][0]["cells"][1], "NotReady,SchedulingDisabled");

    // The kubelet posts Ready again: the unreachable taints go, the cordon's stays.
    let r = node
        .patch("/api/v1/nodes/silent/status")
        .merge(&json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "lastHeartbeatTime": "2026-01-01T00:10:00Z", "lastTransitionTime": "2026-01-01T00:10:00Z"}]}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    lifecycle.reconcile_all().await.unwrap();
    let back = node.get("/api/v1/nodes/silent").send().await.json();
    let keys: Vec<&str> = back["spec"]["taints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["node.kubernetes.io/unschedulable"], "{back}");
}

/// Taint keys of the Node `name`.
async fn taint_keys(node: &Node, name: &str) -> Vec<String> {
    let got = node
        .get(&format!("/api/v1/nodes/{name}"))
        .send()
        .await
        .json();
    got["spec"]["taints"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| t["key"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_node_without_a_runtime_is_tainted_until_it_restarts_with_one() {
    let node = Node::start().await;
    let mut cfg = config("api-only");
    cfg.has_runtime = false;
    NodeRegistration::new(node.state.service.clone(), cfg.clone())
        .register()
        .await
        .unwrap();
    assert_eq!(
        taint_keys(&node, "api-only").await,
        ["dedicated", "node.beemesh.io/no-runtime"]
    );

    // Restarted with a runtime: the taint goes, the others stay.
    cfg.has_runtime = true;
    NodeRegistration::new(node.state.service.clone(), cfg.clone())
        .register()
        .await
        .unwrap();
    assert_eq!(taint_keys(&node, "api-only").await, ["dedicated"]);

    // And back without one.
    cfg.has_runtime = false;
    NodeRegistration::new(node.state.service.clone(), cfg)
        .register()
        .await
        .unwrap();
    assert_eq!(
        taint_keys(&node, "api-only").await,
        ["dedicated", "node.beemesh.io/no-runtime"]
    );
}
