//! Pods run by a node started with `--runtime process` (host processes, ADR 0010), through
//! real kubectl 1.33 and the host's /bin/sh:
//! - env from a ConfigMap, a Secret (`envFrom` with a prefix too) and the downward API, a
//!   `$(VAR)` reference in args, configMap, secret (items, defaultMode) and downwardAPI
//!   volumes reach the process: `kubectl logs` shows them, and the pod is Running and Ready
//!   with podIP = hostIP; `kubectl exec` runs in its environment (stdin piped, exit code
//!   reported); `logs -f` follows until the container exits; `attach -i` feeds a
//!   `stdin: true` container;
//! - a missing ConfigMap keeps the container waiting with `CreateContainerConfigError` and
//!   upstream's message, and the pod starts once the ConfigMap exists;
//! - a crashing command shows CrashLoopBackOff with a growing restart count, its
//!   lastState, `kubectl logs --previous` and the kubelet's Pulled/Created/Started/BackOff
//!   events;
//! - a `restartPolicy: Never` pod that exits 0 reaches Succeeded (its log still readable);
//! - init containers run first (Initialized False meanwhile) and share an emptyDir with the
//!   app; a failing one under `Never` fails the pod (`Init:Error`);
//! - `kubectl delete` sends SIGTERM (a trap sees it) and waits no longer than needed; a
//!   process ignoring it is killed after its grace period while other pods start;
//! - a failing readiness probe keeps the pod not Ready until it passes; a failing liveness
//!   probe restarts the container, with the kubelet's `Unhealthy` and `Killing` events.

use std::time::{Duration, Instant};

use beemesh_conformance::{Kubectl, Node, run_recorded, skip};
use serde_json::Value;

const KUBECTL: &str = "1.33";
/// `beemesh_conformance::Node`'s `--node-name`.
const NODE: &str = "conformance";

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

fn env_volumes_and_logs(k: &Kubectl) -> String {
    k.run(&[
        "create",
        "configmap",
        "app",
        "--from-literal=mode=dev",
        "--from-literal=color=blue",
    ])
    .ok();
    k.run(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=token=s3cret",
    ])
    .ok();
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: envpod
  labels: {{app: web}}
spec:
  nodeName: {NODE}
  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c", "echo MODE=$MODE TOKEN=$TOKEN; echo NAME=$MY_NAME NS=$MY_NS APP=$MY_APP; echo CFG_color=$CFG_color; echo FILE=`cat etc/app/mode`; echo ARG=$0; echo SECRET=`cat etc/secret/tok` MODE_BITS=`stat -L -c %a etc/secret/tok`; echo LABELS=`cat etc/pod/labels`; exec sleep 3600", "$(MODE)-arg"]
    env:
    - name: MODE
      valueFrom: {{configMapKeyRef: {{name: app, key: mode}}}}
    - name: TOKEN
      valueFrom: {{secretKeyRef: {{name: creds, key: token}}}}
    - name: MY_NAME
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
    - name: MY_NS
      valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}
    - name: MY_APP
      valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['app']"}}}}
    envFrom:
    - prefix: CFG_
      configMapRef: {{name: app}}
    volumeMounts:
    - {{name: cfg, mountPath: /etc/app}}
    - {{name: sec, mountPath: /etc/secret}}
    - {{name: pod, mountPath: /etc/pod}}
  volumes:
  - name: cfg
    configMap: {{name: app}}
  - name: sec
    secret: {{secretName: creds, defaultMode: 0400, items: [{{key: token, path: tok}}]}}
  - name: pod
    downwardAPI: {{items: [{{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}]}}
"#
    );
    k.apply(&manifest).ok();
    k.run(&[
        "wait",
        "--for=condition=Ready",
        "pod/envpod",
        "--timeout=30s",
    ])
    .ok();
    let pod = k.get_json(&["pod", "envpod"]);
    assert_eq!(pod["status"]["phase"], "Running", "{}", pod["status"]);
    assert_eq!(
        pod["status"]["podIP"], pod["status"]["hostIP"],
        "{}",
        pod["status"]
    );
    let id = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap_or("");
    assert!(id.starts_with("process://"), "{id}");
    // The log appears as the process writes it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let out = k.run(&["logs", "envpod"]).ok();
        if out.stdout.contains("LABELS=") || Instant::now() > deadline {
            break out.stdout;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        logs,
        "MODE=dev TOKEN=s3cret\nNAME=envpod NS=default APP=web\nCFG_color=blue\nFILE=dev\nARG=dev-arg\nSECRET=s3cret MODE_BITS=400\nLABELS=app=\"web\"\n"
    );
    let tail = k.run(&["logs", "envpod", "--tail=1", "--timestamps"]).ok();
    assert!(
        tail.stdout.ends_with(" LABELS=app=\"web\"\n") && tail.stdout.lines().count() == 1,
        "{}",
        tail.stdout
    );
    // exec runs in the container's environment and reports the exit code.
    let exec = k.run(&[
        "exec",
        "envpod",
        "--",
        "/bin/sh",
        "-c",
        "echo exec MODE=$MODE; exit 3",
    ]);
    assert!(exec.stdout.contains("exec MODE=dev"), "{}", exec.brief());
    assert!(
        exec.stderr.contains("command terminated with exit code 3"),
        "{}",
        exec.brief()
    );
    k.run(&["exec", "-i", "envpod", "--", "cat"]).ok();
    let piped = k.run_stdin(
        &["exec", "-i", "envpod", "--", "/bin/sh", "-c", "tr a-z A-Z"],
        "shout\n",
    );
    assert_eq!(piped.stdout, "SHOUT\n", "{}", piped.brief());
    k.run(&["delete", "pod", "envpod", "--grace-period=1"]).ok();
    "env/volume pod Ready, logs as written".to_string()
}

