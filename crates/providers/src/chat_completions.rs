//! The OpenAI Chat Completions shape, shared by OpenAI, OpenRouter, Fireworks, Together,
//! HuggingFace (TGI) and OpenAI-compatible servers: the minimal request and the reading of the
//! answer. Each of those modules picks the budget field and adds its error quirks.

use reqwest::header::AUTHORIZATION;
use secrets::Secret;
use serde_json::{Value, json};

use crate::OutcomeClass;
use crate::classify::{ErrorInfo, Verdict, by_status, json_object};
use crate::http::{Call, Reply};
use crate::{TEST_MAX_TOKENS, TEST_PROMPT};

/// Which field carries the output budget.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BudgetField {
    /// OpenAI: `max_tokens` is deprecated and rejected by o-series models.
    MaxCompletionTokens,
    /// Everyone else.
    MaxTokens,
}

/// Extra error rules of one provider, tried before the shared ones.
pub(crate) type Quirks = fn(&Reply, &ErrorInfo) -> Option<OutcomeClass>;

/// `POST {url}` with one short user message and a tiny budget, bearer-authenticated when a key
/// is given.
pub(crate) fn call(
    url: String,
    model: &str,
    key: Option<&Secret>,
    budget: BudgetField,
) -> Result<Call, Verdict> {
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": TEST_PROMPT}],
    });
    let field = match budget {
        BudgetField::MaxCompletionTokens => "max_completion_tokens",
        BudgetField::MaxTokens => "max_tokens",
    };
    body[field] = json!(TEST_MAX_TOKENS);
    let mut call = Call::json(url, &body);
    if let Some(key) = key {
        // Built inside a Secret, so the copy is wiped on drop too.
        let bearer = Secret::new(format!("Bearer {}", key.expose_secret()));
        call.secret_header(AUTHORIZATION, bearer.expose_secret())?;
    }
    Ok(call)
}

/// Any answer: a chat completion is ok whatever its finish reason (`length` included: the
/// budget is tiny on purpose); an error is classified by `quirks`, then the shared rules.
pub(crate) fn classify(reply: &Reply, quirks: Quirks) -> Verdict {
    if !reply.is_success() {
        let info = ErrorInfo::read(reply);
        let class = quirks(reply, &info).unwrap_or_else(|| by_status(reply.status, &info));
        return Verdict::from_error(reply, &info, class);
    }
    let body = match json_object(reply, "a chat completion with choices") {
        Ok(body) => body,
        Err(verdict) => return verdict,
    };
    // OpenRouter reports errors met after the 200 was sent in the body.
    if let Some(Value::Object(error)) = body.get("error") {
        let info = ErrorInfo::read(reply);
        let status = error
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500);
        let class = quirks(reply, &info).unwrap_or_else(|| by_status(status, &info));
        return Verdict::from_error(reply, &info, class);
    }
    let first = match body.get("choices") {
        Some(Value::Array(choices)) => choices.first().and_then(Value::as_object),
        _ => None,
    };
    let Some(first) = first else {
        return Verdict::not_the_shape(reply, "a chat completion with choices");
    };
    if !first.contains_key("message") && !first.contains_key("finish_reason") {
        return Verdict::not_the_shape(reply, "a chat completion choice with a message");
    }
    if first.get("finish_reason").and_then(Value::as_str) == Some("error") {
        let message = first
            .get("error")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("the provider stopped with finish_reason \"error\"");
        let mut verdict = Verdict::new(OutcomeClass::ProviderUnavailable, message);
        verdict.status = Some(reply.status);
        return verdict;
    }
    Verdict::ok(reply)
}

/// No quirks: the shared rules alone.
pub(crate) fn no_quirks(_: &Reply, _: &ErrorInfo) -> Option<OutcomeClass> {
    None
}

/// For user-run servers (TGI, vLLM, Ollama, gateways) a 404 that is not a JSON error is the
/// wrong URL, not an unknown model.
pub(crate) fn self_hosted_quirks(reply: &Reply, info: &ErrorInfo) -> Option<OutcomeClass> {
    (reply.status == 404 && !info.is_envelope).then_some(OutcomeClass::BadResponse)
}
