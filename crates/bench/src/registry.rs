//! The registry in-process, as the end-to-end tests run it: the HTTP API on a loopback port,
//! the projector, the connection-test worker and a fake OpenAI-compatible upstream, on either
//! log backend; plus the bench's HTTP client of it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A fixed master key for the bench's throwaway registry (base64 of 32 bytes). Nothing
/// sealed under it outlives the run.
pub(crate) const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Which log (and keyring) the registry runs on.
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    /// The bench's nats-server: the log is `stream`, the keyring the KV bucket `keyring`.
    JetStream {
        url: String,
        stream: String,
        keyring: String,
    },
    /// The embedded redb log and redb keyring in a temp data dir.
    Embedded,
}

impl Backend {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Backend::JetStream { .. } => "JetStream",
            Backend::Embedded => "embedded",
        }
    }
}

/// How to start the registry for one measurement.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// How long the fake upstream takes to answer a chat completion.
    pub upstream_delay: Duration,
    /// The connection-test worker's limit (`providers.concurrency`).
    pub worker_concurrency: usize,
    /// Idle keep-alive connections the bench's HTTP client keeps to the registry.
    pub clients: usize,
    /// How long the vault keeps an unwrapped data key (`data_key_cache_ttl_ms`; 0 turns the
    /// cache off, so every credential opening reads the keyring).
    pub data_key_cache_ttl_ms: u64,
}

/// A running registry with its org; `stop` shuts everything down in order.
pub(crate) struct Harness {
    pub registry: Arc<app::Registry>,
    pub api: Api,
    pub upstream: FakeUpstream,
    /// The bench org's id.
    pub org: String,
    running: app::Running,
    server: JoinHandle<std::io::Result<()>>,
    stop_server: oneshot::Sender<()>,
    worker: JoinHandle<Result<(), workers::WorkerError>>,
    backend: Backend,
    _data: tempfile::TempDir,
}

impl Harness {
    pub(crate) async fn start(backend: &Backend, options: &Options) -> anyhow::Result<Self> {
        let upstream = FakeUpstream::start(options.upstream_delay).await?;
        let data = tempfile::Builder::new()
            .prefix("modelreg-bench-registry-")
            .tempdir()?;
        let mut config = app::config::Config {
            data_dir: data.path().to_path_buf(),
            master_key: Some(MASTER_KEY.to_owned()),
            bootstrap_default_org: false,
            data_key_cache_ttl_ms: options.data_key_cache_ttl_ms,
            providers: app::config::ProvidersConfig {
                timeout_ms: 5_000,
                concurrency: options.worker_concurrency,
                // The fake upstream listens on 127.0.0.1.
                allow_loopback: true,
                ..app::config::ProvidersConfig::default()
            },
            ..app::config::Config::default()
        };
        if let Backend::JetStream {
            url,
            stream,
            keyring,
        } = backend
        {
            config.nats_url = Some(url.clone());
            config.stream = stream.clone();
            config.keyring_bucket = keyring.clone();
        }
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
        let settings = workers::connection_tests::settings(&config.providers)?;
        let worker = tokio::spawn(workers::connection_tests::run(
            Arc::clone(&running.registry),
            settings,
            running.stopped(),
        ));
        let created = app::orgs::create(&running.registry, "Bench")
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the bench org: {e}"))?;
        let api = Api {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(options.clients)
                .build()?,
            base,
            token: Arc::new(created.admin_token.expose_secret().to_owned()),
            endpoint_url: Arc::new(upstream.v1()),
        };
        Ok(Self {
            registry: Arc::clone(&running.registry),
            api,
            upstream,
            org: created.org.as_str().to_owned(),
            running,
            server,
            stop_server,
            worker,
            backend: backend.clone(),
            _data: data,
        })
    }

    /// The registry's HTTP address (`127.0.0.1:port`).
    pub(crate) fn addr(&self) -> &str {
        self.api.addr()
    }

    /// Stops the HTTP server, the projector and the worker, which finishes its tests in
    /// flight. On JetStream the registry's stream is deleted: every registry stream takes
    /// the same subjects, so the next one cannot be created while this one exists.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop_server.send(());
        self.server.await.context("the HTTP server panicked")??;
        self.running.stop().await;
        self.worker
            .await
            .context("the connection-test worker panicked")?
            .map_err(anyhow::Error::msg)?;
        if let Backend::JetStream { url, stream, .. } = &self.backend {
            delete_stream(url, stream).await?;
        }
        Ok(())
    }
}

/// Deletes a JetStream stream.
pub(crate) async fn delete_stream(nats_url: &str, stream: &str) -> anyhow::Result<()> {
    let client = async_nats::connect(nats_url).await?;
    async_nats::jetstream::new(client)
        .delete_stream(stream)
        .await
        .with_context(|| format!("cannot delete stream {stream}"))?;
    Ok(())
}

/// A distinct key per command, so none is reused and each one is sealed and stored.
pub(crate) fn api_key(n: u64) -> String {
    format!("sk-bench-{n:012}")
}

/// What the bench adds with each model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// No credential: parse, the receipt check, one point read for the slug, one append,
    /// wait for the views.
    Plain,
    /// An inline API key: the above plus sealing, a keyring write and a credential event.
    InlineCredential,
}

/// The bench's HTTP client of the registry: one keep-alive pool shared by every task.
#[derive(Clone)]
pub(crate) struct Api {
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

    /// `POST /v1/connection-tests` of the draft; the test's id. `None` when this build has
    /// no Test Connection route (no gate).
    pub(crate) async fn request_test(
        &self,
        api_key: Option<&str>,
    ) -> anyhow::Result<Option<String>> {
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
        Ok(Some(id.to_owned()))
    }

