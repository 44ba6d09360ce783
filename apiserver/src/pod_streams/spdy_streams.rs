//! Exec, attach and port-forward over SPDY/3.1, the transport of kubectl before 1.30 (and
//! the fallback of later ones): the client upgrades with `Upgrade: SPDY/3.1` and the
//! protocol versions it speaks (`X-Stream-Protocol-Version`), then opens one stream per
//! channel, named by its `streamType` header (error, stdin, stdout, stderr, resize; for
//! port-forward a data and an error stream per connection, paired by `requestID`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use beemesh_translator::ApiError;
use beemesh_workloads::runtime::Runtime;

use super::session::{self, ExecTarget, Input, Output};
use crate::spdy::{self, Connection, SpdyStream};

/// The header naming the stream protocol versions (repeated, in preference order).
pub const PROTOCOL_HEADER: &str = "x-stream-protocol-version";
/// Exec and attach: v4 carries a `Status` on the error stream (exit codes).
pub const EXEC_PROTOCOLS: &[&str] = &["v4.channel.k8s.io"];
pub const PORT_FORWARD_PROTOCOLS: &[&str] = &["portforward.k8s.io"];
/// How long the client gets to open the streams it asked for (upstream's 30 s).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The protocol version both ends speak, the client's preference first.
pub fn negotiate(
    headers: &HeaderMap,
    supported: &[&'static str],
) -> Result<&'static str, ApiError> {
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !upgrade.to_ascii_lowercase().contains("spdy/3.1") {
        return Err(ApiError::bad_request(
            "Upgrade request required (SPDY/3.1 or websocket)",
        ));
    }
    let offered: Vec<String> = headers
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    offered
        .iter()
        .find_map(|o| supported.iter().find(|s| **s == o.as_str()).copied())
        .ok_or_else(|| {
            ApiError::Forbidden {
                message: format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {supported:?}"
                ),
                subject: Default::default(),
            }
        })
}

/// The 101 answer, and the upgraded connection once hyper hands it over.
fn switch(parts: Parts, protocol: &'static str) -> (Response, hyper::upgrade::OnUpgrade) {
    let request = http::Request::from_parts(parts, ());
    let on_upgrade = hyper::upgrade::on(request);
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    h.insert(PROTOCOL_HEADER, HeaderValue::from_static(protocol));
    (resp, on_upgrade)
}

/// Exec or attach over SPDY.
pub async fn exec(parts: Parts, target: ExecTarget) -> Result<Response, ApiError> {
    let protocol = negotiate(&parts.headers, EXEC_PROTOCOLS)?;
    let started = session::start(&target).await?;
    let (resp, on_upgrade) = switch(parts, protocol);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let conn = spdy::serve(TokioIo::new(upgraded));
                exec_streams(conn, target, started).await;
            }
            Err(e) => tracing::debug!(error = %e, "spdy upgrade failed"),
        }
    });
    Ok(resp)
}

#[derive(Default)]
struct ExecStreams {
    error: Option<SpdyStream>,
    stdin: Option<SpdyStream>,
    stdout: Option<SpdyStream>,
    stderr: Option<SpdyStream>,
    resize: Option<SpdyStream>,
}

impl ExecStreams {
    fn complete(&self, target: &ExecTarget) -> bool {
        self.error.is_some()
            && (!target.request.stdin || self.stdin.is_some())
            && (!target.request.stdout || self.stdout.is_some())
            && (!target.request.stderr || self.stderr.is_some())
            && (!target.request.tty || self.resize.is_some())
    }
}

