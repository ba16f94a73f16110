//! Schema evolution for real: a log written by an earlier release is read by this one and
//! rebuilds to the views that release had. `schemas/fixtures/log-2534cd7/` holds an embedded
//! `log.redb` written by the code at commit 2534cd7 (before envelopes gained a client
//! address) with every event variant of that release in it, and `views.json`, what that
//! release's views and answers held after it. The fixture is never regenerated: a new
//! release that changes a layout adds a fixture of its own next to it.

use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, TestApp};

/// The fixture made at commit 2534cd7.
fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/fixtures/log-2534cd7")
}

/// Writes the fixture: a log with every event variant, and what the views and the answers
/// held after it. Run once, at the release the fixture stands for:
/// `cargo test -p tests --test it -- evolution::make_the_fixture_log --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the fixture of a release; run by hand at that release only"]
async fn make_the_fixture_log() {
    let mut app = TestApp::start(Backend::Embedded).await;
    let deployer = app.issue_token("ci deployer", "admin").await;
    let reader = app.issue_token("reader", "member").await;
    let plain = app.add_model(app.local_draft("Team Llama")).await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.body);
    let keyed = app
        .add_model(json!({"display_name": "Team GPT", "provider": "openai",
            "provider_model_id": "gpt-5", "credential": {"api_key": "sk-fixture-0123456789abcdef"},
            "max_tokens": 32000, "capabilities": {"tool_use": true}}))
        .await;
    assert_eq!(keyed.status, StatusCode::CREATED, "{}", keyed.body);
    let edited = app
        .call_with(
            Method::PATCH,
            "/v1/models/team-gpt",
            Some(json!({"display_name": "Team GPT (Prod)", "max_tokens": 64000})),
            &deployer,
            &[],
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let workflow = json!({"name": "Digest", "active": true,
        "steps": [{"model": "team-llama", "features": {"tools": false}}]});
    let saved = app
        .call(Method::PUT, "/v1/workflows/wf-digest", Some(workflow))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let gone = app
        .call(Method::DELETE, "/v1/models/team-llama?confirm=true", None)
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    app.wait_for_warning("team-llama").await;
    let back = app
        .call(Method::POST, "/v1/models/team-llama/activation", None)
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    let deleted = app
        .call(Method::DELETE, "/v1/workflows/wf-digest", None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    let tested = app
        .call(
            Method::POST,
            "/v1/models/team-llama/connection-tests",
            Some(json!({})),
        )
        .await;
    assert_eq!(tested.status, StatusCode::ACCEPTED, "{}", tested.body);
    let test_id = tested.body["id"].as_str().expect("test id").to_owned();
    app.wait_for_test(&test_id).await;
    let member = app.call(Method::GET, "/v1/tokens", None).await;
    let reader_id = member.body["items"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["label"] == "reader")
        .and_then(|t| t["token_id"].as_str())
        .expect("reader token")
        .to_owned();
    let revoked = app
        .call(Method::DELETE, &format!("/v1/tokens/{reader_id}"), None)
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    drop(reader);
    // Let the log come to rest, then take what the views say.
    let last = app.registry().log().last_seq().await.expect("last");
    app.registry().settle(last).await.expect("settle");
    let snapshot = snapshot(app.registry());
    app.stop().await;
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).expect("fixture dir");
    std::fs::copy(app.data.path().join("log.redb"), dir.join("log.redb")).expect("copy log");
    // redb grows its file in large steps; compacted, the fixture is a few kilobytes.
    let mut db = redb::Database::create(dir.join("log.redb")).expect("open the copy");
    while db.compact().expect("compact") {}
    drop(db);
    let text = serde_json::to_string_pretty(&snapshot).expect("json") + "\n";
    std::fs::write(dir.join("views.json"), text).expect("write views.json");
}

