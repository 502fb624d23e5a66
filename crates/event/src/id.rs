//! The stable id every stored event is keyed by.
//!
//! Delivery is at-least-once, so the store must recognise a re-sent event. The
//! obvious key, `(auditID, stage)`, is not unique: clients may send their own
//! `Audit-ID` header and the API server keeps it, so two different requests
//! can share both, and keying on it would let a client hide one request behind
//! another's ID. The id is therefore a hash of the event's *content*: BLAKE3
//! over the cluster name and the original bytes, in a key-derivation context
//! private to auditrail. An exact re-send maps to the same id; a different
//! event (one byte differs) to a different one.

use std::fmt;
use std::str::FromStr;

/// Domain-separation context: ids from other BLAKE3 uses can never collide
/// with ours, and a future scheme gets a new context (and a new version).
const ID_CONTEXT: &str = "auditrail 2026-11 audit event id v1";

/// A 256-bit content-hash event id, written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId([u8; 32]);

impl EventId {
    /// Length of the hex form.
    pub const HEX_LEN: usize = 64;

    /// The id of the event whose original bytes are `raw`, in `cluster`.
    ///
    /// The cluster name is length-prefixed so that no (cluster, bytes) pair
    /// can be re-split into another with the same hash input.
    pub fn compute(cluster: &str, raw: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key(ID_CONTEXT);
        hasher.update(&(cluster.len() as u64).to_le_bytes());
        hasher.update(cluster.as_bytes());
        hasher.update(raw);
        Self(*hasher.finalize().as_bytes())
    }

    /// The id with these bytes (as stored by a backend).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The id as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(blake3::Hash::from_bytes(self.0).to_hex().as_str())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

/// A string that is not an event id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event id {0:?}: expected 64 hex digits")]
pub struct EventIdParseError(pub String);

impl FromStr for EventId {
    type Err = EventIdParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        blake3::Hash::from_hex(s)
            .map(|h| Self(*h.as_bytes()))
            .map_err(|_| EventIdParseError(s.to_owned()))
    }
}
