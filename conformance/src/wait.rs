//! Polling for state that settles asynchronously (controllers, deletions).

use std::time::{Duration, Instant};

/// Retries `check` every 100 ms until it returns `Ok`, panicking with its last error once
/// `timeout` has passed.
#[track_caller]
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => {
                panic!("still not true after {}s: {e}", timeout.as_secs())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
