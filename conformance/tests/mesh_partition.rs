//! Three nodes as Docker containers on private (`--internal`) networks of this machine: the
//! mesh network carries only p2p traffic, each node's API is on a second network the host
//! reaches. Node C is cut off the mesh network (`docker network disconnect`) while both
//! sides keep taking writes — different keys on each side and the same keys on both — and
//! reconnected; every node must then hold the same objects within 5 s, and for every key
//! written on both sides the later write wins (ADR 0003: last writer by (hlc, origin); the
//! containers share the host's clock, so the later write in wall-clock time has the larger
//! hlc).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use beemesh_conformance::api::{ApiClient, Reply};
use beemesh_conformance::container_mesh::{ContainerMesh, ContainerNode, wait_for};
use beemesh_conformance::docker::{docker, engine_version};
use beemesh_conformance::run_recorded;
use serde_json::{Value, json};

const NS: &str = "split";
/// After reconnecting, every node must hold the same objects within this.
const CONVERGENCE_BOUND: Duration = Duration::from_secs(5);
/// How long one write may keep failing while the two sides notice the cut (ping timeout).
const WRITE_DEADLINE: Duration = Duration::from_secs(90);

fn cms() -> String {
    format!("/api/v1/namespaces/{NS}/configmaps")
}

fn start_cluster() -> ContainerMesh {
    ContainerMesh::start("partition", 3, &[])
}

fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

/// The object without its node-local `resourceVersion`: what must agree across nodes.
fn replicated(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    obj
}

/// name → object (without resourceVersion) of every configmap in the namespace.
fn dump(api: &ApiClient) -> Result<BTreeMap<String, Value>, String> {
    let reply = api.get(&cms()).map_err(|e| e.to_string())?;
    if reply.status != 200 {
        return Err(format!("list: {} {}", reply.status, reply.body));
    }
    Ok(reply
        .body
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|o| {
            let name = o
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            (name, replicated(o))
        })
        .collect())
}

/// What a key must look like on every node after the partition heals.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Present(Value),
    Absent,
}

/// Which side of the cut a write goes through.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    /// A and B (the write alternates between them).
    Majority,
    /// C alone.
    Minority,
}

struct Writer<'a> {
    cluster: &'a ContainerMesh,
    expected: BTreeMap<String, Expect>,
    turn: usize,
    /// Attempts answered 5xx because the key's home was across the cut.
    refused: usize,
    /// When the last of those was answered, counted from the cut.
    last_refused: Option<Duration>,
    cut_at: Instant,
    accepted: usize,
}

