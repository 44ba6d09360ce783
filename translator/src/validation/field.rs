//! Field errors worded as upstream's `field.Error` (k8s.io/apimachinery/pkg/util/validation/field):
//! the cause message is the error body (`Invalid value: "x": detail`), the field its path.

use serde_json::Value;

use crate::error::Cause;

/// A value as upstream prints it in `Invalid value: <v>`: strings quoted, numbers and
/// booleans bare, string maps as Go's `%#v`.
pub fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => go_quote(s),
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Object(map) if map.values().all(Value::is_string) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        go_quote(k),
                        go_quote(v.as_str().unwrap_or_default())
                    )
                })
                .collect();
            format!("map[string]string{{{}}}", entries.join(", "))
        }
        other => other.to_string(),
    }
}

/// Go's `%q` for the strings that occur in practice.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn with_detail(body: String, detail: &str) -> String {
    if detail.is_empty() {
        body
    } else {
        format!("{body}: {detail}")
    }
}

/// `Invalid value: <value>: <detail>`.
pub fn invalid(field: &str, value: &Value, detail: &str) -> Cause {
    Cause::new(
        "FieldValueInvalid",
        field,
        with_detail(format!("Invalid value: {}", display_value(value)), detail),
    )
}

/// `Invalid value: "<value>": <detail>` for a string value.
pub fn invalid_str(field: &str, value: &str, detail: &str) -> Cause {
    invalid(field, &Value::String(value.to_string()), detail)
}

/// `Required value[: <detail>]`.
pub fn required(field: &str, detail: &str) -> Cause {
    Cause::new(
        "FieldValueRequired",
        field,
        with_detail("Required value".into(), detail),
    )
}

/// `Forbidden: <detail>`.
pub fn forbidden(field: &str, detail: &str) -> Cause {
    Cause::new(
        "FieldValueForbidden",
        field,
        with_detail("Forbidden".into(), detail),
    )
}

/// `Too long: may not be more than <max> bytes`.
pub fn too_long(field: &str, max: usize) -> Cause {
    Cause::new(
        "FieldValueTooLong",
        field,
        format!("Too long: may not be more than {max} bytes"),
    )
}

/// `Duplicate value: <value>`.
pub fn duplicate(field: &str, value: &Value) -> Cause {
    Cause::new(
        "FieldValueDuplicate",
        field,
        format!("Duplicate value: {}", display_value(value)),
    )
}

/// `Unsupported value: <value>: supported values: "a", "b"`.
pub fn not_supported(field: &str, value: &Value, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
    let detail = if list.is_empty() {
        String::new()
    } else {
        format!("supported values: {}", list.join(", "))
    };
    Cause::new(
        "FieldValueNotSupported",
        field,
        with_detail(
            format!("Unsupported value: {}", display_value(value)),
            &detail,
        ),
    )
}

/// Joins a field path and a child name.
pub fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Joins a field path and a list index (`spec.containers[0]`).
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Joins a field path and a map key (`data[key]`).
pub fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_match_upstream() {
        assert_eq!(
            invalid_str("metadata.name", "Bad_Name", "x").message,
            "Invalid value: \"Bad_Name\": x"
        );
        assert_eq!(
            invalid(
                "spec.replicas",
                &json!(-1),
                "must be greater than or equal to 0"
            )
            .message,
            "Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            required("metadata.name", "name or generateName is required").message,
            "Required value: name or generateName is required"
        );
        assert_eq!(required("spec.containers", "").message, "Required value");
        assert_eq!(
            forbidden("metadata.namespace", "not allowed on this type").message,
            "Forbidden: not allowed on this type"
        );
        assert_eq!(
            not_supported("spec.type", &json!("Bogus"), &["ClusterIP", "NodePort"]).message,
            "Unsupported value: \"Bogus\": supported values: \"ClusterIP\", \"NodePort\""
        );
        assert_eq!(
            invalid(
                "spec.template.metadata.labels",
                &json!({"app": "x", "b": "c"}),
                "d"
            )
            .message,
            "Invalid value: map[string]string{\"app\":\"x\", \"b\":\"c\"}: d"
        );
        assert_eq!(
            too_long("metadata.annotations", 262144).message,
            "Too long: may not be more than 262144 bytes"
        );
    }
}
