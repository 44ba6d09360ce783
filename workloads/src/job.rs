//! The Job controller, as upstream's (1.31+): runs pods from `spec.template` until
//! `completions` succeed (at most `parallelism` at once; `Indexed` gives each pod its own
//! completion index), replaces failed pods with exponential backoff until more than
//! `backoffLimit` have failed, stops at `activeDeadlineSeconds`, honours `suspend`, and
//! deletes the finished Job after `ttlSecondsAfterFinished`. Status carries the counts
//! and the conditions `kubectl wait` and `kubectl get jobs` read: `SuccessCriteriaMet`
//! then `Complete`, or `FailureTarget` then `Failed`.
//!
//! Counts come from the Job's pods present on the replica (no `job-tracking` finalizer):
//! see ADR 0012. Each Job is reconciled only by its home node.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use beemesh_translator::deletion::Propagation;
use beemesh_translator::service::ObjectService;
use beemesh_translator::{ApiError, ResourceInfo};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::change_wait::wait_for_change;
use crate::controller_support::{
    Client, Expectations, controlled_by, controller_ref, deleting, is_active, is_ready, meta,
    phase, rfc3339, str_at, time_of,
};

/// The annotation and label carrying an Indexed Job pod's index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
const RESYNC: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(250);
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Upstream's DefaultJobPodFailureBackOff and MaxJobPodFailureBackOff.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(360);
/// Most pods created in one pass (upstream's MaxPodCreateDeletePerSync).
const MAX_CREATES: usize = 500;

/// What the controller reads from a Job's spec, defaults applied as upstream's.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub completions: Option<i64>,
    pub parallelism: i64,
    pub backoff_limit: i64,
    pub indexed: bool,
    pub suspend: bool,
    pub active_deadline: Option<i64>,
    pub ttl_after_finished: Option<i64>,
}

impl JobSpec {
    pub fn read(job: &Value) -> JobSpec {
        let int = |p: &str| job.pointer(p).and_then(Value::as_i64);
        // Upstream's defaulting: neither set means one completion, one at a time.
        let completions = match (int("/spec/completions"), int("/spec/parallelism")) {
            (None, None) => Some(1),
            (c, _) => c,
        };
        JobSpec {
            completions,
            parallelism: int("/spec/parallelism").unwrap_or(1).max(0),
            backoff_limit: int("/spec/backoffLimit").unwrap_or(6),
            indexed: str_at(job, "/spec/completionMode") == "Indexed",
            suspend: job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true),
            active_deadline: int("/spec/activeDeadlineSeconds"),
            ttl_after_finished: int("/spec/ttlSecondsAfterFinished"),
        }
    }
}

/// A pod's completion index, if it has a valid one.
fn index_of(pod: &Value) -> Option<i64> {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(COMPLETION_INDEX))
        .or_else(|| {
            pod.pointer("/metadata/labels")
                .and_then(|l| l.get(COMPLETION_INDEX))
        })
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .filter(|i: &i64| *i >= 0)
}

/// `0-2,5,7-8`: upstream's compressed form of `status.completedIndexes`.
pub fn format_indexes(set: &BTreeSet<i64>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        out.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

fn condition<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| str_at(c, "/type") == kind)
}

fn condition_true(status: &Value, kind: &str) -> bool {
    condition(status, kind).is_some_and(|c| str_at(c, "/status") == "True")
}

/// Sets a condition, keeping its lastTransitionTime when the status does not change.
fn set_condition(
    status: &mut Value,
    kind: &str,
    state: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    if !status.get("conditions").is_some_and(Value::is_array) {
        status["conditions"] = json!([]);
    }
    let Some(conditions) = status["conditions"].as_array_mut() else {
        return;
    };
    let new = |transition: &str| {
        json!({"type": kind, "status": state, "reason": reason, "message": message,
               "lastProbeTime": now, "lastTransitionTime": transition})
    };
    match conditions.iter_mut().find(|c| str_at(c, "/type") == kind) {
        Some(c) if str_at(c, "/status") == state && str_at(c, "/reason") == reason => {}
        Some(c) => {
            let transition = if str_at(c, "/status") == state {
                str_at(c, "/lastTransitionTime").to_string()
            } else {
                now.to_string()
            };
            *c = new(&transition);
        }
        None => conditions.push(new(now)),
    }
}

