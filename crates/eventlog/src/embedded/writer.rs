//! The writer thread: it group-commits appends and consumer saves, and keeps the idempotency
//! window.
//!
//! Every write goes through this one thread: it takes all pending requests (up to
//! [`MAX_BATCH`]), applies them in order inside one write transaction, where later requests
//! see earlier ones, commits once (one fsync), and only then answers. The idempotency window
//! lives in its memory, rebuilt on open from the newest messages (each carries its id and
//! time).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, ReadableTable};
use tokio::sync::{mpsc, oneshot, watch};

use super::{CONSUMERS, DbError, MESSAGES, SUBJECT_LAST, storage, unix_ms};
use crate::{AppendError, Appended, LogError};

/// The most requests one commit takes. Bounds the latency a batch adds to its first request.
const MAX_BATCH: usize = 1024;

/// A running writer thread, where its requests go, and the last committed sequence, which
/// it publishes after each commit.
pub(super) struct Started {
    pub(super) thread: JoinHandle<()>,
    pub(super) requests: mpsc::UnboundedSender<Request>,
    pub(super) committed: watch::Receiver<u64>,
    /// Write transactions committed so far.
    pub(super) commits: Arc<AtomicU64>,
}

/// Starts the writer thread on `db`, whose tables exist.
pub(super) fn start(db: Arc<Database>, duplicate_window: Duration) -> Result<Started, LogError> {
    let last_seq = read_last_seq(&db).map_err(storage)?;
    let dedup = Dedup::load(&db, duplicate_window, unix_ms()).map_err(storage)?;
    let (committed_tx, committed_rx) = watch::channel(last_seq);
    let (requests_tx, requests_rx) = mpsc::unbounded_channel();
    let commits = Arc::new(AtomicU64::new(0));
    let writer = Writer {
        db,
        requests: requests_rx,
        committed: committed_tx,
        commits: Arc::clone(&commits),
        dedup,
    };
    let thread = std::thread::Builder::new()
        .name("eventlog-writer".into())
        .spawn(move || writer.run())
        .map_err(|error| LogError::storage(format!("cannot start the writer thread: {error}")))?;
    Ok(Started {
        thread,
        requests: requests_tx,
        committed: committed_rx,
        commits,
    })
}

