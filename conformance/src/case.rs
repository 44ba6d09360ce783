//! Running one case against one client version and recording its verdict.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Once;

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
    run_case_with(case, version, &[], body)
}

/// [`run_case`] with `node_args` added to the node's `beemesh up` (e.g. `--runtime sim`).
pub fn run_case_with(case: &str, version: &str, node_args: &[&str], body: impl FnOnce(&Ctx)) {
    let client = format!("kubectl-{version}");
    let bin = match crate::locate::kubectl_binary(version) {
        Ok(bin) => bin,
        Err(why) => {
            eprintln!("SKIP {case} [{client}]: {why}");
            record(Verdict::Skip, case, &client, &why);
            return;
        }
    };
    let node = match Node::start_with(node_args) {
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
    let failed = |_: &str| eprintln!("--- node log (tail) ---\n{}", ctx.node.log_tail(30));
    run_recorded_with(
        case,
        &client,
        || {
            body(&ctx);
            String::new()
        },
        failed,
    );
}

/// Runs a case that sets up its own nodes and clients (a mesh, containers) and records
/// PASS with the note `body` returns (measurements, e.g. `B 12 ms, C 15 ms`), SKIP when it
/// called [`skip`], or FAIL with where and why it panicked (re-panicking, so the test fails).
pub fn run_recorded(case: &str, client: &str, body: impl FnOnce() -> String) {
    run_recorded_with(case, client, body, |_| {});
}

fn run_recorded_with(
    case: &str,
    client: &str,
    body: impl FnOnce() -> String,
    on_failure: impl FnOnce(&str),
) {
    remember_panic_locations();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(note) => record(Verdict::Pass, case, client, &note),
        Err(payload) if payload.is::<Skipped>() => {
            let why = payload
                .downcast_ref::<Skipped>()
                .map(|s| s.0.clone())
                .unwrap_or_default();
            eprintln!("SKIP {case} [{client}]: {why}");
            record(Verdict::Skip, case, client, &why);
        }
        Err(payload) => {
            let location = LAST_PANIC_AT.with(|l| l.borrow_mut().take());
            let message = match location {
                Some(at) => format!("{at}: {}", panic_message(payload.as_ref())),
                None => panic_message(payload.as_ref()),
            };
            record(Verdict::Fail, case, client, &message);
            on_failure(&message);
            resume_unwind(payload);
        }
    }
}

/// The panic payload of [`skip`].
pub struct Skipped(pub String);

/// Ends the running case as skipped (recorded as SKIP, the test passes), e.g. when the
/// data it needs is absent on this machine.
pub fn skip(reason: impl Into<String>) -> ! {
    std::panic::panic_any(Skipped(reason.into()))
}

thread_local! {
    /// `file:line` of the last panic on this thread, for the report line.
    static LAST_PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Wraps the panic hook (once per process) to note where each panic happened.
fn remember_panic_locations() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().is::<Skipped>() {
                return;
            }
            if let Some(loc) = info.location() {
                let file = loc.file().rsplit('/').next().unwrap_or(loc.file());
                let at = format!("{file}:{}", loc.line());
                LAST_PANIC_AT.with(|l| *l.borrow_mut() = Some(at));
            }
            previous(info);
        }));
    });
}

/// The text of a panic payload (`panic!` with a literal or with format arguments).
///
/// For `assert_eq!` the `left`/`right` values come first: the custom message after them
/// is often a whole object and would push them out of a one-line report.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        return "panicked with a non-string payload".to_string();
    };
    match text.find("\n  left: ") {
        Some(at) => {
            let (head, values) = text.split_at(at);
            format!("{} | {}", values.trim(), head.trim())
        }
        None => text,
    }
}
