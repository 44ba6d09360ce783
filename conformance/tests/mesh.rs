//! Several nodes on 127.0.0.1 in one mesh, driven through real kubectl and a raw HTTPS
//! client: replication of creates and deletes (with the time to visibility), racing
//! conditional updates, a restarted node catching up before it is ready, a fresh node
//! joining a mesh of 10,000 objects, and what a client that moves between nodes sees.
//!
//! Each case starts its own mesh and writes one report line (with what it measured).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use beemesh_conformance::api::{ApiClient, Reply, is_event};
use beemesh_conformance::{Kubectl, Mesh, MeshNode, skip};
use serde_json::{Value, json};

const CMS: &str = "/api/v1/namespaces/default/configmaps";
/// A write on one node must be visible on the others within this (generous for a loaded
/// CI machine; the measured figure is in the report line).
const VISIBILITY_BOUND: Duration = Duration::from_secs(2);
/// The kubectl the cases use (the version the server reports).
const KUBECTL: &str = "1.33";

fn client_label() -> String {
    format!("kubectl-{KUBECTL}")
}

#[track_caller]
fn start_mesh(n: usize) -> Mesh {
    match Mesh::start(n) {
        Ok(mesh) => mesh,
        Err(e) => panic!("a mesh of {n} did not start: {e}"),
    }
}

/// kubectl against `node` with the node's own kubeconfig; the case is skipped when this
/// kubectl version is not installed.
fn kubectl(node: &MeshNode) -> Kubectl {
    match Kubectl::new(KUBECTL, &node.kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    }
}

fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