/// Whether the Job has finished (Complete or Failed), and when.
pub fn finished_at(job: &Value) -> Option<DateTime<Utc>> {
    let status = job.get("status")?;
    ["Complete", "Failed"].iter().find_map(|k| {
        condition(status, k)
            .filter(|c| str_at(c, "/status") == "True")
            .map(|c| time_of(c.get("lastTransitionTime")).unwrap_or_else(Utc::now))
    })
}

/// The latest time a failed pod stopped: its containers' finishedAt, else its creation.
fn failed_at(pod: &Value) -> Option<DateTime<Utc>> {
    let finished = ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|f| pod.get("status")?.get(*f)?.as_array())
        .flatten()
        .filter_map(|c| time_of(c.pointer("/state/terminated/finishedAt")))
        .max();
    finished.or_else(|| time_of(pod.pointer("/metadata/creationTimestamp")))
}

/// The first `podFailurePolicy` rule a failed pod matches: its action (`FailJob`,
/// `Ignore`, `Count`, `FailIndex`) and upstream's message for it. Exit codes are those of
/// containers (init containers first) that terminated non-zero.
pub fn failure_policy_match(job: &Value, pod: &Value) -> Option<(String, String)> {
    let rules = job.pointer("/spec/podFailurePolicy/rules")?.as_array()?;
    let (ns, name) = (meta(pod, "namespace"), meta(pod, "name"));
    let statuses: Vec<&Value> = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|f| pod.get("status")?.get(*f)?.as_array())
        .flatten()
        .collect();
    for (i, rule) in rules.iter().enumerate() {
        let action = str_at(rule, "/action");
        if let Some(req) = rule.get("onExitCodes") {
            let values: Vec<i64> = req
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            let wanted = str_at(req, "/containerName");
            let hit = statuses.iter().find_map(|c| {
                let code = c.pointer("/state/terminated/exitCode")?.as_i64()?;
                let name_ok = wanted.is_empty() || str_at(c, "/name") == wanted;
                let matches = match str_at(req, "/operator") {
                    "In" => values.contains(&code),
                    "NotIn" => !values.contains(&code),
                    _ => false,
                };
                (name_ok && code != 0 && matches).then(|| (str_at(c, "/name"), code))
            });
            if let Some((container, code)) = hit {
                return Some((
                    action.to_string(),
                    format!(
                        "Container {container} for pod {ns}/{name} failed with exit code {code} matching {action} rule at index {i}"
                    ),
                ));
            }
        } else if let Some(patterns) = rule.get("onPodConditions").and_then(Value::as_array) {
            let conditions = pod
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let hit = patterns.iter().find_map(|pat| {
                let want_status = match str_at(pat, "/status") {
                    "" => "True",
                    s => s,
                };
                conditions
                    .iter()
                    .find(|c| {
                        str_at(c, "/type") == str_at(pat, "/type")
                            && str_at(c, "/status") == want_status
                    })
                    .map(|c| str_at(c, "/type").to_string())
            });
            if let Some(kind) = hit {
                return Some((
                    action.to_string(),
                    format!(
                        "Pod {ns}/{name} has condition {kind} matching {action} rule at index {i}"
                    ),
                ));
            }
        }
    }
    None
}

/// Upstream's `pastBackoffLimitOnFailure`: under `restartPolicy: OnFailure` failed
/// containers restart in place, so their restarts in running or pending pods count
/// toward `backoffLimit` (any restart when it is 0).
fn past_backoff_limit_on_failure(job: &Value, spec: &JobSpec, pods: &[&Value]) -> bool {
    if str_at(job, "/spec/template/spec/restartPolicy") != "OnFailure" {
        return false;
    }
    let restarts: i64 = pods
        .iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending"))
        .flat_map(|p| {
            ["initContainerStatuses", "containerStatuses"]
                .iter()
                .filter_map(|f| p.get("status")?.get(*f)?.as_array())
                .flatten()
                .filter_map(|c| c.get("restartCount")?.as_i64())
                .collect::<Vec<_>>()
        })
        .sum();
    if spec.backoff_limit == 0 {
        restarts > 0
    } else {
        restarts >= spec.backoff_limit
    }
}

