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
    let id = service
        .strip_prefix("mr_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(id, _)| id.to_owned())
        .expect("a token");
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
