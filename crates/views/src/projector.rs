//! The projector: folds log messages into the views in batches, one write transaction per
//! batch with the checkpoint inside it. Rebuild is the same fold into a new file.
//!
//! Along its seams: `reader` reads, decodes and hashes the log ahead of the writer, on a
//! task of its own; `batch` holds a batch's writes in key order and commits them with the
//! checkpoint in one write transaction; `rules` says how each event changes rows; `rebuild`
//! replays the whole log into a fresh file. This file is the live loop that follows the log
//! and resumes after losing it.

mod audit;
mod batch;
mod reader;
mod rebuild;
mod rules;

#[cfg(test)]
mod fixtures;

/// Fixtures and a batch writer for the tests of other modules of this crate.
#[cfg(test)]
pub(crate) mod test_support {
    pub(crate) use super::fixtures::messages;

    /// Applies `messages` in one batch.
    pub(crate) fn apply(
        views: &crate::Views,
        messages: &[eventlog::Stored],
        durability: redb::Durability,
    ) {
        let decoded = super::reader::decode_all(messages).expect("decodable");
        super::batch::apply_batch(views, &[decoded], durability).expect("applied");
    }
}

use std::sync::Arc;

use backon::{BackoffBuilder, ExponentialBuilder};
use eventlog::EventLog;
use redb::Durability;

use self::batch::apply_batch;
use self::reader::Reader;
use crate::store::{ViewError, Views, storage};

pub use self::rebuild::{rebuild, rebuild_until, replay};
pub use self::rules::TOKEN_ISSUED;

/// Largest batch folded into one write transaction.
const BATCH: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("event log: {0}")]
    Log(String),
    #[error("event at position {seq} cannot be projected: {why}")]
    Poison { seq: u64, why: String },
    /// A write task failed (it panicked): a defect, not the log's trouble, so the projector
    /// stops rather than retry the same batch for ever.
    #[error("a views write task failed: {0}")]
    Task(String),
}

