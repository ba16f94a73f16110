//! Workers: separate processes (or tasks inside `serve` on the embedded log) that consume
//! the log through durable consumers with explicit acks, do work outside the request path,
//! and record what they did as events.
//!
//! Architecture invariant: workers never bypass the log. Every result is an event whose
//! message id is derived from the job, so a redelivered job never records twice.

pub mod catalog_sync;
pub mod connection_tests;
pub mod dependents;
mod notify;
pub mod pipelines;
mod requests;
pub mod usage_reports;

pub use notify::{NatsNotifier, Notifier, NotifyError, QuietNotifier};

use std::future::Future;
use std::time::Duration;

use app::{AppError, BoxError, Registry};
use domain::Event;
use eventlog::{Delivery, Durable, DurableConfig, Envelope};

/// Why a worker stopped, or why one job failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("the event log failed")]
    Log(#[from] eventlog::LogError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error("the views will not catch up")]
    ViewsStopped(#[source] BoxError),
    #[error(
        "message {seq} was written by a newer release ({why}); this worker stops there, unacked, until it is upgraded"
    )]
    NewerRelease { seq: u64, why: String },
    #[error("invalid setting {setting}: {why}")]
    Settings { setting: String, why: String },
    #[error("cannot subscribe to {subject}")]
    Subscribe {
        subject: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("the NATS subscription ended")]
    SubscriptionEnded,
    #[error("the catalog sync could not read OpenRouter's models")]
    Catalog(#[source] providers::openrouter_models::ModelsError),
}

/// The problem of a NATS request's payload that is not the JSON expected, as HTTP words it:
/// never serde's own words, which quote the value they found.
pub(crate) fn body_problem(error: &serde_json::Error) -> api::Problem {
    let mistake = app::JsonMistake::of(error);
    let detail = mistake
        .detail
        .map_or_else(|| "not valid JSON".to_owned(), |d| format!("body: {d}"));
    api::Problem::new(400, mistake.code, &detail)
}

/// An error and its sources, for a log line.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How a worker retries a failed job: the job is given back to the log and delivered again
/// after a backoff that doubles with each attempt, up to `max_deliver` attempts in all.
#[derive(Clone, Debug)]
pub struct Retry {
    /// Attempts at one message at most, each a delivery; the last one is the worker's to
    /// settle. The consumer stops there too, except the connection-test worker's, which
    /// delivers a few more to settle a test whose last attempt died.
    pub max_deliver: u64,
    /// The wait before the second delivery.
    pub backoff: Duration,
    /// The longest wait between two deliveries.
    pub max_backoff: Duration,
}

impl Retry {
    /// The wait before delivering again a job that failed on `attempt`: `backoff`, doubling
    /// per attempt, at most `max_backoff` (backon's exponential schedule, no jitter: the log
    /// spreads redeliveries itself). Whole milliseconds, as the log takes them.
    pub fn delay(&self, attempt: u64) -> Duration {
        use backon::BackoffBuilder;
        // Past 64 doublings every schedule has long reached its cap.
        let steps = usize::try_from(attempt.saturating_sub(1).min(64)).unwrap_or(64);
        let delay = backon::ExponentialBuilder::new()
            .with_min_delay(self.backoff)
            .with_factor(2.0)
            .with_max_delay(self.max_backoff)
            .without_max_times()
            .build()
            .nth(steps)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        // backon scales in f32: round its nanosecond noise away.
        Duration::from_millis(u64::try_from(delay.as_micros().div_ceil(1000)).unwrap_or(u64::MAX))
    }

    /// True when `attempt` is the last the worker makes.
    pub fn is_last(&self, attempt: u64) -> bool {
        self.max_deliver != 0 && attempt >= self.max_deliver
    }

    /// True when `attempt` comes after the last: that one ended without settling the job
    /// (its worker died), and a consumer that delivers past it lets this one settle it.
    pub fn is_spent(&self, attempt: u64) -> bool {
        self.max_deliver != 0 && attempt > self.max_deliver
    }
}

/// How a job that did not fail ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Done {
    /// It recorded something: ack and wait for the log to confirm, so the work is not
    /// repeated for a lost ack.
    Recorded,
    /// Nothing to do for this message: a plain ack, since a redelivery would be skipped too.
    Skipped,
}

/// Whether a worker may take its next job: not once its views stopped for good (on a poison
/// event), since every job would fail, use up its deliveries and be given up. It stops
/// instead, as the projector did, so that it is seen and its jobs wait in the log.
pub(crate) fn views_running(registry: &Registry) -> Result<(), WorkerError> {
    match registry.views().failure() {
        Some(why) => Err(WorkerError::ViewsStopped(why.into())),
        None => Ok(()),
    }
}

