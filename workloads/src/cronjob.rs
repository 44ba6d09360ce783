//! The CronJob controller, as upstream's (v2): at each scheduled time it creates a Job
//! `<cronjob>-<scheduled time in minutes since the epoch>` from `spec.jobTemplate`,
//! honouring `concurrencyPolicy` (Allow, Forbid, Replace), `startingDeadlineSeconds` and
//! `suspend`, keeps `status.active`, `lastScheduleTime` and `lastSuccessfulTime`, and
//! deletes finished Jobs beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit`.
//! Schedules are evaluated in UTC (see ADR 0012). Each CronJob is reconciled only by its
//! home node.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use beemesh_translator::deletion::Propagation;
use beemesh_translator::service::{ObjectService, WriteOptions};
use beemesh_translator::{ApiError, ResourceInfo};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::change_wait::wait_for_change;
use crate::controller_support::{
    Client, controlled_by, controller_ref, deleting, meta, rfc3339, str_at, time_of,
};
use crate::cron_schedule::Schedule;
use crate::job::finished_at;

/// The annotation upstream (1.28+) puts on a scheduled Job: its scheduled time.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
const RESYNC: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(250);
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Upstream gives up counting missed start times past this many.
const MAX_MISSED: usize = 100;

/// The Job name for a scheduled time: upstream's `getJobName`.
pub fn job_name(cronjob: &str, scheduled: DateTime<Utc>) -> String {
    format!("{cronjob}-{}", scheduled.timestamp().div_euclid(60))
}

/// Upstream's `mostRecentScheduleTime`: the latest activation in (earliest, now], where
/// earliest is the last schedule time (else the creation time), moved up to
/// `now - startingDeadlineSeconds`; also how many activations were missed.
pub fn most_recent(
    cj: &Value,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, usize) {
    let mut earliest = time_of(cj.pointer("/status/lastScheduleTime"))
        .or_else(|| time_of(cj.pointer("/metadata/creationTimestamp")))
        .unwrap_or(now);
    if let Some(deadline) = cj
        .pointer("/spec/startingDeadlineSeconds")
        .and_then(Value::as_i64)
    {
        let floor = now - chrono::Duration::seconds(deadline);
        if floor > earliest {
            earliest = floor;
        }
    }
    let mut latest = None;
    let mut count = 0;
    let mut t = earliest;
    while let Some(next) = schedule.next_after(t) {
        if next > now {
            break;
        }
        latest = Some(next);
        count += 1;
        t = next;
        if count > MAX_MISSED {
            // Jump straight to the last activation before now.
            let back = now - chrono::Duration::minutes(1);
            if back > t {
                t = back - chrono::Duration::seconds(1);
            }
        }
    }
    (latest, count)
}

/// The Job a CronJob creates for `scheduled`: upstream's `getJobFromTemplate2`.
pub fn job_for(cj: &Value, scheduled: DateTime<Utc>) -> Value {
    let name = job_name(meta(cj, "name"), scheduled);
    let tmpl = cj
        .pointer("/spec/jobTemplate")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    if let Some(l) = tmpl.pointer("/metadata/labels") {
        metadata.insert("labels".into(), l.clone());
    }
    let mut annotations = tmpl
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), json!(rfc3339(scheduled)));
    metadata.insert("annotations".into(), Value::Object(annotations));
    metadata.insert(
        "ownerReferences".into(),
        json!([controller_ref("batch/v1", "CronJob", cj)]),
    );
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
           "spec": tmpl.get("spec").cloned().unwrap_or_else(|| json!({}))})
}

fn condition_true(job: &Value, kind: &str) -> bool {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| str_at(c, "/type") == kind && str_at(c, "/status") == "True")
        })
}

fn object_ref(job: &Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "name": meta(job, "name"),
           "namespace": meta(job, "namespace"), "uid": meta(job, "uid"),
           "resourceVersion": meta(job, "resourceVersion")})
}

/// The CronJob controller of one node.
pub struct CronJobController {
    client: Client,
}

impl CronJobController {
    pub fn new(service: ObjectService) -> Self {
        CronJobController {
            client: Client {
                service,
                component: "cronjob-controller",
            },
        }
    }

