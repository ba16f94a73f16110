//! Test Connection end to end: the worker runs the test against a fake provider, the result
//! says what is wrong and how to fix it, and adding a model is gated on a fresh passing test
//! of exactly that draft. Editing is not gated.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::fake_provider::{self, FakeProvider};
use crate::support::registry::MASTER_KEY;
use crate::support::{Backend, TestApp};

fn draft(model: &str, key: &str) -> Value {
    json!({"provider": "openai", "provider_model_id": model, "credential": {"api_key": key}})
}

async fn run_test(app: &TestApp, path: &str, body: Value) -> Value {
    let requested = app.call(Method::POST, path, Some(body)).await;
    assert_eq!(requested.status, StatusCode::ACCEPTED, "{}", requested.body);
    assert_eq!(requested.body["status"], "pending");
    let id = requested.body["id"].as_str().expect("id").to_owned();
    let done = app.wait_for_test(&id).await;
    assert_eq!(done.body["status"], "completed", "{}", done.body);
    done.body
}

fn add_body(model: &str, key: &str, test_id: Option<&str>) -> Value {
    let mut body = json!({"display_name": format!("Gated {model}"), "provider": "openai", "provider_model_id": model,
        "credential": {"api_key": key}, "max_tokens": 16000});
    if let Some(id) = test_id {
        body["connection_test_id"] = json!(id);
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_is_gated_on_a_passing_test_of_that_draft() {
    let app = TestApp::start(Backend::Embedded).await;
    let key = "sk-good-0123456789abcdef";

    let none = app.add_model_ungated(add_body("gpt-4o", key, None)).await;
    assert_eq!(
        (none.status, none.body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("connection_test.required")
        )
    );

    // A failing test explains itself and is no receipt.
    let failed = run_test(
        &app,
        "/v1/connection-tests",
        draft("gpt-4o", "sk-bad-0123456789abcdef"),
    )
    .await;
    assert_eq!(failed["result"]["class"], "auth_invalid", "{failed}");
    assert_eq!(failed["result"]["passed"], false);
    assert!(
        failed["result"]["hint"]
            .as_str()
            .is_some_and(|h| !h.is_empty())
    );
    assert_eq!(failed["result"]["upstream_status"], 401);
    assert!(failed["receipt_expires_at"].is_null());
    assert!(
        failed["result"]["suggested_input_cost_per_token"].is_null(),
        "prices only for a working model"
    );
    let refused = app
        .add_model_ungated(add_body(
            "gpt-4o",
            "sk-bad-0123456789abcdef",
            failed["id"].as_str(),
        ))
        .await;
    assert_eq!(
        refused.body["code"], "connection_test.failed",
        "{}",
        refused.body
    );

    // A passing test of another draft does not count.
    let passed = run_test(&app, "/v1/connection-tests", draft("gpt-4o", key)).await;
    assert_eq!(passed["result"]["class"], "ok", "{passed}");
    assert_eq!(passed["version"], 2, "one request, one result");
    assert_eq!(
        passed["result"]["suggested_input_cost_per_token"], "0.0000025",
        "known pricing is suggested"
    );
    assert!(passed["receipt_expires_at"].is_string());
    let test_id = passed["id"].as_str().expect("id");
    let other_model = app
        .add_model_ungated(add_body("gpt-4.1", key, Some(test_id)))
        .await;
    assert_eq!(
        other_model.body["code"], "connection_test.mismatch",
        "{}",
        other_model.body
    );
    let other_key = app
        .add_model_ungated(add_body(
            "gpt-4o",
            "sk-other-0123456789abcdef",
            Some(test_id),
        ))
        .await;
    assert_eq!(
        other_key.body["code"], "connection_test.mismatch",
        "{}",
        other_key.body
    );
    let unknown = app
        .add_model_ungated(add_body("gpt-4o", key, Some("ct_nope")))
        .await;
    assert_eq!(unknown.body["code"], "connection_test.not_found");

    // The right receipt adds; a saved credential with the same secret matches it too.
    let added = app
        .add_model_ungated(add_body("gpt-4o", key, Some(test_id)))
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let credential_id = added.body["model"]["credential"]["id"]
        .as_str()
        .expect("credential")
        .to_owned();
    let mut by_id = add_body("gpt-4o", key, Some(test_id));
    by_id["display_name"] = json!("Gated again");
    by_id.as_object_mut().expect("object").remove("credential");
    by_id["credential_id"] = json!(credential_id);
    assert_eq!(
        app.add_model_ungated(by_id).await.status,
        StatusCode::CREATED
    );

    // Editing is not gated, even when it changes what was tested.
    let edited = app
        .edit_model(
            "gated-gpt-4o",
            json!({"provider_model_id": "gpt-4.1"}),
            None,
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);

    // A saved model tests with its stored credential when none is given.
    let stored = run_test(&app, "/v1/models/gated-gpt-4o/connection-tests", json!({})).await;
    assert_eq!(stored["result"]["class"], "ok", "{stored}");
    let no_body = app
        .call(
            Method::POST,
            "/v1/models/gated-gpt-4o/connection-tests",
            None,
        )
        .await;
    assert_eq!(
        no_body.status,
        StatusCode::ACCEPTED,
        "no body means the stored credential: {}",
        no_body.body
    );
    let broken = app
        .raw(
            app.http
                .post(format!(
                    "{}/v1/models/gated-gpt-4o/connection-tests",
                    app.base
                ))
                .bearer_auth(&app.token)
                .body("{"),
        )
        .await;
    assert_eq!(broken.body["code"], "body.malformed_json");
    assert_eq!(stored["model"], "gated-gpt-4o");
    let replaced = run_test(
        &app,
        "/v1/models/gated-gpt-4o/connection-tests",
        json!({"credential": {"api_key": "sk-bad-xxxxxxxxxxxxxxxx"}}),
    )
    .await;
    assert_eq!(replaced["result"]["class"], "auth_invalid", "{replaced}");

    // The work shows in /metrics.
    let metrics = app.raw(app.http.get(format!("{}/metrics", app.base))).await;
    let text = metrics.body.as_str().expect("text").to_owned();
    assert!(
        text.contains("modelreg_worker_jobs_total{worker=\"connection-tests\",outcome=\"ok\"}"),
        "{text}"
    );
    assert!(
        text.contains(
            "modelreg_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/models\""
        ),
        "{text}"
    );
    assert!(
        text.contains("modelreg_commands_total{command=\"POST /v1/models\",outcome=\"rejected\"}"),
        "{text}"
    );
    assert!(text.contains("modelreg_projection_lag "), "{text}");
    // The projector's writes are counted: every event it wrote, in at least one batch, and
    // no more than the views hold (the counters are read before the position).
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in:\n{text}"))
    };
    let events = value("modelreg_projector_events_total");
    let batches = value("modelreg_projector_batches_total");
    assert!(
        events >= 1.0 && events <= value("modelreg_views_position"),
        "{text}"
    );
    assert!(batches >= 1.0 && batches <= events, "{text}");
    assert!(
        value("modelreg_projector_busy_seconds_total") > 0.0,
        "{text}"
    );
}

/// `test: true` makes the three calls (test, poll, add) one, and refuses what the gate
/// refuses: a failing test adds nothing (no model, no credential) and answers the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_tests_then_adds_and_refuses_what_the_gate_refuses() {
    let app = TestApp::start(Backend::Embedded).await;
    let one_call = |key: &str| {
        let mut body = add_body("gpt-4o", key, None);
        body["test"] = json!(true);
        body
    };

    let failed = app
        .add_model_ungated(one_call("sk-bad-0123456789abcdef"))
        .await;
    assert_eq!(
        (failed.status, failed.body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("connection_test.failed")
        ),
        "{}",
        failed.body
    );
    let test = &failed.body["connection_test"];
    assert_eq!(test["status"], "completed", "{}", failed.body);
    assert_eq!(test["result"]["class"], "auth_invalid", "{}", failed.body);
    assert!(
        failed.body["hint"].as_str().is_some_and(|h| !h.is_empty()),
        "{}",
        failed.body
    );
    let credentials = app.call(Method::GET, "/v1/credentials", None).await;
    assert_eq!(
        credentials.body["items"],
        json!([]),
        "a refused add stores no credential"
    );
    let missing = app.call(Method::GET, "/v1/models/gated-gpt-4o", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let mut both = one_call("sk-good-0123456789abcdef");
    both["connection_test_id"] = json!("ct_any");
    let both = app.add_model_ungated(both).await;
    assert_eq!(both.body["code"], "test.with_receipt", "{}", both.body);
    let mut incomplete = one_call("sk-good-0123456789abcdef");
    incomplete
        .as_object_mut()
        .expect("object")
        .remove("max_tokens");
    let incomplete = app.add_model_ungated(incomplete).await;
    assert_eq!(
        incomplete.body["errors"][0]["field"], "max_tokens",
        "the draft is checked before it is tested: {}",
        incomplete.body
    );
    assert!(incomplete.body["connection_test"].is_null());

    // A dry run checks a draft without its secret, and stores nothing.
    let mut draft = add_body("gpt-4o", "unused", None);
    draft.as_object_mut().expect("object").remove("credential");
    draft["max_tokens"] = json!(1000);
    draft["capabilities"] = json!({"tool_use": true});
    let checked = app
        .call(Method::POST, "/v1/models?dry_run=true", Some(draft.clone()))
        .await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    assert_eq!(checked.body["slug"], "gated-gpt-4o");
    assert_eq!(
        checked.body["warnings"][0]["code"],
        "max_tokens.low_for_tool_use"
    );
    draft["provider"] = json!("nope");
    let refused = app
        .call(Method::POST, "/v1/models?dry_run=true", Some(draft))
        .await;
    assert_eq!(
        refused.body["errors"][0]["code"], "provider.unknown",
        "{}",
        refused.body
    );
    let missing = app.call(Method::GET, "/v1/models/gated-gpt-4o", None).await;
    assert_eq!(
        missing.status,
        StatusCode::NOT_FOUND,
        "a dry run adds nothing"
    );

    let added = app
        .add_model_ungated(one_call("sk-good-0123456789abcdef"))
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(added.body["model"]["slug"], "gated-gpt-4o");
    assert_eq!(added.body["connection_test"]["result"]["passed"], true);
    assert!(added.body["connection_test"]["receipt_expires_at"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_receipt_is_refused() {
    let app = TestApp::start_with(Backend::Embedded, |config| {
        config.connection_test_receipt_ttl_ms = 60_000
    })
    .await;
    let key = "sk-good-0123456789abcdef";
    let passed = run_test(&app, "/v1/connection-tests", draft("gpt-4o", key)).await;
    assert_eq!(passed["result"]["class"], "ok", "{passed}");
    // The passage of time is what is under test: the registry's clock moves past the
    // receipt's lifetime (a minute here) without waiting for it.
    app.clock.advance(Duration::from_millis(60_001));
    let expired = app
        .add_model_ungated(add_body("gpt-4o", key, passed["id"].as_str()))
        .await;
    assert_eq!(
        expired.body["code"], "connection_test.expired",
        "{}",
        expired.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_destinations_are_refused_before_any_connection() {
    let app = TestApp::start(Backend::Embedded).await;
    for endpoint in [
        "http://169.254.169.254/v1",
        "http://10.0.0.1/v1",
        "http://[fd00:ec2::254]/v1",
    ] {
        let body = json!({"provider": "openai_compatible", "provider_model_id": "llama3", "endpoint_url": endpoint});
        let done = run_test(&app, "/v1/connection-tests", body).await;
        assert_eq!(
            done["result"]["class"], "destination_blocked",
            "{endpoint}: {done}"
        );
        assert!(
            done["result"]["latency_ms"]
                .as_u64()
                .is_some_and(|ms| ms < 1000),
            "refused at once: {done}"
        );
    }
    assert_eq!(app.fake.seen(), 0, "nothing reached any server");
    // Loopback is allowed in this configuration: the fake answers.
    let body = json!({"provider": "openai_compatible", "provider_model_id": "llama3", "endpoint_url": app.fake.v1()});
    assert_eq!(
        run_test(&app, "/v1/connection-tests", body).await["result"]["class"],
        "ok"
    );
    assert_eq!(app.fake.seen(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_tests_run_on_jetstream_too() {
    let app = TestApp::start(Backend::JetStream).await;
    let passed = run_test(
        &app,
        "/v1/connection-tests",
        draft("gpt-4o", "sk-good-0123456789abcdef"),
    )
    .await;
    assert_eq!(passed["result"]["class"], "ok", "{passed}");
    let slow_timeout = json!({"provider": "openai_compatible", "provider_model_id": "llama3", "endpoint_url": "http://127.0.0.1:9/v1"});
    let refused = run_test(&app, "/v1/connection-tests", slow_timeout).await;
    assert_eq!(
        refused["result"]["class"], "endpoint_unreachable",
        "{refused}"
    );
    let missing = app
        .call(Method::GET, "/v1/connection-tests/ct_nope", None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// A registry on the embedded log with no worker yet, so a test can set the stage and then
/// start a connection-test worker with settings of its own (short ack wait, fast retries).
struct OwnWorker {
    running: Option<app::Running>,
    config: app::config::Config,
    ctx: app::Ctx,
    fake: FakeProvider,
    worker: Option<tokio::task::JoinHandle<Result<(), workers::WorkerError>>>,
    _data: tempfile::TempDir,
}

impl OwnWorker {
    async fn start() -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let fake = FakeProvider::start().await;
        let config = app::config::Config {
            data_dir: data.path().to_path_buf(),
            master_key: Some(MASTER_KEY.to_owned()),
            bootstrap_default_org: false,
            read_your_writes_timeout_ms: 30_000,
            providers: app::config::ProvidersConfig {
                base_urls: [("openai".to_owned(), fake.v1())].into(),
                timeout_ms: 5_000,
                allow_loopback: true,
                ..app::config::ProvidersConfig::default()
            },
            ..app::config::Config::default()
        };
        let running = app::start(&config).await.expect("registry");
        let org = app::orgs::create(&running.registry, "Acme")
            .await
            .expect("org")
            .org;
        Self {
            running: Some(running),
            config,
            ctx: app::Ctx::system(org, "test"),
            fake,
            worker: None,
            _data: data,
        }
    }

    /// Stops the registry, lets `change` act on its files, and starts it again.
    async fn restart_after(&mut self, change: impl AsyncFnOnce(&app::config::Config)) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        change(&self.config).await;
        self.running = Some(app::start(&self.config).await.expect("registry"));
    }

    fn registry(&self) -> &Arc<app::Registry> {
        &self.running.as_ref().expect("running").registry
    }

    /// The worker's settings against the fake provider, as `tweak` leaves them.
    fn settings(
        &self,
        tweak: impl FnOnce(&mut workers::connection_tests::Settings),
    ) -> workers::connection_tests::Settings {
        let mut settings =
            workers::connection_tests::settings(&self.config.providers).expect("provider settings");
        tweak(&mut settings);
        settings
    }

    fn spawn_worker(&mut self, tweak: impl FnOnce(&mut workers::connection_tests::Settings)) {
        let settings = self.settings(tweak);
        let running = self.running.as_ref().expect("running");
        self.worker = Some(tokio::spawn(workers::connection_tests::run(
            Arc::clone(&running.registry),
            settings,
            running.stopped(),
        )));
    }

    /// A context of the org with a command id of its own.
    fn fresh_ctx(&self) -> app::Ctx {
        app::Ctx::system(self.ctx.org().clone(), "test")
    }

    /// Saves an OpenAI credential named `name`; its id.
    async fn save_credential(&self, name: &str) -> String {
        let create = serde_json::from_value(json!({"name": name, "provider": "openai",
            "credential": {"api_key": "sk-good-0123456789abcdef"}}))
        .expect("a create request");
        app::credentials::create(self.registry(), &self.fresh_ctx(), create)
            .await
            .expect("created")
            .value
            .id
    }

    /// Requests a test of the saved credential `id`; the test's id.
    async fn test_saved(&self, id: &str) -> String {
        self.request(json!({"provider": "openai", "provider_model_id": "gpt-4o",
            "credential_id": id}))
            .await
    }

    async fn rotate(&self, id: &str, api_key: &str) {
        let rotate = serde_json::from_value(json!({"credential": {"api_key": api_key}}))
            .expect("a rotation");
        app::credentials::rotate(self.registry(), &self.fresh_ctx(), id, rotate)
            .await
            .expect("rotated");
    }

    fn last_test(&self, id: &str) -> Option<api::CredentialTest> {
        app::credentials::get(self.registry(), &self.ctx, id)
            .expect("the credential")
            .value
            .last_test
    }

    /// Requests a draft test, as a command of its own; the test's id.
    async fn request(&self, body: Value) -> String {
        let request = serde_json::from_value(body).expect("a draft test request");
        app::connection_tests::request_draft(self.registry(), &self.fresh_ctx(), request)
            .await
            .expect("requested")
            .value
            .id
    }

    async fn wait_completed(&self, id: &str) -> api::ConnectionTest {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let test = app::connection_tests::get(
                self.registry(),
                &self.ctx,
                id,
                Some(Duration::from_secs(5)),
            )
            .await
            .expect("test")
            .value;
            if test.status == "completed" || Instant::now() > deadline {
                return test;
            }
        }
    }

    /// The jobs counted with `outcome` once at least `least` are: a job is counted after it
    /// records its result, so after the test shows it.
    async fn jobs_once(&self, outcome: &str, least: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.jobs(outcome) < least && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.jobs(outcome)
    }

    fn jobs(&self, outcome: &str) -> u64 {
        self.registry()
            .jobs()
            .snapshot()
            .into_iter()
            .find(|((worker, o), _)| worker == workers::connection_tests::CONSUMER && o == outcome)
            .map_or(0, |(_, count)| count)
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        if let Some(worker) = self.worker.take() {
            worker.await.expect("worker task").expect("worker");
        }
    }
}

/// A test whose job fails on every delivery (here its data key is gone, so its credential
/// cannot be opened) is retried quickly, and on its last delivery recorded as completed
/// with a failing class: it does not stay pending, and the gate refuses it as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_that_cannot_run_ends_completed_and_failed() {
    let mut own = OwnWorker::start().await;
    let id = own
        .request(draft("gpt-4o", "sk-good-0123456789abcdef"))
        .await;
    // The test's data key goes missing from the keyring (lost, or destroyed by an operator).
    let key_id = format!("{}.{id}.1", own.ctx.org());
    own.restart_after(async |config| {
        let keyring = vault::RedbKeyring::open(config.data_dir.join("keyring.redb"))
            .expect("the keyring file");
        vault::Keyring::delete(&keyring, &key_id)
            .await
            .expect("delete the test's data key");
    })
    .await;
    own.spawn_worker(|settings| {
        settings.ack_wait = Duration::from_secs(5);
        settings.retry = workers::Retry {
            max_deliver: 3,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        };
    });
    let started = Instant::now();
    let test = own.wait_completed(&id).await;
    assert_eq!(
        test.status, "completed",
        "a test that cannot run must not stay pending"
    );
    let result = test.result.expect("a result");
    assert_eq!(result.class, "provider_unavailable");
    assert!(!result.passed);
    assert!(result.hint.contains("could not run"), "{}", result.hint);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retries come after the backoff, not the ack wait: took {:?}",
        started.elapsed()
    );
    assert_eq!(
        own.jobs_once("failed", 3).await,
        3,
        "every delivery failed once"
    );
    assert_eq!(own.fake.seen(), 0, "the provider was never called");
    let add = serde_json::from_value(add_body("gpt-4o", "sk-good-0123456789abcdef", Some(&id)))
        .expect("an add request");
    let refused = app::models::add(own.registry(), &own.ctx, add).await.err();
    assert!(
        matches!(&refused, Some(app::AppError::Invalid(problems)) if problems.iter().any(|p| p.code == "connection_test.failed")),
        "the gate refuses the test as failed, not as still running: {refused:?}"
    );
    own.stop().await;
}

/// A test whose every attempt ended without a word from its worker (a worker killed
/// mid-test, or a test that brings its worker down each time) is settled by the next
/// delivery: recorded as not run, without calling the provider again. The log used to stop
/// delivering it after the last attempt, and it stayed pending for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_whose_last_attempt_died_ends_completed_and_failed() {
    let mut own = OwnWorker::start().await;
    let id = own
        .request(draft("gpt-4o", "sk-good-0123456789abcdef"))
        .await;
    let quick = |settings: &mut workers::connection_tests::Settings| {
        settings.ack_wait = Duration::from_millis(300);
        settings.retry = workers::Retry {
            max_deliver: 2,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        };
    };
    // Workers that take the test and die: each of its attempts goes unanswered.
    let config = workers::connection_tests::durable_config(&own.settings(quick));
    let mut dying = own
        .registry()
        .log()
        .durable(config)
        .await
        .expect("consumer");
    for attempt in 1..=2 {
        let delivery = dying
            .next(Duration::from_secs(10))
            .await
            .expect("a pull")
            .expect("the test is delivered again after the ack wait");
        assert_eq!(delivery.attempt, attempt);
    }
    drop(dying);
    own.spawn_worker(quick);
    let test = own.wait_completed(&id).await;
    assert_eq!(
        test.status, "completed",
        "a test whose last attempt died must not stay pending"
    );
    let result = test.result.expect("a result");
    assert_eq!(result.class, "provider_unavailable");
    assert!(result.hint.contains("could not run"), "{}", result.hint);
    assert_eq!(
        own.fake.seen(),
        0,
        "a test past its attempts is not run again"
    );
    assert_eq!(
        own.jobs_once("failed", 1).await,
        1,
        "settled by one delivery"
    );
    own.stop().await;
}

/// A test of a saved credential that was rotated, or deleted, before the worker ran it is
/// recorded as not run, saying why, and the provider is not called: it used to run the
/// credential's new secret under a request that named the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_of_a_credential_changed_before_it_ran_is_not_run() {
    let mut own = OwnWorker::start().await;
    let (mut tests, mut credentials) = (Vec::new(), Vec::new());
    for change in ["rotate", "delete"] {
        let id = own.save_credential(&format!("{change} me")).await;
        tests.push(own.test_saved(&id).await);
        match change {
            "rotate" => own.rotate(&id, "sk-good-rotated-0123456789").await,
            _ => {
                app::credentials::delete(own.registry(), &own.fresh_ctx(), &id)
                    .await
                    .expect("deleted");
            }
        }
        credentials.push(id);
    }
    own.spawn_worker(|_| {});
    for id in &tests {
        let test = own.wait_completed(id).await;
        assert_eq!(test.status, "completed", "{id}");
        let result = test.result.expect("a result");
        assert_eq!(result.class, "provider_unavailable", "{id}");
        assert!(
            result.hint.contains("rotated or deleted"),
            "{}",
            result.hint
        );
    }
    assert_eq!(
        own.fake.seen(),
        0,
        "no secret was tested under another's request"
    );
    assert!(
        own.last_test(&credentials[0]).is_none(),
        "a test of a version rotated away is not the credential's last test"
    );
    // Nor is one that completed before the rotation: the new version is untested.
    let id = own.save_credential("tested").await;
    let test = own.test_saved(&id).await;
    assert_eq!(own.wait_completed(&test).await.status, "completed");
    assert!(
        own.last_test(&id).is_some(),
        "a test of the current version is its last"
    );
    own.rotate(&id, "sk-good-again-0123456789").await;
    assert!(
        own.last_test(&id).is_none(),
        "a rotation leaves the new version untested"
    );
    assert_eq!(own.jobs("failed"), 0, "settled at once, not after retries");
    own.stop().await;
}

/// A test that outlasts the ack wait is not handed out again while it runs (the worker
/// reports progress), so the provider is called once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_test_is_not_redelivered_while_it_runs() {
    let mut own = OwnWorker::start().await;
    own.spawn_worker(|settings| settings.ack_wait = fake_provider::SLOW / 3);
    let id = own
        .request(
            json!({"provider": "openai_compatible", "provider_model_id": "slow",
            "endpoint_url": own.fake.v1()}),
        )
        .await;
    let test = own.wait_completed(&id).await;
    assert_eq!(test.status, "completed");
    assert_eq!(test.result.map(|r| r.class).as_deref(), Some("ok"));
    assert_eq!(test.version, 2, "recorded once");
    assert_eq!(own.fake.seen(), 1, "the provider is called once");
    assert_eq!(own.jobs("failed"), 0);
    own.stop().await;
}

/// A test request retried under its `Idempotency-Key` answers with the test it made, and
/// stores no data key for its secret again: a retry used to seal under a fresh test id and
/// store that key before the log found the request a duplicate, leaving it in the keyring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_test_request_is_the_same_test_and_stores_no_second_key() {
    let app = TestApp::start(Backend::JetStream).await;
    let keyring = app.nats_keyring().await;
    let keys = || async { vault::Keyring::keys(&keyring).await.expect("keys").len() };
    let before = keys().await;
    let mut ids = Vec::new();
    for attempt in 0..3 {
        let reply = app
            .call_with(
                Method::POST,
                "/v1/connection-tests",
                Some(draft("gpt-4o", "sk-good-0123456789abcdef")),
                &app.token,
                &[("idempotency-key", "test-once")],
            )
            .await;
        assert_eq!(
            reply.status.as_u16() / 100,
            2,
            "attempt {attempt}: {}",
            reply.body
        );
        ids.push(reply.body["id"].as_str().expect("id").to_owned());
    }
    assert!(ids.iter().all(|id| id == &ids[0]), "one test: {ids:?}");
    assert_eq!(keys().await, before + 1, "one data key, for the one test");
    // The same key with another secret is another request: refused, nothing stored.
    let other = app
        .call_with(
            Method::POST,
            "/v1/connection-tests",
            Some(draft("gpt-4o", "sk-other-0123456789abcdef")),
            &app.token,
            &[("idempotency-key", "test-once")],
        )
        .await;
    other.assert_key_reused();
    assert_eq!(keys().await, before + 1);
}
