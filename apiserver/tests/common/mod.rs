//! A real node (replica on a temp dir, built-in registry and catalog, system namespaces)
//! behind `router(state)`, driven request by request with `oneshot`.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use beemesh_apiserver::app::router;
use beemesh_apiserver::state::AppState;
use beemesh_mesh_backend::{Replica, ReplicaConfig};
use beemesh_translator::Registry;
use beemesh_translator::catalog::Catalog;
use beemesh_translator::service::ObjectService;
use beemesh_translator::store::ObjectStore;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const TOKEN: &str = "semantics-test-token";

pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/// One node: its data dir lives as long as this value.
pub struct Node {
    _dir: tempfile::TempDir,
    pub state: AppState,
    pub router: Router,
}

impl Node {
    pub async fn start() -> Node {
        Node::with_config(ReplicaConfig {
            durable: false,
            revision_epoch: false,
            ..beemesh_translator::store::replica_config()
        })
        .await
    }

    pub async fn with_config(config: ReplicaConfig) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica::open(dir.path(), config).unwrap();
        let service = ObjectService::new(
            ObjectStore::new(replica),
            Arc::new(Registry::builtin()),
            Catalog::builtin(),
        );
        service.bootstrap_namespaces().await.unwrap();
        let state = AppState::new(service, TOKEN.to_string());
        state.set_ready(true);
        let router = router(state.clone());
        Node {
            _dir: dir,
            state,
            router,
        }
    }

    pub fn revision(&self) -> u64 {
        self.state.service.store.revision()
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.req(Method::GET, path)
    }
    pub fn post(&self, path: &str) -> Req<'_> {
        self.req(Method::POST, path)
    }
    pub fn put(&self, path: &str) -> Req<'_> {
        self.req(Method::PUT, path)
    }
    pub fn patch(&self, path: &str) -> Req<'_> {
        self.req(Method::PATCH, path)
    }
    pub fn delete(&self, path: &str) -> Req<'_> {
        self.req(Method::DELETE, path)
    }

    pub fn req(&self, method: Method, path: &str) -> Req<'_> {
        Req {
            node: self,
            method,
            path: path.to_string(),
            headers: vec![("authorization".into(), format!("Bearer {TOKEN}"))],
            body: Bytes::new(),
        }
    }

    /// POSTs `obj` to `collection` and insists on 201.
    pub async fn create(&self, collection: &str, obj: Value) -> Value {
        let r = self.post(collection).json(&obj).send().await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "create {collection}: {}",
            r.text()
        );
        r.json()
    }
}

/// A request being built.
pub struct Req<'a> {
    node: &'a Node,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl<'a> Req<'a> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    pub fn no_auth(mut self) -> Self {
        self.headers.retain(|(k, _)| k != "authorization");
        self
    }
    pub fn accept(self, accept: &str) -> Self {
        self.header("accept", accept)
    }
    pub fn json(self, v: &Value) -> Self {
        self.body("application/json", serde_json::to_vec(v).unwrap())
    }
    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        if !content_type.is_empty() {
            self = self.header("content-type", content_type);
        }
        self
    }
    pub fn merge(self, v: &Value) -> Self {
        self.body(
            "application/merge-patch+json",
            serde_json::to_vec(v).unwrap(),
        )
    }
    pub fn strategic(self, v: &Value) -> Self {
        self.body(
            "application/strategic-merge-patch+json",
            serde_json::to_vec(v).unwrap(),
        )
    }
    pub fn json_patch(self, v: &Value) -> Self {
        self.body(
            "application/json-patch+json",
            serde_json::to_vec(v).unwrap(),
        )
    }

    fn build(self) -> (Router, Request<Body>) {
        let mut b = Request::builder().method(self.method).uri(&self.path);
        for (k, v) in &self.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        (
            self.node.router.clone(),
            b.body(Body::from(self.body)).unwrap(),
        )
    }

    /// Sends and reads the whole response body.
    pub async fn send(self) -> Resp {
        let (router, req) = self.build();
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = tokio::time::timeout(Duration::from_secs(20), resp.into_body().collect())
            .await
            .expect("response body did not end")
            .unwrap()
            .to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// Sends and returns the status, headers and a reader of streamed lines.
    pub async fn stream(self) -> Stream {
        let (router, req) = self.build();
        let resp = router.oneshot(req).await.unwrap();
        Stream {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.into_body(),
            buf: Vec::new(),
        }
    }
}

/// A whole response.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn warnings(&self) -> Vec<String> {
        self.headers
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }

    /// Asserts a `Status` failure with this code and reason, and that the message
    /// contains `message`; returns the Status.
    #[track_caller]
    pub fn status_error(&self, code: u16, reason: &str, message: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            code,
            "unexpected status; body: {}",
            self.text()
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "a Status is JSON"
        );
        let s = self.json();
        assert_eq!(s["kind"], "Status", "{s}");
        assert_eq!(s["apiVersion"], "v1", "{s}");
        assert_eq!(s["status"], "Failure", "{s}");
        assert_eq!(s["code"], code, "{s}");
        assert_eq!(s["reason"], reason, "{s}");
        let got = s["message"].as_str().unwrap_or_default();
        assert!(
            got.contains(message),
            "message {got:?} does not contain {message:?}"
        );
        s
    }
}

/// A streamed (watch) response read line by line.
pub struct Stream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Body,
    buf: Vec<u8>,
}

impl Stream {
    /// The next line as JSON, `None` when the stream ends or nothing comes within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??;
            if let Ok(data) = frame.unwrap().into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }

    /// The next event; panics when none comes within 5 s.
    pub async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(5))
            .await
            .expect("no watch event within 5 s")
    }

    /// True when the stream has ended (or ends within `wait`) without another event.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.buf.contains(&b'\n') {
                return false;
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return false,
                Ok(None) => return true,
                Ok(Some(Ok(f))) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.extend_from_slice(&d);
                    }
                }
                Ok(Some(Err(_))) => return true,
            }
        }
    }
}

pub fn configmap(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    })
}

pub fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    })
}

pub fn pod(name: &str, node_name: Option<&str>) -> Value {
    let mut p = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    });
    if let Some(n) = node_name {
        p["spec"]["nodeName"] = json!(n);
    }
    p
}

pub fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {list}"))
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

pub fn rv(obj: &Value) -> String {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_else(|| panic!("no resourceVersion: {obj}"))
        .to_string()
}
