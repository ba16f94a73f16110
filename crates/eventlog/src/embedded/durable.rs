//! Durable consumers: their state in memory and in the file, deliveries, redeliveries and
//! acks.
//!
//! A consumer's position and its unacked deliveries are saved through the writer, so they
//! share commits with appends; due times live in memory only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redb::Database;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify, oneshot, watch};
use tokio::time::Instant;

use super::writer::Request;
use super::{CONSUMERS, DbError, MESSAGES, Shared, closed, storage};
use crate::{Acker, Delivery, Durable, DurableConfig, LogError, Stored, subject};

/// Messages a durable consumer examines per read transaction while looking for a match.
const SCAN_BATCH: usize = 4096;
/// How far a consumer may move past messages outside its filter before its cursor is saved
/// for that alone: a restart then scans at most this many again, and a consumer that skips
/// every new event (most of them, live) does not add a save to each one's commit.
const SAVE_SKIPPED_EVERY: u64 = 1024;

/// Opens the durable consumer `config` names, with `config`'s settings.
pub(super) async fn open(
    shared: &Arc<Shared>,
    config: DurableConfig,
) -> Result<Box<dyn Durable>, LogError> {
    let state = consumer_state(shared, &config)?;
    let wake = {
        // Like a JetStream create-or-update: the consumer keeps its position and pending
        // deliveries and takes the new settings, filter included.
        let mut state = state.lock().await;
        state.filter = config.filter;
        state.ack_wait = config.ack_wait;
        state.max_deliver = config.max_deliver;
        // Persist at once, so the consumer exists in the file even before a delivery.
        let saved = queue_save(shared, &mut state)?;
        let wake = state.wake.clone();
        drop(state);
        committed(saved).await?;
        wake
    };
    Ok(Box::new(EmbeddedDurable {
        shared: shared.clone(),
        state,
        committed: shared.committed.clone(),
        wake,
    }))
}

/// The in-process state of a durable: shared if already open, else loaded from the file,
/// else new.
fn consumer_state(
    shared: &Shared,
    config: &DurableConfig,
) -> Result<Arc<Mutex<ConsumerState>>, LogError> {
    let mut consumers = shared
        .consumers
        .lock()
        .map_err(|_| LogError::storage("durable consumer registry poisoned"))?;
    if let Some(state) = consumers.get(&config.name) {
        return Ok(state.clone());
    }
    let state = match load_consumer(&shared.db, &config.name)? {
        Some(saved) => ConsumerState::restored(config, saved),
        None => ConsumerState::new(config),
    };
    let state = Arc::new(Mutex::new(state));
    consumers.insert(config.name.clone(), state.clone());
    Ok(state)
}

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

pub(super) struct ConsumerState {
    name: String,
    filter: String,
    ack_wait: Duration,
    /// 0 means unlimited, as in JetStream.
    max_deliver: u64,
    /// The next sequence not yet examined.
    cursor: u64,
    /// The cursor of the last snapshot queued for the file.
    saved_cursor: u64,
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
            saved_cursor: 1,
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
            saved_cursor: saved.cursor,
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
        LogError::storage(format!(
            "corrupt state of durable consumer {name:?}: {error}"
        ))
    })?;
    Ok(Some(saved))
}

/// The writer's answer to a queued save: `Ok` once the commit that holds it is on disk.
type SaveAnswer = oneshot::Receiver<Result<(), LogError>>;

/// Queues a snapshot of the consumer's state for the writer, so it shares commits with
/// appends and with other saves. Callers queue while they hold the state's lock, which keeps
/// snapshots in order (each is the whole state, so a later one supersedes an earlier one),
/// and wait for the answer after letting go of it: deliveries and acks of many jobs then
/// share one commit instead of taking turns at an fsync each.
fn queue_save(shared: &Shared, state: &mut ConsumerState) -> Result<SaveAnswer, LogError> {
    let bytes = postcard::to_stdvec(&state.saved()).map_err(storage)?;
    state.saved_cursor = state.cursor;
    let (reply, answer) = oneshot::channel();
    let request = Request::SaveConsumer {
        name: state.name.clone(),
        state: bytes,
        reply,
    };
    shared.requests.send(request).map_err(|_| closed())?;
    Ok(answer)
}

