//! BeeMesh nodes as Kubernetes Nodes, on a 3-node mesh through real kubectl: every node
//! registers a Ready Node and renews its Lease in `kube-node-lease`; `get nodes` (plain
//! and wide) and `describe node` read as upstream's; cordon/uncordon set
//! `spec.unschedulable` and the `node.kubernetes.io/unschedulable` taint; a killed node
//! turns NotReady (Unknown) with the unreachable taints within the grace period plus a
//! measured bound, its pods that do not tolerate that are evicted, and it is Ready again,
//! untainted, after a restart.
//!
//! The meshes run with a 4 s Lease (renewed every second) and a 4 s grace period so the
//! cases take seconds, not minutes; the defaults (40 s / 40 s) only scale the times.

use std::time::{Duration, Instant};

use beemesh_conformance::api::Reply;
use beemesh_conformance::{Kubectl, Mesh, MeshNode, run_recorded, skip};
use serde_json::{Value, json};

const KUBECTL: &str = "1.33";
const GRACE: Duration = Duration::from_secs(4);
/// Flags every node of these meshes runs with (a runtime, so no node carries the
/// no-runtime taint and "untainted" means what the lifecycle controller left).
const FLAGS: [&str; 6] = [
    "--node-monitor-grace-period",
    "4s",
    "--node-lease-duration-seconds",
    "4",
    "--runtime",
    "sim",
];
/// How much later than the grace period a lost node must be marked: one monitor period
/// (a quarter of the grace period here), the time the mesh takes to drop the member and
/// move the Node's home, and a loaded CI machine's slack. The measured figure is reported.
const NOT_READY_SLACK: Duration = Duration::from_secs(8);
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

#[track_caller]
fn start_mesh(n: usize) -> Mesh {
    match Mesh::start_with(n, &FLAGS) {
        Ok(mesh) => mesh,
        Err(e) => panic!("a mesh of {n} did not start: {e}"),
    }
}

fn kubectl(node: &MeshNode) -> Kubectl {
    match Kubectl::new(KUBECTL, &node.kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Polls `check` every 100 ms until it returns `Some`; panics after `limit`.
#[track_caller]
fn wait_until<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `kubectl get nodes --no-headers` as (name, status) pairs.
fn node_statuses(k: &Kubectl) -> Vec<(String, String)> {
    let out = k.run(&["get", "nodes", "--no-headers"]);
    if out.code != 0 {
        return Vec::new();
    }
    out.stdout
        .lines()
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            Some((cols.next()?.to_string(), cols.next()?.to_string()))
        })
        .collect()
}

fn status_of(k: &Kubectl, name: &str) -> String {
    node_statuses(k)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
        .unwrap_or_default()
}

fn taint_keys(node: &Value) -> Vec<String> {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .map(|t| format!("{}:{}", str_at(t, "/key"), str_at(t, "/effect")))
                .collect()
        })
        .unwrap_or_default()
}

fn condition<'a>(node: &'a Value, kind: &str) -> &'a Value {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| str_at(c, "/type") == kind))
        .unwrap_or(&Value::Null)
}

