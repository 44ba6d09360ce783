//! What every handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use beemesh_translator::Registry;
use beemesh_translator::service::ObjectService;

use crate::metrics::Metrics;
use crate::openapi::OpenApi;

/// Cheap to clone: one `Arc` around the node's API state.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub service: ObjectService,
    pub registry: Arc<Registry>,
    pub openapi: OpenApi,
    pub admin_token: String,
    pub metrics: Metrics,
    ready: AtomicBool,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(service: ObjectService, admin_token: String) -> AppState {
        let registry = service.registry.clone();
        let openapi = OpenApi::build(&registry, service.catalog);
        AppState(Arc::new(Inner {
            service,
            registry,
            openapi,
            admin_token,
            metrics: Metrics::new(),
            ready: AtomicBool::new(false),
        }))
    }

    pub fn set_ready(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::SeqCst)
    }
}