/// A delivery as the loop read it, once: a job with its envelope and event, or poison.
pub(crate) enum Read {
    Job(Box<(Delivery, Envelope, Event)>),
    /// An envelope that does not decode at all: it will not on a later delivery either.
    Poison(Delivery, String),
}

/// Reads a delivery at the loop, before any job runs. A message this build cannot read
/// although the registry wrote it (an envelope or payload version it does not know, or an
/// event it has no variant for: ops/evolving-events.md, a new variant changes no version) is
/// a newer release's: acking it unrun would lose its job for good, so the worker stops
/// there, leaving it unacked, as the projector does, and an upgraded worker takes it.
pub(crate) fn read(delivery: Delivery) -> Result<Read, WorkerError> {
    let newer = |why: String| WorkerError::NewerRelease {
        seq: delivery.stored.seq,
        why,
    };
    let envelope = match Envelope::decode(&delivery.stored.data) {
        Ok(envelope) => envelope,
        Err(eventlog::DecodeError::UnknownVersion(version)) => {
            return Err(newer(format!(
                "envelope version {version}, unknown to this build (or the message is corrupt)"
            )));
        }
        Err(error) => return Ok(Read::Poison(delivery, error.to_string())),
    };
    if envelope.payload_version > domain::event::PAYLOAD_VERSION {
        return Err(newer(format!(
            "payload version {}",
            envelope.payload_version
        )));
    }
    match Event::decode(envelope.payload_version, &envelope.payload) {
        Ok(event) => Ok(Read::Job(Box::new((delivery, envelope, event)))),
        Err(_) => Err(newer(format!(
            "a {} event this build has no variant for",
            envelope.kind
        ))),
    }
}

/// The job of a delivery [`read`] at the loop; poison is acked at once and counted as a
/// failed job, and the log names its position (never its bytes).
pub(crate) async fn job_or_drop(
    registry: &Registry,
    worker: &str,
    read: Read,
) -> Option<(Delivery, Envelope, Event)> {
    let (delivery, error) = match read {
        Read::Job(job) => return Some(*job),
        Read::Poison(delivery, error) => (delivery, error),
    };
    let seq = delivery.stored.seq;
    registry.jobs().record(worker, "failed");
    tracing::error!(%error, seq, worker, "a message cannot be decoded; acked without running it");
    if let Err(error) = delivery.ack().await {
        tracing::warn!(%error, seq, worker, "ack of an undecodable message failed; it will come back");
    }
    None
}

/// Ends a job that did its work (or had none to do): counts it and acks it.
pub(crate) async fn done(registry: &Registry, worker: &str, delivery: Delivery, done: Done) {
    let seq = delivery.stored.seq;
    registry.jobs().record(worker, "ok");
    let acked = match done {
        Done::Recorded => delivery.ack().await,
        Done::Skipped => delivery.ack_unconfirmed().await,
    };
    if let Err(error) = acked {
        tracing::warn!(%error, seq, worker, "ack failed; the job will be redelivered and recorded once");
    }
}

/// Ends a failed job that has deliveries left: counts it and gives it back to the log, to
/// be delivered again after the retry's backoff.
pub(crate) async fn retry_later(
    registry: &Registry,
    worker: &str,
    delivery: Delivery,
    retry: &Retry,
    error: &WorkerError,
) {
    let (seq, attempt) = (delivery.stored.seq, delivery.attempt);
    let delay = retry.delay(attempt);
    registry.jobs().record(worker, "failed");
    let error = chain(error);
    tracing::warn!(%error, seq, worker, attempt, retry_in_ms = delay.as_millis(), "job failed; it will be retried");
    if let Err(error) = delivery.nak(delay).await {
        tracing::warn!(%error, seq, worker, "nak failed; the job will be redelivered after the ack wait");
    }
}

/// Runs `job` while telling the log, every `every`, that the delivery is still being worked
/// on, so a slow job is not handed to a second worker when its ack wait runs out.
pub(crate) async fn keep_alive<T>(
    delivery: &Delivery,
    every: Duration,
    job: impl Future<Output = T>,
) -> T {
    tokio::pin!(job);
    let every = every.max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            output = &mut job => return output,
            _ = ticks.tick() => {
                if let Err(error) = delivery.in_progress().await {
                    tracing::warn!(%error, seq = delivery.stored.seq, "progress ack failed");
                }
            }
        }
    }
}

