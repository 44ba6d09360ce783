//! JSON merge patch (RFC 7386, `application/merge-patch+json`): objects merge recursively,
//! `null` deletes a key, anything else (lists included) replaces.

use beemesh_translator::ApiError;
use serde_json::Value;

/// Applies a merge patch to a copy of `current`; the patch must be a JSON object.
pub fn apply_merge_patch(current: &Value, patch: &Value) -> Result<Value, ApiError> {
    if !patch.is_object() {
        return Err(ApiError::bad_request(
            "Invalid JSON Patch: a merge patch must be a JSON object",
        ));
    }
    let mut doc = current.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7386_examples() {
        // Appendix A of RFC 7386.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (doc, patch, want) in cases {
            assert_eq!(apply_merge_patch(&doc, &patch).unwrap(), want, "{patch}");
        }
    }

    #[test]
    fn kubectl_scale_and_label_patches() {
        let current = json!({"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"replicas": 1, "template": {}}});
        let out = apply_merge_patch(&current, &json!({"spec": {"replicas": 3}})).unwrap();
        assert_eq!(out["spec"], json!({"replicas": 3, "template": {}}));
        let out = apply_merge_patch(
            &out,
            &json!({"metadata": {"labels": {"app": null, "tier": "fe"}}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"tier": "fe"}));
    }

    #[test]
    fn lists_are_replaced_whole() {
        let current = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}});
        let out = apply_merge_patch(
            &current,
            &json!({"spec": {"containers": [{"name": "a", "image": "y"}]}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "y"}])
        );
    }

    #[test]
    fn non_object_patch_is_400() {
        for patch in [json!([1]), json!("x"), json!(3)] {
            assert_eq!(
                apply_merge_patch(&json!({}), &patch).unwrap_err().code(),
                400
            );
        }
    }
}
