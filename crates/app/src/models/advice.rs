//! Advice on a draft's max tokens while it is typed (the console's field beside the value):
//! the guidance that holds for every model, and `domain::advice`'s warnings for the draft's
//! provider model, capabilities and value. Advice refuses nothing.

use domain::advice;
use domain::provider::{Provider, ProviderModelId};

use crate::{AppError, parse};

/// The guidance beside a max tokens field, whatever the value.
pub const MAX_TOKENS_GUIDANCE: [&str; 2] = advice::MAX_TOKENS_GUIDANCE;

/// The warnings for a draft's max tokens, from the fields an add or an edit sends (only the
/// provider, its model id, max tokens and capabilities are read). A provider or model id
/// that does not parse yet only means no documented ceiling is known; a max tokens that does
/// not parse is refused as the add would refuse it, so the field can say why.
pub fn max_tokens_advice(draft: api::AddModel) -> Result<Vec<api::Warning>, AppError> {
    let Some(raw) = &draft.max_tokens else {
        return Ok(Vec::new());
    };
    let max_tokens = parse::max_tokens(raw).map_err(AppError::invalid)?;
    let capabilities = parse::capabilities(
        draft.capabilities.unwrap_or_default(),
        domain::values::Capabilities::default(),
    )
    .map_err(AppError::invalid)?;
    let provider = draft
        .provider
        .as_deref()
        .and_then(|raw| Provider::parse(raw).ok());
    let model_id = match (provider, draft.provider_model_id.as_deref()) {
        (Some(provider), Some(raw)) => ProviderModelId::parse(provider, raw).ok(),
        _ => None,
    };
    let known = match (provider, &model_id) {
        (Some(provider), Some(id)) => domain::known::lookup(provider, id),
        _ => None,
    };
    let warnings = advice::warnings(&capabilities, max_tokens.get(), known);
    Ok(crate::present::advice(warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(
        max_tokens: serde_json::Value,
        tool_use: bool,
        reasoning: Option<&str>,
    ) -> api::AddModel {
        api::AddModel {
            provider: Some("anthropic".into()),
            provider_model_id: Some("claude-sonnet-4-5".into()),
            max_tokens: Some(max_tokens),
            capabilities: Some(api::CapabilitiesInput {
                tool_use: Some(tool_use),
                reasoning: Some(reasoning.map(str::to_owned)),
                ..api::CapabilitiesInput::default()
            }),
            ..api::AddModel::default()
        }
    }

    fn codes(warnings: Vec<api::Warning>) -> Vec<String> {
        warnings.into_iter().map(|w| w.code).collect()
    }

    #[test]
    fn the_advice_follows_the_value_and_the_switches() {
        // Tool use below 16,000, then enough
        let low = max_tokens_advice(draft(8000.into(), true, None)).expect("advice");
        assert_eq!(codes(low), ["max_tokens.low_for_tool_use"]);
        let enough = max_tokens_advice(draft(64000.into(), true, None)).expect("advice");
        assert!(enough.is_empty(), "{:?}", codes(enough));
        // Reasoning below the documented ceiling of a known model
        let starved =
            max_tokens_advice(draft(16000.into(), false, Some("effort"))).expect("advice");
        assert_eq!(codes(starved), ["max_tokens.below_reasoning_ceiling"]);
        // Nothing to say without a value; a value that is no number is refused as an add's
        let none = max_tokens_advice(api::AddModel::default()).expect("advice");
        assert!(none.is_empty());
        let refused = max_tokens_advice(draft("lots".into(), false, None));
        assert!(refused.is_err());
    }
}
