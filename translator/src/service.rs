//! The verbs of the API on top of the store: what create, update and delete do to an
//! object before and after it is stored (server-set metadata, defaults, validation,
//! status/spec separation, namespace lifecycle). The HTTP layer and the controllers both
//! go through here, so an object is treated the same whoever writes it.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::catalog::Catalog;
use crate::error::{ApiError, Result};
use crate::registry::{Registry, ResourceInfo};
use crate::store::{ListRequest, ObjectStore, Preconditions, ReadAt};
use crate::validation::{self, FieldValidation};
use crate::{defaulting, names, service_alloc, strategy};

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The object itself: status is kept from the stored object when the kind has `/status`.
    Main,
    /// `/status`: only status changes.
    Status,
}

impl Part {
    /// The part a subresource path segment addresses (`status`, or the object itself).
    pub fn of(subresource: Option<&str>) -> Part {
        if subresource == Some("status") {
            Part::Status
        } else {
            Part::Main
        }
    }
}

/// Options every write carries.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            dry_run: false,
            field_validation: FieldValidation::Strict,
        }
    }
}

/// The result of a write: the object as stored (or as it would be) and warnings.
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// The API verbs over one node's store.
#[derive(Clone)]
pub struct ObjectService {
    pub store: ObjectStore,
    pub registry: Arc<Registry>,
    pub catalog: &'static Catalog,
}

/// RFC 3339 with seconds, as Kubernetes writes timestamps.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn metadata_mut(obj: &mut Value) -> Result<&mut Map<String, Value>> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    meta.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// Everything but metadata and status: what `generation` tracks.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

impl ObjectService {
    pub fn new(store: ObjectStore, registry: Arc<Registry>, catalog: &'static Catalog) -> Self {
        ObjectService {
            store,
            registry,
            catalog,
        }
    }

    fn namespaces(&self) -> Option<Arc<ResourceInfo>> {
        self.registry.get("", "v1", "namespaces")
    }

