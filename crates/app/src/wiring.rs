//! Wiring: picks the backends the configuration asks for (embedded redb files, or NATS
//! JetStream with a KV keyring), opens the views and starts the projector.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use domain::values::OrgId;
use eventlog::{EmbeddedLog, EventLog, JetStreamLog, StreamSettings};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vault::{Keyring, MasterKey, NatsKeyring, RedbKeyring, Vault};
use views::Views;

use crate::config::Config;
use crate::orgs::{self, PreparedToken};
use crate::token_use::TokenUse;
use crate::{AppError, Clock, Ctx, Parts, Registry, SystemClock};

/// A started registry: the shared state and its background tasks.
pub struct Running {
    pub registry: Arc<Registry>,
    /// True when the master key file was created by this start.
    pub created_master_key: bool,
    pub master_key_path: Option<PathBuf>,
    stop: watch::Sender<bool>,
    projector: JoinHandle<()>,
    /// Finds data keys this process cannot unwrap (`needs_reconfiguration`).
    key_watch: JoinHandle<()>,
    /// Flushes when tokens were last used, every minute and once more on stop.
    token_use_flush: JoinHandle<()>,
}

/// How often every credential's data key is tried again.
const KEY_CHECK_INTERVAL: Duration = Duration::from_secs(60);

impl Running {
    /// A future that resolves when `stop` is called; hand it to tasks as their shutdown.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.stop.subscribe();
        async move {
            let _ = receiver.wait_for(|stopped| *stopped).await;
        }
    }

    /// Stops the background tasks and waits for them.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.key_watch.await;
        let _ = self.token_use_flush.await;
        let _ = self.projector.await;
    }
}

/// Opens everything the configuration names and starts the projector.
pub async fn start(config: &Config) -> Result<Running, AppError> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// [`start`] with the time read from `clock` (tests move a manual clock).
pub async fn start_with_clock(config: &Config, clock: Arc<dyn Clock>) -> Result<Running, AppError> {
    eventlog::owner_only_dir(&config.data_dir).map_err(|e| AppError::Unavailable {
        what: format!("cannot create data dir {}", config.data_dir.display()),
        source: Some(Box::new(e)),
    })?;
    // The key given, or its file's; a missing file is made below, once the keyring says
    // whether a key was in use already.
    let given = match &config.master_key {
        Some(encoded) => Some(MasterKey::from_base64(encoded)?),
        None => MasterKey::read_file(config.master_key_path())?,
    };
    let previous = previous_master_key(config)?;
    let mut warnings = Vec::new();
    let (log, keyring, token_use): (Arc<dyn EventLog>, Arc<dyn Keyring>, TokenUse) =
        match &config.nats_url {
            Some(url) => {
                let client = eventlog::connect_nats(url).await?;
                let settings = StreamSettings {
                    replicas: config.stream_replicas.max(1),
                    ..StreamSettings::new(&config.stream)
                };
                warnings.extend(warn_of_single_replicas(&client, config));
                let log = JetStreamLog::from_client(client.clone(), settings).await?;
                warnings.extend(log.warnings().iter().cloned());
                // When tokens were last used is a convenience: without its bucket the
                // registry serves, and keeps them in memory.
                let token_use = TokenUse::open_kv(
                client.clone(),
                &format!("{}_token_use", config.keyring_bucket),
                config.keyring_replicas.max(1),
            )
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "no token-use bucket; last uses are kept in memory only");
                TokenUse::default()
            });
                let keyring = NatsKeyring::connect_with_replicas(
                    client,
                    &config.keyring_bucket,
                    config.keyring_replicas.max(1),
                )
                .await?;
                (Arc::new(log), Arc::new(keyring), token_use)
            }
            None => {
                let log = EmbeddedLog::open(&config.data_dir.join("log.redb"))?;
                let keyring = RedbKeyring::open(config.data_dir.join("keyring.redb"))?;
                let token_use = TokenUse::open_file(config.data_dir.join("token_use.json"))?;
                (Arc::new(log), Arc::new(keyring), token_use)
            }
        };
    let (master, created_master_key, master_key_path) = match given {
        Some(key) => (
            key,
            false,
            config
                .master_key
                .is_none()
                .then(|| config.master_key_path()),
        ),
        None => {
            let path = config.master_key_path();
            if vault::keyring_in_use(keyring.as_ref()).await? {
                // A new key would open none of the keyring's keys: every credential would
                // need entering again. A lost or mistyped key file is the operator's to fix.
                return Err(vault::VaultError::KeyFile(format!(
                    "{} does not exist, but the keyring holds keys a master key wrapped; restore the key file, or point master_key_file (MODELREG_MASTER_KEY_FILE) or MODELREG_MASTER_KEY at the key in use",
                    path.display()
                ))
                .into());
            }
            let (key, created) = MasterKey::load_or_create_file(&path)?;
            if created && config.nats_url.is_some() {
                tracing::warn!(path = %path.display(), "generated a master key file; every replica must share one key, so set MODELREG_MASTER_KEY or master_key_file");
            }
            (key, created, Some(path))
        }
    };
    let views = Arc::new(Views::open(&views_path(&config.data_dir))?);
    let vault = Vault::load(master, previous.into_iter().collect(), keyring).await?;
    if !vault.fingerprint_key_readable().await? {
        tracing::warn!(
            "the fingerprint key in the keyring cannot be unwrapped with the configured master key: the master key is wrong (or was rotated away); saved secrets will not be recognised, and credentials will say needs_reconfiguration"
        );
    }
    let registry = Arc::new(
        Registry::new(Parts {
            log: Arc::clone(&log),
            views: Arc::clone(&views),
            vault: match config.data_key_cache_ttl_ms {
                0 => vault,
                ttl => vault.with_cache(Duration::from_millis(ttl), 10_000),
            },
            clock,
            read_your_writes_timeout: Duration::from_millis(config.read_your_writes_timeout_ms),
            receipt_ttl_ms: i64::try_from(config.connection_test_receipt_ttl_ms)
                .unwrap_or(i64::MAX),
            platform_key: config
                .platform_openrouter_key
                .clone()
                .map(secrets::Secret::new),
        })
        .with_replays_in(config.data_dir.join("as-of"))
        .with_token_use(token_use),
    );
    for warning in warnings {
        registry.warn_operators(warning);
    }
    let stop = watch::Sender::new(false);
    let mut stopped = stop.subscribe();
    let follow = views::FollowSettings {
        stall_timeout: Duration::from_millis(config.log_stall_timeout_ms.max(1)),
    };
    let projector = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let _ = views::run_projector_with(views, log, follow, shutdown).await;
    });
    // Every process seeds the catalog if the log has none yet: exactly one seed lands.
    if let Err(error) = crate::catalog::seed(&registry).await {
        stop.send_replace(true);
        let _ = projector.await;
        return Err(error);
    }
    let mut stopped = stop.subscribe();
    let key_watch = tokio::spawn(crate::credentials::watch_keys(
        Arc::clone(&registry),
        KEY_CHECK_INTERVAL,
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    let mut stopped = stop.subscribe();
    let flushing = Arc::clone(&registry);
    let token_use_flush = tokio::spawn(async move {
        let mut every = tokio::time::interval(crate::token_use::FLUSH_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stopped.wait_for(|s| *s) => break,
            }
            if let Err(error) = flushing.flush_token_use().await {
                tracing::warn!(%error, "cannot record when tokens were last used; retrying in a minute");
            }
        }
        if let Err(error) = flushing.flush_token_use().await {
            tracing::warn!(%error, "cannot record when tokens were last used at stop");
        }
    });
    Ok(Running {
        registry,
        created_master_key,
        master_key_path,
        stop,
        projector,
        key_watch,
        token_use_flush,
    })
}

