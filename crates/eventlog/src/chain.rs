//! Tamper evidence over the log: every envelope carries the hash of its aggregate's previous
//! envelope (a chain per aggregate), and a running digest folds every message in stream
//! order (one chain over the whole log). [`verify`] walks the log and checks both.
//!
//! The running digest after position `n` is
//! `SHA-256(digest(n-1) ‖ n as 8 bytes big-endian ‖ SHA-256(stored bytes of n))`, starting
//! from 32 zero bytes: an edited, removed or reordered message changes every digest after
//! it. A digest recorded earlier (`GET /v1/audit/head`) therefore also detects a log cut
//! short, which no chain inside the log can.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::{Envelope, EventLog, LogError, Subject};

/// The running digest of an empty log.
pub const GENESIS: [u8; 32] = [0; 32];

/// The running digest after the message at `seq`, whose stored bytes hash to `data_hash`
/// (`Envelope::hash_of`), given the digest before it.
pub fn next_digest(before: &[u8; 32], seq: u64, data_hash: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(before);
    hasher.update(seq.to_be_bytes());
    hasher.update(data_hash);
    hasher.finalize().into()
}

/// A position and the running digest there, as `POSITION:HEX` (what `verify --expect`
/// takes and `GET /v1/audit/head` answers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub position: u64,
    pub digest: [u8; 32],
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.position, hex::encode(self.digest))
    }
}

impl std::str::FromStr for Head {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let malformed = || "expected POSITION:DIGEST (a number, a colon, 64 hex digits)".to_owned();
        let (position, digest) = text.trim().split_once(':').ok_or_else(malformed)?;
        let position = position.parse().map_err(|_| malformed())?;
        let digest = hex::decode(digest)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(malformed)?;
        Ok(Self { position, digest })
    }
}

/// What is wrong at a position of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BreakKind {
    /// Positions are missing: messages were deleted (or the log was cut short).
    Missing,
    /// The stored bytes are not an envelope.
    Undecodable,
    /// The envelope names another aggregate than the subject it is stored under.
    WrongSubject,
    /// An aggregate's versions do not follow each other: an event was moved or removed.
    OutOfOrder,
    /// An event does not carry the hash of its aggregate's previous event: that one (or this
    /// one) was altered.
    Altered,
    /// The running digest at the expected position differs: something at or before it
    /// changed.
    DigestMismatch,
    /// The log ends before the expected position.
    Truncated,
}

impl BreakKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Undecodable => "undecodable",
            Self::WrongSubject => "wrong_subject",
            Self::OutOfOrder => "out_of_order",
            Self::Altered => "altered",
            Self::DigestMismatch => "digest_mismatch",
            Self::Truncated => "truncated",
        }
    }
}

/// The first break found, at the first position that is not as it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Break {
    pub position: u64,
    pub kind: BreakKind,
    pub detail: String,
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The last position read and the running digest there (up to the break, if any).
    pub head: Head,
    pub messages: u64,
    pub aggregates: usize,
    pub first_break: Option<Break>,
}

/// How long the log may stay silent, short of its last position, before the positions it
/// does not deliver count as missing (a deleted last message leaves the stream's last
/// sequence behind it).
const SILENCE: Duration = Duration::from_secs(2);

/// Where one aggregate's chain stands.
struct Link {
    version: u64,
    seq: u64,
    hash: [u8; 32],
}

/// Walks the whole log in stream order, checks every aggregate's chain (versions one after
/// the other, each envelope carrying its predecessor's hash, stored under its own subject)
/// and folds the running digest; with `expect`, also that the digest at that position is
/// the one recorded earlier and that the log reaches it. Stops at the first break.
pub async fn verify(log: &dyn EventLog, expect: Option<Head>) -> Result<Verified, LogError> {
    let last = log.last_seq().await?;
    let mut verified = Verified {
        head: Head {
            position: 0,
            digest: GENESIS,
        },
        messages: 0,
        aggregates: 0,
        first_break: None,
    };
    let mut links: HashMap<String, Link> = HashMap::new();
    let found = walk(log, last, expect, &mut verified, &mut links).await?;
    verified.aggregates = links.len();
    verified.first_break = found.or_else(|| {
        let expect = expect?;
        (verified.head.position < expect.position).then(|| Break {
            position: verified.head.position + 1,
            kind: BreakKind::Truncated,
            detail: format!(
                "the log ends at position {} but a digest was recorded at position {}: the log was cut short",
                verified.head.position, expect.position
            ),
        })
    });
    Ok(verified)
}

