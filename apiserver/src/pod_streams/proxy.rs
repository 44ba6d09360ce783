//! Proxying a pod stream request to the node that runs the pod (ADR 0011): HTTPS to the
//! peer's API address (its Node's InternalIP and daemon port), this node's own client
//! certificate as identity (CN `system:beemesh-node:<name>`, O `system:beemesh-nodes`,
//! minted from the mesh CA at startup), the original user carried in
//! `X-Beemesh-Proxied-*` headers that a receiving node trusts only from a node
//! certificate. Upgrades (exec, attach, port-forward) pass through: once both ends said
//! 101, bytes are copied both ways.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use serde_json::Value;

use beemesh_translator::ApiError;

use crate::auth::{AUTHENTICATED_GROUP, UserInfo};
use crate::pki::NodePki;
use crate::state::AppState;

/// The group of node client certificates: only its members may carry another user.
pub const NODE_GROUP: &str = "system:beemesh-nodes";
/// The user a proxying node acts for.
pub const PROXIED_USER: &str = "x-beemesh-proxied-user";
/// Its groups (one header each).
pub const PROXIED_GROUP: &str = "x-beemesh-proxied-group";
/// Its uid.
pub const PROXIED_UID: &str = "x-beemesh-proxied-uid";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the node's peer client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PeerClientError {
    #[error("node client certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("node client tls: {0}")]
    Tls(#[from] rustls::Error),
    #[error("node client pem: {0}")]
    Pem(String),
    #[error("node client verifier: {0}")]
    Verifier(String),
}

/// Checks a peer's serving certificate against the mesh CA, whatever address it was
/// reached at: a node listening on all interfaces has a certificate naming 0.0.0.0 and
/// 127.0.0.1, not the InternalIP its Node advertises. The chain is what proves a peer:
/// only holders of the mesh CA key issue certificates (ADR 0005).
#[derive(Debug)]
struct MeshServerVerifier(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for MeshServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// How this node connects to its peers' API ports.
pub struct PeerClient {
    tls: Arc<rustls::ClientConfig>,
}

impl PeerClient {
    /// Mints this node's client certificate from the mesh CA (kept in memory only).
    pub fn new(pki: &NodePki, node_name: &str) -> Result<PeerClient, PeerClientError> {
        let ca_key = KeyPair::from_pem(&pki.ca_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&pki.ca_cert_pem, &ca_key)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            format!("system:beemesh-node:{node_name}"),
        );
        dn.push(DnType::OrganizationName, NODE_GROUP);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &issuer)?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(pki.ca_cert_pem.as_bytes()) {
            roots.add(ca.map_err(|e| PeerClientError::Pem(e.to_string()))?)?;
        }
        let key_der = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())
            .map_err(|e| PeerClientError::Pem(e.to_string()))?;
        let verifier = rustls::client::WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .map_err(|e| PeerClientError::Verifier(e.to_string()))?;
        let mut config = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(MeshServerVerifier(verifier)))
            .with_client_auth_cert(vec![cert.der().clone()], key_der)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(PeerClient {
            tls: Arc::new(config),
        })
    }
}

fn is_node(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == NODE_GROUP)
}

/// Whether a request was proxied here by another node (it is then served here or not at
/// all). Only node certificates count: a user's own header proves nothing.
pub fn is_proxied(user: &UserInfo, headers: &HeaderMap) -> bool {
    is_node(user) && headers.contains_key(PROXIED_USER)
}

/// The user a request acts for: the one a proxying node carries, else the caller.
pub fn carried_user(user: &UserInfo, headers: &HeaderMap) -> UserInfo {
    if !is_proxied(user, headers) {
        return user.clone();
    }
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut groups: Vec<String> = headers
        .get_all(PROXIED_GROUP)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
        groups.push(AUTHENTICATED_GROUP.to_string());
    }
    UserInfo {
        username: text(PROXIED_USER),
        uid: text(PROXIED_UID),
        groups,
        ..UserInfo::default()
    }
}

