//! The audit trail over HTTP, on both backends: 20 mixed commands by two labelled tokens
//! give a trail with the right actor, order and before/after; model and credential
//! histories show connection tests and dependents warnings; paging with the cursor returns
//! every entry once while commands land; roles; and no secret in any answer.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use app::Clock as _;

use crate::canary;
use crate::support::{Backend, Reply, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_trail_on_the_embedded_log() {
    run(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_trail_on_jetstream() {
    run(Backend::JetStream).await;
}

/// What one command should have left in the trail.
struct Expected {
    actor: &'static str,
    action: &'static str,
    changes: Vec<(&'static str, Option<String>, Option<String>)>,
}

async fn run(backend: Backend) {
    let app = TestApp::start(backend).await;
    let alice = app.issue_token("alice (release bot)", "admin").await;
    let bob = app.issue_token("bob", "admin").await;
    let viewer = app.issue_token("viewer", "member").await;
    let secret = format!("sk-canary-{}", uuid::Uuid::new_v4().simple());
    let start = app.registry().views().position();
    let mut expected: Vec<Expected> = Vec::new();
    let who = |i: usize| {
        if i.is_multiple_of(2) {
            (&alice, "alice (release bot)")
        } else {
            (&bob, "bob")
        }
    };

    // 1, 2: two models, one with a new credential (its test, the credential, the model).
    let (token, label) = who(0);
    let alpha = add_as(
        &app,
        token,
        json!({"display_name": "Alpha", "provider": "openai",
        "provider_model_id": "gpt-5", "credential": {"api_key": secret}, "max_tokens": 8000}),
    )
    .await;
    assert_eq!(alpha.status, StatusCode::CREATED, "{}", alpha.body);
    let credential_id = alpha.body["model"]["credential"]["id"]
        .as_str()
        .expect("credential")
        .to_owned();
    expected.push(Expected {
        actor: label,
        action: "connection_test.requested",
        changes: vec![],
    });
    expected.push(Expected {
        actor: "connection-test worker",
        action: "connection_test.completed",
        changes: vec![("outcome", None, Some("ok".into()))],
    });
    expected.push(Expected {
        actor: label,
        action: "credential.created",
        changes: vec![("kind", None, Some("api_key".into()))],
    });
    expected.push(Expected {
        actor: label,
        action: "model.added",
        changes: vec![
            ("display_name", None, Some("Alpha".into())),
            ("max_tokens", None, Some("8000".into())),
        ],
    });
    let (token, label) = who(1);
    let beta = add_as(&app, token, json!(app.local_draft("Beta"))).await;
    assert_eq!(beta.status, StatusCode::CREATED, "{}", beta.body);
    expected.push(Expected {
        actor: label,
        action: "connection_test.requested",
        changes: vec![],
    });
    expected.push(Expected {
        actor: "connection-test worker",
        action: "connection_test.completed",
        changes: vec![],
    });
    expected.push(Expected {
        actor: label,
        action: "model.added",
        changes: vec![("credential", None, None)],
    });
    let mut snapshots = vec![snapshot(&app).await];
    // 3: a rename.
    let (token, label) = who(2);
    ok(&app
        .call_with(
            Method::PATCH,
            "/v1/models/alpha",
            Some(json!({"display_name": "Alpha Prod"})),
            token,
            &[],
        )
        .await);
    expected.push(Expected {
        actor: label,
        action: "model.edited",
        changes: vec![(
            "display_name",
            Some("Alpha".into()),
            Some("Alpha Prod".into()),
        )],
    });
    // 4: a workflow on beta; 5: beta deactivated (the worker warns it); 6: reactivated.
    let (token, label) = who(3);
    let workflow = json!({"name": "Digest", "active": true, "steps": [{"model": "beta", "features": {"tools": false}}]});
    ok(&app
        .call_with(
            Method::PUT,
            "/v1/workflows/wf-digest",
            Some(workflow),
            token,
            &[],
        )
        .await);
    expected.push(Expected {
        actor: label,
        action: "workflow.saved",
        changes: vec![("models", None, Some("beta".into()))],
    });
    let (token, label) = who(4);
    ok(&app
        .call_with(
            Method::DELETE,
            "/v1/models/beta?confirm=true",
            None,
            token,
            &[],
        )
        .await);
    expected.push(Expected {
        actor: label,
        action: "model.deactivated",
        changes: vec![("status", Some("active".into()), Some("deactivated".into()))],
    });
    app.wait_for_warning("beta").await;
    expected.push(Expected {
        actor: "dependents worker",
        action: "model.dependents_warned",
        changes: vec![("warned_workflows", None, Some("wf-digest".into()))],
    });
    let (token, label) = who(5);
    ok(&app
        .call_with(Method::POST, "/v1/models/beta/activation", None, token, &[])
        .await);
    expected.push(Expected {
        actor: label,
        action: "model.reactivated",
        changes: vec![("status", Some("deactivated".into()), Some("active".into()))],
    });
    snapshots.push(snapshot(&app).await);
    // 7: a test of the saved model, whose outcome shows in its history.
    let (token, label) = who(6);
    let tested = app
        .call_with(
            Method::POST,
            "/v1/models/alpha/connection-tests",
            Some(json!({})),
            token,
            &[],
        )
        .await;
    assert_eq!(tested.status, StatusCode::ACCEPTED, "{}", tested.body);
    app.wait_for_test(tested.body["id"].as_str().expect("id"))
        .await;
    expected.push(Expected {
        actor: label,
        action: "connection_test.requested",
        changes: vec![("model", None, Some("alpha".into()))],
    });
    expected.push(Expected {
        actor: "connection-test worker",
        action: "connection_test.completed",
        changes: vec![],
    });
    // 8: the workflow deleted; 9: a member token revoked.
    let (token, label) = who(7);
    ok(&app
        .call_with(Method::DELETE, "/v1/workflows/wf-digest", None, token, &[])
        .await);
    expected.push(Expected {
        actor: label,
        action: "workflow.deleted",
        changes: vec![("name", Some("Digest".into()), None)],
    });
    let spare = app.issue_token("spare", "member").await;
    let spare_id = crate::support::id_of(&spare);
    expected.push(Expected {
        actor: "bootstrap admin",
        action: "org.token_issued",
        changes: vec![("label", None, Some("spare".into()))],
    });
    let (token, label) = who(8);
    ok(&app
        .call_with(
            Method::DELETE,
            &format!("/v1/tokens/{spare_id}"),
            None,
            token,
            &[],
        )
        .await);
    expected.push(Expected {
        actor: label,
        action: "org.token_revoked",
        changes: vec![("state", Some("active".into()), Some("revoked".into()))],
    });
    // 10 to 20: edits by turns, each from the value the last one left.
    let mut max_tokens = 8000;
    for i in 9..20 {
        let (token, label) = who(i);
        let next = 1000 + i as u32;
        ok(&app
            .call_with(
                Method::PATCH,
                "/v1/models/alpha",
                Some(json!({"max_tokens": next})),
                token,
                &[],
            )
            .await);
        expected.push(Expected {
            actor: label,
            action: "model.edited",
            changes: vec![(
                "max_tokens",
                Some(max_tokens.to_string()),
                Some(next.to_string()),
            )],
        });
        max_tokens = next;
    }

    snapshots.push(snapshot(&app).await);

    // Time travel: as of each point, by position and by time, the answers then.
    for (position, at, answers) in &snapshots {
        assert_eq!(
            &as_of(&app, &position.to_string(), true).await,
            answers,
            "as of {position}"
        );
        let mut without = answers.clone();
        for answer in &mut without {
            answer.as_object_mut().map(|o| o.remove("position"));
        }
        assert_eq!(as_of(&app, at, false).await, without, "as of {at}");
    }
    let ahead = app.call(Method::GET, "/v1/models?as_of=999999", None).await;
    assert_eq!(
        ahead.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        ahead.body
    );
    let before_alpha = app
        .call(
            Method::GET,
            &format!("/v1/models/alpha?as_of={start}"),
            None,
        )
        .await;
    assert_eq!(
        before_alpha.status,
        StatusCode::NOT_FOUND,
        "{}",
        before_alpha.body
    );

    // The whole trail since the tokens were issued, newest first.
    let trail = app.call(Method::GET, "/v1/audit?limit=500", None).await;
    assert_eq!(trail.status, StatusCode::OK, "{}", trail.body);
    let items: Vec<&Value> = trail.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .take_while(|e| e["at_position"].as_u64().is_some_and(|p| p > start))
        .collect();
    let positions: Vec<u64> = items
        .iter()
        .map(|e| e["at_position"].as_u64().expect("position"))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] > w[1]),
        "newest first: {positions:?}"
    );
    let oldest_first: Vec<&Value> = items.into_iter().rev().collect();
    assert_eq!(oldest_first.len(), expected.len(), "{}", trail.body);
    for (entry, want) in oldest_first.iter().zip(&expected) {
        assert_eq!(entry["action"], want.action, "{entry}");
        assert_eq!(entry["actor"]["label"], want.actor, "{entry}");
        for (field, before, after) in &want.changes {
            let change = entry["changes"]
                .as_array()
                .expect("changes")
                .iter()
                .find(|c| c["field"] == *field);
            match (before, after) {
                (None, None) => assert!(change.is_none(), "{field} did not change: {entry}"),
                _ => {
                    let change = change.unwrap_or_else(|| panic!("{field} changed: {entry}"));
                    assert_eq!(change["before"].as_str(), before.as_deref(), "{entry}");
                    assert_eq!(change["after"].as_str(), after.as_deref(), "{entry}");
                }
            }
        }
        if want.action == "model.edited" {
            assert_eq!(
                entry["changes"].as_array().map(Vec::len),
                Some(want.changes.len()),
                "only what changed: {entry}"
            );
        }
        let by_token = entry["actor"]["kind"] == "token";
        assert_eq!(
            entry["client_address"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:")),
            by_token,
            "the client's address, for requests only: {entry}"
        );
    }
    let failed_or_passed = oldest_first
        .iter()
        .filter(|e| e["action"] == "connection_test.completed")
        .all(|e| e["summary"] == "connection test passed");
    assert!(failed_or_passed);

    // Filters: one actor, one action, one aggregate, a time range.
    let bobs = app
        .call(Method::GET, "/v1/audit?actor=bob&limit=500", None)
        .await;
    let bobs = bobs.body["items"].as_array().expect("items");
    assert_eq!(
        bobs.len(),
        expected.iter().filter(|e| e.actor == "bob").count()
    );
    assert!(bobs.iter().all(|e| e["actor"]["label"] == "bob"));
    let edits = app
        .call(Method::GET, "/v1/audit?action=model.edited&limit=500", None)
        .await;
    assert_eq!(edits.body["items"].as_array().map(Vec::len), Some(12));
    let now = time::OffsetDateTime::now_utc();
    let range = app
        .call(
            Method::GET,
            &format!(
                "/v1/audit?since={}&until={}&kind=model&limit=500",
                rfc3339(now - time::Duration::hours(1)),
                rfc3339(now + time::Duration::hours(1))
            ),
            None,
        )
        .await;
    assert_eq!(range.status, StatusCode::OK, "{}", range.body);
    assert!(
        range.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|e| e["aggregate"]["kind"] == "model")
    );
    let later = app
        .call(
            Method::GET,
            &format!(
                "/v1/audit?since={}",
                rfc3339(now + time::Duration::hours(1))
            ),
            None,
        )
        .await;
    assert_eq!(later.body["items"], json!([]));

    // Histories: any token of the org reads a model's; only admins the trail.
    assert_eq!(
        app.call_with(Method::GET, "/v1/audit", None, &viewer, &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let alpha_history = app
        .call_with(
            Method::GET,
            "/v1/models/alpha/history?limit=500",
            None,
            &viewer,
            &[],
        )
        .await;
    assert_eq!(
        alpha_history.status,
        StatusCode::OK,
        "{}",
        alpha_history.body
    );
    let summaries = |reply: &Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| e["summary"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let alpha_summaries = summaries(&alpha_history);
    assert_eq!(
        alpha_summaries.last().map(String::as_str),
        Some("model added")
    );
    assert!(
        alpha_summaries.contains(&"connection test passed".to_owned()),
        "{alpha_summaries:?}"
    );
    assert!(
        alpha_summaries.contains(&"connection test requested".to_owned()),
        "{alpha_summaries:?}"
    );
    let beta_history = app
        .call_with(Method::GET, "/v1/models/beta/history", None, &viewer, &[])
        .await;
    assert!(
        summaries(&beta_history).contains(&"dependents warned: 1 active workflow".to_owned()),
        "{}",
        beta_history.body
    );
    let credential = app
        .call_with(
            Method::GET,
            &format!("/v1/credentials/{credential_id}/history"),
            None,
            &viewer,
            &[],
        )
        .await;
    assert_eq!(credential.status, StatusCode::OK, "{}", credential.body);
    assert_eq!(
        summaries(&credential),
        ["model added", "credential created"]
    );
    let created = &credential.body["items"][1];
    let preview = created["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["field"] == "preview")
        .expect("preview");
    assert!(
        preview["after"]
            .as_str()
            .is_some_and(|p| p.ends_with(&secret[secret.len() - 4..]))
    );
    assert!(
        created["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| c["field"] == "fingerprint")
    );
    assert_eq!(
        app.call(Method::GET, "/v1/models/nope/history", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(Method::GET, "/v1/audit?cursor=x", None)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.call(Method::GET, "/v1/audit?id=alpha", None)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Paging three at a time while commands land: every entry once, none of the new ones.
    let mut seen = Vec::new();
    let mut oldest = Value::Null;
    let mut cursor: Option<String> = None;
    let first_page_top = positions[0];
    for turn in 0.. {
        let path = match &cursor {
            Some(c) => format!("/v1/audit?limit=3&cursor={c}"),
            None => "/v1/audit?limit=3".to_owned(),
        };
        let page = app.call(Method::GET, &path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let items = page.body["items"].as_array().expect("items");
        seen.extend(
            items
                .iter()
                .map(|e| e["at_position"].as_u64().expect("position")),
        );
        if let Some(last) = items.last() {
            oldest = last.clone();
        }
        if turn < 4 {
            let (token, _) = who(turn);
            ok(&app
                .call_with(
                    Method::PATCH,
                    "/v1/models/beta",
                    Some(json!({"max_tokens": 3000 + turn})),
                    token,
                    &[],
                )
                .await);
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no entry twice");
    assert_eq!(seen.first(), Some(&first_page_top));
    // Down to the org's first event (the platform catalog's events come before it in the
    // log and belong to no org's trail).
    assert_eq!(oldest["summary"], "org created", "{oldest}");
    assert_eq!(
        unique.iter().next().copied(),
        oldest["at_position"].as_u64(),
        "down to the org's first event"
    );
    assert_eq!(
        unique.iter().filter(|p| **p > start).count(),
        expected.len(),
        "every entry once"
    );

    // The running digest at the views' position verifies against the log.
    let head = app.call(Method::GET, "/v1/audit/head", None).await;
    assert_eq!(head.status, StatusCode::OK, "{}", head.body);
    let expect: eventlog::Head = head.body["expect"]
        .as_str()
        .expect("expect")
        .parse()
        .expect("head");
    let verified = eventlog::chain::verify(app.registry().log().as_ref(), Some(expect))
        .await
        .expect("verify");
    assert_eq!(verified.first_break, None);
    assert!(verified.head.position >= expect.position);
    assert_eq!(
        app.call_with(Method::GET, "/v1/audit/head", None, &viewer, &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // The replays behind as_of live in the data dir, where the canary scans them too.
    let replays = std::fs::read_dir(app.data.path().join("as-of")).expect("replays");
    assert_eq!(
        replays.count(),
        1,
        "one directory of this process's replays"
    );
    canary::assert_absent(&app, &secret);
}

/// What the API answers now, to compare with an `as_of` answer later: the models, one
/// model and the credentials, and the moment (the registry's clock moves a minute after).
async fn snapshot(app: &TestApp) -> (u64, String, [Value; 3]) {
    let models = app.call(Method::GET, "/v1/models", None).await;
    let alpha = app.call(Method::GET, "/v1/models/alpha", None).await;
    let credentials = app.call(Method::GET, "/v1/credentials", None).await;
    let position = models.position.expect("position");
    assert_eq!(
        (alpha.position, credentials.position),
        (Some(position), Some(position)),
        "the log is at rest"
    );
    let now = app.clock.now_ms();
    app.clock.advance(std::time::Duration::from_secs(60));
    let at =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000).expect("time");
    (
        position,
        rfc3339(at),
        [models.body, alpha.body, credentials.body],
    )
}

/// The answers as of `point`, with or without their position.
async fn as_of(app: &TestApp, point: &str, keep_position: bool) -> [Value; 3] {
    let mut answers = [
        app.call(Method::GET, &format!("/v1/models?as_of={point}"), None)
            .await
            .body,
        app.call(
            Method::GET,
            &format!("/v1/models/alpha?as_of={point}"),
            None,
        )
        .await
        .body,
        app.call(Method::GET, &format!("/v1/credentials?as_of={point}"), None)
            .await
            .body,
    ];
    if !keep_position {
        for answer in &mut answers {
            answer.as_object_mut().map(|o| o.remove("position"));
        }
    }
    answers
}

/// Adds a model as `token`: a Test Connection of the draft first, then the add with it.
async fn add_as(app: &TestApp, token: &str, body: Value) -> Reply {
    let add: api::AddModel = serde_json::from_value(body.clone()).expect("an add");
    let draft = serde_json::to_value(api::DraftTest::of(&add)).expect("json");
    let requested = app
        .call_with(
            Method::POST,
            "/v1/connection-tests",
            Some(draft),
            token,
            &[],
        )
        .await;
    assert_eq!(requested.status, StatusCode::ACCEPTED, "{}", requested.body);
    let id = requested.body["id"].as_str().expect("id").to_owned();
    let done = app.wait_for_test(&id).await;
    assert_eq!(done.body["result"]["class"], "ok", "{}", done.body);
    let mut body = body;
    body["connection_test_id"] = Value::String(id);
    app.call_with(Method::POST, "/v1/models", Some(body), token, &[])
        .await
}

fn ok(reply: &Reply) {
    assert!(reply.status.is_success(), "{} {}", reply.status, reply.body);
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// `modelreg audit` prints the trail as a table, or JSON lines with `--json`; `modelreg
/// models history` a model's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_the_trail_and_a_history() {
    let app = TestApp::start(Backend::Embedded).await;
    let added = app.add_model(app.local_draft("Alpha")).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    ok(&app
        .edit_model("alpha", json!({"max_tokens": 1234}), None)
        .await);
    let env = [
        ("MODELREG_SERVER", app.base.clone()),
        ("MODELREG_TOKEN", app.token.clone()),
        ("MODELREG_TOKEN_FILE", String::new()),
    ];
    let run = move |args: &[&str]| {
        let env = env.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let output = std::process::Command::new(crate::crash::modelreg_binary())
                .args(&args)
                .envs(env)
                .output()
                .expect("run modelreg");
            assert!(
                output.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        })
    };
    let lines = run(&["audit", "--json", "--all", "--limit", "2"])
        .await
        .expect("run");
    let entries: Vec<Value> = lines
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        [
            "model.edited",
            "model.added",
            "connection_test.completed",
            "connection_test.requested",
            "org.token_issued",
            "org.created"
        ],
        "every page, newest first"
    );
    let table = run(&["audit", "--action", "model.edited"])
        .await
        .expect("run");
    assert!(
        table.starts_with("POSITION")
            && table.contains("max_tokens: 4096 -> 1234")
            && table.contains("bootstrap admin"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 2, "{table}");
    let history = run(&["models", "history", "alpha"]).await.expect("run");
    assert!(
        history.contains("model edited") && history.contains("model added"),
        "{history}"
    );
    // The head to record for `audit verify --expect`, as GET /v1/audit/head answers it.
    let head = run(&["audit", "head"]).await.expect("run");
    let answer = app.call(Method::GET, "/v1/audit/head", None).await;
    assert_eq!(
        head.trim(),
        answer.body["expect"].as_str().expect("expect"),
        "{}",
        answer.body
    );
}
