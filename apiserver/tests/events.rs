//! Events served by two groups over one store, their validation and their expiry.

mod common;

use std::time::Duration;

use beemesh_workloads::EventTtlController;
use common::{Node, rv};
use http::StatusCode;
use serde_json::{Value, json};

const CORE: &str = "/api/v1/namespaces/default/events";
const V1: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

fn events_v1(name: &str) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name},
        "eventTime": "2026-11-29T10:00:00.123456Z",
        "reportingController": "example.com/ctl",
        "reportingInstance": "ctl-1",
        "action": "Scheduling",
        "reason": "Scheduled",
        "type": "Normal",
        "note": "assigned to node-1",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "web-0", "apiVersion": "v1"},
        "series": {"count": 2, "lastObservedTime": "2026-11-29T10:00:01.000000Z"},
    })
}

fn core_event(name: &str, reason: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1"},
        "reason": reason,
        "message": "pulled image",
        "type": "Warning",
        "count": 3,
        "firstTimestamp": "2026-11-29T10:00:00Z",
        "lastTimestamp": "2026-11-29T10:05:00Z",
        "source": {"component": "kubelet", "host": "node-1"},
    })
}

fn list_names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {list}"))
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect()
}

#[tokio::test]
async fn both_event_apis_are_views_of_the_same_objects() {
    let node = Node::start().await;
    let created = node.create(V1, events_v1("sched")).await;
    assert_eq!(created["apiVersion"], "events.k8s.io/v1");
    assert_eq!(created["note"], "assigned to node-1");

    // Read through core/v1: upstream's field mapping.
    let r = node.get(&format!("{CORE}/sched")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let core = r.json();
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["message"], "assigned to node-1");
    assert_eq!(core["involvedObject"]["name"], "web-0");
    assert_eq!(core["reportingComponent"], "example.com/ctl");
    assert_eq!(core["reportingInstance"], "ctl-1");
    assert_eq!(core["series"]["count"], 2);
    assert_eq!(core["eventTime"], "2026-11-29T10:00:00.123456Z");
    assert!(core.get("note").is_none() && core.get("regarding").is_none());
    assert_eq!(rv(&core), rv(&created), "one object, one resourceVersion");
    assert_eq!(core["metadata"]["uid"], created["metadata"]["uid"]);

    // A core Event reads as events.k8s.io/v1 with the deprecated fields.
    node.create(CORE, core_event("pulled", "Pulled")).await;
    let v1 = node.get(&format!("{V1}/pulled")).send().await.json();
    assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v1["note"], "pulled image");
    assert_eq!(v1["regarding"]["name"], "web-1");
    assert_eq!(v1["deprecatedCount"], 3);
    assert_eq!(v1["deprecatedFirstTimestamp"], "2026-11-29T10:00:00Z");
    assert_eq!(v1["deprecatedLastTimestamp"], "2026-11-29T10:05:00Z");
    assert_eq!(v1["deprecatedSource"]["component"], "kubelet");
    assert!(v1.get("message").is_none() && v1.get("count").is_none());

    // Both lists hold both; updates through one version show in the other.
    let core_list = node.get(CORE).send().await.json();
    assert_eq!(list_names(&core_list), ["pulled", "sched"]);
    assert_eq!(core_list["items"][1]["message"], "assigned to node-1");
    let v1_list = node.get(V1).send().await.json();
    assert_eq!(list_names(&v1_list), ["pulled", "sched"]);
    assert_eq!(v1_list["items"][0]["note"], "pulled image");
    // events.k8s.io updates may only move the series (upstream's ValidateEventUpdate);
    // core/v1 updates are free, and show through events.k8s.io.
    let mut update = v1.clone();
    update["note"] = json!("pulled again");
    let s = node
        .put(&format!("{V1}/pulled"))
        .json(&update)
        .send()
        .await
        .status_error(422, "Invalid", "");
    assert_eq!(s["details"]["causes"][0]["field"], "message");
    assert_eq!(
        s["details"]["causes"][0]["message"],
        "Invalid value: \"pulled again\": field is immutable"
    );
    let mut update = node.get(&format!("{V1}/sched")).send().await.json();
    update["series"] = json!({"count": 3, "lastObservedTime": "2026-11-29T10:00:02.000000Z"});
    let r = node.put(&format!("{V1}/sched")).json(&update).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let core = node.get(&format!("{CORE}/sched")).send().await.json();
    assert_eq!(core["series"]["count"], 3);
    let r = node
        .patch(&format!("{CORE}/pulled"))
        .merge(&json!({"message": "pulled again", "count": 4}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v1 = node.get(&format!("{V1}/pulled")).send().await.json();
    assert_eq!(v1["note"], "pulled again");
    assert_eq!(v1["deprecatedCount"], 4);

    // Deleting through one version deletes it from both.
    let r = node.delete(&format!("{CORE}/sched")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = node.get(&format!("{V1}/sched")).send().await;
    r.status_error(404, "NotFound", "events.events.k8s.io \"sched\" not found");
}

#[tokio::test]
async fn event_field_selectors_name_each_versions_fields() {
    let node = Node::start().await;
    node.create(V1, events_v1("sched")).await;
    node.create(CORE, core_event("pulled", "Pulled")).await;
    let select =
        |base: &str, sel: &str| format!("{base}?fieldSelector={}", sel.replace('=', "%3D"));
    for (url, want) in [
        (select(CORE, "involvedObject.name=web-0"), vec!["sched"]),
        (select(CORE, "reason=Pulled"), vec!["pulled"]),
        (select(CORE, "type=Normal"), vec!["sched"]),
        (select(CORE, "source=kubelet"), vec!["pulled"]),
        (
            select(CORE, "reportingComponent=example.com/ctl"),
            vec!["sched"],
        ),
        (select(V1, "regarding.name=web-1"), vec!["pulled"]),
        (select(V1, "reason=Scheduled"), vec!["sched"]),
        (select(V1, "type=Warning"), vec!["pulled"]),
        (
            select(V1, "reportingController=example.com/ctl"),
            vec!["sched"],
        ),
    ] {
        let r = node.get(&url).send().await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.text());
        assert_eq!(list_names(&r.json()), want, "{url}");
    }
    // A watch through events.k8s.io sees a core write, converted and selected.
    let mut w = node
        .get(&format!("{V1}?watch=true&fieldSelector=reason%3DBackOff"))
        .stream()
        .await;
    node.create(CORE, core_event("backoff", "BackOff")).await;
    let ev = w.next().await;
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["apiVersion"], "events.k8s.io/v1");
    assert_eq!(ev["object"]["metadata"]["name"], "backoff");
    assert_eq!(ev["object"]["note"], "pulled image");
}