/// The log of the old release, copied (its file is never opened in place), rebuilds to the
/// rows and answers the old release had: every value that release showed is still there and
/// the same; fields added since (a credential's name, the platform catalog) may join them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_release_log_rebuilds_to_its_views() {
    let data = tempfile::tempdir().expect("dir");
    std::fs::copy(fixture_dir().join("log.redb"), data.path().join("log.redb")).expect("copy");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_dir().join("views.json")).expect("views.json"),
    )
    .expect("json");
    let mut app = TestApp::open(None, data).await;
    let last = app.registry().log().last_seq().await.expect("last");
    app.registry().settle(last).await.expect("settle");
    // Two changes since that release, both by design: the platform catalog is event-sourced
    // now (its seed is appended on the first start, after the old log's events) and listed
    // by id.
    let mut expected = expected;
    let old_position = expected["position"].take();
    let mut now = snapshot(app.registry());
    assert!(now["position"].as_u64() > old_position.as_u64());
    now["position"] = Value::Null;
    for answer in [&mut expected, &mut now] {
        if let Some(platform) = answer["answers"]["models"]["platform"].as_array_mut() {
            platform.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        }
    }
    let mismatches = differences(&expected, &now, "$");
    assert!(mismatches.is_empty(), "{mismatches:#?}");

    // Every envelope is of layout 1, and every event variant of that release is there.
    let mut stored = read_log(app.registry().log().as_ref()).await;
    stored.truncate(usize::try_from(old_position.as_u64().expect("position")).expect("small"));
    let mut names = std::collections::BTreeSet::new();
    for message in &stored {
        let envelope = eventlog::Envelope::decode(&message.data).expect("envelope");
        assert_eq!(envelope.schema_version, 1);
        let event =
            domain::Event::decode(envelope.payload_version, &envelope.payload).expect("event");
        names.insert(event.name());
    }
    let release: std::collections::BTreeSet<&str> = [
        "org.created",
        "org.token_issued",
        "org.token_revoked",
        "credential.created",
        "model.added",
        "model.edited",
        "model.deactivated",
        "model.dependents_warned",
        "model.reactivated",
        "workflow.saved",
        "workflow.deleted",
        "connection_test.requested",
        "connection_test.completed",
    ]
    .into();
    assert_eq!(names, release);

    // New commands append layout-2 envelopes behind them; a rebuild of the mixed log gives
    // the live views' bytes.
    app.token = app::orgs::issue_token(
        app.registry(),
        &app::Ctx::system(domain::values::OrgId::parse("acme").expect("org"), "test"),
        api::IssueToken {
            label: "after the upgrade".into(),
            role: "admin".into(),
            expires_at: None,
        },
    )
    .await
    .expect("token")
    .value
    .token
    .expect("shown once")
    .0
    .expose_secret()
    .to_owned();
    let edited = app
        .edit_model("team-gpt", json!({"max_tokens": 16000}), None)
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let gone = app.deactivate_model("team-gpt").await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    app.wait_for_warning("team-gpt").await;
    let last = app.registry().log().last_seq().await.expect("last");
    app.registry().settle(last).await.expect("settle");
    let newest = read_log(app.registry().log().as_ref()).await;
    let layouts: Vec<u16> = newest[stored.len()..]
        .iter()
        .map(|m| {
            eventlog::Envelope::decode(&m.data)
                .expect("envelope")
                .schema_version
        })
        .collect();
    assert!(!layouts.is_empty() && layouts.iter().all(|v| *v == eventlog::SCHEMA_VERSION));
    let live = app.registry().views().checksum().expect("checksum");
    let rebuilt = views::rebuild(
        std::sync::Arc::clone(app.registry().log()),
        &app.data.path().join("rebuilt.redb"),
        |_, _| {},
    )
    .await
    .expect("rebuild");
    assert_eq!(
        live, rebuilt,
        "a mixed-version log rebuilds to the live views"
    );
    app.stop().await;
}

/// Where `actual` fails to hold what `expected` held: every key of an object and every element
/// of an array (same length) must be there with the same value; keys `actual` added are fine.
fn differences(expected: &Value, actual: &Value, at: &str) -> Vec<String> {
    match (expected, actual) {
        (Value::Object(old), Value::Object(new)) => old
            .iter()
            .flat_map(|(key, value)| match new.get(key) {
                Some(now) => differences(value, now, &format!("{at}.{key}")),
                None => vec![format!("{at}.{key}: gone")],
            })
            .collect(),
        (Value::Array(old), Value::Array(new)) if old.len() == new.len() => old
            .iter()
            .zip(new)
            .enumerate()
            .flat_map(|(i, (value, now))| differences(value, now, &format!("{at}[{i}]")))
            .collect(),
        _ if expected == actual => Vec::new(),
        _ => vec![format!("{at}: was {expected}, is {actual}")],
    }
}

/// Every message of `log`, in order.
pub(crate) async fn read_log(log: &dyn eventlog::EventLog) -> Vec<eventlog::Stored> {
    use futures::StreamExt;
    let last = log.last_seq().await.expect("last");
    let mut tail = log.tail(1).await.expect("tail");
    let mut stored = Vec::new();
    while stored
        .last()
        .is_none_or(|m: &eventlog::Stored| m.seq < last)
    {
        stored.push(tail.next().await.expect("a message").expect("read"));
    }
    stored
}

/// The views' rows and the answers of the org `acme`, as JSON.
fn snapshot(registry: &app::Registry) -> Value {
    let views = registry.views();
    let org = domain::values::OrgId::parse("acme").expect("org");
    let ctx = app::Ctx::system(org, "fixture");
    let models = views.models("acme").expect("models");
    let answers_of_models: Vec<Value> = models
        .iter()
        .map(|row| {
            let slug = row.model.slug.as_str();
            serde_json::to_value(app::models::get(registry, &ctx, slug).expect("model").value)
                .expect("json")
        })
        .collect();
    json!({
        "position": views.position(),
        "rows": {
            "org": views.org("acme").expect("org"),
            "tokens": views.tokens("acme").expect("tokens"),
            "models": models,
            "credentials": views.credentials("acme").expect("credentials"),
            "workflows": views.workflows("acme").expect("workflows"),
        },
        "answers": {
            "models": app::models::list(registry, &ctx).expect("list").value,
            "each_model": answers_of_models,
            "credentials": app::credentials::list(registry, &ctx).expect("credentials").value,
            "tokens": app::orgs::list_tokens(registry, &ctx).expect("tokens").value,
            "workflows": app::workflows::list(registry, &ctx, false).expect("workflows").value,
        },
    })
}
