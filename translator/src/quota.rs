//! ResourceQuota: what an object counts against a quota (upstream's quota evaluators), and
//! the admission check on create (upstream's ResourceQuota admission plugin): a create
//! that would take a quota's usage past its hard limit is refused with 403 Forbidden, and
//! one that is admitted reserves its usage in the quota's `status.used` by a
//! compare-and-set on the quota's stored version (so two racing creates cannot both take
//! the last unit through the same quota version). The usage controller
//! (`beemesh_workloads::resource_quota`) recomputes `status.used` from the objects.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::{ApiError, Result};
use crate::registry::ResourceInfo;
use crate::service::ObjectService;
use crate::store::{ListRequest, Preconditions, ReadAt, parse_stored};

/// Usage by resource name, in thousandths of the unit (millicores, millibytes, 1000 per
/// counted object), so every quantity adds exactly.
pub type Usage = BTreeMap<String, i128>;

/// Resources a quota on cpu or memory requires every container to state (upstream's
/// pod evaluator `validationSet`).
const REQUIRED_WHEN_QUOTED: [&str; 6] = [
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];
/// How often an admission re-reads quotas after losing the compare-and-set.
const RESERVE_ATTEMPTS: usize = 10;

/// A quantity in thousandths of its unit, rounded up; `None` when it is not a quantity.
pub fn milli(quantity: &str) -> Option<i128> {
    let q = quantity.trim();
    let end = q
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(end);
    let (exp10, pow2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        s if s.starts_with(['e', 'E']) => (s[1..].parse().ok()?, 0),
        _ => return None,
    };
    let negative = number.starts_with('-');
    let digits = number.trim_start_matches(['+', '-']);
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let joined = format!("{whole}{frac}");
    let mantissa: i128 = joined.parse().ok()?;
    let mantissa = mantissa.checked_mul(1i128 << pow2)?;
    let scale = exp10 + 3 - i32::try_from(frac.len()).ok()?;
    let value = if scale >= 0 {
        mantissa.checked_mul(10i128.checked_pow(scale.unsigned_abs())?)?
    } else {
        let d = 10i128.checked_pow(scale.unsigned_abs())?;
        (mantissa + d - 1) / d
    };
    Some(if negative { -value } else { value })
}

/// A usage value as Kubernetes prints a quantity: millicores as `500m` (or whole cores),
/// byte amounts with the largest exact binary (`Mi`, `Gi`) or decimal (`k`, `M`, `G`)
/// suffix, counts as plain integers.
pub fn format_quantity(resource: &str, milli_value: i128) -> String {
    if milli_value % 1000 != 0 {
        return format!("{milli_value}m");
    }
    let units = milli_value / 1000;
    let bytes_like = resource.contains("memory") || resource.contains("storage");
    if !bytes_like || units == 0 {
        return units.to_string();
    }
    for (suffix, shift) in [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ] {
        let unit = 1i128 << shift;
        if units % unit == 0 {
            return format!("{}{suffix}", units / unit);
        }
    }
    for (suffix, exp) in [
        ("E", 18u32),
        ("P", 15),
        ("T", 12),
        ("G", 9),
        ("M", 6),
        ("k", 3),
    ] {
        let unit = 10i128.pow(exp);
        if units % unit == 0 {
            return format!("{}{suffix}", units / unit);
        }
    }
    units.to_string()
}

/// The object-count resource name upstream uses for `res`: `count/pods`,
/// `count/deployments.apps`.
pub fn count_name(res: &ResourceInfo) -> String {
    if res.group.is_empty() {
        format!("count/{}", res.plural)
    } else {
        format!("count/{}.{}", res.plural, res.group)
    }
}

/// Upstream's QuotaV1Pod: terminal pods, and pods past their deletion deadline, no longer
/// count.
pub fn pod_counts(pod: &Value) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    if matches!(phase, Some("Succeeded") | Some("Failed")) {
        return false;
    }
    if pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .is_some()
        && let Some(ts) = pod
            .pointer("/metadata/deletionTimestamp")
            .and_then(Value::as_str)
        && let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts)
        && chrono::Utc::now() > t
    {
        return false;
    }
    true
}

