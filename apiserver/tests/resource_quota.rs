//! ResourceQuota admission over HTTP on one node, without the usage controller: racing
//! creates never take a quota past its hard limit (the reservation is a compare-and-set on
//! the quota's version), the refusals are upstream's 403 with its message, and a dry run
//! is checked but reserves nothing.

mod common;

use common::*;
use serde_json::{Value, json};

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

#[tokio::test]
async fn racing_creates_never_exceed_the_quota() {
    let node = Node::start().await;
    node.create(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
    )
    .await;
    node.create(
        "/api/v1/namespaces/team/resourcequotas",
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
               "spec": {"hard": {"pods": "3", "count/configmaps": "1"}}}),
    )
    .await;

    // A dry run is admitted and reserves nothing.
    let dry = node
        .post("/api/v1/namespaces/team/pods?dryRun=All")
        .json(&pod("dry"))
        .send()
        .await;
    assert_eq!(dry.status.as_u16(), 201, "{}", dry.text());

    let creates = (0..10).map(|i| {
        let node = &node;
        async move {
            node.post("/api/v1/namespaces/team/pods")
                .json(&pod(&format!("p{i}")))
                .send()
                .await
        }
    });
    let results = futures::future::join_all(creates).await;
    let created = results.iter().filter(|r| r.status.as_u16() == 201).count();
    assert_eq!(
        created,
        3,
        "{:?}",
        results.iter().map(Resp::text).collect::<Vec<_>>()
    );
    for r in results.iter().filter(|r| r.status.as_u16() != 201) {
        r.status_error(
            403,
            "Forbidden",
            "is forbidden: exceeded quota: q, requested: pods=1, used: pods=3, limited: pods=3",
        );
    }
    let quota = node
        .get("/api/v1/namespaces/team/resourcequotas/q")
        .send()
        .await
        .json();
    assert_eq!(quota["status"]["used"]["pods"], "3", "{quota}");
    assert_eq!(quota["status"]["hard"], quota["spec"]["hard"], "{quota}");

    // count/<resource> quotas count any kind.
    let cm =
        |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    node.create("/api/v1/namespaces/team/configmaps", cm("a"))
        .await;
    node.post("/api/v1/namespaces/team/configmaps")
        .json(&cm("b"))
        .send()
        .await
        .status_error(
            403,
            "Forbidden",
            "configmaps \"b\" is forbidden: exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=1, limited: count/configmaps=1",
        );
}

#[tokio::test]
async fn a_service_turning_node_port_is_charged_for_its_ports() {
    let node = Node::start().await;
    node.create(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
    )
    .await;
    node.create(
        "/api/v1/namespaces/team/resourcequotas",
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
               "spec": {"hard": {"services.nodeports": "1"}}}),
    )
    .await;
    node.create(
        "/api/v1/namespaces/team/services",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"selector": {"app": "s"}, "ports": [
                   {"name": "a", "port": 80}, {"name": "b", "port": 81}]}}),
    )
    .await;
    node.patch("/api/v1/namespaces/team/services/s")
        .merge(&json!({"spec": {"type": "NodePort"}}))
        .send()
        .await
        .status_error(
            403,
            "Forbidden",
            "services \"s\" is forbidden: exceeded quota: q, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1",
        );
    // An update that adds nothing is not charged.
    let labelled = node
        .patch("/api/v1/namespaces/team/services/s")
        .merge(&json!({"metadata": {"labels": {"x": "y"}}}))
        .send()
        .await;
    assert_eq!(labelled.status.as_u16(), 200, "{}", labelled.text());
}
