//! Time travel: models and credentials as they were at a log position or a moment, answered
//! from a replay of the log up to that point into views of its own. The live views are never
//! touched; the last few replays are kept, so asking about one point again is a read.

use std::sync::Arc;

use domain::Invalid;
use views::Views;

use crate::{Answer, AppError, Ctx, Registry};

/// Replays kept at once (each is a views file and its audit file in a private temporary
/// directory).
const KEPT: usize = 4;

/// The replays of one process, newest last.
#[derive(Default)]
pub(crate) struct Replays {
    /// Where replays go (`<data dir>/as-of`); the system's temp dir when unset.
    pub(crate) base: Option<std::path::PathBuf>,
    inner: tokio::sync::Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// This process's directory under the base, created on the first replay (0700) and
    /// removed with the registry.
    dir: Option<tempfile::TempDir>,
    views: Vec<(u64, Arc<Views>)>,
}

/// The org's models (platform and custom) as of `as_of`.
pub async fn models(
    registry: &Registry,
    ctx: &Ctx,
    as_of: &str,
) -> Result<Answer<api::ModelList>, AppError> {
    let (position, views) = replayed(registry, ctx, as_of).await?;
    crate::models::list_in(registry, &views, ctx, position)
}

/// One custom model as of `as_of`; 404 when it did not exist yet.
pub async fn model(
    registry: &Registry,
    ctx: &Ctx,
    slug: &str,
    as_of: &str,
) -> Result<Answer<api::Model>, AppError> {
    let (position, views) = replayed(registry, ctx, as_of).await?;
    Ok(Answer {
        value: crate::models::view_in(registry, &views, ctx, slug)?,
        position,
    })
}

/// The org's saved credentials (metadata) as of `as_of`.
pub async fn credentials(
    registry: &Registry,
    ctx: &Ctx,
    as_of: &str,
) -> Result<Answer<Vec<api::Credential>>, AppError> {
    let (position, views) = replayed(registry, ctx, as_of).await?;
    crate::credentials::list_in(registry, &views, ctx, position)
}

/// The position `as_of` names (a log position, or the org's last event recorded at or
/// before an RFC 3339 time) and the views replayed up to it.
async fn replayed(
    registry: &Registry,
    ctx: &Ctx,
    as_of: &str,
) -> Result<(u64, Arc<Views>), AppError> {
    let live = registry.views.position();
    let position = match as_of.parse::<u64>() {
        Ok(position) => position,
        Err(_) => {
            let time = crate::audit::time(Some(as_of), "as_of")
                .map_err(|mut invalid| {
                    invalid.code = "as_of.invalid";
                    invalid.message =
                        "as_of takes a log position or an RFC 3339 time, e.g. 2026-01-31T12:00:00Z"
                            .into();
                    invalid
                })?
                .unwrap_or(i64::MAX);
            registry.views.position_at(ctx.org.as_str(), time)?
        }
    };
    if position > live {
        return Err(AppError::invalid(Invalid::new(
            "as_of",
            "as_of.ahead",
            "as_of names a position this server's views have not reached",
        )));
    }
    let views = registry
        .replays
        .get(Arc::clone(&registry.log), position)
        .await?;
    Ok((position, views))
}

impl Replays {
    /// The views as of `position`: kept from an earlier replay, or replayed now.
    async fn get(
        &self,
        log: Arc<dyn eventlog::EventLog>,
        position: u64,
    ) -> Result<Arc<Views>, AppError> {
        let mut kept = self.inner.lock().await;
        if let Some((_, views)) = kept.views.iter().find(|(p, _)| *p == position) {
            return Ok(Arc::clone(views));
        }
        if kept.dir.is_none() {
            let unavailable = |e: std::io::Error| AppError::Unavailable {
                what: "cannot create a directory for a replay".into(),
                source: Some(Box::new(e)),
            };
            let mut builder = tempfile::Builder::new();
            builder.prefix("replays-");
            let dir = match &self.base {
                Some(base) => {
                    eventlog::owner_only_dir(base).map_err(unavailable)?;
                    builder.tempdir_in(base)
                }
                None => builder.tempdir(),
            }
            .map_err(unavailable)?;
            kept.dir = Some(dir);
        }
        let path = match &kept.dir {
            Some(dir) => dir.path().join(format!("{position}.redb")),
            None => return Err(AppError::internal("no replay directory")),
        };
        let views =
            views::replay(log, &path, position)
                .await
                .map_err(|e| AppError::Unavailable {
                    what: format!("the replay up to position {position} failed"),
                    source: Some(Box::new(e)),
                })?;
        if kept.views.len() >= KEPT {
            let (old, _) = kept.views.remove(0);
            if let Some(dir) = &kept.dir {
                // An answer still reading them keeps its open files; the names go now, the
                // audit file's first.
                let old = dir.path().join(format!("{old}.redb"));
                let _ = std::fs::remove_file(views::audit_path(&old));
                let _ = std::fs::remove_file(old);
            }
        }
        kept.views.push((position, Arc::clone(&views)));
        Ok(views)
    }
}