/// Waits until a queued save is committed.
async fn committed(answer: SaveAnswer) -> Result<(), LogError> {
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
            // Not waited for: see `deliver_saved`.
            deliver_saved(queue_save(&self.shared, state)?);
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
                deliver_saved(queue_save(&self.shared, state)?);
                return Ok(Some(self.delivery(stored, 1)));
            }
            if scanned_all || next > *self.committed.borrow() {
                break;
            }
        }
        // A scan past messages outside the filter moves the cursor too: saved every
        // `SAVE_SKIPPED_EVERY` messages, so a restart does not read the whole log again
        // (through the page cache) to learn it has nothing to deliver.
        if changed || state.cursor - state.saved_cursor >= SAVE_SKIPPED_EVERY {
            deliver_saved(queue_save(&self.shared, state)?);
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
        let saved = queue_save(&self.shared, &mut state)?;
        drop(state);
        committed(saved).await
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

/// A delivery does not wait for its save to be committed, so a worker can take the next
/// message at once and many deliveries share one commit (a pull of one message per fsync
/// capped the embedded connection-test worker well below its concurrency). Nothing is lost
/// by not waiting: each save is the whole state, so the next committed one (an ack's, which
/// is waited for) covers it, and after a crash before any commit the message is simply
/// delivered again from the saved cursor, as at-least-once delivery allows. A failed commit
/// is logged by the writer and fails the acks that follow.
fn deliver_saved(answer: SaveAnswer) {
    drop(answer);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{DurableConfig, EmbeddedLog, EventLog, Subject, conformance};

    /// A consumer that only skipped messages keeps its place: a restart does not scan the
    /// log from the start again (the scale bench saw every restart read the whole log, and
    /// the server's memory grow by the log's page cache, with nothing to deliver).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scan_past_other_messages_is_saved() {
        const OTHERS: u64 = super::SAVE_SKIPPED_EVERY + 100;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        {
            let log = EmbeddedLog::open(&path).unwrap();
            // Concurrent, so that they share commits.
            let appends = (0..OTHERS).map(|n| {
                let subject = Subject::new("acme", "model", &format!("m{n}")).unwrap();
                let log = &log;
                async move { log.append(&subject, 0, &format!("m{n}"), vec![1]).await }
            });
            for appended in futures::future::join_all(appends).await {
                appended.unwrap();
            }
            let mut durable = log.durable(jobs_consumer()).await.unwrap();
            assert!(
                durable
                    .next(Duration::from_millis(50))
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        // The writer commits what was queued before it shuts down.
        let log = EmbeddedLog::open(&path).unwrap();
        let saved = super::load_consumer(&log.shared.db, "shared-commits")
            .unwrap()
            .expect("the consumer is in the file");
        assert_eq!(
            saved.cursor,
            OTHERS + 1,
            "the skipped messages stay skipped"
        );
        assert!(saved.pending.is_empty());
    }

    fn jobs_consumer() -> DurableConfig {
        DurableConfig {
            name: "shared-commits".into(),
            filter: "reg.acme.job.*".into(),
            ack_wait: Duration::from_secs(30),
            max_deliver: 3,
            batch: 1,
        }
    }

    /// Acks wait for their commit outside the consumer's lock, so the acks of many jobs in
    /// flight share commits instead of taking one fsync each, in turn (which held the
    /// embedded connection-test worker well below its concurrency).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deliveries_and_acks_share_commits() {
        const JOBS: u64 = 200;
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(&dir.path().join("log.redb")).unwrap();
        for n in 0..JOBS {
            let subject = Subject::new("acme", "job", &format!("j{n}")).unwrap();
            log.append(&subject, 0, &format!("m{n}"), vec![1])
                .await
                .unwrap();
        }
        let mut durable = log.durable(jobs_consumer()).await.unwrap();

        let mut deliveries = Vec::new();
        for _ in 0..JOBS {
            let delivery = durable.next(Duration::from_secs(5)).await.unwrap();
            deliveries.push(delivery.expect("a job is delivered"));
        }
        assert_eq!(
            deliveries.iter().map(|d| d.stored.seq).collect::<Vec<_>>(),
            (1..=JOBS).collect::<Vec<_>>(),
            "each job once, in order"
        );

        let before = log.commits();
        let acks: Vec<_> = deliveries
            .into_iter()
            .map(|delivery| tokio::spawn(delivery.ack()))
            .collect();
        for ack in acks {
            ack.await.unwrap().unwrap();
        }
        let acking = log.commits() - before;
        assert!(
            acking < JOBS / 4,
            "{JOBS} concurrent acks took {acking} commits"
        );

        // Every ack is in the file: a reopened consumer has nothing left to deliver.
        drop(durable);
        drop(log);
        let log = EmbeddedLog::open(&dir.path().join("log.redb")).unwrap();
        let mut durable = log.durable(jobs_consumer()).await.unwrap();
        assert!(
            durable
                .next(Duration::from_millis(200))
                .await
                .unwrap()
                .is_none(),
            "an acked job came back after a reopen"
        );
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
}
