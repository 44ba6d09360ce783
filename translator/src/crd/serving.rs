//! What a CRD serves: one `ResourceInfo` per served version (names from
//! `status.acceptedNames`), the version order discovery lists, and the naming check that
//! decides `NamesAccepted` against the other CRDs and the built-in resources.

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::Value;

use crate::registry::{CustomVersion, Registry, ResourceInfo, SubresourceInfo};

const ALL_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn s<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn strings(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The CRD's names as served: `status.acceptedNames` once the naming check accepted them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Names {
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
}

impl Names {
    pub fn from(crd: &Value, pointer: &str) -> Names {
        let kind = s(crd, &format!("{pointer}/kind")).to_string();
        let singular = match s(crd, &format!("{pointer}/singular")) {
            "" => kind.to_lowercase(),
            x => x.to_string(),
        };
        let list_kind = match s(crd, &format!("{pointer}/listKind")) {
            "" if !kind.is_empty() => format!("{kind}List"),
            x => x.to_string(),
        };
        Names {
            plural: s(crd, &format!("{pointer}/plural")).to_string(),
            singular,
            kind,
            list_kind,
            short_names: strings(crd, &format!("{pointer}/shortNames")),
            categories: strings(crd, &format!("{pointer}/categories")),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({
            "plural": self.plural, "singular": self.singular,
            "kind": self.kind, "listKind": self.list_kind,
        });
        if !self.short_names.is_empty() {
            v["shortNames"] = serde_json::json!(self.short_names);
        }
        if !self.categories.is_empty() {
            v["categories"] = serde_json::json!(self.categories);
        }
        v
    }
}

/// Kubernetes version priority (`version.CompareKubeAwareVersionStrings`): GA > beta >
/// alpha, higher numbers first, then other strings alphabetically.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((major, 3, 0));
        }
        for (prefix, rank) in [("beta", 2u8), ("alpha", 1u8)] {
            if let Some(n) = tail.strip_prefix(prefix) {
                let minor: u64 = n.parse().ok()?;
                return Some((major, rank, minor));
            }
        }
        None
    }
    match (parse(a), parse(b)) {
        (Some((ma, ra, na)), Some((mb, rb, nb))) => rb.cmp(&ra).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// Whether the CRD's `Established` condition is True.
pub fn is_established(crd: &Value) -> bool {
    condition_status(crd, "Established") == Some("True")
}

/// The status of condition `kind` on the CRD.
pub fn condition_status<'v>(crd: &'v Value, kind: &str) -> Option<&'v str> {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
}

/// The resources a CRD serves: one per served version, once its names are accepted
/// (empty before). Versions come in discovery order (highest priority first).
pub fn served_resources(crd: &Value) -> Vec<ResourceInfo> {
    let names = Names::from(crd, "/status/acceptedNames");
    if names.plural.is_empty() || names.kind.is_empty() || !is_established(crd) {
        return Vec::new();
    }
    let group = s(crd, "/spec/group").to_string();
    let crd_name = s(crd, "/metadata/name").to_string();
    let namespaced = s(crd, "/spec/scope") != "Cluster";
    let mut versions: Vec<&Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|v| v.get("served") == Some(&Value::Bool(true)))
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by(|a, b| compare_versions(s(a, "/name"), s(b, "/name")));
    versions
        .into_iter()
        .map(|v| {
            let version = s(v, "/name").to_string();
            let status = v
                .pointer("/subresources/status")
                .is_some_and(|x| !x.is_null());
            let scale = v
                .pointer("/subresources/scale")
                .filter(|x| !x.is_null())
                .cloned();
            let mut subresources = Vec::new();
            if status {
                subresources.push(SubresourceInfo {
                    name: "status".into(),
                    group: group.clone(),
                    version: version.clone(),
                    kind: names.kind.clone(),
                    verbs: vec!["get".into(), "patch".into(), "update".into()],
                });
            }
            if scale.is_some() {
                subresources.push(SubresourceInfo {
                    name: "scale".into(),
                    group: "autoscaling".into(),
                    version: "v1".into(),
                    kind: "Scale".into(),
                    verbs: vec!["get".into(), "patch".into(), "update".into()],
                });
            }
            let deprecation_warning = if v.get("deprecated") == Some(&Value::Bool(true)) {
                Some(match v.get("deprecationWarning").and_then(Value::as_str) {
                    Some(w) => w.to_string(),
                    None => format!("{group}/{version} {} is deprecated", names.kind),
                })
            } else {
                None
            };
            ResourceInfo {
                group: group.clone(),
                version: version.clone(),
                kind: names.kind.clone(),
                plural: names.plural.clone(),
                singular: names.singular.clone(),
                namespaced,
                verbs: ALL_VERBS.iter().map(|v| v.to_string()).collect(),
                short_names: names.short_names.clone(),
                categories: names.categories.clone(),
                subresources,
                list_kind: names.list_kind.clone(),
                definition: String::new(),
                custom: Some(Arc::new(CustomVersion {
                    crd_name: crd_name.clone(),
                    schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                    printer_columns: v
                        .get("additionalPrinterColumns")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                    scale,
                    status,
                    storage: v.get("storage") == Some(&Value::Bool(true)),
                    deprecation_warning,
                    selectable_fields: v
                        .get("selectableFields")
                        .and_then(Value::as_array)
                        .map(|fields| {
                            fields
                                .iter()
                                .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                                .map(|p| p.trim_start_matches('.').to_string())
                                .collect()
                        })
                        .unwrap_or_default(),
                })),
            }
        })
        .collect()
}

