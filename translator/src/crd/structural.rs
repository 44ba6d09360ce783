//! What a CRD version's structural schema does to a custom resource, as apiextensions-apiserver
//! does it: pruning of unknown fields (`structural/pruning`), defaulting
//! (`structural/defaulting`) and value validation (kube-openapi's validator plus the
//! `x-kubernetes-*` extensions), each failure worded and located as upstream words it.

use serde_json::{Map, Value};

use crate::error::Cause;
use crate::validation::field;

/// The fields every object has at its root, whatever the schema says.
const ROOT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// The ObjectMeta fields kept inside an embedded resource's `metadata`.
const OBJECT_META_FIELDS: [&str; 16] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "clusterName",
];

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn type_of(schema: &Value) -> &str {
    schema.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Removes fields the schema does not specify (unless `x-kubernetes-preserve-unknown-fields`)
/// and returns their paths (`spec.foo`) for the unknown-field warnings or the strict error.
/// The root's apiVersion, kind and metadata are always kept.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    if let Value::Object(map) = obj {
        prune_object(schema, map, "", true, &mut unknown);
    }
    unknown
}

fn prune_object(
    schema: &Value,
    map: &mut Map<String, Value>,
    path: &str,
    root: bool,
    unknown: &mut Vec<String>,
) {
    let embedded = flag(schema, "x-kubernetes-embedded-resource");
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        let child = field::child(path, &k);
        if (root || embedded) && ROOT_FIELDS.contains(&k.as_str()) {
            // Metadata (at the root and of embedded resources) keeps ObjectMeta's fields only.
            if k == "metadata"
                && let Some(Value::Object(meta)) = map.get_mut("metadata")
            {
                let mkeys: Vec<String> = meta.keys().cloned().collect();
                for mk in mkeys {
                    if !OBJECT_META_FIELDS.contains(&mk.as_str()) {
                        meta.remove(&mk);
                        unknown.push(field::child(&child, &mk));
                    }
                }
            }
            continue;
        }
        let sub = props
            .and_then(|p| p.get(&k))
            .or(additional.filter(|a| a.is_object()));
        match sub {
            Some(sub) => {
                if let Some(v) = map.get_mut(&k) {
                    prune_value(sub, v, &child, unknown);
                }
            }
            None => {
                let keep = preserve || matches!(additional, Some(Value::Bool(true)));
                if !keep {
                    map.remove(&k);
                    unknown.push(child);
                }
            }
        }
    }
}

fn prune_value(schema: &Value, value: &mut Value, path: &str, unknown: &mut Vec<String>) {
    match value {
        // An object schema without properties and without preserve-unknown-fields keeps
        // nothing, as upstream prunes it; preserve-unknown-fields is decided per field.
        Value::Object(map)
            if type_of(schema) == "object"
                || schema.get("properties").is_some()
                || schema.get("additionalProperties").is_some()
                || flag(schema, "x-kubernetes-embedded-resource") =>
        {
            prune_object(schema, map, path, false, unknown);
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_value(item_schema, item, &field::index(path, i), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Applies `default`s where a field is missing (and where a non-nullable field is null),
/// top-down, as upstream's structural defaulting does on create, update and read.
pub fn apply_defaults(schema: &Value, obj: &mut Value) {
    default_value(schema, obj, true);
}

fn default_value(schema: &Value, value: &mut Value, root: bool) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, sub) in props {
                    if root && ROOT_FIELDS.contains(&k.as_str()) {
                        continue;
                    }
                    let missing_or_null = match map.get(k) {
                        None => true,
                        Some(Value::Null) => !flag(sub, "nullable"),
                        Some(_) => false,
                    };
                    if missing_or_null {
                        if let Some(d) = sub.get("default") {
                            map.insert(k.clone(), d.clone());
                        } else if map.get(k).is_some_and(Value::is_null) && !flag(sub, "nullable") {
                            // A null where null is not allowed is pruned before defaulting.
                            map.remove(k);
                        }
                    }
                }
                for (k, sub) in props {
                    if root && ROOT_FIELDS.contains(&k.as_str()) {
                        continue;
                    }
                    if let Some(v) = map.get_mut(k) {
                        default_value(sub, v, false);
                    }
                }
            } else if let Some(sub) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for v in map.values_mut() {
                    if v.is_null()
                        && !flag(sub, "nullable")
                        && let Some(d) = sub.get("default")
                    {
                        *v = d.clone();
                    }
                    default_value(sub, v, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items").filter(|s| s.is_object()) {
                for item in items.iter_mut() {
                    if item.is_null()
                        && !flag(sub, "nullable")
                        && let Some(d) = sub.get("default")
                    {
                        *item = d.clone();
                    }
                    default_value(sub, item, false);
                }
            }
        }
        _ => {}
    }
}

