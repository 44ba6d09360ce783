//! Strategic merge patch (`application/strategic-merge-patch+json`) with the semantics of
//! k8s.io/apimachinery/pkg/util/strategicpatch as the API server applies it: lists are merged
//! by their `x-kubernetes-patch-merge-key` when the field's `x-kubernetes-patch-strategy`
//! contains `merge` and replaced otherwise; lists of scalars with the merge strategy are
//! unions; `null` deletes a key; the directives `$patch` (replace, delete, merge),
//! `$setElementOrder/<list>`, `$retainKeys` and `$deleteFromPrimitiveList/<list>` are honoured.

use beemesh_translator::validation::SchemaLookup;
use serde_json::{Map, Value};

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_STRATEGY: &str = "retainKeys";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

/// Why a strategic merge patch could not be applied, split the way the API server maps
/// errors to status codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategicPatchError {
    /// The patch is malformed (400 BadRequest upstream).
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well-formed but cannot apply (422 upstream: lists of lists, retainKeys
    /// mismatch).
    #[error("{0}")]
    Unprocessable(String),
}

type Result<T> = std::result::Result<T, StrategicPatchError>;

fn bad(message: impl Into<String>) -> StrategicPatchError {
    StrategicPatchError::BadRequest(message.into())
}

fn err_bad_patch_format_for_primitive_list() -> StrategicPatchError {
    bad("invalid patch format of primitive list")
}

fn err_bad_patch_format_for_retain_keys() -> StrategicPatchError {
    bad("invalid patch format of retainKeys")
}

fn err_bad_patch_format_for_set_element_order_list() -> StrategicPatchError {
    bad("invalid patch format of setElementOrder list")
}

fn err_no_list_of_lists() -> StrategicPatchError {
    StrategicPatchError::Unprocessable("lists of lists are not supported".into())
}

fn err_no_merge_key(map: &Map<String, Value>, key: &str) -> StrategicPatchError {
    bad(format!(
        "map: {} does not contain declared merge key: {}",
        Value::Object(map.clone()),
        key
    ))
}

fn err_bad_patch_type(directive: &Value, map: &Map<String, Value>) -> StrategicPatchError {
    bad(format!(
        "unknown patch type: {} in map: {}",
        scalar_text(directive),
        Value::Object(map.clone())
    ))
}

/// The Go type name a value decodes to, for error messages worded like upstream's.
fn go_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn err_bad_arg_type(expected: &str, actual: &Value) -> StrategicPatchError {
    bad(format!(
        "expected a {}, but received a {}",
        expected,
        go_type_name(actual)
    ))
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A position in the schema while walking the patch: the schema of the current value, or
/// `None` where nothing is known (then every list is replaced, every map merged).
struct PatchMeta<'a, S: SchemaLookup + ?Sized> {
    schemas: &'a S,
    schema: Option<&'a Value>,
}

impl<S: SchemaLookup + ?Sized> Clone for PatchMeta<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: SchemaLookup + ?Sized> Copy for PatchMeta<'_, S> {}

/// What the schema says about one field: how to patch it and where to continue.
struct FieldMeta<'a, S: SchemaLookup + ?Sized> {
    sub: PatchMeta<'a, S>,
    /// The strategy besides `retainKeys`: `merge`, `replace` or empty.
    strategy: String,
    merge_key: String,
}

impl<'a, S: SchemaLookup + ?Sized> PatchMeta<'a, S> {
    fn property(&self, key: &str) -> Option<&'a Value> {
        let schema = self.schema?;
        schema
            .get("properties")
            .and_then(|p| p.get(key))
            .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
    }

    fn lookup(&self, key: &str, slice: bool) -> Result<FieldMeta<'a, S>> {
        let prop = self.property(key);
        let strategies: Vec<&str> = prop
            .and_then(|p| p.get("x-kubernetes-patch-strategy"))
            .and_then(Value::as_str)
            .map(|s| s.split(',').collect())
            .unwrap_or_default();
        let merge_key = prop
            .and_then(|p| p.get("x-kubernetes-patch-merge-key"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let strategy = extract_retain_keys_patch_strategy(&strategies)?;
        let element = if slice {
            prop.map(|p| p.get("items").unwrap_or(p))
        } else {
            prop
        };
        let sub = element.map(|e| self.schemas.resolve(e));
        Ok(FieldMeta {
            sub: PatchMeta {
                schemas: self.schemas,
                schema: sub,
            },
            strategy,
            merge_key,
        })
    }
}

