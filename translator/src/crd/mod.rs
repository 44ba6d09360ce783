//! CustomResourceDefinitions and custom resources: CRD validation (`definition`), what a
//! version's structural schema does to an object (`structural`: pruning, defaulting,
//! validation), `x-kubernetes-validations` (`cel`) and what a CRD serves (`serving`).
//!
//! The entry points below are what the shared write path calls: the service code is the
//! same for built-ins and custom resources, and asks here for the per-resource parts.

pub mod cel;
pub mod definition;
pub mod serving;
pub mod structural;

use serde_json::{Value, json};

use crate::error::Cause;
use crate::registry::ResourceInfo;

/// The finalizer a CRD carries until its custom resources are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Whether `res` is `customresourcedefinitions.apiextensions.k8s.io`.
pub fn is_crd(res: &ResourceInfo) -> bool {
    res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions"
}

/// The structural schema of a custom resource's version (`None` for built-ins).
pub fn schema_of(res: &ResourceInfo) -> Option<&Value> {
    res.custom.as_ref()?.schema.as_ref()
}

/// Prunes fields the version's schema does not know; their paths, or `None` when `res`
/// has no custom schema.
pub fn prune(res: &ResourceInfo, obj: &mut Value) -> Option<Vec<String>> {
    let schema = schema_of(res)?;
    Some(structural::prune(schema, obj))
}

/// Schema, CEL and CRD rules for `obj` (on update against `old`), beside the metadata rules.
pub fn causes(res: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    if is_crd(res) {
        return definition::crd_causes(obj, old);
    }
    let Some(schema) = schema_of(res) else {
        return Vec::new();
    };
    let mut causes = structural::validate(schema, obj);
    if causes.is_empty() {
        causes.extend(cel::validate(schema, obj, old));
    }
    causes
}

/// Defaults of a custom resource's schema, or a CRD's v1 defaults.
pub fn apply_defaults(res: &ResourceInfo, obj: &mut Value) {
    if is_crd(res) {
        definition::apply_crd_defaults(obj);
    } else if let Some(schema) = schema_of(res) {
        structural::apply_defaults(schema, obj);
    }
}

/// A new CRD: the cleanup finalizer, and a status with the storage version stored and
/// nothing accepted yet (the CRD's home node fills in names and conditions).
pub fn prepare_crd_for_create(crd: &mut Value) {
    let Some(root) = crd.as_object_mut() else {
        return;
    };
    let storage: Vec<Value> = root
        .get("spec")
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage") == Some(&Value::Bool(true)))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    root.insert(
        "status".into(),
        json!({"acceptedNames": {"plural": "", "kind": ""}, "conditions": [], "storedVersions": storage}),
    );
    if let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut) {
        let finalizers = meta.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(list) = finalizers.as_array_mut()
            && !list.iter().any(|f| f == CLEANUP_FINALIZER)
        {
            list.push(json!(CLEANUP_FINALIZER));
        }
    }
}

/// Upstream refuses new custom resources while their CRD is terminating (its controller is
/// deleting them): 405 `create not allowed while custom resource definition is terminating`.
pub fn check_create_allowed(
    service: &crate::service::ObjectService,
    res: &ResourceInfo,
) -> crate::error::Result<()> {
    let Some(custom) = res.custom.as_ref() else {
        return Ok(());
    };
    let Some(crds) =
        service
            .registry
            .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    else {
        return Ok(());
    };
    match service.store.get(&crds, None, &custom.crd_name) {
        Ok(crd) if crd.pointer("/metadata/deletionTimestamp").is_some() => {
            Err(crate::error::ApiError::method_not_allowed(
                "create not allowed while custom resource definition is terminating",
            ))
        }
        _ => Ok(()),
    }
}

/// Whether an update of a custom resource changes what `metadata.generation` counts, as
/// upstream's custom resource strategy decides: everything but metadata, and but status
/// when the status subresource is enabled. `None` for other resources.
pub fn generation_changed(res: &ResourceInfo, old: &Value, new: &Value) -> Option<bool> {
    let custom = res.custom.as_ref()?;
    let content = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            for k in ["metadata", "apiVersion", "kind"] {
                m.remove(k);
            }
            if custom.status {
                m.remove("status");
            }
        }
        v
    };
    Some(content(old) != content(new))
}

/// A stored custom resource as the version `res` serves it: `None` conversion rewrites
/// `apiVersion`, then, as upstream's schema-coercing converter and decoder do, fields the
/// version's schema does not know are pruned (an object written through a deprecated
/// version keeps none of that version's own fields when read at another) and the version's
/// defaults apply.
pub fn to_served(res: &ResourceInfo, mut obj: Value) -> Value {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), Value::from(res.api_version()));
    }
    if let Some(schema) = schema_of(res) {
        structural::prune(schema, &mut obj);
        structural::apply_defaults(schema, &mut obj);
    }
    obj
}

/// The scale subresource's definition of a custom resource version, if enabled.
pub fn scale_spec(res: &ResourceInfo) -> Option<&Value> {
    res.custom.as_ref()?.scale.as_ref()
}

