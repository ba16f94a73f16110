//! The application layer: command handlers (load state from views, decide in `domain`,
//! append to the log, wait for the views), queries, configuration and the wiring of
//! backends.
//!
//! Architecture invariant: `app` speaks no HTTP. Every answer to a command carries the log
//! position it appended, and returns only once the local views reflect it.

pub mod config;
pub mod connection_tests;
pub mod dependents;
mod error;
mod json_mistake;
mod models;
mod orgs;
pub mod requests;
pub mod resolve;
pub mod responses;
mod wiring;

use std::sync::Arc;
use std::time::Duration;

use domain::org::Role;
use domain::values::OrgId;
use eventlog::{Actor, ActorKind, EventLog};
use vault::Vault;
use views::Views;

pub use dependents::{CheckAnswer, ModelReferences, WorkflowView};
pub use error::AppError;
pub use json_mistake::JsonMistake;
pub use models::{AddOutcome, CredentialMatch};
pub use orgs::{CreatedOrg, IssuedToken, PreparedToken};
pub use resolve::Resolved;
pub use wiring::{Running, bootstrap_default_org, start, views_path};

/// Everything a command or query needs, shared by all requests of one process.
pub struct Registry {
    pub log: Arc<dyn EventLog>,
    pub views: Arc<Views>,
    pub vault: Vault,
    /// How long a command waits for the views to reach its position.
    pub read_your_writes_timeout: Duration,
    /// How long a passing connection test lets its draft be added.
    pub receipt_ttl_ms: i64,
    /// Recently authenticated tokens (a token never changes once issued; the entry still
    /// expires so a future revocation takes effect within its lifetime).
    pub tokens: TokenCache,
    /// Rows resolve read, while the views stand still.
    pub resolve_cache: resolve::ResolveCache,
    /// Jobs done by the workers running in this process, for `/metrics`.
    pub jobs: JobCounters,
    /// The platform's OpenRouter key, which platform models resolve to.
    pub platform_key: Option<secrets::Secret>,
}

/// Who is asking, for which org, and which command this is.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub org: OrgId,
    pub role: Role,
    pub actor: Actor,
    pub request_id: String,
    /// The client's idempotency key, or a fresh id: retries with the same key are one command.
    pub command_id: String,
}

impl Ctx {
    /// A context for the registry itself (bootstrap, admin commands run on the server).
    pub fn system(org: OrgId, label: &str) -> Self {
        Self {
            org,
            role: Role::Admin,
            actor: Actor {
                kind: ActorKind::System,
                id: "system".into(),
                label: label.into(),
            },
            request_id: new_id(),
            command_id: new_id(),
        }
    }

    pub(crate) fn require_admin(&self) -> Result<(), AppError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Member | Role::Service => Err(AppError::Forbidden(
                "this needs an admin token; member and service tokens cannot manage models".into(),
            )),
        }
    }

    /// Workflows are reported by the pipelines product (a service token) or an admin.
    pub(crate) fn require_reporter(&self) -> Result<(), AppError> {
        match self.role {
            Role::Admin | Role::Service => Ok(()),
            Role::Member => Err(AppError::Forbidden("member tokens can only read".into())),
        }
    }
}

/// Token rows by token id, each with when it was read.
#[derive(Default)]
pub struct TokenCache {
    rows:
        std::sync::RwLock<std::collections::HashMap<String, (views::TokenRow, std::time::Instant)>>,
}

impl TokenCache {
    const TTL: Duration = Duration::from_secs(30);
    const CAPACITY: usize = 100_000;

    pub(crate) fn get(&self, token_id: &str) -> Option<views::TokenRow> {
        let rows = self.rows.read().ok()?;
        let (row, at) = rows.get(token_id)?;
        (at.elapsed() < Self::TTL).then(|| row.clone())
    }

    pub(crate) fn put(&self, row: &views::TokenRow) {
        let Ok(mut rows) = self.rows.write() else {
            return;
        };
        if rows.len() >= Self::CAPACITY {
            rows.clear();
        }
        rows.insert(
            row.token_id.as_str().to_owned(),
            (row.clone(), std::time::Instant::now()),
        );
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

/// The command id of a request that carries an `Idempotency-Key`: the key belongs to one
/// request target, so the same key on another method or path is another command (the log
/// would otherwise take it for a retry and append nothing). HTTP and the NATS workflow
/// reports name the target alike (`PUT /v1/workflows/<id>`).
pub fn keyed_command_id(method: &str, path: &str, key: &str) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for part in [method, path, key] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    format!("k-{}", hex::encode(&digest[..16]))
}

/// A fresh id, unique across processes: 64 random bits drawn once per process, then a
/// counter. Cheap enough for every request (no system call per id).
pub fn new_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        hex::encode(bytes)
    });
    format!("{prefix}{:012x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub(crate) fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
