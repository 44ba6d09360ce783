//! Leases under the tight GET/PUT loops of client-go's leader election, and their
//! MicroTime fields.

mod common;

use std::sync::Arc;

use common::{Node, rv};
use http::StatusCode;
use serde_json::json;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";

fn micro_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Leader election as client-go's LeaseLock does it: every round each contender GETs the
/// Lease and PUTs itself as holder with the resourceVersion it read. Exactly one PUT per
/// round wins, the others get 409, and the transitions count every win (no lost update).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_leader_election_has_one_winner_per_round() {
    let node = Arc::new(Node::start().await);
    let created = node
        .create(
            LEASES,
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": "leader"},
                   "spec": {"holderIdentity": "none", "leaseDurationSeconds": 15,
                            "acquireTime": micro_now(), "renewTime": micro_now(),
                            "leaseTransitions": 0}}),
        )
        .await;
    assert_eq!(created["spec"]["leaseTransitions"], 0);
    const CONTENDERS: usize = 5;
    const ROUNDS: usize = 25;
    let mut last_holder = String::from("none");
    for round in 0..ROUNDS {
        let barrier = Arc::new(tokio::sync::Barrier::new(CONTENDERS));
        let mut tasks = Vec::new();
        for c in 0..CONTENDERS {
            let (node, barrier) = (node.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let url = format!("{LEASES}/leader");
                let mut lease = node.get(&url).send().await.json();
                barrier.wait().await;
                let me = format!("candidate-{c}");
                if lease["spec"]["holderIdentity"] != json!(me) {
                    let n = lease["spec"]["leaseTransitions"].as_i64().unwrap();
                    lease["spec"]["leaseTransitions"] = json!(n + 1);
                    lease["spec"]["acquireTime"] = json!(micro_now());
                }
                lease["spec"]["holderIdentity"] = json!(me);
                lease["spec"]["renewTime"] = json!(micro_now());
                let r = node.put(&url).json(&lease).send().await;
                (c, r.status, r.json())
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (c, status, body) = t.await.unwrap();
            match status {
                StatusCode::OK => winners.push((c, body)),
                StatusCode::CONFLICT => assert_eq!(body["reason"], "Conflict", "{body}"),
                other => panic!("round {round}: unexpected {other}: {body}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let (c, body) = &winners[0];
        let lease = node.get(&format!("{LEASES}/leader")).send().await.json();
        assert_eq!(lease["spec"]["holderIdentity"], format!("candidate-{c}"));
        assert_eq!(rv(&lease), rv(body), "the stored Lease is the winner's");
        last_holder = format!("candidate-{c}");
    }
    let lease = node.get(&format!("{LEASES}/leader")).send().await.json();
    assert_eq!(lease["spec"]["holderIdentity"], last_holder);
    // Each round's winner either took over (a transition) or renewed; never fewer than
    // one transition (the first round) and never more than one per round.
    let transitions = lease["spec"]["leaseTransitions"].as_i64().unwrap();
    assert!((1..=ROUNDS as i64).contains(&transitions), "{lease}");
}

#[tokio::test]
async fn lease_times_are_micro_times() {
    let node = Node::start().await;
    let lease = |renew: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "l"},
               "spec": {"holderIdentity": "a", "renewTime": renew}})
    };
    for (renew, rest, expected) in [
        ("2026-11-29T10:00:00Z", "Z", ".000000"),
        ("2026-11-29T10:00:00.123Z", ".123Z", ".000000"),
        ("2026-11-29T10:00:00.123456789Z", "789Z", "Z07:00"),
    ] {
        let r = node.post(LEASES).json(&lease(renew)).send().await;
        r.status_error(
            400,
            "BadRequest",
            &format!(
                "parsing time \"{renew}\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"{rest}\" as \"{expected}\""
            ),
        );
    }
    node.create(LEASES, lease("2026-11-29T10:00:00.123456+01:00"))
        .await;
}

#[tokio::test]
async fn lease_spec_is_validated_as_upstream() {
    let node = Node::start().await;
    let s = node
        .post(LEASES)
        .json(
            &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                      "metadata": {"name": "bad"},
                      "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}),
        )
        .send()
        .await
        .status_error(
            422,
            "Invalid",
            "Lease.coordination.k8s.io \"bad\" is invalid: [",
        );
    let causes: Vec<(String, String)> = s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        causes,
        [
            (
                "spec.leaseDurationSeconds".to_string(),
                "Invalid value: 0: must be greater than 0".to_string()
            ),
            (
                "spec.leaseTransitions".to_string(),
                "Invalid value: -1: must be greater than or equal to 0".to_string()
            ),
        ]
    );
}