/// `kubectl logs -f` follows a running container until it exits; `kubectl attach -i`
/// feeds a `stdin: true` container and shows what it prints.
fn follow_and_attach(k: &Kubectl) {
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: counter}}
spec:
  nodeName: {NODE}
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c", "sleep 1; for i in 1 2 3; do echo line $i; sleep 0.5; done"]
---
apiVersion: v1
kind: Pod
metadata: {{name: echoer}}
spec:
  nodeName: {NODE}
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    stdin: true
    stdinOnce: true
    command: ["/bin/sh", "-c", "while read l; do echo got $l; done; echo bye"]
"#
    );
    k.apply(&manifest).ok();
    k.run(&[
        "wait",
        "--for=condition=Ready",
        "pod/counter",
        "--timeout=30s",
    ])
    .ok();
    let t = Instant::now();
    let followed = k.run(&["logs", "-f", "counter"]).ok();
    assert_eq!(followed.stdout, "line 1\nline 2\nline 3\n");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    k.run(&[
        "wait",
        "--for=condition=Ready",
        "pod/echoer",
        "--timeout=30s",
    ])
    .ok();
    let attached = k.run_stdin(&["attach", "-i", "echoer"], "hi\nthere\n");
    assert!(
        attached.stdout.contains("got hi\ngot there\n"),
        "{}",
        attached.brief()
    );
    k.run(&["delete", "pod", "counter", "echoer", "--grace-period=1"])
        .ok();
}

/// Init containers run first and share an emptyDir with the app; a failing one under
/// `restartPolicy: Never` fails the pod.
fn init_containers(k: &Kubectl) {
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: inited}}
spec:
  nodeName: {NODE}
  volumes: [{{name: work, emptyDir: {{}}}}]
  initContainers:
  - name: prep
    image: busybox
    command: ["/bin/sh", "-c", "sleep 1; echo prepared > work/msg"]
    volumeMounts: [{{name: work, mountPath: /work}}]
  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c", "cat work/msg; exec sleep 3600"]
    volumeMounts: [{{name: work, mountPath: /work}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: badinit}}
spec:
  nodeName: {NODE}
  restartPolicy: Never
  initContainers:
  - name: prep
    image: busybox
    command: ["/bin/sh", "-c", "exit 2"]
  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c", "echo never"]
"#
    );
    k.apply(&manifest).ok();
    let initializing = wait_pod(k, "inited", Duration::from_secs(20), |p| {
        p.pointer("/status/initContainerStatuses/0/state/running")
            .is_some()
    });
    let init_cond = initializing["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Initialized").cloned())
        .unwrap_or_default();
    assert_eq!(init_cond["status"], "False", "{init_cond}");
    assert_eq!(
        init_cond["reason"], "ContainersNotInitialized",
        "{init_cond}"
    );
    k.run(&[
        "wait",
        "--for=condition=Ready",
        "pod/inited",
        "--timeout=30s",
    ])
    .ok();
    let pod = k.get_json(&["pod", "inited"]);
    assert_eq!(
        pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"], "Completed",
        "{}",
        pod["status"]
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !k.run(&["logs", "inited"]).ok().stdout.contains("prepared") {
        assert!(
            Instant::now() < deadline,
            "the app never read the init container's file"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let failed = wait_pod(k, "badinit", Duration::from_secs(20), |p| {
        p["status"]["phase"] == "Failed"
    });
    assert_eq!(
        failed["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"], 2,
        "{}",
        failed["status"]
    );
    let table = k.run(&["get", "pod", "badinit"]).ok();
    assert_eq!(table.table().cell("badinit", "STATUS"), "Init:Error");
    k.run(&["delete", "pod", "inited", "badinit", "--grace-period=1"])
        .ok();
}

fn missing_config_then_created(k: &Kubectl) {
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: needs-cm}}
spec:
  nodeName: {NODE}
  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c", "echo $V; exec sleep 3600"]
    env:
    - name: V
      valueFrom: {{configMapKeyRef: {{name: later, key: v}}}}
"#
    );
    k.apply(&manifest).ok();
    let pod = wait_pod(k, "needs-cm", Duration::from_secs(20), |p| {
        waiting_reason(p) == "CreateContainerConfigError"
    });
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        "configmap \"later\" not found"
    );
    let table = k.run(&["get", "pod", "needs-cm"]).ok();
    assert_eq!(
        table.table().cell("needs-cm", "STATUS"),
        "CreateContainerConfigError"
    );
    k.run(&["create", "configmap", "later", "--from-literal=v=now"])
        .ok();
    k.run(&[
        "wait",
        "--for=condition=Ready",
        "pod/needs-cm",
        "--timeout=30s",
    ])
    .ok();
    k.run(&["delete", "pod", "needs-cm", "--grace-period=1"])
        .ok();
}

