//! What the DaemonSet, Job and CronJob controllers share: reading the replica, recording
//! events as upstream's recorders do, writing `/status`, deleting a dependent by uid, and
//! the small pod predicates (owned, active, ready) they all count with.

use std::collections::BTreeMap;
use std::sync::Arc;

use beemesh_translator::conversion;
use beemesh_translator::deletion::{DeleteOptions, Propagation};
use beemesh_translator::service::{ObjectService, Part, WriteOptions};
use beemesh_translator::store::{
    EventKind, ListRequest, Preconditions, Subscription, list_prefix, parse_stored,
};
use beemesh_translator::{ApiError, ResourceInfo};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use serde_json::{Value, json};

/// What a controller derived from each stored object of one resource, kept between its
/// passes and kept current from the replica's change stream (an informer's cache): a pass
/// re-derives only the objects written since the last one. At 30,000 pods, passes that
/// listed (an LSM scan) and parsed every pod again dominated the controllers.
pub(crate) struct ParsedCache<T> {
    /// By storage key: the stored bytes and what was derived from them.
    entries: BTreeMap<Bytes, (Bytes, Arc<T>)>,
    /// Changes after the last list or drained event; `None` until the first list, and
    /// again when the stream lagged (the next refresh lists anew).
    changes: Option<Subscription>,
}

impl<T> Default for ParsedCache<T> {
    fn default() -> Self {
        ParsedCache {
            entries: BTreeMap::new(),
            changes: None,
        }
    }
}

impl<T> ParsedCache<T> {
    /// The objects of `res` on this node's replica, in key order, each derived by `derive`
    /// from its stored bytes once per stored version. Objects that are gone are forgotten.
    pub fn refresh(
        &mut self,
        service: &ObjectService,
        res: &ResourceInfo,
        mut derive: impl FnMut(&Bytes) -> Result<T, ApiError>,
    ) -> Result<Vec<Arc<T>>, ApiError> {
        if !self.follow(res, &mut derive)? {
            self.relist(service, res, &mut derive)?;
        }
        Ok(self.entries.values().map(|(_, d)| d.clone()).collect())
    }

    /// Applies the changes the stream holds now; false when there is no stream (or it
    /// lagged) and the objects must be listed.
    fn follow(
        &mut self,
        res: &ResourceInfo,
        derive: &mut impl FnMut(&Bytes) -> Result<T, ApiError>,
    ) -> Result<bool, ApiError> {
        // A resource served at another version than stored changes in storage form.
        if conversion::needs_conversion(res) {
            return Ok(false);
        }
        let Some(changes) = self.changes.as_mut() else {
            return Ok(false);
        };
        let prefix = list_prefix(res, None);
        loop {
            // `next` is cancel-safe: polled once, it yields what is queued or nothing. Out
            // of tokio's cooperative budget, which would otherwise answer "nothing" after
            // 128 events and leave the rest for later passes.
            let event = match tokio::task::unconstrained(changes.next()).now_or_never() {
                None => return Ok(true),
                Some(Ok(event)) => event,
                Some(Err(_)) => {
                    self.changes = None;
                    return Ok(false);
                }
            };
            if !event.key.starts_with(&prefix) {
                continue;
            }
            match event.kind {
                EventKind::Delete => {
                    self.entries.remove(&event.key);
                }
                EventKind::Put => {
                    let unchanged = self
                        .entries
                        .get(&event.key)
                        .is_some_and(|(seen, _)| *seen == event.value);
                    if !unchanged {
                        let derived = Arc::new(derive(&event.value)?);
                        self.entries
                            .insert(event.key.clone(), (event.value.clone(), derived));
                    }
                }
            }
        }
    }

    /// Lists every object and subscribes to the changes after the list; objects whose
    /// bytes did not change keep what was derived from them.
    fn relist(
        &mut self,
        service: &ObjectService,
        res: &ResourceInfo,
        derive: &mut impl FnMut(&Bytes) -> Result<T, ApiError>,
    ) -> Result<(), ApiError> {
        let (revision, listed) = service.store.list_entries(res)?;
        self.changes = service.store.replica().subscribe(revision);
        let mut next = BTreeMap::new();
        for (key, bytes) in listed {
            let derived = match self.entries.remove(&key) {
                Some((seen, derived)) if seen == bytes => derived,
                _ => Arc::new(derive(&bytes)?),
            };
            next.insert(key, (bytes, derived));
        }
        self.entries = next;
        Ok(())
    }
}

