//! The Kubernetes object model of a BeeMesh node: which resources exist, what their
//! schemas say, how objects are validated and selected, and how they are stored.

pub mod binding;
pub mod bootstrap;
pub mod catalog;
pub mod conversion;
pub mod crd;
pub mod defaulting;
pub mod deletion;
pub mod error;
pub mod names;
pub mod protobuf;
pub mod quota;
pub mod registry;
pub mod registry_builtin;
pub mod selector;
pub mod service;
pub mod service_alloc;
pub mod store;
pub mod stored;
pub mod strategy;
pub mod validation;

pub use error::{ApiError, Cause, Subject};
pub use registry::{GroupInfo, Registry, RegistryRefresh, ResourceInfo, SubresourceInfo};
