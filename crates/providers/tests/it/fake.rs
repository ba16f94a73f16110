//! A fake provider server on 127.0.0.1:0 that speaks each provider's documented wire format
//! (paths, auth headers, status codes and error bodies of `shared/reference/providers.md`) and
//! checks what it receives: the credential, the auth and version headers, no key in a Gemini
//! URL, a tiny token budget, one user message, and for Bedrock a SigV4 signature recomputed
//! with the AWS SDK's signer from the request as received.
//!
//! Each path prefix is one provider (`/openai/v1`, `/anthropic`, `/gemini/v1beta`,
//! `/openrouter/api/v1`, `/fireworks/inference/v1`, `/together/v1`, `/bedrock`, `/hf`,
//! `/compat/v1`). The model id picks the scenario (`pass`, `truncated`, `nosuchmodel`, …).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

pub(crate) const OPENAI_KEY: &str = "sk-proj-FakeOpenAIkey0123456789abcdefXYZ";
pub(crate) const ANTHROPIC_KEY: &str = "sk-ant-api03-FakeAnthropicKey0123456789xyz";
pub(crate) const GEMINI_KEY: &str = "AIzaSyFakeGeminiKey0123456789abcdefgh";
pub(crate) const OPENROUTER_KEY: &str = "sk-or-v1-fakeopenrouterkey0123456789abcdef";
pub(crate) const FIREWORKS_KEY: &str = "fw_FakeFireworksKey0123456789abc";
pub(crate) const TOGETHER_KEY: &str = "tgp_v1_FakeTogetherKey0123456789abc";
pub(crate) const HF_KEY: &str = "hf_FakeHuggingFaceToken0123456789abc";
pub(crate) const COMPAT_KEY: &str = "vllm-FakeCompatKey0123456789abc";
pub(crate) const AWS_ACCESS_KEY_ID: &str = "AKIAFAKEEXAMPLE00001";
pub(crate) const AWS_SECRET_ACCESS_KEY: &str = "fakeSecretAccessKey/0123456789+abcdefghijk";
pub(crate) const AWS_SESSION_TOKEN: &str = "FwoGZXIvYXdzEFakeSessionToken0123456789abcdef";
pub(crate) const BEDROCK_API_KEY: &str = "ABSKFakeBedrockApiKey0123456789abcdef";
pub(crate) const AWS_REGION: &str = "us-east-1";

/// What the fake saw of one request.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub provider: String,
    /// Path and query, as received (still percent-encoded).
    pub uri: String,
    pub headers: HeaderMap,
    /// The credential as received: a key, or the access key ID of a SigV4 signature.
    pub credential: Option<String>,
    /// For SigV4: whether the signature matched the expected secret.
    pub signature_valid: Option<bool>,
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<Seen>>,
    violations: Mutex<Vec<String>>,
}

pub(crate) struct Fake {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Fake {
    pub(crate) async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self { addr, shared }
    }

    pub(crate) fn url(&self, prefix: &str) -> String {
        format!("http://{}{prefix}", self.addr)
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("lock").clone()
    }

    pub(crate) fn violations(&self) -> Vec<String> {
        self.shared.violations.lock().expect("lock").clone()
    }
}

/// The scenarios a model id can name, checked in this order.
const SCENARIOS: &[&str] = &[
    "pass",
    "truncated",
    "nosuchmodel",
    "legacymissing",
    "notavailable",
    "ratelimited",
    "quota",
    "unsupported",
    "denied",
    "overloaded",
    "slow",
    "html",
    "huge",
    "redirect",
    "echo",
    "midstream",
];

fn scenario_of(model: &str) -> &'static str {
    SCENARIOS
        .iter()
        .find(|s| model.contains(*s))
        .copied()
        .unwrap_or("pass")
}

