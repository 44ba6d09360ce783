//! The router: health and version endpoints open to everyone, everything else behind
//! authentication; discovery and OpenAPI documents; resource requests to `resource`.

// ApiError carries a full Status (message, subject, causes); it is the crate-wide error type.

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde_json::{Value, json};

use beemesh_translator::ApiError;

use crate::auth::{self, UserInfo};
use crate::discovery::{self, DiscoveryFormat};
use crate::health::{self, Endpoint};
use crate::negotiate::MAX_BODY_BYTES;
use crate::request::{self, Query};
use crate::resource;
use crate::server::PeerIdentity;
use crate::state::AppState;

/// The Kubernetes version this server reports (kubectl's dispatcher picks its binary from it).
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";
pub const KUBE_GIT_VERSION: &str = "v1.33.0-beemesh";

/// An `ApiError` rendered as a Kubernetes `Status`.
pub struct StatusResponse(pub ApiError);

/// The `Status` of an error as clients read it. A "Too large resource version" timeout
/// carries upstream's `ResourceVersionTooLarge` cause and `retryAfterSeconds`: client-go's
/// reflector looks for them (and ignores the message when `details` is absent) to decide
/// to re-list from scratch instead of retrying the same resourceVersion forever.
pub fn status_of(err: &ApiError) -> Value {
    let mut status = err.status();
    if let ApiError::Timeout { message } = err
        && message.contains("Too large resource version")
    {
        status["details"] = json!({
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        });
    }
    status
}

impl IntoResponse for StatusResponse {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.0.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&status_of(&self.0)).unwrap_or_default();
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = code;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let ApiError::TooManyRequests { retry_after, .. } = &self.0
            && let Ok(v) = HeaderValue::from_str(&retry_after.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// The whole HTTP surface of a node.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/livez", axum::routing::get(livez))
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .route("/livez/{check}", axum::routing::get(livez_check))
        .route("/healthz/{check}", axum::routing::get(healthz_check))
        .route("/readyz/{check}", axum::routing::get(readyz_check))
        // go-restful serves the version WebService at `/version` and `/version/` (the
        // Python client asks for the latter).
        .route("/version", axum::routing::get(version))
        .route("/version/", axum::routing::get(version))
        .fallback(dispatch)
        .with_state(state)
}

async fn healthz(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    health::root(&state, Endpoint::Healthz, q.as_deref())
}

async fn livez(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    health::root(&state, Endpoint::Livez, q.as_deref())
}

async fn readyz(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    health::root(&state, Endpoint::Readyz, q.as_deref())
}

fn health_check(state: &AppState, endpoint: Endpoint, name: &str) -> Response {
    health::single(state, endpoint, name).unwrap_or_else(|| {
        StatusResponse(ApiError::NotFound {
            message: "the server could not find the requested resource".into(),
            subject: Default::default(),
        })
        .into_response()
    })
}

async fn healthz_check(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    health_check(&state, Endpoint::Healthz, &name)
}

async fn livez_check(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    health_check(&state, Endpoint::Livez, &name)
}

async fn readyz_check(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    health_check(&state, Endpoint::Readyz, &name)
}

fn version_info() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": KUBE_GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
    })
}

async fn version() -> Response {
    json_response(StatusCode::OK, "application/json", &version_info())
}

fn json_response(status: StatusCode, content_type: &'static str, v: &Value) -> Response {
    let mut resp = Response::new(Body::from(serde_json::to_vec(v).unwrap_or_default()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// The user a request authenticates as (client certificate, then bearer token).
fn authenticated(state: &AppState, req: &Request) -> Option<UserInfo> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    auth::authenticate(state, req.extensions().get::<PeerIdentity>(), authorization)
}

/// Authenticates, reads the body (bounded), routes, and records metrics and a log line.
async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", id = %request_id, %method, %path);
    let _enter = span.enter();
    let Some(user) = authenticated(&state, &req) else {
        return StatusResponse(ApiError::Unauthorized {
            message: "Unauthorized".into(),
        })
        .into_response();
    };
    let (verb, resource_name, result) = route(&state, &user, req).await;
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            if e.code() >= 500 {
                tracing::error!(error = %e, "request failed");
            }
            StatusResponse(e).into_response()
        }
    };
    let code = response.status().as_u16();
    state
        .metrics
        .observe(&verb, &resource_name, code, started.elapsed().as_secs_f64());
    tracing::debug!(
        code,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "done"
    );
    response
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(crate::negotiate::too_large())
            } else {
                Err(ApiError::bad_request(format!(
                    "reading the request body: {e}"
                )))
            }
        }
    }
}

fn kube_verb(method: &Method, has_name: bool, watch: bool) -> &'static str {
    match (method, has_name) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET, true) => "get",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "other",
    }
}

