//! API tokens over their life: listed with who issued them, revoked at once (on the next
//! request, on both backends, and on a second replica once its views include the
//! revocation, whatever its token cache held), and the org's last admin token kept.

use reqwest::{Method, StatusCode};

use crate::support::{Backend, TestApp, id_of, parts_of};

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

/// A token issued with an expiry is listed with it, accepted before it and refused from it on
/// with `token.expired` (the registry's clock is moved, not waited for); an expiry already
/// past is refused at issue.
async fn expiring_tokens_are_refused_once_expired(backend: Backend) {
    let app = TestApp::start(backend).await;
    let now = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(app::Clock::now_ms(app.clock.as_ref())) * 1_000_000,
    )
    .expect("now");
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    let past = app
        .call(
            Method::POST,
            "/v1/tokens",
            Some(serde_json::json!({"label": "late", "role": "member",
                "expires_at": rfc3339(now - time::Duration::minutes(1))})),
        )
        .await;
    assert_eq!(
        past.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        past.body
    );
    assert_eq!(past.body["code"], "expires_at.past", "{}", past.body);

    let issued = app
        .call(
            Method::POST,
            "/v1/tokens",
            Some(serde_json::json!({"label": "nightly", "role": "member",
                "expires_at": rfc3339(now + time::Duration::hours(1))})),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    assert!(issued.body["expires_at"].is_string(), "{}", issued.body);
    let token = issued.body["token"].as_str().expect("token").to_owned();
    let on_call = app
        .call(
            Method::POST,
            "/v1/tokens",
            Some(serde_json::json!({"label": "on-call", "role": "admin",
                "expires_at": rfc3339(now + time::Duration::hours(1))})),
        )
        .await;
    assert_eq!(on_call.status, StatusCode::CREATED, "{}", on_call.body);
    let state_of = |listed: &serde_json::Value| {
        let items = listed["items"].as_array().expect("items");
        let row = items
            .iter()
            .find(|t| t["label"] == "nightly")
            .expect("listed");
        (row["state"].clone(), row["expires_at"].clone())
    };

    let before = app
        .call_with(Method::GET, "/v1/models", None, &token, &[])
        .await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    let listed = app.call(Method::GET, "/v1/tokens", None).await;
    let (state, expires_at) = state_of(&listed.body);
    assert_eq!(state, "active");
    assert_eq!(expires_at, issued.body["expires_at"]);

    app.clock.advance(std::time::Duration::from_secs(3601));
    let after = app
        .call_with(Method::GET, "/v1/models", None, &token, &[])
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.body);
    assert_eq!(after.body["code"], "token.expired", "{}", after.body);
    assert!(
        !after.body.to_string().contains(parts_of(&token).1),
        "never a secret"
    );
    let listed = app.call(Method::GET, "/v1/tokens", None).await;
    assert_eq!(state_of(&listed.body).0, "expired");
    // The admin token, issued without an expiry, still works.
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);

    // An expired admin token is no admin: the one that works is the last, never revoked,
    // and the expired one may go.
    let mine = listed.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|t| t["role"] == "admin" && t["state"] == "active")
        .and_then(|t| t["token_id"].as_str())
        .expect("the working admin token")
        .to_owned();
    let last = app
        .call(Method::DELETE, &format!("/v1/tokens/{mine}"), None)
        .await;
    assert_eq!(last.status, StatusCode::CONFLICT, "{}", last.body);
    assert_eq!(last.body["code"], "token.last_admin", "{}", last.body);
    let expired_admin = on_call.body["token_id"].as_str().expect("token id");
    let gone = app
        .call(Method::DELETE, &format!("/v1/tokens/{expired_admin}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_tokens_are_refused_on_the_embedded_log() {
    expiring_tokens_are_refused_once_expired(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_tokens_are_refused_on_jetstream() {
    expiring_tokens_are_refused_once_expired(Backend::JetStream).await;
}

/// A token's use shows as `last_used_at` once the uses are flushed (every minute in a
/// server; here forced). On JetStream the uses are in a KV bucket the replicas share: a
/// second replica shows the first one's after flushing too.
async fn last_use_is_listed(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let member = app.issue_token("dashboard", "member").await;
    let last_used = |listed: &serde_json::Value| {
        listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|t| t["label"] == "dashboard")
            .expect("listed")["last_used_at"]
            .clone()
    };
    let listed = app.call(Method::GET, "/v1/tokens", None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(
        last_used(&listed.body),
        serde_json::Value::Null,
        "never used"
    );

    let read = app
        .call_with(Method::GET, "/v1/models", None, &member, &[])
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    app.registry().flush_token_use().await.expect("flush");
    let listed = app.call(Method::GET, "/v1/tokens", None).await;
    let at = last_used(&listed.body);
    let at = at.as_str().expect("last_used_at once used");
    let at = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    let now_ms = app::Clock::now_ms(app.clock.as_ref());
    let at_ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).expect("ms");
    assert!(
        at_ms <= now_ms && now_ms - at_ms < 60_000 && at_ms % 60_000 == 0,
        "to the minute: {at_ms} vs {now_ms}"
    );

    if backend == Backend::JetStream {
        let other_dir = tempfile::tempdir().expect("dir");
        let mut config = app.config();
        config.data_dir = other_dir.path().to_path_buf();
        let replica = app::start(&config).await.expect("second replica");
        replica.registry.flush_token_use().await.expect("flush");
        let ctx = app::Ctx::system(domain::values::OrgId::parse("acme").expect("org"), "test");
        let seen = app::orgs::list_tokens(&replica.registry, &ctx).expect("tokens");
        let row = seen
            .value
            .iter()
            .find(|t| t.label == "dashboard")
            .expect("listed on the replica");
        assert_eq!(
            row.last_used_at.as_deref(),
            listed.body["items"]
                .as_array()
                .and_then(|items| items.iter().find(|t| t["label"] == "dashboard"))
                .and_then(|t| t["last_used_at"].as_str()),
            "the replicas share the uses"
        );
        replica.stop().await;
    }

    // A later use, not flushed by hand, is flushed when the registry stops.
    app.clock.advance(std::time::Duration::from_secs(120));
    let read = app
        .call_with(Method::GET, "/v1/models", None, &member, &[])
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    app.restart().await;
    let listed = app.call(Method::GET, "/v1/tokens", None).await;
    let later = last_used(&listed.body);
    let later = time::OffsetDateTime::parse(
        later.as_str().expect("still listed"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    assert_eq!(
        later - at,
        time::Duration::minutes(2),
        "the use before the stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_use_is_listed_on_the_embedded_log() {
    last_use_is_listed(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_use_is_listed_on_jetstream() {
    last_use_is_listed(Backend::JetStream).await;
}
