//! The shared manifest corpus (`shared/corpora/manifests/`), applied with every kubectl
//! version: each manifest whose kinds the server serves built in must apply cleanly and
//! read back. Manifests that need a CRD (or a group the server does not serve) are left out.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use beemesh_conformance::locate::corpora_dir;
use beemesh_conformance::{Ctx, kubectl_cases, skip};
use serde_json::Value;

kubectl_cases!(corpora_manifests);

fn corpora_manifests(ctx: &Ctx) {
    let Some(dir) = corpora_dir() else {
        skip("no shared/corpora/manifests directory on this machine (set BEEMESH_CORPORA)");
    };
    let k = &ctx.kubectl;
    let served: BTreeSet<String> = k
        .run(&["api-versions"])
        .ok()
        .stdout
        .lines()
        .map(str::to_string)
        .collect();
    let mut files = Vec::new();
    collect_manifests(&dir, &mut files);
    files.sort();
    let mut applied = 0;
    let mut left_out = 0;
    let mut failures = Vec::new();
    for file in &files {
        let docs = match documents(file) {
            Ok(docs) => docs,
            Err(e) => {
                failures.push(format!("{}: unreadable: {e}", file.display()));
                continue;
            }
        };
        if docs.is_empty() || !docs.iter().all(|d| needs_only_builtins(d, &served)) {
            left_out += 1;
            continue;
        }
        for ns in namespaces_of(&docs) {
            let exists = k.run(&["get", "namespace", &ns]);
            if exists.code != 0 {
                k.run(&["create", "namespace", &ns]);
            }
        }
        let path = file.to_string_lossy();
        let out = k.run(&["apply", "-f", &path]);
        if out.code != 0 {
            failures.push(format!("{}: {}", file.display(), out.brief()));
            continue;
        }
        let back = k.run(&["get", "-f", &path, "-o", "name"]);
        if back.code != 0 {
            failures.push(format!(
                "{}: applied but not readable: {}",
                file.display(),
                back.brief()
            ));
            continue;
        }
        applied += 1;
    }
    eprintln!(
        "corpus {}: {applied} applied, {left_out} left out (need CRDs), {} failed",
        dir.display(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} manifests failed: {}",
        failures.len(),
        applied + failures.len(),
        failures.join(" || ")
    );
}

fn collect_manifests(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_manifests(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
}

/// Every non-empty YAML document of a file (JSON is YAML).
fn documents(file: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// True when the object is of a built-in group-version the server serves (a `List` counts
/// when all its items do) and is not itself a CRD.
fn needs_only_builtins(doc: &Value, served: &BTreeSet<String>) -> bool {
    let kind = doc["kind"].as_str().unwrap_or_default();
    if kind.ends_with("List") {
        return doc["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|i| needs_only_builtins(i, served)));
    }
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    kind != "CustomResourceDefinition"
        && served.contains(api_version)
        && !is_custom_group(api_version)
}

/// Groups of built-in kinds contain no dots or end in `.k8s.io`; others come from CRDs.
fn is_custom_group(api_version: &str) -> bool {
    match api_version.split_once('/') {
        Some((group, _)) => group.contains('.') && !group.ends_with(".k8s.io"),
        None => false,
    }
}

fn namespaces_of(docs: &[Value]) -> BTreeSet<String> {
    docs.iter()
        .filter_map(|d| d["metadata"]["namespace"].as_str().map(str::to_string))
        .collect()
}
