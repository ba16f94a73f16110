//! What clients get back: JSON shapes built from view rows. No plaintext secret is in any of
//! them; a credential shows its id and masked preview only.

use domain::catalog::{KnownCapabilities, PlatformModel};
use domain::known::KnownModel;
use domain::model::Status;
use domain::provider::Endpoint;
use domain::values::{Capabilities, Cost, ReasoningParam};
use serde::Serialize;
use views::{CredentialRow, ModelRow};

#[derive(Clone, Debug, Serialize)]
pub struct CredentialSummary {
    pub id: String,
    pub preview: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelView {
    pub kind: &'static str,
    pub slug: String,
    pub display_name: String,
    pub provider: &'static str,
    pub provider_model_id: String,
    pub credential: Option<CredentialSummary>,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub max_tokens: u32,
    pub capabilities: Capabilities,
    pub input_cost_per_token: Option<Cost>,
    pub output_cost_per_token: Option<Cost>,
    pub status: Status,
    pub version: u64,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
    pub deactivated_at: Option<String>,
    pub deactivated_by: Option<String>,
    /// Which Pipeline Builder controls to enable for this model.
    pub controls: Controls,
    /// Advice about the configuration (not errors), e.g. max tokens too low for tool use.
    pub warnings: Vec<Warning>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Controls {
    pub tools: bool,
    pub json_mode: bool,
    pub image_input: bool,
    pub reasoning_effort: bool,
    pub reasoning_budget: bool,
}

impl Controls {
    pub fn of(capabilities: &Capabilities) -> Self {
        Self {
            tools: capabilities.tool_use,
            json_mode: capabilities.json_mode,
            image_input: capabilities.vision,
            reasoning_effort: capabilities.reasoning == Some(ReasoningParam::Effort),
            reasoning_budget: capabilities.reasoning == Some(ReasoningParam::MaxTokens),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub code: &'static str,
    pub message: String,
}

/// Tool-using steps spend output tokens on calls and their arguments; below this they are
/// cut short.
pub const TOOL_USE_MIN_MAX_TOKENS: u32 = 16_000;

/// Configuration advice: warnings, never refusals. `known` is what the shipped table says
/// about the provider's model, where it knows it.
pub fn warnings(
    capabilities: &Capabilities,
    max_tokens: u32,
    known: Option<&KnownModel>,
) -> Vec<Warning> {
    let mut out = Vec::new();
    if let Some(ceiling) = known.and_then(|k| k.max_output_tokens) {
        if max_tokens > ceiling {
            out.push(Warning {
                code: "max_tokens.above_documented_ceiling",
                message: format!("the provider documents at most {ceiling} output tokens for this model; requests for more will be refused or cut"),
            });
        } else if capabilities.reasoning.is_some() && max_tokens < ceiling {
            out.push(Warning {
                code: "max_tokens.below_reasoning_ceiling",
                message: format!("reasoning spends output tokens before the answer; the provider documents up to {ceiling} for this model, consider {ceiling}"),
            });
        }
    }
    if capabilities.tool_use && max_tokens < TOOL_USE_MIN_MAX_TOKENS {
        out.push(Warning {
            code: "max_tokens.low_for_tool_use",
            message: format!(
                "tool use is on with max tokens {max_tokens}; use at least 16000, or 32000 for multi-file generation, or tool calls will be cut off"
            ),
        });
    }
    out
}

impl ModelView {
    pub fn new(row: &ModelRow, credential: Option<&CredentialRow>) -> Self {
        let model = &row.model;
        let (endpoint_url, region) = match &model.endpoint {
            Some(Endpoint::Url(url)) => (Some(url.as_str().to_owned()), None),
            Some(Endpoint::Region(region)) => (None, Some(region.as_str().to_owned())),
            None => (None, None),
        };
        Self {
            kind: "custom",
            slug: model.slug.as_str().to_owned(),
            display_name: model.display_name.as_str().to_owned(),
            provider: model.provider.as_str(),
            provider_model_id: model.provider_model_id.as_str().to_owned(),
            credential: credential.map(|c| CredentialSummary {
                id: c.credential.id.as_str().to_owned(),
                preview: c.credential.preview.clone(),
            }),
            endpoint_url,
            region,
            max_tokens: model.max_tokens.get(),
            capabilities: model.capabilities,
            input_cost_per_token: model.costs.input_per_token,
            output_cost_per_token: model.costs.output_per_token,
            status: model.status.clone(),
            version: row.stream.version,
            created_at: rfc3339(row.created_at_ms),
            created_by: row.created_by.clone(),
            updated_at: rfc3339(row.updated_at_ms),
            updated_by: row.updated_by.clone(),
            deactivated_at: row.deactivation.as_ref().map(|d| rfc3339(d.at_ms)),
            deactivated_by: row.deactivation.as_ref().map(|d| d.by.clone()),
            controls: Controls::of(&model.capabilities),
            warnings: warnings(
                &model.capabilities,
                model.max_tokens.get(),
                domain::known::lookup(model.provider, &model.provider_model_id),
            ),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PlatformModelView {
    pub kind: &'static str,
    pub id: String,
    pub display_name: String,
    pub provider: String,
    pub default: bool,
    /// `null` where the catalog does not know.
    pub capabilities: KnownCapabilities,
    pub max_tokens: Option<u32>,
    pub input_cost_per_token: Option<Cost>,
    pub output_cost_per_token: Option<Cost>,
    pub status: &'static str,
}

impl PlatformModelView {
    pub fn new(model: &PlatformModel) -> Self {
        Self {
            kind: "platform",
            id: model.id.clone(),
            display_name: model.display_name.clone(),
            provider: model.provider.clone(),
            default: model.id == domain::catalog::default_model_id(),
            capabilities: model.capabilities.clone(),
            max_tokens: model.max_tokens,
            input_cost_per_token: model.input_cost_per_token,
            output_cost_per_token: model.output_cost_per_token,
            status: "active",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelList {
    pub platform: Vec<PlatformModelView>,
    pub custom: Vec<ModelView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CredentialView {
    pub id: String,
    pub provider: &'static str,
    pub kind: domain::provider::CredentialKind,
    pub preview: String,
    /// Keyed fingerprint (HMAC), hex: equal secrets have equal fingerprints within an org.
    pub fingerprint: String,
    pub version: u64,
    /// Active models that use this credential.
    pub used_by: u32,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
}

impl CredentialView {
    pub fn new(row: &CredentialRow) -> Self {
        Self {
            id: row.credential.id.as_str().to_owned(),
            provider: row.credential.provider.as_str(),
            kind: row.credential.kind,
            preview: row.credential.preview.clone(),
            fingerprint: hex::encode(row.credential.fingerprint),
            version: row.credential.version,
            used_by: row.used_by,
            created_at: rfc3339(row.created_at_ms),
            created_by: row.created_by.clone(),
            updated_at: rfc3339(row.updated_at_ms),
        }
    }
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
