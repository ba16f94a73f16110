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
    if let Some(platform) = catalog::find(model) {
        let caps = &platform.capabilities;
        let mut unknown = Vec::new();
        let mut refused = Vec::new();
        for (feature, want, known) in [
            ("tools", wanted.tools, caps.tool_use),
            ("json_mode", wanted.json_mode, caps.json_mode),
            ("image_input", wanted.image_input, caps.vision),
        ] {
            match (want, known) {
                (false, _) | (true, Some(true)) => {}
                (true, None) => unknown.push(feature.to_owned()),
                (true, Some(false)) => refused.push(api::Refusal {
                    feature: feature.to_owned(),
                    reason: format!("{feature} is not supported by this model"),
                }),
            }
        }
        if (wanted.reasoning_effort || wanted.reasoning_budget) && caps.reasoning.is_none() {
            unknown.push("reasoning".to_owned());
        }
        if wanted.max_tokens.is_some() && platform.max_tokens.is_none() {
            unknown.push("max_tokens".to_owned());
        }
        let allowed = refused.is_empty() && unknown.is_empty();
        return Ok(Answer {
            value: api::CheckAnswer {
                model: model.to_owned(),
                allowed,
                refused,
                unknown,
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
