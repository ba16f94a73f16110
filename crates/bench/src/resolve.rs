//! Resolve throughput and latency: `GET /v1/resolve/{model}` with a service token over
//! keep-alive connections, against a raw axum handler answering the same bytes from a
//! `HashMap`; plus the credential opening (`Vault::open`) and, on JetStream, a raw KV get
//! alone, to show what the keyring costs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::Barrier;
use tokio::task::JoinHandle;

use crate::http1::Connection;
use crate::measure::{CpuClock, Measurement, closed_loop, gather};
use crate::registry::{Body, Harness, api_key};

/// Every this many answers, the body is parsed in full and its credential compared.
const SPOT_CHECK_EVERY: u64 = 1024;

/// A model with an inline key, one without, and a service token to resolve them.
pub(crate) struct Prepared {
    pub credential_model: String,
    pub plain_model: String,
    pub service_token: String,
    /// The plaintext key of `credential_model`, which its resolve answer must carry.
    pub key: String,
    /// One real resolve answer of each model, byte for byte.
    pub credential_answer: Bytes,
    pub plain_answer: Bytes,
}

/// Adds the two models (each with a passing Test Connection receipt when the gate is on),
/// issues a service token, and captures one resolve answer of each.
pub(crate) async fn prepare(harness: &Harness) -> anyhow::Result<Prepared> {
    let api = &harness.api;
    let key = api_key(0);
    let receipt = api.passing_test(Some(&key)).await?;
    api.add_model(Body::InlineCredential, 0, receipt).await?;
    let receipt = api.passing_test(None).await?;
    api.add_model(Body::Plain, 1, receipt).await?;
    let service_token = api.issue_token("runtime", "service").await?;
    let (credential_model, plain_model) = ("m-0".to_owned(), "m-1".to_owned());

    let mut answers = Vec::new();
    for model in [&credential_model, &plain_model] {
        let mut connection =
            Connection::open(harness.addr(), &resolve_path(model), Some(&service_token)).await?;
        let (status, body) = connection.call().await?;
        ensure!(
            status == 200,
            "GET /v1/resolve/{model} answered {status}: {}",
            String::from_utf8_lossy(body)
        );
        answers.push(Bytes::copy_from_slice(body));
    }
    let [credential_answer, plain_answer] = <[Bytes; 2]>::try_from(answers)
        .map_err(|_| anyhow::anyhow!("expected two resolve answers"))?;
    check_credential(&credential_answer, Some(&key))?;
    check_credential(&plain_answer, None)?;
    Ok(Prepared {
        credential_model,
        plain_model,
        service_token,
        key,
        credential_answer,
        plain_answer,
    })
}

impl Prepared {
    /// Resolving the model with the credential (`true`) or the one without, on `harness`.
    pub(crate) fn target(&self, harness: &Harness, with_credential: bool) -> Target {
        let (model, key) = match with_credential {
            true => (&self.credential_model, Some(self.key.clone())),
            false => (&self.plain_model, None),
        };
        Target {
            addr: harness.addr().to_owned(),
            path: resolve_path(model),
            token: Some(self.service_token.clone()),
            key,
            resolve: true,
        }
    }
}

pub(crate) fn resolve_path(model: &str) -> String {
    format!("/v1/resolve/{model}")
}

/// The resolve answer carries exactly this credential (or none).
fn check_credential(body: &[u8], key: Option<&str>) -> anyhow::Result<()> {
    let answer: serde_json::Value = serde_json::from_slice(body)?;
    match key {
        Some(key) => ensure!(
            answer["credential"]["kind"] == "api_key" && answer["credential"]["api_key"] == key,
            "the resolve answer does not carry the model's key"
        ),
        None => ensure!(
            answer["credential"].is_null(),
            "a model without a credential resolved with one"
        ),
    }
    Ok(())
}

/// What the load generator sends and checks.
#[derive(Clone)]
pub(crate) struct Target {
    /// `127.0.0.1:port`.
    pub addr: String,
    pub path: String,
    pub token: Option<String>,
    /// The key every answer must contain (searched in every body; parsed every
    /// [`SPOT_CHECK_EVERY`] answers), or `None` for a model without a credential.
    pub key: Option<String>,
    /// Whether answers are resolve answers (JSON, spot-checked) rather than plain text.
    pub resolve: bool,
}