#[track_caller]
fn ok(reply: Result<Reply, reqwest::Error>, what: &str, want: u16) -> Value {
    match reply {
        Ok(r) if r.status == want => r.body,
        Ok(r) => panic!("{what}: expected {want}, got {}: {}", r.status, r.body),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Three nodes show as three Ready Nodes on every node, with kubelet-like columns,
/// `describe` sections and Leases; cordon and uncordon work.
fn nodes_listed_and_cordoned() -> String {
    let mesh = start_mesh(3);
    let names = ["node-1", "node-2", "node-3"];
    let ks: Vec<Kubectl> = mesh.nodes.iter().map(kubectl).collect();
    let started = Instant::now();
    for k in &ks {
        wait_until("3 Ready nodes", Duration::from_secs(20), || {
            let st = node_statuses(k);
            (st.len() == 3 && st.iter().all(|(_, s)| s == "Ready")).then_some(())
        });
    }
    let all_ready = started.elapsed();
    let listed: Vec<String> = node_statuses(&ks[0]).into_iter().map(|(n, _)| n).collect();
    assert_eq!(listed, names, "get nodes lists the three node names");

    let wide = ks[1].run(&["get", "nodes", "-o", "wide"]).ok();
    let header: Vec<&str> = wide
        .stdout
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME"
        ],
        "{wide}"
    );
    let row = wide
        .stdout
        .lines()
        .find(|l| l.starts_with("node-2 "))
        .unwrap_or_else(|| panic!("no node-2 row: {wide}"));
    for needle in ["Ready", "<none>", "v1.33.0", "127.0.0.1", "beemesh://"] {
        assert!(row.contains(needle), "wide row lacks {needle}: {row}");
    }

    let node = ks[0].get_json(&["node", "node-3"]);
    let labels = &node["metadata"]["labels"];
    assert_eq!(labels["kubernetes.io/hostname"], "node-3");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert!(
        !str_at(labels, "/kubernetes.io~1arch").is_empty(),
        "{labels}"
    );
    assert!(
        str_at(labels, "/beemesh.io~1peer-id").starts_with("12D3"),
        "{labels}"
    );
    for r in ["cpu", "memory", "pods", "ephemeral-storage"] {
        assert!(
            node["status"]["capacity"].get(r).is_some(),
            "capacity {r}: {node}"
        );
        assert!(
            node["status"]["allocatable"].get(r).is_some(),
            "allocatable {r}: {node}"
        );
    }
    assert_eq!(node["status"]["capacity"]["pods"], "110");
    assert_eq!(condition(&node, "Ready")["reason"], "KubeletReady");
    assert_eq!(condition(&node, "MemoryPressure")["status"], "False");
    assert_eq!(
        node["status"]["addresses"],
        json!([{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "node-3"}])
    );
    assert_eq!(node["status"]["nodeInfo"]["operatingSystem"], "linux");
    assert!(
        node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );

    let lease = ks[2].get_json(&["lease", "-n", "kube-node-lease", "node-3"]);
    assert_eq!(lease["spec"]["holderIdentity"], "node-3");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 4);
    assert_eq!(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
    assert_eq!(
        lease["metadata"]["ownerReferences"][0]["uid"],
        node["metadata"]["uid"]
    );
    let renewed = str_at(&lease, "/spec/renewTime").to_string();
    wait_until("the Lease is renewed", Duration::from_secs(5), || {
        let l = ks[0].get_json(&["lease", "-n", "kube-node-lease", "node-3"]);
        (str_at(&l, "/spec/renewTime") != renewed).then_some(())
    });

    let described = ks[0].run(&["describe", "node", "node-2"]).ok();
    for needle in [
        "Name:               node-2",
        "kubernetes.io/hostname=node-2",
        "HolderIdentity:  node-2",
        "KubeletReady",
        "InternalIP:  127.0.0.1",
        "Container Runtime Version:  beemesh://",
        "Taints:             <none>",
        "Starting kubelet.",
        "Node node-2 status is now: NodeReady",
    ] {
        assert!(
            described.stdout.contains(needle),
            "describe lacks {needle:?}: {described}"
        );
    }

    // Cordon through node-1, seen on node-3.
    ks[0].run(&["cordon", "node-2"]).ok();
    let cordon_started = Instant::now();
    wait_until("node-2 SchedulingDisabled", Duration::from_secs(10), || {
        let n = ks[2].get_json(&["node", "node-2"]);
        (status_of(&ks[2], "node-2") == "Ready,SchedulingDisabled"
            && taint_keys(&n).contains(&format!("{UNSCHEDULABLE}:NoSchedule")))
        .then_some(())
    });
    let cordon_took = cordon_started.elapsed();
    assert_eq!(
        ks[2].get_json(&["node", "node-2"])["spec"]["unschedulable"],
        true
    );
    ks[1].run(&["uncordon", "node-2"]).ok();
    wait_until("node-2 uncordoned", Duration::from_secs(10), || {
        let n = ks[0].get_json(&["node", "node-2"]);
        (status_of(&ks[0], "node-2") == "Ready" && taint_keys(&n).is_empty()).then_some(())
    });
    format!(
        "3 Ready nodes on every node after {} ms; wide/describe columns as upstream; cordon → SchedulingDisabled + unschedulable taint on another node in {} ms; uncordon clears both",
        all_ready.as_millis(),
        cordon_took.as_millis()
    )
}

