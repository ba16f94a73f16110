//! Section 4: connection tests completed per second against a fake provider, against the
//! same calls made straight to it.

use std::time::Duration;

use anyhow::Context;

use super::{backends, nats_pid_of};
use crate::Cli;
use crate::connection_tests::{self, TestsRun};
use crate::judge::{ROUNDS, Rounds};
use crate::nats::NatsServer;
use crate::registry::{Harness, Options};
use crate::report::{self, Section};

/// The target, as the issue states it: tests completed per second through the registry
/// against the same calls made straight to the provider, judged on the median of
/// interleaved rounds (the issue names the embedded log; JetStream is judged alike).
const TARGET_TESTS_RATIO: f64 = 0.70;

pub(crate) async fn connection_tests_section(
    cli: &Cli,
    nats: &NatsServer,
) -> anyhow::Result<Section> {
    let (count, limit) = (cli.tests, cli.test_concurrency.max(1));
    let latency = Duration::from_millis(cli.provider_latency_ms);
    let options = Options {
        upstream_delay: latency,
        worker_concurrency: limit,
        clients: cli.clients,
        data_key_cache_ttl_ms: app::config::Config::default().data_key_cache_ttl_ms,
    };
    let mut runs: Vec<(crate::registry::Backend, Rounds, Vec<TestsRun>)> = Vec::new();
    let mut raw_seen = None;
    for backend in backends(cli, nats, "TESTS") {
        let harness = Harness::start(&backend, &options).await?;
        let (mut rounds, mut registry_runs) = (Rounds::default(), Vec::new());
        for round in 1..=ROUNDS {
            eprintln!(
                "4/5 round {round}: raw, {count} calls straight to the fake provider ({limit} in \
                 flight), then {}: {count} draft tests from {} clients, worker limit {limit}",
                backend.name(),
                cli.clients
            );
            let (raw, seen) = connection_tests::raw_calls(&harness, count, limit)
                .await
                .context("raw calls to the fake provider")?;
            raw_seen.get_or_insert(seen);
            let run = connection_tests::registry_tests(
                &harness,
                limit as u64,
                count,
                cli.clients,
                nats_pid_of(&backend, nats),
            )
            .await
            .with_context(|| format!("connection tests on {}", backend.name()))?;
            rounds.push(raw, run.completed.clone());
            registry_runs.push(run);
        }
        harness.stop().await?;
        runs.push((backend, rounds, registry_runs));
    }
    let Some(raw_seen) = raw_seen else {
        anyhow::bail!("no backend ran");
    };

    let mut section = Section::new(format!(
        "4. Connection tests/s, fake provider answering after {} ms, {} draft tests, \
         worker concurrency limit {limit}; raw calls and tests take turns, {ROUNDS} rounds",
        latency.as_millis(),
        report::thousands(count as f64)
    ));
    for (backend, rounds, registry_runs) in &runs {
        let name = backend.name();
        for (round, ((raw, completed), run)) in rounds.pairs().iter().zip(registry_runs).enumerate()
        {
            let round = round + 1;
            section.row(
                &format!(
                    "round {round}: raw reqwest -> fake provider, {limit} in flight (baseline)"
                ),
                raw,
                Some(1.0),
            );
            section.row(
                &format!(
                    "round {round}: {name}: submit POST /v1/connection-tests, {} clients",
                    cli.clients
                ),
                &run.submit,
                None,
            );
            section.row(
                &format!("round {round}: {name}: tests, first POST -> last result in views"),
                completed,
                Some(completed.per_second() / raw.per_second()),
            );
        }
    }
    let waves = count.div_ceil(limit as u64);
    section.note(format!(
        "floor at limit {limit}: ceil({count}/{limit}) = {waves} waves x {} ms = {:.2} s; \
         p50/p99 of a test row: its POST sent -> its result event read back from the log; \
         each side warmed up with one untimed wave of {limit}",
        latency.as_millis(),
        waves as f64 * latency.as_secs_f64()
    ));
    section.note(format!(
        "provider saw: raw {} calls, max {} in flight, arrivals over {} ms (first round)",
        raw_seen.calls,
        raw_seen.max_in_flight,
        raw_seen.arrival_span.as_millis()
    ));
    for (backend, _, registry_runs) in &runs {
        let Some(seen) = registry_runs.last().map(|run| &run.upstream) else {
            continue;
        };
        section.note(format!(
            "provider saw: {} {} calls, max {} in flight, arrivals over {} ms ({} calls/s \
             started by the worker), last round",
            backend.name(),
            seen.calls,
            seen.max_in_flight,
            seen.arrival_span.as_millis(),
            report::thousands(seen.calls as f64 / seen.arrival_span.as_secs_f64().max(1e-3))
        ));
    }
    for (backend, rounds, _) in &runs {
        section.verdict(rounds.throughput().at_least(
            &format!("{} tests/s / raw calls/s", backend.name()),
            TARGET_TESTS_RATIO,
        ));
    }
    Ok(section)
}
