//! The WebSocket transports: the channel protocol (`v5.channel.k8s.io`,
//! `v4.channel.k8s.io` and its base64 variant) for exec and attach — each message starts
//! with its channel: 0 stdin, 1 stdout, 2 stderr, 3 error (a `Status`), 4 resize, and in
//! v5 255 to close a channel — and for port-forward either the SPDY tunnel kubectl 1.31+
//! speaks (`SPDY/3.1+portforward.k8s.io`: SPDY bytes in binary messages) or the channel
//! protocol `portforward.k8s.io` (two channels per port, each opened by the port number).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::HeaderMap;
use http::request::Parts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use beemesh_translator::ApiError;
use beemesh_workloads::runtime::Runtime;

use super::session::{self, ExecTarget, Input, Output};
use crate::request::Query;

pub const V5: &str = "v5.channel.k8s.io";
pub const V4: &str = "v4.channel.k8s.io";
pub const V4_BASE64: &str = "v4.base64.channel.k8s.io";
/// kubectl 1.31+ port-forward: SPDY tunnelled in binary messages.
pub const SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// The channel protocol for port-forward.
pub const PORT_FORWARD: &str = "portforward.k8s.io";

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5: the client closes the channel named in the payload.
const CLOSE: u8 = 255;

/// Whether the request asks for a WebSocket.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn upgrade(parts: &mut Parts) -> Result<WebSocketUpgrade, ApiError> {
    WebSocketUpgrade::from_request_parts(parts, &())
        .await
        .map_err(|e| ApiError::bad_request(format!("websocket upgrade: {e}")))
}

/// One channel message, binary or base64 text.
pub fn encode(channel: u8, data: &[u8], base64: bool) -> Message {
    if base64 {
        let text = format!(
            "{}{}",
            char::from(b'0' + channel),
            base64::engine::general_purpose::STANDARD.encode(data)
        );
        Message::Text(text.into())
    } else {
        let mut b = BytesMut::with_capacity(data.len() + 1);
        b.put_u8(channel);
        b.put_slice(data);
        Message::Binary(b.freeze())
    }
}

/// The channel and payload of a message (`None` for control messages and garbage).
pub fn decode(msg: &Message) -> Option<(u8, Bytes)> {
    match msg {
        Message::Binary(b) if !b.is_empty() => Some((b[0], b.slice(1..))),
        Message::Text(t) if !t.is_empty() => {
            let s = t.as_str();
            let channel = s.as_bytes()[0].checked_sub(b'0')?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(&s[1..])
                .ok()?;
            Some((channel, Bytes::from(data)))
        }
        _ => None,
    }
}

/// Exec or attach over WebSocket: the session starts first, so a runtime's refusal is
/// an HTTP error kubectl prints; the upgrade follows.
pub async fn exec(mut parts: Parts, target: ExecTarget) -> Result<Response, ApiError> {
    let ws = upgrade(&mut parts).await?;
    let started = session::start(&target).await?;
    Ok(ws
        .protocols([V5, V4, V4_BASE64])
        .on_upgrade(move |socket| exec_socket(socket, target, started)))
}

async fn exec_socket(
    socket: WebSocket,
    target: ExecTarget,
    started: beemesh_workloads::runtime::StreamSession,
) {
    let protocol = socket
        .protocol()
        .and_then(|p| p.to_str().ok())
        .unwrap_or("")
        .to_string();
    let base64 = protocol.contains("base64");
    let v5 = protocol == V5;
    let (mut sink, mut stream) = socket.split();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
            let Some((channel, data)) = decode(&msg) else {
                continue;
            };
            let input = match channel {
                STDIN if !data.is_empty() => Input::Stdin(data),
                RESIZE => match session::parse_resize(&data) {
                    Some(size) => Input::Resize(size),
                    None => continue,
                },
                CLOSE if v5 && data.first() == Some(&STDIN) => Input::StdinEof,
                _ => continue,
            };
            if in_tx.send(input).is_err() {
                break;
            }
        }
        let _ = in_tx.send(Input::StdinEof);
    });
    let run = tokio::spawn(async move { session::run(&target, started, in_rx, out_tx).await });
    while let Some(out) = out_rx.recv().await {
        let msg = match out {
            Output::Stdout(b) => encode(STDOUT, &b, base64),
            Output::Stderr(b) => encode(STDERR, &b, base64),
        };
        if sink.send(msg).await.is_err() {
            break;
        }
    }
    let status = match run.await {
        Ok(s) => s,
        Err(e) => session::error_status(&format!("exec session failed: {e}")),
    };
    let body = serde_json::to_vec(&status).unwrap_or_default();
    let _ = sink.send(encode(ERROR, &body, base64)).await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
    reader.abort();
}

