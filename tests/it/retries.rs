//! A retried add (same `Idempotency-Key`) answers with the model the first attempt added,
//! also when another model took the next slug in between, and after the first attempt's
//! connection-test receipt has expired: never a second model. Retried transitions and token
//! issues answer as their first attempt did; a key reused for another request is refused.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::registry::json_of;
use crate::support::{Backend, Reply, TestApp};

/// `POST /v1/models` of `body` as given, under an idempotency key.
async fn post_with_key(app: &TestApp, body: &api::AddModel, key: &str) -> Reply {
    app.call_with(
        Method::POST,
        "/v1/models",
        Some(json_of(body)),
        &app.token,
        &[("idempotency-key", key)],
    )
    .await
}

/// The same with a receipt of a passing test first.
async fn add_with_key(app: &TestApp, mut body: api::AddModel, key: &str) -> Reply {
    body.connection_test_id = app.passing_test_of(&body).await;
    post_with_key(app, &body, key).await
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
    let app = TestApp::start(Backend::Embedded).await;

    let first = add_with_key(&app, app.local_draft("Retry Me"), "add-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["model"]["slug"], "retry-me");

    // The same command again: the same model.
    let again = add_with_key(&app, app.local_draft("Retry Me"), "add-1").await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body["model"]["slug"], "retry-me");

    // Another command with the same name takes the next slug; its retry finds it past the
    // first one.
    let other = add_with_key(&app, app.local_draft("Retry Me"), "add-2").await;
    assert_eq!(other.body["model"]["slug"], "retry-me-2", "{}", other.body);
    let other_again = add_with_key(&app, app.local_draft("Retry Me"), "add-2").await;
    assert_eq!(other_again.body["model"]["slug"], "retry-me-2");

    // After the receipt has expired, a retry without one still answers as the first time.
    app.clock.advance(std::time::Duration::from_millis(
        domain::connection_test::RECEIPT_TTL_MS as u64 + 1,
    ));
    let late = post_with_key(&app, &app.local_draft("Retry Me"), "add-1").await;
    assert_eq!(late.status, StatusCode::CREATED, "{}", late.body);
    assert_eq!(late.body["model"]["slug"], "retry-me");
    // While a new command without a receipt is refused by the gate.
    let ungated = post_with_key(&app, &app.local_draft("Retry Me"), "add-3").await;
    assert_eq!(ungated.status.as_u16() / 100, 4, "{}", ungated.body);

    let listing = app.list_models().await;
    assert_eq!(
        custom_slugs(&listing.body),
        vec!["retry-me".to_owned(), "retry-me-2".to_owned()]
    );
}

