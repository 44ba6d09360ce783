//! The ReplicaSet controller with real kubectl: a ReplicaSet gets its pods, a deleted pod
//! is replaced, `kubectl scale` up and down is exact, `kubectl get rs` shows the counts,
//! deleting the ReplicaSet lets the garbage collector take the pods; and a three-node mesh
//! where ReplicaSets created through different nodes never have more pods than replicas.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use beemesh_conformance::api::{ApiClient, Reply};
use beemesh_conformance::{Ctx, Kubectl, Mesh, eventually, run_case, run_recorded, skip};
use serde_json::{Value, json};

const KUBECTL: &str = "1.33";
/// How long the controller may take (generous for a loaded 2-core machine).
const SETTLE: Duration = Duration::from_secs(30);
const RS: &str = "/apis/apps/v1/namespaces/default/replicasets";
const PODS: &str = "/api/v1/namespaces/default/pods";

fn replicaset(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    })
}

/// The names of the pods labelled app=`app` that are not being deleted.
fn active(pods: &[Value], app: &str) -> Vec<String> {
    pods.iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

fn kubectl_pods(k: &Kubectl, app: &str) -> Vec<Value> {
    let list = k.get_json(&["pods", "-l", &format!("app={app}")]);
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Waits for exactly `n` active pods, then checks the count holds for two seconds.
#[track_caller]
fn settles_at(k: &Kubectl, app: &str, n: usize) -> Vec<String> {
    let names = eventually(SETTLE, || {
        let names = active(&kubectl_pods(k, app), app);
        (names.len() == n)
            .then_some(names.clone())
            .ok_or(format!("{} active pods, want {n}: {names:?}", names.len()))
    });
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let now = active(&kubectl_pods(k, app), app);
        assert_eq!(now.len(), n, "the count moved past {n}: {now:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    names
}

fn lifecycle(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.create(&replicaset("web", 3).to_string());
    let uid = k.get_json(&["rs", "web"])["metadata"]["uid"].clone();
    let names = settles_at(k, "web", 3);
    for p in kubectl_pods(k, "web") {
        let refs = &p["metadata"]["ownerReferences"];
        assert_eq!(
            refs,
            &json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": uid,
                     "controller": true, "blockOwnerDeletion": true}]),
            "{p}"
        );
        assert_eq!(p["metadata"]["generateName"], "web-");
    }
    eventually(SETTLE, || {
        let t = k.run(&["get", "rs", "web"]).ok().table();
        let got = (
            t.cell("web", "DESIRED"),
            t.cell("web", "CURRENT"),
            t.cell("web", "READY"),
        );
        (got == ("3".into(), "3".into(), "0".into()))
            .then_some(())
            .ok_or(format!("kubectl get rs: {got:?}"))
    });

    // A deleted pod is replaced.
    let victim = &names[0];
    k.run(&["delete", "pod", victim, "--wait=false"]).ok();
    eventually(SETTLE, || {
        let now = active(&kubectl_pods(k, "web"), "web");
        (now.len() == 3 && !now.contains(victim))
            .then_some(())
            .ok_or(format!("not replaced: {now:?}"))
    });

    k.run(&["scale", "rs/web", "--replicas=5"])
        .ok()
        .stdout_has("replicaset.apps/web scaled");
    settles_at(k, "web", 5);
    k.run(&["scale", "rs/web", "--replicas=1"]).ok();
    settles_at(k, "web", 1);
    eventually(SETTLE, || {
        let t = k.run(&["get", "rs", "web"]).ok().table();
        let got = (t.cell("web", "DESIRED"), t.cell("web", "CURRENT"));
        (got == ("1".into(), "1".into()))
            .then_some(())
            .ok_or(format!("kubectl get rs: {got:?}"))
    });

    // Deleting the ReplicaSet (background) lets the garbage collector take the pods.
    k.run(&["delete", "rs", "web", "--wait=false"])
        .ok()
        .stdout_has("replicaset.apps \"web\" deleted");
    eventually(SETTLE, || {
        let left = active(&kubectl_pods(k, "web"), "web");
        left.is_empty()
            .then_some(())
            .ok_or(format!("pods left: {left:?}"))
    });
}

