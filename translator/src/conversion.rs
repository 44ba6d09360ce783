//! Versions of one resource that share one storage key: objects are stored in the
//! resource's storage version and converted when served at another version, as
//! upstream's conversion functions do. Today that is HorizontalPodAutoscaler, stored
//! as `autoscaling/v2` and also served as `autoscaling/v1`.
//!
//! The v1 ⇄ v2 HPA conversion follows `pkg/apis/autoscaling/v1/conversion.go`:
//! `spec.targetCPUUtilizationPercentage` ⇄ the cpu `Utilization` Resource metric,
//! `status.currentCPUUtilizationPercentage` ⇄ the cpu current metric, and what v1 cannot
//! express (other metrics, current metrics, conditions, behavior) round-trips through
//! the `autoscaling.alpha.kubernetes.io/*` annotations in v1 form. An HPA without
//! metrics gets upstream's default: cpu at 80%.

use serde_json::{Map, Value, json};

use crate::registry::ResourceInfo;

const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
const ROUND_TRIP_ANNOTATIONS: [&str; 4] = [
    METRICS_ANNOTATION,
    CURRENT_METRICS_ANNOTATION,
    CONDITIONS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
];
/// `autoscaling.DefaultCPUUtilization`.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// The group and version a resource served at several group-versions is stored as.
/// Events are one resource served by two groups: upstream keeps both under
/// `/registry/events`, so an Event written as `events.k8s.io/v1` reads as `v1` and back.
pub fn storage_group_version(group: &str, plural: &str) -> Option<(&'static str, &'static str)> {
    match (group, plural) {
        ("autoscaling", "horizontalpodautoscalers") => Some(("autoscaling", "v2")),
        ("" | "events.k8s.io", "events") => Some(("", "v1")),
        _ => None,
    }
}

/// The version a resource served at several versions is stored as.
pub fn storage_version(group: &str, plural: &str) -> Option<&'static str> {
    storage_group_version(group, plural).map(|(_, v)| v)
}

/// The group whose keys hold objects of `group`/`plural` (the group itself for most).
pub fn storage_group<'a>(group: &'a str, plural: &str) -> &'a str {
    storage_group_version(group, plural).map_or(group, |(g, _)| g)
}

/// Whether objects of `res` must be converted between storage and the wire.
pub fn needs_conversion(res: &ResourceInfo) -> bool {
    // Custom resources: every version is served from one stored form (`None` conversion).
    if res.custom.is_some() {
        return true;
    }
    storage_group_version(&res.group, &res.plural)
        .is_some_and(|(g, v)| g != res.group || v != res.version)
}

/// A stored object as `res` serves it.
pub fn to_served(res: &ResourceInfo, stored: Value) -> Value {
    if res.custom.is_some() {
        return crate::crd::to_served(res, stored);
    }
    if !needs_conversion(res) {
        return stored;
    }
    match (res.group.as_str(), res.version.as_str()) {
        ("autoscaling", "v1") => hpa_v2_to_v1(stored),
        ("events.k8s.io", "v1") => event_core_to_v1(stored),
        _ => stored,
    }
}

/// An object written through `res` in its storage version.
pub fn to_storage(res: &ResourceInfo, served: Value) -> Value {
    // Custom resources are stored as written (`None` conversion; reads set apiVersion).
    if !needs_conversion(res) || res.custom.is_some() {
        return served;
    }
    match (res.group.as_str(), res.version.as_str()) {
        ("autoscaling", "v1") => hpa_v1_to_v2(served),
        ("events.k8s.io", "v1") => event_v1_to_core(served),
        _ => served,
    }
}

