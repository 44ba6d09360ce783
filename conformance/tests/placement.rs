//! Placement in a three-node mesh with real kubectl: pods created through different nodes
//! are each bound once (by their home node) to a registered Node, and a pod no node can
//! hold stays Pending with kube-scheduler's FailedScheduling event, which `kubectl
//! describe pod` and `kubectl get events` show.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use beemesh_conformance::api::{ApiClient, Reply};
use beemesh_conformance::{Kubectl, Mesh, eventually, run_recorded, skip};
use serde_json::{Value, json};

const KUBECTL: &str = "1.33";
/// How long placement may take (generous for a loaded 2-core machine).
const SETTLE: Duration = Duration::from_secs(30);
const PODS: &str = "/api/v1/namespaces/default/pods";
const EVENTS: &str = "/api/v1/namespaces/default/events";

#[track_caller]
fn ok(reply: Result<Reply, reqwest::Error>, what: &str, want: u16) -> Value {
    match reply {
        Ok(r) if r.status == want => r.body,
        Ok(r) => panic!("{what}: expected {want}, got {}: {}", r.status, r.body),
        Err(e) => panic!("{what}: {e}"),
    }
}

fn pod(name: &str, cpu: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "placed"}},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                                    "resources": {"requests": {"cpu": cpu}}}]}})
}

/// How many events with `reason` name the pod `name`, as `api` lists them.
fn events(api: &ApiClient, name: &str, reason: &str) -> Vec<Value> {
    let (events, _) = api.list(EVENTS);
    events
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == name && e["reason"] == reason)
        .collect()
}

fn mesh_placement() -> String {
    // Nodes without a runtime carry the no-runtime taint; these run pods (pretending).
    let mesh = match Mesh::start_with(3, &["--runtime", "sim"]) {
        Ok(m) => m,
        Err(e) => panic!("a mesh of 3 did not start: {e}"),
    };
    let k = match Kubectl::new(KUBECTL, &mesh.node(0).kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    };
    let apis: Vec<_> = (0..3).map(|i| mesh.node(i).api()).collect();
    // The mesh has formed when every node sees all three Nodes Ready: from then on the
    // nodes agree on each pod's home, so exactly one of them awards it.
    let mut nodes = BTreeSet::new();
    for api in &apis {
        nodes = eventually(SETTLE, || {
            let ready = api.ready_nodes();
            (ready.len() == 3)
                .then_some(ready.clone())
                .ok_or(format!("ready nodes: {ready:?}"))
        });
    }

    let started = Instant::now();
    let names: Vec<String> = (0..6).map(|i| format!("placed-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        ok(apis[i % 3].post(PODS, &pod(name, "10m")), "create pod", 201);
    }
    // Every pod bound to one of the mesh's Nodes, as each node sees it.
    let mut bound = Vec::new();
    for api in &apis {
        bound = eventually(SETTLE, || {
            let (pods, _) = api.list(PODS);
            let placed: Vec<(String, String)> = pods
                .iter()
                .filter(|p| p["metadata"]["labels"]["app"] == "placed")
                .filter_map(|p| {
                    let node = p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())?;
                    Some((
                        p["metadata"]["name"].as_str()?.to_string(),
                        node.to_string(),
                    ))
                })
                .collect();
            (placed.len() == names.len())
                .then_some(placed.clone())
                .ok_or(format!("bound so far: {placed:?}"))
        });
    }
    let took = started.elapsed();
    for (name, node) in &bound {
        assert!(
            nodes.contains(node),
            "{name} bound to {node}, not a mesh Node"
        );
    }
    // Exactly once: the binding never moves, and each pod has one Scheduled event.
    std::thread::sleep(Duration::from_secs(2));
    for (name, node) in &bound {
        let now = ok(apis[1].get(&format!("{PODS}/{name}")), "get pod", 200);
        assert_eq!(now["spec"]["nodeName"], node.as_str(), "{name} moved");
        let scheduled = eventually(SETTLE, || {
            let evs = events(&apis[2], name, "Scheduled");
            (!evs.is_empty())
                .then_some(evs.clone())
                .ok_or("no Scheduled event".to_string())
        });
        assert_eq!(
            scheduled.len(),
            1,
            "{name} was scheduled more than once: {scheduled:?}"
        );
        assert_eq!(
            scheduled[0]["message"],
            format!("Successfully assigned default/{name} to {node}")
        );
    }
    // A second binding is refused: the pod is already assigned.
    let (name, node) = &bound[0];
    let again = apis[2].post(
        &format!("{PODS}/{name}/binding"),
        &json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                "target": {"kind": "Node", "name": "elsewhere"}}),
    );
    let refused = ok(again, "second binding", 409);
    assert_eq!(
        refused["message"],
        format!(
            "Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{node}\""
        )
    );

    // A pod no node can hold.
    k.create(&pod("impossible", "100000").to_string());
    let want = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: \
                3 No preemption victims found for incoming pod.";
    let described = eventually(SETTLE, || {
        let out = k.run(&["describe", "pod", "impossible"]).ok();
        (out.stdout.contains("FailedScheduling") && out.stdout.contains(want))
            .then_some(out.stdout.clone())
            .ok_or(out.stdout)
    });
    assert!(described.contains("default-scheduler"), "{described}");
    assert!(described.contains("PodScheduled"), "{described}");
    let events_out = k
        .run(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=impossible",
        ])
        .ok();
    assert!(
        events_out.stdout.contains("FailedScheduling"),
        "{events_out}"
    );
    assert!(events_out.stdout.contains("pod/impossible"), "{events_out}");
    let pending = k.get_json(&["pod", "impossible"]);
    assert_eq!(pending["status"]["phase"], "Pending");
    assert!(pending["spec"]["nodeName"].is_null(), "{pending}");
    let cond = pending["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled").cloned())
        .unwrap_or_default();
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "Unschedulable");
    format!(
        "6 pods through 3 nodes bound once each in {} ms (spread: {:?}); an impossible pod shows FailedScheduling",
        took.as_millis(),
        bound
            .iter()
            .map(|(_, n)| n.as_str())
            .collect::<BTreeSet<_>>()
    )
}

#[test]
fn mesh_pods_are_placed_once_and_impossible_pods_explain_why() {
    run_recorded(
        "mesh_pods_are_placed_once_and_impossible_pods_explain_why",
        &format!("kubectl-{KUBECTL}"),
        mesh_placement,
    );
}
