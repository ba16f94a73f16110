//! The envelope every event travels in: metadata the log and the audit trail need, plus the
//! domain's postcard payload as opaque bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The envelope's own layout version. Bump only with a decoder for every older version.
pub const SCHEMA_VERSION: u16 = 1;

/// Who caused an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    /// A token id, or the name of the system component.
    pub id: String,
    pub label: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActorKind {
    Token,
    System,
    Worker,
}

/// Architecture invariant: fields are only ever appended, and `schema_version` says which
/// layout a stored envelope has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub schema_version: u16,
    pub event_id: [u8; 16],
    pub org: String,
    pub kind: String,
    pub aggregate_id: String,
    /// 1 for the aggregate's first event.
    pub aggregate_version: u64,
    /// Milliseconds since the Unix epoch, taken by the command handler.
    pub recorded_at_ms: i64,
    pub actor: Actor,
    pub request_id: String,
    pub command_id: String,
    /// SHA-256 of the encoded previous envelope of the same aggregate; zeros for the first.
    pub prev_hash: [u8; 32],
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("envelope schema version {0} is newer than this build understands")]
    UnknownVersion(u16),
    #[error("malformed envelope: {0}")]
    Malformed(String),
}

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain owned data into a Vec cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        // The version is the first field, so it can be read before the rest is trusted.
        let (version, _): (u16, _) =
            postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if version != SCHEMA_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        postcard::from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    /// The hash the next event of this aggregate carries as `prev_hash`.
    pub fn hash_of(encoded: &[u8]) -> [u8; 32] {
        Sha256::digest(encoded).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_versions() {
        let envelope = Envelope {
            schema_version: SCHEMA_VERSION,
            event_id: [7; 16],
            org: "acme".into(),
            kind: "model".into(),
            aggregate_id: "gpt".into(),
            aggregate_version: 1,
            recorded_at_ms: 1_700_000_000_000,
            actor: Actor {
                kind: ActorKind::Token,
                id: "t1".into(),
                label: "admin".into(),
            },
            request_id: "r".into(),
            command_id: "c".into(),
            prev_hash: [0; 32],
            payload: vec![1, 2, 3],
        };
        let bytes = envelope.encode();
        assert_eq!(Envelope::decode(&bytes).unwrap(), envelope);
        let mut future = bytes.clone();
        future[0] = 9;
        assert!(matches!(
            Envelope::decode(&future),
            Err(DecodeError::UnknownVersion(9))
        ));
        assert!(Envelope::decode(&[]).is_err());
    }
}
