//! The catalog as one org sees it: its own default and hidden models, what it may use, and
//! the org admin's commands on those choices.

use super::*;

/// The org's own default and hidden models, from its row.
fn org_choices(
    views: &views::Views,
    org: &OrgId,
) -> Result<(Option<String>, Vec<String>), AppError> {
    Ok(views
        .org(org.as_str())?
        .map(|row| (row.default_model, row.hidden_models))
        .unwrap_or_default())
}

fn default_model(choice: &catalog::DefaultChoice) -> api::DefaultModel {
    api::DefaultModel {
        model: choice.model.clone(),
        chosen_by: if choice.chosen_by_org {
            "org"
        } else {
            "platform"
        }
        .into(),
        note: choice.fallback.clone(),
    }
}

pub(crate) fn org_view(registry: &Registry, ctx: &Ctx) -> Result<OrgView, AppError> {
    org_view_of(registry, &registry.views, current(registry)?, ctx)
}

/// [`org_view`] from `views` (a replay of the log as of an earlier point, say).
pub(crate) fn org_view_in(
    registry: &Registry,
    views: &views::Views,
    ctx: &Ctx,
) -> Result<OrgView, AppError> {
    org_view_of(registry, views, views.catalog()?.map(Arc::new), ctx)
}

fn org_view_of(
    registry: &Registry,
    views: &views::Views,
    row: Option<Arc<CatalogRow>>,
    ctx: &Ctx,
) -> Result<OrgView, AppError> {
    let (org_default, hidden) = org_choices(views, &ctx.org)?;
    let Some(row) = row else {
        return Ok(OrgView {
            models: Vec::new(),
            default: api::DefaultModel {
                model: String::new(),
                chosen_by: "platform".into(),
                note: Some("the platform catalog is not in the views yet".into()),
            },
            hidden,
        });
    };
    let today = today(registry);
    let choice = catalog::default_for(&row.catalog, org_default.as_deref(), &hidden, &today);
    let mut models = Vec::new();
    for entry in row.catalog.models.values() {
        if hidden.contains(&entry.id) {
            continue;
        }
        let used_by_workflows = match entry.expiration() {
            Some(_) => views
                .referencing(ctx.org.as_str(), &entry.id)?
                .into_iter()
                .filter(|w| w.workflow.active)
                .map(|w| w.id)
                .collect(),
            None => Vec::new(),
        };
        models.push(api::PlatformModel {
            kind: "platform".into(),
            id: entry.id.clone(),
            display_name: entry.display_name.clone(),
            provider: "openrouter".into(),
            default: entry.id == choice.model,
            capabilities: known_capabilities(entry),
            max_tokens: entry.tokens(FactName::MaxCompletionTokens),
            input_cost_per_token: entry.cost(FactName::InputCost).map(|c| c.to_string()),
            output_cost_per_token: entry.cost(FactName::OutputCost).map(|c| c.to_string()),
            status: if entry.retired(&today).is_some() {
                "retired"
            } else {
                "active"
            }
            .into(),
            controls: controls(entry),
            facts: facts(entry),
            unknown: unknown(entry),
            expires_on: entry.expiration().map(|d| d.as_str().to_owned()),
            used_by_workflows,
        });
    }
    Ok(OrgView {
        models,
        default: default_model(&choice),
        hidden,
    })
}

/// A platform model an org may call, or why not: `Ok(None)` when no listed model has this id
/// (the caller looks further), 410 when it is retired or expired, 404 when the org hides it.
pub(crate) fn usable(
    registry: &Registry,
    org: &OrgId,
    id: &str,
) -> Result<Option<Arc<CatalogRow>>, AppError> {
    if !id.contains('/') {
        return Ok(None);
    }
    let Some(row) = current(registry)? else {
        return Ok(None);
    };
    let Some(entry) = row.catalog.find(id) else {
        return Ok(None);
    };
    let today = today(registry);
    let (_, hidden) = org_choices(&registry.views, org)?;
    match catalog::usable_by(entry, &hidden, &today) {
        Ok(()) => {}
        Err(catalog::Unusable::Retired(reason)) => {
            let out = out_of_service(&row, entry, &today);
            return Err(AppError::Gone {
                code: "platform_model.retired",
                // The operator's reason, never the id as the request wrote it.
                message: format!(
                    "this platform model was retired: {reason}; workflows using it cannot generate LLM responses until repointed to an active model"
                ),
                at: out.as_ref().map(|o| o.at.clone()).unwrap_or_default(),
                by: out.map(|o| o.by).unwrap_or_default(),
            });
        }
        Err(catalog::Unusable::Hidden) => {
            return Err(AppError::NotFound {
                code: "platform_model.hidden",
                message: "an org admin has hidden this platform model for this org; use another model, or ask them to show it again".into(),
            });
        }
    }
    Ok(Some(row))
}

