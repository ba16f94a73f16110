//! Commands per second: raw JetStream publishes with the concurrency header, then the
//! registry's `POST /v1/models` over HTTP with read-your-writes, at the same concurrency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::oneshot;

use crate::measure::{Measurement, closed_loop};

/// A fixed master key for the bench's throwaway registry (base64 of 32 bytes). Nothing
/// sealed under it outlives the run.
const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The raw baseline's stream: the registry stream's settings, its own name and subjects.
const RAW_STREAM: &str = "BENCH_RAW";

#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub clients: usize,
    pub warmup: u64,
    pub count: u64,
}

/// `clients` tasks each publishing and awaiting the ack, one subject per message with
/// `Nats-Expected-Last-Subject-Sequence: 0` and a unique `Nats-Msg-Id`, as the registry
/// appends a creation. The stream has the registry stream's settings and is deleted after,
/// so the registry's own stream never sees these messages.
pub async fn raw_publishes(
    nats_url: &str,
    nats_pid: u32,
    load: Load,
    payload: Bytes,
) -> anyhow::Result<Measurement> {
    let client = async_nats::connect(nats_url).await?;
    let context = jetstream::new(client);
    context
        .create_stream(stream::Config {
            name: RAW_STREAM.to_owned(),
            subjects: vec!["reg.bench.raw.>".to_owned()],
            storage: stream::StorageType::File,
            num_replicas: 1,
            duplicate_window: Duration::from_secs(120),
            allow_direct: true,
            ..Default::default()
        })
        .await
        .context("cannot create the raw baseline stream")?;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let publish = {
        let context = context.clone();
        move |n: u64| {
            let context = context.clone();
            let payload = payload.clone();
            let msg_id = format!("{run}:{n}");
            async move {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Expected-Last-Subject-Sequence", "0");
                headers.insert("Nats-Msg-Id", msg_id.as_str());
                let ack = context
                    .publish_with_headers(format!("reg.bench.raw.{n}"), headers, payload)
                    .await?
                    .await?;
                ensure!(!ack.duplicate, "publish {n} was taken for a duplicate");
                Ok(())
            }
        }
    };
    closed_loop(load.clients, 0, load.warmup, None, publish.clone()).await?;
    let measured = closed_loop(
        load.clients,
        load.warmup,
        load.count,
        Some(nats_pid),
        publish,
    )
    .await?;
    context
        .delete_stream(RAW_STREAM)
        .await
        .context("cannot delete the raw baseline stream")?;
    Ok(measured)
}

/// What the HTTP bench adds with each model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// No credential: parse, the receipt check, one point read for the slug, one append,
    /// wait for the views.
    Plain,
    /// An inline API key: the above plus sealing, a keyring write and a credential event.
    InlineCredential,
}

/// What the HTTP bench measured.
pub struct HttpResults {
    /// One measurement per requested run, in order.
    pub runs: Vec<Measurement>,
    /// Whether adding a model needed a Test Connection receipt (the gate is on).
    pub gated: bool,
    /// The connection tests run (request + long poll) to get receipts for the inline-credential
    /// drafts, one per key; untimed setup for the measured adds, shown for information.
    pub receipts: Option<Measurement>,
}

/// The registry in-process on the bench's NATS server, as the end-to-end tests run it
/// (plus the connection-test worker and a fake upstream, so Test Connection can pass), and
/// `clients` HTTP clients adding models. Every answer must be 201.
pub async fn http_commands(
    nats_url: &str,
    nats_pid: u32,
    runs: &[(Body, Load)],
) -> anyhow::Result<HttpResults> {
    let upstream = FakeUpstream::start().await?;
    let data = tempfile::Builder::new()
        .prefix("modelreg-bench-registry-")
        .tempdir()?;
    let config = app::config::Config {
        data_dir: data.path().to_path_buf(),
        nats_url: Some(nats_url.to_owned()),
        master_key: Some(MASTER_KEY.to_owned()),
        bootstrap_default_org: false,
        providers: app::config::ProvidersConfig {
            timeout_ms: 5_000,
            // The fake upstream listens on 127.0.0.1.
            allow_loopback: true,
            ..app::config::ProvidersConfig::default()
        },
        ..app::config::Config::default()
    };
    let running = app::start(&config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the registry: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_server, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(
        listener,
        Arc::clone(&running.registry),
        async move {
            let _ = stopped.await;
        },
    ));
    let settings =
        workers::connection_tests::settings(&config.providers).map_err(anyhow::Error::msg)?;
    let worker = tokio::spawn(workers::connection_tests::run(
        Arc::clone(&running.registry),
        settings,
        running.stopped(),
    ));
    let created = running
        .registry
        .create_org("Bench")
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the bench org: {e}"))?;

    let max_clients = runs.iter().map(|(_, load)| load.clients).max().unwrap_or(1);
    let api = Api {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(max_clients)
            .build()?,
        base,
        token: Arc::new(created.admin_token.expose_secret().to_owned()),
        endpoint_url: Arc::new(upstream.v1()),
    };
    // One receipt serves every add of the same draft while it is fresh.
    let plain_receipt = api.passing_test(None).await?;
    let gated = plain_receipt.is_some();

    let mut results = HttpResults {
        runs: Vec::new(),
        gated,
        receipts: None,
    };
    let mut next = 0;
    for (body, load) in runs {
        let total = load.warmup + load.count;
        let receipts: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
        match (body, &plain_receipt) {
            (Body::Plain, Some(receipt)) => {
                let mut all = lock(&receipts)?;
                all.extend((next..next + total).map(|n| (n, receipt.clone())));
            }
            (Body::InlineCredential, Some(_)) => {
                // Each key has its own fingerprint, so each draft needs its own test.
                let prepare = {
                    let api = api.clone();
                    let receipts = Arc::clone(&receipts);
                    move |n: u64| {
                        let api = api.clone();
                        let receipts = Arc::clone(&receipts);
                        async move {
                            let Some(id) = api.passing_test(Some(&api_key(n))).await? else {
                                bail!("the gate went away between two tests");
                            };
                            lock(&receipts)?.insert(n, id);
                            Ok(())
                        }
                    }
                };
                results.receipts =
                    Some(closed_loop(load.clients, next, total, Some(nats_pid), prepare).await?);
            }
            (_, None) => {}
        }
        let add = {
            let api = api.clone();
            let body = *body;
            move |n: u64| {
                let api = api.clone();
                let receipt = lock(&receipts).map(|all| all.get(&n).cloned());
                async move { api.add_model(body, n, receipt?).await }
            }
        };
        closed_loop(load.clients, next, load.warmup, None, add.clone()).await?;
        next += load.warmup;
        results
            .runs
            .push(closed_loop(load.clients, next, load.count, Some(nats_pid), add).await?);
        next += load.count;
    }

    let _ = stop_server.send(());
    server.await.context("the HTTP server panicked")??;
    running.stop().await;
    worker
        .await
        .context("the connection-test worker panicked")?
        .map_err(anyhow::Error::msg)?;
    Ok(results)
}

