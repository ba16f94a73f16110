//! Section 9: the runtime crate's cached resolve (`modelreg_runtime::Client::resolve`), in
//! nanoseconds per call over `RUNTIME_MODELS` models, while the client follows the
//! registry's position (`GET /v1/position`) and a writer adds a model every
//! `WRITE_EVERY`, each write retiring every cached answer. The baseline is the cache's
//! floor, in the same run: a read-locked `HashMap` lookup and an `Arc` clone of the same
//! answers. Target: at most 2x the floor (median of interleaved rounds).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use modelreg_runtime::Client;

use crate::Cli;
use crate::judge::{ROUNDS, Rounds};
use crate::measure::{CpuClock, Measurement};
use crate::registry::{Backend, Body, Harness, Options};
use crate::report::{self, Section};

const TARGET_RATIO: f64 = 2.0;
/// Models the worker resolves in turn.
const RUNTIME_MODELS: u64 = 100;
/// How often the writer adds a model while the client resolves.
const WRITE_EVERY: Duration = Duration::from_millis(500);

pub(crate) async fn runtime_section(cli: &Cli) -> anyhow::Result<Section> {
    let options = Options {
        upstream_delay: Duration::ZERO,
        worker_concurrency: 4,
        clients: 4,
        data_key_cache_ttl_ms: 60_000,
    };
    let harness = Harness::start(&Backend::Embedded, &options).await?;
    let receipt = harness.api.passing_test(None).await?;
    for n in 0..RUNTIME_MODELS {
        harness
            .api
            .add_model(Body::Plain, n, receipt.clone())
            .await?;
    }
    let token = harness.api.issue_token("bench runtime", "service").await?;
    let client = Client::new(&format!("http://{}", harness.addr()), token)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let slugs: Vec<String> = (0..RUNTIME_MODELS).map(|n| format!("m-{n}")).collect();
    // The floor: the same answers in a plain read-locked map.
    let mut floor = HashMap::new();
    for slug in &slugs {
        let resolved = client
            .resolve(slug)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        floor.insert(slug.clone(), resolved);
    }
    let floor = RwLock::new(floor);

    let (stop_follow, follow_stopped) = tokio::sync::oneshot::channel::<()>();
    let follower = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .follow(async move {
                    let _ = follow_stopped.await;
                })
                .await;
        }
    });
    let (stop_writer, mut writer_stopped) = tokio::sync::oneshot::channel::<()>();
    let writes = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn({
        let api = harness.api.clone();
        let writes = Arc::clone(&writes);
        async move {
            let mut n = RUNTIME_MODELS;
            let mut every = tokio::time::interval(WRITE_EVERY);
            loop {
                tokio::select! {
                    _ = &mut writer_stopped => return Ok::<_, anyhow::Error>(()),
                    _ = every.tick() => {}
                }
                api.add_model(Body::Plain, n, receipt.clone()).await?;
                writes.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }
    });

    let calls = cli.runtime_resolves;
    eprintln!(
        "9/9 runtime: {ROUNDS} rounds of {calls} map lookups, then as many cached resolves, a write every {} ms",
        WRITE_EVERY.as_millis()
    );
    let mut rounds = Rounds::default();
    let head_before = client.head();
    for _ in 0..ROUNDS {
        let baseline = timed(calls, |n| {
            let slug = &slugs[(n % RUNTIME_MODELS) as usize];
            let map = floor.read().map_err(|_| anyhow::anyhow!("poisoned"))?;
            black_box(map.get(slug).map(Arc::clone));
            Ok(())
        })?;
        let clock = CpuClock::start(None);
        let started = Instant::now();
        for n in 0..calls {
            let slug = &slugs[(n % RUNTIME_MODELS) as usize];
            black_box(
                client
                    .resolve(slug)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
        }
        let measured = Measurement {
            ops: calls,
            elapsed: started.elapsed(),
            cpu: clock.finish(),
            latencies: Vec::new(),
        };
        rounds.push(baseline, measured);
    }
    let _ = stop_writer.send(());
    writer.await??;
    let _ = stop_follow.send(());
    follower.await?;
    let moved = client.head().saturating_sub(head_before);
    let written = writes.load(Ordering::Relaxed);
    harness.stop().await?;
    anyhow::ensure!(
        written > 0 && moved > 0,
        "the writer wrote {written} times and the client's head moved by {moved}: the cache was never retired"
    );

    let mut section = Section::new(format!(
        "9. Runtime: modelreg_runtime::Client::resolve, cached, over {RUNTIME_MODELS} models while the registry takes a write every {} ms (embedded log)",
        WRITE_EVERY.as_millis()
    ));
    let nanos = |m: &Measurement| m.elapsed.as_secs_f64() * 1e9 / m.ops.max(1) as f64;
    for (round, (baseline, measured)) in rounds.pairs().iter().enumerate() {
        section.row(
            &format!(
                "round {}: read-locked map lookup, {:.0} ns/call (baseline)",
                round + 1,
                nanos(baseline)
            ),
            baseline,
            Some(1.0),
        );
        section.row(
            &format!(
                "round {}: Client::resolve, {:.0} ns/call",
                round + 1,
                nanos(measured)
            ),
            measured,
            Some(nanos(measured) / nanos(baseline).max(1e-9)),
        );
    }
    section.verdict(
        rounds
            .time_per_op()
            .at_most("ns per cached resolve / ns per map lookup", TARGET_RATIO),
    );
    section.note(format!(
        "{written} writes moved the client's head by {moved} during {} calls; each write retires every cached answer, so the next call of each model goes to the registry",
        report::thousands((calls * ROUNDS as u64) as f64)
    ));
    Ok(section)
}

/// `calls` synchronous operations, timed as a whole.
fn timed(calls: u64, op: impl Fn(u64) -> anyhow::Result<()>) -> anyhow::Result<Measurement> {
    let clock = CpuClock::start(None);
    let started = Instant::now();
    for n in 0..calls {
        op(n)?;
    }
    Ok(Measurement {
        ops: calls,
        elapsed: started.elapsed(),
        cpu: clock.finish(),
        latencies: Vec::new(),
    })
}