/// `connections` keep-alive HTTP/1.1 connections, each sending the next GET as soon as the
/// previous answer is read (a closed loop): `warmup` requests untimed, then `count` timed.
/// Every answer must be 200 and carry the expected credential.
pub(crate) async fn drive(
    target: &Target,
    connections: usize,
    warmup: u64,
    count: u64,
    nats_pid: Option<u32>,
) -> anyhow::Result<Measurement> {
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        opened.push(Connection::open(&target.addr, &target.path, target.token.as_deref()).await?);
    }
    let warm = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    // Every connection finishes its warm-up, then the clock starts, then they go on.
    let barrier = Arc::new(Barrier::new(connections + 1));
    let key = Arc::new(target.key.clone());
    let spot_checks = target.resolve;
    let mut tasks: Vec<JoinHandle<anyhow::Result<Vec<std::time::Duration>>>> =
        Vec::with_capacity(connections);
    for mut connection in opened {
        let (warm, next, barrier, key) = (
            Arc::clone(&warm),
            Arc::clone(&next),
            Arc::clone(&barrier),
            Arc::clone(&key),
        );
        tasks.push(tokio::spawn(async move {
            let warmed = async {
                while warm.fetch_add(1, Ordering::Relaxed) < warmup {
                    let (status, body) = connection.call().await?;
                    check(status, body, key.as_deref(), false)?;
                }
                Ok::<_, anyhow::Error>(())
            }
            .await;
            if warmed.is_err() {
                // Keep the others from running the measurement for nothing.
                next.store(count, Ordering::Relaxed);
            }
            barrier.wait().await;
            warmed?;
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return Ok(latencies);
                }
                let began = Instant::now();
                let answer = connection.call().await.and_then(|(status, body)| {
                    check(
                        status,
                        body,
                        key.as_deref(),
                        spot_checks && n % SPOT_CHECK_EVERY == 0,
                    )
                });
                if let Err(error) = answer {
                    // Stop the other connections: one failure fails the measurement.
                    next.store(count, Ordering::Relaxed);
                    return Err(error.context(format!("request {n}")));
                }
                latencies.push(began.elapsed());
            }
        }));
    }
    barrier.wait().await;
    let clock = CpuClock::start(nats_pid);
    let started = Instant::now();
    gather(tasks, count, started, &clock).await
}

fn check(status: u16, body: &[u8], key: Option<&str>, parse: bool) -> anyhow::Result<()> {
    if status != 200 {
        bail!("answered {status}: {}", String::from_utf8_lossy(body));
    }
    if let Some(key) = key {
        ensure!(
            body.windows(key.len()).any(|w| w == key.as_bytes()),
            "a 200 without the model's key"
        );
    }
    if parse {
        check_credential(body, key)?;
    }
    Ok(())
}

/// The baseline: a minimal axum server answering `GET /v1/resolve/{model}` with the bytes
/// stored for that model, as `application/json`; 404 for any other. Stopped on drop.
pub(crate) struct RawServer {
    pub addr: String,
    task: JoinHandle<()>,
}

