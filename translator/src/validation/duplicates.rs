//! Duplicate keys in a JSON body. Parsing into a map keeps only the last occurrence, so
//! strict field validation scans the raw bytes, as upstream's strict decoder does.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Paths (`metadata.name`, `spec.containers[0].image`) of keys that occur more than once
/// in their object. Invalid JSON yields whatever was found before the error.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    scan(body).0
}

/// The same for a body in another self-describing format (a YAML apply configuration:
/// `duplicate_fields_in(serde_yaml::Deserializer::from_slice(body))`); scalar keys of any
/// type count by their text.
pub fn duplicate_fields_in<'de, D: Deserializer<'de>>(deserializer: D) -> Vec<String> {
    let mut found = Vec::new();
    let mut keys = Vec::new();
    let _ = Scan {
        path: String::new(),
        found: &mut found,
        keys: &mut keys,
    }
    .deserialize(deserializer);
    found
}

/// The duplicates, and the path of every key in the order the body gives them.
fn scan(body: &[u8]) -> (Vec<String>, Vec<String>) {
    let mut found = Vec::new();
    let mut keys = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Scan {
        path: String::new(),
        found: &mut found,
        keys: &mut keys,
    }
    .deserialize(&mut de);
    (found, keys)
}

/// A mapping key of any scalar type, as text (JSON keys are strings; YAML's need not be).
struct Key(String);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Key, E> {
                Ok(Key("null".into()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

/// Orders strict decoding errors (`unknown field "p"`, `duplicate field "p"`) as upstream's
/// decoder meets them reading `body`: an unknown field where its key first appears, a
/// duplicate where its key repeats. A duplicate inside (or of) an unknown field is not
/// reported, since the decoder skips unknown values. Other messages follow, in order.
pub fn document_order(body: &[u8], errors: Vec<String>) -> Vec<String> {
    let (_, keys) = scan(body);
    let quoted = |e: &str, prefix: &str| {
        e.strip_prefix(prefix)
            .and_then(|rest| serde_json::from_str::<String>(rest).ok())
    };
    let unknown: Vec<String> = errors
        .iter()
        .filter_map(|e| quoted(e, "unknown field "))
        .collect();
    let within_unknown = |path: &str| {
        unknown.iter().any(|u| {
            path == u
                || path
                    .strip_prefix(u.as_str())
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
    };
    let mut positioned: Vec<(usize, String)> = Vec::new();
    for e in errors {
        let position = if let Some(path) = quoted(&e, "unknown field ") {
            keys.iter().position(|k| *k == path)
        } else if let Some(path) = quoted(&e, "duplicate field ") {
            if within_unknown(&path) {
                continue;
            }
            keys.iter()
                .enumerate()
                .filter(|(_, k)| **k == path)
                .nth(1)
                .map(|(i, _)| i)
        } else {
            None
        };
        positioned.push((position.unwrap_or(usize::MAX), e));
    }
    positioned.sort_by_key(|(p, _)| *p);
    positioned.into_iter().map(|(_, e)| e).collect()
}

struct Scan<'a> {
    path: String,
    found: &'a mut Vec<String>,
    keys: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(Key(key)) = map.next_key::<Key>()? {
            let child = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{}", self.path, key)
            };
            if !seen.insert(key) {
                self.found.push(child.clone());
            }
            self.keys.push(child.clone());
            map.next_value_seed(Scan {
                path: child,
                found: &mut *self.found,
                keys: &mut *self.keys,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Scan {
                path: format!("{}[{}]", self.path, i),
                found: &mut *self.found,
                keys: &mut *self.keys,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_duplicates_with_paths() {
        let body = br#"{"metadata":{"name":"a","name":"b"},"spec":{"containers":[{"image":"x","image":"y"}]},"kind":"Pod"}"#;
        assert_eq!(
            duplicate_fields(body),
            ["metadata.name", "spec.containers[0].image"]
        );
        assert!(duplicate_fields(br#"{"a":1,"b":{"a":2}}"#).is_empty());
        assert!(duplicate_fields(b"not json").is_empty());
    }

    #[test]
    fn strict_errors_in_decoder_order() {
        // upstream's field_validation_test body, shortened.
        let body = br#"{"metadata":{"name":"a","name":"b","unknownMeta":1},
            "spec":{"unknown1":1,"unknownDupe":1,"unknownDupe":2,"paused":true,"paused":false,
            "template":{"spec":{"containers":[{"unknownNested":1,"imagePullPolicy":"A","imagePullPolicy":"B"}]}}}}"#;
        let errors = [
            "duplicate field \"metadata.name\"",
            "duplicate field \"spec.unknownDupe\"",
            "duplicate field \"spec.paused\"",
            "duplicate field \"spec.template.spec.containers[0].imagePullPolicy\"",
            "unknown field \"metadata.unknownMeta\"",
            "unknown field \"spec.unknown1\"",
            "unknown field \"spec.unknownDupe\"",
            "unknown field \"spec.template.spec.containers[0].unknownNested\"",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            document_order(body, errors),
            [
                "duplicate field \"metadata.name\"",
                "unknown field \"metadata.unknownMeta\"",
                "unknown field \"spec.unknown1\"",
                "unknown field \"spec.unknownDupe\"",
                "duplicate field \"spec.paused\"",
                "unknown field \"spec.template.spec.containers[0].unknownNested\"",
                "duplicate field \"spec.template.spec.containers[0].imagePullPolicy\"",
            ]
        );
    }
}
