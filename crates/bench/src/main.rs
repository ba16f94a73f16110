//! `bench`: the registry's throughput, each target a ratio to a raw baseline measured in the
//! same run on the bench's own `nats-server` (and the embedded log). Baseline and measured
//! rounds take turns, three times, and the median round's ratio is judged PASS or MISS
//! (`judge.rs`): a slow phase of a shared machine slows both sides of a round alike.
//!
//! 1. Commands per second over HTTP at 64 clients with read-your-writes, against raw
//!    pipelined JetStream publishes with the concurrency header (target: >= 0.35 x raw).
//! 2. Rebuild events per second over 1,000,000 events, against a raw ordered-consumer replay
//!    (target: >= 0.5 x raw).
//! 3. The same rebuild on the embedded log, against a raw tail (target: >= 0.35 x raw).
//! 4. Connection tests completed per second against a fake provider with 200 ms latency,
//!    against the same calls made straight to it at the worker's concurrency limit (target:
//!    >= 0.70 x raw).
//! 5. Resolve throughput and p99 latency at 64 keep-alive connections, against a raw axum
//!    handler answering the same bytes from a `HashMap` (targets: >= 0.90 x its throughput,
//!    p99 <= 1.3 x its p99).
//! 7. The audit trail over the same number of events on the embedded log: the first page of
//!    one aggregate's history against a point read (target: p99 under 10 ms), and an as-of
//!    replay against a plain rebuild (target: at least 80% of its rate).
//!
//! 6. The console's Models page, its first page with 10,000 custom models in the org,
//!    against `GET /v1/models` of the same page (target: p99 <= 1.5 x its p99).
//! 8. Usage ingestion: records per second over `POST /v1/usage` in batches, against raw
//!    appends of the same events to the same kind of log (target: >= 0.5 x raw).
//! 9. The runtime crate's cached resolve, in ns per call while the registry takes writes,
//!    against a read-locked map lookup of the same answers (target: <= 2 x its time).
//! 10. Scale: 10%, 50% and 100% of 1,000 orgs x 100 custom models and 1,000,000 workflow
//!     references on the embedded log, `modelreg serve` as its own process: its RSS (target:
//!     under 300 MB, and bounded as the log grows), resolve and first-page p99 against its
//!     `/healthz` p99, and the rebuild time, each with its growth from 10% to 100%.
//!
//! It is a report tool: the table goes to stdout, progress to stderr.

mod commands;
mod connection_tests;
mod http1;
mod judge;
mod measure;
mod nats;
mod rebuild;
mod registry;
mod report;
mod resolve;
mod sections;

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;

use crate::report::Report;
use crate::sections::{
    audit_section, commands_section, connection_tests_section, console_section,
    embedded_rebuild_section, jetstream_rebuild_section, resolve_section, runtime_section,
    scale_section, usage_section,
};