/// The JSON type kube-openapi reports for a value (`integer` for whole numbers).
fn value_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) {
                "integer"
            } else {
                "number"
            }
        }
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The path as kube-openapi names it in messages (`spec.replicas in body`).
fn body_path(path: &str) -> String {
    if path.is_empty() {
        "body".to_string()
    } else {
        format!("{path} in body")
    }
}

/// `field.TypeInvalid`: the value shown is the JSON type the data has.
fn type_error(path: &str, want: &str, v: &Value) -> Cause {
    let got = value_type(v);
    let mut cause = field::invalid(
        path,
        &Value::from(got),
        &format!(
            "{} must be of type {want}: {}",
            body_path(path),
            field::go_quote(got)
        ),
    );
    cause.reason = "FieldValueTypeInvalid".into();
    cause
}

/// Validates `obj` against the schema: every cause with upstream's path and wording.
/// At the root only the schema's own fields are checked (metadata has its own rules).
pub fn validate(schema: &Value, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    validate_value(schema, obj, "", true, &mut causes);
    causes
}

/// Validates a value (used for CRD defaults too) at `path`.
pub fn validate_at(schema: &Value, value: &Value, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    validate_value(schema, value, path, false, &mut causes);
    causes
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn validate_value(schema: &Value, v: &Value, path: &str, root: bool, causes: &mut Vec<Cause>) {
    if !schema.is_object() {
        return;
    }
    if v.is_null() {
        if flag(schema, "nullable") {
            return;
        }
        let t = type_of(schema);
        if !t.is_empty() {
            causes.push(type_error(path, t, v));
        }
        return;
    }
    let t = type_of(schema);
    if flag(schema, "x-kubernetes-int-or-string") {
        if !matches!(value_type(v), "integer" | "string") {
            causes.push(type_error(path, "integer,string", v));
            return;
        }
    } else if !t.is_empty() {
        let ok = match t {
            "number" => v.is_number(),
            "integer" => value_type(v) == "integer",
            other => value_type(v) == other,
        };
        if !ok {
            causes.push(type_error(path, t, v));
            return;
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.contains(v)
    {
        // Upstream lists the allowed values as strings (non-strings as their JSON).
        let supported: Vec<String> = options
            .iter()
            .map(|o| match o {
                Value::String(s) => field::go_quote(s),
                other => field::go_quote(&other.to_string()),
            })
            .collect();
        causes.push(Cause::new(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                field::display_value(v),
                supported.join(", ")
            ),
        ));
    }
    match v {
        Value::String(s) => validate_string(schema, s, v, path, causes),
        Value::Number(_) => validate_number(schema, v, path, causes),
        Value::Array(items) => validate_array(schema, items, v, path, causes),
        Value::Object(map) => validate_object(schema, map, v, path, root, causes),
        _ => {}
    }
    for (i, sub) in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let _ = i;
        validate_value(sub, v, path, root, causes);
    }
    if let Some(Value::Array(any)) = schema.get("anyOf")
        && !any.is_empty()
        && !any
            .iter()
            .any(|sub| validate_at_root(sub, v, path, root).is_empty())
    {
        causes.push(field::invalid(
            path,
            v,
            &format!(
                "{} must validate at least one schema (anyOf)",
                body_path(path)
            ),
        ));
    }
    if let Some(Value::Array(one)) = schema.get("oneOf")
        && !one.is_empty()
    {
        let matching = one
            .iter()
            .filter(|sub| validate_at_root(sub, v, path, root).is_empty())
            .count();
        if matching != 1 {
            causes.push(field::invalid(
                path,
                v,
                &format!(
                    "{} must validate one and only one schema (oneOf)",
                    body_path(path)
                ),
            ));
        }
    }
    if let Some(not) = schema.get("not").filter(|s| s.is_object())
        && validate_at_root(not, v, path, root).is_empty()
    {
        causes.push(field::invalid(
            path,
            v,
            &format!("{} must not validate the schema (not)", body_path(path)),
        ));
    }
}

fn validate_at_root(schema: &Value, v: &Value, path: &str, root: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    validate_value(schema, v, path, root, &mut causes);
    causes
}

fn validate_string(schema: &Value, s: &str, v: &Value, path: &str, causes: &mut Vec<Cause>) {
    let len = s.chars().count();
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len as u64 > max
    {
        causes.push(Cause::new(
            "FieldValueTooLong",
            path,
            format!("Too long: may not be more than {max} bytes"),
        ));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && (len as u64) < min
    {
        causes.push(field::invalid(
            path,
            v,
            &format!("{} should be at least {min} chars long", body_path(path)),
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(pattern) {
            Ok(re) if !re.is_match(s) => causes.push(field::invalid(
                path,
                v,
                &format!("{} should match '{pattern}'", body_path(path)),
            )),
            _ => {}
        }
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && !format_ok(format, s)
    {
        causes.push(field::invalid(
            path,
            v,
            &format!(
                "{} must be of type {format}: {}",
                body_path(path),
                field::go_quote(s)
            ),
        ));
    }
}

/// The string formats upstream's CRD validation checks (others, such as int32, are
/// informational); the checks are the common cases of go-openapi's strfmt ones.
fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" | "datetime" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        "uuid" => uuid::Uuid::parse_str(s).is_ok() && s.len() == 36,
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => s.split_once('/').is_some_and(|(ip, bits)| {
            ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok()
        }),
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        }
        "hostname" => {
            !s.is_empty()
                && s.len() <= 253
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                })
        }
        "email" => s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !s.contains(' ')
        }),
        "uuid3" | "uuid4" | "uuid5" => uuid::Uuid::parse_str(s).is_ok_and(|u| {
            s.len() == 36 && u.get_version_num() == usize::from(format.as_bytes()[4] - b'0')
        }),
        "hexcolor" => {
            let h = s.strip_prefix('#').unwrap_or("-");
            (h.len() == 3 || h.len() == 6) && h.chars().all(|c| c.is_ascii_hexdigit())
        }
        "uri" => {
            s.split_once(':').is_some_and(|(scheme, _)| {
                !scheme.is_empty()
                    && scheme
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic())
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            }) || s.starts_with('/')
        }
        "mac" => {
            let parts: Vec<&str> = s.split([':', '-']).collect();
            parts.len() == 6
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
        }
        _ => true,
    }
}

