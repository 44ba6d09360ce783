//! Event expiry: kube-apiserver writes Events with an etcd lease of `--event-ttl` (1h),
//! renewed on every write, so an Event disappears that long after it was last created or
//! updated. Here each Event's home node deletes it once its last write (the wall-clock
//! part of its global version, stamped on every commit) is older than the TTL. The
//! delete is conditional on the resourceVersion it saw, so an update racing the expiry
//! wins and restarts the clock.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use beemesh_translator::service::ObjectService;
use beemesh_translator::store::{ListRequest, Preconditions, parse_stored};
use beemesh_translator::{ApiError, ResourceInfo};
use serde_json::Value;

/// Upstream's `--event-ttl` default.
pub const DEFAULT_EVENT_TTL: Duration = Duration::from_secs(3600);
/// The longest sleep between passes (new Events from other homes, clock drift).
const MAX_WAIT: Duration = Duration::from_secs(30);
/// The shortest sleep between passes (many Events expiring at once).
const MIN_WAIT: Duration = Duration::from_millis(50);

pub struct EventTtlController {
    service: ObjectService,
    ttl: Duration,
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl EventTtlController {
    pub fn new(service: ObjectService, ttl: Duration) -> Self {
        EventTtlController { service, ttl }
    }

    fn events(&self) -> Result<Arc<ResourceInfo>, ApiError> {
        self.service.registry.served("", "v1", "events")
    }

    /// Runs forever: expires what is due, then sleeps until the next Event is due (at
    /// most `MAX_WAIT`, since Events homed elsewhere may arrive).
    pub async fn run(self) {
        loop {
            let wait = match self.expire_due().await {
                Ok(Some(next)) => next.clamp(MIN_WAIT, MAX_WAIT),
                Ok(None) => self.ttl.clamp(MIN_WAIT, MAX_WAIT),
                Err(e) => {
                    tracing::warn!(error = %e, "event expiry pass failed");
                    MAX_WAIT.min(self.ttl.max(MIN_WAIT))
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Deletes every Event homed here whose last write is at least the TTL old; returns
    /// how long until the next one is due (`None` when this node homes no Event).
    pub async fn expire_due(&self) -> Result<Option<Duration>, ApiError> {
        let events = self.events()?;
        let page = self
            .service
            .store
            .list(&events, &ListRequest::latest(None))?;
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut next: Option<u64> = None;
        for item in page.items {
            let event = parse_stored(&item)?;
            let meta = |f: &str| {
                event
                    .pointer(&format!("/metadata/{f}"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let (Some(ns), Some(name)) = (meta("namespace"), meta("name")) else {
                continue;
            };
            if !self.service.store.is_home(&events, Some(&ns), &name) {
                continue;
            }
            let Some(written) = self
                .service
                .store
                .last_write_millis(&events, Some(&ns), &name)?
            else {
                continue;
            };
            let due = written.saturating_add(ttl_ms);
            let now = now_millis();
            if now < due {
                next = Some(next.map_or(due - now, |n| n.min(due - now)));
                continue;
            }
            let pre = Preconditions {
                resource_version: meta("resourceVersion"),
                uid: None,
            };
            match self
                .service
                .store
                .delete(
                    &events,
                    Some(&ns),
                    &name,
                    &pre,
                    &beemesh_translator::service::now_rfc3339(),
                )
                .await
            {
                Ok(_) => tracing::debug!(namespace = %ns, name = %name, "event expired"),
                // Updated meanwhile: its clock restarted, so it is due a TTL from now.
                Err(e) if e.code() == 409 => {
                    next = Some(next.map_or(ttl_ms, |n| n.min(ttl_ms)));
                }
                Err(e) if e.code() == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(next.map(Duration::from_millis))
    }
}