/// A worker's durable consumer that survives losing the log: a failed pull (the NATS node
/// holding the consumer died, its leader is being elected, the connection moved) is logged,
/// counted in [`app::ConsumerHealth`], and the consumer is opened anew after a pause of
/// 100 ms doubling to 1 s, for as long as it takes. Its position lives in the log, so
/// nothing is skipped; what was fetched and not acked comes back after its ack wait.
pub(crate) struct Consumer {
    config: DurableConfig,
    durable: Option<Box<dyn Durable>>,
    /// Pauses since the last pull that worked: every loss is followed by one. A loss is
    /// made good by a pull that works, not by opening the consumer anew (a node can take a
    /// consumer and still fail every pull).
    failures: u32,
}

/// The first and the longest pause before opening a lost consumer again.
const REOPEN_FIRST_PAUSE: Duration = Duration::from_millis(100);
const REOPEN_MAX_PAUSE: Duration = Duration::from_secs(1);

impl Consumer {
    /// Opens the consumer; a log that does not answer now is retried by [`Consumer::next`].
    pub(crate) async fn open(registry: &Registry, config: DurableConfig) -> Self {
        let mut consumer = Self {
            config,
            durable: None,
            failures: 0,
        };
        if let Err(error) = consumer.reopen(registry).await {
            consumer.lost(registry, &error);
        }
        consumer
    }

    /// The next delivery, waiting about `wait` when there is none; a loss of the log is
    /// handled here and never returned. Cancel-safe, as [`Durable::next`] is.
    pub(crate) async fn next(&mut self, registry: &Registry, wait: Duration) -> Option<Delivery> {
        loop {
            if self.durable.is_none() {
                tokio::time::sleep(self.pause()).await;
                if let Err(error) = self.reopen(registry).await {
                    self.lost(registry, &error);
                    continue;
                }
            }
            let Some(durable) = self.durable.as_mut() else {
                continue;
            };
            match durable.next(wait).await {
                Ok(delivery) => {
                    if std::mem::take(&mut self.failures) > 0 {
                        tracing::info!(consumer = %self.config.name, "the worker's consumer delivers again");
                        registry.consumers().resumed(&self.config.name);
                    }
                    return delivery;
                }
                Err(error) => self.lost(registry, &error),
            }
        }
    }

    async fn reopen(&mut self, registry: &Registry) -> Result<(), eventlog::LogError> {
        self.durable = Some(registry.log().durable(self.config.clone()).await?);
        Ok(())
    }

    fn lost(&mut self, registry: &Registry, error: &eventlog::LogError) {
        self.durable = None;
        let why = chain(error);
        tracing::warn!(consumer = %self.config.name, error = %why, "the worker's consumer lost the log; opening it anew");
        registry.consumers().lost(&self.config.name, &why);
    }

    fn pause(&mut self) -> Duration {
        let steps = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        REOPEN_FIRST_PAUSE
            .saturating_mul(1 << steps)
            .min(REOPEN_MAX_PAUSE)
    }
}

/// Waits until this process's views have caught up with the log as it was when the worker
/// started. A fresh worker replays the whole log first; jobs taken meanwhile would only
/// wait for the views and burn their deliveries. Returns false when `shutdown` came first.
pub(crate) async fn wait_for_views(
    registry: &Registry,
    worker: &str,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Result<bool, WorkerError> {
    let views = registry.views();
    // The log may be out of reach at start (a cluster electing a leader): wait for it rather
    // than stop, since a worker inside `serve` is not started again.
    let target = loop {
        match registry.log().last_seq().await {
            Ok(last) => break last,
            Err(error) => {
                tracing::warn!(%error, worker, "cannot read the log's end; trying again");
                tokio::select! {
                    () = &mut *shutdown => return Ok(false),
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let mut last_report = tokio::time::Instant::now();
    loop {
        let reached = views.position();
        if reached >= target {
            return Ok(true);
        }
        if let Some(why) = views.failure() {
            // The projector stopped for good: no job could run; exit so it is seen.
            return Err(WorkerError::ViewsStopped(why.into()));
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            tracing::info!(
                worker,
                reached,
                target,
                "waiting for the views to catch up before taking jobs"
            );
            last_report = tokio::time::Instant::now();
        }
        tokio::select! {
            () = &mut *shutdown => return Ok(false),
            () = views.changed_after(reached, Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_up_to_its_cap() {
        let retry = Retry {
            max_deliver: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
        };
        let delays: Vec<u64> = (1..=6).map(|a| retry.delay(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert_eq!(retry.delay(u64::MAX), Duration::from_secs(10));
        assert!(!retry.is_last(4));
        assert!(retry.is_last(5));
        assert!(!retry.is_spent(5), "the last attempt is still an attempt");
        assert!(retry.is_spent(6));
        let unlimited = Retry {
            max_deliver: 0,
            ..retry
        };
        assert!(!unlimited.is_last(1000));
        assert!(!unlimited.is_spent(1000));
    }
}
