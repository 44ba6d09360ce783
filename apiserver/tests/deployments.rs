//! The Deployment controller through the HTTP API, without the ReplicaSet controller: the
//! test plays the ReplicaSet controller's part by writing each ReplicaSet's `/status`, and
//! checks the Deployment controller's reaction step by step (names, labels, annotations,
//! the RollingUpdate bounds, Recreate's order, proportional scaling, revisions, conditions).

mod common;

use std::time::{Duration, Instant};

use beemesh_workloads::DeploymentController;
use common::*;
use http::StatusCode;
use serde_json::{Value, json};

const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";
const RSS: &str = "/apis/apps/v1/namespaces/default/replicasets";

async fn node_with_controller() -> Node {
    let node = Node::start().await;
    tokio::spawn(DeploymentController::new(node.state.service.clone()).run());
    node
}

async fn get(node: &Node, path: &str) -> Value {
    let r = node.get(path).send().await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    r.json()
}

/// The ReplicaSets controlled by the Deployment `name`, oldest first.
async fn owned(node: &Node, name: &str) -> Vec<Value> {
    let d = get(node, &format!("{DEPLOYS}/{name}")).await;
    let uid = d["metadata"]["uid"].clone();
    let list = get(node, RSS).await;
    let mut out: Vec<Value> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        })
        .collect();
    out.sort_by_key(|rs| {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    });
    out
}

/// Polls `check` every 50 ms until it returns Some, for at most 10 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Plays the ReplicaSet controller: `available` of the RS's replicas are ready and
/// available, `existing` pods exist.
async fn set_rs_status(node: &Node, rs: &Value, existing: i64, available: i64) {
    let name = rs["metadata"]["name"].as_str().unwrap_or_default();
    let mut obj = rs.clone();
    // No resourceVersion: the controller may have rescaled it since it was read.
    if let Some(meta) = obj["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    obj["status"] = json!({"replicas": existing, "readyReplicas": available,
        "availableReplicas": available, "fullyLabeledReplicas": existing,
        "observedGeneration": rs["metadata"]["generation"]});
    let r = node
        .put(&format!("{RSS}/{name}/status"))
        .json(&obj)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

fn spec_replicas(rs: &Value) -> i64 {
    rs["spec"]["replicas"].as_i64().unwrap_or(-1)
}