fn crash_loop(k: &Kubectl) -> String {
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: crasher}}
spec:
  nodeName: {NODE}
  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c", "echo boom; exit 3"]
"#
    );
    k.apply(&manifest).ok();
    let started = Instant::now();
    let pod = wait_pod(k, "crasher", Duration::from_secs(30), |p| {
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
    let events = k.get_json(&["events", "--field-selector", "involvedObject.name=crasher"]);
    let reasons: Vec<&str> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["reportingComponent"] == "kubelet")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    for wanted in ["Pulled", "Created", "Started", "BackOff"] {
        assert!(reasons.contains(&wanted), "{wanted} missing: {reasons:?}");
    }
    let table = k.run(&["get", "pod", "crasher"]).ok();
    assert_eq!(table.table().cell("crasher", "STATUS"), "CrashLoopBackOff");
    // The 10 s back-off passes and it runs (and crashes) again.
    let pod = wait_pod(k, "crasher", Duration::from_secs(30), |p| restarts(p) >= 2);
    let second = started.elapsed();
    assert!(restarts(&pod) >= 2);
    k.run(&["logs", "crasher", "--previous"])
        .ok()
        .stdout_has("boom");
    k.run(&["delete", "pod", "crasher", "--grace-period=1"])
        .ok();
    format!(
        "CrashLoopBackOff, restartCount 2 after {:.1} s",
        second.as_secs_f64()
    )
}

fn never_succeeds(k: &Kubectl) {
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: once}}
spec:
  nodeName: {NODE}
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c", "echo done"]
"#
    );
    k.apply(&manifest).ok();
    let pod = wait_pod(k, "once", Duration::from_secs(20), |p| {
        p["status"]["phase"] == "Succeeded"
    });
    let c = &pod["status"]["containerStatuses"][0];
    assert_eq!(c["state"]["terminated"]["reason"], "Completed", "{c}");
    assert_eq!(c["state"]["terminated"]["exitCode"], 0, "{c}");
    let table = k.run(&["get", "pod", "once"]).ok();
    assert_eq!(table.table().cell("once", "STATUS"), "Completed");
    k.run(&["logs", "once"]).ok().stdout_has("done");
    k.run(&["delete", "pod", "once"]).ok();
}

fn graceful_delete(k: &Kubectl, node: &Node) -> String {
    let mark = node.scratch_dir().join("term-mark");
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: graceful}}
spec:
  nodeName: {NODE}
  terminationGracePeriodSeconds: 20
  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c", "trap 'echo TERM > $MARK; exit 0' TERM; echo $$ > $MARK.pid; while true; do sleep 0.2; done"]
    env: [{{name: MARK, value: "{}"}}]
"#,
        mark.display()
    );
    k.apply(&manifest).ok();
    k.run(&[
        "wait",
        "--for=condition=Ready",
        "pod/graceful",
        "--timeout=30s",
    ])
    .ok();
    let pid_file = mark.with_extension("pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pid_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(!pid.is_empty(), "the process never wrote its pid");
    let t = Instant::now();
    k.run(&["delete", "pod", "graceful", "--timeout=30s"])
        .ok()
        .stdout_has("pod \"graceful\" deleted");
    let took = t.elapsed();
    assert_eq!(
        std::fs::read_to_string(&mark).unwrap_or_default().trim(),
        "TERM",
        "the trap did not see SIGTERM"
    );
    assert!(took < Duration::from_secs(15), "delete took {took:?}");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} still runs"
    );
    k.run(&["get", "pod", "graceful"])
        .failed()
        .stderr_has("NotFound");
    format!(
        "delete with SIGTERM trap returned in {:.1} s",
        took.as_secs_f64()
    )
}