/// Splits a comma-separated strategy into the non-retainKeys part (retainKeys itself is
/// applied through the `$retainKeys` directive in the patch).
fn extract_retain_keys_patch_strategy(strategies: &[&str]) -> Result<String> {
    match strategies {
        [] => Ok(String::new()),
        [single] if *single == RETAIN_KEYS_STRATEGY => Ok(String::new()),
        [single] => Ok(single.to_string()),
        [first, second] if *first == RETAIN_KEYS_STRATEGY => Ok(second.to_string()),
        [first, second] if *second == RETAIN_KEYS_STRATEGY => Ok(first.to_string()),
        other => Err(bad(format!("unexpected patch strategy: {other:?}"))),
    }
}

/// Applies `patch` to `original`; `schema` is the definition of the object's kind.
pub fn strategic_merge<S: SchemaLookup + ?Sized>(
    original: &Value,
    patch: &Value,
    schema: &Value,
    schemas: &S,
) -> Result<Value> {
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => return Err(err_bad_arg_type("map[string]interface {}", other)),
    };
    let patch = match patch {
        Value::Object(m) => m.clone(),
        other => {
            return Err(bad(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(other)
            )));
        }
    };
    let meta = PatchMeta {
        schemas,
        schema: Some(schema),
    };
    merge_map(original, patch, meta).map(Value::Object)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Merges the fields of `patch` into `original`.
fn merge_map<S: SchemaLookup + ?Sized>(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    meta: PatchMeta<'_, S>,
) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER).cloned() {
        return handle_directive_in_merge_map(&directive, patch);
    }
    apply_retain_keys_directive(&mut original, &mut patch)?;
    merge_patch_into_original(&mut original, &mut patch, meta)?;

    for (key, patch_value) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            (
                extract_key(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?.to_string(),
                true,
            )
        } else {
            (key, false)
        };

        // null deletes the key; unmatched nulls are ignored.
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }

        let Some(original_value) = original.get(&key) else {
            if !is_delete_list {
                put_without_directives(&mut original, key, patch_value);
            }
            continue;
        };

        if !same_container_type(original_value, &patch_value) {
            if !is_delete_list {
                put_without_directives(&mut original, key, patch_value);
            }
            continue;
        }

        match patch_value {
            Value::Object(patch_map) => {
                let field = meta.lookup(&key, false)?;
                let Some(Value::Object(original_map)) = original.remove(&key) else {
                    continue;
                };
                let merged = if field.strategy != REPLACE_DIRECTIVE {
                    merge_map(original_map, patch_map, field.sub)?
                } else {
                    patch_map
                };
                original.insert(key, Value::Object(merged));
            }
            Value::Array(patch_list) => {
                let field = meta.lookup(&key, true)?;
                let Some(Value::Array(original_list)) = original.remove(&key) else {
                    continue;
                };
                let merged =
                    merge_slice_handler(original_list, patch_list, &field, &key, is_delete_list)?;
                original.insert(key, Value::Array(merged));
            }
            scalar => {
                original.insert(key, scalar);
            }
        }
    }
    Ok(original)
}

/// Both maps or both lists: only then does the patch recurse instead of replacing.
fn same_container_type(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
    ) || (!a.is_object() && !a.is_array() && !b.is_object() && !b.is_array())
}

/// Stores a patch value that has no counterpart in the original: nulls and directives
/// inside it are dropped, and a value that is itself a directive is not stored at all.
fn put_without_directives(original: &mut Map<String, Value>, key: String, mut value: Value) {
    discard_null_values(&mut value);
    match remove_directives(value) {
        Some(v) => {
            original.insert(key, v);
        }
        None => {
            original.remove(&key);
        }
    }
}

