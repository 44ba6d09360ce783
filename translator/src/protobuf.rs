//! Decoding of `application/vnd.kubernetes.protobuf` request bodies (kubectl >= 1.32 sends
//! them for `create namespace|configmap|secret|deployment|token`).
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` {typeMeta = 1 {apiVersion = 1,
//! kind = 2}, raw = 2, contentEncoding = 3, contentType = 4}; `raw` is the object's message from
//! upstream's `generated.proto`. The object is turned into the JSON upstream would store,
//! using the catalog's field tables: camelCase names, int64 as numbers, bytes as base64,
//! maps as objects, and the special JSON forms of Time, MicroTime, IntOrString, Quantity,
//! Duration, RawExtension and FieldsV1.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::catalog::{Catalog, ProtoKind};
use crate::error::ApiError;

/// Every Kubernetes protobuf body starts with these four bytes.
pub const MAGIC: &[u8] = b"k8s\0";

/// Nesting deeper than this is refused (CRD schemas nest, but not this deep); bounds the
/// recursion on hostile input.
const MAX_DEPTH: usize = 100;

/// Pointer string fields whose empty value means something (`storageClassName: ""` asks for
/// no dynamic provisioning); other empty strings are Go zero values that upstream omits.
pub(crate) const MEANINGFUL_EMPTY_STRINGS: &[&str] =
    &["storageClassName", "volumeAttributesClassName"];

const TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1";
const VERBS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Verbs";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const RAW_EXTENSION: &str = "io.k8s.apimachinery.pkg.runtime.RawExtension";
const APIEXTENSIONS: &str = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.";

/// Decodes a whole protobuf body into the JSON object it stands for, with `apiVersion` and
/// `kind` set.
pub fn decode_object(body: &[u8]) -> Result<Value, ApiError> {
    decode_object_with(Catalog::builtin(), body, 0)
}

/// Decodes one message (no envelope) of the given definition, e.g.
/// `io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions`.
pub fn decode_message(definition: &str, raw: &[u8]) -> Result<Value, ApiError> {
    Decoder {
        catalog: Catalog::builtin(),
    }
    .message(definition, raw, 0)
}

fn decode_object_with(catalog: &Catalog, body: &[u8], depth: usize) -> Result<Value, ApiError> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        ApiError::bad_request("protobuf body does not start with the \"k8s\\x00\" prefix")
    })?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut content_encoding = String::new();
    for (tag, wire) in scan(envelope)? {
        match (tag, wire) {
            (1, Wire::Bytes(type_meta)) => {
                for (tag, wire) in scan(type_meta)? {
                    match (tag, wire) {
                        (1, Wire::Bytes(b)) => api_version = utf8(b)?.to_string(),
                        (2, Wire::Bytes(b)) => kind = utf8(b)?.to_string(),
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            (3, Wire::Bytes(b)) => content_encoding = utf8(b)?.to_string(),
            _ => {}
        }
    }
    if !content_encoding.is_empty() {
        return Err(ApiError::bad_request(format!(
            "protobuf body with contentEncoding {content_encoding:?} is not supported"
        )));
    }
    if kind.is_empty() || api_version.is_empty() {
        return Err(ApiError::bad_request(
            "protobuf body names no apiVersion and kind",
        ));
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    let definition = catalog
        .definition_for_kind(group, version, &kind)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "no kind \"{kind}\" is registered for version \"{api_version}\""
            ))
        })?;
    let mut object = match (Decoder { catalog }).message(definition, raw, depth)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(object))
}

/// One field value as it is on the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

fn malformed(what: &str) -> ApiError {
    ApiError::bad_request(format!("malformed protobuf body: {what}"))
}

/// Splits a message into its (tag, value) pairs, in wire order.
fn scan(mut data: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, ApiError> {
    let mut fields = Vec::new();
    while !data.is_empty() {
        let key = varint(&mut data)?;
        let tag = u32::try_from(key >> 3).map_err(|_| malformed("field number out of range"))?;
        if tag == 0 {
            return Err(malformed("field number 0"));
        }
        let wire = match key & 7 {
            0 => Wire::Varint(varint(&mut data)?),
            1 => Wire::Fixed64(u64::from_le_bytes(take::<8>(&mut data)?)),
            2 => {
                let len = usize::try_from(varint(&mut data)?)
                    .map_err(|_| malformed("length out of range"))?;
                if len > data.len() {
                    return Err(malformed("length exceeds the message"));
                }
                let (bytes, rest) = data.split_at(len);
                data = rest;
                Wire::Bytes(bytes)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(take::<4>(&mut data)?)),
            other => return Err(malformed(&format!("unsupported wire type {other}"))),
        };
        fields.push((tag, wire));
    }
    Ok(fields)
}

fn varint(data: &mut &[u8]) -> Result<u64, ApiError> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = data
            .split_first()
            .ok_or_else(|| malformed("truncated varint"))?;
        *data = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(malformed("varint longer than 10 bytes"))
}

fn take<const N: usize>(data: &mut &[u8]) -> Result<[u8; N], ApiError> {
    if data.len() < N {
        return Err(malformed("truncated fixed-width value"));
    }
    let (head, rest) = data.split_at(N);
    *data = rest;
    let mut out = [0u8; N];
    out.copy_from_slice(head);
    Ok(out)
}

fn utf8(bytes: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(bytes).map_err(|_| malformed("string field is not valid UTF-8"))
}

fn bytes_of<'a>(wire: Wire<'a>, field: &str) -> Result<&'a [u8], ApiError> {
    match wire {
        Wire::Bytes(b) => Ok(b),
        _ => Err(malformed(&format!("field {field} has the wrong wire type"))),
    }
}

fn varint_of(wire: Wire<'_>, field: &str) -> Result<u64, ApiError> {
    match wire {
        Wire::Varint(v) => Ok(v),
        _ => Err(malformed(&format!("field {field} has the wrong wire type"))),
    }
}

struct Decoder<'c> {
    catalog: &'c Catalog,
}

impl Decoder<'_> {
    /// One message as JSON.
    fn message(&self, definition: &str, data: &[u8], depth: usize) -> Result<Value, ApiError> {
        if depth > MAX_DEPTH {
            return Err(malformed("objects nested too deeply"));
        }
        if let Some(value) = self.special(definition, data, depth)? {
            return Ok(value);
        }
        let mut out = Map::new();
        self.fields_into(definition, data, depth, &mut out)?;
        self.drop_zero_values(definition, &mut out);
        Ok(Value::Object(out))
    }

    /// Decodes the fields of `definition` into `out` (shared with inlined sub-messages).
    fn fields_into(
        &self,
        definition: &str,
        data: &[u8],
        depth: usize,
        out: &mut Map<String, Value>,
    ) -> Result<(), ApiError> {
        if depth > MAX_DEPTH {
            return Err(malformed("objects nested too deeply"));
        }
        let message = self.catalog.proto_message(definition).ok_or_else(|| {
            ApiError::bad_request(format!("no protobuf decoding is known for {definition}"))
        })?;
        for (tag, wire) in scan(data)? {
            // Unknown fields are skipped, as protobuf readers do (newer clients).
            let Some(field) = message.field(tag) else {
                continue;
            };
            let name = field.json_name.as_str();
            if name.is_empty() {
                let ProtoKind::Message(inner) = &field.kind else {
                    continue;
                };
                self.fields_into(inner, bytes_of(wire, inner)?, depth + 1, out)?;
                continue;
            }
            match &field.kind {
                ProtoKind::Map(key_kind, value_kind) => {
                    let entry = bytes_of(wire, name)?;
                    let (key, value) = self.map_entry(key_kind, value_kind, entry, depth, name)?;
                    let map = out
                        .entry(name.to_string())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(map) = map {
                        map.insert(key, value);
                    }
                }
                kind if field.repeated => {
                    let values = self.repeated_values(kind, wire, depth, name)?;
                    let list = out
                        .entry(name.to_string())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(list) = list {
                        list.extend(values);
                    }
                }
                kind => {
                    let value = self.value(kind, wire, depth, name)?;
                    out.insert(name.to_string(), value);
                }
            }
        }
        Ok(())
    }

    /// A repeated field's values from one wire record (packed scalars carry several).
    fn repeated_values(
        &self,
        kind: &ProtoKind,
        wire: Wire<'_>,
        depth: usize,
        name: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let packable = matches!(
            kind,
            ProtoKind::Bool
                | ProtoKind::Int32
                | ProtoKind::Int64
                | ProtoKind::Double
                | ProtoKind::Float
        );
        match (packable, wire) {
            (true, Wire::Bytes(mut packed)) => {
                let mut values = Vec::new();
                while !packed.is_empty() {
                    let element = match kind {
                        ProtoKind::Double => Wire::Fixed64(u64::from_le_bytes(take(&mut packed)?)),
                        ProtoKind::Float => Wire::Fixed32(u32::from_le_bytes(take(&mut packed)?)),
                        _ => Wire::Varint(varint(&mut packed)?),
                    };
                    values.push(self.value(kind, element, depth, name)?);
                }
                Ok(values)
            }
            _ => Ok(vec![self.value(kind, wire, depth, name)?]),
        }
    }

    fn map_entry(
        &self,
        key_kind: &ProtoKind,
        value_kind: &ProtoKind,
        entry: &[u8],
        depth: usize,
        name: &str,
    ) -> Result<(String, Value), ApiError> {
        let mut key = None;
        let mut value = None;
        for (tag, wire) in scan(entry)? {
            match tag {
                1 => key = Some(self.value(key_kind, wire, depth, name)?),
                2 => value = Some(self.value(value_kind, wire, depth, name)?),
                _ => {}
            }
        }
        let key = match key {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let value = match value {
            Some(v) => v,
            None => self.zero(value_kind, depth)?,
        };
        Ok((key, value))
    }

    /// The value of a map entry that carries no value.
    fn zero(&self, kind: &ProtoKind, depth: usize) -> Result<Value, ApiError> {
        Ok(match kind {
            ProtoKind::String | ProtoKind::Bytes => Value::String(String::new()),
            ProtoKind::Bool => Value::Bool(false),
            ProtoKind::Int32 | ProtoKind::Int64 | ProtoKind::Double | ProtoKind::Float => {
                Value::from(0)
            }
            ProtoKind::Message(def) => self.message(def, &[], depth + 1)?,
            ProtoKind::Map(..) => Value::Object(Map::new()),
        })
    }

    fn value(
        &self,
        kind: &ProtoKind,
        wire: Wire<'_>,
        depth: usize,
        name: &str,
    ) -> Result<Value, ApiError> {
        Ok(match kind {
            ProtoKind::String => Value::String(utf8(bytes_of(wire, name)?)?.to_string()),
            ProtoKind::Bytes => Value::String(
                base64::engine::general_purpose::STANDARD.encode(bytes_of(wire, name)?),
            ),
            ProtoKind::Bool => Value::Bool(varint_of(wire, name)? != 0),
            // Negative int32s are sign-extended to ten bytes on the wire.
            ProtoKind::Int32 => Value::from(varint_of(wire, name)? as i64 as i32),
            ProtoKind::Int64 => Value::from(varint_of(wire, name)? as i64),
            ProtoKind::Double => match wire {
                Wire::Fixed64(bits) => float(f64::from_bits(bits), name)?,
                _ => return Err(malformed(&format!("field {name} has the wrong wire type"))),
            },
            ProtoKind::Float => match wire {
                Wire::Fixed32(bits) => float(f64::from(f32::from_bits(bits)), name)?,
                _ => return Err(malformed(&format!("field {name} has the wrong wire type"))),
            },
            ProtoKind::Message(def) => self.message(def, bytes_of(wire, name)?, depth + 1)?,
            ProtoKind::Map(..) => {
                return Err(malformed(&format!("field {name} nests a map in a map")));
            }
        })
    }

    /// Types whose JSON form is not an object of their protobuf fields.
    fn special(
        &self,
        definition: &str,
        data: &[u8],
        depth: usize,
    ) -> Result<Option<Value>, ApiError> {
        let value = match definition {
            TIME | MICRO_TIME => {
                let (mut seconds, mut nanos) = (0i64, 0i64);
                for (tag, wire) in scan(data)? {
                    match tag {
                        1 => seconds = varint_of(wire, "seconds")? as i64,
                        2 => nanos = i64::from(varint_of(wire, "nanos")? as i64 as i32),
                        _ => {}
                    }
                }
                time(seconds, nanos, definition == MICRO_TIME)?
            }
            INT_OR_STRING => {
                let (mut is_string, mut int_val, mut str_val) = (false, 0i32, String::new());
                for (tag, wire) in scan(data)? {
                    match tag {
                        1 => is_string = varint_of(wire, "type")? == 1,
                        2 => int_val = varint_of(wire, "intVal")? as i64 as i32,
                        3 => str_val = utf8(bytes_of(wire, "strVal")?)?.to_string(),
                        _ => {}
                    }
                }
                if is_string {
                    Value::String(str_val)
                } else {
                    Value::from(int_val)
                }
            }
            QUANTITY => {
                let mut text = String::from("0");
                for (tag, wire) in scan(data)? {
                    if tag == 1 {
                        let s = utf8(bytes_of(wire, "string")?)?;
                        if !s.is_empty() {
                            text = s.to_string();
                        }
                    }
                }
                Value::String(text)
            }
            DURATION => {
                let mut nanos = 0i64;
                for (tag, wire) in scan(data)? {
                    if tag == 1 {
                        nanos = varint_of(wire, "duration")? as i64;
                    }
                }
                Value::String(go_duration(nanos))
            }
            RAW_EXTENSION => self.raw_object(first_bytes(data, 1)?, depth)?,
            FIELDS_V1 => raw_json(first_bytes(data, 1)?)?,
            VERBS => string_items(data)?,
            _ if definition.ends_with(".ExtraValue") => string_items(data)?,
            _ => match definition.strip_prefix(APIEXTENSIONS) {
                Some("JSON") => raw_json(first_bytes(data, 1)?)?,
                Some("JSONSchemaPropsOrArray") => self.schema_or_array(data, depth)?,
                Some("JSONSchemaPropsOrBool") => self.schema_or_bool(data, depth)?,
                Some("JSONSchemaPropsOrStringArray") => self.schema_or_strings(data, depth)?,
                _ => return Ok(None),
            },
        };
        Ok(Some(value))
    }

    /// RawExtension: embedded JSON, or an embedded protobuf object with its own envelope.
    fn raw_object(&self, raw: &[u8], depth: usize) -> Result<Value, ApiError> {
        if raw.starts_with(MAGIC) {
            decode_object_with(self.catalog, raw, depth + 1)
        } else {
            raw_json(raw)
        }
    }

    fn schema_props(&self, data: &[u8], depth: usize) -> Result<Value, ApiError> {
        self.message(&format!("{APIEXTENSIONS}JSONSchemaProps"), data, depth + 1)
    }

    fn schema_or_array(&self, data: &[u8], depth: usize) -> Result<Value, ApiError> {
        let mut schema = Value::Null;
        let mut list = Vec::new();
        for (tag, wire) in scan(data)? {
            match tag {
                1 => schema = self.schema_props(bytes_of(wire, "schema")?, depth)?,
                2 => list.push(self.schema_props(bytes_of(wire, "jSONSchemas")?, depth)?),
                _ => {}
            }
        }
        Ok(if list.is_empty() {
            schema
        } else {
            Value::Array(list)
        })
    }

    fn schema_or_bool(&self, data: &[u8], depth: usize) -> Result<Value, ApiError> {
        let mut allows = false;
        let mut schema = None;
        for (tag, wire) in scan(data)? {
            match tag {
                1 => allows = varint_of(wire, "allows")? != 0,
                2 => schema = Some(self.schema_props(bytes_of(wire, "schema")?, depth)?),
                _ => {}
            }
        }
        Ok(schema.unwrap_or(Value::Bool(allows)))
    }

    fn schema_or_strings(&self, data: &[u8], depth: usize) -> Result<Value, ApiError> {
        let mut schema = Value::Null;
        let mut list = Vec::new();
        for (tag, wire) in scan(data)? {
            match tag {
                1 => schema = self.schema_props(bytes_of(wire, "schema")?, depth)?,
                2 => list.push(Value::String(
                    utf8(bytes_of(wire, "property")?)?.to_string(),
                )),
                _ => {}
            }
        }
        Ok(if list.is_empty() {
            schema
        } else {
            Value::Array(list)
        })
    }

    /// Go writes every non-pointer scalar field, zero or not, and omits zero ones in JSON
    /// (`omitempty`). The wire cannot tell those from pointer fields set to zero, so zero
    /// strings, numbers and `false` are dropped unless the schema requires the field or
    /// the field is a pointer whose zero means something other than "unset".
    fn drop_zero_values(&self, definition: &str, out: &mut Map<String, Value>) {
        let required: Vec<&str> = self
            .catalog
            .schema(definition)
            .and_then(|s| s.get("required"))
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        out.retain(|name, value| {
            let name = name.as_str();
            if required.contains(&name) {
                return true;
            }
            match value {
                Value::String(s) if s.is_empty() => MEANINGFUL_EMPTY_STRINGS.contains(&name),
                Value::Bool(false) => MEANINGFUL_ZEROES.contains(&name),
                Value::Number(n) if n.as_f64() == Some(0.0) => MEANINGFUL_ZEROES.contains(&name),
                _ => true,
            }
        });
    }
}

/// Pointer fields of the built-in API whose zero (or `false`) differs from leaving them
/// unset: they default to something else, or nil means "no limit" / "image default".
const MEANINGFUL_ZEROES: &[&str] = &[
    "activeDeadlineSeconds",
    "allowPrivilegeEscalation",
    "allowVolumeExpansion",
    "automountServiceAccountToken",
    "backoffLimit",
    "backoffLimitPerIndex",
    "completions",
    "defaultMode",
    "enableServiceLinks",
    "expirationSeconds",
    "failedJobsHistoryLimit",
    "fsGroup",
    "hostUsers",
    "maxFailedIndexes",
    "minDomains",
    "mode",
    "parallelism",
    "partition",
    "priority",
    "privileged",
    "progressDeadlineSeconds",
    "readOnlyRootFilesystem",
    "replicas",
    "revisionHistoryLimit",
    "runAsGroup",
    "runAsNonRoot",
    "runAsUser",
    "startingDeadlineSeconds",
    "successfulJobsHistoryLimit",
    "terminationGracePeriodSeconds",
    "ttlSecondsAfterFinished",
];

/// The bytes of the first record with `tag`, or empty.
fn first_bytes(data: &[u8], tag: u32) -> Result<&[u8], ApiError> {
    for (t, wire) in scan(data)? {
        if t == tag {
            return bytes_of(wire, "raw");
        }
    }
    Ok(&[])
}

fn raw_json(raw: &[u8]) -> Result<Value, ApiError> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(raw)
        .map_err(|e| ApiError::bad_request(format!("embedded JSON in protobuf body: {e}")))
}

/// `ExtraValue` and `Verbs` are Go string slices wrapped in a message {items = 1}.
fn string_items(data: &[u8]) -> Result<Value, ApiError> {
    let mut items = Vec::new();
    for (tag, wire) in scan(data)? {
        if tag == 1 {
            items.push(Value::String(utf8(bytes_of(wire, "items")?)?.to_string()));
        }
    }
    Ok(Value::Array(items))
}

fn float(v: f64, name: &str) -> Result<Value, ApiError> {
    Number::from_f64(v)
        .map(Value::Number)
        .ok_or_else(|| malformed(&format!("field {name} is not a finite number")))
}

/// Upstream's JSON of metav1.Time (RFC 3339, seconds) and MicroTime (microseconds), UTC;
/// the zero time is `null`.
fn time(seconds: i64, nanos: i64, micro: bool) -> Result<Value, ApiError> {
    if seconds == 0 && nanos == 0 {
        return Ok(Value::Null);
    }
    let nanos = u32::try_from(nanos).map_err(|_| malformed("negative nanoseconds in a time"))?;
    let t = chrono::DateTime::from_timestamp(seconds, nanos)
        .ok_or_else(|| malformed("time out of range"))?;
    let text = if micro {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    Ok(Value::String(text))
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `150ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    let with_fraction = |value: u64, unit: u64| {
        let whole = value / unit;
        let frac = value % unit;
        if frac == 0 {
            whole.to_string()
        } else {
            let digits = unit.ilog10() as usize;
            let text = format!("{whole}.{frac:0digits$}");
            text.trim_end_matches('0').to_string()
        }
    };
    let body = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", with_fraction(u, 1_000))
    } else if u < 1_000_000_000 {
        format!("{}ms", with_fraction(u, 1_000_000))
    } else {
        const HOUR: u64 = 3_600_000_000_000;
        const MINUTE: u64 = 60_000_000_000;
        let hours = u / HOUR;
        let minutes = (u % HOUR) / MINUTE;
        let rest = u % MINUTE;
        let mut s = String::new();
        if hours > 0 {
            s.push_str(&format!("{hours}h"));
        }
        if hours > 0 || minutes > 0 {
            s.push_str(&format!("{minutes}m"));
        }
        s.push_str(&format!("{}s", with_fraction(rest, 1_000_000_000)));
        s
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Bodies kubectl 1.33 sent (wire trace, section h_pb).
    const KUBECTL_NAMESPACE: &[u8] = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x1b\x0a\x13\x0a\x03foo\x12\x00\x1a\x00\x22\x00*\x002\x008\x00B\x00\x12\x00\x1a\x02\x0a\x00\x1a\x00\x22\x00";
    const KUBECTL_CONFIGMAP: &[u8] = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x1d\x0a\x13\x0a\x03cm1\x12\x00\x1a\x00\x22\x00*\x002\x008\x00B\x00\x12\x06\x0a\x01a\x12\x01b\x1a\x00\x22\x00";
    const KUBECTL_SECRET: &[u8] = b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x1e\x0a\x12\x0a\x02s1\x12\x00\x1a\x00\x22\x00*\x002\x008\x00B\x00\x12\x06\x0a\x01a\x12\x01b\x1a\x00\x1a\x00\x22\x00";
    /// `kubectl create deployment d1 --image=nginx` (the trace replaced bytes >= 0x80 with
    /// U+FFFD; they are restored from the lengths and field numbers around them).
    const KUBECTL_DEPLOYMENT: &[u8] = b"k8s\x00\x0a\x15\x0a\x07apps/v1\x12\x0aDeployment\x12\xa7\x01\x0a\x1d\x0a\x02d1\x12\x00\x1a\x00\x22\x00*\x002\x008\x00B\x00Z\x09\x0a\x03app\x12\x02d1\x12x\x08\x01\x12\x0b\x0a\x09\x0a\x03app\x12\x02d1\x1a_\x0a\x1b\x0a\x00\x12\x00\x1a\x00\x22\x00*\x002\x008\x00B\x00Z\x09\x0a\x03app\x12\x02d1\x12@\x12\x22\x0a\x05nginx\x12\x05nginx*\x00B\x00j\x00r\x00\x80\x01\x00\x88\x01\x00\x90\x01\x00\xa2\x01\x00\x1a\x002\x00B\x00J\x00R\x00X\x00`\x00h\x00\x82\x01\x00\x8a\x01\x00\x9a\x01\x00\xc2\x01\x00\x22\x02\x0a\x00(\x008\x00\x1a\x0c\x08\x00\x10\x00\x18\x00 \x00(\x008\x00\x1a\x00\x22\x00";
    const KUBECTL_TOKEN_REQUEST: &[u8] = b"k8s\x00\x0a(\x0a\x18authentication.k8s.io/v1\x12\x0cTokenRequest\x12\x1a\x0a\x10\x0a\x00\x12\x00\x1a\x00\x22\x00*\x002\x008\x00B\x00\x12\x00\x1a\x04\x0a\x00\x12\x00\x1a\x00\x22\x00";

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        use prost::Message;
        let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw.to_vec()),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        body
    }

    #[test]
    fn kubectl_namespace_and_configmap() {
        let ns = decode_object(KUBECTL_NAMESPACE).unwrap();
        assert_eq!(
            ns,
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "foo", "creationTimestamp": null},
                   "spec": {}, "status": {}})
        );
        let cm = decode_object(KUBECTL_CONFIGMAP).unwrap();
        assert_eq!(cm["data"], json!({"a": "b"}));
        assert_eq!(cm["metadata"]["name"], "cm1");
        assert_eq!(cm["kind"], "ConfigMap");
    }

    #[test]
    fn pointer_zeroes_survive_and_plain_zeroes_go() {
        use k8s_pb::api::apps::v1::{Deployment, DeploymentSpec};
        use prost::Message;
        let d = Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(0),
                min_ready_seconds: Some(0),
                paused: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = decode_object(&envelope("apps/v1", "Deployment", &d.encode_to_vec())).unwrap();
        assert_eq!(v["spec"]["replicas"], 0, "scale to zero must stay zero");
        assert!(v["spec"].get("minReadySeconds").is_none());
        assert!(v["spec"].get("paused").is_none());
    }

    #[test]
    fn kubectl_secret_data_is_base64() {
        let s = decode_object(KUBECTL_SECRET).unwrap();
        assert_eq!(s["data"], json!({"a": "Yg=="}));
        assert!(
            s.get("type").is_none(),
            "empty type is omitted, as upstream"
        );
    }

    #[test]
    fn kubectl_deployment() {
        // The restored bytes are what prost reads too.
        use prost::Message;
        let raw = &KUBECTL_DEPLOYMENT[30..];
        k8s_pb::api::apps::v1::Deployment::decode(raw).unwrap();

        let d = decode_object(KUBECTL_DEPLOYMENT).unwrap();
        assert_eq!(d["apiVersion"], "apps/v1");
        assert_eq!(d["metadata"]["labels"], json!({"app": "d1"}));
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["selector"]["matchLabels"], json!({"app": "d1"}));
        let pod = &d["spec"]["template"];
        assert_eq!(pod["metadata"]["labels"], json!({"app": "d1"}));
        assert_eq!(
            pod["spec"]["containers"],
            json!([{"name": "nginx", "image": "nginx", "resources": {}}])
        );
        // Go's zero values are omitted, as upstream's JSON does; pointers keep their zero.
        assert!(pod["spec"].get("hostNetwork").is_none());
        assert!(d["spec"].get("paused").is_none());
        assert_eq!(d["spec"]["strategy"], json!({}));
    }

    #[test]
    fn kubectl_token_request() {
        let t = decode_object(KUBECTL_TOKEN_REQUEST).unwrap();
        assert_eq!(t["kind"], "TokenRequest");
        assert_eq!(t["apiVersion"], "authentication.k8s.io/v1");
        assert!(t["spec"].is_object());
    }

    #[test]
    fn rich_pod_round_trips_through_prost() {
        use k8s_pb::api::core::v1 as core;
        use k8s_pb::apimachinery::pkg::api::resource::Quantity;
        use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
        use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
        use prost::Message;

        let pod = core::Pod {
            metadata: Some(meta::ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(meta::Time {
                    seconds: Some(1_700_000_000),
                    nanos: Some(0),
                }),
                annotations: [("a".to_string(), "".to_string())].into(),
                ..Default::default()
            }),
            spec: Some(core::PodSpec {
                automount_service_account_token: Some(false),
                termination_grace_period_seconds: Some(0),
                volumes: vec![core::Volume {
                    name: Some("data".into()),
                    volume_source: Some(core::VolumeSource {
                        empty_dir: Some(core::EmptyDirVolumeSource {
                            size_limit: Some(Quantity {
                                string: Some("1Gi".into()),
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                }],
                containers: vec![core::Container {
                    name: Some("app".into()),
                    image: Some("nginx".into()),
                    args: vec!["-v".into(), "".into()],
                    resources: Some(core::ResourceRequirements {
                        limits: [(
                            "cpu".to_string(),
                            Quantity {
                                string: Some("500m".into()),
                            },
                        )]
                        .into(),
                        ..Default::default()
                    }),
                    liveness_probe: Some(core::Probe {
                        handler: Some(core::ProbeHandler {
                            http_get: Some(core::HttpGetAction {
                                path: Some("/healthz".into()),
                                port: Some(IntOrString {
                                    r#type: Some(1),
                                    int_val: Some(0),
                                    str_val: Some("http".into()),
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        period_seconds: Some(-5),
                        ..Default::default()
                    }),
                    ports: vec![core::ContainerPort {
                        container_port: Some(8080),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        };
        let v = decode_object(&envelope("v1", "Pod", &pod.encode_to_vec())).unwrap();
        assert_eq!(v["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["metadata"]["annotations"], json!({"a": ""}));
        let spec = &v["spec"];
        assert_eq!(spec["automountServiceAccountToken"], false);
        assert_eq!(spec["terminationGracePeriodSeconds"], 0);
        assert_eq!(
            spec["volumes"],
            json!([{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}])
        );
        let c = &spec["containers"][0];
        assert_eq!(c["args"], json!(["-v", ""]));
        assert_eq!(c["resources"]["limits"], json!({"cpu": "500m"}));
        assert_eq!(c["livenessProbe"]["httpGet"]["port"], "http");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["livenessProbe"]["periodSeconds"], -5);
        assert_eq!(c["ports"], json!([{"containerPort": 8080}]));
    }

    #[test]
    fn times_intorstring_and_durations() {
        assert_eq!(time(0, 0, false).unwrap(), Value::Null);
        assert_eq!(
            time(1_700_000_000, 123_456_789, true).unwrap(),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(90_500_000_000), "1m30.5s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(-2_000), "-2µs");
        let int_port = decode_message(INT_OR_STRING, &[0x08, 0x00, 0x10, 0x50]).unwrap();
        assert_eq!(int_port, 80);
    }

    #[test]
    fn bad_bodies_are_bad_requests() {
        let no_magic = decode_object(b"{\"kind\":\"Pod\"}").unwrap_err();
        assert_eq!(no_magic.code(), 400);
        let unknown = decode_object(&envelope("v1", "Frobnicator", b"")).unwrap_err();
        assert_eq!(unknown.code(), 400);
        assert!(unknown.to_string().contains("Frobnicator"));
        let mut truncated = KUBECTL_CONFIGMAP.to_vec();
        truncated.truncate(truncated.len() - 10);
        assert_eq!(decode_object(&truncated).unwrap_err().code(), 400);
        // A string field (Namespace name) carrying a varint.
        let wrong_type = envelope("v1", "Namespace", &[0x0a, 0x02, 0x08, 0x01]);
        assert_eq!(decode_object(&wrong_type).unwrap_err().code(), 400);
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        // JSONSchemaProps.not (field 28) nested 10,000 deep.
        let mut inner: Vec<u8> = Vec::new();
        for _ in 0..10_000 {
            let mut next = vec![0xe2, 0x01];
            let mut len = inner.len();
            loop {
                let byte = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    next.push(byte);
                    break;
                }
                next.push(byte | 0x80);
            }
            next.extend(&inner);
            inner = next;
        }
        let result = decode_message(&format!("{APIEXTENSIONS}JSONSchemaProps"), &inner);
        assert!(result.is_err());
        // ... while a modest depth decodes.
        let shallow = decode_message(
            &format!("{APIEXTENSIONS}JSONSchemaProps"),
            &[0xe2, 0x01, 0x04, 0xe2, 0x01, 0x01, 0x00],
        );
        assert!(shallow.is_err(), "truncated inner message");
        let ok = decode_message(
            &format!("{APIEXTENSIONS}JSONSchemaProps"),
            &[0xe2, 0x01, 0x05, 0xe2, 0x01, 0x02, 0x0a, 0x00],
        )
        .unwrap();
        assert_eq!(ok, json!({"not": {"not": {}}}));
    }

    #[test]
    fn random_bytes_never_panic() {
        // xorshift: deterministic, no extra dependency.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = [
            KUBECTL_NAMESPACE,
            KUBECTL_CONFIGMAP,
            KUBECTL_SECRET,
            KUBECTL_DEPLOYMENT,
            KUBECTL_TOKEN_REQUEST,
        ];
        for round in 0..20_000 {
            let mut body = seeds[round % seeds.len()].to_vec();
            if round % 3 == 0 {
                // Pure noise after a valid envelope header.
                let len = (next() % 64) as usize;
                body.truncate(MAGIC.len() + 2);
                body.extend((0..len).map(|_| next() as u8));
            } else {
                // Flip a few bytes of a real body.
                for _ in 0..(1 + next() % 4) {
                    let i = MAGIC.len() + (next() as usize) % (body.len() - MAGIC.len());
                    body[i] = next() as u8;
                }
            }
            let _ = decode_object(&body);
        }
    }
}