/// A process that ignores SIGTERM is killed when its grace period is over, and the node
/// keeps starting other pods meanwhile.
fn stubborn_delete(k: &Kubectl) -> String {
    let pod = |name: &str, script: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: {NODE}
  terminationGracePeriodSeconds: 6
  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c", "{script}"]
"#
        )
    };
    k.apply(&pod(
        "stubborn",
        "trap '' TERM; while true; do sleep 0.2; done",
    ))
    .ok();
    k.run(&[
        "wait",
        "--for=condition=Ready",
        "pod/stubborn",
        "--timeout=30s",
    ])
    .ok();
    let t = Instant::now();
    k.run(&["delete", "pod", "stubborn", "--wait=false"]).ok();
    k.apply(&pod("meanwhile", "exec sleep 3600")).ok();
    k.run(&[
        "wait",
        "--for=condition=Ready",
        "pod/meanwhile",
        "--timeout=4s",
    ])
    .ok();
    let ready_meanwhile = t.elapsed();
    k.run(&["wait", "--for=delete", "pod/stubborn", "--timeout=20s"])
        .ok();
    let gone = t.elapsed();
    assert!(
        gone >= Duration::from_secs(5),
        "killed before its grace period: {gone:?}"
    );
    k.run(&["delete", "pod", "meanwhile", "--grace-period=1"])
        .ok();
    format!(
        "TERM-ignoring pod gone {:.1} s after delete (grace 6 s), another Ready {:.1} s in",
        gone.as_secs_f64(),
        ready_meanwhile.as_secs_f64()
    )
}

fn probes(k: &Kubectl, node: &Node) -> String {
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: probed}}
spec:
  nodeName: {NODE}
  containers:
  - name: main
    image: busybox
    command: ["/bin/sh", "-c", "exec sleep 3600"]
    readinessProbe:
      exec: {{command: ["/bin/sh", "-c", "test -f ready"]}}
      periodSeconds: 1
  - name: flaky
    image: busybox
    command: ["/bin/sh", "-c", "exec sleep 3600"]
    livenessProbe:
      exec: {{command: ["/bin/sh", "-c", "test -f alive"]}}
      periodSeconds: 1
      failureThreshold: 2
"#
    );
    k.apply(&manifest).ok();
    let flaky_restarted = |p: &Value| {
        p.pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["name"] == "flaky"))
            .and_then(|c| c["restartCount"].as_u64())
            .unwrap_or(0)
            >= 1
    };
    let t = Instant::now();
    let pod = wait_pod(k, "probed", Duration::from_secs(30), flaky_restarted);
    let restarted_after = t.elapsed();
    assert_eq!(pod["status"]["phase"], "Running", "{}", pod["status"]);
    let ready = pod["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned())
        .unwrap_or_default();
    assert_eq!(ready["status"], "False", "{ready}");
    assert!(
        ready["message"].as_str().unwrap_or("").contains("main"),
        "{ready}"
    );
    let flaky = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "flaky").cloned())
        .unwrap_or_default();
    assert!(flaky["lastState"]["terminated"].is_object(), "{flaky}");
    let events = k.get_json(&["events", "--field-selector", "involvedObject.name=probed"]);
    let reasons: Vec<String> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}/{}: {}",
                e["reportingComponent"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r
                == "kubelet/Killing: Container flaky failed liveness probe, will be restarted"),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with(
            "kubelet/Unhealthy: Readiness probe failed: command terminated with exit code 1"
        )),
        "{reasons:?}"
    );
    // The readiness check passes once the file exists in the container's root.
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let root = node.data_dir().join("pods").join(&uid).join("containers");
    std::fs::write(root.join("main").join("ready"), "").ok();
    std::fs::write(root.join("flaky").join("alive"), "").ok();
    k.run(&[
        "wait",
        "--for=condition=Ready",
        "pod/probed",
        "--timeout=20s",
    ])
    .ok();
    k.run(&["delete", "pod", "probed", "--grace-period=1"]).ok();
    format!(
        "liveness restart {:.1} s after create",
        restarted_after.as_secs_f64()
    )
}

fn process_pods() -> String {
    let node = match Node::start_with(&["--runtime", "process"]) {
        Ok(n) => n,
        Err(e) => panic!("node did not start: {e}"),
    };
    let k = match Kubectl::new(KUBECTL, &node.kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    };
    let mut notes = vec![env_volumes_and_logs(&k)];
    follow_and_attach(&k);
    init_containers(&k);
    missing_config_then_created(&k);
    never_succeeds(&k);
    notes.push(graceful_delete(&k, &node));
    notes.push(stubborn_delete(&k));
    notes.push(probes(&k, &node));
    notes.push(crash_loop(&k));
    notes.join("; ")
}

#[test]
fn process_runtime_pods() {
    run_recorded(
        "process_runtime_pods",
        &format!("kubectl-{KUBECTL}"),
        process_pods,
    );
}
