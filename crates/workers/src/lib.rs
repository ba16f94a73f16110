//! Workers: separate processes (or tasks inside `serve` on the embedded log) that consume
//! the log through durable consumers with explicit acks, do work outside the request path,
//! and record what they did as events.
//!
//! Architecture invariant: workers never bypass the log. Every result is an event whose
//! message id is derived from the job, so a redelivered job never records twice.

pub mod connection_tests;
pub mod dependents;
mod notify;
pub mod pipelines;

pub use notify::{NatsNotifier, Notifier, QuietNotifier};

use app::Registry;
use domain::Event;
use eventlog::{Delivery, Envelope};

/// Decodes a delivered message into its envelope and event.
pub(crate) fn decode(data: &[u8]) -> Result<(Envelope, Event), String> {
    let envelope = Envelope::decode(data).map_err(|e| e.to_string())?;
    let event =
        Event::decode(envelope.schema_version, &envelope.payload).map_err(|e| e.to_string())?;
    Ok((envelope, event))
}

/// Ends a job: counts its outcome, acks it when done, and leaves a failed one unacked so it
/// is delivered again after the ack wait (up to the consumer's delivery limit).
pub(crate) async fn finish(
    registry: &Registry,
    worker: &str,
    delivery: Delivery,
    outcome: Result<(), String>,
) {
    let seq = delivery.stored.seq;
    match outcome {
        Ok(()) => {
            registry.jobs.record(worker, "ok");
            if let Err(error) = delivery.ack().await {
                tracing::warn!(%error, seq, worker, "ack failed; the job will be redelivered and recorded once");
            }
        }
        Err(error) => {
            registry.jobs.record(worker, "failed");
            tracing::warn!(%error, seq, worker, attempt = delivery.attempt, "job failed; it will be redelivered");
        }
    }
}
