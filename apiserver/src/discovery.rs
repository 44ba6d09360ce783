//! Discovery documents built from the registry: legacy (`/api`, `/apis`, `/apis/<g>`,
//! `/api/v1`, `/apis/<g>/<v>`) and aggregated (`apidiscovery.k8s.io` v2 and v2beta1).
//!
//! Aggregated discovery must be answered in exactly the version the client asked for:
//! kubectl 1.27–1.29 only understand v2beta1 and treat a v2 document as "no resources".
//! Responses vary by `Accept`, so the router should also send `Vary: Accept`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::cmp::Ordering;

use beemesh_translator::{GroupInfo, Registry, ResourceInfo};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The apidiscovery.k8s.io version of an aggregated document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregatedVersion {
    V2,
    V2Beta1,
}

impl AggregatedVersion {
    fn api_version(self) -> &'static str {
        match self {
            AggregatedVersion::V2 => "apidiscovery.k8s.io/v2",
            AggregatedVersion::V2Beta1 => "apidiscovery.k8s.io/v2beta1",
        }
    }

    /// The `Content-Type` of the answer, naming the version that was served.
    pub fn content_type(self) -> &'static str {
        match self {
            AggregatedVersion::V2 => {
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            }
            AggregatedVersion::V2Beta1 => {
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            }
        }
    }
}

/// Which discovery representation an `Accept` header selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryFormat {
    AggregatedV2,
    AggregatedV2Beta1,
    /// APIVersions / APIGroupList (and APIGroup, APIResourceList).
    Legacy,
}

impl From<DiscoveryFormat> for AggregatedVersion {
    /// `Legacy` has no aggregated form; it maps to the current version.
    fn from(f: DiscoveryFormat) -> Self {
        match f {
            DiscoveryFormat::AggregatedV2Beta1 => AggregatedVersion::V2Beta1,
            DiscoveryFormat::AggregatedV2 | DiscoveryFormat::Legacy => AggregatedVersion::V2,
        }
    }
}

/// The `Content-Type` for an aggregated answer (`application/json` for legacy documents).
pub fn content_type(format: DiscoveryFormat) -> &'static str {
    match format {
        DiscoveryFormat::Legacy => "application/json",
        other => AggregatedVersion::from(other).content_type(),
    }
}

/// Picks the discovery representation from an `Accept` header: the first acceptable media
/// range in the client's preference order (q-values honoured, ties in header order).
/// Aggregated discovery is chosen only for a JSON range naming `g=apidiscovery.k8s.io`,
/// `as=APIGroupDiscoveryList` and a version we serve; anything else acceptable is legacy.
pub fn negotiate_discovery(accept: &str) -> DiscoveryFormat {
    /// (q, position in the header, media type, parameters other than q)
    type Range = (f32, usize, String, Vec<(String, String)>);
    let mut ranges: Vec<Range> = Vec::new();
    for (index, clause) in accept.split(',').enumerate() {
        let mut parts = clause.split(';');
        let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if mime.is_empty() {
            continue;
        }
        let mut q = 1.0_f32;
        let mut params = Vec::new();
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim().trim_matches('"').to_string();
            if k == "q" {
                q = v.parse().unwrap_or(0.0);
            } else {
                params.push((k, v));
            }
        }
        if q > 0.0 {
            ranges.push((q, index, mime, params));
        }
    }
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, mime, params) in ranges {
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        match param("as") {
            Some("APIGroupDiscoveryList") => {
                if mime != "application/json" || param("g") != Some("apidiscovery.k8s.io") {
                    continue;
                }
                match param("v") {
                    Some("v2") => return DiscoveryFormat::AggregatedV2,
                    Some("v2beta1") => return DiscoveryFormat::AggregatedV2Beta1,
                    _ => continue,
                }
            }
            Some(_) => continue,
            None => return DiscoveryFormat::Legacy,
        }
    }
    DiscoveryFormat::Legacy
}

