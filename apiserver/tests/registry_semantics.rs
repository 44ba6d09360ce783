//! What upstream's per-resource registries do beyond the generic store, as a client sees
//! it over HTTP: DELETE answers, Service address allocation, the Job selector, the
//! `kubernetes` Service, omitted empty strings, non-resource paths.

mod common;

use common::*;
use http::StatusCode;
use serde_json::{Value, json};

const CM: &str = "/api/v1/namespaces/default/configmaps";
const SVC: &str = "/api/v1/namespaces/default/services";

fn service(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

// ---------------------------------------------------------------- DELETE answers

#[tokio::test]
async fn delete_answers_a_status_unless_the_registry_returns_the_deleted_object() {
    let node = Node::start().await;
    let cm = node.create(CM, configmap("gone", json!({}))).await;
    let r = node.delete(&format!("{CM}/gone")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": "gone", "kind": "configmaps", "uid": cm["metadata"]["uid"]},
        })
    );
    // A named group appears in the details.
    node.create(
        "/apis/apps/v1/namespaces/default/deployments",
        deployment("web", 1),
    )
    .await;
    let r = node
        .delete("/apis/apps/v1/namespaces/default/deployments/web")
        .send()
        .await;
    let s = r.json();
    assert_eq!(s["kind"], "Status", "{s}");
    assert_eq!(s["details"]["group"], "apps");
    assert_eq!(s["details"]["kind"], "deployments");
    // A dry run answers what the real delete would.
    node.create(CM, configmap("dry", json!({}))).await;
    let r = node.delete(&format!("{CM}/dry?dryRun=All")).send().await;
    assert_eq!(r.json()["kind"], "Status");
    node.get(&format!("{CM}/dry")).send().await.json();

    // Pods, Services and ServiceAccounts answer with the deleted object.
    node.create(SVC, service("s", json!({"ports": [{"port": 80}]})))
        .await;
    let r = node.delete(&format!("{SVC}/s")).send().await;
    assert_eq!(r.json()["kind"], "Service", "{}", r.text());
    node.create(
        "/api/v1/namespaces/default/serviceaccounts",
        json!({"metadata": {"name": "robot"}}),
    )
    .await;
    let r = node
        .delete("/api/v1/namespaces/default/serviceaccounts/robot")
        .send()
        .await;
    assert_eq!(r.json()["kind"], "ServiceAccount", "{}", r.text());
    node.create("/api/v1/namespaces/default/pods", pod("p", None))
        .await;
    let r = node
        .delete("/api/v1/namespaces/default/pods/p")
        .send()
        .await;
    assert_eq!(r.json()["kind"], "Pod", "{}", r.text());

    // An object kept by its finalizers is returned, whatever the resource.
    let mut held = configmap("held", json!({}));
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    node.create(CM, held).await;
    let r = node.delete(&format!("{CM}/held")).send().await;
    assert_eq!(r.json()["kind"], "ConfigMap");
}

// ---------------------------------------------------------------- non-resource paths

#[tokio::test]
async fn version_and_health_paths_answer_as_upstream() {
    let node = Node::start().await;
    for path in ["/version", "/version/"] {
        let r = node.get(path).no_auth().send().await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.json()["major"], "1", "{path}");
    }
    for path in [
        "/livez",
        "/readyz",
        "/healthz",
        "/readyz/ping",
        "/livez/etcd",
    ] {
        let r = node.get(path).no_auth().send().await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (StatusCode::OK, "ok"),
            "{path}"
        );
    }
    let r = node.get("/readyz?verbose").no_auth().send().await;
    assert!(r.text().starts_with("[+]ping ok\n"), "{}", r.text());
    assert!(r.text().ends_with("readyz check passed\n"), "{}", r.text());
    let r = node
        .get("/livez?verbose&exclude=etcd")
        .no_auth()
        .send()
        .await;
    assert!(r.text().contains("[+]etcd excluded: ok\n"), "{}", r.text());
    let r = node.get("/livez/nope").no_auth().send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    node.state.set_ready(false);
    let r = node.get("/readyz").no_auth().send().await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        r.text()
            .contains("[-]informer-sync failed: reason withheld\nreadyz check failed"),
        "{}",
        r.text()
    );
}

