//! The API's semantics as a client sees them over HTTP: a real node state on a temp dir
//! behind `router(state)`, every answer checked against upstream kube-apiserver's.

mod common;

use std::time::Duration;

use beemesh_mesh_backend::ReplicaConfig;
use common::*;
use http::StatusCode;
use serde_json::{Value, json};

const CM: &str = "/api/v1/namespaces/default/configmaps";
const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments";

// ---------------------------------------------------------------- create / get / update

#[tokio::test]
async fn create_sets_server_fields_and_get_returns_the_stored_object() {
    let node = Node::start().await;
    let before = node.revision();
    let r = node.post(CM).json(&configmap("a", json!({}))).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let created = r.json();
    let meta = &created["metadata"];
    assert_eq!(meta["name"], "a");
    assert_eq!(meta["namespace"], "default");
    assert_eq!(meta["uid"].as_str().unwrap().len(), 36, "{created}");
    let ts = meta["creationTimestamp"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
    assert_eq!(rv(&created), (before + 1).to_string());
    assert_eq!(node.revision(), before + 1);
    assert_eq!(created["apiVersion"], "v1");
    assert_eq!(created["kind"], "ConfigMap");

    let got = node.get(&format!("{CM}/a")).send().await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json(), created);

    // Server-set fields in the body are ignored.
    let mut forged = configmap("b", json!({}));
    forged["metadata"]["uid"] = json!("forged");
    forged["metadata"]["resourceVersion"] = json!("999");
    forged["metadata"]["creationTimestamp"] = json!("2000-01-01T00:00:00Z");
    let b = node.create(CM, forged).await;
    assert_ne!(b["metadata"]["uid"], "forged");
    assert_ne!(b["metadata"]["creationTimestamp"], "2000-01-01T00:00:00Z");
    assert_eq!(rv(&b), (before + 2).to_string());

    // The same name again: 409 AlreadyExists.
    let dup = node.post(CM).json(&configmap("a", json!({}))).send().await;
    let s = dup.status_error(409, "AlreadyExists", "configmaps \"a\" already exists");
    assert_eq!(s["details"], json!({"name": "a", "kind": "configmaps"}));
}

#[tokio::test]
async fn generate_name_makes_a_unique_name_from_the_prefix() {
    let node = Node::start().await;
    let mut names = std::collections::HashSet::new();
    for _ in 0..5 {
        let obj =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}});
        let created = node.create(CM, obj).await;
        let name = created["metadata"]["name"].as_str().unwrap().to_string();
        assert!(
            name.starts_with("gen-") && name.len() == "gen-".len() + 5,
            "{name}"
        );
        assert_eq!(created["metadata"]["generateName"], "gen-");
        assert!(names.insert(name));
    }
    // Neither name nor generateName: 422 naming metadata.name.
    let r = node
        .post(CM)
        .json(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}))
        .send()
        .await;
    let s = r.status_error(422, "Invalid", "metadata.name: Required value");
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
}

#[tokio::test]
async fn get_of_a_missing_object_is_upstreams_404() {
    let node = Node::start().await;
    let r = node.get(&format!("{CM}/nope")).send().await;
    let s = r.status_error(404, "NotFound", "configmaps \"nope\" not found");
    assert_eq!(s["message"], "configmaps \"nope\" not found");
    assert_eq!(s["details"], json!({"name": "nope", "kind": "configmaps"}));
    let r = node.get(&format!("{DEPLOY}/nope")).send().await;
    let s = r.status_error(404, "NotFound", "deployments.apps \"nope\" not found");
    assert_eq!(
        s["details"],
        json!({"name": "nope", "group": "apps", "kind": "deployments"})
    );
    // Cluster-scoped.
    let r = node.get("/api/v1/namespaces/nope").send().await;
    r.status_error(404, "NotFound", "namespaces \"nope\" not found");
}

