//! What clients send, as loose serde shapes, and their parsing into domain types. Parsing
//! collects every problem at once, so a form can mark all bad fields in one round trip.

use domain::Invalid;
use domain::provider::{CredentialSecret, Endpoint, EndpointNeed, Provider, ProviderModelId};
use domain::values::{
    AwsRegion, Capabilities, Cost, Costs, CredentialId, DisplayName, HttpUrl, MaxTokens,
    ReasoningParam,
};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use vault::Secret;

/// A secret field: deserialized straight into a zeroizing [`Secret`].
pub struct SecretField(pub Secret);

impl<'de> Deserialize<'de> for SecretField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Self(Secret::new(s)))
    }
}

/// Secret fields of a credential, as entered. Which ones apply depends on the provider.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialInput {
    pub api_key: Option<SecretField>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretField>,
    pub session_token: Option<SecretField>,
    pub bedrock_api_key: Option<SecretField>,
}

impl CredentialInput {
    /// Reads the fields the provider takes; a missing one is named.
    pub fn into_secret(self, provider: Provider) -> Result<CredentialSecret, Invalid> {
        let missing = |field: &'static str, what: &str| {
            Invalid::new(
                field,
                "credential.missing_field",
                format!("{provider} needs {what}"),
            )
        };
        let secret = match provider {
            Provider::Bedrock => match (
                self.bedrock_api_key,
                self.access_key_id,
                self.secret_access_key,
            ) {
                (Some(key), None, None) => CredentialSecret::BedrockApiKey(key.0),
                (None, Some(access_key_id), Some(secret)) => CredentialSecret::AwsAccessKey {
                    access_key_id,
                    secret_access_key: secret.0,
                    session_token: self.session_token.map(|t| t.0),
                },
                (None, Some(_), None) => {
                    return Err(missing(
                        "credential.secret_access_key",
                        "secret_access_key with access_key_id",
                    ));
                }
                (None, None, Some(_)) => {
                    return Err(missing(
                        "credential.access_key_id",
                        "access_key_id with secret_access_key",
                    ));
                }
                (Some(_), _, _) => {
                    return Err(Invalid::new(
                        "credential",
                        "credential.wrong_shape",
                        "give either bedrock_api_key or access_key_id + secret_access_key, not both",
                    ));
                }
                (None, None, None) => {
                    return Err(missing(
                        "credential.access_key_id",
                        "access_key_id + secret_access_key, or bedrock_api_key",
                    ));
                }
            },
            _ => {
                if self.access_key_id.is_some()
                    || self.secret_access_key.is_some()
                    || self.bedrock_api_key.is_some()
                {
                    return Err(Invalid::new(
                        "credential",
                        "credential.wrong_shape",
                        format!("{provider} takes an api_key only"),
                    ));
                }
                match self.api_key {
                    Some(key) => CredentialSecret::ApiKey(key.0),
                    None => return Err(missing("credential.api_key", "an api_key")),
                }
            }
        };
        secret.check(provider)?;
        Ok(secret)
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesInput {
    pub json_mode: Option<bool>,
    pub vision: Option<bool>,
    pub tool_use: Option<bool>,
    /// `null` or absent: off; `"effort"` or `"max_tokens"`: on with that parameter shape.
    pub reasoning: Option<Option<String>>,
}

/// `POST /v1/models`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddModelRequest {
    pub display_name: Option<String>,
    pub provider: Option<String>,
    pub provider_model_id: Option<String>,
    pub credential: Option<CredentialInput>,
    pub credential_id: Option<String>,
    /// A passing Test Connection of this draft (the receipt), at most 15 minutes old.
    pub connection_test_id: Option<String>,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub max_tokens: Option<Value>,
    pub capabilities: Option<CapabilitiesInput>,
    pub input_cost_per_token: Option<Value>,
    pub output_cost_per_token: Option<Value>,
}

/// `PATCH /v1/models/{slug}`: absent fields stay as they are; `null` clears a cost.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditModelRequest {
    pub display_name: Option<String>,
    pub provider_model_id: Option<String>,
    pub credential: Option<CredentialInput>,
    pub credential_id: Option<String>,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub max_tokens: Option<Value>,
    pub capabilities: Option<CapabilitiesInput>,
    #[serde(default, deserialize_with = "present")]
    pub input_cost_per_token: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub output_cost_per_token: Option<Value>,
}