fn condition<'a>(d: &'a Value, kind: &str) -> Option<&'a Value> {
    d["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn rolling(name: &str, replicas: i64, surge: Value, unavailable: Value) -> Value {
    let mut d = deployment(name, replicas);
    d["spec"]["strategy"] = json!({"type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}});
    d
}

/// Waits for the first ReplicaSet and makes all of its pods available.
async fn settle_first(node: &Node, name: &str, replicas: i64) -> Value {
    let rs = eventually("first ReplicaSet", || async {
        owned(node, name)
            .await
            .into_iter()
            .find(|rs| spec_replicas(rs) == replicas)
    })
    .await;
    set_rs_status(node, &rs, replicas, replicas).await;
    eventually("first rollout complete", || async {
        let d = get(node, &format!("{DEPLOYS}/{name}")).await;
        (condition(&d, "Progressing")?["reason"] == "NewReplicaSetAvailable").then_some(rs.clone())
    })
    .await
}

#[tokio::test]
async fn first_replicaset_is_named_labelled_and_annotated_as_upstream() {
    let node = node_with_controller().await;
    let mut d = rolling("web", 3, json!(1), json!(0));
    d["metadata"]["annotations"] = json!({"kubernetes.io/change-cause": "first"});
    node.create(DEPLOYS, d).await;
    let rs = settle_first(&node, "web", 3).await;
    let name = rs["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(name, format!("web-{hash}"));
    assert!(
        hash.bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
    );
    assert_eq!(rs["metadata"]["labels"]["app"], "web");
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash
    );
    assert_eq!(rs["spec"]["selector"]["matchLabels"]["app"], "web");
    assert_eq!(
        rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"],
        hash
    );
    let ann = &rs["metadata"]["annotations"];
    assert_eq!(ann["deployment.kubernetes.io/revision"], "1");
    assert_eq!(ann["deployment.kubernetes.io/desired-replicas"], "3");
    assert_eq!(ann["deployment.kubernetes.io/max-replicas"], "4");
    assert_eq!(ann["kubernetes.io/change-cause"], "first");
    let owner = &rs["metadata"]["ownerReferences"][0];
    assert_eq!(
        (&owner["kind"], &owner["name"], &owner["controller"]),
        (&json!("Deployment"), &json!("web"), &json!(true))
    );

    let d = get(&node, &format!("{DEPLOYS}/web")).await;
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let st = &d["status"];
    assert_eq!(
        (
            &st["replicas"],
            &st["updatedReplicas"],
            &st["readyReplicas"],
            &st["availableReplicas"]
        ),
        (&json!(3), &json!(3), &json!(3), &json!(3))
    );
    assert_eq!(st["observedGeneration"], d["metadata"]["generation"]);
    let avail = condition(&d, "Available").cloned().unwrap_or_default();
    assert_eq!(
        (&avail["status"], &avail["reason"], &avail["message"]),
        (
            &json!("True"),
            &json!("MinimumReplicasAvailable"),
            &json!("Deployment has minimum availability.")
        )
    );
    let prog = condition(&d, "Progressing").cloned().unwrap_or_default();
    assert_eq!(prog["status"], "True");
    assert_eq!(
        prog["message"],
        format!("ReplicaSet \"{name}\" has successfully progressed.")
    );
}

#[tokio::test]
async fn rolling_update_stays_within_surge_and_unavailable() {
    let node = node_with_controller().await;
    // 4 replicas, maxSurge 1, maxUnavailable 1: never more than 5 pods, never fewer
    // than 3 available.
    node.create(DEPLOYS, rolling("roll", 4, json!(1), json!(1)))
        .await;
    let first = settle_first(&node, "roll", 4).await;
    let r = node
        .patch(&format!("{DEPLOYS}/roll"))
        .merge(&json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(20), "rollout stuck");
        let rss = owned(&node, "roll").await;
        let total: i64 = rss.iter().map(spec_replicas).sum();
        assert!(total <= 5, "more than replicas + maxSurge: {rss:?}");
        // Bring every ReplicaSet's pods to its size, all available (as a fast kubelet).
        let mut available = 0;
        for rs in &rss {
            let want = spec_replicas(rs);
            available += want;
            if rs["status"]["availableReplicas"].as_i64().unwrap_or(0) != want
                || rs["status"]["replicas"].as_i64().unwrap_or(0) != want
            {
                set_rs_status(&node, rs, want, want).await;
            }
        }
        assert!(
            available >= 3,
            "fewer than replicas - maxUnavailable: {rss:?}"
        );
        let done = rss.len() == 2
            && spec_replicas(&rss[0]) == 0
            && spec_replicas(&rss[1]) == 4
            && rss[1]["status"]["availableReplicas"] == 4;
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let rss = owned(&node, "roll").await;
    assert_eq!(rss[0]["metadata"]["name"], first["metadata"]["name"]);
    assert_eq!(
        rss[1]["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let new_name = rss[1]["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let d = eventually("rollout complete", || async {
        let d = get(&node, &format!("{DEPLOYS}/roll")).await;
        (condition(&d, "Progressing")?["reason"] == "NewReplicaSetAvailable"
            && d["status"]["replicas"] == 4)
            .then_some(d)
    })
    .await;
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(
        condition(&d, "Progressing").cloned().unwrap_or_default()["message"],
        format!("ReplicaSet \"{new_name}\" has successfully progressed.")
    );

    // Rolling back to the first template re-uses the first ReplicaSet as revision 3.
    let r = node
        .patch(&format!("{DEPLOYS}/roll"))
        .merge(&json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let first_name = first["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    eventually("the first ReplicaSet becomes revision 3", || async {
        let rs = get(&node, &format!("{RSS}/{first_name}")).await;
        let ann = &rs["metadata"]["annotations"];
        (ann["deployment.kubernetes.io/revision"] == "3"
            && ann["deployment.kubernetes.io/revision-history"] == "1")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn recreate_scales_old_down_and_waits_for_its_pods() {
    let node = node_with_controller().await;
    let mut d = deployment("re", 2);
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    node.create(DEPLOYS, d).await;
    let first = settle_first(&node, "re", 2).await;
    let first_name = first["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = node
        .patch(&format!("{DEPLOYS}/re"))
        .merge(&json!({"spec": {"template": {"metadata": {"labels": {"app": "re", "v": "2"}}}}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let old = eventually("old scaled to 0", || async {
        let rs = get(&node, &format!("{RSS}/{first_name}")).await;
        (spec_replicas(&rs) == 0).then_some(rs)
    })
    .await;
    // Its pods still exist: no new ReplicaSet yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(owned(&node, "re").await.len(), 1);
    set_rs_status(&node, &old, 0, 0).await;
    let new = eventually("new ReplicaSet at full size", || async {
        owned(&node, "re")
            .await
            .into_iter()
            .find(|rs| rs["metadata"]["name"] != first_name.as_str() && spec_replicas(rs) == 2)
    })
    .await;
    assert_eq!(new["spec"]["template"]["metadata"]["labels"]["v"], "2");
}

#[tokio::test]
async fn scaling_mid_rollout_is_proportional_and_history_is_limited() {
    let node = node_with_controller().await;
    let mut d = rolling("prop", 10, json!(3), json!(2));
    d["spec"]["revisionHistoryLimit"] = json!(1);
    node.create(DEPLOYS, d).await;
    settle_first(&node, "prop", 10).await;
    // A new template whose pods never turn available: the rollout stops at old 8 / new 5.
    let r = node
        .patch(&format!("{DEPLOYS}/prop"))
        .merge(&json!({"spec": {"template": {"metadata": {"labels": {"app": "prop", "v": "2"}}}}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    eventually("rollout blocked at 8 + 5", || async {
        let rss = owned(&node, "prop").await;
        (rss.len() == 2 && spec_replicas(&rss[0]) == 8 && spec_replicas(&rss[1]) == 5).then_some(())
    })
    .await;
    let rss = owned(&node, "prop").await;
    set_rs_status(&node, &rss[0], 8, 8).await;
    set_rs_status(&node, &rss[1], 5, 0).await;
    eventually("status counts the old pods", || async {
        let d = get(&node, &format!("{DEPLOYS}/prop")).await;
        (d["status"]["replicas"] == 13).then_some(())
    })
    .await;
    // Scale to 15: the 5 extra replicas are shared 3/2 as upstream.
    let r = node
        .patch(&format!("{DEPLOYS}/prop"))
        .merge(&json!({"spec": {"replicas": 15}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    eventually("proportional scale-up", || async {
        let rss = owned(&node, "prop").await;
        (spec_replicas(&rss[0]) == 11 && spec_replicas(&rss[1]) == 7).then_some(())
    })
    .await;

    // A third template, then the second and first become old: only one old RS stays once
    // the rollout completes.
    let r = node
        .patch(&format!("{DEPLOYS}/prop"))
        .merge(&json!({"spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "prop", "v": "3"}}}}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(20), "rollout stuck");
        let rss = owned(&node, "prop").await;
        for rs in &rss {
            let want = spec_replicas(rs);
            if rs["status"]["availableReplicas"].as_i64().unwrap_or(0) != want
                || rs["status"]["replicas"].as_i64().unwrap_or(0) != want
            {
                set_rs_status(&node, rs, want, want).await;
            }
        }
        let last = rss.last().cloned().unwrap_or_default();
        if rss.len() == 2
            && last["metadata"]["labels"]["v"] == "3"
            && spec_replicas(&last) == 2
            && spec_replicas(&rss[0]) == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[tokio::test]
async fn paused_deployment_does_not_roll_out() {
    let node = node_with_controller().await;
    node.create(DEPLOYS, rolling("p", 2, json!(1), json!(0)))
        .await;
    settle_first(&node, "p", 2).await;
    let r = node
        .patch(&format!("{DEPLOYS}/p"))
        .merge(&json!({"spec": {"paused": true, "template": {"metadata": {"labels": {"app": "p", "v": "2"}}}}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let d = eventually("Progressing Unknown DeploymentPaused", || async {
        let d = get(&node, &format!("{DEPLOYS}/p")).await;
        (condition(&d, "Progressing")?["reason"] == "DeploymentPaused").then_some(d)
    })
    .await;
    assert_eq!(
        condition(&d, "Progressing").cloned().unwrap_or_default()["message"],
        "Deployment is paused"
    );
    assert_eq!(owned(&node, "p").await.len(), 1);
    let r = node
        .patch(&format!("{DEPLOYS}/p"))
        .merge(&json!({"spec": {"paused": false}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    eventually("a new ReplicaSet after resume", || async {
        (owned(&node, "p").await.len() == 2).then_some(())
    })
    .await;
}
