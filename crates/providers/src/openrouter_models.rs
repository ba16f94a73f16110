//! OpenRouter's models API (`GET {base}/models`): the call, its pages, and what each model's
//! fields mean as catalog facts. Sans IO but for [`list_models`], which sends the calls
//! through `http.rs`.
//!
//! The answer is `{"data":[Model…], "links":{"next":"/api/v1/models?offset=…&limit=…"}}`
//! (`links.next` absent or null on the last page). A model has `id`, `name`,
//! `context_length`, `architecture{input_modalities}`, `pricing{prompt, completion, …}`
//! (decimal strings, USD per token), `top_provider{context_length, max_completion_tokens}`,
//! `supported_parameters[]` and `expiration_date`. The mapping (a fact the answer does not
//! give stays unknown, never invented):
//!
//! - `supported_parameters` (when present): `tools` → tool use; `response_format` or
//!   `structured_outputs` → JSON mode; `reasoning` or `include_reasoning` → extended
//!   reasoning, taken as OpenRouter's unified `reasoning.effort` (its reasoning-tokens docs:
//!   effort or max_tokens, it maps one to the other per upstream), else no reasoning.
//! - `architecture.input_modalities` (when present) containing `image` → vision.
//! - `pricing.prompt` / `pricing.completion` → exact input / output cost per token; a price
//!   that is not a plain non-negative decimal (OpenRouter writes `-1` for a router's
//!   variable price) stays unknown.
//! - `context_length` (else `top_provider.context_length`) → context length;
//!   `top_provider.max_completion_tokens` → max completion tokens.
//! - `expiration_date` → the day the upstream stops serving the model.

use std::collections::BTreeMap;

use domain::catalog::{Day, FactName, FactValue, Upstream};
use domain::provider::Provider;
use domain::values::{Cost, ReasoningParam};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrets::Secret;
use serde_json::Value;

use crate::http::{self, Call};
use crate::redact::Redactor;
use crate::{Client, Settings, join};

/// Most pages followed in one listing: far beyond any real catalog, short of a loop.
pub const MAX_PAGES: usize = 100;
/// Largest page read (the whole list is a few MB with descriptions).
pub const MAX_PAGE_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelsError {
    #[error("OpenRouter's models API answered HTTP {status}")]
    Status { status: u16 },
    #[error("OpenRouter's models API could not be reached: {0}")]
    Transport(String),
    #[error("the models list is not in OpenRouter's documented shape: {0}")]
    Shape(String),
    #[error("the models list kept paging past {MAX_PAGES} pages")]
    TooManyPages,
}

/// One page of the answer: its models and the query of the next page, if any.
#[derive(Debug)]
pub struct Page {
    pub models: Vec<Upstream>,
    /// The query string of `links.next` (`offset=…&limit=…`), asked of our own base URL.
    pub next: Option<String>,
}

/// The source name a sync records for facts read from `base`.
pub fn source_name(base: &str) -> String {
    format!("OpenRouter models API ({base}/models)")
}

/// Reads one page. A model without an `id` is skipped; a body that is not a `data` array is
/// refused.
pub fn read_page(body: &[u8]) -> Result<Page, ModelsError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ModelsError::Shape(format!("not JSON: {e}")))?;
    let data = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ModelsError::Shape("no data array".into()))?;
    let models = data.iter().filter_map(model).collect();
    let next = value
        .pointer("/links/next")
        .and_then(Value::as_str)
        .and_then(|next| next.split_once('?').map(|(_, query)| query.to_owned()))
        .filter(|query| !query.is_empty());
    Ok(Page { models, next })
}

/// What one model's fields say, as facts.
fn model(value: &Value) -> Option<Upstream> {
    let id = value.get("id")?.as_str()?.trim();
    if id.is_empty() {
        return None;
    }
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(id);
    let mut facts = BTreeMap::new();
    if let Some(parameters) = value.get("supported_parameters").and_then(Value::as_array) {
        let has = |p: &str| parameters.iter().any(|v| v.as_str() == Some(p));
        facts.insert(FactName::ToolUse, FactValue::Flag(has("tools")));
        facts.insert(
            FactName::JsonMode,
            FactValue::Flag(has("response_format") || has("structured_outputs")),
        );
        let reasoning =
            (has("reasoning") || has("include_reasoning")).then_some(ReasoningParam::Effort);
        facts.insert(FactName::Reasoning, FactValue::Reasoning(reasoning));
    }
    if let Some(modalities) = value
        .pointer("/architecture/input_modalities")
        .and_then(Value::as_array)
    {
        let image = modalities.iter().any(|m| m.as_str() == Some("image"));
        facts.insert(FactName::Vision, FactValue::Flag(image));
    }
    for (pointer, fact) in [
        ("/pricing/prompt", FactName::InputCost),
        ("/pricing/completion", FactName::OutputCost),
    ] {
        if let Some(cost) = value
            .pointer(pointer)
            .and_then(Value::as_str)
            .and_then(|raw| Cost::parse("pricing", raw).ok())
        {
            facts.insert(fact, FactValue::Cost(cost));
        }
    }
    let tokens = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
    };
    if let Some(length) =
        tokens("/context_length").or_else(|| tokens("/top_provider/context_length"))
    {
        facts.insert(FactName::ContextLength, FactValue::Tokens(length));
    }
    if let Some(max) = tokens("/top_provider/max_completion_tokens") {
        facts.insert(FactName::MaxCompletionTokens, FactValue::Tokens(max));
    }
    if let Some(day) = value
        .get("expiration_date")
        .and_then(Value::as_str)
        .and_then(|raw| Day::parse(raw).ok())
    {
        facts.insert(FactName::ExpirationDate, FactValue::Date(day));
    }
    Some(Upstream {
        id: id.to_owned(),
        name: name.to_owned(),
        facts,
    })
}

