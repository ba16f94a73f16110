//! Usage records as a pipeline's runtime reports them (tokens, never text), and the spend
//! summary computed from them.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::schema;

/// `POST /v1/usage`: a batch of usage records. Unknown fields are refused, so a prompt or a
/// response sent by mistake is never stored.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageBatch {
    #[schema(max_items = 250)]
    pub records: Vec<UsageRecord>,
}

/// One LLM call's usage.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRecord {
    /// The record's id: a record sent again (in this batch or another) is counted once.
    #[schema(value_type = schema::UsageRecordId)]
    pub id: String,
    /// A custom model's slug, or a platform model id such as google/gemini-3.1-pro-preview.
    pub model: String,
    #[schema(value_type = schema::WorkflowId)]
    pub workflow: String,
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub input_tokens: i64,
    #[schema(minimum = 0, maximum = 100_000_000)]
    pub output_tokens: i64,
    /// As the provider said it: `stop`, `length`, `max_tokens`, `MAX_TOKENS`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64)]
    pub finish_reason: Option<String>,
    /// The names of the tool calls a truncation cut (names only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 64)]
    pub truncated_tool_calls: Vec<String>,
    /// The tool-loop round of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 100_000)]
    pub round: Option<i64>,
    /// When the call was made (RFC 3339).
    #[schema(format = DateTime)]
    pub called_at: String,
}

/// What a batch did: records new to the registry, and records it had already.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageReceipt {
    pub recorded: u64,
    /// Records whose id the registry had already (counted once).
    pub duplicates: u64,
}

/// `GET /v1/usage/summary`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageSummaryQuery {
    /// Calls made at or after this RFC 3339 time (default: the beginning).
    #[param(format = DateTime)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Calls made before this RFC 3339 time (default: no end).
    #[param(format = DateTime)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `model` (default), `workflow` or `day` (UTC).
    #[param(pattern = "^(model|workflow|day)$")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
}

/// Tokens and spend of the calls in a time range, grouped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageSummary {
    /// `model`, `workflow` or `day`.
    pub group_by: String,
    #[schema(format = DateTime)]
    pub from: Option<String>,
    #[schema(format = DateTime)]
    pub to: Option<String>,
    /// One group per model, workflow or day, in key order.
    pub groups: Vec<UsageGroup>,
    /// Every call of the range.
    pub total: UsageGroup,
}

/// The tokens and spend of one group. Each call is priced at the costs per token its model
/// had when the call was recorded (a later price edit does not rewrite past spend).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageGroup {
    /// The model (slug or platform id), the workflow id, or the day (`YYYY-MM-DD`, UTC).
    pub key: String,
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The spend of the priced calls, exact; `null` when no call could be priced (never 0
    /// for unknown prices).
    #[schema(value_type = Option<schema::Usd>)]
    pub spend: Option<String>,
    /// Some calls used a model with no known price for a side they used: their tokens are
    /// counted, their spend is not in `spend`.
    pub unpriced: bool,
    pub unpriced_calls: u64,
    /// Calls cut by their output limit (finish reason `length`/`max_tokens`, or a cut tool
    /// call).
    pub truncated_calls: u64,
}

/// The reply to usage records sent over NATS (in NATS mode) as a request on
/// `usage.<org>.<model>` (a `UsageBatch` of that model's records): `ok` with the receipt and
/// the log position, or the problem the HTTP API would answer (its fields inline).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageReply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<UsageReceipt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<crate::Problem>,
}
