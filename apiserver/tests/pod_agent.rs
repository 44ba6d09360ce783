//! The pod agent (the kubelet's role) with the `sim` runtime, over HTTP: a pod bound to the
//! node reaches Running with the status shape the kubelet writes, a pod bound elsewhere is
//! left alone, a Job-like pod completes, and a graceful DELETE removes the pod promptly.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use beemesh_workloads::PodAgent;
use beemesh_workloads::runtime::{SimConfig, SimRuntime};
use common::Node;
use http::StatusCode;
use serde_json::{Value, json};

const NODE: &str = "sim-node";

async fn node_with_agent() -> Node {
    let node = Node::start().await;
    let runtime = Arc::new(SimRuntime::new(SimConfig {
        node_name: NODE.into(),
        start_delay: Duration::ZERO,
    }));
    let agent = PodAgent::new(
        node.state.service.clone(),
        NODE.into(),
        "10.1.2.3".parse().unwrap(),
        runtime,
    );
    tokio::spawn(agent.run());
    node
}

fn pod(name: &str, node_name: &str, extra: Value) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": node_name, "containers": [
            {"name": "web", "image": "nginx:1.27"},
            {"name": "app", "image": "busybox"}
        ]},
    });
    if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if k == "spec" {
                for (sk, sv) in v.as_object().unwrap() {
                    p["spec"][sk] = sv.clone();
                }
            } else {
                p[k] = v.clone();
            }
        }
    }
    p
}

async fn get_pod(node: &Node, name: &str) -> (StatusCode, Value) {
    let r = node
        .get(&format!("/api/v1/namespaces/default/pods/{name}"))
        .send()
        .await;
    let status = r.status;
    (
        status,
        if status == StatusCode::OK {
            r.json()
        } else {
            Value::Null
        },
    )
}

async fn wait_phase(node: &Node, name: &str, phase: &str) -> Value {
    let started = Instant::now();
    loop {
        let (_, p) = get_pod(node, name).await;
        if p["status"]["phase"] == phase {
            return p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} not {phase}: {p:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn condition<'a>(p: &'a Value, kind: &str) -> &'a Value {
    p["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn a_bound_pod_runs_with_the_kubelets_status_and_goes_on_delete() {
    let node = node_with_agent().await;
    node.create(
        "/api/v1/namespaces/default/pods",
        pod("web", NODE, json!({})),
    )
    .await;
    let p = wait_phase(&node, "web", "Running").await;
    let s = &p["status"];
    assert_eq!(s["hostIP"], "10.1.2.3");
    assert_eq!(s["hostIPs"], json!([{"ip": "10.1.2.3"}]));
    let ip = s["podIP"].as_str().unwrap();
    assert!(ip.starts_with("10."), "{ip}");
    assert_eq!(s["podIPs"], json!([{"ip": ip}]));
    assert!(s["startTime"].is_string());
    assert_eq!(s["qosClass"], "BestEffort");
    let kinds: Vec<&str> = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled"
        ]
    );
    for kind in kinds {
        let c = condition(&p, kind);
        assert_eq!(c["status"], "True", "{kind}: {c}");
        assert!(c["lastTransitionTime"].is_string(), "{kind}: {c}");
    }
    // Sorted by name, as the kubelet writes them.
    let cs = s["containerStatuses"].as_array().unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["name"], "app");
    assert_eq!(cs[1]["name"], "web");
    let web = &cs[1];
    assert_eq!(web["image"], "nginx:1.27");
    assert_eq!(web["ready"], true);
    assert_eq!(web["started"], true);
    assert_eq!(web["restartCount"], 0);
    assert!(web["imageID"].is_string());
    assert!(
        web["containerID"].as_str().unwrap().starts_with("sim://"),
        "{web}"
    );
    assert!(web["state"]["running"]["startedAt"].is_string());

    // A graceful delete (30 s by default) is ended by the agent as soon as it stopped the pod.
    let started = Instant::now();
    let r = node
        .delete("/api/v1/namespaces/default/pods/web")
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["metadata"]["deletionTimestamp"].is_string());
    loop {
        let (code, _) = get_pod(&node, "web").await;
        if code == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the pod was not removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A recreated pod of the same name is a new pod (new uid) and runs again.
    node.create(
        "/api/v1/namespaces/default/pods",
        pod("web", NODE, json!({})),
    )
    .await;
    wait_phase(&node, "web", "Running").await;
}

#[tokio::test]
async fn pods_bound_elsewhere_are_left_alone() {
    let node = node_with_agent().await;
    node.create(
        "/api/v1/namespaces/default/pods",
        pod("other", "another-node", json!({})),
    )
    .await;
    node.create(
        "/api/v1/namespaces/default/pods",
        pod("mine", NODE, json!({})),
    )
    .await;
    wait_phase(&node, "mine", "Running").await;
    let (_, other) = get_pod(&node, "other").await;
    assert_eq!(other["status"]["phase"], "Pending");
    assert!(other["status"].get("podIP").is_none());
}

#[tokio::test]
async fn a_job_like_pod_completes_with_the_sim_annotation() {
    let node = node_with_agent().await;
    node.create(
        "/api/v1/namespaces/default/pods",
        pod(
            "job",
            NODE,
            json!({
                "metadata": {"name": "job", "annotations": {"sim.beemesh.io/complete-after": "300ms"}},
                "spec": {"restartPolicy": "Never"},
            }),
        ),
    )
    .await;
    let p = wait_phase(&node, "job", "Succeeded").await;
    let c = &p["status"]["containerStatuses"][0];
    assert_eq!(c["state"]["terminated"]["exitCode"], 0);
    assert_eq!(c["state"]["terminated"]["reason"], "Completed");
    assert_eq!(c["ready"], false);
    assert_eq!(condition(&p, "Ready")["status"], "False");
    assert_eq!(condition(&p, "Ready")["reason"], "PodCompleted");
    // The finished pod keeps its recorded IP, and its status is not rewritten again.
    assert!(p["status"]["podIP"].is_string(), "{p:#}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, later) = get_pod(&node, "job").await;
    assert_eq!(
        later["metadata"]["resourceVersion"],
        p["metadata"]["resourceVersion"]
    );
}
