//! LiteLLM conformance: the real LiteLLM (the PyPI package pinned in
//! `tests/litellm/requirements.txt`, installed by `just deps` into `target/litellm-venv`) is
//! called with exactly the keyword arguments `GET /v1/resolve/{model}?format=litellm` answers,
//! against a fake provider that records what reaches it: the credential, the path and the
//! token limit must be the ones the registry holds, in each provider's own shape. The same
//! four calls go through LiteLLM's Router on the exported proxy config (`GET
//! /v1/exports/litellm-config`), its secrets read from the environment.
//!
//! Custom OpenAI, Anthropic and Bedrock models have no base URL of their own (they resolve
//! to the providers' public endpoints), so the script points those at the fake the way
//! LiteLLM documents an override (`api_base`, `aws_bedrock_runtime_endpoint`); the
//! OpenAI-compatible model's own endpoint is the fake, and its arguments go unchanged.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};

use app::config::Config;
use axum::Router;
use axum::http::{HeaderMap, Method as AxumMethod, Uri};
use axum::response::{IntoResponse, Response};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::support::{Backend, TestApp};

/// One request the fake saw.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Value,
}

/// The fake provider's base URL, for the registry's configuration (a `fn` tweak).
static RECORDER: OnceLock<String> = OnceLock::new();

/// The registry's own connection tests (which gate the adds) go to the fake too.
fn providers_at_the_fake(config: &mut Config) {
    let base = RECORDER.get().expect("the fake started first").clone();
    let urls = &mut config.providers.base_urls;
    urls.insert("openai".into(), format!("{base}/v1"));
    urls.insert("anthropic".into(), base.clone());
    urls.insert("bedrock".into(), base);
}

/// A stand-in for OpenAI-style, Anthropic and Bedrock Converse servers that records every
/// request and answers in the shape its path asks for.
async fn recorder() -> (String, Arc<Mutex<Vec<Seen>>>, tokio::task::JoinHandle<()>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = Arc::clone(&seen);
    let app = Router::new().fallback(
        move |method: AxumMethod, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let log = Arc::clone(&log);
            async move { answer(&log, &method, &uri, headers, &body) }
        },
    );
    let (base, task) = crate::support::serve_local(app).await;
    (base, seen, task)
}

fn answer(
    log: &Mutex<Vec<Seen>>,
    method: &AxumMethod,
    uri: &Uri,
    headers: HeaderMap,
    body: &[u8],
) -> Response {
    let path = uri.path().to_owned();
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Ok(mut all) = log.lock() {
        all.push(Seen {
            path: path.clone(),
            headers,
            body,
        });
    }
    if method != AxumMethod::POST {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    let reply = if path.ends_with("/chat/completions") {
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
        })
    } else if path.ends_with("/v1/messages") {
        json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "fake",
            "content": [{"type": "text", "text": "pong"}], "stop_reason": "end_turn",
            "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 1}
        })
    } else if path.ends_with("/converse") {
        json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "pong"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4},
            "metrics": {"latencyMs": 1}
        })
    } else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    axum::Json(reply).into_response()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The virtual environment's python, which `just deps` installs LiteLLM into.
fn litellm_python() -> PathBuf {
    let python = workspace().join("target/litellm-venv/bin/python");
    assert!(
        python.exists(),
        "LiteLLM is not installed at {}: run `just deps` (it installs tests/litellm/requirements.txt into target/litellm-venv)",
        python.display()
    );
    python
}

/// Runs `tests/litellm/call.py` on `cases` with a bare environment (no host keys but a
/// decoy `OPENAI_API_KEY` LiteLLM must not send); one JSON answer per case, by name.
async fn call_litellm(cases: Value) -> std::collections::HashMap<String, Value> {
    let home = tempfile::tempdir().expect("home");
    let mut child = tokio::process::Command::new(litellm_python())
        .arg(workspace().join("tests/litellm/call.py"))
        .env_clear()
        .env("HOME", home.path())
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("OPENAI_API_KEY", HOST_KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start python");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(cases.to_string().as_bytes())
        .await
        .expect("write cases");
    drop(stdin);
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(180),
        child.wait_with_output(),
    )
    .await
    .expect("LiteLLM answers within 3 minutes")
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "call.py failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|answer| (answer["name"].as_str().unwrap_or("").to_owned(), answer))
        .collect()
}

