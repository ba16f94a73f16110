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
//! [`MAX_BATCH`]), applies them in order inside one write transaction, where later requests
//! see earlier ones, commits once (one fsync), and only then answers. An fsync'd commit
//! costs about 0.25 ms, so this is what lets concurrent appends reach tens of thousands
//! per second. Reads (`tail`, `subject_last_seq`, consumers) use redb read transactions and
//! never wait for the writer.
//!
//! The idempotency window lives in the writer's memory, rebuilt on open from the newest
//! messages (each carries its id and time). A table keyed by message id would cost a
//! random B-tree page per append and commit; appends would be about a third slower.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Display;
use std::path::Path;
use std::sync::{Arc, Mutex as StdMutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use redb::{Database, DatabaseError, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::{
    Acker, AppendError, Appended, Delivery, Durable, DurableConfig, EventLog, LogError, Stored,
    Subject, subject,
};

/// The most requests one commit takes. Bounds the latency a batch adds to its first request.
const MAX_BATCH: usize = 1024;
/// Messages `tail` reads per read transaction.
const TAIL_BATCH: u64 = 2048;
/// Messages a durable consumer examines per read transaction while looking for a match.
const SCAN_BATCH: usize = 4096;

/// seq -> (subject, msg id, recorded-at ms since the Unix epoch, data).
const MESSAGES: TableDefinition<u64, (&str, &str, u64, &[u8])> = TableDefinition::new("messages");
const SUBJECT_LAST: TableDefinition<&str, u64> = TableDefinition::new("subject_last");
const CONSUMERS: TableDefinition<&str, &[u8]> = TableDefinition::new("consumers");

/// Settings of an embedded log.
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// How long a message id is remembered for deduplication (JetStream's `duplicate_window`).
    pub duplicate_window: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            duplicate_window: Duration::from_secs(120),
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
        let db = Database::create(path).map_err(|error| match error {
            DatabaseError::DatabaseAlreadyOpen => LogError::Storage(format!(
                "the embedded log {} is already open (by this process or another one)",
                path.display()
            )),
            other => LogError::Storage(format!(
                "cannot open the embedded log {}: {other}",
                path.display()
            )),
        })?;
        create_tables(&db).map_err(storage)?;
        let last_seq = read_last_seq(&db).map_err(storage)?;
        let dedup = Dedup::load(&db, options.duplicate_window, unix_ms()).map_err(storage)?;

        let db = Arc::new(db);
        let (committed_tx, committed_rx) = watch::channel(last_seq);
        let (requests_tx, requests_rx) = mpsc::unbounded_channel();
        let writer = Writer {
            db: db.clone(),
            requests: requests_rx,
            committed: committed_tx,
            dedup,
        };
        let writer = std::thread::Builder::new()
            .name("eventlog-writer".into())
            .spawn(move || writer.run())
            .map_err(|error| {
                LogError::Storage(format!("cannot start the writer thread: {error}"))
            })?;

        Ok(Self {
            shared: Arc::new(Shared {
                db,
                requests: requests_tx,
                committed: committed_rx,
                consumers: StdMutex::new(HashMap::new()),
            }),
            writer: Some(writer),
        })
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
        let state = TailState {
            db: self.shared.db.clone(),
            committed: self.shared.committed.clone(),
            next: from.max(1),
            buffer: VecDeque::new(),
            done: false,
        };
        Ok(futures::stream::unfold(state, TailState::step).boxed())
    }

    async fn durable(&self, config: DurableConfig) -> Result<Box<dyn Durable>, LogError> {
        let state = self.consumer_state(&config)?;
        let wake = {
            // Like a JetStream create-or-update: the consumer keeps its position and pending
            // deliveries and takes the new settings, filter included.
            let mut state = state.lock().await;
            state.filter = config.filter;
            state.ack_wait = config.ack_wait;
            state.max_deliver = config.max_deliver;
            // Persist at once, so the consumer exists in the file even before a delivery.
            save_consumer(&self.shared, &state).await?;
            state.wake.clone()
        };
        Ok(Box::new(EmbeddedDurable {
            shared: self.shared.clone(),
            state,
            committed: self.shared.committed.clone(),
            wake,
        }))
    }
}

impl EmbeddedLog {
    /// The in-process state of a durable: shared if already open, else loaded from the file,
    /// else new.
    fn consumer_state(
        &self,
        config: &DurableConfig,
    ) -> Result<Arc<Mutex<ConsumerState>>, LogError> {
        let mut consumers = self
            .shared
            .consumers
            .lock()
            .map_err(|_| LogError::Storage("durable consumer registry poisoned".into()))?;
        if let Some(state) = consumers.get(&config.name) {
            return Ok(state.clone());
        }
        let state = match load_consumer(&self.shared.db, &config.name)? {
            Some(saved) => ConsumerState::restored(config, saved),
            None => ConsumerState::new(config),
        };
        let state = Arc::new(Mutex::new(state));
        consumers.insert(config.name.clone(), state.clone());
        Ok(state)
    }
}

