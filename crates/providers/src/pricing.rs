//! The pricing table shipped in `schemas/pricing/pricing.json` (a LiteLLM snapshot, source and
//! date in the file) and the suggestion made from it when a model's costs are left blank.
//! Unknown stays unknown: a model not in the table gets no suggestion, never zero.

use domain::provider::{Provider, ProviderModelId};
use domain::values::Cost;

/// Where the suggested prices come from, for display next to them.
pub const PRICING_SOURCE: &str = "LiteLLM model_prices_and_context_window.json, litellm 1.110.2 snapshot (community-maintained; edit as needed)";

/// Suggested (input, output) cost per token for a model, when the table knows it. Either side
/// may be unknown on its own; a model the table does not list gives `None`.
pub fn suggest_pricing(
    provider: Provider,
    provider_model_id: &ProviderModelId,
) -> Option<(Option<Cost>, Option<Cost>)> {
    domain::known::lookup(provider, provider_model_id)
        .map(|known| (known.input_cost_per_token, known.output_cost_per_token))
        .filter(|(input, output)| input.is_some() || output.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggest(provider: Provider, id: &str) -> Option<(String, String)> {
        let id = ProviderModelId::parse(provider, id).expect("id");
        suggest_pricing(provider, &id).map(|(input, output)| {
            (
                input.map(|c| c.to_string()).unwrap_or_default(),
                output.map(|c| c.to_string()).unwrap_or_default(),
            )
        })
    }

    const PRICING_JSON: &str = include_str!("../../../schemas/pricing/pricing.json");

    #[test]
    fn every_row_parses_to_exact_costs() {
        let file: serde_json::Value =
            serde_json::from_str(PRICING_JSON).expect("pricing.json parses");
        let rows = file["models"].as_array().expect("models");
        assert_eq!(rows.len(), 19, "the rows of reference section 10");
        for row in rows {
            for side in ["input_cost_per_token", "output_cost_per_token"] {
                let raw = row[side]
                    .as_str()
                    .expect("both costs present in this snapshot");
                assert!(
                    !raw.contains('e'),
                    "{}: exact decimal, not {raw}",
                    row["key"]
                );
                Cost::parse("cost", raw).expect("valid cost");
            }
        }
    }

    #[test]
    fn known_models_get_their_prices_by_litellm_key() {
        let s = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(
            suggest(Provider::Openai, "gpt-4o-mini"),
            s("0.00000015", "0.0000006")
        );
        assert_eq!(
            suggest(Provider::Anthropic, "claude-haiku-4-5"),
            s("0.000001", "0.000005")
        );
        assert_eq!(
            suggest(Provider::Gemini, "gemini-2.5-flash"),
            s("0.0000003", "0.0000025")
        );
        assert_eq!(
            suggest(Provider::Gemini, "models/gemini-2.5-pro"),
            s("0.00000125", "0.00001")
        );
        assert_eq!(
            suggest(
                Provider::Bedrock,
                "us.anthropic.claude-sonnet-4-20250514-v1:0"
            ),
            s("0.000003", "0.000015")
        );
        assert_eq!(
            suggest(Provider::Fireworks, "accounts/fireworks/models/deepseek-v3"),
            s("0.0000009", "0.0000009")
        );
        assert_eq!(
            suggest(
                Provider::Together,
                "meta-llama/Llama-3.3-70B-Instruct-Turbo"
            ),
            s("0.00000104", "0.00000104")
        );
    }

    #[test]
    fn unknown_models_stay_unknown() {
        assert_eq!(suggest(Provider::Openai, "gpt-9-ultra"), None);
        // OpenRouter's id names a model the table knows, but the snapshot has no OpenRouter
        // prices, and OpenRouter's are its own.
        assert_eq!(suggest(Provider::Openrouter, "openai/gpt-4o"), None);
        assert_eq!(suggest(Provider::OpenaiCompatible, "gpt-4o"), None);
        assert_eq!(suggest(Provider::Huggingface, "gpt-4o"), None);
        // Keys are per provider: a bare id is not a Gemini key.
        assert_eq!(suggest(Provider::Gemini, "gpt-4o"), None);
    }
}
