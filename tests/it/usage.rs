//! Usage and spend over HTTP, on both backends: usage from two workflows across a price edit
//! is priced at the old and the new price (exact decimal strings); a model without prices
//! is counted in tokens and flagged unpriced, never $0; a record sent twice (the same batch
//! again, or one record in two batches) counts once; a record for an unknown model refuses
//! its whole batch with a clear code; a prompt sent by mistake is refused and stored nowhere;
//! a rebuild prices every record as it was priced live; and no secret reaches any file, log
//! or answer. Also: the truncation loop closed (details, recommendation, dependents), and
//! usage records over NATS (`usage.<org>.<model>`).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::canary;
use crate::support::{Backend, Reply, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_spend_on_the_embedded_log() {
    run(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_spend_on_jetstream() {
    run(Backend::JetStream).await;
}

const DAY_ONE: &str = "2026-11-01T10:00:00Z";
const DAY_TWO: &str = "2026-11-02T09:30:00Z";

fn record(id: &str, model: &str, workflow: &str, tokens: (i64, i64), at: &str) -> Value {
    json!({
        "id": id,
        "model": model,
        "workflow": workflow,
        "input_tokens": tokens.0,
        "output_tokens": tokens.1,
        "finish_reason": "stop",
        "called_at": at,
    })
}

async fn report(app: &TestApp, token: &str, records: Vec<Value>) -> Reply {
    app.call_with(
        Method::POST,
        "/v1/usage",
        Some(json!({ "records": records })),
        token,
        &[],
    )
    .await
}

async fn summary(app: &TestApp, query: &str) -> Value {
    let reply = app
        .call(Method::GET, &format!("/v1/usage/summary?{query}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

/// The group of `summary` with `key`.
fn group<'a>(summary: &'a Value, key: &str) -> &'a Value {
    summary["groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["key"] == key))
        .unwrap_or_else(|| panic!("no group {key} in {summary}"))
}

fn receipt(reply: &Reply) -> (u64, u64) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    (
        reply.body["recorded"].as_u64().expect("recorded"),
        reply.body["duplicates"].as_u64().expect("duplicates"),
    )
}

async fn run(backend: Backend) {
    let app = TestApp::start(backend).await;
    let pipeline = app.issue_token("pipeline", "service").await;
    let viewer = app.issue_token("viewer", "member").await;
    let secret = format!("sk-canary-{}", uuid::Uuid::new_v4().simple());
    let prompt = format!("prompt-canary-{}", uuid::Uuid::new_v4().simple());

    // Given a priced model (with a credential) and a model without prices
    let priced = app
        .add_model(json!({"display_name": "Priced GPT", "provider": "openai",
            "provider_model_id": "gpt-5", "credential": {"api_key": secret},
            "max_tokens": 8000, "input_cost_per_token": "0.000003",
            "output_cost_per_token": "0.000015"}))
        .await;
    assert_eq!(priced.status, StatusCode::CREATED, "{}", priced.body);
    assert_eq!(priced.body["model"]["slug"], "priced-gpt");
    let local = app.add_model(app.local_draft("Local Llama")).await;
    assert_eq!(local.status, StatusCode::CREATED, "{}", local.body);
    assert_eq!(local.body["model"]["slug"], "local-llama");

    // When two workflows report usage at the old price
    let first = vec![
        record("r-1", "priced-gpt", "wf-a", (1000, 200), DAY_ONE),
        record("r-2", "priced-gpt", "wf-b", (2000, 0), DAY_ONE),
        json!({"id": "r-3", "model": "local-llama", "workflow": "wf-a", "input_tokens": 500,
            "output_tokens": 50, "finish_reason": "length",
            "truncated_tool_calls": ["write_file"], "round": 4, "called_at": DAY_ONE}),
        record(
            "r-4",
            "google/gemini-3.1-pro-preview",
            "wf-b",
            (10, 10),
            DAY_ONE,
        ),
    ];
    assert_eq!(
        receipt(&report(&app, &pipeline, first.clone()).await),
        (4, 0)
    );
    // Then the same batch again counts once
    assert_eq!(receipt(&report(&app, &pipeline, first).await), (0, 4));

    // When the price is edited, and a batch carries a new record and an old one (r-1)
    let edited = app
        .edit_model(
            "priced-gpt",
            json!({"input_cost_per_token": "0.000004", "output_cost_per_token": "0.00002"}),
            None,
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let second = vec![
        record("r-5", "priced-gpt", "wf-b", (1000, 300), DAY_TWO),
        record("r-1", "priced-gpt", "wf-a", (1000, 200), DAY_ONE),
        record("r-5", "priced-gpt", "wf-b", (1000, 300), DAY_TWO),
    ];
    assert_eq!(receipt(&report(&app, &pipeline, second).await), (1, 2));

    // Then spend per model: r-1 (0.003 + 0.003) and r-2 (0.006) at the old price, r-5
    // (0.004 + 0.006) at the new one; the unpriced models count tokens, spend null
    let by_model = summary(&app, "group_by=model").await;
    let gpt = group(&by_model, "priced-gpt");
    assert_eq!(gpt["spend"], "0.022", "{by_model}");
    assert_eq!(gpt["calls"], 3);
    assert_eq!(
        (&gpt["input_tokens"], &gpt["output_tokens"]),
        (&json!(4000), &json!(500))
    );
    assert_eq!(gpt["unpriced"], false);
    let llama = group(&by_model, "local-llama");
    assert_eq!(llama["spend"], Value::Null, "never $0: {by_model}");
    assert_eq!(llama["unpriced"], true);
    assert_eq!(llama["unpriced_calls"], 1);
    assert_eq!(
        (&llama["input_tokens"], &llama["output_tokens"]),
        (&json!(500), &json!(50))
    );
    assert_eq!(llama["truncated_calls"], 1);
    let platform = group(&by_model, "google/gemini-3.1-pro-preview");
    assert_eq!(
        platform["spend"],
        Value::Null,
        "the shipped catalog has no prices"
    );
    assert_eq!(platform["unpriced"], true);
    assert_eq!(by_model["total"]["calls"], 5);
    assert_eq!(by_model["total"]["spend"], "0.022");
    assert_eq!(by_model["total"]["unpriced_calls"], 2);

    // And per workflow
    let by_workflow = summary(&app, "group_by=workflow").await;
    let a = group(&by_workflow, "wf-a");
    assert_eq!(
        (&a["spend"], &a["unpriced"]),
        (&json!("0.006"), &json!(true))
    );
    let b = group(&by_workflow, "wf-b");
    assert_eq!((&b["spend"], &b["calls"]), (&json!("0.016"), &json!(3)));

    // And per day, and in a time range (members read it too)
    let by_day = summary(&app, "group_by=day").await;
    assert_eq!(group(&by_day, "2026-11-01")["spend"], "0.012");
    assert_eq!(group(&by_day, "2026-11-02")["spend"], "0.01");
    let day_two = app
        .call_with(
            Method::GET,
            "/v1/usage/summary?group_by=day&from=2026-11-02T00:00:00Z&to=2026-11-03T00:00:00Z",
            None,
            &viewer,
            &[],
        )
        .await;
    assert_eq!(day_two.status, StatusCode::OK, "{}", day_two.body);
    assert_eq!(day_two.body["groups"].as_array().map(Vec::len), Some(1));
    assert_eq!(day_two.body["total"]["spend"], "0.01");

    // And on the CLI, as a table
    let output = tokio::process::Command::new(crate::crash::modelreg_binary())
        .args(["usage", "summary", "--group-by", "workflow"])
        .env("MODELREG_SERVER", &app.base)
        .env("MODELREG_TOKEN", &viewer)
        .env_remove("MODELREG_TOKEN_FILE")
        .output()
        .await
        .expect("run modelreg");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("WORKFLOW"), "{table}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("wf-a") && l.contains("0.006 + 1 unpriced")),
        "{table}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("wf-b") && l.contains("0.016 + 1 unpriced")),
        "{table}"
    );

    // A record for an unknown model refuses its whole batch, naming the record
    let refused = report(
        &app,
        &pipeline,
        vec![
            record("r-6", "priced-gpt", "wf-a", (1, 1), DAY_TWO),
            record("r-7", "no-such-model", "wf-a", (1, 1), DAY_TWO),
        ],
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body["code"], "usage.unknown_model",
        "{}",
        refused.body
    );
    assert_eq!(refused.body["errors"][0]["field"], "model");
    assert!(
        refused.body["errors"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("record 1:")),
        "{}",
        refused.body
    );
    assert_eq!(
        summary(&app, "").await["total"]["calls"],
        5,
        "nothing recorded"
    );

    // Bad values are named by field, never quoted; text is refused, never stored
    let bad = report(
        &app,
        &pipeline,
        vec![
            json!({"id": "r 8", "model": "priced-gpt", "workflow": "wf-a",
            "input_tokens": -5, "output_tokens": 1, "called_at": "yesterday"}),
        ],
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let fields: Vec<&str> = bad.body["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["id", "called_at", "input_tokens"], "{}", bad.body);
    let text = report(
        &app,
        &pipeline,
        vec![
            json!({"id": "r-9", "model": "priced-gpt", "workflow": "wf-a",
            "input_tokens": 1, "output_tokens": 1, "called_at": DAY_TWO, "prompt": prompt}),
        ],
    )
    .await;
    assert!(text.status.is_client_error(), "{}", text.body);
    // A batch holds at most 250 records
    let too_many = (0..251)
        .map(|n| record(&format!("b-{n}"), "priced-gpt", "wf-a", (1, 1), DAY_TWO))
        .collect();
    let refused = report(&app, &pipeline, too_many).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.body["code"], "usage.batch_too_large");
    // Reporting needs a service or admin token
    let member = report(
        &app,
        &viewer,
        vec![record("r-10", "priced-gpt", "wf-a", (1, 1), DAY_TWO)],
    )
    .await;
    assert_eq!(member.status, StatusCode::FORBIDDEN, "{}", member.body);
    assert_eq!(summary(&app, "").await["total"]["calls"], 5);

    // The CLI records a file (here standard input, one record a line) in batches of 250,
    // and a record the registry has already counts once
    let lines: String = (0..251)
        .map(|n| record(&format!("cli-{n}"), "priced-gpt", "wf-c", (1, 1), DAY_TWO))
        .chain(std::iter::once(record(
            "r-1",
            "priced-gpt",
            "wf-a",
            (1, 1),
            DAY_TWO,
        )))
        .map(|r| r.to_string() + "\n")
        .collect();
    let mut cli = tokio::process::Command::new(crate::crash::modelreg_binary())
        .args(["usage", "record", "--file", "-"])
        .env("MODELREG_SERVER", &app.base)
        .env("MODELREG_TOKEN", &pipeline)
        .env_remove("MODELREG_TOKEN_FILE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run modelreg");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = cli.stdin.take().expect("stdin");
        stdin.write_all(lines.as_bytes()).await.expect("write");
    }
    let output = cli.wait_with_output().await.expect("modelreg");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains("recorded 251 usage records; 1 the registry had already"),
        "{said}"
    );
    assert_eq!(summary(&app, "").await["total"]["calls"], 256);

    // A rebuild prices every record as it was priced live: the views are the log's
    app.assert_rebuild_equals_live("rebuild.redb").await;

    canary::assert_absent(&app, &secret);
    canary::assert_absent(&app, &prompt);
}

/// The loop closed: a response the runtime crate finds truncated is reported through
/// `Client::report`, and the model's answer counts its truncated calls in the last 24 hours
/// and 7 days (by the time of the call), with their rounds, tool calls and workflows; a
/// report sent again counts once; the recommendation's edit, sent as the PATCH body, raises
/// max tokens to 32,000 and the recommendation is gone; the dependents view marks the
/// workflow that keeps truncating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncation_the_runtime_reports_shows_on_the_model() {
    use app::Clock as _;
    use modelreg_runtime::{Call, Client, Shape, inspect};

    const HOUR_MS: i64 = 60 * 60 * 1000;
    let (app, service) = with_a_tool_use_model().await;
    for (id, name) in [("wf-agent", "Agent"), ("wf-docs", "Docs")] {
        let put = app
            .call(
                Method::PUT,
                &format!("/v1/workflows/{id}"),
                Some(json!({"name": name, "active": true,
                    "steps": [{"model": "local-llama", "features": {"tools": true}}]})),
            )
            .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    }
    let client = Client::new(&app.base, service).expect("client");

    // A response whose second tool call was cut mid-argument, and one that ended well
    let cut = inspect(
        Shape::OpenAi,
        &json!({"choices": [{"finish_reason": "length", "message": {"tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "read_file", "arguments": "{\"path\": \"a.rs\"}"}},
            {"id": "c2", "type": "function",
             "function": {"name": "write_file", "arguments": "{\"path\": \"b.rs\", \"con"}}
        ]}}]}),
    );
    let fine = inspect(
        Shape::OpenAi,
        &json!({"choices": [{"finish_reason": "stop", "message": {"content": "done"}}]}),
    );
    let now = app.clock.now_ms();
    let at = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .expect("time")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    let calls = [
        ("t-1", at(now - HOUR_MS), &cut, "wf-agent", 7),
        ("t-2", at(now - 3 * 24 * HOUR_MS), &cut, "wf-agent", 7),
        ("t-3", at(now - 10 * 24 * HOUR_MS), &cut, "wf-agent", 7),
        ("t-4", at(now - HOUR_MS), &fine, "wf-agent", 7),
        ("t-5", at(now - 2 * HOUR_MS), &cut, "wf-agent", 8),
        ("t-6", at(now - 5 * 24 * HOUR_MS), &cut, "wf-docs", 2),
    ];
    let records: Vec<api::UsageRecord> = calls
        .iter()
        .map(|(id, called_at, inspection, workflow, round)| {
            inspection.usage(&Call {
                id,
                model: "local-llama",
                workflow,
                input_tokens: 12_000,
                output_tokens: 4096,
                round: Some(*round),
                called_at,
            })
        })
        .collect();
    assert_eq!(records[0].truncated_tool_calls, ["write_file"]);
    assert_eq!(records[0].finish_reason.as_deref(), Some("length"));
    assert!(records[3].truncated_tool_calls.is_empty());

    let receipt = client.report(records.clone()).await.expect("report");
    assert_eq!((receipt.recorded, receipt.duplicates), (6, 0));
    let again = client.report(records).await.expect("report again");
    assert_eq!((again.recorded, again.duplicates), (0, 6));

    // The model's answer: counts, and the rounds, tool calls and workflows of the last 7
    // days (the call of 10 days ago and the one that ended well are not among them)
    let model = app.get_model("local-llama").await;
    assert_eq!(model.status, StatusCode::OK, "{}", model.body);
    assert_eq!(
        model.body["truncations"],
        json!({
            "last_24h": 2,
            "last_7d": 4,
            "rounds": [{"round": 2, "calls": 1}, {"round": 7, "calls": 2}, {"round": 8, "calls": 1}],
            "tool_calls": [{"name": "write_file", "calls": 4}],
            "workflows": [
                {"id": "wf-agent", "truncated_calls_7d": 3, "keeps_truncating": true},
                {"id": "wf-docs", "truncated_calls_7d": 1, "keeps_truncating": false}
            ]
        }),
        "{}",
        model.body
    );
    // No prompt or argument text is kept: the cut argument's words are nowhere
    assert!(!model.body.to_string().contains("b.rs"), "{}", model.body);
    // The recommendation from the seed's guidance, with the exact PATCH body
    assert_eq!(
        model.body["recommendation"]["code"],
        "max_tokens.raise_for_truncations"
    );
    assert!(
        model.body["recommendation"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("raise max tokens to 32,000 for multi-file tool use")),
        "{}",
        model.body
    );
    assert_eq!(
        model.body["recommendation"]["edit"],
        json!({"max_tokens": 32000})
    );

    // The dependents view marks the workflow whose calls keep truncating
    let dependents = app
        .call(Method::GET, "/v1/models/local-llama/workflows", None)
        .await;
    assert_eq!(dependents.status, StatusCode::OK, "{}", dependents.body);
    assert_eq!(
        dependents.body["active"],
        json!([
            {"id": "wf-agent", "name": "Agent", "truncated_calls_7d": 3, "keeps_truncating": true},
            {"id": "wf-docs", "name": "Docs", "truncated_calls_7d": 1, "keeps_truncating": false}
        ]),
        "{}",
        dependents.body
    );

    // Applied with one edit: the recommendation's edit as the PATCH body, at the version
    let patched = app
        .edit_model(
            "local-llama",
            model.body["recommendation"]["edit"].clone(),
            model.body["version"].as_u64(),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let applied = app.get_model("local-llama").await;
    assert_eq!(applied.body["max_tokens"], 32000);
    assert!(
        applied.body.get("recommendation").is_none(),
        "{}",
        applied.body
    );
    assert_eq!(applied.body["truncations"]["last_7d"], 4, "the past stays");

    // A week later, nothing is recent
    app.clock
        .advance(std::time::Duration::from_secs(8 * 24 * 3600));
    let later = app.get_model("local-llama").await;
    assert_eq!(
        later.body["truncations"],
        json!({"last_24h": 0, "last_7d": 0, "rounds": [], "tool_calls": [], "workflows": []})
    );
    let dependents = app
        .call(Method::GET, "/v1/models/local-llama/workflows", None)
        .await;
    assert_eq!(dependents.body["active"][0]["keeps_truncating"], false);
}

/// The embedded registry with the tool-using model `local-llama`, and a service token.
async fn with_a_tool_use_model() -> (TestApp, String) {
    let app = TestApp::start(Backend::Embedded).await;
    let service = app.issue_token("pipeline", "service").await;
    let mut draft = app.local_draft("Local Llama");
    draft.capabilities = Some(api::CapabilitiesInput {
        tool_use: Some(true),
        ..api::CapabilitiesInput::default()
    });
    let added = app.add_model(draft).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    (app, service)
}

/// A deactivated model is advised nothing: its truncations stay on its page, the
/// recommendation to raise max tokens goes, and comes back with the model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_model_gets_no_recommendation() {
    use app::Clock as _;
    use modelreg_runtime::{Call, Client, Shape, inspect};

    let (app, service) = with_a_tool_use_model().await;
    let cut = inspect(
        Shape::OpenAi,
        &json!({"choices": [{"finish_reason": "length", "message": {"tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "write_file", "arguments": "{\"path\": \"b.rs\", \"con"}}
        ]}}]}),
    );
    let called_at = time::OffsetDateTime::from_unix_timestamp(app.clock.now_ms() / 1000 - 60)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let record = cut.usage(&Call {
        id: "t-1",
        model: "local-llama",
        workflow: "wf-agent",
        input_tokens: 12_000,
        output_tokens: 4096,
        round: Some(1),
        called_at: &called_at,
    });
    let client = Client::new(&app.base, service).expect("client");
    let receipt = client.report(vec![record]).await.expect("report");
    assert_eq!(receipt.recorded, 1);
    let active = app.get_model("local-llama").await;
    assert_eq!(
        active.body["recommendation"]["code"], "max_tokens.raise_for_truncations",
        "{}",
        active.body
    );

    let deactivated = app.deactivate_model("local-llama").await;
    assert_eq!(deactivated.status, StatusCode::OK, "{}", deactivated.body);
    for body in [&deactivated.body, &app.get_model("local-llama").await.body] {
        assert_eq!(body["status"], "deactivated", "{body}");
        assert_eq!(body["truncations"]["last_7d"], 1, "{body}");
        assert!(body.get("recommendation").is_none(), "{body}");
    }

    let reactivated = app
        .call(Method::POST, "/v1/models/local-llama/activation", None)
        .await;
    assert_eq!(reactivated.status, StatusCode::OK, "{}", reactivated.body);
    assert_eq!(
        reactivated.body["recommendation"]["code"], "max_tokens.raise_for_truncations",
        "{}",
        reactivated.body
    );
}

