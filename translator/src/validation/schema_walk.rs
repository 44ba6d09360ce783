//! The decoding pass over an object against its OpenAPI schema, standing in for upstream's
//! strict JSON decoding into Go structs: unknown fields are collected (and pruned), values
//! of the wrong JSON type become the decoder's `cannot unmarshal` error, and the custom
//! decoders of Quantity, IntOrString, Time and `[]byte` check their syntax.

use base64::Engine;
use serde_json::{Map, Value};

use super::quantity::{canonical_quantity, parse_quantity};
use super::schema_lookup::SchemaLookup;

const REF_PREFIX: &str = "#/components/schemas/";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const TIME_LAYOUT: &str = "2006-01-02T15:04:05Z07:00";

/// What the walk found.
#[derive(Debug, Default)]
pub struct WalkOutcome {
    /// Paths of fields the schema does not know (`spec.template.spec.containers[0].x`).
    pub unknown_fields: Vec<String>,
    /// The first decoding error, worded as upstream's decoder words it.
    pub decode_error: Option<String>,
}

/// The definition name a property refers to (`$ref` or `allOf[0].$ref`).
fn ref_name(prop: &Value) -> Option<&str> {
    let reference = prop.get("$ref").or_else(|| {
        prop.get("allOf")
            .and_then(|a| a.get(0))
            .and_then(|r| r.get("$ref"))
    })?;
    reference.as_str()?.strip_prefix(REF_PREFIX)
}

/// `v1.DeploymentSpec` for `io.k8s.api.apps.v1.DeploymentSpec`: how Go names the type.
fn go_type_of_definition(definition: &str) -> String {
    let mut parts = definition.rsplit('.');
    let name = parts.next().unwrap_or(definition);
    match parts.next() {
        Some(package) => format!("{package}.{name}"),
        None => name.to_string(),
    }
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

/// Walks `value` against the schema of a kind and prunes what the decoder would drop.
pub struct SchemaWalker<'a, S: SchemaLookup + ?Sized> {
    schemas: &'a S,
    outcome: WalkOutcome,
}

impl<'a, S: SchemaLookup + ?Sized> SchemaWalker<'a, S> {
    pub fn new(schemas: &'a S) -> Self {
        SchemaWalker {
            schemas,
            outcome: WalkOutcome::default(),
        }
    }

    /// Walks a whole object whose definition is `definition`.
    pub fn walk_root(mut self, value: &mut Value, definition: &str, root: &Value) -> WalkOutcome {
        let root_type = definition
            .rsplit('.')
            .next()
            .unwrap_or(definition)
            .to_string();
        let mut ctx = Ctx {
            path: String::new(),
            go_path: String::new(),
            parent: root_type,
        };
        self.walk_struct(value, root, &mut ctx);
        self.outcome
    }

    fn type_error(&mut self, value: &Value, go_type: &str, ctx: &Ctx) {
        if self.outcome.decode_error.is_some() {
            return;
        }
        let shown = match value {
            Value::Number(n) if go_type.starts_with("int") || go_type.starts_with("uint") => {
                format!("number {n}")
            }
            other => json_kind(other).to_string(),
        };
        let target = if ctx.go_path.is_empty() {
            format!("Go value of type {go_type}")
        } else {
            format!(
                "Go struct field {}.{} of type {}",
                ctx.parent, ctx.go_path, go_type
            )
        };
        self.outcome.decode_error = Some(format!("json: cannot unmarshal {shown} into {target}"));
    }

    fn custom_error(&mut self, message: String) {
        if self.outcome.decode_error.is_none() {
            self.outcome.decode_error = Some(message);
        }
    }

    /// The Go type a property decodes into, for error messages.
    fn go_type(&self, prop: &Value) -> String {
        if let Some(name) = ref_name(prop) {
            return go_type_of_definition(name);
        }
        match prop.get("type").and_then(Value::as_str) {
            Some("integer") => match prop.get("format").and_then(Value::as_str) {
                Some("int32") => "int32".into(),
                _ => "int64".into(),
            },
            Some("number") => "float64".into(),
            Some("boolean") => "bool".into(),
            Some("string") => match prop.get("format").and_then(Value::as_str) {
                Some("byte") => "[]uint8".into(),
                _ => "string".into(),
            },
            Some("array") => format!(
                "[]{}",
                prop.get("items")
                    .map(|i| self.go_type(i))
                    .unwrap_or_default()
            ),
            Some("object") => match prop.get("additionalProperties") {
                Some(ap) if ap.is_object() => format!("map[string]{}", self.go_type(ap)),
                _ => "map[string]interface {}".into(),
            },
            _ => "interface {}".into(),
        }
    }

