//! Models: adding, editing and reading custom models, and the platform catalog's models.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::credentials::{CredentialInput, CredentialSummary};
use crate::schema;

/// `POST /v1/models`: a custom model to add.
///
/// Gated: `connection_test_id` must name a passing Test Connection of exactly this draft,
/// completed less than 15 minutes ago, or `test: true` runs that test first. Give the credential inline (`credential`) or a saved
/// one (`credential_id`); an inline secret equal to a saved credential of the org reuses it.
#[derive(Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddModel {
    /// The name people see; the slug is derived from it once and never changes.
    #[schema(value_type = String, required = true, max_length = 100, example = "Team GPT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[schema(value_type = schema::Provider, required = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The model id as the provider names it: Fireworks `accounts/<a>/models/<m>`,
    /// OpenRouter `<vendor>/<model>`, Bedrock a model or inference-profile id or an ARN.
    #[schema(value_type = String, required = true, example = "gpt-5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_model_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialInput>,
    /// A saved credential of the same provider, instead of `credential`.
    #[schema(value_type = Option<schema::CredentialId>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// The receipt: a passing Test Connection of this draft.
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_test_id: Option<String>,
    /// Instead of `connection_test_id`: run Test Connection on this draft first, wait for
    /// its outcome (at most 30 s), and add only if it passed. The answer carries the test;
    /// a failing one is refused as `connection_test.failed` with the test in the problem.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
    /// Base URL (openai_compatible) or Inference Endpoint URL (huggingface).
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// AWS region (bedrock), e.g. us-east-1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The most output tokens a call may ask for.
    #[schema(value_type = u32, required = true, minimum = 1, maximum = 2000000, example = 32000)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<CapabilitiesInput>,
    /// USD per input token, exact.
    #[schema(value_type = Option<schema::Decimal>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_cost_per_token: Option<Value>,
    /// USD per output token, exact.
    #[schema(value_type = Option<schema::Decimal>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_cost_per_token: Option<Value>,
}

/// `PATCH /v1/models/{slug}`: a partial edit.
///
/// An absent field stays as it is. `null` clears only the costs and `capabilities.reasoning`
/// (turns extended reasoning off); on any other field it is refused (`body.invalid_shape`),
/// since those have no "none". The secret changes only when a new `credential` is given.
#[derive(Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditModel {
    #[schema(value_type = Option<String>, max_length = 100)]
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_model_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub credential: Option<CredentialInput>,
    #[schema(value_type = Option<schema::CredentialId>)]
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub credential_id: Option<String>,
    #[schema(value_type = Option<String>)]
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_url: Option<String>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub region: Option<String>,
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 2000000)]
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_tokens: Option<Value>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub capabilities: Option<CapabilitiesInput>,
    /// A cost, or `null` to clear it.
    #[schema(value_type = Option<schema::Decimal>)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub input_cost_per_token: Option<Value>,
    /// A cost, or `null` to clear it.
    #[schema(value_type = Option<schema::Decimal>)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub output_cost_per_token: Option<Value>,
}

/// Capabilities as sent. An absent switch keeps the base (off when adding, the current value
/// when editing); the switches have no `null`, as "off" is `false`.
#[derive(Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesInput {
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub json_mode: Option<bool>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub vision: Option<bool>,
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub tool_use: Option<bool>,
    /// Absent: unchanged (off when adding); `null`: off; `effort` or `max_tokens`: on, with
    /// that parameter shape.
    #[schema(value_type = Option<schema::Reasoning>)]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub reasoning: Option<Option<String>>,
}

/// For a field that can be cleared: runs only when the field is there, so with
/// `#[serde(default)]` absent is `None` and present is `Some`, where an explicit `null` is kept
/// as `Value::Null` or an inner `None`. Plain `Option` reads both absent and `null` as `None`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// What a `null` on a field that cannot be cleared hears.
pub const NULL_REFUSED: &str =
    "null cannot clear this field; leave the field out to keep its value";

/// For a field that cannot be cleared: an explicit `null` is refused (serde's error names the
/// field), so it is never silently read as "leave unchanged".
fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<T>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(NULL_REFUSED)),
    }
}

/// `DELETE /v1/models/{slug}?confirm=true`.
#[derive(Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfirmQuery {
    /// Deactivate even though active workflows still reference the model.
    #[serde(default)]
    pub confirm: bool,
}

/// What a custom model can do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Capabilities {
    pub json_mode: bool,
    pub vision: bool,
    pub tool_use: bool,
    /// The reasoning parameter's shape, or `null` when extended reasoning is off.
    #[schema(value_type = Option<schema::Reasoning>)]
    pub reasoning: Option<String>,
}

/// Which Pipeline Builder controls to enable for a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Controls {
    pub tools: bool,
    pub json_mode: bool,
    pub image_input: bool,
    pub reasoning_effort: bool,
    pub reasoning_budget: bool,
}

/// Advice about a configuration, not an error (e.g. `max_tokens.low_for_tool_use` below
/// 16000 with tool use on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Warning {
    pub code: String,
    pub message: String,
}

/// A custom model.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Model {
    /// Always `custom`.
    #[schema(value_type = String, pattern = "^custom$")]
    pub kind: String,
    #[schema(value_type = schema::Slug)]
    pub slug: String,
    pub display_name: String,
    #[schema(value_type = schema::Provider)]
    pub provider: String,
    pub provider_model_id: String,
    pub credential: Option<CredentialSummary>,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub max_tokens: u32,
    pub capabilities: Capabilities,
    #[schema(value_type = Option<schema::Decimal>)]
    pub input_cost_per_token: Option<String>,
    #[schema(value_type = Option<schema::Decimal>)]
    pub output_cost_per_token: Option<String>,
    #[schema(value_type = schema::Status)]
    pub status: String,
    /// Events recorded for the model; `If-Match` takes it.
    pub version: u64,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub created_by: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub updated_by: String,
    #[schema(format = DateTime)]
    pub deactivated_at: Option<String>,
    pub deactivated_by: Option<String>,
    pub controls: Controls,
    pub warnings: Vec<Warning>,
    /// Calls of the model cut by their output limit, as runtimes reported them
    /// (`POST /v1/usage`); in the answer of `GET /v1/models/{slug}` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncations: Option<Truncations>,
    /// What the truncations call for, with the edit that applies it; in the answer of
    /// `GET /v1/models/{slug}` only, and only when a change applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<Recommendation>,
}

