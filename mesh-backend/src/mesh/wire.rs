//! What travels between nodes: publications on gossipsub topics (a compact binary
//! record) and the request-response protocol (CBOR) for forwarded writes, membership
//! hellos and anti-entropy.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::replica::{CasConflict, Entry, Expected};
use crate::version::Version;

/// Prefix of every topic the mesh uses.
pub const TOPIC_PREFIX: &str = "beemesh/v1/";

/// Largest object value the mesh carries (Kubernetes allows ~1.5 MiB per object; the
/// headroom covers large custom resources and Secrets/ConfigMaps near etcd's limit).
pub const MAX_VALUE_BYTES: usize = 3 << 20;
/// Largest key.
pub const MAX_KEY_BYTES: usize = 4096;
/// Largest version origin (a peer id is 38 bytes).
const MAX_ORIGIN_BYTES: usize = 128;
/// gossipsub's limit: one value plus key, version, framing and signature.
pub const MAX_GOSSIP_BYTES: usize = MAX_VALUE_BYTES + (64 << 10);
/// Requests carry at most one value (a forwarded write) or a list of keys.
pub const MAX_REQUEST_BYTES: u64 = 8 << 20;
/// Responses carry value batches (≤ [`FETCH_BATCH_BYTES`] plus one value) or version lists.
pub const MAX_RESPONSE_BYTES: u64 = 64 << 20;
/// A fetch response stops adding values past this many bytes.
pub const FETCH_BATCH_BYTES: usize = 4 << 20;

/// The gossipsub topic of a key: `beemesh/v1/` + its first two path segments, so
/// `/apps/deployments/default/web` publishes on `beemesh/v1/apps/deployments`.
pub fn topic_of(key: &[u8]) -> String {
    let text = String::from_utf8_lossy(key);
    let segments: Vec<&str> = text.split('/').filter(|s| !s.is_empty()).take(2).collect();
    if segments.is_empty() {
        format!("{TOPIC_PREFIX}_")
    } else {
        format!("{TOPIC_PREFIX}{}", segments.join("/"))
    }
}

/// A global version on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireVersion {
    pub hlc: u64,
    pub origin: Bytes,
}

impl From<&Version> for WireVersion {
    fn from(v: &Version) -> Self {
        WireVersion {
            hlc: v.hlc,
            origin: v.origin.clone(),
        }
    }
}

impl From<WireVersion> for Version {
    fn from(v: WireVersion) -> Self {
        Version {
            hlc: v.hlc,
            origin: v.origin,
        }
    }
}

/// One key's replicated state on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEntry {
    pub key: Bytes,
    pub version: WireVersion,
    pub deleted: bool,
    pub value: Bytes,
}

impl From<&Entry> for WireEntry {
    fn from(e: &Entry) -> Self {
        WireEntry {
            key: e.key.clone(),
            version: (&e.version).into(),
            deleted: e.deleted,
            value: e.value.clone(),
        }
    }
}

impl From<WireEntry> for Entry {
    fn from(e: WireEntry) -> Self {
        Entry {
            key: e.key,
            version: e.version.into(),
            deleted: e.deleted,
            value: e.value,
        }
    }
}

/// `(key, version, deleted)` of one key, for comparing buckets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireVersionOf {
    pub key: Bytes,
    pub version: WireVersion,
    pub deleted: bool,
}

/// A member and where it can be dialled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerAddrs {
    pub peer: Bytes,
    pub addrs: Vec<Bytes>,
}

/// Exchanged when two members meet and when a node becomes ready: whether the sender
/// finished its first sync (only ready members are homes), and the members it knows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub ready: bool,
    pub peers: Vec<PeerAddrs>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RpcRequest {
    Hello(Hello),
    /// The home's compare-and-set; `expected: None` means "absent".
    Cas {
        key: Bytes,
        expected: Option<WireVersion>,
        deleted: bool,
        value: Bytes,
    },
    /// The 256 bucket digests.
    Digests,
    /// Every `(key, version, deleted)` of these buckets.
    Versions {
        buckets: Bytes,
    },
    /// The entries of these keys, in order, until the batch is full.
    Fetch {
        keys: Vec<Bytes>,
    },
    /// Every entry of these buckets, in order (by key within a bucket), starting after
    /// key `after` in the first one, until the batch is full: how a replica that lacks
    /// whole buckets (a new node) pulls them without comparing version lists.
    Buckets {
        buckets: Bytes,
        after: Option<Bytes>,
    },
    /// Placement: a bid batch for a tender this node published (`mesh::placement`).
    Bids(Bytes),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RpcResponse {
    Hello(Hello),
    /// The stored entry, or the key's current `(version, deleted)` on a mismatch.
    Cas(Result<WireEntry, Option<(WireVersion, bool)>>),
    /// 256 × 32 bytes, and whether the sender had finished its first sync when it read
    /// them (only a ready replica can make another one ready).
    Digests {
        digests: Bytes,
        ready: bool,
    },
    Versions(Vec<WireVersionOf>),
    /// Entries of the first `served` requested keys (keys the sender lacks are skipped).
    Fetch {
        entries: Vec<WireEntry>,
        served: u32,
    },
    /// Entries of the first `complete` asked buckets, then, if the batch filled up, the
    /// first entries of the next bucket (resume after the last entry's key).
    Buckets {
        entries: Vec<WireEntry>,
        complete: u16,
    },
    /// The request could not be handled (not a member, busy, storage failure).
    Error(String),
    /// The bid batch was handed to placement.
    BidsTaken,
}

pub fn expected_to_wire(expected: &Expected) -> Option<WireVersion> {
    match expected {
        Expected::Absent => None,
        Expected::Version(v) => Some(v.into()),
    }
}

pub fn expected_from_wire(expected: Option<WireVersion>) -> Expected {
    match expected {
        None => Expected::Absent,
        Some(v) => Expected::Version(v.into()),
    }
}

pub fn conflict_to_wire(conflict: CasConflict) -> Option<(WireVersion, bool)> {
    conflict.current.map(|(v, d)| ((&v).into(), d))
}

pub fn conflict_from_wire(current: Option<(WireVersion, bool)>) -> CasConflict {
    CasConflict {
        current: current.map(|(v, d)| (v.into(), d)),
    }
}

const PUBLICATION_FORMAT: u8 = 1;

/// Why a publication was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicationError {
    #[error("truncated publication")]
    Truncated,
    #[error("unknown publication format {0}")]
    Format(u8),
    #[error("publication field too large")]
    TooLarge,
}

