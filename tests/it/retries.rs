//! A retried add (same `Idempotency-Key`) answers with the model the first attempt added,
//! also when another model took the next slug in between, and after the first attempt's
//! connection-test receipt has expired: never a second model.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, Reply, TestApp};

/// An OpenAI-compatible model served by the test's fake provider.
fn draft(app: &TestApp, name: &str) -> Value {
    json!({
        "display_name": name,
        "provider": "openai_compatible",
        "provider_model_id": "llama3",
        "endpoint_url": app.fake.v1(),
        "max_tokens": 4096
    })
}

/// `POST /v1/models` of `body` as given, under an idempotency key.
async fn post_with_key(app: &TestApp, body: Value, key: &str) -> Reply {
    app.call_with(
        Method::POST,
        "/v1/models",
        Some(body),
        &app.token,
        &[("idempotency-key", key)],
    )
    .await
}

/// The same with a receipt of a passing test first.
async fn add_with_key(app: &TestApp, mut body: Value, key: &str) -> Reply {
    if let Some(test_id) = app.passing_test_of(&body).await {
        body["connection_test_id"] = Value::String(test_id);
    }
    post_with_key(app, body, key).await
}

fn custom_slugs(listing: &Value) -> Vec<String> {
    listing["custom"]
        .as_array()
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m["slug"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_add_answers_with_the_first_model() {
    let app = TestApp::start_with(Backend::Embedded, |config| {
        config.connection_test_receipt_ttl_ms = 1500;
    })
    .await;

    let first = add_with_key(&app, draft(&app, "Retry Me"), "add-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["model"]["slug"], "retry-me");

    // The same command again: the same model.
    let again = add_with_key(&app, draft(&app, "Retry Me"), "add-1").await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body["model"]["slug"], "retry-me");

    // Another command with the same name takes the next slug; its retry finds it past the
    // first one.
    let other = add_with_key(&app, draft(&app, "Retry Me"), "add-2").await;
    assert_eq!(other.body["model"]["slug"], "retry-me-2", "{}", other.body);
    let other_again = add_with_key(&app, draft(&app, "Retry Me"), "add-2").await;
    assert_eq!(other_again.body["model"]["slug"], "retry-me-2");

    // After the receipt has expired, a retry without one still answers as the first time.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let late = post_with_key(&app, draft(&app, "Retry Me"), "add-1").await;
    assert_eq!(late.status, StatusCode::CREATED, "{}", late.body);
    assert_eq!(late.body["model"]["slug"], "retry-me");
    // While a new command without a receipt is refused by the gate.
    let ungated = post_with_key(&app, draft(&app, "Retry Me"), "add-3").await;
    assert_eq!(ungated.status.as_u16() / 100, 4, "{}", ungated.body);

    let listing = app.list_models().await;
    assert_eq!(
        custom_slugs(&listing.body),
        vec!["retry-me".to_owned(), "retry-me-2".to_owned()]
    );
}