async fn route(
    state: &AppState,
    user: &UserInfo,
    req: Request,
) -> (String, String, Result<Response, ApiError>) {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let nonresource = |r: Result<Response, ApiError>| ("get".to_string(), String::new(), r);
    if parts.method == Method::GET {
        match path.trim_end_matches('/') {
            "/metrics" => {
                state.metrics.set_revision(state.service.store.revision());
                let mut resp = Response::new(Body::from(state.metrics.render()));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                return nonresource(Ok(resp));
            }
            "/openapi/v2" | "/swagger.json" => {
                return nonresource(Ok(crate::openapi_routes::v2(state, accept.as_deref())));
            }
            "/openapi/v3" => return nonresource(Ok(crate::openapi_routes::v3_index(state))),
            p if p.starts_with("/openapi/v3/") => {
                return nonresource(crate::openapi_routes::v3_doc(
                    state,
                    &p["/openapi/v3/".len()..],
                    query.get("hash"),
                ));
            }
            "/api" | "/apis" => {
                let legacy = path.trim_end_matches('/') == "/api";
                let r = match discovery::negotiate_discovery(accept.as_deref().unwrap_or("")) {
                    DiscoveryFormat::Legacy => {
                        let doc = if legacy {
                            discovery::api_versions()
                        } else {
                            discovery::api_group_list(&state.registry)
                        };
                        Ok(json_response(StatusCode::OK, "application/json", &doc))
                    }
                    fmt => {
                        let doc = discovery::aggregated(&state.registry, legacy, fmt);
                        let ct = discovery::content_type(fmt);
                        let mut resp = json_response(StatusCode::OK, "application/json", &doc);
                        if let Ok(v) = HeaderValue::from_str(ct) {
                            resp.headers_mut().insert(header::CONTENT_TYPE, v);
                        }
                        Ok(resp)
                    }
                };
                return nonresource(r);
            }
            _ => {}
        }
    }
    let target = match request::parse_resource_path(&state.registry, &path) {
        Ok(Some(t)) => t,
        Ok(None) => {
            // Discovery documents are read-only; a path that is nothing at all is a 404
            // whatever the method.
            let r = match discovery_document(state, &path) {
                Ok(doc) if parts.method == Method::GET => Ok(doc),
                Ok(_) => Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource ({} {path})",
                    parts.method
                ))),
                Err(e) => Err(e),
            };
            return nonresource(r);
        }
        Err(e) => return ("other".into(), String::new(), Err(e)),
    };
    if crate::pod_streams::is_pod_stream(&target) {
        let sub = target.subresource.clone().unwrap_or_default();
        let verb = crate::pod_streams::authorization_verb(&sub).to_string();
        let r = crate::pod_streams::handle(state, user, parts, body, target, query).await;
        return (verb, format!("pods/{sub}"), r);
    }
    let verb = kube_verb(&parts.method, target.name.is_some(), query.flag("watch")).to_string();
    let resource_name = target.resource.plural.clone();
    let deprecation = deprecation_warning(&target.resource);
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return (verb, resource_name, Err(e)),
    };
    let r = resource::handle(
        state.clone(),
        user,
        parts.method.clone(),
        target,
        query,
        parts.headers,
        body,
    )
    .await;
    let r = match deprecation {
        // Every answer for a deprecated CRD version warns, errors included, as upstream.
        Some(text) => {
            let mut resp = r.unwrap_or_else(|e| StatusResponse(e).into_response());
            let value = format!(
                "299 - \"{}\"",
                text.replace('\\', "\\\\").replace('"', "\\\"")
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().append(header::WARNING, v);
            }
            Ok(resp)
        }
        None => r,
    };
    (verb, resource_name, r)
}

/// The warning a deprecated CRD version carries (registration fills in upstream's default
/// `<group>/<version> <Kind> is deprecated`); an empty `deprecationWarning` silences it.
fn deprecation_warning(res: &beemesh_translator::ResourceInfo) -> Option<String> {
    let text = res.custom.as_ref()?.deprecation_warning.as_ref()?;
    (!text.is_empty()).then(|| text.clone())
}

fn discovery_document(state: &AppState, path: &str) -> Result<Response, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let doc = match segs.as_slice() {
        ["api", version] => discovery::api_resource_list(&state.registry, "", version),
        ["apis", group] => discovery::api_group(&state.registry, group),
        ["apis", group, version] => discovery::api_resource_list(&state.registry, group, version),
        _ => None,
    };
    match doc {
        Some(doc) => Ok(json_response(StatusCode::OK, "application/json", &doc)),
        None => Err(ApiError::NotFound {
            message: format!("the server could not find the requested resource (path {path})"),
            subject: Default::default(),
        }),
    }
}
