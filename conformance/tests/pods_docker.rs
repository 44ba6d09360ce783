//! Pods run by a node started with `--runtime docker` (containers of this machine's Docker
//! Engine, ADR 0010), through real kubectl 1.33, with an image built here (`FROM scratch`
//! + static busybox; nothing is pulled):
//! - a Deployment's pod reaches Running with a podIP on the node's Docker network, a
//!   `docker://` container id, and `kubectl logs`, `kubectl exec` (with stdin) and
//!   `kubectl port-forward` reach the container;
//! - env from a ConfigMap and a configMap volume (read-only) reach the container;
//! - an image that exists nowhere shows `ErrImagePull` then `ImagePullBackOff`, with the
//!   kubelet's Failed and BackOff events;
//! - a crashing command shows `CrashLoopBackOff` with a growing restart count, its
//!   lastState, `kubectl logs --previous` and Pulled/Created/Started/BackOff events;
//! - deleting a pod removes its containers from the engine.
//!
//! Everything the node makes carries this test's owner label (`BEEMESH_DOCKER_LABELS`) and
//! is removed at the end, or by the next run when this process dies.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use beemesh_conformance::docker::{DockerScope, LabelSweep, docker, engine_version};
use beemesh_conformance::{Kubectl, Node, eventually, run_recorded, skip};
use serde_json::Value;

const KUBECTL: &str = "1.33";

/// Polls `kubectl get pod <name> -o json` until `f` holds.
fn wait_pod(k: &Kubectl, name: &str, timeout: Duration, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let pod = k.get_json(&["pod", name]);
        if f(&pod) {
            return pod;
        }
        assert!(
            Instant::now() < deadline,
            "pod {name} did not get there in {timeout:?}: {}",
            pod["status"]
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn waiting_reason(pod: &Value) -> &str {
    pod.pointer("/status/containerStatuses/0/state/waiting/reason")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn restarts(pod: &Value) -> u64 {
    pod.pointer("/status/containerStatuses/0/restartCount")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn http_get(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer)
}

/// `<type>/<reason>: <message>` of every event on a pod.
fn event_reasons(k: &Kubectl, pod: &str) -> Vec<String> {
    let events = k.get_json(&[
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod}"),
    ]);
    events["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    format!(
                        "{}/{}: {}",
                        e["type"].as_str().unwrap_or(""),
                        e["reason"].as_str().unwrap_or(""),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The engine's containers of a pod (by the kubelet's uid label), any state.
fn containers_of(uid: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=io.kubernetes.pod.uid={uid}"),
    ])
    .unwrap_or_default()
    .lines()
    .map(str::to_string)
    .collect()
}

fn deployment_runs(k: &Kubectl, image: &str) -> String {
    let manifest = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: hello}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: hello}}}}
  template:
    metadata: {{labels: {{app: hello}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: main
        image: {image}
        command: ["sh", "-c", "echo hello; exec httpd -f -p 8080 -h /"]
        ports: [{{containerPort: 8080}}]
"#
    );
    k.apply(&manifest).ok();
    let started = Instant::now();
    k.run(&["rollout", "status", "deployment/hello", "--timeout=60s"])
        .ok();
    let running_after = started.elapsed();
    let pods = k.get_json(&["pods", "-l", "app=hello"]);
    let pod = &pods["items"][0];
    let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
    assert_eq!(pod["status"]["phase"], "Running", "{}", pod["status"]);
    let ip = pod["status"]["podIP"].as_str().unwrap_or("");
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "podIP {ip:?}");
    assert_ne!(pod["status"]["podIP"], pod["status"]["hostIP"]);
    let id = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap_or("");
    assert!(id.starts_with("docker://"), "{id}");
    // The container is on the engine, labelled with the pod.
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
    assert_eq!(containers_of(&uid).len(), 2, "app container + sandbox");

    let logs = k.run(&["logs", &name]).ok();
    assert_eq!(logs.stdout, "hello\n");
    k.run(&["logs", "deployment/hello", "--timestamps"])
        .ok()
        .stdout_has("Z hello\n");
    // -f keeps streaming while the container runs.
    let mut follow = match k.spawn(&["logs", "-f", &name]) {
        Ok(r) => r,
        Err(e) => panic!("kubectl logs -f: {e}"),
    };
    let line = follow.wait_for_line(Duration::from_secs(10), |l| l == "hello");
    assert!(line.is_some(), "logs -f: {}", follow.describe());
    assert!(
        follow.is_running(),
        "logs -f ended early: {}",
        follow.describe()
    );
    drop(follow);
    let exec = k.run(&["exec", &name, "--", "echo", "hi"]).ok();
    assert_eq!(exec.stdout, "hi\n");
    let hostname = k
        .run(&["exec", &name, "--", "sh", "-c", "echo $HOSTNAME"])
        .ok();
    assert_eq!(hostname.stdout, format!("{name}\n"));

    let piped = k
        .run_stdin(&["exec", "-i", &name, "--", "cat"], "piped\n")
        .ok();
    assert_eq!(piped.stdout, "piped\n");

    // port-forward reaches the pod's port through the node (podIP on the node's bridge).
    let local = match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("no free port: {e}"),
    };
    let mapping = format!("{local}:8080");
    let mut pf = match k.spawn(&["port-forward", &format!("pod/{name}"), &mapping]) {
        Ok(r) => r,
        Err(e) => panic!("kubectl port-forward: {e}"),
    };
    let ready = pf.wait_for_line(Duration::from_secs(20), |l| l.contains("Forwarding from"));
    assert!(ready.is_some(), "port-forward: {}", pf.describe());
    let answer = eventually(Duration::from_secs(10), || http_get(local));
    assert!(
        answer.starts_with("HTTP/1."),
        "port-forward answer: {answer}"
    );
    drop(pf);

    // Deleting the pod removes its containers (the Deployment makes a new pod).
    k.run(&["delete", "pod", &name, "--wait=true", "--timeout=60s"])
        .ok();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !containers_of(&uid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "containers of deleted pod {name} still on the engine: {:?}",
            containers_of(&uid)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    k.run(&["delete", "deployment", "hello", "--wait=true"])
        .ok();
    format!(
        "Deployment Running (podIP {ip}) {:.1} s after apply",
        running_after.as_secs_f64()
    )
}

