//! Resolve: everything a pipeline runtime needs to call a model, the credential included.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Capabilities, SecretField, schema};

/// `GET /v1/resolve/{model}` (service tokens only). The answer carries the decrypted
/// credential, so it is sent with `Cache-Control: no-store` and never logged. Read leniently
/// (an unknown field is passed over): a runtime built today must read the answers of a
/// registry that has since added a field.
#[derive(Serialize, Deserialize, ToSchema)]
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
    /// For a platform model, its max completion tokens as the catalog knows them (`null`:
    /// unknown).
    pub max_tokens: Option<u32>,
    /// For a platform model, `null` unless the catalog knows every capability.
    pub capabilities: Option<Capabilities>,
    #[schema(value_type = Option<schema::Decimal>)]
    pub input_cost_per_token: Option<String>,
    #[schema(value_type = Option<schema::Decimal>)]
    pub output_cost_per_token: Option<String>,
    /// `null` for an OpenAI-compatible server without a key.
    pub credential: Option<ResolvedCredential>,
}

/// A decrypted credential, in its kind's shape (read leniently, as [`Resolved`] is).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
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

/// `GET /v1/resolve/{model}?format=litellm`.
#[derive(Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResolveQuery {
    /// `litellm`: answer LiteLLM's `completion()` keyword arguments instead.
    #[param(pattern = "^litellm$")]
    pub format: Option<String>,
}

/// A model as LiteLLM's `completion()` takes it: `litellm.completion(**kwargs,
/// messages=…)`; `reasoning` says how to ask for extended reasoning, when the model has it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LiteLlm {
    pub kwargs: LiteLlmKwargs,
    pub reasoning: Option<LiteLlmReasoning>,
}

/// `completion()` keyword arguments; absent ones are not sent.
#[derive(Default, Serialize, Deserialize, ToSchema)]
pub struct LiteLlmKwargs {
    /// With LiteLLM's provider prefix: `openai/…`, `anthropic/…`, `gemini/…`,
    /// `openrouter/…`, `fireworks_ai/…`, `together_ai/…`, `bedrock/converse/…`,
    /// `huggingface/…`.
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Password)]
    pub api_key: Option<SecretField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Password)]
    pub aws_secret_access_key: Option<SecretField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Password)]
    pub aws_session_token: Option<SecretField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_region_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Instead of `max_tokens`, for OpenAI reasoning models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_cost_per_token: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_cost_per_token: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_openai_params: Option<Vec<String>>,
}

/// How to ask for extended reasoning: the keyword argument, the model's shape (`effort` or
/// `max_tokens`) and an example value.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LiteLlmReasoning {
    pub kwarg: String,
    pub shape: String,
    pub example: serde_json::Value,
}

/// What `GET /v1/resolve/{model}` answers: the registry's shape, or with `format=litellm`
/// LiteLLM's (for the document; each answer is one of them).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ResolveAnswer {
    Resolved(crate::Positioned<Resolved>),
    LiteLlm(crate::Positioned<LiteLlm>),
}

/// `GET /v1/exports/litellm-config`: a LiteLLM proxy `model_list` for the org's active
/// models, with every secret as an `os.environ/VAR` reference (never the secret).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LiteLlmConfig {
    pub model_list: Vec<LiteLlmDeployment>,
}

/// One `model_list` entry: the public alias, `completion()`'s arguments and model info.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LiteLlmDeployment {
    /// The custom model's slug, or the platform model's id.
    pub model_name: String,
    pub litellm_params: LiteLlmKwargs,
    pub model_info: LiteLlmModelInfo,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LiteLlmModelInfo {
    pub id: String,
    pub mode: String,
}

/// `GET /v1/position?after=N&wait=S&scope=resolve`.
#[derive(Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PositionQuery {
    /// A position the caller already knows: the answer waits until the position of `scope`
    /// passes it.
    pub after: Option<u64>,
    /// Seconds to wait for that (at most 30).
    #[param(minimum = 0, maximum = 30)]
    pub wait: Option<u64>,
    /// What `after` is compared with: the views' `position` (the default), or `changed_at`
    /// (`resolve`): what a resolve cache follows.
    pub scope: Option<PositionScope>,
}

/// Which position a `GET /v1/position` waits on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PositionScope {
    /// Any event of the log.
    #[default]
    Views,
    /// The caller's org's changes that can alter a resolve answer.
    Resolve,
}

/// The views position this server's answers reflect (in `position`), where the caller's org
/// last changed in a way that can alter a resolve answer, and whether the position of the
/// scope asked about passed `after`: how a runtime's resolve cache learns that it is stale.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ViewsPosition {
    pub moved: bool,
    /// The position of the org's last change of its models, credentials or tokens, or of
    /// the platform catalog (at least the position this server's views started at, which
    /// stands for every change before it). A resolve answer at a `position` at or past it
    /// is current. Absent from a registry older than this field: take `position` then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field a later registry adds does not make an earlier runtime fail its resolves.
    #[test]
    fn resolve_answers_are_read_past_fields_added_later() {
        let answer = serde_json::json!({"kind": "custom", "model": "m", "provider": "openai",
            "base_url": null, "endpoint_url": null, "region": null, "provider_model_id": "gpt-4o",
            "max_tokens": 4096, "capabilities": null, "input_cost_per_token": null,
            "output_cost_per_token": null, "added_later": 1,
            "credential": {"kind": "api_key", "api_key": "sk-x", "added_later": true}});
        let resolved: Resolved = serde_json::from_value(answer).expect("read past new fields");
        assert!(matches!(
            resolved.credential,
            Some(ResolvedCredential::ApiKey { .. })
        ));
    }
}
