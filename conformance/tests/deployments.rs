//! Deployments with real kubectl 1.33. On a node with `--runtime sim` (pods pinned to it by
//! the template's `nodeName`, as there is no scheduler in this flow) the ReplicaSet
//! controller's pods turn Ready, so `kubectl rollout status` returns as on a real cluster
//! through `set image`, `rollout undo`, `rollout restart` and `scale`, and `rollout
//! history` lists the revisions. On a node without a runtime the ReplicaSet is still named,
//! labelled and annotated as upstream's, and `rollout status` waits with upstream's words.

use std::time::Duration;

use beemesh_conformance::{Ctx, Kubectl, Node, eventually, run_case, run_recorded, skip};
use serde_json::{Value, json};

const KUBECTL: &str = "1.33";
/// `beemesh_conformance::Node`'s `--node-name`.
const NODE: &str = "conformance";
/// How long controllers may take (generous for a loaded 2-core machine).
const SETTLE: Duration = Duration::from_secs(60);

/// The ReplicaSets of app=`app`, by revision.
fn replicasets(k: &Kubectl, app: &str) -> Vec<Value> {
    let list = k.get_json(&["rs", "-l", &format!("app={app}")]);
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(revision);
    items
}

fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn rolled_out(k: &Kubectl, name: &str) {
    k.run(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "--timeout=90s",
    ])
    .ok()
    .stdout_has(&format!("deployment \"{name}\" successfully rolled out"));
}

fn full_rollout() -> String {
    let node = match Node::start_with(&["--runtime", "sim"]) {
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
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"nodeName": NODE,
                    "containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    });
    k.apply(&manifest.to_string())
        .ok()
        .stdout_has("deployment.apps/web created");
    rolled_out(&k, "web");
    let t = k.run(&["get", "deploy", "web"]).ok().table();
    assert_eq!(t.cell("web", "READY"), "3/3");
    assert_eq!(t.cell("web", "UP-TO-DATE"), "3");
    assert_eq!(t.cell("web", "AVAILABLE"), "3");

    k.run(&["set", "image", "deployment/web", "web=nginx:1.28"])
        .ok()
        .stdout_has("deployment.apps/web image updated");
    rolled_out(&k, "web");
    let rss = replicasets(&k, "web");
    assert_eq!(rss.len(), 2, "{rss:?}");
    assert_eq!(rss[0]["spec"]["replicas"], 0);
    assert_eq!(rss[1]["spec"]["replicas"], 3);
    assert_eq!(
        rss[1]["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    let first = rss[0]["metadata"]["name"].clone();

    // `deployment.apps/web`, then a REVISION / CHANGE-CAUSE table.
    let history = k.run(&["rollout", "history", "deployment/web"]).ok();
    let rows: Vec<Vec<&str>> = history
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec!["deployment.apps/web"],
            vec!["REVISION", "CHANGE-CAUSE"],
            vec!["1", "<none>"],
            vec!["2", "<none>"],
            vec![],
        ],
        "{}",
        history.stdout
    );
    k.run(&["rollout", "history", "deployment/web", "--revision=1"])
        .ok()
        .stdout_has("nginx:1.27");

    k.run(&["rollout", "undo", "deployment/web"])
        .ok()
        .stdout_has("deployment.apps/web rolled back");
    rolled_out(&k, "web");
    let rss = replicasets(&k, "web");
    assert_eq!(rss.len(), 2, "{rss:?}");
    // The first ReplicaSet is the new one again, now revision 3.
    assert_eq!(rss[1]["metadata"]["name"], first);
    assert_eq!(revision(&rss[1]), 3);
    assert_eq!(rss[1]["spec"]["replicas"], 3);
    let d = k.get_json(&["deploy", "web"]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );

    k.run(&["rollout", "restart", "deployment/web"])
        .ok()
        .stdout_has("deployment.apps/web restarted");
    rolled_out(&k, "web");
    let rss = replicasets(&k, "web");
    assert_eq!(rss.len(), 3, "{rss:?}");
    assert!(
        rss[2]["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{}",
        rss[2]
    );

    k.run(&["scale", "deployment", "web", "--replicas=5"])
        .ok()
        .stdout_has("deployment.apps/web scaled");
    rolled_out(&k, "web");
    let t = k.run(&["get", "deploy", "web"]).ok().table();
    assert_eq!(t.cell("web", "READY"), "5/5");
    let d = k.get_json(&["deploy", "web"]);
    let conds = d["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let reasons: Vec<(String, String)> = conds
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&("Available".into(), "MinimumReplicasAvailable".into())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("Progressing".into(), "NewReplicaSetAvailable".into())),
        "{reasons:?}"
    );
    String::new()
}

#[test]
fn deployment_rollout_sim() {
    run_recorded(
        "deployment_rollout_sim",
        &format!("kubectl-{KUBECTL}"),
        full_rollout,
    );
}

/// Without a runtime: the ReplicaSet as upstream names it, scale, and `rollout status`
/// waiting for available replicas.
fn without_runtime(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.run(&[
        "create",
        "deployment",
        "api",
        "--image=nginx:1.27",
        "--replicas=3",
    ])
    .ok()
    .stdout_has("deployment.apps/api created");
    let rs = eventually(SETTLE, || {
        let rss = replicasets(k, "api");
        (rss.len() == 1)
            .then(|| rss[0].clone())
            .ok_or(format!("{} ReplicaSets", rss.len()))
    });
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!hash.is_empty(), "{rs}");
    assert_eq!(rs["metadata"]["name"], format!("api-{hash}"));
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"],
        json!({"app": "api", "pod-template-hash": hash})
    );
    let ann = &rs["metadata"]["annotations"];
    assert_eq!(ann["deployment.kubernetes.io/revision"], "1");
    assert_eq!(ann["deployment.kubernetes.io/desired-replicas"], "3");
    assert_eq!(ann["deployment.kubernetes.io/max-replicas"], "4");
    let out = k
        .run(&["rollout", "status", "deployment/api", "--timeout=3s"])
        .failed();
    assert!(
        out.stdout
            .contains("Waiting for deployment \"api\" rollout to finish:"),
        "{}",
        out.brief()
    );

    k.run(&["scale", "deployment", "api", "--replicas=5"])
        .ok()
        .stdout_has("deployment.apps/api scaled");
    eventually(SETTLE, || {
        let rss = replicasets(k, "api");
        let sizes: Vec<Value> = rss.iter().map(|r| r["spec"]["replicas"].clone()).collect();
        (sizes == vec![json!(5)])
            .then_some(())
            .ok_or(format!("{sizes:?}"))
    });
    let t = k.run(&["get", "deploy", "api"]).ok().table();
    assert_eq!(t.cell("api", "READY"), "0/5");
}

#[test]
fn deployment_without_runtime() {
    run_case("deployment_without_runtime", KUBECTL, without_runtime);
}
