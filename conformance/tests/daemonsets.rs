//! DaemonSets on a three-node `--runtime sim` mesh with real kubectl 1.33: one pod per
//! Node, each bound by placement to the Node its node affinity names; `kubectl rollout
//! status ds` returns; `kubectl get ds` counts as upstream; `kubectl set image` rolls every
//! pod to the new image, `rollout history` lists both revisions and `rollout undo` goes
//! back; a `nodeSelector` restricts the DaemonSet to the labelled Node; a Node that joins
//! later gets its pod.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use beemesh_conformance::{Kubectl, Mesh, eventually, run_recorded, skip};
use serde_json::{Value, json};

const KUBECTL: &str = "1.33";
/// How long the mesh and controllers may take (generous for a loaded 2-core machine).
const SETTLE: Duration = Duration::from_secs(60);

fn daemonset(name: &str, image: &str, node_selector: Option<Value>) -> String {
    let mut spec = json!({"containers": [{"name": "agent", "image": image}]});
    if let Some(sel) = node_selector {
        spec["nodeSelector"] = sel;
    }
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
    })
    .to_string()
}

/// The DaemonSet's live pods as (node, image), once every one is Running on a node.
fn running_pods(k: &Kubectl, app: &str) -> Result<Vec<(String, String)>, String> {
    let list = k.get_json(&["pods", "-l", &format!("app={app}")]);
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let live: Vec<&Value> = items
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect();
    let mut out = Vec::new();
    for p in &live {
        let node = p["spec"]["nodeName"].as_str().unwrap_or("");
        if node.is_empty() || p["status"]["phase"] != "Running" {
            return Err(format!("not all running yet: {live:?}"));
        }
        out.push((
            node.to_string(),
            p["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        ));
    }
    out.sort();
    Ok(out)
}

fn rolled_out(k: &Kubectl, name: &str) {
    k.run(&["rollout", "status", &format!("ds/{name}"), "--timeout=90s"])
        .ok()
        .stdout_has(&format!("daemon set \"{name}\" successfully rolled out"));
}

/// Exactly one pod per node in `nodes`, all with `image`.
fn one_per_node(k: &Kubectl, app: &str, nodes: &BTreeSet<String>, image: &str) {
    eventually(SETTLE, || {
        let pods = running_pods(k, app)?;
        let on: Vec<&String> = pods.iter().map(|(n, _)| n).collect();
        let distinct: BTreeSet<String> = on.iter().map(|s| s.to_string()).collect();
        (on.len() == nodes.len() && &distinct == nodes && pods.iter().all(|(_, i)| i == image))
            .then_some(())
            .ok_or(format!(
                "want one {image} pod on each of {nodes:?}: {pods:?}"
            ))
    });
}

fn mesh_daemonset() -> String {
    let mut mesh = match Mesh::start_with(3, &["--runtime", "sim"]) {
        Ok(m) => m,
        Err(e) => panic!("a mesh of 3 did not start: {e}"),
    };
    let k = match Kubectl::new(KUBECTL, &mesh.node(0).kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    };
    let mut nodes = BTreeSet::new();
    for i in 0..3 {
        let api = mesh.node(i).api();
        nodes = eventually(SETTLE, || {
            let ready = api.ready_nodes();
            (ready.len() == 3)
                .then_some(ready.clone())
                .ok_or(format!("ready nodes: {ready:?}"))
        });
    }

    let started = Instant::now();
    k.create(&daemonset("agent", "agent:1", None)).ok();
    rolled_out(&k, "agent");
    let first_rollout = started.elapsed();
    one_per_node(&k, "agent", &nodes, "agent:1");
    let out = k.run(&["get", "ds", "agent"]).ok();
    let t = out.table();
    for col in ["DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE"] {
        assert_eq!(t.cell("agent", col), "3", "{col}: {}", out.stdout);
    }
    let ds = k.get_json(&["ds", "agent"]);
    assert_eq!(ds["status"]["numberMisscheduled"], 0, "{ds}");
    assert_eq!(
        ds["status"]["observedGeneration"],
        ds["metadata"]["generation"]
    );
    let pod = &k.get_json(&["pods", "-l", "app=agent"])["items"][0];
    assert!(
        pod["metadata"]["labels"]["controller-revision-hash"].is_string(),
        "{pod}"
    );
    assert_eq!(pod["metadata"]["labels"]["pod-template-generation"], "1");
    assert_eq!(
        pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchFields"][0]["values"][0],
        pod["spec"]["nodeName"],
        "{pod}"
    );

    // A rolling update to a new image replaces every pod, one node at a time.
    // Meanwhile, how many nodes have an available pod, as another node reports.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (api, stop) = (mesh.node(1).api(), stop.clone());
        std::thread::spawn(move || {
            let mut least = i64::MAX;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = api.get("/apis/apps/v1/namespaces/default/daemonsets/agent")
                    && let Some(n) = r.body["status"]["numberAvailable"].as_i64()
                {
                    least = least.min(n);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            least
        })
    };
    let updating = Instant::now();
    k.run(&["set", "image", "ds/agent", "agent=agent:2"]).ok();
    rolled_out(&k, "agent");
    one_per_node(&k, "agent", &nodes, "agent:2");
    let update_took = updating.elapsed();
    stop.store(true, Ordering::Relaxed);
    let least_available = watcher.join().unwrap_or(0);
    assert!(
        least_available >= 2,
        "maxUnavailable 1 of 3, yet only {least_available} available during the update"
    );
    let history = k.run(&["rollout", "history", "ds/agent"]).ok();
    let revisions: Vec<&str> = history
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(revisions, ["1", "2"], "{}", history.stdout);
    k.run(&["rollout", "undo", "ds/agent"])
        .ok()
        .stdout_has("daemonset.apps/agent rolled back");
    rolled_out(&k, "agent");
    one_per_node(&k, "agent", &nodes, "agent:1");

    // nodeSelector: only the labelled Node runs the DaemonSet.
    let chosen = nodes.iter().next().cloned().unwrap_or_default();
    k.run(&["label", "node", &chosen, "role=edge"]).ok();
    k.create(&daemonset("edge", "edge:1", Some(json!({"role": "edge"}))))
        .ok();
    rolled_out(&k, "edge");
    one_per_node(&k, "edge", &BTreeSet::from([chosen.clone()]), "edge:1");
    let ds = k.get_json(&["ds", "edge"]);
    assert_eq!(ds["status"]["desiredNumberScheduled"], 1, "{ds}");
    // A Node that joins later gets its daemon pod too.
    if let Err(e) = mesh.add_node() {
        panic!("a 4th node did not join: {e}");
    }
    let joined = Instant::now();
    let api = mesh.node(0).api();
    let all = eventually(SETTLE, || {
        let ready = api.ready_nodes();
        (ready.len() == 4)
            .then_some(ready.clone())
            .ok_or(format!("ready nodes: {ready:?}"))
    });
    one_per_node(&k, "agent", &all, "agent:1");
    let new_node_after = joined.elapsed();
    format!(
        "4th node ran its daemon pod {:.1} s after joining; \
         3 nodes: first rollout {:.1} s, image update of 3 pods {:.1} s (never fewer than \
         {least_available} available); undo restores agent:1; nodeSelector keeps `edge` on {chosen}",
        new_node_after.as_secs_f64(),
        first_rollout.as_secs_f64(),
        update_took.as_secs_f64()
    )
}

#[test]
fn mesh_daemonset_runs_one_pod_per_node_and_rolls_updates() {
    run_recorded(
        "mesh_daemonset_runs_one_pod_per_node_and_rolls_updates",
        &format!("kubectl-{KUBECTL}"),
        mesh_daemonset,
    );
}
