//! Swagger 2.0 JSON → gnostic `openapi.v2.Document` protobuf, the form kubectl ≤ 1.28
//! (`explain`, apply's `fieldValidation` check) and Argo CD fetch with
//! `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`.
//!
//! Field numbers are those of gnostic's `openapiv2/OpenAPIv2.proto`. Vendor extensions
//! (`x-…`) become `NamedAny{name, value: Any{yaml}}` whose YAML is the value's JSON text
//! (JSON is YAML). proto3: default values are not written.

use serde_json::{Map, Value};

/// A protobuf writer for the few wire shapes gnostic needs.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, tag: u32, wire: u8) {
        self.varint((u64::from(tag) << 3) | u64::from(wire));
    }
    fn bytes(&mut self, tag: u32, b: &[u8]) {
        self.key(tag, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn string(&mut self, tag: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(tag, s.as_bytes());
        }
    }
    fn bool(&mut self, tag: u32, b: bool) {
        if b {
            self.key(tag, 0);
            self.varint(1);
        }
    }
    fn int64(&mut self, tag: u32, v: i64) {
        if v != 0 {
            self.key(tag, 0);
            self.varint(v as u64);
        }
    }
    fn double(&mut self, tag: u32, v: f64) {
        if v != 0.0 {
            self.key(tag, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }
    /// A nested message; an empty message is still written when `always` (oneof members).
    fn message(&mut self, tag: u32, always: bool, build: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::default();
        build(&mut inner);
        if always || !inner.0.is_empty() {
            self.bytes(tag, &inner.0);
        }
    }
}

fn str_of<'a>(o: &'a Map<String, Value>, key: &str) -> &'a str {
    o.get(key).and_then(Value::as_str).unwrap_or("")
}

fn bool_of(o: &Map<String, Value>, key: &str) -> bool {
    o.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn strings_of<'a>(o: &'a Map<String, Value>, key: &str) -> Vec<&'a str> {
    match o.get(key) {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

/// `Any{yaml = 2}` holding a JSON value.
fn any(w: &mut Writer, tag: u32, v: &Value) {
    w.message(tag, true, |a| a.string(2, &v.to_string()));
}

/// `repeated NamedAny vendor_extension` for every `x-` key.
fn vendor_extensions(w: &mut Writer, tag: u32, o: &Map<String, Value>) {
    for (k, v) in o {
        if k.starts_with("x-") {
            w.message(tag, true, |n| {
                n.string(1, k);
                any(n, 2, v);
            });
        }
    }
}

/// Encodes a swagger 2.0 document.
pub(super) fn encode_document(doc: &Value) -> Vec<u8> {
    let empty = Map::new();
    let d = doc.as_object().unwrap_or(&empty);
    let mut w = Writer::default();
    w.string(1, str_of(d, "swagger"));
    if let Some(info) = d.get("info").and_then(Value::as_object) {
        w.message(2, true, |i| {
            i.string(1, str_of(info, "title"));
            i.string(2, str_of(info, "version"));
            i.string(3, str_of(info, "description"));
            vendor_extensions(i, 7, info);
        });
    }
    w.string(3, str_of(d, "host"));
    w.string(4, str_of(d, "basePath"));
    for (tag, key) in [(5, "schemes"), (6, "consumes"), (7, "produces")] {
        for s in strings_of(d, key) {
            w.string(tag, s);
        }
    }
    if let Some(paths) = d.get("paths").and_then(Value::as_object) {
        w.message(8, true, |p| {
            vendor_extensions(p, 1, paths);
            for (name, item) in paths {
                if name.starts_with("x-") {
                    continue;
                }
                let Some(item) = item.as_object() else {
                    continue;
                };
                p.message(2, true, |n| {
                    n.string(1, name);
                    n.message(2, true, |pi| path_item(pi, item));
                });
            }
        });
    }
    if let Some(defs) = d.get("definitions").and_then(Value::as_object) {
        w.message(9, true, |ds| {
            for (name, schema) in defs {
                ds.message(1, true, |n| {
                    n.string(1, name);
                    n.message(2, true, |s| encode_schema(s, schema));
                });
            }
        });
    }
    if let Some(security) = d.get("security").and_then(Value::as_array) {
        for requirement in security.iter().filter_map(Value::as_object) {
            w.message(12, true, |r| {
                for (name, scopes) in requirement {
                    r.message(1, true, |n| {
                        n.string(1, name);
                        n.message(2, true, |a| {
                            for s in scopes.as_array().into_iter().flatten() {
                                a.string(1, s.as_str().unwrap_or(""));
                            }
                        });
                    });
                }
            });
        }
    }
    if let Some(defs) = d.get("securityDefinitions").and_then(Value::as_object) {
        w.message(13, true, |sd| {
            for (name, def) in defs {
                let Some(def) = def.as_object() else {
                    continue;
                };
                sd.message(1, true, |n| {
                    n.string(1, name);
                    n.message(2, true, |item| {
                        // Only apiKey schemes are published (BearerToken).
                        item.message(2, true, |k| {
                            k.string(1, str_of(def, "type"));
                            k.string(2, str_of(def, "name"));
                            k.string(3, str_of(def, "in"));
                            k.string(4, str_of(def, "description"));
                            vendor_extensions(k, 5, def);
                        });
                    });
                });
            }
        });
    }
    vendor_extensions(&mut w, 16, d);
    w.0
}

fn path_item(w: &mut Writer, item: &Map<String, Value>) {
    w.string(1, str_of(item, "$ref"));
    for (tag, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = item.get(method).and_then(Value::as_object) {
            w.message(tag, true, |o| operation(o, op));
        }
    }
    for p in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(9, true, |pi| parameters_item(pi, p));
    }
    vendor_extensions(w, 10, item);
}

