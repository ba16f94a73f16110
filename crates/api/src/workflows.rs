//! Workflows as the pipelines product reports them, the references they make, and the
//! capability check a pipeline step runs before using a model.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::schema;

/// `PUT /v1/workflows/{id}` and the `pipelines.<org>.workflows.<id>` NATS request.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutWorkflow {
    #[schema(max_length = 200)]
    pub name: String,
    pub active: bool,
    #[serde(default)]
    #[schema(max_items = 200)]
    pub steps: Vec<Step>,
}

/// One step of a workflow: the model it uses and what it asks of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A custom model's slug, or a platform model id such as google/gemini-3.1-pro-preview.
    pub model: String,
    #[serde(default)]
    pub features: Features,
}

/// What a pipeline step asks of its model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Features {
    #[serde(default)]
    pub tools: bool,
    #[serde(default)]
    pub json_output: bool,
    #[serde(default)]
    pub vision_input: bool,
    #[serde(default)]
    pub reasoning: bool,
}

/// `GET /v1/workflows?broken=true`, paged with `limit` and `cursor` (in id order).
#[derive(Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BrokenQuery {
    /// Only active workflows that reference a deactivated or unknown model.
    #[serde(default)]
    pub broken: bool,
    /// How many workflows one page holds (1 to 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(max_length = 128)]
    pub cursor: Option<String>,
}

/// One refused feature and why, in words a pipeline author can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Refusal {
    pub feature: String,
    pub reason: String,
}

/// Where a workflow's steps point, and what is wrong with it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Reference {
    pub model: String,
    /// `active`, `deactivated` or `unknown`.
    #[schema(value_type = String, pattern = "^(active|deactivated|unknown)$")]
    pub status: String,
    /// Features the steps use that the model lacks.
    pub warnings: Vec<Refusal>,
}

/// A deactivation of a referenced model this workflow was warned about.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Notice {
    pub model: String,
    #[schema(format = DateTime)]
    pub deactivated_at: String,
    pub deactivated_by: String,
    pub message: String,
}

/// A workflow with its references and notices.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Workflow {
    #[schema(value_type = schema::WorkflowId)]
    pub id: String,
    pub name: String,
    pub active: bool,
    pub steps: Vec<Step>,
    pub references: Vec<Reference>,
    /// True when an active workflow references a deactivated or unknown model.
    pub broken: bool,
    pub notices: Vec<Notice>,
    pub version: u64,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub updated_by: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowSummary {
    #[schema(value_type = schema::WorkflowId)]
    pub id: String,
    pub name: String,
}

/// Who references a model.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelReferences {
    pub model: String,
    pub active: Vec<Dependent>,
    pub inactive: Vec<Dependent>,
    /// With `limit`: the cursor of the next page (the referencing workflows in id order, each
    /// page split into active and inactive), absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A workflow that references a model, and how its calls of that model fared: it
/// `keeps_truncating` when at least 3 of its calls of the model were truncated (finish
/// reason `length`/`max_tokens`, or a tool call cut) in the last 7 days, as runtimes
/// reported them (`POST /v1/usage`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Dependent {
    #[schema(value_type = schema::WorkflowId)]
    pub id: String,
    pub name: String,
    /// Its calls of the model truncated in the last 7 days (by the time of the call).
    #[serde(default)]
    pub truncated_calls_7d: u64,
    #[serde(default)]
    pub keeps_truncating: bool,
}

/// `POST /v1/models/{model}/check`: the features a pipeline step wants.
#[derive(Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckModel {
    #[serde(default)]
    pub tools: bool,
    #[serde(default)]
    pub json_mode: bool,
    #[serde(default)]
    pub image_input: bool,
    #[serde(default)]
    pub reasoning_effort: bool,
    #[serde(default)]
    pub reasoning_budget: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
}

/// Which wanted features a model serves.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckAnswer {
    pub model: String,
    /// True when every wanted feature is available.
    pub allowed: bool,
    pub refused: Vec<Refusal>,
    /// Features the platform catalog cannot vouch for.
    pub unknown: Vec<String>,
}

/// The reply to a workflow report over NATS (`pipelines.<org>.workflows.<id>`): `ok` with the
/// log position of the report, or the problem, as the HTTP API would answer it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportReply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<crate::Problem>,
}
