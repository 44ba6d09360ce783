//! CustomResourceDefinitions at run time, in two parts:
//!
//! - `CrdRegistrar` runs on EVERY node: it watches the node's replica of CRDs (the mesh
//!   replicates them everywhere) and keeps one `ResourceInfo` per served version of each
//!   established CRD in the shared `Registry`, so a CRD created through any node serves its
//!   kind through all of them, and a deleted one disappears from all of them.
//! - `CrdController` acts only on the CRDs this node is home for (like the namespace
//!   controller): the naming check (`NamesAccepted`, `acceptedNames`), `Established`,
//!   `storedVersions`, and on deletion the `Terminating` condition, the removal of every
//!   custom resource and then of the `customresourcecleanup` finalizer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use beemesh_translator::crd::{self, serving};
use beemesh_translator::service::{ObjectService, Part, WriteOptions, now_rfc3339};
use beemesh_translator::store::{ListRequest, Preconditions, parse_stored};
use beemesh_translator::{ApiError, RegistryRefresh, ResourceInfo};

use crate::change_wait::wait_for_change;
use serde_json::{Value, json};

/// How often everything is re-checked even without a change.
const RESYNC: Duration = Duration::from_secs(10);
/// How often a terminating CRD is re-checked while custom resources remain.
const TERMINATING_POLL: Duration = Duration::from_millis(300);

fn list_all(service: &ObjectService, res: &ResourceInfo) -> Result<Vec<Value>, ApiError> {
    let page = service.store.list(res, &ListRequest::latest(None))?;
    page.items.iter().map(|b| parse_stored(b)).collect()
}

fn crd_resource(service: &ObjectService) -> Result<Arc<ResourceInfo>, ApiError> {
    service
        .registry
        .served("apiextensions.k8s.io", "v1", "customresourcedefinitions")
}

/// Keeps the registry in step with the CRDs in this node's replica.
pub struct CrdRegistrar {
    service: ObjectService,
    /// What this registrar inserted: (group, version, plural) -> the resource.
    registered: std::sync::Mutex<BTreeMap<(String, String, String), ResourceInfo>>,
    /// Held for a whole pass (see `sync`).
    pass: std::sync::Mutex<()>,
}

impl RegistryRefresh for CrdRegistrar {
    fn refresh(&self) {
        if let Err(e) = self.sync() {
            tracing::warn!(error = %e, "registering custom resources on demand failed");
        }
    }
}

impl CrdRegistrar {
    pub fn new(service: ObjectService) -> Self {
        CrdRegistrar {
            service,
            registered: std::sync::Mutex::new(BTreeMap::new()),
            pass: std::sync::Mutex::new(()),
        }
    }

    /// Registers what this replica's CRDs serve now, lets requests for a resource not yet
    /// registered ask for a pass (`Registry::refresh`), and follows every later CRD change.
    pub fn start(self) -> Arc<Self> {
        if let Err(e) = self.sync() {
            tracing::warn!(error = %e, "registering custom resources failed");
        }
        let registrar = Arc::new(self);
        let hook: Arc<dyn RegistryRefresh> = registrar.clone();
        registrar
            .service
            .registry
            .set_refresher(Arc::downgrade(&hook));
        tokio::spawn(registrar.clone().run());
        registrar
    }

    /// One pass: inserts what established CRDs serve, replaces what changed, removes what
    /// no CRD serves any more.
    pub fn sync(&self) -> Result<(), ApiError> {
        // One pass at a time, each reading the replica under the lock: a pass that read an
        // older list must not undo what a newer one registered.
        let _pass = self
            .pass
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let crds = crd_resource(&self.service)?;
        let mut desired: BTreeMap<(String, String, String), ResourceInfo> = BTreeMap::new();
        for crd in list_all(&self.service, &crds)? {
            for info in serving::served_resources(&crd) {
                let key = (
                    info.group.clone(),
                    info.version.clone(),
                    info.plural.clone(),
                );
                // A custom resource may never shadow a built-in one.
                if let Some(existing) = self.service.registry.get(&key.0, &key.1, &key.2)
                    && existing.custom.is_none()
                {
                    continue;
                }
                desired.entry(key).or_insert(info);
            }
        }
        let mut registered = self
            .registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stale: Vec<(String, String, String)> = registered
            .keys()
            .filter(|k| !desired.contains_key(*k))
            .cloned()
            .collect();
        for (g, v, p) in stale {
            self.service.registry.remove(&g, &v, &p);
            registered.remove(&(g.clone(), v.clone(), p.clone()));
            tracing::info!(group = %g, version = %v, plural = %p, "custom resource no longer served");
        }
        for (key, info) in desired {
            if registered.get(&key) == Some(&info) {
                continue;
            }
            tracing::info!(group = %key.0, version = %key.1, plural = %key.2, "serving custom resource");
            self.service.registry.insert(info.clone());
            registered.insert(key, info);
        }
        Ok(())
    }

