//! Turning a provider's answer into an outcome class: reading the error envelopes providers
//! use, the retry-after signals, and the status rules shared by every provider. Each provider
//! module adds its quirks in front of [`by_status`].

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::OutcomeClass;
use crate::http::Reply;

/// Longest wait we pass on; a provider asking for more is treated as asking for this.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(24 * 60 * 60);

/// A classified answer or failure, before redaction and timing make it an [`crate::Outcome`].
/// Its `Debug` leaves the unredacted message out.
pub(crate) struct Verdict {
    pub(crate) class: OutcomeClass,
    pub(crate) status: Option<u16>,
    /// Unredacted: it may quote the key. Only [`crate::Outcome::new`] reads it, redacting.
    pub(crate) message: Option<String>,
    pub(crate) retry_after: Option<Duration>,
}

impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verdict")
            .field("class", &self.class)
            .field("status", &self.status)
            .field(
                "message_chars",
                &self.message.as_ref().map(|m| m.chars().count()),
            )
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

impl Verdict {
    pub(crate) fn new(class: OutcomeClass, message: impl Into<String>) -> Self {
        Self {
            class,
            status: None,
            message: Some(message.into()),
            retry_after: None,
        }
    }

    pub(crate) fn ok(reply: &Reply) -> Self {
        Self {
            class: OutcomeClass::Ok,
            status: Some(reply.status),
            message: None,
            retry_after: None,
        }
    }

    /// A 2xx that is not the provider's shape.
    pub(crate) fn not_the_shape(reply: &Reply, expected: &str) -> Self {
        Self {
            class: OutcomeClass::BadResponse,
            status: Some(reply.status),
            message: Some(format!("expected {expected}, got {}", describe_body(reply))),
            retry_after: None,
        }
    }

    /// An error answer of the given class, carrying the provider's message and retry-after.
    pub(crate) fn from_error(reply: &Reply, info: &ErrorInfo, class: OutcomeClass) -> Self {
        let retry_after = match class {
            OutcomeClass::RateLimited | OutcomeClass::ProviderUnavailable => {
                retry_after_header(reply).or(info.retry_delay)
            }
            _ => None,
        };
        let message = match &info.message {
            Some(message) => message.clone(),
            None => describe_body(reply),
        };
        Self {
            class,
            status: Some(reply.status),
            message: Some(message),
            retry_after,
        }
    }
}

/// What a provider's error body said, from whichever envelope it used.
#[derive(Debug, Default)]
pub(crate) struct ErrorInfo {
    /// `error.code` (a string, or a number as text) or a top-level `code`.
    pub(crate) code: Option<String>,
    /// `error.type`, `error_type`, a top-level `type`, or Bedrock's error name.
    pub(crate) kind: Option<String>,
    /// Gemini's `error.status` (`INVALID_ARGUMENT`, `NOT_FOUND`, …).
    pub(crate) status_name: Option<String>,
    /// Gemini's `error.details[].reason` (`API_KEY_INVALID`).
    pub(crate) reasons: Vec<String>,
    pub(crate) message: Option<String>,
    /// Gemini's `RetryInfo.retryDelay`.
    pub(crate) retry_delay: Option<Duration>,
    /// Whether the body was a JSON error envelope at all.
    pub(crate) is_envelope: bool,
}

