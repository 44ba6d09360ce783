//! The upgraded pod streams on the wire, against a node serving HTTP on a real socket with
//! the `process` runtime: exec over WebSocket `v5.channel.k8s.io` (stdin, its v5 close,
//! stdout, and the exit code in the error channel's Status), exec over SPDY/3.1 as
//! kubectl ≤ 1.29 speaks it, and port-forward over the WebSocket channel protocol
//! `portforward.k8s.io` (each channel opened by its port, little-endian).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use beemesh_apiserver::spdy::frame::{self, FLAG_FIN, Frame, FrameHead, HeaderCodec};
use beemesh_apiserver::state::NodeStreams;
use beemesh_workloads::PodAgent;
use beemesh_workloads::runtime::{ProcessConfig, ProcessRuntime};
use bytes::Bytes;
use common::{Node, TOKEN};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const NODE: &str = "wire-node";
const PODS: &str = "/api/v1/namespaces/default/pods";

struct Served {
    node: Node,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

async fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(ProcessRuntime::new(ProcessConfig {
        data_dir: dir.path().to_path_buf(),
    }));
    let node = Node::start().await;
    node.state.set_node_streams(NodeStreams {
        node_name: NODE.into(),
        runtime: Some(runtime.clone()),
        peer_client: None,
    });
    let agent = PodAgent::new(
        node.state.service.clone(),
        NODE.into(),
        "127.0.0.1".parse().unwrap(),
        runtime,
    );
    tokio::spawn(agent.run());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = node.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Served {
        node,
        addr,
        _dir: dir,
    }
}

async fn running_pod(node: &Node, name: &str, command: Value) {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": NODE, "containers": [{"name": "main", "image": "busybox", "command": command}]},
    });
    node.create(PODS, pod).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = node.get(&format!("{PODS}/{name}")).send().await.json();
        if p["status"]["phase"] == "Running" {
            return;
        }
        assert!(Instant::now() < deadline, "{name}: {}", p["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn websocket(
    addr: std::net::SocketAddr,
    path: &str,
    protocol: &str,
) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    h.insert("sec-websocket-protocol", protocol.parse().unwrap());
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (ws, resp) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some(protocol)
    );
    ws
}

#[tokio::test]
async fn exec_over_websocket_v5_and_spdy_and_port_forward_over_channels() {
    let served = serve().await;
    running_pod(&served.node, "sleeper", json!(["sleep", "3600"])).await;

    // --- WebSocket v5: stdin echoed by cat, closed by channel 255, exit code 3.
    let path = format!(
        "{PODS}/sleeper/exec?command=sh&command=-c&command=cat%3Bexit+3&stdin=true&stdout=true"
    );
    let mut ws = websocket(served.addr, &path, "v5.channel.k8s.io").await;
    ws.send(Message::Binary(Bytes::from_static(b"\x00hello")))
        .await
        .unwrap();
    ws.send(Message::Binary(Bytes::from_static(&[255, 0])))
        .await
        .unwrap();
    let mut stdout = Vec::new();
    let mut status = Value::Null;
    while let Some(Ok(msg)) = ws.next().await {
        match msg {
            Message::Binary(b) if b.first() == Some(&1) => stdout.extend_from_slice(&b[1..]),
            Message::Binary(b) if b.first() == Some(&3) => {
                status = serde_json::from_slice(&b[1..]).unwrap()
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(stdout, b"hello");
    assert_eq!(status["reason"], "NonZeroExitCode", "{status}");
    assert_eq!(
        status["details"]["causes"][0],
        json!({"reason": "ExitCode", "message": "3"})
    );

    // --- SPDY/3.1, v4.channel.k8s.io: error, stdin and stdout streams.
    let mut tcp = TcpStream::connect(served.addr).await.unwrap();
    let request = format!(
        "POST {PODS}/sleeper/exec?command=cat&stdin=true&stdout=true HTTP/1.1\r\n\
         Host: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
         X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\
         X-Stream-Protocol-Version: channel.k8s.io\r\nContent-Length: 0\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tcp.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("x-stream-protocol-version: v4.channel.k8s.io"),
        "{head}"
    );
    let mut tx = HeaderCodec::new();
    let mut rx = HeaderCodec::new();
    for (id, kind) in [(1u32, "error"), (3, "stdin"), (5, "stdout")] {
        let syn = Frame::SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            flags: 0,
            headers: vec![("streamtype".into(), kind.into())],
        };
        tcp.write_all(&frame::encode(&syn, &mut tx).unwrap())
            .await
            .unwrap();
    }
    let data = Frame::Data {
        stream_id: 3,
        flags: FLAG_FIN,
        data: Bytes::from_static(b"over spdy"),
    };
    tcp.write_all(&frame::encode(&data, &mut tx).unwrap())
        .await
        .unwrap();
    let (mut replies, mut out, mut err, mut fins) = (0, Vec::new(), Vec::new(), 0);
    loop {
        let mut h = [0u8; 8];
        if tcp.read_exact(&mut h).await.is_err() {
            break;
        }
        let h = FrameHead::parse(h);
        let mut body = vec![0u8; h.length];
        tcp.read_exact(&mut body).await.unwrap();
        match frame::decode(h, Bytes::from(body), &mut rx).unwrap() {
            Frame::SynReply { .. } => replies += 1,
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                match stream_id {
                    5 => out.extend_from_slice(&data),
                    1 => err.extend_from_slice(&data),
                    _ => {}
                }
                if flags & FLAG_FIN != 0 {
                    fins += 1;
                }
            }
            Frame::GoAway { .. } => break,
            _ => {}
        }
    }
    assert_eq!(replies, 3, "every stream accepted");
    assert_eq!(out, b"over spdy");
    assert_eq!(fins, 2, "stdout and error streams closed");
    let status: Value = serde_json::from_slice(&err).unwrap();
    assert_eq!(status["status"], "Success", "{status}");

    // --- port-forward, channel protocol: a listener in the pod answers.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let script = format!(
        "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', {port}))\ns.listen()\nwhile True:\n    c, _ = s.accept()\n    \
         c.sendall(b'pong\\n')\n    c.close()\n"
    );
    running_pod(&served.node, "listener", json!(["python3", "-c", script])).await;
    let started = Instant::now();
    let answer = loop {
        let path = format!("{PODS}/listener/portforward?ports={port}");
        let mut ws = websocket(served.addr, &path, "portforward.k8s.io").await;
        let mut opened = Vec::new();
        let mut data = Vec::new();
        let mut failed = false;
        while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await
        {
            let Message::Binary(b) = msg else { break };
            match (b[0], opened.len()) {
                (c, n) if n < 2 => opened.push((c, u16::from_le_bytes([b[1], b[2]]))),
                (0, _) => {
                    data.extend_from_slice(&b[1..]);
                    if data.ends_with(b"\n") {
                        break;
                    }
                }
                (1, _) => {
                    failed = true;
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(
            opened,
            [(0, port), (1, port)],
            "channels opened by their port"
        );
        if !failed && !data.is_empty() {
            break data;
        }
        // nc may not listen yet.
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no answer on {port}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(answer, b"pong\n");
}
