//! Harness for the conformance suite: starts real `beemesh` nodes, drives real clients
//! (kubectl of several versions) against them and records one report line per case.
//!
//! The suite's cases live in `tests/`; this library only knows how to run them.

pub mod api;
pub mod case;
pub mod container_mesh;
pub mod docker;
pub mod json;
pub mod kubectl;
pub mod locate;
pub mod mesh;
pub mod node;
pub mod output;
pub mod report;
pub mod wait;

pub use case::{Ctx, run_case, run_case_with, run_recorded, skip};
pub use json::{field, has};
pub use kubectl::{Kubectl, Running};
pub use mesh::{Mesh, MeshNode};
pub use node::Node;
pub use output::{Output, Table};
pub use wait::eventually;

/// What can go wrong while setting up a node or a client (not a failed assertion).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(
        "the beemesh binary was not found (looked at: {0}); build it with `cargo build -p beemesh-cli` or set BEEMESH_BIN"
    )]
    NodeBinaryMissing(String),
    #[error("the node did not become ready within {secs}s: {reason}\n--- node log ---\n{log}")]
    NodeNotReady {
        secs: u64,
        reason: String,
        log: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Generates one `#[test]` per kubectl version for each named case function
/// `fn case(ctx: &Ctx)`, as `case::kubectl_1_27` and so on.
#[macro_export]
macro_rules! kubectl_cases {
    (node_args = $args:expr; $($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[test]
                fn kubectl_1_27() {
                    $crate::run_case_with(stringify!($case), "1.27", &$args, super::$case)
                }
                #[test]
                fn kubectl_1_31() {
                    $crate::run_case_with(stringify!($case), "1.31", &$args, super::$case)
                }
                #[test]
                fn kubectl_1_32() {
                    $crate::run_case_with(stringify!($case), "1.32", &$args, super::$case)
                }
                #[test]
                fn kubectl_1_33() {
                    $crate::run_case_with(stringify!($case), "1.33", &$args, super::$case)
                }
            }
        )*
    };
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[test]
                fn kubectl_1_27() {
                    $crate::run_case(stringify!($case), "1.27", super::$case)
                }
                #[test]
                fn kubectl_1_31() {
                    $crate::run_case(stringify!($case), "1.31", super::$case)
                }
                #[test]
                fn kubectl_1_32() {
                    $crate::run_case(stringify!($case), "1.32", super::$case)
                }
                #[test]
                fn kubectl_1_33() {
                    $crate::run_case(stringify!($case), "1.33", super::$case)
                }
            }
        )*
    };
}