/// [`ParsedCache::refresh`] of plain JSON objects.
pub(crate) fn refresh_values(
    cache: &std::sync::Mutex<ParsedCache<Value>>,
    service: &ObjectService,
    res: &ResourceInfo,
) -> Result<Vec<Arc<Value>>, ApiError> {
    // A cache left half-refreshed by a panic only costs parses.
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache.refresh(service, res, |b| parse_stored(b))
}

pub(crate) fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn meta<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Whether `obj`'s controller ownerReference points at `uid`.
pub(crate) fn controlled_by(obj: &Value, uid: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("controller").and_then(Value::as_bool) == Some(true)
                    && str_at(r, "/uid") == uid
            })
        })
}

/// A controller ownerReference to `owner` (upstream's `NewControllerRef`).
pub(crate) fn controller_ref(api_version: &str, kind: &str, owner: &Value) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": meta(owner, "name"),
        "uid": meta(owner, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

pub(crate) fn phase(pod: &Value) -> &str {
    str_at(pod, "/status/phase")
}

pub(crate) fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

/// Upstream's IsPodActive: not Succeeded, not Failed, not being deleted.
pub(crate) fn is_active(pod: &Value) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && !deleting(pod)
}

fn ready_condition(pod: &Value) -> Option<&Value> {
    pod.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| str_at(c, "/type") == "Ready")
}

pub(crate) fn is_ready(pod: &Value) -> bool {
    ready_condition(pod).is_some_and(|c| str_at(c, "/status") == "True")
}