    /// New content may only go into a namespace that exists and is not terminating
    /// (upstream's NamespaceLifecycle admission, which runs before validation). `name` is
    /// the name the client asked for (empty with generateName).
    fn check_namespace_open(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<()> {
        let (Some(ns), true) = (namespace, res.namespaced) else {
            return Ok(());
        };
        let Some(namespaces) = self.namespaces() else {
            return Ok(());
        };
        let nsobj = self
            .store
            .get(&namespaces, None, ns)
            .map_err(|_| ApiError::not_found("", "namespaces", ns))?;
        if nsobj.pointer("/metadata/deletionTimestamp").is_some() {
            let subject = if name.is_empty() {
                res.group_resource()
            } else {
                format!("{} {name:?}", res.group_resource())
            };
            return Err(ApiError::forbidden(
                &res.group,
                &res.plural,
                name,
                format!(
                    "{subject} is forbidden: unable to create new content in namespace {ns} because it is being terminated"
                ),
            ));
        }
        Ok(())
    }

    /// Defaults, prunes and validates `obj` as `res` (against `old` on update); returns
    /// warnings.
    fn admit(
        &self,
        res: &ResourceInfo,
        obj: &mut Value,
        old: Option<&Value>,
        opts: &WriteOptions,
    ) -> Result<Vec<String>> {
        let warnings =
            validation::validate_and_prune(res, self.catalog, obj, opts.field_validation)?;
        defaulting::apply_defaults(res, obj);
        crate::crd::apply_defaults(res, obj);
        if old.is_none() {
            strategy::prepare_for_create(res, obj);
        }
        if res.group.is_empty() && res.plural == "services" {
            self.allocate_service_addresses(res, obj, old)?;
        }
        match old {
            None => validation::validate(res, obj)?,
            Some(old) => validation::validate_update(res, obj, old)?,
        }
        Ok(warnings)
    }

    /// Gives a Service the cluster IP and node ports it needs (see `service_alloc`),
    /// looking at every other Service this node holds.
    fn allocate_service_addresses(
        &self,
        res: &ResourceInfo,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<()> {
        let this = (
            meta_str(obj, "namespace").unwrap_or_default().to_string(),
            meta_str(obj, "name").unwrap_or_default().to_string(),
        );
        let page = self.store.list(
            res,
            &ListRequest {
                namespace: None,
                read_at: ReadAt::Latest,
                limit: None,
                continue_token: None,
                filter: None,
            },
        )?;
        let mut others = Vec::with_capacity(page.items.len());
        for item in &page.items {
            let svc = crate::store::parse_stored(item)?;
            let same = meta_str(&svc, "namespace") == Some(this.0.as_str())
                && meta_str(&svc, "name") == Some(this.1.as_str());
            if !same {
                others.push(svc);
            }
        }
        service_alloc::allocate(obj, &service_alloc::InUse::from_services(&others), old)
    }

    /// POST: a new object in `namespace`.
    pub async fn create(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written> {
        let requested_name;
        {
            let meta = metadata_mut(&mut obj)?;
            if res.namespaced {
                let ns = namespace.ok_or_else(|| {
                    ApiError::bad_request("the namespace of the object must be set in the URL")
                })?;
                match meta.get("namespace").and_then(Value::as_str) {
                    Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                        return Err(ApiError::bad_request(
                            "the namespace of the provided object does not match the namespace sent on the request",
                        ));
                    }
                    _ => {
                        meta.insert("namespace".into(), json!(ns));
                    }
                }
            } else {
                meta.remove("namespace");
            }
            requested_name = meta
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let has_name = !requested_name.is_empty();
            if !has_name
                && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
                && !prefix.is_empty()
            {
                let name = names::generate(prefix);
                meta.insert("name".into(), json!(name));
            }
            for server_set in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "selfLink",
            ] {
                meta.remove(server_set);
            }
        }
        // Nodes are created with their status (upstream's node strategy keeps it: the
        // kubelet registers a Node with capacity, conditions and addresses at once).
        let keeps_status = res.group.is_empty() && res.plural == "nodes";
        if res.subresource("status").is_some()
            && !keeps_status
            && let Some(map) = obj.as_object_mut()
        {
            map.remove("status");
        }
        self.check_namespace_open(res, namespace, &requested_name)?;
        crate::crd::check_create_allowed(self, res)?;
        // Upstream fills the uid and creationTimestamp before the strategy runs (the Job
        // strategy selects its pods by the uid).
        {
            let meta = metadata_mut(&mut obj)?;
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        }
        let warnings = self.admit(res, &mut obj, None, opts)?;
        if res.group.is_empty() && res.plural == "pods" {
            obj["status"] = json!({"phase": "Pending", "qosClass": pod_qos_class(&obj)});
        }
        if tracks_generation(res) {
            metadata_mut(&mut obj)?.insert("generation".into(), json!(1));
        }
        let ns = if res.namespaced { namespace } else { None };
        // ResourceQuota admission runs last, on the defaulted object (upstream's
        // validating admission, which names the object by its generated name too), and
        // reserves the usage it admits.
        let admitted_name = meta_str(&obj, "name").unwrap_or_default().to_string();
        self.admit_quota(res, ns, &obj, &admitted_name, opts.dry_run)
            .await?;
        if opts.dry_run {
            let name = meta_str(&obj, "name").unwrap_or_default().to_string();
            if self.store.get(res, ns, &name).is_ok() {
                return Err(ApiError::already_exists(&res.group, &res.plural, &name));
            }
            return Ok(Written {
                object: obj,
                warnings,
            });
        }
        let object = self.store.create(res, ns, obj).await?;
        Ok(Written { object, warnings })
    }

    /// PUT or PATCH: `mutate` turns the stored object into the desired one. Retries on
    /// a concurrent change unless the client pinned a resourceVersion (then 409).
    pub async fn update(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        part: Part,
        opts: &WriteOptions,
        mut mutate: impl FnMut(&Value) -> Result<Value>,
    ) -> Result<Written> {
        let ns = if res.namespaced { namespace } else { None };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let current = self.store.get(res, ns, name)?;
            let desired = mutate(&current)?;
            let client_rv = meta_str(&desired, "resourceVersion")
                .filter(|rv| !rv.is_empty())
                .map(str::to_string);
            if let Some(rv) = &client_rv {
                crate::store::parse_resource_version(rv).map_err(|_| {
                    ApiError::invalid(
                        &res.group,
                        &res.kind,
                        name,
                        vec![crate::Cause::invalid(
                            "metadata.resourceVersion",
                            format!("Invalid value: {rv:?}: must be a decimal number"),
                        )],
                    )
                })?;
            }
            // Preconditions before anything else, as upstream's GuaranteedUpdate: a uid in
            // the body must be the stored object's, a resourceVersion the current one.
            let current_uid = meta_str(&current, "uid").unwrap_or_default();
            if let Some(uid) = meta_str(&desired, "uid").filter(|u| !u.is_empty())
                && uid != current_uid
            {
                return Err(ApiError::conflict(
                    &res.group,
                    &res.plural,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {current_uid}"
                    ),
                ));
            }
            let current_rv = meta_str(&current, "resourceVersion").map(str::to_string);
            if let Some(rv) = &client_rv
                && Some(rv) != current_rv.as_ref()
            {
                return Err(ApiError::conflict(
                    &res.group,
                    &res.plural,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                ));
            }
            let (mut new, warnings) =
                self.prepare_update(res, name, part, &current, desired, opts)?;
            keep_managed_fields_times(&current, &mut new);
            self.admit_quota_update(res, ns, &current, &new, name, opts.dry_run)
                .await?;
            if opts.dry_run {
                if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut)
                    && let Some(rv) = &current_rv
                {
                    m.insert("resourceVersion".into(), json!(rv));
                }
                return Ok(Written {
                    object: new,
                    warnings,
                });
            }
            let pre = Preconditions {
                resource_version: current_rv,
                uid: None,
            };
            if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            let result = self
                .store
                .update(res, ns, name, &pre, |_| Ok(Some(new)))
                .await;
            match result {
                Err(e) if e.reason() == "Conflict" && client_rv.is_none() && attempts < 20 => {
                    continue;
                }
                Err(e) => return Err(e),
                Ok(object) => return Ok(Written { object, warnings }),
            }
        }
    }

    fn prepare_update(
        &self,
        res: &ResourceInfo,
        name: &str,
        part: Part,
        current: &Value,
        desired: Value,
        opts: &WriteOptions,
    ) -> Result<(Value, Vec<String>)> {
        if !desired.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        if let Some(body_name) = meta_str(&desired, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let (Some(a), Some(b)) = (
            meta_str(&desired, "namespace"),
            meta_str(current, "namespace"),
        ) && !a.is_empty()
            && a != b
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let has_status = res.subresource("status").is_some();
        let mut new = match part {
            Part::Status => {
                let mut new = current.clone();
                match desired.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                // managedFields record the status write itself (upstream's
                // ResetObjectMetaForStatus keeps them from the new object).
                if let Some(mf) = desired.pointer("/metadata/managedFields")
                    && let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    m.insert("managedFields".into(), mf.clone());
                }
                new
            }
            Part::Main => {
                let mut new = desired;
                if has_status && let Some(m) = new.as_object_mut() {
                    match current.get("status") {
                        Some(s) => {
                            m.insert("status".into(), s.clone());
                        }
                        None => {
                            m.remove("status");
                        }
                    }
                }
                new
            }
        };
        // Server-set metadata always comes from the stored object.
        {
            let cur_meta = current
                .get("metadata")
                .cloned()
                .unwrap_or_else(|| json!({}));
            let meta = metadata_mut(&mut new)?;
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "name",
                "namespace",
            ] {
                match cur_meta.get(field) {
                    Some(v) => {
                        meta.insert(field.into(), v.clone());
                    }
                    None => {
                        meta.remove(field);
                    }
                }
            }
            meta.remove("selfLink");
        }
        let warnings = self.admit(res, &mut new, Some(current), opts)?;
        let content_changed = crate::crd::generation_changed(res, current, &new)
            .unwrap_or_else(|| spec_part(&new) != spec_part(current));
        if tracks_generation(res) && content_changed {
            let generation = current
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            metadata_mut(&mut new)?.insert("generation".into(), json!(generation));
        }
        Ok((new, warnings))
    }

    /// DELETE with default options (the kind's default propagation, the pod's own grace
    /// period): removes the object, or marks it for deletion while finalizers remain. A
    /// namespace turns Terminating; the namespace controller empties and removes it.
    /// See `deletion` for the options.
    pub async fn delete(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        pre: &Preconditions,
        dry_run: bool,
    ) -> Result<(Value, bool)> {
        let opts = crate::deletion::DeleteOptions {
            preconditions: pre.clone(),
            dry_run,
            ..Default::default()
        };
        self.delete_with(res, namespace, name, &opts).await
    }
}

