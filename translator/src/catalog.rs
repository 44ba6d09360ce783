//! The schemas and protobuf tables of every built-in Kubernetes 1.33 definition.
//!
//! Schemas come from k8s-openapi's schemars impls (OpenAPI v3 shape, refs to
//! `#/components/schemas/NAME`); schemars knows nothing of patch strategies, list types or
//! protobuf, so those come from `translator/data/k8s-1.33-meta.json`, generated from k8s-pb's
//! prost messages by `translator/gen/catalog.py`.

mod types_v1_33;

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// The generated extension and protobuf data (see `translator/gen/catalog.py`).
const META_JSON: &str = include_str!("../data/k8s-1.33-meta.json");

/// Prefix of every schema reference in catalog schemas.
pub const REF_PREFIX: &str = "#/components/schemas/";

/// Where a built-in kind lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindScope {
    Namespaced,
    Cluster,
    /// Only spoken by a subresource (`Scale`, `Eviction`, `TokenRequest`, `Status`).
    Subresource,
}

/// A top-level kind k8s-openapi knows (including alpha/beta versions a server may not serve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinKind {
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The URL segment (`deployments`); empty for discovery kinds such as `APIGroup`.
    pub plural: String,
    pub scope: KindScope,
    /// Empty when the kind cannot be listed.
    pub list_kind: String,
    pub definition: String,
}

/// How one protobuf field is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoKind {
    String,
    Bool,
    Int32,
    Int64,
    Double,
    Float,
    Bytes,
    /// A nested message, by definition name (`io.k8s.api.core.v1.PodSpec`).
    Message(String),
    /// `map<key, value>`, encoded as repeated entries {key = 1, value = 2}.
    Map(Box<ProtoKind>, Box<ProtoKind>),
}

/// One field of a protobuf message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoField {
    pub tag: u32,
    /// The JSON name; empty when the message is inlined into its parent's JSON
    /// (Go `json:",inline"`, e.g. `Volume.volumeSource`).
    pub json_name: String,
    pub kind: ProtoKind,
    pub repeated: bool,
}

/// The protobuf layout of one definition (upstream `generated.proto`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoMessage {
    pub definition: String,
    /// Sorted by tag.
    pub fields: Vec<ProtoField>,
}

impl ProtoMessage {
    pub fn field(&self, tag: u32) -> Option<&ProtoField> {
        self.fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .map(|i| &self.fields[i])
    }
}

/// All built-in schemas, kinds and protobuf tables. Immutable; built once.
#[derive(Debug)]
pub struct Catalog {
    schemas: BTreeMap<String, Value>,
    kinds: Vec<BuiltinKind>,
    by_gvk: HashMap<(String, String, String), String>,
    proto: HashMap<String, ProtoMessage>,
}

impl Catalog {
    /// The catalog of Kubernetes 1.33, built on first use (tens of milliseconds).
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(build_builtin)
    }

    pub fn schema(&self, name: &str) -> Option<&Value> {
        self.schemas.get(name)
    }

    /// Every definition, sorted by name.
    pub fn schemas(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.schemas.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The definition a property refers to, through `$ref` or `allOf[0].$ref`; None when the
    /// property is inline (no reference).
    pub fn deref<'a>(&'a self, prop: &'a Value) -> Option<&'a Value> {
        let name = ref_name(prop)?;
        self.schemas.get(name)
    }

    /// `io.k8s.api.apps.v1.Deployment` for (`apps`, `v1`, `Deployment`); list kinds too.
    pub fn definition_for_kind(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.by_gvk
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(String::as_str)
    }

    pub fn proto_message(&self, definition: &str) -> Option<&ProtoMessage> {
        self.proto.get(definition)
    }

    /// Every top-level kind k8s-openapi 1.33 has, served or not.
    pub fn kinds(&self) -> &[BuiltinKind] {
        &self.kinds
    }
}

/// The definition name a property refers to (`$ref` or `allOf[0].$ref`).
pub fn ref_name(prop: &Value) -> Option<&str> {
    let reference = prop.get("$ref").or_else(|| {
        prop.get("allOf")
            .and_then(|a| a.get(0))
            .and_then(|r| r.get("$ref"))
    })?;
    reference.as_str()?.strip_prefix(REF_PREFIX)
}

