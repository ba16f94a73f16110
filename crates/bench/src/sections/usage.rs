//! Section 8: usage ingestion. Batched `POST /v1/usage` (each record its own aggregate,
//! appended with the registry's concurrency and read-your-writes) against raw appends of
//! the same usage-recorded envelopes to the same kind of log, one subject per record with
//! the concurrency header, at as many appends in flight. Rounds take turns; the median
//! round's ratio of records per second is judged (target: at least 0.5 x raw).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::ensure;
use bytes::Bytes;
use domain::Event;
use domain::usage::{self, Record};
use domain::values::WorkflowId;
use eventlog::{EmbeddedLog, EventLog, Subject};
use futures::StreamExt;
use serde_json::json;

use crate::Cli;
use crate::commands::{self, Load};
use crate::judge::{ROUNDS, Rounds};
use crate::measure::{CpuClock, Measurement};
use crate::nats::NatsServer;
use crate::registry::{Backend, Body, Harness, Options};
use crate::report::{self, Section};
use crate::sections::{backends, nats_pid_of};

const TARGET_RATIO: f64 = 0.5;
/// Records per `POST /v1/usage` (the API's most).
const BATCH: usize = app::usage::MAX_BATCH;
/// Batches in flight at once; each has up to 64 appends in flight in the registry.
const BATCHES_IN_FLIGHT: usize = 4;
/// Appends in flight on the raw side: as many as the registry keeps.
const RAW_IN_FLIGHT: usize = BATCHES_IN_FLIGHT * 64;

pub(crate) async fn usage_section(cli: &Cli, nats: &NatsServer) -> anyhow::Result<Section> {
    let per_round = (cli.usage_records / ROUNDS as u64).max(BATCH as u64);
    let mut section = Section::new(format!(
        "8. Usage ingestion: POST /v1/usage in batches of {BATCH}, {BATCHES_IN_FLIGHT} batches in flight, against raw appends ({RAW_IN_FLIGHT} in flight)"
    ));
    let payload = Bytes::from(usage_recorded(0)?.2);
    let mut verdicts = Vec::new();
    for backend in backends(cli, nats, "USAGE") {
        let nats_pid = nats_pid_of(&backend, nats);
        let options = Options {
            upstream_delay: std::time::Duration::ZERO,
            worker_concurrency: 4,
            clients: BATCHES_IN_FLIGHT,
            data_key_cache_ttl_ms: 60_000,
        };
        let harness = Harness::start(&backend, &options).await?;
        let receipt = harness.api.passing_test(None).await?;
        harness.api.add_model(Body::Plain, 0, receipt).await?;
        let raw_dir = tempfile::Builder::new()
            .prefix("modelreg-bench-usage-raw-")
            .tempdir()?;
        let raw_log: Option<Arc<dyn EventLog>> = match backend {
            Backend::Embedded => Some(Arc::new(
                EmbeddedLog::open(&raw_dir.path().join("log.redb"))
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            )),
            Backend::JetStream { .. } => None,
        };
        eprintln!(
            "8/8 usage ({}): {ROUNDS} rounds of {per_round} raw appends, then as many records over HTTP",
            backend.name()
        );
        let mut rounds = Rounds::default();
        let next_record = AtomicU64::new(0);
        for round in 0..ROUNDS as u64 {
            let baseline = match &raw_log {
                Some(log) => raw_appends(log, round * per_round, per_round).await?,
                None => {
                    let load = Load {
                        clients: RAW_IN_FLIGHT,
                        warmup: 0,
                        count: per_round,
                    };
                    commands::raw_publishes(&nats.url(), nats.pid(), load, payload.clone()).await?
                }
            };
            let measured = http_usage(&harness, nats_pid, &next_record, per_round).await?;
            rounds.push(baseline, measured);
        }
        harness.stop().await?;
        let raw_label = match backend {
            Backend::Embedded => "raw EmbeddedLog::append",
            Backend::JetStream { .. } => "raw JetStream publishes",
        };
        for (round, (baseline, measured)) in rounds.pairs().iter().enumerate() {
            section.row(
                &format!(
                    "{} round {}: {raw_label} (baseline)",
                    backend.name(),
                    round + 1
                ),
                baseline,
                Some(1.0),
            );
            section.row(
                &format!(
                    "{} round {}: POST /v1/usage, records",
                    backend.name(),
                    round + 1
                ),
                measured,
                Some(measured.per_second() / baseline.per_second().max(1e-9)),
            );
        }
        verdicts.push(rounds.throughput().at_least(
            &format!("{} usage records/s / raw appends/s", backend.name()),
            TARGET_RATIO,
        ));
    }
    for verdict in verdicts {
        section.verdict(verdict);
    }
    section.note(format!(
        "each record is one event on its own subject (decision 19); a batch answers once its records are in the views; {} records per round",
        report::thousands(per_round as f64)
    ));
    Ok(section)
}

