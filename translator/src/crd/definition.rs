//! Validation of CustomResourceDefinition objects (apiextensions.k8s.io/v1), after upstream's
//! `ValidateCustomResourceDefinition`: names, scope, versions, structural schemas (with the
//! `x-kubernetes-*` extensions and defaults), subresources and printer columns. Causes carry
//! upstream's field paths (`spec.versions[0].schema.openAPIV3Schema.properties[spec].type`).

use serde_json::{Map, Value};

use crate::error::Cause;
use crate::validation::{field, names};

const PROTECTED_ANNOTATION: &str = "api-approved.kubernetes.io";

fn s<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn list<'v>(v: &'v Value, pointer: &str) -> &'v [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Every cause of a CRD create (`old` is `None`) or update.
pub fn crd_causes(crd: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let group = s(crd, "/spec/group");
    if group.is_empty() {
        causes.push(field::required("spec.group", ""));
    } else {
        for msg in names::is_dns1123_subdomain(group) {
            causes.push(field::invalid_str("spec.group", group, &msg));
        }
        if group.split('.').count() < 2 {
            causes.push(field::invalid_str(
                "spec.group",
                group,
                "should be a domain with at least one dot",
            ));
        }
        if is_protected_group(group)
            && crd
                .pointer(&format!("/metadata/annotations/{PROTECTED_ANNOTATION}"))
                .is_none()
        {
            causes.push(field::required(
                &format!("metadata.annotations[{PROTECTED_ANNOTATION}]"),
                &format!(
                    "protected groups must have approval annotation \"{PROTECTED_ANNOTATION}\", see https://github.com/kubernetes/enhancements/pull/1111"
                ),
            ));
        }
    }
    match s(crd, "/spec/scope") {
        "Cluster" | "Namespaced" => {}
        "" => causes.push(field::required("spec.scope", "")),
        other => causes.push(field::not_supported(
            "spec.scope",
            &Value::from(other),
            &["Cluster", "Namespaced"],
        )),
    }
    names_causes(crd, "/spec/names", "spec.names", &mut causes);
    versions_causes(crd, &mut causes);
    if let Some(strategy) = crd
        .pointer("/spec/conversion/strategy")
        .and_then(Value::as_str)
    {
        match strategy {
            "None" => {
                if crd.pointer("/spec/conversion/webhook").is_some() {
                    causes.push(field::forbidden(
                        "spec.conversion.webhook",
                        "should not be set when strategy is not set to Webhook",
                    ));
                }
            }
            "Webhook" => {
                if crd.pointer("/spec/conversion/webhook").is_none() {
                    causes.push(field::required(
                        "spec.conversion.webhook",
                        "required when strategy is set to Webhook",
                    ));
                }
            }
            other => causes.push(field::not_supported(
                "spec.conversion.strategy",
                &Value::from(other),
                &["None", "Webhook"],
            )),
        }
    }
    if crd.pointer("/spec/preserveUnknownFields") == Some(&Value::Bool(true)) {
        causes.push(field::invalid(
            "spec.preserveUnknownFields",
            &Value::Bool(true),
            "must be false in order to use defaults in the schema",
        ));
    }
    if let Some(old) = old {
        // The resource name is immutable; once established, so is what storage depends on.
        let mut immutable = vec![
            ("/spec/group", "spec.group"),
            ("/spec/names/plural", "spec.names.plural"),
        ];
        if super::serving::is_established(old) {
            immutable.push(("/spec/scope", "spec.scope"));
            immutable.push(("/spec/names/kind", "spec.names.kind"));
        }
        for (pointer, path) in immutable {
            let (n, o) = (s(crd, pointer), s(old, pointer));
            if n != o {
                causes.push(field::invalid_str(path, n, "field is immutable"));
            }
        }
    }
    // storedVersions must name spec versions and include the storage version.
    let version_names: Vec<&str> = list(crd, "/spec/versions")
        .iter()
        .map(|v| s(v, "/name"))
        .collect();
    for (i, sv) in list(crd, "/status/storedVersions").iter().enumerate() {
        if let Some(sv) = sv.as_str()
            && !version_names.contains(&sv)
        {
            causes.push(field::invalid_str(
                &field::index("status.storedVersions", i),
                sv,
                "must appear in spec.versions",
            ));
        }
    }
    causes
}

fn is_protected_group(group: &str) -> bool {
    group == "k8s.io"
        || group == "kubernetes.io"
        || group.ends_with(".k8s.io")
        || group.ends_with(".kubernetes.io")
}

