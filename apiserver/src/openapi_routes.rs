//! Serving the OpenAPI documents: v2 as JSON or gnostic protobuf by Accept, the v3
//! index, and v3 group-version documents that are immutable under their hash.

use axum::body::Body;
use axum::response::Response;
use beemesh_translator::ApiError;
use http::{HeaderValue, StatusCode, header};

use crate::state::AppState;

/// What clients ask for (`@` is not a valid media-type character, so upstream answers with
/// the dotted form below, which Go's mime parser accepts).
const V2_PROTOBUF_ACCEPT: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
const V2_PROTOBUF_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

fn bytes_response(content_type: &str, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::OK;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// `/openapi/v2`: protobuf when the client lists the gnostic media type, JSON otherwise.
pub fn v2(state: &AppState, accept: Option<&str>) -> Response {
    let wants_proto = accept.is_some_and(|a| {
        a.split(',').any(|m| {
            m.split(';').next().is_some_and(|t| {
                let t = t.trim();
                t.eq_ignore_ascii_case(V2_PROTOBUF_ACCEPT)
                    || t.eq_ignore_ascii_case(V2_PROTOBUF_CONTENT_TYPE)
            })
        })
    });
    if wants_proto {
        bytes_response(
            V2_PROTOBUF_CONTENT_TYPE,
            state.openapi.current().v2_protobuf().to_vec(),
        )
    } else {
        bytes_response(
            "application/json",
            state.openapi.current().v2_json().to_vec(),
        )
    }
}

pub fn v3_index(state: &AppState) -> Response {
    let body = serde_json::to_vec(state.openapi.current().v3_index()).unwrap_or_default();
    bytes_response("application/json", body)
}

/// `/openapi/v3/<api/v1 | apis/g/v>`; with the current `hash`, cacheable forever.
pub fn v3_doc(state: &AppState, path: &str, hash: Option<&str>) -> Result<Response, ApiError> {
    let api = state.openapi.current();
    let Some((doc, current)) = api.v3_group_version(path) else {
        return Err(ApiError::NotFound {
            message: format!(
                "the server could not find the requested resource (path /openapi/v3/{path})"
            ),
            subject: Default::default(),
        });
    };
    let mut resp = bytes_response("application/json", doc.to_vec());
    let etag = format!("\"{current}\"");
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    let cache = if hash == Some(current) {
        "public, immutable"
    } else {
        "no-cache, no-store, must-revalidate"
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(resp)
}