impl ErrorInfo {
    /// Reads the envelopes of section 0–9 of the reference: `{"error":{message,type,code}}`
    /// (OpenAI, Together, Ollama, vLLM new, OpenRouter, Anthropic, Gemini), `{"error":"…"}`
    /// (TGI, vLLM auth), flat `{message,type,code}` (Fireworks, vLLM old) and Bedrock's
    /// `{"message"}` / `{"Message"}` with the `x-amzn-ErrorType` header.
    pub(crate) fn read(reply: &Reply) -> Self {
        let mut info = Self {
            kind: reply.amzn_error_type(),
            ..Self::default()
        };
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&reply.body) else {
            return info;
        };
        match body.get("error") {
            Some(Value::Object(error)) => {
                info.is_envelope = true;
                info.message = text(error.get("message"));
                info.code = text(error.get("code"));
                info.kind = info.kind.or_else(|| text(error.get("type")));
                info.status_name = text(error.get("status"));
                if let Some(Value::Array(details)) = error.get("details") {
                    for detail in details {
                        if let Some(reason) = text(detail.get("reason")) {
                            info.reasons.push(reason);
                        }
                        if let Some(delay) = detail.get("retryDelay").and_then(Value::as_str) {
                            info.retry_delay = parse_seconds_suffix(delay);
                        }
                    }
                }
            }
            Some(Value::String(message)) => {
                info.is_envelope = true;
                info.message = Some(message.clone());
                info.kind = info.kind.or_else(|| text(body.get("error_type")));
            }
            _ => {
                let message = text(body.get("message")).or_else(|| text(body.get("Message")));
                info.is_envelope = message.is_some();
                info.message = message;
                info.code = text(body.get("code"));
                info.kind = info.kind.or_else(|| text(body.get("type"))).or_else(|| {
                    text(body.get("__type"))
                        .map(|t| t.rsplit('#').next().unwrap_or_default().to_owned())
                });
            }
        }
        info
    }

    /// Codes, types, status names and reasons, lowercased, for matching.
    fn labels(&self) -> Vec<String> {
        self.code
            .iter()
            .chain(self.kind.iter())
            .chain(self.status_name.iter())
            .chain(self.reasons.iter())
            .map(|label| label.to_ascii_lowercase())
            .collect()
    }

    pub(crate) fn has_label(&self, wanted: &str) -> bool {
        self.labels().iter().any(|label| label == wanted)
    }

    pub(crate) fn message_contains(&self, needle: &str) -> bool {
        self.message
            .as_deref()
            .is_some_and(|m| m.to_ascii_lowercase().contains(needle))
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

const QUOTA_LABELS: &[&str] = &[
    "insufficient_quota",
    "billing_error",
    "billing_not_active",
    "insufficient_credits",
    "payment_required",
    "servicequotaexceededexception",
];
const QUOTA_PHRASES: &[&str] = &[
    "credit balance",
    "insufficient credit",
    "insufficient balance",
    "billing is not active",
];
const AUTH_LABELS: &[&str] = &[
    "invalid_api_key",
    "authentication_error",
    "api_key_invalid",
    "unrecognizedclientexception",
    "invalidsignatureexception",
    "incompletesignatureexception",
    "unauthenticated",
];
const AUTH_PHRASES: &[&str] = &[
    "api key not valid",
    "api key not found",
    "invalid api key",
    "incorrect api key",
    "invalid x-api-key",
    "authentication failed",
    "security token included in the request is invalid",
    "signature we calculated does not match",
    "invalid credentials",
    "invalid token",
];
const UNSUPPORTED_LABELS: &[&str] = &["unsupported_parameter", "unsupported_value"];
const UNSUPPORTED_PHRASES: &[&str] = &[
    "unsupported",
    "not supported",
    "does not support",
    "doesn't support",
    "unrecognized",
    "unknown parameter",
    "unknown field",
    "unknown name",
    "extra inputs",
    "extraneous",
    "not permitted",
];

/// The rules every provider shares, by what the body says first and the status second.
pub(crate) fn by_status(status: u16, info: &ErrorInfo) -> OutcomeClass {
    if status == 402
        || QUOTA_LABELS.iter().any(|l| info.has_label(l))
        || QUOTA_PHRASES.iter().any(|p| info.message_contains(p))
    {
        return OutcomeClass::QuotaExceeded;
    }
    if status == 401
        || AUTH_LABELS.iter().any(|l| info.has_label(l))
        || (matches!(status, 400 | 403) && AUTH_PHRASES.iter().any(|p| info.message_contains(p)))
    {
        return OutcomeClass::AuthInvalid;
    }
    match status {
        403 => OutcomeClass::PermissionDenied,
        404 => OutcomeClass::ModelNotFound,
        408 => OutcomeClass::Timeout,
        429 => OutcomeClass::RateLimited,
        400 | 422 => rejected_request(info),
        500..=599 => OutcomeClass::ProviderUnavailable,
        _ => OutcomeClass::BadResponse,
    }
}

/// A 400/422 for our minimal request: a parameter the model refuses, else the model itself.
pub(crate) fn rejected_request(info: &ErrorInfo) -> OutcomeClass {
    if UNSUPPORTED_LABELS.iter().any(|l| info.has_label(l))
        || UNSUPPORTED_PHRASES.iter().any(|p| info.message_contains(p))
    {
        return OutcomeClass::UnsupportedParameter;
    }
    if info.message_contains("model") || info.has_label("model_not_found") {
        return OutcomeClass::ModelNotFound;
    }
    OutcomeClass::UnsupportedParameter
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after_header(reply: &Reply) -> Option<Duration> {
    let raw = reply.header("retry-after")?;
    parse_retry_after(raw, SystemTime::now())
}

pub(crate) fn parse_retry_after(raw: &str, now: SystemTime) -> Option<Duration> {
    let raw = raw.trim();
    let wait = match raw.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(raw).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(RETRY_AFTER_MAX))
}

/// Google's duration text: `"31s"`, `"1.5s"`.
fn parse_seconds_suffix(raw: &str) -> Option<Duration> {
    let seconds: f64 = raw.strip_suffix('s')?.parse().ok()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(
        seconds.min(RETRY_AFTER_MAX.as_secs_f64()),
    ))
}

/// A short description of a body that is not what we expected.
pub(crate) fn describe_body(reply: &Reply) -> String {
    let content_type = reply.header("content-type").unwrap_or("no content type");
    let text = String::from_utf8_lossy(&reply.body);
    let snippet: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let snippet: String = snippet.chars().take(160).collect();
    if snippet.is_empty() {
        return format!("an empty body ({content_type})");
    }
    format!(
        "a {content_type} body of {} bytes: {snippet}",
        reply.body.len()
    )
}

/// Parses a 2xx body as a JSON object, or says why it is not the provider's shape.
pub(crate) fn json_object(
    reply: &Reply,
    expected: &str,
) -> Result<serde_json::Map<String, Value>, Verdict> {
    match serde_json::from_slice::<Value>(&reply.body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(Verdict::not_the_shape(reply, expected)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("99999999", now), Some(RETRY_AFTER_MAX));
        assert_eq!(
            parse_seconds_suffix("1.5s"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_seconds_suffix("-1s"), None);
    }
}