/// Where a resource keeps its desired replicas: the CRD's `specReplicasPath`, or
/// `.spec.replicas` for the built-in workloads.
pub fn spec_replicas_path(res: &ResourceInfo) -> String {
    scale_spec(res)
        .and_then(|s| s.get("specReplicasPath"))
        .and_then(Value::as_str)
        .unwrap_or(".spec.replicas")
        .to_string()
}

/// The autoscaling/v1 Scale of a custom resource, read through the CRD's paths, as
/// apiextensions-apiserver's scale subresource builds it.
pub fn scale_view(scale: &Value, obj: &Value) -> Value {
    let path = |k: &str| scale.get(k).and_then(Value::as_str).unwrap_or_default();
    let replicas = |p: &str| {
        if p.is_empty() {
            json!(0)
        } else {
            get_path(obj, p)
                .filter(|v| v.is_i64())
                .cloned()
                .unwrap_or(json!(0))
        }
    };
    let mut meta = json!({});
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = obj.pointer(&format!("/metadata/{f}")) {
            meta[f] = v.clone();
        }
    }
    let mut status = json!({"replicas": replicas(path("statusReplicasPath"))});
    let selector_path = path("labelSelectorPath");
    if !selector_path.is_empty()
        && let Some(Value::String(sel)) = get_path(obj, selector_path)
    {
        status["selector"] = json!(sel);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": replicas(path("specReplicasPath"))},
        "status": status,
    })
}

/// Reads a JSONPath-lite (`.spec.replicas`) as the scale subresource's paths are written.
pub fn get_path<'v>(obj: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = obj;
    for seg in path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
    {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

/// Sets a JSONPath-lite (`.spec.replicas`), creating objects on the way.
pub fn set_path(obj: &mut Value, path: &str, value: Value) {
    let segs: Vec<&str> = path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .collect();
    let mut cur = obj;
    for (i, seg) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        if i + 1 == segs.len() {
            map.insert((*seg).to_string(), value);
            return;
        }
        cur = map.entry((*seg).to_string()).or_insert_with(|| json!({}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_counts_status_only_without_the_status_subresource() {
        let res = |status: bool| ResourceInfo {
            custom: Some(std::sync::Arc::new(crate::registry::CustomVersion {
                status,
                ..Default::default()
            })),
            ..Default::default()
        };
        let old = json!({"metadata": {"name": "a"}, "spec": {"x": 1}});
        let status_only = json!({"metadata": {"name": "a", "labels": {"l": "v"}}, "spec": {"x": 1}, "status": {"ok": true}});
        assert_eq!(
            generation_changed(&res(true), &old, &status_only),
            Some(false)
        );
        assert_eq!(
            generation_changed(&res(false), &old, &status_only),
            Some(true)
        );
        assert_eq!(
            generation_changed(&ResourceInfo::default(), &old, &status_only),
            None
        );
    }

    /// An object written through a deprecated version, read at the storage version: the
    /// old version's own (defaulted) field is gone; read back at the old version, its
    /// default is there again.
    #[test]
    fn reads_prune_and_default_by_the_served_version() {
        let version = |name: &str, spec: Value| ResourceInfo {
            group: "source.example.io".into(),
            version: name.into(),
            custom: Some(std::sync::Arc::new(crate::registry::CustomVersion {
                schema: Some(json!({"type": "object", "properties": {
                    "spec": {"type": "object", "properties": spec}}})),
                ..Default::default()
            })),
            ..Default::default()
        };
        let v1 = version("v1", json!({"url": {"type": "string"}}));
        let v1beta1 = version(
            "v1beta1",
            json!({"url": {"type": "string"},
                "gitImplementation": {"type": "string", "default": "go-git"}}),
        );
        let stored = json!({"apiVersion": "source.example.io/v1beta1", "kind": "GitRepository",
            "metadata": {"name": "a"}, "spec": {"url": "https://x", "gitImplementation": "go-git"}});
        let at_v1 = to_served(&v1, stored.clone());
        assert_eq!(at_v1["apiVersion"], "source.example.io/v1");
        assert_eq!(at_v1["spec"], json!({"url": "https://x"}));
        assert_eq!(at_v1["metadata"]["name"], "a");
        let at_beta = to_served(&v1beta1, at_v1);
        assert_eq!(at_beta["spec"]["gitImplementation"], "go-git");
    }

    #[test]
    fn paths_read_and_write() {
        let mut v = json!({"spec": {"replicas": 2}});
        assert_eq!(get_path(&v, ".spec.replicas"), Some(&json!(2)));
        set_path(&mut v, ".status.replicas", json!(3));
        assert_eq!(v["status"]["replicas"], 3);
    }

    #[test]
    fn a_new_crd_gets_the_finalizer_and_stored_version() {
        let mut crd = json!({"metadata": {"name": "a.b.c"}, "spec": {"versions": [
            {"name": "v1", "storage": true}, {"name": "v2", "storage": false}]}});
        prepare_crd_for_create(&mut crd);
        assert_eq!(crd["metadata"]["finalizers"], json!([CLEANUP_FINALIZER]));
        assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    }
}