fn validate_number(schema: &Value, v: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(n) = number(v) else {
        return;
    };
    let exclusive_min = flag(schema, "exclusiveMinimum");
    let exclusive_max = flag(schema, "exclusiveMaximum");
    if let Some(min) = schema.get("minimum").and_then(number) {
        let bad = if exclusive_min { n <= min } else { n < min };
        if bad {
            let words = if exclusive_min {
                "greater than"
            } else {
                "greater than or equal to"
            };
            causes.push(field::invalid(
                path,
                v,
                &format!("{} should be {words} {}", body_path(path), fmt_num(min)),
            ));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(number) {
        let bad = if exclusive_max { n >= max } else { n > max };
        if bad {
            let words = if exclusive_max {
                "less than"
            } else {
                "less than or equal to"
            };
            causes.push(field::invalid(
                path,
                v,
                &format!("{} should be {words} {}", body_path(path), fmt_num(max)),
            ));
        }
    }
    if let Some(m) = schema.get("multipleOf").and_then(number)
        && m > 0.0
        && ((n / m).fract()).abs() > 1e-9
    {
        causes.push(field::invalid(
            path,
            v,
            &format!("{} should be a multiple of {}", body_path(path), fmt_num(m)),
        ));
    }
}

fn validate_array(schema: &Value, items: &[Value], v: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        causes.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {}: must have at most {max} items", items.len()),
        ));
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        causes.push(field::invalid(
            path,
            &Value::from(items.len()),
            &format!("{} should have at least {min} items", body_path(path)),
        ));
    }
    let _ = v;
    if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
        for (i, item) in items.iter().enumerate() {
            validate_value(item_schema, item, &field::index(path, i), false, causes);
        }
    }
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    causes.push(field::duplicate(&field::index(path, i), item));
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let key_of = |item: &Value| -> Vec<Value> {
                keys.iter()
                    .map(|k| item.get(*k).cloned().unwrap_or(Value::Null))
                    .collect()
            };
            for (i, item) in items.iter().enumerate() {
                let k = key_of(item);
                if items[..i].iter().any(|o| key_of(o) == k) {
                    let shown: Map<String, Value> = keys
                        .iter()
                        .zip(k.iter())
                        .map(|(n, v)| (n.to_string(), v.clone()))
                        .collect();
                    causes.push(Cause::new(
                        "FieldValueDuplicate",
                        field::index(path, i),
                        format!("Duplicate value: {}", go_map(&shown)),
                    ));
                }
            }
        }
        _ => {}
    }
}

