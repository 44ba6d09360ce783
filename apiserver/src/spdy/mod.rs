//! A minimal SPDY/3.1 server, the transport kubectl before 1.30 (and later ones as a
//! fallback) uses for `exec`, `attach` and `port-forward`: framing and header compression
//! (`frame`, `dictionary`) and a connection that accepts client-opened streams (`conn`).

pub mod conn;
pub mod dictionary;
pub mod frame;

pub use conn::{Connection, SpdyStream, StreamWriter, serve};