#[tokio::test]
async fn events_v1_is_validated_strictly_and_core_leniently() {
    let node = Node::start().await;
    let mut bad = events_v1("bad");
    for field in ["eventTime", "reportingController", "action"] {
        bad.as_object_mut().unwrap().remove(field);
    }
    bad["type"] = json!("Info");
    bad["deprecatedCount"] = json!(4);
    bad["series"] = json!({"count": 1});
    let r = node.post(V1).json(&bad).send().await;
    let s = r.status_error(422, "Invalid", "Event.events.k8s.io \"bad\" is invalid");
    let causes: Vec<String> = s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}: {}",
                c["field"].as_str().unwrap(),
                c["message"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "series.count: Invalid value: \"\": should be at least 2",
        "series.lastObservedTime: Required value",
        "eventTime: Required value",
        "type: Invalid value: \"\": has invalid value: Info",
        "deprecatedCount: Invalid value: \"\": needs to be unset",
    ] {
        assert!(
            causes.iter().any(|c| c == want),
            "missing {want:?} in {causes:?}"
        );
    }
    // With eventTime, the reporting fields are required (named as the version names them).
    let mut bad = events_v1("bad2");
    bad["reportingController"] = json!("");
    bad["action"] = json!("");
    let s = node
        .post(V1)
        .json(&bad)
        .send()
        .await
        .status_error(422, "Invalid", "");
    let fields: Vec<&str> = s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"reportingController") && fields.contains(&"action"),
        "{s}"
    );

    // core/v1 takes an old-style Event without any of that, but not a namespace mismatch.
    let plain =
        json!({"metadata": {"name": "plain"}, "involvedObject": {"kind": "Pod", "name": "p"}});
    node.create(CORE, plain).await;
    let mut mismatch = core_event("mismatch", "Pulled");
    mismatch["involvedObject"]["namespace"] = json!("kube-system");
    let s = node
        .post(CORE)
        .json(&mismatch)
        .send()
        .await
        .status_error(422, "Invalid", "");
    assert_eq!(
        s["details"]["causes"][0]["field"],
        "involvedObject.namespace"
    );
    assert_eq!(
        s["details"]["causes"][0]["message"],
        "Invalid value: \"kube-system\": does not match event.namespace"
    );
}

#[tokio::test]
async fn events_expire_ttl_after_their_last_write() {
    let node = Node::start().await;
    let ttl = Duration::from_millis(1500);
    let controller = EventTtlController::new(node.state.service.clone(), ttl);
    node.create(CORE, core_event("old", "Pulled")).await;
    node.create(V1, events_v1("renewed")).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    // An update (here a patch through the other version) restarts the clock.
    let r = node
        .patch(&format!("{CORE}/renewed"))
        .merge(&json!({"message": "still happening"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let next = controller.expire_due().await.unwrap();
    assert!(
        next.is_some_and(|d| d <= Duration::from_millis(700)),
        "{next:?}"
    );
    assert_eq!(
        list_names(&node.get(CORE).send().await.json()),
        ["old", "renewed"]
    );

    tokio::time::sleep(Duration::from_millis(700)).await;
    let next = controller.expire_due().await.unwrap();
    assert_eq!(list_names(&node.get(CORE).send().await.json()), ["renewed"]);
    assert!(
        next.is_some_and(|d| d <= Duration::from_millis(900)),
        "{next:?}"
    );
    let r = node.get(&format!("{V1}/old")).send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(controller.expire_due().await.unwrap(), None);
    assert!(list_names(&node.get(V1).send().await.json()).is_empty());
}