// ---------------------------------------------------------------- Services

#[tokio::test]
async fn services_get_cluster_ips_and_node_ports_at_create() {
    let node = Node::start().await;
    let a = node
        .create(SVC, service("a", json!({"ports": [{"port": 80}]})))
        .await;
    let ip = a["spec"]["clusterIP"].as_str().unwrap().to_string();
    let parsed: std::net::Ipv4Addr = ip.parse().unwrap();
    assert_eq!(parsed.octets()[0], 10);
    assert!((96..112).contains(&parsed.octets()[1]), "{ip}");
    assert_eq!(a["spec"]["clusterIPs"], json!([ip]));
    // The stored object carries it.
    let got = node.get(&format!("{SVC}/a")).send().await.json();
    assert_eq!(got["spec"]["clusterIP"], json!(ip));

    let np = node
        .create(
            SVC,
            service("np", json!({"type": "NodePort", "ports": [{"port": 80}]})),
        )
        .await;
    let port = np["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&port), "{np}");
    assert_ne!(np["spec"]["clusterIP"], json!(ip));

    // Headless and ExternalName Services get no address.
    let h = node
        .create(
            SVC,
            service("h", json!({"clusterIP": "None", "ports": [{"port": 80}]})),
        )
        .await;
    assert_eq!(h["spec"]["clusterIPs"], json!(["None"]));
    let e = node
        .create(
            SVC,
            service(
                "e",
                json!({"type": "ExternalName", "externalName": "db.example.com"}),
            ),
        )
        .await;
    assert!(e["spec"].get("clusterIP").is_none(), "{e}");

    // Explicit duplicates are upstream's 422s, and nothing is stored.
    let before = node.revision();
    let r = node
        .post(SVC)
        .json(&service(
            "dup",
            json!({"clusterIP": ip, "ports": [{"port": 80}]}),
        ))
        .send()
        .await;
    r.status_error(
        422,
        "Invalid",
        &format!(
            "Service \"dup\" is invalid: spec.clusterIPs: Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated"
        ),
    );
    let r = node
        .post(SVC)
        .json(&service(
            "dup",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}),
        ))
        .send()
        .await;
    r.status_error(
        422,
        "Invalid",
        &format!(
            "spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated"
        ),
    );
    assert_eq!(node.revision(), before);

    // Deleting a Service frees its address.
    node.delete(&format!("{SVC}/a")).send().await;
    let again = node
        .create(
            SVC,
            service("again", json!({"clusterIP": ip, "ports": [{"port": 80}]})),
        )
        .await;
    assert_eq!(again["spec"]["clusterIP"], json!(ip));

    // A PUT without the allocated values keeps them.
    let mut put = service("np", json!({"type": "NodePort", "ports": [{"port": 80}]}));
    put["metadata"]["resourceVersion"] = np["metadata"]["resourceVersion"].clone();
    let r = node.put(&format!("{SVC}/np")).json(&put).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let replaced = r.json();
    assert_eq!(replaced["spec"]["clusterIP"], np["spec"]["clusterIP"]);
    assert_eq!(replaced["spec"]["ports"][0]["nodePort"], json!(port));
}

