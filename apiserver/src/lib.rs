//! The Kubernetes wire protocol of a BeeMesh node: HTTPS and authentication, discovery,
//! OpenAPI, content negotiation, Tables, patches, watch streams and `Status` errors.

pub mod app;
pub mod auth;
pub mod discovery;
pub mod health;
pub mod metrics;
pub mod negotiate;
pub mod openapi;
pub mod openapi_routes;
pub mod patch;
pub mod patch_validation;
pub mod pki;
pub mod pod_streams;
pub mod request;
pub mod resource;
pub mod reviews;
pub mod sa_token;
pub mod server;
pub mod spdy;
pub mod state;
pub mod table;
pub mod watch;
pub mod yaml_duplicates;
