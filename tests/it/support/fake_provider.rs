//! A fake LLM provider on 127.0.0.1 for suites that need a passing (or failing) Test
//! Connection: OpenAI-style chat completions, Anthropic messages and Bedrock Converse (signed
//! with SigV4 for the signing name `bedrock`, or a Bedrock API key). A key containing
//! `sk-bad-` is refused with 401 in the provider's error shape (a bare `bad` would also match
//! a random hex secret now and then); a key containing `sk-limited-` is refused with 403 for
//! the model `strict` only (one model of several failing a key). It counts the requests it
//! saw.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

pub(crate) struct FakeProvider {
    pub base: String,
    pub requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeProvider {
    pub(crate) async fn start() -> Self {
        let requests = Arc::new(AtomicUsize::new(0));
        let (chat_count, messages_count) = (Arc::clone(&requests), Arc::clone(&requests));
        let converse_count = Arc::clone(&requests);
        let app = Router::new()
            .route(
                "/v1/chat/completions",
                post(move |headers: HeaderMap, body: axum::body::Bytes| {
                    chat(headers, body, Arc::clone(&chat_count))
                }),
            )
            .route(
                "/v1/messages",
                post(move |headers: HeaderMap| messages(headers, Arc::clone(&messages_count))),
            )
            .route(
                "/model/{id}/converse",
                post(move |headers: HeaderMap| converse(headers, Arc::clone(&converse_count))),
            );
        let (base, task) = super::serve_local(app).await;
        Self {
            base,
            requests,
            task,
        }
    }

    /// The base URL of an OpenAI-compatible server (also the `openai` provider's base).
    pub(crate) fn v1(&self) -> String {
        format!("{}/v1", self.base)
    }

    pub(crate) fn seen(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What marks a key the fake refuses.
const BAD_KEY: &str = "sk-bad-";
/// What marks a key the model `strict` refuses.
const LIMITED_KEY: &str = "sk-limited-";

/// A request for the model `slow` is answered after [`SLOW`], for tests that kill a worker
/// mid-call.
pub(crate) const SLOW: std::time::Duration = std::time::Duration::from_millis(1500);

async fn chat(headers: HeaderMap, body: axum::body::Bytes, count: Arc<AtomicUsize>) -> Response {
    count.fetch_add(1, Ordering::SeqCst);
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if request["model"] == "slow" {
        tokio::time::sleep(SLOW).await;
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth.contains(BAD_KEY) {
        let body = json!({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "code": "invalid_api_key"}});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    if request["model"] == "strict" && auth.contains(LIMITED_KEY) {
        let body = json!({"error": {"message": "This key may not use this model.", "type": "invalid_request_error", "code": "model_not_allowed"}});
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    });
    axum::Json(body).into_response()
}

/// Bedrock Converse: a SigV4 `Authorization` for the signing name `bedrock` with its
/// `x-amz-date`, or a Bearer API key; anything else, or a bad key, is Bedrock's 403.
async fn converse(headers: HeaderMap, count: Arc<AtomicUsize>) -> Response {
    count.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let signed = auth.starts_with("AWS4-HMAC-SHA256 Credential=")
        && auth.contains("/bedrock/aws4_request")
        && auth.contains("Signature=")
        && headers.contains_key("x-amz-date");
    let bearer = auth.starts_with("Bearer ");
    if !(signed || bearer) || auth.contains(BAD_KEY) {
        let body = json!({"message": "The security token included in the request is invalid."});
        return (
            StatusCode::FORBIDDEN,
            [("x-amzn-ErrorType", "UnrecognizedClientException")],
            axum::Json(body),
        )
            .into_response();
    }
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "pong"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}
    });
    axum::Json(body).into_response()
}

async fn messages(headers: HeaderMap, count: Arc<AtomicUsize>) -> Response {
    count.fetch_add(1, Ordering::SeqCst);
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if key.is_empty() || key.contains(BAD_KEY) {
        let body = json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let body = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "fake",
        "content": [{"type": "text", "text": "pong"}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 1, "output_tokens": 1}
    });
    axum::Json(body).into_response()
}