#[tokio::test]
async fn the_kubernetes_service_exists_from_the_start() {
    let node = Node::start().await;
    let svc = node.get(&format!("{SVC}/kubernetes")).send().await.json();
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["clusterIP"], "10.96.0.1");
    assert_eq!(svc["spec"]["clusterIPs"], json!(["10.96.0.1"]));
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}])
    );
    assert_eq!(svc["metadata"]["labels"]["component"], "apiserver");
    // Its address is reserved.
    let r = node
        .post(SVC)
        .json(&service(
            "x",
            json!({"clusterIP": "10.96.0.1", "ports": [{"port": 1}]}),
        ))
        .send()
        .await;
    r.status_error(422, "Invalid", "provided IP is already allocated");
    // A node adds its API address to the Endpoints and EndpointSlice.
    let addr: std::net::SocketAddr = "192.0.2.7:7443".parse().unwrap();
    node.state
        .service
        .bootstrap_api_endpoints(addr)
        .await
        .unwrap();
    node.state
        .service
        .bootstrap_api_endpoints(addr)
        .await
        .unwrap();
    let ep = node
        .get("/api/v1/namespaces/default/endpoints/kubernetes")
        .send()
        .await
        .json();
    assert_eq!(
        ep["subsets"],
        json!([{"addresses": [{"ip": "192.0.2.7"}],
                "ports": [{"name": "https", "port": 7443, "protocol": "TCP"}]}])
    );
    let slice = node
        .get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
        .send()
        .await
        .json();
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["endpoints"],
        json!([{"addresses": ["192.0.2.7"], "conditions": {"ready": true}}])
    );
    let svc = node.get(&format!("{SVC}/kubernetes")).send().await.json();
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 7443);
}

// ---------------------------------------------------------------- Jobs

#[tokio::test]
async fn a_job_selects_its_pods_by_its_uid() {
    let node = Node::start().await;
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["echo", "hi"]}]}}},
    });
    let j = node
        .create("/apis/batch/v1/namespaces/default/jobs", job)
        .await;
    let uid = j["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        j["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    assert_eq!(
        j["spec"]["template"]["metadata"]["labels"],
        json!({
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": "once",
            "controller-uid": uid,
            "job-name": "once",
        })
    );
    assert!(j["spec"].get("manualSelector").is_none(), "{j}");
}

// ---------------------------------------------------------------- empty strings

#[tokio::test]
async fn explicit_empty_optional_strings_are_not_stored() {
    let node = Node::start().await;
    let rb = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "read-pods"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [
            {"apiGroup": "", "kind": "User", "name": "jane"},
            {"apiGroup": "", "kind": "ServiceAccount", "name": "robot", "namespace": "default"},
        ],
    });
    let created = node
        .create(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            rb,
        )
        .await;
    assert_eq!(
        created["subjects"],
        json!([
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"},
            {"kind": "ServiceAccount", "name": "robot", "namespace": "default"},
        ])
    );
    // A required string keeps its empty value; so does a pointer whose "" means something.
    let cm = node
        .create(
            CM,
            json!({"metadata": {"name": "e", "namespace": "", "generateName": ""},
                   "data": {"k": ""}}),
        )
        .await;
    assert!(cm["metadata"].get("generateName").is_none(), "{cm}");
    assert_eq!(cm["data"], json!({"k": ""}), "map values are kept");
    let pvc = node
        .create(
            "/api/v1/namespaces/default/persistentvolumeclaims",
            json!({"metadata": {"name": "claim"}, "spec": {
                "storageClassName": "", "volumeName": "",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}}),
        )
        .await;
    assert_eq!(pvc["spec"]["storageClassName"], "");
    assert!(pvc["spec"].get("volumeName").is_none(), "{pvc}");
}

// ---------------------------------------------------------------- autoscaling/v1

const HPA_V1: &str = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
const HPA_V2: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";

fn hpa_v1(name: &str, cpu: Option<i64>) -> Value {
    let mut h = json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 5},
    });
    if let Some(cpu) = cpu {
        h["spec"]["targetCPUUtilizationPercentage"] = json!(cpu);
    }
    h
}

