//! Jobs and CronJobs with real kubectl 1.33 on a node with `--runtime sim`, whose
//! containers exit after the `sim.beemesh.io/complete-after` annotation's delay (with the
//! `sim.beemesh.io/exit-code` annotation's code): a Job of 3 completions, 2 at a time, is
//! `Complete` (`kubectl wait --for=condition=complete` returns, `kubectl get jobs` shows
//! 3/3 and a duration) and never ran more than 2 pods at once; an Indexed Job reports
//! `completedIndexes`; a Job whose pods exit 1 is `Failed` with `BackoffLimitExceeded`
//! after backoffLimit + 1 failures; a CronJob `*/1 * * * *` creates its Job at the next
//! minute, named `<cronjob>-<minutes since epoch>`.

use std::time::Duration;

use beemesh_conformance::{Kubectl, Node, eventually, run_recorded, skip};
use serde_json::{Value, json};

const KUBECTL: &str = "1.33";

fn node_and_kubectl() -> (Node, Kubectl) {
    let node = match Node::start_with(&["--runtime", "sim"]) {
        Ok(n) => n,
        Err(e) => panic!("node did not start: {e}"),
    };
    let k = match Kubectl::new(KUBECTL, &node.kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    };
    (node, k)
}

fn job(name: &str, spec: Value, exit_code: i32) -> String {
    let mut job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {
            "metadata": {"annotations": {"sim.beemesh.io/complete-after": "1s",
                                         "sim.beemesh.io/exit-code": exit_code.to_string()}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "work", "image": "busybox:1.36"}]}}},
    });
    if let (Some(s), Some(extra)) = (job["spec"].as_object_mut(), spec.as_object()) {
        s.extend(extra.clone());
    }
    job.to_string()
}

