//! OpenAPI definitions of custom resources, shaped as apiextensions-apiserver's
//! `controller/openapi/builder` publishes them: the CRD version's structural schema with
//! `apiVersion`, `kind` and an ObjectMeta `metadata` added, `x-kubernetes-group-version-kind`,
//! and a `<Kind>List` definition. Swagger 2.0 gets upstream's `ToStructuralOpenAPIV2`
//! reduction (junctors dropped, nullable and preserve-unknown-fields nodes left untyped), since
//! kubectl's v2 models cannot read those constructs.

use beemesh_translator::ResourceInfo;
use beemesh_translator::catalog::REF_PREFIX;
use beemesh_translator::registry::CustomVersion;
use serde_json::{Map, Value, json};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const V2_REF_PREFIX: &str = "#/definitions/";

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const EMBEDDED_API_VERSION_DOC: &str = "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const EMBEDDED_KIND_DOC: &str = "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DOC: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// What a structural schema node may carry (upstream's `Structural` type): anything else in
/// an `openAPIV3Schema` is not published.
const STRUCTURAL_KEYS: &[&str] = &[
    "description",
    "type",
    "title",
    "default",
    "nullable",
    "format",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// Extensions upstream only emits when true.
const TRUE_ONLY: &[&str] = &[
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
];

/// The definition name of a custom kind: `com.example.v1.Widget` for `example.com/v1 Widget`
/// (upstream's `ToRESTFriendlyName` of `example.com/v1.Widget`).
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let mut reversed: Vec<&str> = group.split('.').filter(|s| !s.is_empty()).collect();
    reversed.reverse();
    let mut parts = reversed;
    parts.push(version);
    parts.push(kind);
    parts.join(".")
}

/// The published definitions of one custom resource version: (name, v3 schema, v2 schema),
/// the kind first, then its list.
pub fn definitions(res: &ResourceInfo, custom: &CustomVersion) -> Vec<(String, Value, Value)> {
    let name = definition_name(&res.group, &res.version, &res.kind);
    let mut out = vec![(
        name.clone(),
        kind_schema(res, custom.schema.as_ref(), false),
        kind_schema(res, custom.schema.as_ref(), true),
    )];
    if !res.list_kind.is_empty() {
        let list_name = definition_name(&res.group, &res.version, &res.list_kind);
        out.push((
            list_name,
            list_schema(res, &name, false),
            list_schema(res, &name, true),
        ));
    }
    out
}

fn gvk(res: &ResourceInfo, kind: &str) -> Value {
    json!([{"group": res.group, "kind": kind, "version": res.version}])
}

/// A reference with a description: `allOf`-wrapped in v3 (siblings of `$ref` are ignored
/// there), a plain `$ref` with the description beside it in v2.
fn described_ref(name: &str, description: &str, v2: bool) -> Value {
    if v2 {
        json!({"$ref": format!("{V2_REF_PREFIX}{name}"), "description": description})
    } else {
        json!({"allOf": [{"$ref": format!("{REF_PREFIX}{name}")}], "description": description})
    }
}

fn kind_schema(res: &ResourceInfo, schema: Option<&Value>, v2: bool) -> Value {
    let root_preserves = schema.is_some_and(|s| s["x-kubernetes-preserve-unknown-fields"] == true);
    let mut out = match schema {
        // No schema (or, for kubectl's v2 models, one that keeps unknown fields): a bare
        // object, as upstream — properties would make kubectl refuse everything else.
        Some(s) if !(v2 && root_preserves) => {
            let mut s = structural(s);
            unfold(&mut s);
            if v2 {
                to_v2(&mut s);
            }
            add_embedded(&mut s, v2);
            if let Some(o) = s.as_object_mut() {
                let props = o
                    .entry("properties")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(props) = props.as_object_mut() {
                    props.insert(
                        "apiVersion".into(),
                        json!({"description": API_VERSION_DOC, "type": "string"}),
                    );
                    props.insert(
                        "kind".into(),
                        json!({"description": KIND_DOC, "type": "string"}),
                    );
                    props.insert(
                        "metadata".into(),
                        described_ref(OBJECT_META, METADATA_DOC, v2),
                    );
                }
            }
            s
        }
        _ => json!({"type": "object"}),
    };
    out["x-kubernetes-group-version-kind"] = gvk(res, &res.kind);
    out
}