/// Field names of `events.k8s.io/v1` Event and the `v1` Event fields they are, as
/// upstream's `Convert_v1_Event_To_core_Event` maps them (fields not listed keep their
/// name: metadata, eventTime, series, related, action, reason, type, reportingInstance).
const EVENT_RENAMES: [(&str, &str); 7] = [
    ("note", "message"),
    ("regarding", "involvedObject"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename_fields(
    mut obj: Value,
    renames: impl Iterator<Item = (&'static str, &'static str)>,
    api_version: &str,
) -> Value {
    if let Some(map) = obj.as_object_mut() {
        let taken: Vec<(&str, Option<Value>)> =
            renames.map(|(from, to)| (to, map.remove(from))).collect();
        for (to, value) in taken {
            map.remove(to);
            if let Some(v) = value {
                map.insert(to.to_string(), v);
            }
        }
        map.insert("apiVersion".into(), json!(api_version));
    }
    obj
}

/// A stored `v1` Event as `events.k8s.io/v1` serves it.
fn event_core_to_v1(obj: Value) -> Value {
    rename_fields(
        obj,
        EVENT_RENAMES.iter().map(|(v1, core)| (*core, *v1)),
        "events.k8s.io/v1",
    )
}

/// An `events.k8s.io/v1` Event in its stored `v1` form.
fn event_v1_to_core(obj: Value) -> Value {
    rename_fields(obj, EVENT_RENAMES.iter().copied(), "v1")
}

/// Copies `keys` of `from` that are present (and not null) into `to`.
fn copy(from: &Value, to: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        if let Some(v) = from.get(*k).filter(|v| !v.is_null()) {
            to.insert((*k).to_string(), v.clone());
        }
    }
}

/// Sets `key` to `value` unless it is null.
fn put(to: &mut Map<String, Value>, key: &str, value: Option<&Value>) {
    if let Some(v) = value.filter(|v| !v.is_null()) {
        to.insert(key.to_string(), v.clone());
    }
}

/// A Go `resource.Quantity` that is not a pointer: its zero value prints `"0"`.
fn quantity_or_zero(value: Option<&Value>) -> Value {
    value
        .filter(|v| !v.is_null())
        .cloned()
        .unwrap_or_else(|| json!("0"))
}

/// Takes the round-trip annotations out of `obj`, returning them.
fn take_round_trip_annotations(obj: &mut Value) -> Map<String, Value> {
    let mut taken = Map::new();
    let Some(annotations) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return taken;
    };
    for key in ROUND_TRIP_ANNOTATIONS {
        if let Some(v) = annotations.remove(key) {
            taken.insert(key.to_string(), v);
        }
    }
    if annotations.is_empty()
        && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.remove("annotations");
    }
    taken
}

fn set_annotation(obj: &mut Value, key: &str, value: &Value) {
    let text = serde_json::to_string(value).unwrap_or_default();
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    if !obj["metadata"]
        .get("annotations")
        .is_some_and(Value::is_object)
    {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][key] = json!(text);
}

/// The annotation's JSON list, when present and well-formed (upstream ignores a bad one).
fn annotation_list(annotations: &Map<String, Value>, key: &str) -> Option<Vec<Value>> {
    let text = annotations.get(key)?.as_str()?;
    serde_json::from_str::<Vec<Value>>(text).ok()
}

