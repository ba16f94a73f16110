//! Commands per second: raw JetStream publishes with the concurrency header, then the
//! registry's `POST /v1/models` over HTTP with read-your-writes, at the same concurrency.

use std::sync::Arc;
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
    /// No credential: parse, one point read for the slug, one append, wait for the views.
    Plain,
    /// An inline API key: the above plus sealing, a keyring write and a credential event.
    InlineCredential,
}

/// The registry in-process on the bench's NATS server, exactly as the end-to-end tests run
/// it, and `clients` HTTP clients adding models. Every answer must be 201.
pub async fn http_commands(
    nats_url: &str,
    nats_pid: u32,
    runs: &[(Body, Load)],
) -> anyhow::Result<Vec<Measurement>> {
    let data = tempfile::Builder::new()
        .prefix("modelreg-bench-registry-")
        .tempdir()?;
    let config = app::config::Config {
        data_dir: data.path().to_path_buf(),
        nats_url: Some(nats_url.to_owned()),
        master_key: Some(MASTER_KEY.to_owned()),
        bootstrap_default_org: false,
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
    let created = running
        .registry
        .create_org("Bench")
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the bench org: {e}"))?;
    let token = Arc::new(created.admin_token.expose_secret().to_owned());

    let max_clients = runs.iter().map(|(_, load)| load.clients).max().unwrap_or(1);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(max_clients)
        .build()?;
    let mut results = Vec::new();
    let mut next = 0;
    for (body, load) in runs {
        let add = {
            let http = http.clone();
            let url = format!("{base}/v1/models");
            let token = Arc::clone(&token);
            let body = *body;
            move |n: u64| add_model(http.clone(), url.clone(), Arc::clone(&token), body, n)
        };
        closed_loop(load.clients, next, load.warmup, None, add.clone()).await?;
        next += load.warmup;
        results.push(closed_loop(load.clients, next, load.count, Some(nats_pid), add).await?);
        next += load.count;
    }

    let _ = stop_server.send(());
    server.await.context("the HTTP server panicked")??;
    running.stop().await;
    Ok(results)
}

async fn add_model(
    http: reqwest::Client,
    url: String,
    token: Arc<String>,
    body: Body,
    n: u64,
) -> anyhow::Result<()> {
    let mut request = json!({
        "display_name": format!("m {n}"),
        "provider": "openai_compatible",
        "provider_model_id": "llama3",
        "endpoint_url": "https://llm.example.com/v1",
        "max_tokens": 1000,
    });
    if body == Body::InlineCredential {
        // A distinct key per command, so none is reused and each one is sealed and stored.
        request["credential"] = json!({ "api_key": format!("sk-bench-{n:012}") });
    }
    let response = http
        .post(url)
        .bearer_auth(token.as_str())
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
