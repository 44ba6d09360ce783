//! The OpenAPI documents of a node: the v3 index and one v3 document per group-version
//! (kubectl ≥ 1.29 `explain`, `apply` validation), and swagger 2.0 as JSON and as gnostic
//! protobuf (kubectl ≤ 1.28, Argo CD).
//!
//! `build` takes a snapshot of the served built-in resources and copies the schemas they
//! reach; the documents themselves are rendered on first request, so building a server
//! (and every test that builds one) stays cheap.

mod custom;
mod gnostic;
mod paths;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use beemesh_translator::catalog::{Catalog, REF_PREFIX};
use beemesh_translator::{Registry, ResourceInfo};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use paths::PathItem;

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const APIEXTENSIONS: &str = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.";
/// What `/openapi/v2` reports as the API version.
const V2_INFO_VERSION: &str = "v1.33.1";

/// The Content-Type of a protobuf `/openapi/v2` answer. Clients ask for
/// `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, but `@` is not a valid
/// media-type character and client-go (kubectl ≤ 1.28, Argo CD) fails on it in a response
/// ("mime: unexpected content after media subtype"); upstream answers with this form.
pub const V2_PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Whether an Accept header asks `/openapi/v2` for protobuf (either spelling of the type).
pub fn v2_wants_protobuf(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let media = media.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case("application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
            || media.eq_ignore_ascii_case(V2_PROTOBUF_CONTENT_TYPE)
    })
}

/// One group-version's operations, e.g. key `apis/apps/v1`.
struct GroupVersion {
    key: String,
    tag: String,
    paths: Vec<PathItem>,
}

/// A rendered v3 document and the hash clients put in `?hash=`.
struct V3Doc {
    json: Vec<u8>,
    hash: String,
}

/// The OpenAPI documents of the served resources, built-in and custom. Immutable once built;
/// [`LiveOpenApi`] swaps in a new one when the registry's custom resources change.
pub struct OpenApi {
    group_versions: Vec<GroupVersion>,
    /// Every schema a document can reach, in upstream's v3 shape.
    schemas: BTreeMap<String, Value>,
    /// Swagger 2.0 forms that are not a mechanical rewrite of the v3 schema (custom
    /// resources: upstream's `ToStructuralOpenAPIV2`).
    v2_definitions: BTreeMap<String, Value>,
    v3: OnceLock<(Value, BTreeMap<String, V3Doc>)>,
    v2_json: OnceLock<Vec<u8>>,
    v2_protobuf: OnceLock<Vec<u8>>,
}

impl OpenApi {
    /// Snapshots the served resources: built-ins with a catalog schema, and every custom
    /// resource version with its definitions (`com.example.v1.Widget`, `...WidgetList`).
    pub fn build(registry: &Registry, catalog: &Catalog) -> OpenApi {
        let mut extra = BTreeMap::new();
        let mut v2_definitions = BTreeMap::new();
        for r in registry.all() {
            if let Some(c) = &r.custom {
                for (name, v3, v2) in custom::definitions(&r, c) {
                    extra.insert(name.clone(), v3);
                    v2_definitions.insert(name, v2);
                }
            }
        }
        let lookup = |name: &str| extra.get(name).or_else(|| catalog.schema(name));
        let mut group_versions = Vec::new();
        for group in crate::discovery::discovery_groups(registry) {
            for version in &group.versions {
                let resources: Vec<Arc<ResourceInfo>> = registry
                    .resources_in(&group.name, version)
                    .into_iter()
                    .map(|r| match &r.custom {
                        // Custom resources are published under upstream's definition name,
                        // whatever the registry entry says.
                        Some(_) => {
                            let name = custom::definition_name(&r.group, &r.version, &r.kind);
                            if r.definition == name {
                                r
                            } else {
                                Arc::new(ResourceInfo {
                                    definition: name,
                                    ..(*r).clone()
                                })
                            }
                        }
                        None => r,
                    })
                    .filter(|r| lookup(&r.definition).is_some())
                    .collect();
                if resources.is_empty() {
                    continue;
                }
                let key = paths::prefix(&group.name, version)
                    .trim_start_matches('/')
                    .to_string();
                group_versions.push(GroupVersion {
                    key,
                    tag: paths::tag(&group.name, version),
                    paths: paths::group_version_paths(catalog, &group.name, version, &resources),
                });
            }
        }
        let mut roots: Vec<String> = Vec::new();
        for gv in &group_versions {
            roots.extend(paths::referenced_definitions(&gv.paths));
        }
        let schemas = closure(&lookup, &roots)
            .into_iter()
            .filter_map(|name| {
                let schema = lookup(&name)?;
                Some((name.clone(), doc_shape(&name, schema)))
            })
            .collect();
        OpenApi {
            group_versions,
            schemas,
            v2_definitions,
            v3: OnceLock::new(),
            v2_json: OnceLock::new(),
            v2_protobuf: OnceLock::new(),
        }
    }

