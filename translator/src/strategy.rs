//! What upstream's registry strategies do to a new object between defaulting and
//! validation (`PrepareForCreate`, and the Job strategy's selector generation), beyond
//! the defaults of `defaulting`. They run after the uid is assigned, as upstream's
//! `FillObjectMetaSystemFields` precedes `BeforeCreate`.

use serde_json::{Map, Value, json};

use crate::registry::ResourceInfo;

/// The Job labels upstream's job strategy puts on the pod template.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";

/// Applies the create-time strategy of `res` to `obj` (which already has its uid).
pub fn prepare_for_create(res: &ResourceInfo, obj: &mut Value) {
    if res.group == "batch" && res.kind == "Job" {
        generate_job_selector(obj);
    }
    if crate::crd::is_crd(res) {
        crate::crd::prepare_crd_for_create(obj);
    }
    if res.group.is_empty() && res.plural == "pods" {
        add_default_toleration_seconds(obj);
    }
}

/// Upstream's `DefaultTolerationSeconds` admission default (`--default-not-ready-toleration-seconds`
/// and `--default-unreachable-toleration-seconds`).
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// The DefaultTolerationSeconds admission plugin: a new pod that does not already
/// tolerate the `not-ready` / `unreachable` NoExecute taints (a toleration with that key
/// or no key, and NoExecute or no effect) gets a 300 s toleration for each, so taint
/// eviction removes it from a lost node after 5 minutes.
pub fn add_default_toleration_seconds(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let existing = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let covers = |key: &str| {
        existing.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            let e = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        })
    };
    let mut added = Vec::new();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !covers(key) {
            added.push(
                json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                              "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}),
            );
        }
    }
    if added.is_empty() {
        return;
    }
    let mut all = existing;
    all.extend(added);
    spec.insert("tolerations".into(), Value::Array(all));
}

/// The object at `key`, created (or replacing a non-object) when needed.
fn object_entry<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    as_object(
        map.entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new())),
    )
}

fn as_object(value: &mut Value) -> &mut Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => {
            *other = Value::Object(Map::new());
            as_object(other)
        }
    }
}

/// The job strategy's `generateSelector`, unless `spec.manualSelector` is true: the pod
/// template gets `batch.kubernetes.io/job-name`, `job-name`,
/// `batch.kubernetes.io/controller-uid` and `controller-uid` labels (each only when the
/// user did not set it), and the selector matches `batch.kubernetes.io/controller-uid`
/// on the job's uid. A conflicting user value is left for validation to reject.
pub fn generate_job_selector(job: &mut Value) {
    if job.pointer("/spec/manualSelector") == Some(&Value::Bool(true)) {
        return;
    }
    let name = job
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let uid = job
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(root) = job.as_object_mut() else {
        return;
    };
    let spec = object_entry(root, "spec");
    {
        let labels = object_entry(
            object_entry(object_entry(spec, "template"), "metadata"),
            "labels",
        );
        for (label, value) in [
            (LEGACY_JOB_NAME_LABEL, &name),
            (JOB_NAME_LABEL, &name),
            (LEGACY_CONTROLLER_UID_LABEL, &uid),
            (CONTROLLER_UID_LABEL, &uid),
        ] {
            if !labels.contains_key(label) {
                labels.insert(label.to_string(), json!(value));
            }
        }
    }
    let match_labels = object_entry(object_entry(spec, "selector"), "matchLabels");
    if !match_labels.contains_key(CONTROLLER_UID_LABEL) {
        match_labels.insert(CONTROLLER_UID_LABEL.to_string(), json!(uid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_the_default_not_ready_and_unreachable_tolerations() {
        let mut pod = json!({"spec": {"containers": [{"name": "c"}]}});
        add_default_toleration_seconds(&mut pod);
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ])
        );
        let mut own = json!({"spec": {"tolerations": [
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 6000}]}});
        add_default_toleration_seconds(&mut own);
        let t = own["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 6000);
        assert_eq!(t[1]["key"], "node.kubernetes.io/not-ready");
        let mut everything = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        add_default_toleration_seconds(&mut everything);
        assert_eq!(
            everything["spec"]["tolerations"].as_array().unwrap().len(),
            1
        );
    }

    fn job(extra_spec: Value) -> Value {
        let mut j = json!({
            "metadata": {"name": "once", "uid": "u-1"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
        });
        if let (Some(spec), Value::Object(extra)) = (j["spec"].as_object_mut(), extra_spec) {
            spec.extend(extra);
        }
        j
    }

    #[test]
    fn generated_selector_and_template_labels() {
        let mut j = job(json!({}));
        generate_job_selector(&mut j);
        assert_eq!(
            j["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );
        assert_eq!(
            j["spec"]["template"]["metadata"]["labels"],
            json!({
                "batch.kubernetes.io/controller-uid": "u-1",
                "batch.kubernetes.io/job-name": "once",
                "controller-uid": "u-1",
                "job-name": "once",
            })
        );
    }

    #[test]
    fn user_labels_are_kept_and_manual_selector_is_left_alone() {
        let mut j = job(
            json!({"template": {"metadata": {"labels": {"job-name": "mine", "app": "x"}},
            "spec": {}}}),
        );
        generate_job_selector(&mut j);
        assert_eq!(
            j["spec"]["template"]["metadata"]["labels"]["job-name"],
            "mine"
        );
        assert_eq!(j["spec"]["template"]["metadata"]["labels"]["app"], "x");
        let mut manual = job(json!({"manualSelector": true,
            "selector": {"matchLabels": {"app": "x"}}}));
        let before = manual.clone();
        generate_job_selector(&mut manual);
        assert_eq!(manual, before);
    }
}
