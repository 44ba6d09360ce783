//! Per-bucket digests of the replica's (key, version) pairs, for anti-entropy: two
//! replicas hold the same versions of a bucket iff their digests match (up to hash
//! collisions). Maintained incrementally by XOR, so an update costs two hashes.

use sha2::{Digest, Sha256};

use crate::version::Version;

pub const BUCKETS: usize = 256;

/// Which bucket a key falls in.
pub fn bucket_of(key: &[u8]) -> u8 {
    Sha256::digest(key)[0]
}

fn entry_hash(key: &[u8], version: &Version, deleted: bool) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((key.len() as u32).to_be_bytes());
    h.update(key);
    h.update(version.encode());
    h.update([deleted as u8]);
    h.finalize().into()
}

/// The XOR digests of every bucket.
#[derive(Debug, Clone)]
pub struct BucketDigests {
    buckets: Vec<[u8; 32]>,
}

impl Default for BucketDigests {
    fn default() -> Self {
        BucketDigests {
            buckets: vec![[0u8; 32]; BUCKETS],
        }
    }
}

impl BucketDigests {
    fn toggle(&mut self, key: &[u8], version: &Version, deleted: bool) {
        let h = entry_hash(key, version, deleted);
        let b = &mut self.buckets[bucket_of(key) as usize];
        for (x, y) in b.iter_mut().zip(h.iter()) {
            *x ^= y;
        }
    }

    /// Records that `key` moved from `old` to `new` (either may be absent).
    pub fn replace(
        &mut self,
        key: &[u8],
        old: Option<(&Version, bool)>,
        new: Option<(&Version, bool)>,
    ) {
        if let Some((v, d)) = old {
            self.toggle(key, v, d);
        }
        if let Some((v, d)) = new {
            self.toggle(key, v, d);
        }
    }

    pub fn all(&self) -> &[[u8; 32]] {
        &self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn digests_depend_on_content_not_order() {
        let v = |n| Version {
            hlc: n,
            origin: Bytes::from_static(b"o"),
        };
        let mut a = BucketDigests::default();
        let mut b = BucketDigests::default();
        a.replace(b"k1", None, Some((&v(1), false)));
        a.replace(b"k2", None, Some((&v(2), false)));
        b.replace(b"k2", None, Some((&v(2), false)));
        b.replace(b"k1", None, Some((&v(1), false)));
        assert_eq!(a.all(), b.all());
        a.replace(b"k1", Some((&v(1), false)), Some((&v(3), true)));
        assert_ne!(a.all(), b.all());
        b.replace(b"k1", Some((&v(1), false)), Some((&v(3), true)));
        assert_eq!(a.all(), b.all());
    }
}