pub(crate) fn time_of(v: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v?.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Upstream's IsPodAvailable: Ready for at least `min_ready` seconds.
pub(crate) fn is_available(pod: &Value, min_ready: i64, now: DateTime<Utc>) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready <= 0 {
        return true;
    }
    time_of(ready_condition(pod).and_then(|c| c.get("lastTransitionTime")))
        .is_some_and(|t| t + chrono::Duration::seconds(min_ready) <= now)
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The store access and writes a controller makes, with the component name its events
/// are reported under.
pub(crate) struct Client {
    pub service: ObjectService,
    pub component: &'static str,
}

impl Client {
    pub fn resource(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Result<Arc<ResourceInfo>, ApiError> {
        self.service.registry.served(group, version, plural)
    }

    /// Every object of `res` on this node's replica.
    pub fn list(&self, res: &ResourceInfo) -> Result<Vec<Value>, ApiError> {
        let page = self.service.store.list(res, &ListRequest::latest(None))?;
        page.items.iter().map(|i| parse_stored(i)).collect()
    }

    pub fn is_home(&self, res: &ResourceInfo, obj: &Value) -> bool {
        self.service
            .store
            .is_home(res, Some(meta(obj, "namespace")), meta(obj, "name"))
    }

    /// An event on `owner` as upstream's recorder writes it; failing to record one is not
    /// an error.
    pub async fn event(&self, owner: &Value, type_: &str, reason: &str, message: String) {
        let Some(events) = self.service.registry.get("", "v1", "events") else {
            return;
        };
        let (ns, name) = (meta(owner, "namespace"), meta(owner, "name"));
        let now = beemesh_translator::service::now_rfc3339();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{nanos:x}"), "namespace": ns},
            "involvedObject": {"apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"),
                               "name": name, "namespace": ns, "uid": meta(owner, "uid"),
                               "resourceVersion": meta(owner, "resourceVersion")},
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": self.component},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": self.component,
        });
        if let Err(e) = self
            .service
            .create(&events, Some(ns), event, &WriteOptions::default())
            .await
        {
            tracing::debug!(error = %e, component = self.component, "event not recorded");
        }
    }

    /// Creates `pods` for `owner` in order, recording upstream's `SuccessfulCreate` event
    /// for each, or `FailedCreate` and stopping at the first refusal (a quota, say, refuses
    /// the rest too). Returns the created pods' names and the refusal, if any.
    pub async fn create_pods(
        &self,
        pods_res: &ResourceInfo,
        owner: &Value,
        pods: Vec<Value>,
    ) -> (Vec<String>, Option<ApiError>) {
        let mut created = Vec::new();
        for pod in pods {
            match self
                .service
                .create(
                    pods_res,
                    Some(meta(owner, "namespace")),
                    pod,
                    &WriteOptions::default(),
                )
                .await
            {
                Ok(w) => {
                    let name = meta(&w.object, "name").to_string();
                    self.event(
                        owner,
                        "Normal",
                        "SuccessfulCreate",
                        format!("Created pod: {name}"),
                    )
                    .await;
                    created.push(name);
                }
                Err(e) => {
                    self.event(
                        owner,
                        "Warning",
                        "FailedCreate",
                        format!("Error creating: {e}"),
                    )
                    .await;
                    return (created, Some(e));
                }
            }
        }
        (created, None)
    }

    /// Replaces `owner`'s status when it differs (404 and a changed uid are ignored: the
    /// object is gone).
    pub async fn write_status(
        &self,
        res: &ResourceInfo,
        owner: &Value,
        status: &Value,
    ) -> Result<(), ApiError> {
        if owner.get("status") == Some(status) {
            return Ok(());
        }
        let uid = meta(owner, "uid").to_string();
        let r = self
            .service
            .update(
                res,
                Some(meta(owner, "namespace")),
                meta(owner, "name"),
                Part::Status,
                &WriteOptions::default(),
                |cur| {
                    if meta(cur, "uid") != uid {
                        return Err(ApiError::not_found(&res.group, &res.plural, ""));
                    }
                    let mut new = cur.clone();
                    new["status"] = status.clone();
                    Ok(new)
                },
            )
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.code() == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes `obj` if it still has its uid; false when it was already gone.
    pub async fn delete(
        &self,
        res: &ResourceInfo,
        obj: &Value,
        propagation: Option<Propagation>,
    ) -> Result<bool, ApiError> {
        let opts = DeleteOptions {
            preconditions: Preconditions {
                uid: Some(meta(obj, "uid").to_string()),
                resource_version: None,
            },
            propagation,
            ..Default::default()
        };
        match self
            .service
            .delete_with(res, Some(meta(obj, "namespace")), meta(obj, "name"), &opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == 404 || e.code() == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Creates and deletes a controller made that this node's replica does not show yet, per
/// controller uid, so a second pass during churn cannot over-create or over-delete
/// (upstream's ControllerExpectations, with the ReplicaSet controller's 30 s timeout).
#[derive(Debug, Default)]
pub(crate) struct Expectations(std::sync::Mutex<std::collections::HashMap<String, Expected>>);

#[derive(Debug)]
pub(crate) struct Expected {
    adds: std::collections::HashSet<String>,
    dels: std::collections::HashSet<String>,
    set_at: std::time::Instant,
}

const EXPECTATIONS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Expectations {
    /// Clears what `pods` show done; true when nothing remains (or it is too old).
    pub fn satisfied(&self, key: &str, pods: &[&Value]) -> bool {
        let Ok(mut map) = self.0.lock() else {
            return true;
        };
        let Some(exp) = map.get_mut(key) else {
            return true;
        };
        exp.adds
            .retain(|name| !pods.iter().any(|p| meta(p, "name") == name));
        exp.dels
            .retain(|uid| pods.iter().any(|p| meta(p, "uid") == uid && !deleting(p)));
        if (exp.adds.is_empty() && exp.dels.is_empty())
            || exp.set_at.elapsed() > EXPECTATIONS_TIMEOUT
        {
            map.remove(key);
            return true;
        }
        false
    }

    /// Records created pod names and deleted pod uids.
    pub fn expect(&self, key: &str, adds: Vec<String>, dels: Vec<String>) {
        if adds.is_empty() && dels.is_empty() {
            return;
        }
        if let Ok(mut map) = self.0.lock() {
            let exp = map.entry(key.to_string()).or_insert_with(|| Expected {
                adds: Default::default(),
                dels: Default::default(),
                set_at: std::time::Instant::now(),
            });
            exp.adds.extend(adds);
            exp.dels.extend(dels);
            exp.set_at = std::time::Instant::now();
        }
    }

    /// Drops the expectations of controllers that no longer exist.
    pub fn forget_others(&self, live: &std::collections::HashSet<String>) {
        if let Ok(mut map) = self.0.lock() {
            map.retain(|k, _| live.contains(k));
        }
    }
}
