//! Pods run by a node started with `--runtime sim`, through real kubectl 1.33: a pod bound
//! to the node (`kubectl run` with `spec.nodeName`) becomes Ready (`kubectl wait`), `get -o
//! wide` shows its node and pod IP, and `kubectl delete pod` (30 s grace by default)
//! returns promptly because the node's pod agent stops it and removes it. A node asked for
//! a runtime BeeMesh does not have refuses to start, saying so.

use std::process::Command;
use std::time::{Duration, Instant};

use beemesh_conformance::locate::beemesh_binary;
use beemesh_conformance::{Kubectl, Node, run_recorded, skip};

const KUBECTL: &str = "1.33";
/// `beemesh_conformance::Node`'s `--node-name`.
const NODE: &str = "conformance";

fn sim_pod_lifecycle() -> String {
    let node = match Node::start_with(&["--runtime", "sim"]) {
        Ok(n) => n,
        Err(e) => panic!("node did not start: {e}"),
    };
    let k = match Kubectl::new(KUBECTL, &node.kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    };
    let overrides = format!(r#"{{"apiVersion":"v1","spec":{{"nodeName":"{NODE}"}}}}"#);
    k.run(&[
        "run",
        "x",
        "--image=nginx:1.27",
        "--restart=Never",
        "--overrides",
        &overrides,
    ])
    .ok()
    .stdout_has("pod/x created");
    let created = Instant::now();
    k.run(&["wait", "--for=condition=Ready", "pod/x", "--timeout=30s"])
        .ok()
        .stdout_has("pod/x condition met");
    let ready_after = created.elapsed();

    let pod = k.get_json(&["pod", "x"]);
    let ip = pod["status"]["podIP"].as_str().unwrap_or("").to_string();
    assert!(ip.starts_with("10."), "podIP: {pod}");
    assert_eq!(pod["status"]["phase"], "Running", "{pod}");
    assert!(pod["status"]["hostIP"].is_string(), "{pod}");
    let c = &pod["status"]["containerStatuses"][0];
    assert_eq!(c["ready"], true, "{c}");
    assert!(
        c["containerID"]
            .as_str()
            .unwrap_or("")
            .starts_with("sim://"),
        "{c}"
    );

    let wide = k.run(&["get", "pod", "x", "-o", "wide"]).ok();
    let table = wide.table();
    assert_eq!(table.cell("x", "STATUS"), "Running", "{}", wide.stdout);
    assert_eq!(table.cell("x", "READY"), "1/1", "{}", wide.stdout);
    assert_eq!(table.cell("x", "NODE"), NODE, "{}", wide.stdout);
    assert_eq!(table.cell("x", "IP"), ip, "{}", wide.stdout);

    let deleting = Instant::now();
    k.run(&["delete", "pod", "x", "--timeout=20s"])
        .ok()
        .stdout_has("pod \"x\" deleted");
    let deleted_after = deleting.elapsed();
    assert!(
        deleted_after < Duration::from_secs(10),
        "delete took {deleted_after:?} (the 30 s grace period was waited out?)"
    );
    k.run(&["get", "pod", "x"]).failed().stderr_has("NotFound");
    format!(
        "Ready {:.1} s after create; kubectl delete returned in {:.1} s",
        ready_after.as_secs_f64(),
        deleted_after.as_secs_f64()
    )
}

#[test]
fn sim_pods() {
    run_recorded("sim_pods", &format!("kubectl-{KUBECTL}"), sim_pod_lifecycle);
}

/// A `--runtime` BeeMesh does not have stops `beemesh up` at once with a clear error.
#[test]
fn unknown_runtimes_are_refused_at_startup() {
    let bin = match beemesh_binary() {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    };
    let Ok(dir) = tempfile::tempdir() else {
        panic!("no temp dir")
    };
    let out = Command::new(&bin)
        .arg("up")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--api-listen")
        .arg("127.0.0.1:0")
        .arg("--runtime")
        .arg("rkt")
        .output();
    let Ok(out) = out else {
        panic!("cannot run {}", bin.display())
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started");
    assert!(stderr.contains("unknown runtime \"rkt\""), "{stderr}");
}
