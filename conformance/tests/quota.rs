//! ResourceQuota with real kubectl 1.33 on a node with `--runtime sim`: `kubectl create
//! quota` gets its status (`describe quota` shows Used against Hard), creates past the
//! limit are refused with upstream's Forbidden message, deleting a pod frees its share,
//! a ReplicaSet's refused create shows as a FailedCreate event naming the generated pod,
//! and a quota on requests.cpu refuses a pod that states none, naming the container.

use std::time::Duration;

use beemesh_conformance::{Kubectl, Node, eventually, run_recorded, skip};

const KUBECTL: &str = "1.33";
/// `beemesh_conformance::Node`'s `--node-name`.
const NODE: &str = "conformance";
const SETTLE: Duration = Duration::from_secs(60);

/// The `Used` and `Hard` columns of `kubectl describe quota <name>` for `resource`.
fn described(k: &Kubectl, name: &str, resource: &str) -> Option<(String, String)> {
    let out = k
        .run(&["describe", "quota", name, "-n", "team"])
        .ok()
        .stdout;
    out.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.len() == 3 && cols[0] == resource).then(|| (cols[1].to_string(), cols[2].to_string()))
    })
}

fn wait_used(k: &Kubectl, name: &str, resource: &str, used: &str, hard: &str) {
    eventually(SETTLE, || match described(k, name, resource) {
        Some((u, h)) if u == used && h == hard => Ok(()),
        other => Err(format!("{resource}: {other:?}")),
    });
}

fn run_pod(k: &Kubectl, name: &str) -> beemesh_conformance::output::Output {
    let overrides = format!(r#"{{"apiVersion":"v1","spec":{{"nodeName":"{NODE}"}}}}"#);
    k.run(&[
        "run",
        name,
        "-n",
        "team",
        "--image=nginx:1.27",
        "--restart=Never",
        "--overrides",
        &overrides,
    ])
}

fn quota_enforcement() -> String {
    let node = match Node::start_with(&["--runtime", "sim"]) {
        Ok(n) => n,
        Err(e) => panic!("node did not start: {e}"),
    };
    let k = match Kubectl::new(KUBECTL, &node.kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    };
    k.run(&["create", "namespace", "team"]).ok();
    k.run(&[
        "create",
        "quota",
        "q",
        "-n",
        "team",
        "--hard=pods=2,services=1",
    ])
    .ok()
    .stdout_has("resourcequota/q created");
    wait_used(&k, "q", "pods", "0", "2");
    wait_used(&k, "q", "services", "0", "1");

    run_pod(&k, "p1").ok().stdout_has("pod/p1 created");
    run_pod(&k, "p2").ok().stdout_has("pod/p2 created");
    // The admission recorded both at once: the third is refused without waiting for the
    // usage controller.
    run_pod(&k, "p3").failed().stderr_has(
        "Error from server (Forbidden): pods \"p3\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2",
    );
    wait_used(&k, "q", "pods", "2", "2");

    k.run(&[
        "create",
        "service",
        "clusterip",
        "s1",
        "-n",
        "team",
        "--tcp=80:80",
    ])
    .ok();
    k.run(&["create", "service", "clusterip", "s2", "-n", "team", "--tcp=80:80"])
        .failed()
        .stderr_has(
            "services \"s2\" is forbidden: exceeded quota: q, requested: services=1, used: services=1, limited: services=1",
        );
    wait_used(&k, "q", "services", "1", "1");

    // Deleting a pod gives its share back.
    k.run(&["delete", "pod", "p1", "-n", "team", "--timeout=30s"])
        .ok();
    let freed = std::time::Instant::now();
    wait_used(&k, "q", "pods", "1", "2");
    let freed_after = freed.elapsed();
    run_pod(&k, "p3").ok().stdout_has("pod/p3 created");
    wait_used(&k, "q", "pods", "2", "2");

    // A controller's create is refused the same way; the ReplicaSet reports it as an
    // event naming the generated pod.
    k.run(&[
        "create",
        "deployment",
        "web",
        "-n",
        "team",
        "--image=nginx:1.27",
    ])
    .ok();
    let event = eventually(SETTLE, || {
        let out = k
            .run(&[
                "get",
                "events",
                "-n",
                "team",
                "--field-selector",
                "reason=FailedCreate",
                "-o",
                "jsonpath={.items[*].message}",
            ])
            .ok()
            .stdout;
        if out.contains("exceeded quota") {
            Ok(out)
        } else {
            Err(out)
        }
    });
    assert!(
        event.contains("Error creating: pods \"web-")
            && event.contains(
                "\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
            ),
        "{event}"
    );
    k.run(&["delete", "deployment", "web", "-n", "team"]).ok();

    // A quota on cpu requests needs every container to state one.
    k.run(&[
        "create",
        "quota",
        "compute",
        "-n",
        "team",
        "--hard=requests.cpu=1",
    ])
    .ok();
    wait_used(&k, "compute", "requests.cpu", "0", "1");
    run_pod(&k, "p4").failed().stderr_has(
        "pods \"p4\" is forbidden: failed quota: compute: must specify requests.cpu for: p4",
    );
    format!(
        "usage freed {:.1} s after the pod's delete returned",
        freed_after.as_secs_f64()
    )
}

#[test]
fn resource_quota_usage_and_admission() {
    run_recorded(
        "resource_quota_usage_and_admission",
        &format!("kubectl-{KUBECTL}"),
        quota_enforcement,
    );
}