pub(super) enum Request {
    Append {
        subject: String,
        expected_last: u64,
        msg_id: String,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<Appended, AppendError>>,
    },
    SaveConsumer {
        name: String,
        state: Vec<u8>,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    Shutdown,
}

/// What one request of a batch came to, before the commit decides whether it stands.
enum Outcome {
    Append(Result<Appended, AppendError>),
    Saved,
    Nothing,
}

struct Writer {
    db: Arc<Database>,
    requests: mpsc::UnboundedReceiver<Request>,
    committed: watch::Sender<u64>,
    commits: Arc<AtomicU64>,
    dedup: Dedup,
}

impl Writer {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        // Ends on Shutdown, or when every sender is gone.
        while let Some(first) = self.requests.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match self.requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            let shutdown = batch
                .iter()
                .any(|request| matches!(request, Request::Shutdown));
            self.commit(&mut batch);
            if shutdown {
                return;
            }
        }
    }

    /// Apply `batch` in one transaction, then answer every request in it.
    fn commit(&mut self, batch: &mut Vec<Request>) {
        let now_ms = unix_ms();
        self.dedup.expire(now_ms);
        match self.apply(batch, now_ms) {
            Ok((outcomes, last_seq)) => {
                self.dedup.keep_batch();
                self.commits.fetch_add(1, Ordering::Relaxed);
                // Publish the position before answering, so a caller that got its sequence
                // back always finds it in `last_seq` and `tail`.
                self.committed.send_if_modified(|committed| {
                    let changed = *committed != last_seq;
                    *committed = last_seq;
                    changed
                });
                for (request, outcome) in batch.drain(..).zip(outcomes) {
                    match (request, outcome) {
                        (Request::Append { reply, .. }, Outcome::Append(result)) => {
                            let _ = reply.send(result);
                        }
                        (Request::SaveConsumer { reply, .. }, Outcome::Saved) => {
                            let _ = reply.send(Ok(()));
                        }
                        _ => {}
                    }
                }
            }
            Err(error) => {
                self.dedup.forget_batch();
                let message = format!("embedded log write failed: {error}");
                tracing::error!("{message}");
                for request in batch.drain(..) {
                    match request {
                        Request::Append { reply, .. } => {
                            let _ = reply.send(Err(LogError::storage(message.clone()).into()));
                        }
                        Request::SaveConsumer { reply, .. } => {
                            let _ = reply.send(Err(LogError::storage(message.clone())));
                        }
                        Request::Shutdown => {}
                    }
                }
            }
        }
    }

    /// Validate and write every request of `batch` in one write transaction; returns one
    /// outcome per request and the last sequence after the commit. Any storage error aborts
    /// the whole batch (and the caller forgets the batch's message ids).
    fn apply(&mut self, batch: &[Request], now_ms: u64) -> Result<(Vec<Outcome>, u64), DbError> {
        let txn = self.db.begin_write()?;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut dirty = false;
        let last_seq;
        {
            let mut messages = txn.open_table(MESSAGES)?;
            let mut subject_last = txn.open_table(SUBJECT_LAST)?;
            let mut consumers = txn.open_table(CONSUMERS)?;
            let mut last = messages.last()?.map_or(0, |(seq, _)| seq.value());

            for request in batch {
                let outcome = match request {
                    Request::Append {
                        subject,
                        expected_last,
                        msg_id,
                        data,
                        ..
                    } => {
                        // Deduplication comes before the expected-sequence check, as in
                        // nats-server: a retry whose first attempt landed must see success,
                        // even though its expected sequence is stale by now.
                        if let Some(seq) = self.dedup.lookup(msg_id, now_ms) {
                            outcomes.push(Outcome::Append(Ok(Appended {
                                seq,
                                duplicate: true,
                            })));
                            continue;
                        }
                        let subject_seq = subject_last
                            .get(subject.as_str())?
                            .map_or(0, |seq| seq.value());
                        if subject_seq != *expected_last {
                            let conflict = AppendError::Conflict {
                                expected: *expected_last,
                            };
                            outcomes.push(Outcome::Append(Err(conflict)));
                            continue;
                        }
                        last += 1;
                        let value = (subject.as_str(), msg_id.as_str(), now_ms, data.as_slice());
                        messages.insert(last, value)?;
                        subject_last.insert(subject.as_str(), last)?;
                        self.dedup.record(msg_id, last, now_ms);
                        dirty = true;
                        Outcome::Append(Ok(Appended {
                            seq: last,
                            duplicate: false,
                        }))
                    }
                    Request::SaveConsumer { name, state, .. } => {
                        consumers.insert(name.as_str(), state.as_slice())?;
                        dirty = true;
                        Outcome::Saved
                    }
                    Request::Shutdown => Outcome::Nothing,
                };
                outcomes.push(outcome);
            }
            last_seq = last;
        }
        if dirty {
            txn.commit()?;
        } else {
            // Only conflicts and duplicates: nothing to make durable, so skip the fsync.
            txn.abort()?;
        }
        Ok((outcomes, last_seq))
    }
}

/// The idempotency window: message ids of the last `window`, oldest first.
///
/// Ids recorded while a batch is being applied stay provisional until the commit succeeds,
/// so a failed commit cannot leave behind an id whose message was never written.
struct Dedup {
    window_ms: u64,
    /// id -> (seq, recorded-at ms)
    by_id: HashMap<String, (u64, u64)>,
    /// (recorded-at ms, seq, id), oldest first.
    order: VecDeque<(u64, u64, String)>,
    /// Entries at the back of `order` that belong to the batch being applied.
    provisional: usize,
}

impl Dedup {
    /// Rebuild the window from the newest messages of the file.
    fn load(db: &Database, window: Duration, now_ms: u64) -> Result<Self, DbError> {
        let mut dedup = Self {
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            by_id: HashMap::new(),
            order: VecDeque::new(),
            provisional: 0,
        };
        let txn = db.begin_read()?;
        let messages = txn.open_table(MESSAGES)?;
        // Newest first, so the newest message wins for an id that was reused.
        for entry in messages.iter()?.rev() {
            let (seq, value) = entry?;
            let (_, msg_id, at_ms, _) = value.value();
            if now_ms.saturating_sub(at_ms) >= dedup.window_ms {
                break;
            }
            if msg_id.is_empty() {
                continue;
            }
            dedup
                .order
                .push_front((at_ms, seq.value(), msg_id.to_owned()));
            dedup
                .by_id
                .entry(msg_id.to_owned())
                .or_insert((seq.value(), at_ms));
        }
        Ok(dedup)
    }

