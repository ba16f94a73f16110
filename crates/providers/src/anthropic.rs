//! Anthropic Messages API (reference §2): `POST {base}/v1/messages`, the key in `x-api-key`
//! (`Authorization: Bearer` is for OAuth tokens only), `anthropic-version: 2023-06-01`, and
//! the required `max_tokens`.
//!
//! Quirks: errors are `{"type":"error","error":{"type","message"}}` and the type is the
//! stable part; `billing_error` (and a 400 "credit balance is too low") is a quota problem;
//! 529 `overloaded_error` is the provider's side.

use domain::provider::{CredentialSecret, Provider, ProviderModelId};
use reqwest::header::HeaderName;
use serde_json::{Value, json};

use crate::OutcomeClass;
use crate::classify::{ErrorInfo, Verdict, by_status, json_object};
use crate::http::{Call, Reply};
use crate::{TEST_MAX_TOKENS, TEST_PROMPT, api_key, join};

pub(crate) const API_VERSION: &str = "2023-06-01";

pub(crate) fn call(
    base: &str,
    model: &ProviderModelId,
    credential: Option<&CredentialSecret>,
) -> Result<Call, Verdict> {
    let key = api_key(Provider::Anthropic, credential)?;
    let body = json!({
        "model": model.as_str(),
        "max_tokens": TEST_MAX_TOKENS,
        "messages": [{"role": "user", "content": TEST_PROMPT}],
    });
    let mut call = Call::json(join(base, "/v1/messages")?, &body);
    call.header("anthropic-version", API_VERSION);
    call.secret_header(HeaderName::from_static("x-api-key"), key.expose_secret())?;
    Ok(call)
}

pub(crate) fn classify(reply: &Reply) -> Verdict {
    if !reply.is_success() {
        let info = ErrorInfo::read(reply);
        let class = match info.kind.as_deref() {
            Some("authentication_error") => OutcomeClass::AuthInvalid,
            Some("permission_error") => OutcomeClass::PermissionDenied,
            Some("not_found_error") => OutcomeClass::ModelNotFound,
            Some("rate_limit_error") => OutcomeClass::RateLimited,
            Some("billing_error") => OutcomeClass::QuotaExceeded,
            Some("overloaded_error" | "api_error") => OutcomeClass::ProviderUnavailable,
            Some("gateway_timeout_error") => OutcomeClass::Timeout,
            _ => by_status(reply.status, &info),
        };
        return Verdict::from_error(reply, &info, class);
    }
    let body = match json_object(reply, "a message object") {
        Ok(body) => body,
        Err(verdict) => return verdict,
    };
    // Any stop reason is a working connection: `max_tokens` is expected with a 16-token budget.
    let is_message = body.get("type").and_then(Value::as_str) == Some("message")
        && body.get("content").is_some_and(Value::is_array);
    match is_message {
        true => Verdict::ok(reply),
        false => Verdict::not_the_shape(reply, "a message object"),
    }
}
