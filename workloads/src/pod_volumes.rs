//! A pod's volumes written to the host for runtimes that run real processes:
//! `<pods dir>/<uid>/volumes/<name>/`. `emptyDir` is an empty directory; `configMap`,
//! `secret`, `downwardAPI` and `projected` are files (with `items`, `defaultMode` / `mode`
//! and `optional`); `hostPath` is the host path itself. Files are written when the pod
//! starts and not refreshed afterwards (the kubelet refreshes them about every minute).
//! Each `volumeMounts[]` entry becomes a `VolumeMount` whose host path honours `subPath`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::pod_env::{ConfigError, Sources};
use crate::runtime::VolumeMount;

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn mode_of(v: Option<&Value>, default: u32) -> u32 {
    v.and_then(Value::as_u64)
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(default)
}

fn write_file(dir: &Path, rel: &str, bytes: &[u8], mode: u32) -> Result<(), ConfigError> {
    let io = |e: std::io::Error| ConfigError(format!("writing {rel}: {e}"));
    if rel.split('/').any(|p| p == "..") || rel.starts_with('/') {
        return Err(ConfigError(format!("invalid path {rel:?}")));
    }
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(&path, bytes).map_err(io)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(io)
}

/// A ConfigMap or Secret projected into `dir`.
fn key_files(
    sources: &mut Sources<'_>,
    resource: &'static str,
    name: &str,
    source: &Value,
    dir: &Path,
    default_mode: u32,
) -> Result<(), ConfigError> {
    let optional = source.get("optional").and_then(Value::as_bool) == Some(true);
    let singular = if resource == "secrets" {
        "secret"
    } else {
        "configmap"
    };
    let Some(entries) = sources.entries(resource, name)? else {
        if optional {
            return Ok(());
        }
        return Err(ConfigError(format!("{singular} \"{name}\" not found")));
    };
    match source.get("items").and_then(Value::as_array) {
        Some(items) if !items.is_empty() => {
            for item in items {
                let key = str_at(item, "/key");
                let Some((_, bytes)) = entries.iter().find(|(k, _)| k == key) else {
                    if optional {
                        continue;
                    }
                    return Err(ConfigError(format!(
                        "configmap references non-existent config key: {key}"
                    )));
                };
                let mode = mode_of(item.get("mode"), default_mode);
                write_file(dir, str_at(item, "/path"), bytes, mode)?;
            }
        }
        _ => {
            for (k, bytes) in &entries {
                write_file(dir, k, bytes, default_mode)?;
            }
        }
    }
    Ok(())
}

/// `k="v"` lines, sorted, as the kubelet writes labels and annotations.
fn map_lines(m: Option<&Value>) -> String {
    let mut lines: Vec<String> = m
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", Value::String(v.as_str().unwrap_or("").into())))
                .collect()
        })
        .unwrap_or_default();
    lines.sort();
    lines.join("\n")
}

/// Downward API items into `dir`.
fn downward_files(
    pod: &Value,
    items: &[Value],
    dir: &Path,
    default_mode: u32,
    host_ip: &str,
) -> Result<(), ConfigError> {
    for item in items {
        let path = str_at(item, "/path");
        let mode = mode_of(item.get("mode"), default_mode);
        let text = if let Some(f) = item.get("fieldRef") {
            match str_at(f, "/fieldPath") {
                "metadata.labels" => map_lines(pod.pointer("/metadata/labels")),
                "metadata.annotations" => map_lines(pod.pointer("/metadata/annotations")),
                "metadata.name" => str_at(pod, "/metadata/name").to_string(),
                "metadata.namespace" => str_at(pod, "/metadata/namespace").to_string(),
                "metadata.uid" => str_at(pod, "/metadata/uid").to_string(),
                other => {
                    let quoted = |prefix: &str, at: &str| {
                        other
                            .strip_prefix(prefix)
                            .and_then(|r| r.strip_prefix("['"))
                            .and_then(|r| r.strip_suffix("']"))
                            .map(|k| {
                                pod.pointer(at)
                                    .and_then(|m| m.get(k))
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_string()
                            })
                    };
                    quoted("metadata.labels", "/metadata/labels")
                        .or_else(|| quoted("metadata.annotations", "/metadata/annotations"))
                        .or_else(|| (other == "status.hostIP").then(|| host_ip.to_string()))
                        .ok_or_else(|| ConfigError(format!("unsupported fieldPath: {other}")))?
                }
            }
        } else {
            String::new()
        };
        write_file(dir, path, text.as_bytes(), mode)?;
    }
    Ok(())
}