/// `ValidateCustomResourceDefinitionNames`.
pub fn names_causes(crd: &Value, pointer: &str, path: &str, causes: &mut Vec<Cause>) {
    let names = crd.pointer(pointer).cloned().unwrap_or(Value::Null);
    let get = |k: &str| names.get(k).and_then(Value::as_str).unwrap_or_default();
    let dns1035 = |k: &str, value: &str, causes: &mut Vec<Cause>| {
        let errs = names::is_dns1035_label(value);
        if !value.is_empty() && !errs.is_empty() {
            causes.push(field::invalid_str(
                &field::child(path, k),
                value,
                &errs.join(","),
            ));
        }
    };
    let plural = get("plural");
    if plural.is_empty() {
        causes.push(field::required(&field::child(path, "plural"), ""));
    }
    dns1035("plural", plural, causes);
    let kind = get("kind");
    if get("singular").is_empty() {
        causes.push(field::required(&field::child(path, "singular"), ""));
    }
    dns1035("singular", get("singular"), causes);
    if kind.is_empty() {
        causes.push(field::required(&field::child(path, "kind"), ""));
    }
    if get("listKind").is_empty() {
        causes.push(field::required(&field::child(path, "listKind"), ""));
    }
    for k in ["kind", "listKind"] {
        let value = get(k);
        let errs = names::is_dns1035_label(&value.to_lowercase());
        if !value.is_empty() && !errs.is_empty() {
            causes.push(field::invalid_str(
                &field::child(path, k),
                value,
                &format!(
                    "may have mixed case, but should otherwise match: {}",
                    errs.join(",")
                ),
            ));
        }
    }
    let list_kind = get("listKind");
    if !kind.is_empty() && kind == list_kind {
        causes.push(field::invalid_str(
            &field::child(path, "listKind"),
            list_kind,
            "kind and listKind may not be the same",
        ));
    }
    for (i, sn) in list(&names, "/shortNames")
        .iter()
        .filter_map(Value::as_str)
        .enumerate()
    {
        let errs = names::is_dns1035_label(sn);
        if !errs.is_empty() {
            causes.push(field::invalid_str(
                &field::index(&field::child(path, "shortNames"), i),
                sn,
                &errs.join(","),
            ));
        }
    }
    for (i, c) in list(&names, "/categories")
        .iter()
        .filter_map(Value::as_str)
        .enumerate()
    {
        let errs = names::is_dns1035_label(c);
        if !errs.is_empty() {
            causes.push(field::invalid_str(
                &field::index(&field::child(path, "categories"), i),
                c,
                &errs.join(","),
            ));
        }
    }
}

