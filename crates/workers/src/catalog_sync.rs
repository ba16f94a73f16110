//! The platform catalog's sync: reads OpenRouter's models API (all pages, with the platform
//! key) or a saved copy of its answer, and hands what it says to `app::catalog::sync`, which
//! shows the diff and, applied, records it. The operator runs it (`modelreg catalog sync`);
//! `serve` runs it periodically when `catalog_sync_interval_s` is set, logging each result
//! (the catalog's history shows every recorded sync with its actor). `serve` also checks
//! hourly for expiration dates come between syncs (`run_expiry_checks`).

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use app::{Answer, AppError, Ctx, Registry};
use domain::catalog::Upstream;
use providers::openrouter_models::{self, ModelsError};

use crate::WorkerError;

/// The job counter's name in `/metrics`.
pub const WORKER: &str = "catalog-sync";

/// Where a sync reads what OpenRouter says.
pub enum Source<'a> {
    /// `GET {openrouter base}/models`, every page.
    Api(&'a providers::Settings),
    /// A saved answer of the models API (one page, `{"data":[…]}`).
    File(&'a Path),
}

/// What `source` lists now, and the name facts read from it are recorded under.
pub async fn read(
    registry: &Registry,
    source: Source<'_>,
) -> Result<(String, Vec<Upstream>), WorkerError> {
    match source {
        Source::Api(settings) => {
            let client = providers::Client::new(settings).map_err(|e| WorkerError::Settings {
                setting: "providers".into(),
                why: e.to_string(),
            })?;
            let base = settings
                .base_url(domain::provider::Provider::Openrouter, None)
                .unwrap_or_default();
            let models =
                openrouter_models::list_models(&client, settings, registry.platform_key()).await?;
            Ok((openrouter_models::source_name(&base), models))
        }
        Source::File(path) => {
            let bytes = std::fs::read(path).map_err(|e| WorkerError::Settings {
                setting: "--from".into(),
                why: format!("cannot read {}: {e}", path.display()),
            })?;
            let page = openrouter_models::read_page(&bytes)?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((
                format!("saved OpenRouter models answer ({name})"),
                page.models,
            ))
        }
    }
}

/// Reads `source` and syncs the catalog: the diff, recorded when `apply`. New models of the
/// vendors in `auto_list` are listed, the others proposed.
pub async fn sync(
    registry: &Registry,
    ctx: &Ctx,
    source: Source<'_>,
    auto_list: &[String],
    apply: bool,
) -> Result<Answer<api::CatalogDiff>, WorkerError> {
    let (name, upstream) = read(registry, source).await?;
    let apply = match apply {
        true => app::catalog::Apply::Yes,
        false => app::catalog::Apply::No,
    };
    Ok(app::catalog::sync(registry, ctx, &name, upstream, auto_list, apply).await?)
}

/// Syncs every `every` until `shutdown`, applying what it finds; each outcome is logged and
/// counted. A failed sync is tried again at the next tick. What is too sweeping to record
/// unattended (`domain::catalog::sweeping`: an upstream whose answer changed shape, say) is
/// held back, logged as an error and counted as failed, for the operator to look at.
pub async fn run_periodic(
    registry: std::sync::Arc<Registry>,
    settings: providers::Settings,
    auto_list: Vec<String>,
    every: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let every = every.max(Duration::from_secs(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticks.tick() => {}
        }
        let ctx = Ctx::operator("periodic catalog sync", None);
        match unattended(&registry, &ctx, &settings, &auto_list).await {
            Ok(None) => registry.jobs().record(WORKER, "failed"),
            Ok(Some(answer)) => {
                registry.jobs().record(WORKER, "ok");
                let diff = answer.value;
                if diff.unchanged {
                    tracing::info!("catalog sync: nothing new upstream");
                } else {
                    tracing::info!(
                        changed = diff.changed.len(),
                        proposed = diff.proposed.len(),
                        listed = diff.listed.len(),
                        disappeared = diff.disappeared.len(),
                        expired = diff.expired.len(),
                        position = answer.position,
                        "catalog sync recorded"
                    );
                }
            }
            Err(error) => {
                registry.jobs().record(WORKER, "failed");
                let error = crate::chain(&error);
                tracing::warn!(%error, "catalog sync failed; retried at the next interval");
            }
        }
    }
}

/// One periodic sync: recorded, or held back (`None`) when too sweeping.
async fn unattended(
    registry: &Registry,
    ctx: &Ctx,
    settings: &providers::Settings,
    auto_list: &[String],
) -> Result<Option<Answer<api::CatalogDiff>>, WorkerError> {
    let (name, upstream) = read(registry, Source::Api(settings)).await?;
    let apply = app::catalog::Apply::UnlessSweeping;
    match app::catalog::sync(registry, ctx, &name, upstream, auto_list, apply).await {
        Ok(answer) => Ok(Some(answer)),
        Err(AppError::Conflict { code, message, .. }) if code == app::catalog::TOO_SWEEPING => {
            tracing::error!(why = %message, "catalog sync held back: too sweeping to record unattended (has the upstream's answer changed shape?); `modelreg catalog sync` shows the diff and `--apply` records it");
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

impl From<ModelsError> for WorkerError {
    fn from(error: ModelsError) -> Self {
        Self::Catalog(error)
    }
}

/// Retires, every `every` until `shutdown`, the platform models whose announced expiration
/// date has come since the last sync, so their workflows are warned even when no sync runs.
pub async fn run_expiry_checks(
    registry: std::sync::Arc<Registry>,
    every: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticks.tick() => {}
        }
        match app::catalog::expire_due(&registry).await {
            Ok(retired) if retired.is_empty() => {}
            Ok(retired) => {
                tracing::info!(
                    ?retired,
                    "platform models retired: their expiration date came"
                );
            }
            Err(error) => {
                tracing::warn!(%error, "the expiration check failed; tried again later");
            }
        }
    }
}
