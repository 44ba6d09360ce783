//! The ResourceQuota usage controller (upstream's resourcequota-controller): keeps every
//! quota's `status.hard` equal to `spec.hard` and `status.used` equal to what the
//! namespace's objects use (`beemesh_translator::quota` counts them, the same code the
//! admission check uses). Each quota is reconciled by its home node only, on every quota,
//! pod, Service, ConfigMap, Secret or PVC change and every `RESYNC` (object counts of
//! other kinds catch up at the resync); nothing is written when the status already says so.
//! Recomputing also returns usage reserved by creates that then failed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use beemesh_translator::quota::usage_json;
use beemesh_translator::service::{ObjectService, Part, WriteOptions};
use beemesh_translator::{ApiError, ResourceInfo};
use serde_json::{Value, json};

use crate::change_wait::wait_for_change;
use crate::service_pods::{list_all, meta};

const RESYNC: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(500);
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Kinds whose changes wake the controller (the ones quotas name most).
const WATCHED: [&str; 6] = [
    "resourcequotas",
    "pods",
    "services",
    "configmaps",
    "secrets",
    "persistentvolumeclaims",
];

/// The status a quota should have given the usage counted now.
fn desired_status(quota: &Value, used: Value) -> Value {
    json!({
        "hard": quota.pointer("/spec/hard").cloned().unwrap_or_else(|| json!({})),
        "used": used,
    })
}

/// The controller; one per node, acting on the quotas it is home of.
pub struct ResourceQuotaController {
    service: ObjectService,
}

impl ResourceQuotaController {
    pub fn new(service: ObjectService) -> Self {
        ResourceQuotaController { service }
    }

    fn resource(&self, plural: &str) -> Result<Arc<ResourceInfo>, ApiError> {
        self.service.registry.served("", "v1", plural)
    }

    /// Runs forever: a pass on start, on every change to a watched kind, and every `RESYNC`.
    pub async fn run(self) {
        loop {
            let from = self.service.store.revision();
            let started = Instant::now();
            let wait = match self.reconcile_all().await {
                Ok(false) => RESYNC,
                Ok(true) => SHORT,
                Err(e) => {
                    tracing::warn!(error = %e, "resourcequota reconcile failed");
                    SHORT
                }
            };
            let mut watched = Vec::new();
            for plural in WATCHED {
                match self.resource(plural) {
                    Ok(r) => watched.push(r),
                    Err(_) => return,
                }
            }
            let waits = watched
                .iter()
                .map(|r| Box::pin(wait_for_change(&self.service, r, from, wait, |_| true)));
            futures::future::select_all(waits).await;
            if let Some(rest) = MIN_INTERVAL.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    }

    /// One pass over every quota this node is home of; true when a write failed.
    pub async fn reconcile_all(&self) -> Result<bool, ApiError> {
        let quotas_res = self.resource("resourcequotas")?;
        let mut soon = false;
        for quota in list_all(&self.service, &quotas_res)? {
            let (Some(ns), Some(name)) = (meta(&quota, "namespace"), meta(&quota, "name")) else {
                continue;
            };
            if !self.service.store.is_home(&quotas_res, Some(ns), name) {
                continue;
            }
            if let Err(e) = self.sync(&quotas_res, &quota, ns, name).await {
                tracing::debug!(error = %e, namespace = ns, quota = name, "resourcequota sync failed");
                soon = true;
            }
        }
        Ok(soon)
    }

    async fn sync(
        &self,
        res: &ResourceInfo,
        quota: &Value,
        ns: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let names: Vec<String> = quota
            .pointer("/spec/hard")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let usage = self.service.quota_usage(quota, ns, &names)?;
        let want = desired_status(quota, usage_json(&usage));
        if quota.get("status") == Some(&want) {
            return Ok(());
        }
        // The write is a compare-and-set on the version just read: if an admission
        // reserved usage meanwhile, the next pass recounts with its object present.
        let version = meta(quota, "resourceVersion").map(str::to_string);
        self.service
            .update(
                res,
                Some(ns),
                name,
                Part::Status,
                &WriteOptions::default(),
                |cur| {
                    let mut new = cur.clone();
                    if let Some(v) = &version {
                        new["metadata"]["resourceVersion"] = json!(v);
                    }
                    new["status"] = want.clone();
                    Ok(new)
                },
            )
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beemesh_translator::quota::Usage;

    #[test]
    fn status_mirrors_hard_and_prints_usage() {
        let quota = json!({"spec": {"hard": {"pods": "2", "requests.cpu": "1"}}});
        let used = Usage::from([
            ("pods".to_string(), 1000),
            ("requests.cpu".to_string(), 250),
        ]);
        assert_eq!(
            desired_status(&quota, usage_json(&used)),
            json!({"hard": {"pods": "2", "requests.cpu": "1"},
                   "used": {"pods": "1", "requests.cpu": "250m"}})
        );
    }
}