/// A planned answer.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    content_type: &'static str,
    delay: Option<Duration>,
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
            content_type: "application/json",
            delay: None,
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn html() -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: b"<!doctype html><html><head><title>Sign in to the network</title></head><body>Captive portal</body></html>".to_vec(),
            content_type: "text/html; charset=utf-8",
            delay: None,
        }
    }

    fn huge() -> Self {
        let mut answer = Self::json(200, json!({"padding": "x".repeat(2 * 1024 * 1024)}));
        answer.content_type = "application/json";
        answer
    }

    fn redirect() -> Self {
        Self::json(302, json!({})).with("location", "http://169.254.169.254/latest/meta-data/")
    }

    fn slow(mut self) -> Self {
        self.delay = Some(Duration::from_secs(3));
        self
    }

    fn into_response(self) -> Response {
        let mut builder = Response::builder()
            .status(StatusCode::from_u16(self.status).expect("status"))
            .header("content-type", self.content_type);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        builder.body(Body::from(self.body)).expect("response")
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_else(|_| Bytes::new());
    let provider = parts
        .uri
        .path()
        .split('/')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut ctx = Ctx {
        shared: &shared,
        parts: &parts,
        body: &body,
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        seen: Seen {
            provider: provider.clone(),
            uri: parts.uri.to_string(),
            headers: parts.headers.clone(),
            credential: None,
            signature_valid: None,
        },
    };
    if parts.method != "POST" {
        ctx.violation(format!("method {}", parts.method));
    }
    if header(&parts.headers, "content-type") != Some("application/json") {
        ctx.violation("content-type is not application/json".to_owned());
    }
    let answer = match provider.as_str() {
        "openai" => openai(&mut ctx),
        "anthropic" => anthropic(&mut ctx),
        "gemini" => gemini(&mut ctx),
        "openrouter" => openrouter(&mut ctx),
        "fireworks" => fireworks(&mut ctx),
        "together" => together(&mut ctx),
        "bedrock" => bedrock(&mut ctx),
        "hf" => huggingface(&mut ctx),
        "compat" => compat(&mut ctx),
        _ => Answer {
            status: 404,
            headers: Vec::new(),
            body: b"404 page not found".to_vec(),
            content_type: "text/plain",
            delay: None,
        },
    };
    let seen = ctx.seen;
    shared.seen.lock().expect("lock").push(seen);
    if let Some(delay) = answer.delay {
        tokio::time::sleep(delay).await;
    }
    answer.into_response()
}

struct Ctx<'a> {
    shared: &'a Shared,
    parts: &'a Parts,
    body: &'a Bytes,
    json: Value,
    seen: Seen,
}

impl Ctx<'_> {
    fn violation(&self, what: String) {
        self.shared
            .violations
            .lock()
            .expect("lock")
            .push(format!("{} {}: {what}", self.seen.provider, self.seen.uri));
    }

    fn header(&self, name: &str) -> Option<&str> {
        header(&self.parts.headers, name)
    }

    fn expect_path(&self, path: &str) {
        if self.parts.uri.path() != path {
            self.violation(format!("path {} is not {path}", self.parts.uri.path()));
        }
    }

    fn expect_absent(&self, name: &str) {
        if self.header(name).is_some() {
            self.violation(format!("unexpected header {name}"));
        }
    }

    /// The budget at `pointer` is present and tiny; the `forbidden` fields are absent.
    fn expect_budget(&self, pointer: &str, forbidden: &[&str]) {
        match self.json.pointer(pointer).and_then(Value::as_u64) {
            Some(1..=16) => {}
            other => self.violation(format!("budget {pointer} is {other:?}, not 1..=16")),
        }
        for field in forbidden {
            if self.json.get(field).is_some() {
                self.violation(format!("field {field} must not be sent"));
            }
        }
    }

    /// Exactly one user message at `pointer`.
    fn expect_one_user_message(&self, pointer: &str) {
        let ok = self
            .json
            .pointer(pointer)
            .and_then(Value::as_array)
            .is_some_and(|m| m.len() == 1 && m[0]["role"] == "user");
        if !ok {
            self.violation(format!("{pointer} is not one user message"));
        }
    }

    /// The bearer token, recorded as the credential.
    fn bearer(&mut self) -> Option<String> {
        let token = self
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        self.seen.credential = token.clone();
        token
    }

    fn model(&self) -> String {
        self.json["model"].as_str().unwrap_or_default().to_owned()
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// An OpenAI-shaped chat completion.
fn completion(model: &str, finish_reason: &str) -> Value {
    let content = if finish_reason == "length" {
        ""
    } else {
        "pong"
    };
    json!({
        "id": "chatcmpl-fake1",
        "object": "chat.completion",
        "created": 1_767_000_000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": {
            "prompt_tokens": 8,
            "completion_tokens": 16,
            "total_tokens": 24,
            "completion_tokens_details": {"reasoning_tokens": if finish_reason == "length" { 16 } else { 0 }},
        },
    })
}