    /// Runs forever: a pass on every CRD change (and every `RESYNC`).
    pub async fn run(self: Arc<Self>) {
        loop {
            let from = self.service.store.revision();
            if let Err(e) = self.sync() {
                tracing::warn!(error = %e, "registering custom resources failed");
            }
            let Ok(crds) = crd_resource(&self.service) else {
                return;
            };
            wait_for_change(&self.service, &crds, from, RESYNC, |_| true).await;
        }
    }
}

/// Status and cleanup of the CRDs this node is home for.
pub struct CrdController {
    service: ObjectService,
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": status, "lastTransitionTime": now, "reason": reason, "message": message})
}

/// Sets a condition, keeping its lastTransitionTime when the status did not change.
fn set_condition(conditions: &mut Vec<Value>, new: Value) {
    let kind = new.get("type").cloned();
    match conditions
        .iter_mut()
        .find(|c| c.get("type") == kind.as_ref())
    {
        Some(existing) => {
            let mut new = new;
            if existing.get("status") == new.get("status")
                && let Some(t) = existing.get("lastTransitionTime")
            {
                new["lastTransitionTime"] = t.clone();
            }
            *existing = new;
        }
        None => conditions.push(new),
    }
}

impl CrdController {
    pub fn new(service: ObjectService) -> Self {
        CrdController { service }
    }