fn is_cpu_utilization_target(metric: &Value) -> bool {
    metric["type"] == "Resource"
        && metric.pointer("/resource/name") == Some(&json!("cpu"))
        && metric
            .pointer("/resource/target/averageUtilization")
            .is_some_and(|v| !v.is_null())
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    take_round_trip_annotations(&mut obj);
    let spec2 = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status2 = obj.get("status").cloned();
    let metrics: Vec<Value> = spec2
        .get("metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    let mut spec1 = Map::new();
    copy(
        &spec2,
        &mut spec1,
        &["scaleTargetRef", "minReplicas", "maxReplicas"],
    );
    if let Some(cpu) = metrics.iter().find(|m| is_cpu_utilization_target(m)) {
        put(
            &mut spec1,
            "targetCPUUtilizationPercentage",
            cpu.pointer("/resource/target/averageUtilization"),
        );
    }
    let other: Vec<Value> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization_target(m))
        .map(metric_spec_v2_to_v1)
        .collect();
    obj["apiVersion"] = json!("autoscaling/v1");
    obj["spec"] = Value::Object(spec1);
    if !other.is_empty() {
        set_annotation(&mut obj, METRICS_ANNOTATION, &json!(other));
    }
    if let Some(behavior) = spec2.get("behavior").filter(|b| !b.is_null()) {
        set_annotation(&mut obj, BEHAVIOR_ANNOTATION, behavior);
    }
    // v1's status is a plain struct: always written, with its non-pointer replica counts.
    {
        let status2 = status2.unwrap_or_else(|| json!({}));
        let mut status1 = Map::new();
        copy(
            &status2,
            &mut status1,
            &["observedGeneration", "lastScaleTime"],
        );
        // Non-pointer int32s in v1: always written.
        for k in ["currentReplicas", "desiredReplicas"] {
            status1.insert(
                k.to_string(),
                status2.get(k).cloned().unwrap_or_else(|| json!(0)),
            );
        }
        let current: Vec<Value> = status2
            .get("currentMetrics")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for m in &current {
            if m["type"] == "Resource" && m.pointer("/resource/name") == Some(&json!("cpu")) {
                put(
                    &mut status1,
                    "currentCPUUtilizationPercentage",
                    m.pointer("/resource/current/averageUtilization"),
                );
            }
        }
        obj["status"] = Value::Object(status1);
        if !current.is_empty() {
            let v1: Vec<Value> = current.iter().map(metric_status_v2_to_v1).collect();
            set_annotation(&mut obj, CURRENT_METRICS_ANNOTATION, &json!(v1));
        }
        if let Some(conditions) = status2
            .get("conditions")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
        {
            set_annotation(&mut obj, CONDITIONS_ANNOTATION, &json!(conditions));
        }
    }
    obj
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    let annotations = take_round_trip_annotations(&mut obj);
    let spec1 = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status1 = obj.get("status").cloned();

    let mut spec2 = Map::new();
    copy(
        &spec1,
        &mut spec2,
        &["scaleTargetRef", "minReplicas", "maxReplicas"],
    );
    let cpu = spec1
        .get("targetCPUUtilizationPercentage")
        .filter(|v| !v.is_null())
        .map(|target| {
            json!({"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": target}}})
        });
    // Annotation metrics first, then the cpu target, as upstream orders them.
    let mut metrics: Vec<Value> = annotation_list(&annotations, METRICS_ANNOTATION)
        .map(|list| list.iter().map(metric_spec_v1_to_v2).collect())
        .unwrap_or_default();
    metrics.extend(cpu);
    if metrics.is_empty() {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}));
    }
    spec2.insert("metrics".into(), json!(metrics));
    if let Some(behavior) = annotations
        .get(BEHAVIOR_ANNOTATION)
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .filter(|b| b.as_object().is_some_and(|m| !m.is_empty()))
    {
        spec2.insert("behavior".into(), behavior);
    }
    obj["apiVersion"] = json!("autoscaling/v2");
    obj["spec"] = Value::Object(spec2);

    if let Some(status1) = status1.filter(Value::is_object) {
        let mut status2 = Map::new();
        copy(
            &status1,
            &mut status2,
            &["observedGeneration", "lastScaleTime"],
        );
        // v2's currentReplicas is omitempty.
        if let Some(n) = status1
            .get("currentReplicas")
            .filter(|n| n.as_i64() != Some(0))
        {
            status2.insert("currentReplicas".into(), n.clone());
        }
        status2.insert(
            "desiredReplicas".into(),
            status1
                .get("desiredReplicas")
                .cloned()
                .unwrap_or_else(|| json!(0)),
        );
        let mut current: Vec<Value> = status1
            .get("currentCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
            .map(|u| {
                vec![json!({"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": u}}})]
            })
            .unwrap_or_default();
        // The annotation knows more (raw values): it wins.
        if let Some(list) = annotation_list(&annotations, CURRENT_METRICS_ANNOTATION) {
            current = list.iter().map(metric_status_v1_to_v2).collect();
        }
        if !current.is_empty() {
            status2.insert("currentMetrics".into(), json!(current));
        }
        if let Some(conditions) = annotation_list(&annotations, CONDITIONS_ANNOTATION) {
            status2.insert("conditions".into(), json!(conditions));
        }
        // The zero status v1 always shows is no status at all in storage.
        if Value::Object(status2.clone()) == json!({"desiredReplicas": 0}) {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        } else {
            obj["status"] = Value::Object(status2);
        }
    }
    obj
}