/// The registry's stream, as `app::config::Config::default()` names it.
pub(crate) const REGISTRY_STREAM: &str = "REGISTRY";

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Registry throughput as ratios to raw baselines"
)]
struct Cli {
    /// Concurrent clients for the raw publishes and the HTTP commands.
    #[arg(long, default_value_t = 64)]
    pub(crate) clients: usize,
    /// Raw JetStream publishes measured (after the warm-up).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) raw_publishes: u64,
    /// HTTP commands measured (after the warm-up).
    #[arg(long, default_value_t = 20_000)]
    pub(crate) commands: u64,
    /// HTTP commands with an inline credential measured; 0 skips the variant.
    #[arg(long, default_value_t = 5_000)]
    pub(crate) credential_commands: u64,
    /// Operations run before each measurement and not counted.
    #[arg(long, default_value_t = 2_000)]
    pub(crate) warmup: u64,
    /// Model events in the log for the rebuild measurements.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) events: u64,
    /// Skip every measurement on the embedded log: section 3, and the embedded rows of
    /// sections 4 and 5.
    #[arg(long)]
    pub(crate) no_embedded: bool,
    /// Sections to run, e.g. `--sections 4,5` (1 commands, 2 and 3 rebuilds, 4 connection
    /// tests, 5 resolve, 7 audit trail and as-of replay, 6 the console's Models page, 8 usage
    /// ingestion, 9 the runtime crate's cached resolve, 10 scale).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,5,7,6,8,9,10")]
    pub(crate) sections: Vec<u8>,
    /// Draft connection tests submitted in section 4.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) tests: u64,
    /// The fake provider's latency in section 4, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub(crate) provider_latency_ms: u64,
    /// The connection-test worker's limit (`providers.concurrency`); the raw baseline keeps
    /// as many calls in flight.
    #[arg(long, default_value_t = app::config::ProvidersConfig::default().concurrency)]
    pub(crate) test_concurrency: usize,
    /// Resolves measured per row in section 5 (after the warm-up), on `--clients` connections.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) resolves: u64,
    /// Resolves sent before each resolve measurement and not counted.
    #[arg(long, default_value_t = 5_000)]
    pub(crate) resolve_warmup: u64,
    /// Custom models in the org for section 6 (the console's Models page).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) console_models: u64,
    /// Usage records sent over HTTP in section 8, across its rounds (as many raw appends).
    #[arg(long, default_value_t = 60_000)]
    pub(crate) usage_records: u64,
    /// Cached resolves per round in section 9 (as many map lookups).
    #[arg(long, default_value_t = 20_000_000)]
    pub(crate) runtime_resolves: u64,
    /// Orgs at the full size of section 10 (100 custom models and 100 workflows of 10 steps
    /// each); it measures 10%, 50% and 100% of them.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) scale_orgs: u64,
    /// Section 10 restarts the server at each size this long after the last append (the
    /// embedded log's idempotency window is 120 s) and reads its RSS again; 0 skips it.
    #[arg(long, default_value_t = 125)]
    pub(crate) scale_settle_secs: u64,
}

/// mimalloc instead of the system allocator: glibc's arena locks showed up as the largest
/// single cost under concurrent load (allocation and futex waits on the resolve path).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // On Ctrl-C the run is dropped, and with it the nats-server child and every temp dir.
    tokio::select! {
        result = run(cli) => result,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let wall = Instant::now();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let nats_version = std::process::Command::new("nats-server")
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .context("nats-server must be on PATH (Debian package nats-server)")?;
    let mut report = Report::new(format!(
        "modelreg bench: {cores} cores, {nats_version}, tokio multi-thread ({cores} workers), {} build",
        if cfg!(debug_assertions) {
            "DEBUG (numbers meaningless; use --release)"
        } else {
            "release"
        }
    ));

    let nats = nats::start().await?;
    eprintln!(
        "nats-server pid {} at {} (store {})",
        nats.pid(),
        nats.url(),
        nats.store_dir().display()
    );

    let runs = |section: u8| cli.sections.contains(&section);
    if runs(1) {
        report.push(commands_section(&cli, &nats).await?);
    }
    if runs(2) {
        report.push(jetstream_rebuild_section(&cli, &nats).await?);
    }
    if runs(3) && !cli.no_embedded {
        report.push(embedded_rebuild_section(&cli).await?);
    }
    if runs(4) {
        report.push(connection_tests_section(&cli, &nats).await?);
    }
    if runs(5) {
        report.push(resolve_section(&cli, &nats).await?);
    }
    if runs(7) && !cli.no_embedded {
        report.push(audit_section(&cli).await?);
    }
    if runs(6) && !cli.no_embedded {
        report.push(console_section(&cli).await?);
    }
    if runs(8) {
        report.push(usage_section(&cli, &nats).await?);
    }
    if runs(9) && !cli.no_embedded {
        report.push(runtime_section(&cli).await?);
    }
    if runs(10) && !cli.no_embedded {
        report.push(scale_section(&cli).await?);
    }
    report.footer(format!(
        "wall time of the whole run: {:.1} s",
        wall.elapsed().as_secs_f64()
    ));
    let mut out = std::io::stdout().lock();
    write!(out, "{}", report.render())?;
    out.flush()?;
    Ok(())
}
