//! The platform catalog as clients read it (its models with facts and their provenance,
//! proposals, history), the diff of a sync, and an org's choices among platform models.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::models::{Controls, KnownCapabilities};
use crate::schema;

/// One fact about a platform model and where it comes from. A fact no source gave is not
/// listed here but named in `unknown`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Fact {
    /// e.g. `tool_use`, `input_cost_per_token`, `max_completion_tokens`, `expiration_date`.
    pub fact: String,
    /// As text: `true`, `effort`, `none` (does not reason), `128000`, `0.000003`, `2026-06-01`.
    pub value: String,
    /// Who said so: the shipped catalog, a sync's source, or `operator override`.
    pub source: String,
    /// The day it was recorded (UTC).
    #[schema(format = Date)]
    pub as_of: String,
    /// Set when an operator's override gives the value: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
    /// Under an override: what the syncs say (`null`: unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_value: Option<String>,
}

/// A listed platform model with everything the catalog knows of it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CatalogModel {
    /// The OpenRouter id, e.g. google/gemini-3.1-pro-preview.
    pub id: String,
    pub display_name: String,
    /// `active` or `retired`.
    pub status: String,
    /// Why it is retired, when, and by whom (an upstream expiration says so).
    pub retired_reason: Option<String>,
    #[schema(format = DateTime)]
    pub retired_at: Option<String>,
    pub retired_by: Option<String>,
    /// The platform-wide default.
    pub default: bool,
    /// Set when the last sync did not find the model upstream: the day it went missing.
    #[schema(format = Date)]
    pub missing_upstream_since: Option<String>,
    pub facts: Vec<Fact>,
    /// Facts no source gave: unknown, never guessed.
    pub unknown: Vec<String>,
    /// The upstream's announced expiration date, if any.
    #[schema(format = Date)]
    pub expires_on: Option<String>,
}

/// A model a sync found upstream that is not listed: `modelreg catalog add ID` lists it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ProposedModel {
    pub id: String,
    pub display_name: String,
    pub facts: Vec<Fact>,
}

/// One change of the catalog: which event, who recorded it, when.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CatalogChange {
    /// The change's log position.
    pub seq: u64,
    #[schema(format = DateTime)]
    pub at: String,
    pub by: String,
    /// e.g. `catalog.synced`, `catalog.retired`.
    pub event: String,
    pub summary: String,
}

/// `GET /v1/catalog`: the platform catalog.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Catalog {
    /// The platform-wide default model.
    pub default: String,
    pub models: Vec<CatalogModel>,
    pub proposed: Vec<ProposedModel>,
    /// Every change, oldest first.
    pub history: Vec<CatalogChange>,
}

/// One fact a sync changes (`null`: unknown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FactChange {
    pub model: String,
    pub fact: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// An operator's override keeps the model's value as it is.
    pub overridden: bool,
}

/// What a sync finds: shown before it is applied, and what it recorded when applied.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CatalogDiff {
    pub source: String,
    #[schema(format = Date)]
    pub as_of: String,
    pub changed: Vec<FactChange>,
    /// New upstream models, proposed (not listed).
    pub proposed: Vec<String>,
    /// New upstream models of an auto-listed vendor: listed by this sync.
    pub listed: Vec<String>,
    /// Listed models the upstream no longer lists.
    pub disappeared: Vec<String>,
    /// Listed models missing before that are back.
    pub reappeared: Vec<String>,
    /// Listed models whose upstream expiration date came: retired by this sync.
    pub expired: Vec<String>,
    /// Nothing new: nothing to record.
    pub unchanged: bool,
    /// Whether this sync was recorded (`--apply`).
    pub recorded: bool,
}

/// `PUT /v1/org/default-model`: the org's own default platform model.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChooseDefault {
    /// A listed, active platform model id; `null` goes back to the platform's default.
    pub model: Option<String>,
}

/// `PUT /v1/org/hidden-models`: the platform models the org must not use, all of them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HideModels {
    /// Platform model ids; an empty list shows every model again.
    pub models: Vec<String>,
}

/// The default model an org gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DefaultModel {
    /// A platform model id.
    pub model: String,
    /// `org` when the org's own choice applies, `platform` otherwise.
    pub chosen_by: String,
    /// Why the org's choice does not apply (retired, hidden, no longer listed).
    pub note: Option<String>,
}

/// An org's choices among platform models.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PlatformChoices {
    /// The org's own default, if it chose one (it may not apply: see `default_model`).
    pub org_default: Option<String>,
    pub hidden_models: Vec<String>,
    pub default_model: DefaultModel,
}

/// A platform model as an org's model list shows it (`GET /v1/models`). `null` means unknown.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct PlatformModel {
    /// Always `platform`.
    #[schema(value_type = String, pattern = "^platform$")]
    pub kind: String,
    /// The OpenRouter id, e.g. google/gemini-3.1-pro-preview.
    pub id: String,
    pub display_name: String,
    pub provider: String,
    /// The org's default model (its own choice, or the platform's).
    pub default: bool,
    pub capabilities: KnownCapabilities,
    /// The most output tokens a call may ask for (the upstream's max completion tokens).
    pub max_tokens: Option<u32>,
    #[schema(value_type = Option<schema::Decimal>)]
    pub input_cost_per_token: Option<String>,
    #[schema(value_type = Option<schema::Decimal>)]
    pub output_cost_per_token: Option<String>,
    /// `active` or `retired`.
    pub status: String,
    /// Which Pipeline Builder controls the catalog's facts enable.
    #[serde(default)]
    pub controls: Controls,
    /// Every known fact with its source and date.
    #[serde(default)]
    pub facts: Vec<Fact>,
    /// Facts no source gave: unknown, never guessed.
    #[serde(default)]
    pub unknown: Vec<String>,
    /// The upstream's announced expiration date, if any.
    #[serde(default)]
    #[schema(format = Date)]
    pub expires_on: Option<String>,
    /// With an expiration date: the org's active workflows that still use the model.
    #[serde(default)]
    pub used_by_workflows: Vec<String>,
}