/// A v2 `MetricSpec` in the v1 annotation's (v2beta1-like) form.
fn metric_spec_v2_to_v1(m: &Value) -> Value {
    let mut out = Map::new();
    copy(m, &mut out, &["type"]);
    let target = |src: &Value, k: &str| src.pointer(&format!("/target/{k}")).cloned();
    if let Some(o) = m.get("object").filter(|v| v.is_object()) {
        let mut v = Map::new();
        put(&mut v, "target", o.get("describedObject"));
        put(&mut v, "metricName", o.pointer("/metric/name"));
        v.insert(
            "targetValue".into(),
            quantity_or_zero(target(o, "value").as_ref()),
        );
        put(&mut v, "selector", o.pointer("/metric/selector"));
        put(&mut v, "averageValue", target(o, "averageValue").as_ref());
        out.insert("object".into(), Value::Object(v));
    }
    if let Some(p) = m.get("pods").filter(|v| v.is_object()) {
        let mut v = Map::new();
        put(&mut v, "metricName", p.pointer("/metric/name"));
        v.insert(
            "targetAverageValue".into(),
            quantity_or_zero(target(p, "averageValue").as_ref()),
        );
        put(&mut v, "selector", p.pointer("/metric/selector"));
        out.insert("pods".into(), Value::Object(v));
    }
    for kind in ["resource", "containerResource"] {
        if let Some(r) = m.get(kind).filter(|v| v.is_object()) {
            let mut v = Map::new();
            copy(r, &mut v, &["name", "container"]);
            put(
                &mut v,
                "targetAverageUtilization",
                target(r, "averageUtilization").as_ref(),
            );
            put(
                &mut v,
                "targetAverageValue",
                target(r, "averageValue").as_ref(),
            );
            out.insert(kind.into(), Value::Object(v));
        }
    }
    if let Some(e) = m.get("external").filter(|v| v.is_object()) {
        let mut v = Map::new();
        put(&mut v, "metricName", e.pointer("/metric/name"));
        put(&mut v, "metricSelector", e.pointer("/metric/selector"));
        put(&mut v, "targetValue", target(e, "value").as_ref());
        put(
            &mut v,
            "targetAverageValue",
            target(e, "averageValue").as_ref(),
        );
        out.insert("external".into(), Value::Object(v));
    }
    Value::Object(out)
}

/// A v1 annotation `MetricSpec` as v2.
fn metric_spec_v1_to_v2(m: &Value) -> Value {
    let mut out = Map::new();
    copy(m, &mut out, &["type"]);
    let metric = |name: Option<&Value>, selector: Option<&Value>| {
        let mut id = Map::new();
        put(&mut id, "name", name);
        put(&mut id, "selector", selector);
        Value::Object(id)
    };
    let present = |v: Option<&Value>| v.is_some_and(|v| !v.is_null());
    if let Some(o) = m.get("object").filter(|v| v.is_object()) {
        let mut t = Map::new();
        let kind = if present(o.get("averageValue")) {
            "AverageValue"
        } else {
            "Value"
        };
        t.insert("type".into(), json!(kind));
        put(&mut t, "value", o.get("targetValue"));
        put(&mut t, "averageValue", o.get("averageValue"));
        let mut v = Map::new();
        put(&mut v, "describedObject", o.get("target"));
        v.insert(
            "metric".into(),
            metric(o.get("metricName"), o.get("selector")),
        );
        v.insert("target".into(), Value::Object(t));
        out.insert("object".into(), Value::Object(v));
    }
    if let Some(p) = m.get("pods").filter(|v| v.is_object()) {
        let mut t = Map::new();
        t.insert("type".into(), json!("AverageValue"));
        put(&mut t, "averageValue", p.get("targetAverageValue"));
        out.insert(
            "pods".into(),
            json!({"metric": metric(p.get("metricName"), p.get("selector")), "target": t}),
        );
    }
    for kind in ["resource", "containerResource"] {
        if let Some(r) = m.get(kind).filter(|v| v.is_object()) {
            let mut t = Map::new();
            let target_type = if present(r.get("targetAverageUtilization")) {
                "Utilization"
            } else {
                "AverageValue"
            };
            t.insert("type".into(), json!(target_type));
            put(
                &mut t,
                "averageUtilization",
                r.get("targetAverageUtilization"),
            );
            put(&mut t, "averageValue", r.get("targetAverageValue"));
            let mut v = Map::new();
            copy(r, &mut v, &["name", "container"]);
            v.insert("target".into(), Value::Object(t));
            out.insert(kind.into(), Value::Object(v));
        }
    }
    if let Some(e) = m.get("external").filter(|v| v.is_object()) {
        let mut t = Map::new();
        let kind = if present(e.get("targetValue")) {
            "Value"
        } else {
            "AverageValue"
        };
        t.insert("type".into(), json!(kind));
        put(&mut t, "value", e.get("targetValue"));
        put(&mut t, "averageValue", e.get("targetAverageValue"));
        out.insert(
            "external".into(),
            json!({"metric": metric(e.get("metricName"), e.get("metricSelector")), "target": t}),
        );
    }
    Value::Object(out)
}

