//! Workflows that reference models: the deactivation warning with its count, the dependents
//! worker's notices, resolve answering 410, broken references, repointing, capability
//! checks, and exact counts under concurrency. On both backends.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::canary;
use crate::support::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_on_the_embedded_log() {
    run(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_on_jetstream() {
    run(Backend::JetStream).await;
}

/// A workflow deleted and reported again under its id is saved (its stream goes on), on
/// the log that checks the subject's last position as JetStream does; a delete retried
/// under its Idempotency-Key answers as the first did, and the views rebuilt from the log
/// agree with the live ones.
async fn a_deleted_workflow_id_is_taken_again(backend: Backend) {
    let app = TestApp::start(backend).await;
    let path = "/v1/workflows/wf-again";
    let saved = put_workflow(&app, &app.token, "wf-again", workflow("First", true, "m")).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let key = [("idempotency-key", "delete-wf-again-1")];
    let deleted = app
        .call_with(Method::DELETE, path, None, &app.token, &key)
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.body["name"], "First");
    let retried = app
        .call_with(Method::DELETE, path, None, &app.token, &key)
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.body["name"], "First");
    let again = app.call(Method::DELETE, path, None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);
    assert_eq!(
        app.call(Method::GET, path, None).await.status,
        StatusCode::NOT_FOUND
    );

    for name in ["Second", "Third"] {
        let reported = put_workflow(&app, &app.token, "wf-again", workflow(name, true, "m")).await;
        assert_eq!(reported.status, StatusCode::OK, "{name}: {}", reported.body);
        let read = app.call(Method::GET, path, None).await;
        assert_eq!(read.body["name"], name, "{}", read.body);
        if name == "Second" {
            let deleted = app.call(Method::DELETE, path, None).await;
            assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
        }
    }
    app.assert_rebuild_equals_live("rebuild.redb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_workflow_id_is_taken_again_on_the_embedded_log() {
    a_deleted_workflow_id_is_taken_again(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_workflow_id_is_taken_again_on_jetstream() {
    a_deleted_workflow_id_is_taken_again(Backend::JetStream).await;
}

fn workflow(name: &str, active: bool, model: &str) -> Value {
    json!({"name": name, "active": active, "steps": [{"model": model, "features": {"tools": true}}]})
}

async fn put_workflow(
    app: &TestApp,
    token: &str,
    id: &str,
    body: Value,
) -> crate::support::registry::Reply {
    app.call_with(
        Method::PUT,
        &format!("/v1/workflows/{id}"),
        Some(body),
        token,
        &[],
    )
    .await
}

async fn run(backend: Backend) {
    let app = TestApp::start(backend).await;
    let service = app.issue_token("runtime", "service").await;
    let member = app.issue_token("reader", "member").await;
    let secret = format!("sk-canary-{}", uuid::Uuid::new_v4().simple());
    let added = app
        .add_model(json!({"display_name": "M", "provider": "openai", "provider_model_id": "gpt-5",
            "credential": {"api_key": secret}, "max_tokens": 8000, "capabilities": {"tool_use": true}}))
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(
        added.body["model"]["warnings"][0]["code"], "max_tokens.low_for_tool_use",
        "advice, not an error"
    );
    assert_eq!(added.body["model"]["controls"]["tools"], true);
    let other = app
        .add_model(
            json!({"display_name": "N", "provider": "openai", "provider_model_id": "gpt-5-mini",
            "credential": {"api_key": secret}, "max_tokens": 32000}),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED);

    // Resolve: the working credential for a service token, 403 for admins and members.
    let resolved = app
        .call_with(Method::GET, "/v1/resolve/m", None, &service, &[])
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.body);
    assert_eq!(resolved.body["credential"]["api_key"], secret.as_str());
    assert_eq!(resolved.body["provider_model_id"], "gpt-5");
    assert_eq!(
        app.call(Method::GET, "/v1/resolve/m", None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call_with(Method::GET, "/v1/resolve/m", None, &member, &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // The same in LiteLLM's terms: its provider prefix, the key, the token limit.
    let litellm = app
        .call_with(
            Method::GET,
            "/v1/resolve/m?format=litellm",
            None,
            &service,
            &[],
        )
        .await;
    assert_eq!(litellm.status, StatusCode::OK, "{}", litellm.body);
    assert_eq!(litellm.body["kwargs"]["model"], "openai/gpt-5");
    assert_eq!(litellm.body["kwargs"]["api_key"], secret.as_str());
    assert_eq!(litellm.body["kwargs"]["max_tokens"], 8000);
    assert!(
        litellm.body["position"].as_u64().is_some(),
        "{}",
        litellm.body
    );
    // The org's models as a LiteLLM proxy config: secrets as os.environ references only.
    let config = app
        .call(Method::GET, "/v1/exports/litellm-config", None)
        .await;
    assert_eq!(config.status, StatusCode::OK, "{}", config.body);
    let m = config.body["model_list"]
        .as_array()
        .and_then(|list| list.iter().find(|d| d["model_name"] == "m"))
        .cloned()
        .unwrap_or_else(|| panic!("m exported: {}", config.body));
    assert_eq!(m["litellm_params"]["model"], "openai/gpt-5");
    assert_eq!(m["litellm_params"]["api_key"], "os.environ/MODEL_M_API_KEY");
    assert!(!config.body.to_string().contains(&secret), "never a secret");
    let other_format = app
        .call_with(
            Method::GET,
            "/v1/resolve/m?format=yaml",
            None,
            &service,
            &[],
        )
        .await;
    assert_eq!(
        other_format.body["code"], "query.invalid",
        "{}",
        other_format.body
    );
    let unknown = app
        .call_with(Method::GET, "/v1/resolve/nope", None, &service, &[])
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    // Without a platform key, a platform model says who must act, not "retry shortly".
    let platform = app
        .call_with(
            Method::GET,
            "/v1/resolve/google/gemini-3.1-pro-preview",
            None,
            &service,
            &[],
        )
        .await;
    assert_eq!(
        (platform.status, platform.body["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("platform.not_configured")
        ),
        "{}",
        platform.body
    );
    assert!(
        !platform.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("retry shortly"),
        "{}",
        platform.body
    );
    // The resolve answer is the one place a secret may appear; keep it out of the canary's
    // response scan.
    app.forget_responses();

    // Two active workflows and one inactive reference M; one also uses a platform model.
    let mut subscriber = match &app.nats {
        Some(nats) => {
            let client = async_nats::connect(nats.url()).await.expect("nats");
            Some(
                client
                    .subscribe("notices.acme.workflows.*")
                    .await
                    .expect("subscribe"),
            )
        }
        None => None,
    };
    assert_eq!(
        put_workflow(&app, &service, "wf-a", workflow("Alpha digest", true, "m"))
            .await
            .status,
        StatusCode::OK
    );
    let mut beta = workflow("Beta report", true, "m");
    beta["steps"]
        .as_array_mut()
        .expect("steps")
        .push(json!({"model": "google/gemini-3.1-pro-preview"}));
    assert_eq!(
        put_workflow(&app, &service, "wf-b", beta).await.status,
        StatusCode::OK
    );
    assert_eq!(
        put_workflow(
            &app,
            &app.token,
            "wf-c",
            workflow("Gamma draft", false, "m")
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        put_workflow(&app, &member, "wf-x", workflow("X", true, "m"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // Over NATS the pipelines product reports the same way (request/reply).
    if let Some(nats) = &app.nats {
        let client = async_nats::connect(nats.url()).await.expect("nats");
        let body = workflow("Over NATS", false, "m").to_string();
        let reply = client
            .request("pipelines.acme.workflows.wf-nats", body.into())
            .await
            .expect("reply");
        let answer: Value = serde_json::from_slice(&reply.payload).expect("json");
        assert_eq!(answer["ok"], true, "{answer}");
        assert_eq!(
            app.call(Method::GET, "/v1/workflows/wf-nats", None)
                .await
                .body["name"],
            "Over NATS"
        );
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Modelreg-Method", "DELETE");
        let reply = client
            .request_with_headers("pipelines.acme.workflows.wf-nats", headers, "".into())
            .await
            .expect("reply");
        let answer: Value = serde_json::from_slice(&reply.payload).expect("json");
        assert_eq!(answer["ok"], true, "{answer}");
        assert_eq!(
            app.call(Method::GET, "/v1/workflows/wf-nats", None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let bad = client
            .request("pipelines.acme.workflows.wf-bad", "{\"name\": 5}".into())
            .await
            .expect("reply");
        let answer: Value = serde_json::from_slice(&bad.payload).expect("json");
        assert_eq!(answer["code"], "body.invalid_shape", "{answer}");
        // A malformed idempotency key is refused, as over HTTP, not silently dropped.
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Idempotency-Key", "not a key");
        let body = workflow("Keyed", true, "m").to_string();
        let reply = client
            .request_with_headers("pipelines.acme.workflows.wf-key", headers, body.into())
            .await
            .expect("reply");
        let answer: Value = serde_json::from_slice(&reply.payload).expect("json");
        assert_eq!(answer["ok"], false, "{answer}");
        assert_eq!(answer["code"], "idempotency_key.invalid", "{answer}");
        assert_eq!(
            app.call(Method::GET, "/v1/workflows/wf-key", None)
                .await
                .status,
            StatusCode::NOT_FOUND,
            "nothing saved"
        );
    }
    let refs = app.call(Method::GET, "/v1/models/m/workflows", None).await;
    assert_eq!(
        refs.body["active"].as_array().map(Vec::len),
        Some(2),
        "{}",
        refs.body
    );
    assert_eq!(refs.body["inactive"][0]["id"], "wf-c");

    // Capability gating, and reference warnings for features the model lacks.
    let check = app
        .call(
            Method::POST,
            "/v1/models/n/check",
            Some(json!({"tools": true, "reasoning_effort": true, "max_tokens": 1000})),
        )
        .await;
    assert_eq!(check.body["allowed"], false, "{}", check.body);
    let features: Vec<&str> = check.body["refused"]
        .as_array()
        .expect("refused")
        .iter()
        .filter_map(|r| r["feature"].as_str())
        .collect();
    assert_eq!(features, ["tools", "reasoning_effort"]);
    assert!(
        check.body["refused"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Tool use is off"))
    );
    let platform_check = app
        .call(
            Method::POST,
            "/v1/models/google%2Fgemini-3.1-pro-preview/check",
            Some(json!({"tools": true})),
        )
        .await;
    assert_eq!(
        platform_check.body["unknown"][0], "tools",
        "{}",
        platform_check.body
    );
    assert_eq!(
        put_workflow(&app, &service, "wf-n", workflow("Needs tools", false, "n"))
            .await
            .status,
        StatusCode::OK
    );
    let warned = app.call(Method::GET, "/v1/workflows/wf-n", None).await;
    assert_eq!(
        warned.body["references"][0]["warnings"][0]["feature"], "tools",
        "{}",
        warned.body
    );

    // Delete without confirmation: 409 with the count and the first by name.
    let refused = app.deactivate_model("m").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.body["code"], "model.has_dependents");
    assert_eq!(refused.body["count"], 2);
    assert_eq!(refused.body["first_dependent"], "Alpha digest");
    let confirmed = app
        .call(Method::DELETE, "/v1/models/m?confirm=true", None)
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);

    let gone = app
        .call_with(Method::GET, "/v1/resolve/m", None, &service, &[])
        .await;
    assert_eq!(gone.status, StatusCode::GONE, "{}", gone.body);
    assert_eq!(gone.body["code"], "model.deactivated");
    assert!(
        gone.body["deactivated_by"].is_string() && gone.body["hint"].is_string(),
        "{}",
        gone.body
    );

    // Both active workflows get a notice: on NATS as messages, on both in the API.
    if let Some(subscriber) = subscriber.as_mut() {
        let mut got = BTreeSet::new();
        while got.len() < 2 {
            let message = tokio::time::timeout(Duration::from_secs(20), subscriber.next())
                .await
                .expect("notice in time")
                .expect("message");
            let notice: Value = serde_json::from_slice(&message.payload).expect("json notice");
            assert_eq!(notice["model"], "m");
            got.insert(notice["workflow"].as_str().unwrap_or("").to_owned());
        }
        assert_eq!(got, BTreeSet::from(["wf-a".to_owned(), "wf-b".to_owned()]));
    }
    for id in ["wf-a", "wf-b"] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let view = app
                .call(Method::GET, &format!("/v1/workflows/{id}"), None)
                .await;
            if view.body["notices"]
                .as_array()
                .is_some_and(|n| !n.is_empty())
            {
                assert_eq!(view.body["notices"][0]["model"], "m");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no notice for {id}: {}",
                view.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let inactive = app.call(Method::GET, "/v1/workflows/wf-c", None).await;
    assert_eq!(
        inactive.body["notices"].as_array().map(Vec::len),
        Some(0),
        "inactive workflows get no notice"
    );

    // Broken references: exactly the two active ones; repointing one removes it.
    assert_eq!(broken_ids(&app).await, ["wf-a", "wf-b"]);
    assert_eq!(
        put_workflow(&app, &service, "wf-a", workflow("Alpha digest", true, "n"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(broken_ids(&app).await, ["wf-b"]);
    let repointed = app.call(Method::GET, "/v1/workflows/wf-a", None).await;
    assert_eq!(
        repointed.body["notices"].as_array().map(Vec::len),
        Some(0),
        "the notice clears once repointed"
    );

    // Reactivation clears the warning state; deleting a workflow removes its references.
    let back = app
        .call(Method::POST, "/v1/models/m/activation", None)
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert_eq!(back.body["status"], "active");
    assert!(back.body["deactivated_at"].is_null());
    assert!(broken_ids(&app).await.is_empty());
    let beta_view = app.call(Method::GET, "/v1/workflows/wf-b", None).await;
    assert_eq!(beta_view.body["notices"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        app.call(Method::DELETE, "/v1/workflows/wf-c", None)
            .await
            .status,
        StatusCode::OK
    );
    let refs = app.call(Method::GET, "/v1/models/m/workflows", None).await;
    assert_eq!(refs.body["inactive"].as_array().map(Vec::len), Some(0));

    canary::assert_absent(&app, &secret);
}

async fn broken_ids(app: &TestApp) -> Vec<String> {
    let list = app
        .call(Method::GET, "/v1/workflows?broken=true", None)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|w| w["id"].as_str().map(str::to_owned))
        .collect()
}

/// Workflows saved while a deactivation is in flight are either counted by the worker or
/// listed as broken, never lost. Every workflow saved before the deactivation is counted;
/// one saved after it but before the worker ran is counted too (it is just as broken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_exact_under_concurrency() {
    let app = TestApp::start(Backend::JetStream).await;
    let service = app.issue_token("runtime", "service").await;
    let added = app
        .add_model(json!({"display_name": "Hot", "provider": "openai_compatible", "provider_model_id": "llama3",
            "endpoint_url": app.fake.v1(), "max_tokens": 1000}))
        .await;
    assert_eq!(added.status, StatusCode::CREATED);
    // The deactivation goes out once the first save is answered, so saves land both before
    // and after it (no sleep: the first answer is the signal).
    let first_saved = tokio::sync::Notify::new();
    let saves = (0..40).map(|i| {
        let (app, service, first_saved) = (&app, service.clone(), &first_saved);
        async move {
            let id = format!("wf-{i:02}");
            let reply = put_workflow(
                app,
                &service,
                &id,
                workflow(&format!("W {i:02}"), true, "hot"),
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            first_saved.notify_one();
            (id, reply.body["position"].as_u64().expect("position"))
        }
    });
    let deactivate = async {
        first_saved.notified().await;
        let reply = app
            .call(Method::DELETE, "/v1/models/hot?confirm=true", None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["position"].as_u64().expect("position")
    };
    let (saved, deactivated_at) = tokio::join!(futures::future::join_all(saves), deactivate);

    // Wait for the worker's record, then compare it with the positions.
    let deadline = Instant::now() + Duration::from_secs(30);
    let warned: BTreeSet<String> = loop {
        let events = app
            .registry()
            .views()
            .model("acme", "hot")
            .expect("views")
            .expect("row");
        if let Some(warned) = events.deactivation.and_then(|d| d.warned) {
            break warned.into_iter().collect();
        }
        assert!(
            Instant::now() < deadline,
            "the dependents worker did not record a warning"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let before: BTreeSet<String> = saved
        .iter()
        .filter(|(_, at)| *at < deactivated_at)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        before.is_subset(&warned),
        "every workflow saved before the deactivation is counted: {before:?} vs {warned:?}"
    );
    let broken: BTreeSet<String> = broken_ids(&app).await.into_iter().collect();
    for (id, _) in &saved {
        assert!(warned.contains(id) || broken.contains(id), "{id} was lost");
        assert!(
            broken.contains(id),
            "every active workflow on a deactivated model is broken: {id}"
        );
    }
}

/// A replica whose views have not caught up with the log does not answer workflow reports
/// over NATS: it joins the queue group once they have. It used to join at once and answer
/// from empty views (404 `org.not_found`), which the sender takes as final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_the_log_leaves_nats_reports_to_the_others() {
    let app = TestApp::start(Backend::JetStream).await;
    let url = app.nats_url().expect("nats");
    // Views that never move: a fresh file with no projector.
    let dir = tempfile::tempdir().expect("dir");
    let behind = std::sync::Arc::new(app::Registry::new(app::Parts {
        log: std::sync::Arc::clone(app.registry().log()),
        views: std::sync::Arc::new(
            views::Views::open(&dir.path().join("views.redb")).expect("views"),
        ),
        vault: vault::Vault::new(
            vault::MasterKey::from_base64(crate::support::registry::MASTER_KEY).expect("key"),
            std::sync::Arc::new(vault::MemoryKeyring::new()),
        ),
        clock: std::sync::Arc::new(app::SystemClock),
        read_your_writes_timeout: Duration::from_secs(1),
        receipt_ttl_ms: 900_000,
        platform_key: None,
    }));
    let client = async_nats::connect(&url).await.expect("nats");
    let serving = tokio::spawn(workers::pipelines::run(
        behind,
        client.clone(),
        std::future::pending::<()>(),
    ));
    // Time for it to subscribe, had it not waited for its views.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in 0..20 {
        let body = workflow(
            &format!("Report {n}"),
            true,
            "google/gemini-3.1-pro-preview",
        );
        let reply = client
            .request(
                format!("pipelines.acme.workflows.wf-behind-{n}"),
                body.to_string().into(),
            )
            .await
            .expect("reply");
        let answer: Value = serde_json::from_slice(&reply.payload).expect("json");
        assert_eq!(answer["ok"], true, "report {n}: {answer}");
    }
    assert!(!serving.is_finished(), "it is still waiting for its views");
    serving.abort();
}