/// Writes every volume of `pod` under `root` (`<pods dir>/<uid>/volumes`), returning where
/// each one is on the host, by volume name.
pub fn materialise(
    sources: &mut Sources<'_>,
    pod: &Value,
    root: &Path,
    host_ip: &str,
) -> Result<Vec<(String, PathBuf)>, ConfigError> {
    let mut out = Vec::new();
    for vol in pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_at(vol, "/name");
        let dir = root.join(name);
        let fail = |e: ConfigError| {
            ConfigError(format!(
                "MountVolume.SetUp failed for volume \"{name}\" : {e}"
            ))
        };
        if let Some(hp) = vol.get("hostPath") {
            out.push((name.to_string(), PathBuf::from(str_at(hp, "/path"))));
            continue;
        }
        // Projected content is rewritten whole; an emptyDir keeps what it holds.
        if vol.get("emptyDir").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| fail(ConfigError(format!("creating {}: {e}", dir.display()))))?;
        if let Some(cm) = vol.get("configMap") {
            let mode = mode_of(cm.get("defaultMode"), 0o644);
            key_files(sources, "configmaps", str_at(cm, "/name"), cm, &dir, mode).map_err(fail)?;
        } else if let Some(s) = vol.get("secret") {
            let mode = mode_of(s.get("defaultMode"), 0o644);
            key_files(sources, "secrets", str_at(s, "/secretName"), s, &dir, mode).map_err(fail)?;
        } else if let Some(d) = vol.get("downwardAPI") {
            let mode = mode_of(d.get("defaultMode"), 0o644);
            let items = d
                .get("items")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            downward_files(pod, items, &dir, mode, host_ip).map_err(fail)?;
        } else if let Some(p) = vol.get("projected") {
            let mode = mode_of(p.get("defaultMode"), 0o644);
            for source in p
                .get("sources")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(cm) = source.get("configMap") {
                    key_files(sources, "configmaps", str_at(cm, "/name"), cm, &dir, mode)
                        .map_err(fail)?;
                } else if let Some(s) = source.get("secret") {
                    key_files(sources, "secrets", str_at(s, "/name"), s, &dir, mode)
                        .map_err(fail)?;
                } else if let Some(d) = source.get("downwardAPI") {
                    let items = d
                        .get("items")
                        .and_then(Value::as_array)
                        .map_or(&[][..], Vec::as_slice);
                    downward_files(pod, items, &dir, mode, host_ip).map_err(fail)?;
                }
            }
        } else if vol.get("emptyDir").is_none() {
            tracing::debug!(
                volume = name,
                "volume type not materialised: an empty directory"
            );
        }
        out.push((name.to_string(), dir));
    }
    Ok(out)
}

/// A container's `volumeMounts[]` against the materialised volumes.
pub fn mounts(
    container: &Value,
    volumes: &[(String, PathBuf)],
) -> Result<Vec<VolumeMount>, ConfigError> {
    let mut out = Vec::new();
    for m in container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_at(m, "/name");
        let Some((_, host)) = volumes.iter().find(|(n, _)| n == name) else {
            return Err(ConfigError(format!(
                "cannot find volume \"{name}\" to mount into container \"{}\"",
                str_at(container, "/name")
            )));
        };
        let sub = str_at(m, "/subPath");
        if sub.split('/').any(|p| p == "..") || sub.starts_with('/') {
            return Err(ConfigError(format!("invalid subPath {sub:?}")));
        }
        let host_path = if sub.is_empty() {
            host.clone()
        } else {
            let p = host.join(sub);
            if !p.exists() {
                // As the kubelet: a missing subPath of a writable volume is created.
                let _ = std::fs::create_dir_all(&p);
            }
            p
        };
        out.push(VolumeMount {
            host_path,
            container_path: str_at(m, "/mountPath").to_string(),
            read_only: m.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_are_written_as_the_kubelet_does() {
        assert_eq!(
            map_lines(Some(&json!({"b": "2", "a": "x\"y"}))),
            "a=\"x\\\"y\"\nb=\"2\""
        );
    }

    #[test]
    fn downward_items_and_sub_paths() {
        let dir = std::env::temp_dir().join(format!("beemesh-vol-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pod = json!({"metadata": {"name": "p", "namespace": "n", "labels": {"app": "w"}}});
        let items = vec![
            json!({"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}),
            json!({"path": "sub/app", "fieldRef": {"fieldPath": "metadata.labels['app']"}, "mode": 0o600}),
        ];
        downward_files(&pod, &items, &dir, 0o644, "10.0.0.1").unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("name")).unwrap(), "p");
        assert_eq!(std::fs::read_to_string(dir.join("sub/app")).unwrap(), "w");
        let mode = std::fs::metadata(dir.join("sub/app"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let c = json!({"name": "c", "volumeMounts": [
            {"name": "v", "mountPath": "/etc/app", "subPath": "sub/app", "readOnly": true}]});
        let m = mounts(&c, &[("v".into(), dir.clone())]).unwrap();
        assert_eq!(m[0].host_path, dir.join("sub/app"));
        assert!(m[0].read_only);
        assert!(
            mounts(
                &json!({"name": "c", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}),
                &[]
            )
            .is_err()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