impl Writer<'_> {
    fn node(&mut self, side: Side) -> &ContainerNode {
        match side {
            Side::Minority => &self.cluster.nodes[2],
            Side::Majority => {
                self.turn += 1;
                &self.cluster.nodes[self.turn % 2]
            }
        }
    }

    /// Sends one write through `side` until it is accepted (a 5xx means the key's home
    /// is across the cut and the node has not noticed yet); returns the answer.
    #[track_caller]
    fn write(
        &mut self,
        side: Side,
        what: &str,
        accepted: &[u16],
        send: impl Fn(&ApiClient) -> Result<Reply, reqwest::Error>,
    ) -> Reply {
        let node = self.node(side);
        let (label, api) = (node.label.clone(), node.api.clone());
        let started = Instant::now();
        let mut failures = 0usize;
        loop {
            match send(&api) {
                Ok(reply) if accepted.contains(&reply.status) => {
                    self.accepted += 1;
                    // Distinct milliseconds for consecutive writes: the hlc's physical part.
                    std::thread::sleep(Duration::from_millis(5));
                    return reply;
                }
                Ok(reply) if reply.status >= 500 => {
                    self.refused += 1;
                    self.last_refused = Some(self.cut_at.elapsed());
                }
                Ok(reply) => panic!(
                    "{what} through {label} (after {failures} refused attempts): {} {}",
                    reply.status, reply.body
                ),
                Err(e) if e.is_timeout() || e.is_connect() || e.is_request() => {
                    self.refused += 1;
                    self.last_refused = Some(self.cut_at.elapsed());
                }
                Err(e) => panic!("{what} through {label}: {e}"),
            }
            failures += 1;
            assert!(
                started.elapsed() < WRITE_DEADLINE,
                "{what} through {label}: still refused after {WRITE_DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn create(&mut self, side: Side, name: &str, data: Value) {
        let body = configmap(name, data);
        let reply = self.write(side, &format!("create {name}"), &[201], |api| {
            api.post(&cms(), &body)
        });
        self.expected
            .insert(name.to_string(), Expect::Present(replicated(&reply.body)));
    }

    fn update(&mut self, side: Side, name: &str, data: Value) {
        let patch = json!({"data": data});
        let reply = self.write(side, &format!("update {name}"), &[200], |api| {
            api.merge_patch(&format!("{}/{name}", cms()), &patch)
        });
        self.expected
            .insert(name.to_string(), Expect::Present(replicated(&reply.body)));
    }

    fn delete(&mut self, side: Side, name: &str) {
        self.write(side, &format!("delete {name}"), &[200], |api| {
            api.delete(&format!("{}/{name}", cms()))
        });
        self.expected.insert(name.to_string(), Expect::Absent);
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Majority => "AB",
        Side::Minority => "C",
    }
}

/// What differs between the nodes' dumps and from the expected outcome (empty = converged).
fn differences(
    dumps: &[(&str, BTreeMap<String, Value>)],
    expected: &BTreeMap<String, Expect>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    let (first_label, first) = &dumps[0];
    for (label, other) in &dumps[1..] {
        for name in first.keys().chain(other.keys()) {
            if first.get(name) != other.get(name) {
                diffs.push(format!(
                    "{name}: {first_label} has {}, {label} has {}",
                    brief(first.get(name)),
                    brief(other.get(name))
                ));
            }
        }
    }
    for (name, want) in expected {
        for (label, dump) in dumps {
            let got = dump.get(name);
            let ok = match want {
                Expect::Present(obj) => got == Some(obj),
                Expect::Absent => got.is_none(),
            };
            if !ok {
                let want = match want {
                    Expect::Present(obj) => brief(Some(obj)),
                    Expect::Absent => "nothing".into(),
                };
                diffs.push(format!(
                    "{name} on {label}: want {want}, got {}",
                    brief(got)
                ));
            }
        }
    }
    diffs.sort();
    diffs.dedup();
    diffs
}

fn brief(obj: Option<&Value>) -> String {
    match obj {
        None => "nothing".into(),
        Some(o) => format!(
            "uid {} data {}",
            o.pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("?"),
            o.get("data").cloned().unwrap_or(Value::Null)
        ),
    }
}

fn mesh_partition() -> String {
    let cluster = start_cluster();
    let (a, c) = (&cluster.nodes[0], &cluster.nodes[2]);
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}});
    let reply = a
        .api
        .post("/api/v1/namespaces", &ns)
        .expect("create namespace");
    assert_eq!(reply.status, 201, "{}", reply.body);
    // Keys that exist before the cut, to be updated or deleted on both sides.
    let shared: Vec<String> = (0..4).map(|j| format!("shared-{j}")).collect();
    let contested = [
        "update-then-delete",
        "delete-then-update",
        "delete-then-update-2",
    ];
    let mut before = BTreeMap::new();
    for name in shared.iter().map(String::as_str).chain(contested) {
        let reply = a
            .api
            .post(&cms(), &configmap(name, json!({"v": "0"})))
            .expect("create");
        assert_eq!(reply.status, 201, "create {name}: {}", reply.body);
        before.insert(name.to_string(), Expect::Present(replicated(&reply.body)));
    }
    for node in &cluster.nodes {
        wait_for(
            &format!("the first writes on {}", node.label),
            Duration::from_secs(5),
            || {
                let dump = dump(&node.api).ok()?;
                before
                    .iter()
                    .all(|(name, want)| match want {
                        Expect::Present(obj) => dump.get(name) == Some(obj),
                        Expect::Absent => !dump.contains_key(name),
                    })
                    .then_some(())
            },
        );
    }

    // Cut C off the mesh network; its API stays reachable on the other one.
    docker(&["network", "disconnect", &cluster.mesh_net, &c.container])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut w = Writer {
        cluster: &cluster,
        expected: before,
        turn: 0,
        refused: 0,
        last_refused: None,
        cut_at: Instant::now(),
        accepted: 0,
    };
    use Side::{Majority, Minority};
    // Different keys on each side.
    for i in 0..3 {
        w.create(
            Majority,
            &format!("majority-only-{i}"),
            json!({"side": "AB"}),
        );
        w.create(
            Minority,
            &format!("minority-only-{i}"),
            json!({"side": "C"}),
        );
    }
    // The same keys on both sides; which side writes last alternates.
    let mut contested_count = 0;
    for (j, shared_name) in shared.iter().enumerate() {
        let (first, last) = if j % 2 == 0 {
            (Majority, Minority)
        } else {
            (Minority, Majority)
        };
        let name = format!("created-on-both-{j}");
        w.create(first, &name, json!({"side": side_name(first)}));
        w.create(last, &name, json!({"side": side_name(last)}));
        w.update(first, shared_name, json!({"side": side_name(first)}));
        w.update(last, shared_name, json!({"side": side_name(last)}));
        contested_count += 2;
    }
    // A delete on one side against an update on the other.
    w.update(Majority, "update-then-delete", json!({"side": "AB"}));
    w.delete(Minority, "update-then-delete");
    w.delete(Minority, "delete-then-update");
    w.update(Majority, "delete-then-update", json!({"side": "AB"}));
    w.delete(Majority, "delete-then-update-2");
    w.update(Minority, "delete-then-update-2", json!({"side": "C"}));
    contested_count += 3;
    let cut_for = w.cut_at.elapsed();

    // Reconnect C with its old address.
    docker(&[
        "network",
        "connect",
        "--ip",
        &c.mesh_ip,
        &cluster.mesh_net,
        &c.container,
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let healed = Instant::now();
    let mut last_diffs: Vec<String>;
    let mut diffs_at_bound = None;
    let converged_after = loop {
        let dumps: Result<Vec<_>, String> = cluster
            .nodes
            .iter()
            .map(|n| dump(&n.api).map(|d| (n.label.as_str(), d)))
            .collect();
        last_diffs = match dumps {
            Ok(dumps) => differences(&dumps, &w.expected),
            Err(e) => vec![e],
        };
        if last_diffs.is_empty() {
            break Some(healed.elapsed());
        }
        // Keep watching past the bound to tell "slow" from "never".
        if healed.elapsed() > CONVERGENCE_BOUND && diffs_at_bound.is_none() {
            diffs_at_bound = Some(last_diffs.clone());
        }
        if healed.elapsed() > Duration::from_secs(60) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let Some(converged_after) = converged_after else {
        panic!(
            "the nodes did not converge within 60 s of reconnecting C; still different: {:?}",
            &last_diffs[..last_diffs.len().min(8)]
        );
    };
    assert!(
        converged_after <= CONVERGENCE_BOUND,
        "the nodes converged {:.1} s after reconnecting C (bound {CONVERGENCE_BOUND:?}); at the bound: {:?}",
        converged_after.as_secs_f64(),
        diffs_at_bound
            .as_deref()
            .map(|d| &d[..d.len().min(8)])
            .unwrap_or_default()
    );
    let refused = match w.last_refused {
        Some(last) => format!(
            "{} attempts refused (503) while a node still routed to a home across the cut, the last {:.1} s after the cut",
            w.refused,
            last.as_secs_f64()
        ),
        None => "no attempt refused".to_string(),
    };
    format!(
        "C cut off for {:.1} s; {} writes accepted on the two sides ({refused}); all 3 nodes identical {:.2} s after reconnecting; the later write won on all {contested_count} keys written on both sides",
        cut_for.as_secs_f64(),
        w.accepted,
        converged_after.as_secs_f64()
    )
}

#[test]
fn partition() {
    let client = match engine_version() {
        Ok(v) => format!("docker-{v}"),
        Err(_) => "docker".to_string(),
    };
    run_recorded("mesh_partition", &client, mesh_partition);
}
