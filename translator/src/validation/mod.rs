//! Validation of objects before they are stored: names and metadata, the schema walk
//! (unknown fields, type errors, pruning) and per-kind semantic rules, each failure worded
//! as the upstream API server words it.

mod schema_lookup;

pub use schema_lookup::{NoSchemas, SchemaLookup, SchemaMap};