/// One pass's decision for a Job: its next status, which pods to create (their completion
/// indexes for Indexed Jobs) and delete, and when to look again.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub status: Value,
    pub create: Vec<Option<i64>>,
    pub delete: Vec<String>,
    pub recheck: Option<Duration>,
    /// Events to record: (type, reason, message).
    pub events: Vec<(&'static str, String, String)>,
}

/// Upstream's syncJob for one Job, pure: `pods` are the Job's own pods.
pub fn plan(job: &Value, pods: &[&Value], now: DateTime<Utc>) -> Plan {
    let spec = JobSpec::read(job);
    let now_s = rfc3339(now);
    let mut status = job
        .get("status")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let mut out = Plan::default();
    let active: Vec<&Value> = pods.iter().copied().filter(|p| is_active(p)).collect();
    let terminating = pods
        .iter()
        .filter(|p| deleting(p) && !matches!(phase(p), "Succeeded" | "Failed"))
        .count();
    let succeeded_pods: Vec<&Value> = pods
        .iter()
        .copied()
        .filter(|p| phase(p) == "Succeeded")
        .collect();
    // Failed pods an `Ignore` rule matches are not counted; a `FailJob` match fails the Job.
    let verdicts: Vec<(&Value, Option<(String, String)>)> = pods
        .iter()
        .copied()
        .filter(|p| phase(p) == "Failed")
        .map(|p| (p, failure_policy_match(job, p)))
        .collect();
    let counted_failures: Vec<&Value> = verdicts
        .iter()
        .filter(|(_, v)| v.as_ref().is_none_or(|(action, _)| action != "Ignore"))
        .map(|(p, _)| *p)
        .collect();
    let fail_job = verdicts.iter().find_map(|(_, v)| {
        v.as_ref()
            .filter(|(a, _)| a == "FailJob")
            .map(|(_, m)| m.clone())
    });
    let failed = counted_failures.len() as i64;
    let succeeded_indexes: BTreeSet<i64> = succeeded_pods
        .iter()
        .filter_map(|p| index_of(p))
        .filter(|i| spec.completions.is_none_or(|c| *i < c))
        .collect();
    let succeeded = if spec.indexed {
        succeeded_indexes.len() as i64
    } else {
        succeeded_pods.len() as i64
    };
    let finished = condition_true(&status, "Complete") || condition_true(&status, "Failed");

    // Upstream only moves forward: counts never shrink once recorded (pods of a finished
    // Job may be garbage collected).
    let prev = |f: &str| status.get(f).and_then(Value::as_i64).unwrap_or(0);
    let succeeded = succeeded.max(if finished { prev("succeeded") } else { 0 });
    let failed = failed.max(if finished { prev("failed") } else { 0 });

    let mut delete_active = false;
    if !finished {
        if !spec.suspend && status.get("startTime").is_none() {
            status["startTime"] = json!(now_s);
        }
        let start = time_of(status.get("startTime"));
        let failure = if let Some(message) = &fail_job {
            Some(("PodFailurePolicy", message.as_str()))
        } else if failed > spec.backoff_limit || past_backoff_limit_on_failure(job, &spec, pods) {
            Some((
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ))
        } else if let (Some(ads), Some(start), false) = (spec.active_deadline, start, spec.suspend)
            && start + chrono::Duration::seconds(ads) <= now
        {
            Some((
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            ))
        } else {
            None
        };
        let failure = failure.or_else(|| {
            condition(&status, "FailureTarget")
                .filter(|c| str_at(c, "/status") == "True")
                .map(|_| ("", ""))
        });
        let success = match (spec.completions, spec.indexed) {
            (Some(c), _) => succeeded >= c,
            (None, _) => succeeded > 0 && active.is_empty(),
        } || condition_true(&status, "SuccessCriteriaMet");
        if let Some((reason, message)) = failure {
            if !reason.is_empty() {
                set_condition(
                    &mut status,
                    "FailureTarget",
                    "True",
                    reason,
                    message,
                    &now_s,
                );
            }
            delete_active = true;
            if active.is_empty() && terminating == 0 {
                let target = condition(&status, "FailureTarget")
                    .cloned()
                    .unwrap_or_default();
                let (reason, message) = (
                    str_at(&target, "/reason").to_string(),
                    str_at(&target, "/message").to_string(),
                );
                set_condition(&mut status, "Failed", "True", &reason, &message, &now_s);
                // Upstream records the Failed condition's reason and message.
                out.events.push(("Warning", reason, message));
            }
        } else if success {
            set_condition(
                &mut status,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                &now_s,
            );
            delete_active = true;
            if active.is_empty() && terminating == 0 {
                set_condition(
                    &mut status,
                    "Complete",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    &now_s,
                );
                status["completionTime"] = json!(now_s);
                out.events
                    .push(("Normal", "Completed".into(), "Job completed".into()));
            }
        } else if spec.suspend {
            delete_active = true;
            if !condition_true(&status, "Suspended") {
                set_condition(
                    &mut status,
                    "Suspended",
                    "True",
                    "JobSuspended",
                    "Job suspended",
                    &now_s,
                );
                out.events
                    .push(("Normal", "Suspended".into(), "Job suspended".into()));
            }
        } else {
            if condition_true(&status, "Suspended") {
                set_condition(
                    &mut status,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                    &now_s,
                );
                status["startTime"] = json!(now_s);
                out.events
                    .push(("Normal", "Resumed".into(), "Job resumed".into()));
            }
            manage(
                &spec,
                &active,
                &succeeded_pods,
                &succeeded_indexes,
                succeeded,
                &counted_failures,
                now,
                &mut out,
            );
            if let (Some(ads), Some(start)) = (spec.active_deadline, start) {
                let left = (start + chrono::Duration::seconds(ads) - now)
                    .to_std()
                    .unwrap_or_default();
                out.recheck = Some(out.recheck.map_or(left, |r| r.min(left)));
            }
        }
    } else {
        delete_active = true;
    }
    if delete_active {
        out.delete = active.iter().map(|p| meta(p, "name").to_string()).collect();
    }

    // Counts (upstream's omitempty ints; `ready` and `terminating` are pointers, always set).
    let obj = status.as_object_mut();
    if let Some(st) = obj {
        let active_after = if delete_active { 0 } else { active.len() };
        for (field, n) in [
            ("active", active_after as i64),
            ("succeeded", succeeded),
            ("failed", failed),
        ] {
            if n > 0 {
                st.insert(field.into(), json!(n));
            } else {
                st.remove(field);
            }
        }
        let ready = if delete_active {
            0
        } else {
            active.iter().filter(|p| is_ready(p)).count()
        };
        st.insert("ready".into(), json!(ready));
        st.insert(
            "terminating".into(),
            json!(terminating + if delete_active { active.len() } else { 0 }),
        );
        st.insert("uncountedTerminatedPods".into(), json!({}));
        if spec.indexed && !succeeded_indexes.is_empty() {
            st.insert(
                "completedIndexes".into(),
                json!(format_indexes(&succeeded_indexes)),
            );
        }
    }
    out.status = status;
    out
}

