use super::*;
use beemesh_translator::Registry;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

/// An RFC 3339 timestamp `secs` seconds before `now()`.
fn ago(secs: i64) -> String {
    (now() - TimeDelta::seconds(secs))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn res(group: &str, version: &str, plural: &str) -> ResourceInfo {
    Registry::builtin()
        .get(group, version, plural)
        .map(|r| (*r).clone())
        .unwrap_or_else(|| panic!("{group}/{version}/{plural} not served"))
}

fn names(cols: &[Value]) -> Vec<(String, i64)> {
    cols.iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["priority"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn cells(r: &ResourceInfo, obj: Value) -> Vec<Value> {
    row_cells(r, &obj, now())
}

#[test]
fn human_duration_matches_upstream() {
    let cases = [
        (1, "1s"),
        (70, "70s"),
        (119, "119s"),
        (120, "2m"),
        (190, "3m10s"),
        (600, "10m"),
        (70 * 60, "70m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 20 * 60, "3h20m"),
        (47 * 3600, "47h"),
        (49 * 3600, "2d1h"),
        (72 * 3600, "3d"),
        ((8 * 24 + 2) * 3600, "8d"),
        (367 * 24 * 3600, "367d"),
        ((365 * 2 * 24 + 25) * 3600, "2y1d"),
        ((365 * 8 * 24 + 2) * 3600, "8y"),
        (0, "0s"),
        (-1, "0s"),
        (-2, "<invalid>"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(TimeDelta::seconds(secs)), want, "{secs}s");
    }
    // Sub-second skew truncates toward zero like Go's int(d.Seconds()).
    assert_eq!(human_duration(TimeDelta::milliseconds(-1500)), "0s");
}

#[test]
fn pod_columns_are_upstreams() {
    let cols = column_definitions(&res("", "v1", "pods"));
    assert_eq!(
        names(&cols),
        [
            ("Name".to_string(), 0),
            ("Ready".into(), 0),
            ("Status".into(), 0),
            ("Restarts".into(), 0),
            ("Age".into(), 0),
            ("IP".into(), 1),
            ("Node".into(), 1),
            ("Nominated Node".into(), 1),
            ("Readiness Gates".into(), 1),
        ]
    );
    assert_eq!(cols[0]["format"], "name");
    assert_eq!(cols[1]["format"], "");
    assert_eq!(cols[3]["type"], "string");
    assert!(
        cols[0]["description"]
            .as_str()
            .unwrap()
            .starts_with("Name must be unique within a namespace.")
    );
    assert!(
        cols[4]["description"]
            .as_str()
            .unwrap()
            .starts_with("CreationTimestamp is a timestamp representing the server time")
    );
    assert!(!cols[5]["description"].as_str().unwrap().is_empty());
}

fn running_pod() -> Value {
    json!({
        "metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": ago(300)},
        "spec": {"nodeName": "node-a", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.7",
            "podIPs": [{"ip": "10.0.0.7"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]
        }
    })
}

#[test]
fn running_pod_row() {
    let pods = res("", "v1", "pods");
    assert_eq!(
        cells(&pods, running_pod()),
        vec![
            json!("web-1"),
            json!("2/2"),
            json!("Running"),
            json!("0"),
            json!("5m"),
            json!("10.0.0.7"),
            json!("node-a"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
    assert!(row_conditions(&pods, &running_pod()).is_none());
}

#[test]
fn crash_looping_pod_shows_waiting_reason_and_last_restart() {
    let pods = res("", "v1", "pods");
    let mut pod = running_pod();
    pod["status"]["containerStatuses"][1] = json!({
        "name": "b", "ready": false, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(180)}}
    });
    let row = cells(&pods, pod);
    assert_eq!(row[1], "1/2");
    assert_eq!(row[2], "CrashLoopBackOff");
    assert_eq!(row[3], "3 (3m ago)");
}

#[test]
fn pending_pod_without_statuses() {
    let pods = res("", "v1", "pods");
    let pod = json!({
        "metadata": {"name": "p", "creationTimestamp": ago(5)},
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Pending"}
    });
    let row = cells(&pods, pod);
    assert_eq!(
        row[1..5],
        [json!("0/1"), json!("Pending"), json!("0"), json!("5s")]
    );
    assert_eq!(row[5], "<none>");
    assert_eq!(row[6], "<none>");
}

#[test]
fn init_container_states() {
    let pods = res("", "v1", "pods");
    let base = |init_status: Value| {
        json!({
            "metadata": {"name": "p", "creationTimestamp": ago(60)},
            "spec": {
                "initContainers": [{"name": "init1"}, {"name": "init2"}],
                "containers": [{"name": "main"}]
            },
            "status": {
                "phase": "Pending",
                "initContainerStatuses": init_status,
                "containerStatuses": [
                    {"name": "main", "ready": false, "restartCount": 0,
                     "state": {"waiting": {"reason": "PodInitializing"}}}
                ]
            }
        })
    };
    let row = cells(
        &pods,
        base(json!([
            {"name": "init1", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "init2", "restartCount": 0, "state": {"running": {}}}
        ])),
    );
    assert_eq!(row[2], "Init:1/2");
    let row = cells(
        &pods,
        base(json!([
            {"name": "init1", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        ])),
    );
    assert_eq!(row[2], "Init:CrashLoopBackOff");
    assert_eq!(row[3], "4");
    let row = cells(
        &pods,
        base(json!([
            {"name": "init1", "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}
        ])),
    );
    assert_eq!(row[2], "Init:ExitCode:2");
    let row = cells(
        &pods,
        base(json!([
            {"name": "init1", "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}}
        ])),
    );
    assert_eq!(row[2], "Init:Signal:9");
    let row = cells(
        &pods,
        base(json!([
            {"name": "init1", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
        ])),
    );
    assert_eq!(row[2], "Init:0/2");
}

#[test]
fn sidecar_init_containers_count_towards_ready() {
    let pods = res("", "v1", "pods");
    let pod = json!({
        "metadata": {"name": "p", "creationTimestamp": ago(60)},
        "spec": {
            "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
            "containers": [{"name": "main"}]
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [
                {"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                 "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(30)}}}
            ],
            "containerStatuses": [
                {"name": "main", "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]
        }
    });
    let row = cells(&pods, pod);
    assert_eq!(row[1], "2/2");
    assert_eq!(row[2], "Running");
    assert_eq!(row[3], "1 (30s ago)");
}

#[test]
fn completed_terminating_and_lost_pods() {
    let pods = res("", "v1", "pods");
    let completed = json!({
        "metadata": {"name": "job-x", "creationTimestamp": ago(3600)},
        "spec": {"containers": [{"name": "a"}]},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [{"name": "a", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]
        }
    });
    assert_eq!(cells(&pods, completed.clone())[2], "Completed");
    assert_eq!(
        row_conditions(&pods, &completed).unwrap(),
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                "message": "The pod has completed successfully."}])
    );
    let mut terminating = running_pod();
    terminating["metadata"]["deletionTimestamp"] = json!(ago(1));
    assert_eq!(cells(&pods, terminating.clone())[2], "Terminating");
    terminating["status"]["reason"] = json!("NodeLost");
    assert_eq!(cells(&pods, terminating)[2], "Unknown");
    let mut error = completed;
    error["status"]["phase"] = json!("Failed");
    error["status"]["containerStatuses"][0]["state"] =
        json!({"terminated": {"exitCode": 1, "reason": "Error"}});
    assert_eq!(cells(&pods, error.clone())[2], "Error");
    assert_eq!(
        row_conditions(&pods, &error).unwrap()[0]["reason"],
        "Failed"
    );
}

#[test]
fn completed_container_beside_a_running_one() {
    let pods = res("", "v1", "pods");
    let mut pod = running_pod();
    pod["status"]["containerStatuses"][0]["state"] =
        json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
    pod["status"]["containerStatuses"][0]["ready"] = json!(false);
    assert_eq!(cells(&pods, pod.clone())[2], "Running");
    pod["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    assert_eq!(cells(&pods, pod)[2], "NotReady");
}

#[test]
fn scheduling_gated_and_readiness_gates() {
    let pods = res("", "v1", "pods");
    let pod = json!({
        "metadata": {"name": "p", "creationTimestamp": ago(10)},
        "spec": {
            "containers": [{"name": "a"}],
            "readinessGates": [{"conditionType": "a.example/x"}, {"conditionType": "a.example/y"}]
        },
        "status": {
            "phase": "Pending",
            "nominatedNodeName": "node-b",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
                {"type": "a.example/x", "status": "True"}
            ]
        }
    });
    let row = cells(&pods, pod);
    assert_eq!(row[2], "SchedulingGated");
    assert_eq!(row[7], "node-b");
    assert_eq!(row[8], "1/2");
}

#[test]
fn service_rows() {
    let svcs = res("", "v1", "services");
    assert_eq!(
        names(&column_definitions(&svcs)),
        [
            ("Name".to_string(), 0),
            ("Type".into(), 0),
            ("Cluster-IP".into(), 0),
            ("External-IP".into(), 0),
            ("Port(s)".into(), 0),
            ("Age".into(), 0),
            ("Selector".into(), 1),
        ]
    );
    let svc = json!({
        "metadata": {"name": "web", "creationTimestamp": ago(7200)},
        "spec": {
            "type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            "selector": {"app": "web", "tier": "fe"}
        }
    });
    assert_eq!(
        cells(&svcs, svc),
        vec![
            json!("web"),
            json!("ClusterIP"),
            json!("10.96.0.10"),
            json!("<none>"),
            json!("80/TCP,53/UDP"),
            json!("120m"),
            json!("app=web,tier=fe"),
        ]
    );
    let node_port = json!({
        "metadata": {"name": "np"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.11", "externalIPs": ["1.2.3.4"],
                 "ports": [{"port": 80, "nodePort": 30080}]}
    });
    let row = cells(&svcs, node_port);
    assert_eq!(row[3], "1.2.3.4");
    assert_eq!(row[4], "80:30080/TCP");
    assert_eq!(row[5], "<unknown>");
    assert_eq!(row[6], "<none>");

    let mut lb = json!({
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}
    });
    assert_eq!(cells(&svcs, lb.clone())[3], "<pending>");
    lb["status"] = json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "a-very-long-load-balancer.example.com"}]}});
    assert_eq!(
        cells(&svcs, lb.clone())[3],
        "203.0.113.9,a-very-long-load-balancer.example.com"
    );
    lb["spec"]["externalIPs"] = json!(["198.51.100.1"]);
    assert_eq!(
        cells(&svcs, lb)[3],
        "203.0.113.9,a-very-long-load-balancer.example.com,198.51.100.1"
    );

    let headless = json!({
        "metadata": {"name": "h"},
        "spec": {"clusterIP": "None", "clusterIPs": ["None"]}
    });
    let row = cells(&svcs, headless);
    assert_eq!(row[1], "ClusterIP");
    assert_eq!(row[2], "None");
    assert_eq!(row[4], "<none>");
    let external = json!({
        "metadata": {"name": "ext"},
        "spec": {"type": "ExternalName", "externalName": "db.example.com"}
    });
    let row = cells(&svcs, external);
    assert_eq!(row[2], "<none>");
    assert_eq!(row[3], "db.example.com");
}