async fn walk(
    log: &dyn EventLog,
    last: u64,
    expect: Option<Head>,
    verified: &mut Verified,
    links: &mut HashMap<String, Link>,
) -> Result<Option<Break>, LogError> {
    if last == 0 {
        return Ok(None);
    }
    let mut tail = log.tail(1).await?;
    while verified.head.position < last {
        let stored = match tokio::time::timeout(SILENCE, tail.next()).await {
            Ok(Some(stored)) => stored?,
            Ok(None) => return Err(LogError::unavailable("the log's stream ended")),
            Err(_) => {
                return Ok(Some(missing(verified.head.position + 1, last + 1)));
            }
        };
        let expected = verified.head.position + 1;
        if stored.seq != expected {
            return Ok(Some(missing(expected, stored.seq)));
        }
        let data_hash = Envelope::hash_of(&stored.data);
        if let Some(found) = check(&stored, data_hash, links) {
            return Ok(Some(found));
        }
        verified.head = Head {
            position: stored.seq,
            digest: next_digest(&verified.head.digest, stored.seq, &data_hash),
        };
        verified.messages += 1;
        if let Some(expect) = expect
            && expect.position == stored.seq
            && expect.digest != verified.head.digest
        {
            return Ok(Some(Break {
                position: stored.seq,
                kind: BreakKind::DigestMismatch,
                detail: format!(
                    "the running digest at position {} is not the one recorded: a message at or before it was altered, removed or reordered",
                    stored.seq
                ),
            }));
        }
    }
    Ok(None)
}

fn missing(from: u64, to: u64) -> Break {
    let detail = if to == from + 1 {
        format!("position {from} is missing: its message was deleted")
    } else {
        format!(
            "positions {from} to {} are missing: their messages were deleted",
            to - 1
        )
    };
    Break {
        position: from,
        kind: BreakKind::Missing,
        detail,
    }
}

/// One message against its aggregate's chain; moves the chain on when it fits.
fn check(
    stored: &crate::Stored,
    data_hash: [u8; 32],
    links: &mut HashMap<String, Link>,
) -> Option<Break> {
    let at = stored.seq;
    let envelope = match Envelope::decode(&stored.data) {
        Ok(envelope) => envelope,
        Err(error) => {
            return Some(Break {
                position: at,
                kind: BreakKind::Undecodable,
                detail: format!("the message at position {at} is not an envelope: {error}"),
            });
        }
    };
    let own_subject = Subject::new(&envelope.org, &envelope.kind, &envelope.aggregate_id)
        .map(|s| s.as_str() == stored.subject)
        .unwrap_or(false);
    if !own_subject {
        return Some(Break {
            position: at,
            kind: BreakKind::WrongSubject,
            detail: format!(
                "the event at position {at} is stored under {} but names another aggregate",
                stored.subject
            ),
        });
    }
    let link = links.get(&stored.subject);
    let (version, prev_hash) = link.map_or((0, [0; 32]), |l| (l.version, l.hash));
    if envelope.aggregate_version != version + 1 {
        return Some(Break {
            position: at,
            kind: BreakKind::OutOfOrder,
            detail: format!(
                "the event at position {at} is version {} of {} but version {} was expected: events of it were moved or removed",
                envelope.aggregate_version,
                stored.subject,
                version + 1
            ),
        });
    }
    if envelope.prev_hash != prev_hash {
        let before = link.map_or(at, |l| l.seq);
        return Some(Break {
            position: before,
            kind: BreakKind::Altered,
            detail: format!(
                "the event at position {before} was altered: the next event of {}, at position {at}, carries another hash of it (or that one was altered)",
                stored.subject
            ),
        });
    }
    links.insert(
        stored.subject.clone(),
        Link {
            version: envelope.aggregate_version,
            seq: at,
            hash: data_hash,
        },
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_print_and_parse() {
        let head = Head {
            position: 42,
            digest: [0xab; 32],
        };
        let text = head.to_string();
        assert_eq!(text, format!("42:{}", "ab".repeat(32)));
        assert_eq!(text.parse::<Head>().unwrap(), head);
        assert!("42".parse::<Head>().is_err());
        assert!("x:ab".parse::<Head>().is_err());
        assert!(format!("1:{}", "ab".repeat(31)).parse::<Head>().is_err());
    }

    #[test]
    fn the_digest_depends_on_position_bytes_and_what_came_before() {
        let one = next_digest(&GENESIS, 1, &[1; 32]);
        assert_ne!(one, next_digest(&GENESIS, 2, &[1; 32]));
        assert_ne!(one, next_digest(&GENESIS, 1, &[2; 32]));
        assert_ne!(
            next_digest(&one, 2, &[3; 32]),
            next_digest(&GENESIS, 2, &[3; 32])
        );
    }
}