/// A pod's requests or limits (`kind`), as the scheduler sums them: the larger of the
/// containers' sum and any init container's.
fn pod_resources(pod: &Value, kind: &str) -> BTreeMap<String, i128> {
    let of = |c: &Value| -> BTreeMap<String, i128> {
        c.pointer(&format!("/resources/{kind}"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), milli(v.as_str()?)?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut sum: BTreeMap<String, i128> = BTreeMap::new();
    for c in pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (k, v) in of(c) {
            *sum.entry(k).or_default() += v;
        }
    }
    for c in pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (k, v) in of(c) {
            let e = sum.entry(k).or_default();
            *e = (*e).max(v);
        }
    }
    sum
}

/// What one object of `res` adds to the usage of its namespace (empty for a pod that no
/// longer counts, beyond its object count).
pub fn usage_of(res: &ResourceInfo, obj: &Value) -> Usage {
    let mut usage = Usage::new();
    let is_pod = res.group.is_empty() && res.plural == "pods";
    if is_pod && !pod_counts(obj) {
        return usage;
    }
    usage.insert(count_name(res), 1000);
    if !res.group.is_empty() {
        return usage;
    }
    match res.plural.as_str() {
        "pods" => {
            usage.insert("pods".into(), 1000);
            for (name, v) in pod_resources(obj, "requests") {
                if name == "cpu" || name == "memory" {
                    usage.insert(name.clone(), v);
                }
                usage.insert(format!("requests.{name}"), v);
            }
            for (name, v) in pod_resources(obj, "limits") {
                usage.insert(format!("limits.{name}"), v);
            }
        }
        "services" => {
            usage.insert("services".into(), 1000);
            let type_ = obj
                .pointer("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            if type_ == "LoadBalancer" {
                usage.insert("services.loadbalancers".into(), 1000);
            }
            if type_ == "NodePort" || type_ == "LoadBalancer" {
                let ports = obj
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                usage.insert("services.nodeports".into(), 1000 * ports as i128);
            }
        }
        "persistentvolumeclaims" => {
            usage.insert("persistentvolumeclaims".into(), 1000);
            if let Some(q) = obj
                .pointer("/spec/resources/requests/storage")
                .and_then(Value::as_str)
                .and_then(milli)
            {
                usage.insert("requests.storage".into(), q);
            }
        }
        plural @ ("configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas") => {
            usage.insert(plural.to_string(), 1000);
        }
        _ => {}
    }
    usage
}

/// Upstream's pod scopes: whether a pod is in every scope a quota names (`spec.scopes`
/// and `scopeSelector` terms with `Exists`/`In` on scope names). A quota with scopes
/// tracks pods only.
pub fn matches_scopes(quota: &Value, res: &ResourceInfo, obj: &Value) -> bool {
    let mut scopes: Vec<&str> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for term in quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = term.get("scopeName").and_then(Value::as_str) {
            scopes.push(name);
        }
    }
    if scopes.is_empty() {
        return true;
    }
    if !(res.group.is_empty() && res.plural == "pods") {
        return false;
    }
    let terminating = obj
        .pointer("/spec/activeDeadlineSeconds")
        .is_some_and(|v| !v.is_null());
    let best_effort = ["requests", "limits"].iter().all(|k| {
        ["containers", "initContainers"].iter().all(|f| {
            obj.pointer(&format!("/spec/{f}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .all(|c| {
                    c.pointer(&format!("/resources/{k}"))
                        .and_then(Value::as_object)
                        .is_none_or(|m| !m.contains_key("cpu") && !m.contains_key("memory"))
                })
        })
    });
    scopes.iter().all(|s| match *s {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort,
        "NotBestEffort" => !best_effort,
        // Scopes this node does not evaluate (PriorityClass, ...) match nothing.
        _ => false,
    })
}

/// A quota's `spec.hard` (or `status.hard`/`status.used` with `pointer`) in thousandths.
pub fn quantities(quota: &Value, pointer: &str) -> Usage {
    quota
        .pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), milli(v.as_str()?)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A usage map as the JSON object a quota stores.
