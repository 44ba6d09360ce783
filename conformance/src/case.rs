//! Running one case against one client version and recording its verdict.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::report::{Verdict, record};
use crate::{Kubectl, Node};

/// What a case gets: a fresh node and a kubectl of the version under test.
pub struct Ctx {
    pub kubectl: Kubectl,
    // Dropped after `kubectl` (fields drop in order), so the node outlives the client.
    pub node: Node,
}

/// Runs `body` against a fresh node with `kubectl.<version>`, records PASS/FAIL/SKIP in the
/// report, and fails the test (re-panics) when the case failed.
pub fn run_case(case: &str, version: &str, body: impl FnOnce(&Ctx)) {
    let client = format!("kubectl-{version}");
    let bin = match crate::locate::kubectl_binary(version) {
        Ok(bin) => bin,
        Err(why) => {
            eprintln!("SKIP {case} [{client}]: {why}");
            record(Verdict::Skip, case, &client, &why);
            return;
        }
    };
    let node = match Node::start() {
        Ok(node) => node,
        Err(e) => {
            record(
                Verdict::Fail,
                case,
                &client,
                &format!("node did not start: {e}"),
            );
            panic!("node did not start: {e}");
        }
    };
    let kubectl = match Kubectl::new(version, &node.kubeconfig()) {
        Ok(k) => k,
        Err(e) => {
            record(
                Verdict::Fail,
                case,
                &client,
                &format!("{}: {e}", bin.display()),
            );
            panic!("{}: {e}", bin.display());
        }
    };
    let ctx = Ctx { kubectl, node };
    match catch_unwind(AssertUnwindSafe(|| body(&ctx))) {
        Ok(()) => record(Verdict::Pass, case, &client, ""),
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            record(Verdict::Fail, case, &client, &message);
            eprintln!("--- node log (tail) ---\n{}", ctx.node.log_tail(30));
            resume_unwind(payload);
        }
    }
}

/// The text of a panic payload (`panic!` with a literal or with format arguments).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked with a non-string payload".to_string()
    }
}
