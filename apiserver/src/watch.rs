//! Watch streams: newline-delimited `{"type":..., "object":...}` events from the
//! replica's history and live changes, filtered by namespace and selectors, with
//! bookmarks, `timeoutSeconds`, WatchList (`sendInitialEvents`) and 410 when the start
//! revision is no longer retained.

// ApiError carries a full Status (message, subject, causes); it is the crate-wide error type.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use beemesh_translator::store::parse_stored;
use beemesh_translator::store::{EventKind, SubscriptionEnd};
use beemesh_translator::{ApiError, ResourceInfo};
use bytes::Bytes;
use http::{StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::negotiate::{IncludeObject, Output};
use crate::request::{Query, ResourceTarget};
use crate::resource::{Filter, partial_metadata};
use crate::state::AppState;
use crate::table;

/// How often an idle watch with `allowWatchBookmarks` gets a bookmark.
const BOOKMARK_EVERY: Duration = Duration::from_secs(15);

struct Encoder {
    res: std::sync::Arc<ResourceInfo>,
    output: Output,
    include: IncludeObject,
    first_table: bool,
}

impl Encoder {
    /// `obj` is already in the watched version (see `served`).
    fn event(&mut self, kind: &str, obj: &Value) -> Bytes {
        let object = match self.output {
            Output::Table { beta } => {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let mut t = table::table(
                    &self.res,
                    std::slice::from_ref(obj),
                    self.include,
                    &rv,
                    None,
                    None,
                    chrono::Utc::now(),
                );
                if !self.first_table {
                    t["columnDefinitions"] = json!([]);
                }
                self.first_table = false;
                if beta {
                    t["apiVersion"] = json!("meta.k8s.io/v1beta1");
                }
                t
            }
            // Watch events carry objects: PartialObjectMetadata either way.
            Output::PartialMetadata { beta, .. } => partial_metadata(obj, beta),
            Output::Json | Output::Yaml => obj.clone(),
        };
        line(&json!({"type": kind, "object": object}))
    }

    fn bookmark(&self, revision: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(&json!({
            "type": "BOOKMARK",
            "object": {"kind": self.res.kind, "apiVersion": self.res.api_version(), "metadata": meta}
        }))
    }
}

fn line(v: &Value) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

fn error_event(err: &ApiError) -> Bytes {
    line(&json!({"type": "ERROR", "object": crate::app::status_of(err)}))
}

/// How long a watch from a revision this node has not reached waits for it (upstream's
/// watch cache blocks 3 s) before failing with "Too large resource version".
const FUTURE_REVISION_WAIT: Duration = Duration::from_secs(3);

/// Starts a watch and returns the streaming response.
pub fn serve(
    state: AppState,
    target: &ResourceTarget,
    query: &Query,
    output: Output,
) -> Result<Response, ApiError> {
    let res = target.resource.clone();
    // A custom resource's watch ends when its CRD stops serving it (deleted, version
    // withdrawn), as upstream closes those watches.
    let registry = state.registry.clone();
    let filter = Filter::from_query(&res, query)?;
    let include = match query.get("includeObject") {
        Some("None") => IncludeObject::None,
        Some("Object") => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    };
    let bookmarks = query.flag("allowWatchBookmarks");
    let send_initial = query.opt_flag("sendInitialEvents");
    let rv = query.get("resourceVersion").unwrap_or("");
    crate::resource::validate_list_options(query, true)?;
    if send_initial == Some(true) && !bookmarks {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            vec![beemesh_translator::Cause::new(
                "FieldValueForbidden",
                "allowWatchBookmarks",
                "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
            )],
        ));
    }
    // Upstream: absent or 0 is the server's random 30-60 min; a negative value (an int64
    // there) is a timer that has already fired.
    let timeout = match query.int("timeoutSeconds")? {
        Some(0) | None => Duration::from_secs(1800 + rand::random_range(0..1800)),
        Some(s) => Duration::from_secs(u64::try_from(s).unwrap_or(0)),
    };
    let store = &state.service.store;
    // Initial state: rv ""/"0" (legacy) or sendInitialEvents=true.
    let (source, initial_end_bookmark) = match (rv, send_initial) {
        (_, Some(true)) => (store.watch(&res, target.namespace.as_deref(), None)?, true),
        ("" | "0", None) => (store.watch(&res, target.namespace.as_deref(), None)?, false),
        ("", Some(false)) => {
            let now = store.revision();
            (
                store.watch(&res, target.namespace.as_deref(), Some(now))?,
                false,
            )
        }
        (rv, _) => {
            let from = beemesh_translator::store::parse_resource_version(rv)?;
            match store.watch(&res, target.namespace.as_deref(), Some(from)) {
                Ok(s) => (s, false),
                Err(e) if e.code() == 410 => {
                    // Upstream answers an expired watch with an ERROR event in a 200 stream.
                    return Ok(stream_response(vec![error_event(&e)], None));
                }
                Err(e) => return Err(e),
            }
        }
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut encoder = Encoder {
        res: res.clone(),
        output,
        include,
        first_table: true,
    };
    state.metrics.watch_started();
    let metrics = state.metrics.clone();
    let store = state.service.store.clone();
    tokio::spawn(async move {
        let mut source = source;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        // A revision from the future (typically issued by another node): wait briefly,
        // then an ERROR event, as upstream's watch cache does; the client re-lists.
        if source.revision > store.revision() {
            let waited = tokio::time::Instant::now();
            while source.revision > store.revision() && waited.elapsed() < FUTURE_REVISION_WAIT {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let current = store.revision();
            if source.revision > current {
                let err = ApiError::Timeout {
                    message: format!(
                        "Timeout: Too large resource version: {}, current: {current}",
                        source.revision
                    ),
                };
                let _ = tx.send(error_event(&err)).await;
                metrics.watch_ended();
                return;
            }
        }
        for item in &source.initial {
            let Ok(obj) = served(&res, item) else {
                continue;
            };
            if filter.matches(&obj) && tx.send(encoder.event("ADDED", &obj)).await.is_err() {
                metrics.watch_ended();
                return;
            }
        }
        if initial_end_bookmark {
            let _ = tx.send(encoder.bookmark(source.revision, true)).await;
        }
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        let mut still_served = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = tx.closed() => break,
                _ = still_served.tick(), if res.custom.is_some() => {
                    let crd = |r: &ResourceInfo| r.custom.as_ref().map(|c| c.crd_name.clone());
                    let now = registry.get(&res.group, &res.version, &res.plural);
                    if now.is_none_or(|r| crd(&r) != crd(&res)) { break; }
                }
                _ = ticker.tick(), if bookmarks => {
                    let rev = source.subscription.last_revision();
                    if tx.send(encoder.bookmark(rev, false)).await.is_err() { break; }
                }
                next = source.subscription.next() => {
                    let event = match next {
                        Ok(e) => e,
                        Err(SubscriptionEnd::Lagged) => {
                            let err = ApiError::gone("the watch fell too far behind; re-list and watch again");
                            let _ = tx.send(error_event(&err)).await;
                            break;
                        }
                        Err(SubscriptionEnd::Closed) => break,
                    };
                    if !event.key.starts_with(&source.prefix) { continue; }
                    let Ok(new) = served(&res, &event.value) else { continue };
                    let new_match = filter.matches(&new);
                    let old_match = event
                        .prev
                        .as_ref()
                        .and_then(|p| served(&res, p).ok())
                        .is_some_and(|old| filter.matches(&old));
                    let kind = match (event.kind, event.prev.is_some(), old_match, new_match) {
                        (EventKind::Delete, _, old, new) if old || new => "DELETED",
                        (EventKind::Delete, _, _, _) => continue,
                        (EventKind::Put, false, _, true) => "ADDED",
                        (EventKind::Put, true, true, true) => "MODIFIED",
                        (EventKind::Put, true, false, true) => "ADDED",
                        (EventKind::Put, true, true, false) => "DELETED",
                        _ => continue,
                    };
                    if tx.send(encoder.event(kind, &new)).await.is_err() { break; }
                }
            }
        }
        metrics.watch_ended();
    });
    Ok(stream_response(Vec::new(), Some(rx)))
}

/// A stored object in the watched version: objects are stored in their resource's
/// storage version, and selectors name the served version's fields.
fn served(res: &ResourceInfo, stored: &[u8]) -> Result<Value, ApiError> {
    let obj = parse_stored(stored)?;
    Ok(if beemesh_translator::conversion::needs_conversion(res) {
        beemesh_translator::conversion::to_served(res, obj)
    } else {
        obj
    })
}

fn stream_response(first: Vec<Bytes>, rx: Option<mpsc::Receiver<Bytes>>) -> Response {
    use futures::StreamExt;
    let head = futures::stream::iter(first.into_iter().map(Ok::<Bytes, std::io::Error>));
    let body = match rx {
        Some(rx) => {
            Body::from_stream(head.chain(tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok)))
        }
        None => Body::from_stream(head),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, private"),
    );
    resp
}