    /// Runs forever: reconciles on every CRD change, every `RESYNC`, and quickly while a
    /// CRD is terminating.
    pub async fn run(self) {
        loop {
            let from = self.service.store.revision();
            let busy = match self.reconcile_all().await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "CRD reconcile failed");
                    true
                }
            };
            let Ok(crds) = crd_resource(&self.service) else {
                return;
            };
            let wait = if busy { TERMINATING_POLL } else { RESYNC };
            // Its own status writes wake it once more; that pass finds nothing to do.
            wait_for_change(&self.service, &crds, from, wait, |_| true).await;
        }
    }

    /// One pass over the CRDs this node is home for; true while one is terminating.
    pub async fn reconcile_all(&self) -> Result<bool, ApiError> {
        let crds_res = crd_resource(&self.service)?;
        let all = list_all(&self.service, &crds_res)?;
        let mut busy = false;
        for crd in &all {
            let Some(name) = crd.pointer("/metadata/name").and_then(Value::as_str) else {
                continue;
            };
            if !self.service.store.is_home(&crds_res, None, name) {
                continue;
            }
            let result = if crd.pointer("/metadata/deletionTimestamp").is_some() {
                busy = true;
                self.finalize(&crds_res, crd, name).await
            } else {
                self.update_status(&crds_res, crd, name, &all).await
            };
            match result {
                Ok(()) => {}
                Err(e) if e.code() == 404 || e.code() == 409 => busy = true,
                Err(e) => return Err(e),
            }
        }
        Ok(busy)
    }

    /// The naming check and the conditions that follow from it.
    async fn update_status(
        &self,
        crds_res: &ResourceInfo,
        crd: &Value,
        name: &str,
        all: &[Value],
    ) -> Result<(), ApiError> {
        let now = now_rfc3339();
        let mut status = crd.get("status").cloned().unwrap_or_else(|| json!({}));
        if !status.is_object() {
            status = json!({});
        }
        let mut conditions: Vec<Value> = status
            .get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let conflict = serving::name_conflict(crd, all, &self.service.registry);
        match &conflict {
            None => {
                status["acceptedNames"] = serving::Names::from(crd, "/spec/names").to_json();
                set_condition(
                    &mut conditions,
                    condition(
                        "NamesAccepted",
                        "True",
                        "NoConflicts",
                        "no conflicts found",
                        &now,
                    ),
                );
                set_condition(
                    &mut conditions,
                    condition(
                        "Established",
                        "True",
                        "InitialNamesAccepted",
                        "the initial names have been accepted",
                        &now,
                    ),
                );
            }
            Some((reason, message)) => {
                if status.get("acceptedNames").is_none() {
                    status["acceptedNames"] = json!({"plural": "", "kind": ""});
                }
                set_condition(
                    &mut conditions,
                    condition("NamesAccepted", "False", reason, message, &now),
                );
                // Once established, a CRD stays established with its old names.
                if !serving::is_established(crd) {
                    set_condition(
                        &mut conditions,
                        condition(
                            "Established",
                            "False",
                            "NotAccepted",
                            "not all names are accepted",
                            &now,
                        ),
                    );
                }
            }
        }
        status["conditions"] = Value::Array(conditions);
        // storedVersions records every version ever used for storage.
        let mut stored: Vec<Value> = status
            .get("storedVersions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(versions) = crd.pointer("/spec/versions").and_then(Value::as_array) {
            for v in versions {
                if v.get("storage") == Some(&Value::Bool(true))
                    && let Some(n) = v.get("name")
                    && !stored.contains(n)
                {
                    stored.push(n.clone());
                }
            }
        }
        status["storedVersions"] = Value::Array(stored);
        if crd.get("status") == Some(&status) {
            return Ok(());
        }
        self.service
            .update(
                crds_res,
                None,
                name,
                Part::Status,
                &WriteOptions::default(),
                |cur| {
                    let mut new = cur.clone();
                    new["status"] = status.clone();
                    Ok(new)
                },
            )
            .await?;
        Ok(())
    }

    /// A deleted CRD: Terminating, then every custom resource deleted, then the finalizer
    /// removed (which lets the store remove the CRD).
    async fn finalize(
        &self,
        crds_res: &ResourceInfo,
        crd: &Value,
        name: &str,
    ) -> Result<(), ApiError> {
        let has_finalizer = crd
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x == crd::CLEANUP_FINALIZER));
        if !has_finalizer {
            return Ok(());
        }
        let remaining = match self.instances_resource(crd) {
            Some(res) => self.delete_instances(&res).await?,
            None => 0,
        };
        let now = now_rfc3339();
        let (reason, message) = if remaining > 0 {
            (
                "InstanceDeletionInProgress",
                "CustomResource deletion is in progress",
            )
        } else {
            ("InstanceDeletionCompleted", "removed all instances")
        };
        let terminating = condition("Terminating", "True", reason, message, &now);
        let mut status = crd.get("status").cloned().unwrap_or_else(|| json!({}));
        let mut conditions: Vec<Value> = status
            .get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        set_condition(&mut conditions, terminating);
        status["conditions"] = Value::Array(conditions);
        if crd.get("status") != Some(&status) {
            self.service
                .update(
                    crds_res,
                    None,
                    name,
                    Part::Status,
                    &WriteOptions::default(),
                    |cur| {
                        let mut new = cur.clone();
                        new["status"] = status.clone();
                        Ok(new)
                    },
                )
                .await?;
        }
        if remaining > 0 {
            return Ok(());
        }
        self.service
            .store
            .update(
                crds_res,
                None,
                name,
                &Preconditions::default(),
                |mut cur| {
                    if let Some(list) = cur
                        .pointer_mut("/metadata/finalizers")
                        .and_then(Value::as_array_mut)
                    {
                        list.retain(|f| f != crd::CLEANUP_FINALIZER);
                    }
                    Ok(Some(cur))
                },
            )
            .await?;
        Ok(())
    }

    /// A resource through which the CRD's instances can be listed and deleted: a served
    /// version if any, else one built from the spec (instances share one key prefix per
    /// group and plural whatever their version).
    fn instances_resource(&self, crd: &Value) -> Option<ResourceInfo> {
        if let Some(first) = serving::served_resources(crd).into_iter().next() {
            return Some(first);
        }
        let names = serving::Names::from(crd, "/spec/names");
        let group = crd.pointer("/spec/group").and_then(Value::as_str)?;
        if names.plural.is_empty() {
            return None;
        }
        let version = crd
            .pointer("/spec/versions/0/name")
            .and_then(Value::as_str)
            .unwrap_or("v1");
        Some(ResourceInfo {
            group: group.to_string(),
            version: version.to_string(),
            kind: names.kind,
            plural: names.plural,
            singular: names.singular,
            namespaced: crd.pointer("/spec/scope").and_then(Value::as_str) != Some("Cluster"),
            verbs: Vec::new(),
            short_names: Vec::new(),
            categories: Vec::new(),
            subresources: Vec::new(),
            list_kind: names.list_kind,
            definition: String::new(),
            custom: None,
        })
    }

    /// Deletes every instance; how many remain (held by their own finalizers).
    async fn delete_instances(&self, res: &ResourceInfo) -> Result<usize, ApiError> {
        let mut remaining = 0usize;
        for obj in list_all(&self.service, res)? {
            let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str) else {
                continue;
            };
            let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
            // Through the service, as a client's delete would go (finalizers, propagation).
            match self
                .service
                .delete(res, ns, name, &Preconditions::default(), false)
                .await
            {
                Ok((_, true)) => {}
                Ok((_, false)) => remaining += 1,
                Err(e) if e.code() == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(remaining)
    }
}