#[test]
fn replicaset_lifecycle() {
    run_case("replicaset_lifecycle", KUBECTL, lifecycle);
}

#[track_caller]
fn ok(reply: Result<Reply, reqwest::Error>, what: &str, want: u16) -> Value {
    match reply {
        Ok(r) if r.status == want => r.body,
        Ok(r) => panic!("{what}: expected {want}, got {}: {}", r.status, r.body),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Active pods per ReplicaSet name as `api` lists them.
fn counts(api: &ApiClient) -> BTreeMap<String, usize> {
    let (pods, _) = api.list(PODS);
    let mut out = BTreeMap::new();
    for p in &pods {
        if !p["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        if let Some(owner) = p["metadata"]["ownerReferences"][0]["name"].as_str() {
            *out.entry(owner.to_string()).or_default() += 1;
        }
    }
    out
}

/// Watches every node until the counts equal `want` on all of them. Returns how long that
/// took and the largest surplus over `bound` seen on the way: while membership settles two
/// nodes may briefly both act as a ReplicaSet's home and over-create, which surplus
/// deletion corrects (the bar is "never more pods than replicas once settled").
/// With `strict`, any surplus fails at once.
fn converge(
    apis: &[ApiClient],
    want: &BTreeMap<String, usize>,
    bound: &BTreeMap<String, usize>,
    strict: bool,
) -> (Duration, usize) {
    let started = Instant::now();
    let mut worst = 0;
    loop {
        let mut all = true;
        for (i, api) in apis.iter().enumerate() {
            let got = counts(api);
            for (rs, n) in &got {
                let max = bound.get(rs).copied().unwrap_or(0);
                assert!(
                    !strict || *n <= max,
                    "node {i}: {rs} has {n} active pods, more than {max} once settled: {got:?}"
                );
                worst = worst.max(n.saturating_sub(max));
            }
            all &= want
                .iter()
                .all(|(rs, n)| got.get(rs).copied().unwrap_or(0) == *n);
        }
        if all {
            return (started.elapsed(), worst);
        }
        assert!(started.elapsed() < SETTLE, "did not converge to {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mesh_replicasets() -> String {
    let mesh = match Mesh::start(3) {
        Ok(m) => m,
        Err(e) => panic!("a mesh of 3 did not start: {e}"),
    };
    // kubectl is only needed to know the version is installed, as the other cases.
    if let Err(why) = Kubectl::new(KUBECTL, &mesh.node(0).kubeconfig()) {
        skip(why);
    }
    let apis: Vec<_> = (0..3).map(|i| mesh.node(i).api()).collect();
    let names: Vec<String> = (0..6).map(|i| format!("mesh-rs-{i}")).collect();
    let mut want = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        ok(apis[i % 3].post(RS, &replicaset(name, 3)), "create rs", 201);
        want.insert(name.clone(), 3);
    }
    let (created, surplus_at_create) = converge(&apis, &want, &want, false);
    // Scale through another node than the one that created each: 5 for the even ones,
    // 1 for the odd ones. The bound during the change is the larger of the two sizes.
    let mut bound = want.clone();
    for (i, name) in names.iter().enumerate() {
        let n = if i % 2 == 0 { 5 } else { 1 };
        ok(
            apis[(i + 1) % 3].merge_patch(
                &format!("{RS}/{name}/scale"),
                &json!({"spec": {"replicas": n}}),
            ),
            "scale",
            200,
        );
        want.insert(name.clone(), n);
        bound.insert(name.clone(), n.max(3));
    }
    let (scaled, surplus_at_scale) = converge(&apis, &want, &bound, false);
    // Settled: the counts hold, with no surplus on any look.
    std::thread::sleep(Duration::from_secs(2));
    converge(&apis, &want, &want, true);
    format!(
        "6 ReplicaSets of 3 through 3 nodes: settled on every node in {} ms (largest transient surplus {surplus_at_create}); scaled to 5/1 in {} ms (surplus {surplus_at_scale}); exact once settled",
        created.as_millis(),
        scaled.as_millis()
    )
}

#[test]
fn mesh_replicasets_never_exceed_replicas() {
    run_recorded(
        "mesh_replicasets_never_exceed_replicas",
        &format!("kubectl-{KUBECTL}"),
        mesh_replicasets,
    );
}
