//! The embedded backend: the whole log in one redb file, written by one group-committing thread.
//!
//! Layout of the file (one redb database):
//!
//! | table          | key          | value                                  |
//! |----------------|--------------|----------------------------------------|
//! | `messages`     | stream seq   | (subject, msg id, recorded-at ms, data) |
//! | `subject_last` | subject      | last seq on the subject                |
//! | `consumers`    | durable name | postcard `SavedConsumer`               |
//!
//! Every write goes through one writer thread: it takes all pending requests (up to
//! `writer::MAX_BATCH`), applies them in order inside one write transaction, where later requests
//! see earlier ones, commits once (one fsync), and only then answers. An fsync'd commit
//! costs about 0.25 ms, so this is what lets concurrent appends reach tens of thousands
//! per second. Reads (`tail`, `subject_last_seq`, consumers) use redb read transactions and
//! never wait for the writer.
//!
//! The idempotency window lives in the writer's memory, rebuilt on open from the newest
//! messages (each carries its id and time). A table keyed by message id would cost a
//! random B-tree page per append and commit; appends would be about a third slower.
//!
//! The code follows those seams: `writer` (the thread, its batches and the idempotency
//! window), `tail` (the streams that follow the file) and `durable` (consumers, their
//! deliveries and acks). This file holds what they share: the tables, the open file and its
//! errors.

mod durable;
mod tail;
mod writer;

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;
use std::sync::{Arc, Mutex as StdMutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::stream::BoxStream;
use redb::{Database, DatabaseError, TableDefinition};
use tokio::sync::{Mutex, mpsc, oneshot, watch};

use self::durable::ConsumerState;
use self::writer::Request;
use crate::{AppendError, Appended, Durable, DurableConfig, EventLog, LogError, Stored, Subject};

/// seq -> (subject, msg id, recorded-at ms since the Unix epoch, data).
const MESSAGES: TableDefinition<u64, (&str, &str, u64, &[u8])> = TableDefinition::new("messages");
const SUBJECT_LAST: TableDefinition<&str, u64> = TableDefinition::new("subject_last");
const CONSUMERS: TableDefinition<&str, &[u8]> = TableDefinition::new("consumers");

/// Settings of an embedded log.
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// How long a message id is remembered for deduplication (JetStream's `duplicate_window`).
    pub duplicate_window: Duration,
    /// redb's page cache for the log file. Appends and the tails' sequential reads need
    /// little of it; redb's default (1 GiB) let a process's memory follow the log's size
    /// as consumers read it.
    pub cache_bytes: usize,
}

/// The log's page cache by default.
pub const LOG_CACHE_BYTES: usize = 64 << 20;

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            duplicate_window: Duration::from_secs(120),
            cache_bytes: LOG_CACHE_BYTES,
        }
    }
}

/// The event log in one redb file, with the same semantics as the JetStream backend.
///
/// Dropping it stops the writer thread and waits for the commit in flight; the file is
/// closed once every tail stream and durable consumer opened from it is dropped too.
pub struct EmbeddedLog {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

/// What the log, its tail streams, durables and ackers share.
struct Shared {
    db: Arc<Database>,
    requests: mpsc::UnboundedSender<Request>,
    /// The last committed sequence; the writer publishes it after each commit.
    committed: watch::Receiver<u64>,
    /// Write transactions the writer committed since open.
    commits: Arc<std::sync::atomic::AtomicU64>,
    /// Durable consumers opened in this process, so two handles on one name share state.
    consumers: StdMutex<HashMap<String, Arc<Mutex<ConsumerState>>>>,
}

impl EmbeddedLog {
    /// Open (or create) the log at `path` with default options.
    ///
    /// Fails with [`LogError::Storage`] if the file is already open, in this process or
    /// another one.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        Self::open_with(path, EmbeddedOptions::default())
    }

    /// Open (or create) the log at `path`.
    pub fn open_with(path: &Path, options: EmbeddedOptions) -> Result<Self, LogError> {
        crate::owner_only_file(path).map_err(|error| {
            LogError::storage_by(
                format!("cannot create the embedded log {}", path.display()),
                error,
            )
        })?;
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(path)
            .map_err(|error| match error {
                DatabaseError::DatabaseAlreadyOpen => LogError::storage(format!(
                    "the embedded log {} is already open (by this process or another one)",
                    path.display()
                )),
                other => LogError::storage(format!(
                    "cannot open the embedded log {}: {other}",
                    path.display()
                )),
            })?;
        create_tables(&db).map_err(storage)?;
        let db = Arc::new(db);
        let writer = writer::start(db.clone(), options.duplicate_window)?;
        Ok(Self {
            shared: Arc::new(Shared {
                db,
                requests: writer.requests,
                committed: writer.committed,
                commits: writer.commits,
                consumers: StdMutex::new(HashMap::new()),
            }),
            writer: Some(writer.thread),
        })
    }

