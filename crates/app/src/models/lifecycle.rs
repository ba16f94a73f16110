//! A model's lifecycle: deactivation (the UI's Delete), refused while active workflows still
//! reference the model unless confirmed; reactivation; and the dependents worker's record of
//! whom it warned.

use domain::model::{self, Status};
use views::ModelRow;

use crate::present::rfc3339;
use crate::{Answer, AppError, Ctx, Registry};

/// Deactivates a model. With active workflows still referencing it and no `confirm`, the
/// domain refuses with their count and the first by name.
pub async fn deactivate(
    registry: &Registry,
    ctx: &Ctx,
    slug: &str,
    confirm: bool,
    if_match: Option<u64>,
) -> Result<Answer<api::Model>, AppError> {
    ctx.require_admin()?;
    super::transition(registry, ctx, slug, |row| {
        super::expect_version(row, ctx, if_match)?;
        let dependents = if confirm || row.model.status == Status::Deactivated {
            Vec::new()
        } else {
            active_dependents(registry, ctx, slug)?
        };
        Ok(model::Command::Deactivate {
            confirm,
            dependents,
        })
    })
    .await
}

pub async fn reactivate(
    registry: &Registry,
    ctx: &Ctx,
    slug: &str,
) -> Result<Answer<api::Model>, AppError> {
    ctx.require_admin()?;
    super::transition(registry, ctx, slug, |_| Ok(model::Command::Reactivate)).await
}

/// The dependents worker's record of whom it warned about the deactivation at
/// `deactivation_seq`. Idempotent: the worker's command id derives from that position.
pub async fn record_warning(
    registry: &Registry,
    ctx: &Ctx,
    slug: &str,
    deactivation_seq: u64,
    workflow_ids: Vec<String>,
) -> Result<u64, AppError> {
    let answer = super::transition(registry, ctx, slug, |_| {
        Ok(model::Command::RecordWarning {
            deactivation_seq,
            workflow_ids: workflow_ids.clone(),
        })
    })
    .await?;
    Ok(answer.position)
}

/// The names of the active workflows that reference `slug`.
fn active_dependents(registry: &Registry, ctx: &Ctx, slug: &str) -> Result<Vec<String>, AppError> {
    Ok(registry
        .views
        .referencing(ctx.org.as_str(), slug)?
        .into_iter()
        .filter(|w| w.workflow.active)
        .map(|w| w.workflow.name)
        .collect())
}

/// 410 for a deactivated model: when, by whom, and what to do.
pub(crate) fn gone(row: &ModelRow) -> AppError {
    let (at, by) = row
        .deactivation
        .as_ref()
        .map(|d| (rfc3339(d.at_ms), d.by.clone()))
        .unwrap_or_else(|| (rfc3339(row.updated_at_ms), row.updated_by.clone()));
    AppError::Gone {
        code: "model.deactivated",
        message: format!(
            "model {} was deactivated at {at} by {by}; repoint the workflow to an active model",
            row.model.slug
        ),
        at,
        by,
    }
}