/// Where a node serves its API: its InternalIP and daemon (API) port.
fn node_address(state: &AppState, node_name: &str) -> Result<(std::net::IpAddr, u16), ApiError> {
    let res = state
        .registry
        .get("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes are not served"))?;
    let node = state.service.store.get(&res, None, node_name)?;
    let ip = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))
        .and_then(|a| a.get("address").and_then(Value::as_str))
        .and_then(|a| a.parse().ok());
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0);
    match (ip, port) {
        (Some(ip), Some(port)) => Ok((ip, port)),
        _ => Err(ApiError::ServiceUnavailable {
            message: format!("node {node_name} has no InternalIP address and daemon port yet"),
        }),
    }
}

fn unavailable(node: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::ServiceUnavailable {
        message: format!("error dialing backend: node {node}: {e}"),
    }
}

/// Sends the request to `node_name` and relays the answer (and, after a 101, the
/// upgraded connection).
pub async fn forward(
    state: &AppState,
    client: &PeerClient,
    node_name: &str,
    user: &UserInfo,
    mut parts: Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let (ip, port) = node_address(state, node_name)?;
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect((ip, port)))
        .await
        .map_err(|_| unavailable(node_name, "connect timed out"))?
        .map_err(|e| unavailable(node_name, e))?;
    let _ = tcp.set_nodelay(true);
    let connector = tokio_rustls::TlsConnector::from(client.tls.clone());
    let tls = connector
        .connect(ServerName::IpAddress(ip.into()), tcp)
        .await
        .map_err(|e| unavailable(node_name, e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| unavailable(node_name, e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "proxied connection ended");
        }
    });

    let client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string());
    let mut req = http::Request::builder()
        .method(parts.method.clone())
        .uri(path)
        .body(body)
        .map_err(|e| ApiError::internal(format!("proxy request: {e}")))?;
    let headers = req.headers_mut();
    for (name, value) in parts.headers.iter() {
        let n = name.as_str();
        // The caller's credentials stay here; the peer trusts this node's certificate.
        if name == header::AUTHORIZATION
            || n.starts_with("x-beemesh-proxied-")
            || n.starts_with("impersonate-")
        {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    if let Ok(host) = HeaderValue::from_str(&format!("{ip}:{port}")) {
        headers.insert(header::HOST, host);
    }
    let mut carry = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.append(HeaderName::from_static(name), v);
        }
    };
    carry(PROXIED_USER, &user.username);
    if !user.uid.is_empty() {
        carry(PROXIED_UID, &user.uid);
    }
    for g in &user.groups {
        carry(PROXIED_GROUP, g);
    }
    let mut resp = sender
        .send_request(req)
        .await
        .map_err(|e| unavailable(node_name, e))?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let peer_upgrade = hyper::upgrade::on(&mut resp);
        let Some(client_upgrade) = client_upgrade else {
            return Err(ApiError::bad_request("the connection cannot be upgraded"));
        };
        tokio::spawn(async move {
            match (client_upgrade.await, peer_upgrade.await) {
                (Ok(client), Ok(peer)) => {
                    let mut client = TokioIo::new(client);
                    let mut peer = TokioIo::new(peer);
                    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut peer).await {
                        tracing::debug!(error = %e, "proxied stream ended");
                    }
                }
                (c, p) => tracing::debug!(
                    client = c.is_ok(),
                    peer = p.is_ok(),
                    "proxied upgrade failed"
                ),
            }
        });
        let (head, _) = resp.into_parts();
        return Ok(Response::from_parts(head, Body::empty()));
    }
    let (head, incoming) = resp.into_parts();
    Ok(Response::from_parts(head, Body::new(incoming)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_node_certificate_can_carry_another_user() {
        let mut h = HeaderMap::new();
        h.insert(PROXIED_USER, HeaderValue::from_static("jane"));
        h.append(PROXIED_GROUP, HeaderValue::from_static("dev"));
        let user = UserInfo {
            username: "mallory".into(),
            groups: vec![AUTHENTICATED_GROUP.into()],
            ..UserInfo::default()
        };
        assert_eq!(
            carried_user(&user, &h),
            user,
            "a user's own header proves nothing"
        );
        assert!(!is_proxied(&user, &h));
        let node = UserInfo {
            username: "system:beemesh-node:n2".into(),
            groups: vec![NODE_GROUP.into(), AUTHENTICATED_GROUP.into()],
            ..UserInfo::default()
        };
        let carried = carried_user(&node, &h);
        assert_eq!(carried.username, "jane");
        assert_eq!(carried.groups, ["dev", AUTHENTICATED_GROUP]);
        assert!(is_proxied(&node, &h));
    }
}
