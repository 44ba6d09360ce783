//! A Deployment on a three-node mesh whose nodes run real containers (`--runtime docker`,
//! an image built here from the host's static busybox; nothing is pulled), through real
//! kubectl 1.33:
//! - 3 replicas reach Running, one on each node, and `kubectl rollout status` returns;
//! - `kubectl logs` and `kubectl exec` through a node that does not run the pod reach it;
//! - a rolling update to a new image (maxUnavailable 1, maxSurge 1) replaces every pod and
//!   a watch never sees fewer than `replicas - maxUnavailable` ready pods meanwhile;
//! - `kubectl scale` up and down is exact: never more live pods than asked once settled.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use beemesh_conformance::api::ApiClient;
use beemesh_conformance::docker::{DockerScope, LabelSweep, docker, engine_version};
use beemesh_conformance::{Kubectl, Mesh, eventually, run_recorded, skip};
use serde_json::Value;

const KUBECTL: &str = "1.33";
const REPLICAS: usize = 3;
const MAX_UNAVAILABLE: usize = 1;
const SETTLE: Duration = Duration::from_secs(90);
const PODS: &str = "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb";

fn manifest(image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {REPLICAS}
  selector: {{matchLabels: {{app: web}}}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxUnavailable: {MAX_UNAVAILABLE}, maxSurge: 1}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {image}
        command: ["sh", "-c", "echo serving on $HOSTNAME; exec httpd -f -p 8080 -h /tmp"]
        ports: [{{containerPort: 8080}}]
        readinessProbe:
          tcpSocket: {{port: 8080}}
          periodSeconds: 1
"#
    )
}

