//! Commands per second: raw JetStream publishes with the concurrency header, then the
//! registry's `POST /v1/models` over HTTP with read-your-writes, at the same concurrency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;

use crate::http1::Connection;
use crate::measure::{Measurement, closed_loop};
use crate::registry::{Backend, Body, Harness, Options, api_key};

/// The raw baseline's stream: the registry stream's settings, its own name and subjects.
const RAW_STREAM: &str = "BENCH_RAW";

#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    pub clients: usize,
    pub warmup: u64,
    pub count: u64,
}

/// `clients` tasks each publishing and awaiting the ack, one subject per message with
/// `Nats-Expected-Last-Subject-Sequence: 0` and a unique `Nats-Msg-Id`, as the registry
/// appends a creation. The stream has the registry stream's settings and is deleted after;
/// its subjects (`raw.bench.raw.<n>`, as long as the registry's) lie outside the registry
/// stream's `reg.>`, which exists meanwhile: the rounds interleave with the registry's.
pub(crate) async fn raw_publishes(
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
            subjects: vec!["raw.bench.raw.>".to_owned()],
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
                    .publish_with_headers(format!("raw.bench.raw.{n}"), headers, payload)
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

/// What the HTTP bench measured.
pub(crate) struct HttpResults {
    /// One measurement per requested run, in order.
    pub runs: Vec<Measurement>,
    /// Whether adding a model needed a Test Connection receipt (the gate is on).
    pub gated: bool,
    /// The connection tests run (request + long poll) to get receipts for the inline-credential
    /// drafts, one per key; untimed setup for the measured adds, shown for information.
    pub receipts: Option<Measurement>,
    /// What the projector wrote during each measured run, in the order of `runs`.
    pub projector: Vec<views::ProjectorWrites>,
}

/// The registry in-process on the bench's NATS server, as the end-to-end tests run it
/// (plus the connection-test worker and a fake upstream, so Test Connection can pass), and
/// `clients` HTTP clients adding models. Every answer must be 201. `before(n)` runs before
/// the `n`th run (from 0) while the registry idles, so a baseline can take turns with it.
pub(crate) async fn http_commands<F>(
    nats_url: &str,
    nats_pid: u32,
    stream: &str,
    runs: &[(Body, Load)],
    mut before: impl FnMut(usize) -> F,
) -> anyhow::Result<HttpResults>
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let max_clients = runs.iter().map(|(_, load)| load.clients).max().unwrap_or(1);
    let backend = Backend::JetStream {
        url: nats_url.to_owned(),
        stream: stream.to_owned(),
        keyring: app::config::Config::default().keyring_bucket,
    };
    let harness = Harness::start(
        &backend,
        &Options {
            upstream_delay: Duration::ZERO,
            worker_concurrency: app::config::ProvidersConfig::default().concurrency,
            clients: max_clients,
            data_key_cache_ttl_ms: app::config::Config::default().data_key_cache_ttl_ms,
        },
    )
    .await?;
    let api = harness.api.clone();
    // One receipt serves every add of the same draft while it is fresh.
    let plain_receipt = api.passing_test(None).await?;
    let gated = plain_receipt.is_some();

    let mut results = HttpResults {
        runs: Vec::new(),
        gated,
        receipts: None,
        projector: Vec::new(),
    };
    let mut next = 0;
    for (index, (body, load)) in runs.iter().enumerate() {
        before(index).await?;
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
        // Raw keep-alive connections (as in section 5), one per client, taken from a pool
        // per request: the load generator's own HTTP work stays small beside the registry's.
        let mut opened = Vec::with_capacity(load.clients);
        for _ in 0..load.clients {
            opened.push(Connection::open(api.addr(), "/", None).await?);
        }
        let pool = Arc::new(Mutex::new(opened));
        let add = {
            let api = api.clone();
            let body = *body;
            move |n: u64| {
                let receipt = lock(&receipts).map(|all| all.get(&n).cloned());
                let request = receipt.map(|receipt| api.add_model_request(body, n, receipt));
                let pool = Arc::clone(&pool);
                async move {
                    let request = request?;
                    let Some(mut connection) = lock(&pool)?.pop() else {
                        bail!("more requests in flight than connections");
                    };
                    let (status, head, answer) = connection.call_with(&request).await?;
                    if status != 201 {
                        bail!(
                            "POST /v1/models answered {status}: {}",
                            String::from_utf8_lossy(answer)
                        );
                    }
                    ensure!(
                        head.to_ascii_lowercase()
                            .contains("\r\nx-modelreg-position:"),
                        "a 201 without X-Modelreg-Position"
                    );
                    lock(&pool)?.push(connection);
                    Ok(())
                }
            }
        };
        closed_loop(load.clients, next, load.warmup, None, add.clone()).await?;
        next += load.warmup;
        let written = harness.registry.views().projector_writes();
        results
            .runs
            .push(closed_loop(load.clients, next, load.count, Some(nats_pid), add).await?);
        results
            .projector
            .push(harness.registry.views().projector_writes().since(written));
        next += load.count;
    }

    harness.stop().await?;
    Ok(results)
}

fn lock<T>(mutex: &Mutex<T>) -> anyhow::Result<std::sync::MutexGuard<'_, T>> {
    mutex
        .lock()
        .map_err(|_| anyhow::anyhow!("a client task panicked holding a lock"))
}