fn handle_directive_in_merge_map(
    directive: &Value,
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>> {
    match directive.as_str() {
        Some(REPLACE_DIRECTIVE) => {
            patch.remove(DIRECTIVE_MARKER);
            Ok(patch)
        }
        Some(DELETE_DIRECTIVE) => Ok(Map::new()),
        _ => Err(err_bad_patch_type(directive, &patch)),
    }
}

fn extract_key<'k>(key: &'k str, prefix: &str) -> Result<&'k str> {
    match key.split_once('/') {
        Some((head, rest)) if head == prefix => Ok(rest),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST_PREFIX => {
            Err(err_bad_patch_format_for_primitive_list())
        }
        _ if prefix == SET_ELEMENT_ORDER_PREFIX => {
            Err(err_bad_patch_format_for_set_element_order_list())
        }
        _ => Err(bad(format!(
            "fail to find unknown prefix {prefix:?} in {key}"
        ))),
    }
}

/// `$retainKeys`: keys of the original missing from the list are cleared; every key the
/// patch sets must be in the list.
fn apply_retain_keys_directive(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(err_bad_patch_format_for_retain_keys());
    };
    let retained = |k: &str| retain.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retained(k) {
            return Err(err_bad_patch_format_for_retain_keys());
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// `$setElementOrder/<list>`: merges the list it names and orders the result — the
/// directive's order first, then the patch's, then the live object's.
fn merge_patch_into_original<S: SchemaLookup + ?Sized>(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    meta: PatchMeta<'_, S>,
) -> Result<()> {
    let order_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for key in order_keys {
        let Some(order_value) = patch.remove(&key) else {
            continue;
        };
        let Value::Array(set_order) = order_value else {
            return Err(err_bad_arg_type("[]interface {}", &order_value));
        };
        let original_key = extract_key(&key, SET_ELEMENT_ORDER_PREFIX)?.to_string();

        let original_list = match original.get(&original_key) {
            None => None,
            Some(Value::Array(l)) => Some(l.clone()),
            Some(other) => return Err(err_bad_arg_type("[]interface {}", other)),
        };
        let patch_list = match patch.get(&original_key) {
            None => None,
            Some(Value::Array(l)) => Some(l.clone()),
            Some(other) => return Err(err_bad_arg_type("[]interface {}", other)),
        };
        let field = meta.lookup(&original_key, true)?;
        validate_patch_with_set_order_list(
            patch_list.as_deref().unwrap_or(&[]),
            &set_order,
            &field.merge_key,
        )?;

        let original_items = original_list.clone().unwrap_or_default();
        let patch_items = patch_list.clone().unwrap_or_default();
        let merged = match (original_list, patch_list) {
            (Some(orig), None) => orig,
            (None, Some(p)) => match remove_directives(Value::Array(p)) {
                Some(Value::Array(v)) => v,
                _ => continue,
            },
            (Some(orig), Some(p)) => merge_slice_handler(orig, p, &field, &original_key, false)?,
            (None, None) => continue,
        };

        let (in_order, server_only) = if field.merge_key.is_empty() {
            partition_primitives_by_present_in_list(merged, &set_order)
        } else {
            partition_maps_by_present_in_list(merged, &set_order, &field.merge_key)?
        };
        let kind = slice_element_kind(&[&original_items, &patch_items])?;
        let server_order = if kind == Some(ElementKind::Map)
            && field.strategy == MERGE_DIRECTIVE
            && !original_items.is_empty()
            && !patch_items.is_empty()
        {
            aliased_server_order(&original_items, &patch_items, &field.merge_key)
        } else {
            original_items.clone()
        };
        let ordered = match kind {
            Some(kind) => normalize_element_order(
                in_order,
                server_only,
                &set_order,
                &server_order,
                &field.merge_key,
                kind,
            )?,
            // Nothing on either side: the list is empty whatever the order says.
            None => Vec::new(),
        };
        original.insert(original_key.clone(), Value::Array(ordered));
        patch.remove(&original_key);
    }
    Ok(())
}

/// The live order upstream actually ranks server-only items by after merging a list under
/// `$setElementOrder`. Upstream merges the list in place: deleting an item shifts the rest
/// of the backing array left (leaving the old last item behind) and new items are appended
/// into spare capacity, and the ordering step then reads the original slice header over that
/// same array. Reproducing it keeps `kubectl apply` results in the order upstream produces.
/// Capacity follows Go's growth for decoded lists (the next power of two).
fn aliased_server_order(original: &[Value], patch: &[Value], merge_key: &str) -> Vec<Value> {
    let n = original.len();
    let cap = n.next_power_of_two();
    let mut backing: Vec<Value> = original.to_vec();
    backing.resize(cap, Value::Null);
    let mut len = n;
    let key_of = |v: &Value| v.as_object().and_then(|m| m.get(merge_key)).cloned();

    let mut replace = false;
    for item in patch {
        match item.get(DIRECTIVE_MARKER).and_then(Value::as_str) {
            Some(DELETE_DIRECTIVE) => {
                let Some(wanted) = key_of(item) else {
                    return original.to_vec();
                };
                while let Some(k) = backing[..len]
                    .iter()
                    .position(|v| key_of(v).as_ref() == Some(&wanted))
                {
                    for i in k..len - 1 {
                        backing[i] = backing[i + 1].clone();
                    }
                    len -= 1;
                }
            }
            Some(REPLACE_DIRECTIVE) => replace = true,
            _ => {}
        }
    }
    if !replace {
        // After the array is outgrown, appends land in a new one that the original never sees.
        let mut grown: Option<Vec<Value>> = None;
        for item in patch.iter().filter(|i| !contains_directive_marker(i)) {
            let wanted = key_of(item);
            let current: &[Value] = match &grown {
                Some(g) => g,
                None => &backing[..len],
            };
            if current.iter().any(|v| key_of(v) == wanted) {
                continue;
            }
            match grown.as_mut() {
                Some(g) => g.push(item.clone()),
                None if len < cap => {
                    backing[len] = item.clone();
                    len += 1;
                }
                None => {
                    let mut g = backing[..len].to_vec();
                    g.push(item.clone());
                    grown = Some(g);
                }
            }
        }
    }
    backing.truncate(n);
    backing
}

/// The relative order of the patch list's items must match `$setElementOrder`, and the
/// patch may only name items the order lists (deletions aside).
fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    set_order: &[Value],
    merge_key: &str,
) -> Result<()> {
    if set_order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = if merge_key.is_empty() {
        patch_list.iter().collect()
    } else {
        let (keep, _) = extract_to_delete_items(patch_list)?;
        keep
    };
    let (mut patch_index, mut order_index) = (0, 0);
    while patch_index < non_delete.len() && order_index < set_order.len() {
        if contains_directive_marker(non_delete[patch_index]) {
            patch_index += 1;
            continue;
        }
        if merge_key_value_equal(non_delete[patch_index], &set_order[order_index], merge_key)? {
            patch_index += 1;
        }
        order_index += 1;
    }
    if patch_index < non_delete.len() && order_index >= set_order.len() {
        return Err(bad(format!(
            "The order in patch list:\n{}\n doesn't match {} list:\n{}\n",
            Value::Array(patch_list.to_vec()),
            SET_ELEMENT_ORDER_PREFIX,
            Value::Array(set_order.to_vec())
        )));
    }
    Ok(())
}