fn openai_error(status: u16, message: &str, kind: &str, code: Value) -> Answer {
    Answer::json(
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

/// Scenarios every provider answers the same way.
fn common(scenario: &str, pass: Value) -> Option<Answer> {
    match scenario {
        "pass" => Some(Answer::json(200, pass)),
        "slow" => Some(Answer::json(200, pass).slow()),
        "html" => Some(Answer::html()),
        "huge" => Some(Answer::huge()),
        "redirect" => Some(Answer::redirect()),
        _ => None,
    }
}

fn openai(ctx: &mut Ctx<'_>) -> Answer {
    ctx.expect_path("/openai/v1/chat/completions");
    ctx.expect_budget("/max_completion_tokens", &["max_tokens"]);
    ctx.expect_one_user_message("/messages");
    let model = ctx.model();
    let key = ctx.bearer();
    if scenario_of(&model) == "echo" {
        return echo(401, key.as_deref(), ctx.header("authorization"));
    }
    if key.as_deref() != Some(OPENAI_KEY) {
        // The real API quotes a masked key; the masking keeps the prefix and last four.
        let masked = key
            .as_deref()
            .map(|k| {
                format!(
                    "{}****{}",
                    &k[..8.min(k.len())],
                    &k[k.len().saturating_sub(4)..]
                )
            })
            .unwrap_or_default();
        return openai_error(
            401,
            &format!(
                "Incorrect API key provided: {masked}. You can find your API key at https://platform.openai.com/account/api-keys."
            ),
            "invalid_request_error",
            json!("invalid_api_key"),
        );
    }
    let scenario = scenario_of(&model);
    if let Some(answer) = common(scenario, completion(&model, "stop")) {
        return answer;
    }
    match scenario {
        "truncated" => Answer::json(200, completion(&model, "length")),
        "nosuchmodel" => openai_error(
            404,
            &format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            json!("model_not_found"),
        ),
        "ratelimited" => openai_error(
            429,
            "Rate limit reached for gpt-4.1 in organization org-fake on tokens per min (TPM): Limit 30000, Used 30000, Requested 20.",
            "tokens",
            json!("rate_limit_exceeded"),
        )
        .with("retry-after", "7"),
        "quota" => openai_error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            json!("insufficient_quota"),
        ),
        "unsupported" => openai_error(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
            "invalid_request_error",
            json!("unsupported_parameter"),
        ),
        "overloaded" => openai_error(
            503,
            "The engine is currently overloaded, please try again later",
            "server_error",
            Value::Null,
        ),
        _ => Answer::json(200, completion(&model, "stop")),
    }
}

fn anthropic_error(status: u16, kind: &str, message: &str) -> Answer {
    Answer::json(
        status,
        json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}),
    )
}

