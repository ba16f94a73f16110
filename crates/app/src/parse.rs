//! Parsing the wire's loose shapes (`api`) into domain types, once, at the edge. Parsing
//! collects every problem at once, so a form can mark all bad fields in one round trip.

use api::{AddModel, CapabilitiesInput, CredentialInput, DraftTest, EditModel};
use domain::Invalid;
use domain::provider::{CredentialSecret, Endpoint, Provider, ProviderModelId};
use domain::values::{
    AwsRegion, Capabilities, Cost, Costs, CredentialId, CredentialName, DisplayName, HttpUrl,
    MAX_TOKENS_LIMIT, MaxTokens, ReasoningParam,
};
use serde_json::Value;

/// Collects field problems while parsing.
#[derive(Default)]
pub(crate) struct Problems(pub Vec<Invalid>);

impl Problems {
    pub(crate) fn take<T>(&mut self, result: Result<T, Invalid>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(invalid) => {
                self.0.push(invalid);
                None
            }
        }
    }

    pub(crate) fn required(&mut self, field: &'static str, what: &str) {
        self.0.push(Invalid::new(
            field,
            "field.required",
            format!("{what} is required"),
        ));
    }

    /// The parsed value when nothing went wrong, else every problem.
    pub(crate) fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Vec<Invalid>> {
        if !self.0.is_empty() {
            return Err(self.0);
        }
        value().ok_or_else(|| {
            vec![Invalid::new(
                "body",
                "body.incomplete",
                "the request is incomplete",
            )]
        })
    }
}

/// The secret a credential input carries, in the shape its fields make, checked against the
/// provider (`domain` says which shapes a provider takes and what a valid one looks like).
/// Messages never quote a secret.
pub(crate) fn secret(
    input: CredentialInput,
    provider: Provider,
) -> Result<CredentialSecret, Invalid> {
    let CredentialInput {
        api_key,
        access_key_id,
        secret_access_key,
        session_token,
        bedrock_api_key,
    } = input;
    let missing = |field: &'static str, what: &str| {
        Invalid::new(
            field,
            "credential.missing_field",
            format!("{provider} needs {what}"),
        )
    };
    let secret = match (api_key, access_key_id, secret_access_key, bedrock_api_key) {
        (Some(key), None, None, None) if session_token.is_none() => CredentialSecret::ApiKey(key.0),
        (None, None, None, Some(key)) if session_token.is_none() => {
            CredentialSecret::BedrockApiKey(key.0)
        }
        (None, Some(access_key_id), Some(secret), None) => CredentialSecret::AwsAccessKey {
            access_key_id,
            secret_access_key: secret.0,
            session_token: session_token.map(|t| t.0),
        },
        (None, Some(_), None, None) => {
            return Err(missing(
                "credential.secret_access_key",
                "secret_access_key with access_key_id",
            ));
        }
        (None, None, Some(_), None) => {
            return Err(missing(
                "credential.access_key_id",
                "access_key_id with secret_access_key",
            ));
        }
        (None, None, None, None) if session_token.is_none() => {
            let first_field = match provider.credential_kinds().first() {
                Some(domain::provider::CredentialKind::AwsAccessKey) => "credential.access_key_id",
                _ => "credential.api_key",
            };
            return Err(missing(first_field, provider.credential_fields()));
        }
        _ => {
            return Err(Invalid::new(
                "credential",
                "credential.wrong_shape",
                format!(
                    "{provider} takes {}; give the fields of one shape only",
                    provider.credential_fields()
                ),
            ));
        }
    };
    secret.check(provider)?;
    Ok(secret)
}