/// Upstream's IgnoreManagedFieldsTimestampsTransformer: when a write changes nothing but
/// managedFields timestamps (the entries otherwise equal, the object otherwise equal), the
/// old timestamps are kept, so the write is a no-op and consumes no resourceVersion.
fn keep_managed_fields_times(current: &Value, new: &mut Value) {
    let entries = |obj: &Value| {
        obj.pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (old_entries, new_entries) = (entries(current), entries(new));
    if old_entries.is_empty() || old_entries.len() != new_entries.len() {
        return;
    }
    let without_time = |e: &Value| {
        let mut e = e.clone();
        if let Some(m) = e.as_object_mut() {
            m.remove("time");
        }
        e
    };
    let same_but_times = old_entries
        .iter()
        .zip(&new_entries)
        .all(|(a, b)| without_time(a) == without_time(b));
    if !same_but_times || old_entries == new_entries {
        return;
    }
    let rest = |obj: &Value| {
        let mut obj = obj.clone();
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
            m.remove("resourceVersion");
        }
        obj
    };
    if rest(current) == rest(new)
        && let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut)
    {
        m.insert("managedFields".into(), Value::Array(old_entries));
    }
}

/// Namespaces every cluster has; `bootstrap_namespaces` creates them.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

impl ObjectService {
    /// Creates the system namespaces that do not exist yet, and the `kubernetes` Service
    /// in `default` (see `bootstrap`). Idempotent: a node runs it on every start, and
    /// tests run it on a fresh store.
    pub async fn bootstrap_namespaces(&self) -> Result<()> {
        let namespaces = self
            .namespaces()
            .ok_or_else(|| ApiError::internal("namespaces are not served"))?;
        for ns in SYSTEM_NAMESPACES {
            if self.store.get(&namespaces, None, ns).is_ok() {
                continue;
            }
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            match self
                .create(&namespaces, None, obj, &WriteOptions::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.reason() == "AlreadyExists" => {}
                Err(e) => return Err(e),
            }
        }
        self.bootstrap_kubernetes_service().await
    }
}

/// Kinds whose `metadata.generation` counts spec changes (those with a status to report on).
fn tracks_generation(res: &ResourceInfo) -> bool {
    // Custom resources always count generations, with or without `/status`.
    res.custom.is_some()
        || (res.subresource("status").is_some()
            && !(res.group.is_empty() && res.plural == "namespaces"))
}

/// The QoS class upstream records on a new Pod: BestEffort without requests or limits,
/// Guaranteed when every container's cpu and memory limits equal its requests.
fn pod_qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|f| pod.pointer(&format!("/spec/{f}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let resources = |c: &Value, kind: &str, name: &str| {
        c.pointer(&format!("/resources/{kind}/{name}")).cloned()
    };
    let any_set = containers.iter().any(|c| {
        ["requests", "limits"].iter().any(|k| {
            c.pointer(&format!("/resources/{k}"))
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
        })
    });
    if !any_set {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = resources(c, "limits", r);
            let request = resources(c, "requests", r).or_else(|| limit.clone());
            limit.is_some() && limit == request
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