fn anthropic(ctx: &mut Ctx<'_>) -> Answer {
    ctx.expect_path("/anthropic/v1/messages");
    ctx.expect_budget("/max_tokens", &["max_completion_tokens"]);
    ctx.expect_one_user_message("/messages");
    ctx.expect_absent("authorization");
    if ctx.header("anthropic-version") != Some("2023-06-01") {
        ctx.violation("anthropic-version is not 2023-06-01".to_owned());
    }
    let model = ctx.model();
    let key = ctx.header("x-api-key").map(str::to_owned);
    ctx.seen.credential = key.clone();
    if scenario_of(&model) == "echo" {
        return echo(401, key.as_deref(), ctx.header("x-api-key"));
    }
    if key.as_deref() != Some(ANTHROPIC_KEY) {
        return anthropic_error(401, "authentication_error", "invalid x-api-key");
    }
    let message = |stop_reason: &str| {
        let content = if stop_reason == "max_tokens" {
            json!([{"type": "thinking", "thinking": "The user says ping", "signature": "sig"}])
        } else {
            json!([{"type": "text", "text": "pong"}])
        };
        json!({
            "id": "msg_01Fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": {"input_tokens": 8, "output_tokens": 16},
        })
    };
    let scenario = scenario_of(&model);
    if let Some(answer) = common(scenario, message("end_turn")) {
        return answer;
    }
    match scenario {
        "truncated" => Answer::json(200, message("max_tokens")),
        "nosuchmodel" => anthropic_error(404, "not_found_error", &format!("model: {model}")),
        "ratelimited" => anthropic_error(
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50 requests per minute.",
        )
        .with("retry-after", "12"),
        "quota" => anthropic_error(
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
        ),
        "overloaded" => anthropic_error(529, "overloaded_error", "Overloaded"),
        _ => Answer::json(200, message("end_turn")),
    }
}

fn gemini_error(status: u16, code_name: &str, message: &str, details: Value) -> Answer {
    Answer::json(
        status,
        json!({"error": {"code": status, "message": message, "status": code_name, "details": details}}),
    )
}

fn gemini(ctx: &mut Ctx<'_>) -> Answer {
    let path = ctx.parts.uri.path().to_owned();
    let model = path
        .strip_prefix("/gemini/v1beta/models/")
        .and_then(|rest| rest.strip_suffix(":generateContent"))
        .unwrap_or_default()
        .to_owned();
    if model.is_empty() {
        ctx.violation(format!(
            "path {path} is not /gemini/v1beta/models/{{model}}:generateContent"
        ));
    }
    ctx.expect_budget("/generationConfig/maxOutputTokens", &[]);
    ctx.expect_one_user_message("/contents");
    ctx.expect_absent("authorization");
    let key = ctx.header("x-goog-api-key").map(str::to_owned);
    ctx.seen.credential = key.clone();
    let uri = ctx.parts.uri.to_string();
    if uri.contains("key=")
        || key.as_deref().is_some_and(|k| uri.contains(k))
        || ctx.parts.uri.query().is_some()
    {
        ctx.violation("the Gemini URL carries a query or the key".to_owned());
    }
    if scenario_of(&model) == "echo" {
        return echo(400, key.as_deref(), ctx.header("x-goog-api-key"));
    }
    if key.as_deref() != Some(GEMINI_KEY) {
        return gemini_error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }]),
        );
    }
    let response = |finish: &str| {
        let content = if finish == "MAX_TOKENS" {
            json!({"role": "model"})
        } else {
            json!({"role": "model", "parts": [{"text": "pong"}]})
        };
        json!({
            "candidates": [{"content": content, "finishReason": finish, "index": 0}],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 0, "totalTokenCount": 17, "thoughtsTokenCount": 16},
            "modelVersion": model,
            "responseId": "fake-response",
        })
    };
    let scenario = scenario_of(&model);
    if let Some(answer) = common(scenario, response("STOP")) {
        return answer;
    }
    match scenario {
        "truncated" => Answer::json(200, response("MAX_TOKENS")),
        "nosuchmodel" => gemini_error(
            404,
            "NOT_FOUND",
            &format!(
                "models/{model} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods."
            ),
            json!([]),
        ),
        "ratelimited" => gemini_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            json!([
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "31s"},
            ]),
        ),
        _ => Answer::json(200, response("STOP")),
    }
}

