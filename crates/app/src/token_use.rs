//! When each token was last used, to the minute. Not an event (one per request would flood
//! the log) and not a view (views hold only what the log rebuilds): an in-memory map, touched
//! on each authenticated request, flushed at most once a minute and on shutdown to a store of
//! its own: `token_use.json` in the data dir (embedded), or a NATS KV bucket that replicas
//! share (each flush also reads the others' uses back).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

use async_nats::jetstream::kv;
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};

use crate::AppError;

/// How often the background task flushes.
pub(crate) const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

const MINUTE_MS: i64 = 60_000;

/// Where last uses are kept.
pub(crate) enum Store {
    /// A small JSON file, written whole (temporary file, then rename).
    File(PathBuf),
    /// A JetStream KV bucket: key = token id, value = milliseconds, as decimal text.
    Kv(Box<kv::Store>),
    /// Nowhere (a registry built by hand, as in unit tests).
    Memory,
}

pub(crate) struct TokenUse {
    store: Store,
    /// The last use of each token known here, to the minute.
    known: RwLock<HashMap<String, i64>>,
    /// Tokens whose use here is newer than the store's.
    dirty: Mutex<HashSet<String>>,
    /// One flush at a time.
    flushing: tokio::sync::Mutex<()>,
}

impl Default for TokenUse {
    fn default() -> Self {
        Self::new(Store::Memory)
    }
}

impl TokenUse {
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store,
            known: RwLock::default(),
            dirty: Mutex::default(),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    /// The file store, with what it holds already loaded.
    pub(crate) fn open_file(path: PathBuf) -> Result<Self, AppError> {
        let known = read_file(&path)?;
        let this = Self::new(Store::File(path));
        if let Ok(mut map) = this.known.write() {
            *map = known;
        }
        Ok(this)
    }

    /// The bucket `bucket`, created if missing (the way the keyring creates its own), with what
    /// it holds already loaded.
    pub(crate) async fn open_kv(
        client: async_nats::Client,
        bucket: &str,
        replicas: usize,
    ) -> Result<Self, AppError> {
        let unavailable = |what: String, error: &dyn std::fmt::Display| AppError::Unavailable {
            what: format!("{what}: {error}"),
            source: None,
        };
        let jetstream = async_nats::jetstream::new(client);
        let store = match jetstream.get_key_value(bucket).await {
            Ok(store) => store,
            Err(_) => {
                // Not `create_key_value`: its account-info request fails on nats-server 2.9.
                let config = stream::Config {
                    name: format!("KV_{bucket}"),
                    description: Some("modelreg: when each token was last used".to_owned()),
                    subjects: vec![format!("$KV.{bucket}.>")],
                    max_messages_per_subject: 1,
                    storage: StorageType::File,
                    num_replicas: replicas.max(1),
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    discard: DiscardPolicy::New,
                    ..Default::default()
                };
                jetstream
                    .get_or_create_stream(config)
                    .await
                    .map_err(|e| unavailable(format!("cannot create bucket {bucket}"), &e))?;
                jetstream
                    .get_key_value(bucket)
                    .await
                    .map_err(|e| unavailable(format!("cannot open bucket {bucket}"), &e))?
            }
        };
        let this = Self::new(Store::Kv(Box::new(store)));
        if let Err(error) = this.flush().await {
            tracing::warn!(%error, "cannot read when tokens were last used; retrying in a minute");
        }
        Ok(this)
    }

    /// Notes a use of `token_id` at `now_ms` (kept to the minute).
    pub(crate) fn touch(&self, token_id: &str, now_ms: i64) {
        let minute = now_ms - now_ms.rem_euclid(MINUTE_MS);
        let noted =
            |known: &HashMap<String, i64>| known.get(token_id).is_some_and(|at| *at >= minute);
        // Most requests find their minute noted already: a shared lock only.
        if self.known.read().map_or(true, |known| noted(&known)) {
            return;
        }
        let Ok(mut known) = self.known.write() else {
            return;
        };
        if noted(&known) {
            return;
        }
        known.insert(token_id.to_owned(), minute);
        drop(known);
        if let Ok(mut dirty) = self.dirty.lock() {
            dirty.insert(token_id.to_owned());
        }
    }

    /// The last use of `token_id` known here: this process's, or the store's as of the last
    /// flush.
    pub(crate) fn last_used(&self, token_id: &str) -> Option<i64> {
        self.known.read().ok()?.get(token_id).copied()
    }

