//! A container's environment as the kubelet builds it (`makeEnvironmentVariables`), from
//! the local replica: `envFrom` (ConfigMaps and Secrets, with `prefix`) first, then `env`
//! (`value` with `$(VAR)` expansion, `valueFrom` configMapKeyRef / secretKeyRef / fieldRef /
//! resourceFieldRef), later names winning; then `command` and `args` expanded against the
//! result. A missing required ConfigMap, Secret or key is the error the kubelet shows as
//! `CreateContainerConfigError` (`configmap "x" not found`).

use std::collections::HashMap;

use base64::Engine;
use beemesh_translator::service::ObjectService;
use serde_json::Value;

/// Why a container's configuration cannot be built (shown as the waiting message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A ConfigMap's or Secret's keys and their bytes, sorted by key.
pub type Entries = Vec<(String, Vec<u8>)>;

/// Reads ConfigMaps, Secrets and the Node from the local replica, each once per pod.
pub struct Sources<'a> {
    service: &'a ObjectService,
    namespace: String,
    cache: HashMap<(&'static str, String), Option<Value>>,
}

impl<'a> Sources<'a> {
    pub fn new(service: &'a ObjectService, namespace: &str) -> Self {
        Sources {
            service,
            namespace: namespace.to_string(),
            cache: HashMap::new(),
        }
    }

    /// `resource` is `configmaps`, `secrets` or `nodes`; `None` when it does not exist.
    fn get(&mut self, resource: &'static str, name: &str) -> Result<Option<&Value>, ConfigError> {
        let key = (resource, name.to_string());
        if !self.cache.contains_key(&key) {
            let info = self
                .service
                .registry
                .get("", "v1", resource)
                .ok_or_else(|| ConfigError(format!("{resource} are not served")))?;
            let ns = (resource != "nodes").then_some(self.namespace.as_str());
            let found = match self.service.store.get(&info, ns, name) {
                Ok(v) => Some(v),
                Err(e) if e.code() == 404 => None,
                Err(e) => return Err(ConfigError(e.to_string())),
            };
            self.cache.insert(key.clone(), found);
        }
        Ok(self.cache.get(&key).and_then(Option::as_ref))
    }

    /// A ConfigMap's or Secret's entries as text (Secret data decoded), or `None`.
    pub fn entries(
        &mut self,
        resource: &'static str,
        name: &str,
    ) -> Result<Option<Entries>, ConfigError> {
        let Some(obj) = self.get(resource, name)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        if let Some(data) = obj.get("data").and_then(Value::as_object) {
            for (k, v) in data {
                let text = v.as_str().unwrap_or("");
                let bytes = if resource == "secrets" {
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .unwrap_or_default()
                } else {
                    text.as_bytes().to_vec()
                };
                out.push((k.clone(), bytes));
            }
        }
        if let Some(data) = obj.get("binaryData").and_then(Value::as_object) {
            for (k, v) in data {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap_or(""))
                    .unwrap_or_default();
                out.push((k.clone(), bytes));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Some(out))
    }