/// `count` records over HTTP in batches, `BATCHES_IN_FLIGHT` at once; every answer must be
/// 200 with every record recorded. Record ids continue from `next`, so no round repeats one.
async fn http_usage(
    harness: &Harness,
    nats_pid: Option<u32>,
    next: &AtomicU64,
    count: u64,
) -> anyhow::Result<Measurement> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(BATCHES_IN_FLIGHT)
        .build()?;
    let url = format!("http://{}/v1/usage", harness.addr());
    let first = next.fetch_add(count, Ordering::Relaxed);
    let batches: Vec<(u64, u64)> = (0..count)
        .step_by(BATCH)
        .map(|start| (first + start, (count - start).min(BATCH as u64)))
        .collect();
    let bodies: Vec<String> = batches
        .iter()
        .map(|&(from, n)| batch_json(from, n).to_string())
        .collect();
    let clock = CpuClock::start(nats_pid);
    let started = Instant::now();
    let mut sends = futures::stream::iter(bodies.into_iter().zip(batches))
        .map(|(body, (_, n))| {
            let http = http.clone();
            let url = url.clone();
            let token = harness.api.token().to_owned();
            async move {
                let at = Instant::now();
                let response = http
                    .post(url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                let status = response.status();
                let receipt: serde_json::Value = response.json().await?;
                ensure!(status.is_success(), "POST /v1/usage answered {status}");
                ensure!(
                    receipt["recorded"].as_u64() == Some(n),
                    "a batch of {n} recorded {}",
                    receipt["recorded"]
                );
                Ok::<_, anyhow::Error>(at.elapsed())
            }
        })
        .buffer_unordered(BATCHES_IN_FLIGHT);
    let mut latencies = Vec::new();
    while let Some(latency) = sends.next().await {
        latencies.push(latency?);
    }
    latencies.sort_unstable();
    Ok(Measurement {
        ops: count,
        elapsed: started.elapsed(),
        cpu: clock.finish(),
        latencies,
    })
}

/// A batch of `n` records with ids from `from`, of the model the harness added (`m-0`),
/// one in ten cut by its output limit.
fn batch_json(from: u64, n: u64) -> serde_json::Value {
    let records: Vec<serde_json::Value> = (from..from + n)
        .map(|id| {
            let mut record = json!({
                "id": format!("bench-{id}"),
                "model": "m-0",
                "workflow": format!("wf-{}", id % 50),
                "input_tokens": 1200,
                "output_tokens": 350,
                "finish_reason": "stop",
                "round": 1,
                "called_at": "2026-12-01T10:00:00Z",
            });
            if id % 10 == 0 {
                record["finish_reason"] = json!("length");
                record["truncated_tool_calls"] = json!(["write_file"]);
            }
            record
        })
        .collect();
    json!({ "records": records })
}

/// `count` appends of usage-recorded envelopes with ids from `first`, `RAW_IN_FLIGHT` at
/// once, each to its own subject with expected last sequence 0, as the registry appends them.
async fn raw_appends(
    log: &Arc<dyn EventLog>,
    first: u64,
    count: u64,
) -> anyhow::Result<Measurement> {
    let envelopes: Vec<(Subject, String, Vec<u8>)> = (first..first + count)
        .map(usage_recorded)
        .collect::<anyhow::Result<_>>()?;
    let clock = CpuClock::start(None);
    let started = Instant::now();
    let mut appends = futures::stream::iter(envelopes)
        .map(|(subject, msg_id, data)| {
            let log = Arc::clone(log);
            async move {
                let appended = log.append(&subject, 0, &msg_id, data).await?;
                ensure!(
                    !appended.duplicate,
                    "a raw append was taken for a duplicate"
                );
                Ok(())
            }
        })
        .buffer_unordered(RAW_IN_FLIGHT);
    while let Some(result) = appends.next().await {
        result?;
    }
    Ok(Measurement {
        ops: count,
        elapsed: started.elapsed(),
        cpu: clock.finish(),
        latencies: Vec::new(),
    })
}

/// The event `POST /v1/usage` records for record `n`, decided by the domain, in its envelope.
fn usage_recorded(n: u64) -> anyhow::Result<(Subject, String, Vec<u8>)> {
    let record = Record {
        model: "m-0".into(),
        workflow: WorkflowId::parse(&format!("wf-{}", n % 50))?,
        input_tokens: 1200,
        output_tokens: 350,
        finish_reason: Some("stop".into()),
        truncated_tool_calls: Vec::new(),
        round: Some(1),
        called_at_ms: 1_764_583_200_000,
    };
    let events = usage::decide(
        None,
        usage::Command::Record {
            record,
            model_known: true,
        },
    )
    .map_err(|rejection| anyhow::anyhow!("the domain refused the record: {rejection:?}"))?;
    let Some(event) = events.into_iter().next() else {
        anyhow::bail!("recording usage decided nothing");
    };
    let event = Event::Usage(event);
    crate::rebuild::envelope(event.kind(), &format!("bench-raw-{n}"), &event)
}
