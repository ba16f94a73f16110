//! An in-process registry on either backend, served over real HTTP on port 0, with one typed
//! helper per endpoint. Every response body is kept for the secret canary.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use app::ManualClock;
use app::config::Config;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::NatsServer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Embedded,
    JetStream,
}

/// A fixed master key for tests (base64 of 32 bytes).
pub(crate) const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub(crate) struct TestApp {
    /// Applied to the configuration on every start.
    tweak: fn(&mut Config),
    /// Where `openai` and `anthropic` calls go; also a valid OpenAI-compatible endpoint.
    pub fake: super::fake_provider::FakeProvider,
    pub data: tempfile::TempDir,
    pub nats: Option<NatsServer>,
    /// The server list of a cluster the test runs (instead of `nats`), and the replicas the
    /// stream and keyring get there.
    pub cluster: Option<(String, usize)>,
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    pub responses: Arc<Mutex<Vec<String>>>,
    /// The registry's clock: it stands still until a test moves it.
    pub clock: Arc<ManualClock>,
    /// The web console served beside the API (its sessions and sign-in codes).
    pub console: Arc<webconsole::Console>,
    running: Option<Running>,
}

struct Running {
    app: app::Running,
    stop_server: oneshot::Sender<()>,
    server: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

/// One HTTP answer.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub position: Option<u64>,
}

impl Reply {
    /// The answer to a command whose `Idempotency-Key` was used for another request.
    pub(crate) fn assert_key_reused(&self) {
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("idempotency_key.reused")
            ),
            "{}",
            self.body
        );
    }
}

impl TestApp {
    /// Starts a registry on `backend`, with an org `acme` and its admin token.
    pub(crate) async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with a configuration change (e.g. a shorter receipt lifetime).
    pub(crate) async fn start_with(backend: Backend, tweak: fn(&mut Config)) -> Self {
        let nats = match backend {
            Backend::Embedded => None,
            Backend::JetStream => Some(NatsServer::start()),
        };
        let mut app = Self::unstarted(nats, None, tweak).await;
        app.boot().await;
        let created = app::orgs::create(app.registry(), "Acme")
            .await
            .expect("create org");
        app.token = created.admin_token.expose_secret().to_owned();
        app
    }

    /// Starts on the state already in `data` (a copied log, say) and, given one, on the
    /// stream of `nats`, creating nothing; the helpers that need a token have none.
    pub(crate) async fn open(nats: Option<NatsServer>, data: tempfile::TempDir) -> Self {
        let mut app = Self::unstarted_in(nats, None, |_| {}, data).await;
        app.boot().await;
        app
    }