#[test]
fn deployment_ready_up_to_date_available() {
    let deploys = res("apps", "v1", "deployments");
    assert_eq!(
        names(&column_definitions(&deploys)),
        [
            ("Name".to_string(), 0),
            ("Ready".into(), 0),
            ("Up-to-date".into(), 0),
            ("Available".into(), 0),
            ("Age".into(), 0),
            ("Containers".into(), 1),
            ("Images".into(), 1),
            ("Selector".into(), 1),
        ]
    );
    let d = json!({
        "metadata": {"name": "web", "creationTimestamp": ago(2 * 86400 + 3 * 3600)},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.27"}, {"name": "side", "image": "busybox"}
            ]}}
        },
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    });
    assert_eq!(
        cells(&deploys, d),
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("2d3h"),
            json!("nginx,side"),
            json!("nginx:1.27,busybox"),
            json!("app=web"),
        ]
    );
    // A fresh deployment: no status yet, replicas defaulted to 1.
    let fresh =
        json!({"metadata": {"name": "x"}, "spec": {"selector": {"matchLabels": {"a": "b"}}}});
    let row = cells(&deploys, fresh);
    assert_eq!(row[1..4], [json!("0/1"), json!(0), json!(0)]);
    assert_eq!(row[4], "<unknown>");
}

