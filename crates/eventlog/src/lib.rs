//! The append-only event log: one trait, an envelope codec, and two backends (NATS JetStream
//! and an embedded redb file) that pass one conformance suite.
//!
//! Architecture invariant: this crate never interprets a payload. It knows subjects,
//! sequences, message ids and envelopes; what an event means belongs to `domain`.

pub mod chain;
mod envelope;
mod private;
mod subject;

/// The suite both backends pass, for this crate's tests and, with the `conformance` feature,
/// for a backend written elsewhere. It panics on failure, so it stays out of normal builds.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod embedded;
pub mod jetstream;

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

pub use chain::Head;
pub use embedded::{EmbeddedLog, EmbeddedOptions};
pub use envelope::{Actor, ActorKind, DecodeError, Envelope, SCHEMA_VERSION};
pub use jetstream::{
    JetStreamLog, ServerListError, StreamRefused, StreamSettings, check_server_list, connect_nats,
    redacted_url,
};
pub use private::{owner_only_dir, owner_only_file, write_owner_only};
pub use subject::{Subject, SubjectError, matches as subject_matches};

/// One message as stored in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The global position: the stream sequence, starting at 1.
    pub seq: u64,
    pub subject: String,
    pub data: Vec<u8>,
}

/// The answer to a successful append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The position of the message; for a duplicate, the position of the original.
    pub seq: u64,
    /// True when the message id was already in the idempotency window and nothing was written.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The subject's last sequence was not the expected one: someone else wrote first.
    #[error("the subject changed since it was read (expected last sequence {expected})")]
    Conflict { expected: u64 },
    #[error(transparent)]
    Log(#[from] LogError),
}

/// A technical failure of the log: the caller can retry or call an operator.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log unavailable: {what}")]
    Unavailable {
        what: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("event log storage error: {what}")]
    Storage {
        what: String,
        #[source]
        source: Option<BoxError>,
    },
}

/// A foreign error kept as the source of a [`LogError`], so its chain reaches the log line.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl LogError {
    pub fn unavailable(what: impl Into<String>) -> Self {
        Self::Unavailable {
            what: what.into(),
            source: None,
        }
    }

    /// Unavailable because of `source`.
    pub fn unavailable_by(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    pub fn storage(what: impl Into<String>) -> Self {
        Self::Storage {
            what: what.into(),
            source: None,
        }
    }

    /// A storage failure because of `source`.
    pub fn storage_by(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Storage {
            what: what.into(),
            source: Some(source.into()),
        }
    }
}

/// One delivery of a durable consumer: ack it when the work is done, nak it to have it
/// delivered again after a delay, or say it is still in progress while the work runs.
pub struct Delivery {
    pub stored: Stored,
    /// 1 on first delivery, 2 on the first redelivery, and so on.
    pub attempt: u64,
    acker: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("stored", &self.stored)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    pub fn new(stored: Stored, attempt: u64, acker: Box<dyn Acker>) -> Self {
        Self {
            stored,
            attempt,
            acker,
        }
    }

    /// Acknowledge, and return once the log has recorded it: this message will not be
    /// delivered again to this consumer.
    pub async fn ack(self) -> Result<(), LogError> {
        self.acker.ack().await
    }

    /// Acknowledge without waiting for the log to confirm. Cheaper; an ack lost on the way
    /// means one more delivery, so use it where redoing the work is harmless.
    pub async fn ack_unconfirmed(self) -> Result<(), LogError> {
        self.acker.ack_unconfirmed().await
    }

    /// Give the message back: it is delivered again (as the next attempt) once `delay` has
    /// passed, instead of after the whole ack wait. A nak on the last allowed delivery
    /// (attempt = `max_deliver`) gives the message up, as an expired ack wait would.
    pub async fn nak(self, delay: Duration) -> Result<(), LogError> {
        self.acker.nak(delay).await
    }