/// A record whose first report left the log's duplicate window long ago (here: recorded
/// under another message id, as the log cannot be aged in a test) still counts once: its
/// subject is created once, so the append expecting it empty meets a conflict, and the
/// batch counts it as a duplicate, on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_sent_again_after_the_duplicate_window_counts_once() {
    for backend in [Backend::Embedded, Backend::JetStream] {
        let app = TestApp::start(backend).await;
        let added = app.add_model(app.local_draft("Local Llama")).await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
        let old = domain::usage::Record {
            model: "local-llama".into(),
            workflow: domain::values::WorkflowId::parse("wf-a").expect("workflow"),
            input_tokens: 100,
            output_tokens: 10,
            finish_reason: Some("stop".into()),
            truncated_tool_calls: Vec::new(),
            round: None,
            called_at_ms: 1_793_527_200_000,
        };
        let envelope = eventlog::Envelope {
            schema_version: eventlog::SCHEMA_VERSION,
            event_id: *uuid::Uuid::now_v7().as_bytes(),
            org: "acme".into(),
            kind: "usage".into(),
            aggregate_id: "r-old".into(),
            aggregate_version: 1,
            recorded_at_ms: 1_793_527_200_000,
            actor: eventlog::Actor {
                kind: eventlog::ActorKind::System,
                id: "test".into(),
                label: "an earlier report".into(),
            },
            request_id: "req-old".into(),
            command_id: "an-earlier-command".into(),
            prev_hash: [0; 32],
            payload: domain::Event::Usage(domain::usage::Event::Recorded(old)).encode(),
            payload_version: domain::event::PAYLOAD_VERSION,
            client_addr: String::new(),
        };
        let subject = eventlog::Subject::new("acme", "usage", "r-old").expect("subject");
        let log = app.registry().log();
        let first = log
            .append(
                &subject,
                0,
                "acme:an-earlier-command:usage",
                envelope.encode(),
            )
            .await
            .expect("append");
        app.registry().settle(first.seq).await.expect("settle");

        let again = report(
            &app,
            &app.token,
            vec![
                record(
                    "r-old",
                    "local-llama",
                    "wf-a",
                    (100, 10),
                    "2026-11-01T10:00:00Z",
                ),
                record("r-new", "local-llama", "wf-a", (1, 1), DAY_TWO),
            ],
        )
        .await;
        assert_eq!(receipt(&again), (1, 1), "{backend:?}");
        let total = summary(&app, "").await;
        assert_eq!(total["total"]["calls"], 2, "{backend:?}: {total}");
        assert_eq!(total["total"]["input_tokens"], 101, "{backend:?}: {total}");
    }
}

