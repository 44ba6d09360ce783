//! The Kubernetes wire protocol of a BeeMesh node.
pub mod discovery;
pub mod openapi;
pub mod patch;
pub mod table;
