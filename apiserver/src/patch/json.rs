//! JSON patch (RFC 6902, `application/json-patch+json`) with the API server's status codes:
//! a body that is not a list of operations is 400, more than 10,000 operations is 413, an
//! operation that cannot apply (failed `test`, missing path) is 422.

use beemesh_translator::ApiError;
use serde_json::Value;

/// Upstream's cap on operations in one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The message upstream sends with a 422 for a JSON patch that does not apply.
pub(crate) const REJECTED: &str = "the server rejected our request due to an error in our request";

/// Applies the operations in `body` to a copy of `current`.
pub fn apply_json_patch(current: &Value, body: &Value) -> Result<Value, ApiError> {
    let patch: json_patch::Patch = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::bad_request(format!("error decoding JSON patch: {e}")))?;
    if patch.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(ApiError::PayloadTooLarge {
            message: format!(
                "The allowed maximum operations in a JSON patch is {}, got {}",
                MAX_JSON_PATCH_OPERATIONS,
                patch.0.len()
            ),
        });
    }
    let mut doc = current.clone();
    json_patch::patch(&mut doc, &patch.0).map_err(|e| {
        tracing::debug!(error = %e, "JSON patch did not apply");
        ApiError::Invalid {
            message: REJECTED.to_string(),
            subject: Default::default(),
            causes: Vec::new(),
        }
    })?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn applies_add_replace_remove_in_order() {
        let current =
            json!({"metadata": {"name": "web", "labels": {"a": "1"}}, "spec": {"replicas": 1}});
        let patch = json!([
            {"op": "add", "path": "/metadata/labels/b", "value": "2"},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "remove", "path": "/metadata/labels/a"}
        ]);
        let out = apply_json_patch(&current, &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(out["spec"]["replicas"], 3);
    }

    #[test]
    fn failed_test_operation_is_422_with_upstream_message() {
        let current = json!({"spec": {"replicas": 1}});
        let patch = json!([{"op": "test", "path": "/spec/replicas", "value": 2},
                           {"op": "replace", "path": "/spec/replicas", "value": 5}]);
        let err = apply_json_patch(&current, &patch).unwrap_err();
        assert_eq!(err.code(), 422);
        assert_eq!(err.reason(), "Invalid");
        assert_eq!(err.to_string(), REJECTED);
    }

    #[test]
    fn missing_path_is_422() {
        let current = json!({"spec": {}});
        let patch = json!([{"op": "remove", "path": "/spec/nothing"}]);
        assert_eq!(apply_json_patch(&current, &patch).unwrap_err().code(), 422);
        let patch = json!([{"op": "replace", "path": "/spec/nothing", "value": 1}]);
        assert_eq!(apply_json_patch(&current, &patch).unwrap_err().code(), 422);
        let patch = json!([{"op": "add", "path": "/a/b/c", "value": 1}]);
        assert_eq!(apply_json_patch(&current, &patch).unwrap_err().code(), 422);
    }

    #[test]
    fn array_append_with_dash() {
        let current = json!({"spec": {"containers": [{"name": "a"}]}});
        let patch = json!([{"op": "add", "path": "/spec/containers/-", "value": {"name": "b"}}]);
        let out = apply_json_patch(&current, &patch).unwrap();
        assert_eq!(out["spec"]["containers"][1]["name"], "b");
    }

    #[test]
    fn not_a_list_of_operations_is_400() {
        let current = json!({});
        for body in [
            json!({"op": "add"}),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"path": "/a"}]),
        ] {
            let err = apply_json_patch(&current, &body).unwrap_err();
            assert_eq!(err.code(), 400, "{body}");
        }
    }

    #[test]
    fn too_many_operations_is_413() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "", "value": {}}))
            .collect();
        let err = apply_json_patch(&json!({}), &Value::Array(ops)).unwrap_err();
        assert_eq!(err.code(), 413);
        assert!(err.to_string().contains("10000, got 10001"));
    }
}
