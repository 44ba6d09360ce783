//! Event validation as upstream's `pkg/apis/core/validation/events.go`: every Event passes
//! the legacy rules (namespace agreement; for Events with `eventTime`, the reporting
//! fields, action and reason); Events written through `events.k8s.io/v1` must also carry
//! `eventTime` and a `Normal`/`Warning` type, leave the deprecated core fields unset and,
//! with a series, count at least 2. Field paths are upstream's internal names
//! (`involvedObject`, `message`), except the reporting controller, which is named as the
//! request's version calls it.

use serde_json::Value;

use super::field::{invalid, invalid_str, required};
use super::names::{is_dns1123_subdomain, is_qualified_name};
use crate::error::Cause;

const REPORTING_INSTANCE_LENGTH_LIMIT: usize = 128;
const ACTION_LENGTH_LIMIT: usize = 128;
const REASON_LENGTH_LIMIT: usize = 128;
const NOTE_LENGTH_LIMIT: usize = 1024;

/// The version-specific names of the fields the rules read.
struct Names {
    involved_object: &'static str,
    reporting_controller: &'static str,
    message: &'static str,
}

const CORE: Names = Names {
    involved_object: "involvedObject",
    reporting_controller: "reportingComponent",
    message: "message",
};

const EVENTS_V1: Names = Names {
    involved_object: "regarding",
    reporting_controller: "reportingController",
    message: "note",
};

fn text<'v>(obj: &'v Value, pointer: &str) -> &'v str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A Go time that is not its zero value (absent, null or empty all decode to zero).
fn is_set(obj: &Value, pointer: &str) -> bool {
    obj.pointer(pointer)
        .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
}

/// A `v1` Event (upstream's relaxed validation for the core API).
pub fn validate_core_event(obj: &Value, causes: &mut Vec<Cause>) {
    legacy(obj, &CORE, causes);
}

/// An `events.k8s.io/v1` Event: the legacy rules and the strict ones.
pub fn validate_events_v1_event(obj: &Value, causes: &mut Vec<Cause>) {
    legacy(obj, &EVENTS_V1, causes);
    validate_series(obj, causes);
    if !is_set(obj, "/eventTime") {
        causes.push(required("eventTime", ""));
    }
    let kind = text(obj, "/type");
    if kind != "Normal" && kind != "Warning" {
        causes.push(invalid_str(
            "type",
            "",
            &format!("has invalid value: {kind}"),
        ));
    }
    for (field, set) in [
        (
            "deprecatedFirstTimestamp",
            is_set(obj, "/deprecatedFirstTimestamp"),
        ),
        (
            "deprecatedLastTimestamp",
            is_set(obj, "/deprecatedLastTimestamp"),
        ),
        (
            "deprecatedCount",
            obj.get("deprecatedCount")
                .and_then(Value::as_i64)
                .is_some_and(|n| n != 0),
        ),
        (
            "deprecatedSource",
            !text(obj, "/deprecatedSource/component").is_empty()
                || !text(obj, "/deprecatedSource/host").is_empty(),
        ),
    ] {
        if set {
            causes.push(invalid_str(field, "", "needs to be unset"));
        }
    }
}