#[test]
fn replica_set_stateful_set_daemon_set_rows() {
    let rs = json!({
        "metadata": {"name": "web-abc", "creationTimestamp": ago(30)},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "abc"}},
                 "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"replicas": 2, "readyReplicas": 1}
    });
    assert_eq!(
        cells(&res("apps", "v1", "replicasets"), rs),
        vec![
            json!("web-abc"),
            json!(2),
            json!(2),
            json!(1),
            json!("30s"),
            json!("c"),
            json!("i"),
            json!("app=web,pod-template-hash=abc"),
        ]
    );
    let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
    assert_eq!(cells(&res("apps", "v1", "statefulsets"), sts)[1], "3/3");
    let ds = json!({
        "metadata": {"name": "agent"},
        "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}}},
        "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                   "updatedNumberScheduled": 2, "numberAvailable": 1}
    });
    let row = cells(&res("apps", "v1", "daemonsets"), ds);
    assert_eq!(
        row[1..7],
        [
            json!(2),
            json!(2),
            json!(1),
            json!(2),
            json!(1),
            json!("kubernetes.io/os=linux")
        ]
    );
    assert_eq!(row[10], "<none>");
}

#[test]
fn job_and_cronjob_rows() {
    let jobs = res("batch", "v1", "jobs");
    let job = json!({
        "metadata": {"name": "pi", "creationTimestamp": ago(600)},
        "spec": {"completions": 1, "parallelism": 1,
                 "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}}},
        "status": {"succeeded": 1, "startTime": ago(590), "completionTime": ago(540),
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                  {"type": "Complete", "status": "True"}]}
    });
    let row = cells(&jobs, job);
    assert_eq!(
        row[1..5],
        [json!("Complete"), json!("1/1"), json!("50s"), json!("10m")]
    );
    let running = json!({
        "metadata": {"name": "p"},
        "spec": {"parallelism": 3},
        "status": {"startTime": ago(125)}
    });
    let row = cells(&jobs, running);
    assert_eq!(
        row[1..4],
        [json!("Running"), json!("0/1 of 3"), json!("2m5s")]
    );
    let unstarted = json!({"metadata": {"name": "q"}, "spec": {}});
    assert_eq!(cells(&jobs, unstarted)[2..4], [json!("0/1"), json!("")]);

    let cron = json!({
        "metadata": {"name": "nightly", "creationTimestamp": ago(86400)},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}},
        "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(3600)}
    });
    let row = cells(&res("batch", "v1", "cronjobs"), cron);
    assert_eq!(
        row[..7],
        [
            json!("nightly"),
            json!("0 3 * * *"),
            json!("<none>"),
            json!("False"),
            json!(1),
            json!("60m"),
            json!("24h")
        ]
    );
}