/// Env from a ConfigMap and a configMap volume (written by the agent, bind-mounted
/// read-only) reach the container.
fn env_and_volume(k: &Kubectl, image: &str) {
    k.run(&["create", "configmap", "app", "--from-literal=mode=dev"])
        .ok();
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: envpod}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {image}
    command: ["sh", "-c", "echo MODE=$MODE; cat /etc/app/mode; echo; touch /etc/app/x 2>/dev/null || echo read-only; exec sleep 3600"]
    env:
    - name: MODE
      valueFrom: {{configMapKeyRef: {{name: app, key: mode}}}}
    volumeMounts:
    - {{name: cfg, mountPath: /etc/app, readOnly: true}}
  volumes:
  - name: cfg
    configMap: {{name: app}}
"#
    );
    k.apply(&manifest).ok();
    k.run(&[
        "wait",
        "--for=condition=Ready",
        "pod/envpod",
        "--timeout=60s",
    ])
    .ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let out = k.run(&["logs", "envpod"]).ok();
        if out.stdout.contains("read-only") || Instant::now() > deadline {
            break out.stdout;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(logs, "MODE=dev\ndev\nread-only\n");
    k.run(&["delete", "pod", "envpod"]).ok();
}

fn missing_image(k: &Kubectl) {
    k.apply(
        r#"apiVersion: v1
kind: Pod
metadata: {name: nopull}
spec:
  containers:
  - name: main
    image: beemesh.invalid/no-such-image:1
"#,
    )
    .ok();
    let pod = wait_pod(k, "nopull", Duration::from_secs(60), |p| {
        matches!(waiting_reason(p), "ErrImagePull" | "ImagePullBackOff")
    });
    assert!(
        pod.pointer("/status/containerStatuses/0/state/waiting/message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty()),
        "{}",
        pod["status"]
    );
    let table = k.run(&["get", "pod", "nopull"]).ok();
    let status = table.table().cell("nopull", "STATUS").to_string();
    assert!(
        status == "ErrImagePull" || status == "ImagePullBackOff",
        "{status}"
    );
    // It moves on to the back-off while the next pull waits.
    wait_pod(k, "nopull", Duration::from_secs(30), |p| {
        waiting_reason(p) == "ImagePullBackOff"
    });
    // The kubelet's events say why.
    let events = event_reasons(k, "nopull");
    for wanted in [
        "Warning/Failed: Error: ErrImagePull",
        "Normal/BackOff: Back-off pulling image \"beemesh.invalid/no-such-image:1\"",
    ] {
        assert!(
            events.iter().any(|e| e == wanted),
            "no {wanted:?} in {events:?}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("Warning/Failed: Failed to pull image \"beemesh.invalid/")),
        "{events:?}"
    );
    k.run(&["delete", "pod", "nopull", "--grace-period=0", "--force"]);
}