impl RawServer {
    pub(crate) async fn start(bodies: HashMap<String, Bytes>) -> anyhow::Result<Self> {
        let app = axum::Router::new()
            .route("/v1/resolve/{*model}", axum::routing::get(raw_resolve))
            .with_state(Arc::new(bodies));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, task })
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn raw_resolve(
    State(bodies): State<Arc<HashMap<String, Bytes>>>,
    Path(model): Path<String>,
) -> Response {
    match bodies.get(&model) {
        Some(body) => ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `Vault::open` of the model's current credential version alone (keyring get, unwrap of the
/// data key, AES-GCM open), from `tasks` concurrent tasks.
pub(crate) async fn vault_opens(
    harness: &Harness,
    model: &str,
    tasks: usize,
    count: u64,
    nats_pid: Option<u32>,
) -> anyhow::Result<Measurement> {
    let (credential_id, row) = credential_of(harness, model)?;
    let context = Arc::new((harness.org.clone(), credential_id, row));
    let registry = Arc::clone(&harness.registry);
    let open = move |_: u64| {
        let (registry, context) = (Arc::clone(&registry), Arc::clone(&context));
        async move {
            let (org, _credential_id, row) = context.as_ref();
            let org = domain::values::OrgId::parse(org)?;
            app::credentials::open(&registry, &org, row)
                .await
                .map_err(|e| anyhow::anyhow!("vault open failed: {e}"))?;
            Ok(())
        }
    };
    closed_loop(tasks, 0, count / 10, None, open.clone()).await?;
    closed_loop(tasks, 0, count, nats_pid, open).await
}

/// The application's share of a resolve, called in-process from `tasks` concurrent tasks:
/// the token check, `Registry::resolve` and the answer's JSON, with no HTTP around them.
pub(crate) async fn in_process(
    harness: &Harness,
    prepared: &Prepared,
    tasks: usize,
    count: u64,
    nats_pid: Option<u32>,
) -> anyhow::Result<Measurement> {
    let registry = Arc::clone(&harness.registry);
    let token = Arc::new(prepared.service_token.clone());
    let model = Arc::new(prepared.credential_model.clone());
    let resolve = move |_: u64| {
        let (registry, token, model) = (
            Arc::clone(&registry),
            Arc::clone(&token),
            Arc::clone(&model),
        );
        async move {
            let principal =
                app::orgs::authenticate(&registry, &token).map_err(|e| anyhow::anyhow!("{e}"))?;
            // As the HTTP extractor builds it for a GET.
            let ctx = app::Ctx::read(principal);
            let answer = app::resolve::resolve(&registry, &ctx, &model)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            // Serialized as the server serializes it (the position is spliced in there).
            let body = answer.value.to_json();
            ensure!(!body.is_empty(), "an empty resolve answer");
            Ok(())
        }
    };
    closed_loop(tasks, 0, count / 10, None, resolve.clone()).await?;
    closed_loop(tasks, 0, count, nats_pid, resolve).await
}

/// A raw JetStream KV get of the model's wrapped data key from the keyring bucket, with a
/// client of its own, from `tasks` concurrent tasks: the floor under a keyring read.
pub(crate) async fn raw_kv_gets(
    harness: &Harness,
    nats_url: &str,
    bucket: &str,
    model: &str,
    tasks: usize,
    count: u64,
    nats_pid: u32,
) -> anyhow::Result<Measurement> {
    let (credential_id, row) = credential_of(harness, model)?;
    let key_id = vault::SecretContext {
        org: &harness.org,
        credential_id: &credential_id,
        version: row.credential.version,
    }
    .key_id()
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let client = async_nats::connect(nats_url).await?;
    let store = async_nats::jetstream::new(client)
        .get_key_value(bucket)
        .await
        .with_context(|| format!("cannot open KV bucket {bucket}"))?;
    let key_id = Arc::new(key_id);
    let get = move |_: u64| {
        let (store, key_id) = (store.clone(), Arc::clone(&key_id));
        async move {
            let value = store.get(key_id.as_str()).await?;
            ensure!(value.is_some(), "the data key is missing from the keyring");
            Ok(())
        }
    };
    closed_loop(tasks, 0, count / 10, None, get.clone()).await?;
    closed_loop(tasks, 0, count, Some(nats_pid), get).await
}

fn credential_of(harness: &Harness, model: &str) -> anyhow::Result<(String, views::CredentialRow)> {
    let views = &harness.registry.views();
    let row = views
        .model(&harness.org, model)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_context(|| format!("no model {model}"))?;
    let Some(credential_id) = row.model.credential_id else {
        bail!("model {model} has no credential");
    };
    let credential = views
        .credential(&harness.org, credential_id.as_str())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_context(|| format!("no credential {}", credential_id.as_str()))?;
    Ok((credential_id.as_str().to_owned(), credential))
}