    /// Runs a Test Connection of the draft and waits for it to pass; its id is the receipt
    /// the add presents. `None` when this build has no Test Connection route (no gate).
    pub(crate) async fn passing_test(
        &self,
        api_key: Option<&str>,
    ) -> anyhow::Result<Option<String>> {
        let Some(id) = self.request_test(api_key).await? else {
            return Ok(None);
        };
        let deadline = Instant::now() + Duration::from_secs(60);
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
                return Ok(Some(id));
            }
            ensure!(
                Instant::now() < deadline,
                "connection test {id} still pending after 60 s"
            );
        }
    }

    /// `POST /v1/models` with display name `m <n>` (slug `m-<n>`); every answer must be 201.
    pub(crate) async fn add_model(
        &self,
        body: Body,
        n: u64,
        receipt: Option<String>,
    ) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{}/v1/models", self.base))
            .bearer_auth(self.token.as_str())
            .json(&self.add_model_body(body, n, receipt))
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

    /// The JSON of the `n`th add: display name `m <n>` (slug `m-<n>`).
    fn add_model_body(&self, body: Body, n: u64, receipt: Option<String>) -> serde_json::Value {
        let key = match body {
            Body::Plain => None,
            Body::InlineCredential => Some(api_key(n)),
        };
        let mut request = self.draft(key.as_deref());
        request["display_name"] = json!(format!("m {n}"));
        request["max_tokens"] = json!(1000);
        if let Some(receipt) = receipt {
            request["connection_test_id"] = json!(receipt);
        }
        request
    }

    /// The `n`th add as a whole HTTP/1.1 request, for a raw keep-alive connection.
    pub(crate) fn add_model_request(&self, body: Body, n: u64, receipt: Option<String>) -> Vec<u8> {
        let json = self.add_model_body(body, n, receipt).to_string();
        format!(
            "POST /v1/models HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            self.addr(),
            self.token,
            json.len()
        )
        .into_bytes()
    }

    /// `host:port` of the registry.
    pub(crate) fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The bench org's admin token.
    pub(crate) fn token(&self) -> &str {
        self.token.as_str()
    }

    /// `POST /v1/tokens` with the admin token; the new token, shown once.
    pub(crate) async fn issue_token(&self, label: &str, role: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .post(format!("{}/v1/tokens", self.base))
            .bearer_auth(self.token.as_str())
            .json(&json!({ "label": label, "role": role }))
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(
            status == reqwest::StatusCode::CREATED,
            "POST /v1/tokens answered {status}: {text}"
        );
        let issued: serde_json::Value = serde_json::from_str(&text)?;
        let Some(token) = issued["token"].as_str() else {
            bail!("an issued token without its secret");
        };
        Ok(token.to_owned())
    }
}

/// A stand-in for an OpenAI-compatible server on 127.0.0.1, so a Test Connection makes its
/// real HTTP call and passes without leaving the machine. It answers after `delay` (a tokio
/// sleep, so waiting costs no CPU) and counts the calls it holds at once.
pub(crate) struct FakeUpstream {
    base: String,
    stats: Arc<UpstreamStats>,
    task: JoinHandle<()>,
}

/// What the fake upstream saw since the last `reset`.
#[derive(Default)]
pub(crate) struct UpstreamStats {
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    arrivals: Mutex<Vec<Instant>>,
}

/// A summary of the upstream's calls: how many, the most held at once, and over how long
/// they arrived (first to last arrival).
#[derive(Clone, Copy, Debug)]
pub(crate) struct UpstreamSeen {
    pub calls: usize,
    pub max_in_flight: u64,
    pub arrival_span: Duration,
}

impl UpstreamStats {
    fn enter(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Ordering::Relaxed);
        if let Ok(mut arrivals) = self.arrivals.lock() {
            arrivals.push(Instant::now());
        }
    }

    fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl FakeUpstream {
    async fn start(delay: Duration) -> anyhow::Result<Self> {
        let stats = Arc::new(UpstreamStats::default());
        let app = axum::Router::new()
            .route(
                "/v1/chat/completions",
                axum::routing::post(
                    move |axum::extract::State(stats): axum::extract::State<Arc<UpstreamStats>>| async move {
                        stats.enter();
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        stats.leave();
                        axum::Json(json!({
                            "id": "chatcmpl-bench", "object": "chat.completion", "created": 1,
                            "model": "llama3",
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"},
                                         "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
                        }))
                    },
                ),
            )
            .with_state(Arc::clone(&stats));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { base, stats, task })
    }

    /// The OpenAI-compatible base URL (`http://127.0.0.1:port/v1`).
    pub(crate) fn v1(&self) -> String {
        format!("{}/v1", self.base)
    }

    /// Forgets what was seen so far.
    pub(crate) fn reset(&self) {
        self.stats.max_in_flight.store(
            self.stats.in_flight.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        if let Ok(mut arrivals) = self.stats.arrivals.lock() {
            arrivals.clear();
        }
    }

    pub(crate) fn seen(&self) -> UpstreamSeen {
        let (calls, arrival_span) = match self.stats.arrivals.lock() {
            Ok(arrivals) => match (arrivals.first(), arrivals.last()) {
                (Some(first), Some(last)) => (arrivals.len(), last.duration_since(*first)),
                _ => (0, Duration::ZERO),
            },
            Err(_) => (0, Duration::ZERO),
        };
        UpstreamSeen {
            calls,
            max_in_flight: self.stats.max_in_flight.load(Ordering::Relaxed),
            arrival_span,
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
