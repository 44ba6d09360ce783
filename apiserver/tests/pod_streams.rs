//! `pods/log` (and the checks every pod stream shares) over HTTP against a node whose pod
//! agent runs pods with the `process` runtime: the log as `text/plain`, `tailLines`,
//! upstream's 400s for a container that is not the pod's or must be named, a pod not
//! started yet, a pod of the `sim` runtime, and 404 for a missing pod.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use beemesh_apiserver::state::NodeStreams;
use beemesh_workloads::PodAgent;
use beemesh_workloads::runtime::{ProcessConfig, ProcessRuntime, Runtime, SimConfig, SimRuntime};
use common::Node;
use http::StatusCode;
use serde_json::{Value, json};

const NODE: &str = "stream-node";
const PODS: &str = "/api/v1/namespaces/default/pods";

async fn node_running(runtime: Arc<dyn Runtime>) -> Node {
    let node = Node::start().await;
    node.state.set_node_streams(NodeStreams {
        node_name: NODE.into(),
        runtime: Some(runtime.clone()),
        peer_client: None,
    });
    let agent = PodAgent::new(
        node.state.service.clone(),
        NODE.into(),
        "127.0.0.1".parse().unwrap(),
        runtime,
    );
    tokio::spawn(agent.run());
    node
}

fn pod(name: &str, node_name: Option<&str>, containers: Value) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": containers},
    });
    if let Some(n) = node_name {
        p["spec"]["nodeName"] = json!(n);
    }
    p
}

async fn wait_phase(node: &Node, name: &str, phases: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = node.get(&format!("{PODS}/{name}")).send().await;
        let p = r.json();
        if phases.contains(&p["status"]["phase"].as_str().unwrap_or("")) {
            return p;
        }
        assert!(Instant::now() < deadline, "pod {name}: {}", p["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn logs_of_a_process_pod_and_upstreams_errors() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(ProcessRuntime::new(ProcessConfig {
        data_dir: dir.path().to_path_buf(),
    }));
    let node = node_running(runtime).await;
    let printer = pod(
        "printer",
        Some(NODE),
        json!([{"name": "main", "image": "busybox",
                "command": ["/bin/sh", "-c", "echo one; echo two; echo three"]}]),
    );
    node.create(PODS, printer).await;
    wait_phase(&node, "printer", &["Succeeded"]).await;

    let r = node.get(&format!("{PODS}/printer/log")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.text(), "one\ntwo\nthree\n");
    let r = node
        .get(&format!("{PODS}/printer/log?tailLines=1"))
        .send()
        .await;
    assert_eq!(r.text(), "three\n");

    let r = node
        .get(&format!("{PODS}/printer/log?container=other"))
        .send()
        .await;
    r.status_error(
        400,
        "BadRequest",
        "container other is not valid for pod printer",
    );

    let r = node.get(&format!("{PODS}/nope/log")).send().await;
    r.status_error(404, "NotFound", "pods \"nope\" not found");

    let r = node.post(&format!("{PODS}/printer/log")).send().await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text());

    let two = pod(
        "two",
        None,
        json!([{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]),
    );
    node.create(PODS, two).await;
    let r = node.get(&format!("{PODS}/two/log")).send().await;
    r.status_error(
        400,
        "BadRequest",
        "a container name must be specified for pod two, choose one of: [a b]",
    );
    // Not bound to any node yet: nothing started.
    let r = node
        .get(&format!("{PODS}/two/log?container=a"))
        .send()
        .await;
    r.status_error(
        400,
        "BadRequest",
        "container \"a\" in pod \"two\" is waiting to start: ContainerCreating",
    );
    let r = node
        .get(&format!("{PODS}/two/portforward?ports=80"))
        .send()
        .await;
    r.status_error(400, "BadRequest", "pod two does not have a host assigned");
    // exec checks the same before any upgrade.
    let r = node
        .get(&format!(
            "{PODS}/two/exec?container=a&command=ls&stdout=true"
        ))
        .send()
        .await;
    r.status_error(
        400,
        "BadRequest",
        "container \"a\" in pod \"two\" is waiting to start: ContainerCreating",
    );
}

#[tokio::test]
async fn a_sim_pod_has_no_logs_to_give() {
    let runtime = Arc::new(SimRuntime::new(SimConfig {
        node_name: NODE.into(),
        start_delay: Duration::ZERO,
    }));
    let node = node_running(runtime).await;
    let p = pod(
        "sim",
        Some(NODE),
        json!([{"name": "main", "image": "busybox"}]),
    );
    node.create(PODS, p).await;
    wait_phase(&node, "sim", &["Running", "Succeeded"]).await;
    let r = node.get(&format!("{PODS}/sim/log")).send().await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let status: Value = r.json();
    assert!(
        status["message"]
            .as_str()
            .unwrap_or("")
            .contains("the sim runtime runs no containers"),
        "{status}"
    );
}