/// RFC 3339 times as stored (`…Z`, whole seconds) compare as strings; truncation never
/// makes a later start look earlier than a finish.
fn time(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn job_pods(k: &Kubectl, name: &str) -> Vec<Value> {
    k.get_json(&[
        "pods",
        "-l",
        &format!("batch.kubernetes.io/job-name={name}"),
    ])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn condition<'a>(job: &'a Value, kind: &str) -> &'a Value {
    job["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

fn job_completes() -> String {
    let (_node, k) = node_and_kubectl();
    k.create(&job("work", json!({"completions": 3, "parallelism": 2}), 0))
        .ok();
    let started = std::time::Instant::now();
    k.run(&[
        "wait",
        "--for=condition=complete",
        "job/work",
        "--timeout=90s",
    ])
    .ok()
    .stdout_has("job.batch/work condition met");
    let took = started.elapsed();
    let out = k.run(&["get", "jobs", "work"]).ok();
    let table = out.table();
    assert_eq!(table.cell("work", "STATUS"), "Complete", "{}", out.stdout);
    assert_eq!(table.cell("work", "COMPLETIONS"), "3/3", "{}", out.stdout);
    assert!(
        table.cell("work", "DURATION").ends_with('s'),
        "{}",
        out.stdout
    );
    let j = k.get_json(&["job", "work"]);
    assert_eq!(j["status"]["succeeded"], 3, "{j}");
    assert_eq!(condition(&j, "SuccessCriteriaMet")["status"], "True", "{j}");
    assert_eq!(condition(&j, "Complete")["reason"], "CompletionsReached");
    assert!(j["status"]["completionTime"].is_string(), "{j}");
    assert!(j["status"].get("active").is_none(), "{j}");

    // Three pods, each Succeeded, owned by the Job, never more than two running at once.
    let pods = job_pods(&k, "work");
    assert_eq!(pods.len(), 3, "{pods:?}");
    let mut spans = Vec::new();
    for p in &pods {
        assert_eq!(p["status"]["phase"], "Succeeded", "{p}");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Job");
        assert_eq!(p["metadata"]["labels"]["job-name"], "work");
        let t = &p["status"]["containerStatuses"][0]["state"]["terminated"];
        spans.push((time(&t["startedAt"]), time(&t["finishedAt"])));
    }
    for (i, (s, _)) in spans.iter().enumerate() {
        let overlapping = spans.iter().filter(|(a, b)| a <= s && s < b).count();
        assert!(
            overlapping <= 2,
            "pod {i} started while {overlapping} ran: {spans:?}"
        );
    }

    // Indexed: every index completes once; the pods carry their index and hostname.
    k.create(&job(
        "indexed",
        json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
        0,
    ))
    .ok();
    k.run(&[
        "wait",
        "--for=condition=complete",
        "job/indexed",
        "--timeout=90s",
    ])
    .ok();
    let j = k.get_json(&["job", "indexed"]);
    assert_eq!(j["status"]["completedIndexes"], "0-2", "{j}");
    let mut hosts: Vec<String> = job_pods(&k, "indexed")
        .iter()
        .map(|p| p["spec"]["hostname"].as_str().unwrap_or("").to_string())
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["indexed-0", "indexed-1", "indexed-2"]);

    // ttlSecondsAfterFinished: the finished Job and its pod are deleted.
    k.create(&job("brief", json!({"ttlSecondsAfterFinished": 1}), 0))
        .ok();
    k.run(&[
        "wait",
        "--for=condition=complete",
        "job/brief",
        "--timeout=60s",
    ])
    .ok();
    eventually(Duration::from_secs(30), || {
        let out = k.run(&["get", "job", "brief"]);
        (out.code == 1 && out.stderr.contains("NotFound"))
            .then_some(())
            .ok_or(out.stdout.clone())
    });
    eventually(Duration::from_secs(30), || {
        let left = job_pods(&k, "brief");
        left.is_empty().then_some(()).ok_or(format!("{left:?}"))
    });
    format!(
        "3 completions, 2 in parallel, Complete in {:.1} s; an Indexed Job completed 0-2; \
         ttlSecondsAfterFinished 1 removed a finished Job and its pod",
        took.as_secs_f64()
    )
}

#[test]
fn job_runs_to_completion() {
    run_recorded(
        "job_runs_to_completion",
        &format!("kubectl-{KUBECTL}"),
        job_completes,
    );
}

fn job_fails() -> String {
    let (_node, k) = node_and_kubectl();
    k.create(&job("broken", json!({"backoffLimit": 1}), 1)).ok();
    let started = std::time::Instant::now();
    k.run(&[
        "wait",
        "--for=condition=failed",
        "job/broken",
        "--timeout=90s",
    ])
    .ok()
    .stdout_has("job.batch/broken condition met");
    let took = started.elapsed();
    let j = k.get_json(&["job", "broken"]);
    let failed = condition(&j, "Failed");
    assert_eq!(failed["reason"], "BackoffLimitExceeded", "{j}");
    assert_eq!(
        failed["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(
        condition(&j, "FailureTarget")["reason"],
        "BackoffLimitExceeded"
    );
    assert_eq!(j["status"]["failed"], 2, "{j}");
    assert!(j["status"].get("succeeded").is_none(), "{j}");
    let pods = job_pods(&k, "broken");
    assert_eq!(pods.len(), 2, "one pod and one replacement: {pods:?}");
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Failed"));
    let out = k.run(&["get", "jobs", "broken"]).ok();
    assert_eq!(
        out.table().cell("broken", "STATUS"),
        "Failed",
        "{}",
        out.stdout
    );
    let described = k.run(&["describe", "job", "broken"]).ok();
    assert!(
        described.stdout.contains("BackoffLimitExceeded"),
        "{}",
        described.stdout
    );

    // podFailurePolicy: exit code 3 of container `work` fails the Job at once.
    let policy = json!({"backoffLimit": 6, "podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "work", "operator": "In", "values": [3]}}]}});
    k.create(&job("fatal", policy, 3)).ok();
    let fatal_started = std::time::Instant::now();
    k.run(&[
        "wait",
        "--for=condition=failed",
        "job/fatal",
        "--timeout=60s",
    ])
    .ok();
    let fatal_took = fatal_started.elapsed();
    let j = k.get_json(&["job", "fatal"]);
    let failed = condition(&j, "Failed");
    assert_eq!(failed["reason"], "PodFailurePolicy", "{j}");
    let message = failed["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("Container work for pod default/fatal-")
            && message.ends_with("failed with exit code 3 matching FailJob rule at index 0"),
        "{j}"
    );
    assert_eq!(job_pods(&k, "fatal").len(), 1, "no replacement pod");
    format!(
        "Failed (BackoffLimitExceeded) after 2 pod failures in {:.1} s (one 10 s backoff); \
         a podFailurePolicy FailJob rule failed a Job in {:.1} s",
        took.as_secs_f64(),
        fatal_took.as_secs_f64()
    )
}

#[test]
fn job_over_its_backoff_limit_fails() {
    run_recorded(
        "job_over_its_backoff_limit_fails",
        &format!("kubectl-{KUBECTL}"),
        job_fails,
    );
}

/// How long one scheduled minute may take to show up (a minute plus slack).
const MINUTE: Duration = Duration::from_secs(80);

fn cronjob_schedules() -> String {
    let (_node, k) = node_and_kubectl();
    let template: Value = serde_json::from_str(&job("unused", json!({}), 0))
        .unwrap_or_else(|e| panic!("job manifest: {e}"));
    let cronjob = json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "tick"},
        "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": "Forbid",
                 "jobTemplate": {"metadata": {"labels": {"from": "tick"}},
                                 "spec": template["spec"].clone()}},
    });
    k.create(&cronjob.to_string()).ok();
    let created = std::time::Instant::now();

    // A Job made by hand from the CronJob's template runs too.
    k.run(&["create", "job", "by-hand", "--from=cronjob/tick"])
        .ok()
        .stdout_has("job.batch/by-hand created");
    k.run(&[
        "wait",
        "--for=condition=complete",
        "job/by-hand",
        "--timeout=60s",
    ])
    .ok();
    let by_hand = k.get_json(&["job", "by-hand"]);
    assert_eq!(
        by_hand["metadata"]["ownerReferences"][0]["kind"], "CronJob",
        "{by_hand}"
    );

    // The scheduled one: `tick-<minutes since the epoch>`, annotated with its time.
    let scheduled = eventually(MINUTE, || {
        let jobs = k.get_json(&["jobs", "-l", "from=tick"]);
        jobs["items"]
            .as_array()
            .and_then(|js| {
                js.iter()
                    .find(|j| j["metadata"]["name"].as_str() != Some("by-hand"))
                    .cloned()
            })
            .ok_or(format!("no scheduled Job yet: {jobs}"))
    });
    let first_after = created.elapsed();
    let name = scheduled["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let minutes: i64 = name
        .strip_prefix("tick-")
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("scheduled Job name {name}"));
    let stamp =
        scheduled["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
            .as_str()
            .unwrap_or("")
            .to_string();
    assert!(stamp.ends_with(":00Z"), "{scheduled}");
    assert_eq!(scheduled["metadata"]["ownerReferences"][0]["name"], "tick");
    k.run(&[
        "wait",
        "--for=condition=complete",
        &format!("job/{name}"),
        "--timeout=60s",
    ])
    .ok();
    let cj = eventually(Duration::from_secs(20), || {
        let cj = k.get_json(&["cronjob", "tick"]);
        (cj["status"]["lastSuccessfulTime"].is_string() && cj["status"]["active"].is_null())
            .then_some(cj.clone())
            .ok_or(format!("status not settled: {cj}"))
    });
    assert_eq!(cj["status"]["lastScheduleTime"], stamp.as_str(), "{cj}");
    let out = k.run(&["get", "cronjob", "tick"]).ok();
    let t = out.table();
    assert_eq!(t.cell("tick", "SCHEDULE"), "*/1 * * * *", "{}", out.stdout);
    assert_ne!(t.cell("tick", "LAST SCHEDULE"), "<none>", "{}", out.stdout);
    format!(
        "first scheduled Job {name} ({minutes} min since epoch, {stamp}) {:.0} s after create; \
         create job --from=cronjob completes",
        first_after.as_secs_f64()
    )
}

#[test]
fn cronjob_creates_jobs_on_schedule() {
    run_recorded(
        "cronjob_creates_jobs_on_schedule",
        &format!("kubectl-{KUBECTL}"),
        cronjob_schedules,
    );
}