/// Creates or deletes pods toward the wanted number of active ones.
#[allow(clippy::too_many_arguments)]
fn manage(
    spec: &JobSpec,
    active: &[&Value],
    succeeded_pods: &[&Value],
    succeeded_indexes: &BTreeSet<i64>,
    succeeded: i64,
    counted_failures: &[&Value],
    now: DateTime<Utc>,
    out: &mut Plan,
) {
    let failed = counted_failures.len() as i64;
    let _ = succeeded_pods;
    let want = match spec.completions {
        None if succeeded > 0 => 0,
        None => spec.parallelism,
        Some(c) => spec.parallelism.min((c - succeeded).max(0)),
    } as usize;
    if active.len() > want {
        // Surplus: the newest first, not-ready before ready.
        let mut ordered: Vec<&&Value> = active.iter().collect();
        ordered.sort_by(|a, b| {
            is_ready(a).cmp(&is_ready(b)).then(
                str_at(b, "/metadata/creationTimestamp")
                    .cmp(str_at(a, "/metadata/creationTimestamp")),
            )
        });
        out.delete = ordered
            .iter()
            .take(active.len() - want)
            .map(|p| meta(p, "name").to_string())
            .collect();
        return;
    }
    let missing = (want - active.len()).min(MAX_CREATES);
    if missing == 0 {
        return;
    }
    // Failed pods are replaced after 10 s doubling per failure (capped at 6 minutes),
    // counted from the last failure, as upstream's pod failure backoff.
    if failed > 0 {
        let last = counted_failures.iter().filter_map(|p| failed_at(p)).max();
        let shift = (failed - 1).clamp(0, 16) as u32;
        let delay = BACKOFF_BASE.saturating_mul(1 << shift).min(BACKOFF_MAX);
        if let Some(last) = last {
            let ready_at = last + chrono::Duration::from_std(delay).unwrap_or_default();
            if ready_at > now {
                out.recheck = (ready_at - now).to_std().ok();
                return;
            }
        }
    }
    if spec.indexed {
        let taken: HashSet<i64> = active.iter().filter_map(|p| index_of(p)).collect();
        let total = spec.completions.unwrap_or(0);
        out.create = (0..total)
            .filter(|i| !succeeded_indexes.contains(i) && !taken.contains(i))
            .take(missing)
            .map(Some)
            .collect();
    } else {
        out.create = vec![None; missing];
    }
}