    /// Writes the uses noted since the last flush and reads the store's back.
    pub(crate) async fn flush(&self) -> Result<(), AppError> {
        let _one = self.flushing.lock().await;
        let dirty: Vec<String> = match self.dirty.lock() {
            Ok(mut dirty) => dirty.drain().collect(),
            Err(_) => return Ok(()),
        };
        let result = self.write_and_read(&dirty).await;
        if result.is_err() {
            // Try again on the next flush.
            if let Ok(mut again) = self.dirty.lock() {
                again.extend(dirty);
            }
        }
        result
    }

    async fn write_and_read(&self, dirty: &[String]) -> Result<(), AppError> {
        let snapshot = |ids: &[String]| -> Vec<(String, i64)> {
            let known = self.known.read().map(|k| k.clone()).unwrap_or_default();
            ids.iter()
                .filter_map(|id| known.get(id).map(|at| (id.clone(), *at)))
                .collect()
        };
        let stored = match &self.store {
            Store::Memory => return Ok(()),
            Store::File(path) => {
                let mut stored = read_file(path)?;
                let known = self.known.read().map(|k| k.clone()).unwrap_or_default();
                for (id, at) in known {
                    let entry = stored.entry(id).or_insert(at);
                    *entry = (*entry).max(at);
                }
                if !dirty.is_empty() {
                    write_file(path, &stored)?;
                }
                stored
            }
            Store::Kv(store) => {
                let failed = |e: &dyn std::fmt::Display| AppError::Unavailable {
                    what: format!("the token-use bucket: {e}"),
                    source: None,
                };
                for (id, at) in snapshot(dirty) {
                    let theirs = store.get(&id).await.map_err(|e| failed(&e))?;
                    if parse_ms(theirs.as_deref()).is_some_and(|t| t >= at) {
                        continue;
                    }
                    store
                        .put(&id, at.to_string().into_bytes().into())
                        .await
                        .map_err(|e| failed(&e))?;
                }
                use futures::TryStreamExt;
                let keys: Vec<String> = store
                    .keys()
                    .await
                    .map_err(|e| failed(&e))?
                    .try_collect()
                    .await
                    .map_err(|e| failed(&e))?;
                let mut stored = HashMap::with_capacity(keys.len());
                for key in keys {
                    let value = store.get(&key).await.map_err(|e| failed(&e))?;
                    if let Some(at) = parse_ms(value.as_deref()) {
                        stored.insert(key, at);
                    }
                }
                stored
            }
        };
        if let Ok(mut known) = self.known.write() {
            for (id, at) in stored {
                let entry = known.entry(id).or_insert(at);
                *entry = (*entry).max(at);
            }
        }
        Ok(())
    }
}

fn parse_ms(value: Option<&[u8]>) -> Option<i64> {
    std::str::from_utf8(value?).ok()?.parse().ok()
}

fn read_file(path: &std::path::Path) -> Result<HashMap<String, i64>, AppError> {
    match std::fs::read(path) {
        // A convenience, rewritten each minute: a damaged file is started afresh.
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|error| {
            tracing::warn!(%error, path = %path.display(), "a damaged token-use file is started afresh");
            HashMap::new()
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(AppError::Unavailable {
            what: format!("cannot read {}", path.display()),
            source: Some(Box::new(e)),
        }),
    }
}

fn write_file(path: &std::path::Path, uses: &HashMap<String, i64>) -> Result<(), AppError> {
    let failed = |e: std::io::Error| AppError::Unavailable {
        what: format!("cannot write {}", path.display()),
        source: Some(Box::new(e)),
    };
    let sorted: std::collections::BTreeMap<&String, &i64> = uses.iter().collect();
    let bytes = serde_json::to_vec(&sorted).map_err(|e| AppError::internal(e.to_string()))?;
    let temporary = path.with_extension("json.tmp");
    eventlog::write_owner_only(&temporary, &bytes).map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn uses_are_kept_to_the_minute_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token_use.json");
        let uses = TokenUse::open_file(path.clone()).unwrap();
        assert_eq!(uses.last_used("a"), None);
        uses.touch("a", 125_000);
        uses.touch("a", 61_000);
        assert_eq!(
            uses.last_used("a"),
            Some(120_000),
            "the latest, to the minute"
        );
        uses.flush().await.unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner only");
        let again = TokenUse::open_file(path.clone()).unwrap();
        assert_eq!(again.last_used("a"), Some(120_000));
        std::fs::write(&path, b"{not json").unwrap();
        let afresh = TokenUse::open_file(path).unwrap();
        assert_eq!(
            afresh.last_used("a"),
            None,
            "a damaged file is started afresh"
        );
    }
}
