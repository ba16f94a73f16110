//! Rebuild events per second: a log filled with real registry events, read once by a raw
//! reader (the baseline) and once by `views::rebuild` into a fresh views file.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use async_nats::jetstream::{self, consumer};
use domain::Event;
use domain::connection_test::{
    ConnectionTest, Draft, Named, RECEIPT_TTL_MS, Receipt, TestCredential, TestResult,
};
use domain::model;
use domain::org;
use domain::provider::{Endpoint, Provider, ProviderModelId};
use domain::values::{Capabilities, Costs, DisplayName, HttpUrl, MaxTokens, OrgId, Slug};
use eventlog::{Actor, ActorKind, Envelope, EventLog, SCHEMA_VERSION, Subject};
use futures::StreamExt;

use crate::measure::{CpuClock, Measurement};

/// The org every generated event belongs to.
const ORG: &str = "bench";
/// Appends in flight while filling a log.
const IN_FLIGHT: usize = 1024;
/// Progress lines on stderr every this many events.
const PROGRESS_EVERY: u64 = 100_000;

/// Appends an org-created event and then `count` model-added events, one subject per model,
/// each with expected last sequence 0 and its own message id, as the registry appends them.
/// Returns the measurement of the fill (the log's last sequence is `count + 1`).
pub(crate) async fn populate(
    log: &Arc<dyn EventLog>,
    count: u64,
    label: &str,
    nats_pid: Option<u32>,
) -> anyhow::Result<Measurement> {
    let clock = CpuClock::start(nats_pid);
    let started = Instant::now();
    let (subject, msg_id, data) = org_created()?;
    log.append(&subject, 0, &msg_id, data).await?;
    let mut appends = futures::stream::iter(0..count)
        .map(|n| {
            let log = Arc::clone(log);
            async move {
                let (subject, msg_id, data) = model_added(n)?;
                let appended = log.append(&subject, 0, &msg_id, data).await?;
                ensure!(!appended.duplicate, "event {n} was taken for a duplicate");
                Ok(())
            }
        })
        .buffer_unordered(IN_FLIGHT);
    let mut done = 0u64;
    while let Some(result) = appends.next().await {
        result?;
        done += 1;
        if done.is_multiple_of(PROGRESS_EVERY) {
            eprintln!(
                "  {label}: appended {done} / {count} ({:.0}/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let last = log.last_seq().await?;
    ensure!(
        last == count + 1,
        "{label}: the log holds {last} events, expected {}",
        count + 1
    );
    Ok(Measurement {
        ops: count + 1,
        elapsed: started.elapsed(),
        cpu: clock.finish(),
        latencies: Vec::new(),
    })
}

/// The baseline on JetStream: an ordered consumer over the whole stream, delivering every
/// message and touching its payload (summing lengths), with nothing decoded or stored.
pub(crate) async fn raw_ordered_replay(
    nats_url: &str,
    stream_name: &str,
    total: u64,
    nats_pid: u32,
) -> anyhow::Result<(Measurement, u64)> {
    let client = async_nats::connect(nats_url).await?;
    let context = jetstream::new(client);
    let stream = context.get_stream(stream_name).await?;
    let clock = CpuClock::start(Some(nats_pid));
    let started = Instant::now();
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut bytes = 0u64;
    let mut read = 0u64;
    while read < total {
        let Some(message) = messages.next().await else {
            bail!("the ordered consumer ended after {read} of {total} messages");
        };
        bytes += message?.payload.len() as u64;
        read += 1;
    }
    let measured = Measurement {
        ops: total,
        elapsed: started.elapsed(),
        cpu: clock.finish(),
        latencies: Vec::new(),
    };
    Ok((measured, bytes))
}

/// The baseline on the embedded log: its own `tail`, every message, payload lengths summed.
pub(crate) async fn raw_tail(
    log: &Arc<dyn EventLog>,
    total: u64,
) -> anyhow::Result<(Measurement, u64)> {
    let clock = CpuClock::start(None);
    let started = Instant::now();
    let mut tail = log.tail(1).await?;
    let mut bytes = 0u64;
    let mut read = 0u64;
    while read < total {
        let Some(stored) = tail.next().await else {
            bail!("the tail ended after {read} of {total} messages");
        };
        bytes += stored?.data.len() as u64;
        read += 1;
    }
    let measured = Measurement {
        ops: total,
        elapsed: started.elapsed(),
        cpu: clock.finish(),
        latencies: Vec::new(),
    };
    Ok((measured, bytes))
}

/// `views::rebuild` of the whole log into a fresh file at `path`; returns its checksum.
pub(crate) async fn registry_rebuild(
    log: &Arc<dyn EventLog>,
    path: &Path,
    total: u64,
    label: &str,
    nats_pid: Option<u32>,
) -> anyhow::Result<(Measurement, String)> {
    let clock = CpuClock::start(nats_pid);
    let started = Instant::now();
    let printed = AtomicU64::new(0);
    let checksum = views::rebuild(Arc::clone(log), path, |done, total| {
        let step = done / PROGRESS_EVERY;
        if step > printed.load(Ordering::Relaxed) {
            printed.store(step, Ordering::Relaxed);
            eprintln!(
                "  {label}: rebuilt {done} / {total} ({:.0}/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("{label}: rebuild failed: {e}"))?;
    let measured = Measurement {
        ops: total,
        elapsed: started.elapsed(),
        cpu: clock.finish(),
        latencies: Vec::new(),
    };
    Ok((measured, checksum))
}

/// Checks that a rebuilt views file holds what was appended: the org and a sample of models.
pub(crate) fn check_rebuilt(path: &Path, count: u64) -> anyhow::Result<()> {
    let views = views::Views::open(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let checkpoint = views.checkpoint().map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        checkpoint == count + 1,
        "rebuilt checkpoint {checkpoint}, expected {}",
        count + 1
    );
    ensure!(
        views
            .org(ORG)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .is_some(),
        "the rebuilt views lack the org"
    );
    for n in [0, count / 2, count.saturating_sub(1)] {
        let slug = slug_of(n);
        let row = views
            .model(ORG, &slug)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ensure!(row.is_some(), "the rebuilt views lack model {slug}");
    }
    Ok(())
}

fn slug_of(n: u64) -> String {
    format!("m-{n}")
}

fn actor() -> Actor {
    Actor {
        kind: ActorKind::Token,
        id: "0123456789abcdef".into(),
        label: "bench admin".into(),
    }
}

fn now_ms() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// An envelope built the way `app`'s `Registry::append` builds one, with its subject and
/// message id.
pub(crate) fn envelope(
    kind: &str,
    aggregate_id: &str,
    event: &Event,
) -> anyhow::Result<(Subject, String, Vec<u8>)> {
    envelope_in(ORG, kind, aggregate_id, event)
}

/// [`envelope`] for an aggregate of `org`, the first event of its stream.
pub(crate) fn envelope_in(
    org: &str,
    kind: &str,
    aggregate_id: &str,
    event: &Event,
) -> anyhow::Result<(Subject, String, Vec<u8>)> {
    let subject = Subject::new(org, kind, aggregate_id)?;
    let command_id = uuid::Uuid::now_v7().simple().to_string();
    let envelope = Envelope {
        schema_version: SCHEMA_VERSION,
        event_id: *uuid::Uuid::now_v7().as_bytes(),
        org: org.to_owned(),
        kind: kind.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        aggregate_version: 1,
        recorded_at_ms: now_ms(),
        actor: actor(),
        request_id: uuid::Uuid::now_v7().simple().to_string(),
        command_id: command_id.clone(),
        prev_hash: [0; 32],
        payload: event.encode(),
        payload_version: domain::event::PAYLOAD_VERSION,
        client_addr: String::new(),
    };
    let msg_id = format!("{org}:{command_id}:{kind}");
    Ok((subject, msg_id, envelope.encode()))
}

fn org_created() -> anyhow::Result<(Subject, String, Vec<u8>)> {
    let events = org::decide(
        None,
        org::Command::Create {
            name: "Bench".into(),
        },
    )?;
    let Some(event) = events.into_iter().next() else {
        bail!("org creation decided nothing");
    };
    let event = Event::Org(event);
    envelope(event.kind(), ORG, &event)
}

/// The event `POST /v1/models` with display name `m <n>` records, decided by the domain.
pub(crate) fn model_added(n: u64) -> anyhow::Result<(Subject, String, Vec<u8>)> {
    model_added_in(ORG, n)
}

/// [`model_added`] in `org`.
pub(crate) fn model_added_in(org: &str, n: u64) -> anyhow::Result<(Subject, String, Vec<u8>)> {
    let display_name = DisplayName::parse(&format!("m {n}"))?;
    let slug = Slug::derive(&display_name);
    ensure!(slug.as_str() == slug_of(n), "unexpected slug {slug:?}");
    let provider = Provider::OpenaiCompatible;
    let provider_model_id = ProviderModelId::parse(provider, "llama3")?;
    let endpoint = Endpoint::Url(HttpUrl::parse(
        "endpoint_url",
        "https://llm.example.com/v1",
    )?);
    // The passing test the API would have required, of exactly this draft.
    let receipt = Receipt {
        named: Named::Test {
            test: Box::new(ConnectionTest {
                draft: Draft {
                    provider,
                    endpoint: Some(endpoint.clone()),
                    provider_model_id: provider_model_id.clone(),
                    credential: TestCredential::None,
                    fingerprint: None,
                },
                model: None,
                result: Some(TestResult {
                    class: "ok".into(),
                    hint: String::new(),
                    retry_after_ms: None,
                    upstream_status: Some(200),
                    upstream_message: None,
                    latency_ms: 1,
                    suggested_input_cost: None,
                    suggested_output_cost: None,
                }),
            }),
            completed_at_ms: Some(0),
        },
        now_ms: 0,
        ttl_ms: RECEIPT_TTL_MS,
    };
    let command = model::Command::Add(Box::new(model::Add {
        org: OrgId::parse(org)?,
        slug: slug.clone(),
        display_name,
        provider,
        provider_model_id,
        credential: model::CredentialChoice::None,
        endpoint: Some(endpoint),
        max_tokens: MaxTokens::parse(1000)?,
        capabilities: Capabilities::default(),
        costs: Costs::default(),
        receipt,
    }));
    let events = model::decide(None, command).context("the domain refused the model")?;
    let Some(event) = events.into_iter().next() else {
        bail!("adding a model decided nothing");
    };
    let event = Event::Model(event);
    envelope_in(org, event.kind(), slug.as_str(), &event)
}
