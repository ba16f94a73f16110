//! The secret canary: a plaintext secret must appear in no byte of the log, keyring, views,
//! NATS store, captured trace-level logs, or any API response or console page. `catalog.rs`
//! runs it for the platform key the catalog sync sends to OpenRouter's models API.

use std::path::Path;

use reqwest::{Method, StatusCode};

use crate::support::{Backend, TestApp, logs};

pub(crate) fn assert_absent(app: &TestApp, secret: &str) {
    let needle = secret.as_bytes();
    let mut scanned = 0;
    for dir in app.state_dirs() {
        scanned += scan_dir(&dir, needle);
    }
    assert!(scanned > 0, "the canary scanned no state files");
    let logs = logs::captured();
    assert!(!logs.is_empty(), "logs were captured");
    assert!(!contains(&logs, needle), "the secret appears in the logs");
    let responses = app.responses.lock().map(|r| r.clone()).unwrap_or_default();
    assert!(!responses.is_empty());
    for response in responses {
        assert!(
            !response.contains(secret),
            "the secret appears in an API response: {response}"
        );
    }
}

/// The request log names a request by method, route template and status: no header
/// (the Authorization token above all), no path or query as sent, no body, at any level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_logs_carry_no_header_query_or_body() {
    let app = TestApp::start(Backend::Embedded).await;
    let canary = format!("canary{}", uuid::Uuid::new_v4().simple());
    let refused = app
        .call_with(
            Method::GET,
            &format!("/v1/models/slug-{canary}?token=query-{canary}"),
            None,
            &format!("mr_header-{canary}"),
            &[("x-api-key", &format!("header-{canary}"))],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let rejected = app
        .call(
            Method::POST,
            &format!("/v1/models?note=query-{canary}"),
            Some(serde_json::json!({ "display_name": 7, "api_key": format!("body-{canary}") })),
        )
        .await;
    assert!(rejected.status.is_client_error(), "{}", rejected.body);
    let listed = app.call(Method::GET, "/v1/models", None).await;
    assert_eq!(listed.status, StatusCode::OK);

    let logs = String::from_utf8_lossy(&logs::captured()).into_owned();
    assert!(
        !logs.contains(&canary),
        "a header, query or body was logged"
    );
    assert!(!logs.contains(&app.token), "the bearer token was logged");
    for (method, route, status) in [
        ("GET", "/v1/models/{slug}", "401"),
        ("POST", "/v1/models", "4"),
        ("GET", "/v1/models", "200"),
    ] {
        let span = format!("INFO request{{method={method} route={route}}}");
        assert!(
            logs.lines()
                .any(|line| line.contains(&span)
                    && line.contains(&format!(" request status={status}"))),
            "no info line for {method} {route}"
        );
    }
}

/// Every secret a credential holds over its life stays sealed on JetStream too: the first
/// version, a secret a retest refused, the rotated-to version, and both once shredded (by
/// the rotation, then by the deletion), in no file of the data dir or the NATS store, no log
/// line and no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_of_a_credential_stays_sealed() {
    let mut app = TestApp::start(Backend::JetStream).await;
    let secret = |prefix: &str| format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    let (first, refused, rotated, other) = (
        secret("sk-first"),
        secret("sk-limited"),
        secret("sk-rotated"),
        secret("sk-other"),
    );
    let created = app
        .create_credential("Shared", "openai_compatible", &first, None)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let model = app.add_model_on("Strict", "strict", &id).await;
    let failed = app.rotate_credential(&id, &refused, true).await;
    assert_eq!(
        failed.body["code"], "credential.retest_failed",
        "{}",
        failed.body
    );
    let done = app.rotate_credential(&id, &rotated, true).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let backup = app
        .create_credential("Backup", "openai_compatible", &other, None)
        .await;
    let moved = app
        .edit_model(
            &model,
            serde_json::json!({ "credential_id": backup.body["id"] }),
            None,
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let deleted = app
        .call(Method::DELETE, &format!("/v1/credentials/{id}"), None)
        .await;
    let states: Vec<&str> = deleted.body["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["state"].as_str())
        .collect();
    assert_eq!(states, ["shredded", "shredded"], "{}", deleted.body);
    // The console's pages too: every one is recorded with the answers the canary scans.
    let browser = crate::console::admin(&app).await;
    for path in [
        "/models".to_owned(),
        format!("/models/{model}"),
        format!("/models/{model}/deactivate"),
        format!("/models/{model}/edit"),
        "/models/new?provider=openai_compatible".to_owned(),
        "/credentials".to_owned(),
        "/workflows".to_owned(),
        "/tokens".to_owned(),
        "/audit".to_owned(),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
    }
    app.stop().await;
    for secret in [&first, &refused, &rotated, &other] {
        assert_absent(&app, secret);
    }
}

fn scan_dir(dir: &Path, needle: &[u8]) -> usize {
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files += scan_dir(&path, needle);
            continue;
        }
        let bytes = std::fs::read(&path).expect("read file");
        assert!(
            !contains(&bytes, needle),
            "the secret appears in {}",
            path.display()
        );
        files += 1;
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_scanner_finds_what_is_there() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("f"), b"xx-sk-canary-1-xx").expect("write");
    assert!(contains(
        &std::fs::read(dir.path().join("f")).expect("read"),
        b"sk-canary-1"
    ));
    let found = std::panic::catch_unwind(|| scan_dir(dir.path(), b"sk-canary-1"));
    assert!(found.is_err(), "scan_dir fails when the secret is present");
}