fn lock<T>(mutex: &Mutex<T>) -> anyhow::Result<std::sync::MutexGuard<'_, T>> {
    mutex
        .lock()
        .map_err(|_| anyhow::anyhow!("a client task panicked holding the receipts"))
}

/// A distinct key per command, so none is reused and each one is sealed and stored.
fn api_key(n: u64) -> String {
    format!("sk-bench-{n:012}")
}

/// The bench's HTTP client of the registry: one keep-alive pool shared by every task.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: Arc<String>,
    endpoint_url: Arc<String>,
}

impl Api {
    fn draft(&self, api_key: Option<&str>) -> serde_json::Value {
        let mut draft = json!({
            "provider": "openai_compatible",
            "provider_model_id": "llama3",
            "endpoint_url": self.endpoint_url.as_str(),
        });
        if let Some(key) = api_key {
            draft["credential"] = json!({ "api_key": key });
        }
        draft
    }

    /// Runs a Test Connection of the draft and waits for it to pass; its id is the receipt
    /// the add presents. `None` when this build has no Test Connection route (no gate).
    async fn passing_test(&self, api_key: Option<&str>) -> anyhow::Result<Option<String>> {
        let response = self
            .http
            .post(format!("{}/v1/connection-tests", self.base))
            .bearer_auth(self.token.as_str())
            .json(&self.draft(api_key))
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status != reqwest::StatusCode::ACCEPTED {
            bail!("POST /v1/connection-tests answered {status}: {text}");
        }
        let requested: serde_json::Value = serde_json::from_str(&text)?;
        let Some(id) = requested["id"].as_str() else {
            bail!("a connection test without an id: {text}");
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let response = self
                .http
                .get(format!("{}/v1/connection-tests/{id}?wait=10", self.base))
                .bearer_auth(self.token.as_str())
                .send()
                .await?;
            let status = response.status();
            let text = response.text().await?;
            ensure!(
                status == reqwest::StatusCode::OK,
                "GET /v1/connection-tests/{id} answered {status}: {text}"
            );
            let test: serde_json::Value = serde_json::from_str(&text)?;
            if test["status"] == "completed" {
                ensure!(
                    test["result"]["passed"] == true,
                    "the connection test did not pass: {text}"
                );
                return Ok(Some(id.to_owned()));
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "connection test {id} still pending after 60 s"
            );
        }
    }

    async fn add_model(&self, body: Body, n: u64, receipt: Option<String>) -> anyhow::Result<()> {
        let key = match body {
            Body::Plain => None,
            Body::InlineCredential => Some(api_key(n)),
        };
        let mut request = self
            .draft(key.as_deref())
            .as_object()
            .cloned()
            .unwrap_or_default();
        request.insert("display_name".into(), json!(format!("m {n}")));
        request.insert("max_tokens".into(), json!(1000));
        if let Some(receipt) = receipt {
            request.insert("connection_test_id".into(), json!(receipt));
        }
        let response = self
            .http
            .post(format!("{}/v1/models", self.base))
            .bearer_auth(self.token.as_str())
            .json(&request)
            .send()
            .await?;
        let status = response.status();
        let has_position = response.headers().contains_key("x-modelreg-position");
        // Read the body in full so the connection goes back to the pool.
        let text = response.text().await?;
        if status != reqwest::StatusCode::CREATED {
            bail!("POST /v1/models answered {status}: {text}");
        }
        ensure!(has_position, "a 201 without X-Modelreg-Position");
        Ok(())
    }
}

/// A stand-in for an OpenAI-compatible server on 127.0.0.1, so a Test Connection makes its
/// real HTTP call and passes without leaving the machine.
struct FakeUpstream {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl FakeUpstream {
    async fn start() -> anyhow::Result<Self> {
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(|| async {
                axum::Json(json!({
                    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1,
                    "model": "llama3",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
                }))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { base, task })
    }

    fn v1(&self) -> String {
        format!("{}/v1", self.base)
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
