//! API tokens over their life: listed with who issued them, revoked at once (on the next
//! request, on both backends, and on a second replica once its views include the
//! revocation, whatever its token cache held), and the org's last admin token kept.

use reqwest::{Method, StatusCode};

use crate::support::{Backend, TestApp};

/// The id and secret parts of a token `mr_<id>_<secret>` (the secret may hold `_` too).
fn parts_of(token: &str) -> (&str, &str) {
    token
        .strip_prefix("mr_")
        .and_then(|rest| rest.split_once('_'))
        .expect("a token")
}

/// The id part of a token.
fn id_of(token: &str) -> String {
    parts_of(token).0.to_owned()
}

async fn revoked_tokens_are_refused_on_the_next_request(backend: Backend) {
    let app = TestApp::start(backend).await;
    let member = app.issue_token("ci reader", "member").await;
    let member_id = id_of(&member);
    let read = app
        .call_with(Method::GET, "/v1/models", None, &member, &[])
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);

    let listed = app.call(Method::GET, "/v1/tokens", None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let items = listed.body["items"].as_array().expect("items");
    let reader = items
        .iter()
        .find(|t| t["label"] == "ci reader")
        .expect("listed");
    assert_eq!(
        (&reader["role"], &reader["state"]),
        (&"member".into(), &"active".into())
    );
    assert!(
        reader["issued_by"]
            .as_str()
            .is_some_and(|by| !by.is_empty())
    );
    assert!(
        !listed.body.to_string().contains(parts_of(&member).1),
        "never a secret"
    );
    let denied = app
        .call_with(Method::GET, "/v1/tokens", None, &member, &[])
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "admins only");

    let revoked = app
        .call(Method::DELETE, &format!("/v1/tokens/{member_id}"), None)
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert_eq!(revoked.body["state"], "revoked");
    assert!(revoked.body["revoked_at"].is_string());
    let refused = app
        .call_with(Method::GET, "/v1/models", None, &member, &[])
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert!(
        refused.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("revoked"))
    );
    let again = app
        .call(Method::DELETE, &format!("/v1/tokens/{member_id}"), None)
        .await;
    assert_eq!(
        (again.status, &again.body["state"]),
        (StatusCode::OK, &"revoked".into()),
        "revoking twice changes nothing"
    );
    let unknown = app
        .call(Method::DELETE, "/v1/tokens/0123456789abcdef", None)
        .await;
    assert_eq!(unknown.body["code"], "token.not_found", "{}", unknown.body);

    // The only admin token stays; with a second one, the first may go.
    let admin_id = id_of(&app.token);
    let last = app
        .call(Method::DELETE, &format!("/v1/tokens/{admin_id}"), None)
        .await;
    assert_eq!(last.body["code"], "token.last_admin", "{}", last.body);
    let second = app.issue_token("second admin", "admin").await;
    let gone = app
        .call_with(
            Method::DELETE,
            &format!("/v1/tokens/{admin_id}"),
            None,
            &second,
            &[],
        )
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    let old = app.call(Method::GET, "/v1/models", None).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_are_refused_on_the_embedded_log() {
    revoked_tokens_are_refused_on_the_next_request(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_are_refused_on_jetstream() {
    revoked_tokens_are_refused_on_the_next_request(Backend::JetStream).await;
}

/// A second replica on the same stream, whose token cache holds the token, refuses it as
/// soon as its views include the revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_honours_a_revocation_at_its_position() {
    let app = TestApp::start(Backend::JetStream).await;
    let member = app.issue_token("runtime", "service").await;
    let member_id = id_of(&member);
    let other_dir = tempfile::tempdir().expect("dir");
    let mut config = app.config();
    config.data_dir = other_dir.path().to_path_buf();
    let replica = app::start(&config).await.expect("second replica");
    let issued_at = app.registry().views().position();
    replica.registry.settle(issued_at).await.expect("caught up");
    app::orgs::authenticate(&replica.registry, &member).expect("valid, and now cached");

    let revoked = app
        .call(Method::DELETE, &format!("/v1/tokens/{member_id}"), None)
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    let at = revoked.position.expect("position");
    replica.registry.settle(at).await.expect("caught up");
    let refused = app::orgs::authenticate(&replica.registry, &member)
        .expect_err("revoked on the second replica too");
    assert!(
        matches!(refused, app::AppError::Unauthorized(_)),
        "{refused:?}"
    );
    replica.stop().await;
}
