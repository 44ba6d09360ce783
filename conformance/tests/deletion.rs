//! Deletion semantics with real kubectl: `--cascade=background|foreground|orphan` on
//! owners whose deletion needs no controller (ConfigMap/Secret owners and dependents, a
//! Deployment→ReplicaSet chain created by hand), several owners, `kubectl delete --wait`
//! finishing once a patch removes a finalizer, server dry runs, graceful pod deletion,
//! bad ownerReferences; and one three-node mesh where an owner deleted through node A
//! takes along dependents homed on the other nodes.

use std::time::{Duration, Instant};

use beemesh_conformance::api::Reply;
use beemesh_conformance::{
    Ctx, Kubectl, Mesh, Output, eventually, has, kubectl_cases, run_recorded, skip,
};
use serde_json::{Value, json};

kubectl_cases!(
    cascade_background,
    cascade_foreground_waits_for_blocking_dependents,
    cascade_orphan_keeps_dependents,
    several_owners,
    deployment_replicaset_chain,
    delete_dry_run_server,
    pod_grace_period,
    bad_owner_references,
);

/// How long the garbage collector may take (generous for a loaded 2-core machine).
const SETTLE: Duration = Duration::from_secs(20);

/// The uid of `kind/name`.
#[track_caller]
fn uid(k: &Kubectl, kind: &str, name: &str) -> String {
    let obj = k.get_json(&[kind, name]);
    obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_else(|| panic!("{kind}/{name} has no uid: {obj}"))
        .to_string()
}

/// An owner reference to the object `resource/name` of kind `kind` (looked up for its
/// uid).
fn owner_ref(k: &Kubectl, api_version: &str, resource: &str, name: &str, block: bool) -> Value {
    let kind = match resource {
        "configmap" => "ConfigMap",
        "secret" => "Secret",
        "replicaset" => "ReplicaSet",
        "deployment" => "Deployment",
        other => panic!("no kind known for {other}"),
    };
    json!({"apiVersion": api_version, "kind": kind, "name": name,
           "uid": uid(k, resource, name), "blockOwnerDeletion": block})
}

fn configmap(name: &str, owners: Vec<Value>, finalizers: &[&str]) -> String {
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name}, "data": {"k": "v"}});
    if !owners.is_empty() {
        cm["metadata"]["ownerReferences"] = Value::Array(owners);
    }
    if !finalizers.is_empty() {
        cm["metadata"]["finalizers"] = json!(finalizers);
    }
    cm.to_string()
}

/// Whether the object is gone (`get` says NotFound).
fn is_gone(k: &Kubectl, kind: &str, name: &str) -> Result<(), String> {
    let out = k.run(&["get", kind, name]);
    if out.code != 0 && out.stderr.contains("NotFound") {
        Ok(())
    } else {
        Err(format!("{kind}/{name} still there: {out}"))
    }
}

#[track_caller]
fn fails_with(out: Output, needles: &[&str]) -> Output {
    let out = out.failed();
    for n in needles {
        assert!(out.stderr.contains(n), "stderr lacks {n:?}: {out}");
    }
    out
}

fn cascade_background(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.create(&configmap("owner", vec![], &[]));
    let by_owner = || owner_ref(k, "v1", "configmap", "owner", false);
    let (r1, r2) = (by_owner(), by_owner());
    k.create(&configmap("dep-1", vec![r1], &[]));
    k.create(&configmap("dep-2", vec![r2], &[]));
    // A dependent of a dependent cascades.
    let r3 = owner_ref(k, "v1", "configmap", "dep-1", true);
    k.create(&configmap("grandchild", vec![r3], &[]));
    k.run(&["delete", "configmap", "owner", "--cascade=background"])
        .ok()
        .stdout_has("configmap \"owner\" deleted");
    is_gone(k, "configmap", "owner").unwrap_or_else(|e| panic!("{e}"));
    for dep in ["dep-1", "dep-2", "grandchild"] {
        eventually(SETTLE, || is_gone(k, "configmap", dep));
    }
    // The default (no --cascade) is background too.
    k.create(&configmap("owner2", vec![], &[]));
    let r = owner_ref(k, "v1", "configmap", "owner2", false);
    k.create(&configmap("dep-3", vec![r], &[]));
    k.run(&["delete", "configmap", "owner2"]).ok();
    eventually(SETTLE, || is_gone(k, "configmap", "dep-3"));
}