    /// Walks a value against a property schema (which may refer to a definition).
    fn walk_value(&mut self, value: &mut Value, prop: &Value, ctx: &mut Ctx) {
        if value.is_null() {
            return;
        }
        let definition = ref_name(prop);
        match definition {
            Some(QUANTITY) => return self.check_quantity(value),
            Some(INT_OR_STRING) => return self.check_int_or_string(value),
            _ => {}
        }
        let schema = self.schemas.resolve(prop);
        if !schema.is_object()
            || schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
            || schema.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true))
        {
            return;
        }
        if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            return self.check_int_or_string(value);
        }
        let go_type = self.go_type(prop);
        let ty = schema.get("type").and_then(Value::as_str);
        let has_properties = schema
            .get("properties")
            .is_some_and(|p| p.as_object().is_some_and(|m| !m.is_empty()));
        let additional = schema.get("additionalProperties").filter(|a| a.is_object());
        match ty {
            Some("object") | None if has_properties => {
                if !value.is_object() {
                    return self.type_error(value, &go_type, ctx);
                }
                let parent = match definition {
                    Some(name) => name.rsplit('.').next().unwrap_or(name).to_string(),
                    None => ctx.parent.clone(),
                };
                let saved = std::mem::replace(&mut ctx.parent, parent);
                self.walk_struct(value, schema, ctx);
                ctx.parent = saved;
            }
            Some("object") => {
                let Some(item_schema) = additional else {
                    return; // free-form object (RawExtension, FieldsV1, JSON)
                };
                let Value::Object(map) = value else {
                    return self.type_error(value, &go_type, ctx);
                };
                for (k, v) in map.iter_mut() {
                    if v.is_null() {
                        *v = zero_value(self.schemas.resolve(item_schema));
                        continue;
                    }
                    let mut inner = ctx.key(k);
                    self.walk_value(v, item_schema, &mut inner);
                }
            }
            Some("array") => {
                let Value::Array(items) = value else {
                    return self.type_error(value, &go_type, ctx);
                };
                let Some(item_schema) = schema.get("items") else {
                    return;
                };
                for (i, item) in items.iter_mut().enumerate() {
                    if item.is_null() {
                        *item = zero_value(self.schemas.resolve(item_schema));
                        continue;
                    }
                    let mut inner = ctx.index(i);
                    self.walk_value(item, item_schema, &mut inner);
                }
            }
            Some("string") => match value {
                Value::String(s) => {
                    let format = schema.get("format").and_then(Value::as_str);
                    self.check_string_format(s, format, definition);
                }
                _ => self.type_error(value, &go_type, ctx),
            },
            Some("integer") => self.check_integer(value, &go_type, ctx),
            Some("number") if !value.is_number() => self.type_error(value, &go_type, ctx),
            Some("boolean") if !value.is_boolean() => self.type_error(value, &go_type, ctx),
            _ => {}
        }
    }

    /// Walks the fields of an object against a schema with `properties`.
    fn walk_struct(&mut self, value: &mut Value, schema: &Value, ctx: &mut Ctx) {
        let Value::Object(map) = value else {
            return;
        };
        let empty = Map::new();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let additional = schema.get("additionalProperties").filter(|a| a.is_object());
        let mut unknown = Vec::new();
        for (k, v) in map.iter_mut() {
            let prop = match properties.get(k) {
                Some(p) => Some(p),
                None => additional,
            };
            let Some(prop) = prop else {
                self.outcome.unknown_fields.push(ctx.field(k).path);
                unknown.push(k.clone());
                continue;
            };
            if v.is_null() {
                continue;
            }
            let mut inner = ctx.field(k);
            self.walk_value(v, prop, &mut inner);
        }
        for k in &unknown {
            map.remove(k);
        }
        // A JSON null decodes to the Go zero value, which the encoder then omits.
        map.retain(|_, v| !v.is_null());
        if self.schemas.go_typed() {
            self.drop_empty_optional_strings(map, schema, properties);
        }
    }

    /// An explicit `""` in an optional (non-pointer) string field decodes to Go's zero
    /// value, which `omitempty` then leaves out: upstream never stores it. The same rule
    /// as the protobuf decoder's: required fields and the pointer fields whose empty
    /// value means something (`storageClassName: ""`) keep it.
    fn drop_empty_optional_strings(
        &self,
        map: &mut Map<String, Value>,
        schema: &Value,
        properties: &Map<String, Value>,
    ) {
        let required = |name: &str| {
            schema
                .get("required")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|f| f.as_str() == Some(name)))
        };
        map.retain(|name, value| {
            if value.as_str() != Some("") {
                return true;
            }
            let Some(prop) = properties.get(name) else {
                return true; // a map entry (additionalProperties), not a struct field
            };
            let plain_string = ref_name(prop).is_none()
                && prop.get("type").and_then(Value::as_str) == Some("string")
                && matches!(
                    prop.get("format").and_then(Value::as_str),
                    None | Some("byte")
                );
            !plain_string
                || required(name)
                || crate::protobuf::MEANINGFUL_EMPTY_STRINGS.contains(&name.as_str())
        });
    }

    fn check_integer(&mut self, value: &Value, go_type: &str, ctx: &Ctx) {
        let Value::Number(n) = value else {
            return self.type_error(value, go_type, ctx);
        };
        let fits = match (n.as_i64(), go_type) {
            (Some(i), "int32") => i32::try_from(i).is_ok(),
            (Some(_), _) => true,
            (None, _) => false,
        };
        if !fits {
            self.type_error(value, go_type, ctx);
        }
    }

    fn check_quantity(&mut self, value: &mut Value) {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                let kind = json_kind(other);
                return self.custom_error(format!(
                    "json: cannot unmarshal {kind} into Go value of type resource.Quantity"
                ));
            }
        };
        match parse_quantity(&text) {
            // Quantities are always serialised as strings, in canonical form (upstream
            // decodes them and prints them back: `0.1` reads back as `100m`).
            Ok(()) => {
                let canonical =
                    canonical_quantity(&text).unwrap_or_else(|| text.trim().to_string());
                *value = Value::String(canonical);
            }
            Err(message) => self.custom_error(message.to_string()),
        }
    }

    fn check_int_or_string(&mut self, value: &Value) {
        match value {
            Value::String(_) => {}
            Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => {}
            Value::Number(n) => self.custom_error(format!(
                "json: cannot unmarshal number {n} into Go value of type int32"
            )),
            other => self.custom_error(format!(
                "json: cannot unmarshal {} into Go value of type int32",
                json_kind(other)
            )),
        }
    }

    fn check_string_format(&mut self, s: &str, format: Option<&str>, definition: Option<&str>) {
        match format {
            Some("byte") => {
                let cleaned: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
                if let Err(e) = base64::engine::general_purpose::STANDARD.decode(cleaned.as_bytes())
                {
                    let at = match e {
                        base64::DecodeError::InvalidByte(offset, _) => offset,
                        base64::DecodeError::InvalidLastSymbol(offset, _) => offset,
                        _ => cleaned.len(),
                    };
                    self.custom_error(format!("illegal base64 data at input byte {at}"));
                }
            }
            Some("date-time") if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
                let layout = if definition.is_some_and(|d| d.ends_with("MicroTime")) {
                    "2006-01-02T15:04:05.000000Z07:00"
                } else {
                    TIME_LAYOUT
                };
                self.custom_error(format!(
                    "parsing time {} as {}: cannot parse {} as {}",
                    super::field::go_quote(s),
                    super::field::go_quote(layout),
                    super::field::go_quote(s),
                    super::field::go_quote("2006")
                ));
            }
            // metav1.MicroTime decodes with exactly six fractional digits
            // (`time.Parse(RFC3339Micro, …)`), which RFC 3339 alone does not require.
            Some("date-time") if definition.is_some_and(|d| d.ends_with("MicroTime")) => {
                if let Some((rest, expected)) = micro_time_mismatch(s) {
                    self.custom_error(format!(
                        "parsing time {} as {}: cannot parse {} as {}",
                        super::field::go_quote(s),
                        super::field::go_quote("2006-01-02T15:04:05.000000Z07:00"),
                        super::field::go_quote(rest),
                        super::field::go_quote(expected)
                    ));
                }
            }
            _ => {}
        }
    }
}

