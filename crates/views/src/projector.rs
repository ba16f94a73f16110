//! The projector: folds log messages into the views in batches, one write transaction per
//! batch with the checkpoint inside it. Rebuild is the same fold into a new file.
//!
//! Along its seams: `reader` reads, decodes and hashes the log ahead of the writer, on a
//! task of its own; `batch` holds a batch's writes in key order and commits them with the
//! checkpoint in one write transaction per file (`audit_file`'s first, on a thread of its
//! own in large batches); `rules` says how each event changes rows; `rebuild` replays
//! the whole log into fresh files. This file is the live loop that follows the log and
//! resumes after losing it.

mod audit;
mod audit_file;
mod batch;
mod reader;
mod rebuild;
mod rules;

#[cfg(test)]
mod fixtures;

/// Fixtures and a batch writer for the tests of other modules of this crate.
#[cfg(test)]
pub(crate) mod test_support {
    pub(crate) use super::fixtures::{many_models, messages};

    /// Applies `messages` in one batch and publishes the position, as the projector does.
    pub(crate) fn apply(
        views: &crate::Views,
        messages: &[eventlog::Stored],
        durability: redb::Durability,
    ) {
        let decoded = super::reader::decode_all(messages).expect("decodable");
        let last = super::batch::apply_batch(views, &[decoded], durability).expect("applied");
        if let Some(last) = last {
            views.applied.send_replace(last);
        }
    }
}

use std::sync::Arc;

use backon::{BackoffBuilder, ExponentialBuilder};
use eventlog::EventLog;
use redb::Durability;

use self::batch::apply_batch;
use self::reader::Reader;
use crate::store::{ViewError, Views};

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

/// How the projector follows the log.
#[derive(Clone, Copy, Debug)]
pub struct FollowSettings {
    /// How long the views may stay at one position while the log holds later events before
    /// the tail counts as lost and is made anew from the checkpoint. A tail's consumer lives
    /// on one NATS node: when that node dies, the client only notices after missed idle
    /// heartbeats (30 s and more) while its connection to another node stays up.
    pub stall_timeout: std::time::Duration,
}

impl Default for FollowSettings {
    /// A stall of 2 s: with the pause before resuming, the views follow again within 5 s.
    fn default() -> Self {
        Self {
            stall_timeout: std::time::Duration::from_secs(2),
        }
    }
}