/// Keeps an explicit JSON `null` as `Some(Value::Null)`, so "clear" differs from "absent".
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// `POST /v1/credentials/match`: is this secret already saved?
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchCredentialRequest {
    pub provider: String,
    pub credential: CredentialInput,
}

/// `POST /v1/tokens`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueTokenRequest {
    pub label: String,
    pub role: String,
}

/// Collects field problems while parsing.
#[derive(Default)]
pub(crate) struct Problems(pub Vec<Invalid>);

impl Problems {
    pub fn take<T>(&mut self, result: Result<T, Invalid>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(invalid) => {
                self.0.push(invalid);
                None
            }
        }
    }

    pub fn required(&mut self, field: &'static str, what: &str) {
        self.0.push(Invalid::new(
            field,
            "field.required",
            format!("{what} is required"),
        ));
    }
}

pub(crate) fn parse_max_tokens(value: &Value) -> Result<MaxTokens, Invalid> {
    match value.as_i64() {
        Some(n) => MaxTokens::parse(n),
        None => Err(Invalid::new(
            "max_tokens",
            "max_tokens.invalid",
            "max tokens must be a whole number",
        )),
    }
}

/// A cost given as a decimal string or a JSON number; `null` means not set.
pub(crate) fn parse_cost(field: &'static str, value: &Value) -> Result<Option<Cost>, Invalid> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Cost::parse(field, text).map(Some),
        Value::Number(number) => Cost::parse(field, &number.to_string()).map(Some),
        _ => Err(Invalid::new(
            field,
            "cost.invalid",
            "a cost is a decimal string such as \"0.000003\" (USD per token)",
        )),
    }
}

pub(crate) fn parse_capabilities(
    input: CapabilitiesInput,
    base: Capabilities,
) -> Result<Capabilities, Invalid> {
    let reasoning = match input.reasoning {
        None => base.reasoning,
        Some(None) => None,
        Some(Some(raw)) => Some(ReasoningParam::parse(&raw)?),
    };
    Ok(Capabilities {
        json_mode: input.json_mode.unwrap_or(base.json_mode),
        vision: input.vision.unwrap_or(base.vision),
        tool_use: input.tool_use.unwrap_or(base.tool_use),
        reasoning,
    })
}

/// The endpoint from `endpoint_url` / `region` for this provider; `Ok(None)` when neither is
/// given (whether that is allowed is the domain's call).
pub(crate) fn parse_endpoint(
    provider: Provider,
    endpoint_url: Option<&str>,
    region: Option<&str>,
) -> Result<Option<Endpoint>, Invalid> {
    match (endpoint_url, region) {
        (Some(_), Some(_)) => Err(Invalid::new(
            "endpoint_url",
            "endpoint.ambiguous",
            "give endpoint_url (OpenAI-compatible, HuggingFace) or region (Bedrock), not both",
        )),
        (Some(url), None) => {
            let url = HttpUrl::parse("endpoint_url", url)?;
            if provider.endpoint_need() == EndpointNeed::Region {
                return Err(Invalid::new(
                    "endpoint_url",
                    "endpoint.not_allowed",
                    "Bedrock models take a region, not a URL",
                ));
            }
            Ok(Some(Endpoint::Url(url)))
        }
        (None, Some(region)) => Ok(Some(Endpoint::Region(AwsRegion::parse(region)?))),
        (None, None) => Ok(None),
    }
}

pub(crate) struct ParsedAdd {
    pub connection_test_id: Option<String>,
    pub display_name: DisplayName,
    pub provider: Provider,
    pub provider_model_id: ProviderModelId,
    pub credential: Option<CredentialSecret>,
    pub credential_id: Option<CredentialId>,
    pub endpoint: Option<Endpoint>,
    pub max_tokens: MaxTokens,
    pub capabilities: Capabilities,
    pub costs: Costs,
}

