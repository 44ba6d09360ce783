//! The namespace controller: gives every active namespace its `default` ServiceAccount
//! and `kube-root-ca.crt` ConfigMap, and empties a Terminating namespace before removing
//! it (the `kubernetes` finalizer), as kube-controller-manager does.

use std::time::Duration;

use beemesh_translator::deletion::{DeleteOptions, Propagation};
use beemesh_translator::service::{ObjectService, Part, WriteOptions};
use beemesh_translator::store::{ListRequest, Preconditions, parse_stored};
use beemesh_translator::{ApiError, ResourceInfo};

use crate::change_wait::wait_for_change;
use serde_json::{Value, json};

/// How often every namespace is re-checked even without a change to it.
const RESYNC: Duration = Duration::from_secs(10);
/// How often a Terminating namespace is re-checked while content remains.
const TERMINATING_POLL: Duration = Duration::from_millis(500);

pub struct NamespaceController {
    service: ObjectService,
    root_ca_pem: String,
}

fn name_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/name").and_then(Value::as_str)
}

impl NamespaceController {
    pub fn new(service: ObjectService, root_ca_pem: String) -> Self {
        NamespaceController {
            service,
            root_ca_pem,
        }
    }

    fn resource(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Result<std::sync::Arc<ResourceInfo>, ApiError> {
        self.service
            .registry
            .get(group, version, plural)
            .ok_or_else(|| ApiError::internal(format!("{plural} is not served")))
    }

    /// Runs forever: reconciles all namespaces on start, on every namespace change and
    /// every `RESYNC`.
    pub async fn run(self) {
        loop {
            // Read before the pass, so a change during it wakes the next one.
            let from = self.service.store.revision();
            let terminating = match self.reconcile_all().await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "namespace reconcile failed");
                    true
                }
            };
            let wait = if terminating {
                TERMINATING_POLL
            } else {
                RESYNC
            };
            let Ok(namespaces) = self.resource("", "v1", "namespaces") else {
                return;
            };
            wait_for_change(&self.service, &namespaces, from, wait, |_| true).await;
        }
    }

    /// One pass over every namespace; true while some namespace is still terminating.
    pub async fn reconcile_all(&self) -> Result<bool, ApiError> {
        let namespaces = self.resource("", "v1", "namespaces")?;
        let page = self
            .service
            .store
            .list(&namespaces, &ListRequest::latest(None))?;
        let mut terminating = false;
        for item in page.items {
            let ns = parse_stored(&item)?;
            let Some(name) = name_of(&ns).map(str::to_string) else {
                continue;
            };
            // Each namespace is reconciled by its home node only.
            if !self.service.store.is_home(&namespaces, None, &name) {
                continue;
            }
            if ns.pointer("/metadata/deletionTimestamp").is_some() {
                terminating = true;
                self.finalize(&name).await?;
            } else {
                self.ensure_defaults(&name).await?;
            }
        }
        Ok(terminating)
    }

    async fn ensure_defaults(&self, ns: &str) -> Result<(), ApiError> {
        let sa = self.resource("", "v1", "serviceaccounts")?;
        if self.service.store.get(&sa, Some(ns), "default").is_err() {
            let obj = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
            ignore_exists(
                self.service
                    .create(&sa, Some(ns), obj, &WriteOptions::default())
                    .await,
            )?;
        }
        let cm = self.resource("", "v1", "configmaps")?;
        match self.service.store.get(&cm, Some(ns), "kube-root-ca.crt") {
            Ok(existing)
                if existing.pointer("/data/ca.crt").and_then(Value::as_str)
                    == Some(self.root_ca_pem.as_str()) => {}
            Ok(_) => {
                let pem = self.root_ca_pem.clone();
                self.service
                    .update(
                        &cm,
                        Some(ns),
                        "kube-root-ca.crt",
                        Part::Main,
                        &WriteOptions::default(),
                        |cur| {
                            let mut new = cur.clone();
                            new["data"] = json!({"ca.crt": pem});
                            Ok(new)
                        },
                    )
                    .await?;
            }
            Err(_) => {
                let obj = json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                                 "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                    "data": {"ca.crt": self.root_ca_pem},
                });
                ignore_exists(
                    self.service
                        .create(&cm, Some(ns), obj, &WriteOptions::default())
                        .await,
                )?;
            }
        }
        Ok(())
    }

    /// Deletes everything in a Terminating namespace; once empty, drops the
    /// `kubernetes` finalizer and the namespace itself.
    async fn finalize(&self, ns: &str) -> Result<(), ApiError> {
        let mut remaining = 0usize;
        for res in self.service.registry.all() {
            if !res.namespaced || !res.has_verb("list") || !res.has_verb("delete") {
                continue;
            }
            let page = self
                .service
                .store
                .list(&res, &ListRequest::latest(Some(ns)))?;
            for item in page.items {
                let obj = parse_stored(&item)?;
                let Some(name) = name_of(&obj).map(str::to_string) else {
                    continue;
                };
                remaining += 1;
                // Background, as upstream's namespaced resources deleter: a kind whose
                // default is to orphan (batch/v1 Jobs) must not wait for the collector.
                let opts = DeleteOptions {
                    propagation: Some(Propagation::Background),
                    ..DeleteOptions::default()
                };
                match self.service.delete_with(&res, Some(ns), &name, &opts).await {
                    Ok((_, true)) => remaining -= 1,
                    Ok((_, false)) => {}
                    Err(e) if e.code() == 404 => remaining -= 1,
                    Err(e) => return Err(e),
                }
            }
        }
        if remaining > 0 {
            return Ok(());
        }
        let namespaces = self.resource("", "v1", "namespaces")?;
        let result = self
            .service
            .store
            .update(
                &namespaces,
                None,
                ns,
                &Preconditions::default(),
                |mut cur| {
                    if let Some(spec) = cur.get_mut("spec").and_then(Value::as_object_mut) {
                        spec.insert("finalizers".into(), json!([]));
                    }
                    Ok(Some(cur))
                },
            )
            .await;
        match result {
            Ok(_) => {}
            Err(e) if e.code() == 404 => return Ok(()),
            Err(e) => return Err(e),
        }
        let gone = self
            .service
            .store
            .delete(
                &namespaces,
                None,
                ns,
                &Preconditions::default(),
                &beemesh_translator::service::now_rfc3339(),
            )
            .await;
        match gone {
            Ok(_) => Ok(()),
            Err(e) if e.code() == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn ignore_exists<T>(r: Result<T, ApiError>) -> Result<(), ApiError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code() == 409 => Ok(()),
        Err(e) => Err(e),
    }
}
