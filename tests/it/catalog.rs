//! The platform catalog: seeded from the shipped file, synced from a fake OpenRouter models
//! endpoint in the documented shape (paging included), overridden, retired with dependents
//! warned, chosen and hidden per org, and rebuilt to the same views. On both backends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, serve_local};

/// The platform key the tests configure; the fake refuses any other.
pub(crate) const PLATFORM_KEY: &str = "sk-or-v1-platformcanary0123456789";

fn with_platform_key(config: &mut app::config::Config) {
    config.platform_openrouter_key = Some(PLATFORM_KEY.to_owned());
}

/// A fake `GET /api/v1/models`: the models it holds, `limit` (default 4) per page, with
/// `links.next` to the next page as OpenRouter writes it. It counts the pages served.
pub(crate) struct FakeOpenRouter {
    pub base: String,
    pub models: Arc<Mutex<Vec<Value>>>,
    pub pages: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    models: Arc<Mutex<Vec<Value>>>,
    pages: Arc<Mutex<usize>>,
}

#[derive(serde::Deserialize)]
struct PageQuery {
    offset: Option<usize>,
    limit: Option<usize>,
}

impl FakeOpenRouter {
    pub(crate) async fn start(models: Vec<Value>) -> Self {
        let shared = Shared {
            models: Arc::new(Mutex::new(models)),
            pages: Arc::default(),
        };
        let app = Router::new()
            .route("/api/v1/models", get(page))
            .with_state(shared.clone());
        let (base, task) = serve_local(app).await;
        Self {
            base: format!("{base}/api/v1"),
            models: shared.models,
            pages: shared.pages,
            task,
        }
    }

    fn set(&self, models: Vec<Value>) {
        *self.models.lock().expect("models") = models;
    }

    /// Provider settings whose OpenRouter base is this fake.
    fn settings(&self) -> providers::Settings {
        let url = domain::values::HttpUrl::parse("base_url", &self.base).expect("url");
        let mut settings = providers::Settings::default()
            .with_base_url(domain::provider::Provider::Openrouter, url)
            .expect("settings");
        settings.outbound.allow_loopback = true;
        settings
    }
}