/// `/api` as APIVersions. Without an advertised address the CIDR list is empty; see
/// [`api_versions_at`].
pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [],
    })
}

/// `/api` as APIVersions, telling clients to reach this server at `server_address`
/// (`host:port`), as kube-apiserver does with its advertise address.
pub fn api_versions_at(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    })
}

fn group_version_entry(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

/// One APIGroup body (without kind/apiVersion), or None for the core group / no versions.
fn group_body(name: &str, versions: &[String]) -> Option<Map<String, Value>> {
    let preferred = versions.first()?;
    if name.is_empty() {
        return None;
    }
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert(
        "versions".into(),
        Value::Array(
            versions
                .iter()
                .map(|v| group_version_entry(name, v))
                .collect(),
        ),
    );
    m.insert(
        "preferredVersion".into(),
        group_version_entry(name, preferred),
    );
    Some(m)
}

/// Where a version sorts among a group's versions by upstream's `CompareKubeAwareVersionStrings`:
/// GA before beta before alpha, higher numbers first, then versions that do not look like
/// Kubernetes versions in alphabetical order.
fn kube_version_key(version: &str) -> (u8, std::cmp::Reverse<u64>, std::cmp::Reverse<u64>) {
    let parse = || -> Option<(u8, u64, u64)> {
        let rest = version.strip_prefix('v')?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || rest.starts_with('0') {
            return None;
        }
        let major: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((0, major, 0));
        }
        let (rank, minor) = if let Some(m) = tail.strip_prefix("beta") {
            (1, m)
        } else if let Some(m) = tail.strip_prefix("alpha") {
            (2, m)
        } else {
            return None;
        };
        if minor.is_empty() || minor.starts_with('0') || !minor.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some((rank, major, minor.parse().ok()?))
    };
    use std::cmp::Reverse;
    match parse() {
        Some((rank, major, minor)) => (rank, Reverse(major), Reverse(minor)),
        None => (3, Reverse(0), Reverse(0)),
    }
}

/// Orders two versions of one group the way upstream prefers them for CRD-served groups.
pub fn compare_kube_versions(a: &str, b: &str) -> Ordering {
    kube_version_key(a)
        .cmp(&kube_version_key(b))
        .then_with(|| a.cmp(b))
}

/// Whether a group is served by CustomResourceDefinitions (any version).
fn is_custom_group(reg: &Registry, group: &GroupInfo) -> bool {
    group.versions.iter().any(|v| {
        reg.resources_in(&group.name, v)
            .iter()
            .any(|r| r.custom.is_some())
    })
}

/// The groups as discovery lists them: built-in groups in registration order, then groups of
/// custom resources (APIServices of priority 1000 upstream) by name, each with its versions in
/// Kubernetes version order, so the preferred version is the highest-priority one.
pub fn discovery_groups(reg: &Registry) -> Vec<GroupInfo> {
    let (mut custom, builtin): (Vec<GroupInfo>, Vec<GroupInfo>) = reg
        .groups()
        .into_iter()
        .partition(|g| !g.name.is_empty() && is_custom_group(reg, g));
    custom.sort_by(|a, b| a.name.cmp(&b.name));
    for g in &mut custom {
        g.versions.sort_by(|a, b| compare_kube_versions(a, b));
    }
    builtin.into_iter().chain(custom).collect()
}