/// An update through `events.k8s.io/v1`: the legacy rules, the series when it changed,
/// and everything else but the series is immutable (`ValidateEventUpdate`; paths are the
/// internal field names).
pub fn validate_events_v1_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    legacy(new, &EVENTS_V1, &mut causes);
    if new.get("series") != old.get("series") {
        validate_series(new, &mut causes);
    }
    for (field, path) in [
        ("regarding", "involvedObject"),
        ("reason", "reason"),
        ("note", "message"),
        ("deprecatedSource", "source"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
        ("type", "type"),
        ("eventTime", "eventTime"),
        ("action", "action"),
        ("related", "related"),
        ("reportingController", "reportingController"),
        ("reportingInstance", "reportingInstance"),
    ] {
        let absent = |v: Option<&Value>| v.is_none_or(Value::is_null);
        let (n, o) = (new.get(field), old.get(field));
        if n != o && !(absent(n) && absent(o)) {
            causes.push(invalid(
                path,
                n.unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
    }
    causes
}

fn validate_series(obj: &Value, causes: &mut Vec<Cause>) {
    if let Some(series) = obj.get("series").filter(|s| !s.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            causes.push(invalid_str("series.count", "", "should be at least 2"));
        }
        if !is_set(series, "/lastObservedTime") {
            causes.push(required("series.lastObservedTime", ""));
        }
    }
}

/// Upstream's `legacyValidateEvent`.
fn legacy(obj: &Value, names: &Names, causes: &mut Vec<Cause>) {
    let namespace = text(obj, "/metadata/namespace");
    let involved_ns = text(obj, &format!("/{}/namespace", names.involved_object));
    let mismatch = || {
        invalid_str(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        )
    };
    if !is_set(obj, "/eventTime") {
        // Old-style Events: the namespace must agree with the involved object's.
        if involved_ns.is_empty() {
            if !namespace.is_empty() && namespace != "default" {
                causes.push(mismatch());
            }
        } else if namespace != involved_ns {
            causes.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            causes.push(mismatch());
        }
        let field = names.reporting_controller;
        let controller = text(obj, &format!("/{field}"));
        if controller.is_empty() {
            causes.push(required(field, ""));
        }
        for msg in is_qualified_name(controller) {
            causes.push(invalid_str(field, controller, &msg));
        }
        let instance = text(obj, "/reportingInstance");
        if instance.is_empty() {
            causes.push(required("reportingInstance", ""));
        }
        if instance.len() > REPORTING_INSTANCE_LENGTH_LIMIT {
            causes.push(invalid_str(
                "reportingInstance",
                "",
                &format!("can have at most {REPORTING_INSTANCE_LENGTH_LIMIT} characters"),
            ));
        }
        for (field, limit) in [
            ("action", ACTION_LENGTH_LIMIT),
            ("reason", REASON_LENGTH_LIMIT),
        ] {
            let value = text(obj, &format!("/{field}"));
            if value.is_empty() {
                causes.push(required(field, ""));
            }
            if value.len() > limit {
                causes.push(invalid_str(
                    field,
                    "",
                    &format!("can have at most {limit} characters"),
                ));
            }
        }
        if text(obj, &format!("/{}", names.message)).len() > NOTE_LENGTH_LIMIT {
            causes.push(invalid_str(
                "message",
                "",
                &format!("can have at most {NOTE_LENGTH_LIMIT} characters"),
            ));
        }
    }
    for msg in is_dns1123_subdomain(namespace) {
        causes.push(invalid_str("namespace", namespace, &msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(causes: &[Cause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn core_events_only_need_matching_namespaces() {
        let mut causes = Vec::new();
        validate_core_event(
            &json!({"metadata": {"namespace": "ns"}, "involvedObject": {"namespace": "ns"}}),
            &mut causes,
        );
        assert!(causes.is_empty(), "{causes:?}");
        validate_core_event(
            &json!({"metadata": {"namespace": "ns"}, "involvedObject": {"namespace": "other"}}),
            &mut causes,
        );
        assert_eq!(
            fields(&causes),
            ["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"]
        );
    }

    #[test]
    fn events_v1_requires_the_new_fields() {
        let mut causes = Vec::new();
        validate_events_v1_event(
            &json!({"metadata": {"namespace": "ns"}, "regarding": {"namespace": "ns"},
                    "deprecatedCount": 3}),
            &mut causes,
        );
        assert_eq!(
            fields(&causes),
            [
                "eventTime: Required value",
                "type: Invalid value: \"\": has invalid value: ",
                "deprecatedCount: Invalid value: \"\": needs to be unset",
            ]
        );
        let mut causes = Vec::new();
        validate_events_v1_event(
            &json!({"metadata": {"namespace": "ns"}, "regarding": {"namespace": "ns"},
                    "eventTime": "2026-01-01T00:00:00.000000Z", "type": "Normal",
                    "reportingController": "example.com/ctl", "reportingInstance": "i",
                    "action": "Act", "reason": "Why"}),
            &mut causes,
        );
        assert!(causes.is_empty(), "{causes:?}");
    }
}
