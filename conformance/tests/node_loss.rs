//! Losing a node: three nodes as Docker containers run a Deployment's pods (`--runtime
//! sim`); one container is stopped (`docker stop`). The survivors notice the missing Lease
//! renewals, mark the Node NotReady/unreachable, evict its pods once their
//! `tolerationSeconds` pass, and the ReplicaSet's replacements are placed on the two live
//! nodes. The case measures how long that takes (stop → every replica Running again on a
//! live node) and checks that it stays under a bound, and that the replica count is exact
//! once settled.
//!
//! The bound's parts: the dead peer leaves the mesh membership after libp2p's ping timeout
//! (~30 s, ADR 0004; until then objects homed on it have no reconciler), the Lease grace
//! period (here `--node-monitor-grace-period 10s`), the 5 s monitor period, the pods'
//! `tolerationSeconds` (here 2; upstream's default of 300 is what the
//! DefaultTolerationSeconds admission adds when a pod says nothing) and placement.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use beemesh_conformance::api::{ApiClient, Reply};
use beemesh_conformance::container_mesh::{ContainerMesh, wait_for};
use beemesh_conformance::docker::docker;
use beemesh_conformance::run_recorded;
use serde_json::{Value, json};

const NS: &str = "default";
const REPLICAS: usize = 6;
/// Stop → all replicas Running on live nodes must take less than this.
const RECOVERY_BOUND: Duration = Duration::from_secs(60);
const SETTLE: Duration = Duration::from_secs(60);

#[track_caller]
fn ok(reply: Result<Reply, reqwest::Error>, what: &str, want: u16) -> Value {
    match reply {
        Ok(r) if r.status == want => r.body,
        Ok(r) => panic!("{what}: expected {want}, got {}: {}", r.status, r.body),
        Err(e) => panic!("{what}: {e}"),
    }
}

fn deployment() -> Value {
    let toleration = |key: &str| json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2});
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "survivor"},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "survivor"}},
            "template": {
                "metadata": {"labels": {"app": "survivor"}},
                "spec": {
                    "containers": [{"name": "c", "image": "busybox",
                                    "resources": {"requests": {"cpu": "10m"}}}],
                    "tolerations": [toleration("node.kubernetes.io/not-ready"),
                                    toleration("node.kubernetes.io/unreachable")],
                },
            },
        },
    })
}

/// The Deployment's pods that are not being deleted: name → (node, phase).
fn live_pods(api: &ApiClient) -> BTreeMap<String, (String, String)> {
    let (pods, _) = api.list(&format!(
        "/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dsurvivor"
    ));
    pods.iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| {
            Some((
                p["metadata"]["name"].as_str()?.to_string(),
                (
                    p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                    p["status"]["phase"].as_str().unwrap_or("").to_string(),
                ),
            ))
        })
        .collect()
}

fn node_loss() -> String {
    let mesh = ContainerMesh::start(
        "nodeloss",
        3,
        &[
            "--runtime",
            "sim",
            "--node-monitor-grace-period",
            "10s",
            "--node-lease-duration-seconds",
            "4",
        ],
    );
    let apis: Vec<ApiClient> = mesh.nodes.iter().map(|n| n.api.clone()).collect();
    for api in &apis {
        wait_for("three Ready nodes", SETTLE, || {
            (api.ready_nodes().len() == 3).then_some(())
        });
    }
    ok(
        apis[0].post(
            &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
            &deployment(),
        ),
        "create deployment",
        201,
    );
    let placed = wait_for("six Running replicas on three nodes", SETTLE, || {
        let pods = live_pods(&apis[0]);
        let running = pods
            .values()
            .filter(|(_, phase)| phase == "Running")
            .count();
        let nodes: BTreeSet<&str> = pods.values().map(|(n, _)| n.as_str()).collect();
        (pods.len() == REPLICAS && running == REPLICAS && nodes.len() == 3).then_some(pods)
    });
    // The victim is the last node (the API is read through the first).
    let victim = "node-c";
    let on_victim = placed.values().filter(|(n, _)| n == victim).count();

    let stopped = Instant::now();
    docker(&["stop", &mesh.nodes[2].container]).unwrap_or_else(|e| panic!("{e}"));
    let stop_took = stopped.elapsed();
    let mut not_ready_after = None;
    let recovered_after = loop {
        let elapsed = stopped.elapsed();
        assert!(
            elapsed < RECOVERY_BOUND,
            "pods not back on the live nodes within {RECOVERY_BOUND:?}: {:?}",
            live_pods(&apis[0])
        );
        if not_ready_after.is_none() && !apis[0].ready_nodes().contains(victim) {
            not_ready_after = Some(elapsed);
        }
        let pods = live_pods(&apis[0]);
        let back = pods
            .values()
            .filter(|(node, phase)| !node.is_empty() && node != victim && phase == "Running")
            .count();
        if back == REPLICAS && pods.len() == REPLICAS {
            break elapsed;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // Exact once settled: both survivors see the same six, never a seventh.
    std::thread::sleep(Duration::from_secs(3));
    for api in &apis[..2] {
        let pods = live_pods(api);
        assert_eq!(
            pods.len(),
            REPLICAS,
            "replicas not exact once settled: {pods:?}"
        );
        assert!(
            pods.values().all(|(node, _)| node != victim),
            "a live pod is still on the stopped node: {pods:?}"
        );
    }
    format!(
        "{on_victim} of {REPLICAS} pods were on the stopped node; `docker stop` took {} ms; \
         the Node left Ready after {} ms; every replica was Running on a live node {} ms \
         after the stop (bound {} s)",
        stop_took.as_millis(),
        not_ready_after.map_or(0, |d| d.as_millis()),
        recovered_after.as_millis(),
        RECOVERY_BOUND.as_secs()
    )
}

#[test]
fn mesh_pods_of_a_stopped_node_come_back_on_the_others() {
    run_recorded(
        "mesh_pods_of_a_stopped_node_come_back_on_the_others",
        "api",
        node_loss,
    );
}