/// The pod the Job creates: the template, a controller reference, and for Indexed Jobs
/// the completion index (annotation, label, hostname, `JOB_COMPLETION_INDEX`).
pub fn pod_for(job: &Value, index: Option<i64>) -> Value {
    let name = meta(job, "name");
    let template = job
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut metadata = Map::new();
    for field in ["labels", "annotations", "finalizers"] {
        if let Some(v) = template.pointer(&format!("/metadata/{field}")) {
            metadata.insert(field.into(), v.clone());
        }
    }
    metadata.insert(
        "ownerReferences".into(),
        json!([controller_ref("batch/v1", "Job", job)]),
    );
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    match index {
        Some(i) => {
            metadata.insert("generateName".into(), json!(format!("{name}-{i}-")));
            let mut meta = Value::Object(metadata);
            for field in ["annotations", "labels"] {
                if !meta.get(field).is_some_and(Value::is_object) {
                    meta[field] = json!({});
                }
                meta[field][COMPLETION_INDEX] = json!(i.to_string());
            }
            if spec.get("hostname").is_none() {
                spec["hostname"] = json!(format!("{name}-{i}"));
            }
            for list in ["containers", "initContainers"] {
                if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
                    for c in cs {
                        if !c.get("env").is_some_and(Value::is_array) {
                            c["env"] = json!([]);
                        }
                        if let Some(env) = c["env"].as_array_mut()
                            && !env
                                .iter()
                                .any(|e| str_at(e, "/name") == "JOB_COMPLETION_INDEX")
                        {
                            env.push(json!({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                                "fieldPath": format!("metadata.annotations['{COMPLETION_INDEX}']")}}}));
                        }
                    }
                }
            }
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
        }
        None => {
            metadata.insert("generateName".into(), json!(format!("{name}-")));
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
        }
    }
}

/// The Job controller of one node.
pub struct JobController {
    client: Client,
    expectations: Expectations,
}

impl JobController {
    pub fn new(service: ObjectService) -> Self {
        JobController {
            client: Client {
                service,
                component: "job-controller",
            },
            expectations: Expectations::default(),
        }
    }