#[tokio::test]
async fn hpas_are_served_at_v1_and_v2_from_one_object() {
    let node = Node::start().await;
    let group = node.get("/apis/autoscaling").send().await.json();
    assert_eq!(group["preferredVersion"]["version"], "v2", "{group}");
    let versions: Vec<&str> = group["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v2", "v1"]);
    let v1_list = node.get("/apis/autoscaling/v1").send().await.json();
    assert!(
        v1_list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "horizontalpodautoscalers"),
        "{v1_list}"
    );

    // Written at v1, read at v2 and v1.
    let created = node.create(HPA_V1, hpa_v1("web", Some(50))).await;
    assert_eq!(created["apiVersion"], "autoscaling/v1");
    assert_eq!(created["spec"]["targetCPUUtilizationPercentage"], 50);
    let v2 = node.get(&format!("{HPA_V2}/web")).send().await.json();
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 50}}}])
    );
    assert_eq!(v2["metadata"]["uid"], created["metadata"]["uid"]);
    let v1 = node.get(&format!("{HPA_V1}/web")).send().await.json();
    assert_eq!(v1, created);
    assert_eq!(
        v1["status"],
        json!({"currentReplicas": 0, "desiredReplicas": 0})
    );
    // Writing back what was read at v1 changes nothing.
    let r = node.put(&format!("{HPA_V1}/web")).json(&v1).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(rv(&r.json()), rv(&v1), "a no-op update is not a write");

    // Without a target, upstream's default cpu target shows at both versions.
    let bare = node.create(HPA_V1, hpa_v1("bare", None)).await;
    assert_eq!(bare["spec"]["targetCPUUtilizationPercentage"], 80);

    // A v2 object with more than v1 can say keeps it through a v1 round trip.
    let rich = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "rich"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "maxReplicas": 4,
                 "metrics": [{"type": "Resource", "resource": {"name": "memory",
                     "target": {"type": "AverageValue", "averageValue": "500Mi"}}}]},
    });
    let rich_v2 = node.create(HPA_V2, rich.clone()).await;
    let rich_v1 = node.get(&format!("{HPA_V1}/rich")).send().await.json();
    assert!(
        rich_v1["spec"]
            .get("targetCPUUtilizationPercentage")
            .is_none()
    );
    assert!(
        rich_v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"]
            .as_str()
            .unwrap()
            .contains("500Mi"),
        "{rich_v1}"
    );
    let mut put = rich_v1.clone();
    put["spec"]["maxReplicas"] = json!(6);
    let r = node.put(&format!("{HPA_V1}/rich")).json(&put).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let after = node.get(&format!("{HPA_V2}/rich")).send().await.json();
    assert_eq!(after["spec"]["maxReplicas"], 6);
    assert_eq!(after["spec"]["metrics"], rich_v2["spec"]["metrics"]);
    assert!(after["metadata"].get("annotations").is_none(), "{after}");

    // A merge patch at v1 changes the cpu target seen at v2.
    let r = node
        .patch(&format!("{HPA_V1}/web"))
        .merge(&json!({"spec": {"targetCPUUtilizationPercentage": 65}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["spec"]["targetCPUUtilizationPercentage"], 65);
    let v2 = node.get(&format!("{HPA_V2}/web")).send().await.json();
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        65
    );

    // Lists and watches at v1 carry v1 objects.
    let list = node.get(HPA_V1).send().await.json();
    assert_eq!(list["kind"], "HorizontalPodAutoscalerList");
    assert_eq!(list["apiVersion"], "autoscaling/v1");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["apiVersion"] == "autoscaling/v1" && i["spec"].get("metrics").is_none()),
        "{list}"
    );
    let mut w = node
        .get(&format!("{HPA_V1}?watch=true&resourceVersion=0"))
        .stream()
        .await;
    let first = w.next().await;
    assert_eq!(first["object"]["apiVersion"], "autoscaling/v1", "{first}");
    assert!(first["object"]["spec"].get("metrics").is_none(), "{first}");

    // Deleting at v1 answers a v1-shaped Status and removes the one object.
    let r = node.delete(&format!("{HPA_V1}/web")).send().await;
    assert_eq!(r.json()["kind"], "Status");
    node.get(&format!("{HPA_V2}/web"))
        .send()
        .await
        .status_error(404, "NotFound", "not found");
}