fn openrouter_error(status: u16, message: &str) -> Answer {
    Answer::json(
        status,
        json!({"error": {"message": message, "code": status}, "user_id": "user_fake"}),
    )
}

fn openrouter(ctx: &mut Ctx<'_>) -> Answer {
    ctx.expect_path("/openrouter/api/v1/chat/completions");
    ctx.expect_budget("/max_tokens", &["max_completion_tokens"]);
    ctx.expect_one_user_message("/messages");
    let model = ctx.model();
    let key = ctx.bearer();
    if scenario_of(&model) == "echo" {
        return echo(401, key.as_deref(), ctx.header("authorization"));
    }
    if key.as_deref() != Some(OPENROUTER_KEY) {
        return openrouter_error(401, "User not found.");
    }
    let response = |finish: &str, native: &str| {
        let mut body = completion(&model, finish);
        body["id"] = json!("gen-fake");
        body["choices"][0]["native_finish_reason"] = json!(native);
        body
    };
    let scenario = scenario_of(&model);
    if let Some(answer) = common(scenario, response("stop", "stop")) {
        return answer;
    }
    match scenario {
        "truncated" => Answer::json(200, response("length", "MAX_TOKENS")),
        "nosuchmodel" => openrouter_error(400, &format!("{model} is not a valid model ID")),
        "ratelimited" => {
            let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(20));
            openrouter_error(429, "Rate limit exceeded: free-models-per-min.")
                .with("retry-after", at)
        }
        "quota" => openrouter_error(
            402,
            "Insufficient credits. Add more using https://openrouter.ai/credits",
        ),
        "midstream" => Answer::json(
            200,
            json!({"id": "gen-fake", "object": "chat.completion", "choices": [{
                "finish_reason": "error",
                "native_finish_reason": "error",
                "message": {"role": "assistant", "content": ""},
                "error": {"code": 502, "message": "Upstream provider went away"},
            }]}),
        ),
        _ => Answer::json(200, response("stop", "stop")),
    }
}

fn fireworks(ctx: &mut Ctx<'_>) -> Answer {
    ctx.expect_path("/fireworks/inference/v1/chat/completions");
    ctx.expect_budget("/max_tokens", &["max_completion_tokens"]);
    ctx.expect_one_user_message("/messages");
    let model = ctx.model();
    let key = ctx.bearer();
    if scenario_of(&model) == "echo" {
        return echo(401, key.as_deref(), ctx.header("authorization"));
    }
    if key.as_deref() != Some(FIREWORKS_KEY) {
        // The body is unconfirmed [U]; the status is what counts.
        return Answer::json(
            401,
            json!({"error": {"object": "error", "type": "invalid_request_error", "message": "unauthorized"}}),
        );
    }
    let scenario = scenario_of(&model);
    if let Some(answer) = common(scenario, completion(&model, "stop")) {
        return answer;
    }
    match scenario {
        "truncated" => Answer::json(200, completion(&model, "length")),
        "nosuchmodel" => Answer::json(
            404,
            json!({"message": "Model not found, inaccessible, and/or not deployed", "param": "model", "code": "NOT_FOUND", "type": "error"}),
        ),
        "legacymissing" => Answer::json(
            404,
            json!({"error": {"object": "error", "type": "invalid_request_error", "message": format!("The model `{model}` does not exist.")}}),
        ),
        "ratelimited" => Answer::json(429, json!({"error": {"object": "error", "type": "invalid_request_error", "message": "rate limit exceeded"}}))
            .with("retry-after", "3"),
        _ => Answer::json(200, completion(&model, "stop")),
    }
}

