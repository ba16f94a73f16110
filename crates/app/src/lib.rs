//! The application layer: one write path for every command (load state from the views,
//! decide in `domain`, build the envelope, append to the log, wait for the views), queries
//! that answer in the wire contract's types (`api`), configuration, and the wiring of the
//! backends.
//!
//! Each feature has its module of plain functions over a [`Registry`]: [`models`],
//! [`credentials`], [`workflows`], [`connection_tests`], [`orgs`] (orgs, tokens and sign-in),
//! [`catalog`] (the platform catalog and an org's choices in it) and [`resolve`].
//!
//! Architecture invariant: `app` speaks no HTTP. Every answer to a command carries the log
//! position it appended, and returns only once the local views reflect it. No rule lives
//! here that `domain` could decide: `app` looks facts up and hands them to `decide`.

pub mod as_of;
pub mod audit;
pub mod catalog;
pub mod config;
pub mod connection_tests;
pub mod credentials;
pub mod models;
pub mod orgs;
pub mod providers;
pub mod resolve;
pub mod usage;
pub mod workflows;

mod clock;
mod ctx;
mod error;
mod execute;
mod json_mistake;
mod paging;
mod parse;
mod present;
mod token_use;
mod wiring;

use std::sync::Arc;
use std::time::Duration;

use eventlog::EventLog;
use secrets::Secret;
use vault::Vault;
use views::Views;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ctx::{ClientAddr, Ctx, Principal, idempotency_key, keyed_command_id, new_id};
/// A token's role, for the edges that show it (the console).
pub use domain::org::Role;
pub use error::{AppError, BoxError, chain};
pub use json_mistake::JsonMistake;
pub use wiring::{
    Running, bootstrap_default_org, rotate_master_key, start, start_with_clock, views_path,
};

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
    /// Data keys this process found it cannot unwrap.
    key_health: credentials::KeyHealth,
    /// The platform catalog's row, while the views stand still.
    catalog_cache: catalog::CatalogCache,
    /// Jobs done by the workers running in this process, for `/metrics`.
    jobs: JobCounters,
    /// The workers' durable consumers: losses of the log, for `/readyz` and `/metrics`.
    consumers: ConsumerHealth,
    /// What an operator should change, found at start (an R1 log on a cluster, say).
    warnings: std::sync::Mutex<Vec<String>>,
    /// Replays of the log for answers as of an earlier point.
    replays: as_of::Replays,
    /// When each token was last used (outside the log and the views).
    token_use: token_use::TokenUse,
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
            key_health: credentials::KeyHealth::default(),
            catalog_cache: catalog::CatalogCache::default(),
            jobs: JobCounters::default(),
            consumers: ConsumerHealth::default(),
            warnings: std::sync::Mutex::default(),
            replays: as_of::Replays::default(),
            token_use: token_use::TokenUse::default(),
        }
    }

    /// Keeps when tokens were last used in `token_use` (else in memory only).
    pub(crate) fn with_token_use(mut self, token_use: token_use::TokenUse) -> Self {
        self.token_use = token_use;
        self
    }

    /// Writes the token uses noted since the last flush to their store and reads the other
    /// replicas' back (done every minute and on stop; tests call it instead of waiting).
    pub async fn flush_token_use(&self) -> Result<(), AppError> {
        self.token_use.flush().await
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

    /// The platform's OpenRouter key, for the catalog sync's call to OpenRouter's models API.
    pub fn platform_key(&self) -> Option<&Secret> {
        self.platform_key.as_ref()
    }

    /// Jobs done by the workers of this process.
    pub fn jobs(&self) -> &JobCounters {
        &self.jobs
    }

    /// Records a warning for operators (it is logged where it is found); `/readyz` shows it.
    pub fn warn_operators(&self, warning: String) {
        if let Ok(mut warnings) = self.warnings.lock() {
            warnings.push(warning);
        }
    }

    /// The warnings recorded by [`Registry::warn_operators`], in order.
    pub fn operator_warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|warnings| warnings.clone())
            .unwrap_or_default()
    }

    /// The workers' durable consumers in this process: how often each lost the log.
    pub fn consumers(&self) -> &ConsumerHealth {
        &self.consumers
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

    /// Waits until the local views hold everything the log holds now: before re-reading an
    /// aggregate whose append met a conflict (re-reading lagging views meets it again).
    pub(crate) async fn catch_up(&self) -> Result<(), AppError> {
        let last = self.log.last_seq().await?;
        self.settle(last).await?;
        Ok(())
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

/// The durable consumers of this process's workers: how often each lost the log and was
/// opened anew, and why one is waiting to resume now.
#[derive(Default)]
pub struct ConsumerHealth {
    state: std::sync::Mutex<std::collections::BTreeMap<String, (u64, Option<String>)>>,
}

impl ConsumerHealth {
    /// `consumer` lost the log because of `why` and is about to be opened anew.
    pub fn lost(&self, consumer: &str, why: &str) {
        if let Ok(mut state) = self.state.lock() {
            let entry = state.entry(consumer.to_owned()).or_default();
            entry.0 += 1;
            entry.1 = Some(why.to_owned());
        }
    }

    /// `consumer` delivers again.
    pub fn resumed(&self, consumer: &str) {
        if let Ok(mut state) = self.state.lock()
            && let Some(entry) = state.get_mut(consumer)
        {
            entry.1 = None;
        }
    }

    /// A consumer waiting to resume, and why; `None` when all deliver.
    pub fn interrupted(&self) -> Option<(String, String)> {
        let state = self.state.lock().ok()?;
        state
            .iter()
            .find_map(|(name, (_, why))| why.clone().map(|why| (name.clone(), why)))
    }

    /// `(consumer, losses)` in order, for every consumer that lost the log at least once.
    pub fn losses(&self) -> Vec<(String, u64)> {
        self.state
            .lock()
            .map(|state| {
                state
                    .iter()
                    .map(|(name, (n, _))| (name.clone(), *n))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An answer and the log position it reflects.
#[derive(Clone, Debug)]
pub struct Answer<T> {
    pub value: T,
    pub position: u64,
}
