//! Timing, CPU accounting and the closed-loop driver shared by every measurement.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

/// One measured run: how many operations, how long, and the CPU both processes spent.
#[derive(Clone, Debug)]
pub(crate) struct Measurement {
    pub ops: u64,
    pub elapsed: Duration,
    pub cpu: Cpu,
    /// Per-operation latencies, sorted, when the operations are individually timed.
    pub latencies: Vec<Duration>,
}

impl Measurement {
    pub(crate) fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(crate) fn percentile(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let index = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies.get(index).copied()
    }
}

/// CPU seconds used during a measurement by this process and by nats-server.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cpu {
    pub bench: f64,
    pub nats: f64,
}

/// Reads CPU time at the start of a measurement; `finish` gives the difference.
pub(crate) struct CpuClock {
    nats_pid: Option<u32>,
    bench_start: f64,
    nats_start: f64,
}

impl CpuClock {
    pub(crate) fn start(nats_pid: Option<u32>) -> Self {
        Self {
            nats_pid,
            bench_start: cpu_seconds("self"),
            nats_start: nats_pid.map_or(0.0, |pid| cpu_seconds(&pid.to_string())),
        }
    }

    pub(crate) fn finish(&self) -> Cpu {
        Cpu {
            bench: cpu_seconds("self") - self.bench_start,
            nats: self
                .nats_pid
                .map_or(0.0, |pid| cpu_seconds(&pid.to_string()) - self.nats_start),
        }
    }
}

/// User + system CPU seconds of a process, all threads, from `/proc/<pid>/stat`; 0 when
/// unreadable (the figure is then shown as 0, never guessed).
fn cpu_seconds(pid: &str) -> f64 {
    // Linux reports these in clock ticks; USER_HZ is 100 on every mainstream architecture.
    const TICKS_PER_SECOND: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name (field 2) may hold spaces; fields after its closing paren are plain.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the paren.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / TICKS_PER_SECOND
}

/// Runs operations `first..first + count` from `clients` concurrent tasks, each taking the
/// next number as soon as its previous operation returned (a closed loop, like clients
/// waiting for their answers), and times every operation.
pub(crate) async fn closed_loop<F, Fut>(
    clients: usize,
    first: u64,
    count: u64,
    nats_pid: Option<u32>,
    op: F,
) -> anyhow::Result<Measurement>
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(first));
    let end = first + count;
    let clock = CpuClock::start(nats_pid);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let next = Arc::clone(&next);
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= end {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let began = Instant::now();
                if let Err(error) = op(n).await {
                    // Stop the other clients: one failure fails the measurement.
                    next.store(end, Ordering::Relaxed);
                    return Err(error.context(format!("operation {n}")));
                }
                latencies.push(began.elapsed());
            }
        }));
    }
    gather(tasks, count, started, &clock).await
}

/// Waits for the measuring tasks and turns their latencies into a [`Measurement`] of `count`
/// operations that started at `started`.
pub(crate) async fn gather(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Vec<Duration>>>>,
    count: u64,
    started: Instant,
    clock: &CpuClock,
) -> anyhow::Result<Measurement> {
    let mut latencies = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for task in tasks {
        latencies.extend(task.await.context("a measuring task panicked")??);
    }
    let elapsed = started.elapsed();
    let cpu = clock.finish();
    latencies.sort_unstable();
    Ok(Measurement {
        ops: count,
        elapsed,
        cpu,
        latencies,
    })
}