/// A whole JSON number in range. A whole number too large for any integer type is out of
/// range like any other; a fraction or a non-number is not a whole number.
pub(crate) fn max_tokens(value: &Value) -> Result<MaxTokens, Invalid> {
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
        return Err(MaxTokens::out_of_range());
    }
    // Beyond u64, or written with a fraction or an exponent: serde_json holds it as an f64.
    match number.as_f64() {
        Some(x) if x.is_finite() && x.fract() == 0.0 => {
            if (1.0..=f64::from(MAX_TOKENS_LIMIT)).contains(&x) {
                // Whole and within u32, so the conversion is exact.
                MaxTokens::parse(x as i64)
            } else {
                Err(MaxTokens::out_of_range())
            }
        }
        _ => Err(not_whole()),
    }
}

/// A cost given as a decimal string or a JSON number; `null` means not set.
pub(crate) fn cost(field: &'static str, value: &Value) -> Result<Option<Cost>, Invalid> {
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

/// Capabilities as sent, over `base`: absent switches keep it.
pub(crate) fn capabilities(
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

/// The endpoint from `endpoint_url` / `region`; `Ok(None)` when neither is given. Which one
/// a provider takes is the domain's rule (`check_endpoint`), applied when the command is
/// decided.
pub(crate) fn endpoint(
    endpoint_url: Option<&str>,
    region: Option<&str>,
) -> Result<Option<Endpoint>, Invalid> {
    match (endpoint_url, region) {
        (Some(_), Some(_)) => Err(Invalid::new(
            "endpoint_url",
            "endpoint.ambiguous",
            "give endpoint_url (OpenAI-compatible, HuggingFace) or region (Bedrock), not both",
        )),
        (Some(url), None) => Ok(Some(Endpoint::Url(HttpUrl::parse("endpoint_url", url)?))),
        (None, Some(region)) => Ok(Some(Endpoint::Region(AwsRegion::parse(region)?))),
        (None, None) => Ok(None),
    }
}

/// The credential a request names: a new secret, a saved credential's id, or neither; both
/// is refused.
pub(crate) enum CredentialRequest {
    None,
    Saved(CredentialId),
    Entered(CredentialSecret),
}

fn credential_request(
    problems: &mut Problems,
    provider: Option<Provider>,
    credential: Option<CredentialInput>,
    credential_id: Option<&str>,
) -> CredentialRequest {
    match (credential, credential_id) {
        (Some(_), Some(_)) => {
            problems.0.push(Invalid::new(
                "credential",
                "credential.ambiguous",
                "give a new credential or a saved credential_id, not both",
            ));
            CredentialRequest::None
        }
        (None, Some(raw)) => problems
            .take(CredentialId::parse(raw))
            .map_or(CredentialRequest::None, CredentialRequest::Saved),
        (Some(input), None) => provider
            .and_then(|p| problems.take(secret(input, p)))
            .map_or(CredentialRequest::None, CredentialRequest::Entered),
        (None, None) => CredentialRequest::None,
    }
}

pub(crate) struct ParsedAdd {
    pub connection_test_id: Option<String>,
    pub display_name: DisplayName,
    pub provider: Provider,
    pub provider_model_id: ProviderModelId,
    pub credential: CredentialRequest,
    pub endpoint: Option<Endpoint>,
    pub max_tokens: MaxTokens,
    pub capabilities: Capabilities,
    pub costs: Costs,
}

pub(crate) fn add(request: AddModel) -> Result<ParsedAdd, Vec<Invalid>> {
    let mut problems = Problems::default();
    let display_name = match &request.display_name {
        Some(raw) => problems.take(DisplayName::parse(raw)),
        None => {
            problems.required("display_name", "a display name");
            None
        }
    };
    let provider = match &request.provider {
        Some(raw) => problems.take(Provider::parse(raw)),
        None => {
            problems.required("provider", "a provider");
            None
        }
    };
    let provider_model_id = match (&request.provider_model_id, provider) {
        (Some(raw), Some(provider)) => problems.take(ProviderModelId::parse(provider, raw)),
        (None, _) => {
            problems.required("provider_model_id", "the provider's model id");
            None
        }
        (Some(_), None) => None,
    };
    let endpoint = problems
        .take(endpoint(
            request.endpoint_url.as_deref(),
            request.region.as_deref(),
        ))
        .flatten();
    let credential = credential_request(
        &mut problems,
        provider,
        request.credential,
        request.credential_id.as_deref(),
    );
    let max_tokens = match &request.max_tokens {
        Some(value) => problems.take(max_tokens(value)),
        None => {
            problems.required("max_tokens", "max tokens");
            None
        }
    };
    let capabilities = problems
        .take(capabilities(
            request.capabilities.unwrap_or_default(),
            Capabilities::default(),
        ))
        .unwrap_or_default();
    let costs = Costs {
        input_per_token: request
            .input_cost_per_token
            .as_ref()
            .and_then(|v| problems.take(cost("input_cost_per_token", v)))
            .flatten(),
        output_per_token: request
            .output_cost_per_token
            .as_ref()
            .and_then(|v| problems.take(cost("output_cost_per_token", v)))
            .flatten(),
    };
    problems.finish(|| {
        Some(ParsedAdd {
            connection_test_id: request.connection_test_id,
            display_name: display_name?,
            provider: provider?,
            provider_model_id: provider_model_id?,
            credential,
            endpoint,
            max_tokens: max_tokens?,
            capabilities,
            costs,
        })
    })
}

/// A partial edit of a model of `provider` whose capabilities and costs are `current`.
pub(crate) struct ParsedEdit {
    pub display_name: Option<DisplayName>,
    pub provider_model_id: Option<ProviderModelId>,
    pub credential: CredentialRequest,
    pub endpoint: Option<Endpoint>,
    pub max_tokens: Option<MaxTokens>,
    pub capabilities: Option<Capabilities>,
    pub costs: Option<Costs>,
}

pub(crate) fn edit(
    request: EditModel,
    provider: Provider,
    current_capabilities: Capabilities,
    current_costs: Costs,
) -> Result<ParsedEdit, Vec<Invalid>> {
    let mut problems = Problems::default();
    let display_name = request
        .display_name
        .as_deref()
        .and_then(|raw| problems.take(DisplayName::parse(raw)));
    let provider_model_id = request
        .provider_model_id
        .as_deref()
        .and_then(|raw| problems.take(ProviderModelId::parse(provider, raw)));
    let endpoint = problems
        .take(endpoint(
            request.endpoint_url.as_deref(),
            request.region.as_deref(),
        ))
        .flatten();
    let max_tokens = request
        .max_tokens
        .as_ref()
        .and_then(|v| problems.take(max_tokens(v)));
    let capabilities = request
        .capabilities
        .and_then(|input| problems.take(capabilities(input, current_capabilities)));
    let costs = edited_costs(
        &mut problems,
        current_costs,
        request.input_cost_per_token,
        request.output_cost_per_token,
    );
    let credential = credential_request(
        &mut problems,
        Some(provider),
        request.credential,
        request.credential_id.as_deref(),
    );
    problems.finish(|| {
        Some(ParsedEdit {
            display_name,
            provider_model_id,
            credential,
            endpoint,
            max_tokens,
            capabilities,
            costs,
        })
    })
}

/// Applies cost edits: absent keeps, `null` clears, a value sets.
fn edited_costs(
    problems: &mut Problems,
    current: Costs,
    input: Option<Value>,
    output: Option<Value>,
) -> Option<Costs> {
    if input.is_none() && output.is_none() {
        return None;
    }
    let mut costs = current;
    if let Some(value) = input
        && let Some(parsed) = problems.take(cost("input_cost_per_token", &value))
    {
        costs.input_per_token = parsed;
    }
    if let Some(value) = output
        && let Some(parsed) = problems.take(cost("output_cost_per_token", &value))
    {
        costs.output_per_token = parsed;
    }
    Some(costs)
}

/// A draft to test.
pub(crate) struct ParsedDraft {
    pub provider: Provider,
    pub provider_model_id: ProviderModelId,
    pub endpoint: Option<Endpoint>,
    pub credential: CredentialRequest,
}

pub(crate) fn draft(request: DraftTest) -> Result<ParsedDraft, Vec<Invalid>> {
    let mut problems = Problems::default();
    let provider = problems.take(Provider::parse(&request.provider));
    let provider_model_id =
        provider.and_then(|p| problems.take(ProviderModelId::parse(p, &request.provider_model_id)));
    let endpoint = problems
        .take(endpoint(
            request.endpoint_url.as_deref(),
            request.region.as_deref(),
        ))
        .flatten();
    let credential = credential_request(
        &mut problems,
        provider,
        request.credential,
        request.credential_id.as_deref(),
    );
    problems.finish(|| {
        Some(ParsedDraft {
            provider: provider?,
            provider_model_id: provider_model_id?,
            endpoint,
            credential,
        })
    })
}

/// A credential to create as a resource.
pub(crate) struct NewCredential {
    pub name: CredentialName,
    pub provider: Provider,
    pub secret: CredentialSecret,
    pub expires_at_ms: Option<i64>,
}

pub(crate) fn new_credential(
    request: api::CreateCredential,
) -> Result<NewCredential, Vec<Invalid>> {
    let mut problems = Problems::default();
    let name = problems.take(CredentialName::parse(&request.name));
    let provider = problems.take(Provider::parse(&request.provider));
    let secret = provider.and_then(|p| problems.take(secret(request.credential, p)));
    let expires_at_ms = request
        .expires_at
        .as_deref()
        .and_then(|raw| problems.take(timestamp("expires_at", raw)));
    problems.finish(|| {
        Some(NewCredential {
            name: name?,
            provider: provider?,
            secret: secret?,
            expires_at_ms,
        })
    })
}

/// A rotation's new secret for a credential of `provider`, and its expiry.
pub(crate) fn rotation(
    request: api::RotateCredential,
    provider: Provider,
) -> Result<(CredentialSecret, Option<i64>), Vec<Invalid>> {
    let mut problems = Problems::default();
    let secret = problems.take(secret(request.credential, provider));
    let expires_at_ms = request
        .expires_at
        .as_deref()
        .and_then(|raw| problems.take(timestamp("expires_at", raw)));
    problems.finish(|| Some((secret?, expires_at_ms)))
}

/// An RFC 3339 time as milliseconds since the Unix epoch.
pub(crate) fn timestamp(field: &'static str, raw: &str) -> Result<i64, Invalid> {
    let invalid = || {
        Invalid::new(
            field,
            "timestamp.invalid",
            "give a time in RFC 3339, e.g. 2026-12-31T23:59:00Z",
        )
    };
    let parsed =
        time::OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339)
            .map_err(|_| invalid())?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ParsedAdd, Vec<Invalid>> {
        add(serde_json::from_str::<AddModel>(json).unwrap())
    }

    #[test]
    fn timestamps_are_rfc3339_and_refusals_do_not_quote_them() {
        assert_eq!(
            timestamp("expires_at", "2026-12-31T23:59:00Z").unwrap(),
            1_798_761_540_000
        );
        assert_eq!(
            timestamp("expires_at", "2026-12-31T23:59:00.250+01:00").unwrap(),
            1_798_757_940_250
        );
        for bad in ["next tuesday", "2027-01-31", "1798761540000", ""] {
            let refused = timestamp("expires_at", bad).unwrap_err();
            assert_eq!(refused.code, "timestamp.invalid");
            assert!(bad.is_empty() || !refused.message.contains(bad), "{bad}");
        }
    }

    #[test]
    fn a_new_credential_reports_every_problem_at_once() {
        let request = api::CreateCredential {
            name: " ".into(),
            provider: "nope".into(),
            credential: CredentialInput::default(),
            expires_at: Some("soon".into()),
        };
        let Err(problems) = new_credential(request) else {
            panic!("accepted");
        };
        let codes: Vec<&str> = problems.iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            ["name.empty", "provider.unknown", "timestamp.invalid"]
        );
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

    fn edit_request(json: &str) -> Result<EditModel, serde_json::Error> {
        serde_json::from_str::<EditModel>(json)
    }

    fn capabilities_after(json: &str, base: Capabilities) -> Capabilities {
        let request = edit_request(json).unwrap();
        capabilities(request.capabilities.unwrap(), base).unwrap_or_else(|_| panic!("parses"))
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
        let request = edit_request(r#"{"input_cost_per_token":null}"#).unwrap();
        // Then the input cost is present as null, which parses to "not set"
        assert_eq!(request.input_cost_per_token, Some(Value::Null));
        assert_eq!(
            cost("input_cost_per_token", &Value::Null).map(|c| c.is_none()),
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
            let absent = edit_request("{}").unwrap();
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
            let Err(refused) = edit_request(&format!(r#"{{"{field}":null}}"#)) else {
                panic!("{field}: null accepted")
            };
            assert!(
                refused.to_string().contains("null cannot clear this field"),
                "{field}: {refused}"
            );
            // And the client hears why, not only that the value is invalid
            let told = crate::JsonMistake::of(&refused).detail.unwrap_or_default();
            assert!(told.starts_with(api::NULL_REFUSED), "{field}: {told}");
        }
        // And the capability switches, whose "off" is false, refuse null too
        for switch in ["json_mode", "vision", "tool_use"] {
            let body = format!(r#"{{"capabilities":{{"{switch}":null}}}}"#);
            assert!(edit_request(&body).is_err(), "{switch}");
        }
    }

    #[test]
    fn a_value_for_a_field_that_cannot_be_cleared_still_parses() {
        let request = edit_request(
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
        max_tokens(&value).unwrap_err()
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
        assert_eq!(max_tokens(&value).map(MaxTokens::get), Ok(16000));
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
            cost("input_cost_per_token", &too_fine).unwrap_err().code,
            "cost.too_precise"
        );
        assert_eq!(
            cost("input_cost_per_token", &too_large).unwrap_err().code,
            "cost.too_large"
        );
        assert_eq!(
            cost("input_cost_per_token", &Value::from("1".repeat(40)))
                .unwrap_err()
                .code,
            "cost.too_large"
        );
    }

    fn credential(json: &str) -> CredentialInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_credential_takes_the_shape_its_provider_takes() {
        // An API key for OpenAI; an IAM pair or a Bedrock API key for Bedrock
        assert!(
            secret(
                credential(r#"{"api_key":"sk-abcdefghijklmnop"}"#),
                Provider::Openai
            )
            .is_ok()
        );
        let pair = r#"{"access_key_id":"AKIAIOSFODNN7EXAMPLE","secret_access_key":"wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"}"#;
        assert!(secret(credential(pair), Provider::Bedrock).is_ok());
        let code = |json: &str, provider| secret(credential(json), provider).err().map(|i| i.code);
        // A key pair for OpenAI, a plain key for Bedrock, or a session token beside an API key
        assert_eq!(code(pair, Provider::Openai), Some("credential.wrong_shape"));
        assert_eq!(
            code(r#"{"api_key":"sk-abcdefghijklmnop"}"#, Provider::Bedrock),
            Some("credential.wrong_shape")
        );
        assert_eq!(
            code(
                r#"{"api_key":"sk-abcdefghijklmnop","session_token":"tok-abcdefghijk"}"#,
                Provider::Openai
            ),
            Some("credential.wrong_shape")
        );
        // Half a pair names the missing half; nothing names what the provider needs
        assert_eq!(
            code(
                r#"{"access_key_id":"AKIAIOSFODNN7EXAMPLE"}"#,
                Provider::Bedrock
            ),
            Some("credential.missing_field")
        );
        let missing = |provider| secret(credential("{}"), provider).err().map(|i| i.field);
        assert_eq!(missing(Provider::Bedrock), Some("credential.access_key_id"));
        assert_eq!(missing(Provider::Anthropic), Some("credential.api_key"));
    }
}