/// How many reported calls of a model were truncated (finish reason `length`/`max_tokens`,
/// or a tool call cut mid-argument), by the time of the call, and what the last 7 days'
/// truncated calls had in common. Names and counts only, never prompt or response text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Truncations {
    pub last_24h: u64,
    pub last_7d: u64,
    /// Truncated calls of the last 7 days per tool-loop round, by round.
    #[serde(default)]
    pub rounds: Vec<TruncatedRound>,
    /// The tool calls cut in the last 7 days, by name, most frequent first (at most 10).
    #[serde(default)]
    #[schema(max_items = 10)]
    pub tool_calls: Vec<TruncatedToolCall>,
    /// The workflows whose calls were truncated in the last 7 days, most first (at most 50).
    #[serde(default)]
    #[schema(max_items = 50)]
    pub workflows: Vec<TruncatingWorkflow>,
}

/// Truncated calls in one tool-loop round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TruncatedRound {
    pub round: u32,
    pub calls: u64,
}

/// A tool call cut mid-argument, by name, and how often.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TruncatedToolCall {
    pub name: String,
    pub calls: u64,
}

/// A workflow's truncated calls of a model over the last 7 days. It `keeps_truncating`
/// when at least 3 of them were truncated in those 7 days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TruncatingWorkflow {
    #[schema(value_type = schema::WorkflowId)]
    pub id: String,
    pub truncated_calls_7d: u64,
    pub keeps_truncating: bool,
}

/// A change the registry recommends, with the exact edit that makes it: send `edit` as the
/// body of `PATCH /v1/models/{slug}` (with `If-Match: <version>`) and it is applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Recommendation {
    /// Stable: `max_tokens.raise_for_truncations` (to 32000, the seed's guidance for
    /// multi-file tool use) or `max_tokens.raise_to_documented_ceiling` (the provider
    /// documents less than 32000 for the model).
    pub code: String,
    pub message: String,
    /// The `PATCH /v1/models/{slug}` body, e.g. `{"max_tokens": 32000}`.
    pub edit: RecommendedEdit,
}

/// The edit a recommendation makes, as `PATCH /v1/models/{slug}` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendedEdit {
    pub max_tokens: u32,
}

/// A capability flag the catalog may not know: `null` is "unknown", never "no".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KnownCapabilities {
    pub json_mode: Option<bool>,
    pub vision: Option<bool>,
    pub tool_use: Option<bool>,
    #[schema(value_type = Option<schema::Reasoning>)]
    pub reasoning: Option<String>,
}

/// Every model of the org, platform and custom, each group in a stable order.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    /// The platform models the org may use (those it hides are left out).
    pub platform: Vec<crate::PlatformModel>,
    pub custom: Vec<Model>,
    /// The org's default model: its own choice, or the platform's (with why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<crate::DefaultModel>,
    /// Platform models the org hides.
    #[serde(default)]
    pub hidden_platform: Vec<String>,
    /// With `limit`: the cursor of the next page, `null` on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// With `limit`, `q` or a filter: how many models match, on every page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching: Option<u64>,
}

/// `GET /v1/models`: a page of the org's models, searched and filtered on the server. With
/// none of these, every model in one answer (as before paging existed). Pages run through the
/// platform models first, then the custom ones in slug order.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ModelsQuery {
    /// A log position (e.g. `42`) or an RFC 3339 time: the models as they were then (no
    /// paging or filters with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// The most models on a page (1 to 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Words every match contains (case-insensitive), in its display name, slug or id, or
    /// provider model id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Only models of this provider (`openai`, `bedrock`, … or a platform model's vendor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Only models known to have this capability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, pattern = "^(json_mode|vision|tool_use|reasoning)$")]
    pub capability: Option<String>,
    /// Only models in this status (`active`, `deactivated`, `retired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only `platform` or only `custom` models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, pattern = "^(platform|custom)$")]
    pub kind: Option<String>,
}

impl ModelsQuery {
    /// Whether the query asks for a page or a subset rather than every model.
    pub fn pages_or_filters(&self) -> bool {
        self.limit.is_some()
            || self.cursor.is_some()
            || self.q.is_some()
            || self.provider.is_some()
            || self.capability.is_some()
            || self.status.is_some()
            || self.kind.is_some()
    }
}

/// `POST /v1/models?dry_run=true`.
#[derive(Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRunQuery {
    /// Check the draft only: every field but the credential and the receipt, with the slug
    /// it would get and the advice; nothing is tested or stored.
    #[serde(default)]
    pub dry_run: bool,
}

/// The answer to a dry run: the draft is valid as far as it can be without its secret.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckedDraft {
    /// The slug an add would get now (a later add may find it taken and take the next).
    #[schema(value_type = schema::Slug)]
    pub slug: String,
    pub warnings: Vec<Warning>,
}

/// The answer to an add.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AddedModel {
    pub model: Model,
    /// Set when the secret entered equals a saved credential, which the model now uses
    /// instead of a second copy.
    pub reused_credential: Option<CredentialSummary>,
    /// The connection test an add with `test: true` ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_test: Option<crate::ConnectionTest>,
}
