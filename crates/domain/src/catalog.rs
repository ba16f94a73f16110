//! The platform catalog shipped in `schemas/catalog/platform.json`: models the org can use
//! through the platform's OpenRouter key, with unknown facts kept unknown.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::values::Cost;

const PLATFORM_JSON: &str = include_str!("../../../schemas/catalog/platform.json");

/// A capability flag the catalog may not know: `None` is "unknown", never "no".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownCapabilities {
    pub json_mode: Option<bool>,
    pub vision: Option<bool>,
    pub tool_use: Option<bool>,
    /// `"effort"` or `"max_tokens"` when known to reason; `None` when unknown.
    pub reasoning: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformModel {
    pub id: String,
    pub display_name: String,
    pub provider: String,
    pub capabilities: KnownCapabilities,
    pub max_tokens: Option<u32>,
    pub input_cost_per_token: Option<Cost>,
    pub output_cost_per_token: Option<Cost>,
}

#[derive(Debug, Deserialize)]
struct CatalogFile {
    default: String,
    models: Vec<PlatformModel>,
}

struct Catalog {
    default: String,
    models: Vec<PlatformModel>,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        // The file is compiled in and checked by a test, so a parse failure is a build defect;
        // an empty catalog keeps the server up if it ever happens.
        let file: CatalogFile = serde_json::from_str(PLATFORM_JSON).unwrap_or(CatalogFile {
            default: String::new(),
            models: Vec::new(),
        });
        Catalog {
            default: file.default,
            models: file.models,
        }
    })
}

/// Every platform model, in catalog order.
pub fn platform_models() -> &'static [PlatformModel] {
    &catalog().models
}

/// The id of the default platform model.
pub fn default_model_id() -> &'static str {
    &catalog().default
}

pub fn find(id: &str) -> Option<&'static PlatformModel> {
    platform_models().iter().find(|m| m.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_parses_and_holds_the_default() {
        let file: CatalogFile = serde_json::from_str(PLATFORM_JSON).expect("platform.json parses");
        assert_eq!(file.models.len(), 10);
        assert_eq!(default_model_id(), "google/gemini-3.1-pro-preview");
        assert!(find(default_model_id()).is_some());
        assert_eq!(find("x-ai/grok-4.3").unwrap().display_name, "Grok 4.3");
    }

    #[test]
    fn unknown_prices_stay_unknown() {
        // No primary source gives these prices; the catalog must not invent them.
        assert!(
            platform_models()
                .iter()
                .all(|m| m.input_cost_per_token.is_none())
        );
    }
}
