//! Resolve: everything a pipeline runtime needs to call a model, the credential included.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Capabilities, SecretField, schema};

/// `GET /v1/resolve/{model}` (service tokens only). The answer carries the decrypted
/// credential, so it is sent with `Cache-Control: no-store` and never logged.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolved {
    /// `custom` or `platform`.
    #[schema(value_type = String, pattern = "^(custom|platform)$")]
    pub kind: String,
    /// The slug, or the platform model's id.
    pub model: String,
    #[schema(value_type = schema::Provider)]
    pub provider: String,
    /// The provider's public base URL where it is fixed (platform models: OpenRouter).
    pub base_url: Option<String>,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub provider_model_id: String,
    pub max_tokens: Option<u32>,
    /// `null` for platform models, whose capabilities the catalog may not know.
    pub capabilities: Option<Capabilities>,
    #[schema(value_type = Option<schema::Decimal>)]
    pub input_cost_per_token: Option<String>,
    #[schema(value_type = Option<schema::Decimal>)]
    pub output_cost_per_token: Option<String>,
    /// `null` for an OpenAI-compatible server without a key.
    pub credential: Option<ResolvedCredential>,
}

/// A decrypted credential, in its kind's shape.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResolvedCredential {
    ApiKey {
        api_key: SecretField,
    },
    AwsAccessKey {
        access_key_id: String,
        secret_access_key: SecretField,
        session_token: Option<SecretField>,
    },
    BedrockApiKey {
        bedrock_api_key: SecretField,
    },
}
