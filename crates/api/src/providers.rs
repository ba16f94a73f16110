//! Providers as a form presents them: `GET /v1/providers`, derived from `domain`'s
//! description of each provider (one description, no second copy here).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One input of a provider's form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProviderField {
    /// The request's field: `credential.<name>` for a credential's, else a field of the model.
    pub name: String,
    pub label: String,
    /// `secret` (masked, never shown again), `text`, `url`, `region` or `choice`.
    #[schema(pattern = "^(secret|text|url|region|choice)$")]
    pub kind: String,
    pub required: bool,
    pub placeholder: String,
    pub help: String,
}

/// One shape of credential a provider takes; where there are several (Bedrock's IAM key pair
/// or Bedrock API key), exactly one is given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CredentialAlternative {
    /// `api_key`, `aws_access_key` or `bedrock_api_key`.
    pub kind: String,
    pub label: String,
    pub fields: Vec<ProviderField>,
}

/// The documented form of a provider's model ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelIdForm {
    pub form: String,
    pub example: String,
}

/// A provider a custom model can use, and what its form asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProviderInfo {
    /// The request's `provider`.
    pub name: String,
    pub label: String,
    /// `false` where a model can work without a credential (an OpenAI-compatible server).
    pub credential_required: bool,
    /// The shapes of credential it takes, the usual one first.
    pub credential_alternatives: Vec<CredentialAlternative>,
    /// The endpoint input (a base URL, an Inference Endpoint URL, an AWS region), if any.
    pub endpoint: Option<ProviderField>,
    pub model_id: ModelIdForm,
}

/// `GET /v1/providers`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ProviderList {
    pub providers: Vec<ProviderInfo>,
}
