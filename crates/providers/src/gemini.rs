//! Google Gemini API (reference §3): `POST {base}/models/{model}:generateContent` with
//! `generationConfig.maxOutputTokens`. The key goes in the `x-goog-api-key` header, never in
//! the URL (`?key=` would reach proxy and access logs).
//!
//! Quirks: an invalid key is a **400** `INVALID_ARGUMENT` with reason `API_KEY_INVALID` (the
//! shared rules read the reason and the message); 429 `RESOURCE_EXHAUSTED` says "quota" but
//! is a rate limit, with `RetryInfo.retryDelay`; a `MAX_TOKENS` candidate may have no parts
//! when thinking spent the budget, and still counts as a working connection.

use domain::provider::{CredentialSecret, Provider, ProviderModelId};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::HeaderName;
use serde_json::{Value, json};

use crate::OutcomeClass;
use crate::classify::{ErrorInfo, Verdict, by_status, json_object};
use crate::http::{Call, Reply};
use crate::{TEST_MAX_TOKENS, TEST_PROMPT, api_key, join};

/// A path segment keeps only unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn call(
    base: &str,
    model: &ProviderModelId,
    credential: Option<&CredentialSecret>,
) -> Result<Call, Verdict> {
    let key = api_key(Provider::Gemini, credential)?;
    let name = model.as_str();
    let name = name.strip_prefix("models/").unwrap_or(name);
    let path = format!(
        "/models/{}:generateContent",
        utf8_percent_encode(name, SEGMENT)
    );
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": TEST_PROMPT}]}],
        "generationConfig": {"maxOutputTokens": TEST_MAX_TOKENS},
    });
    let mut call = Call::json(join(base, &path)?, &body);
    call.secret_header(
        HeaderName::from_static("x-goog-api-key"),
        key.expose_secret(),
    )?;
    Ok(call)
}

pub(crate) fn classify(reply: &Reply) -> Verdict {
    if !reply.is_success() {
        let info = ErrorInfo::read(reply);
        let class = match (reply.status, info.status_name.as_deref()) {
            (429, _) | (_, Some("RESOURCE_EXHAUSTED")) => OutcomeClass::RateLimited,
            // "User location is not supported for the API use."
            (400, Some("FAILED_PRECONDITION")) => OutcomeClass::PermissionDenied,
            _ => by_status(reply.status, &info),
        };
        return Verdict::from_error(reply, &info, class);
    }
    let body = match json_object(reply, "a generateContent response") {
        Ok(body) => body,
        Err(verdict) => return verdict,
    };
    let has_candidates = matches!(body.get("candidates"), Some(Value::Array(c)) if !c.is_empty());
    // A blocked prompt has no candidates but a promptFeedback: key and model were accepted.
    let prompt_feedback = body.get("promptFeedback").is_some_and(Value::is_object);
    match has_candidates || prompt_feedback {
        true => Verdict::ok(reply),
        false => Verdict::not_the_shape(reply, "a generateContent response with candidates"),
    }
}
