//! `kubectl logs`, `exec`, `attach` and `port-forward` against pods of the `process`
//! runtime, with kubectl 1.27 (SPDY/3.1) and 1.33 (WebSocket v5; port-forward through
//! the SPDY-in-WebSocket tunnel):
//! - logs with `--tail`, `--timestamps`, `-f` (new lines arrive while it runs) and
//!   `--previous` after a restart;
//! - `exec -- echo hi`, exit codes reaching kubectl's own exit code, `exec -i` with stdin
//!   piped, `attach` to a running container's output;
//! - `port-forward` to a port a process in the pod listens on (python3's http.server);
//! - errors as upstream: unknown pod 404, unknown container 400, no default container 400,
//!   and a `sim` pod's clear "runs no containers" 400;
//! - in a three-node mesh, the same requests sent to nodes that do not run the pod are
//!   proxied to the one that does (mesh test-group).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use beemesh_conformance::{Kubectl, Mesh, Node, eventually, run_recorded, skip};
use serde_json::Value;

const OLD: &str = "1.27";
const NEW: &str = "1.33";
const SETTLE: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("no free port: {e}"),
    }
}

fn client(version: &str, kubeconfig: &std::path::Path) -> Kubectl {
    match Kubectl::new(version, kubeconfig) {
        Ok(k) => k,
        Err(why) => skip(why),
    }
}

/// A pod printing `line N` every 200 ms, and one serving HTTP on `web_port`, both on
/// `node` when given.
fn create_pods(k: &Kubectl, node: Option<&str>, web_port: u16) {
    let node_name = node
        .map(|n| format!("  nodeName: {n}\n"))
        .unwrap_or_default();
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: talker}}
spec:
{node_name}  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"]
---
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
{node_name}  containers:
  - name: web
    image: python
    command: ["python3", "-m", "http.server", "{web_port}", "--bind", "127.0.0.1"]
    ports: [{{containerPort: {web_port}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: two}}
spec:
{node_name}  containers:
  - {{name: a, image: busybox, command: ["sleep", "3600"]}}
  - {{name: b, image: busybox, command: ["sleep", "3600"]}}
"#
    );
    k.apply(&manifest).ok();
    for pod in ["talker", "web", "two"] {
        k.run(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{pod}"),
            "--timeout=30s",
        ])
        .ok();
    }
}

/// `2024-01-02T03:04:05.123456789Z`, as the kubelet stamps log lines.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T'
        && (s.ends_with('Z') || s[19..].contains('+') || s[19..].contains('-'))
}

fn log_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("line ")).collect()
}

fn logs(k: &Kubectl) {
    let all = k.run(&["logs", "talker"]).ok();
    assert!(
        all.stdout.starts_with("line 0\n"),
        "kubectl {} logs: {}",
        k.version(),
        all.brief()
    );
    let tail = k.run(&["logs", "talker", "--tail=2"]).ok();
    assert_eq!(
        log_lines(&tail.stdout).len(),
        2,
        "--tail=2: {}",
        tail.brief()
    );
    let stamped = k.run(&["logs", "talker", "--tail=1", "--timestamps"]).ok();
    let (stamp, rest) = stamped
        .stdout
        .trim_end()
        .split_once(' ')
        .unwrap_or_default();
    assert!(
        is_rfc3339(stamp) && rest.starts_with("line "),
        "--timestamps: {}",
        stamped.brief()
    );
    // -f: lines written after kubectl started arrive while it runs.
    let last: u64 = log_lines(&k.run(&["logs", "talker", "--tail=1"]).ok().stdout)
        .first()
        .and_then(|l| l.trim_start_matches("line ").trim().parse().ok())
        .unwrap_or(0);
    let mut follow = match k.spawn(&["logs", "-f", "talker", "--tail=1"]) {
        Ok(r) => r,
        Err(e) => panic!("kubectl logs -f: {e}"),
    };
    let later = format!("line {}", last + 5);
    let seen = follow.wait_for_line(Duration::from_secs(15), |l| l == later);
    assert!(
        seen.is_some(),
        "kubectl {} logs -f never showed {later:?}: {}",
        k.version(),
        follow.describe()
    );
    assert!(follow.is_running(), "logs -f keeps following");
}