/// The host's own OpenAI key, which LiteLLM would send to a keyless `openai/` base.
const HOST_KEY: &str = "sk-host-key-must-not-leave";

fn header<'a>(seen: &'a Seen, name: &str) -> &'a str {
    seen.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn litellm_sends_what_the_registry_resolves() {
    let (fake, seen, _task) = recorder().await;
    RECORDER.get_or_init(|| fake.clone());
    let app = TestApp::start_with(Backend::Embedded, providers_at_the_fake).await;
    let service = app.issue_token("runtime", "service").await;

    let openai_key = "sk-litellm-openai-0123456789";
    let anthropic_key = "sk-ant-litellm-0123456789";
    let (access_key_id, secret_access_key) = ("AKIALITELLMTEST01", "litellm-secret-access-key-01");
    for draft in [
        json!({"display_name": "OpenAI", "provider": "openai", "provider_model_id": "gpt-4o",
            "credential": {"api_key": openai_key}, "max_tokens": 4096,
            "input_cost_per_token": "0.000001", "output_cost_per_token": "0.000002"}),
        json!({"display_name": "Claude", "provider": "anthropic",
            "provider_model_id": "claude-sonnet-4-5-20250929",
            "credential": {"api_key": anthropic_key}, "max_tokens": 8192}),
        json!({"display_name": "Bedrock", "provider": "bedrock",
            "provider_model_id": "anthropic.claude-3-5-sonnet-20240620-v1:0", "region": "us-east-1",
            "credential": {"access_key_id": access_key_id, "secret_access_key": secret_access_key},
            "max_tokens": 2048}),
        json!({"display_name": "Local", "provider": "openai_compatible", "provider_model_id": "llama3",
            "endpoint_url": format!("{fake}/v1"), "max_tokens": 1000}),
    ] {
        let added = app.add_model(draft).await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    }

    let mut cases = Vec::new();
    for (slug, redirect) in [
        ("openai", json!({"api_base": format!("{fake}/v1")})),
        ("claude", json!({"api_base": fake})),
        ("bedrock", json!({"aws_bedrock_runtime_endpoint": fake})),
        ("local", json!({})),
    ] {
        let resolved = app
            .call_with(
                Method::GET,
                &format!("/v1/resolve/{slug}?format=litellm"),
                None,
                &service,
                &[],
            )
            .await;
        assert_eq!(resolved.status, StatusCode::OK, "{slug}: {}", resolved.body);
        let kwargs = resolved.body["kwargs"].clone();
        if slug != "local" {
            assert!(
                kwargs.get("api_base").is_none(),
                "{slug}: the provider's public endpoint, which the test redirects"
            );
        }
        cases.push(json!({"name": slug, "kwargs": kwargs, "redirect": redirect}));
    }
    // The exported proxy config, loaded into LiteLLM's Router with the secrets in the
    // environment under the names its `os.environ/` references give.
    let exported = app
        .call_with(
            Method::GET,
            "/v1/exports/litellm-config",
            None,
            &service,
            &[],
        )
        .await;
    assert_eq!(exported.status, StatusCode::OK, "{}", exported.body);
    let model_list: Vec<Value> = exported.body["model_list"]
        .as_array()
        .expect("model_list")
        .iter()
        .filter(|d| {
            ["openai", "claude", "bedrock", "local"]
                .contains(&d["model_name"].as_str().unwrap_or(""))
        })
        .cloned()
        .collect();
    assert_eq!(model_list.len(), 4, "{}", exported.body);
    let env = json!({
        "MODEL_OPENAI_API_KEY": openai_key,
        "MODEL_CLAUDE_API_KEY": anthropic_key,
        "MODEL_BEDROCK_AWS_ACCESS_KEY_ID": access_key_id,
        "MODEL_BEDROCK_AWS_SECRET_ACCESS_KEY": secret_access_key,
    });
    let proxy_cases: Vec<Value> = cases
        .iter()
        .map(|case| {
            json!({"name": format!("proxy-{}", case["name"].as_str().unwrap_or("")),
                "model_name": case["name"], "redirect": case["redirect"]})
        })
        .collect();
    app.forget_responses();
    seen.lock().expect("log").clear();

    let answers = call_litellm(json!({
        "cases": cases,
        "proxy": {"model_list": model_list, "env": env, "cases": proxy_cases},
    }))
    .await;
    for slug in ["openai", "claude", "bedrock", "local"] {
        for name in [slug.to_owned(), format!("proxy-{slug}")] {
            let answer = &answers[&name];
            assert_eq!(answer["ok"], true, "{name}: {answer}");
            assert_eq!(answer["content"], "pong", "{name}: {answer}");
        }
    }
    // The per-call prices are honoured: 3 prompt tokens at 1e-6 and 1 completion at 2e-6.
    for name in ["openai", "proxy-openai"] {
        let cost = answers[name]["response_cost"].as_f64().expect("cost");
        assert!((cost - 0.000005).abs() < 1e-12, "{name}: {cost}");
    }

    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen.len(), 8, "one request per call: {seen:?}");
    let (direct, proxy) = seen.split_at(4);
    let expected = Expected {
        openai_key,
        anthropic_key,
        access_key_id,
    };
    expected.check(direct, "completion()");
    expected.check(proxy, "Router on the exported config");
}