/// A v2 `MetricStatus` in the v1 annotation's form.
fn metric_status_v2_to_v1(m: &Value) -> Value {
    let mut out = Map::new();
    copy(m, &mut out, &["type"]);
    let current = |src: &Value, k: &str| src.pointer(&format!("/current/{k}")).cloned();
    if let Some(o) = m.get("object").filter(|v| v.is_object()) {
        let mut v = Map::new();
        put(&mut v, "target", o.get("describedObject"));
        put(&mut v, "metricName", o.pointer("/metric/name"));
        v.insert(
            "currentValue".into(),
            quantity_or_zero(current(o, "value").as_ref()),
        );
        put(&mut v, "selector", o.pointer("/metric/selector"));
        put(&mut v, "averageValue", current(o, "averageValue").as_ref());
        out.insert("object".into(), Value::Object(v));
    }
    if let Some(p) = m.get("pods").filter(|v| v.is_object()) {
        let mut v = Map::new();
        put(&mut v, "metricName", p.pointer("/metric/name"));
        v.insert(
            "currentAverageValue".into(),
            quantity_or_zero(current(p, "averageValue").as_ref()),
        );
        put(&mut v, "selector", p.pointer("/metric/selector"));
        out.insert("pods".into(), Value::Object(v));
    }
    for kind in ["resource", "containerResource"] {
        if let Some(r) = m.get(kind).filter(|v| v.is_object()) {
            let mut v = Map::new();
            copy(r, &mut v, &["name", "container"]);
            put(
                &mut v,
                "currentAverageUtilization",
                current(r, "averageUtilization").as_ref(),
            );
            v.insert(
                "currentAverageValue".into(),
                quantity_or_zero(current(r, "averageValue").as_ref()),
            );
            out.insert(kind.into(), Value::Object(v));
        }
    }
    if let Some(e) = m.get("external").filter(|v| v.is_object()) {
        let mut v = Map::new();
        put(&mut v, "metricName", e.pointer("/metric/name"));
        put(&mut v, "metricSelector", e.pointer("/metric/selector"));
        v.insert(
            "currentValue".into(),
            quantity_or_zero(current(e, "value").as_ref()),
        );
        put(
            &mut v,
            "currentAverageValue",
            current(e, "averageValue").as_ref(),
        );
        out.insert("external".into(), Value::Object(v));
    }
    Value::Object(out)
}

