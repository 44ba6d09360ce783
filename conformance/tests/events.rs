//! Events through real kubectl on a node started with a short `--event-ttl`: an Event
//! written as `events.k8s.io/v1` lists as `v1` (and in `kubectl events`), core fields
//! select it, and it disappears a TTL after its last write — not before.

use std::time::{Duration, Instant};

use beemesh_conformance::{Kubectl, Node, run_recorded, skip};

const KUBECTL: &str = "1.33";
const TTL: Duration = Duration::from_secs(4);

const EVENT: &str = "apiVersion: events.k8s.io/v1
kind: Event
metadata:
  name: web-0.scheduled
  namespace: default
eventTime: \"2026-11-29T10:00:00.000000Z\"
reportingController: example.com/scheduler
reportingInstance: scheduler-1
action: Binding
reason: Scheduled
type: Normal
note: Successfully assigned default/web-0 to node-1
regarding:
  apiVersion: v1
  kind: Pod
  name: web-0
  namespace: default
";

fn event_ttl_expiry() -> String {
    let node = match Node::start_with(&["--event-ttl", "4s"]) {
        Ok(n) => n,
        Err(e) => panic!("node did not start: {e}"),
    };
    let k = match Kubectl::new(KUBECTL, &node.kubeconfig()) {
        Ok(k) => k,
        Err(why) => skip(why),
    };
    k.run_stdin(&["create", "-f", "-"], EVENT)
        .ok()
        .stdout_has("event.events.k8s.io/web-0.scheduled created");
    let written = Instant::now();
    let core = k.get_json(&["events.v1.", "web-0.scheduled"]);
    assert_eq!(core["apiVersion"], "v1", "{core}");
    assert_eq!(
        core["message"],
        "Successfully assigned default/web-0 to node-1"
    );
    assert_eq!(core["involvedObject"]["name"], "web-0");
    assert_eq!(core["reportingComponent"], "example.com/scheduler");
    k.run(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web-0,reason=Scheduled",
    ])
    .ok()
    .stdout_has("Successfully assigned default/web-0 to node-1");
    k.run(&["events", "--for", "pod/web-0"])
        .ok()
        .stdout_has("Scheduled");
    // A write through core/v1 restarts the clock.
    std::thread::sleep(Duration::from_secs(2));
    k.run(&["annotate", "events.v1.", "web-0.scheduled", "touched=yes"])
        .ok();
    let touched = Instant::now();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        written.elapsed() > TTL,
        "the first write is older than the TTL"
    );
    k.run(&["get", "events.v1.events.k8s.io", "web-0.scheduled"])
        .ok();
    let gone_after = loop {
        let out = k.run(&["get", "events.v1.events.k8s.io", "web-0.scheduled"]);
        if out.code != 0 && out.stderr.contains("NotFound") {
            break touched.elapsed();
        }
        assert!(
            touched.elapsed() < TTL + Duration::from_secs(6),
            "not expired {:?} after its last write: {out}",
            touched.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(gone_after >= TTL, "expired early: {gone_after:?}");
    format!(
        "--event-ttl 4s: still there 4.5 s after creation (updated at 2 s), gone {:.1} s after the update",
        gone_after.as_secs_f64()
    )
}

#[test]
fn event_ttl() {
    run_recorded("event_ttl", &format!("kubectl-{KUBECTL}"), event_ttl_expiry);
}