#[test]
fn config_secret_namespace_serviceaccount_rows() {
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(cells(&res("", "v1", "configmaps"), cm)[1], 3);
    let secret = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
    assert_eq!(
        cells(&res("", "v1", "secrets"), secret)[1..3],
        [json!("kubernetes.io/tls"), json!(2)]
    );
    let ns = json!({"metadata": {"name": "kube-system"}, "status": {"phase": "Terminating"}});
    assert_eq!(cells(&res("", "v1", "namespaces"), ns)[1], "Terminating");
    let sa = json!({"metadata": {"name": "default"}});
    let sas = res("", "v1", "serviceaccounts");
    assert_eq!(
        names(&column_definitions(&sas)),
        [
            ("Name".to_string(), 0),
            ("Secrets".into(), 0),
            ("Age".into(), 0)
        ]
    );
    assert_eq!(cells(&sas, sa)[1], 0);
}

#[test]
fn node_rows() {
    let node = json!({
        "metadata": {"name": "n1", "creationTimestamp": ago(86400 * 10),
                     "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "n1"}],
            "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian", "kernelVersion": "6.1.0",
                         "architecture": "amd64", "containerRuntimeVersion": "containerd://1.7"}
        }
    });
    assert_eq!(
        cells(&res("", "v1", "nodes"), node),
        vec![
            json!("n1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,worker"),
            json!("10d"),
            json!("v1.33.1"),
            json!("192.168.1.10"),
            json!("<none>"),
            json!("Debian"),
            json!("6.1.0 (amd64)"),
            json!("containerd://1.7"),
        ]
    );
    let bare = json!({"metadata": {"name": "n2"}});
    let row = cells(&res("", "v1", "nodes"), bare);
    assert_eq!(row[1..3], [json!("Unknown"), json!("<none>")]);
    assert_eq!(
        row[7..10],
        [json!("<unknown>"), json!("<unknown>"), json!("<unknown>")]
    );
}

