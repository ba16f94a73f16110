//! Crash: `kill -9` of the server during a burst of commands in NATS mode, then restart:
//! every acknowledged command is in the views, and none is there twice (retries with the same
//! Idempotency-Key land once).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::fake_provider::FakeProvider;
use crate::support::registry::MASTER_KEY;
use crate::support::{NatsServer, free_port};

const COMMANDS: usize = 300;
const CLIENTS: usize = 32;
/// Acknowledged commands after which the server is killed.
const KILL_AFTER: usize = 60;

/// The `modelreg` binary next to this test binary (`just test` builds it first).
pub(crate) fn modelreg_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let binary = dir.join("modelreg");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p modelreg` first (`just test` does)",
        binary.display()
    );
    binary
}

struct Server {
    child: Child,
    base: String,
    worker: Child,
    /// Where the worker serves its `/metrics`.
    worker_metrics: u16,
}

impl Server {
    /// The API process and, as in production on NATS, a separate connection-test worker.
    async fn start(nats: &NatsServer, data: &std::path::Path) -> Self {
        let port = free_port();
        let child = Command::new(modelreg_binary())
            .args([
                "serve",
                "--nats",
                &nats.url(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--data-dir")
            .arg(data)
            .env("MODELREG_MASTER_KEY", MASTER_KEY)
            .env("MODELREG_LOG", "warn")
            .env("MODELREG_READ_YOUR_WRITES_TIMEOUT_MS", "30000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn modelreg");
        let worker_metrics = free_port();
        let worker = spawn_worker(nats, data, worker_metrics);
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            worker,
            worker_metrics,
        };
        server.wait_ready().await;
        server
    }

    /// `kill -9` of the worker process only.
    fn kill9_worker(&mut self) {
        self.worker.kill().expect("SIGKILL");
        let _ = self.worker.wait();
    }

    async fn wait_ready(&self) {
        // Generous: a start on 2 shared cores, beside other suites, was seen to pass 30 s.
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = reqwest::Client::new();
        loop {
            if let Ok(response) = http.get(format!("{}/readyz", self.base)).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(Instant::now() < deadline, "modelreg did not become ready");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

/// A connection-test worker process with its own views; provider calls time out after 3 s,
/// so an unacked job is redelivered after 8 s.
fn spawn_worker(nats: &NatsServer, data: &std::path::Path, metrics_port: u16) -> Child {
    Command::new(modelreg_binary())
        .args(["worker", "connection-tests", "--nats", &nats.url()])
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .arg("--data-dir")
        .arg(data.join("worker"))
        .env("MODELREG_MASTER_KEY", MASTER_KEY)
        .env("MODELREG_PROVIDERS_ALLOW_LOOPBACK", "true")
        .env("MODELREG_PROVIDERS_TIMEOUT_MS", "3000")
        .env("MODELREG_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn modelreg worker")
}

impl Drop for Server {
    fn drop(&mut self) {
        for child in [&mut self.child, &mut self.worker] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The draft every command adds (under its own name), with one receipt for all.
fn draft(endpoint: &str) -> Value {
    json!({"provider": "openai_compatible", "provider_model_id": "llama3", "endpoint_url": endpoint})
}

/// A passing connection test of the shared draft, run by the worker process.
async fn receipt(http: &reqwest::Client, base: &str, token: &str, endpoint: &str) -> String {
    let requested: Value = http
        .post(format!("{base}/v1/connection-tests"))
        .bearer_auth(token)
        .json(&draft(endpoint))
        .send()
        .await
        .expect("request test")
        .json()
        .await
        .expect("json");
    let id = requested["id"].as_str().expect("test id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let test: Value = http
            .get(format!("{base}/v1/connection-tests/{id}?wait=5"))
            .bearer_auth(token)
            .send()
            .await
            .expect("get test")
            .json()
            .await
            .expect("json");
        if test["status"] == "completed" {
            assert_eq!(test["result"]["passed"], true, "{test}");
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "the connection test did not complete: {test}"
        );
    }
}

async fn add(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    endpoint: &str,
    receipt: &str,
    i: usize,
) -> Result<StatusCode, reqwest::Error> {
    let mut body = draft(endpoint);
    body["display_name"] = json!(format!("m {i}"));
    body["max_tokens"] = json!(1000);
    body["connection_test_id"] = json!(receipt);
    let response = http
        .post(format!("{base}/v1/models"))
        .bearer_auth(token)
        .header("idempotency-key", format!("crash-{i}"))
        .json(&body)
        .send()
        .await?;
    Ok(response.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_loses_no_acknowledged_command() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().expect("dir");
    let mut server = Server::start(&nats, data.path()).await;
    let token = std::fs::read_to_string(data.path().join("bootstrap-token"))
        .expect("token file")
        .trim()
        .to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let fake = FakeProvider::start().await;
    let endpoint = fake.v1();
    let receipt = receipt(&http, &server.base, &token, &endpoint).await;

    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, token, next, acked) = (
            http.clone(),
            server.base.clone(),
            token.clone(),
            Arc::clone(&next),
            Arc::clone(&acked),
        );
        let (endpoint, receipt) = (endpoint.clone(), receipt.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= COMMANDS {
                    return;
                }
                match add(&http, &base, &token, &endpoint, &receipt, i).await {
                    Ok(StatusCode::CREATED) => acked.lock().expect("lock").push(i),
                    // Overloaded (503): not acknowledged; the retry below lands it.
                    Ok(StatusCode::SERVICE_UNAVAILABLE) => {}
                    Ok(other) => panic!("command {i} answered {other}"),
                    // The server died under us: stop this client.
                    Err(_) => return,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().expect("lock").len() < KILL_AFTER {
        assert!(Instant::now() < deadline, "the burst did not progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill9();
    for client in clients {
        client.await.expect("client task");
    }
    let acked: Vec<usize> = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= KILL_AFTER && acked.len() < COMMANDS,
        "killed mid-burst: {} acked",
        acked.len()
    );

    let server = Server::start(&nats, data.path()).await;
    let slugs = custom_slugs(&http, &server.base, &token).await;
    for i in &acked {
        assert!(
            slugs.contains(&format!("m-{i}")),
            "acknowledged command {i} is missing after the crash"
        );
    }
    assert_no_duplicates(&slugs);

    // Retrying every command with its key lands each exactly once.
    for i in 0..COMMANDS {
        let status = add(&http, &server.base, &token, &endpoint, &receipt, i)
            .await
            .expect("retry");
        assert_eq!(status, StatusCode::CREATED, "retry of {i}");
    }
    let slugs = custom_slugs(&http, &server.base, &token).await;
    assert_no_duplicates(&slugs);
    assert_eq!(slugs.len(), COMMANDS, "every command once: {slugs:?}");
}

async fn custom_slugs(http: &reqwest::Client, base: &str, token: &str) -> Vec<String> {
    let list: Value = http
        .get(format!("{base}/v1/models"))
        .bearer_auth(token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    list["custom"]
        .as_array()
        .expect("custom")
        .iter()
        .map(|m| m["slug"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Each display name `m N` must map to exactly one slug `m-N`; a duplicate would show as
/// `m-N-2`.
fn assert_no_duplicates(slugs: &[String]) {
    for slug in slugs {
        assert_eq!(slug.matches('-').count(), 1, "duplicate landing: {slug}");
    }
}

/// Kill -9 of the worker while its provider call is in flight: after a restart the test
/// completes, and its result is recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_leaves_the_test_to_be_redelivered_and_recorded_once() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().expect("dir");
    let mut server = Server::start(&nats, data.path()).await;
    let token = std::fs::read_to_string(data.path().join("bootstrap-token"))
        .expect("token")
        .trim()
        .to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let fake = FakeProvider::start().await;
    let body = json!({"provider": "openai_compatible", "provider_model_id": "slow", "endpoint_url": fake.v1()});
    let requested: Value = http
        .post(format!("{}/v1/connection-tests", server.base))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let id = requested["id"].as_str().expect("id").to_owned();

    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.seen() == 0 {
        assert!(
            Instant::now() < deadline,
            "the worker never called the provider"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill9_worker();
    server.worker = spawn_worker(&nats, data.path(), server.worker_metrics);

    let deadline = Instant::now() + Duration::from_secs(60);
    let test = loop {
        let test: Value = http
            .get(format!("{}/v1/connection-tests/{id}?wait=10", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if test["status"] == "completed" {
            break test;
        }
        assert!(
            Instant::now() < deadline,
            "the test never completed after the restart: {test}"
        );
    };
    assert_eq!(test["result"]["class"], "ok", "{test}");
    assert_eq!(test["version"], 2, "the result is recorded once: {test}");
    assert!(
        fake.seen() >= 2,
        "the redelivered job called the provider again"
    );
    // The worker process serves its own metrics: the job the restarted worker ran is there.
    // It counts the job after its result is appended (and acked), so the count can trail
    // the answer above by a moment: poll.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = http
            .get(format!(
                "http://127.0.0.1:{}/metrics",
                server.worker_metrics
            ))
            .send()
            .await
            .expect("worker metrics")
            .text()
            .await
            .expect("text");
        // (The worker also counts the test's result event, which it skips, as a job.)
        let ok_jobs: u64 = metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix(
                    "modelreg_worker_jobs_total{worker=\"connection-tests\",outcome=\"ok\"} ",
                )
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if ok_jobs >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = http
        .get(format!("http://127.0.0.1:{}/readyz", server.worker_metrics))
        .send()
        .await
        .expect("worker readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    // The worker's port is for operators: health, readiness and metrics, no API.
    for path in ["/v1/usage/summary", "/v1/models"] {
        let api = http
            .get(format!("http://127.0.0.1:{}{path}", server.worker_metrics))
            .send()
            .await
            .expect("worker port");
        assert_eq!(api.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let usage = http
        .post(format!(
            "http://127.0.0.1:{}/v1/usage",
            server.worker_metrics
        ))
        .body("{}")
        .send()
        .await
        .expect("worker port");
    assert_eq!(usage.status(), StatusCode::NOT_FOUND);
}