impl Drop for FakeOpenRouter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn page(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {PLATFORM_KEY}") {
        let body = json!({"error": {"code": 401, "message": "No auth credentials found"}});
        return (AxumStatus::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    *shared.pages.lock().expect("pages") += 1;
    let models = shared.models.lock().expect("models").clone();
    let (offset, limit) = (query.offset.unwrap_or(0), query.limit.unwrap_or(4));
    let data: Vec<Value> = models.iter().skip(offset).take(limit).cloned().collect();
    let next = (offset + limit < models.len())
        .then(|| format!("/api/v1/models?offset={}&limit={limit}", offset + limit));
    axum::Json(json!({"data": data, "links": {"next": next}, "total_count": models.len()}))
        .into_response()
}

/// A model as OpenRouter's models API describes it.
fn upstream(id: &str, prompt: &str, tools: bool, max_completion: u64) -> Value {
    let mut parameters = vec!["max_tokens", "temperature", "response_format", "reasoning"];
    if tools {
        parameters.push("tools");
    }
    json!({
        "id": id, "canonical_slug": id, "name": format!("Upstream {id}"),
        "context_length": 400_000,
        "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["text"]},
        "pricing": {"prompt": prompt, "completion": "0.00001", "request": "0", "image": "0"},
        "top_provider": {"context_length": 400_000, "max_completion_tokens": max_completion, "is_moderated": false},
        "supported_parameters": parameters,
        "expiration_date": null
    })
}

/// The ten shipped models (grok-4.1-fast without tools), and two models new upstream.
fn first_upstream() -> Vec<Value> {
    let mut models: Vec<Value> = domain::catalog::shipped()
        .models
        .iter()
        .map(|m| upstream(&m.id, "0.000002", m.id != "x-ai/grok-4.1-fast", 64_000))
        .collect();
    models.push(upstream(
        "mistralai/mistral-large-3",
        "0.0000005",
        true,
        32_000,
    ));
    models.push(upstream("qwen/qwen4-max", "0.0000012", true, 32_000));
    models
}

async fn sync(app: &TestApp, fake: &FakeOpenRouter, apply: bool) -> api::CatalogDiff {
    let ctx = app::Ctx::operator("test sync", None);
    let settings = fake.settings();
    workers::catalog_sync::sync(
        app.registry(),
        &ctx,
        workers::catalog_sync::Source::Api(&settings),
        &[],
        apply,
    )
    .await
    .expect("sync")
    .value
}

fn platform<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["platform"]
        .as_array()
        .and_then(|models| models.iter().find(|m| m["id"] == id))
        .unwrap_or_else(|| panic!("{id} listed: {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_on_the_embedded_log() {
    run(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_on_jetstream() {
    run(Backend::JetStream).await;
}

async fn run(backend: Backend) {
    let mut app = TestApp::start_with(backend, with_platform_key).await;
    let service = app.issue_token("runtime", "service").await;
    let gemini = "google/gemini-3.1-pro-preview";

    // Given the seeded catalog: ten models, facts unknown, the default Gemini 3.1 Pro.
    let list = app.list_models().await;
    assert_eq!(list.body["platform"].as_array().map(Vec::len), Some(10));
    assert_eq!(list.body["default_model"]["model"], gemini);
    assert_eq!(
        platform(&list.body, gemini)["capabilities"]["tool_use"],
        Value::Null
    );
    assert!(
        platform(&list.body, gemini)["unknown"]
            .as_array()
            .is_some_and(|u| u.len() == 8),
        "{}",
        list.body
    );
    let check = app
        .call(
            Method::POST,
            &format!("/v1/models/{}/check", gemini.replace('/', "%2F")),
            Some(json!({"tools": true})),
        )
        .await;
    assert_eq!(check.body["unknown"], json!(["tools"]), "{}", check.body);

    // When a sync reads the fake (three pages of four)
    let fake = FakeOpenRouter::start(first_upstream()).await;
    let dry = sync(&app, &fake, false).await;
    assert_eq!(*fake.pages.lock().expect("pages"), 3, "every page read");
    assert!(!dry.recorded && !dry.unchanged);
    assert_eq!(
        dry.proposed,
        ["mistralai/mistral-large-3", "qwen/qwen4-max"],
        "new upstream models are proposed, not listed"
    );
    let listed_models: std::collections::BTreeSet<&str> =
        dry.changed.iter().map(|c| c.model.as_str()).collect();
    assert_eq!(listed_models.len(), 10, "facts for the ten listed models");
    let history_before = app.call(Method::GET, "/v1/catalog", None).await.body["history"]
        .as_array()
        .map(Vec::len);
    assert_eq!(history_before, Some(1), "a dry run records nothing");
    let applied = sync(&app, &fake, true).await;
    assert!(applied.recorded);
    assert_eq!(applied.changed, dry.changed);

    // Then the facts, with their source, drive listing, gating and the builder's controls
    let list = app.list_models().await;
    let default = platform(&list.body, gemini);
    assert_eq!(default["capabilities"]["tool_use"], true, "{default}");
    assert_eq!(default["controls"]["tools"], true);
    assert_eq!(default["controls"]["image_input"], true);
    assert_eq!(default["controls"]["reasoning_effort"], true);
    assert_eq!(default["input_cost_per_token"], "0.000002");
    assert_eq!(default["max_tokens"], 64_000);
    let tools_fact = default["facts"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["fact"] == "tool_use"))
        .expect("tool_use fact");
    assert!(
        tools_fact["source"]
            .as_str()
            .is_some_and(|s| s.contains(&fake.base)),
        "{tools_fact}"
    );
    let allowed = app
        .call(
            Method::POST,
            &format!("/v1/models/{}/check", gemini.replace('/', "%2F")),
            Some(json!({"tools": true, "image_input": true, "json_mode": true})),
        )
        .await;
    assert_eq!(allowed.body["allowed"], true, "{}", allowed.body);
    let refused = app
        .call(
            Method::POST,
            "/v1/models/x-ai%2Fgrok-4.1-fast/check",
            Some(json!({"tools": true})),
        )
        .await;
    assert_eq!(
        refused.body["refused"][0]["feature"], "tools",
        "{}",
        refused.body
    );
    assert_eq!(
        platform(&list.body, "x-ai/grok-4.1-fast")["controls"]["tools"],
        false
    );

    // Resolve answers the synced facts with the platform key (the answer is forgotten: the
    // canary below checks no other answer carries the key).
    let resolved = app
        .call_with(
            Method::GET,
            &format!("/v1/resolve/{gemini}"),
            None,
            &service,
            &[],
        )
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.body);
    assert_eq!(resolved.body["max_tokens"], 64_000);
    assert_eq!(resolved.body["capabilities"]["tool_use"], true);
    assert_eq!(resolved.body["capabilities"]["reasoning"], "effort");
    assert_eq!(resolved.body["input_cost_per_token"], "0.000002");
    assert_eq!(resolved.body["credential"]["api_key"], PLATFORM_KEY);
    app.forget_responses();

    // An operator's override, with its reason (each command its own context: one command id
    // each)
    let operator = || app::Ctx::operator("test operator", None);
    app::catalog::override_fact(
        app.registry(),
        &operator(),
        "x-ai/grok-4.3",
        "max_completion_tokens",
        Some("128000"),
        "measured against the provider",
    )
    .await
    .expect("override");

    // A second sync with a changed price and a removed model shows exactly that
    let mut second = first_upstream();
    second.retain(|m| m["id"] != "openai/gpt-5.5");
    for model in &mut second {
        if model["id"] == gemini {
            model["pricing"]["prompt"] = json!("0.0000025");
        }
    }
    fake.set(second.clone());
    let diff = sync(&app, &fake, true).await;
    assert_eq!(
        diff.changed,
        [api::FactChange {
            model: gemini.into(),
            fact: "input_cost_per_token".into(),
            before: Some("0.000002".into()),
            after: Some("0.0000025".into()),
            overridden: false,
        }]
    );
    assert_eq!(diff.disappeared, ["openai/gpt-5.5"]);
    assert!(diff.proposed.is_empty() && diff.reappeared.is_empty() && diff.expired.is_empty());
    assert!(diff.recorded);

    // An unchanged sync records nothing
    let last = app.registry().log().last_seq().await.expect("last seq");
    let unchanged = sync(&app, &fake, true).await;
    assert!(unchanged.unchanged && !unchanged.recorded);
    assert_eq!(
        app.registry().log().last_seq().await.expect("last seq"),
        last
    );

    // And the override survived both syncs
    let grok = app
        .call(Method::GET, "/v1/catalog/models/x-ai/grok-4.3", None)
        .await;
    let max = grok.body["facts"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["fact"] == "max_completion_tokens"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(max["value"], "128000", "{}", grok.body);
    assert_eq!(max["override_reason"], "measured against the provider");
    assert_eq!(max["synced_value"], "64000");

    // Announced expiration dates: a later one is listed with the workflows that still use
    // the model; one that has come retires the model in the sync that sees it.
    let weekly = app
        .call_with(
            Method::PUT,
            "/v1/workflows/weekly",
            Some(json!({"name": "weekly", "active": true,
                "steps": [{"model": "anthropic/claude-sonnet-4.6", "features": {}}]})),
            &service,
            &[],
        )
        .await;
    assert_eq!(weekly.status, StatusCode::OK, "{}", weekly.body);
    let today = {
        use app::Clock;
        domain::catalog::Day::from_unix_ms(app.clock.now_ms())
    };
    let mut third = second.clone();
    for model in &mut third {
        if model["id"] == "anthropic/claude-sonnet-4.6" {
            model["expiration_date"] = json!("2099-12-31");
        }
        if model["id"] == "openai/gpt-5.4-mini" {
            model["expiration_date"] = json!(today.as_str());
        }
    }
    fake.set(third);
    let expiring = sync(&app, &fake, true).await;
    assert_eq!(expiring.changed.len(), 2, "{:?}", expiring.changed);
    assert_eq!(expiring.expired, ["openai/gpt-5.4-mini"]);
    let list = app.list_models().await;
    let sonnet = platform(&list.body, "anthropic/claude-sonnet-4.6");
    assert_eq!(sonnet["expires_on"], "2099-12-31");
    assert_eq!(sonnet["used_by_workflows"], json!(["weekly"]));
    assert_eq!(
        platform(&list.body, "openai/gpt-5.4-mini")["status"],
        "retired"
    );
    let expired = app
        .call_with(
            Method::GET,
            "/v1/resolve/openai/gpt-5.4-mini",
            None,
            &service,
            &[],
        )
        .await;
    assert_eq!(expired.status, StatusCode::GONE, "{}", expired.body);

    // A proposed model is listed by the operator
    app::catalog::add(app.registry(), &operator(), "qwen/qwen4-max")
        .await
        .expect("add");

    // Per-org choices: another default, a hidden model
    let chosen = app
        .call(
            Method::PUT,
            "/v1/org/default-model",
            Some(json!({"model": "x-ai/grok-4.1-fast"})),
        )
        .await;
    assert_eq!(chosen.status, StatusCode::OK, "{}", chosen.body);
    assert_eq!(chosen.body["default_model"]["chosen_by"], "org");
    let hidden = app
        .call(
            Method::PUT,
            "/v1/org/hidden-models",
            Some(json!({"models": ["openai/gpt-5.4"]})),
        )
        .await;
    assert_eq!(hidden.status, StatusCode::OK, "{}", hidden.body);
    let list = app.list_models().await;
    assert!(
        list.body["platform"]
            .as_array()
            .is_some_and(|m| m.iter().all(|m| m["id"] != "openai/gpt-5.4")),
        "hidden models are not listed"
    );
    assert_eq!(platform(&list.body, "x-ai/grok-4.1-fast")["default"], true);
    let resolve_hidden = app
        .call_with(
            Method::GET,
            "/v1/resolve/openai/gpt-5.4",
            None,
            &service,
            &[],
        )
        .await;
    assert_eq!(resolve_hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(resolve_hidden.body["code"], "platform_model.hidden");

    // Retiring a platform model two active workflows use
    for id in ["nightly", "digest"] {
        let put = app
            .call_with(
                Method::PUT,
                &format!("/v1/workflows/{id}"),
                Some(json!({"name": id, "active": true,
                    "steps": [{"model": "x-ai/grok-4.1-fast", "features": {"tools": id == "nightly"}}]})),
                &service,
                &[],
            )
            .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    }
    // A step wanting tools of a model whose upstream lists none is warned of it.
    let nightly = app.call(Method::GET, "/v1/workflows/nightly", None).await;
    assert_eq!(
        nightly.body["references"][0]["warnings"][0]["feature"], "tools",
        "{}",
        nightly.body
    );
    app::catalog::retire(
        app.registry(),
        &operator(),
        "x-ai/grok-4.1-fast",
        "superseded by grok-4.3",
    )
    .await
    .expect("retire");
    let gone = app.resolve_with("x-ai/grok-4.1-fast", &service).await;
    assert_eq!(gone.status, StatusCode::GONE, "{}", gone.body);
    assert_eq!(gone.body["code"], "platform_model.retired");
    assert_eq!(gone.body["deactivated_by"], "test operator");
    assert!(
        gone.body["hint"]
            .as_str()
            .is_some_and(|h| h.contains("repoint"))
    );
    // Both workflows are warned once, and listed as broken.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = catalog_row(&app);
        let warned = row.retirements["x-ai/grok-4.1-fast"]
            .warned
            .get("acme")
            .cloned();
        if let Some(warned) = warned {
            assert_eq!(warned, ["digest", "nightly"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dependents worker did not warn"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let broken = app
        .call(Method::GET, "/v1/workflows?broken=true", None)
        .await;
    let items = broken.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{}", broken.body);
    for workflow in items {
        assert_eq!(
            workflow["notices"].as_array().map(Vec::len),
            Some(1),
            "{workflow}"
        );
        assert_eq!(workflow["references"][0]["status"], "retired");
    }
    // The org's default, now retired, falls back to the platform's and says so.
    let list = app.list_models().await;
    assert_eq!(list.body["default_model"]["model"], gemini);
    assert_eq!(list.body["default_model"]["chosen_by"], "platform");
    assert!(
        list.body["default_model"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("retired")),
        "{}",
        list.body["default_model"]
    );
    assert_eq!(platform(&list.body, gemini)["default"], true);

    // The history shows each sync with its actor.
    let catalog = app.call(Method::GET, "/v1/catalog", None).await;
    let history = catalog.body["history"].as_array().expect("history");
    let syncs: Vec<&Value> = history
        .iter()
        .filter(|c| c["event"] == "catalog.synced")
        .collect();
    assert_eq!(syncs.len(), 3, "{}", catalog.body);
    assert!(syncs.iter().all(|c| c["by"] == "test sync"));
    assert_eq!(history[0]["event"], "catalog.seeded");

    // The retirement undone by the operator: the model resolves again, its retirement is
    // over, and the history says who and why.
    app::catalog::reinstate(
        app.registry(),
        &operator(),
        "x-ai/grok-4.1-fast",
        "retired by mistake",
    )
    .await
    .expect("reinstate");
    let back = app.resolve_with("x-ai/grok-4.1-fast", &service).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    app.forget_responses();
    let row = catalog_row(&app);
    assert!(!row.retirements.contains_key("x-ai/grok-4.1-fast"));
    let workflows = app.call(Method::GET, "/v1/workflows", None).await;
    let items = workflows.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{}", workflows.body);
    for workflow in items {
        assert_eq!(
            workflow["notices"],
            json!([]),
            "its notice went with the retirement"
        );
    }
    let catalog = app.call(Method::GET, "/v1/catalog", None).await;
    let last = catalog.body["history"]
        .as_array()
        .and_then(|h| h.last())
        .cloned();
    assert_eq!(
        last.as_ref().map(|c| (c["event"].clone(), c["by"].clone())),
        Some((json!("catalog.reinstated"), json!("test operator"))),
        "{}",
        catalog.body
    );

    // A rebuild gives the same views.
    let last = app.registry().log().last_seq().await.expect("last seq");
    app.assert_rebuild_equals_live("rebuild.redb").await;

    // A restart does not seed again.
    app.restart().await;
    assert_eq!(
        app.registry().log().last_seq().await.expect("last seq"),
        last
    );
    app.stop().await;
    crate::canary::assert_absent(&app, PLATFORM_KEY);
}

/// A sync with the wrong key is refused by the upstream and says so without the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sync_records_nothing_and_names_no_key() {
    let app = TestApp::start(Backend::Embedded).await;
    let fake = FakeOpenRouter::start(first_upstream()).await;
    let ctx = app::Ctx::operator("test sync", None);
    let settings = fake.settings();
    let error = workers::catalog_sync::sync(
        app.registry(),
        &ctx,
        workers::catalog_sync::Source::Api(&settings),
        &[],
        true,
    )
    .await
    .expect_err("refused without the platform key");
    assert!(error.to_string().contains("catalog sync"), "{error}");
    let row = catalog_row(&app);
    assert_eq!(row.history.len(), 1, "only the seed");
    // An org's token cannot change the catalog.
    let org_ctx = app::Ctx::system(domain::values::OrgId::parse("acme").expect("org id"), "x");
    let refused = app::catalog::retire(app.registry(), &org_ctx, "x-ai/grok-4.3", "no").await;
    assert!(matches!(refused, Err(app::AppError::Forbidden(_))));
}

/// The periodic sync (`catalog_sync_interval_s`) records what it finds, visibly: in the
/// catalog's history under its own actor, and in the job counters; new models of an
/// auto-listed vendor are listed, the others proposed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_sync_records_its_findings_visibly() {
    let app = TestApp::start_with(Backend::Embedded, with_platform_key).await;
    let fake = FakeOpenRouter::start(first_upstream()).await;
    let (stop, task) = spawn_periodic(&app, &fake, vec!["mistralai".to_owned()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = catalog_row(&app);
        if let Some(change) = row.history.iter().find(|c| c.event == "catalog.synced") {
            assert_eq!(change.by, "periodic catalog sync");
            // The rule lists the new models of its vendors; the rest are proposed.
            assert!(row.catalog.find("mistralai/mistral-large-3").is_some());
            assert!(row.catalog.proposed.contains_key("qwen/qwen4-max"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the periodic sync did not record"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    task.await.expect("the periodic sync stops when asked");
    assert!(counted(&app, "ok"), "the sync is counted in /metrics");
}

/// The periodic sync against `fake`, every hour (so once, at once), until the sender says.
fn spawn_periodic(
    app: &TestApp,
    fake: &FakeOpenRouter,
    auto_list: Vec<String>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(workers::catalog_sync::run_periodic(
        Arc::clone(app.running_registry()),
        fake.settings(),
        auto_list,
        Duration::from_secs(3600),
        async move {
            let _ = stopped.await;
        },
    ));
    (stop, task)
}

/// The catalog's row in the registry's views.
fn catalog_row(app: &TestApp) -> views::CatalogRow {
    app.registry()
        .views()
        .catalog()
        .expect("views")
        .expect("the catalog is seeded")
}

/// Whether a catalog sync has been counted with `outcome` in the job counters.
fn counted(app: &TestApp, outcome: &str) -> bool {
    app.registry()
        .jobs()
        .snapshot()
        .into_iter()
        .any(|((worker, o), n)| worker == "catalog-sync" && o == outcome && n >= 1)
}

/// The periodic sync holds back an answer that would make most of what the catalog knows
/// unknown (an upstream whose answer changed shape): nothing is recorded, the facts stay,
/// and the job counts as failed for the operator to look at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_sync_holds_back_a_sweeping_answer() {
    let app = TestApp::start_with(Backend::Embedded, with_platform_key).await;
    let fake = FakeOpenRouter::start(first_upstream()).await;
    assert!(sync(&app, &fake, true).await.recorded);
    // The same models, without the fields their capabilities and prices came from.
    let bare = first_upstream()
        .into_iter()
        .map(|mut model| {
            if let Some(fields) = model.as_object_mut() {
                fields.remove("supported_parameters");
                fields.remove("pricing");
            }
            model
        })
        .collect();
    fake.set(bare);
    let (stop, task) = spawn_periodic(&app, &fake, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !counted(&app, "failed") {
        assert!(Instant::now() < deadline, "the periodic sync never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    task.await.expect("the periodic sync stops when asked");
    let row = catalog_row(&app);
    let syncs = row
        .history
        .iter()
        .filter(|c| c.event == "catalog.synced")
        .count();
    assert_eq!(syncs, 1, "only the first sync is recorded");
    let gpt = row.catalog.find("openai/gpt-5.4").expect("listed");
    assert!(
        gpt.facts.contains_key(&domain::catalog::FactName::ToolUse),
        "the facts stay known"
    );
}

/// Replicas starting at once over one JetStream stream record one seed between them: the
/// append expects the catalog's subject empty and carries one message id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_seed_the_catalog_once() {
    let nats = crate::support::NatsServer::start();
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let configs: Vec<app::config::Config> = dirs
        .iter()
        .map(|dir| app::config::Config {
            data_dir: dir.path().to_path_buf(),
            nats_url: Some(nats.url()),
            master_key: Some(crate::support::registry::MASTER_KEY.to_owned()),
            bootstrap_default_org: false,
            read_your_writes_timeout_ms: 30_000,
            ..app::config::Config::default()
        })
        .collect();
    let started = futures::future::join_all(configs.iter().map(app::start)).await;
    let mut replicas = Vec::new();
    for running in started {
        replicas.push(running.expect("a replica starts"));
    }
    let last = replicas[0]
        .registry
        .log()
        .last_seq()
        .await
        .expect("last seq");
    assert_eq!(last, 1, "one event in the log: the seed");
    for replica in &replicas {
        replica.registry.settle(last).await.expect("settle");
        let row = replica
            .registry
            .views()
            .catalog()
            .expect("views")
            .expect("seeded");
        assert_eq!(row.history.len(), 1);
        assert_eq!(row.catalog.models.len(), 10);
    }
    for replica in replicas {
        replica.stop().await;
    }
}

/// An announced expiration date that comes between syncs answers 410 at once, and the next
/// expiry check retires the model so the dependents worker warns the workflows using it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiration_date_that_comes_between_syncs_retires_the_model_and_warns() {
    let app = TestApp::start_with(Backend::Embedded, with_platform_key).await;
    let service = app.issue_token("runtime", "service").await;
    let mini = "openai/gpt-5.4-mini";
    let tomorrow = {
        use app::Clock;
        domain::catalog::Day::from_unix_ms(app.clock.now_ms() + 86_400_000)
    };
    let mut models = first_upstream();
    for model in &mut models {
        if model["id"] == mini {
            model["expiration_date"] = json!(tomorrow.as_str());
        }
    }
    let fake = FakeOpenRouter::start(models).await;
    assert!(sync(&app, &fake, true).await.recorded);
    let put = app
        .call_with(
            Method::PUT,
            "/v1/workflows/daily",
            Some(json!({"name": "daily", "active": true,
                "steps": [{"model": mini, "features": {}}]})),
            &service,
            &[],
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let registry = app.registry();
    assert!(
        app::catalog::expire_due(registry)
            .await
            .expect("check")
            .is_empty()
    );

    app.clock.advance(Duration::from_secs(2 * 86_400));
    let resolve = || {
        app.call_with(
            Method::GET,
            "/v1/resolve/openai/gpt-5.4-mini",
            None,
            &service,
            &[],
        )
    };
    let gone = resolve().await;
    assert_eq!(
        gone.status,
        StatusCode::GONE,
        "by its date at once: {}",
        gone.body
    );
    assert_eq!(gone.body["deactivated_by"], "upstream expiration");
    let retired = app::catalog::expire_due(registry).await.expect("check");
    assert_eq!(retired, [mini]);
    assert!(
        app::catalog::expire_due(registry)
            .await
            .expect("check")
            .is_empty()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = registry.views().catalog().expect("views").expect("row");
        if let Some(warned) = row.retirements[mini].warned.get("acme") {
            assert_eq!(warned, &["daily"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dependents worker did not warn"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(resolve().await.body["deactivated_by"], "expiration dates");
}