#[test]
fn event_rows_core_and_events_v1() {
    let events = res("", "v1", "events");
    assert_eq!(
        names(&column_definitions(&events)),
        [
            ("Last Seen".to_string(), 0),
            ("Type".into(), 0),
            ("Reason".into(), 0),
            ("Object".into(), 0),
            ("Subobject".into(), 1),
            ("Source".into(), 1),
            ("Message".into(), 0),
            ("First Seen".into(), 1),
            ("Count".into(), 1),
            ("Name".into(), 1),
        ]
    );
    let ev = json!({
        "metadata": {"name": "web-1.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{a}"},
        "reason": "Pulled", "type": "Normal", "message": "  Pulled image \n",
        "source": {"component": "kubelet", "host": "node-a"},
        "firstTimestamp": ago(600), "lastTimestamp": ago(60), "count": 4
    });
    assert_eq!(
        cells(&events, ev),
        vec![
            json!("60s"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/web-1"),
            json!("spec.containers{a}"),
            json!("kubelet, node-a"),
            json!("Pulled image"),
            json!("10m"),
            json!(4),
            json!("web-1.17a"),
        ]
    );
    // New-style event: eventTime + series, reportingController/instance.
    let v1 = json!({
        "metadata": {"name": "e2"},
        "regarding": {"kind": "Node", "name": "n1"},
        "reason": "Rebooted", "type": "Warning", "note": "node rebooted",
        "eventTime": "2025-06-01T11:50:00.000000Z",
        "series": {"count": 7, "lastObservedTime": "2025-06-01T11:59:30.000000Z"},
        "reportingController": "kubelet", "reportingInstance": "n1"
    });
    let row = cells(&res("events.k8s.io", "v1", "events"), v1);
    assert_eq!(
        row,
        vec![
            json!("30s"),
            json!("Warning"),
            json!("Rebooted"),
            json!("node/n1"),
            json!(""),
            json!("kubelet, n1"),
            json!("node rebooted"),
            json!("10m"),
            json!(7),
            json!("e2"),
        ]
    );
    let singleton = json!({"metadata": {"name": "e3"}, "involvedObject": {"kind": "Pod"}});
    let row = cells(&events, singleton);
    assert_eq!(row[0], "<unknown>");
    assert_eq!(row[3], "pod");
    assert_eq!(row[8], 1);
}

#[test]
fn hpa_targets() {
    let hpas = res("autoscaling", "v2", "horizontalpodautoscalers");
    let hpa = json!({
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}
            ]
        },
        "status": {
            "currentReplicas": 3,
            "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45, "averageValue": "90m"}}}]
        }
    });
    let row = cells(&hpas, hpa);
    assert_eq!(
        row[1..6],
        [
            json!("Deployment/web"),
            json!("cpu: 45%/60%, memory: <unknown>/500Mi + 1 more..."),
            json!("2"),
            json!(10),
            json!(3),
        ]
    );
    let defaulted = json!({"metadata": {"name": "d"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 3}});
    let row = cells(&hpas, defaulted);
    assert_eq!(row[2], "cpu: <unknown>/80%");
    assert_eq!(row[3], "1");
}

