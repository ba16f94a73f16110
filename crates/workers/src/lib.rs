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