/// `format u8 | key_len u32 | key | hlc u64 | origin_len u16 | origin | deleted u8 | value`
pub fn encode_publication(entry: &Entry) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(
        1 + 4 + entry.key.len() + 8 + 2 + entry.version.origin.len() + 1 + entry.value.len(),
    );
    out.put_u8(PUBLICATION_FORMAT);
    out.put_u32(entry.key.len() as u32);
    out.put_slice(&entry.key);
    out.put_u64(entry.version.hlc);
    out.put_u16(entry.version.origin.len() as u16);
    out.put_slice(&entry.version.origin);
    out.put_u8(entry.deleted as u8);
    out.put_slice(&entry.value);
    out.to_vec()
}

pub fn decode_publication(data: &[u8]) -> Result<Entry, PublicationError> {
    let mut buf = data;
    let take = |buf: &mut &[u8], n: usize| -> Result<Bytes, PublicationError> {
        if buf.len() < n {
            return Err(PublicationError::Truncated);
        }
        let out = Bytes::copy_from_slice(&buf[..n]);
        buf.advance(n);
        Ok(out)
    };
    if buf.remaining() < 1 {
        return Err(PublicationError::Truncated);
    }
    let format = buf.get_u8();
    if format != PUBLICATION_FORMAT {
        return Err(PublicationError::Format(format));
    }
    if buf.remaining() < 4 {
        return Err(PublicationError::Truncated);
    }
    let key_len = buf.get_u32() as usize;
    if key_len == 0 || key_len > MAX_KEY_BYTES {
        return Err(PublicationError::TooLarge);
    }
    let key = take(&mut buf, key_len)?;
    if buf.remaining() < 10 {
        return Err(PublicationError::Truncated);
    }
    let hlc = buf.get_u64();
    let origin_len = buf.get_u16() as usize;
    if origin_len > MAX_ORIGIN_BYTES {
        return Err(PublicationError::TooLarge);
    }
    let origin = take(&mut buf, origin_len)?;
    if buf.remaining() < 1 {
        return Err(PublicationError::Truncated);
    }
    let deleted = match buf.get_u8() {
        0 => false,
        1 => true,
        _ => return Err(PublicationError::Truncated),
    };
    if buf.len() > MAX_VALUE_BYTES {
        return Err(PublicationError::TooLarge);
    }
    Ok(Entry {
        key,
        version: Version { hlc, origin },
        deleted,
        value: Bytes::copy_from_slice(buf),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_per_resource() {
        assert_eq!(
            topic_of(b"/apps/deployments/default/web"),
            "beemesh/v1/apps/deployments"
        );
        assert_eq!(
            topic_of(b"/core/namespaces/kube-system"),
            "beemesh/v1/core/namespaces"
        );
        assert_eq!(topic_of(b"/x"), "beemesh/v1/x");
        assert_eq!(topic_of(b""), "beemesh/v1/_");
    }

    #[test]
    fn publications_round_trip_and_garbage_is_refused() {
        let entry = Entry {
            key: Bytes::from_static(b"/apps/deployments/default/web"),
            version: Version {
                hlc: 77,
                origin: Bytes::from_static(b"peer"),
            },
            deleted: true,
            value: Bytes::from_static(b"{\"kind\":\"Deployment\"}"),
        };
        let data = encode_publication(&entry);
        assert_eq!(decode_publication(&data).unwrap(), entry);
        for cut in 0..data.len() - entry.value.len() {
            assert!(decode_publication(&data[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            decode_publication(&[9, 0, 0]),
            Err(PublicationError::Format(9))
        );
        let mut huge_key = vec![PUBLICATION_FORMAT];
        huge_key.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decode_publication(&huge_key),
            Err(PublicationError::TooLarge)
        );
    }
}
