//! Service endpoints with real kubectl 1.33 on a node with `--runtime sim`: a Deployment
//! of 3 behind a Service (`kubectl expose`, named targetPort) gets an EndpointSlice
//! (`<svc>-xxxxx`, service-name/managed-by labels, owned by the Service, IPv4) whose
//! endpoints are the pods (IPs, nodeName, targetRef) — not ready while the pods are still
//! starting (`--sim-start-delay`), ready once they run — with the container port the name
//! resolves to; `kubectl get endpoints` and `kubectl describe svc` show the same
//! addresses; the slice is not rewritten while nothing changes; scaling to 1 leaves 1
//! endpoint; deleting the Service takes its slices and Endpoints with it.

use std::collections::BTreeSet;
use std::time::Duration;

use beemesh_conformance::{Kubectl, Node, eventually, run_recorded, skip};
use serde_json::{Value, json};

const KUBECTL: &str = "1.33";
/// `beemesh_conformance::Node`'s `--node-name`.
const NODE: &str = "conformance";
const SETTLE: Duration = Duration::from_secs(60);

fn slices(k: &Kubectl) -> Vec<Value> {
    k.get_json(&["endpointslices", "-l", "kubernetes.io/service-name=web"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn endpoints_of(slices: &[Value]) -> Vec<Value> {
    slices
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The podIPs of the running pods of app=web.
fn pod_ips(k: &Kubectl) -> BTreeSet<String> {
    k.get_json(&["pods", "-l", "app=web"])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
        .collect()
}

fn service_endpoints() -> String {
    let node = match Node::start_with(&["--runtime", "sim", "--sim-start-delay", "6s"]) {
        Ok(n) => n,
        Err(e) => panic!("node did not start: {e}"),
    };
    let k = match Kubectl::new(KUBECTL, &node.kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    };
    let manifest = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"nodeName": NODE, "containers": [{"name": "web", "image": "nginx:1.27",
                    "ports": [{"name": "http", "containerPort": 8080}]}]}}}
    });
    k.apply(&manifest.to_string())
        .ok()
        .stdout_has("deployment.apps/web created");
    k.run(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=http",
    ])
    .ok()
    .stdout_has("service/web exposed");

    // While the containers are still being created (6 s), the pods have addresses but
    // are not ready: their endpoints say so.
    let unready = eventually(SETTLE, || {
        let eps = endpoints_of(&slices(&k));
        eps.iter()
            .find(|e| e["conditions"]["ready"] == false)
            .cloned()
            .ok_or_else(|| format!("no unready endpoint yet: {eps:?}"))
    });
    assert_eq!(unready["conditions"]["serving"], false, "{unready}");
    assert_eq!(unready["conditions"]["terminating"], false, "{unready}");

    let ready = eventually(SETTLE, || {
        let s = slices(&k);
        let eps = endpoints_of(&s);
        let ips: BTreeSet<String> = eps
            .iter()
            .filter(|e| e["conditions"]["ready"] == true)
            .filter_map(|e| e["addresses"][0].as_str().map(str::to_string))
            .collect();
        let pods = pod_ips(&k);
        if s.len() == 1 && eps.len() == 3 && ips.len() == 3 && ips == pods {
            Ok(s)
        } else {
            Err(format!("slices {s:?}, pod IPs {pods:?}"))
        }
    });
    let slice = &ready[0];
    let name = slice["metadata"]["name"].as_str().unwrap_or_default();
    assert!(
        name.starts_with("web-") && name.len() == "web-".len() + 5,
        "slice name {name}"
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(slice["metadata"]["ownerReferences"][0]["name"], "web");
    assert_eq!(
        slice["ports"],
        json!([{"name": "", "port": 8080, "protocol": "TCP"}])
    );
    for ep in slice["endpoints"].as_array().into_iter().flatten() {
        assert_eq!(ep["nodeName"], NODE, "{ep}");
        assert_eq!(ep["targetRef"]["kind"], "Pod", "{ep}");
        assert_eq!(ep["conditions"]["serving"], true, "{ep}");
    }
    let ips = pod_ips(&k);

    // kubectl get endpoints / describe svc show the same addresses with the target port.
    let shown = eventually(SETTLE, || {
        let out = k.run(&["get", "endpoints", "web"]).ok();
        let cell = out.table().cell("web", "ENDPOINTS");
        if ips.iter().all(|ip| cell.contains(&format!("{ip}:8080"))) {
            Ok(cell)
        } else {
            Err(out.stdout)
        }
    });
    let describe = k.run(&["describe", "svc", "web"]).ok().stdout;
    let line = describe
        .lines()
        .find(|l| l.starts_with("Endpoints:"))
        .unwrap_or_default()
        .to_string();
    for ip in &ips {
        assert!(line.contains(&format!("{ip}:8080")), "{describe}");
    }

    // Nothing changes, so nothing is written.
    let rv = slice["metadata"]["resourceVersion"].clone();
    std::thread::sleep(Duration::from_secs(3));
    let again = slices(&k);
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0]["metadata"]["resourceVersion"], rv,
        "slice rewritten"
    );

    k.run(&["scale", "deployment", "web", "--replicas=1"])
        .ok()
        .stdout_has("deployment.apps/web scaled");
    let left = eventually(SETTLE, || {
        let eps = endpoints_of(&slices(&k));
        let pods = pod_ips(&k);
        let live: Vec<&Value> = eps
            .iter()
            .filter(|e| e["conditions"]["terminating"] == false)
            .collect();
        if live.len() == 1 && eps.len() == 1 && pods.len() == 1 {
            Ok(eps[0]["addresses"][0]
                .as_str()
                .unwrap_or_default()
                .to_string())
        } else {
            Err(format!("endpoints {eps:?}, pods {pods:?}"))
        }
    });
    eventually(SETTLE, || {
        let v = k.get_json(&["endpoints", "web"]);
        let addrs = &v["subsets"][0]["addresses"];
        if addrs.as_array().map(Vec::len) == Some(1) && addrs[0]["ip"] == left.as_str() {
            Ok(())
        } else {
            Err(v.to_string())
        }
    });

    k.run(&["delete", "svc", "web"]).ok();
    eventually(SETTLE, || {
        let s = slices(&k);
        if s.is_empty() {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    });
    eventually(SETTLE, || {
        let out = k.run(&["get", "endpoints", "web"]);
        if out.stderr.contains("NotFound") {
            Ok(())
        } else {
            Err(out.stdout)
        }
    });
    format!("endpoints shown as {shown}; scaled to 1 → {left}")
}

#[test]
fn endpoint_slices_track_ready_pods() {
    run_recorded(
        "endpoint_slices_track_ready_pods",
        &format!("kubectl-{KUBECTL}"),
        service_endpoints,
    );
}