/// `method path` with `body` under an idempotency key.
async fn call_with_key(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    key: &str,
) -> Reply {
    app.call_with(method, path, body, &app.token, &[("idempotency-key", key)])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_commands_answer_as_the_first_attempt_and_a_reused_key_is_refused() {
    let app = TestApp::start(Backend::Embedded).await;
    let added = add_with_key(&app, app.local_draft("Twice"), "add-twice").await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);

    // The same key on a different add is refused, and adds nothing.
    let reused = add_with_key(&app, app.local_draft("Someone Else"), "add-twice").await;
    reused.assert_key_reused();

    // A credential created under a key: the retry answers it; the key sent with another
    // secret is refused, and the credential keeps the first secret.
    let create = |api_key: &str| {
        let body =
            json!({"name": "Shared", "provider": "openai", "credential": {"api_key": api_key}});
        call_with_key(
            &app,
            Method::POST,
            "/v1/credentials",
            Some(body),
            "cred-once",
        )
    };
    let first = create("sk-first-0123456789abcdef").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let retried = create("sk-first-0123456789abcdef").await;
    assert!(retried.status.is_success(), "{}", retried.body);
    assert_eq!(retried.body["id"], first.body["id"], "{}", retried.body);
    let other_secret = create("sk-other-0123456789abwxyz").await;
    other_secret.assert_key_reused();
    let id = first.body["id"].as_str().expect("id");
    let kept = app
        .call(Method::GET, &format!("/v1/credentials/{id}"), None)
        .await;
    assert_eq!(kept.body["preview"], first.body["preview"], "{}", kept.body);

    // Deactivation, then its retry: both answer with the deactivated model.
    for attempt in 0..2 {
        let gone = call_with_key(&app, Method::DELETE, "/v1/models/twice", None, "off-1").await;
        assert_eq!(
            gone.status,
            StatusCode::OK,
            "attempt {attempt}: {}",
            gone.body
        );
        assert_eq!(gone.body["status"], "deactivated", "{}", gone.body);
    }
    // A new deactivation command is told the model is already deactivated.
    let again = call_with_key(&app, Method::DELETE, "/v1/models/twice", None, "off-2").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    // Reactivation and its retry.
    for attempt in 0..2 {
        let back = call_with_key(
            &app,
            Method::POST,
            "/v1/models/twice/activation",
            None,
            "on-1",
        )
        .await;
        assert_eq!(
            back.status,
            StatusCode::OK,
            "attempt {attempt}: {}",
            back.body
        );
        assert_eq!(back.body["status"], "active", "{}", back.body);
    }

    // One key on edits of two models: two commands, both applied.
    let other = add_with_key(&app, app.local_draft("Other"), "add-other").await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
    for (slug, name) in [("twice", "Twice Renamed"), ("other", "Other Renamed")] {
        let edited = call_with_key(
            &app,
            Method::PATCH,
            &format!("/v1/models/{slug}"),
            Some(json!({"display_name": name})),
            "edit-1",
        )
        .await;
        assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
        assert_eq!(edited.body["display_name"], name, "{}", edited.body);
    }

    // An edit naming the version it expects, and its retry after it landed: the retry answers
    // with the edited model, not a version conflict.
    let version = app.get_model("other").await.body["version"].clone();
    let version = version.as_u64().expect("a version");
    for attempt in 0..2 {
        let edited = app
            .call_with(
                Method::PATCH,
                "/v1/models/other",
                Some(json!({"max_tokens": 2048})),
                &app.token,
                &[
                    ("idempotency-key", "edit-2"),
                    ("if-match", &format!("\"{version}\"")),
                ],
            )
            .await;
        assert_eq!(
            edited.status,
            StatusCode::OK,
            "attempt {attempt}: {}",
            edited.body
        );
        assert_eq!(edited.body["max_tokens"], 2048, "{}", edited.body);
    }

    // A deactivation naming a version the model has left is refused, and the model stays
    // active; one naming its version deactivates it, and its retry answers the same.
    let stale = app
        .call_with(
            Method::DELETE,
            "/v1/models/other",
            None,
            &app.token,
            &[("if-match", &format!("\"{version}\""))],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert_eq!(
        stale.body["code"], "model.version_mismatch",
        "{}",
        stale.body
    );
    assert_eq!(stale.body["current_version"], version + 1, "{}", stale.body);
    assert_eq!(app.get_model("other").await.body["status"], "active");
    for attempt in 0..2 {
        let deactivated = app
            .call_with(
                Method::DELETE,
                "/v1/models/other",
                None,
                &app.token,
                &[
                    ("idempotency-key", "deactivate-1"),
                    ("if-match", &format!("\"{}\"", version + 1)),
                ],
            )
            .await;
        assert_eq!(
            deactivated.status,
            StatusCode::OK,
            "attempt {attempt}: {}",
            deactivated.body
        );
        assert_eq!(
            deactivated.body["status"], "deactivated",
            "{}",
            deactivated.body
        );
    }

    // A token issue and its retry: the same token id; its secret is shown once.
    let body = json!({"label": "ci", "role": "member"});
    let first = call_with_key(
        &app,
        Method::POST,
        "/v1/tokens",
        Some(body.clone()),
        "tok-1",
    )
    .await;
    assert_eq!(first.status.as_u16() / 100, 2, "{}", first.body);
    assert!(first.body["token"].is_string(), "{}", first.body);
    let retry = call_with_key(&app, Method::POST, "/v1/tokens", Some(body), "tok-1").await;
    assert_eq!(retry.status, first.status, "{}", retry.body);
    assert_eq!(
        retry.body["token_id"], first.body["token_id"],
        "{}",
        retry.body
    );
    assert!(retry.body["token"].is_null(), "{}", retry.body);
    // The same key with another label is another request: refused, nothing issued.
    let other = call_with_key(
        &app,
        Method::POST,
        "/v1/tokens",
        Some(json!({"label": "not ci", "role": "member"})),
        "tok-1",
    )
    .await;
    other.assert_key_reused();
}

/// A key sent again with another edit, name or secret is another request: refused with
/// 422, changing nothing, while the same request under it answers as the first attempt.
/// Edits, renames and rotations used to answer the first result and drop the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reused_for_another_change_is_refused() {
    let app = TestApp::start(Backend::Embedded).await;
    let added = add_with_key(&app, app.local_draft("Keyed"), "add-keyed").await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let created = call_with_key(
        &app,
        Method::POST,
        "/v1/credentials",
        Some(json!({"name": "Keyed", "provider": "openai",
            "credential": {"api_key": "sk-first-0123456789abcdef"}})),
        "create-keyed",
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id");
    let credential = format!("/v1/credentials/{id}");
    let rotation = format!("/v1/credentials/{id}/rotation");
    let secret = |key: &str| json!({"credential": {"api_key": key}});
    let cases = [
        (
            Method::PATCH,
            "/v1/models/keyed",
            json!({"display_name": "Keyed A"}),
            json!({"display_name": "Keyed B"}),
        ),
        (
            Method::PATCH,
            credential.as_str(),
            json!({"name": "Named A"}),
            json!({"name": "Named B"}),
        ),
        (
            Method::POST,
            rotation.as_str(),
            secret("sk-second-0123456789abcd"),
            secret("sk-third-0123456789abcdef"),
        ),
    ];
    for (method, path, first, other) in cases {
        for attempt in 0..2 {
            let sent =
                call_with_key(&app, method.clone(), path, Some(first.clone()), "change-1").await;
            assert!(
                sent.status.is_success(),
                "{method} {path}, attempt {attempt}: {}",
                sent.body
            );
        }
        let before = app
            .call(Method::GET, path.trim_end_matches("/rotation"), None)
            .await;
        let reused = call_with_key(&app, method.clone(), path, Some(other), "change-1").await;
        reused.assert_key_reused();
        let after = app
            .call(Method::GET, path.trim_end_matches("/rotation"), None)
            .await;
        assert_eq!(after.body, before.body, "{method} {path} changed nothing");
    }
    let model = app.get_model("keyed").await;
    assert_eq!(model.body["display_name"], "Keyed A", "{}", model.body);
    let kept = app.call(Method::GET, &credential, None).await;
    assert_eq!(kept.body["name"], "Named A", "{}", kept.body);
    assert_eq!(kept.body["version"], 2, "one rotation: {}", kept.body);

    // An edit that entered a secret, retried after that credential was rotated: the retry
    // asks for nothing more, and answers as the first attempt did.
    let edit = || {
        call_with_key(
            &app,
            Method::PATCH,
            "/v1/models/keyed",
            Some(json!({"credential": {"api_key": "sk-entered-0123456789abcd"}})),
            "edit-secret",
        )
    };
    let first = edit().await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let entered = first.body["credential"]["id"]
        .as_str()
        .expect("a credential");
    let rotated = call_with_key(
        &app,
        Method::POST,
        &format!("/v1/credentials/{entered}/rotation"),
        Some(secret("sk-rotated-0123456789abcd")),
        "rotate-entered",
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let retried = edit().await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(
        retried.body["credential"]["id"], entered,
        "{}",
        retried.body
    );
}

/// A command whose event landed while the answering replica's views lag (here a second
/// replica whose projector is stopped, with no time to wait at all) says so, with the
/// position it landed at, instead of a generic "unavailable"; once its projector runs again
/// its views show it, and a retry with the same key answers it without applying it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_landed_while_the_views_lag_says_where() {
    let app = TestApp::start(Backend::JetStream).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut config = app.config();
    config.data_dir = dir.path().to_path_buf();
    config.read_your_writes_timeout_ms = 0;
    let replica = app::start(&config).await.expect("second replica");
    let registry = std::sync::Arc::clone(&replica.registry);
    let caught_up = app.call(Method::GET, "/v1/models", None).await;
    let known = caught_up.body["position"].as_u64().expect("position");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while registry.views().position() < known {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // From here on the replica's views stand still: every command it records outruns them.
    replica.stop().await;

    let (base, served) = crate::support::serve_api(&registry).await;
    let http = reqwest::Client::new();
    let put = || {
        http.put(format!("{base}/v1/workflows/wf-landed"))
            .bearer_auth(&app.token)
            .header("idempotency-key", "landed-1")
            .json(&json!({"name": "Nightly", "active": true, "steps": []}))
            .send()
    };
    let reply = put().await.expect("put");
    let status = reply.status();
    let body: Value = reply.json().await.expect("json");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "command.landed_views_behind", "{body}");
    let position = body["position"]
        .as_u64()
        .expect("the position it landed at");
    assert!(position > known, "{body}");

    // It landed: the first server's views come to hold it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let read = app.call(Method::GET, "/v1/workflows/wf-landed", None).await;
        if read.status == StatusCode::OK {
            break;
        }
        assert_eq!(read.status, StatusCode::NOT_FOUND, "{}", read.body);
        assert!(std::time::Instant::now() < deadline, "it never landed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let projector = tokio::spawn(views::run_projector(
        std::sync::Arc::clone(registry.views()),
        std::sync::Arc::clone(registry.log()),
        std::future::pending::<()>(),
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while registry.views().position() < position {
        assert!(
            std::time::Instant::now() < deadline,
            "the views never reached it"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let retried = put().await.expect("retry");
    assert_eq!(retried.status(), StatusCode::OK);
    let body: Value = retried.json().await.expect("json");
    assert_eq!(body["version"], 1, "applied once: {body}");
    served.abort();
    projector.abort();
}

/// An `Idempotency-Key` that is not visible ASCII (here UTF-8 bytes) is refused like any
/// malformed key: it used to be read as absent, so each retry under it applied again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_ascii_idempotency_key_is_refused_not_ignored() {
    let app = TestApp::start(Backend::Embedded).await;
    let key = reqwest::header::HeaderValue::from_bytes("clé-ключ-1".as_bytes()).expect("bytes");
    let body = json!({"label": "keyed", "role": "member"});
    for attempt in 0..2 {
        let request = app
            .http
            .post(format!("{}/v1/tokens", app.base))
            .bearer_auth(&app.token)
            .header("idempotency-key", key.clone())
            .json(&body);
        let refused = app.raw(request).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "attempt {attempt}: {}",
            refused.body
        );
        assert_eq!(refused.body["code"], "idempotency_key.invalid");
        let detail = refused.body["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.contains("ключ"),
            "the detail quotes the key: {detail}"
        );
    }
    let tokens = app.call(Method::GET, "/v1/tokens", None).await;
    let labels: Vec<&str> = tokens.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["label"].as_str())
        .collect();
    assert!(!labels.contains(&"keyed"), "issued anyway: {labels:?}");
}
