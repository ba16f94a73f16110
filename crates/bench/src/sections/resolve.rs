//! Section 5: resolve throughput and latency at keep-alive connections, against a raw axum
//! handler answering the same bytes.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;

use super::{backends, nats_pid_of};
use crate::Cli;
use crate::judge::{ROUNDS, Rounds};
use crate::measure::Measurement;
use crate::nats::NatsServer;
use crate::registry::{Backend, Harness, Options};
use crate::report::Section;
use crate::resolve;

/// The targets, as the issue states them: throughput and p99 of a resolve with a credential
/// against the raw handler's, judged on the median of interleaved rounds.
const TARGET_RESOLVE_RATIO: f64 = 0.90;
const TARGET_RESOLVE_P99_RATIO: f64 = 1.3;

/// One backend's resolve figures.
struct ResolveRun {
    backend: Backend,
    /// The default configuration (the vault caches unwrapped data keys), round by round
    /// with the raw handler.
    rounds: Rounds,
    plain: Measurement,
    /// Token check + `Registry::resolve` + JSON, in-process, no HTTP.
    in_process: Measurement,
    /// `GET /healthz` through the registry's router: its middleware and routing alone.
    healthz: Measurement,
    /// The key cache off: every resolve reads the keyring.
    uncached: Measurement,
    /// `Vault::open` alone with the cache off.
    opens: Measurement,
    kv_gets: Option<Measurement>,
}