/// The previous master key, when a rotation is under way (it only unwraps).
fn previous_master_key(config: &Config) -> Result<Option<MasterKey>, AppError> {
    Ok(
        match (
            &config.previous_master_key,
            &config.previous_master_key_file,
        ) {
            (Some(encoded), _) => Some(MasterKey::from_base64(encoded)?),
            (None, Some(path)) => Some(MasterKey::load_file(path)?),
            (None, None) => None,
        },
    )
}

/// Re-wraps every data key (and the fingerprint key) of the configured keyring under the
/// configured master key, unwrapping with it or the previous one: the work of `modelreg
/// admin rotate-master-key`, at most `limit` entries. Idempotent: a run stopped anywhere
/// leaves every key readable with either master key, and the next run finishes. In NATS mode
/// it runs beside serving replicas; the embedded keyring is one process's file, so there
/// the registry is stopped first.
pub async fn rotate_master_key(
    config: &Config,
    limit: Option<usize>,
) -> Result<vault::RewrapReport, AppError> {
    let master = match &config.master_key {
        Some(encoded) => MasterKey::from_base64(encoded)?,
        None => MasterKey::load_file(config.master_key_path())?,
    };
    let previous = previous_master_key(config)?;
    let keyring: Arc<dyn Keyring> = match &config.nats_url {
        Some(url) => {
            let client = eventlog::connect_nats(url).await?;
            Arc::new(
                NatsKeyring::connect_with_replicas(
                    client,
                    &config.keyring_bucket,
                    config.keyring_replicas.max(1),
                )
                .await?,
            )
        }
        None => Arc::new(RedbKeyring::open(config.data_dir.join("keyring.redb"))?),
    };
    let vault = Vault::load(master, previous.into_iter().collect(), keyring).await?;
    Ok(vault.rewrap_all(limit).await?)
}

