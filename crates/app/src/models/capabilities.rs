//! Capability gating: which of the features a pipeline step wants a model serves, with a
//! reason for each refusal. Platform capabilities the catalog does not know are reported as
//! unknown, never guessed.

use domain::catalog;
use domain::model::Status;
use domain::workflow::{self, Wanted};

use crate::{Answer, AppError, Ctx, Registry, present};

pub fn check(
    registry: &Registry,
    ctx: &Ctx,
    model: &str,
    request: api::CheckModel,
) -> Result<Answer<api::CheckAnswer>, AppError> {
    let position = registry.views.position();
    let wanted = Wanted {
        tools: request.tools,
        json_mode: request.json_mode,
        image_input: request.image_input,
        reasoning_effort: request.reasoning_effort,
        reasoning_budget: request.reasoning_budget,
        max_tokens: request.max_tokens,
    };
    if let Some(row) = crate::catalog::usable(registry, &ctx.org, model)?
        && let Some(platform) = row.catalog.find(model)
    {
        let (refused, unknown) = catalog::check(platform, &wanted);
        let allowed = refused.is_empty() && unknown.is_empty();
        return Ok(Answer {
            value: api::CheckAnswer {
                model: model.to_owned(),
                allowed,
                refused: refused.into_iter().map(present::refusal).collect(),
                unknown: unknown.into_iter().map(str::to_owned).collect(),
            },
            position,
        });
    }
    let row = super::row(registry, ctx, model)?;
    if row.model.status == Status::Deactivated {
        return Err(super::gone(&row));
    }
    let refused: Vec<api::Refusal> =
        workflow::refusals(&row.model.capabilities, row.model.max_tokens.get(), &wanted)
            .into_iter()
            .map(present::refusal)
            .collect();
    Ok(Answer {
        value: api::CheckAnswer {
            model: model.to_owned(),
            allowed: refused.is_empty(),
            refused,
            unknown: Vec::new(),
        },
        position,
    })
}