fn operation(w: &mut Writer, op: &Map<String, Value>) {
    for t in strings_of(op, "tags") {
        w.string(1, t);
    }
    w.string(2, str_of(op, "summary"));
    w.string(3, str_of(op, "description"));
    w.string(5, str_of(op, "operationId"));
    for t in strings_of(op, "produces") {
        w.string(6, t);
    }
    for t in strings_of(op, "consumes") {
        w.string(7, t);
    }
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(8, true, |pi| parameters_item(pi, p));
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        w.message(9, true, |rs| {
            for (code, resp) in responses {
                if code.starts_with("x-") {
                    continue;
                }
                let Some(resp) = resp.as_object() else {
                    continue;
                };
                rs.message(1, true, |n| {
                    n.string(1, code);
                    n.message(2, true, |rv| {
                        rv.message(1, true, |r| {
                            r.string(1, str_of(resp, "description"));
                            if let Some(schema) = resp.get("schema") {
                                r.message(2, true, |si| {
                                    si.message(1, true, |s| encode_schema(s, schema));
                                });
                            }
                            vendor_extensions(r, 5, resp);
                        });
                    });
                });
            }
            vendor_extensions(rs, 2, responses);
        });
    }
    for t in strings_of(op, "schemes") {
        w.string(10, t);
    }
    w.bool(11, bool_of(op, "deprecated"));
    vendor_extensions(w, 13, op);
}