/// The views file under a data dir (its audit file beside it: [`views::audit_path`]).
pub fn views_path(data_dir: &Path) -> PathBuf {
    data_dir.join("views.redb")
}

/// Creates the `default` org on first start and writes its admin token to a 0600 file.
/// Returns the token file's path and the token when it was created now.
///
/// Crash-safe: the token is drawn and written to `bootstrap-token.pending` (fsynced) before
/// anything is appended, and the file is renamed to `bootstrap-token` once the token is in
/// the log. A start that finds the pending file finishes the job: it issues the token if the
/// org has none yet (created here before a crash), or drops the file if another replica's
/// bootstrap won.
pub async fn bootstrap_default_org(
    registry: &Registry,
    data_dir: &Path,
) -> Result<Option<(PathBuf, secrets::Secret)>, AppError> {
    let path = data_dir.join("bootstrap-token");
    let pending_path = data_dir.join("bootstrap-token.pending");
    let pending = match std::fs::read_to_string(&pending_path) {
        Ok(text) => PreparedToken::from_text(&text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(file_error("cannot read", &pending_path, error)),
    };
    // Catch up first: in NATS mode another replica may have created it already.
    let last = registry.log().last_seq().await?;
    registry.settle(last).await?;
    let org = OrgId::parse("default")?;
    let finish = |token: secrets::Secret| -> Result<Option<(PathBuf, secrets::Secret)>, AppError> {
        std::fs::rename(&pending_path, &path)
            .map_err(|e| file_error("cannot rename", &pending_path, e))?;
        sync_dir(data_dir)?;
        Ok(Some((path.clone(), token)))
    };
    if let Some(row) = registry.views().org(org.as_str())? {
        let Some(prepared) = pending else {
            return Ok(None);
        };
        if row.tokens.contains(prepared.id()) {
            // Issued before a crash, never shown: show it now.
            let token = secrets::Secret::new(prepared.token().expose_secret().to_owned());
            return finish(token);
        }
        if row.tokens.is_empty() {
            // The org was created here, and the crash came before its token.
            let ctx = Ctx::system(org.clone(), "bootstrap");
            let token = secrets::Secret::new(prepared.token().expose_secret().to_owned());
            orgs::issue_prepared(
                registry,
                &ctx,
                "bootstrap admin",
                domain::org::Role::Admin,
                None,
                prepared,
            )
            .await?;
            return finish(token);
        }
        // Another replica's bootstrap made the org and its admin token.
        let _ = std::fs::remove_file(&pending_path);
        return Ok(None);
    }
    let prepared = match pending {
        Some(prepared) => prepared,
        None => {
            let prepared = PreparedToken::draw();
            write_private(&pending_path, prepared.token().expose_secret())?;
            // The file's name must survive a power loss too, not only its bytes.
            sync_dir(data_dir)?;
            prepared
        }
    };
    let token = secrets::Secret::new(prepared.token().expose_secret().to_owned());
    match orgs::create_with(registry, "default", prepared).await {
        Ok(_) => finish(token),
        Err(AppError::Conflict {
            code: "org.exists", ..
        }) => {
            let _ = std::fs::remove_file(&pending_path);
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

/// Makes the directory's entries (a new or renamed file) durable.
fn sync_dir(dir: &Path) -> Result<(), AppError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| file_error("cannot sync", dir, e))
}

fn file_error(what: &str, path: &Path, error: std::io::Error) -> AppError {
    AppError::Unavailable {
        what: format!("{what} {}", path.display()),
        source: Some(Box::new(error)),
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), AppError> {
    eventlog::write_owner_only(path, format!("{text}\n").as_bytes())
        .map_err(|e| file_error("cannot write", path, e))
}

/// A cluster with one replica of the log or the keyring loses them with one node: say so,
/// loudly, at every start (an existing stream with fewer replicas than configured is warned
/// about by the log itself).
fn warn_of_single_replicas(client: &async_nats::Client, config: &Config) -> Option<String> {
    let info = client.server_info();
    let clustered = info.cluster.as_deref().is_some_and(|name| !name.is_empty());
    if !clustered || (config.stream_replicas > 1 && config.keyring_replicas > 1) {
        return None;
    }
    let warning = "NATS runs a cluster but the log or the keyring is created with one replica: losing one node loses them; set MODELREG_STREAM_REPLICAS and MODELREG_KEYRING_REPLICAS to 3";
    tracing::warn!(
        cluster = info.cluster.as_deref().unwrap_or_default(),
        stream_replicas = config.stream_replicas,
        keyring_replicas = config.keyring_replicas,
        "{warning}"
    );
    Some(warning.to_owned())
}