/// The status of a platform model a workflow references, for this org.
pub(crate) fn reference_status(
    registry: &Registry,
    org: &OrgId,
    id: &str,
) -> Result<&'static str, AppError> {
    match usable(registry, org, id) {
        Ok(Some(_)) => Ok("active"),
        Ok(None) => Ok("unknown"),
        Err(AppError::Gone { .. }) => Ok("retired"),
        Err(AppError::NotFound { .. }) => Ok("hidden"),
        Err(other) => Err(other),
    }
}

fn platform_fact(row: Option<&CatalogRow>, id: &str, today: &Day) -> PlatformModelFact {
    match row.and_then(|row| row.catalog.find(id)) {
        None => PlatformModelFact::NotListed,
        Some(entry) if entry.retired(today).is_some() => PlatformModelFact::Retired,
        Some(_) => PlatformModelFact::Usable,
    }
}

fn org_rejection(refused: Refused<org::Rejection>) -> AppError {
    match refused {
        Refused::Rejected(org::Rejection::PlatformModelNotListed) => not_listed(),
        Refused::Rejected(org::Rejection::PlatformModelRetired) => AppError::Conflict {
            code: "platform_model.retired",
            message: "the model is retired; choose an active one".into(),
            current_version: None,
        },
        Refused::Rejected(org::Rejection::NotFound) => AppError::NotFound {
            code: "org.not_found",
            message: "no such org".into(),
        },
        Refused::Rejected(other) => {
            AppError::internal(format!("an org choice was refused: {other}"))
        }
        Refused::Conflict => AppError::Conflict {
            code: "org.conflict",
            message: "the org changed at the same time; retry".into(),
            current_version: None,
        },
        Refused::Failed(error) => error,
    }
}

pub(super) async fn org_command(
    registry: &Registry,
    ctx: &Ctx,
    command: org::Command,
) -> Result<u64, AppError> {
    crate::orgs::execute_on_org(registry, ctx, |_| Ok(command.clone()))
        .await
        .map(Done::position)
        .map_err(org_rejection)
}

/// The org's choices among platform models.
pub fn choices(registry: &Registry, ctx: &Ctx) -> Result<Answer<api::PlatformChoices>, AppError> {
    choices_at(registry, ctx, registry.views.position())
}

fn choices_at(
    registry: &Registry,
    ctx: &Ctx,
    position: u64,
) -> Result<Answer<api::PlatformChoices>, AppError> {
    let (org_default, hidden) = org_choices(&registry.views, &ctx.org)?;
    let view = org_view(registry, ctx)?;
    Ok(Answer {
        value: api::PlatformChoices {
            org_default,
            hidden_models: hidden,
            default_model: view.default,
        },
        position,
    })
}

/// An org admin chooses the org's default platform model (`None`: the platform's again).
pub async fn choose_default(
    registry: &Registry,
    ctx: &Ctx,
    request: api::ChooseDefault,
) -> Result<Answer<api::PlatformChoices>, AppError> {
    ctx.require_admin()?;
    let row = current(registry)?;
    let today = today(registry);
    let model = request.model.map(|id| {
        let fact = platform_fact(row.as_deref(), &id, &today);
        (id, fact)
    });
    let position = org_command(registry, ctx, org::Command::ChooseDefault { model }).await?;
    choices_at(registry, ctx, position)
}

/// An org admin hides exactly these platform models from the org.
pub async fn hide(
    registry: &Registry,
    ctx: &Ctx,
    request: api::HideModels,
) -> Result<Answer<api::PlatformChoices>, AppError> {
    ctx.require_admin()?;
    let row = current(registry)?;
    let today = today(registry);
    let models = request
        .models
        .into_iter()
        .map(|id| {
            let fact = platform_fact(row.as_deref(), &id, &today);
            (id, fact)
        })
        .collect();
    let position = org_command(registry, ctx, org::Command::HideModels { models }).await?;
    choices_at(registry, ctx, position)
}
