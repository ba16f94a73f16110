//! What clients send, as loose serde shapes, and their parsing into domain types. Parsing
//! collects every problem at once, so a form can mark all bad fields in one round trip.

use domain::Invalid;
use domain::provider::{CredentialSecret, Endpoint, EndpointNeed, Provider, ProviderModelId};
use domain::values::{
    AwsRegion, Capabilities, Cost, Costs, CredentialId, DisplayName, HttpUrl, MAX_TOKENS_LIMIT,
    MaxTokens, ReasoningParam,
};
use secrets::Secret;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

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

/// Capabilities as sent. Absent fields keep the base (off when adding, the current value when
/// editing); the switches have no `null`, as "off" is `false`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesInput {
    #[serde(default, deserialize_with = "not_null")]
    pub json_mode: Option<bool>,
    #[serde(default, deserialize_with = "not_null")]
    pub vision: Option<bool>,
    #[serde(default, deserialize_with = "not_null")]
    pub tool_use: Option<bool>,
    /// Absent: unchanged (off when adding); `null`: off; `"effort"` or `"max_tokens"`: on with
    /// that parameter shape.
    #[serde(default, deserialize_with = "present")]
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

/// `PATCH /v1/models/{slug}`: absent fields stay as they are; `null` clears a cost (and turns
/// `capabilities.reasoning` off). The other fields cannot be cleared (a model always has a name,
/// and its provider decides whether it has an endpoint), so `null` for them is refused rather
/// than read as "unchanged".
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditModelRequest {
    #[serde(default, deserialize_with = "not_null")]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub provider_model_id: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub credential: Option<CredentialInput>,
    #[serde(default, deserialize_with = "not_null")]
    pub credential_id: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub endpoint_url: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub region: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub max_tokens: Option<Value>,
    #[serde(default, deserialize_with = "not_null")]
    pub capabilities: Option<CapabilitiesInput>,
    #[serde(default, deserialize_with = "present")]
    pub input_cost_per_token: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub output_cost_per_token: Option<Value>,
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
pub(crate) const NULL_REFUSED: &str =
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

/// A whole JSON number in range. A whole number too large for any integer type is out of
/// range like any other; a fraction or a non-number is not a whole number.
pub(crate) fn parse_max_tokens(value: &Value) -> Result<MaxTokens, Invalid> {
    let not_whole = || {
        Invalid::new(
            "max_tokens",
            "max_tokens.invalid",
            format!("max tokens must be a whole number between 1 and {MAX_TOKENS_LIMIT}"),
        )
    };
    let Value::Number(number) = value else {
        return Err(not_whole());
    };
    if let Some(n) = number.as_i64() {
        return MaxTokens::parse(n);
    }
    if number.is_u64() {
        return Err(MaxTokens::out_of_range(&number.to_string()));
    }
    // Beyond u64, or written with a fraction or an exponent: serde_json holds it as an f64.
    match number.as_f64() {
        Some(x) if x.is_finite() && x.fract() == 0.0 => {
            if (1.0..=f64::from(MAX_TOKENS_LIMIT)).contains(&x) {
                // Whole and within u32, so the conversion is exact.
                MaxTokens::parse(x as i64)
            } else {
                Err(MaxTokens::out_of_range(&number.to_string()))
            }
        }
        _ => Err(not_whole()),
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

    fn edit(json: &str) -> Result<EditModelRequest, serde_json::Error> {
        serde_json::from_str::<EditModelRequest>(json)
    }

    fn capabilities_after(json: &str, base: Capabilities) -> Capabilities {
        let request = edit(json).unwrap();
        parse_capabilities(request.capabilities.unwrap(), base).unwrap_or_else(|_| panic!("parses"))
    }

    const REASONING_ON: Capabilities = Capabilities {
        json_mode: true,
        vision: false,
        tool_use: true,
        reasoning: Some(ReasoningParam::Effort),
    };

    #[test]
    fn a_null_reasoning_turns_reasoning_off() {
        // Given a model with reasoning on
        // When a PATCH sends `reasoning: null` (the CLI's `--reasoning off`)
        let after = capabilities_after(r#"{"capabilities":{"reasoning":null}}"#, REASONING_ON);
        // Then reasoning is off and nothing else changed
        assert_eq!(
            after,
            Capabilities {
                reasoning: None,
                ..REASONING_ON
            }
        );
    }

    #[test]
    fn an_absent_reasoning_leaves_reasoning_as_it_is() {
        // Given a model with reasoning on
        // When a PATCH changes another capability only
        let after = capabilities_after(r#"{"capabilities":{"vision":true}}"#, REASONING_ON);
        // Then reasoning stays on
        assert_eq!(
            after,
            Capabilities {
                vision: true,
                ..REASONING_ON
            }
        );
        // And a new value still switches the parameter shape
        let switched = capabilities_after(
            r#"{"capabilities":{"reasoning":"max_tokens"}}"#,
            REASONING_ON,
        );
        assert_eq!(switched.reasoning, Some(ReasoningParam::MaxTokens));
    }

    #[test]
    fn a_null_reasoning_when_adding_is_off() {
        let parsed = parse(
            r#"{"display_name":"GPT","provider":"openai","provider_model_id":"gpt-5",
            "max_tokens":16000,"capabilities":{"reasoning":null}}"#,
        )
        .unwrap_or_else(|_| panic!("parses"));
        assert_eq!(parsed.capabilities.reasoning, None);
    }

    #[test]
    fn a_null_cost_clears_and_an_absent_one_is_kept() {
        // Given a PATCH that clears the input cost and does not mention the output cost
        let request = edit(r#"{"input_cost_per_token":null}"#).unwrap();
        // Then the input cost is present as null, which parses to "not set"
        assert_eq!(request.input_cost_per_token, Some(Value::Null));
        assert_eq!(
            parse_cost("input_cost_per_token", &Value::Null).map(|c| c.is_none()),
            Ok(true)
        );
        // And the output cost is absent, so it stays as it is
        assert_eq!(request.output_cost_per_token, None);
    }

    #[test]
    fn a_null_for_a_field_that_cannot_be_cleared_is_refused_not_ignored() {
        // Given each PATCH field that has no "cleared" state
        for field in [
            "display_name",
            "provider_model_id",
            "credential",
            "credential_id",
            "endpoint_url",
            "region",
            "max_tokens",
            "capabilities",
        ] {
            // When it is absent, it is left unchanged
            let absent = edit("{}").unwrap();
            assert!(
                absent.display_name.is_none()
                    && absent.provider_model_id.is_none()
                    && absent.credential.is_none()
                    && absent.credential_id.is_none()
                    && absent.endpoint_url.is_none()
                    && absent.region.is_none()
                    && absent.max_tokens.is_none()
                    && absent.capabilities.is_none()
            );
            // When it is null, the body is refused instead of silently keeping the old value
            let Err(refused) = edit(&format!(r#"{{"{field}":null}}"#)) else {
                panic!("{field}: null accepted")
            };
            assert!(
                refused.to_string().contains("null cannot clear this field"),
                "{field}: {refused}"
            );
            // And the client hears why, not only that the value is invalid
            let told = crate::JsonMistake::of(&refused).detail.unwrap_or_default();
            assert!(told.starts_with(NULL_REFUSED), "{field}: {told}");
        }
        // And the capability switches, whose "off" is false, refuse null too
        for switch in ["json_mode", "vision", "tool_use"] {
            let body = format!(r#"{{"capabilities":{{"{switch}":null}}}}"#);
            assert!(edit(&body).is_err(), "{switch}");
        }
    }

    #[test]
    fn a_value_for_a_field_that_cannot_be_cleared_still_parses() {
        let request = edit(
            r#"{"display_name":"X","credential_id":"cred_1","endpoint_url":"https://h.example/v1",
            "max_tokens":100,"capabilities":{"json_mode":false}}"#,
        )
        .unwrap();
        assert_eq!(request.display_name.as_deref(), Some("X"));
        assert_eq!(request.credential_id.as_deref(), Some("cred_1"));
        assert_eq!(
            request.endpoint_url.as_deref(),
            Some("https://h.example/v1")
        );
        assert_eq!(request.max_tokens, Some(Value::from(100)));
        assert_eq!(request.capabilities.and_then(|c| c.json_mode), Some(false));
    }

    fn max_tokens_problem(json: &str) -> Invalid {
        let value: Value = serde_json::from_str(json).unwrap();
        parse_max_tokens(&value).unwrap_err()
    }

    #[test]
    fn whole_numbers_too_large_for_any_integer_are_out_of_range() {
        // Given whole numbers beyond i64, beyond u64, and written with an exponent
        for huge in [
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "1e20",
            "2000001.0",
        ] {
            // When parsed as max tokens
            let problem = max_tokens_problem(huge);
            // Then they are out of range, and the message gives the allowed range
            assert_eq!(problem.code, "max_tokens.out_of_range", "{huge}");
            assert!(
                problem.message.contains("between 1 and 2000000"),
                "{huge}: {}",
                problem.message
            );
        }
    }

    #[test]
    fn negative_and_fractional_max_tokens_stay_clear() {
        for negative in ["-5", "-9223372036854775809", "-1e30", "0"] {
            assert_eq!(
                max_tokens_problem(negative).code,
                "max_tokens.out_of_range",
                "{negative}"
            );
        }
        for not_whole in ["1.5", "-0.5", "\"16000\"", "null", "true"] {
            let problem = max_tokens_problem(not_whole);
            assert_eq!(problem.code, "max_tokens.invalid", "{not_whole}");
            assert!(
                problem.message.contains("whole number"),
                "{}",
                problem.message
            );
        }
        // And a whole number written as 16000.0 is the whole number it is
        let value: Value = serde_json::from_str("16000.0").unwrap();
        assert_eq!(parse_max_tokens(&value).map(MaxTokens::get), Ok(16000));
    }

    #[test]
    fn cost_numbers_are_never_rounded() {
        // Given costs sent as JSON numbers, too fine or too large for an exact decimal
        let too_fine: Value = serde_json::from_str("1e-29").unwrap();
        let too_large: Value =
            serde_json::from_str("1234567890123456789012345678901234567890").unwrap();
        // When parsed
        // Then they are refused with codes that say why
        assert_eq!(
            parse_cost("input_cost_per_token", &too_fine)
                .unwrap_err()
                .code,
            "cost.too_precise"
        );
        assert_eq!(
            parse_cost("input_cost_per_token", &too_large)
                .unwrap_err()
                .code,
            "cost.too_large"
        );
        assert_eq!(
            parse_cost("input_cost_per_token", &Value::from("1".repeat(40)))
                .unwrap_err()
                .code,
            "cost.too_large"
        );
    }
}