/// Usage over NATS (`usage.<org>.<model>`, request/reply, a queue group): a batch sent twice
/// counts each record once; a platform model's id, dots and all, is the rest of the subject;
/// a record of another model, a bad or unknown org, a subject without a model and a payload
/// that is not a batch are each answered with the problem the HTTP API would give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_over_nats_counts_each_record_once_and_answers_problems() {
    let app = TestApp::start(Backend::JetStream).await;
    let added = app.add_model(app.local_draft("Local Llama")).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let nats = app.nats.as_ref().expect("a NATS server");
    let client = async_nats::connect(nats.url()).await.expect("nats");
    // The subscriber starts with the app; until it listens, NATS answers "no responders".
    let request = |subject: &'static str, payload: Value| {
        let client = client.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                match client
                    .request(subject, payload.to_string().into_bytes().into())
                    .await
                {
                    Ok(reply) => {
                        return serde_json::from_slice::<Value>(&reply.payload).expect("json");
                    }
                    Err(_) if std::time::Instant::now() < deadline => {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    Err(error) => panic!("no reply on {subject}: {error}"),
                }
            }
        }
    };
    let mut cut = record("n-2", "local-llama", "wf-a", (900, 4096), DAY_ONE);
    cut["finish_reason"] = json!("length");
    cut["truncated_tool_calls"] = json!(["write_file"]);
    let batch = json!({"records": [
        record("n-1", "local-llama", "wf-a", (100, 10), DAY_ONE),
        cut,
    ]});
    let first = request("usage.acme.local-llama", batch.clone()).await;
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(first["receipt"], json!({"recorded": 2, "duplicates": 0}));
    assert!(first["position"].as_u64().is_some_and(|p| p > 0), "{first}");
    let again = request("usage.acme.local-llama", batch).await;
    assert_eq!(again["ok"], true, "{again}");
    assert_eq!(again["receipt"], json!({"recorded": 0, "duplicates": 2}));
    // Over HTTP too, the same record is known
    let http = report(
        &app,
        &app.token,
        vec![record("n-1", "local-llama", "wf-a", (100, 10), DAY_ONE)],
    )
    .await;
    assert_eq!(http.body["duplicates"], 1, "{}", http.body);

    // A platform model: its id's dots are the subject's last tokens
    let platform = request(
        "usage.acme.google/gemini-3.1-pro-preview",
        json!({"records": [record("n-3", "google/gemini-3.1-pro-preview", "wf-a", (5, 5), DAY_TWO)]}),
    )
    .await;
    assert_eq!(platform["ok"], true, "{platform}");
    let total = summary(&app, "").await;
    assert_eq!(total["total"]["calls"], 3, "{total}");
    assert_eq!(total["total"]["truncated_calls"], 1, "{total}");

    // Problems, as HTTP answers them, and nothing recorded
    let mismatch = request(
        "usage.acme.local-llama",
        json!({"records": [record("n-4", "google/gemini-3.1-pro-preview", "wf-a", (1, 1), DAY_TWO)]}),
    )
    .await;
    assert_eq!(mismatch["ok"], false, "{mismatch}");
    assert_eq!(mismatch["code"], "usage.model_mismatch", "{mismatch}");
    assert_eq!(mismatch["status"], 422, "{mismatch}");
    let unknown_model = request(
        "usage.acme.no-such-model",
        json!({"records": [record("n-5", "no-such-model", "wf-a", (1, 1), DAY_TWO)]}),
    )
    .await;
    assert_eq!(
        unknown_model["code"], "usage.unknown_model",
        "{unknown_model}"
    );
    let bad_org = request(
        "usage.Acme!.local-llama",
        json!({"records": [record("n-6", "local-llama", "wf-a", (1, 1), DAY_TWO)]}),
    )
    .await;
    assert_eq!(bad_org["ok"], false, "{bad_org}");
    assert_eq!(bad_org["code"], "org.invalid", "{bad_org}");
    assert!(!bad_org.to_string().contains("Acme!"), "never quoted back");
    let no_org = request(
        "usage.nobody.local-llama",
        json!({"records": [record("n-7", "local-llama", "wf-a", (1, 1), DAY_TWO)]}),
    )
    .await;
    assert_eq!(no_org["code"], "org.not_found", "{no_org}");
    assert_eq!(no_org["status"], 404, "{no_org}");
    let no_model = request("usage.acme", json!({"records": []})).await;
    assert_eq!(no_model["code"], "subject.invalid", "{no_model}");
    let prompt = request(
        "usage.acme.local-llama",
        json!({"records": [{"id": "n-8", "model": "local-llama", "workflow": "wf-a",
            "input_tokens": 1, "output_tokens": 1, "called_at": DAY_TWO,
            "prompt": "a secret prompt"}]}),
    )
    .await;
    assert_eq!(prompt["ok"], false, "{prompt}");
    assert!(!prompt.to_string().contains("a secret prompt"), "{prompt}");
    assert_eq!(summary(&app, "").await["total"]["calls"], 3);
}
