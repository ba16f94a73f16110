//! The core scenario on both backends: create org → add a model with a new credential → add
//! a second reusing it → list grouped → rename (slug unchanged) → a concurrent edit gets 409
//! → deactivate → rebuild → identical checksum and identical answers. Then the secret canary.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::canary;
use crate::support::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_on_the_embedded_log() {
    run(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_on_jetstream() {
    run(Backend::JetStream).await;
}

async fn run(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let secret = format!("sk-canary-{}", uuid::Uuid::new_v4().simple());

    // Add a model with a new credential.
    let first = app
        .add_model(json!({
            "display_name": "Team GPT (Prod)",
            "provider": "openai",
            "provider_model_id": "gpt-5",
            "credential": {"api_key": secret},
            "max_tokens": 32000,
            "capabilities": {"tool_use": true, "json_mode": true, "reasoning": "effort"},
            "input_cost_per_token": "0.00000125",
            "output_cost_per_token": "0.00001"
        }))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let model = &first.body["model"];
    assert_eq!(model["slug"], "team-gpt-prod");
    assert_eq!(model["version"], 1);
    assert_eq!(model["input_cost_per_token"], "0.00000125");
    // A reasoning model hears the provider's documented ceiling (gpt-5: 128000).
    assert_eq!(
        model["warnings"][0]["code"], "max_tokens.below_reasoning_ceiling",
        "{model}"
    );
    assert!(
        model["warnings"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("128000"))
    );
    let credential_id = model["credential"]["id"]
        .as_str()
        .expect("credential id")
        .to_owned();
    let preview = model["credential"]["preview"].as_str().expect("preview");
    assert!(
        preview.ends_with(&secret[secret.len() - 4..]) && !preview.contains(&secret[..8]),
        "{preview}"
    );
    let position = first.body["position"].as_u64().expect("position");
    assert_eq!(first.position, Some(position), "header and body agree");
    // Read your writes: the very next read sees the model.
    assert_eq!(app.get_model("team-gpt-prod").await.status, StatusCode::OK);

    // A second model reusing the saved credential by id.
    let second = app
        .add_model(json!({
            "display_name": "Team GPT (Prod)",
            "provider": "openai",
            "provider_model_id": "gpt-5-mini",
            "credential_id": credential_id,
            "max_tokens": 16000
        }))
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(
        second.body["model"]["slug"], "team-gpt-prod-2",
        "a taken slug gets -2"
    );
    assert_eq!(
        second.body["model"]["credential"]["id"],
        credential_id.as_str()
    );

    // Entering the same secret again is recognised, not stored twice.
    let match_reply = app
        .call(
            reqwest::Method::POST,
            "/v1/credentials/match",
            Some(json!({"provider": "openai", "credential": {"api_key": secret}})),
        )
        .await;
    assert_eq!(
        match_reply.body["reuse_available"]["id"],
        credential_id.as_str(),
        "{}",
        match_reply.body
    );
    let third = app
        .add_model(json!({
            "display_name": "Nightly",
            "provider": "openai",
            "provider_model_id": "gpt-5",
            "credential": {"api_key": secret},
            "max_tokens": 8000
        }))
        .await;
    assert_eq!(third.status, StatusCode::CREATED, "{}", third.body);
    assert_eq!(
        third.body["reused_credential"]["id"],
        credential_id.as_str()
    );

    // Listing is grouped, with the platform catalog merged in.
    let list = app.list_models().await;
    assert_eq!(list.status, StatusCode::OK);
    let platform = list.body["platform"].as_array().expect("platform group");
    assert_eq!(platform.len(), 10);
    assert!(
        platform
            .iter()
            .any(|m| m["id"] == "google/gemini-3.1-pro-preview" && m["default"] == true)
    );
    let custom: Vec<&str> = list.body["custom"]
        .as_array()
        .expect("custom group")
        .iter()
        .map(|m| m["slug"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(custom, ["nightly", "team-gpt-prod", "team-gpt-prod-2"]);
    assert_eq!(
        list.body["custom"][1]["capabilities"]["reasoning"],
        "effort"
    );
    let credentials = app.list_credentials().await;
    assert_eq!(credentials.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(credentials.body["items"][0]["used_by"], 3);

    // Rename: the slug stays.
    let renamed = app
        .edit_model(
            "team-gpt-prod",
            json!({"display_name": "Team GPT"}),
            Some(1),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["slug"], "team-gpt-prod");
    assert_eq!(renamed.body["display_name"], "Team GPT");
    assert_eq!(renamed.body["version"], 2);
    assert_eq!(
        renamed.body["credential"]["id"],
        credential_id.as_str(),
        "no secret given: credential kept"
    );

    // An edit made against the old version gets 409 with the current one.
    let stale = app
        .edit_model("team-gpt-prod", json!({"max_tokens": 1000}), Some(1))
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert_eq!(stale.body["current_version"], 2);

    // Two truly concurrent edits of the same version: exactly one wins.
    let (a, b) = tokio::join!(
        app.edit_model("team-gpt-prod", json!({"max_tokens": 1111}), Some(2)),
        app.edit_model("team-gpt-prod", json!({"max_tokens": 2222}), Some(2)),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} / {}",
        a.body,
        b.body
    );
    let loser = if a.status == StatusCode::CONFLICT {
        &a
    } else {
        &b
    };
    assert_eq!(loser.body["current_version"], 3);

    // Deactivate; edits are then refused, reads still work.
    let gone = app.deactivate_model("team-gpt-prod-2").await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    assert_eq!(gone.body["status"], "deactivated");
    assert_eq!(
        app.deactivate_model("team-gpt-prod-2").await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(app.list_credentials().await.body["items"][0]["used_by"], 2);

    // The dependents worker records its (empty) warning after the deactivation; let the log
    // come to rest so "before" and "after" describe the same position.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let row = app
            .registry()
            .views()
            .model("acme", "team-gpt-prod-2")
            .expect("views")
            .expect("row");
        if row.deactivation.and_then(|d| d.warned).is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dependents worker did not run"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Rebuild: a fresh replay of the log gives the same views, byte for byte.
    let before = answers(&app).await;
    let live = app.registry().views().checksum().expect("checksum");
    let log = std::sync::Arc::clone(app.registry().log());
    let first_path = app.data.path().join("rebuild-1.redb");
    let second_path = app.data.path().join("rebuild-2.redb");
    let rebuilt_once = views::rebuild(std::sync::Arc::clone(&log), &first_path, |_, _| {})
        .await
        .expect("rebuild");
    let rebuilt_twice = views::rebuild(log, &second_path, |_, _| {})
        .await
        .expect("rebuild");
    assert_eq!(rebuilt_once, live, "a rebuild equals the live views");
    assert_eq!(rebuilt_once, rebuilt_twice, "two rebuilds agree");

    // Swap the rebuilt files in (the audit file first), restart, and ask the same questions.
    app.stop().await;
    std::fs::rename(
        views::audit_path(&first_path),
        views::audit_path(&app.views_path()),
    )
    .expect("swap");
    std::fs::rename(&first_path, app.views_path()).expect("swap");
    app.restart().await;
    assert_eq!(app.registry().views().checksum().expect("checksum"), live);
    let after = answers(&app).await;
    assert_eq!(
        before, after,
        "identical answers before and after the rebuild"
    );

    app.stop().await;
    canary::assert_absent(&app, &secret);
}

/// Answers to every read, positions removed (they are equal anyway; timing is not).
async fn answers(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "/v1/models",
        "/v1/models/team-gpt-prod",
        "/v1/models/team-gpt-prod-2",
        "/v1/credentials",
    ] {
        let mut reply = app.call(reqwest::Method::GET, path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        // A read answers at the position its views reached, which an event still in flight
        // moves; the checksums above compare the views themselves.
        if let Some(fields) = reply.body.as_object_mut() {
            fields.remove("position");
        }
        out.push(reply.body);
    }
    out
}