fn list_schema(res: &ResourceInfo, item: &str, v2: bool) -> Value {
    let prefix = if v2 { V2_REF_PREFIX } else { REF_PREFIX };
    json!({
        "description": format!("{} is a list of {}", res.list_kind, res.kind),
        "properties": {
            "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
            "items": {
                "description": format!(
                    "List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
                    res.plural
                ),
                "items": {"$ref": format!("{prefix}{item}")},
                "type": "array",
            },
            "kind": {"description": KIND_DOC, "type": "string"},
            "metadata": described_ref(LIST_META, LIST_METADATA_DOC, v2),
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": gvk(res, &res.list_kind),
    })
}

/// Child schemas of a node (properties' values, items, additionalProperties, junctors).
fn for_each_child(o: &mut Map<String, Value>, f: &mut dyn FnMut(&mut Value)) {
    if let Some(Value::Object(props)) = o.get_mut("properties") {
        props.values_mut().for_each(&mut *f);
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child @ Value::Object(_)) = o.get_mut(key) {
            f(child);
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(list)) = o.get_mut(key) {
            list.iter_mut().for_each(&mut *f);
        }
    }
}

/// Keeps what a structural schema publishes (`ToKubeOpenAPI`).
fn structural(schema: &Value) -> Value {
    let Some(o) = schema.as_object() else {
        return schema.clone();
    };
    let mut out: Map<String, Value> = o
        .iter()
        .filter(|(k, v)| {
            STRUCTURAL_KEYS.contains(&k.as_str())
                && !(TRUE_ONLY.contains(&k.as_str()) && **v != true)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for_each_child(&mut out, &mut |child| *child = structural(child));
    Value::Object(out)
}

/// Whether a list of schemas is exactly `[{type: integer}, {type: string}]`.
fn is_int_or_string_pair(list: Option<&Value>) -> bool {
    list == Some(&json!([{"type": "integer"}, {"type": "string"}]))
}

/// Upstream's `Unfold`: an int-or-string node spells out `anyOf: [integer, string]`, or, when
/// it has an `anyOf` of its own, puts that pair first in `allOf` (unless already there).
fn unfold(schema: &mut Value) {
    let Some(o) = schema.as_object_mut() else {
        return;
    };
    let first_all_of_is_pair = o
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|all| all.first())
        .is_some_and(|first| is_int_or_string_pair(first.get("anyOf")));
    if o.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        && !is_int_or_string_pair(o.get("anyOf"))
        && !first_all_of_is_pair
    {
        let pair = json!([{"type": "integer"}, {"type": "string"}]);
        if o.contains_key("anyOf") {
            let mut all = vec![json!({ "anyOf": pair })];
            if let Some(Value::Array(rest)) = o.remove("allOf") {
                all.extend(rest);
            }
            o.insert("allOf".into(), Value::Array(all));
        } else {
            o.insert("anyOf".into(), pair);
        }
    }
    for_each_child(o, &mut unfold);
}

/// Upstream's `addEmbeddedProperties`: embedded resources describe `apiVersion` and `kind`,
/// refer to ObjectMeta, and require both type fields (not in v2 when unknown fields are kept).
fn add_embedded(schema: &mut Value, v2: bool) {
    let Some(o) = schema.as_object_mut() else {
        return;
    };
    for_each_child(o, &mut |c| add_embedded(c, v2));
    if v2 && o.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    if o.get("x-kubernetes-embedded-resource") != Some(&Value::Bool(true)) {
        return;
    }
    let props = o
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(props) = props.as_object_mut() {
        props.insert(
            "apiVersion".into(),
            json!({"description": EMBEDDED_API_VERSION_DOC, "type": "string"}),
        );
        props.insert(
            "kind".into(),
            json!({"description": EMBEDDED_KIND_DOC, "type": "string"}),
        );
        props.insert(
            "metadata".into(),
            described_ref(OBJECT_META, METADATA_DOC, v2),
        );
    }
    let required = o
        .entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(required) = required.as_array_mut() {
        for name in ["kind", "apiVersion"] {
            if !required.iter().any(|r| r == name) {
                required.push(json!(name));
            }
        }
    }
}

/// Upstream's `ToStructuralOpenAPIV2`, applied top-down like its visitor.
fn to_v2(schema: &mut Value) {
    let Some(o) = schema.as_object_mut() else {
        return;
    };
    for key in ["allOf", "oneOf", "anyOf", "not"] {
        o.remove(key);
    }
    let is_true = |o: &Map<String, Value>, k: &str| o.get(k) == Some(&Value::Bool(true));
    if is_true(o, "nullable") {
        o.remove("type");
        o.remove("nullable");
        o.remove("items");
        o.remove("properties");
    }
    let preserves = is_true(o, "x-kubernetes-preserve-unknown-fields");
    if preserves {
        o.remove("items");
        o.remove("properties");
    }
    if !o.contains_key("items") && o.get("type").and_then(Value::as_str) == Some("array") {
        o.remove("type");
    }
    if preserves && o.get("type").and_then(Value::as_str) == Some("object") {
        o.remove("type");
    }
    // Nullable properties are not required in v2 (kubectl would demand a value).
    let nullable_props: Vec<String> = match o.get("properties") {
        Some(Value::Object(props)) => props
            .iter()
            .filter(|(_, p)| p["nullable"] == true)
            .map(|(k, _)| k.clone())
            .collect(),
        _ => Vec::new(),
    };
    let nullable_additional = o
        .get("additionalProperties")
        .is_some_and(|a| a["nullable"] == true);
    if nullable_additional {
        o.remove("required");
    } else if !nullable_props.is_empty()
        && let Some(Value::Array(required)) = o.get_mut("required")
    {
        required.retain(|r| {
            !r.as_str()
                .is_some_and(|r| nullable_props.iter().any(|p| p == r))
        });
        if required.is_empty() {
            o.remove("required");
        }
    }
    for_each_child(o, &mut to_v2);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget() -> (ResourceInfo, CustomVersion) {
        let custom = CustomVersion {
            crd_name: "widgets.example.com".into(),
            schema: Some(json!({
                "type": "object",
                "description": "A widget.",
                "example": {"dropped": true},
                "properties": {
                    "spec": {
                        "type": "object",
                        "description": "What the widget should be.",
                        "required": ["size", "note"],
                        "properties": {
                            "size": {"type": "integer", "description": "How big.", "minimum": 1},
                            "note": {"type": "string", "nullable": true},
                            "port": {"x-kubernetes-int-or-string": true},
                            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                            "blob": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}},
                            "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": false,
                                         "properties": {"spec": {"type": "object"}}},
                            "choice": {"type": "string", "oneOf": [{"enum": ["a"]}, {"enum": ["b"]}]}
                        }
                    }
                }
            })),
            ..Default::default()
        };
        let res = ResourceInfo {
            group: "example.com".into(),
            version: "v1".into(),
            kind: "Widget".into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            namespaced: true,
            list_kind: "WidgetList".into(),
            ..Default::default()
        };
        (res, custom)
    }

    #[test]
    fn names_reverse_the_group() {
        assert_eq!(
            definition_name("example.com", "v1", "Widget"),
            "com.example.v1.Widget"
        );
        assert_eq!(
            definition_name("stable.example.com", "v1beta1", "CronTabList"),
            "com.example.stable.v1beta1.CronTabList"
        );
    }

    #[test]
    fn v3_definition_is_the_schema_with_type_meta_and_object_meta() {
        let (res, custom) = widget();
        let defs = definitions(&res, &custom);
        assert_eq!(defs.len(), 2);
        let (name, v3, _) = &defs[0];
        assert_eq!(name, "com.example.v1.Widget");
        assert_eq!(
            v3["x-kubernetes-group-version-kind"],
            json!([{"group": "example.com", "kind": "Widget", "version": "v1"}])
        );
        assert_eq!(v3["description"], "A widget.");
        assert!(v3.get("example").is_none());
        assert_eq!(v3["properties"]["apiVersion"]["type"], "string");
        assert_eq!(v3["properties"]["kind"]["type"], "string");
        assert_eq!(
            v3["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        let spec = &v3["properties"]["spec"];
        assert_eq!(spec["properties"]["size"]["minimum"], 1);
        assert_eq!(spec["properties"]["note"]["nullable"], true);
        assert_eq!(spec["required"], json!(["size", "note"]));
        assert_eq!(
            spec["properties"]["port"]["anyOf"],
            json!([{"type": "integer"}, {"type": "string"}])
        );
        assert_eq!(
            spec["properties"]["choice"]["oneOf"][1]["enum"],
            json!(["b"])
        );
        let template = &spec["properties"]["template"];
        assert!(
            template
                .get("x-kubernetes-preserve-unknown-fields")
                .is_none()
        );
        assert_eq!(
            template["properties"]["kind"]["description"],
            EMBEDDED_KIND_DOC
        );
        assert_eq!(template["required"], json!(["kind", "apiVersion"]));
        assert_eq!(
            spec["properties"]["blob"]["properties"]["a"]["type"],
            "string"
        );

        let (list_name, list, _) = &defs[1];
        assert_eq!(list_name, "com.example.v1.WidgetList");
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/com.example.v1.Widget"
        );
        assert_eq!(list["required"], json!(["items"]));
        assert_eq!(
            list["x-kubernetes-group-version-kind"][0]["kind"],
            "WidgetList"
        );
    }

    #[test]
    fn v2_definition_has_upstreams_conversion_quirks() {
        let (res, custom) = widget();
        let defs = definitions(&res, &custom);
        let (_, _, v2) = &defs[0];
        assert_eq!(
            v2["properties"]["metadata"],
            json!({"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                   "description": METADATA_DOC})
        );
        let spec = &v2["properties"]["spec"];
        // Nullable: untyped, and no longer required.
        assert_eq!(spec["properties"]["note"], json!({}));
        assert_eq!(spec["required"], json!(["size"]));
        // Junctors are dropped; the int-or-string marker stays.
        assert_eq!(
            spec["properties"]["port"],
            json!({"x-kubernetes-int-or-string": true})
        );
        assert_eq!(spec["properties"]["choice"], json!({"type": "string"}));
        // Unknown fields kept: no type, no properties.
        assert_eq!(
            spec["properties"]["blob"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(v2["x-kubernetes-group-version-kind"][0]["kind"], "Widget");
        let (_, _, list) = &defs[1];
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            "#/definitions/com.example.v1.Widget"
        );
    }

    #[test]
    fn int_or_string_unfolds_like_upstream() {
        let pair = json!([{"type": "integer"}, {"type": "string"}]);
        let mut s = json!({"properties": {
            "plain": {"x-kubernetes-int-or-string": true},
            "spelled": {"x-kubernetes-int-or-string": true, "anyOf": pair},
            "own": {"x-kubernetes-int-or-string": true, "anyOf": [{"minimum": 42.0}]},
            "both": {"x-kubernetes-int-or-string": true, "anyOf": [{"minimum": 42.0}],
                     "allOf": [{"minimum": 42.0}]}
        }});
        unfold(&mut s);
        let p = &s["properties"];
        assert_eq!(p["plain"]["anyOf"], pair);
        assert!(p["spelled"].get("allOf").is_none());
        assert_eq!(p["own"]["allOf"], json!([{"anyOf": pair}]));
        assert_eq!(p["own"]["anyOf"], json!([{"minimum": 42.0}]));
        assert_eq!(
            p["both"]["allOf"],
            json!([{"anyOf": pair}, {"minimum": 42.0}])
        );
    }

    #[test]
    fn schemaless_and_open_roots_are_bare_objects() {
        let (res, mut custom) = widget();
        custom.schema =
            Some(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        let defs = definitions(&res, &custom);
        assert_eq!(
            defs[0].2,
            json!({"type": "object", "x-kubernetes-group-version-kind": [
                {"group": "example.com", "kind": "Widget", "version": "v1"}]})
        );
        // v3 still describes the type and object metadata.
        assert_eq!(defs[0].1["properties"]["kind"]["type"], "string");
        custom.schema = None;
        let defs = definitions(&res, &custom);
        assert_eq!(defs[0].1, defs[0].2);
    }
}
