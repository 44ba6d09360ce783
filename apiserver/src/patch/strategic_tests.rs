//! Behaviour of the strategic merge patch against upstream's own test cases
//! (`testdata/strategic_upstream_cases.yaml`, taken from strategicpatch/patch_test.go) and
//! against the patches kubectl sends for built-in kinds.

use super::*;
use beemesh_translator::validation::SchemaMap;
use serde_json::json;

/// The `mergeItem` test type of upstream's tests, as an OpenAPI v3 schema.
fn merge_item_schemas() -> SchemaMap {
    let merge_item_ref =
        json!({"allOf": [{"$ref": "#/components/schemas/mergeItem"}], "default": {}});
    let item_ref = json!({"$ref": "#/components/schemas/mergeItem"});
    SchemaMap::from_components(&json!({
        "mergeItem": {
            "properties": {
                "name": {"type": "string"},
                "value": {"type": "string"},
                "other": {"type": "string"},
                "mergingList": {"type": "array", "items": merge_item_ref,
                    "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
                "nonMergingList": {"type": "array", "items": item_ref},
                "mergingIntList": {"type": "array", "items": {"type": "integer", "format": "int32"},
                    "x-kubernetes-patch-strategy": "merge"},
                "nonMergingIntList": {"type": "array", "items": {"type": "integer", "format": "int32"}},
                "mergeItemPtr": {"allOf": [{"$ref": "#/components/schemas/mergeItem"}],
                    "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
                "simpleMap": {"type": "object", "additionalProperties": {"type": "string"}},
                "replacingItem": {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.runtime.RawExtension"}],
                    "x-kubernetes-patch-strategy": "replace"},
                "retainKeysMap": {"allOf": [{"$ref": "#/components/schemas/retainKeysMergeItem"}],
                    "x-kubernetes-patch-strategy": "retainKeys"},
                "retainKeysMergingList": {"type": "array", "items": item_ref,
                    "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge,retainKeys"},
                "jsonItem": {}
            }
        },
        "retainKeysMergeItem": {
            "properties": {
                "name": {"type": "string"},
                "value": {"type": "string"},
                "other": {"type": "string"},
                "simpleMap": {"items": {"type": "string"}},
                "mergingList": {"type": "array", "items": item_ref,
                    "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
                "nonMergingList": {"type": "array", "items": item_ref},
                "mergingIntList": {"type": "array", "items": {"type": "integer"},
                    "x-kubernetes-patch-strategy": "merge"}
            }
        },
        "io.k8s.apimachinery.pkg.runtime.RawExtension": {
            "properties": {"Raw": {"type": "string", "format": "byte"}}
        }
    }))
}

fn apply(schemas: &SchemaMap, original: &Value, patch: &Value) -> Result<Value> {
    let root = schemas.schema("mergeItem").unwrap();
    strategic_merge(original, patch, root, schemas)
}

fn field<'a>(case: &'a Value, name: &str) -> Option<&'a Value> {
    case.get(name).filter(|v| !v.is_null())
}

fn doc(case: &Value, name: &str) -> Value {
    field(case, name).cloned().unwrap_or_else(|| json!({}))
}

fn cases(section: &str) -> Vec<Value> {
    let text = include_str!("testdata/strategic_upstream_cases.yaml");
    let all: Value = serde_yaml::from_str(text).unwrap();
    all[section].as_array().unwrap().clone()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Upstream compares non-raw cases after sorting merging lists by merge key (their order
/// is not significant there); this is that normalisation.
fn sort_merge_lists(value: &Value, meta: PatchMeta<'_, SchemaMap>) -> Value {
    let Value::Object(map) = value else {
        return value.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        let sorted =
            if k == RETAIN_KEYS_DIRECTIVE || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
                let mut items = v.as_array().cloned().unwrap_or_default();
                items.sort_by_key(text);
                Value::Array(items)
            } else if k.starts_with(SET_ELEMENT_ORDER_PREFIX) || k == DIRECTIVE_MARKER {
                v.clone()
            } else {
                match v {
                    Value::Object(_) => sort_merge_lists(v, meta.lookup(k, false).unwrap().sub),
                    Value::Array(items) => {
                        let f = meta.lookup(k, true).unwrap();
                        if f.strategy == MERGE_DIRECTIVE && !items.is_empty() {
                            if items[0].is_object() {
                                let mut items: Vec<Value> =
                                    items.iter().map(|i| sort_merge_lists(i, f.sub)).collect();
                                items.sort_by_key(|i| text(&i[f.merge_key.as_str()]));
                                Value::Array(items)
                            } else {
                                let mut items = deduplicate_scalars(items.clone());
                                items.sort_by_key(text);
                                Value::Array(items)
                            }
                        } else {
                            v.clone()
                        }
                    }
                    _ => v.clone(),
                }
            };
        out.insert(k.clone(), sorted);
    }
    Value::Object(out)
}

fn sorted(schemas: &SchemaMap, v: &Value) -> Value {
    let meta = PatchMeta {
        schemas,
        schema: schemas.schema("mergeItem"),
    };
    sort_merge_lists(v, meta)
}

/// Applies `patch` to `from` and checks the result (exactly, or after sorting merge lists)
/// or the expected error. Returns a failure description.
fn check(
    schemas: &SchemaMap,
    description: &str,
    from: &Value,
    patch: &Value,
    want: &Value,
    expected_error: Option<&str>,
    exact: bool,
) -> Option<String> {
    let got = apply(schemas, from, patch);
    match (got, expected_error) {
        (Err(e), Some(want_err)) if e.to_string().contains(want_err) => None,
        (got, Some(want_err)) => Some(format!(
            "{description}: want error containing {want_err:?}, got {got:?}"
        )),
        (Err(e), None) => Some(format!(
            "{description}: unexpected error {e}\npatch: {patch}\nfrom: {from}"
        )),
        (Ok(got), None) => {
            let (g, w) = if exact {
                (got.clone(), want.clone())
            } else {
                (sorted(schemas, &got), sorted(schemas, want))
            };
            (g != w).then(|| {
                format!("{description}:\n from: {from}\npatch: {patch}\n want: {w}\n  got: {g}")
            })
        }
    }
}

fn run_section(section: &str, exact: bool, three_way: bool) {
    let schemas = merge_item_schemas();
    let mut failures = Vec::new();
    for case in cases(section) {
        let description = case["description"].as_str().unwrap_or_default().to_string();
        let expected_error = field(&case, "ExpectedError").and_then(Value::as_str);
        let (original, two_way, two_way_result, modified, current, three_way_patch, result) =
            if exact {
                (
                    "Original",
                    "TwoWay",
                    "TwoWayResult",
                    "Modified",
                    "Current",
                    "ThreeWay",
                    "Result",
                )
            } else {
                (
                    "original",
                    "twoWay",
                    "twoWayResult",
                    "modified",
                    "current",
                    "threeWay",
                    "result",
                )
            };
        if let Some(patch) = field(&case, two_way) {
            let want = field(&case, two_way_result)
                .cloned()
                .unwrap_or_else(|| doc(&case, modified));
            failures.extend(check(
                &schemas,
                &format!("{description}/TwoWay"),
                &doc(&case, original),
                patch,
                &want,
                expected_error,
                exact,
            ));
        }
        if three_way
            && let (Some(patch), Some(want)) = (field(&case, three_way_patch), field(&case, result))
        {
            failures.extend(check(
                &schemas,
                &format!("{description}/ThreeWay"),
                &doc(&case, current),
                patch,
                want,
                expected_error,
                exact,
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn upstream_custom_cases() {
    run_section("custom", false, false);
}

#[test]
fn upstream_custom_raw_cases() {
    run_section("customRaw", true, false);
}

#[test]
fn upstream_create_cases() {
    run_section("create", false, true);
}

#[test]
fn upstream_raw_cases_keep_exact_order() {
    run_section("raw", true, true);
}

#[test]
fn upstream_raw_extension_cases() {
    run_section("rawExtension", true, true);
}