/// Follows the log from the views' checkpoint on until `shutdown` resolves.
///
/// Losing the log (a NATS restart ends the tail's consumer; the client gives up on it) is
/// not fatal: the projector resumes from its checkpoint after a growing pause, and readiness
/// is false meanwhile. On a poison event or a storage error it records why (readiness turns
/// false) and returns the error: a projector that skipped an event would serve wrong answers
/// quietly.
pub async fn run_projector(
    views: Arc<Views>,
    log: Arc<dyn EventLog>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ProjectError> {
    tokio::pin!(shutdown);
    let mut pauses = RESUME_PAUSES.build();
    loop {
        let started = tokio::time::Instant::now();
        let error = match follow(&views, Arc::clone(&log), shutdown.as_mut()).await {
            Ok(()) => return Ok(()),
            Err(error @ ProjectError::Log(_)) => error,
            Err(error) => {
                tracing::error!(%error, "projector stopped");
                views.failure.send_replace(Some(error.to_string()));
                return Err(error);
            }
        };
        if started.elapsed() > RESUME_MAX_PAUSE * 4 {
            // It had been following for a while: a fresh loss, not the same one again.
            pauses = RESUME_PAUSES.build();
        }
        // The schedule never runs out; the fallback only spares an unwrap.
        let pause = pauses.next().unwrap_or(RESUME_MAX_PAUSE);
        tracing::warn!(%error, pause_ms = pause.as_millis() as u64, "projector lost the log; resuming from its checkpoint");
        views.interrupted.send_replace(Some(error.to_string()));
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// The pause before the first attempt to resume following the log.
const RESUME_FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);
/// The longest pause between attempts to resume.
const RESUME_MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);
/// The pauses between attempts to resume: the first, doubled per attempt up to the longest,
/// for as long as it takes. No jitter: one projector per process follows the log, so there
/// is no crowd of clients to spread out.
const RESUME_PAUSES: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(RESUME_FIRST_PAUSE)
    .with_factor(2.0)
    .with_max_delay(RESUME_MAX_PAUSE)
    .without_max_times();

async fn follow(
    views: &Arc<Views>,
    log: Arc<dyn EventLog>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ProjectError> {
    let from = views.checkpoint()? + 1;
    let stream = log
        .tail(from)
        .await
        .map_err(|e| ProjectError::Log(e.to_string()))?;
    // Following again (after an interruption, the log answered).
    views
        .interrupted
        .send_if_modified(|why| why.take().is_some());
    let mut reader = Reader::spawn(stream, None);
    tokio::pin!(shutdown);
    // Views are rebuilt from the log, so a batch need not be fsynced the moment it lands:
    // commits are made durable at most every DURABLE_EVERY (and at shutdown). A crash loses
    // only non-durable commits, whose events are applied again from the durable checkpoint.
    let mut last_durable = tokio::time::Instant::now();
    let mut dirty = false;
    loop {
        let flush_at = last_durable + DURABLE_EVERY;
        let batch = tokio::select! {
            _ = &mut shutdown => {
                // `shutdown` has resolved: whatever happens now, this returns Ok, so the
                // caller never polls it again.
                if dirty && let Err(error) = make_durable(views).await {
                    tracing::error!(%error, "views not made durable at shutdown; the next start re-applies the tail");
                }
                return Ok(());
            }
            _ = tokio::time::sleep_until(flush_at), if dirty => {
                make_durable(views).await?;
                last_durable = tokio::time::Instant::now();
                dirty = false;
                continue;
            }
            batch = reader.next_batch(BATCH) => batch,
        };
        let messages = batch?;
        let durable = last_durable.elapsed() >= DURABLE_EVERY;
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        let views_for_write = Arc::clone(views);
        let last = tokio::task::spawn_blocking(move || {
            apply_batch(&views_for_write, &messages, durability)
        })
        .await
        .map_err(|e| ProjectError::Task(e.to_string()))??;
        if durable {
            last_durable = tokio::time::Instant::now();
        }
        dirty = !durable;
        if let Some(last) = last {
            views.applied.send_replace(last);
        }
    }
}

/// How long projected rows may stay in non-durable commits.
const DURABLE_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// An empty durable commit: makes every earlier commit durable too.
async fn make_durable(views: &Arc<Views>) -> Result<(), ProjectError> {
    let views = Arc::clone(views);
    tokio::task::spawn_blocking(move || {
        let mut txn = views.db.begin_write().map_err(storage)?;
        txn.set_durability(Durability::Immediate);
        txn.commit().map_err(storage)?;
        Ok::<(), ProjectError>(())
    })
    .await
    .map_err(|e| ProjectError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use eventlog::{EmbeddedLog, Subject};

    use super::fixtures::messages;
    use super::*;

    #[test]
    fn resume_pauses_double_from_100_ms_to_5_s_and_stay_there() {
        let pauses: Vec<Duration> = RESUME_PAUSES.build().take(9).collect();
        let expected_ms = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000];
        assert_eq!(
            pauses.len(),
            expected_ms.len(),
            "the schedule never runs out"
        );
        for (pause, ms) in pauses.iter().zip(expected_ms) {
            // backon scales in f32: a pause may be off by nanoseconds, never more.
            let off = pause.abs_diff(Duration::from_millis(ms));
            assert!(off < Duration::from_micros(1), "{pause:?} is not {ms} ms");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_projector_and_a_rebuild_agree() {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn EventLog> =
            Arc::new(EmbeddedLog::open(&dir.path().join("log.redb")).unwrap());
        let mut last_on = std::collections::HashMap::new();
        for message in messages() {
            let mut parts = message.subject.split('.').skip(1);
            let (org, kind, id) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            let subject = Subject::new(org, kind, id).unwrap();
            let expected = last_on.get(&message.subject).copied().unwrap_or(0);
            let appended = log
                .append(
                    &subject,
                    expected,
                    &format!("m{}", message.seq),
                    message.data,
                )
                .await
                .unwrap();
            last_on.insert(message.subject, appended.seq);
        }
        let views = Arc::new(Views::open(&dir.path().join("views.redb")).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let projector = tokio::spawn(run_projector(Arc::clone(&views), Arc::clone(&log), async {
            let _ = stopped.await;
        }));
        views.wait_for(3, Duration::from_secs(10)).await.unwrap();
        let live = views.checksum().unwrap();
        let rebuilt = rebuild(log, &dir.path().join("rebuilt.redb"), |_, _| {})
            .await
            .unwrap();
        assert_eq!(live, rebuilt);
        let _ = stop.send(());
        projector.await.unwrap().unwrap();
    }
}