/// Follows the log from the views' checkpoint on until `shutdown` resolves, with the default
/// [`FollowSettings`].
pub async fn run_projector(
    views: Arc<Views>,
    log: Arc<dyn EventLog>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ProjectError> {
    run_projector_with(views, log, FollowSettings::default(), shutdown).await
}

/// Follows the log from the views' checkpoint on until `shutdown` resolves.
///
/// Losing the log (a NATS restart ends the tail's consumer; the client gives up on it; the
/// tail stalls while the log moves on, see [`FollowSettings::stall_timeout`]) is not fatal:
/// the projector counts it ([`Views::resumes`]), logs it and resumes from its checkpoint
/// after a growing pause, and readiness is false meanwhile. On a poison event or a storage
/// error it records why (readiness turns false) and returns the error: a projector that
/// skipped an event would serve wrong answers quietly.
pub async fn run_projector_with(
    views: Arc<Views>,
    log: Arc<dyn EventLog>,
    settings: FollowSettings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ProjectError> {
    tokio::pin!(shutdown);
    let mut pauses = RESUME_PAUSES.build();
    loop {
        let started = tokio::time::Instant::now();
        let error = match follow(&views, Arc::clone(&log), settings, shutdown.as_mut()).await {
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
        views
            .resumes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
/// The longest pause between attempts to resume: short, so that a replica follows again
/// within a second of the log answering (a stream leader elected, a node back).
const RESUME_MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);
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
    settings: FollowSettings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ProjectError> {
    let from = views.checkpoint()? + 1;
    let stalled = stalled(Arc::clone(views), Arc::clone(&log), settings.stall_timeout);
    tokio::pin!(stalled);
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
            why = &mut stalled => return Err(ProjectError::Log(why)),
        };
        let messages = batch?;
        let events: usize = messages.iter().map(Vec::len).sum();
        let writing = std::time::Instant::now();
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
        views.written.record(events, writing.elapsed());
        if durable {
            last_durable = tokio::time::Instant::now();
        }
        dirty = !durable;
        if let Some(last) = last {
            views.applied.send_replace(last);
        }
    }
}

/// Resolves, with why, once the log has held events past the views for `stall` while the
/// views did not move: the tail is lost although it reported nothing. Checks every quarter
/// of `stall`; a log that does not answer (a stream leader being elected) says nothing
/// either way, and an event in flight is not taken for a stall, as the views must stay at
/// one position behind the log for the whole of `stall`.
async fn stalled(views: Arc<Views>, log: Arc<dyn EventLog>, stall: std::time::Duration) -> String {
    let every = (stall / 4).max(std::time::Duration::from_millis(10));
    let mut behind: Option<(tokio::time::Instant, u64)> = None;
    loop {
        tokio::time::sleep(every).await;
        let Ok(Ok(last)) = tokio::time::timeout(stall, log.last_seq()).await else {
            continue;
        };
        let position = views.position();
        if last <= position {
            behind = None;
            continue;
        }
        match behind {
            Some((since, at)) if at == position => {
                if since.elapsed() >= stall {
                    return format!(
                        "the tail stalled: the views stayed at {position} for {} ms while the log reached {last}",
                        since.elapsed().as_millis()
                    );
                }
            }
            _ => behind = Some((tokio::time::Instant::now(), position)),
        }
    }
}

/// How long projected rows may stay in non-durable commits.
const DURABLE_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// An empty durable commit on each file: makes every earlier commit durable too.
async fn make_durable(views: &Arc<Views>) -> Result<(), ProjectError> {
    let views = Arc::clone(views);
    tokio::task::spawn_blocking(move || views.make_durable())
        .await
        .map_err(|e| ProjectError::Task(e.to_string()))?
        .map_err(ProjectError::from)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use eventlog::{EmbeddedLog, Subject};

    use super::fixtures::messages;
    use super::*;
    use crate::ProjectorWrites;

    /// What was written between two readings, never less than nothing.
    #[test]
    fn projector_writes_since_an_earlier_reading() {
        let earlier = ProjectorWrites {
            batches: 2,
            events: 20,
            busy: Duration::from_millis(500),
        };
        let later = ProjectorWrites {
            batches: 5,
            events: 50,
            busy: Duration::from_millis(2000),
        };
        let between = ProjectorWrites {
            batches: 3,
            events: 30,
            busy: Duration::from_millis(1500),
        };
        assert_eq!(later.since(earlier), between);
        assert_eq!(earlier.since(later), ProjectorWrites::default());
    }

    #[test]
    fn resume_pauses_double_from_100_ms_to_1_s_and_stay_there() {
        let pauses: Vec<Duration> = RESUME_PAUSES.build().take(7).collect();
        let expected_ms = [100, 200, 400, 800, 1000, 1000, 1000];
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

    /// Appends the fixture messages to `log` as the registry would.
    async fn append_fixtures(log: &dyn EventLog) {
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
    }

    /// A log whose first tail says nothing, for ever, as a tail whose consumer died with its
    /// NATS node does; later tails are the real log's.
    struct SilentFirstTail {
        log: EmbeddedLog,
        tails: std::sync::atomic::AtomicU64,
    }

    #[async_trait::async_trait]
    impl EventLog for SilentFirstTail {
        async fn append(
            &self,
            subject: &Subject,
            expected_last: u64,
            msg_id: &str,
            data: Vec<u8>,
        ) -> Result<eventlog::Appended, eventlog::AppendError> {
            self.log.append(subject, expected_last, msg_id, data).await
        }
        async fn last_seq(&self) -> Result<u64, eventlog::LogError> {
            self.log.last_seq().await
        }
        async fn subject_last_seq(&self, subject: &Subject) -> Result<u64, eventlog::LogError> {
            self.log.subject_last_seq(subject).await
        }
        async fn tail(
            &self,
            from: u64,
        ) -> Result<
            futures::stream::BoxStream<'static, Result<eventlog::Stored, eventlog::LogError>>,
            eventlog::LogError,
        > {
            use futures::StreamExt;
            if self.tails.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                return Ok(futures::stream::pending().boxed());
            }
            self.log.tail(from).await
        }
        async fn durable(
            &self,
            config: eventlog::DurableConfig,
        ) -> Result<Box<dyn eventlog::Durable>, eventlog::LogError> {
            self.log.durable(config).await
        }
    }

    /// A tail that goes silent while the log moves on is taken for lost within the stall
    /// timeout, counted, and made anew from the checkpoint.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_tail_is_replaced_within_the_stall_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(SilentFirstTail {
            log: EmbeddedLog::open(&dir.path().join("log.redb")).unwrap(),
            tails: std::sync::atomic::AtomicU64::new(0),
        });
        let views = Arc::new(Views::open(&dir.path().join("views.redb")).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let settings = FollowSettings {
            stall_timeout: Duration::from_millis(200),
        };
        let projector = tokio::spawn(run_projector_with(
            Arc::clone(&views),
            log.clone(),
            settings,
            async {
                let _ = stopped.await;
            },
        ));
        append_fixtures(log.as_ref()).await;
        let started = std::time::Instant::now();
        views.wait_for(3, Duration::from_secs(10)).await.unwrap();
        let took = started.elapsed();
        // The stall timeout, a quarter of it between checks, and the first pause (100 ms).
        assert!(took < Duration::from_secs(2), "resumed after {took:?}");
        assert_eq!(views.resumes(), 1);
        assert_eq!(log.tails.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(views.interrupted(), None, "following again");
        let _ = stop.send(());
        projector.await.unwrap().unwrap();
    }

    /// A quiet log is no stall: with nothing past the views, the tail is kept. What the
    /// projector wrote meanwhile is counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quiet_log_keeps_its_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn EventLog> =
            Arc::new(EmbeddedLog::open(&dir.path().join("log.redb")).unwrap());
        append_fixtures(log.as_ref()).await;
        let views = Arc::new(Views::open(&dir.path().join("views.redb")).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let settings = FollowSettings {
            stall_timeout: Duration::from_millis(50),
        };
        let projector = tokio::spawn(run_projector_with(
            Arc::clone(&views),
            Arc::clone(&log),
            settings,
            async {
                let _ = stopped.await;
            },
        ));
        views.wait_for(3, Duration::from_secs(10)).await.unwrap();
        // Many stall timeouts of a quiet log: the watchdog checks and finds nothing ahead.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while tokio::time::Instant::now() < deadline {
            views
                .changed_after(views.position(), Duration::from_millis(100))
                .await;
        }
        assert_eq!(views.resumes(), 0);
        // Every event is counted once, in at least one batch, and writing them took time.
        let written = views.projector_writes();
        assert_eq!(written.events, 3, "{written:?}");
        assert!((1..=3).contains(&written.batches), "{written:?}");
        assert!(written.busy > Duration::ZERO, "{written:?}");
        let _ = stop.send(());
        projector.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_projector_and_a_rebuild_agree() {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn EventLog> =
            Arc::new(EmbeddedLog::open(&dir.path().join("log.redb")).unwrap());
        append_fixtures(log.as_ref()).await;
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