pub fn usage_json(usage: &Usage) -> Value {
    Value::Object(
        usage
            .iter()
            .map(|(k, v)| (k.clone(), json!(format_quantity(k, *v))))
            .collect(),
    )
}

fn pretty(usage: &Usage, keys: &[String]) -> String {
    keys.iter()
        .map(|k| {
            format!(
                "{k}={}",
                format_quantity(k, usage.get(k).copied().unwrap_or(0))
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Upstream's pod evaluator Constraints: with cpu or memory under quota, every container
/// must state them; the message names what is missing and for which containers.
fn missing_requirements(hard: &Usage, obj: &Value) -> Option<String> {
    let required: Vec<&str> = REQUIRED_WHEN_QUOTED
        .iter()
        .copied()
        .filter(|r| hard.contains_key(*r))
        .collect();
    if required.is_empty() {
        return None;
    }
    let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for field in ["containers", "initContainers"] {
        for c in obj
            .pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let has =
                |kind: &str, name: &str| c.pointer(&format!("/resources/{kind}/{name}")).is_some();
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            for r in &required {
                let present = match *r {
                    "cpu" | "requests.cpu" => has("requests", "cpu"),
                    "memory" | "requests.memory" => has("requests", "memory"),
                    "limits.cpu" => has("limits", "cpu"),
                    _ => has("limits", "memory"),
                };
                if !present {
                    missing.entry(r).or_default().push(name.to_string());
                }
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .into_iter()
        .map(|(r, mut names)| {
            names.sort();
            names.dedup();
            format!("{r} for: {}", names.join(","))
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

impl ObjectService {
    fn list_in(&self, res: &ResourceInfo, ns: &str) -> Result<Vec<Value>> {
        let page = self.store.list(
            res,
            &ListRequest {
                namespace: Some(ns),
                read_at: ReadAt::Latest,
                limit: None,
                continue_token: None,
                filter: None,
            },
        )?;
        page.items.iter().map(|i| parse_stored(i)).collect()
    }

    /// The served resource a quota resource name counts (`pods`, `count/deployments.apps`,
    /// `requests.cpu` → pods), if any.
    pub fn quota_resource_of(&self, name: &str) -> Option<std::sync::Arc<ResourceInfo>> {
        let (group, plural) = match name {
            "pods" | "cpu" | "memory" => ("", "pods"),
            n if n.starts_with("requests.") || n.starts_with("limits.") => {
                if n == "requests.storage" {
                    ("", "persistentvolumeclaims")
                } else {
                    ("", "pods")
                }
            }
            "services" | "services.loadbalancers" | "services.nodeports" => ("", "services"),
            "configmaps"
            | "secrets"
            | "persistentvolumeclaims"
            | "replicationcontrollers"
            | "resourcequotas" => ("", name),
            n => {
                let rest = n.strip_prefix("count/")?;
                match rest.split_once('.') {
                    Some((plural, group)) => (group, plural),
                    None => ("", rest),
                }
            }
        };
        self.registry
            .all()
            .into_iter()
            .find(|r| r.group == group && r.plural == plural)
    }

    /// What the objects of namespace `ns` use of the resources `names` under `quota`'s
    /// scopes, counted from this node's replica.
    pub fn quota_usage(&self, quota: &Value, ns: &str, names: &[String]) -> Result<Usage> {
        let mut usage: Usage = names.iter().map(|n| (n.clone(), 0)).collect();
        let mut seen: Vec<String> = Vec::new();
        for name in names {
            let Some(res) = self.quota_resource_of(name) else {
                continue;
            };
            let key = format!("{}/{}", res.group, res.plural);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            for obj in self.list_in(&res, ns)? {
                if !matches_scopes(quota, &res, &obj) {
                    continue;
                }
                for (k, v) in usage_of(&res, &obj) {
                    if let Some(e) = usage.get_mut(&k) {
                        *e += v;
                    }
                }
            }
        }
        Ok(usage)
    }

    /// Upstream's ResourceQuota admission for a create of `obj` (defaulted) as `res` in
    /// `ns`: refuses it (403) when some quota of the namespace would go over, otherwise
    /// reserves its usage in each affected quota's `status.used` by compare-and-set (not
    /// on dry run). `name` is the name the client asked for.
    pub(crate) async fn admit_quota(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        obj: &Value,
        name: &str,
        dry_run: bool,
    ) -> Result<()> {
        self.admit_quota_delta(res, ns, obj, usage_of(res, obj), name, dry_run)
            .await
    }

    /// Upstream's ResourceQuota admission for an update: only Services and
    /// PersistentVolumeClaims are charged on update (a Service turning NodePort or
    /// LoadBalancer, a claim asking for more storage), for what the update adds.
    pub(crate) async fn admit_quota_update(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        old: &Value,
        new: &Value,
        name: &str,
        dry_run: bool,
    ) -> Result<()> {
        if !(res.group.is_empty()
            && matches!(res.plural.as_str(), "services" | "persistentvolumeclaims"))
        {
            return Ok(());
        }
        let before = usage_of(res, old);
        let delta: Usage = usage_of(res, new)
            .into_iter()
            .filter_map(|(k, v)| {
                let grown = v - before.get(&k).copied().unwrap_or(0);
                (grown > 0).then_some((k, grown))
            })
            .collect();
        self.admit_quota_delta(res, ns, new, delta, name, dry_run)
            .await
    }

    /// Checks `delta` (what the write adds) against the quotas of `ns` and reserves it.
    async fn admit_quota_delta(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        obj: &Value,
        delta: Usage,
        name: &str,
        dry_run: bool,
    ) -> Result<()> {
        let (Some(ns), true) = (ns, res.namespaced) else {
            return Ok(());
        };
        let Some(quotas_res) = self.registry.get("", "v1", "resourcequotas") else {
            return Ok(());
        };
        if delta.is_empty() {
            return Ok(());
        }
        let subject = format!("{} {name:?}", res.group_resource());
        let forbidden = |message: String| {
            ApiError::forbidden(
                &res.group,
                &res.plural,
                name,
                format!("{subject} is forbidden: {message}"),
            )
        };
        for _ in 0..RESERVE_ATTEMPTS {
            let mut quotas = self.list_in(&quotas_res, ns)?;
            if quotas.is_empty() {
                return Ok(());
            }
            quotas.sort_by(|a, b| {
                a.pointer("/metadata/name")
                    .map(|v| v.to_string())
                    .cmp(&b.pointer("/metadata/name").map(|v| v.to_string()))
            });
            // Constraints of every matching quota come first (upstream's checkQuotas),
            // then usage, then the reservations.
            if res.group.is_empty() && res.plural == "pods" {
                for quota in &quotas {
                    if !matches_scopes(quota, res, obj) {
                        continue;
                    }
                    let hard = quantities(quota, "/spec/hard");
                    if let Some(why) = missing_requirements(&hard, obj) {
                        let qname = quota
                            .pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        return Err(forbidden(format!("failed quota: {qname}: {why}")));
                    }
                }
            }
            let mut reservations = Vec::new();
            for quota in &quotas {
                let qname = quota
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if !matches_scopes(quota, res, obj) {
                    continue;
                }
                let hard = quantities(quota, "/spec/hard");
                let mut limited: Vec<String> = delta
                    .keys()
                    .filter(|k| hard.contains_key(*k))
                    .cloned()
                    .collect();
                if limited.is_empty() {
                    continue;
                }
                limited.sort();
                // Usage is the larger of what the quota records (reservations of creates
                // still in flight) and what this replica counts (a status not yet
                // recomputed, or never computed).
                let recorded = quantities(quota, "/status/used");
                let live = self.quota_usage(quota, ns, &limited)?;
                let mut used = recorded.clone();
                for k in &limited {
                    let v = recorded
                        .get(k)
                        .copied()
                        .unwrap_or(0)
                        .max(live.get(k).copied().unwrap_or(0));
                    used.insert(k.clone(), v);
                }
                let exceeded: Vec<String> = limited
                    .iter()
                    .filter(|k| used[*k] + delta[*k] > hard[*k])
                    .cloned()
                    .collect();
                if !exceeded.is_empty() {
                    return Err(forbidden(format!(
                        "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                        pretty(&delta, &exceeded),
                        pretty(&used, &exceeded),
                        pretty(&hard, &exceeded),
                    )));
                }
                let mut new_used = used;
                for k in &limited {
                    *new_used.entry(k.clone()).or_default() += delta[k];
                }
                let version = quota
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                reservations.push((qname, version, new_used));
            }
            if dry_run || reservations.is_empty() {
                return Ok(());
            }
            let mut lost = false;
            for (qname, version, new_used) in reservations {
                let pre = Preconditions {
                    resource_version: version,
                    uid: None,
                };
                let result = self
                    .store
                    .update(&quotas_res, Some(ns), &qname, &pre, |mut cur| {
                        cur["status"]["hard"] = cur
                            .pointer("/spec/hard")
                            .cloned()
                            .unwrap_or_else(|| json!({}));
                        cur["status"]["used"] = usage_json(&new_used);
                        Ok(Some(cur))
                    })
                    .await;
                match result {
                    Ok(_) => {}
                    Err(e) if e.code() == 409 || e.code() == 404 => {
                        lost = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if !lost {
                return Ok(());
            }
        }
        Err(ApiError::conflict(
            &res.group,
            &res.plural,
            name,
            "the resource quotas of the namespace kept changing; please try again",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_and_print_as_kubernetes_does() {
        assert_eq!(milli("500m"), Some(500));
        assert_eq!(milli("2"), Some(2000));
        assert_eq!(milli("1Gi"), Some(1000 << 30));
        assert_eq!(format_quantity("requests.cpu", 1500), "1500m");
        assert_eq!(format_quantity("requests.cpu", 2000), "2");
        assert_eq!(format_quantity("pods", 3000), "3");
        assert_eq!(
            format_quantity("requests.memory", 1000 * (128 << 20)),
            "128Mi"
        );
        assert_eq!(format_quantity("limits.memory", 1000 * 1_000_000_000), "1G");
        assert_eq!(format_quantity("memory", 0), "0");
    }

    #[test]
    fn missing_requests_name_resources_and_containers() {
        let hard = Usage::from([
            ("limits.cpu".to_string(), 2000),
            ("requests.memory".to_string(), 1000),
        ]);
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "1"}}},
            {"name": "b"}]}});
        assert_eq!(
            missing_requirements(&hard, &pod).as_deref(),
            Some("must specify limits.cpu for: b; requests.memory for: a,b")
        );
        let counts_only = Usage::from([("pods".to_string(), 2000)]);
        assert_eq!(missing_requirements(&counts_only, &pod), None);
    }

    #[test]
    fn pods_count_until_terminal_and_scopes_select_pods() {
        let running =
            json!({"status": {"phase": "Running"}, "spec": {"containers": [{"name": "a"}]}});
        assert!(pod_counts(&running));
        assert!(!pod_counts(&json!({"status": {"phase": "Succeeded"}})));
        let past = json!({"metadata": {"deletionTimestamp": "2000-01-01T00:00:00Z", "deletionGracePeriodSeconds": 30}});
        assert!(!pod_counts(&past));
        let best_effort = json!({"spec": {"scopes": ["BestEffort"]}});
        let not_terminating = json!({"spec": {"scopeSelector": {"matchExpressions": [{"scopeName": "NotTerminating", "operator": "Exists"}]}}});
        let res = |plural: &str| ResourceInfo {
            plural: plural.into(),
            version: "v1".into(),
            namespaced: true,
            ..ResourceInfo::default()
        };
        let pods = res("pods");
        assert!(matches_scopes(&best_effort, &pods, &running));
        assert!(matches_scopes(&not_terminating, &pods, &running));
        let burstable = json!({"spec": {"activeDeadlineSeconds": 5, "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}});
        assert!(!matches_scopes(&best_effort, &pods, &burstable));
        assert!(!matches_scopes(&not_terminating, &pods, &burstable));
        let cms = res("configmaps");
        assert!(!matches_scopes(&best_effort, &cms, &json!({})));
        assert!(matches_scopes(&json!({"spec": {}}), &cms, &json!({})));
    }
}
