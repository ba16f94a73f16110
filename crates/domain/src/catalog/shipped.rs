//! The catalog shipped with this release, which seeds it.

use super::*;

const PLATFORM_JSON: &str = include_str!("../../../../schemas/catalog/platform.json");

/// The shipped catalog file, as the seed takes it.
pub struct Shipped {
    pub default: String,
    pub models: Vec<Upstream>,
}

#[derive(Debug, Deserialize)]
struct CatalogFile {
    default: String,
    models: Vec<FileModel>,
}

#[derive(Debug, Deserialize)]
struct FileModel {
    id: String,
    display_name: String,
    capabilities: FileCapabilities,
    max_tokens: Option<u32>,
    input_cost_per_token: Option<Cost>,
    output_cost_per_token: Option<Cost>,
}

/// `null` is unknown, never "no".
#[derive(Debug, Deserialize)]
struct FileCapabilities {
    json_mode: Option<bool>,
    vision: Option<bool>,
    tool_use: Option<bool>,
    reasoning: Option<String>,
}

/// The catalog shipped with this release (compiled in and checked by a test, so a parse
/// failure is a build defect; an empty catalog keeps the server up if it ever happens).
pub fn shipped() -> Shipped {
    let Ok(file) = serde_json::from_str::<CatalogFile>(PLATFORM_JSON) else {
        return Shipped {
            default: String::new(),
            models: Vec::new(),
        };
    };
    let models = file
        .models
        .into_iter()
        .map(|m| {
            let mut facts = BTreeMap::new();
            let caps = m.capabilities;
            for (name, flag) in [
                (FactName::JsonMode, caps.json_mode),
                (FactName::Vision, caps.vision),
                (FactName::ToolUse, caps.tool_use),
            ] {
                if let Some(flag) = flag {
                    facts.insert(name, FactValue::Flag(flag));
                }
            }
            if let Some(param) = caps.reasoning.and_then(|r| ReasoningParam::parse(&r).ok()) {
                facts.insert(FactName::Reasoning, FactValue::Reasoning(Some(param)));
            }
            if let Some(tokens) = m.max_tokens {
                facts.insert(FactName::MaxCompletionTokens, FactValue::Tokens(tokens));
            }
            if let Some(cost) = m.input_cost_per_token {
                facts.insert(FactName::InputCost, FactValue::Cost(cost));
            }
            if let Some(cost) = m.output_cost_per_token {
                facts.insert(FactName::OutputCost, FactValue::Cost(cost));
            }
            Upstream {
                id: m.id,
                name: m.display_name,
                facts,
            }
        })
        .collect();
    Shipped {
        default: file.default,
        models,
    }
}
