//! Section 4: connection tests completed per second against a fake provider, against the
//! same calls made straight to it.

use std::time::Duration;

use anyhow::Context;

use super::{backends, nats_pid_of, pass};
use crate::Cli;
use crate::connection_tests;
use crate::nats::NatsServer;
use crate::registry::{Harness, Options};
use crate::report::{self, Section};

/// The target, as the issue states it.
const TARGET_TESTS_SECONDS: f64 = 3.0;

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
    let mut raw = None;
    let mut runs = Vec::new();
    for backend in backends(cli, nats, "TESTS") {
        let harness = Harness::start(&backend, &options).await?;
        if raw.is_none() {
            eprintln!("4/5 raw: {count} calls straight to the fake provider, {limit} in flight");
            raw = Some(
                connection_tests::raw_calls(&harness, count, limit)
                    .await
                    .context("raw calls to the fake provider")?,
            );
        }
        eprintln!(
            "4/5 {}: {count} draft tests from {} clients, worker limit {limit}",
            backend.name(),
            cli.clients
        );
        let run = connection_tests::registry_tests(
            &harness,
            limit as u64,
            count,
            cli.clients,
            nats_pid_of(&backend, nats),
        )
        .await
        .with_context(|| format!("connection tests on {}", backend.name()))?;
        harness.stop().await?;
        runs.push((backend, run));
    }
    let Some((raw, raw_seen)) = raw else {
        anyhow::bail!("no backend ran");
    };

    let mut section = Section::new(format!(
        "4. Connection tests/s, fake provider answering after {} ms, {} draft tests, \
         worker concurrency limit {limit}",
        latency.as_millis(),
        report::thousands(count as f64)
    ));
    section.row(
        &format!("raw reqwest -> fake provider, {limit} in flight (baseline)"),
        &raw,
        Some(1.0),
    );
    for (backend, run) in &runs {
        let name = backend.name();
        section.row(
            &format!(
                "{name}: submit POST /v1/connection-tests, {} clients",
                cli.clients
            ),
            &run.submit,
            None,
        );
        section.row(
            &format!("{name}: tests, first POST -> last result in views"),
            &run.completed,
            Some(run.completed.per_second() / raw.per_second()),
        );
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
        "provider saw: raw {} calls, max {} in flight, arrivals over {} ms",
        raw_seen.calls,
        raw_seen.max_in_flight,
        raw_seen.arrival_span.as_millis()
    ));
    for (backend, run) in &runs {
        let seen = &run.upstream;
        section.note(format!(
            "provider saw: {} {} calls, max {} in flight, arrivals over {} ms ({} calls/s \
             started by the worker)",
            backend.name(),
            seen.calls,
            seen.max_in_flight,
            seen.arrival_span.as_millis(),
            report::thousands(seen.calls as f64 / seen.arrival_span.as_secs_f64().max(1e-3))
        ));
    }
    for (backend, run) in &runs {
        let seconds = run.completed.elapsed.as_secs_f64();
        section.verdict(format!(
            "target: {} tests in < {TARGET_TESTS_SECONDS:.0} s with one worker: {} {seconds:.2} s \
             = {} tests/s = {:.2} x raw -> {}",
            report::thousands(count as f64),
            backend.name(),
            report::thousands(run.completed.per_second()),
            run.completed.per_second() / raw.per_second(),
            pass(seconds < TARGET_TESTS_SECONDS)
        ));
    }
    Ok(section)
}