pub(crate) async fn resolve_section(cli: &Cli, nats: &NatsServer) -> anyhow::Result<Section> {
    let connections = cli.clients;
    let (warmup, count) = (cli.resolve_warmup, cli.resolves);
    // The keyring-only rows are smaller: they only show the cost per credential opening.
    let opens = (count / 5).max(1);
    let cache_ttl_ms = app::config::Config::default().data_key_cache_ttl_ms;
    let options = |data_key_cache_ttl_ms| Options {
        upstream_delay: Duration::ZERO,
        worker_concurrency: app::config::ProvidersConfig::default().concurrency,
        clients: 4,
        data_key_cache_ttl_ms,
    };
    let mut raw = None;
    let mut answer_len = 0;
    let mut runs = Vec::new();
    let per_round = (count / ROUNDS as u64).max(1);
    for backend in backends(cli, nats, "RESOLVE") {
        let name = backend.name();
        let nats_pid = nats_pid_of(&backend, nats);

        // The registry as configured by default.
        let harness = Harness::start(&backend, &options(cache_ttl_ms)).await?;
        let prepared = resolve::prepare(&harness)
            .await
            .with_context(|| format!("resolve setup on {name}"))?;
        if raw.is_none() {
            // The baseline answers the bytes of this registry's real answers.
            answer_len = prepared.credential_answer.len();
            let bodies = HashMap::from([
                (
                    prepared.credential_model.clone(),
                    prepared.credential_answer.clone(),
                ),
                (prepared.plain_model.clone(), prepared.plain_answer.clone()),
            ]);
            let server = resolve::RawServer::start(bodies).await?;
            let target = resolve::Target {
                addr: server.addr.clone(),
                path: resolve::resolve_path(&prepared.credential_model),
                token: None,
                key: Some(prepared.key.clone()),
                resolve: true,
            };
            raw = Some((server, target));
        }
        let Some((_, raw_target)) = &raw else {
            anyhow::bail!("the raw handler did not start");
        };
        // The raw handler and the registry take turns, ROUNDS times.
        let mut rounds = Rounds::default();
        for round in 1..=ROUNDS {
            eprintln!(
                "5/5 round {round}: raw axum HashMap handler, then {name} GET /v1/resolve: \
                 {connections} connections, {per_round} GETs each"
            );
            let baseline = resolve::drive(raw_target, connections, warmup, per_round, None).await?;
            let credential = resolve::drive(
                &prepared.target(&harness, true),
                connections,
                warmup,
                per_round,
                nats_pid,
            )
            .await
            .with_context(|| format!("resolve with a credential on {name}"))?;
            rounds.push(baseline, credential);
        }
        eprintln!("5/5 {name}: GET /v1/resolve without a credential, /healthz, in process");
        let plain = resolve::drive(
            &prepared.target(&harness, false),
            connections,
            warmup,
            count,
            nats_pid,
        )
        .await
        .with_context(|| format!("resolve without a credential on {name}"))?;
        let healthz = resolve::drive(
            &resolve::Target {
                addr: harness.addr().to_owned(),
                path: "/healthz".to_owned(),
                token: None,
                key: None,
                resolve: false,
            },
            connections,
            warmup,
            count,
            nats_pid,
        )
        .await
        .with_context(|| format!("GET /healthz on {name}"))?;
        let in_process = resolve::in_process(&harness, &prepared, connections, opens, nats_pid)
            .await
            .with_context(|| format!("in-process resolve on {name}"))?;
        harness.stop().await?;

        // The same with the key cache off: what the keyring costs on the hot path.
        let harness = Harness::start(&backend, &options(0)).await?;
        let prepared = resolve::prepare(&harness)
            .await
            .with_context(|| format!("resolve setup on {name}, key cache off"))?;
        eprintln!("5/5 {name}, key cache off: GET /v1/resolve, {count} GETs; keyring alone");
        let uncached = resolve::drive(
            &prepared.target(&harness, true),
            connections,
            warmup,
            count,
            nats_pid,
        )
        .await
        .with_context(|| format!("resolve with the key cache off on {name}"))?;
        let vault_opens = resolve::vault_opens(
            &harness,
            &prepared.credential_model,
            connections,
            opens,
            nats_pid,
        )
        .await?;
        let kv_gets = match &backend {
            Backend::JetStream { url, keyring, .. } => Some(
                resolve::raw_kv_gets(
                    &harness,
                    url,
                    keyring,
                    &prepared.credential_model,
                    connections,
                    opens,
                    nats.pid(),
                )
                .await?,
            ),
            Backend::Embedded => None,
        };
        harness.stop().await?;
        runs.push(ResolveRun {
            backend,
            rounds,
            plain,
            in_process,
            healthz,
            uncached,
            opens: vault_opens,
            kv_gets,
        });
    }
    if raw.is_none() {
        anyhow::bail!("no backend ran");
    }

    let mut section = Section::new(format!(
        "5. Resolve: GET /v1/resolve/<slug> with a service token, {connections} keep-alive \
         connections, closed loop ({answer_len} B answer); the raw handler and the registry \
         take turns, {ROUNDS} rounds"
    ));
    for run in &runs {
        let name = run.backend.name();
        for (round, (baseline, credential)) in run.rounds.pairs().iter().enumerate() {
            let round = round + 1;
            section.row(
                &format!("round {round}: raw axum handler, same bytes from a HashMap (baseline)"),
                baseline,
                Some(1.0),
            );
            section.row(
                &format!("round {round}: {name}: resolve, inline api_key (data key cached)"),
                credential,
                Some(credential.per_second() / baseline.per_second()),
            );
        }
        // The other rows ran once: against the median round's baseline.
        let raw_rate = median_baseline(&run.rounds);
        section.row(
            &format!("{name}: resolve, no credential (views only)"),
            &run.plain,
            Some(run.plain.per_second() / raw_rate),
        );
        section.row(
            &format!("{name}: GET /healthz (same router + middleware)"),
            &run.healthz,
            Some(run.healthz.per_second() / raw_rate),
        );
        section.row(
            &format!("{name}: no HTTP: token check + resolve + JSON"),
            &run.in_process,
            None,
        );
        section.row(
            &format!("{name}: resolve, inline api_key, key cache off"),
            &run.uncached,
            Some(run.uncached.per_second() / raw_rate),
        );
        let keyring = match run.backend {
            Backend::JetStream { .. } => "NATS KV",
            Backend::Embedded => "redb",
        };
        section.row(
            &format!("{name}: Vault::open alone, cache off ({keyring} keyring)"),
            &run.opens,
            None,
        );
        if let Some(kv) = &run.kv_gets {
            section.row(
                &format!("{name}: raw KV get of the data key (async-nats)"),
                kv,
                None,
            );
        }
    }
    section.note(format!(
        "load generator: one keep-alive HTTP/1.1 connection per task, in this process; every \
         answer checked for 200 and the key, one in 1,024 parsed in full; default key cache \
         TTL {} s; keyring rows: {connections} concurrent tasks",
        cache_ttl_ms / 1000
    ));
    for run in &runs {
        let name = run.backend.name();
        section.verdict(run.rounds.throughput().at_least(
            &format!("{name} resolve throughput / raw"),
            TARGET_RESOLVE_RATIO,
        ));
        section.verdict(run.rounds.p99().at_most(
            &format!("{name} resolve p99 / raw p99"),
            TARGET_RESOLVE_P99_RATIO,
        ));
    }
    Ok(section)
}

/// The median of the baseline rounds' throughputs, for the rows that ran once.
fn median_baseline(rounds: &Rounds) -> f64 {
    let mut rates: Vec<f64> = rounds
        .pairs()
        .iter()
        .map(|(baseline, _)| baseline.per_second())
        .collect();
    rates.sort_by(f64::total_cmp);
    rates
        .get(rates.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(1.0)
}