fn contains_directive_marker(item: &Value) -> bool {
    item.as_object()
        .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let Value::Object(l) = left else {
        return Err(err_bad_arg_type("map[string]interface {}", left));
    };
    let Value::Object(r) = right else {
        return Err(err_bad_arg_type("map[string]interface {}", right));
    };
    let lv = l
        .get(merge_key)
        .ok_or_else(|| err_no_merge_key(l, merge_key))?;
    let rv = r
        .get(merge_key)
        .ok_or_else(|| err_no_merge_key(r, merge_key))?;
    Ok(lv == rv)
}

/// Splits a list of maps into the items to keep and those marked `$patch: delete`.
fn extract_to_delete_items(list: &[Value]) -> Result<(Vec<&Value>, Vec<&Value>)> {
    let mut keep = Vec::new();
    let mut delete = Vec::new();
    for v in list {
        let Value::Object(m) = v else {
            return Err(err_bad_arg_type("map[string]interface {}", v));
        };
        if m.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE_DIRECTIVE) {
            delete.push(v);
        } else {
            keep.push(v);
        }
    }
    Ok((keep, delete))
}

fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    field: &FieldMeta<'_, impl SchemaLookup + ?Sized>,
    key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    // Deletion lists apply whatever the field's strategy is.
    if field.strategy == MERGE_DIRECTIVE || is_delete_list {
        merge_slice(original, patch, field, key, is_delete_list)
    } else {
        Ok(patch)
    }
}

/// The element kind of one or more lists, which must agree (and not be lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Null,
    Bool,
    Int,
    Float,
    String,
    Map,
}

