//! Field checks on objects as kubectl prints them (`-o json` / `-o yaml`).

use serde_json::Value;

use crate::report::one_line;

/// The value at a JSON pointer (`/spec/replicas`), `null` when absent.
pub fn field<'a>(obj: &'a Value, pointer: &str) -> &'a Value {
    obj.pointer(pointer).unwrap_or(&Value::Null)
}

/// Panics unless the field at `pointer` equals `expected`; the message names the field
/// the way a user writes it (`spec.ports[0].protocol`) and the object it was read from.
#[track_caller]
pub fn has(obj: &Value, pointer: &str, expected: Value) {
    let got = field(obj, pointer);
    if *got != expected {
        panic!(
            "{}: expected {expected}, got {got} (in {} {}: {})",
            dotted(pointer),
            obj["kind"].as_str().unwrap_or("object"),
            obj["metadata"]["name"].as_str().unwrap_or(""),
            one_line(&obj.to_string(), 2000),
        );
    }
}

/// `/spec/ports/0/protocol` → `spec.ports[0].protocol`.
pub fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else if part.contains('.') || part.contains('/') {
            out.push_str(&format!("[{part:?}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_read_like_kubectl_field_paths() {
        assert_eq!(dotted("/spec/ports/0/protocol"), "spec.ports[0].protocol");
        assert_eq!(
            dotted("/metadata/labels/kubernetes.io~1metadata.name"),
            "metadata.labels[\"kubernetes.io/metadata.name\"]"
        );
    }

    #[test]
    fn has_compares_present_and_absent_fields() {
        let obj = json!({"spec": {"replicas": 2}});
        has(&obj, "/spec/replicas", json!(2));
        has(&obj, "/spec/paused", Value::Null);
        let missing = std::panic::catch_unwind(|| has(&obj, "/spec/paused", json!(false)));
        assert!(missing.is_err());
    }
}
