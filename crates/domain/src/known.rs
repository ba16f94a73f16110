//! What is known about provider models from the table shipped in
//! `schemas/pricing/pricing.json` (a LiteLLM snapshot; source and date in the file): prices
//! and documented output ceilings. Unknown stays unknown: never zero, never a guess.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::provider::{Provider, ProviderModelId};
use crate::values::Cost;

const TABLE_JSON: &str = include_str!("../../../schemas/pricing/pricing.json");

/// One row of the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownModel {
    pub input_cost_per_token: Option<Cost>,
    pub output_cost_per_token: Option<Cost>,
    /// The most output tokens the provider documents for the model.
    pub max_output_tokens: Option<u32>,
    pub supports_reasoning: bool,
}

#[derive(Deserialize)]
struct File {
    models: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    key: String,
    input_cost_per_token: Option<String>,
    output_cost_per_token: Option<String>,
    max_output_tokens: Option<u32>,
    #[serde(default)]
    supports_reasoning: bool,
}

fn table() -> &'static BTreeMap<String, KnownModel> {
    static TABLE: OnceLock<BTreeMap<String, KnownModel>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // Compiled in and checked by a test; an empty table (nothing known) is the safe
        // answer should it ever fail to parse.
        let Ok(file) = serde_json::from_str::<File>(TABLE_JSON) else {
            return BTreeMap::new();
        };
        let cost = |raw: Option<&String>| raw.and_then(|raw| Cost::parse("cost", raw).ok());
        file.models
            .iter()
            .map(|row| {
                let known = KnownModel {
                    input_cost_per_token: cost(row.input_cost_per_token.as_ref()),
                    output_cost_per_token: cost(row.output_cost_per_token.as_ref()),
                    max_output_tokens: row.max_output_tokens,
                    supports_reasoning: row.supports_reasoning,
                };
                (row.key.clone(), known)
            })
            .collect()
    })
}

/// The table key of a provider's model id, as LiteLLM names it; `None` where the snapshot has
/// no keys for the provider.
fn key(provider: Provider, id: &str) -> Option<String> {
    match provider {
        Provider::Openai | Provider::Anthropic | Provider::Bedrock => Some(id.to_owned()),
        Provider::Gemini => Some(format!(
            "gemini/{}",
            id.strip_prefix("models/").unwrap_or(id)
        )),
        Provider::Fireworks => Some(format!("fireworks_ai/{id}")),
        Provider::Together => Some(format!("together_ai/{id}")),
        Provider::Openrouter | Provider::Huggingface | Provider::OpenaiCompatible => None,
    }
}

/// What the table knows about a provider's model, if anything.
pub fn lookup(provider: Provider, id: &ProviderModelId) -> Option<&'static KnownModel> {
    table().get(&key(provider, id.as_str())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_knows_ceilings() {
        let file: File = serde_json::from_str(TABLE_JSON).expect("pricing.json parses");
        assert_eq!(table().len(), file.models.len());
        let gpt5 = lookup(
            Provider::Openai,
            &ProviderModelId::parse(Provider::Openai, "gpt-5").unwrap(),
        )
        .unwrap();
        assert_eq!(gpt5.max_output_tokens, Some(128_000));
        assert!(gpt5.supports_reasoning);
        assert!(
            lookup(
                Provider::Openai,
                &ProviderModelId::parse(Provider::Openai, "gpt-9").unwrap()
            )
            .is_none()
        );
    }
}