    /// `/openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}, …}}`.
    pub fn v3_index(&self) -> &Value {
        &self.v3().0
    }

    /// The document of `api/v1` or `apis/<group>/<version>`, with its hash (upper-case hex
    /// SHA-512, as upstream).
    pub fn v3_group_version(&self, path: &str) -> Option<(&[u8], &str)> {
        let path = path.trim_matches('/');
        self.v3()
            .1
            .get(path)
            .map(|d| (d.json.as_slice(), d.hash.as_str()))
    }

    /// `/openapi/v2` as JSON.
    pub fn v2_json(&self) -> &[u8] {
        self.v2_json
            .get_or_init(|| serde_json::to_vec(&self.v2_document()).unwrap_or_default())
    }

    /// `/openapi/v2` as gnostic `openapi.v2.Document` protobuf.
    pub fn v2_protobuf(&self) -> &[u8] {
        self.v2_protobuf
            .get_or_init(|| gnostic::encode_document(&self.v2_document()))
    }

    fn v3(&self) -> &(Value, BTreeMap<String, V3Doc>) {
        self.v3.get_or_init(|| {
            let mut docs = BTreeMap::new();
            let mut index = Map::new();
            for gv in &self.group_versions {
                let doc = self.v3_document(gv);
                let json = serde_json::to_vec(&doc).unwrap_or_default();
                let hash = hex_upper(&Sha512::digest(&json));
                index.insert(
                    gv.key.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{}?hash={hash}", gv.key)}),
                );
                docs.insert(gv.key.clone(), V3Doc { json, hash });
            }
            (json!({ "paths": index }), docs)
        })
    }

    fn v3_document(&self, gv: &GroupVersion) -> Value {
        let roots = paths::referenced_definitions(&gv.paths);
        let mut components = Map::new();
        for name in closure(&|n: &str| self.schemas.get(n), &roots) {
            if let Some(schema) = self.schemas.get(&name) {
                components.insert(name, schema.clone());
            }
        }
        json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": paths::render_v3(&gv.paths, &gv.tag, REF_PREFIX),
            "components": {
                "schemas": components,
                "securitySchemes": {"BearerToken": bearer_token()},
            },
            "security": [{"BearerToken": []}],
        })
    }

    fn v2_document(&self) -> Value {
        let mut paths = Map::new();
        for gv in &self.group_versions {
            paths::render_v2(&gv.paths, &gv.tag, &mut paths);
        }
        let definitions: Map<String, Value> = self
            .schemas
            .iter()
            .map(|(name, schema)| {
                let v2 = match self.v2_definitions.get(name) {
                    Some(v2) => v2.clone(),
                    None => v2_shape(name, schema),
                };
                (name.clone(), v2)
            })
            .collect();
        json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": V2_INFO_VERSION},
            "paths": paths,
            "definitions": definitions,
            "securityDefinitions": {"BearerToken": bearer_token()},
            "security": [{"BearerToken": []}],
        })
    }
}

/// The documents of a node whose custom resources come and go: rebuilt (lazily, on the
/// next request) once the registry's set of custom resource versions differs from the one
/// the current documents describe. A read is a generation compare and an `Arc` clone.
pub struct LiveOpenApi {
    registry: Arc<Registry>,
    catalog: &'static Catalog,
    current: RwLock<Snapshot>,
}

struct Snapshot {
    /// The registry generation this snapshot was last checked against.
    generation: u64,
    /// The custom resource versions it describes.
    custom: Vec<Arc<ResourceInfo>>,
    api: Arc<OpenApi>,
}

/// The custom resource versions of a registry, in a stable order.
fn custom_resources(registry: &Registry) -> Vec<Arc<ResourceInfo>> {
    registry
        .all()
        .into_iter()
        .filter(|r| r.custom.is_some())
        .collect()
}

