//! Section 1: commands per second over HTTP with read-your-writes, against raw JetStream
//! publishes with the concurrency header.

use anyhow::Context;

use super::pass;
use crate::Cli;
use crate::commands::Load;
use crate::nats::NatsServer;
use crate::registry::Body;
use crate::report::{self, Section};
use crate::{REGISTRY_STREAM, commands, rebuild};

/// The target, as the issue states it.
/// The throughput targets, as the issue states them.
const TARGET_COMMANDS_PER_SECOND: f64 = 10_000.0;

pub(crate) async fn commands_section(cli: &Cli, nats: &NatsServer) -> anyhow::Result<Section> {
    let clients = cli.clients;
    // The raw payload is a real model-added envelope, so both sides move the same bytes.
    let (_, _, payload) = rebuild::model_added(0)?;
    let payload_len = payload.len();
    eprintln!(
        "1/5 raw JetStream publishes: {clients} clients, {} + {} warm-up",
        cli.raw_publishes, cli.warmup
    );
    let raw = commands::raw_publishes(
        &nats.url(),
        nats.pid(),
        Load {
            clients,
            warmup: cli.warmup,
            count: cli.raw_publishes,
        },
        payload.into(),
    )
    .await
    .context("raw publishes")?;

    let mut runs = vec![(
        Body::Plain,
        Load {
            clients,
            warmup: cli.warmup,
            count: cli.commands,
        },
    )];
    if cli.credential_commands > 0 {
        runs.push((
            Body::InlineCredential,
            Load {
                clients,
                warmup: cli.warmup / 4,
                count: cli.credential_commands,
            },
        ));
    }
    eprintln!(
        "1/5 POST /v1/models over HTTP: {clients} clients, {} (+ {} with a credential)",
        cli.commands, cli.credential_commands
    );
    let http = commands::http_commands(&nats.url(), nats.pid(), REGISTRY_STREAM, &runs)
        .await
        .context("HTTP commands")?;
    // The registry is stopped and its stream deleted, so the rebuild starts from an empty log.

    let mut section = Section::new(format!(
        "1. Commands/s over HTTP, {clients} concurrent clients, read-your-writes \
         (payload {payload_len} B envelope)"
    ));
    section.row(
        "raw JetStream publish, expected-seq 0 + msg id (baseline)",
        &raw,
        Some(1.0),
    );
    let raw_rate = raw.per_second();
    let mut plain_rate = 0.0;
    if let Some(receipts) = &http.receipts {
        section.row(
            "setup: Test Connection per api_key (request + long poll)",
            receipts,
            None,
        );
    }
    for ((body, _), m) in runs.iter().zip(&http.runs) {
        let label = match body {
            Body::Plain => {
                plain_rate = m.per_second();
                "POST /v1/models, no credential (201 each)"
            }
            Body::InlineCredential => "POST /v1/models, inline api_key (seal + keyring + 2 events)",
        };
        section.row(label, m, Some(m.per_second() / raw_rate));
    }
    section.note(if http.gated {
        "gate on: each add carries a passing Test Connection receipt (worker + fake upstream \
         in-process)"
            .to_owned()
    } else {
        "this build has no Test Connection gate; adds carry no receipt".to_owned()
    });
    section.verdict(format!(
        "target: >= {} commands/s (no credential): {} commands/s = {:.2} x raw -> {}",
        report::thousands(TARGET_COMMANDS_PER_SECOND),
        report::thousands(plain_rate),
        plain_rate / raw_rate,
        pass(plain_rate >= TARGET_COMMANDS_PER_SECOND)
    ));
    Ok(section)
}