fn together(ctx: &mut Ctx<'_>) -> Answer {
    ctx.expect_path("/together/v1/chat/completions");
    ctx.expect_budget("/max_tokens", &["max_completion_tokens"]);
    ctx.expect_one_user_message("/messages");
    let model = ctx.model();
    let key = ctx.bearer();
    if scenario_of(&model) == "echo" {
        return echo(401, key.as_deref(), ctx.header("authorization"));
    }
    if key.as_deref() != Some(TOGETHER_KEY) {
        return openai_error(
            401,
            "Invalid API key provided. You can find your API key at https://api.together.xyz/settings/api-keys.",
            "invalid_request_error",
            json!("invalid_api_key"),
        );
    }
    let response = |finish: &str| {
        let mut body = completion(&model, finish);
        body["id"] = json!("oBUtaEp-62bZhn-9801a2718d0ed123");
        body["prompt"] = json!([]);
        body["choices"][0]["seed"] = json!(123);
        body
    };
    let scenario = scenario_of(&model);
    if let Some(answer) = common(scenario, response("stop")) {
        return answer;
    }
    match scenario {
        "truncated" => Answer::json(200, response("length")),
        "nosuchmodel" => openai_error(
            404,
            &format!(
                "Unable to access model {model}. Please visit https://api.together.ai/models to view the list of supported models."
            ),
            "invalid_request_error",
            json!("model_not_found"),
        ),
        "notavailable" => openai_error(
            400,
            &format!(
                "Unable to access non-serverless model {model}. Please visit https://api.together.ai/models to create and start a new dedicated endpoint for the model."
            ),
            "invalid_request_error",
            json!("model_not_available"),
        ),
        "ratelimited" => openai_error(
            429,
            "rate limit exceeded",
            "rate_limit",
            json!("rate_limit_exceeded"),
        )
        .with("retry-after", "5"),
        _ => Answer::json(200, response("stop")),
    }
}

fn bedrock_error(status: u16, error_type: &str, message: &str) -> Answer {
    Answer::json(status, json!({"message": message})).with(
        "x-amzn-errortype",
        format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
    )
}