fn element_kind(v: &Value) -> Option<ElementKind> {
    Some(match v {
        Value::Null => ElementKind::Null,
        Value::Bool(_) => ElementKind::Bool,
        Value::Number(n) if n.is_f64() => ElementKind::Float,
        Value::Number(_) => ElementKind::Int,
        Value::String(_) => ElementKind::String,
        Value::Object(_) => ElementKind::Map,
        Value::Array(_) => return None,
    })
}

/// `Ok(None)` when the lists hold no element at all.
fn slice_element_kind(lists: &[&[Value]]) -> Result<Option<ElementKind>> {
    let mut previous: Option<ElementKind> = None;
    for list in lists {
        for v in list.iter() {
            let kind = element_kind(v).ok_or_else(err_no_list_of_lists)?;
            match previous {
                None => previous = Some(kind),
                Some(p) if p != kind => {
                    let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                    return Err(bad(format!(
                        "list element types are not identical: {}",
                        Value::Array(all)
                    )));
                }
                Some(_) => {}
            }
        }
    }
    Ok(previous)
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    field: &FieldMeta<'_, impl SchemaLookup + ?Sized>,
    key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let Some(kind) = slice_element_kind(&[&original, &patch])? else {
        return Ok(original);
    };
    let merge_key = field.merge_key.as_str();

    let (original, patch, merged) = if kind != ElementKind::Map {
        if is_delete_list {
            return Ok(delete_from_slice(original, &patch));
        }
        let mut both = original.clone();
        both.extend(patch.iter().cloned());
        (original, patch, deduplicate_scalars(both))
    } else {
        if merge_key.is_empty() {
            return Err(bad(format!(
                "cannot merge lists without merge key for {key}"
            )));
        }
        let (original, patch) = merge_slice_with_special_elements(original, patch, merge_key)?;
        let merged =
            merge_slice_without_special_elements(original.clone(), &patch, merge_key, field.sub)?;
        (original, patch, merged)
    };

    let (patch_items, server_only) = if merge_key.is_empty() {
        partition_primitives_by_present_in_list(merged, &patch)
    } else {
        partition_maps_by_present_in_list(merged, &patch, merge_key)?
    };
    normalize_element_order(patch_items, server_only, &patch, &original, merge_key, kind)
}