impl LiveOpenApi {
    pub fn new(registry: Arc<Registry>, catalog: &'static Catalog) -> LiveOpenApi {
        let generation = registry.generation();
        let custom = custom_resources(&registry);
        let api = Arc::new(OpenApi::build(&registry, catalog));
        LiveOpenApi {
            registry,
            catalog,
            current: RwLock::new(Snapshot {
                generation,
                custom,
                api,
            }),
        }
    }

    /// The documents describing the registry as it is now.
    pub fn current(&self) -> Arc<OpenApi> {
        let generation = self.registry.generation();
        {
            let snap = self.current.read();
            if snap.generation == generation {
                return snap.api.clone();
            }
        }
        let mut snap = self.current.write();
        if snap.generation == generation {
            return snap.api.clone();
        }
        let custom = custom_resources(&self.registry);
        // Re-inserting an unchanged CRD version bumps the generation but changes nothing.
        let unchanged = custom.len() == snap.custom.len()
            && custom.iter().zip(&snap.custom).all(|(a, b)| a == b);
        if !unchanged {
            snap.api = Arc::new(OpenApi::build(&self.registry, self.catalog));
            snap.custom = custom;
        }
        snap.generation = generation;
        snap.api.clone()
    }
}

fn bearer_token() -> Value {
    json!({
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    })
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Collects every `$ref` target inside a schema.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref")
                && let Some(name) = r.strip_prefix(REF_PREFIX)
            {
                out.push(name.to_string());
            }
            o.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// `roots` and every definition they reach.
fn closure<'a>(lookup: &impl Fn(&str) -> Option<&'a Value>, roots: &[String]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.to_vec();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = lookup(&name) {
            refs(schema, &mut todo);
        }
    }
    seen
}

/// Upstream's document shape of the types k8s-openapi describes differently (the catalog
/// keeps k8s-openapi's shape, which validation relies on).
fn doc_shape(name: &str, schema: &Value) -> Value {
    let description = schema.get("description").cloned().unwrap_or(Value::Null);
    let with_description = |mut v: Value| {
        if !description.is_null() {
            v["description"] = description.clone();
        }
        v
    };
    match name {
        INT_OR_STRING => with_description(json!({
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
        })),
        QUANTITY => with_description(json!({
            "oneOf": [{"type": "string"}, {"type": "number"}],
        })),
        _ => match name.strip_prefix(APIEXTENSIONS) {
            Some(
                "JSON"
                | "JSONSchemaPropsOrArray"
                | "JSONSchemaPropsOrBool"
                | "JSONSchemaPropsOrStringArray",
            ) => with_description(json!({})),
            _ => schema.clone(),
        },
    }
}

/// The swagger 2.0 form of a v3 component schema: `#/definitions/` refs, a lone
/// `allOf: [{$ref}]` back to `$ref` with siblings, no `oneOf`/`nullable`.
fn v2_shape(name: &str, schema: &Value) -> Value {
    let description = schema.get("description").cloned();
    match name {
        INT_OR_STRING => {
            let mut v = json!({"format": "int-or-string", "type": "string"});
            if let Some(d) = description {
                v["description"] = d;
            }
            v
        }
        QUANTITY => {
            let mut v = json!({"type": "string"});
            if let Some(d) = description {
                v["description"] = d;
            }
            v
        }
        _ => {
            let mut v = schema.clone();
            to_v2(&mut v);
            v
        }
    }
}

fn to_v2(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let lone_ref = match o.get("allOf") {
                Some(Value::Array(all)) if all.len() == 1 => all[0]
                    .get("$ref")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                _ => None,
            };
            if let Some(r) = lone_ref {
                o.remove("allOf");
                o.insert("$ref".into(), Value::String(r));
            }
            if let Some(Value::String(r)) = o.get_mut("$ref")
                && let Some(name) = r.strip_prefix(REF_PREFIX)
            {
                *r = format!("#/definitions/{name}");
            }
            o.remove("nullable");
            o.remove("oneOf");
            o.remove("anyOf");
            for (key, child) in o.iter_mut() {
                // Property maps hold names, not keywords: recurse into their values only.
                if key == "properties" {
                    if let Value::Object(props) = child {
                        props.values_mut().for_each(to_v2);
                    }
                } else {
                    to_v2(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(to_v2),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