#[tokio::test]
async fn put_without_resource_version_is_unconditional_and_with_a_stale_one_conflicts() {
    let node = Node::start().await;
    let created = node.create(CM, configmap("a", json!({}))).await;
    let first_rv = rv(&created);

    // A second writer changes it.
    let mut changed = created.clone();
    changed["data"] = json!({"k": "second"});
    let r = node.put(&format!("{CM}/a")).json(&changed).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let second = r.json();
    assert_ne!(rv(&second), first_rv);
    assert_eq!(second["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(
        second["metadata"]["creationTimestamp"],
        created["metadata"]["creationTimestamp"]
    );

    // PUT with the first (stale) resourceVersion: 409 Conflict, nothing stored.
    let before = node.revision();
    let mut stale = created.clone();
    stale["data"] = json!({"k": "stale"});
    let r = node.put(&format!("{CM}/a")).json(&stale).send().await;
    let s = r.status_error(
        409,
        "Conflict",
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again",
    );
    assert_eq!(s["details"]["name"], "a");
    assert_eq!(s["details"]["kind"], "configmaps");
    assert_eq!(node.revision(), before);

    // Without a resourceVersion (Helm): unconditional, applied over the latest.
    let mut blind = configmap("a", json!({}));
    blind["data"] = json!({"k": "blind"});
    let r = node.put(&format!("{CM}/a")).json(&blind).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let third = r.json();
    assert_eq!(third["data"]["k"], "blind");
    assert_eq!(third["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(rv(&third), (before + 1).to_string());

    // PUT of a missing object: 404 (no create-on-update for configmaps).
    let r = node
        .put(&format!("{CM}/missing"))
        .json(&configmap("missing", json!({})))
        .send()
        .await;
    r.status_error(404, "NotFound", "configmaps \"missing\" not found");

    // A PUT that changes nothing keeps the resourceVersion.
    let r = node.put(&format!("{CM}/a")).json(&third).send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(rv(&r.json()), rv(&third));
    assert_eq!(node.revision(), before + 1);
}

#[tokio::test]
async fn generation_counts_spec_changes_only() {
    let node = Node::start().await;
    let d = node.create(DEPLOY, deployment("web", 1)).await;
    assert_eq!(d["metadata"]["generation"], 1);
    let path = format!("{DEPLOY}/web");
    let r = node
        .patch(&path)
        .merge(&json!({"metadata": {"labels": {"extra": "yes"}}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["metadata"]["generation"], 1, "a label is not spec");
    let r = node
        .patch(&path)
        .merge(&json!({"spec": {"replicas": 2}}))
        .send()
        .await;
    assert_eq!(r.json()["metadata"]["generation"], 2);
    let r = node
        .patch(&format!("{path}/status"))
        .merge(&json!({"status": {"replicas": 2}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["metadata"]["generation"], 2, "status is not spec");
    // A client cannot set generation.
    let mut body = r.json();
    body["metadata"]["generation"] = json!(40);
    let r = node.put(&path).json(&body).send().await;
    assert_eq!(r.json()["metadata"]["generation"], 2);
}

#[tokio::test]
async fn status_subresource_ignores_spec_and_main_endpoint_ignores_status() {
    let node = Node::start().await;
    node.create(DEPLOY, deployment("web", 1)).await;
    let path = format!("{DEPLOY}/web");

    // Status given on create is dropped.
    let mut with_status = deployment("other", 1);
    with_status["status"] = json!({"replicas": 9});
    let created = node.create(DEPLOY, with_status).await;
    assert!(created["status"].get("replicas").is_none(), "{created}");

    // PUT /status: status changes, spec does not.
    let mut body = node.get(&path).send().await.json();
    body["spec"]["replicas"] = json!(7);
    body["status"] = json!({"replicas": 3, "readyReplicas": 3});
    let r = node.put(&format!("{path}/status")).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let after = r.json();
    assert_eq!(after["spec"]["replicas"], 1);
    assert_eq!(after["status"]["replicas"], 3);

    // PUT main: spec changes, status does not.
    let mut body = after.clone();
    body["spec"]["replicas"] = json!(4);
    body["status"] = json!({"replicas": 100});
    let r = node.put(&path).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let after = r.json();
    assert_eq!(after["spec"]["replicas"], 4);
    assert_eq!(after["status"]["replicas"], 3);

    // PATCH main with status: ignored.
    let r = node
        .patch(&path)
        .merge(&json!({"status": {"replicas": 50}}))
        .send()
        .await;
    assert_eq!(r.json()["status"]["replicas"], 3);
    // GET /status returns the whole object.
    let r = node.get(&format!("{path}/status")).send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["kind"], "Deployment");
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_spec_replicas() {
    let node = Node::start().await;
    node.create(DEPLOY, deployment("web", 1)).await;
    let path = format!("{DEPLOY}/web/scale");
    let r = node.get(&path).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let scale = r.json();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["metadata"]["name"], "web");
    assert_eq!(scale["metadata"]["namespace"], "default");
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "app=web");

    // PUT a Scale (kubectl scale of old clients).
    let mut body = scale.clone();
    body["spec"]["replicas"] = json!(3);
    let r = node.put(&path).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["kind"], "Scale");
    assert_eq!(r.json()["spec"]["replicas"], 3);
    let d = node.get(&format!("{DEPLOY}/web")).send().await.json();
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(rv(&r.json()), rv(&d));

    // A stale resourceVersion on the Scale conflicts; nothing changes.
    let before = node.revision();
    let mut stale = scale.clone();
    stale["spec"]["replicas"] = json!(8);
    let r = node.put(&path).json(&stale).send().await;
    r.status_error(
        409,
        "Conflict",
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified",
    );
    assert_eq!(node.revision(), before);
    // Without a resourceVersion: unconditional.
    let r = node
        .put(&path)
        .json(&json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 3}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(node.revision(), before, "the same replicas is a no-op");

    // PATCH in each patch type (kubectl scale, Python client).
    let r = node
        .patch(&path)
        .merge(&json!({"spec": {"replicas": 4}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["spec"]["replicas"], 4);
    let r = node
        .patch(&path)
        .json_patch(&json!([{"op": "replace", "path": "/spec/replicas", "value": 5}]))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["spec"]["replicas"], 5);
    let r = node
        .patch(&path)
        .strategic(&json!({"spec": {"replicas": 6}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["spec"]["replicas"], 6);
    let d = node.get(&format!("{DEPLOY}/web")).send().await.json();
    assert_eq!(d["spec"]["replicas"], 6);

    // Negative replicas: 422 on spec.replicas.
    let r = node
        .patch(&path)
        .merge(&json!({"spec": {"replicas": -1}}))
        .send()
        .await;
    let s = r.status_error(422, "Invalid", "spec.replicas");
    assert_eq!(s["details"]["causes"][0]["field"], "spec.replicas");
    // Scale of a missing object: 404 of the parent resource.
    let r = node.get(&format!("{DEPLOY}/nope/scale")).send().await;
    r.status_error(404, "NotFound", "deployments.apps \"nope\" not found");
}

// ---------------------------------------------------------------- lists

#[tokio::test]
async fn list_resource_version_semantics() {
    let node = Node::start().await;
    let a = node.create(CM, configmap("a", json!({}))).await;
    node.create(CM, configmap("b", json!({}))).await;
    let current = node.revision();

    // "" is a consistent read at the latest revision.
    let l = node.get(CM).send().await.json();
    assert_eq!(l["kind"], "ConfigMapList");
    assert_eq!(l["apiVersion"], "v1");
    assert_eq!(l["metadata"]["resourceVersion"], current.to_string());
    assert_eq!(names(&l), ["a", "b"]);
    // "0": any state; here the latest.
    let l = node
        .get(&format!("{CM}?resourceVersion=0"))
        .send()
        .await
        .json();
    assert_eq!(names(&l), ["a", "b"]);
    // NotOlderThan an old revision: at least that new.
    let l = node
        .get(&format!(
            "{CM}?resourceVersion={}&resourceVersionMatch=NotOlderThan",
            rv(&a)
        ))
        .send()
        .await
        .json();
    assert_eq!(names(&l), ["a", "b"]);
    assert!(
        l["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= current
    );
    // A resourceVersion without a match means NotOlderThan too.
    let r = node
        .get(&format!("{CM}?resourceVersion={current}"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Exact at the current revision.
    let l = node
        .get(&format!(
            "{CM}?resourceVersion={current}&resourceVersionMatch=Exact"
        ))
        .send()
        .await
        .json();
    assert_eq!(l["metadata"]["resourceVersion"], current.to_string());
    assert_eq!(names(&l), ["a", "b"]);

    // A revision from the future: 504 Timeout "Too large resource version".
    let future = current + 1000;
    for q in [
        format!("resourceVersion={future}"),
        format!("resourceVersion={future}&resourceVersionMatch=NotOlderThan"),
        format!("resourceVersion={future}&resourceVersionMatch=Exact"),
    ] {
        let r = node.get(&format!("{CM}?{q}")).send().await;
        let s = r.status_error(504, "Timeout", "Too large resource version");
        assert_eq!(
            s["message"],
            format!("Timeout: Too large resource version: {future}, current: {current}"),
            "{q}"
        );
        // client-go's reflector re-lists from scratch only when it sees this cause.
        assert_eq!(
            s["details"]["causes"][0]["reason"], "ResourceVersionTooLarge",
            "{q}: {s}"
        );
        assert_eq!(s["details"]["retryAfterSeconds"], 1);
    }

    // Exact at a revision that is no longer kept: 410 Expired.
    node.create(CM, configmap("c", json!({}))).await;
    let r = node
        .get(&format!(
            "{CM}?resourceVersion={}&resourceVersionMatch=Exact",
            rv(&a)
        ))
        .send()
        .await;
    r.status_error(
        410,
        "Expired",
        "The resourceVersion for the provided list is too old.",
    );
}

#[tokio::test]
async fn pagination_is_sorted_consistent_and_counts_what_remains() {
    let node = Node::start().await;
    for ns in ["zeta", "alpha"] {
        node.create("/api/v1/namespaces", json!({"metadata": {"name": ns}}))
            .await;
    }
    for (ns, n) in [
        ("zeta", "b"),
        ("alpha", "d"),
        ("zeta", "a"),
        ("alpha", "c"),
        ("zeta", "e"),
    ] {
        node.create(
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            configmap(n, json!({})),
        )
        .await;
    }
    // Namespaced list: sorted by name.
    let l = node
        .get("/api/v1/namespaces/zeta/configmaps")
        .send()
        .await
        .json();
    assert_eq!(names(&l), ["a", "b", "e"]);

    // All namespaces, two at a time: sorted by namespace then name, one snapshot.
    let first = node.get("/api/v1/configmaps?limit=2").send().await.json();
    let snapshot_rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(names(&first), ["c", "d"]);
    assert_eq!(first["items"][0]["metadata"]["namespace"], "alpha");
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();

    // Writes between pages do not show up in later pages.
    node.create(
        "/api/v1/namespaces/zeta/configmaps",
        configmap("aa", json!({})),
    )
    .await;
    node.delete("/api/v1/namespaces/zeta/configmaps/e")
        .send()
        .await;

    let second = node
        .get(&format!("/api/v1/configmaps?limit=2&continue={token}"))
        .send()
        .await
        .json();
    assert_eq!(names(&second), ["a", "b"]);
    assert_eq!(second["metadata"]["resourceVersion"], snapshot_rv);
    assert_eq!(second["metadata"]["remainingItemCount"], 1);
    let token = second["metadata"]["continue"].as_str().unwrap().to_string();
    let third = node
        .get(&format!("/api/v1/configmaps?limit=2&continue={token}"))
        .send()
        .await
        .json();
    assert_eq!(names(&third), ["e"]);
    assert_eq!(third["metadata"]["resourceVersion"], snapshot_rv);
    assert!(third["metadata"].get("continue").is_none(), "{third}");
    assert!(
        third["metadata"].get("remainingItemCount").is_none(),
        "{third}"
    );

    // A fresh list sees the writes.
    let fresh = node
        .get("/api/v1/namespaces/zeta/configmaps")
        .send()
        .await
        .json();
    assert_eq!(names(&fresh), ["a", "aa", "b"]);

    // limit larger than the list: everything, no continue.
    let all = node.get("/api/v1/configmaps?limit=500").send().await.json();
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert!(all["metadata"].get("continue").is_none());
    // limit=0 means no limit.
    let all = node.get("/api/v1/configmaps?limit=0").send().await.json();
    assert!(all["metadata"].get("continue").is_none());
}

fn continue_token(rv: u64, start: &str) -> String {
    use base64::Engine;
    let raw =
        serde_json::to_vec(&json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start})).unwrap();
    base64::engine::general_purpose::URL_SAFE.encode(raw)
}

#[tokio::test]
async fn expired_and_bogus_continue_tokens() {
    let node = Node::start().await;
    for n in ["a", "b", "c"] {
        node.create(CM, configmap(n, json!({}))).await;
    }
    // A token of a snapshot that is no longer kept: 410 Expired, upstream's wording.
    let expired = continue_token(1, "a");
    let r = node
        .get(&format!("{CM}?limit=1&continue={expired}"))
        .send()
        .await;
    r.status_error(
        410,
        "Expired",
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
    );
    // Not a token at all: 400.
    for bogus in ["!!!", "bm90IGpzb24", &continue_token(1, "../../secrets/x")] {
        let r = node
            .get(&format!("{CM}?limit=1&continue={bogus}"))
            .send()
            .await;
        r.status_error(400, "BadRequest", "continue");
    }
    // continue with an explicit resourceVersion: 400.
    let page = node.get(&format!("{CM}?limit=1")).send().await.json();
    let token = page["metadata"]["continue"].as_str().unwrap();
    let r = node
        .get(&format!("{CM}?limit=1&continue={token}&resourceVersion=3"))
        .send()
        .await;
    r.status_error(
        400,
        "BadRequest",
        "specifying resource version is not allowed when using continue",
    );
}

#[tokio::test]
async fn label_selectors_equality_and_set_based() {
    let node = Node::start().await;
    node.create(
        CM,
        configmap("prod-web", json!({"app": "web", "env": "prod"})),
    )
    .await;
    node.create(
        CM,
        configmap("dev-web", json!({"app": "web", "env": "dev"})),
    )
    .await;
    node.create(CM, configmap("db", json!({"app": "db"}))).await;
    node.create(CM, configmap("plain", json!({}))).await;
    let sel = |s: &str| format!("{CM}?labelSelector={}", urlencode(s));
    let cases: [(&str, &[&str]); 9] = [
        ("app=web", &["dev-web", "prod-web"]),
        ("app==web", &["dev-web", "prod-web"]),
        ("app!=web", &["db", "plain"]),
        ("app=web,env=prod", &["prod-web"]),
        ("env in (dev,qa)", &["dev-web"]),
        ("env notin (dev)", &["db", "plain", "prod-web"]),
        ("env", &["dev-web", "prod-web"]),
        ("!env", &["db", "plain"]),
        ("app in (web,db),!env", &["db"]),
    ];
    for (s, want) in cases {
        let r = node.get(&sel(s)).send().await;
        assert_eq!(r.status, StatusCode::OK, "{s}: {}", r.text());
        assert_eq!(names(&r.json()), want, "{s}");
    }
    // With a selector and a limit: the matching items page by page.
    let first = node
        .get(&format!("{}&limit=1", sel("app=web")))
        .send()
        .await
        .json();
    assert_eq!(names(&first), ["dev-web"]);
    let token = first["metadata"]["continue"].as_str().unwrap();
    let second = node
        .get(&format!("{}&limit=1&continue={token}", sel("app=web")))
        .send()
        .await
        .json();
    assert_eq!(names(&second), ["prod-web"]);
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn field_selectors_per_kind() {
    let node = Node::start().await;
    node.create(CM, configmap("a", json!({}))).await;
    node.create(CM, configmap("b", json!({}))).await;
    let r = node
        .get(&format!("{CM}?fieldSelector=metadata.name%3Db"))
        .send()
        .await;
    assert_eq!(names(&r.json()), ["b"]);
    let r = node
        .get(&format!("{CM}?fieldSelector=metadata.name!%3Db"))
        .send()
        .await;
    assert_eq!(names(&r.json()), ["a"]);
    let r = node
        .get("/api/v1/configmaps?fieldSelector=metadata.namespace%3Ddefault,metadata.name%3Da")
        .send()
        .await;
    assert_eq!(names(&r.json()), ["a"]);

    // Pods: spec.nodeName and status.phase.
    const PODS: &str = "/api/v1/namespaces/default/pods";
    node.create(PODS, pod("on-n1", Some("n1"))).await;
    node.create(PODS, pod("on-n2", Some("n2"))).await;
    node.create(PODS, pod("unscheduled", None)).await;
    node.patch(&format!("{PODS}/on-n1/status"))
        .merge(&json!({"status": {"phase": "Running"}}))
        .send()
        .await;
    let q = |s: &str| format!("{PODS}?fieldSelector={}", urlencode(s));
    let r = node.get(&q("spec.nodeName=n1")).send().await;
    assert_eq!(names(&r.json()), ["on-n1"]);
    let r = node.get(&q("spec.nodeName=")).send().await;
    assert_eq!(names(&r.json()), ["unscheduled"]);
    let r = node.get(&q("status.phase=Running")).send().await;
    assert_eq!(names(&r.json()), ["on-n1"]);
    let r = node
        .get(&q("status.phase!=Running,spec.nodeName!="))
        .send()
        .await;
    assert_eq!(names(&r.json()), ["on-n2"]);

    // Secrets: type.
    const SECRETS: &str = "/api/v1/namespaces/default/secrets";
    node.create(
        SECRETS,
        json!({"metadata": {"name": "opaque"}, "type": "Opaque"}),
    )
    .await;
    node.create(
        SECRETS,
        json!({"metadata": {"name": "helm"}, "type": "helm.sh/release.v1"}),
    )
    .await;
    let r = node
        .get(&format!(
            "{SECRETS}?fieldSelector={}",
            urlencode("type=helm.sh/release.v1")
        ))
        .send()
        .await;
    assert_eq!(names(&r.json()), ["helm"]);

    // Events: involvedObject.name (kubectl describe).
    const EVENTS: &str = "/api/v1/namespaces/default/events";
    for (n, obj) in [("e1", "on-n1"), ("e2", "on-n2")] {
        node.create(
            EVENTS,
            json!({"metadata": {"name": n}, "involvedObject": {"kind": "Pod", "name": obj, "namespace": "default"}, "reason": "Test", "message": "m"}),
        )
        .await;
    }
    let r = node
        .get(&format!(
            "{EVENTS}?fieldSelector={}",
            urlencode("involvedObject.name=on-n2,involvedObject.namespace=default")
        ))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(names(&r.json()), ["e2"]);

    // A field the kind does not support: 400 with upstream's wording.
    let r = node.get(&q("spec.foo=x")).send().await;
    r.status_error(400, "BadRequest", "field label not supported: spec.foo");
    let r = node
        .get(&format!("{CM}?fieldSelector=data.k%3Dv"))
        .send()
        .await;
    r.status_error(400, "BadRequest", "data.k");
    // Watch validates the selector too.
    let r = node
        .get(&format!("{CM}?watch=true&fieldSelector=data.k%3Dv"))
        .send()
        .await;
    r.status_error(400, "BadRequest", "data.k");
}

// ---------------------------------------------------------------- watch

#[tokio::test]
async fn watch_from_a_revision_sends_only_later_events() {
    let node = Node::start().await;
    node.create(CM, configmap("before", json!({}))).await;
    let from = node.revision();
    let mut w = node
        .get(&format!("{CM}?watch=true&resourceVersion={from}"))
        .stream()
        .await;
    assert_eq!(w.status, StatusCode::OK);
    assert_eq!(w.headers.get("content-type").unwrap(), "application/json");
    let created = node.create(CM, configmap("after", json!({}))).await;
    let e = w.next().await;
    assert_eq!(e["type"], "ADDED");
    assert_eq!(e["object"]["metadata"]["name"], "after");
    assert_eq!(e["object"], created);
    node.patch(&format!("{CM}/after"))
        .merge(&json!({"data": {"k": "2"}}))
        .send()
        .await;
    let e = w.next().await;
    assert_eq!(e["type"], "MODIFIED");
    assert_eq!(e["object"]["data"]["k"], "2");
    node.delete(&format!("{CM}/after")).send().await;
    let e = w.next().await;
    assert_eq!(e["type"], "DELETED");
    assert_eq!(e["object"]["metadata"]["name"], "after");
    // Strictly increasing resourceVersions; nothing from before `from`.
    assert!(rv(&e["object"]).parse::<u64>().unwrap() > from);
    // Other namespaces and kinds are not in this watch.
    node.create(
        "/api/v1/namespaces/kube-system/configmaps",
        configmap("x", json!({})),
    )
    .await;
    node.create(DEPLOY, deployment("d", 1)).await;
    assert!(w.next_within(Duration::from_millis(300)).await.is_none());

    // A watch from an older revision replays the retained history after it.
    let mut w = node
        .get(&format!("{CM}?watch=true&resourceVersion={from}"))
        .stream()
        .await;
    let kinds: Vec<Value> = vec![
        w.next().await["type"].clone(),
        w.next().await["type"].clone(),
        w.next().await["type"].clone(),
    ];
    assert_eq!(kinds, [json!("ADDED"), json!("MODIFIED"), json!("DELETED")]);
}

#[tokio::test]
async fn watch_from_zero_starts_with_synthetic_added_events() {
    let node = Node::start().await;
    node.create(CM, configmap("a", json!({}))).await;
    node.create(CM, configmap("b", json!({}))).await;
    for rv in ["0", ""] {
        let mut w = node
            .get(&format!("{CM}?watch=1&resourceVersion={rv}"))
            .stream()
            .await;
        let mut seen = vec![];
        for _ in 0..2 {
            let e = w.next().await;
            assert_eq!(e["type"], "ADDED");
            seen.push(
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        seen.sort();
        assert_eq!(seen, ["a", "b"]);
        assert!(w.next_within(Duration::from_millis(200)).await.is_none());
    }
}

#[tokio::test]
async fn watch_timeout_seconds_ends_the_stream() {
    let node = Node::start().await;
    let started = std::time::Instant::now();
    let mut w = node
        .get(&format!(
            "{CM}?watch=true&timeoutSeconds=1&resourceVersion={}",
            node.revision()
        ))
        .stream()
        .await;
    assert!(
        w.ends_within(Duration::from_secs(5)).await,
        "the watch did not end"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn watch_bookmarks_carry_the_current_revision() {
    let node = Node::start().await;
    node.create(CM, configmap("a", json!({}))).await;
    let from = node.revision();
    let mut w = node
        .get(&format!(
            "{CM}?watch=true&allowWatchBookmarks=true&resourceVersion={from}"
        ))
        .stream()
        .await;
    // A change elsewhere moves the revision; the bookmark reports it without the object.
    node.create(DEPLOY, deployment("d", 1)).await;
    let now = node.revision();
    let e = w
        .next_within(Duration::from_secs(40))
        .await
        .expect("no bookmark within 40 s");
    assert_eq!(e["type"], "BOOKMARK");
    assert_eq!(e["object"]["kind"], "ConfigMap");
    assert_eq!(e["object"]["apiVersion"], "v1");
    assert_eq!(e["object"]["metadata"]["resourceVersion"], now.to_string());
}

#[tokio::test]
async fn watch_list_sends_initial_events_then_an_annotated_bookmark() {
    let node = Node::start().await;
    node.create(CM, configmap("a", json!({}))).await;
    node.create(CM, configmap("b", json!({}))).await;
    let at = node.revision();
    // kube-rs' streaming watcher.
    let mut w = node
        .get(&format!(
            "{CM}?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0"
        ))
        .stream()
        .await;
    assert_eq!(w.status, StatusCode::OK);
    assert_eq!(w.next().await["type"], "ADDED");
    assert_eq!(w.next().await["type"], "ADDED");
    let b = w.next().await;
    assert_eq!(b["type"], "BOOKMARK");
    assert_eq!(
        b["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(b["object"]["metadata"]["resourceVersion"], at.to_string());
    node.create(CM, configmap("c", json!({}))).await;
    let e = w.next().await;
    assert_eq!(e["type"], "ADDED");
    assert_eq!(e["object"]["metadata"]["name"], "c");

    // sendInitialEvents without NotOlderThan, or without bookmarks: 422 on ListOptions.
    let r = node
        .get(&format!(
            "{CM}?watch=true&allowWatchBookmarks=true&sendInitialEvents=true"
        ))
        .send()
        .await;
    let s = r.status_error(422, "Invalid", "resourceVersionMatch");
    assert_eq!(s["details"]["causes"][0]["field"], "resourceVersionMatch");
    let r = node
        .get(&format!(
            "{CM}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        ))
        .send()
        .await;
    r.status_error(422, "Invalid", "allowWatchBookmarks");
}

#[tokio::test]
async fn watch_from_a_compacted_revision_is_an_error_event_410() {
    let node = Node::with_config(ReplicaConfig {
        durable: false,
        history_events: 4,
        revision_epoch: false,
        ..beemesh_translator::store::replica_config()
    })
    .await;
    let first = node.create(CM, configmap("a", json!({}))).await;
    for i in 0..8 {
        node.patch(&format!("{CM}/a"))
            .merge(&json!({"data": {"i": i.to_string()}}))
            .send()
            .await;
    }
    let mut w = node
        .get(&format!("{CM}?watch=true&resourceVersion={}", rv(&first)))
        .stream()
        .await;
    assert_eq!(w.status, StatusCode::OK);
    let e = w.next().await;
    assert_eq!(e["type"], "ERROR");
    assert_eq!(e["object"]["kind"], "Status");
    assert_eq!(e["object"]["code"], 410);
    assert_eq!(e["object"]["reason"], "Expired");
    let msg = e["object"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("too old resource version: {}", rv(&first))),
        "{msg}"
    );
    assert!(w.ends_within(Duration::from_secs(2)).await);
}

#[tokio::test]
async fn watch_from_a_future_revision_waits_then_fails_too_large() {
    let node = Node::start().await;
    // Reached within the wait: events after it arrive.
    let next = node.revision() + 1;
    let mut w = node
        .get(&format!("{CM}?watch=true&resourceVersion={next}"))
        .stream()
        .await;
    assert_eq!(w.status, StatusCode::OK);
    node.create(CM, configmap("first", json!({}))).await;
    node.create(CM, configmap("second", json!({}))).await;
    let e = w.next().await;
    assert_eq!(e["type"], "ADDED");
    assert_eq!(e["object"]["metadata"]["name"], "second");

    // Never reached (another node's revision): an ERROR event after ~3 s.
    let current = node.revision();
    let far = current + 1000;
    let started = std::time::Instant::now();
    let mut w = node
        .get(&format!("{CM}?watch=true&resourceVersion={far}"))
        .stream()
        .await;
    assert_eq!(w.status, StatusCode::OK);
    let e = w
        .next_within(Duration::from_secs(10))
        .await
        .expect("an ERROR event");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e["type"], "ERROR");
    assert_eq!(e["object"]["code"], 504);
    assert_eq!(e["object"]["reason"], "Timeout");
    assert_eq!(
        e["object"]["message"],
        format!("Timeout: Too large resource version: {far}, current: {current}")
    );
    assert_eq!(
        e["object"]["details"]["causes"][0]["reason"],
        "ResourceVersionTooLarge"
    );
    assert!(w.ends_within(Duration::from_secs(2)).await);
}

#[tokio::test]
async fn watch_with_a_label_selector_sees_objects_leave_and_enter_it() {
    let node = Node::start().await;
    node.create(CM, configmap("a", json!({"team": "x"}))).await;
    let mut w = node
        .get(&format!(
            "{CM}?watch=true&labelSelector=team%3Dx&resourceVersion={}",
            node.revision()
        ))
        .stream()
        .await;
    // Leaves the selector: DELETED (with the new state).
    node.patch(&format!("{CM}/a"))
        .merge(&json!({"metadata": {"labels": {"team": "y"}}}))
        .send()
        .await;
    let e = w.next().await;
    assert_eq!(e["type"], "DELETED");
    assert_eq!(e["object"]["metadata"]["labels"]["team"], "y");
    // Changes outside the selector: nothing.
    node.patch(&format!("{CM}/a"))
        .merge(&json!({"data": {"k": "2"}}))
        .send()
        .await;
    assert!(w.next_within(Duration::from_millis(300)).await.is_none());
    // Enters it: ADDED.
    node.patch(&format!("{CM}/a"))
        .merge(&json!({"metadata": {"labels": {"team": "x"}}}))
        .send()
        .await;
    let e = w.next().await;
    assert_eq!(e["type"], "ADDED");
    // Changes inside: MODIFIED; deletion: DELETED.
    node.patch(&format!("{CM}/a"))
        .merge(&json!({"data": {"k": "3"}}))
        .send()
        .await;
    assert_eq!(w.next().await["type"], "MODIFIED");
    node.delete(&format!("{CM}/a")).send().await;
    assert_eq!(w.next().await["type"], "DELETED");
}

// ---------------------------------------------------------------- representations

#[tokio::test]
async fn table_output_for_list_get_and_watch() {
    let node = Node::start().await;
    node.create(CM, configmap("a", json!({}))).await;
    node.create(CM, configmap("b", json!({}))).await;
    let r = node.get(CM).accept(TABLE_ACCEPT).send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-type"),
        Some("application/json;as=Table;v=v1;g=meta.k8s.io")
    );
    let t = r.json();
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Data", "Age"]);
    assert_eq!(t["rows"].as_array().unwrap().len(), 2);
    assert_eq!(t["rows"][0]["cells"][0], "a");
    assert_eq!(t["rows"][0]["cells"][1], 1);
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(
        t["metadata"]["resourceVersion"],
        node.revision().to_string()
    );

    // A paged Table keeps the continue token.
    let t = node
        .get(&format!("{CM}?limit=1"))
        .accept(TABLE_ACCEPT)
        .send()
        .await
        .json();
    assert_eq!(t["rows"].as_array().unwrap().len(), 1);
    assert!(t["metadata"]["continue"].is_string(), "{t}");

    // Only v1beta1 acceptable: a v1beta1 Table.
    let t = node
        .get(CM)
        .accept("application/json;as=Table;v=v1beta1;g=meta.k8s.io")
        .send()
        .await
        .json();
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1beta1");

    // includeObject=Object embeds the whole object.
    let t = node
        .get(&format!("{CM}/a?includeObject=Object"))
        .accept(TABLE_ACCEPT)
        .send()
        .await
        .json();
    assert_eq!(t["rows"].as_array().unwrap().len(), 1);
    assert_eq!(t["rows"][0]["object"]["kind"], "ConfigMap");
    assert_eq!(t["rows"][0]["object"]["data"]["k"], "v");

    // Watch events carry one-row Tables.
    let mut w = node
        .get(&format!(
            "{CM}?watch=true&resourceVersion={}",
            node.revision()
        ))
        .accept(TABLE_ACCEPT)
        .stream()
        .await;
    node.create(CM, configmap("c", json!({}))).await;
    let e = w.next().await;
    assert_eq!(e["type"], "ADDED");
    assert_eq!(e["object"]["kind"], "Table");
    assert_eq!(e["object"]["rows"][0]["cells"][0], "c");
    assert_eq!(
        e["object"]["columnDefinitions"].as_array().unwrap().len(),
        3
    );
    node.create(CM, configmap("d", json!({}))).await;
    let e = w.next().await;
    assert_eq!(e["object"]["rows"][0]["cells"][0], "d");
}

#[tokio::test]
async fn an_unacceptable_accept_is_406_and_yaml_is_served() {
    let node = Node::start().await;
    node.create(CM, configmap("a", json!({}))).await;
    for accept in [
        "application/xml",
        "application/vnd.kubernetes.protobuf",
        "application/json;as=Table;v=v2;g=meta.k8s.io",
        "text/html",
    ] {
        let r = node.get(&format!("{CM}/a")).accept(accept).send().await;
        r.status_error(
            406,
            "NotAcceptable",
            "only the following media types are accepted",
        );
        let r = node.get(CM).accept(accept).send().await;
        r.status_error(
            406,
            "NotAcceptable",
            "only the following media types are accepted",
        );
    }
    let r = node
        .get(&format!("{CM}/a"))
        .accept("application/yaml")
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/yaml"));
    assert!(r.text().contains("name: a"), "{}", r.text());
    // Protobuf preferred, JSON acceptable: JSON.
    let r = node
        .get(&format!("{CM}/a"))
        .accept("application/vnd.kubernetes.protobuf, application/json")
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/json"));
}

// ---------------------------------------------------------------- write options

#[tokio::test]
async fn dry_run_stores_nothing_and_consumes_no_revision() {
    let node = Node::start().await;
    let existing = node.create(CM, configmap("a", json!({}))).await;
    let before = node.revision();

    let r = node
        .post(&format!("{CM}?dryRun=All"))
        .json(&configmap("dry", json!({})))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let would = r.json();
    assert_eq!(would["metadata"]["name"], "dry");
    assert!(would["metadata"]["uid"].is_string());
    assert!(would["metadata"]["creationTimestamp"].is_string());
    node.get(&format!("{CM}/dry"))
        .send()
        .await
        .status_error(404, "NotFound", "not found");

    // Validation still runs under dryRun.
    let r = node
        .post(&format!("{CM}?dryRun=All"))
        .json(&configmap("Bad_Name", json!({})))
        .send()
        .await;
    r.status_error(422, "Invalid", "metadata.name");
    // AlreadyExists still applies.
    let r = node
        .post(&format!("{CM}?dryRun=All"))
        .json(&configmap("a", json!({})))
        .send()
        .await;
    r.status_error(409, "AlreadyExists", "already exists");

    let path = format!("{CM}/a");
    let r = node
        .patch(&format!("{path}?dryRun=All"))
        .merge(&json!({"data": {"k": "dry"}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["data"]["k"], "dry");
    let mut put = existing.clone();
    put["data"] = json!({"k": "dry-put"});
    let r = node
        .put(&format!("{path}?dryRun=All"))
        .json(&put)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["data"]["k"], "dry-put");
    let r = node.delete(&format!("{path}?dryRun=All")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = node
        .delete(&path)
        .json(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = node.delete(&format!("{CM}?dryRun=All")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = node
        .patch(&format!("{DEPLOY}/x/scale?dryRun=All"))
        .merge(&json!({"spec": {"replicas": 2}}))
        .send()
        .await;
    r.status_error(404, "NotFound", "not found");

    assert_eq!(node.revision(), before, "a dry run consumed a revision");
    assert_eq!(node.get(&path).send().await.json(), existing);
}

#[tokio::test]
async fn field_validation_strict_warn_and_ignore() {
    let node = Node::start().await;
    let with_unknown = |name: &str| {
        let mut d = deployment(name, 1);
        d["spec"]["bogus"] = json!(1);
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = json!("Always");
        d
    };
    // Strict: 400 listing every unknown field, nothing stored.
    let before = node.revision();
    let r = node
        .post(&format!("{DEPLOY}?fieldValidation=Strict"))
        .json(&with_unknown("strict"))
        .send()
        .await;
    let s = r.status_error(400, "BadRequest", "strict decoding error: ");
    let msg = s["message"].as_str().unwrap();
    assert!(msg.contains("unknown field \"spec.bogus\""), "{msg}");
    assert!(
        msg.contains("unknown field \"spec.template.spec.containers[0].imagePullPolicyy\""),
        "{msg}"
    );
    assert!(
        msg.starts_with("Deployment in version \"v1\" cannot be handled as a Deployment: "),
        "{msg}"
    );
    assert_eq!(node.revision(), before);

    // Warn (and the default): created, one Warning header per field, fields dropped.
    for q in ["?fieldValidation=Warn", ""] {
        let name = if q.is_empty() { "default" } else { "warn" };
        let r = node
            .post(&format!("{DEPLOY}{q}"))
            .json(&with_unknown(name))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let w = r.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        // Upstream's quoted-string, which kubectl prints as `Warning: unknown field "spec.bogus"`.
        assert!(
            w.iter()
                .any(|w| w == r#"299 - "unknown field \"spec.bogus\"""#),
            "{w:?}"
        );
        assert!(w.iter().all(|w| w.starts_with("299 - ")), "{w:?}");
        assert!(r.json()["spec"].get("bogus").is_none());
    }
    // Ignore: created, no warnings.
    let r = node
        .post(&format!("{DEPLOY}?fieldValidation=Ignore"))
        .json(&with_unknown("ignore"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.warnings().is_empty());
    assert!(r.json()["spec"].get("bogus").is_none());

    // The same on PATCH and PUT.
    let path = format!("{DEPLOY}/ignore");
    let before = node.revision();
    let r = node
        .patch(&format!("{path}?fieldValidation=Strict"))
        .merge(&json!({"spec": {"bogus": 2}}))
        .send()
        .await;
    // Upstream's patch handler: a 422 on `patch`, not the decoder's 400.
    r.status_error(422, "Invalid", "unknown field \"spec.bogus\"");
    let mut body = node.get(&path).send().await.json();
    body["spec"]["bogus"] = json!(3);
    let r = node
        .put(&format!("{path}?fieldValidation=Strict"))
        .json(&body)
        .send()
        .await;
    r.status_error(400, "BadRequest", "unknown field \"spec.bogus\"");
    assert_eq!(node.revision(), before);
    let r = node
        .patch(&format!("{path}?fieldValidation=Warn"))
        .merge(&json!({"spec": {"bogus": 2}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.warnings().len(), 1);
}

// ---------------------------------------------------------------- delete

#[tokio::test]
async fn finalizers_hold_an_object_until_removed() {
    let node = Node::start().await;
    let mut obj = configmap("held", json!({}));
    obj["metadata"]["finalizers"] = json!(["example.com/hold"]);
    node.create(CM, obj).await;
    let path = format!("{CM}/held");
    let r = node
        .delete(&path)
        .json(&json!({"propagationPolicy": "Background"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let marked = r.json();
    assert_eq!(marked["kind"], "ConfigMap");
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "{marked}"
    );
    let got = node.get(&path).send().await.json();
    assert_eq!(
        got["metadata"]["deletionTimestamp"],
        marked["metadata"]["deletionTimestamp"]
    );
    // Deleting again changes nothing.
    let again = node.delete(&path).send().await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(rv(&again.json()), rv(&got));
    // New finalizers may not be added... but removing the last one deletes it.
    let mut w = node
        .get(&format!(
            "{CM}?watch=true&resourceVersion={}",
            node.revision()
        ))
        .stream()
        .await;
    let r = node
        .patch(&path)
        .json_patch(&json!([{"op": "remove", "path": "/metadata/finalizers"}]))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    node.get(&path)
        .send()
        .await
        .status_error(404, "NotFound", "configmaps \"held\" not found");
    assert_eq!(w.next().await["type"], "DELETED");
}

#[tokio::test]
async fn delete_returns_the_object_or_status_and_checks_preconditions() {
    let node = Node::start().await;
    let a = node.create(CM, configmap("a", json!({}))).await;
    let path = format!("{CM}/a");
    let before = node.revision();
    let r = node
        .delete(&path)
        .json(&json!({"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}}))
        .send()
        .await;
    let s = r.status_error(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on configmaps \"a\": Precondition failed: UID in precondition: 00000000-0000-0000-0000-000000000000, UID in object meta: {}",
            a["metadata"]["uid"].as_str().unwrap()
        ),
    );
    assert_eq!(s["details"]["name"], "a");
    let r = node
        .delete(&path)
        .json(&json!({"preconditions": {"resourceVersion": "1"}}))
        .send()
        .await;
    r.status_error(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on configmaps \"a\": Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: {}",
            rv(&a)
        ),
    );
    assert_eq!(node.revision(), before);
    // Matching preconditions: deleted.
    let r = node
        .delete(&path)
        .json(&json!({"preconditions": {"uid": a["metadata"]["uid"], "resourceVersion": rv(&a)}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    node.get(&path)
        .send()
        .await
        .status_error(404, "NotFound", "not found");
    // Deleting what is gone: 404.
    node.delete(&path)
        .send()
        .await
        .status_error(404, "NotFound", "configmaps \"a\" not found");
}

#[tokio::test]
async fn delete_collection_honours_the_label_selector() {
    let node = Node::start().await;
    node.create(CM, configmap("keep", json!({"app": "keep"})))
        .await;
    node.create(CM, configmap("drop1", json!({"app": "drop"})))
        .await;
    node.create(CM, configmap("drop2", json!({"app": "drop"})))
        .await;
    node.create(
        "/api/v1/namespaces/kube-system/configmaps",
        configmap("other-ns", json!({"app": "drop"})),
    )
    .await;
    let r = node
        .delete(&format!("{CM}?labelSelector=app%3Ddrop"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let l = node.get(CM).send().await.json();
    assert_eq!(names(&l), ["keep"]);
    let l = node
        .get("/api/v1/namespaces/kube-system/configmaps")
        .send()
        .await
        .json();
    assert_eq!(names(&l), ["other-ns"]);
    // A bad selector deletes nothing.
    let before = node.revision();
    let r = node
        .delete(&format!("{CM}?labelSelector=app%3D%3D%3D"))
        .send()
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text());
    assert_eq!(node.revision(), before);
}

// ---------------------------------------------------------------- namespaces

#[tokio::test]
async fn namespace_lifecycle_guards_creation_and_cascades_deletion() {
    let node = Node::start().await;
    tokio::spawn(
        beemesh_workloads::NamespaceController::new(node.state.service.clone(), String::new())
            .run(),
    );
    // A missing namespace: 404 naming the namespace.
    let r = node
        .post("/api/v1/namespaces/nope/configmaps")
        .json(&configmap("a", json!({})))
        .send()
        .await;
    let s = r.status_error(404, "NotFound", "namespaces \"nope\" not found");
    assert_eq!(s["details"], json!({"name": "nope", "kind": "namespaces"}));

    node.create("/api/v1/namespaces", json!({"metadata": {"name": "team"}}))
        .await;
    const TEAM_CM: &str = "/api/v1/namespaces/team/configmaps";
    let mut held = configmap("held", json!({}));
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    node.create(TEAM_CM, held).await;
    node.create(TEAM_CM, configmap("plain", json!({}))).await;
    node.create(
        "/apis/apps/v1/namespaces/team/deployments",
        deployment("web", 1),
    )
    .await;

    let r = node.delete("/api/v1/namespaces/team").send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let ns = r.json();
    assert!(ns["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(ns["status"]["phase"], "Terminating");

    // Terminating: 403 on create, upstream's wording.
    let r = node
        .post(TEAM_CM)
        .json(&configmap("late", json!({})))
        .send()
        .await;
    let s = r.status_error(
        403,
        "Forbidden",
        "configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated",
    );
    assert_eq!(s["details"]["name"], "late");
    assert_eq!(s["details"]["kind"], "configmaps");

    // The controller empties it; the held object waits for its finalizer.
    let store = node.state.service.store.clone();
    let registry = node.state.registry.clone();
    let deploys = registry.get("apps", "v1", "deployments").unwrap();
    let cms = registry.get("", "v1", "configmaps").unwrap();
    let namespaces = registry.get("", "v1", "namespaces").unwrap();
    wait_for("the deployment to go", || {
        store.get(&deploys, Some("team"), "web").is_err()
    })
    .await;
    wait_for("plain to go", || {
        store.get(&cms, Some("team"), "plain").is_err()
    })
    .await;
    let held = store.get(&cms, Some("team"), "held").unwrap();
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    assert!(store.get(&namespaces, None, "team").is_ok());
    let r = node
        .patch(&format!("{TEAM_CM}/held"))
        .merge(&json!({"metadata": {"finalizers": null}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    wait_for("the namespace to go", || {
        store.get(&namespaces, None, "team").is_err()
    })
    .await;
    let r = node.get("/api/v1/namespaces/team").send().await;
    r.status_error(404, "NotFound", "namespaces \"team\" not found");

    // System namespaces may not be deleted.
    let r = node.delete("/api/v1/namespaces/default").send().await;
    r.status_error(403, "Forbidden", "namespaces \"default\" is forbidden");
}

async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
