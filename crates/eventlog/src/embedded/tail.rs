//! The tail: a stream that reads the file in batches and waits for the writer's next commit
//! when it has caught up.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use redb::Database;
use tokio::sync::watch;

use super::{DbError, MESSAGES, closed, storage};
use crate::{LogError, Stored};

/// Messages `tail` reads per read transaction.
const TAIL_BATCH: u64 = 2048;

/// Every message from `from` on, then each new one as the writer commits it.
pub(super) fn stream(
    db: Arc<Database>,
    committed: watch::Receiver<u64>,
    from: u64,
) -> BoxStream<'static, Result<Stored, LogError>> {
    let state = TailState {
        db,
        committed,
        next: from.max(1),
        buffer: VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(state, TailState::step).boxed()
}

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