/// Where Go's `time.Parse(RFC3339Micro, s)` stops on an otherwise valid RFC 3339 time:
/// the unparsed rest and the layout element it expected.
fn micro_time_mismatch(s: &str) -> Option<(&str, &'static str)> {
    // "2006-01-02T15:04:05" is 19 bytes; chrono already accepted that part.
    let rest = s.get(19..)?;
    let bytes = rest.as_bytes();
    let six_digits =
        bytes.len() >= 7 && bytes[0] == b'.' && bytes[1..7].iter().all(u8::is_ascii_digit);
    if !six_digits {
        return Some((rest, ".000000"));
    }
    let zone = &rest[7..];
    let zone_ok = zone == "Z"
        || (zone.len() == 6
            && matches!(zone.as_bytes()[0], b'+' | b'-')
            && zone.as_bytes()[3] == b':');
    (!zone_ok).then_some((zone, "Z07:00"))
}

/// The value a JSON null decodes to inside a list or map (Go's zero value).
fn zero_value(schema: &Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => Value::String(String::new()),
        Some("integer") | Some("number") => Value::from(0),
        Some("boolean") => Value::Bool(false),
        Some("array") => Value::Null,
        _ if schema.get("properties").is_some() => Value::Object(Map::new()),
        _ => Value::Null,
    }
}

/// Where the walk is: the strict-decoding path (with indices), the decoder's field path
/// (names only) and the Go struct that holds the current field.
struct Ctx {
    path: String,
    go_path: String,
    parent: String,
}

impl Ctx {
    fn field(&self, name: &str) -> Ctx {
        Ctx {
            path: if self.path.is_empty() {
                name.to_string()
            } else {
                format!("{}.{}", self.path, name)
            },
            go_path: if self.go_path.is_empty() {
                name.to_string()
            } else {
                format!("{}.{}", self.go_path, name)
            },
            parent: self.parent.clone(),
        }
    }
    fn index(&self, i: usize) -> Ctx {
        Ctx {
            path: format!("{}[{}]", self.path, i),
            go_path: self.go_path.clone(),
            parent: self.parent.clone(),
        }
    }
    fn key(&self, k: &str) -> Ctx {
        Ctx {
            path: format!("{}[{}]", self.path, k),
            go_path: self.go_path.clone(),
            parent: self.parent.clone(),
        }
    }
}