    /// Write transactions (each one fsync) committed since the log was opened: how well
    /// appends, deliveries and acks share commits.
    pub fn commits(&self) -> u64 {
        self.shared
            .commits
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for EmbeddedLog {
    fn drop(&mut self) {
        // Joining makes "drop, then open the same file again" deterministic: the writer's
        // handle on the database is gone when this returns. It blocks for at most one commit.
        let _ = self.shared.requests.send(Request::Shutdown);
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[async_trait]
impl EventLog for EmbeddedLog {
    async fn append(
        &self,
        subject: &Subject,
        expected_last: u64,
        msg_id: &str,
        data: Vec<u8>,
    ) -> Result<Appended, AppendError> {
        let (reply, answer) = oneshot::channel();
        let request = Request::Append {
            subject: subject.as_str().to_owned(),
            expected_last,
            msg_id: msg_id.to_owned(),
            data,
            reply,
        };
        self.shared.requests.send(request).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    async fn last_seq(&self) -> Result<u64, LogError> {
        Ok(*self.shared.committed.borrow())
    }

    async fn subject_last_seq(&self, subject: &Subject) -> Result<u64, LogError> {
        // A point read takes microseconds; not worth a trip to the blocking pool.
        let read = || -> Result<u64, DbError> {
            let txn = self.shared.db.begin_read()?;
            let table = txn.open_table(SUBJECT_LAST)?;
            Ok(table.get(subject.as_str())?.map_or(0, |seq| seq.value()))
        };
        read().map_err(storage)
    }

    async fn tail(
        &self,
        from: u64,
    ) -> Result<BoxStream<'static, Result<Stored, LogError>>, LogError> {
        Ok(tail::stream(
            self.shared.db.clone(),
            self.shared.committed.clone(),
            from,
        ))
    }

    async fn durable(&self, config: DurableConfig) -> Result<Box<dyn Durable>, LogError> {
        durable::open(&self.shared, config).await
    }
}

/// A redb error, boxed because it is large; it leaves the embedded backend as the source of
/// a [`LogError`].
#[derive(Debug)]
struct DbError(Box<redb::Error>);

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl<E: Into<redb::Error>> From<E> for DbError {
    fn from(error: E) -> Self {
        Self(Box::new(error.into()))
    }
}

impl Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

fn storage(error: impl Into<crate::BoxError>) -> LogError {
    LogError::storage_by("redb failed", error)
}

fn closed() -> LogError {
    LogError::unavailable("the embedded log is closed")
}

fn unix_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

fn create_tables(db: &Database) -> Result<(), DbError> {
    let txn = db.begin_write()?;
    txn.open_table(MESSAGES)?;
    txn.open_table(SUBJECT_LAST)?;
    txn.open_table(CONSUMERS)?;
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::conformance;

    fn subject(id: &str) -> Subject {
        Subject::new("acme", "model", id).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(&dir.path().join("log.redb")).unwrap();
        conformance::run_all(&log).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn data_and_message_ids_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let first = {
            let log = EmbeddedLog::open(&path).unwrap();
            let first = log
                .append(&subject("a"), 0, "m-1", b"one".to_vec())
                .await
                .unwrap();
            log.append(&subject("a"), first.seq, "m-2", b"two".to_vec())
                .await
                .unwrap();
            log.append(&subject("b"), 0, "m-3", b"three".to_vec())
                .await
                .unwrap();
            first
        };

        let log = EmbeddedLog::open(&path).unwrap();
        assert_eq!(
            log.last_seq().await.unwrap(),
            3,
            "the last sequence survives reopen"
        );
        assert_eq!(log.subject_last_seq(&subject("a")).await.unwrap(), 2);
        assert_eq!(log.subject_last_seq(&subject("b")).await.unwrap(), 3);
        let retry = log
            .append(&subject("a"), 0, "m-1", b"one".to_vec())
            .await
            .unwrap();
        assert_eq!(
            retry,
            Appended {
                seq: first.seq,
                duplicate: true
            },
            "msg ids survive reopen"
        );
        let stored: Vec<Stored> = log
            .tail(1)
            .await
            .unwrap()
            .take(3)
            .map(|item| item.unwrap())
            .collect()
            .await;
        let data: Vec<&[u8]> = stored.iter().map(|stored| stored.data.as_slice()).collect();
        assert_eq!(data, [b"one".as_slice(), b"two", b"three"]);
        let next = log
            .append(&subject("c"), 0, "m-4", b"four".to_vec())
            .await
            .unwrap();
        assert_eq!(
            next,
            Appended {
                seq: 4,
                duplicate: false
            },
            "sequences continue after reopen"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn opening_an_open_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let log = EmbeddedLog::open(&path).unwrap();
        let error = EmbeddedLog::open(&path)
            .err()
            .expect("a second open must fail");
        assert!(
            matches!(&error, LogError::Storage { what, .. } if what.contains("already open")),
            "unexpected error: {error}"
        );
        drop(log);
        EmbeddedLog::open(&path).expect("the file opens again once the first log is dropped");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_after_drop_report_closed() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(&dir.path().join("log.redb")).unwrap();
        let mut durable = log
            .durable(DurableConfig {
                name: "w".into(),
                filter: "reg.>".into(),
                ack_wait: Duration::from_secs(1),
                max_deliver: 3,
                batch: 1,
            })
            .await
            .unwrap();
        let mut tail = log.tail(1).await.unwrap();
        drop(log);
        // The writer thread winds down after the last handle is dropped, so the consumer
        // hears of it shortly after, not at once: wait for it with a deadline.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let closed = loop {
            match durable.next(Duration::from_millis(50)).await {
                Ok(None) if std::time::Instant::now() < deadline => continue,
                other => break other,
            }
        };
        assert!(
            matches!(closed, Err(LogError::Unavailable { .. })),
            "{closed:?}"
        );
        assert!(matches!(
            tail.next().await,
            Some(Err(LogError::Unavailable { .. }))
        ));
    }
}
