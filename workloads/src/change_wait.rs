//! What every controller here does between passes: wait on this node's replica for a change
//! to one resource, or for a timeout, whichever comes first.

use std::time::Duration;

use beemesh_translator::ResourceInfo;
use beemesh_translator::service::ObjectService;

/// Returns once an object of `res` changes on this node's replica after revision `from`
/// and `relevant` accepts its new value, or once `wait` has passed. Read `from` before the
/// pass whose results the wait follows, so a change between the pass and the wait is not
/// left for the next timeout.
pub(crate) async fn wait_for_change(
    service: &ObjectService,
    res: &ResourceInfo,
    from: u64,
    wait: Duration,
    relevant: impl Fn(&[u8]) -> bool,
) {
    let Ok(mut source) = service.store.watch(res, None, Some(from)) else {
        tokio::time::sleep(wait).await;
        return;
    };
    let prefix = source.prefix.clone();
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            ev = source.subscription.next() => match ev {
                Ok(e) if e.key.starts_with(&prefix) && relevant(&e.value) => return,
                Ok(_) => continue,
                // The history moved past us or the replica closed: a fresh pass catches up.
                Err(_) => return,
            }
        }
    }
}