    /// The work is still running: the ack wait starts over from now, so a slow job is not
    /// handed to another worker while this one still holds it.
    pub async fn in_progress(&self) -> Result<(), LogError> {
        self.acker.in_progress().await
    }
}

/// What a backend does with a delivery's answer. See [`Delivery`] for the contract.
#[async_trait]
pub trait Acker: Send + Sync {
    async fn ack(self: Box<Self>) -> Result<(), LogError>;
    async fn ack_unconfirmed(self: Box<Self>) -> Result<(), LogError>;
    async fn nak(self: Box<Self>, delay: Duration) -> Result<(), LogError>;
    async fn in_progress(&self) -> Result<(), LogError>;
}

/// Settings of a durable consumer.
#[derive(Clone, Debug)]
pub struct DurableConfig {
    /// The consumer's name; state survives restarts under this name.
    pub name: String,
    /// A subject filter with NATS wildcards, e.g. `reg.*.model.*`.
    pub filter: String,
    /// How long an unacked delivery waits before it is delivered again.
    pub ack_wait: Duration,
    /// Deliveries after which a message is given up.
    pub max_deliver: u64,
    /// Messages one pull may fetch at most (0 and 1 both mean one at a time). Fetched
    /// messages are handed out in order by [`Durable::next`]; their ack wait runs from the
    /// fetch, so a batch suits jobs that are quick. The embedded backend reads its file on
    /// every call and needs no batches: it ignores this.
    pub batch: usize,
}

#[async_trait]
pub trait Durable: Send {
    /// The next delivery, waiting at most `wait`; `None` when nothing arrived.
    async fn next(&mut self, wait: Duration) -> Result<Option<Delivery>, LogError>;
}

/// The event log. Both backends keep the same semantics:
/// a global sequence starting at 1, a per-subject last sequence for optimistic concurrency,
/// an idempotency window keyed by message id, and durable consumers.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Append `data` to `subject` if the subject's last sequence is `expected_last`
    /// (0: the subject must be empty). A message id seen within the idempotency window
    /// returns the original position with `duplicate: true` and writes nothing.
    async fn append(
        &self,
        subject: &Subject,
        expected_last: u64,
        msg_id: &str,
        data: Vec<u8>,
    ) -> Result<Appended, AppendError>;

    /// The highest sequence in the log; 0 when empty.
    async fn last_seq(&self) -> Result<u64, LogError>;

    /// The last sequence stored on `subject`; 0 when none.
    async fn subject_last_seq(&self, subject: &Subject) -> Result<u64, LogError>;

    /// Every message from `from` (inclusive) on, in order, then new ones as they arrive.
    /// The stream ends only on error or when dropped.
    async fn tail(
        &self,
        from: u64,
    ) -> Result<BoxStream<'static, Result<Stored, LogError>>, LogError>;

    /// Open (or create) a durable consumer with explicit acks.
    async fn durable(&self, config: DurableConfig) -> Result<Box<dyn Durable>, LogError>;
}

/// The last position whose envelope was recorded at or before `time_ms` (ms since the Unix
/// epoch; 0: none), read from the whole log. Clocks of replicas differ a little, so this is
/// "the last event stamped at or before", not "everything before the first one after".
pub async fn position_at(log: &dyn EventLog, time_ms: i64) -> Result<u64, LogError> {
    use futures::StreamExt;
    let last = log.last_seq().await?;
    if last == 0 {
        return Ok(0);
    }
    let mut found = 0;
    let mut tail = log.tail(1).await?;
    while let Some(stored) = tail.next().await {
        let stored = stored?;
        let envelope = Envelope::decode(&stored.data).map_err(|e| {
            LogError::storage(format!("the message at position {}: {e}", stored.seq))
        })?;
        if envelope.recorded_at_ms <= time_ms {
            found = stored.seq;
        }
        if stored.seq >= last {
            break;
        }
    }
    Ok(found)
}
