//! The envelope every event travels in: metadata the log and the audit trail need, plus the
//! domain's postcard payload as opaque bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The envelope layout this build writes. Every older layout stays decodable: [`Envelope::decode`]
/// reads it and upcasts it to this one (see `ops/evolving-events.md`).
///
/// 1: the first layout. 2: appends `payload_version` (the payload's own layout, which v1
/// tied to the envelope's) and `client_addr`.
pub const SCHEMA_VERSION: u16 = 2;

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

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::System => "system",
            Self::Worker => "worker",
        }
    }
}

/// An envelope in the layout this build writes; older layouts are upcast to it on decode.
///
/// Architecture invariant: fields are only ever appended, and `schema_version` says which
/// layout a stored envelope has. Hashes (`prev_hash`, the running digest) are taken over the
/// bytes as stored, never over a re-encoding, so an upcast envelope verifies as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The layout the envelope was stored in (an upcast v1 envelope says 1).
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
    /// Since v2: the layout version of `payload` (the domain's event encoding). A v1
    /// envelope's payload is version 1.
    pub payload_version: u16,
    /// Since v2: the client's address as the server saw it (the TCP peer, `ip:port`); empty
    /// when the command did not come over HTTP (the system, a worker, a NATS report) or
    /// was recorded by a v1 build.
    pub client_addr: String,
}

/// Layout 1, as builds before the client address wrote it. Never written again; decoded
/// and upcast forever.
#[derive(Serialize, Deserialize)]
struct EnvelopeV1 {
    schema_version: u16,
    event_id: [u8; 16],
    org: String,
    kind: String,
    aggregate_id: String,
    aggregate_version: u64,
    recorded_at_ms: i64,
    actor: Actor,
    request_id: String,
    command_id: String,
    prev_hash: [u8; 32],
    payload: Vec<u8>,
}

impl EnvelopeV1 {
    /// v1 tied the payload's layout to the envelope's: its payloads are version 1. No
    /// client address was recorded.
    fn upcast(self) -> Envelope {
        Envelope {
            schema_version: self.schema_version,
            event_id: self.event_id,
            org: self.org,
            kind: self.kind,
            aggregate_id: self.aggregate_id,
            aggregate_version: self.aggregate_version,
            recorded_at_ms: self.recorded_at_ms,
            actor: self.actor,
            request_id: self.request_id,
            command_id: self.command_id,
            prev_hash: self.prev_hash,
            payload: self.payload,
            payload_version: 1,
            client_addr: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("envelope schema version {0} is newer than this build understands")]
    UnknownVersion(u16),
    #[error("malformed envelope: {0}")]
    Malformed(String),
}

impl Envelope {
    /// The envelope in the layout this build writes (`schema_version` must say so).
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain owned data into a Vec cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Decodes any layout this or an earlier build wrote, upcast to the current one.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let malformed = |e: postcard::Error| DecodeError::Malformed(e.to_string());
        // The version is the first field, so it can be read before the rest is trusted.
        let (version, _): (u16, _) = postcard::take_from_bytes(bytes).map_err(malformed)?;
        match version {
            1 => postcard::from_bytes::<EnvelopeV1>(bytes)
                .map(EnvelopeV1::upcast)
                .map_err(malformed),
            SCHEMA_VERSION => postcard::from_bytes(bytes).map_err(malformed),
            newer => Err(DecodeError::UnknownVersion(newer)),
        }
    }

    /// The hash the next event of this aggregate carries as `prev_hash`.
    pub fn hash_of(encoded: &[u8]) -> [u8; 32] {
        Sha256::digest(encoded).into()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn sample() -> Envelope {
        Envelope {
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
            payload_version: 1,
            client_addr: "192.0.2.7:50312".into(),
        }
    }

    fn golden_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/events/envelope")
    }

    fn golden(name: &str) -> Vec<u8> {
        let path = golden_dir().join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("missing golden file {}", path.display()));
        hex::decode(text.trim()).unwrap()
    }

    #[test]
    fn round_trips_and_refuses_unknown_versions() {
        let envelope = sample();
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

    /// Every layout ever written decodes forever: `schemas/events/envelope/v<N>.hex` holds an
    /// envelope as layout N wrote it (v1 by the build before v2). The current layout also
    /// encodes to its golden bytes; older ones decode upcast, their hash taken over the bytes
    /// as stored. `MODELREG_BLESS=1` writes the current layout's file when it is missing;
    /// an existing golden file is never rewritten.
    #[test]
    fn golden_envelopes_of_every_layout_decode() {
        let current = golden_dir().join(format!("v{SCHEMA_VERSION}.hex"));
        if !current.exists() && std::env::var("MODELREG_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(&current, hex::encode(sample().encode()) + "\n").unwrap();
        }
        let v2 = golden("v2.hex");
        assert_eq!(Envelope::decode(&v2).unwrap(), sample());
        assert_eq!(sample().encode(), v2, "v2 encodes as before");

        let v1 = golden("v1.hex");
        let upcast = Envelope::decode(&v1).unwrap();
        assert_eq!(
            upcast,
            Envelope {
                schema_version: 1,
                payload_version: 1,
                client_addr: String::new(),
                ..sample()
            },
            "v1 upcasts with payload version 1 and no client address"
        );
        assert_ne!(Envelope::hash_of(&v1), Envelope::hash_of(&upcast.encode()));
        let files = std::fs::read_dir(golden_dir()).unwrap().count();
        assert_eq!(
            files,
            usize::from(SCHEMA_VERSION),
            "one golden file per layout"
        );
    }
}
