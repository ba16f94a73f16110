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

use crate::support::NatsServer;
use crate::support::nats::free_port;
use crate::support::registry::MASTER_KEY;

const COMMANDS: usize = 300;
const CLIENTS: usize = 32;
/// Acknowledged commands after which the server is killed.
const KILL_AFTER: usize = 60;

/// The `modelreg` binary next to this test binary (`just test` builds it first).
pub fn modelreg_binary() -> PathBuf {
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
}

impl Server {
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
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn modelreg");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
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

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn add(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    i: usize,
) -> Result<StatusCode, reqwest::Error> {
    let body = json!({
        "display_name": format!("m {i}"),
        "provider": "openai_compatible",
        "provider_model_id": "llama3",
        "endpoint_url": "https://llm.example.com/v1",
        "max_tokens": 1000
    });
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
    let nats = NatsServer::start().await;
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
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= COMMANDS {
                    return;
                }
                match add(&http, &base, &token, i).await {
                    Ok(StatusCode::CREATED) => acked.lock().expect("lock").push(i),
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
        let status = add(&http, &server.base, &token, i).await.expect("retry");
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