/// Port-forward over WebSocket.
pub async fn port_forward(
    mut parts: Parts,
    runtime: Arc<dyn Runtime>,
    uid: String,
    query: &Query,
) -> Result<Response, ApiError> {
    let ws = upgrade(&mut parts).await?;
    let ports: Vec<u16> = query
        .all("ports")
        .iter()
        .flat_map(|p| p.split(','))
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ApiError::bad_request(format!("invalid port {p:?}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(ws
        .protocols([SPDY_TUNNEL, PORT_FORWARD, V4])
        .on_upgrade(move |socket| async move {
            let tunnel = socket
                .protocol()
                .is_some_and(|p| p.as_bytes() == SPDY_TUNNEL.as_bytes());
            if tunnel {
                spdy_tunnel(socket, runtime, uid).await;
            } else {
                channel_port_forward(socket, runtime, uid, ports).await;
            }
        }))
}

/// SPDY inside binary WebSocket messages, bridged through an in-memory pipe.
async fn spdy_tunnel(socket: WebSocket, runtime: Arc<dyn Runtime>, uid: String) {
    let (pipe, spdy_end) = tokio::io::duplex(256 * 1024);
    let (mut pipe_read, mut pipe_write) = tokio::io::split(pipe);
    let (mut sink, mut stream) = socket.split();
    let inbound = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            match msg {
                Message::Binary(b) if pipe_write.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = pipe_write.shutdown().await;
    });
    let outbound = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match pipe_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });
    super::spdy_streams::serve_port_forward(crate::spdy::serve(spdy_end), runtime, uid).await;
    let _ = outbound.await;
    inbound.abort();
}

/// `portforward.k8s.io`: channel 2i carries port i's data, 2i+1 its errors; the server
/// opens each channel with the port (u16, little-endian).
async fn channel_port_forward(
    socket: WebSocket,
    runtime: Arc<dyn Runtime>,
    uid: String,
    ports: Vec<u16>,
) {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
    let mut writers = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let data_channel = (2 * i) as u8;
        for channel in [data_channel, data_channel + 1] {
            let _ = out_tx.send(encode(channel, &port.to_le_bytes(), false));
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        writers.push(tx);
        let runtime = runtime.clone();
        let uid = uid.clone();
        let out = out_tx.clone();
        let port = *port;
        tokio::spawn(async move {
            let conn = match runtime.port_forward(&uid, port).await {
                Ok(c) => c,
                Err(e) => {
                    let text = format!("error forwarding port {port} to pod {uid}: {e}");
                    let _ = out.send(encode(data_channel + 1, text.as_bytes(), false));
                    return;
                }
            };
            let (mut r, mut w) = tokio::io::split(conn);
            let to_pod = async move {
                while let Some(b) = rx.recv().await {
                    if w.write_all(&b).await.is_err() {
                        break;
                    }
                }
                let _ = w.shutdown().await;
            };
            let from_pod = async {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if out.send(encode(data_channel, &buf[..n], false)).is_err() {
                                break;
                            }
                        }
                    }
                }
            };
            tokio::join!(to_pod, from_pod);
        });
    }
    drop(out_tx);
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
            let Some((channel, data)) = decode(&msg) else {
                continue;
            };
            if channel % 2 == 0
                && let Some(w) = writers.get(usize::from(channel / 2))
            {
                let _ = w.send(data);
            }
        }
    });
    while let Some(msg) = out_rx.recv().await {
        if sink.send(msg).await.is_err() {
            break;
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    reader.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_messages_roundtrip_binary_and_base64() {
        for base64 in [false, true] {
            let msg = encode(STDOUT, b"hello", base64);
            assert_eq!(decode(&msg), Some((STDOUT, Bytes::from_static(b"hello"))));
        }
        assert_eq!(
            encode(ERROR, b"x", false),
            Message::Binary(Bytes::from_static(&[3, b'x']))
        );
        assert_eq!(encode(STDERR, b"hi", true), Message::Text("2aGk=".into()));
        assert_eq!(decode(&Message::Binary(Bytes::new())), None);
    }
}