async fn exec_streams(
    mut conn: Connection,
    target: ExecTarget,
    started: beemesh_workloads::runtime::StreamSession,
) {
    let mut streams = ExecStreams::default();
    let waited = tokio::time::timeout(STREAM_CREATION_TIMEOUT, async {
        while !streams.complete(&target) {
            let Some(s) = conn.streams.recv().await else {
                return false;
            };
            let slot = match s.header("streamtype").unwrap_or("") {
                "error" => &mut streams.error,
                "stdin" => &mut streams.stdin,
                "stdout" => &mut streams.stdout,
                "stderr" => &mut streams.stderr,
                "resize" => &mut streams.resize,
                other => {
                    tracing::debug!(stream_type = other, "unexpected spdy stream");
                    s.writer.reset(1);
                    continue;
                }
            };
            *slot = Some(s);
        }
        true
    })
    .await;
    if !matches!(waited, Ok(true)) {
        tracing::debug!("the client did not open its exec streams");
        if let Some(e) = &streams.error {
            let status = session::error_status("timed out waiting for client to create streams");
            e.writer
                .write(Bytes::from(serde_json::to_vec(&status).unwrap_or_default()));
            e.writer.close();
        }
        conn.shutdown().await;
        return;
    }
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    if let Some(mut stdin) = streams.stdin.take() {
        let tx = in_tx.clone();
        tokio::spawn(async move {
            while let Some(b) = stdin.incoming.recv().await {
                if tx.send(Input::Stdin(b)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Input::StdinEof);
        });
    }
    if let Some(mut resize) = streams.resize.take() {
        let tx = in_tx.clone();
        tokio::spawn(async move {
            let mut pending = Vec::new();
            while let Some(b) = resize.incoming.recv().await {
                pending.extend_from_slice(&b);
                // The client writes one JSON object per line.
                while let Some(end) = pending.iter().position(|c| *c == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    if let Some(size) = session::parse_resize(&line)
                        && tx.send(Input::Resize(size)).is_err()
                    {
                        return;
                    }
                }
                if let Some(size) = session::parse_resize(&pending) {
                    pending.clear();
                    let _ = tx.send(Input::Resize(size));
                }
            }
        });
    }
    drop(in_tx);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let run = tokio::spawn(async move { session::run(&target, started, in_rx, out_tx).await });
    while let Some(out) = out_rx.recv().await {
        let (stream, data) = match out {
            Output::Stdout(b) => (&streams.stdout, b),
            Output::Stderr(b) => (&streams.stderr, b),
        };
        if let Some(s) = stream {
            s.writer.write(data);
        }
    }
    let status = run
        .await
        .unwrap_or_else(|e| session::error_status(&format!("exec session failed: {e}")));
    for s in [&streams.stdout, &streams.stderr].into_iter().flatten() {
        s.writer.close();
    }
    if let Some(e) = &streams.error {
        e.writer
            .write(Bytes::from(serde_json::to_vec(&status).unwrap_or_default()));
        e.writer.close();
    }
    conn.shutdown().await;
}

/// Port-forward over SPDY.
pub async fn port_forward(
    parts: Parts,
    runtime: Arc<dyn Runtime>,
    uid: String,
) -> Result<Response, ApiError> {
    let protocol = negotiate(&parts.headers, PORT_FORWARD_PROTOCOLS)?;
    let (resp, on_upgrade) = switch(parts, protocol);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let conn = spdy::serve(TokioIo::new(upgraded));
                serve_port_forward(conn, runtime, uid).await;
            }
            Err(e) => tracing::debug!(error = %e, "spdy upgrade failed"),
        }
    });
    Ok(resp)
}

/// Serves port-forward streams until the client closes the connection: each data stream
/// is connected to its port in the pod, its error stream reports a failure to connect.
pub async fn serve_port_forward(mut conn: Connection, runtime: Arc<dyn Runtime>, uid: String) {
    // requestID → (error stream, data stream), until both are here.
    let mut pending: HashMap<String, (Option<SpdyStream>, Option<SpdyStream>)> = HashMap::new();
    while let Some(s) = conn.streams.recv().await {
        let request_id = s.header("requestid").unwrap_or("").to_string();
        let entry = pending.entry(request_id.clone()).or_default();
        match s.header("streamtype").unwrap_or("") {
            "error" => entry.0 = Some(s),
            "data" => entry.1 = Some(s),
            other => {
                tracing::debug!(stream_type = other, "unexpected port-forward stream");
                s.writer.reset(1);
                continue;
            }
        }
        if let (Some(_), Some(_)) = entry
            && let Some((Some(error), Some(data))) = pending.remove(&request_id)
        {
            tokio::spawn(forward_one(runtime.clone(), uid.clone(), error, data));
        }
    }
    conn.shutdown().await;
}

async fn forward_one(
    runtime: Arc<dyn Runtime>,
    uid: String,
    error: SpdyStream,
    mut data: SpdyStream,
) {
    let port = data
        .header("port")
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p > 0);
    let Some(port) = port else {
        let msg = format!(
            "invalid port {:?}: must be between 1 and 65535",
            data.header("port").unwrap_or("")
        );
        error.writer.write(Bytes::from(msg));
        error.writer.close();
        data.writer.close();
        return;
    };
    let conn = match runtime.port_forward(&uid, port).await {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("error forwarding port {port} to pod {uid}: {e}");
            error.writer.write(Bytes::from(msg));
            error.writer.close();
            data.writer.close();
            return;
        }
    };
    let (mut r, mut w) = tokio::io::split(conn);
    let to_pod = async {
        while let Some(b) = data.incoming.recv().await {
            if w.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    };
    let writer = data.writer.clone();
    let error_writer = error.writer.clone();
    // The pod side ending ends the forwarded connection: kubectl closes its local
    // connection only once the error stream is closed too.
    let from_pod = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !writer.write(Bytes::copy_from_slice(&buf[..n])) {
                        break;
                    }
                }
            }
        }
        writer.close();
        error_writer.close();
    };
    tokio::join!(to_pod, from_pod);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_protocol_the_client_offers_that_the_server_speaks_wins() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        h.append(
            PROTOCOL_HEADER,
            HeaderValue::from_static("v5.channel.k8s.io"),
        );
        h.append(
            PROTOCOL_HEADER,
            HeaderValue::from_static("v4.channel.k8s.io"),
        );
        h.append(
            PROTOCOL_HEADER,
            HeaderValue::from_static("v3.channel.k8s.io"),
        );
        assert_eq!(negotiate(&h, EXEC_PROTOCOLS).unwrap(), "v4.channel.k8s.io");
        assert_eq!(
            negotiate(&h, PORT_FORWARD_PROTOCOLS).unwrap_err().code(),
            403
        );
        h.remove(header::UPGRADE);
        assert_eq!(negotiate(&h, EXEC_PROTOCOLS).unwrap_err().code(), 400);
    }
}