/// A redb error, boxed because it is large; it only ever leaves this module as a string.
struct DbError(Box<redb::Error>);

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

fn storage(error: impl Display) -> LogError {
    LogError::Storage(error.to_string())
}

fn closed() -> LogError {
    LogError::Unavailable("the embedded log is closed".into())
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

fn read_last_seq(db: &Database) -> Result<u64, DbError> {
    let txn = db.begin_read()?;
    let messages = txn.open_table(MESSAGES)?;
    let last = messages.last()?.map_or(0, |(seq, _)| seq.value());
    Ok(last)
}

/// Messages with sequences in `from..=to`, in order.
fn read_range(db: &Database, from: u64, to: u64) -> Result<Vec<Stored>, DbError> {
    let txn = db.begin_read()?;
    let messages = txn.open_table(MESSAGES)?;
    let mut out = Vec::with_capacity(usize::try_from(to.saturating_sub(from) + 1).unwrap_or(0));
    for entry in messages.range(from..=to)? {
        let (seq, value) = entry?;
        let (subject, _, _, data) = value.value();
        out.push(Stored {
            seq: seq.value(),
            subject: subject.to_owned(),
            data: data.to_vec(),
        });
    }
    Ok(out)
}

fn read_one(db: &Database, seq: u64) -> Result<Option<Stored>, DbError> {
    let txn = db.begin_read()?;
    let messages = txn.open_table(MESSAGES)?;
    let stored = messages.get(seq)?.map(|value| {
        let (subject, _, _, data) = value.value();
        Stored {
            seq,
            subject: subject.to_owned(),
            data: data.to_vec(),
        }
    });
    Ok(stored)
}

// ---------------------------------------------------------------------------------------------
// The writer.

enum Request {
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
                            let _ = reply.send(Err(LogError::Storage(message.clone()).into()));
                        }
                        Request::SaveConsumer { reply, .. } => {
                            let _ = reply.send(Err(LogError::Storage(message.clone())));
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

// ---------------------------------------------------------------------------------------------
// Tail.

struct TailState {
    db: Arc<Database>,
    committed: watch::Receiver<u64>,
    next: u64,
    buffer: VecDeque<Stored>,
    done: bool,
}

impl TailState {
    /// One item of the tail stream: from the buffer, else a batch read from the file, else
    /// wait for the next commit.
    async fn step(mut self) -> Option<(Result<Stored, LogError>, Self)> {
        loop {
            if self.done {
                return None;
            }
            if let Some(stored) = self.buffer.pop_front() {
                return Some((Ok(stored), self));
            }
            let last = *self.committed.borrow_and_update();
            if self.next <= last {
                let db = self.db.clone();
                let from = self.next;
                let to = last.min(from.saturating_add(TAIL_BATCH - 1));
                let read = tokio::task::spawn_blocking(move || read_range(&db, from, to)).await;
                match read {
                    Ok(Ok(batch)) => {
                        self.next = to + 1;
                        self.buffer = batch.into();
                    }
                    Ok(Err(error)) => return Some((Err(storage(error)), self.failed())),
                    Err(error) => return Some((Err(storage(error)), self.failed())),
                }
                continue;
            }
            if self.committed.changed().await.is_err() {
                return Some((Err(closed()), self.failed()));
            }
        }
    }

    fn failed(mut self) -> Self {
        self.done = true;
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Durable consumers.

/// What the file keeps of a durable consumer.
///
/// Every sequence below `cursor` that is not in `pending` is done (acked, filtered out or
/// given up), so the state stays small however long the log grows.
#[derive(Serialize, Deserialize)]
struct SavedConsumer {
    /// For inspection only: on open, the caller's config decides the filter.
    filter: String,
    cursor: u64,
    /// (sequence, deliveries so far) of delivered, unacked messages.
    pending: Vec<(u64, u64)>,
}

struct ConsumerState {
    name: String,
    filter: String,
    ack_wait: Duration,
    /// 0 means unlimited, as in JetStream.
    max_deliver: u64,
    /// The next sequence not yet examined.
    cursor: u64,
    pending: BTreeMap<u64, Pending>,
    /// Wakes a waiting `next` when a nak makes a message due sooner than it planned for.
    wake: Arc<Notify>,
}

struct Pending {
    deliveries: u64,
    /// When the delivery times out and the message becomes due again.
    due: Instant,
}

impl ConsumerState {
    fn new(config: &DurableConfig) -> Self {
        Self {
            name: config.name.clone(),
            filter: config.filter.clone(),
            ack_wait: config.ack_wait,
            max_deliver: config.max_deliver,
            cursor: 1,
            pending: BTreeMap::new(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// State loaded from the file. Deliveries of a previous process have no holder any more,
    /// so they are due at once.
    fn restored(config: &DurableConfig, saved: SavedConsumer) -> Self {
        let now = Instant::now();
        let pending = saved
            .pending
            .into_iter()
            .map(|(seq, deliveries)| {
                (
                    seq,
                    Pending {
                        deliveries,
                        due: now,
                    },
                )
            })
            .collect();
        Self {
            cursor: saved.cursor,
            pending,
            ..Self::new(config)
        }
    }

    fn saved(&self) -> SavedConsumer {
        SavedConsumer {
            filter: self.filter.clone(),
            cursor: self.cursor,
            pending: self
                .pending
                .iter()
                .map(|(seq, p)| (*seq, p.deliveries))
                .collect(),
        }
    }

    fn exhausted(&self, pending: &Pending) -> bool {
        self.max_deliver != 0 && pending.deliveries >= self.max_deliver
    }

    /// Makes the delivery `attempt` of `seq` due at `due`, if it is still the one out: a
    /// late answer about an earlier attempt, or about an acked message, changes nothing.
    fn reschedule(&mut self, seq: u64, attempt: u64, due: Instant) {
        if let Some(pending) = self.pending.get_mut(&seq)
            && pending.deliveries == attempt
        {
            pending.due = due;
        }
    }
}

fn load_consumer(db: &Database, name: &str) -> Result<Option<SavedConsumer>, LogError> {
    let read = || -> Result<Option<Vec<u8>>, DbError> {
        let txn = db.begin_read()?;
        let table = txn.open_table(CONSUMERS)?;
        Ok(table.get(name)?.map(|bytes| bytes.value().to_vec()))
    };
    let Some(bytes) = read().map_err(storage)? else {
        return Ok(None);
    };
    let saved = postcard::from_bytes(&bytes).map_err(|error| {
        LogError::Storage(format!(
            "corrupt state of durable consumer {name:?}: {error}"
        ))
    })?;
    Ok(Some(saved))
}

/// Write the consumer's state through the writer, so it shares commits with appends.
/// Callers hold the state's lock, which keeps snapshots in order.
async fn save_consumer(shared: &Shared, state: &ConsumerState) -> Result<(), LogError> {
    let bytes = postcard::to_stdvec(&state.saved()).map_err(storage)?;
    let (reply, answer) = oneshot::channel();
    let request = Request::SaveConsumer {
        name: state.name.clone(),
        state: bytes,
        reply,
    };
    shared.requests.send(request).map_err(|_| closed())?;
    answer.await.map_err(|_| closed())?
}

/// The first message matching `filter` from `from` on, looking at no more than
/// [`SCAN_BATCH`] messages; also returns the next sequence still to examine.
fn scan(db: &Database, from: u64, filter: &str) -> Result<(Option<Stored>, u64), DbError> {
    let txn = db.begin_read()?;
    let messages = txn.open_table(MESSAGES)?;
    let mut next = from;
    for entry in messages.range(from..)?.take(SCAN_BATCH) {
        let (seq, value) = entry?;
        let seq = seq.value();
        next = seq + 1;
        let (subject, _, _, data) = value.value();
        if subject::matches(filter, subject) {
            let stored = Stored {
                seq,
                subject: subject.to_owned(),
                data: data.to_vec(),
            };
            return Ok((Some(stored), next));
        }
    }
    Ok((None, next))
}

struct EmbeddedDurable {
    shared: Arc<Shared>,
    state: Arc<Mutex<ConsumerState>>,
    committed: watch::Receiver<u64>,
    wake: Arc<Notify>,
}

#[async_trait]
impl Durable for EmbeddedDurable {
    async fn next(&mut self, wait: Duration) -> Result<Option<Delivery>, LogError> {
        let deadline = Instant::now() + wait;
        loop {
            // Mark the current position seen before looking, so a commit that lands after
            // the look wakes the wait below.
            self.committed.borrow_and_update();
            let next_due = {
                let mut state = self.state.lock().await;
                if let Some(delivery) = self.try_deliver(&mut state).await? {
                    return Ok(Some(delivery));
                }
                state.pending.values().map(|pending| pending.due).min()
            };
            if Instant::now() >= deadline {
                return Ok(None);
            }
            let wake = next_due.map_or(deadline, |due| due.min(deadline));
            tokio::select! {
                changed = self.committed.changed() => {
                    if changed.is_err() {
                        return Err(closed());
                    }
                }
                () = tokio::time::sleep_until(wake) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

impl EmbeddedDurable {
    /// A redelivery that is due, else the next new matching message, else `None`.
    async fn try_deliver(&self, state: &mut ConsumerState) -> Result<Option<Delivery>, LogError> {
        let now = Instant::now();
        let mut changed = false;

        // Redeliveries first, lowest sequence first; give up on those out of attempts.
        let due: Vec<u64> = state
            .pending
            .iter()
            .filter(|(_, pending)| pending.due <= now)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in due {
            let exhausted = state.pending.get(&seq).is_some_and(|p| state.exhausted(p));
            if exhausted {
                tracing::warn!(
                    consumer = %state.name,
                    seq,
                    "giving up on a message after max_deliver deliveries"
                );
                state.pending.remove(&seq);
                changed = true;
                continue;
            }
            let Some(stored) = read_one(&self.shared.db, seq).map_err(storage)? else {
                // Cannot happen while nothing deletes messages; do not wedge on it.
                state.pending.remove(&seq);
                changed = true;
                continue;
            };
            let ack_wait = state.ack_wait;
            let attempt = match state.pending.get_mut(&seq) {
                Some(pending) => {
                    pending.deliveries += 1;
                    pending.due = now + ack_wait;
                    pending.deliveries
                }
                None => continue,
            };
            save_consumer(&self.shared, state).await?;
            return Ok(Some(self.delivery(stored, attempt)));
        }

        // Then new messages from the cursor on.
        loop {
            let db = self.shared.db.clone();
            let (from, filter) = (state.cursor, state.filter.clone());
            let (found, next) = tokio::task::spawn_blocking(move || scan(&db, from, &filter))
                .await
                .map_err(storage)?
                .map_err(storage)?;
            let scanned_all = next == from;
            state.cursor = next;
            if let Some(stored) = found {
                state.pending.insert(
                    stored.seq,
                    Pending {
                        deliveries: 1,
                        due: now + state.ack_wait,
                    },
                );
                save_consumer(&self.shared, state).await?;
                return Ok(Some(self.delivery(stored, 1)));
            }
            if scanned_all || next > *self.committed.borrow() {
                break;
            }
        }
        if changed {
            save_consumer(&self.shared, state).await?;
        }
        Ok(None)
    }

    fn delivery(&self, stored: Stored, attempt: u64) -> Delivery {
        let acker = EmbeddedAcker {
            shared: self.shared.clone(),
            state: self.state.clone(),
            wake: self.wake.clone(),
            seq: stored.seq,
            attempt,
        };
        Delivery::new(stored, attempt, Box::new(acker))
    }
}

struct EmbeddedAcker {
    shared: Arc<Shared>,
    state: Arc<Mutex<ConsumerState>>,
    wake: Arc<Notify>,
    seq: u64,
    attempt: u64,
}

#[async_trait]
impl Acker for EmbeddedAcker {
    /// Returns once the ack is committed to the file.
    async fn ack(self: Box<Self>) -> Result<(), LogError> {
        let mut state = self.state.lock().await;
        // Already acked or given up: nothing left to do, as with a late JetStream ack.
        if state.pending.remove(&self.seq).is_none() {
            return Ok(());
        }
        save_consumer(&self.shared, &state).await
    }

    /// The same as `ack`: a local commit is cheap, and losing an ack would be the only
    /// saving.
    async fn ack_unconfirmed(self: Box<Self>) -> Result<(), LogError> {
        self.ack().await
    }

    /// Due times live in memory only (a reopened log makes every pending message due at
    /// once), so a nak writes nothing.
    async fn nak(self: Box<Self>, delay: Duration) -> Result<(), LogError> {
        let mut state = self.state.lock().await;
        state.reschedule(self.seq, self.attempt, Instant::now() + delay);
        drop(state);
        self.wake.notify_one();
        Ok(())
    }

    async fn in_progress(&self) -> Result<(), LogError> {
        let mut state = self.state.lock().await;
        let due = Instant::now() + state.ack_wait;
        state.reschedule(self.seq, self.attempt, due);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
    async fn durable_state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        conformance::durable_survives_reopen(|_| {
            let path = path.clone();
            async move { EmbeddedLog::open(&path).unwrap() }
        })
        .await;
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
            matches!(&error, LogError::Storage(message) if message.contains("already open")),
            "unexpected error: {error}"
        );
        drop(log);
        EmbeddedLog::open(&path).expect("the file opens again once the first log is dropped");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn message_ids_expire_after_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            duplicate_window: Duration::from_millis(50),
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
        assert!(matches!(
            durable.next(Duration::from_millis(10)).await,
            Err(LogError::Unavailable(_))
        ));
        assert!(matches!(
            tail.next().await,
            Some(Err(LogError::Unavailable(_)))
        ));
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