#[test]
fn storage_rows() {
    let pv = json!({
        "metadata": {"name": "pv1", "creationTimestamp": ago(60)},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "fast",
                 "claimRef": {"namespace": "default", "name": "data"}},
        "status": {"phase": "Bound"}
    });
    assert_eq!(
        cells(&res("", "v1", "persistentvolumes"), pv),
        vec![
            json!("pv1"),
            json!("10Gi"),
            json!("RWO,RWX"),
            json!("Delete"),
            json!("Bound"),
            json!("default/data"),
            json!("fast"),
            json!("<unset>"),
            json!(""),
            json!("60s"),
            json!("Filesystem"),
        ]
    );
    let pvc = json!({
        "metadata": {"name": "data"},
        "spec": {"volumeName": "pv1", "storageClassName": "fast", "volumeMode": "Block"},
        "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}
    });
    let row = cells(&res("", "v1", "persistentvolumeclaims"), pvc);
    assert_eq!(
        row[1..7],
        [
            json!("Bound"),
            json!("pv1"),
            json!("10Gi"),
            json!("RWO"),
            json!("fast"),
            json!("<unset>")
        ]
    );
    assert_eq!(row[8], "Block");
    let pending = json!({"metadata": {"name": "p"}, "spec": {}});
    let row = cells(&res("", "v1", "persistentvolumeclaims"), pending);
    assert_eq!(
        row[1..5],
        [json!("Pending"), json!(""), json!(""), json!("")]
    );

    let sc = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                    "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
    assert_eq!(
        cells(&res("storage.k8s.io", "v1", "storageclasses"), sc)[..5],
        [
            json!("standard (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false)
        ]
    );
}

#[test]
fn rbac_pdb_quota_lease_priority_rows() {
    let rb = json!({
        "metadata": {"name": "rb"},
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "bot", "namespace": "ci"}, {"kind": "User", "name": "bob"}
        ]
    });
    let row = cells(&res("rbac.authorization.k8s.io", "v1", "rolebindings"), rb);
    assert_eq!(row[1], "ClusterRole/view");
    assert_eq!(
        row[3..6],
        [json!("alice, bob"), json!("devs"), json!("ci/bot")]
    );

    let pdb = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
    assert_eq!(
        cells(&res("policy", "v1", "poddisruptionbudgets"), pdb)[1..4],
        [json!("50%"), json!("N/A"), json!(1)]
    );
    let quota = json!({
        "metadata": {"name": "q"},
        "status": {"hard": {"pods": "10", "limits.cpu": "4", "requests.cpu": "2"},
                   "used": {"pods": "3", "requests.cpu": "500m"}}
    });
    assert_eq!(
        cells(&res("", "v1", "resourcequotas"), quota)[1..3],
        [
            json!("pods: 3/10, requests.cpu: 500m/2"),
            json!("limits.cpu: 0/4")
        ]
    );
    let lease = json!({"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}});
    assert_eq!(
        cells(&res("coordination.k8s.io", "v1", "leases"), lease)[1],
        "n1"
    );
    let pc = json!({"metadata": {"name": "high"}, "value": 1000, "globalDefault": true});
    assert_eq!(
        cells(&res("scheduling.k8s.io", "v1", "priorityclasses"), pc)[1..3],
        [json!(1000), json!(true)]
    );
}

#[test]
fn endpoints_and_slices() {
    let ep = json!({
        "metadata": {"name": "web"},
        "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}],
                     "ports": [{"port": 80}, {"port": 443}]}]
    });
    assert_eq!(
        cells(&res("", "v1", "endpoints"), ep)[1],
        "10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 3 more..."
    );
    assert_eq!(
        cells(
            &res("", "v1", "endpoints"),
            json!({"metadata": {"name": "e"}})
        )[1],
        "<none>"
    );
    let slice = json!({
        "metadata": {"name": "web-abc"}, "addressType": "IPv4",
        "ports": [{"port": 80, "name": "http"}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]
    });
    assert_eq!(
        cells(&res("discovery.k8s.io", "v1", "endpointslices"), slice)[1..4],
        [json!("IPv4"), json!("80"), json!("10.0.0.1,10.0.0.2")]
    );
    let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv4"});
    assert_eq!(
        cells(&res("discovery.k8s.io", "v1", "endpointslices"), empty)[2..4],
        [json!("<unset>"), json!("<unset>")]
    );
}

#[test]
fn csr_and_ingress_rows() {
    let csr = json!({
        "metadata": {"name": "csr-1"},
        "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "alice", "expirationSeconds": 86400},
        "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}
    });
    assert_eq!(
        cells(
            &res("certificates.k8s.io", "v1", "certificatesigningrequests"),
            csr
        )[2..6],
        [
            json!("kubernetes.io/kube-apiserver-client"),
            json!("alice"),
            json!("24h"),
            json!("Approved,Issued")
        ]
    );
    let ing = json!({
        "metadata": {"name": "web"},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example"}, {"host": "b.example"}], "tls": [{}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
    });
    assert_eq!(
        cells(&res("networking.k8s.io", "v1", "ingresses"), ing)[1..5],
        [
            json!("nginx"),
            json!("a.example,b.example"),
            json!("192.0.2.1"),
            json!("80, 443")
        ]
    );
}