/// Handles list items carrying `$patch`: `delete` removes every item with that merge key,
/// `replace` makes the patch list the whole list. Returns the new original and the patch
/// without those items.
fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut plain = Vec::new();
    let mut replace = false;
    for v in patch {
        let Value::Object(m) = &v else {
            return Err(err_bad_arg_type("map[string]interface {}", &v));
        };
        match m.get(DIRECTIVE_MARKER) {
            None => plain.push(v),
            Some(directive) => match directive.as_str() {
                Some(DELETE_DIRECTIVE) => {
                    let value = m
                        .get(merge_key)
                        .ok_or_else(|| err_no_merge_key(m, merge_key))?;
                    original = delete_matching_entries(original, merge_key, value)?;
                }
                Some(REPLACE_DIRECTIVE) => replace = true,
                Some(MERGE_DIRECTIVE) => {
                    return Err(bad("merging lists cannot yet be specified in the patch"));
                }
                _ => return Err(err_bad_patch_type(directive, m)),
            },
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

fn delete_matching_entries(
    original: Vec<Value>,
    merge_key: &str,
    value: &Value,
) -> Result<Vec<Value>> {
    let mut kept = Vec::with_capacity(original.len());
    for item in original {
        let Value::Object(m) = &item else {
            return Err(bad(format!("value for key {merge_key} is not a map")));
        };
        if m.get(merge_key) != Some(value) {
            kept.push(item);
        }
    }
    Ok(kept)
}

fn merge_slice_without_special_elements<S: SchemaLookup + ?Sized>(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    meta: PatchMeta<'_, S>,
) -> Result<Vec<Value>> {
    for v in patch {
        let Value::Object(patch_map) = v else {
            return Err(err_bad_arg_type("map[string]interface {}", v));
        };
        let merge_value = patch_map
            .get(merge_key)
            .ok_or_else(|| err_no_merge_key(patch_map, merge_key))?;
        match find_map_in_slice(&original, merge_key, merge_value)? {
            Some(index) => {
                let existing = match std::mem::take(&mut original[index]) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                original[index] = Value::Object(merge_map(existing, patch_map.clone(), meta)?);
            }
            None => original.push(v.clone()),
        }
    }
    Ok(original)
}

fn find_map_in_slice(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>> {
    for (i, item) in list.iter().enumerate() {
        let Value::Object(m) = item else {
            return Err(bad(format!("value for key {i} is not a map")));
        };
        if m.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn delete_from_slice(current: Vec<Value>, to_delete: &[Value]) -> Vec<Value> {
    current
        .into_iter()
        .filter(|v| !to_delete.contains(v))
        .collect()
}

/// Removes repeated scalars, keeping the first occurrence.
fn deduplicate_scalars(list: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(list.len());
    for v in list {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn partition_primitives_by_present_in_list(
    merged: Vec<Value>,
    partition_by: &[Value],
) -> (Vec<Value>, Vec<Value>) {
    merged.into_iter().partition(|v| partition_by.contains(v))
}

fn partition_maps_by_present_in_list(
    merged: Vec<Value>,
    partition_by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut present = Vec::new();
    let mut server_only = Vec::new();
    for v in merged {
        let Value::Object(m) = &v else {
            return Err(err_bad_arg_type("map[string]interface {}", &v));
        };
        let key_value = m
            .get(merge_key)
            .ok_or_else(|| err_no_merge_key(m, merge_key))?;
        if find_map_in_slice(partition_by, merge_key, key_value)?.is_some() {
            present.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((present, server_only))
}

/// Orders the patch items by `patch_order` and the server-only items by `server_order`,
/// then interleaves them keeping both relative orders.
fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Result<Vec<Value>> {
    let patch = normalize_slice_order(patch, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted_slice(
        server_only,
        patch,
        server_order,
        merge_key,
        kind,
    ))
}

/// The position of `value` in `list`, comparing maps by their merge key.
fn index_of(list: &[Value], value: &Value, merge_key: &str, kind: ElementKind) -> Option<usize> {
    if kind == ElementKind::Map {
        let key_of = |v: &Value| v.as_object().and_then(|m| m.get(merge_key)).cloned();
        let wanted = key_of(value);
        list.iter().position(|v| key_of(v) == wanted)
    } else {
        list.iter().position(|v| v == value)
    }
}

fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Result<Vec<Value>> {
    let (mut items, to_delete) = if kind == ElementKind::Map {
        for list in [to_sort.as_slice(), order] {
            for item in list {
                let Value::Object(m) = item else {
                    return Err(err_bad_arg_type("map[string]interface {}", item));
                };
                if !m.contains_key(merge_key) {
                    return Err(err_no_merge_key(m, merge_key));
                }
            }
        }
        let (keep, delete): (Vec<Value>, Vec<Value>) = to_sort.into_iter().partition(|v| {
            v.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some(DELETE_DIRECTIVE)
        });
        (keep, delete)
    } else {
        (to_sort, Vec::new())
    };
    // Insertion sort with upstream's comparison: an item is "less" when both are found in
    // `order` and it comes first, or when either is not found.
    let less = |a: &Value, b: &Value| match (
        index_of(order, a, merge_key, kind),
        index_of(order, b, merge_key, kind),
    ) {
        (Some(ia), Some(ib)) => ia < ib,
        _ => true,
    };
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && less(&items[j], &items[j - 1]) {
            items.swap(j, j - 1);
            j -= 1;
        }
    }
    items.extend(to_delete);
    Ok(items)
}

/// Inserts each item of `left` (server-only) into `right` (patch items) before the first
/// item that comes later in `server_order`.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (Some(l), Some(r)) => {
                let li = index_of(server_order, l, merge_key, kind);
                let ri = index_of(server_order, r, merge_key, kind);
                let left_first = matches!((li, ri), (Some(a), Some(b)) if a < b);
                if left_first {
                    out.extend(left.next());
                } else {
                    out.extend(right.next());
                }
            }
        }
    }
    out
}

/// Drops nulls inside a value that is being added whole.
fn discard_null_values(value: &mut Value) {
    match value {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_null_values);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_null_values),
        _ => {}
    }
}

/// Strips directive markers from a value being added whole; `None` when the value itself
/// is a directive.
fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE_MARKER) {
                return None;
            }
            let cleaned = m
                .into_iter()
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect();
            Some(Value::Object(cleaned))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

#[cfg(test)]
#[path = "strategic_tests.rs"]
mod tests;
