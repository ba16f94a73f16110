//! Test Connection: a draft (or a saved model) to try against its provider, and the outcome.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{AddModel, CredentialInput, schema};

/// `POST /v1/connection-tests`: a draft as the Add form holds it.
#[derive(Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftTest {
    #[schema(value_type = schema::Provider)]
    pub provider: String,
    pub provider_model_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialInput>,
    #[schema(value_type = Option<schema::CredentialId>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
}

impl DraftTest {
    /// The test of the draft an add carries: the fields the receipt binds, as they are (its
    /// secret copied). The add's test must be of exactly this draft.
    pub fn of(add: &AddModel) -> Self {
        Self {
            provider: add.provider.clone().unwrap_or_default(),
            provider_model_id: add.provider_model_id.clone().unwrap_or_default(),
            endpoint_url: add.endpoint_url.clone(),
            region: add.region.clone(),
            credential: add.credential.as_ref().map(CredentialInput::duplicate),
            credential_id: add.credential_id.clone(),
        }
    }
}

/// `POST /v1/models/{slug}/connection-tests`: a blank credential means the stored one.
#[derive(Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelTest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialInput>,
}

/// `GET /v1/connection-tests/{id}?wait=N`.
#[derive(Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Seconds to hold the answer until a pending test completes (at most 30).
    #[param(minimum = 0, maximum = 30)]
    pub wait: Option<u64>,
}

/// What a test found, redacted: never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TestResult {
    #[schema(value_type = schema::OutcomeClass)]
    pub class: String,
    pub passed: bool,
    /// One line saying how to fix it.
    pub hint: String,
    pub retry_after_ms: Option<u64>,
    pub upstream_status: Option<u16>,
    /// The provider's message, redacted.
    pub upstream_message: Option<String>,
    pub latency_ms: u64,
    /// Known prices for the model, suggested where the draft left costs blank.
    #[schema(value_type = Option<schema::Decimal>)]
    pub suggested_input_cost_per_token: Option<String>,
    #[schema(value_type = Option<schema::Decimal>)]
    pub suggested_output_cost_per_token: Option<String>,
}

/// A connection test and, once the worker ran it, its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConnectionTest {
    pub id: String,
    /// `pending` or `completed`.
    #[schema(value_type = String, pattern = "^(pending|completed)$")]
    pub status: String,
    #[schema(value_type = schema::Provider)]
    pub provider: String,
    pub provider_model_id: String,
    /// The saved model under test, if it is one.
    #[schema(value_type = Option<schema::Slug>)]
    pub model: Option<String>,
    pub result: Option<TestResult>,
    #[schema(format = DateTime)]
    pub requested_at: String,
    pub requested_by: String,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    /// For a passing test of a draft: until when it lets that draft be added.
    #[schema(format = DateTime)]
    pub receipt_expires_at: Option<String>,
    /// Events recorded for this test: 1 while pending, 2 once completed (never more).
    pub version: u64,
}
