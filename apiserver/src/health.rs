//! `/healthz`, `/livez` and `/readyz` as upstream's healthz package serves them: `ok`, the
//! per-check list with `?verbose`, `?exclude=<check>`, one path per check
//! (`/readyz/ping`), and on failure a 500 listing every check with reasons withheld.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

use crate::request::Query;
use crate::state::AppState;

/// Which endpoint is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Healthz,
    Livez,
    Readyz,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Healthz => "healthz",
            Endpoint::Livez => "livez",
            Endpoint::Readyz => "readyz",
        }
    }

    /// The checks of this endpoint, in upstream's order (the node's replica stands in
    /// for etcd; readiness of the node's own start-up for informer sync).
    fn checks(self) -> &'static [&'static str] {
        match self {
            Endpoint::Healthz | Endpoint::Livez => &["ping", "log", "etcd"],
            Endpoint::Readyz => &["ping", "log", "etcd", "etcd-readiness", "informer-sync"],
        }
    }
}

/// Whether one named check passes.
fn check(state: &AppState, name: &str) -> bool {
    match name {
        "informer-sync" | "etcd-readiness" => state.is_ready(),
        _ => true,
    }
}

fn text(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The root endpoint (`/readyz`), honouring `verbose` and `exclude`.
pub fn root(state: &AppState, endpoint: Endpoint, raw_query: Option<&str>) -> Response {
    let query = Query::parse(raw_query);
    let excluded: Vec<&str> = query.all("exclude");
    let mut lines = String::new();
    let mut failed = false;
    for name in endpoint.checks() {
        if excluded.contains(name) {
            lines.push_str(&format!("[+]{name} excluded: ok\n"));
        } else if check(state, name) {
            lines.push_str(&format!("[+]{name} ok\n"));
        } else {
            lines.push_str(&format!("[-]{name} failed: reason withheld\n"));
            failed = true;
        }
    }
    let unknown: Vec<String> = excluded
        .iter()
        .filter(|e| !endpoint.checks().contains(e))
        .map(|e| format!("{e:?}"))
        .collect();
    if !unknown.is_empty() {
        lines.push_str(&format!(
            "warn: some health checks cannot be excluded: no matches for {}\n",
            unknown.join(",")
        ));
    }
    let name = endpoint.name();
    if failed {
        // Go's http.Error appends a newline.
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{lines}{name} check failed\n"),
        );
    }
    if query.get("verbose").is_none() {
        return text(StatusCode::OK, "ok".into());
    }
    text(StatusCode::OK, format!("{lines}{name} check passed\n"))
}

/// One check (`/livez/ping`); `None` when the endpoint has no such check.
pub fn single(state: &AppState, endpoint: Endpoint, name: &str) -> Option<Response> {
    if !endpoint.checks().contains(&name) {
        return None;
    }
    Some(if check(state, name) {
        text(StatusCode::OK, "ok".into())
    } else {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal server error: {name} check failed\n"),
        )
    })
}
