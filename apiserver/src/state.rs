//! What every handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use beemesh_translator::Registry;
use beemesh_translator::service::ObjectService;
use parking_lot::RwLock;

use crate::metrics::Metrics;
use crate::openapi::LiveOpenApi;
use crate::pki::NodePki;
use crate::sa_token::TokenKeys;

/// Cheap to clone: one `Arc` around the node's API state.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub service: ObjectService,
    pub registry: Arc<Registry>,
    /// Rebuilt when custom resources change.
    pub openapi: LiveOpenApi,
    pub admin_token: String,
    pub metrics: Metrics,
    ready: AtomicBool,
    /// Signs and checks ServiceAccount tokens.
    token_keys: RwLock<Arc<TokenKeys>>,
    /// This node's name, runtime and peer client, once the node has set them up:
    /// what `pods/log|exec|attach|portforward` need.
    node_streams: RwLock<Option<Arc<NodeStreams>>>,
}

/// What serving the pod stream subresources needs from the node around the API.
pub struct NodeStreams {
    /// This node's `Node` name: pods bound elsewhere are proxied to their node.
    pub node_name: String,
    /// `--runtime`, when this node runs pods.
    pub runtime: Option<Arc<dyn beemesh_workloads::runtime::Runtime>>,
    /// The TLS client identity this node presents to peers it proxies to.
    pub peer_client: Option<Arc<crate::pod_streams::proxy::PeerClient>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// A node whose ServiceAccount tokens are signed with a key of its own that lives
    /// as long as the process (use `with_pki` to sign with the CA key, so tokens survive
    /// restarts).
    pub fn new(service: ObjectService, admin_token: String) -> AppState {
        let keys = match TokenKeys::ephemeral() {
            Ok(keys) => keys,
            Err(e) => {
                tracing::error!(error = %e, "no ServiceAccount token key");
                // Verifies nothing and signs nothing: TokenRequests then fail with a 500.
                TokenKeys::empty()
            }
        };
        AppState::build(service, admin_token, keys)
    }

    /// A node that signs ServiceAccount tokens with its CA key (an ECDSA P-256 key) and
    /// accepts its admin token.
    pub fn with_pki(service: ObjectService, pki: &NodePki) -> AppState {
        let keys = TokenKeys::from_key_pem(&pki.ca_key_pem)
            .or_else(|e| {
                tracing::warn!(error = %e, "the CA key cannot sign ServiceAccount tokens; verifying with the CA certificate only");
                TokenKeys::verify_only(&pki.ca_cert_pem)
            })
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "no ServiceAccount token key");
                TokenKeys::empty()
            });
        AppState::build(service, pki.admin_token.clone(), keys)
    }

    fn build(service: ObjectService, admin_token: String, keys: TokenKeys) -> AppState {
        let registry = service.registry.clone();
        let openapi = LiveOpenApi::new(registry.clone(), service.catalog);
        AppState(Arc::new(Inner {
            service,
            registry,
            openapi,
            admin_token,
            metrics: Metrics::new(),
            ready: AtomicBool::new(false),
            token_keys: RwLock::new(Arc::new(keys)),
            node_streams: RwLock::new(None),
        }))
    }

    /// The keys ServiceAccount tokens are signed and checked with.
    pub fn token_keys(&self) -> Arc<TokenKeys> {
        self.0.token_keys.read().clone()
    }

    /// Replaces the ServiceAccount token keys (e.g. with the mesh CA's once known).
    pub fn set_token_keys(&self, keys: TokenKeys) {
        *self.0.token_keys.write() = Arc::new(keys);
    }

    /// Sets what the pod stream subresources run with (the node's name and runtime).
    pub fn set_node_streams(&self, streams: NodeStreams) {
        *self.0.node_streams.write() = Some(Arc::new(streams));
    }

    /// The node's name and runtime, `None` before the node set them (or in tests).
    pub fn node_streams(&self) -> Option<Arc<NodeStreams>> {
        self.0.node_streams.read().clone()
    }

    pub fn set_ready(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::SeqCst)
    }
}