impl AddModelRequest {
    pub(crate) fn parse(self) -> Result<ParsedAdd, Vec<Invalid>> {
        let mut problems = Problems::default();
        let display_name = match &self.display_name {
            Some(raw) => problems.take(DisplayName::parse(raw)),
            None => {
                problems.required("display_name", "a display name");
                None
            }
        };
        let provider = match &self.provider {
            Some(raw) => problems.take(Provider::parse(raw)),
            None => {
                problems.required("provider", "a provider");
                None
            }
        };
        let provider_model_id = match (&self.provider_model_id, provider) {
            (Some(raw), Some(provider)) => problems.take(ProviderModelId::parse(provider, raw)),
            (None, _) => {
                problems.required("provider_model_id", "the provider's model id");
                None
            }
            (Some(_), None) => None,
        };
        let endpoint = provider
            .and_then(|p| {
                problems.take(parse_endpoint(
                    p,
                    self.endpoint_url.as_deref(),
                    self.region.as_deref(),
                ))
            })
            .flatten();
        let credential_id = self
            .credential_id
            .as_deref()
            .and_then(|raw| problems.take(CredentialId::parse(raw)));
        let credential = match (self.credential, provider) {
            (Some(_), _) if self.credential_id.is_some() => {
                problems.0.push(Invalid::new(
                    "credential",
                    "credential.ambiguous",
                    "give a new credential or a saved credential_id, not both",
                ));
                None
            }
            (Some(input), Some(provider)) => problems.take(input.into_secret(provider)),
            _ => None,
        };
        let max_tokens = match &self.max_tokens {
            Some(value) => problems.take(parse_max_tokens(value)),
            None => {
                problems.required("max_tokens", "max tokens");
                None
            }
        };
        let capabilities = problems
            .take(parse_capabilities(
                self.capabilities.unwrap_or_default(),
                Capabilities::default(),
            ))
            .unwrap_or_default();
        let input_cost = self
            .input_cost_per_token
            .as_ref()
            .and_then(|v| problems.take(parse_cost("input_cost_per_token", v)));
        let output_cost = self
            .output_cost_per_token
            .as_ref()
            .and_then(|v| problems.take(parse_cost("output_cost_per_token", v)));
        if !problems.0.is_empty() {
            return Err(problems.0);
        }
        match (display_name, provider, provider_model_id, max_tokens) {
            (Some(display_name), Some(provider), Some(provider_model_id), Some(max_tokens)) => {
                Ok(ParsedAdd {
                    connection_test_id: self.connection_test_id,
                    display_name,
                    provider,
                    provider_model_id,
                    credential,
                    credential_id,
                    endpoint,
                    max_tokens,
                    capabilities,
                    costs: Costs {
                        input_per_token: input_cost.flatten(),
                        output_per_token: output_cost.flatten(),
                    },
                })
            }
            _ => Err(vec![Invalid::new(
                "body",
                "body.incomplete",
                "the request is incomplete",
            )]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ParsedAdd, Vec<Invalid>> {
        serde_json::from_str::<AddModelRequest>(json)
            .unwrap()
            .parse()
    }

    #[test]
    fn a_complete_request_parses() {
        let parsed = parse(r#"{"display_name":"GPT","provider":"openai","provider_model_id":"gpt-5",
            "credential":{"api_key":"sk-abcdefghijklmnopqrstu"},"max_tokens":16000,
            "capabilities":{"tool_use":true,"reasoning":"effort"},"input_cost_per_token":"0.00000125",
            "output_cost_per_token":0.00001}"#)
        .unwrap_or_else(|_| panic!("parses"));
        assert_eq!(parsed.capabilities.reasoning, Some(ReasoningParam::Effort));
        assert_eq!(
            parsed.costs.output_per_token.unwrap().to_string(),
            "0.00001"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let Err(problems) = parse(
            r#"{"display_name":" ","provider":"openai","provider_model_id":"gpt 5","max_tokens":0,"input_cost_per_token":"-1"}"#,
        ) else {
            panic!("rejected")
        };
        let codes: Vec<&str> = problems.iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            [
                "display_name.empty",
                "provider_model_id.invalid",
                "max_tokens.out_of_range",
                "cost.negative"
            ]
        );
    }
}