#[test]
fn default_table_for_resources_without_a_printer() {
    let roles = res("rbac.authorization.k8s.io", "v1", "roles");
    let cols = column_definitions(&roles);
    assert_eq!(
        names(&cols),
        [("Name".to_string(), 0), ("Created At".into(), 0)]
    );
    assert_eq!(cols[1]["type"], "date");
    let role = json!({"metadata": {"name": "r", "creationTimestamp": "2024-03-04T05:06:07Z"}});
    assert_eq!(
        cells(&roles, role),
        vec![json!("r"), json!("2024-03-04T05:06:07Z")]
    );
    let t = table(
        &roles,
        &[],
        IncludeObject::Metadata,
        "42",
        None,
        None,
        now(),
    );
    assert!(t["rows"].is_null());
    let crds = res("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    assert_eq!(column_definitions(&crds).len(), 2);
    let pods = table(
        &res("", "v1", "pods"),
        &[],
        IncludeObject::Metadata,
        "42",
        None,
        None,
        now(),
    );
    assert_eq!(pods["rows"], json!([]));
}

#[test]
fn table_assembly() {
    let pods = res("", "v1", "pods");
    let pod = running_pod();
    let t = table(
        &pods,
        std::slice::from_ref(&pod),
        IncludeObject::Metadata,
        "1002",
        Some("tok"),
        Some(5),
        now(),
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(
        t["metadata"],
        json!({"resourceVersion": "1002", "continue": "tok", "remainingItemCount": 5})
    );
    assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 9);
    let row = &t["rows"][0];
    assert_eq!(row["cells"][0], "web-1");
    assert!(row.get("conditions").is_none());
    assert_eq!(
        row["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
               "metadata": pod["metadata"]})
    );
    let t = table(
        &pods,
        std::slice::from_ref(&pod),
        IncludeObject::Object,
        "",
        None,
        None,
        now(),
    );
    assert_eq!(t["metadata"], json!({}));
    assert_eq!(t["rows"][0]["object"]["kind"], "Pod");
    assert_eq!(t["rows"][0]["object"]["apiVersion"], "v1");
    assert_eq!(t["rows"][0]["object"]["spec"], pod["spec"]);
    let t = table(
        &pods,
        std::slice::from_ref(&pod),
        IncludeObject::None,
        "",
        None,
        None,
        now(),
    );
    assert!(t["rows"][0]["object"].is_null());
    assert!(t["rows"][0].as_object().unwrap().contains_key("object"));
}

#[test]
fn flow_schemas_are_ordered_by_precedence() {
    let fs = res("flowcontrol.apiserver.k8s.io", "v1", "flowschemas");
    let objs = [
        json!({"metadata": {"name": "b"}, "spec": {"matchingPrecedence": 500, "priorityLevelConfiguration": {"name": "x"}}}),
        json!({"metadata": {"name": "a"}, "spec": {"matchingPrecedence": 500, "priorityLevelConfiguration": {"name": "x"}}}),
        json!({"metadata": {"name": "z"}, "spec": {"matchingPrecedence": 1, "priorityLevelConfiguration": {"name": "x"}}}),
    ];
    let t = table(&fs, &objs, IncludeObject::None, "", None, None, now());
    let order: Vec<&str> = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cells"][0].as_str().unwrap())
        .collect();
    assert_eq!(order, ["z", "a", "b"]);
}

#[test]
fn every_builtin_resource_has_matching_cells_and_columns() {
    // Upstream's IPAddress printer is the one known mismatch (two columns, three cells).
    for r in Registry::builtin().all() {
        if !r.has_verb("list") || r.plural == "ipaddresses" {
            continue;
        }
        let cols = column_definitions(&r);
        let cells = row_cells(&r, &json!({"metadata": {"name": "x"}}), now());
        assert_eq!(cols.len(), cells.len(), "{}/{}", r.group, r.plural);
        for c in &cols {
            assert!(c["description"].is_string(), "{}", r.plural);
        }
    }
}