/// A v1 annotation `MetricStatus` as v2.
fn metric_status_v1_to_v2(m: &Value) -> Value {
    let mut out = Map::new();
    copy(m, &mut out, &["type"]);
    let metric = |name: Option<&Value>, selector: Option<&Value>| {
        let mut id = Map::new();
        put(&mut id, "name", name);
        put(&mut id, "selector", selector);
        Value::Object(id)
    };
    if let Some(o) = m.get("object").filter(|v| v.is_object()) {
        let mut c = Map::new();
        put(&mut c, "value", o.get("currentValue"));
        put(&mut c, "averageValue", o.get("averageValue"));
        let mut v = Map::new();
        put(&mut v, "describedObject", o.get("target"));
        v.insert(
            "metric".into(),
            metric(o.get("metricName"), o.get("selector")),
        );
        v.insert("current".into(), Value::Object(c));
        out.insert("object".into(), Value::Object(v));
    }
    if let Some(p) = m.get("pods").filter(|v| v.is_object()) {
        let mut c = Map::new();
        put(&mut c, "averageValue", p.get("currentAverageValue"));
        out.insert(
            "pods".into(),
            json!({"metric": metric(p.get("metricName"), p.get("selector")), "current": c}),
        );
    }
    for kind in ["resource", "containerResource"] {
        if let Some(r) = m.get(kind).filter(|v| v.is_object()) {
            let mut c = Map::new();
            put(&mut c, "averageValue", r.get("currentAverageValue"));
            put(
                &mut c,
                "averageUtilization",
                r.get("currentAverageUtilization"),
            );
            let mut v = Map::new();
            copy(r, &mut v, &["name", "container"]);
            v.insert("current".into(), Value::Object(c));
            out.insert(kind.into(), Value::Object(v));
        }
    }
    if let Some(e) = m.get("external").filter(|v| v.is_object()) {
        let mut c = Map::new();
        put(&mut c, "value", e.get("currentValue"));
        put(&mut c, "averageValue", e.get("currentAverageValue"));
        out.insert(
            "external".into(),
            json!({"metric": metric(e.get("metricName"), e.get("metricSelector")), "current": c}),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa_res(version: &str) -> ResourceInfo {
        ResourceInfo {
            group: "autoscaling".into(),
            version: version.into(),
            kind: "HorizontalPodAutoscaler".into(),
            plural: "horizontalpodautoscalers".into(),
            singular: "horizontalpodautoscaler".into(),
            namespaced: true,
            verbs: Vec::new(),
            short_names: Vec::new(),
            categories: Vec::new(),
            subresources: Vec::new(),
            list_kind: String::new(),
            definition: String::new(),
            custom: None,
        }
    }

    const REF: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}"#;

    fn target_ref() -> Value {
        serde_json::from_str(REF).unwrap()
    }

    #[test]
    fn only_v1_hpas_convert() {
        assert!(needs_conversion(&hpa_res("v1")));
        assert!(!needs_conversion(&hpa_res("v2")));
        let v2 = json!({"apiVersion": "autoscaling/v2", "spec": {}});
        assert_eq!(to_served(&hpa_res("v2"), v2.clone()), v2);
    }

    #[test]
    fn cpu_target_maps_both_ways() {
        let v1 = json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": target_ref(), "minReplicas": 1, "maxReplicas": 5,
                     "targetCPUUtilizationPercentage": 70},
        });
        let stored = to_storage(&hpa_res("v1"), v1.clone());
        assert_eq!(stored["apiVersion"], "autoscaling/v2");
        assert_eq!(
            stored["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70}}}])
        );
        assert!(
            stored["spec"]
                .get("targetCPUUtilizationPercentage")
                .is_none()
        );
        let mut served = v1.clone();
        served["status"] = json!({"currentReplicas": 0, "desiredReplicas": 0});
        assert_eq!(to_served(&hpa_res("v1"), stored.clone()), served);
        // Written back unchanged, it is the same stored object.
        assert_eq!(to_storage(&hpa_res("v1"), served), stored);
    }

    #[test]
    fn no_metric_means_cpu_at_80() {
        let v1 = json!({"spec": {"scaleTargetRef": target_ref(), "maxReplicas": 3}});
        let stored = to_storage(&hpa_res("v1"), v1);
        assert_eq!(
            stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert_eq!(
            to_served(&hpa_res("v1"), stored)["spec"]["targetCPUUtilizationPercentage"],
            80
        );
    }

    #[test]
    fn what_v1_cannot_say_round_trips_through_annotations() {
        let v2 = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "annotations": {"team": "a"}},
            "spec": {
                "scaleTargetRef": target_ref(), "minReplicas": 1, "maxReplicas": 5,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "memory",
                        "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"},
                        "target": {"type": "AverageValue", "averageValue": "10"}}},
                    {"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 60}}},
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}},
            },
            "status": {
                "currentReplicas": 2, "desiredReplicas": 3,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": 55, "averageValue": "110m"}}}],
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"}],
            },
        });
        let v1 = to_served(&hpa_res("v1"), v2.clone());
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 55);
        assert_eq!(v1["status"]["currentReplicas"], 2);
        let annotations = &v1["metadata"]["annotations"];
        assert_eq!(annotations["team"], "a");
        let metrics: Value =
            serde_json::from_str(annotations[METRICS_ANNOTATION].as_str().unwrap()).unwrap();
        assert_eq!(
            metrics,
            json!([
                {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "500Mi"}},
                {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}},
            ])
        );
        // Written back through v1 (a GET, edit, PUT), nothing is lost.
        let back = to_storage(&hpa_res("v1"), v1);
        assert_eq!(back["spec"], v2["spec"]);
        assert_eq!(back["status"], v2["status"]);
        assert_eq!(back["metadata"], v2["metadata"]);
    }
}