fn cascade_foreground_waits_for_blocking_dependents(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.create(&configmap("fg", vec![], &[]));
    let blocking = owner_ref(k, "v1", "configmap", "fg", true);
    k.create(&configmap("held", vec![blocking], &["example.com/hold"]));
    let free = owner_ref(k, "v1", "configmap", "fg", false);
    k.create(&configmap("free", vec![free], &[]));
    let mut deleting = k
        .spawn(&[
            "delete",
            "configmap",
            "fg",
            "--cascade=foreground",
            "--timeout=60s",
        ])
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let owner = eventually(SETTLE, || {
        let cm = k.get_json(&["configmap", "fg"]);
        (!cm["metadata"]["deletionTimestamp"].is_null())
            .then_some(cm.clone())
            .ok_or_else(|| format!("no deletionTimestamp yet: {cm}"))
    });
    has(
        &owner,
        "/metadata/finalizers",
        json!(["foregroundDeletion"]),
    );
    eventually(SETTLE, || is_gone(k, "configmap", "free"));
    eventually(SETTLE, || {
        let cm = k.get_json(&["configmap", "held"]);
        (!cm["metadata"]["deletionTimestamp"].is_null())
            .then_some(())
            .ok_or_else(|| format!("the blocking dependent is not being deleted: {cm}"))
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        deleting.is_running(),
        "kubectl returned while a blocking dependent remains: {}",
        deleting.describe()
    );
    k.get_json(&["configmap", "fg"]);
    k.run(&[
        "patch",
        "configmap",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .ok();
    let code = deleting.wait_exit(Duration::from_secs(40));
    assert_eq!(
        code,
        Some(0),
        "foreground delete did not finish: {}",
        deleting.describe()
    );
    is_gone(k, "configmap", "fg").unwrap_or_else(|e| panic!("{e}"));
    is_gone(k, "configmap", "held").unwrap_or_else(|e| panic!("{e}"));
}

fn cascade_orphan_keeps_dependents(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.create(&configmap("or", vec![], &[]));
    let r = owner_ref(k, "v1", "configmap", "or", true);
    k.create(&configmap("kept", vec![r], &[]));
    let started = Instant::now();
    k.run(&["delete", "configmap", "or", "--cascade=orphan"])
        .ok()
        .stdout_has("configmap \"or\" deleted");
    assert!(started.elapsed() < SETTLE, "orphan delete took too long");
    is_gone(k, "configmap", "or").unwrap_or_else(|e| panic!("{e}"));
    let kept = k.get_json(&["configmap", "kept"]);
    assert!(
        kept["metadata"].get("ownerReferences").is_none(),
        "the orphan still names its owner: {kept}"
    );
    // Still there a while later (nothing collects it).
    std::thread::sleep(Duration::from_secs(3));
    k.get_json(&["configmap", "kept"]);
}

fn several_owners(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.create(&configmap("owner-cm", vec![], &[]));
    k.run(&[
        "create",
        "secret",
        "generic",
        "owner-secret",
        "--from-literal=a=b",
    ])
    .ok();
    let refs = vec![
        owner_ref(k, "v1", "configmap", "owner-cm", false),
        owner_ref(k, "v1", "secret", "owner-secret", false),
    ];
    k.create(&configmap("shared", refs, &[]));
    let secret_ref = owner_ref(k, "v1", "secret", "owner-secret", false);
    k.create(&configmap("secret-only", vec![secret_ref], &[]));
    k.run(&["delete", "secret", "owner-secret"]).ok();
    eventually(SETTLE, || is_gone(k, "configmap", "secret-only"));
    // The shared dependent stays with its live owner; the dangling reference goes.
    let shared = eventually(SETTLE, || {
        let cm = k.get_json(&["configmap", "shared"]);
        let refs = cm["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (refs.len() == 1)
            .then_some(cm.clone())
            .ok_or_else(|| format!("still two references: {cm}"))
    });
    has(
        &shared,
        "/metadata/ownerReferences/0/name",
        json!("owner-cm"),
    );
    k.run(&["delete", "configmap", "owner-cm"]).ok();
    eventually(SETTLE, || is_gone(k, "configmap", "shared"));
}

fn replicaset_of(k: &Kubectl, name: &str, deployment: &str) -> String {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "labels": {"app": "chain"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                "name": deployment, "uid": uid(k, "deployment", deployment),
                "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "chain", "rs": name}},
            "template": {"metadata": {"labels": {"app": "chain", "rs": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    })
    .to_string()
}

fn deployment_replicaset_chain(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let deployment = |name: &str| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
        })
        .to_string()
    };
    k.create(&deployment("fg-web"));
    k.create(&replicaset_of(k, "fg-web-rs", "fg-web"));
    // A ConfigMap owned by the ReplicaSet: the chain is three deep.
    let r = owner_ref(k, "apps/v1", "replicaset", "fg-web-rs", true);
    k.create(&configmap("fg-web-leaf", vec![r], &[]));
    k.run(&[
        "delete",
        "deployment",
        "fg-web",
        "--cascade=foreground",
        "--timeout=60s",
    ])
    .ok()
    .stdout_has("deployment.apps \"fg-web\" deleted");
    // kubectl waited for the deployment, which waited for its blocking ReplicaSet.
    is_gone(k, "deployment", "fg-web").unwrap_or_else(|e| panic!("{e}"));
    is_gone(k, "replicaset", "fg-web-rs").unwrap_or_else(|e| panic!("{e}"));
    is_gone(k, "configmap", "fg-web-leaf").unwrap_or_else(|e| panic!("{e}"));

    k.create(&deployment("or-web"));
    k.create(&replicaset_of(k, "or-web-rs", "or-web"));
    k.run(&["delete", "deployment", "or-web", "--cascade=orphan"])
        .ok();
    is_gone(k, "deployment", "or-web").unwrap_or_else(|e| panic!("{e}"));
    let rs = k.get_json(&["replicaset", "or-web-rs"]);
    assert!(rs["metadata"].get("ownerReferences").is_none(), "{rs}");

    k.create(&deployment("bg-web"));
    k.create(&replicaset_of(k, "bg-web-rs", "bg-web"));
    k.run(&["delete", "deployment", "bg-web"]).ok();
    eventually(SETTLE, || is_gone(k, "replicaset", "bg-web-rs"));
}

fn delete_dry_run_server(ctx: &Ctx) {
    let k = &ctx.kubectl;
    k.create(&configmap("dry", vec![], &[]));
    let r = owner_ref(k, "v1", "configmap", "dry", true);
    k.create(&configmap("dry-dep", vec![r], &[]));
    let before = k.get_json(&["configmap", "dry"]);
    k.run(&[
        "delete",
        "configmap",
        "dry",
        "--cascade=foreground",
        "--dry-run=server",
    ])
    .ok()
    .stdout_has("configmap \"dry\" deleted (server dry run)");
    let after = k.get_json(&["configmap", "dry"]);
    assert_eq!(before, after, "a dry run changed the object");
    std::thread::sleep(Duration::from_secs(1));
    k.get_json(&["configmap", "dry-dep"]);
}

fn pod_grace_period(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let pod = |name: &str, node: Option<&str>| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        if let Some(n) = node {
            p["spec"]["nodeName"] = json!(n);
        }
        p.to_string()
    };
    // Not bound to a node: removed at once, whatever the grace period. It names a
    // scheduler nobody runs, so placement leaves it unbound (as upstream would).
    let mut unbound: Value = serde_json::from_str(&pod("unbound", None)).unwrap_or_default();
    unbound["spec"]["schedulerName"] = json!("no-such-scheduler");
    k.create(&unbound.to_string());
    k.run(&["delete", "pod", "unbound", "--wait=false"]).ok();
    is_gone(k, "pod", "unbound").unwrap_or_else(|e| panic!("{e}"));
    // Bound: kept with deletionTimestamp until the grace period ends; kubectl waits.
    k.create(&pod("bound", Some("elsewhere")));
    let mut deleting = k
        .spawn(&[
            "delete",
            "pod",
            "bound",
            "--grace-period=3",
            "--timeout=60s",
        ])
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let marked = eventually(SETTLE, || {
        let p = k.get_json(&["pod", "bound"]);
        (!p["metadata"]["deletionTimestamp"].is_null())
            .then_some(p.clone())
            .ok_or_else(|| format!("not marked yet: {p}"))
    });
    has(&marked, "/metadata/deletionGracePeriodSeconds", json!(3));
    let code = deleting.wait_exit(Duration::from_secs(40));
    assert_eq!(code, Some(0), "{}", deleting.describe());
    is_gone(k, "pod", "bound").unwrap_or_else(|e| panic!("{e}"));
    // --force --grace-period=0: gone at once.
    k.create(&pod("forced", Some("elsewhere")));
    k.run(&["delete", "pod", "forced", "--force", "--grace-period=0"])
        .ok()
        .stdout_has("pod \"forced\" force deleted");
    is_gone(k, "pod", "forced").unwrap_or_else(|e| panic!("{e}"));
}

fn bad_owner_references(ctx: &Ctx) {
    let k = &ctx.kubectl;
    let missing_uid = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "bad", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "x"}]}})
    .to_string();
    fails_with(
        k.run_stdin(&["create", "-f", "-"], &missing_uid),
        &["metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty"],
    );
    let two_controllers = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "bad", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1", "controller": true},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "y", "uid": "2", "controller": true}]}})
    .to_string();
    fails_with(
        k.run_stdin(&["create", "-f", "-"], &two_controllers),
        &["Only one reference can have Controller set to true"],
    );
    // A finalizer nobody removes keeps the object Terminating (and nothing spins).
    k.create(&configmap("stuck", vec![], &["example.com/never"]));
    k.run(&["delete", "configmap", "stuck", "--wait=false"])
        .ok();
    std::thread::sleep(Duration::from_secs(2));
    let stuck = k.get_json(&["configmap", "stuck"]);
    assert!(!stuck["metadata"]["deletionTimestamp"].is_null(), "{stuck}");
}