/// Live (not terminating) pods of the Deployment: name → (node, image, ready).
fn live_pods(api: &ApiClient) -> BTreeMap<String, (String, String, bool)> {
    let (pods, _) = api.list(PODS);
    pods.iter().filter_map(live).collect()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// `(name, (node, image, ready))` for a pod not being deleted.
fn live(pod: &Value) -> Option<(String, (String, String, bool))> {
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return None;
    }
    Some((
        pod["metadata"]["name"].as_str()?.to_string(),
        (
            pod["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
            pod["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            is_ready(pod),
        ),
    ))
}

/// Waits until exactly `n` live pods, all Running and ready with `image`, and returns them.
fn settled(api: &ApiClient, n: usize, image: &str) -> BTreeMap<String, (String, String, bool)> {
    eventually(SETTLE, || {
        let pods = live_pods(api);
        let good = pods
            .values()
            .filter(|(node, img, ready)| !node.is_empty() && img == image && *ready)
            .count();
        (pods.len() == n && good == n)
            .then_some(pods.clone())
            .ok_or(format!("want {n} ready with {image}: {pods:?}"))
    })
}

fn mesh_deployment() -> String {
    let version = match engine_version() {
        Ok(v) => v,
        Err(why) => skip(why),
    };
    let work = tempfile::tempdir().expect("temp dir");
    let mut scope = DockerScope::new("deploy-mesh");
    let image = match scope.build_busybox_image(work.path()) {
        Ok(i) => i,
        Err(why) => skip(why),
    };
    // The same image under a second name: the rolling update's new image.
    let image_v2 = format!("{}-v2", image.trim_end_matches(":latest"));
    docker(&["tag", &image, &image_v2]).unwrap_or_else(|e| panic!("{e}"));
    let _untag = Untag(image_v2.clone());
    let _sweep = LabelSweep(scope.owner_label());
    // SAFETY: set before the nodes start, read by them (child processes) only.
    unsafe { std::env::set_var("BEEMESH_DOCKER_LABELS", scope.owner_label()) };
    let mesh = match Mesh::start_with(3, &["--runtime", "docker"]) {
        Ok(m) => m,
        Err(e) => panic!("a mesh of 3 did not start: {e}"),
    };
    let k = match Kubectl::new(KUBECTL, &mesh.node(0).kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    };
    let k3 = Kubectl::new(KUBECTL, &mesh.node(2).kubeconfig()).unwrap_or_else(|e| skip(e));
    let api = mesh.node(0).api();
    for i in 0..3 {
        let node_api = mesh.node(i).api();
        eventually(SETTLE, || {
            let n = node_api.ready_nodes().len();
            (n == 3).then_some(()).ok_or(format!("{n} Ready nodes"))
        });
    }

    // Three replicas, one per node.
    let started = Instant::now();
    k.apply(&manifest(&image)).ok();
    k.run(&["rollout", "status", "deployment/web", "--timeout=90s"])
        .ok()
        .stdout_has("successfully rolled out");
    let rolled_out = started.elapsed();
    let pods = settled(&api, REPLICAS, &image);
    let nodes: BTreeSet<&str> = pods.values().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        nodes.len(),
        3,
        "replicas not spread over the nodes: {pods:?}"
    );

    // Logs and exec through node 3 for a pod that runs elsewhere.
    let (remote, _) = pods
        .iter()
        .find(|(_, (node, _, _))| *node != mesh.node(2).name)
        .expect("a pod on node 1 or 2");
    let logs = k3.run(&["logs", remote]).ok();
    assert_eq!(logs.stdout, format!("serving on {remote}\n"));
    let exec = k3.run(&["exec", remote, "--", "cat", "/etc/hostname"]).ok();
    assert_eq!(exec.stdout.trim(), remote.as_str());

    // The rolling update, watched: never fewer than replicas - maxUnavailable ready.
    let (_, rv) = api.list(PODS);
    let mut watch = api
        .watch(&format!("{PODS}&resourceVersion={rv}"))
        .expect("watch pods");
    let state = RefCell::new(pods.clone());
    let min_ready = RefCell::new(REPLICAS);
    let update_started = Instant::now();
    k.run(&["set", "image", "deployment/web", &format!("web={image_v2}")])
        .ok();
    let done = watch.wait_for(SETTLE, |event| {
        let obj = &event["object"];
        let Some(name) = obj["metadata"]["name"].as_str() else {
            return false;
        };
        let mut pods = state.borrow_mut();
        match (event["type"].as_str(), live(obj)) {
            (Some("DELETED"), _) | (_, None) => {
                pods.remove(name);
            }
            (_, Some((name, entry))) => {
                pods.insert(name, entry);
            }
        }
        let ready = pods.values().filter(|(_, _, r)| *r).count();
        let mut min = min_ready.borrow_mut();
        *min = (*min).min(ready);
        pods.len() == REPLICAS && pods.values().all(|(_, img, r)| *r && *img == image_v2)
    });
    assert!(
        done.is_some(),
        "rolling update not done: {}",
        watch.describe()
    );
    let update_took = update_started.elapsed();
    let min_ready = *min_ready.borrow();
    assert!(
        min_ready >= REPLICAS - MAX_UNAVAILABLE,
        "only {min_ready} ready pods during the rolling update"
    );
    k.run(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .ok()
        .stdout_has("successfully rolled out");

    // Scale up and down: exact once settled.
    k.run(&["scale", "deployment/web", "--replicas=5"]).ok();
    settled(&api, 5, &image_v2);
    k.run(&["scale", "deployment/web", "--replicas=2"]).ok();
    settled(&api, 2, &image_v2);
    std::thread::sleep(Duration::from_secs(2));
    let after = live_pods(&api);
    assert_eq!(after.len(), 2, "scale down not exact: {after:?}");
    format!(
        "Docker Engine {version}: 3 replicas Running on {nodes:?} (rollout status after {} ms); \
         logs/exec through node 3; rolling update in {} ms with at least {min_ready} of \
         {REPLICAS} ready throughout; scale 3→5→2 exact",
        rolled_out.as_millis(),
        update_took.as_millis()
    )
}

/// Removes the second image name at the end (the scope removes the first).
struct Untag(String);

impl Drop for Untag {
    fn drop(&mut self) {
        let _ = docker(&["rmi", &self.0]);
    }
}

#[test]
fn mesh_deployment_runs_containers_spread_rolls_and_scales() {
    run_recorded(
        "mesh_deployment_runs_containers_spread_rolls_and_scales",
        &format!("kubectl-{KUBECTL}"),
        mesh_deployment,
    );
}
