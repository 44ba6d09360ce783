//! `fieldValidation` on PATCH as upstream's patch handler does it: the patch body's own
//! duplicate keys (merge and strategic merge patches; JSON patch operations, prefixed
//! `json patch`) and the unknown fields of the patched object are strict decoding errors.
//! Under Strict they are one 422 whose cause is the field `patch` (its value the patched
//! object's JSON for JSON/merge patches, Go's `%+v` of the decoded patch for strategic
//! merge patches); under Warn each is a warning; under Ignore nothing is checked.

use beemesh_translator::catalog::Catalog;
use beemesh_translator::validation::{self, FieldValidation, field};
use beemesh_translator::{ApiError, ResourceInfo};
use serde_json::Value;

use crate::patch::PatchType;

/// The strict decoding errors of the patch body itself (keys given twice).
pub fn body_errors(patch_type: PatchType, body: &[u8], mode: FieldValidation) -> Vec<String> {
    if mode == FieldValidation::Ignore {
        return Vec::new();
    }
    let prefix = if patch_type == PatchType::Json {
        "json patch "
    } else {
        ""
    };
    let mut errors: Vec<String> = validation::duplicate_fields(body)
        .into_iter()
        .map(|p| format!("{prefix}duplicate field {p:?}"))
        .collect();
    if patch_type == PatchType::Json {
        // Operations are decoded into {op, path, from, value}: anything else is unknown.
        if let Ok(Value::Array(ops)) = serde_json::from_slice::<Value>(body) {
            let mut unknown = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                for key in op.as_object().into_iter().flat_map(|m| m.keys()) {
                    if !matches!(key.as_str(), "op" | "path" | "from" | "value") {
                        unknown.push(format!("json patch unknown field \"[{i}].{key}\""));
                    }
                }
            }
            // The decoder meets them in operation order, before any duplicate of a later
            // operation.
            let index = |e: &String| {
                e.split_once("\"[")
                    .and_then(|(_, rest)| rest.split_once(']'))
                    .and_then(|(n, _)| n.parse::<usize>().ok())
                    .unwrap_or(usize::MAX)
            };
            errors.extend(unknown);
            errors.sort_by_key(index);
        }
    }
    errors
}

/// Checks the patched object (before it is pruned) under `mode`: the warnings to send
/// under Warn, upstream's 422 under Strict. `body_errors` come first, as upstream lists
/// them. Type errors are the decoder's 400 whatever the mode.
pub fn check_patched(
    res: &ResourceInfo,
    catalog: &Catalog,
    patch_type: PatchType,
    body: &[u8],
    patched: &Value,
    mode: FieldValidation,
    body_errors: &[String],
) -> Result<Vec<String>, ApiError> {
    if mode == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let mut errors = body_errors.to_vec();
    let mut probe = patched.clone();
    errors.extend(validation::validate_and_prune(
        res,
        catalog,
        &mut probe,
        FieldValidation::Warn,
    )?);
    if mode == FieldValidation::Warn || errors.is_empty() {
        return Ok(errors);
    }
    let value = if patch_type == PatchType::StrategicMerge {
        serde_json::from_slice::<Value>(body)
            .map(|v| go_format(&v))
            .unwrap_or_default()
    } else {
        serde_json::to_string(patched).unwrap_or_default()
    };
    Err(ApiError::invalid(
        "",
        "",
        "",
        vec![field::invalid(
            "patch",
            &Value::String(value),
            &format!("strict decoding error: {}", errors.join(", ")),
        )],
    ))
}

/// Go's `fmt.Sprintf("%+v", v)` of a decoded JSON value (`map[string]interface{}` with
/// sorted keys, `[]interface{}`, int64/float64, string, bool, nil).
pub fn go_format(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => go_float(f),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_format).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", go_format(&map[k.as_str()])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// Go's `%v` of a float64: shortest representation, exponent form from 1e21 or below 1e-4.
fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        let text = format!("{f:e}");
        // Rust writes `1e21` / `1.5e-7`; Go writes `1e+21` / `1.5e-07`.
        match text.split_once('e') {
            Some((mantissa, exp)) => {
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                format!("{mantissa}e{sign}{digits:0>2}")
            }
            None => text,
        }
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_formats_a_decoded_patch() {
        assert_eq!(
            go_format(&json!({"spec": {"replicaz": 2, "b": [1, "x", true, null], "f": 1.5}})),
            "map[spec:map[b:[1 x true <nil>] f:1.5 replicaz:2]]"
        );
        assert_eq!(go_format(&json!(1e21)), "1e+21");
        assert_eq!(go_format(&json!(0.00001)), "1e-05");
    }
}
