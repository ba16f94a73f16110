//! An in-process registry on either backend, served over real HTTP on port 0, with one typed
//! helper per endpoint. Every response body is kept for the secret canary.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use app::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::NatsServer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    JetStream,
}

/// A fixed master key for tests (base64 of 32 bytes).
pub const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub struct TestApp {
    pub data: tempfile::TempDir,
    pub nats: Option<NatsServer>,
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    pub responses: Arc<Mutex<Vec<String>>>,
    running: Option<Running>,
}

struct Running {
    app: app::Running,
    stop_server: oneshot::Sender<()>,
    server: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

/// One HTTP answer.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub position: Option<u64>,
}

impl TestApp {
    /// Starts a registry on `backend`, with an org `acme` and its admin token.
    pub async fn start(backend: Backend) -> Self {
        super::logs::capture();
        let nats = match backend {
            Backend::Embedded => None,
            Backend::JetStream => Some(NatsServer::start().await),
        };
        let data = tempfile::tempdir().expect("temp dir");
        let mut app = Self {
            data,
            nats,
            base: String::new(),
            token: String::new(),
            http: reqwest::Client::new(),
            responses: Arc::default(),
            running: None,
        };
        app.boot().await;
        let created = app.registry().create_org("Acme").await.expect("create org");
        app.token = created.admin_token.expose_secret().to_owned();
        app
    }

    pub fn config(&self) -> Config {
        Config {
            data_dir: self.data.path().to_path_buf(),
            nats_url: self.nats.as_ref().map(NatsServer::url),
            master_key: Some(MASTER_KEY.to_owned()),
            bootstrap_default_org: false,
            ..Config::default()
        }
    }

    async fn boot(&mut self) {
        let running = app::start(&self.config()).await.expect("start registry");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        self.base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop_server, stopped) = oneshot::channel::<()>();
        let registry = Arc::clone(&running.registry);
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            server::serve(listener, registry, shutdown)
                .await
                .expect("serve");
        });
        let notifier: Arc<dyn workers::Notifier> = match &self.nats {
            Some(nats) => Arc::new(workers::NatsNotifier(
                async_nats::connect(nats.url()).await.expect("nats"),
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
        if let Some(nats) = &self.nats {
            let client = async_nats::connect(nats.url()).await.expect("nats");
            let registry = Arc::clone(&running.registry);
            let stopped = running.stopped();
            worker_tasks.push(tokio::spawn(async move {
                workers::pipelines::run(registry, client, stopped)
                    .await
                    .expect("pipelines subscriber");
            }));
        }
        self.running = Some(Running {
            app: running,
            stop_server,
            server,
            workers: worker_tasks,
        });
    }

    pub fn registry(&self) -> &app::Registry {
        &self.running.as_ref().expect("running").app.registry
    }

    /// Stops the server and projector, releasing every file.
    pub async fn stop(&mut self) {
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

    pub async fn restart(&mut self) {
        self.stop().await;
        self.boot().await;
    }

    pub fn views_path(&self) -> PathBuf {
        app::views_path(self.data.path())
    }

    /// Directories whose every byte the canary scans.
    pub fn state_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.data.path().to_path_buf()];
        if let Some(nats) = &self.nats {
            dirs.push(nats.store_dir());
        }
        dirs
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, body, &self.token, &[]).await
    }

    pub async fn call_with(
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

    pub async fn raw(&self, request: reqwest::RequestBuilder) -> Reply {
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

    pub async fn add_model(&self, body: Value) -> Reply {
        self.call(Method::POST, "/v1/models", Some(body)).await
    }

    pub async fn get_model(&self, slug: &str) -> Reply {
        self.call(Method::GET, &format!("/v1/models/{slug}"), None)
            .await
    }

    pub async fn list_models(&self) -> Reply {
        self.call(Method::GET, "/v1/models", None).await
    }

    pub async fn edit_model(&self, slug: &str, body: Value, if_match: Option<u64>) -> Reply {
        let version = if_match.map(|v| format!("\"{v}\""));
        let headers: Vec<(&str, &str)> = version.iter().map(|v| ("if-match", v.as_str())).collect();
        self.call_with(
            Method::PATCH,
            &format!("/v1/models/{slug}"),
            Some(body),
            &self.token,
            &headers,
        )
        .await
    }

    pub async fn deactivate_model(&self, slug: &str) -> Reply {
        self.call(Method::DELETE, &format!("/v1/models/{slug}"), None)
            .await
    }

    /// Issues a token of `role` with the admin token and returns it.
    pub async fn issue_token(&self, label: &str, role: &str) -> String {
        let reply = self
            .call(
                Method::POST,
                "/v1/tokens",
                Some(serde_json::json!({"label": label, "role": role})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["token"].as_str().expect("token").to_owned()
    }

    /// Drops the recorded responses (after a deliberate resolve, which carries a secret).
    pub fn forget_responses(&self) {
        if let Ok(mut all) = self.responses.lock() {
            all.clear();
        }
    }

    pub async fn list_credentials(&self) -> Reply {
        self.call(Method::GET, "/v1/credentials", None).await
    }
}