fn build_builtin() -> Catalog {
    // The data file is generated and compiled in: failing to parse it is a build defect that
    // every test catches, not a client-input path.
    let meta: Value = serde_json::from_str(META_JSON).expect("k8s-1.33-meta.json is valid JSON");
    let empty = Map::new();
    let definitions = meta["definitions"].as_object().unwrap_or(&empty);

    let mut generator = SchemaSettings::openapi3().into_generator();
    types_v1_33::register_all(&mut generator);
    let mut schemas: BTreeMap<String, Value> =
        generator.take_definitions(true).into_iter().collect();

    for (name, entry) in definitions {
        let Some(schema) = schemas.get_mut(name).and_then(Value::as_object_mut) else {
            continue;
        };
        if let Some(dx) = entry.get("dx").and_then(Value::as_object) {
            for (k, v) in dx {
                schema.insert(k.clone(), v.clone());
            }
        }
        if let (Some(fields), Some(Value::Object(props))) = (
            entry.get("x").and_then(Value::as_object),
            schema.get_mut("properties"),
        ) {
            for (field, ext) in fields {
                let (Some(prop), Some(ext)) = (
                    props.get_mut(field).and_then(Value::as_object_mut),
                    ext.as_object(),
                ) else {
                    continue;
                };
                for (k, v) in ext {
                    prop.insert(k.clone(), v.clone());
                }
            }
        }
    }

    let kinds = parse_kinds(&meta);
    let mut by_gvk = HashMap::new();
    let mut gvks: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut group_versions: Vec<(String, String)> = Vec::new();
    for k in &kinds {
        by_gvk.insert(
            (k.group.clone(), k.version.clone(), k.kind.clone()),
            k.definition.clone(),
        );
        gvks.entry(k.definition.clone())
            .or_default()
            .push(json!({"group": k.group, "kind": k.kind, "version": k.version}));
        if !k.plural.is_empty() && !group_versions.contains(&(k.group.clone(), k.version.clone())) {
            group_versions.push((k.group.clone(), k.version.clone()));
        }
        if !k.list_kind.is_empty() {
            let list_def = match k.definition.rsplit_once('.') {
                Some((prefix, _)) => format!("{prefix}.{}", k.list_kind),
                None => k.list_kind.clone(),
            };
            schemas
                .entry(list_def.clone())
                .or_insert_with(|| list_schema(k));
            by_gvk.insert(
                (k.group.clone(), k.version.clone(), k.list_kind.clone()),
                list_def.clone(),
            );
            gvks.entry(list_def)
                .or_default()
                .push(json!({"group": k.group, "kind": k.list_kind, "version": k.version}));
        }
    }
    // DeleteOptions and WatchEvent are spoken by every group version, as upstream lists them.
    group_versions.sort();
    for (name, kind) in [
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
            "DeleteOptions",
        ),
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
            "WatchEvent",
        ),
    ] {
        let list = gvks.entry(name.to_string()).or_default();
        for (group, version) in &group_versions {
            list.push(json!({"group": group, "kind": kind, "version": version}));
        }
        for (group, version) in &group_versions {
            by_gvk
                .entry((group.clone(), version.clone(), kind.to_string()))
                .or_insert_with(|| name.to_string());
        }
    }
    for (name, list) in gvks {
        if let Some(schema) = schemas.get_mut(&name).and_then(Value::as_object_mut) {
            schema.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
            // k8s-openapi makes `metadata` required on kinds; upstream never does.
            if let Some(Value::Array(required)) = schema.get_mut("required") {
                required.retain(|r| r != "metadata");
                if required.is_empty() {
                    schema.remove("required");
                }
            }
        }
    }
    for schema in schemas.values_mut() {
        normalise_refs(schema);
    }

    let proto = definitions
        .iter()
        .map(|(name, entry)| (name.clone(), parse_proto(name, entry)))
        .collect();

    Catalog {
        schemas,
        kinds,
        by_gvk,
        proto,
    }
}

fn parse_kinds(meta: &Value) -> Vec<BuiltinKind> {
    let text = |v: &Value, i: usize| v.get(i).and_then(Value::as_str).unwrap_or("").to_string();
    meta["resources"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| BuiltinKind {
            group: text(r, 0),
            version: text(r, 1),
            kind: text(r, 2),
            plural: text(r, 3),
            scope: match r.get(4).and_then(Value::as_str) {
                Some("Namespaced") => KindScope::Namespaced,
                Some("Subresource") => KindScope::Subresource,
                _ => KindScope::Cluster,
            },
            list_kind: text(r, 5),
            definition: text(r, 6),
        })
        .collect()
}