fn crash_loop(k: &Kubectl, image: &str) -> String {
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: crasher}}
spec:
  containers:
  - name: main
    image: {image}
    command: ["sh", "-c", "echo boom; exit 3"]
"#
    );
    k.apply(&manifest).ok();
    let started = Instant::now();
    let pod = wait_pod(k, "crasher", Duration::from_secs(60), |p| {
        waiting_reason(p) == "CrashLoopBackOff" && restarts(p) >= 1
    });
    let c = &pod["status"]["containerStatuses"][0];
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 3, "{c}");
    assert_eq!(c["lastState"]["terminated"]["reason"], "Error", "{c}");
    assert!(
        c["state"]["waiting"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("back-off 10s restarting failed container=main pod=crasher_default("),
        "{c}"
    );
    let table = k.run(&["get", "pod", "crasher"]).ok();
    assert_eq!(table.table().cell("crasher", "STATUS"), "CrashLoopBackOff");
    // The 10 s back-off passes and it runs (and crashes) again.
    let pod = wait_pod(k, "crasher", Duration::from_secs(40), |p| restarts(p) >= 2);
    let second = started.elapsed();
    assert!(restarts(&pod) >= 2);
    let events = event_reasons(k, "crasher");
    for wanted in [
        "Normal/Pulled",
        "Normal/Created",
        "Normal/Started",
        "Warning/BackOff",
    ] {
        assert!(
            events.iter().any(|e| e.starts_with(wanted)),
            "no {wanted} event in {events:?}"
        );
    }
    let previous = k.run(&["logs", "crasher", "--previous"]).ok();
    assert_eq!(previous.stdout, "boom\n");
    k.run(&["delete", "pod", "crasher", "--grace-period=1"])
        .ok();
    format!(
        "CrashLoopBackOff, restartCount 2 after {:.1} s",
        second.as_secs_f64()
    )
}

fn docker_pods() -> String {
    if let Err(why) = engine_version() {
        skip(why);
    }
    let mut scope = DockerScope::new("pods-docker");
    let work = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("temp dir: {e}"),
    };
    let image = match scope.build_busybox_image(work.path()) {
        Ok(tag) => tag,
        Err(e) => panic!("building the busybox image: {e}"),
    };
    // Removes the node's containers and network after the node is gone (dropped first).
    let _sweep = LabelSweep(scope.owner_label());
    // SAFETY: set before the node starts, while this test process runs no other threads
    // that read the environment (nextest runs each test in its own process).
    unsafe { std::env::set_var("BEEMESH_DOCKER_LABELS", scope.owner_label()) };
    let node = match Node::start_with(&["--runtime", "docker"]) {
        Ok(n) => n,
        Err(e) => panic!("node did not start: {e}"),
    };
    let k = match Kubectl::new(KUBECTL, &node.kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    };
    let mut notes = vec![deployment_runs(&k, &image)];
    env_and_volume(&k, &image);
    missing_image(&k);
    notes.push(crash_loop(&k, &image));
    drop(node);
    notes.join("; ")
}

#[test]
fn docker_runtime_pods() {
    run_recorded(
        "docker_runtime_pods",
        &format!("kubectl-{KUBECTL}"),
        docker_pods,
    );
}
