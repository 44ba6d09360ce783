//! The stored form of an object: JSON whose first bytes are
//! `{"metadata":{"resourceVersion":"<rev>"`, so each node can stamp its own local revision
//! into replicated bytes with a splice instead of a parse (the stamp runs under the
//! replica's commit lock). Key order is invisible to clients; lists splice the stored
//! bytes straight into responses.

use std::sync::Arc;

use beemesh_mesh_backend::Stamper;
use serde_json::Value;

const PREFIX: &[u8] = br#"{"metadata":{"resourceVersion":""#;

/// Serialises `obj` in stored form with `resourceVersion` set to `revision` (0 = unset:
/// the replica stamps it when the write commits).
pub fn encode(obj: &Value, revision: u64) -> Result<Vec<u8>, serde_json::Error> {
    let Some(map) = obj.as_object() else {
        return serde_json::to_vec(obj);
    };
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(PREFIX);
    out.extend_from_slice(revision.to_string().as_bytes());
    out.push(b'"');
    if let Some(Value::Object(meta)) = map.get("metadata") {
        for (k, v) in meta {
            if k == "resourceVersion" {
                continue;
            }
            out.push(b',');
            serde_json::to_writer(&mut out, k)?;
            out.push(b':');
            serde_json::to_writer(&mut out, v)?;
        }
    }
    out.push(b'}');
    for (k, v) in map {
        if k == "metadata" {
            continue;
        }
        out.push(b',');
        serde_json::to_writer(&mut out, k)?;
        out.push(b':');
        serde_json::to_writer(&mut out, v)?;
    }
    out.push(b'}');
    Ok(out)
}

/// Rewrites the revision of stored bytes; `None` if they are not in stored form.
pub fn restamp(bytes: &[u8], revision: u64) -> Option<Vec<u8>> {
    let rest = bytes.strip_prefix(PREFIX)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    if !rest[..end].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let digits = revision.to_string();
    let mut out = Vec::with_capacity(bytes.len() + digits.len());
    out.extend_from_slice(PREFIX);
    out.extend_from_slice(digits.as_bytes());
    out.extend_from_slice(&rest[end..]);
    Some(out)
}

/// The replica's stamp: splice when the bytes are in stored form, otherwise parse and
/// re-encode (bytes from an older node or a foreign writer).
pub fn stamper() -> Stamper {
    Stamper(Arc::new(|bytes: &[u8], revision: u64| {
        restamp(bytes, revision).or_else(|| {
            let obj: Value = serde_json::from_slice(bytes).ok()?;
            encode(&obj, revision).ok()
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_form_round_trips_and_restamps() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "7", "labels": {"resourceVersion": "x"}},
            "data": {"resourceVersion": "y"}});
        let bytes = encode(&obj, 0).unwrap();
        assert!(bytes.starts_with(br#"{"metadata":{"resourceVersion":"0","#));
        let stamped = restamp(&bytes, 1234).unwrap();
        let back: Value = serde_json::from_slice(&stamped).unwrap();
        let mut expected = obj.clone();
        expected["metadata"]["resourceVersion"] = json!("1234");
        assert_eq!(back, expected);
        // Foreign JSON is parsed and re-encoded by the stamper.
        let foreign = serde_json::to_vec(&obj).unwrap();
        assert!(restamp(&foreign, 1).is_none());
        let fixed = (stamper().0)(&foreign, 9).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&fixed).unwrap()["metadata"]["resourceVersion"],
            "9"
        );
    }
}