/// `ParametersItem{parameter = 1 | json_reference = 2}`.
fn parameters_item(w: &mut Writer, p: &Value) {
    let empty = Map::new();
    let p = p.as_object().unwrap_or(&empty);
    if let Some(reference) = p.get("$ref").and_then(Value::as_str) {
        w.message(2, true, |j| {
            j.string(1, reference);
            j.string(2, str_of(p, "description"));
        });
        return;
    }
    w.message(1, true, |param| {
        let location = str_of(p, "in");
        if location == "body" {
            param.message(1, true, |b| {
                b.string(1, str_of(p, "description"));
                b.string(2, str_of(p, "name"));
                b.string(3, location);
                b.bool(4, bool_of(p, "required"));
                if let Some(schema) = p.get("schema") {
                    b.message(5, true, |s| encode_schema(s, schema));
                }
                vendor_extensions(b, 6, p);
            });
            return;
        }
        // NonBodyParameter: header = 1, formData = 2, query = 3, path = 4. Query and formData
        // carry allowEmptyValue (5), which shifts the later field numbers by one.
        let (which, shifted) = match location {
            "header" => (1, false),
            "formData" => (2, true),
            "path" => (4, false),
            _ => (3, true),
        };
        let offset = u32::from(shifted);
        param.message(2, true, |nb| {
            nb.message(which, true, |s| {
                s.bool(1, bool_of(p, "required"));
                s.string(2, location);
                s.string(3, str_of(p, "description"));
                s.string(4, str_of(p, "name"));
                if shifted {
                    s.bool(5, bool_of(p, "allowEmptyValue"));
                }
                s.string(5 + offset, str_of(p, "type"));
                s.string(6 + offset, str_of(p, "format"));
                s.bool(19 + offset, bool_of(p, "uniqueItems"));
                vendor_extensions(s, 22 + offset, p);
            });
        });
    });
}

/// `Schema` (recursively).
fn encode_schema(w: &mut Writer, schema: &Value) {
    let empty = Map::new();
    let s = schema.as_object().unwrap_or(&empty);
    w.string(1, str_of(s, "$ref"));
    w.string(2, str_of(s, "format"));
    w.string(3, str_of(s, "title"));
    w.string(4, str_of(s, "description"));
    if let Some(default) = s.get("default") {
        any(w, 5, default);
    }
    let number = |k: &str| s.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let integer = |k: &str| s.get(k).and_then(Value::as_i64).unwrap_or(0);
    w.double(6, number("multipleOf"));
    w.double(7, number("maximum"));
    w.bool(8, bool_of(s, "exclusiveMaximum"));
    w.double(9, number("minimum"));
    w.bool(10, bool_of(s, "exclusiveMinimum"));
    w.int64(11, integer("maxLength"));
    w.int64(12, integer("minLength"));
    w.string(13, str_of(s, "pattern"));
    w.int64(14, integer("maxItems"));
    w.int64(15, integer("minItems"));
    w.bool(16, bool_of(s, "uniqueItems"));
    w.int64(17, integer("maxProperties"));
    w.int64(18, integer("minProperties"));
    for r in strings_of(s, "required") {
        w.string(19, r);
    }
    for e in s
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        any(w, 20, e);
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => w.message(21, true, |a| {
            // oneof member: written even when false.
            a.key(2, 0);
            a.varint(u64::from(*b));
        }),
        Some(v @ Value::Object(_)) => w.message(21, true, |a| {
            a.message(1, true, |inner| encode_schema(inner, v));
        }),
        _ => {}
    }
    let types = strings_of(s, "type");
    if !types.is_empty() {
        w.message(22, true, |t| {
            for ty in types {
                t.string(1, ty);
            }
        });
    }
    match s.get("items") {
        Some(Value::Array(list)) => w.message(23, true, |i| {
            for item in list {
                i.message(1, true, |inner| encode_schema(inner, item));
            }
        }),
        Some(item @ Value::Object(_)) => w.message(23, true, |i| {
            i.message(1, true, |inner| encode_schema(inner, item));
        }),
        _ => {}
    }
    for sub in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(24, true, |inner| encode_schema(inner, sub));
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        w.message(25, true, |p| {
            for (name, prop) in props {
                p.message(1, true, |n| {
                    n.string(1, name);
                    n.message(2, true, |inner| encode_schema(inner, prop));
                });
            }
        });
    }
    w.string(26, str_of(s, "discriminator"));
    w.bool(27, bool_of(s, "readOnly"));
    if let Some(example) = s.get("example") {
        any(w, 30, example);
    }
    vendor_extensions(w, 31, s);
}
