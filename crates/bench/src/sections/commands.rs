//! Section 1: commands per second over HTTP with read-your-writes, against raw JetStream
//! publishes with the concurrency header.

use std::sync::{Arc, Mutex};

use anyhow::Context;

use crate::Cli;
use crate::commands::Load;
use crate::judge::{ROUNDS, Rounds};
use crate::measure::Measurement;
use crate::nats::NatsServer;
use crate::registry::Body;
use crate::report::Section;
use crate::{REGISTRY_STREAM, commands, rebuild};

/// The target, as the issue states it: commands (no credential) against raw pipelined
/// publishes with the concurrency header, judged on the median of interleaved rounds.
const TARGET_COMMANDS_RATIO: f64 = 0.35;

pub(crate) async fn commands_section(cli: &Cli, nats: &NatsServer) -> anyhow::Result<Section> {
    let clients = cli.clients;
    // The raw payload is a real model-added envelope, so both sides move the same bytes.
    let (_, _, payload) = rebuild::model_added(0)?;
    let payload_len = payload.len();
    let rounds = ROUNDS as u64;
    let raw_load = Load {
        clients,
        warmup: cli.warmup,
        count: (cli.raw_publishes / rounds).max(1),
    };
    // The registry's plain adds take turns with the raw publishes; the adds with a
    // credential run once, last.
    let mut runs: Vec<(Body, Load)> = (0..ROUNDS)
        .map(|_| {
            (
                Body::Plain,
                Load {
                    clients,
                    warmup: cli.warmup,
                    count: (cli.commands / rounds).max(1),
                },
            )
        })
        .collect();
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
        "1/5 {ROUNDS} rounds of raw JetStream publishes ({} + {} warm-up) then POST /v1/models \
         over HTTP ({}), {clients} clients; then {} with a credential",
        raw_load.count, raw_load.warmup, runs[0].1.count, cli.credential_commands
    );
    let raws: Arc<Mutex<Vec<Measurement>>> = Arc::default();
    let before = |index: usize| {
        let raws = Arc::clone(&raws);
        let (url, pid, payload) = (nats.url(), nats.pid(), payload.clone());
        async move {
            if index >= ROUNDS {
                return Ok(());
            }
            let raw = commands::raw_publishes(&url, pid, raw_load, payload.into())
                .await
                .context("raw publishes")?;
            raws.lock()
                .map_err(|_| anyhow::anyhow!("a raw round panicked"))?
                .push(raw);
            Ok(())
        }
    };
    let http = commands::http_commands(&nats.url(), nats.pid(), REGISTRY_STREAM, &runs, before)
        .await
        .context("HTTP commands")?;
    // The registry is stopped and its stream deleted, so the rebuild starts from an empty log.
    let raws = raws
        .lock()
        .map_err(|_| anyhow::anyhow!("a raw round panicked"))?
        .clone();
    let mut judged = Rounds::default();
    for (raw, plain) in raws.iter().zip(&http.runs) {
        judged.push(raw.clone(), plain.clone());
    }

    let mut section = Section::new(format!(
        "1. Commands/s over HTTP, {clients} concurrent clients, read-your-writes \
         (payload {payload_len} B envelope); raw publishes and commands take turns, {ROUNDS} rounds"
    ));
    if let Some(receipts) = &http.receipts {
        section.row(
            "setup: Test Connection per api_key (request + long poll)",
            receipts,
            None,
        );
    }
    for (round, (raw, plain)) in judged.pairs().iter().enumerate() {
        let round = round + 1;
        section.row(
            &format!("round {round}: raw JetStream publish, expected-seq 0 + msg id (baseline)"),
            raw,
            Some(1.0),
        );
        section.row(
            &format!("round {round}: POST /v1/models, no credential (201 each)"),
            plain,
            Some(plain.per_second() / raw.per_second()),
        );
    }
    if let (Some(credential), Some((raw, _))) = (http.runs.get(ROUNDS), judged.pairs().last()) {
        section.row(
            "POST /v1/models, inline api_key (seal + keyring + 2 events)",
            credential,
            Some(credential.per_second() / raw.per_second()),
        );
    }
    for (round, (run, written)) in http.runs.iter().zip(&http.projector).enumerate() {
        section.note(projector_note(round + 1, run, *written));
    }
    section.note(if http.gated {
        "gate on: each add carries a passing Test Connection receipt (worker + fake upstream \
         in-process)"
            .to_owned()
    } else {
        "this build has no Test Connection gate; adds carry no receipt".to_owned()
    });
    section.verdict(judged.throughput().at_least(
        "commands/s (no credential) / raw publishes/s",
        TARGET_COMMANDS_RATIO,
    ));
    Ok(section)
}

/// Where a run's commands waited for the views: what the projector wrote while it ran (read
/// your writes answers a command once its batch is written), and how busy that kept it.
fn projector_note(run: usize, measured: &Measurement, written: views::ProjectorWrites) -> String {
    let label = if run <= ROUNDS {
        format!("round {run}")
    } else {
        "with a credential".to_owned()
    };
    if written.batches == 0 {
        return format!("{label}: the projector wrote nothing while it ran");
    }
    let batches = written.batches as f64;
    format!(
        "{label}: the projector wrote {} events in {} batches ({:.1} a batch, {:.2} ms each), \
         busy {:.0}% of the run",
        written.events,
        written.batches,
        written.events as f64 / batches,
        written.busy.as_secs_f64() * 1e3 / batches,
        100.0 * written.busy.as_secs_f64() / measured.elapsed.as_secs_f64().max(1e-9),
    )
}