/// Why the CRD's requested names cannot be accepted: a name another CRD of the group (or a
/// built-in resource of the group) already uses. `others` are the other CRDs.
pub fn name_conflict(
    crd: &Value,
    others: &[Value],
    registry: &Registry,
) -> Option<(String, String)> {
    let wanted = Names::from(crd, "/spec/names");
    let group = s(crd, "/spec/group");
    let me = s(crd, "/metadata/name");
    let mut taken_resource: Vec<String> = Vec::new();
    let mut taken_kind: Vec<String> = Vec::new();
    for other in others {
        if s(other, "/spec/group") != group || s(other, "/metadata/name") == me {
            continue;
        }
        let n = Names::from(other, "/status/acceptedNames");
        if n.plural.is_empty() {
            continue;
        }
        taken_resource.push(n.plural.clone());
        taken_resource.push(n.singular.clone());
        taken_resource.extend(n.short_names.iter().cloned());
        taken_kind.push(n.kind.clone());
        taken_kind.push(n.list_kind.clone());
    }
    for r in registry.all() {
        if r.group == group && r.custom.is_none() {
            taken_resource.push(r.plural.clone());
            taken_resource.push(r.singular.clone());
            taken_kind.push(r.kind.clone());
            taken_kind.push(r.list_kind.clone());
        }
    }
    if taken_resource.contains(&wanted.plural) {
        return Some((
            "NameConflict".into(),
            format!("{:?} is already in use", wanted.plural),
        ));
    }
    if taken_resource.contains(&wanted.singular) {
        return Some((
            "NameConflict".into(),
            format!("{:?} is already in use", wanted.singular),
        ));
    }
    for sn in &wanted.short_names {
        if taken_resource.contains(sn) {
            return Some(("NameConflict".into(), format!("{sn:?} is already in use")));
        }
    }
    if taken_kind.contains(&wanted.kind) {
        return Some((
            "KindConflict".into(),
            format!("{:?} is already in use", wanted.kind),
        ));
    }
    if taken_kind.contains(&wanted.list_kind) {
        return Some((
            "ListKindConflict".into(),
            format!("{:?} is already in use", wanted.list_kind),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1alpha1", "foo", "v1", "v2beta1", "v2", "v1beta2", "v10"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            v,
            ["v10", "v2", "v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]
        );
    }

    #[test]
    fn an_established_crd_serves_each_served_version() {
        let crd = json!({"metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Cluster",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [
                    {"name": "v1beta1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                    {"name": "v0", "served": false, "storage": false}]},
            "status": {"acceptedNames": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"]},
                "conditions": [{"type": "Established", "status": "True"}]}});
        let served = served_resources(&crd);
        let versions: Vec<&str> = served.iter().map(|r| r.version.as_str()).collect();
        assert_eq!(versions, ["v1", "v1beta1"]);
        assert!(!served[0].namespaced);
        assert_eq!(served[0].short_names, ["wd"]);
        assert!(served[0].subresource("status").is_some());
        assert!(served[1].subresource("status").is_none());
        assert!(served[0].custom.as_ref().unwrap().storage);
    }
}