fn versions_causes(crd: &Value, causes: &mut Vec<Cause>) {
    let versions = list(crd, "/spec/versions");
    if versions.is_empty() {
        causes.push(field::required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
        return;
    }
    let storage = versions
        .iter()
        .filter(|v| v.get("storage") == Some(&Value::Bool(true)))
        .count();
    if storage != 1 {
        causes.push(field::invalid(
            "spec.versions",
            &Value::Array(versions.to_vec()),
            "must have exactly one version marked as storage version",
        ));
    }
    if !versions
        .iter()
        .any(|v| v.get("served") == Some(&Value::Bool(true)))
    {
        causes.push(field::invalid(
            "spec.versions",
            &Value::Array(versions.to_vec()),
            "must have at least one served version",
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    let unique = {
        let mut names: Vec<&str> = versions.iter().map(|v| s(v, "/name")).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        names.len() == n
    };
    if !unique {
        causes.push(field::invalid(
            "spec.versions",
            &Value::Array(versions.to_vec()),
            "must contain unique version names",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        let vpath = field::index("spec.versions", i);
        let name = s(v, "/name");
        if name.is_empty() {
            causes.push(field::required(&field::child(&vpath, "name"), ""));
        } else {
            for msg in names::is_dns1035_label(name) {
                causes.push(field::invalid_str(
                    &field::child(&vpath, "name"),
                    name,
                    &msg,
                ));
            }
            seen.push(name);
        }
        let schema_path = field::child(&vpath, "schema.openAPIV3Schema");
        match v.pointer("/schema/openAPIV3Schema") {
            None | Some(Value::Null) => {
                causes.push(field::required(&schema_path, "schemas are required"))
            }
            Some(schema) => {
                root_schema_causes(schema, &schema_path, causes);
                let status = v.pointer("/subresources/status").is_some();
                let _ = status;
            }
        }
        subresource_causes(v, &vpath, causes);
        columns_causes(v, &vpath, causes);
        if let Some(Value::Array(fields)) = v.get("selectableFields") {
            selectable_fields_causes(fields, v.pointer("/schema/openAPIV3Schema"), &vpath, causes);
        }
    }
}

/// Upstream's limit on selectable fields per version.
const MAX_SELECTABLE_FIELDS: usize = 8;

/// `selectableFields`: at most 8, unique, each a path to a string, integer or boolean field
/// of the version's schema.
fn selectable_fields_causes(
    fields: &[Value],
    schema: Option<&Value>,
    vpath: &str,
    causes: &mut Vec<Cause>,
) {
    let path = format!("{vpath}.selectableFields");
    if fields.len() > MAX_SELECTABLE_FIELDS {
        causes.push(Cause::new(
            "FieldValueTooMany",
            &path,
            format!(
                "Too many: {}: must have at most {MAX_SELECTABLE_FIELDS} items",
                fields.len()
            ),
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (j, f) in fields.iter().enumerate() {
        let jp = s(f, "/jsonPath");
        let fpath = format!("{path}[{j}].jsonPath");
        if jp.is_empty() {
            causes.push(field::required(&fpath, ""));
            continue;
        }
        if !jp.starts_with('.') {
            causes.push(field::invalid_str(
                &fpath,
                jp,
                "must be a simple json path starting with .",
            ));
            continue;
        }
        if seen.contains(&jp) {
            causes.push(field::duplicate(&fpath, &Value::from(jp)));
        }
        seen.push(jp);
        let mut node = schema;
        for seg in jp.trim_start_matches('.').split('.') {
            node = node
                .and_then(|n| n.get("properties"))
                .and_then(|p| p.get(seg));
        }
        match node.and_then(|n| n.get("type")).and_then(Value::as_str) {
            None => causes.push(field::invalid_str(
                &fpath,
                jp,
                "is an invalid path: the field does not exist in the schema",
            )),
            Some("string" | "integer" | "boolean") => {}
            Some(_) => causes.push(field::invalid_str(
                &fpath,
                jp,
                "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.",
            )),
        }
    }
}

fn root_schema_causes(schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {}
        None | Some("") => {
            if !flag(schema, "x-kubernetes-preserve-unknown-fields") {
                causes.push(field::required(
                    &field::child(path, "type"),
                    "must not be empty at the root",
                ));
            }
        }
        Some(other) => causes.push(field::invalid_str(
            &field::child(path, "type"),
            other,
            "must be object at the root",
        )),
    }
    if let Some(meta) = schema.get("properties").and_then(|p| p.get("metadata")) {
        metadata_schema_causes(meta, &format!("{path}.properties[metadata]"), causes);
    }
    if schema
        .get("additionalProperties")
        .is_some_and(|a| !a.is_null())
    {
        causes.push(field::forbidden(
            &field::child(path, "additionalProperties"),
            "must not be used at the root",
        ));
    }
    if let Some(map) = schema.as_object() {
        for k in ["apiVersion", "kind"] {
            string_property_cause(map, k, path, causes);
        }
    }
    for forbidden in [
        "nullable",
        "x-kubernetes-int-or-string",
        "x-kubernetes-embedded-resource",
    ] {
        if flag(schema, forbidden) {
            causes.push(field::forbidden(
                &field::child(path, forbidden),
                "must be false at the root",
            ));
        }
    }
    schema_causes(schema, path, "", causes);
}

/// `apiVersion` and `kind` of an object (the root, an embedded resource) must be strings.
fn string_property_cause(map: &Map<String, Value>, k: &str, path: &str, causes: &mut Vec<Cause>) {
    if let Some(p) = map.get("properties").and_then(|p| p.get(k)) {
        let t = p.get("type").and_then(Value::as_str).unwrap_or("");
        if t != "string" {
            causes.push(field::invalid_str(
                &format!("{path}.properties[{k}].type"),
                t,
                "must be string",
            ));
        }
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// At the root, metadata may only restrict `name` and `generateName` (as strings).
fn metadata_schema_causes(meta: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(map) = meta.as_object() else {
        return;
    };
    let allowed_top = ["type", "properties", "description"];
    let props_ok = map
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(|p| {
            p.iter().all(|(k, v)| {
                (k == "name" || k == "generateName")
                    && v.get("type")
                        .and_then(Value::as_str)
                        .is_none_or(|t| t == "string")
            })
        });
    let type_ok = map
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(|t| t == "object");
    if !map.keys().all(|k| allowed_top.contains(&k.as_str())) || !props_ok || !type_ok {
        causes.push(field::forbidden(
            path,
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
}

/// Keywords a structural schema may not use anywhere.
const FORBIDDEN_KEYWORDS: [(&str, &str); 6] = [
    ("$ref", "$ref is not supported"),
    ("definitions", "definitions is not supported"),
    ("dependencies", "dependencies is not supported"),
    ("patternProperties", "patternProperties is not supported"),
    ("additionalItems", "additionalItems is not supported"),
    ("id", "id is not supported"),
];

/// The structural-schema rules at one node (nested contexts are `nested_causes`). `data`
/// is the data path the node describes, for validating its `default`.
fn schema_causes(schema: &Value, path: &str, data: &str, causes: &mut Vec<Cause>) {
    let Some(map) = schema.as_object() else {
        return;
    };
    for (kw, msg) in FORBIDDEN_KEYWORDS {
        if map.contains_key(kw) {
            causes.push(field::forbidden(&field::child(path, kw), msg));
        }
    }
    if flag(schema, "uniqueItems") {
        causes.push(field::forbidden(
            &field::child(path, "uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        causes.push(field::invalid(
            &field::child(path, "x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(false),
            "must be true or undefined",
        ));
    }
    if map.contains_key("properties") && map.contains_key("additionalProperties") {
        causes.push(field::forbidden(
            &field::child(path, "additionalProperties"),
            "additionalProperties and properties are mutual exclusive",
        ));
    }
    if map.get("additionalProperties") == Some(&Value::Bool(false)) {
        causes.push(field::forbidden(
            &field::child(path, "additionalProperties"),
            "must not be false",
        ));
    }
    let t = map.get("type").and_then(Value::as_str).unwrap_or("");
    if t == "null" {
        causes.push(field::forbidden(
            &field::child(path, "type"),
            "type cannot be set to null",
        ));
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !t.is_empty() {
            causes.push(field::invalid_str(
                &field::child(path, "type"),
                t,
                "must be empty if x-kubernetes-int-or-string is true",
            ));
        }
    } else if !t.is_empty()
        && ![
            "object", "array", "string", "integer", "number", "boolean", "null",
        ]
        .contains(&t)
    {
        causes.push(field::not_supported(
            &field::child(path, "type"),
            &Value::from(t),
            &["array", "boolean", "integer", "number", "object", "string"],
        ));
    }
    if flag(schema, "x-kubernetes-embedded-resource") {
        const WHY: &str = "must be object if x-kubernetes-embedded-resource is true";
        if t.is_empty() {
            causes.push(field::required(&field::child(path, "type"), WHY));
        } else if t != "object" {
            causes.push(field::invalid_str(&field::child(path, "type"), t, WHY));
        }
        if map.contains_key("additionalProperties") {
            causes.push(field::forbidden(
                &field::child(path, "additionalProperties"),
                "must not be used if x-kubernetes-embedded-resource is set",
            ));
        }
        for k in ["apiVersion", "kind"] {
            string_property_cause(map, k, path, causes);
        }
        if !map.contains_key("properties") && !flag(schema, "x-kubernetes-preserve-unknown-fields")
        {
            causes.push(field::required(
                &field::child(path, "properties"),
                "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
            ));
        }
    }
    if let Some(Value::Array(_)) = map.get("items") {
        causes.push(field::forbidden(
            &field::child(path, "items"),
            "items must be a schema object and not an array",
        ));
    }
    if t == "array" && !map.get("items").is_some_and(Value::is_object) {
        causes.push(field::required(
            &field::child(path, "items"),
            "must be specified",
        ));
    }
    list_type_causes(map, t, path, causes);
    pattern_causes(map, path, causes);
    if flag(schema, "x-kubernetes-int-or-string")
        && flag(schema, "x-kubernetes-preserve-unknown-fields")
    {
        causes.push(field::invalid(
            &field::child(path, "x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if let Some(meta) = map.get("properties").and_then(|p| p.get("metadata"))
        && (data.is_empty() || flag(schema, "x-kubernetes-embedded-resource"))
        && meta.get("type").and_then(Value::as_str) != Some("object")
    {
        causes.push(field::invalid(
            &format!("{path}.properties[metadata].type"),
            meta.get("type").unwrap_or(&Value::from("")),
            "must be object",
        ));
    }
    if let Some(Value::Array(validations)) = map.get("x-kubernetes-validations") {
        for (i, rule) in validations.iter().enumerate() {
            let rpath = format!("{path}.x-kubernetes-validations[{i}]");
            let expr = rule.get("rule").and_then(Value::as_str).unwrap_or_default();
            if expr.trim().is_empty() {
                causes.push(field::required(&field::child(&rpath, "rule"), ""));
            } else if let Err(e) = super::cel::check_fields(expr, schema) {
                causes.push(field::invalid_str(
                    &field::child(&rpath, "rule"),
                    expr,
                    &format!("compilation failed: {e}"),
                ));
            }
            if let Some(me) = rule.get("messageExpression").and_then(Value::as_str)
                && let Err(e) = super::cel::compile(me)
            {
                causes.push(field::invalid_str(
                    &field::child(&rpath, "messageExpression"),
                    me,
                    &format!("messageExpression compilation failed: {e}"),
                ));
            }
        }
    }
    // Children: every specified property and item must have a type (structural rule),
    // except under int-or-string / preserve-unknown-fields where the type may be omitted.
    if let Some(Value::Object(props)) = map.get("properties") {
        for (k, sub) in props {
            let ppath = format!("{path}.properties[{k}]");
            let pdata = field::child(data, k);
            need_type(
                sub,
                &ppath,
                "must not be empty for specified object fields",
                causes,
            );
            schema_causes(sub, &ppath, &pdata, causes);
        }
    }
    if let Some(sub @ Value::Object(_)) = map.get("additionalProperties") {
        let ppath = field::child(path, "additionalProperties");
        need_type(
            sub,
            &ppath,
            "must not be empty for specified object fields",
            causes,
        );
        schema_causes(sub, &ppath, data, causes);
    }
    if let Some(sub @ Value::Object(_)) = map.get("items") {
        let ipath = field::child(path, "items");
        need_type(
            sub,
            &ipath,
            "must not be empty for specified array items",
            causes,
        );
        schema_causes(sub, &ipath, &format!("{data}[*]"), causes);
    }
    junctor_causes(map, path, false, causes);
    if let Some(default) = map.get("default") {
        let dpath = field::child(path, "default");
        if default.is_null() && !flag(schema, "nullable") {
            causes.push(field::invalid(
                &dpath,
                default,
                "must not be null for a non-nullable field",
            ));
        } else {
            // A default must be what the schema accepts once pruned.
            let mut pruned = default.clone();
            let unknown = super::structural::prune(schema, &mut pruned);
            for u in unknown {
                causes.push(field::invalid(
                    &dpath,
                    default,
                    &format!("must not have unknown fields: {u}"),
                ));
            }
            let shown = if data.is_empty() {
                String::new()
            } else {
                data.to_string()
            };
            for c in super::structural::validate_at(schema, &pruned, &shown) {
                causes.push(Cause::new(&c.reason, &dpath, c.message));
            }
        }
    }
}

/// `[{type: integer}, {type: string}]`: the anyOf of an int-or-string, the one place a
/// type may appear in a nested context.
fn is_int_or_string_any_of(any_of: Option<&Value>) -> bool {
    any_of == Some(&serde_json::json!([{"type": "integer"}, {"type": "string"}]))
}

/// Under allOf/anyOf/oneOf/not only value validations are allowed (upstream's
/// `validateNestedValueValidation`): nothing that changes the structure, no defaults, no
/// metadata, no CEL rules.
fn nested_causes(schema: &Value, path: &str, skip_any_of: bool, causes: &mut Vec<Cause>) {
    let Some(map) = schema.as_object() else {
        return;
    };
    for (kw, msg) in FORBIDDEN_KEYWORDS {
        if map.contains_key(kw) {
            causes.push(field::forbidden(&field::child(path, kw), msg));
        }
    }
    pattern_causes(map, path, causes);
    let present = |k: &str| map.get(k).is_some_and(|v| !v.is_null());
    let truthy = |k: &str| map.get(k) == Some(&Value::Bool(true));
    let mut forbid = |k: &str, why: &str| {
        causes.push(field::forbidden(&field::child(path, k), why));
    };
    if map
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
    {
        forbid("type", "must be empty to be structural");
    }
    if present("additionalProperties") {
        forbid("additionalProperties", "must be undefined to be structural");
    }
    if present("default") {
        forbid("default", "must be undefined to be structural");
    }
    for k in ["title", "description"] {
        if map
            .get(k)
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
        {
            forbid(k, "must be empty to be structural");
        }
    }
    if truthy("nullable") {
        forbid("nullable", "must be false to be structural");
    }
    for k in [
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
    ] {
        if truthy(k) {
            forbid(k, "must be false to be structural");
        }
    }
    if map
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        forbid(
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        );
    }
    for k in ["x-kubernetes-list-type", "x-kubernetes-map-type"] {
        if present(k) {
            forbid(k, "must be undefined to be structural");
        }
    }
    if map
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        forbid("x-kubernetes-validations", "must be empty to be structural");
    }
    if let Some(Value::Object(props)) = map.get("properties") {
        for (k, sub) in props {
            let ppath = format!("{path}.properties[{k}]");
            if k == "metadata" {
                causes.push(field::forbidden(
                    &ppath,
                    "must not be specified in a nested context",
                ));
            }
            nested_causes(sub, &ppath, false, causes);
        }
    }
    if let Some(sub @ Value::Object(_)) = map.get("items") {
        nested_causes(sub, &field::child(path, "items"), false, causes);
    }
    junctor_causes(map, path, skip_any_of, causes);
}

/// allOf/anyOf/oneOf/not of a node, each a nested context.
fn junctor_causes(
    map: &Map<String, Value>,
    path: &str,
    skip_any_of: bool,
    causes: &mut Vec<Cause>,
) {
    let first_all_of_is_int_or_string = map
        .get("allOf")
        .and_then(|a| a.get(0))
        .is_some_and(|first| is_int_or_string_any_of(first.get("anyOf")));
    if !skip_any_of
        && !is_int_or_string_any_of(map.get("anyOf"))
        && let Some(Value::Array(subs)) = map.get("anyOf")
    {
        for (i, sub) in subs.iter().enumerate() {
            nested_causes(sub, &format!("{path}.anyOf[{i}]"), false, causes);
        }
    }
    if let Some(Value::Array(subs)) = map.get("allOf") {
        for (i, sub) in subs.iter().enumerate() {
            let skip = i == 0 && first_all_of_is_int_or_string;
            nested_causes(sub, &format!("{path}.allOf[{i}]"), skip, causes);
        }
    }
    if let Some(Value::Array(subs)) = map.get("oneOf") {
        for (i, sub) in subs.iter().enumerate() {
            nested_causes(sub, &format!("{path}.oneOf[{i}]"), false, causes);
        }
    }
    if let Some(sub @ Value::Object(_)) = map.get("not") {
        nested_causes(sub, &field::child(path, "not"), false, causes);
    }
}

/// A `pattern` must be a regular expression.
fn pattern_causes(map: &Map<String, Value>, path: &str, causes: &mut Vec<Cause>) {
    if let Some(p) = map.get("pattern").and_then(Value::as_str)
        && let Err(e) = regex::Regex::new(p)
    {
        causes.push(field::invalid_str(
            &field::child(path, "pattern"),
            p,
            &format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
}

fn need_type(schema: &Value, path: &str, why: &str, causes: &mut Vec<Cause>) {
    let t = schema.get("type").and_then(Value::as_str).unwrap_or("");
    if t.is_empty()
        && !flag(schema, "x-kubernetes-int-or-string")
        && !flag(schema, "x-kubernetes-preserve-unknown-fields")
    {
        causes.push(field::required(&field::child(path, "type"), why));
    }
}

fn list_type_causes(map: &Map<String, Value>, t: &str, path: &str, causes: &mut Vec<Cause>) {
    let list_type = map.get("x-kubernetes-list-type").and_then(Value::as_str);
    let keys = map.get("x-kubernetes-list-map-keys");
    let lt_path = field::child(path, "x-kubernetes-list-type");
    let mk_path = field::child(path, "x-kubernetes-list-map-keys");
    if let Some(lt) = list_type {
        if t != "array" {
            causes.push(field::invalid_str(
                &lt_path,
                lt,
                "must only be used if type is array",
            ));
        }
        if !["atomic", "set", "map"].contains(&lt) {
            causes.push(field::not_supported(
                &lt_path,
                &Value::from(lt),
                &["atomic", "set", "map"],
            ));
        }
    }
    let items = map.get("items");
    let item_type = items
        .and_then(|i| i.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match list_type {
        Some("map") => {
            let names: Vec<&str> = keys
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if names.is_empty() {
                causes.push(field::required(
                    &mk_path,
                    "must not be empty if x-kubernetes-list-type is map",
                ));
            }
            if item_type != "object" {
                causes.push(field::invalid_str(
                    &field::child(path, "items.type"),
                    item_type,
                    "must be object if parent array's x-kubernetes-list-type is map",
                ));
            }
            let props = items.and_then(|i| i.get("properties"));
            for (i, k) in names.iter().enumerate() {
                let Some(p) = props.and_then(|p| p.get(*k)) else {
                    causes.push(field::invalid(
                        &mk_path,
                        keys.unwrap_or(&Value::Null),
                        "entries must all be names of item properties",
                    ));
                    continue;
                };
                let pt = p.get("type").and_then(Value::as_str).unwrap_or("");
                if !["string", "integer", "number", "boolean"].contains(&pt)
                    && !flag(p, "x-kubernetes-int-or-string")
                {
                    causes.push(field::invalid(
                        &format!("{path}.items.properties[{k}].type"),
                        &Value::from(pt),
                        "must be a scalar type if parent array's x-kubernetes-list-type is map",
                    ));
                }
                if names[..i].contains(k) {
                    causes.push(field::duplicate(&mk_path, &Value::from(*k)));
                }
            }
        }
        Some("set") => {
            if keys.is_some() {
                causes.push(field::forbidden(
                    &mk_path,
                    "can only be set if x-kubernetes-list-type is map",
                ));
            }
            if item_type == "object" || item_type == "array" {
                causes.push(field::invalid_str(
                    &field::child(path, "items.x-kubernetes-map-type"),
                    item_type,
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                ));
            }
        }
        _ => {
            if keys.is_some() {
                causes.push(field::forbidden(
                    &mk_path,
                    "can only be set if x-kubernetes-list-type is map",
                ));
            }
        }
    }
}

fn subresource_causes(v: &Value, vpath: &str, causes: &mut Vec<Cause>) {
    let Some(scale) = v.pointer("/subresources/scale").filter(|s| !s.is_null()) else {
        return;
    };
    let spath = format!("{vpath}.subresources.scale");
    let spec_path = s(scale, "/specReplicasPath");
    if spec_path.is_empty() {
        causes.push(field::required(
            &field::child(&spath, "specReplicasPath"),
            "",
        ));
    } else if !spec_path.starts_with(".spec.") {
        causes.push(field::invalid_str(
            &field::child(&spath, "specReplicasPath"),
            spec_path,
            "should be a json path under .spec",
        ));
    }
    let status_path = s(scale, "/statusReplicasPath");
    if status_path.is_empty() {
        causes.push(field::required(
            &field::child(&spath, "statusReplicasPath"),
            "",
        ));
    } else if !status_path.starts_with(".status.") {
        causes.push(field::invalid_str(
            &field::child(&spath, "statusReplicasPath"),
            status_path,
            "should be a json path under .status",
        ));
    }
    if let Some(sel) = scale.get("labelSelectorPath").and_then(Value::as_str)
        && !sel.starts_with(".spec.")
        && !sel.starts_with(".status.")
    {
        causes.push(field::invalid_str(
            &field::child(&spath, "labelSelectorPath"),
            sel,
            "should be a json path under either .spec or .status",
        ));
    }
}

const COLUMN_TYPES: [&str; 5] = ["boolean", "date", "integer", "number", "string"];
const COLUMN_FORMATS: [&str; 8] = [
    "byte",
    "date",
    "date-time",
    "double",
    "float",
    "int32",
    "int64",
    "password",
];

fn columns_causes(v: &Value, vpath: &str, causes: &mut Vec<Cause>) {
    for (i, col) in list(v, "/additionalPrinterColumns").iter().enumerate() {
        let cpath = format!("{vpath}.additionalPrinterColumns[{i}]");
        if s(col, "/name").is_empty() {
            causes.push(field::required(&field::child(&cpath, "name"), ""));
        }
        let t = s(col, "/type");
        if t.is_empty() {
            causes.push(field::required(&field::child(&cpath, "type"), ""));
        } else if !COLUMN_TYPES.contains(&t) {
            causes.push(field::not_supported(
                &field::child(&cpath, "type"),
                &Value::from(t),
                &COLUMN_TYPES,
            ));
        }
        let f = s(col, "/format");
        if !f.is_empty() && !COLUMN_FORMATS.contains(&f) {
            causes.push(field::not_supported(
                &field::child(&cpath, "format"),
                &Value::from(f),
                &COLUMN_FORMATS,
            ));
        }
        if let Some(p) = col.get("priority").and_then(Value::as_i64)
            && p < 0
        {
            causes.push(field::invalid(
                &field::child(&cpath, "priority"),
                &Value::from(p),
                "must be greater than or equal to 0",
            ));
        }
        let jp = s(col, "/jsonPath");
        if jp.is_empty() {
            causes.push(field::required(&field::child(&cpath, "jsonPath"), ""));
        } else if let Err(why) = check_json_path(jp) {
            causes.push(field::invalid_str(
                &field::child(&cpath, "jsonPath"),
                jp,
                &why,
            ));
        }
    }
}

/// A printer column's path: kubectl's JSONPath syntax without the braces, starting with a
/// dot (`.spec.replicas`, `.status.conditions[?(@.type=="Ready")].status`).
fn check_json_path(path: &str) -> Result<(), String> {
    if !path.starts_with('.') {
        return Err("must be a simple json path starting with .".into());
    }
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for c in path.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '(') => depth += 1,
            (None, ']' | ')') => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unmatched {c}"));
                }
            }
            (None, '{' | '}') => return Err("must be a simple json path starting with .".into()),
            _ => {}
        }
    }
    if depth != 0 || quote.is_some() {
        return Err("unterminated array or filter expression".into());
    }
    Ok(())
}

/// v1 defaults of a CRD (`SetDefaults_CustomResourceDefinition*`): singular, listKind,
/// conversion strategy.
pub fn apply_crd_defaults(crd: &mut Value) {
    let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !kind.is_empty() {
            if names
                .get("singular")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                names.insert("singular".into(), Value::from(kind.to_lowercase()));
            }
            if names
                .get("listKind")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                names.insert("listKind".into(), Value::from(format!("{kind}List")));
            }
        }
    }
    let conversion = spec
        .entry("conversion")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(c) = conversion.as_object_mut()
        && !c.contains_key("strategy")
    {
        c.insert("strategy".into(), Value::from("None"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub fn good() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {
                            "replicas": {"type": "integer", "default": 1},
                            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                                "x-kubernetes-list-map-keys": ["name"],
                                "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}
                        }}}}},
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                    "additionalPrinterColumns": [{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}]
                }]}
        })
    }

    fn fields(crd: &Value) -> Vec<String> {
        crd_causes(crd, None).into_iter().map(|c| c.field).collect()
    }

    #[test]
    fn a_good_crd_has_no_causes() {
        assert_eq!(crd_causes(&good(), None), vec![]);
    }

    #[test]
    fn missing_types_are_reported_at_upstream_paths() {
        let mut crd = good();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            .as_object_mut()
            .unwrap()
            .remove("type");
        assert_eq!(
            fields(&crd),
            ["spec.versions[0].schema.openAPIV3Schema.properties[spec].type"]
        );
    }

    #[test]
    fn versions_names_and_scope_rules() {
        let mut crd = good();
        crd["spec"]["versions"][0]["storage"] = json!(false);
        crd["spec"]["scope"] = json!("Everywhere");
        crd["spec"]["names"]["plural"] = json!("Widgets");
        let f = fields(&crd);
        assert!(f.contains(&"spec.versions".to_string()), "{f:?}");
        assert!(f.contains(&"spec.scope".to_string()));
        assert!(f.contains(&"spec.names.plural".to_string()));
        let mut dup = good();
        let v = dup["spec"]["versions"][0].clone();
        let mut v2 = v.clone();
        v2["storage"] = json!(false);
        dup["spec"]["versions"] = json!([v, v2]);
        assert_eq!(fields(&dup), ["spec.versions"]);
    }

    #[test]
    fn forbidden_constructs_bad_defaults_columns_and_list_types() {
        let mut crd = good();
        let spec_props = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
            ["spec"]["properties"];
        spec_props["replicas"]["default"] = json!("one");
        spec_props["tags"] =
            json!({"type": "array", "uniqueItems": true, "items": {"type": "string"}});
        spec_props["ports"]["x-kubernetes-list-map-keys"] = json!(["port"]);
        crd["spec"]["versions"][0]["additionalPrinterColumns"][0]["jsonPath"] =
            json!("spec.replicas");
        let f = fields(&crd);
        let base = "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties";
        assert!(f.contains(&format!("{base}[replicas].default")), "{f:?}");
        assert!(f.contains(&format!("{base}[tags].uniqueItems")), "{f:?}");
        assert!(
            f.contains(&format!("{base}[ports].x-kubernetes-list-map-keys")),
            "{f:?}"
        );
        assert!(f.contains(&"spec.versions[0].additionalPrinterColumns[0].jsonPath".to_string()));
        let msg = crd_causes(&crd, None)
            .into_iter()
            .find(|c| c.field.ends_with("[replicas].default"))
            .unwrap()
            .message;
        assert_eq!(
            msg,
            "Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
        );
    }

    #[test]
    fn updates_keep_group_and_plural_and_once_established_scope_and_kind() {
        let mut old = good();
        let mut new = good();
        new["spec"]["scope"] = json!("Cluster");
        assert!(
            crd_causes(&new, Some(&old)).is_empty(),
            "not established yet"
        );
        old["status"] = json!({"conditions": [{"type": "Established", "status": "True"}]});
        let fields: Vec<String> = crd_causes(&new, Some(&old))
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["spec.scope"]);
        new["spec"]["group"] = json!("other.com");
        let causes = crd_causes(&new, Some(&old));
        assert!(causes.iter().any(|c| c.field == "spec.group"
            && c.message == "Invalid value: \"other.com\": field is immutable"));
    }

    #[test]
    fn nested_contexts_carry_only_value_validations() {
        let mut crd = good();
        let spec_props = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
            ["spec"]["properties"];
        spec_props["port"] = json!({"x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}]});
        spec_props["mode"] = json!({"type": "string",
            "allOf": [{"type": "string", "default": "a", "properties": {"metadata": {}}}]});
        spec_props["name"] = json!({"type": "string", "pattern": "([a-z"});
        let f = fields(&crd);
        let base = "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties";
        assert_eq!(
            f,
            [
                format!("{base}[mode].allOf[0].type"),
                format!("{base}[mode].allOf[0].default"),
                format!("{base}[mode].allOf[0].properties[metadata]"),
                format!("{base}[name].pattern"),
            ],
            "the int-or-string anyOf is allowed"
        );
        let mut root_ap = good();
        root_ap["spec"]["versions"][0]["schema"]["openAPIV3Schema"] =
            json!({"type": "object", "additionalProperties": {"type": "string"}});
        assert_eq!(
            fields(&root_ap),
            ["spec.versions[0].schema.openAPIV3Schema.additionalProperties"]
        );
    }

    #[test]
    fn selectable_fields_point_to_scalar_fields() {
        let mut crd = good();
        crd["spec"]["versions"][0]["selectableFields"] = json!([
            {"jsonPath": ".spec.replicas"}, {"jsonPath": ".spec.ports"},
            {"jsonPath": ".spec.nope"}, {"jsonPath": ".spec.replicas"}]);
        assert_eq!(
            fields(&crd),
            [
                "spec.versions[0].selectableFields[1].jsonPath",
                "spec.versions[0].selectableFields[2].jsonPath",
                "spec.versions[0].selectableFields[3].jsonPath",
            ]
        );
    }

    #[test]
    fn metadata_may_only_restrict_name() {
        let mut crd = good();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["metadata"] =
            json!({"type": "object", "properties": {"labels": {"type": "object"}}});
        assert_eq!(
            fields(&crd),
            ["spec.versions[0].schema.openAPIV3Schema.properties[metadata]"]
        );
    }

    #[test]
    fn defaults_fill_singular_list_kind_and_conversion() {
        let mut crd = good();
        crd["spec"]["names"] = json!({"plural": "widgets", "kind": "Widget"});
        apply_crd_defaults(&mut crd);
        assert_eq!(crd["spec"]["names"]["singular"], "widget");
        assert_eq!(crd["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(crd["spec"]["conversion"]["strategy"], "None");
    }
}
