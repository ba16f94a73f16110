//! Connection tests per second against a slow fake provider: the raw floor (one reqwest
//! client calling the fake upstream directly, as many in flight as the worker's limit), then
//! draft tests submitted over HTTP and run by the registry's connection-test worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use domain::Event;
use domain::connection_test;
use eventlog::Envelope;
use futures::StreamExt;
use serde_json::json;

use crate::measure::{CpuClock, Measurement, closed_loop};
use crate::registry::{Harness, UpstreamSeen};

/// How long the whole run of tests may take before the bench gives up on it.
const DEADLINE: Duration = Duration::from_secs(60);

/// What one registry run measured.
pub(crate) struct TestsRun {
    /// The POSTs alone: each answered 202 with a test id.
    pub submit: Measurement,
    /// First POST sent to the last result visible in the views; latencies are per test,
    /// POST sent to its result event read back from the log.
    pub completed: Measurement,
    /// What the fake upstream saw during the run.
    pub upstream: UpstreamSeen,
}

/// The floor: `count` chat completions posted straight to the fake upstream by one reqwest
/// client, `concurrency` in flight (the same body as the probe: one short message, a tiny
/// budget). Every answer must be a 200 chat completion.
pub(crate) async fn raw_calls(
    harness: &Harness,
    count: u64,
    concurrency: usize,
) -> anyhow::Result<(Measurement, UpstreamSeen)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let url = Arc::new(format!("{}/chat/completions", harness.upstream.v1()));
    let body = Arc::new(json!({
        "model": "llama3",
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
    }));
    let call = move |_: u64| {
        let (http, url, body) = (http.clone(), Arc::clone(&url), Arc::clone(&body));
        async move {
            let response = http.post(url.as_str()).json(body.as_ref()).send().await?;
            let status = response.status();
            let answer: serde_json::Value = response.json().await?;
            ensure!(
                status == reqwest::StatusCode::OK && answer["choices"].is_array(),
                "the fake upstream answered {status}: {answer}"
            );
            Ok(())
        }
    };
    // One wave first, untimed, so the measured calls find their connections open, as the
    // worker's do after its own warm-up wave.
    closed_loop(concurrency, 0, concurrency as u64, None, call.clone()).await?;
    harness.upstream.reset();
    let measured = closed_loop(concurrency, 0, count, None, call).await?;
    Ok((measured, harness.upstream.seen()))
}

/// `count` draft tests posted by `clients` concurrent clients as fast as they are answered,
/// timed until every result is in the views, after an untimed wave of `warmup` tests (so the
/// worker's provider client has its connections open, as the raw client has). Every result
/// must be class `ok`.
pub(crate) async fn registry_tests(
    harness: &Harness,
    warmup: u64,
    count: u64,
    clients: usize,
    nats_pid: Option<u32>,
) -> anyhow::Result<TestsRun> {
    // One test first: it proves the route and the worker work, and opens the consumer.
    if harness.api.passing_test(None).await?.is_none() {
        bail!("this build has no POST /v1/connection-tests");
    }
    if warmup > 0 {
        run_tests(harness, warmup, clients, None).await?;
    }
    run_tests(harness, count, clients, nats_pid).await
}

async fn run_tests(
    harness: &Harness,
    count: u64,
    clients: usize,
    nats_pid: Option<u32>,
) -> anyhow::Result<TestsRun> {
    let registry = &harness.registry;
    harness.upstream.reset();
    // Results are watched on the log itself: the worker appends one completed event per
    // test, and a tail costs the registry nothing it does not do anyway.
    let from = registry.log().last_seq().await? + 1;
    let tail = registry.log().tail(from).await?;
    let expected = usize::try_from(count)?;
    let watcher = tokio::spawn(watch_results(tail, expected));

    let submitted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let clock = CpuClock::start(nats_pid);
    let started = Instant::now();
    let submit = {
        let api = harness.api.clone();
        let submitted = Arc::clone(&submitted);
        move |_: u64| {
            let (api, submitted) = (api.clone(), Arc::clone(&submitted));
            async move {
                let sent = Instant::now();
                let Some(id) = api.request_test(None).await? else {
                    bail!("POST /v1/connection-tests went away");
                };
                lock(&submitted)?.insert(id, sent);
                Ok(())
            }
        }
    };
    let submit = closed_loop(clients, 0, count, nats_pid, submit).await?;
    let results = tokio::time::timeout(DEADLINE, watcher)
        .await
        .with_context(|| format!("not every test completed within {} s", DEADLINE.as_secs()))?
        .context("the result watcher panicked")??;
    let last_seq = results.iter().map(|r| r.seq).max().unwrap_or(0);
    registry
        .views()
        .wait_for(last_seq, Duration::from_secs(30))
        .await
        .map_err(|e| anyhow::anyhow!("the views did not reach the last result: {e}"))?;
    let elapsed = started.elapsed();
    let cpu = clock.finish();
    let upstream = harness.upstream.seen();

    let submitted = lock(&submitted)?;
    let mut latencies = Vec::with_capacity(results.len());
    for result in &results {
        ensure!(
            result.class == "ok",
            "test {} completed with class {} ({}), not ok",
            result.id,
            result.class,
            result.hint
        );
        let Some(sent) = submitted.get(&result.id) else {
            bail!(
                "a result for test {} that the bench did not submit",
                result.id
            );
        };
        latencies.push(result.at.saturating_duration_since(*sent));
    }
    latencies.sort_unstable();
    // The views agree: every submitted test reads back completed and ok.
    for id in submitted.keys() {
        let row = registry
            .views()
            .connection_test(&harness.org, id)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let class = row.and_then(|row| row.test.result.map(|result| result.class));
        ensure!(
            class.as_deref() == Some("ok"),
            "test {id} reads back from the views as {class:?}, not ok"
        );
    }
    Ok(TestsRun {
        submit,
        completed: Measurement {
            ops: count,
            elapsed,
            cpu,
            latencies,
        },
        upstream,
    })
}

/// A result event read back from the log, and when it was read.
struct Completion {
    id: String,
    seq: u64,
    class: String,
    hint: String,
    at: Instant,
}

async fn watch_results(
    mut tail: futures::stream::BoxStream<'static, Result<eventlog::Stored, eventlog::LogError>>,
    expected: usize,
) -> anyhow::Result<Vec<Completion>> {
    let mut completions = Vec::with_capacity(expected);
    while completions.len() < expected {
        let Some(stored) = tail.next().await else {
            bail!("the log tail ended after {} results", completions.len());
        };
        let stored = stored?;
        let at = Instant::now();
        let envelope = Envelope::decode(&stored.data).map_err(|e| anyhow::anyhow!("{e}"))?;
        if envelope.kind != domain::event::kind::CONNECTION_TEST {
            continue;
        }
        let event = Event::decode(envelope.payload_version, &envelope.payload)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Event::ConnectionTest(connection_test::Event::Completed(result)) = event {
            completions.push(Completion {
                id: envelope.aggregate_id,
                seq: stored.seq,
                class: result.class,
                hint: result.hint,
                at,
            });
        }
    }
    Ok(completions)
}

fn lock<T>(mutex: &Mutex<T>) -> anyhow::Result<std::sync::MutexGuard<'_, T>> {
    mutex
        .lock()
        .map_err(|_| anyhow::anyhow!("a client task panicked holding the submitted tests"))
}