// ---------------------------------------------------------------------------------------
// several nodes

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const KUBECTL: &str = "1.33";

#[track_caller]
fn created(reply: Result<Reply, reqwest::Error>, what: &str) -> Value {
    match reply {
        Ok(r) if r.status == 201 => r.body,
        Ok(r) => panic!("{what}: {} {}", r.status, r.body),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Owners created through node A, twelve dependents of each created through B and C (so
/// that their homes are spread over the mesh), the owners deleted through A with kubectl
/// (background, then foreground): every dependent is collected, on every node.
fn mesh_cascade() -> String {
    let mesh = match Mesh::start(3) {
        Ok(m) => m,
        Err(e) => panic!("a mesh of 3 did not start: {e}"),
    };
    let k = match Kubectl::new(KUBECTL, &mesh.node(0).kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    };
    let apis: Vec<_> = (0..3).map(|i| mesh.node(i).api()).collect();
    let mut notes = Vec::new();
    for (owner, cascade) in [("bg-owner", "background"), ("fg-owner", "foreground")] {
        let o = created(
            apis[0].post(
                CMS,
                &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": owner}}),
            ),
            "owner through A",
        );
        let owner_uid = o["metadata"]["uid"].clone();
        let deps: Vec<String> = (0..12).map(|i| format!("{owner}-dep-{i}")).collect();
        for (i, dep) in deps.iter().enumerate() {
            let api = &apis[1 + i % 2];
            let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": dep, "ownerReferences": [{"apiVersion": "v1",
                    "kind": "ConfigMap", "name": owner, "uid": owner_uid,
                    "blockOwnerDeletion": true}]}});
            // The owner may not have reached B or C yet; the dependent may be created
            // anyway (the collector waits for it to replicate).
            created(api.post(CMS, &body), "dependent through B/C");
        }
        // Everything visible on A before the delete.
        eventually(Duration::from_secs(10), || {
            let (items, _) = apis[0].list(CMS);
            let n = items
                .iter()
                .filter(|c| {
                    c["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with(owner))
                })
                .count();
            (n == 13).then_some(()).ok_or(format!("{n} of 13 on A"))
        });
        let started = Instant::now();
        k.run(&[
            "delete",
            "configmap",
            owner,
            &format!("--cascade={cascade}"),
            "--timeout=60s",
        ])
        .ok();
        for api in &apis {
            eventually(SETTLE, || {
                let (items, _) = api.list(CMS);
                let left: Vec<&str> = items
                    .iter()
                    .filter_map(|c| c["metadata"]["name"].as_str())
                    .filter(|n| n.starts_with(owner))
                    .collect();
                left.is_empty()
                    .then_some(())
                    .ok_or(format!("left: {left:?}"))
            });
        }
        notes.push(format!(
            "{cascade}: 12 dependents gone on all nodes in {} ms",
            started.elapsed().as_millis()
        ));
    }
    notes.join("; ")
}

#[test]
fn mesh_cascade_deletes_dependents_homed_elsewhere() {
    run_recorded(
        "mesh_cascade_deletes_dependents_homed_elsewhere",
        &format!("kubectl-{KUBECTL}"),
        mesh_cascade,
    );
}