/// What the fake must see of the four calls, in LiteLLM's order.
struct Expected<'a> {
    openai_key: &'a str,
    anthropic_key: &'a str,
    access_key_id: &'a str,
}

impl Expected<'_> {
    fn check(&self, seen: &[Seen], how: &str) {
        let by_model = |model: &str| {
            seen.iter()
                .find(|s| s.body["model"] == model)
                .unwrap_or_else(|| panic!("{how}: no call of {model}: {seen:?}"))
        };
        let by_path = |suffix: &str| {
            seen.iter()
                .find(|s| s.path.ends_with(suffix))
                .unwrap_or_else(|| panic!("{how}: no request to …{suffix}: {seen:?}"))
        };

        let openai = by_model("gpt-4o");
        assert_eq!(openai.path, "/v1/chat/completions", "{how}");
        assert_eq!(
            header(openai, "authorization"),
            format!("Bearer {}", self.openai_key),
            "{how}"
        );
        assert_eq!(openai.body["max_tokens"], 4096, "{how}");

        let claude = by_path("/messages");
        assert_eq!(claude.path, "/v1/messages", "{how}: never a doubled /v1");
        assert_eq!(header(claude, "x-api-key"), self.anthropic_key, "{how}");
        assert_eq!(claude.body["model"], "claude-sonnet-4-5-20250929", "{how}");
        assert_eq!(claude.body["max_tokens"], 8192, "{how}");

        let bedrock = by_path("/converse");
        assert_eq!(
            bedrock.path, "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            "{how}"
        );
        let auth = header(bedrock, "authorization");
        assert!(
            auth.starts_with(&format!(
                "AWS4-HMAC-SHA256 Credential={}/",
                self.access_key_id
            )) && auth.contains("/us-east-1/bedrock/aws4_request"),
            "{how}: SigV4 with the registry's key id and region: {auth}"
        );
        assert_eq!(bedrock.body["inferenceConfig"]["maxTokens"], 2048, "{how}");

        let local = by_model("llama3");
        assert_eq!(local.path, "/v1/chat/completions", "{how}");
        assert_eq!(
            header(local, "authorization"),
            "Bearer no-key",
            "{how}: a placeholder, never the host's OPENAI_API_KEY"
        );
        assert_eq!(local.body["max_tokens"], 1000, "{how}");
    }
}