/// A killed node (SIGKILL) turns NotReady with the unreachable taints, its intolerant pod is
/// evicted while a pod with the default 300 s toleration stays, and it is Ready again,
/// untainted, after a restart.
fn nodes_lost_and_back() -> String {
    let mut mesh = start_mesh(3);
    let k1 = kubectl(mesh.node(0));
    wait_until("3 Ready nodes", Duration::from_secs(20), || {
        let st = node_statuses(&k1);
        (st.len() == 3 && st.iter().all(|(_, s)| s == "Ready")).then_some(())
    });
    let api = mesh.node(0).api();
    let pods = "/api/v1/namespaces/default/pods";
    let pod = |name: &str, tolerations: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"nodeName": "node-3", "containers": [{"name": "c", "image": "busybox"}],
                        "tolerations": tolerations}})
    };
    // Tolerates the unreachable taint for 1 s only: evicted soon after the taint.
    ok(
        api.post(
            pods,
            &pod(
                "short",
                json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]),
            ),
        ),
        "create pod short",
        201,
    );
    // The DefaultTolerationSeconds tolerations (300 s): stays.
    let patient = ok(
        api.post(pods, &pod("patient", json!([]))),
        "create pod patient",
        201,
    );
    let defaults: Vec<String> = patient["spec"]["tolerations"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| format!("{}={}", str_at(t, "/key"), t["tolerationSeconds"]))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        defaults,
        [
            "node.kubernetes.io/not-ready=300",
            "node.kubernetes.io/unreachable=300"
        ],
        "{patient}"
    );

    mesh.node_mut(2).kill();
    let stopped = Instant::now();
    let limit = GRACE + NOT_READY_SLACK;
    wait_until("node-3 NotReady with unreachable taints", limit, || {
        let n = k1.get_json(&["node", "node-3"]);
        let taints = taint_keys(&n);
        (status_of(&k1, "node-3") == "NotReady"
            && taints.contains(&format!("{UNREACHABLE}:NoSchedule"))
            && taints.contains(&format!("{UNREACHABLE}:NoExecute")))
        .then_some(())
    });
    let not_ready_after = stopped.elapsed();
    let node = k1.get_json(&["node", "node-3"]);
    let ready = condition(&node, "Ready");
    assert_eq!(ready["status"], "Unknown", "{node}");
    assert_eq!(ready["reason"], "NodeStatusUnknown");
    assert_eq!(ready["message"], "Kubelet stopped posting node status.");
    assert_eq!(condition(&node, "DiskPressure")["status"], "Unknown");
    for k in ["node-1", "node-2"] {
        assert_eq!(status_of(&k1, k), "Ready", "{k} stays Ready");
    }
    wait_until(
        "describe shows NodeNotReady",
        Duration::from_secs(5),
        || {
            let d = k1.run(&["describe", "node", "node-3"]);
            d.stdout
                .contains("Node node-3 status is now: NodeNotReady")
                .then_some(())
        },
    );

    let evicted = wait_until("pod short is evicted", Duration::from_secs(10), || {
        let r = api.get(&format!("{pods}/short")).ok()?;
        (r.status == 404 || r.body.pointer("/metadata/deletionTimestamp").is_some()).then_some(r)
    });
    if evicted.status == 200 {
        let target = evicted.body["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "DisruptionTarget").cloned())
            .unwrap_or(Value::Null);
        assert_eq!(
            target["reason"], "DeletionByTaintManager",
            "{}",
            evicted.body
        );
    }
    let kept = ok(api.get(&format!("{pods}/patient")), "pod patient", 200);
    assert!(
        kept.pointer("/metadata/deletionTimestamp").is_none(),
        "{kept}"
    );

    let restarted = Instant::now();
    if let Err(e) = mesh.node_mut(2).start() {
        panic!("node-3 did not restart: {e}");
    }
    wait_until(
        "node-3 Ready and untainted again",
        Duration::from_secs(20),
        || {
            let n = k1.get_json(&["node", "node-3"]);
            (status_of(&k1, "node-3") == "Ready" && taint_keys(&n).is_empty()).then_some(())
        },
    );
    let ready_after = restarted.elapsed();
    format!(
        "killed node NotReady + unreachable taints after {} ms (grace {} ms, bound {} ms); 1 s-tolerating pod evicted, 300 s one kept; Ready and untainted {} ms after restart",
        not_ready_after.as_millis(),
        GRACE.as_millis(),
        limit.as_millis(),
        ready_after.as_millis()
    )
}

mod nodes {
    use super::*;

    #[test]
    fn nodes_listed_and_cordoned() {
        run_recorded(
            "nodes_listed_and_cordoned",
            &format!("kubectl-{KUBECTL}"),
            super::nodes_listed_and_cordoned,
        );
    }

    #[test]
    fn nodes_lost_and_back() {
        run_recorded(
            "nodes_lost_and_back",
            &format!("kubectl-{KUBECTL}"),
            super::nodes_lost_and_back,
        );
    }
}
