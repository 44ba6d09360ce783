//! Read access to OpenAPI v3 component schemas, kept behind a trait so the patch engines and
//! the validator can be tested with hand-written schemas and run against the built-in catalog.

use serde_json::Value;

/// The prefix of a component reference inside an OpenAPI v3 document.
const COMPONENT_PREFIX: &str = "#/components/schemas/";

/// A source of OpenAPI v3 component schemas (`io.k8s.api.apps.v1.Deployment` ...).
pub trait SchemaLookup {
    /// The component schema called `name`, if known.
    fn schema(&self, name: &str) -> Option<&Value>;

    /// The schema a property refers to, through `$ref` or `allOf[0].$ref`; `None` when the
    /// property refers to nothing (it is then its own schema).
    fn deref<'a>(&'a self, prop: &'a Value) -> Option<&'a Value> {
        let reference = prop.get("$ref").or_else(|| {
            prop.get("allOf")
                .and_then(|all| all.get(0))
                .and_then(|first| first.get("$ref"))
        })?;
        let name = reference.as_str()?.strip_prefix(COMPONENT_PREFIX)?;
        self.schema(name)
    }

    /// The schema that describes values of `prop`: the referenced one, or `prop` itself.
    fn resolve<'a>(&'a self, prop: &'a Value) -> &'a Value {
        self.deref(prop).unwrap_or(prop)
    }

    /// Whether these schemas describe Go structs (the built-in API), whose JSON decoding
    /// and `omitempty` encoding drop an empty optional string. Custom resources are
    /// stored as decoded, so their schemas say false.
    fn go_typed(&self) -> bool {
        false
    }
}

/// A lookup that knows no schemas: everything is treated as free-form.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSchemas;

impl SchemaLookup for NoSchemas {
    fn schema(&self, _name: &str) -> Option<&Value> {
        None
    }
}

/// Component schemas held in a map; used for tests and for CRD schemas.
#[derive(Debug, Default, Clone)]
pub struct SchemaMap(pub std::collections::BTreeMap<String, Value>);

impl SchemaMap {
    /// Builds the map from an object of `name -> schema` (the `components.schemas` shape).
    pub fn from_components(components: &Value) -> Self {
        let mut map = std::collections::BTreeMap::new();
        if let Some(obj) = components.as_object() {
            for (name, schema) in obj {
                map.insert(name.clone(), schema.clone());
            }
        }
        SchemaMap(map)
    }
}

impl SchemaLookup for SchemaMap {
    fn schema(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}

impl SchemaLookup for crate::catalog::Catalog {
    fn schema(&self, name: &str) -> Option<&Value> {
        crate::catalog::Catalog::schema(self, name)
    }
    fn deref<'a>(&'a self, prop: &'a Value) -> Option<&'a Value> {
        crate::catalog::Catalog::deref(self, prop)
    }
    fn go_typed(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deref_follows_direct_and_wrapped_references() {
        let schemas = SchemaMap::from_components(&json!({
            "a": {"type": "object", "properties": {"x": {"type": "string"}}}
        }));
        let direct = json!({"$ref": "#/components/schemas/a"});
        let wrapped = json!({"allOf": [{"$ref": "#/components/schemas/a"}], "description": "d"});
        let plain = json!({"type": "string"});
        assert_eq!(schemas.deref(&direct).unwrap()["type"], "object");
        assert_eq!(schemas.deref(&wrapped).unwrap()["type"], "object");
        assert!(schemas.deref(&plain).is_none());
        assert_eq!(schemas.resolve(&plain)["type"], "string");
    }
}