    /// Runs forever: a pass on start, on any Job or pod change, and when a backoff,
    /// deadline or TTL falls due.
    pub async fn run(self) {
        let (Ok(jobs), Ok(pods)) = (
            self.client.resource("batch", "v1", "jobs"),
            self.client.resource("", "v1", "pods"),
        ) else {
            return;
        };
        loop {
            let from = self.client.service.store.revision();
            let started = Instant::now();
            let wait = match self.reconcile_all(&jobs, &pods).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "job reconcile failed");
                    SHORT
                }
            };
            tokio::select! {
                _ = wait_for_change(&self.client.service, &jobs, from, wait, |_| true) => {}
                _ = wait_for_change(&self.client.service, &pods, from, wait, |_| true) => {}
            }
            if let Some(rest) = MIN_INTERVAL.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    }

    /// One pass over the Jobs this node is home of; returns how long to sleep at most.
    async fn reconcile_all(
        &self,
        jobs_res: &ResourceInfo,
        pods_res: &ResourceInfo,
    ) -> Result<Duration, ApiError> {
        let jobs = self.client.list(jobs_res)?;
        // Without Jobs there is nothing to do with the (possibly many) pods.
        if jobs.is_empty() {
            return Ok(RESYNC);
        }
        let all_pods = self.client.list(pods_res)?;
        let mut by_owner: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
        for pod in &all_pods {
            if let Some(r) = pod
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .and_then(|refs| {
                    refs.iter()
                        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
                })
                && str_at(r, "/kind") == "Job"
            {
                by_owner.entry(str_at(r, "/uid")).or_default().push(pod);
            }
        }
        let mut wait = RESYNC;
        let mut live = HashSet::new();
        for job in &jobs {
            let uid = meta(job, "uid");
            live.insert(uid.to_string());
            if !self.client.is_home(jobs_res, job) || deleting(job) {
                continue;
            }
            let pods: Vec<&Value> = by_owner
                .get(uid)
                .map(|v| {
                    v.iter()
                        .copied()
                        .filter(|p| {
                            controlled_by(p, uid) && meta(p, "namespace") == meta(job, "namespace")
                        })
                        .collect()
                })
                .unwrap_or_default();
            match self.sync(jobs_res, pods_res, job, &pods).await {
                Ok(w) => wait = wait.min(w),
                Err(e) => {
                    tracing::warn!(error = %e, job = meta(job, "name"), namespace = meta(job, "namespace"), "job sync failed");
                    wait = SHORT;
                }
            }
        }
        self.expectations.forget_others(&live);
        Ok(wait)
    }

    async fn sync(
        &self,
        jobs_res: &ResourceInfo,
        pods_res: &ResourceInfo,
        job: &Value,
        pods: &[&Value],
    ) -> Result<Duration, ApiError> {
        let now = Utc::now();
        let uid = meta(job, "uid");
        if let Some(done) = finished_at(job)
            && let Some(ttl) = JobSpec::read(job).ttl_after_finished
        {
            let expires = done + chrono::Duration::seconds(ttl);
            if expires <= now {
                self.client
                    .delete(jobs_res, job, Some(Propagation::Foreground))
                    .await?;
                return Ok(RESYNC);
            }
            if let Ok(left) = (expires - now).to_std() {
                return Ok(left.min(RESYNC));
            }
        }
        if !self.expectations.satisfied(uid, pods) {
            return Ok(SHORT);
        }
        let plan = plan(job, pods, now);
        let mut deleted = Vec::new();
        for name in &plan.delete {
            if let Some(pod) = pods.iter().find(|p| meta(p, "name") == name)
                && self.client.delete(pods_res, pod, None).await?
            {
                deleted.push(meta(pod, "uid").to_string());
                self.client
                    .event(
                        job,
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    )
                    .await;
            }
        }
        let (created, failure) = self
            .client
            .create_pods(
                pods_res,
                job,
                plan.create
                    .iter()
                    .map(|index| pod_for(job, *index))
                    .collect(),
            )
            .await;
        let mut status = plan.status.clone();
        // Pods created this pass count as active at once, as upstream's status after
        // manageJob.
        let active =
            status.get("active").and_then(Value::as_i64).unwrap_or(0) + created.len() as i64;
        if active > 0 {
            status["active"] = json!(active);
        }
        self.expectations.expect(uid, created, deleted);
        self.client.write_status(jobs_res, job, &status).await?;
        for (type_, reason, message) in plan.events {
            self.client.event(job, type_, &reason, message).await;
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(plan.recheck.map_or(RESYNC, |r| r.clamp(SHORT, RESYNC)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(spec: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "pi", "namespace": "default", "uid": "j1"},
               "spec": spec})
    }

    fn pod(name: &str, phase: &str, index: Option<i64>) -> Value {
        let mut p = json!({"metadata": {"name": name, "uid": format!("u-{name}"),
                                        "creationTimestamp": "2026-01-01T00:00:00Z"},
                           "status": {"phase": phase}});
        if let Some(i) = index {
            p["metadata"]["annotations"] = json!({COMPLETION_INDEX: i.to_string()});
        }
        p
    }

    fn types(status: &Value) -> Vec<(String, String)> {
        status["conditions"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        (
                            str_at(c, "/type").to_string(),
                            str_at(c, "/reason").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn runs_parallelism_pods_until_completions_succeed() {
        let j = job(json!({"completions": 3, "parallelism": 2}));
        let p = plan(&j, &[], Utc::now());
        assert_eq!(p.create.len(), 2);
        assert!(p.status["startTime"].is_string());
        let (a, b, c) = (
            pod("a", "Succeeded", None),
            pod("b", "Running", None),
            pod("c", "Succeeded", None),
        );
        // Two done, one running: no more pods (3 - 2 = 1 wanted, 1 active).
        let p = plan(&j, &[&a, &b, &c], Utc::now());
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert_eq!(p.status["succeeded"], 2);
        assert_eq!(p.status["active"], 1);
        let b = pod("b", "Succeeded", None);
        let p = plan(&j, &[&a, &b, &c], Utc::now());
        assert_eq!(
            types(&p.status),
            [
                ("SuccessCriteriaMet".into(), "CompletionsReached".into()),
                ("Complete".into(), "CompletionsReached".into())
            ]
        );
        assert!(p.status["completionTime"].is_string());
        assert!(p.status.get("active").is_none());
        assert_eq!(p.status["ready"], 0);
    }

    #[test]
    fn backoff_limit_fails_the_job_and_backoff_delays_replacements() {
        let j = job(json!({"backoffLimit": 1}));
        let now = Utc::now();
        let mut f1 = pod("f1", "Failed", None);
        f1["metadata"]["creationTimestamp"] = json!(rfc3339(now));
        let p = plan(&j, &[&f1], now);
        assert!(
            p.create.is_empty(),
            "replacement waits out the 10 s backoff"
        );
        assert!(p.recheck.is_some_and(|d| d <= Duration::from_secs(10)));
        let later = now + chrono::Duration::seconds(11);
        assert_eq!(plan(&j, &[&f1], later).create.len(), 1);
        let f2 = pod("f2", "Failed", None);
        let p = plan(&j, &[&f1, &f2], later);
        assert_eq!(
            types(&p.status),
            [
                ("FailureTarget".into(), "BackoffLimitExceeded".into()),
                ("Failed".into(), "BackoffLimitExceeded".into())
            ]
        );
        assert_eq!(p.status["failed"], 2);
        assert!(p.create.is_empty());
    }

    #[test]
    fn pod_failure_policy_fails_the_job_or_ignores_the_failure() {
        let policy = json!({"backoffLimit": 6, "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]}});
        let j = job(policy);
        let mut fatal = pod("fatal", "Failed", None);
        fatal["metadata"]["namespace"] = json!("default");
        fatal["status"]["containerStatuses"] =
            json!([{"name": "main", "state": {"terminated": {"exitCode": 42}}}]);
        let p = plan(&j, &[&fatal], Utc::now());
        let failed = p.status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Failed").cloned())
            .unwrap_or_default();
        assert_eq!(failed["reason"], "PodFailurePolicy");
        assert_eq!(
            failed["message"],
            "Container main for pod default/fatal failed with exit code 42 matching FailJob rule at index 0"
        );
        let mut disrupted = pod("gone", "Failed", None);
        disrupted["status"]["conditions"] = json!([{"type": "DisruptionTarget", "status": "True"}]);
        let p = plan(&j, &[&disrupted], Utc::now());
        assert!(p.status.get("failed").is_none(), "{}", p.status);
        assert_eq!(p.create.len(), 1, "an ignored failure is replaced at once");
    }

    #[test]
    fn restarts_under_on_failure_count_toward_the_backoff_limit() {
        let j =
            job(json!({"backoffLimit": 2, "template": {"spec": {"restartPolicy": "OnFailure"}}}));
        let mut p = pod("r", "Running", None);
        p["status"]["containerStatuses"] = json!([{"name": "c", "restartCount": 1}]);
        assert!(types(&plan(&j, &[&p], Utc::now()).status).is_empty());
        p["status"]["containerStatuses"][0]["restartCount"] = json!(2);
        let out = plan(&j, &[&p], Utc::now());
        assert_eq!(
            types(&out.status)[0],
            ("FailureTarget".into(), "BackoffLimitExceeded".into())
        );
        assert_eq!(out.delete, ["r"]);
    }

    #[test]
    fn deadline_fails_and_deletes_active_pods() {
        let mut j = job(json!({"activeDeadlineSeconds": 5}));
        j["status"] = json!({"startTime": "2020-01-01T00:00:00Z"});
        let r = pod("r", "Running", None);
        let p = plan(&j, &[&r], Utc::now());
        assert_eq!(p.delete, ["r"]);
        assert_eq!(
            types(&p.status),
            [("FailureTarget".into(), "DeadlineExceeded".into())]
        );
        // Once the pod is gone the Job is Failed.
        let p = plan(&j, &[], Utc::now());
        assert_eq!(
            types(&p.status)[1],
            ("Failed".into(), "DeadlineExceeded".into())
        );
    }

    #[test]
    fn indexed_jobs_fill_missing_indexes_and_report_them() {
        let j = job(json!({"completions": 5, "parallelism": 3, "completionMode": "Indexed"}));
        let (a, b) = (pod("a", "Succeeded", Some(0)), pod("b", "Running", Some(2)));
        let p = plan(&j, &[&a, &b], Utc::now());
        assert_eq!(p.create, [Some(1), Some(3)]);
        assert_eq!(p.status["completedIndexes"], "0");
        let pod = pod_for(&j, Some(3));
        assert_eq!(pod["metadata"]["generateName"], "pi-3-");
        assert_eq!(pod["metadata"]["labels"][COMPLETION_INDEX], "3");
        assert_eq!(pod["metadata"]["annotations"][COMPLETION_INDEX], "3");
        assert_eq!(pod["spec"]["hostname"], "pi-3");
        assert_eq!(
            format_indexes(&[0, 1, 2, 5, 7, 8].into_iter().collect()),
            "0-2,5,7-8"
        );
    }

    #[test]
    fn suspend_deletes_active_pods_and_resume_restarts_the_clock() {
        let j = job(json!({"suspend": true, "parallelism": 2}));
        let r = pod("r", "Running", None);
        let p = plan(&j, &[&r], Utc::now());
        assert_eq!(p.delete, ["r"]);
        assert_eq!(
            types(&p.status),
            [("Suspended".into(), "JobSuspended".into())]
        );
        let mut resumed = job(json!({"parallelism": 2}));
        resumed["status"] = p.status;
        let p = plan(&resumed, &[], Utc::now());
        assert_eq!(
            types(&p.status),
            [("Suspended".into(), "JobResumed".into())]
        );
        assert_eq!(p.create.len(), 2);
    }

    #[test]
    fn work_queue_job_completes_when_one_succeeds_and_none_run() {
        let j = job(json!({"parallelism": 2}));
        let (a, b) = (pod("a", "Succeeded", None), pod("b", "Running", None));
        let p = plan(&j, &[&a, &b], Utc::now());
        assert!(p.create.is_empty());
        assert!(types(&p.status).is_empty());
        let b = pod("b", "Succeeded", None);
        let p = plan(&j, &[&a, &b], Utc::now());
        assert_eq!(types(&p.status)[1].0, "Complete");
    }
}