/// Returns how long `exec -- echo hi` took.
fn exec(k: &Kubectl) -> Duration {
    let started = Instant::now();
    let hi = k.run(&["exec", "talker", "--", "echo", "hi"]).ok();
    let took = started.elapsed();
    assert_eq!(
        hi.stdout,
        "hi\n",
        "kubectl {} exec: {}",
        k.version(),
        hi.brief()
    );
    let failed = k.run(&["exec", "talker", "--", "sh", "-c", "echo oops >&2; exit 3"]);
    assert_eq!(
        failed.code,
        3,
        "kubectl {} exec exit code: {}",
        k.version(),
        failed.brief()
    );
    assert!(failed.stderr.contains("oops"), "stderr: {}", failed.brief());
    let piped = k
        .run_stdin(
            &["exec", "-i", "talker", "--", "tr", "a-z", "A-Z"],
            "piped in\n",
        )
        .ok();
    assert_eq!(piped.stdout, "PIPED IN\n", "exec -i: {}", piped.brief());
    took
}

fn attach(k: &Kubectl) {
    let mut attached = match k.spawn(&["attach", "talker"]) {
        Ok(r) => r,
        Err(e) => panic!("kubectl attach: {e}"),
    };
    let seen = attached.wait_for_line(Duration::from_secs(15), |l| l.starts_with("line "));
    assert!(
        seen.is_some(),
        "kubectl {} attach showed no output: {}",
        k.version(),
        attached.describe()
    );
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

fn port_forward(k: &Kubectl, web_port: u16) {
    let local = free_port();
    let mapping = format!("{local}:{web_port}");
    let mut pf = match k.spawn(&["port-forward", "pod/web", &mapping]) {
        Ok(r) => r,
        Err(e) => panic!("kubectl port-forward: {e}"),
    };
    let ready = pf.wait_for_line(Duration::from_secs(20), |l| l.contains("Forwarding from"));
    assert!(ready.is_some(), "port-forward: {}", pf.describe());
    for attempt in 0..2 {
        let answer = eventually(Duration::from_secs(10), || http_get(local));
        assert!(
            answer.starts_with("HTTP/1.0 200"),
            "kubectl {} port-forward, request {attempt}: {answer}",
            k.version()
        );
    }
}

fn errors(k: &Kubectl) {
    k.run(&["logs", "nope"])
        .failed()
        .stderr_has("pods \"nope\" not found");
    k.run(&["exec", "nope", "--", "true"])
        .failed()
        .stderr_has("pods \"nope\" not found");
    k.run(&["logs", "talker", "-c", "other"])
        .failed()
        .stderr_has("container other is not valid for pod talker");
    k.run(&["exec", "talker", "-c", "other", "--", "true"])
        .failed()
        .stderr_has("container other is not valid for pod talker");
    // kubectl picks a container itself; the raw API says why it must.
    k.run(&["get", "--raw", "/api/v1/namespaces/default/pods/two/log"])
        .failed()
        .stderr_has("a container name must be specified for pod two, choose one of: [a b]");
}

/// `logs --previous` shows the run before the last restart, the current run does not.
fn previous(k: &Kubectl) {
    let manifest = r#"apiVersion: v1
kind: Pod
metadata: {name: restarter}
spec:
  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c", "echo run started; sleep 1; exit 1"]
"#;
    k.apply(manifest).ok();
    eventually(SETTLE, || {
        let pod = k.get_json(&["pod", "restarter"]);
        let restarts = pod
            .pointer("/status/containerStatuses/0/restartCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        (restarts >= 1)
            .then_some(())
            .ok_or(format!("restarts: {restarts}"))
    });
    let before = k.run(&["logs", "restarter", "--previous"]).ok();
    assert!(
        before.stdout.contains("run started"),
        "kubectl {} logs --previous: {}",
        k.version(),
        before.brief()
    );
    k.run(&["delete", "pod", "restarter", "--grace-period=1"])
        .ok();
}

fn process_streams() -> String {
    let node = match Node::start_with(&["--runtime", "process"]) {
        Ok(n) => n,
        Err(e) => panic!("node did not start: {e}"),
    };
    let web_port = free_port();
    let new = client(NEW, &node.kubeconfig());
    let old = client(OLD, &node.kubeconfig());
    create_pods(&new, None, web_port);
    previous(&new);
    let mut notes = Vec::new();
    for k in [&old, &new] {
        logs(k);
        let took = exec(k);
        notes.push(format!("exec {} {} ms", k.version(), took.as_millis()));
        attach(k);
        port_forward(k, web_port);
        errors(k);
    }
    notes.join(", ")
}

fn sim_streams() -> String {
    let node = match Node::start_with(&["--runtime", "sim", "--sim-start-delay", "0s"]) {
        Ok(n) => n,
        Err(e) => panic!("node did not start: {e}"),
    };
    let k = client(NEW, &node.kubeconfig());
    k.run(&["run", "sim", "--image=busybox"]).ok();
    k.run(&["wait", "--for=condition=Ready", "pod/sim", "--timeout=30s"])
        .ok();
    k.run(&["logs", "sim"])
        .failed()
        .stderr_has("the sim runtime runs no containers");
    k.run(&["exec", "sim", "--", "true"])
        .failed()
        .stderr_has("the sim runtime runs no containers");
    "logs and exec of a sim pod: 400".into()
}

fn mesh_streams() -> String {
    let mesh = match Mesh::start_with(3, &["--runtime", "process"]) {
        Ok(m) => m,
        Err(e) => panic!("a mesh of 3 did not start: {e}"),
    };
    let web_port = free_port();
    let first = client(NEW, &mesh.node(0).kubeconfig());
    // Every node must know node-1's Node (its address) before proxying to it.
    for i in 0..3 {
        let api = mesh.node(i).api();
        eventually(SETTLE, || {
            let (nodes, _) = api.list("/api/v1/nodes");
            (nodes.len() == 3).then_some(()).ok_or(format!(
                "node-{} sees {} Nodes",
                i + 1,
                nodes.len()
            ))
        });
    }
    create_pods(&first, Some("node-1"), web_port);
    let pod: Value = first.get_json(&["pod", "talker"]);
    assert_eq!(pod["spec"]["nodeName"], "node-1");
    let mut notes = Vec::new();
    for i in [1usize, 2] {
        for version in [OLD, NEW] {
            let k = client(version, &mesh.node(i).kubeconfig());
            let all = k.run(&["logs", "talker", "--tail=1"]).ok();
            assert_eq!(
                log_lines(&all.stdout).len(),
                1,
                "logs via node-{}: {}",
                i + 1,
                all.brief()
            );
            let took = exec(&k);
            notes.push(format!(
                "exec {version} via node-{} {} ms",
                i + 1,
                took.as_millis()
            ));
            port_forward(&k, web_port);
            k.run(&["logs", "talker", "-c", "other"])
                .failed()
                .stderr_has("container other is not valid for pod talker");
        }
    }
    notes.join(", ")
}

#[test]
fn pod_streams_process_runtime() {
    run_recorded(
        "pod_streams_process_runtime",
        &format!("kubectl-{OLD}+{NEW}"),
        process_streams,
    );
}

#[test]
fn pod_streams_sim_runtime_is_unsupported() {
    run_recorded(
        "pod_streams_sim_runtime_is_unsupported",
        &format!("kubectl-{NEW}"),
        sim_streams,
    );
}

#[test]
fn mesh_pod_streams_proxied_to_the_pods_node() {
    run_recorded(
        "mesh_pod_streams_proxied_to_the_pods_node",
        &format!("kubectl-{OLD}+{NEW}"),
        mesh_streams,
    );
}