/// `/apis` as APIGroupList: every named group, versions preferred first.
pub fn api_group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = discovery_groups(reg)
        .iter()
        .filter_map(|g| group_body(&g.name, &g.versions).map(Value::Object))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>` as APIGroup; None when the group is not served.
pub fn api_group(reg: &Registry, group: &str) -> Option<Value> {
    let info = discovery_groups(reg)
        .into_iter()
        .find(|g| g.name == group)?;
    let mut body = group_body(&info.name, &info.versions)?;
    let mut out = Map::new();
    out.insert("kind".into(), json!("APIGroup"));
    out.insert("apiVersion".into(), json!("v1"));
    out.append(&mut body);
    Some(Value::Object(out))
}

/// `storageVersionHash`: base64 of the first 8 bytes of sha256("group/version/kind") of the
/// version objects are stored in.
pub fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    let digest = Sha256::digest(format!("{group}/{version}/{kind}").as_bytes());
    STANDARD.encode(&digest[..8])
}

/// The (group, version, kind) objects of this resource are stored as, or None when the
/// resource is not backed by storage (reviews, bindings, componentstatuses). Every served
/// version of a CRD reports the hash of its storage version.
fn storage_gvk(reg: &Registry, res: &ResourceInfo) -> Option<(String, String, String)> {
    if !res.has_verb("list") || (res.group.is_empty() && res.plural == "componentstatuses") {
        return None;
    }
    if let Some(custom) = &res.custom {
        let version = if custom.storage {
            res.version.clone()
        } else {
            reg.all()
                .into_iter()
                .find(|r| {
                    r.custom
                        .as_ref()
                        .is_some_and(|c| c.storage && c.crd_name == custom.crd_name)
                })
                .map_or_else(|| res.version.clone(), |r| r.version.clone())
        };
        return Some((res.group.clone(), version, res.kind.clone()));
    }
    // events.k8s.io Events share the core Event storage.
    if res.group == "events.k8s.io" && res.plural == "events" {
        return Some((String::new(), "v1".into(), "Event".into()));
    }
    if res.group == "autoscaling" && res.plural == "horizontalpodautoscalers" {
        return Some((
            "autoscaling".into(),
            "v2".into(),
            "HorizontalPodAutoscaler".into(),
        ));
    }
    Some((res.group.clone(), res.version.clone(), res.kind.clone()))
}

/// The order apiextensions-apiserver lists a custom resource's verbs in.
const CUSTOM_VERB_ORDER: [&str; 8] = [
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];

/// A resource's verbs as discovery lists them (`kubectl api-resources -o wide` prints them in
/// this order): built-ins as registered, custom resources in upstream's CRD order.
fn verbs(res: &ResourceInfo) -> Vec<&str> {
    let mut verbs: Vec<&str> = res.verbs.iter().map(String::as_str).collect();
    if res.custom.is_some() {
        verbs.sort_by_key(|v| {
            CUSTOM_VERB_ORDER
                .iter()
                .position(|o| o == v)
                .unwrap_or(CUSTOM_VERB_ORDER.len())
        });
    }
    verbs
}

fn non_empty_strings(m: &mut Map<String, Value>, key: &str, values: &[String]) {
    if !values.is_empty() {
        m.insert(key.into(), json!(values));
    }
}

/// The APIResource entries of one resource: itself, then `plural/sub` per subresource.
fn legacy_entries(reg: &Registry, res: &ResourceInfo) -> Vec<(String, Value)> {
    let mut out = Vec::with_capacity(1 + res.subresources.len());
    let mut m = Map::new();
    m.insert("name".into(), json!(res.plural));
    m.insert("singularName".into(), json!(res.singular));
    m.insert("namespaced".into(), json!(res.namespaced));
    m.insert("kind".into(), json!(res.kind));
    m.insert("verbs".into(), json!(verbs(res)));
    non_empty_strings(&mut m, "shortNames", &res.short_names);
    non_empty_strings(&mut m, "categories", &res.categories);
    if let Some((g, v, k)) = storage_gvk(reg, res) {
        m.insert(
            "storageVersionHash".into(),
            json!(storage_version_hash(&g, &v, &k)),
        );
    }
    out.push((res.plural.clone(), Value::Object(m)));
    for sub in &res.subresources {
        let name = format!("{}/{}", res.plural, sub.name);
        let mut m = Map::new();
        m.insert("name".into(), json!(name));
        m.insert("singularName".into(), json!(""));
        m.insert("namespaced".into(), json!(res.namespaced));
        if sub.group != res.group || sub.version != res.version {
            m.insert("group".into(), json!(sub.group));
            m.insert("version".into(), json!(sub.version));
        }
        m.insert("kind".into(), json!(sub.kind));
        m.insert("verbs".into(), json!(sub.verbs));
        out.push((name, Value::Object(m)));
    }
    out
}

/// `/api/v1` (group "") or `/apis/<g>/<v>` as APIResourceList; None when nothing is served there.
pub fn api_resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources = reg.resources_in(group, version);
    if resources.is_empty() {
        return None;
    }
    let mut entries: Vec<(String, Value)> = resources
        .iter()
        .flat_map(|r| legacy_entries(reg, r))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let list: Vec<Value> = entries.into_iter().map(|(_, v)| v).collect();
    let mut out = Map::new();
    out.insert("kind".into(), json!("APIResourceList"));
    // kube-apiserver omits apiVersion on the core list only.
    if !group.is_empty() {
        out.insert("apiVersion".into(), json!("v1"));
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    out.insert("groupVersion".into(), json!(group_version));
    out.insert("resources".into(), Value::Array(list));
    Some(Value::Object(out))
}

fn response_kind(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// One APIResourceDiscovery entry with its subresources nested.
fn aggregated_resource(res: &ResourceInfo) -> Value {
    let mut m = Map::new();
    m.insert("resource".into(), json!(res.plural));
    m.insert(
        "responseKind".into(),
        response_kind(&res.group, &res.version, &res.kind),
    );
    m.insert(
        "scope".into(),
        json!(if res.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        }),
    );
    m.insert("singularResource".into(), json!(res.singular));
    m.insert("verbs".into(), json!(verbs(res)));
    non_empty_strings(&mut m, "shortNames", &res.short_names);
    non_empty_strings(&mut m, "categories", &res.categories);
    if !res.subresources.is_empty() {
        let mut subs: Vec<&beemesh_translator::SubresourceInfo> = res.subresources.iter().collect();
        subs.sort_by(|a, b| a.name.cmp(&b.name));
        let subs: Vec<Value> = subs
            .into_iter()
            .map(|s| {
                json!({
                    "subresource": s.name,
                    "responseKind": response_kind(&s.group, &s.version, &s.kind),
                    "verbs": s.verbs,
                })
            })
            .collect();
        m.insert("subresources".into(), Value::Array(subs));
    }
    Value::Object(m)
}

/// One APIGroupDiscovery item: the group's versions (preferred first) and their resources.
fn aggregated_group(reg: &Registry, name: &str, versions: &[String]) -> Option<Value> {
    let versions: Vec<Value> = versions
        .iter()
        .filter_map(|v| {
            let mut resources = reg.resources_in(name, v);
            if resources.is_empty() {
                return None;
            }
            resources.sort_by(|a, b| a.plural.cmp(&b.plural));
            let resources: Vec<Value> = resources.iter().map(|r| aggregated_resource(r)).collect();
            Some(json!({"version": v, "resources": resources, "freshness": "Current"}))
        })
        .collect();
    if versions.is_empty() {
        return None;
    }
    let mut metadata = Map::new();
    if !name.is_empty() {
        metadata.insert("name".into(), json!(name));
    }
    metadata.insert("creationTimestamp".into(), Value::Null);
    Some(json!({"metadata": metadata, "versions": versions}))
}

/// Aggregated discovery (APIGroupDiscoveryList) for `/api` (`legacy`: the core group only) or
/// `/apis` (every named group), in the requested apidiscovery version.
pub fn aggregated(reg: &Registry, legacy: bool, version: impl Into<AggregatedVersion>) -> Value {
    let version = version.into();
    let items: Vec<Value> = discovery_groups(reg)
        .iter()
        .filter(|g| g.name.is_empty() == legacy)
        .filter_map(|g| aggregated_group(reg, &g.name, &g.versions))
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": version.api_version(),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use beemesh_translator::SubresourceInfo;

    const KUBECTL_133: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    const KUBECTL_127: &str = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

    #[test]
    fn negotiation_honours_the_exact_version_asked_for() {
        assert_eq!(
            negotiate_discovery(KUBECTL_133),
            DiscoveryFormat::AggregatedV2
        );
        assert_eq!(
            negotiate_discovery(KUBECTL_127),
            DiscoveryFormat::AggregatedV2Beta1
        );
        assert_eq!(
            negotiate_discovery("application/json"),
            DiscoveryFormat::Legacy
        );
        assert_eq!(negotiate_discovery(""), DiscoveryFormat::Legacy);
        assert_eq!(
            negotiate_discovery("application/json, */*"),
            DiscoveryFormat::Legacy
        );
        // A version we do not serve is skipped, not downgraded to another aggregated version.
        assert_eq!(
            negotiate_discovery(
                "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json"
            ),
            DiscoveryFormat::Legacy
        );
        // Protobuf aggregated discovery is not offered.
        assert_eq!(
            negotiate_discovery(
                "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
            ),
            DiscoveryFormat::Legacy
        );
        // q-values reorder preferences.
        assert_eq!(
            negotiate_discovery(
                "application/json;q=0.5,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            ),
            DiscoveryFormat::AggregatedV2Beta1
        );
        assert_eq!(
            content_type(negotiate_discovery(KUBECTL_127)),
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        );
        assert_eq!(
            content_type(negotiate_discovery(KUBECTL_133)),
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
    }

    #[test]
    fn storage_version_hashes_match_a_real_cluster() {
        assert_eq!(storage_version_hash("", "v1", "Pod"), "xPOwRZ+Yhw8=");
        assert_eq!(
            storage_version_hash("apps", "v1", "Deployment"),
            "8aSe+NMegvE="
        );
    }

    #[test]
    fn deployments_have_scale_in_autoscaling_v1() {
        let reg = Registry::builtin();
        let doc = aggregated(&reg, false, AggregatedVersion::V2);
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        let apps = doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "apps")
            .unwrap();
        assert_eq!(apps["versions"][0]["version"], "v1");
        assert_eq!(apps["versions"][0]["freshness"], "Current");
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deploy["scope"], "Namespaced");
        assert_eq!(deploy["singularResource"], "deployment");
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        assert_eq!(deploy["categories"], json!(["all"]));
        assert_eq!(
            deploy["responseKind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        let scale = deploy["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subresource"] == "scale")
            .unwrap();
        assert_eq!(
            scale["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        assert_eq!(scale["verbs"], json!(["get", "patch", "update"]));

        // The legacy list says the same thing.
        let list = api_resource_list(&reg, "apps", "v1").unwrap();
        assert_eq!(list["apiVersion"], "v1");
        assert_eq!(list["groupVersion"], "apps/v1");
        let entries = list["resources"].as_array().unwrap();
        let scale = entries
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(
            scale,
            &json!({"name": "deployments/scale", "singularName": "", "namespaced": true,
                    "group": "autoscaling", "version": "v1", "kind": "Scale",
                    "verbs": ["get", "patch", "update"]})
        );
        let status = entries
            .iter()
            .find(|r| r["name"] == "deployments/status")
            .unwrap();
        assert!(status.get("group").is_none());
        let deploy = entries.iter().find(|r| r["name"] == "deployments").unwrap();
        assert_eq!(deploy["storageVersionHash"], "8aSe+NMegvE=");
        let names: Vec<&str> = entries
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn category_all_has_exactly_the_ten_kinds_kubectl_get_all_lists() {
        let reg = Registry::builtin();
        let mut kinds = Vec::new();
        for legacy in [true, false] {
            let doc = aggregated(&reg, legacy, AggregatedVersion::V2Beta1);
            for group in doc["items"].as_array().unwrap() {
                // kubectl uses each group's preferred (first) version.
                let preferred = &group["versions"][0];
                for r in preferred["resources"].as_array().unwrap() {
                    if r["categories"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c == "all"))
                    {
                        kinds.push(r["responseKind"]["kind"].as_str().unwrap().to_string());
                    }
                }
            }
        }
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "CronJob",
                "DaemonSet",
                "Deployment",
                "HorizontalPodAutoscaler",
                "Job",
                "Pod",
                "ReplicaSet",
                "ReplicationController",
                "Service",
                "StatefulSet"
            ]
        );
    }

    #[test]
    fn core_group_documents() {
        let reg = Registry::builtin();
        let doc = aggregated(&reg, true, DiscoveryFormat::AggregatedV2);
        let items = doc["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["metadata"], json!({"creationTimestamp": null}));
        let pods = items[0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(
            pods["responseKind"],
            json!({"group": "", "version": "v1", "kind": "Pod"})
        );
        let eviction = pods["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subresource"] == "eviction")
            .unwrap();
        assert_eq!(eviction["responseKind"]["group"], "policy");

        let list = api_resource_list(&reg, "", "v1").unwrap();
        assert!(list.get("apiVersion").is_none());
        assert_eq!(list["groupVersion"], "v1");
        let entries = list["resources"].as_array().unwrap();
        let bindings = entries.iter().find(|r| r["name"] == "bindings").unwrap();
        assert!(bindings.get("storageVersionHash").is_none());
        let pods = entries.iter().find(|r| r["name"] == "pods").unwrap();
        assert_eq!(pods["storageVersionHash"], "xPOwRZ+Yhw8=");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert!(api_resource_list(&reg, "", "v2").is_none());

        assert_eq!(api_versions()["versions"], json!(["v1"]));
        assert_eq!(
            api_versions_at("10.0.0.1:6443")["serverAddressByClientCIDRs"][0]["serverAddress"],
            "10.0.0.1:6443"
        );
    }

    #[test]
    fn group_documents() {
        let reg = Registry::builtin();
        let list = api_group_list(&reg);
        assert_eq!(list["kind"], "APIGroupList");
        let groups = list["groups"].as_array().unwrap();
        assert!(groups.iter().all(|g| g["name"] != ""));
        assert_eq!(groups[0]["name"], "apiregistration.k8s.io");
        let apps = api_group(&reg, "apps").unwrap();
        assert_eq!(
            apps,
            json!({"kind": "APIGroup", "apiVersion": "v1", "name": "apps",
                   "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                   "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}})
        );
        assert!(api_group(&reg, "nope.example.com").is_none());
        assert!(api_group(&reg, "").is_none());
    }

    #[test]
    fn groups_with_several_versions_list_the_preferred_first() {
        let reg = Registry::new();
        let mk = |version: &str| ResourceInfo {
            group: "example.com".into(),
            version: version.into(),
            kind: "Widget".into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            namespaced: false,
            verbs: vec!["get".into(), "list".into()],
            short_names: vec![],
            categories: vec![],
            subresources: vec![SubresourceInfo {
                name: "status".into(),
                group: "example.com".into(),
                version: version.into(),
                kind: "Widget".into(),
                verbs: vec!["get".into()],
            }],
            list_kind: "WidgetList".into(),
            definition: String::new(),
            custom: None,
        };
        reg.insert(mk("v2"));
        reg.insert(mk("v1"));
        let g = api_group(&reg, "example.com").unwrap();
        assert_eq!(g["preferredVersion"]["version"], "v2");
        let doc = aggregated(&reg, false, AggregatedVersion::V2);
        let versions = doc["items"][0]["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0]["version"], "v2");
        assert_eq!(versions[1]["resources"][0]["scope"], "Cluster");
        assert!(versions[1]["resources"][0].get("shortNames").is_none());
    }
}