    fn node_allocatable(&mut self, node: &str, resource: &str) -> Option<String> {
        let n = self.get("nodes", node).ok()??;
        n.pointer(&format!("/status/allocatable/{resource}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

/// The singular resource name upstream's NotFound uses (`configmap "x" not found`).
fn singular(resource: &str) -> &'static str {
    if resource == "secrets" {
        "secret"
    } else {
        "configmap"
    }
}

fn kind(resource: &str) -> &'static str {
    if resource == "secrets" {
        "Secret"
    } else {
        "ConfigMap"
    }
}

/// Upstream's `$(VAR)` expansion: a defined name is replaced, `$$` is a literal `$`, and
/// anything else (undefined names, unclosed references) stays as written.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().unwrap_or('$');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A `fieldRef` path's value (`metadata.labels['k']`, `status.podIP`, ...).
fn field_ref(pod: &Value, path: &str, pod_ip: &str, host_ip: &str) -> Result<String, ConfigError> {
    let quoted = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("['"))
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_string)
    };
    if let Some(k) = quoted("metadata.labels") {
        return Ok(pod
            .pointer("/metadata/labels")
            .and_then(|l| l.get(&k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string());
    }
    if let Some(k) = quoted("metadata.annotations") {
        return Ok(pod
            .pointer("/metadata/annotations")
            .and_then(|l| l.get(&k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string());
    }
    Ok(match path {
        "metadata.name" => str_at(pod, "/metadata/name").to_string(),
        "metadata.namespace" => str_at(pod, "/metadata/namespace").to_string(),
        "metadata.uid" => str_at(pod, "/metadata/uid").to_string(),
        "spec.nodeName" => str_at(pod, "/spec/nodeName").to_string(),
        "spec.serviceAccountName" => str_at(pod, "/spec/serviceAccountName").to_string(),
        "status.podIP" | "status.podIPs" => pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        other => {
            return Err(ConfigError(format!("unsupported fieldPath: {other}")));
        }
    })
}

/// A `resourceFieldRef`'s value: the container's limit (the node's allocatable when
/// unset) or request, divided by `divisor` and rounded up, as upstream.
fn resource_field_ref(
    sources: &mut Sources<'_>,
    pod: &Value,
    container: &Value,
    r: &Value,
) -> Result<String, ConfigError> {
    let resource = str_at(r, "/resource");
    let (section, name) = resource
        .split_once('.')
        .ok_or_else(|| ConfigError(format!("unsupported container resource: {resource}")))?;
    let set = container
        .pointer(&format!("/resources/{section}/{name}"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let quantity = match (set, section) {
        (Some(q), _) => q,
        (None, "limits") => sources
            .node_allocatable(str_at(pod, "/spec/nodeName"), name)
            .unwrap_or_else(|| "0".into()),
        (None, _) => "0".into(),
    };
    let divisor = match r.get("divisor") {
        Some(Value::String(d)) if !d.is_empty() => d.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "1".into(),
    };
    let value = crate::placement::fit::milli(&quantity).unwrap_or(0);
    let div = crate::placement::fit::milli(&divisor)
        .filter(|d| *d > 0)
        .unwrap_or(1000);
    Ok(((value + div - 1) / div).to_string())
}

/// `[A-Za-z_][A-Za-z0-9_]*`-ish: upstream accepts any C identifier plus `.` and `-`
/// (`IsEnvVarName`), and skips other envFrom keys.
fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// One container's resolved environment (in declaration order, a redefined name keeping
/// its first position) and its expanded command and args.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedContainer {
    pub env: Vec<(String, String)>,
    pub command: Vec<String>,
    pub args: Vec<String>,
}

/// Resolves `container`'s environment for `pod` (whose IP is `pod_ip` on a host at
/// `host_ip`).
pub fn resolve(
    sources: &mut Sources<'_>,
    pod: &Value,
    container: &Value,
    pod_ip: &str,
    host_ip: &str,
) -> Result<ResolvedContainer, ConfigError> {
    let ns = str_at(pod, "/metadata/namespace").to_string();
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, name: String, value: String| match env
        .iter_mut()
        .find(|(n, _)| *n == name)
    {
        Some(slot) => slot.1 = value,
        None => env.push((name, value)),
    };
    for from in container
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let prefix = str_at(from, "/prefix");
        let (resource, source) = if let Some(s) = from.get("configMapRef") {
            ("configmaps", s)
        } else if let Some(s) = from.get("secretRef") {
            ("secrets", s)
        } else {
            continue;
        };
        let name = str_at(source, "/name");
        let optional = source.get("optional").and_then(Value::as_bool) == Some(true);
        match sources.entries(resource, name)? {
            Some(entries) => {
                for (k, v) in entries {
                    let key = format!("{prefix}{k}");
                    if valid_env_name(&key) {
                        set(&mut env, key, String::from_utf8_lossy(&v).into_owned());
                    }
                }
            }
            None if optional => {}
            None => {
                return Err(ConfigError(format!(
                    "{} \"{name}\" not found",
                    singular(resource)
                )));
            }
        }
    }
    for var in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_at(var, "/name").to_string();
        let value = if let Some(from) = var.get("valueFrom") {
            let key_ref = from
                .get("configMapKeyRef")
                .map(|r| ("configmaps", r))
                .or_else(|| from.get("secretKeyRef").map(|r| ("secrets", r)));
            if let Some((resource, r)) = key_ref {
                let obj = str_at(r, "/name");
                let key = str_at(r, "/key");
                let optional = r.get("optional").and_then(Value::as_bool) == Some(true);
                match sources.entries(resource, obj)? {
                    None if optional => continue,
                    None => {
                        return Err(ConfigError(format!(
                            "{} \"{obj}\" not found",
                            singular(resource)
                        )));
                    }
                    Some(entries) => match entries.into_iter().find(|(k, _)| k == key) {
                        Some((_, v)) => String::from_utf8_lossy(&v).into_owned(),
                        None if optional => continue,
                        None => {
                            return Err(ConfigError(format!(
                                "couldn't find key {key} in {} {ns}/{obj}",
                                kind(resource)
                            )));
                        }
                    },
                }
            } else if let Some(f) = from.get("fieldRef") {
                field_ref(pod, str_at(f, "/fieldPath"), pod_ip, host_ip)?
            } else if let Some(r) = from.get("resourceFieldRef") {
                resource_field_ref(sources, pod, container, r)?
            } else {
                String::new()
            }
        } else {
            let raw = str_at(var, "/value");
            let known = env.clone();
            expand(raw, &|n| {
                known.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
            })
        };
        set(&mut env, name, value);
    }
    let lookup = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let strings = |field: &str| -> Vec<String> {
        container
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|s| expand(s, &lookup))
            .collect()
    };
    let command = strings("command");
    let args = strings("args");
    Ok(ResolvedContainer { env, command, args })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_is_upstreams() {
        let lookup = |n: &str| match n {
            "A" => Some("1".to_string()),
            "B" => Some("two".to_string()),
            _ => None,
        };
        assert_eq!(expand("$(A)-$(B)", &lookup), "1-two");
        assert_eq!(expand("$(C) stays", &lookup), "$(C) stays");
        assert_eq!(expand("$$(A) escaped", &lookup), "$(A) escaped");
        assert_eq!(expand("cost $5 $(A", &lookup), "cost $5 $(A");
        assert_eq!(expand("ünï $(A)", &lookup), "ünï 1");
    }

    #[test]
    fn field_refs_read_the_pod() {
        let pod = serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "web"},
                         "annotations": {"a/b": "c"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa"},
        });
        let f = |p: &str| field_ref(&pod, p, "10.0.0.5", "10.0.0.1").unwrap();
        assert_eq!(f("metadata.name"), "p");
        assert_eq!(f("metadata.labels['app']"), "web");
        assert_eq!(f("metadata.annotations['a/b']"), "c");
        assert_eq!(f("spec.nodeName"), "n1");
        assert_eq!(f("spec.serviceAccountName"), "sa");
        assert_eq!(f("status.podIP"), "10.0.0.5");
        assert_eq!(f("status.hostIP"), "10.0.0.1");
        assert!(field_ref(&pod, "metadata.labels", "", "").is_err());
    }
}
