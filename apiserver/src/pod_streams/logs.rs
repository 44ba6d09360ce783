//! `GET pods/{name}/log`: `PodLogOptions` from the query, the runtime's log stream as a
//! chunked `text/plain` body (each chunk written as it comes, so `kubectl logs -f`
//! shows lines as they are written).

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use chrono::{DateTime, Utc};
use http::{HeaderValue, StatusCode, header};

use beemesh_translator::ApiError;
use beemesh_workloads::runtime::{LogOptions, Runtime};

use super::{PodRef, runtime_error};
use crate::request::Query;

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::invalid(
        "",
        "PodLogOptions",
        "",
        vec![beemesh_translator::Cause::new(
            "FieldValueInvalid",
            field,
            message,
        )],
    )
}

/// `PodLogOptions` as upstream validates them (422 on a bad value).
pub fn log_options(query: &Query) -> Result<LogOptions, ApiError> {
    let tail_lines = match query.int("tailLines")? {
        Some(n) if n < 0 => {
            return Err(invalid(
                "tailLines",
                format!("Invalid value: {n}: must be greater than or equal to 0"),
            ));
        }
        n => n.map(|n| n as u64),
    };
    let limit_bytes = match query.int("limitBytes")? {
        Some(n) if n < 1 => {
            return Err(invalid(
                "limitBytes",
                format!("Invalid value: {n}: must be greater than 0"),
            ));
        }
        n => n.map(|n| n as u64),
    };
    let since_seconds = query.int("sinceSeconds")?;
    let since_time = query.get("sinceTime").filter(|s| !s.is_empty());
    if since_seconds.is_some() && since_time.is_some() {
        return Err(invalid(
            "sinceSeconds",
            "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified".into(),
        ));
    }
    let since = match (since_seconds, since_time) {
        (Some(s), _) if s < 1 => {
            return Err(invalid(
                "sinceSeconds",
                format!("Invalid value: {s}: must be greater than 0"),
            ));
        }
        (Some(s), _) => Some(Utc::now() - chrono::Duration::seconds(s)),
        (None, Some(t)) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|e| ApiError::bad_request(format!("invalid sinceTime {t:?}: {e}")))?
                .with_timezone(&Utc),
        ),
        (None, None) => None,
    };
    Ok(LogOptions {
        follow: query.flag("follow"),
        tail_lines,
        since,
        timestamps: query.flag("timestamps"),
        previous: query.flag("previous"),
        limit_bytes,
    })
}

/// Streams the container's log.
pub async fn serve(
    runtime: Arc<dyn Runtime>,
    pod: &PodRef,
    container: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let options = log_options(query)?;
    let stream = runtime
        .logs(&pod.uid, container, &options)
        .await
        .map_err(|e| match e {
            // kubectl logs --previous on a container that never restarted.
            beemesh_workloads::runtime::RuntimeError::BadRequest(m) if options.previous => {
                ApiError::bad_request(m)
            }
            other => runtime_error(other),
        })?;
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_options_are_read_and_checked_as_upstream() {
        let q = Query::parse(Some(
            "follow=true&tailLines=3&timestamps=true&limitBytes=10",
        ));
        let o = log_options(&q).unwrap();
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!(o.tail_lines, Some(3));
        assert_eq!(o.limit_bytes, Some(10));

        let q = Query::parse(Some("sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z"));
        assert_eq!(log_options(&q).unwrap_err().code(), 422);
        let q = Query::parse(Some("tailLines=-1"));
        assert_eq!(log_options(&q).unwrap_err().code(), 422);
        let q = Query::parse(Some("sinceTime=2024-01-01T00:00:00Z"));
        assert_eq!(
            log_options(&q).unwrap().since.unwrap().to_rfc3339(),
            "2024-01-01T00:00:00+00:00"
        );
    }
}