    /// Runs forever: a pass on start, on any CronJob or Job change, at the next scheduled
    /// time, and every `RESYNC`.
    pub async fn run(self) {
        let (Ok(cjs), Ok(jobs)) = (
            self.client.resource("batch", "v1", "cronjobs"),
            self.client.resource("batch", "v1", "jobs"),
        ) else {
            return;
        };
        loop {
            let from = self.client.service.store.revision();
            let started = Instant::now();
            let wait = match self.reconcile_all(&cjs, &jobs).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "cronjob reconcile failed");
                    SHORT
                }
            };
            tokio::select! {
                _ = wait_for_change(&self.client.service, &cjs, from, wait, |_| true) => {}
                _ = wait_for_change(&self.client.service, &jobs, from, wait, |_| true) => {}
            }
            if let Some(rest) = MIN_INTERVAL.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    }

    async fn reconcile_all(
        &self,
        cjs_res: &ResourceInfo,
        jobs_res: &ResourceInfo,
    ) -> Result<Duration, ApiError> {
        let cjs = self.client.list(cjs_res)?;
        if cjs.is_empty() {
            return Ok(RESYNC);
        }
        let all_jobs = self.client.list(jobs_res)?;
        let mut wait = RESYNC;
        for cj in &cjs {
            if !self.client.is_home(cjs_res, cj) || deleting(cj) {
                continue;
            }
            let jobs: Vec<&Value> = all_jobs
                .iter()
                .filter(|j| {
                    meta(j, "namespace") == meta(cj, "namespace")
                        && controlled_by(j, meta(cj, "uid"))
                })
                .collect();
            match self.sync(cjs_res, jobs_res, cj, &jobs).await {
                Ok(w) => wait = wait.min(w),
                Err(e) => {
                    tracing::warn!(error = %e, cronjob = meta(cj, "name"), "cronjob sync failed");
                    wait = SHORT;
                }
            }
        }
        Ok(wait)
    }

    /// Upstream's syncCronJob; returns when to look again.
    async fn sync(
        &self,
        cjs_res: &ResourceInfo,
        jobs_res: &ResourceInfo,
        cj: &Value,
        jobs: &[&Value],
    ) -> Result<Duration, ApiError> {
        let now = Utc::now();
        let mut status = cj
            .get("status")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        // The active list: our Jobs still running (finished and vanished ones leave it).
        let listed: HashSet<String> = status
            .get("active")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|r| str_at(r, "/uid").to_string()).collect())
            .unwrap_or_default();
        let mut active: Vec<Value> = Vec::new();
        let mut last_success = time_of(status.get("lastSuccessfulTime"));
        for job in jobs {
            let finished = finished_at(job);
            if finished.is_none() {
                if listed.contains(meta(job, "uid")) {
                    active.push(object_ref(job));
                }
                continue;
            }
            if condition_true(job, "Complete")
                && let Some(done) = time_of(job.pointer("/status/completionTime")).or(finished)
                && last_success.is_none_or(|t| done > t)
            {
                last_success = Some(done);
            }
            if listed.contains(meta(job, "uid")) {
                self.client
                    .event(
                        cj,
                        "Normal",
                        "SawCompletedJob",
                        format!(
                            "Saw completed job: {}, status: {}",
                            meta(job, "name"),
                            if condition_true(job, "Complete") {
                                "Complete"
                            } else {
                                "Failed"
                            }
                        ),
                    )
                    .await;
            }
        }
        let set_active = |status: &mut Value, active: &[Value]| {
            if active.is_empty() {
                if let Some(s) = status.as_object_mut() {
                    s.remove("active");
                }
            } else {
                status["active"] = json!(active);
            }
        };
        set_active(&mut status, &active);
        if let Some(t) = last_success {
            status["lastSuccessfulTime"] = json!(rfc3339(t));
        }
        self.cleanup(jobs_res, cj, jobs).await?;

        let mut next = RESYNC;
        let suspended = cj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
        let tz = str_at(cj, "/spec/timeZone");
        let schedule = Schedule::parse(str_at(cj, "/spec/schedule"));
        match (&schedule, tz) {
            _ if suspended => {}
            (_, tz) if !matches!(tz, "" | "UTC" | "Etc/UTC") => {
                self.client
                    .event(
                        cj,
                        "Warning",
                        "UnknownTimeZone",
                        format!("invalid timeZone: {tz:?}: only UTC is supported"),
                    )
                    .await;
            }
            (Err(why), _) => {
                self.client
                    .event(
                        cj,
                        "Warning",
                        "UnparseableSchedule",
                        format!(
                            "unparseable schedule: {:?} : {why}",
                            str_at(cj, "/spec/schedule")
                        ),
                    )
                    .await;
            }
            (Ok(schedule), _) => {
                let (latest, missed) = most_recent(cj, schedule, now);
                if missed > MAX_MISSED {
                    self.client
                        .event(cj, "Warning", "TooManyMissedTimes", format!(
                            "too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
                        ))
                        .await;
                }
                if let Some(scheduled) = latest {
                    self.start(
                        cjs_res,
                        jobs_res,
                        cj,
                        jobs,
                        scheduled,
                        now,
                        &mut status,
                        &mut active,
                    )
                    .await?;
                    set_active(&mut status, &active);
                }
                if let Some(at) = schedule.next_after(now) {
                    // Wake just after the minute turns.
                    next = ((at - now).to_std().unwrap_or_default() + Duration::from_millis(50))
                        .min(RESYNC);
                }
            }
        }
        self.client.write_status(cjs_res, cj, &status).await?;
        Ok(next.max(SHORT))
    }

    /// Starts the Job for `scheduled` unless it exists, is too late, or the concurrency
    /// policy says not to.
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        _cjs_res: &ResourceInfo,
        jobs_res: &ResourceInfo,
        cj: &Value,
        jobs: &[&Value],
        scheduled: DateTime<Utc>,
        now: DateTime<Utc>,
        status: &mut Value,
        active: &mut Vec<Value>,
    ) -> Result<(), ApiError> {
        let name = job_name(meta(cj, "name"), scheduled);
        if time_of(status.get("lastScheduleTime")).is_some_and(|t| t >= scheduled) {
            return Ok(());
        }
        // Created by an earlier pass whose status write was lost: record it now.
        if let Some(existing) = jobs.iter().find(|j| meta(j, "name") == name) {
            if finished_at(existing).is_none()
                && !active
                    .iter()
                    .any(|r| str_at(r, "/uid") == meta(existing, "uid"))
            {
                active.push(object_ref(existing));
            }
            status["lastScheduleTime"] = json!(rfc3339(scheduled));
            return Ok(());
        }
        if let Some(deadline) = cj
            .pointer("/spec/startingDeadlineSeconds")
            .and_then(Value::as_i64)
            && scheduled + chrono::Duration::seconds(deadline) < now
        {
            self.client
                .event(
                    cj,
                    "Warning",
                    "MissSchedule",
                    format!(
                        "Missed scheduled time to start a job: {}",
                        rfc3339(scheduled)
                    ),
                )
                .await;
            return Ok(());
        }
        match str_at(cj, "/spec/concurrencyPolicy") {
            "Forbid" if !active.is_empty() => {
                // Upstream requeues until the running Job ends; the missed time is retried.
                return Ok(());
            }
            "Replace" => {
                for r in active.drain(..) {
                    if let Some(job) = jobs.iter().find(|j| meta(j, "uid") == str_at(&r, "/uid")) {
                        self.client
                            .delete(jobs_res, job, Some(Propagation::Background))
                            .await?;
                        self.client
                            .event(
                                cj,
                                "Normal",
                                "SuccessfulDelete",
                                format!("Deleted job {}", meta(job, "name")),
                            )
                            .await;
                    }
                }
            }
            _ => {}
        }
        let ns = meta(cj, "namespace");
        match self
            .client
            .service
            .create(
                jobs_res,
                Some(ns),
                job_for(cj, scheduled),
                &WriteOptions::default(),
            )
            .await
        {
            Ok(w) => {
                self.client
                    .event(
                        cj,
                        "Normal",
                        "SuccessfulCreate",
                        format!("Created job {name}"),
                    )
                    .await;
                active.push(object_ref(&w.object));
            }
            // Created by an earlier pass whose status write was lost: take it if ours.
            Err(e) if e.code() == 409 => {
                match self.client.service.store.get(jobs_res, Some(ns), &name) {
                    Ok(existing) if controlled_by(&existing, meta(cj, "uid")) => {
                        if finished_at(&existing).is_none() {
                            active.push(object_ref(&existing));
                        }
                    }
                    _ => return Err(e),
                }
            }
            Err(e) => {
                self.client
                    .event(
                        cj,
                        "Warning",
                        "FailedCreate",
                        format!("Error creating job: {e}"),
                    )
                    .await;
                return Err(e);
            }
        }
        status["lastScheduleTime"] = json!(rfc3339(scheduled));
        Ok(())
    }

    /// Deletes the oldest finished Jobs beyond the history limits (3 successful, 1
    /// failed by default).
    async fn cleanup(
        &self,
        jobs_res: &ResourceInfo,
        cj: &Value,
        jobs: &[&Value],
    ) -> Result<(), ApiError> {
        let limit = |field: &str, default: i64| {
            cj.pointer(&format!("/spec/{field}"))
                .and_then(Value::as_i64)
                .unwrap_or(default)
                .max(0) as usize
        };
        let started = |j: &Value| {
            time_of(j.pointer("/status/startTime"))
                .or_else(|| time_of(j.pointer("/metadata/creationTimestamp")))
        };
        for (complete, max) in [
            (true, limit("successfulJobsHistoryLimit", 3)),
            (false, limit("failedJobsHistoryLimit", 1)),
        ] {
            let mut finished: Vec<&&Value> = jobs
                .iter()
                .filter(|j| {
                    !deleting(j)
                        && finished_at(j).is_some()
                        && condition_true(j, "Complete") == complete
                })
                .collect();
            if finished.len() <= max {
                continue;
            }
            finished.sort_by_key(|j| started(j));
            let n = finished.len() - max;
            for job in finished.into_iter().take(n) {
                if self
                    .client
                    .delete(jobs_res, job, Some(Propagation::Background))
                    .await?
                {
                    self.client
                        .event(
                            cj,
                            "Normal",
                            "SuccessfulDelete",
                            format!("Deleted job {}", meta(job, "name")),
                        )
                        .await;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn cj(spec: Value, status: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "CronJob",
               "metadata": {"name": "tick", "namespace": "default", "uid": "c1",
                            "creationTimestamp": "2026-01-01T10:00:30Z"},
               "spec": spec, "status": status})
    }

    #[test]
    fn job_names_are_minutes_since_the_epoch() {
        assert_eq!(
            job_name("tick", at("2026-01-01T10:01:00Z")),
            "tick-29454361"
        );
        let c = cj(
            json!({"schedule": "*/1 * * * *", "jobTemplate": {
            "metadata": {"labels": {"a": "b"}}, "spec": {"template": {"spec": {}}}}}),
            json!({}),
        );
        let j = job_for(&c, at("2026-01-01T10:01:00Z"));
        assert_eq!(j["metadata"]["name"], "tick-29454361");
        assert_eq!(j["metadata"]["labels"]["a"], "b");
        assert_eq!(
            j["metadata"]["annotations"][SCHEDULED_TIMESTAMP],
            "2026-01-01T10:01:00Z"
        );
        assert_eq!(j["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    }

    #[test]
    fn most_recent_activation_since_the_last_one() {
        let s = Schedule::parse("*/1 * * * *").unwrap_or_else(|e| panic!("{e}"));
        // Created 10:00:30; at 10:00:59 nothing is due, at 10:03:10 10:03 is (3 passed).
        let c = cj(json!({}), json!({}));
        assert_eq!(most_recent(&c, &s, at("2026-01-01T10:00:59Z")), (None, 0));
        assert_eq!(
            most_recent(&c, &s, at("2026-01-01T10:03:10Z")),
            (Some(at("2026-01-01T10:03:00Z")), 3)
        );
        let done = cj(
            json!({}),
            json!({"lastScheduleTime": "2026-01-01T10:03:00Z"}),
        );
        assert_eq!(
            most_recent(&done, &s, at("2026-01-01T10:03:40Z")),
            (None, 0)
        );
        // A starting deadline bounds how far back missed times are counted.
        let late = cj(json!({"startingDeadlineSeconds": 90}), json!({}));
        assert_eq!(most_recent(&late, &s, at("2026-01-01T12:00:10Z")).1, 2);
        // Thousands of missed minutes stop counting early but still find the latest.
        let (latest, missed) = most_recent(&c, &s, at("2026-01-09T10:00:10Z"));
        assert_eq!(latest, Some(at("2026-01-09T10:00:00Z")));
        assert!(missed > MAX_MISSED);
    }
}
