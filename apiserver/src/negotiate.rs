//! Content negotiation: which representation a response takes (from `Accept`) and how a
//! request body is decoded (from `Content-Type`).

// ApiError carries a full Status (message, subject, causes); it is the crate-wide error type.

use beemesh_translator::{ApiError, protobuf};
use serde_json::Value;

/// Largest request body accepted (upstream's limit is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

pub use crate::table::IncludeObject;

/// The representation a response is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// meta.k8s.io Table; `v1beta1` is kept for old clients.
    Table {
        beta: bool,
    },
    /// meta.k8s.io PartialObjectMetadata(List); `list` when the client asked for
    /// `PartialObjectMetadataList` (upstream answers a mismatch with the endpoint, a list
    /// asked of an object or an object of a list, with 406).
    PartialMetadata {
        beta: bool,
        list: bool,
    },
}

/// One media range of an Accept header.
#[derive(Debug, Clone, Default)]
pub struct MediaRange {
    pub mime: String,
    pub params: Vec<(String, String)>,
}

impl MediaRange {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits an Accept header into media ranges, in the client's order.
pub fn parse_accept(accept: &str) -> Vec<MediaRange> {
    accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let mime = pieces.next()?.trim().to_ascii_lowercase();
            if mime.is_empty() {
                return None;
            }
            let params = pieces
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
                })
                .collect();
            Some(MediaRange { mime, params })
        })
        .collect()
}

/// Picks the first acceptable representation; 406 when none is.
/// `allow_transform` is false where Tables make no sense (e.g. the Status of a delete).
pub fn negotiate(accept: Option<&str>, allow_transform: bool) -> Result<Output, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Json);
    };
    let ranges = parse_accept(accept);
    for r in &ranges {
        match r.mime.as_str() {
            "application/json" | "application/*" | "*/*" => match r.param("as") {
                None => return Ok(Output::Json),
                Some(as_kind) => {
                    let group_ok = r.param("g") == Some("meta.k8s.io");
                    let version = r.param("v");
                    if !allow_transform || !group_ok {
                        continue;
                    }
                    let beta = match version {
                        Some("v1") => false,
                        Some("v1beta1") => true,
                        _ => continue,
                    };
                    match as_kind {
                        "Table" => return Ok(Output::Table { beta }),
                        "PartialObjectMetadata" | "PartialObjectMetadataList" => {
                            return Ok(Output::PartialMetadata {
                                beta,
                                list: as_kind == "PartialObjectMetadataList",
                            });
                        }
                        _ => continue,
                    }
                }
            },
            "application/yaml" if r.param("as").is_none() => return Ok(Output::Yaml),
            _ => {}
        }
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf (requests only); got {accept}"
    )))
}

/// Upstream's 413 for a body over the limit.
pub fn too_large() -> ApiError {
    ApiError::PayloadTooLarge {
        message: format!("Request entity too large: limit is {MAX_BODY_BYTES}"),
    }
}

/// Decodes a create/update body by its Content-Type (none means JSON, as upstream's
/// Python client relies on).
pub fn decode_body(content_type: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    let mime = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    match mime.as_str() {
        "" | "application/json" | "*/*" => parse_json(body),
        "application/yaml" | "application/x-yaml" | "text/yaml" => parse_yaml(body),
        "application/vnd.kubernetes.protobuf" => protobuf::decode_object(body),
        other => Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other})"
        ))),
    }
}

/// Whether a request body of this Content-Type is decoded as JSON.
pub fn is_json_body(content_type: Option<&str>) -> bool {
    let mime = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    matches!(mime.as_str(), "" | "application/json" | "*/*")
}

/// JSON into a value; syntax errors become 400 with the position.
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("error decoding request body: invalid JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "error decoding request body: the body must be a JSON object",
        ));
    }
    Ok(value)
}

/// YAML into a value (one document); errors become 400.
pub fn parse_yaml(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_yaml::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("error decoding request body: invalid YAML: {e}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "error decoding request body: the body must be a mapping",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL_GET: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

    #[test]
    fn kubectl_get_gets_a_table() {
        assert_eq!(
            negotiate(Some(KUBECTL_GET), true).unwrap(),
            Output::Table { beta: false }
        );
        assert_eq!(negotiate(Some(KUBECTL_GET), false).unwrap(), Output::Json);
    }

    #[test]
    fn protobuf_preferring_clients_get_json_and_nothing_acceptable_is_406() {
        let describe = "application/vnd.kubernetes.protobuf,application/json";
        assert_eq!(negotiate(Some(describe), true).unwrap(), Output::Json);
        let err = negotiate(Some("application/vnd.kubernetes.protobuf"), true).unwrap_err();
        assert_eq!(err.code(), 406);
        let err =
            negotiate(Some("application/json;as=Table;v=v9;g=meta.k8s.io"), true).unwrap_err();
        assert_eq!(err.code(), 406);
    }

    #[test]
    fn bodies_decode_by_content_type() {
        assert!(decode_body(None, br#"{"a":1}"#).is_ok());
        assert_eq!(decode_body(None, b"{nope").unwrap_err().code(), 400);
        assert!(decode_body(Some("application/yaml"), b"a: 1\n").is_ok());
        assert_eq!(
            decode_body(Some("text/plain"), b"x").unwrap_err().code(),
            415
        );
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(decode_body(None, &big).unwrap_err().code(), 413);
    }
}