/// Go's `%#v` of a `map[string]interface{}`, as upstream prints a duplicate map key.
fn go_map(map: &Map<String, Value>) -> String {
    let entries: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}:{}", field::go_quote(k), field::display_value(v)))
        .collect();
    format!("map[string]interface {{}}{{{}}}", entries.join(", "))
}

fn validate_object(
    schema: &Value,
    map: &Map<String, Value>,
    v: &Value,
    path: &str,
    root: bool,
    causes: &mut Vec<Cause>,
) {
    let _ = v;
    if let Some(Value::Array(required)) = schema.get("required") {
        for r in required.iter().filter_map(Value::as_str) {
            if root && r == "metadata" {
                continue;
            }
            if !map.contains_key(r) {
                causes.push(field::required(&field::child(path, r), ""));
            }
        }
    }
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && map.len() as u64 > max
    {
        causes.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {}: must have at most {max} items", map.len()),
        ));
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
        && (map.len() as u64) < min
    {
        causes.push(field::invalid(
            path,
            &Value::from(map.len()),
            &format!("{} should have at least {min} properties", body_path(path)),
        ));
    }
    if flag(schema, "x-kubernetes-embedded-resource") {
        for k in ["apiVersion", "kind"] {
            match map.get(k) {
                Some(Value::String(s)) if !s.is_empty() => {}
                _ => causes.push(field::required(&field::child(path, k), "must not be empty")),
            }
        }
        if let Some(Value::Object(meta)) = map.get("metadata") {
            let meta_path = field::child(path, "metadata");
            if let Some(Value::String(name)) = meta.get("name") {
                for msg in crate::validation::names::is_dns1123_subdomain(name) {
                    causes.push(field::invalid_str(
                        &field::child(&meta_path, "name"),
                        name,
                        &msg,
                    ));
                }
            }
            if let Some(Value::Object(labels)) = meta.get("labels") {
                crate::validation::kinds::validate_labels(
                    labels,
                    &field::child(&meta_path, "labels"),
                    causes,
                );
            }
        }
    }
    let props = schema.get("properties").and_then(Value::as_object);
    for (k, value) in map {
        if root && ROOT_FIELDS.contains(&k.as_str()) {
            continue;
        }
        let child = field::child(path, k);
        if let Some(sub) = props.and_then(|p| p.get(k)) {
            validate_value(sub, value, &child, false, causes);
        } else if let Some(sub) = schema.get("additionalProperties").filter(|s| s.is_object()) {
            validate_value(sub, value, &child, false, causes);
        }
    }
    if root
        && let Some(meta_schema) = props.and_then(|p| p.get("metadata"))
        && let Some(meta) = map.get("metadata")
    {
        // The schema may restrict metadata.name and generateName only.
        for k in ["name", "generateName"] {
            if let (Some(sub), Some(value)) = (
                meta_schema.get("properties").and_then(|p| p.get(k)),
                meta.get(k),
            ) {
                validate_value(sub, value, &format!("metadata.{k}"), false, causes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer", "default": 80}}}},
                "port": {"x-kubernetes-int-or-string": true},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "when": {"type": "string", "format": "date-time"},
                "opt": {"type": "string", "nullable": true}
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
        }})
    }

    #[test]
    fn prunes_unknown_fields_and_reports_paths() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a", "nope": 1},
            "spec": {"size": 1, "bogus": 1, "free": {"any": {"thing": 1}}, "labels": {"a": "b"},
                     "ports": [{"name": "a", "extra": true}]},
            "top": 1});
        let unknown = prune(&schema(), &mut obj);
        assert_eq!(
            unknown,
            ["metadata.nope", "spec.bogus", "spec.ports[0].extra", "top"]
        );
        assert!(obj.get("top").is_none());
        assert_eq!(obj["spec"]["free"]["any"]["thing"], 1);
        assert_eq!(obj["metadata"]["name"], "a");
    }

    #[test]
    fn formats_upstream_checks() {
        for (format, good, bad) in [
            ("date-time", "2026-01-02T03:04:05Z", "yesterday"),
            ("date", "2026-01-02", "2026-13-02"),
            ("uuid", "6f1c5e8a-3b1f-4c2a-9d7e-0a1b2c3d4e5f", "not-a-uuid"),
            (
                "uuid4",
                "6f1c5e8a-3b1f-4c2a-9d7e-0a1b2c3d4e5f",
                "6f1c5e8a-3b1f-1c2a-9d7e-0a1b2c3d4e5f",
            ),
            ("ipv4", "10.0.0.1", "10.0.0.256"),
            ("ipv6", "fd00::1", "fd00::g"),
            ("cidr", "10.0.0.0/8", "10.0.0.0"),
            ("byte", "aGk=", "!!"),
            ("email", "a@example.com", "a-at-example.com"),
            ("hexcolor", "#a0b1c2", "a0b1c2"),
            ("uri", "https://example.com/x", "example.com"),
            ("int32", "anything", "anything"),
        ] {
            assert!(format_ok(format, good), "{format} {good}");
            assert_eq!(format_ok(format, bad), format == "int32", "{format} {bad}");
        }
    }

    #[test]
    fn defaults_fill_missing_fields_and_nested_items() {
        let mut obj = json!({"spec": {"size": 1, "ports": [{"name": "a"}]}});
        apply_defaults(&schema(), &mut obj);
        assert_eq!(obj["spec"]["color"], "red");
        assert_eq!(obj["spec"]["ports"][0]["port"], 80);
        let mut with_null = json!({"spec": {"size": 1, "color": null}});
        apply_defaults(&schema(), &mut with_null);
        assert_eq!(with_null["spec"]["color"], "red");
    }

    #[test]
    fn validation_errors_carry_upstream_paths_and_words() {
        let obj = json!({"spec": {"size": "big", "color": "pink", "name": "ABC",
            "tags": ["a", "a"], "ports": [{"name": "x"}, {"name": "x"}], "port": true,
            "when": "yesterday", "opt": null}});
        let causes = validate(&schema(), &obj);
        let got: Vec<(String, String)> = causes
            .iter()
            .map(|c| (c.field.clone(), c.message.clone()))
            .collect();
        assert!(
            got.contains(&(
                "spec.size".into(),
                "Invalid value: \"string\": spec.size in body must be of type integer: \"string\""
                    .into()
            )),
            "{got:?}"
        );
        assert!(got.contains(&(
            "spec.color".into(),
            "Unsupported value: \"pink\": supported values: \"red\", \"blue\"".into()
        )));
        assert!(got.contains(&(
            "spec.name".into(),
            "Invalid value: \"ABC\": spec.name in body should match '^[a-z]+$'".into()
        )));
        assert!(got.contains(&("spec.tags[1]".into(), "Duplicate value: \"a\"".into())));
        assert!(got.iter().any(|(f, _)| f == "spec.ports[1]"));
        assert!(got.iter().any(|(f, _)| f == "spec.port"));
        assert!(got.iter().any(|(f, _)| f == "spec.when"));
        assert!(!got.iter().any(|(f, _)| f == "spec.opt"));
        let missing = validate(&schema(), &json!({"spec": {}}));
        assert_eq!(missing[0].field, "spec.size");
        assert_eq!(missing[0].message, "Required value");
        let small = validate(&schema(), &json!({"spec": {"size": 0}}));
        assert_eq!(
            small[0].message,
            "Invalid value: 0: spec.size in body should be greater than or equal to 1"
        );
    }
}