/// `XList`: k8s-openapi has one generic `List<T>` without a schema, upstream one per kind.
fn list_schema(k: &BuiltinKind) -> Value {
    json!({
        "description": format!("{} is a list of {} objects.", k.list_kind, k.kind),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string"
            },
            "items": {
                "description": format!("List of {} objects.", k.kind),
                "type": "array",
                "items": {"$ref": format!("{REF_PREFIX}{}", k.definition)}
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string"
            },
            "metadata": {
                "allOf": [{"$ref": format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")}],
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
            }
        },
        "required": ["items"]
    })
}

/// A `$ref` with siblings becomes upstream's `{"allOf": [{"$ref": ...}], ...siblings}`.
fn normalise_refs(schema: &mut Value) {
    match schema {
        Value::Object(obj) => {
            if obj.len() > 1
                && obj.get("$ref").is_some_and(Value::is_string)
                && let Some(reference) = obj.remove("$ref")
            {
                obj.insert("allOf".into(), json!([{ "$ref": reference }]));
            }
            for (key, v) in obj.iter_mut() {
                // A property map holds names (JSONSchemaProps has a property named `$ref`),
                // not keywords: only its values are schemas.
                match (key.as_str(), v) {
                    ("properties", Value::Object(props)) => {
                        props.values_mut().for_each(normalise_refs)
                    }
                    (_, v) => normalise_refs(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise_refs),
        _ => {}
    }
}

fn parse_proto(name: &str, entry: &Value) -> ProtoMessage {
    let mut fields: Vec<ProtoField> = entry
        .get("pb")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| {
            Some(ProtoField {
                tag: u32::try_from(f.get(0)?.as_u64()?).ok()?,
                json_name: f.get(1)?.as_str()?.to_string(),
                kind: parse_proto_kind(f.get(2)?.as_str()?)?,
                repeated: f.get(3)?.as_u64()? == 1,
            })
        })
        .collect();
    fields.sort_by_key(|f| f.tag);
    ProtoMessage {
        definition: name.to_string(),
        fields,
    }
}

fn parse_proto_kind(text: &str) -> Option<ProtoKind> {
    Some(match text {
        "string" => ProtoKind::String,
        "bool" => ProtoKind::Bool,
        "int32" => ProtoKind::Int32,
        "int64" => ProtoKind::Int64,
        "double" => ProtoKind::Double,
        "float" => ProtoKind::Float,
        "bytes" => ProtoKind::Bytes,
        _ => {
            if let Some(def) = text.strip_prefix("m:") {
                ProtoKind::Message(def.to_string())
            } else {
                let rest = text.strip_prefix("map:")?;
                let (key, value) = rest.split_once(':')?;
                ProtoKind::Map(
                    Box::new(parse_proto_kind(key)?),
                    Box::new(parse_proto_kind(value)?),
                )
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop<'a>(c: &'a Catalog, def: &str, field: &str) -> &'a Value {
        &c.schema(def).unwrap()["properties"][field]
    }

    #[test]
    fn deployment_schema_carries_gvk_and_resolves_to_containers() {
        let c = Catalog::builtin();
        let dep = c.schema("io.k8s.api.apps.v1.Deployment").unwrap();
        assert_eq!(
            dep["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        assert!(dep.get("required").is_none());
        // explain deployment.spec.template.spec.containers
        let spec = c.deref(&dep["properties"]["spec"]).unwrap();
        let template = c.deref(&spec["properties"]["template"]).unwrap();
        let pod_spec = c.deref(&template["properties"]["spec"]).unwrap();
        let containers = &pod_spec["properties"]["containers"];
        assert_eq!(containers["type"], "array");
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        let container = c.deref(&containers["items"]).unwrap();
        assert_eq!(container["properties"]["image"]["type"], "string");
    }

    #[test]
    fn refs_with_siblings_use_upstream_all_of_shape() {
        let c = Catalog::builtin();
        let metadata = prop(c, "io.k8s.api.core.v1.Pod", "metadata");
        assert!(metadata.get("$ref").is_none());
        assert_eq!(
            metadata["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert!(metadata["description"].is_string());
        for (name, schema) in c.schemas() {
            let text = schema.to_string();
            assert!(!text.contains("\"$defs\""), "{name} refers to $defs");
        }
    }

    #[test]
    fn inlined_and_atomic_extensions_are_present() {
        let c = Catalog::builtin();
        // EphemeralContainer inlines EphemeralContainerCommon: its env still merges by name.
        let env = prop(c, "io.k8s.api.core.v1.EphemeralContainer", "env");
        assert_eq!(env["x-kubernetes-patch-merge-key"], "name");
        let selector = c
            .schema("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")
            .unwrap();
        assert_eq!(selector["x-kubernetes-map-type"], "atomic");
        let finalizers = prop(
            c,
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "finalizers",
        );
        assert_eq!(finalizers["x-kubernetes-patch-strategy"], "merge");
        let owners = prop(
            c,
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "ownerReferences",
        );
        assert_eq!(owners["x-kubernetes-patch-merge-key"], "uid");
    }

    #[test]
    fn property_names_that_look_like_keywords_survive() {
        let c = Catalog::builtin();
        let props = &c
            .schema("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps")
            .unwrap()["properties"];
        assert_eq!(props["$ref"]["type"], "string");
        assert!(props.get("allOf").is_some());
        assert!(props.get("x-kubernetes-validations").is_some());
    }

    #[test]
    fn every_ref_resolves() {
        let c = Catalog::builtin();
        fn walk(c: &Catalog, v: &Value, from: &str) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(r)) = o.get("$ref") {
                        let name = r.strip_prefix(REF_PREFIX).unwrap();
                        assert!(c.schema(name).is_some(), "{from} refers to missing {name}");
                    }
                    o.values().for_each(|x| walk(c, x, from));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(c, x, from)),
                _ => {}
            }
        }
        for (name, schema) in c.schemas() {
            walk(c, schema, name);
        }
    }

    #[test]
    fn kinds_and_lists_map_to_definitions() {
        let c = Catalog::builtin();
        assert_eq!(
            c.definition_for_kind("", "v1", "ConfigMap"),
            Some("io.k8s.api.core.v1.ConfigMap")
        );
        assert_eq!(
            c.definition_for_kind("autoscaling", "v2", "HorizontalPodAutoscaler"),
            Some("io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler")
        );
        assert_eq!(
            c.definition_for_kind("apps", "v1", "DeploymentList"),
            Some("io.k8s.api.apps.v1.DeploymentList")
        );
        let list = c.schema("io.k8s.api.apps.v1.DeploymentList").unwrap();
        assert_eq!(
            list["x-kubernetes-group-version-kind"][0]["kind"],
            "DeploymentList"
        );
        assert_eq!(
            c.deref(&list["properties"]["items"]["items"]).unwrap()["x-kubernetes-group-version-kind"]
                [0]["kind"],
            "Deployment"
        );
        let scale = c.kinds().iter().find(|k| k.kind == "Scale").unwrap();
        assert_eq!(scale.scope, KindScope::Subresource);
        assert_eq!(c.definition_for_kind("apps", "v1", "Deployment2"), None);
    }

    #[test]
    fn protobuf_tables_name_json_fields() {
        let c = Catalog::builtin();
        let vol = c.proto_message("io.k8s.api.core.v1.Volume").unwrap();
        assert_eq!(vol.field(1).unwrap().json_name, "name");
        assert_eq!(
            vol.field(2).unwrap().json_name,
            "",
            "volumeSource is inlined"
        );
        let src = c.proto_message("io.k8s.api.core.v1.VolumeSource").unwrap();
        assert_eq!(src.field(16).unwrap().json_name, "downwardAPI");
        let aws = c
            .proto_message("io.k8s.api.core.v1.AWSElasticBlockStoreVolumeSource")
            .unwrap();
        assert_eq!(aws.field(1).unwrap().json_name, "volumeID");
        let secret = c.proto_message("io.k8s.api.core.v1.Secret").unwrap();
        assert_eq!(
            secret.field(2).unwrap().kind,
            ProtoKind::Map(Box::new(ProtoKind::String), Box::new(ProtoKind::Bytes))
        );
        let spec = c.proto_message("io.k8s.api.core.v1.PodSpec").unwrap();
        let containers = spec
            .fields
            .iter()
            .find(|f| f.json_name == "containers")
            .unwrap();
        assert!(containers.repeated);
        assert_eq!(
            containers.kind,
            ProtoKind::Message("io.k8s.api.core.v1.Container".into())
        );
    }
}