    /// The sequence of the message that carried `msg_id` within the window.
    fn lookup(&self, msg_id: &str, now_ms: u64) -> Option<u64> {
        if msg_id.is_empty() {
            return None;
        }
        let (seq, at_ms) = self.by_id.get(msg_id)?;
        (now_ms.saturating_sub(*at_ms) < self.window_ms).then_some(*seq)
    }

    fn record(&mut self, msg_id: &str, seq: u64, at_ms: u64) {
        if msg_id.is_empty() {
            return;
        }
        self.by_id.insert(msg_id.to_owned(), (seq, at_ms));
        self.order.push_back((at_ms, seq, msg_id.to_owned()));
        self.provisional += 1;
    }

    fn keep_batch(&mut self) {
        self.provisional = 0;
    }

    fn forget_batch(&mut self) {
        for _ in 0..self.provisional {
            if let Some((_, seq, msg_id)) = self.order.pop_back() {
                self.forget(&msg_id, seq);
            }
        }
        self.provisional = 0;
    }

    /// Drop the ids that left the window.
    fn expire(&mut self, now_ms: u64) {
        while let Some((at_ms, _, _)) = self.order.front() {
            if now_ms.saturating_sub(*at_ms) < self.window_ms {
                break;
            }
            if let Some((_, seq, msg_id)) = self.order.pop_front() {
                self.forget(&msg_id, seq);
            }
        }
    }

    /// Remove `msg_id` unless it has since been recorded again for a newer message.
    fn forget(&mut self, msg_id: &str, seq: u64) {
        if self
            .by_id
            .get(msg_id)
            .is_some_and(|(current, _)| *current == seq)
        {
            self.by_id.remove(msg_id);
        }
    }
}

fn read_last_seq(db: &Database) -> Result<u64, DbError> {
    let txn = db.begin_read()?;
    let messages = txn.open_table(MESSAGES)?;
    let last = messages.last()?.map_or(0, |(seq, _)| seq.value());
    Ok(last)
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use crate::{EmbeddedLog, EmbeddedOptions, EventLog, Subject};

    use super::*;

    fn subject(id: &str) -> Subject {
        Subject::new("acme", "model", id).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn message_ids_expire_after_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            duplicate_window: Duration::from_millis(50),
            ..EmbeddedOptions::default()
        };
        let log = EmbeddedLog::open_with(&dir.path().join("log.redb"), options).unwrap();
        let first = log.append(&subject("a"), 0, "same", vec![1]).await.unwrap();
        // Poll with a deadline: the id stays a duplicate until the window has passed.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let again = log
                .append(&subject("a"), first.seq, "same", vec![2])
                .await
                .unwrap();
            if !again.duplicate {
                assert_eq!(again.seq, first.seq + 1);
                break;
            }
            assert_eq!(again.seq, first.seq);
            assert!(
                std::time::Instant::now() < deadline,
                "the message id never expired"
            );
            tokio::task::yield_now().await;
        }
    }

    /// Group commit at work: many concurrent appends share few fsyncs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_and_replay_throughput() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EmbeddedLog::open(&dir.path().join("log.redb")).unwrap());
        let (tasks, per_task) = (64u64, 300u64);
        let started = std::time::Instant::now();
        let mut handles = Vec::new();
        for task in 0..tasks {
            let log = log.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..per_task {
                    let subject = Subject::new("perf", "t", &format!("{task}-{i}")).unwrap();
                    log.append(&subject, 0, &format!("{task}-{i}"), vec![0; 200])
                        .await
                        .unwrap();
                }
            }));
        }
        for handle in handles {
            handle.await.unwrap();
        }
        let total = tasks * per_task;
        let elapsed = started.elapsed();
        println!(
            "{total} appends from {tasks} tasks: {elapsed:?} ({:.0}/s)",
            total as f64 / elapsed.as_secs_f64()
        );
        assert_eq!(log.last_seq().await.unwrap(), total);

        let started = std::time::Instant::now();
        let mut tail = log.tail(1).await.unwrap();
        let mut expected = 1;
        while expected <= total {
            let stored = tail.next().await.unwrap().unwrap();
            assert_eq!(stored.seq, expected);
            expected += 1;
        }
        let elapsed = started.elapsed();
        println!(
            "replayed {total} through tail: {elapsed:?} ({:.0}/s)",
            total as f64 / elapsed.as_secs_f64()
        );
    }
}