#[track_caller]
fn ok(reply: Result<Reply, reqwest::Error>, what: &str, want: u16) -> Value {
    match reply {
        Ok(r) if r.status == want => r.body,
        Ok(r) => panic!("{what}: expected {want}, got {}: {}", r.status, r.body),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Polls `check` every 10 ms until it returns `Some`; panics after `limit`.
#[track_caller]
fn wait_until<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The object `name` in `default` on `api`, if it exists.
fn get_cm(api: &ApiClient, name: &str) -> Option<Value> {
    api.get(&format!("{CMS}/{name}"))
        .ok()
        .filter(|r| r.status == 200)
        .map(|r| r.body)
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Created through A, the object is readable, listable and watchable through B and C.
fn mesh_visibility() -> String {
    let mesh = start_mesh(3);
    let (a, b, c) = (mesh.node(0), mesh.node(1), mesh.node(2));
    let (kb, kc) = (kubectl(b), kubectl(c));
    // kubectl watches (list, then watch from the list's revision) on B and C ...
    let mut kubectl_watches = [&kb, &kc].map(|k| {
        k.spawn(&["get", "configmaps", "-w", "--output-watch-events"])
            .expect("kubectl get -w starts")
    });
    // ... and raw watches from each node's own current revision, for the timing.
    let mut watches = [b, c].map(|node| {
        let api = node.api();
        let (_, rv) = api.list(CMS);
        let watch = api
            .watch(&format!("{CMS}?resourceVersion={rv}"))
            .expect("watch starts");
        assert_eq!(watch.status, 200, "{}", watch.describe());
        watch
    });

    let sent = Instant::now();
    let created = ok(
        a.api()
            .post(CMS, &configmap("visible", json!({"greeting": "hello"}))),
        "create through A",
        201,
    );
    let answered = sent.elapsed();
    let uid = str_at(&created, "/metadata/uid").to_string();

    let mut delays = Vec::new();
    for (label, watch) in ["B", "C"].iter().zip(watches.iter_mut()) {
        let Some((at, event)) =
            watch.wait_for(VISIBILITY_BOUND, |e| is_event(e, "ADDED", "visible"))
        else {
            panic!(
                "{label}: no ADDED event within {VISIBILITY_BOUND:?}: {}",
                watch.describe()
            );
        };
        let delay = at.duration_since(sent);
        assert!(delay < VISIBILITY_BOUND, "{label}: visible after {delay:?}");
        assert_eq!(
            str_at(&event, "/object/metadata/uid"),
            uid,
            "{label}: same uid"
        );
        assert_eq!(str_at(&event, "/object/data/greeting"), "hello");
        delays.push(format!("{label} {}", ms(delay)));
    }

    for (label, k) in [("B", &kb), ("C", &kc)] {
        let got = k.get_json(&["configmap", "visible"]);
        assert_eq!(
            str_at(&got, "/data/greeting"),
            "hello",
            "{label}: kubectl get"
        );
        assert_eq!(
            str_at(&got, "/metadata/uid"),
            uid,
            "{label}: kubectl get uid"
        );
        let listed = k.run(&["get", "configmaps", "-o", "name"]).ok();
        assert!(
            listed.stdout.lines().any(|l| l == "configmap/visible"),
            "{label}: kubectl get configmaps lists it: {}",
            listed.stdout
        );
    }
    for (label, watch) in ["B", "C"].iter().zip(kubectl_watches.iter_mut()) {
        let line = watch.wait_for_line(Duration::from_secs(10), |l| {
            l.starts_with("ADDED") && l.split_whitespace().nth(1) == Some("visible")
        });
        assert!(
            line.is_some(),
            "{label}: kubectl get -w shows the new configmap: {}",
            watch.describe()
        );
    }
    format!(
        "{} after the create was sent through A (A answered in {})",
        delays.join(", "),
        ms(answered)
    )
}

/// Two clients on two nodes update the same object with their node's resourceVersion at
/// the same moment: exactly one wins, the other gets 409 Conflict.
fn mesh_conflicting_updates() -> String {
    const ROUNDS: usize = 5;
    let mesh = start_mesh(3);
    let apis = [mesh.node(0).api(), mesh.node(1).api()];
    let api_c = mesh.node(2).api();
    ok(
        apis[0].post(CMS, &configmap("race", json!({"winner": "none"}))),
        "create through A",
        201,
    );
    let mut expected = json!({"winner": "none"});
    let mut wins = BTreeMap::new();
    for round in 1..=ROUNDS {
        // Both nodes hold the previous round's winner.
        let objects = wait_until(
            "A and B hold the same version",
            Duration::from_secs(5),
            || {
                let objs: Vec<Value> = apis
                    .iter()
                    .map(|api| get_cm(api, "race"))
                    .collect::<Option<_>>()?;
                objs.iter()
                    .all(|o| o.get("data") == Some(&expected))
                    .then_some(objs)
            },
        );
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = objects
            .into_iter()
            .zip(apis.iter().cloned())
            .zip(["A", "B"])
            .map(|((mut obj, api), label)| {
                let barrier = barrier.clone();
                obj["data"] = json!({"winner": label, "round": round.to_string()});
                std::thread::spawn(move || {
                    barrier.wait();
                    let reply = api.put(&format!("{CMS}/race"), &obj);
                    (label, obj, reply)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for racer in racers {
            let (label, obj, reply) = racer.join().expect("racer thread");
            let reply = reply.unwrap_or_else(|e| panic!("round {round}: PUT through {label}: {e}"));
            outcomes.push((label, obj, reply));
        }
        let codes: Vec<u16> = outcomes.iter().map(|(_, _, r)| r.status).collect();
        let summary: Vec<String> = outcomes
            .iter()
            .map(|(l, _, r)| format!("{l}: {} {}", r.status, str_at(&r.body, "/reason")))
            .collect();
        let mut sorted = codes.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [200, 409],
            "round {round}: exactly one conditional update wins: {summary:?}"
        );
        let (winner, obj, _) = outcomes
            .iter()
            .find(|(_, _, r)| r.status == 200)
            .expect("a winner");
        let (_, _, loser) = outcomes
            .iter()
            .find(|(_, _, r)| r.status == 409)
            .expect("a loser");
        assert_eq!(str_at(&loser.body, "/reason"), "Conflict", "{}", loser.body);
        *wins.entry(*winner).or_insert(0) += 1;
        expected = obj["data"].clone();
    }
    // Every node ends with the last winner.
    for (label, api) in [("A", &apis[0]), ("B", &apis[1]), ("C", &api_c)] {
        wait_until(
            &format!("{label} holds the last winner"),
            VISIBILITY_BOUND,
            || get_cm(api, "race").filter(|o| o.get("data") == Some(&expected)),
        );
    }
    format!(
        "{ROUNDS} rounds, each one 200 and one 409 Conflict (A won {}, B won {})",
        wins.get("A").unwrap_or(&0),
        wins.get("B").unwrap_or(&0)
    )
}

/// `kubectl delete` through B: gone on A and C, and a watch on C sees DELETED.
fn mesh_delete() -> String {
    let mesh = start_mesh(3);
    let (a, b, c) = (mesh.node(0), mesh.node(1), mesh.node(2));
    let (ka, kb, kc) = (kubectl(a), kubectl(b), kubectl(c));
    ka.run(&["create", "configmap", "doomed", "--from-literal=k=v"])
        .ok();
    let (api_a, api_c) = (a.api(), c.api());
    for (label, api) in [("B", &b.api()), ("C", &api_c)] {
        wait_until(
            &format!("created through A, on {label}"),
            VISIBILITY_BOUND,
            || get_cm(api, "doomed"),
        );
    }
    let mut watch = kc
        .spawn(&["get", "configmap", "doomed", "-w", "--output-watch-events"])
        .expect("kubectl get -w starts");
    assert!(
        watch
            .wait_for_line(Duration::from_secs(20), |l| l.starts_with("ADDED")
                && l.contains("doomed"))
            .is_some(),
        "the watch on C lists the configmap first: {}",
        watch.describe()
    );

    kb.run(&["delete", "configmap", "doomed"]).ok();
    let deleted = Instant::now();
    let mut gone = Vec::new();
    for (label, api) in [("A", &api_a), ("C", &api_c)] {
        wait_until(
            &format!("deleted through B, gone on {label}"),
            VISIBILITY_BOUND,
            || get_cm(api, "doomed").is_none().then_some(()),
        );
        gone.push(format!("{label} {}", ms(deleted.elapsed())));
    }
    for (label, k) in [("A", &ka), ("C", &kc)] {
        let out = k.run(&["get", "configmap", "doomed"]).failed();
        assert!(
            out.stderr.contains("NotFound") || out.stderr.contains("not found"),
            "{label}: kubectl get after the delete: {}",
            out.stderr
        );
    }
    assert!(
        watch
            .wait_for_line(Duration::from_secs(10), |l| l.starts_with("DELETED")
                && l.contains("doomed"))
            .is_some(),
        "the watch on C sees DELETED: {}",
        watch.describe()
    );
    format!(
        "gone on {} after kubectl delete through B returned; C's kubectl get -w saw DELETED",
        gone.join(", ")
    )
}

/// A node stopped while the others take writes catches up when it comes back, and
/// answers /readyz 200 only once it has them.
fn mesh_restart_catch_up() -> String {
    const WHILE_DOWN: usize = 300;
    let mut mesh = start_mesh(3);
    let (api_a, api_b) = (mesh.node(0).api(), mesh.node(1).api());
    for name in ["kept", "to-update", "to-delete"] {
        ok(
            api_a.post(CMS, &configmap(name, json!({"v": "1"}))),
            "create through A",
            201,
        );
    }
    let api_c = mesh.node(2).api();
    wait_until("C has the first writes", VISIBILITY_BOUND, || {
        get_cm(&api_c, "to-delete")
    });
    mesh.node_mut(2).stop();

    let bodies = (0..WHILE_DOWN)
        .map(|i| configmap(&format!("while-down-{i}"), json!({"i": i.to_string()})))
        .collect();
    assert_eq!(api_a.create_many(CMS, bodies, 16), WHILE_DOWN);
    ok(
        api_b.merge_patch(&format!("{CMS}/to-update"), &json!({"data": {"v": "2"}})),
        "update through B",
        200,
    );
    ok(
        api_a.delete(&format!("{CMS}/to-delete")),
        "delete through A",
        200,
    );

    let restarted = Instant::now();
    let c = mesh.node_mut(2);
    c.spawn().expect("C starts again");
    let api_c = c.api();
    let mut not_ready = 0u32;
    while !api_c.ready(Duration::from_secs(2)) {
        not_ready += 1;
        assert!(c.is_running(), "C exited:\n{}", c.log_tail(30));
        assert!(
            restarted.elapsed() < Duration::from_secs(60),
            "C not ready within 60 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let ready_after = restarted.elapsed();
    // What C serves at the moment it first says ready.
    let (items, _) = api_c.list(CMS);
    let by_name: BTreeMap<&str, &Value> = items
        .iter()
        .map(|o| (str_at(o, "/metadata/name"), o))
        .collect();
    let missing: Vec<String> = (0..WHILE_DOWN)
        .map(|i| format!("while-down-{i}"))
        .filter(|n| !by_name.contains_key(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "ready, but {} of the {WHILE_DOWN} creates made while C was down are missing (e.g. {:?})",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(by_name.contains_key("kept"));
    assert_eq!(
        by_name.get("to-update").map(|o| str_at(o, "/data/v")),
        Some("2"),
        "ready with the update made while it was down"
    );
    assert!(
        !by_name.contains_key("to-delete"),
        "ready with the delete made while it was down"
    );
    // And kubectl through C sees them.
    let kc = kubectl(mesh.node(2));
    let got = kc.get_json(&["configmap", &format!("while-down-{}", WHILE_DOWN - 1)]);
    assert_eq!(str_at(&got, "/data/i"), (WHILE_DOWN - 1).to_string());
    format!(
        "C ready {:.2} s after restart ({not_ready} /readyz answers before were not 200) with all {WHILE_DOWN} creates, the update and the delete made while it was down",
        ready_after.as_secs_f64()
    )
}

/// A fresh node joins a mesh holding 10,000 objects and is ready with all of them.
fn mesh_join_10k() -> String {
    const OBJECTS: usize = 10_000;
    const NS: &str = "bulk";
    let mut mesh = start_mesh(3);
    let apis: Vec<ApiClient> = (0..3).map(|i| mesh.node(i).api()).collect();
    ok(
        apis[0].post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        ),
        "create the namespace",
        201,
    );
    for api in &apis {
        wait_until("the namespace on every node", VISIBILITY_BOUND, || {
            api.get(&format!("/api/v1/namespaces/{NS}"))
                .ok()
                .filter(|r| r.status == 200)
        });
    }
    let path = format!("/api/v1/namespaces/{NS}/configmaps");
    let payload = "x".repeat(256);
    let loaded = Instant::now();
    // 32 clients in all, spread over the three nodes.
    let loaders: Vec<_> = apis
        .iter()
        .enumerate()
        .map(|(n, api)| {
            let bodies: Vec<Value> = (0..OBJECTS)
                .filter(|i| i % apis.len() == n)
                .map(|i| configmap(&format!("obj-{i:05}"), json!({"payload": payload})))
                .collect();
            let (api, path) = (api.clone(), path.clone());
            let concurrency = if n == 0 { 12 } else { 10 };
            std::thread::spawn(move || api.create_many(&path, bodies, concurrency))
        })
        .collect();
    let created: usize = loaders
        .into_iter()
        .map(|l| l.join().expect("loader thread"))
        .sum();
    let load_time = loaded.elapsed();
    assert_eq!(created, OBJECTS);
    // Only the loaded objects (the namespace also holds its kube-root-ca.crt).
    let loaded_names = |api: &ApiClient| -> BTreeSet<String> {
        api.list(&path)
            .0
            .iter()
            .map(|o| str_at(o, "/metadata/name").to_string())
            .filter(|n| n.starts_with("obj-"))
            .collect()
    };
    for (i, api) in apis.iter().enumerate() {
        wait_until(
            &format!("node-{} holds all {OBJECTS}", i + 1),
            Duration::from_secs(30),
            || (loaded_names(api).len() == OBJECTS).then_some(()),
        );
    }
    let names = loaded_names(&apis[0]);

    let mut fresh = mesh.new_joiner().expect("a joiner");
    let ready_after = fresh.start().expect("the fresh node becomes ready");
    let fresh_names = loaded_names(&fresh.api());
    assert_eq!(
        fresh_names.len(),
        OBJECTS,
        "the fresh node lists every object once it is ready"
    );
    assert!(fresh_names == names, "the same names as node-1");
    mesh.nodes.push(fresh);
    format!(
        "{OBJECTS} objects created in {:.1} s ({:.0}/s, 32 clients over 3 nodes); a fresh node was ready {:.2} s after spawn and listed all {OBJECTS}",
        load_time.as_secs_f64(),
        OBJECTS as f64 / load_time.as_secs_f64(),
        ready_after.as_secs_f64()
    )
}

/// The README's consistency model for a client that moves from node A to node C with a
/// resourceVersion A issued: C did not issue it, so a watch from it fails in a way
/// informers answer by re-listing, and a conditional update gets 409 Conflict.
fn mesh_moving_client() -> String {
    let mesh = start_mesh(3);
    let api_a = mesh.node(0).api();
    let api_c = mesh.node(2).api();
    ok(
        api_a.post(CMS, &configmap("mover", json!({"n": "0"}))),
        "create through A",
        201,
    );
    let on_c = wait_until("C has the object", VISIBILITY_BOUND, || {
        get_cm(&api_c, "mover")
    });
    let on_a = get_cm(&api_a, "mover").expect("mover on A");
    let (_, rv_a) = api_a.list(CMS);
    let (_, rv_c) = api_c.list(CMS);
    assert_ne!(rv_a, rv_c, "every node issues its own revisions");

    // 1. A watch on C from A's revision: 410 Expired (a status or an ERROR event).
    let mut watch = api_c
        .watch(&format!("{CMS}?resourceVersion={rv_a}"))
        .expect("watch request");
    let expired = watch.status == 410
        || watch
            .wait_for(Duration::from_secs(5), |e| {
                str_at(e, "/type") == "ERROR"
                    && e.pointer("/object/code") == Some(&json!(410))
                    && str_at(e, "/object/reason") == "Expired"
            })
            .is_some();
    assert!(
        expired,
        "watch on C from A's resourceVersion {rv_a} (C at {rv_c}): 410 Expired expected; {}",
        watch.describe()
    );

    // 2. A list on C not older than A's revision: 410 too (the client re-lists plainly).
    let reply = api_c
        .get(&format!(
            "{CMS}?resourceVersion={rv_a}&resourceVersionMatch=NotOlderThan"
        ))
        .expect("list request");
    assert_eq!(
        reply.status, 410,
        "list on C at A's revision: {}",
        reply.body
    );

    // 3. A conditional update through C with A's resourceVersion of the object: 409.
    let rv_obj_a = str_at(&on_a, "/metadata/resourceVersion").to_string();
    let rv_obj_c = str_at(&on_c, "/metadata/resourceVersion").to_string();
    assert_ne!(rv_obj_a, rv_obj_c, "the object's revision differs per node");
    let mut moved = on_a.clone();
    moved["data"] = json!({"n": "moved"});
    let reply = api_c
        .put(&format!("{CMS}/mover"), &moved)
        .expect("PUT through C");
    assert_eq!(
        reply.status, 409,
        "PUT through C with A's resourceVersion {rv_obj_a} (C's is {rv_obj_c}): {}",
        reply.body
    );
    assert_eq!(str_at(&reply.body, "/reason"), "Conflict");
    assert_eq!(
        get_cm(&api_c, "mover").map(|o| str_at(&o, "/data/n").to_string()),
        Some("0".to_string()),
        "the refused update changed nothing"
    );
    // Re-read on C and retry, as clients do: accepted.
    let mut reread = on_c.clone();
    reread["data"] = json!({"n": "moved"});
    ok(
        api_c.put(&format!("{CMS}/mover"), &reread),
        "PUT through C with C's resourceVersion",
        200,
    );
    format!(
        "A's rv {rv_a} on C (at {rv_c}): watch → 410 Expired, list → 410; PUT on C with A's rv {rv_obj_a} (C's {rv_obj_c}) → 409 Conflict, with C's → 200"
    )
}

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";

/// client-go's MicroTime form (six fractional digits), as LeaseLock writes it.
fn micro_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    let (days, secs) = ((now.as_secs() / 86_400) as i64, now.as_secs() % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        now.subsec_micros()
    )
}

/// Leader election on one Lease by four clients, two through A and two through B, in
/// client-go's LeaseLock shape: each round every client GETs the Lease from its node and
/// PUTs itself as holder with the resourceVersion it read (a takeover bumps
/// leaseTransitions and acquireTime). Every round has exactly one winner, the Lease ends
/// as the last winner wrote it on every node, and leaseTransitions counts exactly the
/// takeovers (no lost update, the holder never goes back to an older write).
fn mesh_lease_election() -> String {
    const ROUNDS: usize = 10;
    let mesh = start_mesh(2);
    let apis = [mesh.node(0).api(), mesh.node(1).api()];
    let url = format!("{LEASES}/mesh-leader");
    let created = ok(
        apis[0].post(
            LEASES,
            &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": "mesh-leader"},
                    "spec": {"holderIdentity": "nobody", "leaseDurationSeconds": 15,
                             "acquireTime": micro_now(), "renewTime": micro_now(),
                             "leaseTransitions": 0}}),
        ),
        "create the Lease through A",
        201,
    );
    let mut expected_spec = created["spec"].clone();
    let mut takeovers = 0;
    let mut wins: BTreeMap<String, usize> = BTreeMap::new();
    let mut retries = 0;
    for round in 1..=ROUNDS {
        // Both nodes hold the previous round's winner before the round starts.
        wait_until(
            "A and B hold the same Lease",
            Duration::from_secs(5),
            || {
                apis.iter()
                    .all(|api| {
                        api.get(&url)
                            .ok()
                            .is_some_and(|r| r.status == 200 && r.body["spec"] == expected_spec)
                    })
                    .then_some(())
            },
        );
        let barrier = Arc::new(Barrier::new(4));
        let racers: Vec<_> = (0..4)
            .map(|c| {
                let api = apis[c % 2].clone();
                let barrier = barrier.clone();
                let url = url.clone();
                std::thread::spawn(move || {
                    let me = format!("candidate-{c}-via-{}", ["A", "B"][c % 2]);
                    let mut lease = api.get(&url).expect("GET the Lease").body;
                    barrier.wait();
                    let spec = &mut lease["spec"];
                    if spec["holderIdentity"] != json!(me) {
                        let n = spec["leaseTransitions"].as_i64().unwrap_or(0);
                        spec["leaseTransitions"] = json!(n + 1);
                        spec["acquireTime"] = json!(micro_now());
                    }
                    spec["holderIdentity"] = json!(me);
                    spec["renewTime"] = json!(micro_now());
                    let reply = api.put(&url, &lease).expect("PUT the Lease");
                    (me, lease, reply)
                })
            })
            .collect();
        let outcomes: Vec<_> = racers
            .into_iter()
            .map(|r| r.join().expect("racer thread"))
            .collect();
        let summary: Vec<String> = outcomes
            .iter()
            .map(|(me, _, r)| format!("{me}: {} {}", r.status, str_at(&r.body, "/reason")))
            .collect();
        let winners: Vec<_> = outcomes
            .iter()
            .filter(|(_, _, r)| r.status == 200)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one winner: {summary:?}"
        );
        for (_, _, r) in outcomes.iter().filter(|(_, _, r)| r.status != 200) {
            assert_eq!(r.status, 409, "round {round}: losers get 409: {summary:?}");
            assert_eq!(str_at(&r.body, "/reason"), "Conflict", "{}", r.body);
            retries += 1;
        }
        let (me, sent, reply) = winners[0];
        assert_eq!(
            reply.body["spec"], sent["spec"],
            "round {round}: stored as sent"
        );
        if sent["spec"]["holderIdentity"] != expected_spec["holderIdentity"] {
            takeovers += 1;
        }
        assert_eq!(
            sent["spec"]["leaseTransitions"], takeovers,
            "round {round}: leaseTransitions counts every takeover"
        );
        *wins.entry(me.clone()).or_insert(0) += 1;
        expected_spec = reply.body["spec"].clone();
    }
    for (label, api) in [("A", &apis[0]), ("B", &apis[1])] {
        wait_until(
            &format!("{label} holds the last winner"),
            VISIBILITY_BOUND,
            || {
                api.get(&url)
                    .ok()
                    .filter(|r| r.body["spec"] == expected_spec)
            },
        );
    }
    format!(
        "{ROUNDS} rounds of 4 clients (2 via A, 2 via B): one 200 each, {retries} 409 Conflicts; {takeovers} takeovers = leaseTransitions; wins {wins:?}"
    )
}

/// The report's client label of the cases that drive only the raw HTTPS client.
const API_CLIENT: &str = "https-client";

macro_rules! mesh_cases {
    ($($case:ident => $client:expr),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                run_recorded(stringify!($case), &$client, super::$case);
            }
        )*
    };
}

mod mesh {
    use super::{API_CLIENT, client_label};
    use beemesh_conformance::run_recorded;

    mesh_cases!(
        mesh_visibility => client_label(),
        mesh_conflicting_updates => API_CLIENT,
        mesh_delete => client_label(),
        mesh_restart_catch_up => client_label(),
        mesh_join_10k => API_CLIENT,
        mesh_moving_client => API_CLIENT,
        mesh_lease_election => API_CLIENT,
    );
}