fn bedrock(ctx: &mut Ctx<'_>) -> Answer {
    let path = ctx.parts.uri.path().to_owned();
    let label = path
        .strip_prefix("/bedrock/model/")
        .and_then(|rest| rest.strip_suffix("/converse"))
        .unwrap_or_default()
        .to_owned();
    // The reference marks the exact encoding [U]: accept `:` raw or as %3A, but no raw '/'.
    let model = label.replace("%3A", ":").replace("%2F", "/");
    if label.is_empty() || label.contains('/') {
        ctx.violation(format!(
            "path {path} is not /bedrock/model/{{label}}/converse"
        ));
    }
    ctx.expect_budget("/inferenceConfig/maxTokens", &["max_tokens"]);
    ctx.expect_one_user_message("/messages");
    let authorization = ctx.header("authorization").unwrap_or_default().to_owned();
    let scenario = scenario_of(&model);
    if scenario == "echo" {
        let token = ctx.header("x-amz-security-token").map(str::to_owned);
        let bearer = ctx.bearer();
        return echo(
            403,
            bearer.as_deref().or(token.as_deref()),
            Some(&authorization),
        );
    }
    if authorization.starts_with("Bearer ") {
        let key = ctx.bearer();
        if key.as_deref() != Some(BEDROCK_API_KEY) {
            return Answer::json(
                403,
                json!({"Message": "Authentication failed: Please make sure your API Key is valid."}),
            );
        }
    } else {
        match verify_sigv4(ctx) {
            Ok(()) => {}
            Err(SigV4Failure::UnknownKey) => {
                return bedrock_error(
                    403,
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.",
                );
            }
            Err(SigV4Failure::BadSignature) => {
                return bedrock_error(
                    403,
                    "InvalidSignatureException",
                    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
                );
            }
        }
    }
    let response = |stop: &str| {
        json!({
            "output": {"message": {"role": "assistant", "content": [{"text": if stop == "max_tokens" { "po" } else { "pong" }}]}},
            "stopReason": stop,
            "usage": {"inputTokens": 8, "outputTokens": 16, "totalTokens": 24},
            "metrics": {"latencyMs": 120},
        })
    };
    if let Some(answer) = common(scenario, response("end_turn")) {
        return answer;
    }
    match scenario {
        "truncated" => Answer::json(200, response("max_tokens")),
        "nosuchmodel" => bedrock_error(
            400,
            "ValidationException",
            "The provided model identifier is invalid.",
        ),
        "ratelimited" => bedrock_error(
            429,
            "ThrottlingException",
            "Too many tokens, please wait before trying again.",
        ),
        "denied" => bedrock_error(
            403,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        _ => Answer::json(200, response("end_turn")),
    }
}

enum SigV4Failure {
    UnknownKey,
    BadSignature,
}

/// Recomputes the SigV4 signature of the request as received, with the AWS SDK's signer and
/// the expected secret, and compares. Records violations for a wrong scope.
fn verify_sigv4(ctx: &mut Ctx<'_>) -> Result<(), SigV4Failure> {
    let authorization = ctx.header("authorization").unwrap_or_default().to_owned();
    let Some(fields) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") else {
        ctx.violation(format!(
            "authorization is neither Bearer nor SigV4: {authorization:.20}"
        ));
        return Err(SigV4Failure::UnknownKey);
    };
    let field = |name: &str| {
        fields
            .split(", ")
            .find_map(|part| part.strip_prefix(name))
            .unwrap_or_default()
            .to_owned()
    };
    let credential = field("Credential=");
    let signed_headers = field("SignedHeaders=");
    let signature = field("Signature=");
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope[..] else {
        ctx.violation(format!("bad credential scope {credential}"));
        return Err(SigV4Failure::UnknownKey);
    };
    ctx.seen.credential = Some(access_key_id.to_owned());
    if service != "bedrock" || region != AWS_REGION || terminator != "aws4_request" {
        ctx.violation(format!(
            "scope {credential} is not …/{AWS_REGION}/bedrock/aws4_request"
        ));
    }
    let amz_date = ctx.header("x-amz-date").unwrap_or_default().to_owned();
    if !amz_date.starts_with(date) {
        ctx.violation(format!(
            "x-amz-date {amz_date} does not match the scope date {date}"
        ));
    }
    for required in ["host", "x-amz-date", "content-type"] {
        if !signed_headers.split(';').any(|h| h == required) {
            ctx.violation(format!("{required} is not signed"));
        }
    }
    let session_token = ctx.header("x-amz-security-token").map(str::to_owned);
    if session_token.is_some()
        && !signed_headers
            .split(';')
            .any(|h| h == "x-amz-security-token")
    {
        ctx.violation("x-amz-security-token is not signed".to_owned());
    }
    if access_key_id != AWS_ACCESS_KEY_ID {
        return Err(SigV4Failure::UnknownKey);
    }
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let Ok(time) = time::PrimitiveDateTime::parse(&amz_date, format) else {
        ctx.violation(format!("x-amz-date {amz_date} does not parse"));
        return Err(SigV4Failure::BadSignature);
    };
    let time: SystemTime = time.assume_utc().into();
    let headers: Vec<(&str, &str)> = signed_headers
        .split(';')
        .filter_map(|name| header(&ctx.parts.headers, name).map(|value| (name, value)))
        .collect();
    let host = header(&ctx.parts.headers, "host").unwrap_or_default();
    let url = format!("http://{host}{}", ctx.parts.uri);
    let identity = Credentials::new(
        AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY,
        session_token,
        None,
        "fake-server",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let request = SignableRequest::new(
        ctx.parts.method.as_str(),
        url,
        headers.into_iter(),
        SignableBody::Bytes(ctx.body),
    )
    .expect("signable");
    let (_, expected) = sign(request, &params).expect("sign").into_parts();
    let valid = expected == signature;
    ctx.seen.signature_valid = Some(valid);
    if valid {
        Ok(())
    } else {
        Err(SigV4Failure::BadSignature)
    }
}

fn huggingface(ctx: &mut Ctx<'_>) -> Answer {
    if ctx.parts.uri.path() != "/hf/v1/chat/completions" {
        // A wrong endpoint path: TGI's router answers a bare 404.
        return Answer {
            status: 404,
            headers: Vec::new(),
            body: Vec::new(),
            content_type: "text/plain",
            delay: None,
        };
    }
    ctx.expect_budget("/max_tokens", &["max_completion_tokens"]);
    ctx.expect_one_user_message("/messages");
    let model = ctx.model();
    let key = ctx.bearer();
    if scenario_of(&model) == "echo" {
        return echo(401, key.as_deref(), ctx.header("authorization"));
    }
    if key.as_deref() != Some(HF_KEY) {
        return Answer::json(
            401,
            json!({"error": "Invalid credentials in Authorization header"}),
        );
    }
    // TGI serves one model and ignores `model`: every id answers as "tgi".
    let response = |finish: &str| {
        let mut body = completion("tgi", finish);
        body["id"] = json!("");
        body["system_fingerprint"] = json!("3.0.0-native");
        body
    };
    let scenario = scenario_of(&model);
    if let Some(answer) = common(scenario, response("stop")) {
        return answer;
    }
    match scenario {
        "truncated" => Answer::json(200, response("length")),
        "ratelimited" => Answer::json(
            429,
            json!({"error": "Model is overloaded", "error_type": "overloaded"}),
        ),
        "unsupported" => Answer::json(
            422,
            json!({"error": "Input validation error: `max_tokens` must be strictly positive", "error_type": "validation"}),
        ),
        _ => Answer::json(200, response("stop")),
    }
}

fn compat(ctx: &mut Ctx<'_>) -> Answer {
    ctx.expect_path("/compat/v1/chat/completions");
    ctx.expect_budget("/max_tokens", &["max_completion_tokens"]);
    ctx.expect_one_user_message("/messages");
    let model = ctx.model();
    let key = ctx.bearer();
    if scenario_of(&model) == "echo" {
        return echo(401, key.as_deref(), ctx.header("authorization"));
    }
    // vLLM started with --api-key checks it; the fake expects COMPAT_KEY or no key at all.
    if key.is_some() && key.as_deref() != Some(COMPAT_KEY) {
        return Answer::json(401, json!({"error": "Unauthorized"}));
    }
    let scenario = scenario_of(&model);
    if let Some(answer) = common(scenario, completion(&model, "stop")) {
        return answer;
    }
    match scenario {
        "truncated" => Answer::json(200, completion(&model, "length")),
        // vLLM, older flat shape.
        "nosuchmodel" => Answer::json(
            404,
            json!({"object": "error", "message": format!("The model `{model}` does not exist."), "type": "NotFoundError", "param": null, "code": 404}),
        ),
        // Ollama.
        "legacymissing" => Answer::json(
            404,
            json!({"error": {"message": format!("model '{model}' not found"), "type": "not_found_error", "param": null, "code": null}}),
        ),
        "ratelimited" => Answer::json(429, json!({"error": {"message": "too many requests", "type": "rate_limit", "param": null, "code": null}}))
            .with("retry-after", "4"),
        _ => Answer::json(200, completion(&model, "stop")),
    }
}

/// A provider that quotes back everything it got: the credential and the auth header.
fn echo(status: u16, credential: Option<&str>, auth_header: Option<&str>) -> Answer {
    let credential = credential.unwrap_or_default();
    let auth_header = auth_header.unwrap_or_default();
    Answer::json(
        status,
        json!({"error": {
            "message": format!("Incorrect API key provided: {credential}. Header was: {auth_header}. Request {credential}?key={credential}"),
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }}),
    )
}
