//! Global versions: a hybrid logical clock reading plus the writer's id. They order the
//! versions of one key identically on every node (last-writer-wins), whatever each
//! node's local revision counter says.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

/// `(hlc, origin)`, compared as a tuple: the larger version wins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Milliseconds since the epoch in the high 48 bits, a logical counter in the low 16.
    pub hlc: u64,
    /// The id (libp2p peer id bytes) of the node that assigned this version.
    pub origin: Bytes,
}

impl Version {
    /// `hlc` (8 bytes, big endian) then the origin bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.origin.len());
        out.extend_from_slice(&self.hlc.to_be_bytes());
        out.extend_from_slice(&self.origin);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Version> {
        let hlc = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        Some(Version {
            hlc,
            origin: Bytes::copy_from_slice(&bytes[8..]),
        })
    }

    /// Wall-clock milliseconds of the version (for tombstone expiry).
    pub fn millis(&self) -> u64 {
        self.hlc >> 16
    }
}

/// A hybrid logical clock: never goes backwards, and moves past every version it sees.
#[derive(Debug, Default)]
pub struct Hlc {
    last: Mutex<u64>,
}

fn wall_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Hlc {
    /// A reading greater than every earlier reading and than `after`.
    pub fn next_after(&self, after: u64) -> u64 {
        let mut last = self.last.lock();
        let wall = wall_millis() << 16;
        let next = wall.max(*last + 1).max(after + 1);
        *last = next;
        next
    }

    /// Moves the clock past a version seen from another node.
    pub fn observe(&self, seen: u64) {
        let mut last = self.last.lock();
        if seen > *last {
            *last = seen;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_clock_then_origin_and_round_trip() {
        let a = Version {
            hlc: 5,
            origin: Bytes::from_static(b"a"),
        };
        let b = Version {
            hlc: 5,
            origin: Bytes::from_static(b"b"),
        };
        let c = Version {
            hlc: 6,
            origin: Bytes::from_static(b"a"),
        };
        assert!(a < b && b < c);
        assert_eq!(Version::decode(&c.encode()), Some(c));
        assert_eq!(Version::decode(b"short"), None);
    }

    #[test]
    fn clock_is_monotonic_and_jumps_past_observed() {
        let h = Hlc::default();
        let t1 = h.next_after(0);
        let t2 = h.next_after(0);
        assert!(t2 > t1);
        let far = t2 + (1 << 30);
        h.observe(far);
        assert!(h.next_after(0) > far);
        assert!(h.next_after(far + 10) > far + 10);
    }
}
