//! The application layer: one write path for every command (load state from the views,
//! decide in `domain`, build the envelope, append to the log, wait for the views), queries
//! that answer in the wire contract's types (`api`), configuration, and the wiring of the
//! backends.
//!
//! Each feature has its module of plain functions over a [`Registry`]: [`models`],
//! [`credentials`], [`workflows`], [`connection_tests`], [`orgs`] (orgs, tokens and sign-in)
//! and [`resolve`].
//!
//! Architecture invariant: `app` speaks no HTTP. Every answer to a command carries the log
//! position it appended, and returns only once the local views reflect it. No rule lives
//! here that `domain` could decide: `app` looks facts up and hands them to `decide`.

pub mod as_of;
pub mod audit;
pub mod config;
pub mod connection_tests;
pub mod credentials;
pub mod models;
pub mod orgs;
pub mod resolve;
pub mod workflows;

mod clock;
mod ctx;
mod error;
mod execute;
mod json_mistake;
mod parse;
mod present;
mod wiring;

use std::sync::Arc;
use std::time::Duration;

use eventlog::EventLog;
use secrets::Secret;
use vault::Vault;
use views::Views;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ctx::{Ctx, Principal, idempotency_key, keyed_command_id, new_id};
pub use error::{AppError, BoxError};
pub use json_mistake::JsonMistake;
pub use wiring::{Running, bootstrap_default_org, start, start_with_clock, views_path};

/// Everything commands and queries need, shared by all requests of one process. Its parts
/// are private: features reach them through the functions of their modules.
pub struct Registry {
    log: Arc<dyn EventLog>,
    views: Arc<Views>,
    vault: Vault,
    clock: Arc<dyn Clock>,
    /// How long a command waits for the views to reach its position.
    read_your_writes_timeout: Duration,
    /// How long a passing connection test lets its draft be added.
    receipt_ttl_ms: i64,
    /// The platform's OpenRouter key, which platform models resolve to.
    platform_key: Option<Secret>,
    /// Recently authenticated tokens.
    tokens: orgs::TokenCache,
    /// Rows resolve read, while the views stand still.
    resolve_cache: resolve::ResolveCache,
    /// Jobs done by the workers running in this process, for `/metrics`.
    jobs: JobCounters,
    /// Replays of the log for answers as of an earlier point.
    replays: as_of::Replays,
}

/// What a [`Registry`] is made of; [`start`] builds one from the configuration.
pub struct Parts {
    pub log: Arc<dyn EventLog>,
    pub views: Arc<Views>,
    pub vault: Vault,
    pub clock: Arc<dyn Clock>,
    pub read_your_writes_timeout: Duration,
    pub receipt_ttl_ms: i64,
    pub platform_key: Option<Secret>,
}

impl Registry {
    pub fn new(parts: Parts) -> Self {
        Self {
            log: parts.log,
            views: parts.views,
            vault: parts.vault,
            clock: parts.clock,
            read_your_writes_timeout: parts.read_your_writes_timeout,
            receipt_ttl_ms: parts.receipt_ttl_ms,
            platform_key: parts.platform_key,
            tokens: orgs::TokenCache::default(),
            resolve_cache: resolve::ResolveCache::default(),
            jobs: JobCounters::default(),
            replays: as_of::Replays::default(),
        }
    }

    /// Keeps replays for `as_of` answers under `dir` (else in the system's temp dir).
    pub fn with_replays_in(mut self, dir: std::path::PathBuf) -> Self {
        self.replays.base = Some(dir);
        self
    }

    /// The event log, for workers' durable consumers and for operators' views of it.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// The local views: their position, readiness and checksum.
    pub fn views(&self) -> &Arc<Views> {
        &self.views
    }

    /// Jobs done by the workers of this process.
    pub fn jobs(&self) -> &JobCounters {
        &self.jobs
    }

    /// Waits until the local views reflect `position` (read your writes), the position of a
    /// command just recorded: past the timeout the answer says the command landed there.
    pub async fn settle(&self, position: u64) -> Result<u64, AppError> {
        match self
            .views
            .wait_for(position, self.read_your_writes_timeout)
            .await
        {
            Ok(reached) => Ok(reached),
            Err(error @ views::ViewError::Lagging { .. }) => Err(AppError::Landed {
                position,
                source: Some(Box::new(error)),
            }),
            Err(other) => Err(other.into()),
        }
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// Worker jobs by worker and outcome.
#[derive(Default)]
pub struct JobCounters {
    counts: std::sync::Mutex<std::collections::BTreeMap<(String, String), u64>>,
}

impl JobCounters {
    pub fn record(&self, worker: &str, outcome: &str) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts
                .entry((worker.to_owned(), outcome.to_owned()))
                .or_default() += 1;
        }
    }

    /// `((worker, outcome), count)` in order.
    pub fn snapshot(&self) -> Vec<((String, String), u64)> {
        self.counts
            .lock()
            .map(|c| c.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }
}

/// An answer and the log position it reflects.
#[derive(Clone, Debug)]
pub struct Answer<T> {
    pub value: T,
    pub position: u64,
}