/// The call for one page: `GET {base}/models[?query]`, with the platform key when there is
/// one (the list is public, but the key's view is the platform's).
fn call(base: &str, query: Option<&str>, key: Option<&Secret>) -> Result<Call, ModelsError> {
    let mut url = join(base, "/models")
        .map_err(|_| ModelsError::Shape("the base URL is not a URL".into()))?;
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    let mut call = Call::get(url);
    if let Some(key) = key {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).map_err(|_| {
                ModelsError::Transport("the platform key cannot be sent in a header".into())
            })?;
        value.set_sensitive(true);
        call.headers.push((AUTHORIZATION, value));
    }
    Ok(call)
}

/// Lists every model, following `links.next` (its query, asked of our own base URL, so a
/// page cannot send the key elsewhere) up to [`MAX_PAGES`]. A model listed twice counts once.
pub async fn list_models(
    client: &Client,
    settings: &Settings,
    key: Option<&Secret>,
) -> Result<Vec<Upstream>, ModelsError> {
    let base = settings
        .base_url(Provider::Openrouter, None)
        .ok_or_else(|| ModelsError::Transport("no OpenRouter base URL".into()))?;
    let redactor = Redactor::new(key.map(Secret::expose_secret).into_iter().collect());
    let mut models: Vec<Upstream> = Vec::new();
    let mut query: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let call = call(&base, query.as_deref(), key)?;
        let reply = http::execute(&client.http, call, MAX_PAGE_BYTES)
            .await
            .map_err(|verdict| {
                let message = verdict
                    .message
                    .unwrap_or_else(|| "the request failed".into());
                ModelsError::Transport(redactor.redact(&message))
            })?;
        if !reply.is_success() {
            return Err(ModelsError::Status {
                status: reply.status,
            });
        }
        let page = read_page(&reply.body)?;
        for model in page.models {
            if !models.iter().any(|m| m.id == model.id) {
                models.push(model);
            }
        }
        match page.next {
            Some(next) if Some(&next) != query.as_ref() => query = Some(next),
            _ => return Ok(models),
        }
    }
    Err(ModelsError::TooManyPages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_map_to_facts_and_what_is_missing_stays_unknown() {
        let body = br#"{"data":[
            {"id":"google/gemini-3.1-pro-preview","name":"Google: Gemini 3.1 Pro","context_length":1048576,
             "architecture":{"input_modalities":["text","image"],"output_modalities":["text"]},
             "pricing":{"prompt":"0.000002","completion":"0.000012","request":"0"},
             "top_provider":{"context_length":1048576,"max_completion_tokens":65536},
             "supported_parameters":["tools","response_format","reasoning","max_tokens"],
             "expiration_date":null},
            {"id":"openrouter/auto","name":"Auto","pricing":{"prompt":"-1","completion":"-1"},
             "expiration_date":"2026-06-30"},
            {"name":"no id"}
        ],"links":{"next":"/api/v1/models?offset=2&limit=2"}}"#;
        let page = read_page(body).unwrap();
        assert_eq!(page.next.as_deref(), Some("offset=2&limit=2"));
        assert_eq!(page.models.len(), 2);
        let gemini = &page.models[0];
        let fact = |name| gemini.facts.get(&name).map(ToString::to_string);
        assert_eq!(fact(FactName::ToolUse).as_deref(), Some("true"));
        assert_eq!(fact(FactName::JsonMode).as_deref(), Some("true"));
        assert_eq!(fact(FactName::Vision).as_deref(), Some("true"));
        assert_eq!(fact(FactName::Reasoning).as_deref(), Some("effort"));
        assert_eq!(fact(FactName::InputCost).as_deref(), Some("0.000002"));
        assert_eq!(fact(FactName::OutputCost).as_deref(), Some("0.000012"));
        assert_eq!(fact(FactName::ContextLength).as_deref(), Some("1048576"));
        assert_eq!(
            fact(FactName::MaxCompletionTokens).as_deref(),
            Some("65536")
        );
        assert_eq!(fact(FactName::ExpirationDate), None);
        // A variable price and absent parameters are unknown, not zero or "no".
        let auto = &page.models[1];
        assert!(!auto.facts.contains_key(&FactName::InputCost));
        assert!(!auto.facts.contains_key(&FactName::ToolUse));
        assert_eq!(
            auto.facts
                .get(&FactName::ExpirationDate)
                .map(ToString::to_string)
                .as_deref(),
            Some("2026-06-30")
        );
        assert!(matches!(read_page(b"{}"), Err(ModelsError::Shape(_))));
    }

    #[test]
    fn the_key_travels_as_a_sensitive_bearer_header_only() {
        let key = Secret::new("sk-or-v1-canary".to_owned());
        let call = call("https://openrouter.ai/api/v1", Some("offset=5"), Some(&key)).unwrap();
        assert_eq!(call.url, "https://openrouter.ai/api/v1/models?offset=5");
        assert_eq!(call.method, reqwest::Method::GET);
        assert!(call.headers.iter().all(|(_, v)| v.is_sensitive()));
    }
}
