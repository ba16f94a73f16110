//! The runtime crate (`modelreg-runtime`) against a real registry over HTTP: a cached
//! resolve that follows the registry's position (never served stale once a deactivation is
//! applied), and capability checks that agree with `POST /v1/models/{model}/check`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::workflow::Wanted;
use modelreg_runtime::{Client, ClientError};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Backend, TestApp};

#[tokio::test]
async fn cached_resolve_follows_the_registry() {
    let app = TestApp::start(Backend::Embedded).await;
    let added = app.add_model(app.local_draft("Coder")).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let service = app.issue_token("runtime", "service").await;
    let client = Client::new(&app.base, service.clone()).expect("client");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let follower = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .follow(async {
                    let _ = stopped.await;
                })
                .await;
        })
    };

    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.is_following() {
        assert!(
            Instant::now() < deadline,
            "the follower never heard the registry"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = client.resolve("coder").await.expect("resolve");
    assert_eq!(first.provider_model_id, "llama3");
    assert_eq!(first.max_tokens, Some(4096));
    let again = client.resolve("coder").await.expect("resolve");
    assert!(
        Arc::ptr_eq(&first, &again),
        "the second resolve is the cached answer"
    );

    // The same verdict, reasons included, as the registry's own check.
    let wanted = Wanted {
        tools: true,
        image_input: true,
        reasoning_budget: true,
        max_tokens: Some(100_000),
        ..Wanted::default()
    };
    let local = client.check("coder", &wanted).await.expect("check");
    let remote = app
        .call(
            Method::POST,
            "/v1/models/coder/check",
            Some(json!({"tools": true, "image_input": true, "reasoning_budget": true, "max_tokens": 100_000})),
        )
        .await;
    assert_eq!(remote.status, StatusCode::OK, "{}", remote.body);
    assert_eq!(json!(local.allowed), remote.body["allowed"]);
    let local_refusals: Vec<serde_json::Value> = local
        .refused
        .iter()
        .map(|r| json!({"feature": r.feature, "reason": r.reason}))
        .collect();
    assert_eq!(json!(local_refusals), remote.body["refused"]);
    assert!(!local.refused.is_empty());

    // A workflow report moves the views but changes no resolve answer: the registry's
    // resolve scope does not move (held for its whole wait), and the answer stays cached.
    let head = client.head();
    let report = app
        .call(
            Method::PUT,
            "/v1/workflows/nightly",
            Some(json!({"name": "Nightly", "active": false, "steps": [{"model": "coder"}]})),
        )
        .await;
    assert!(report.status.is_success(), "{}", report.body);
    let held = app
        .call(
            Method::GET,
            &format!("/v1/position?after={head}&wait=1&scope=resolve"),
            None,
        )
        .await;
    assert_eq!(held.status, StatusCode::OK, "{}", held.body);
    assert_eq!(held.body["moved"], false, "{}", held.body);
    assert_eq!(held.body["changed_at"], head, "{}", held.body);
    assert!(
        held.body["position"].as_u64() > Some(head),
        "the views moved: {}",
        held.body
    );
    assert_eq!(
        client.head(),
        head,
        "the follower saw no resolve-relevant change"
    );
    let still = client
        .cached("coder")
        .expect("still cached after a workflow report");
    assert!(Arc::ptr_eq(&first, &still));

    // A deactivation elsewhere: the follower learns of its position, the cached answer
    // retires, and the next resolve is the registry's refusal.
    let deactivated = app.deactivate_model("coder").await;
    assert_eq!(deactivated.status, StatusCode::OK, "{}", deactivated.body);
    let position = deactivated.position.expect("position");
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.head() < position {
        assert!(
            Instant::now() < deadline,
            "the follower learns of position {position} (at {})",
            client.head()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(client.cached("coder").is_none(), "never served stale");
    match client.resolve("coder").await {
        Err(ClientError::Refused { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (410, "model.deactivated"));
        }
        Err(other) => panic!("a refusal, not {other}"),
        Ok(_) => panic!("a deactivated model resolved"),
    }
    // The service token revoked: the follower is refused, and nothing cached is served.
    let id = crate::support::id_of(&service);
    let revoked = app
        .call(Method::DELETE, &format!("/v1/tokens/{id}"), None)
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.is_following() {
        assert!(
            Instant::now() < deadline,
            "the refused follower still serves its cache"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop.send(());
    follower.await.expect("the follower stops");
    app.forget_responses();
}

/// A registry of an earlier release: `GET /v1/position` holds until the log passes `after`
/// and answers no `changed_at`; resolve answers one model. It counts the position polls.
#[derive(Clone)]
struct EarlierRegistry {
    position: tokio::sync::watch::Sender<u64>,
    polls: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(serde::Deserialize)]
struct Poll {
    after: Option<u64>,
    wait: Option<u64>,
}

async fn earlier_position(
    axum::extract::State(registry): axum::extract::State<EarlierRegistry>,
    axum::extract::Query(poll): axum::extract::Query<Poll>,
) -> axum::Json<serde_json::Value> {
    registry
        .polls
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut moves = registry.position.subscribe();
    let after = poll.after.unwrap_or(0);
    let wait = Duration::from_secs(poll.wait.unwrap_or(0));
    let _ = tokio::time::timeout(wait, moves.wait_for(|position| *position > after)).await;
    let position = *moves.borrow();
    axum::Json(json!({"moved": position > after, "position": position}))
}

async fn earlier_resolve(
    axum::extract::State(registry): axum::extract::State<EarlierRegistry>,
) -> axum::Json<serde_json::Value> {
    let position = *registry.position.borrow();
    axum::Json(
        json!({"kind": "custom", "model": "coder", "provider": "openai_compatible",
        "base_url": null, "endpoint_url": "http://127.0.0.1:9/v1", "region": null,
        "provider_model_id": "llama3", "max_tokens": 4096, "capabilities": null,
        "input_cost_per_token": null, "output_cost_per_token": null, "credential": null,
        "position": position}),
    )
}

/// A runtime of this release following a registry of an earlier one (no `changed_at`)
/// follows the log's position, as runtimes did: it caches, retires the answer when the
/// log moves, and waits in its long polls instead of asking again at once.
#[tokio::test]
async fn a_runtime_follows_an_earlier_registry_by_its_position() {
    let registry = EarlierRegistry {
        position: tokio::sync::watch::Sender::new(10),
        polls: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/v1/position", axum::routing::get(earlier_position))
        .route("/v1/resolve/coder", axum::routing::get(earlier_resolve))
        .with_state(registry.clone());
    let (base, server) = crate::support::serve_local(app).await;
    let client = Client::new(&base, "mr_test_token".into()).expect("client");
    let follower = {
        let client = client.clone();
        tokio::spawn(async move { client.follow(std::future::pending()).await })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.head() < 10 || !client.is_following() {
        assert!(
            Instant::now() < deadline,
            "the follower never heard the registry"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = client.resolve("coder").await.expect("resolve");
    assert!(
        client
            .cached("coder")
            .is_some_and(|again| Arc::ptr_eq(&first, &again))
    );
    registry.position.send_replace(11);
    while client.head() < 11 {
        assert!(
            Instant::now() < deadline,
            "the follower never saw the log move"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        client.cached("coder").is_none(),
        "the answer retires with the log's move"
    );
    let polls = registry.polls.load(std::sync::atomic::Ordering::SeqCst);
    assert!(polls <= 4, "the follower waits in its polls: {polls} polls");
    follower.abort();
    server.abort();
}