    /// A replica on the cluster at `servers` (a comma-separated list) whose stream and
    /// keyring have `replicas` replicas; with `token`, it joins the org that token belongs
    /// to, else it creates `acme` and keeps its admin token. Each replica has its own data
    /// dir (views) and shares the master key.
    pub(crate) async fn on_cluster(
        servers: &str,
        replicas: usize,
        token: Option<&str>,
        tweak: fn(&mut Config),
    ) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        Self::on_cluster_in(servers, replicas, token, tweak, data).await
    }

    /// As [`Self::on_cluster`], on the state already in `data` (the views a replica that
    /// crashed left behind, say).
    pub(crate) async fn on_cluster_in(
        servers: &str,
        replicas: usize,
        token: Option<&str>,
        tweak: fn(&mut Config),
        data: tempfile::TempDir,
    ) -> Self {
        let cluster = Some((servers.to_owned(), replicas));
        let mut app = Self::unstarted_in(None, cluster, tweak, data).await;
        app.boot().await;
        match token {
            Some(token) => {
                // The org and its token are known once the views caught up with the log.
                let last = app.registry().log().last_seq().await.expect("last seq");
                app.registry()
                    .views()
                    .wait_for(last, std::time::Duration::from_secs(60))
                    .await
                    .expect("the replica catches up");
                app.token = token.to_owned();
            }
            None => {
                let created = app::orgs::create(app.registry(), "Acme")
                    .await
                    .expect("create org");
                app.token = created.admin_token.expose_secret().to_owned();
            }
        }
        app
    }

    async fn unstarted(
        nats: Option<NatsServer>,
        cluster: Option<(String, usize)>,
        tweak: fn(&mut Config),
    ) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        Self::unstarted_in(nats, cluster, tweak, data).await
    }

    async fn unstarted_in(
        nats: Option<NatsServer>,
        cluster: Option<(String, usize)>,
        tweak: fn(&mut Config),
        data: tempfile::TempDir,
    ) -> Self {
        super::logs::capture();
        let fake = super::fake_provider::FakeProvider::start().await;
        Self {
            tweak,
            fake,
            data,
            nats,
            cluster,
            base: String::new(),
            token: String::new(),
            http: reqwest::Client::new(),
            responses: Arc::default(),
            clock: Arc::new(ManualClock::starting_now()),
            console: Arc::new(webconsole::Console::default()),
            running: None,
        }
    }

    /// The NATS server list the registry uses, if any.
    pub(crate) fn nats_url(&self) -> Option<String> {
        match (&self.cluster, &self.nats) {
            (Some((servers, _)), _) => Some(servers.clone()),
            (None, Some(nats)) => Some(nats.url()),
            (None, None) => None,
        }
    }

    /// The keyring bucket of a registry on NATS, opened on a client of its own.
    pub(crate) async fn nats_keyring(&self) -> vault::NatsKeyring {
        let client = async_nats::connect(self.nats_url().expect("on NATS"))
            .await
            .expect("nats");
        vault::NatsKeyring::connect(client, "MODELREG_KEYRING")
            .await
            .expect("keyring")
    }

    /// `GET /v1/resolve/{model}` with `token` (a service token).
    pub(crate) async fn resolve_with(&self, model: &str, token: &str) -> Reply {
        self.call_with(
            Method::GET,
            &format!("/v1/resolve/{model}"),
            None,
            token,
            &[],
        )
        .await
    }

    pub(crate) fn config(&self) -> Config {
        let mut config = self.base_config();
        (self.tweak)(&mut config);
        config
    }

    fn base_config(&self) -> Config {
        Config {
            data_dir: self.data.path().to_path_buf(),
            nats_url: self.nats_url(),
            stream_replicas: self.cluster.as_ref().map_or(1, |(_, replicas)| *replicas),
            keyring_replicas: self.cluster.as_ref().map_or(1, |(_, replicas)| *replicas),
            master_key: Some(MASTER_KEY.to_owned()),
            bootstrap_default_org: false,
            // Suites run side by side on 2 shared cores: allow slow moments, not wrong answers.
            read_your_writes_timeout_ms: 30_000,
            providers: app::config::ProvidersConfig {
                base_urls: [
                    ("openai".to_owned(), self.fake.v1()),
                    ("anthropic".to_owned(), self.fake.base.clone()),
                    ("bedrock".to_owned(), self.fake.base.clone()),
                ]
                .into(),
                timeout_ms: 5_000,
                allow_loopback: true,
                ..app::config::ProvidersConfig::default()
            },
            ..Config::default()
        }
    }

    async fn boot(&mut self) {
        let clock: Arc<dyn app::Clock> = self.clock.clone();
        // A cluster elects its JetStream leaders a moment after its nodes accept
        // connections (and again after a node is lost): a start may wait for them.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let running = loop {
            match app::start_with_clock(&self.config(), Arc::clone(&clock)).await {
                Ok(running) => break running,
                Err(error) if self.cluster.is_some() && std::time::Instant::now() < deadline => {
                    tracing::info!(%error, "the cluster is not ready; starting again");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(error) => panic!("start registry: {error}"),
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        self.base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop_server, stopped) = oneshot::channel::<()>();
        let registry = Arc::clone(&running.registry);
        let console = Arc::clone(&self.console);
        let timeouts = server::Timeouts {
            header_read: std::time::Duration::from_millis(
                self.config().http_header_read_timeout_ms,
            ),
        };
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            server::serve_console(listener, registry, console, timeouts, shutdown)
                .await
                .expect("serve");
        });
        let notifier: Arc<dyn workers::Notifier> = match self.nats_url() {
            Some(url) => Arc::new(workers::NatsNotifier(
                eventlog::connect_nats(&url).await.expect("nats"),
            )),
            None => Arc::new(workers::QuietNotifier),
        };
        let worker_registry = Arc::clone(&running.registry);
        let stopped = running.stopped();
        let mut worker_tasks = vec![tokio::spawn(async move {
            workers::dependents::run(worker_registry, notifier, stopped)
                .await
                .expect("dependents worker");
        })];
        let settings = workers::connection_tests::settings(&self.config().providers)
            .expect("provider settings");
        let registry = Arc::clone(&running.registry);
        let stopped = running.stopped();
        worker_tasks.push(tokio::spawn(async move {
            workers::connection_tests::run(registry, settings, stopped)
                .await
                .expect("connection-test worker");
        }));
        if let Some(url) = self.nats_url() {
            let client = eventlog::connect_nats(&url).await.expect("nats");
            let registry = Arc::clone(&running.registry);
            let stopped = running.stopped();
            let pipelines_client = client.clone();
            worker_tasks.push(tokio::spawn(async move {
                workers::pipelines::run(registry, pipelines_client, stopped)
                    .await
                    .expect("pipelines subscriber");
            }));
            let registry = Arc::clone(&running.registry);
            let stopped = running.stopped();
            worker_tasks.push(tokio::spawn(async move {
                workers::usage_reports::run(registry, client, stopped)
                    .await
                    .expect("usage subscriber");
            }));
        }
        self.running = Some(Running {
            app: running,
            stop_server,
            server,
            workers: worker_tasks,
        });
    }

    pub(crate) fn registry(&self) -> &app::Registry {
        &self.running.as_ref().expect("running").app.registry
    }

    /// Once the views hold the whole log, rebuilds them from it into a fresh file (`name`
    /// in the data dir) and asserts the checksums are equal: the views are the log's.
    pub(crate) async fn assert_rebuild_equals_live(&self, name: &str) {
        let registry = self.registry();
        let last = registry.log().last_seq().await.expect("last seq");
        registry.settle(last).await.expect("settle");
        let live = registry.views().checksum().expect("checksum");
        let rebuilt = views::rebuild(
            std::sync::Arc::clone(registry.log()),
            &self.data.path().join(name),
            |_, _| {},
        )
        .await
        .expect("rebuild");
        assert_eq!(rebuilt, live, "a rebuild equals the live views");
    }

    /// The registry as a shared handle, for a task the test runs beside it.
    pub(crate) fn running_registry(&self) -> &std::sync::Arc<app::Registry> {
        &self.running.as_ref().expect("running").app.registry
    }

    /// Stops the server and projector, releasing every file.
    pub(crate) async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop_server.send(());
            let _ = running.server.await;
            let workers = running.workers;
            running.app.stop().await;
            for worker in workers {
                let _ = worker.await;
            }
        }
    }

    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        self.boot().await;
    }

    pub(crate) fn views_path(&self) -> PathBuf {
        app::views_path(self.data.path())
    }

    /// Directories whose every byte the canary scans.
    pub(crate) fn state_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.data.path().to_path_buf()];
        if let Some(nats) = &self.nats {
            dirs.push(nats.store_dir());
        }
        dirs
    }

    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, body, &self.token, &[]).await
    }

    pub(crate) async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        self.reply(response).await
    }

    pub(crate) async fn raw(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request");
        self.reply(response).await
    }

    async fn reply(&self, response: reqwest::Response) -> Reply {
        let status = response.status();
        let position = response
            .headers()
            .get("x-modelreg-position")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let text = response.text().await.expect("body");
        if let Ok(mut all) = self.responses.lock() {
            all.push(text.clone());
        }
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            body,
            position,
        }
    }

    /// A model to add: an OpenAI-compatible server (the test's fake provider) named `name`.
    pub(crate) fn local_draft(&self, name: &str) -> api::AddModel {
        api::AddModel {
            display_name: Some(name.into()),
            provider: Some("openai_compatible".into()),
            provider_model_id: Some("llama3".into()),
            endpoint_url: Some(self.fake.v1()),
            max_tokens: Some(4096.into()),
            ..api::AddModel::default()
        }
    }

    /// Adds a model the way a user must: a Test Connection of the draft first, then the
    /// add with its receipt. A draft the test endpoint refuses is added without a receipt,
    /// so the add answers what is wrong with it.
    pub(crate) async fn add_model(&self, body: impl Serialize) -> Reply {
        let mut body = json_of(body);
        if let Some(test_id) = self.passing_test_of(&body).await {
            body["connection_test_id"] = Value::String(test_id);
        }
        self.add_model_ungated(body).await
    }

    /// `POST /v1/models` exactly as given.
    pub(crate) async fn add_model_ungated(&self, body: impl Serialize) -> Reply {
        self.call(Method::POST, "/v1/models", Some(json_of(body)))
            .await
    }

    /// Runs a Test Connection of the draft in the add `body` and waits for it; the test's id
    /// when it was accepted (passed or not). A body that is not an add is not tested.
    pub(crate) async fn passing_test_of(&self, body: &impl Serialize) -> Option<String> {
        let add: api::AddModel = serde_json::from_value(json_of(body)).ok()?;
        let draft = json_of(api::DraftTest::of(&add));
        let requested = self
            .call(Method::POST, "/v1/connection-tests", Some(draft))
            .await;
        if requested.status != StatusCode::ACCEPTED {
            return None;
        }
        let id = requested.body["id"].as_str()?.to_owned();
        let done = self.wait_for_test(&id).await;
        assert_eq!(done.body["status"], "completed", "{}", done.body);
        Some(id)
    }

    /// Waits (long poll) until a connection test completes.
    pub(crate) async fn wait_for_test(&self, id: &str) -> Reply {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let reply = self
                .call(
                    Method::GET,
                    &format!("/v1/connection-tests/{id}?wait=10"),
                    None,
                )
                .await;
            if reply.body["status"] == "completed" || std::time::Instant::now() > deadline {
                return reply;
            }
        }
    }

    /// Waits until the dependents worker recorded its warning for `slug` (of `acme`).
    pub(crate) async fn wait_for_warning(&self, slug: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let row = self
                .registry()
                .views()
                .model("acme", slug)
                .expect("views")
                .expect("model");
            if row.deactivation.is_some_and(|d| d.warned.is_some()) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "no warning recorded");
            let views = self.registry().views();
            views
                .changed_after(views.position(), std::time::Duration::from_millis(200))
                .await;
        }
    }

    pub(crate) async fn get_model(&self, slug: &str) -> Reply {
        self.call(Method::GET, &format!("/v1/models/{slug}"), None)
            .await
    }

    pub(crate) async fn list_models(&self) -> Reply {
        self.call(Method::GET, "/v1/models", None).await
    }

    pub(crate) async fn edit_model(
        &self,
        slug: &str,
        body: impl Serialize,
        if_match: Option<u64>,
    ) -> Reply {
        let version = if_match.map(|v| format!("\"{v}\""));
        let headers: Vec<(&str, &str)> = version.iter().map(|v| ("if-match", v.as_str())).collect();
        self.call_with(
            Method::PATCH,
            &format!("/v1/models/{slug}"),
            Some(json_of(body)),
            &self.token,
            &headers,
        )
        .await
    }

    pub(crate) async fn deactivate_model(&self, slug: &str) -> Reply {
        self.call(Method::DELETE, &format!("/v1/models/{slug}"), None)
            .await
    }

    /// Issues a token of `role` with the admin token and returns it.
    pub(crate) async fn issue_token(&self, label: &str, role: &str) -> String {
        let request = api::IssueToken {
            label: label.into(),
            role: role.into(),
            expires_at: None,
        };
        let reply = self
            .call(Method::POST, "/v1/tokens", Some(json_of(request)))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["token"].as_str().expect("token").to_owned()
    }

    /// Drops the recorded responses (after a deliberate resolve, which carries a secret).
    pub(crate) fn forget_responses(&self) {
        if let Ok(mut all) = self.responses.lock() {
            all.clear();
        }
    }

    pub(crate) async fn list_credentials(&self) -> Reply {
        self.call(Method::GET, "/v1/credentials", None).await
    }

    /// Changes the configuration change applied from the next start on.
    pub(crate) fn set_tweak(&mut self, tweak: fn(&mut Config)) {
        self.tweak = tweak;
    }

    /// `POST /v1/credentials` of an API key for `provider`.
    pub(crate) async fn create_credential(
        &self,
        name: &str,
        provider: &str,
        api_key: &str,
        expires_at: Option<String>,
    ) -> Reply {
        let request = api::CreateCredential {
            name: name.into(),
            provider: provider.into(),
            credential: api::CredentialInput {
                api_key: Some(api::SecretField::new(api_key.to_owned())),
                ..api::CredentialInput::default()
            },
            expires_at,
        };
        self.call(Method::POST, "/v1/credentials", Some(json_of(request)))
            .await
    }

    pub(crate) async fn get_credential(&self, id: &str) -> Reply {
        self.call(Method::GET, &format!("/v1/credentials/{id}"), None)
            .await
    }

    /// `POST /v1/credentials/{id}/rotation` to a new API key.
    pub(crate) async fn rotate_credential(&self, id: &str, api_key: &str, retest: bool) -> Reply {
        let request = api::RotateCredential {
            credential: api::CredentialInput {
                api_key: Some(api::SecretField::new(api_key.to_owned())),
                ..api::CredentialInput::default()
            },
            expires_at: None,
            retest,
        };
        self.call(
            Method::POST,
            &format!("/v1/credentials/{id}/rotation"),
            Some(json_of(request)),
        )
        .await
    }

    /// Adds an OpenAI-compatible model named `name` (provider model id `model_id`) on the
    /// saved credential `credential_id`, gated as a user must; answers its slug.
    pub(crate) async fn add_model_on(
        &self,
        name: &str,
        model_id: &str,
        credential_id: &str,
    ) -> String {
        let mut draft = self.local_draft(name);
        draft.provider_model_id = Some(model_id.into());
        draft.credential_id = Some(credential_id.into());
        let added = self.add_model(draft).await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
        added.body["model"]["slug"]
            .as_str()
            .expect("slug")
            .to_owned()
    }
}

/// A request body as JSON: a wire type from `api`, or a `json!` value for bodies no wire type
/// can hold (the bad-input suite's).
pub(crate) fn json_of(body: impl Serialize) -> Value {
    serde_json::to_value(body).expect("a body serializes")
}
