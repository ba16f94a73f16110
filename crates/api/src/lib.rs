//! The wire contract of modelreg: every request and response of the HTTP API (and of the NATS
//! subjects that speak the same shapes), shared by the server, the CLI, the workers' NATS API
//! and the tests. The OpenAPI document is generated from these types and the server's routes.
//!
//! Architecture invariant: no rules live here. Requests are loose shapes (strings, raw JSON
//! numbers) that `app` parses into domain types, collecting every problem at once; responses
//! are plain data that `app` builds from the views. Vocabularies (providers, roles, patterns)
//! come from `domain`, so the document and the rules name one list.

mod audit;
mod catalog;
mod connection_tests;
mod credentials;
mod models;
mod problem;
mod providers;
mod resolve;
pub mod schema;
mod secret;
mod tokens;
mod usage;
mod workflows;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use audit::{
    AsOfQuery, AuditActor, AuditAggregate, AuditChange, AuditEntry, AuditHead, AuditPage,
    AuditQuery, CredentialsQuery, HistoryQuery,
};
pub use catalog::{
    Catalog, CatalogChange, CatalogDiff, CatalogModel, ChooseDefault, DefaultModel, Fact,
    FactChange, HideModels, PlatformChoices, PlatformModel, ProposedModel,
};
pub use connection_tests::{ConnectionTest, DraftTest, ModelTest, TestResult, WaitQuery};
pub use credentials::{
    CreateCredential, Credential, CredentialInput, CredentialMatch, CredentialSummary,
    CredentialTest, CredentialVersion, MatchCredential, RenameCredential, RetestFailure,
    RotateCredential, Rotation,
};
pub use models::{
    AddModel, AddedModel, Capabilities, CapabilitiesInput, CheckedDraft, ConfirmQuery, Controls,
    DryRunQuery, EditModel, KnownCapabilities, Model, ModelList, ModelsQuery, NULL_REFUSED,
    Recommendation, RecommendedEdit, TruncatedRound, TruncatedToolCall, TruncatingWorkflow,
    Truncations, Warning,
};
pub use problem::{FieldProblem, Problem};
pub use providers::{
    CredentialAlternative, ModelIdForm, ProviderField, ProviderInfo, ProviderList,
};
pub use resolve::{
    LiteLlm, LiteLlmConfig, LiteLlmDeployment, LiteLlmKwargs, LiteLlmModelInfo, LiteLlmReasoning,
    PositionQuery, PositionScope, ResolveAnswer, ResolveQuery, Resolved, ResolvedCredential,
    ViewsPosition,
};
pub use secret::SecretField;
pub use tokens::{IssueToken, IssuedToken, Token};
pub use usage::{
    UsageBatch, UsageGroup, UsageReceipt, UsageRecord, UsageReply, UsageSummary, UsageSummaryQuery,
};
pub use workflows::{
    BrokenQuery, CheckAnswer, CheckModel, Dependent, Features, ModelReferences, Notice,
    PutWorkflow, Reference, Refusal, ReportReply, Step, Workflow, WorkflowSummary,
};

/// An answer: the value's fields and the event-log `position` the answer reflects (also in
/// the `X-Modelreg-Position` header). Commands answer once the server's views reached the
/// position they appended (read your writes).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Positioned<T> {
    #[serde(flatten)]
    pub value: T,
    /// The event-log position the answer reflects.
    pub position: u64,
}

/// A list answer: its items and the event-log `position` it reflects.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
    /// With `limit`: the cursor of the next page (send it as `cursor`), absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// The event-log position the answer reflects.
    pub position: u64,
}

/// A page of a list, before the server adds its `position` (it answers [`Items`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Paged<T> {
    pub items: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Cursor paging of a list: `limit` items after `cursor`. With neither, the whole list in
/// one answer (as before paging existed).
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// How many items one page holds (1 to 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(max_length = 128)]
    pub cursor: Option<String>,
}
