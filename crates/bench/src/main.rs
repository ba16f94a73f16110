//! `bench`: the registry's throughput, each figure a ratio to a raw baseline measured in the
//! same run on the bench's own `nats-server` (and, optionally, the embedded log).
//!
//! 1. Commands per second over HTTP at 64 clients with read-your-writes, against raw
//!    JetStream publishes with the concurrency header (target: 10,000 commands/s).
//! 2. Rebuild events per second over 1,000,000 events, against a raw ordered-consumer replay
//!    (target: at least 50% of it).
//!
//! It is a report tool: the table goes to stdout, progress to stderr.

mod commands;
mod measure;
mod nats;
mod rebuild;
mod report;

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use eventlog::{EmbeddedLog, EventLog, JetStreamLog};

use crate::commands::{Body, Load};
use crate::nats::NatsServer;
use crate::report::{Report, Section};

/// The throughput targets, as the issue states them.
const TARGET_COMMANDS_PER_SECOND: f64 = 10_000.0;
const TARGET_REBUILD_RATIO: f64 = 0.5;
/// The registry's stream, as `app::config::Config::default()` names it.
const REGISTRY_STREAM: &str = "REGISTRY";

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Registry throughput as ratios to raw baselines"
)]
struct Cli {
    /// Concurrent clients for the raw publishes and the HTTP commands.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Raw JetStream publishes measured (after the warm-up).
    #[arg(long, default_value_t = 100_000)]
    raw_publishes: u64,
    /// HTTP commands measured (after the warm-up).
    #[arg(long, default_value_t = 20_000)]
    commands: u64,
    /// HTTP commands with an inline credential measured; 0 skips the variant.
    #[arg(long, default_value_t = 5_000)]
    credential_commands: u64,
    /// Operations run before each measurement and not counted.
    #[arg(long, default_value_t = 2_000)]
    warmup: u64,
    /// Model events in the log for the rebuild measurements.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Skip the embedded-log rebuild pair.
    #[arg(long)]
    no_embedded: bool,
}

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

    let nats = NatsServer::start().await?;
    eprintln!(
        "nats-server pid {} at {} (store {})",
        nats.pid(),
        nats.url(),
        nats.store_dir().display()
    );

    report.push(commands_section(&cli, &nats).await?);
    report.push(jetstream_rebuild_section(&cli, &nats).await?);
    if !cli.no_embedded {
        report.push(embedded_rebuild_section(&cli).await?);
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

async fn commands_section(cli: &Cli, nats: &NatsServer) -> anyhow::Result<Section> {
    let clients = cli.clients;
    // The raw payload is a real model-added envelope, so both sides move the same bytes.
    let (_, _, payload) = rebuild::model_added(0)?;
    let payload_len = payload.len();
    eprintln!(
        "1/3 raw JetStream publishes: {clients} clients, {} + {} warm-up",
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
        "1/3 POST /v1/models over HTTP: {clients} clients, {} (+ {} with a credential)",
        cli.commands, cli.credential_commands
    );
    let http = commands::http_commands(&nats.url(), nats.pid(), &runs)
        .await
        .context("HTTP commands")?;
    // The registry is stopped; its stream goes so the rebuild starts from an empty log.
    let client = async_nats::connect(nats.url()).await?;
    async_nats::jetstream::new(client)
        .delete_stream(REGISTRY_STREAM)
        .await
        .context("cannot delete the registry stream after the HTTP bench")?;

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

async fn jetstream_rebuild_section(cli: &Cli, nats: &NatsServer) -> anyhow::Result<Section> {
    let total = cli.events + 1;
    eprintln!("2/3 JetStream: filling {total} events");
    let log: Arc<dyn EventLog> = Arc::new(
        JetStreamLog::connect(&nats.url(), REGISTRY_STREAM)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let fill = rebuild::populate(&log, cli.events, "jetstream", Some(nats.pid())).await?;
    eprintln!("2/3 JetStream: raw ordered-consumer replay");
    let (raw, raw_bytes) =
        rebuild::raw_ordered_replay(&nats.url(), REGISTRY_STREAM, total, nats.pid()).await?;
    eprintln!("2/3 JetStream: views::rebuild");
    let dir = tempfile::Builder::new()
        .prefix("modelreg-bench-rebuild-")
        .tempdir()?;
    let path = dir.path().join("views.redb");
    let (rebuilt, checksum) =
        rebuild::registry_rebuild(&log, &path, total, "jetstream", Some(nats.pid())).await?;
    rebuild::check_rebuilt(&path, cli.events)?;
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());

    let mut section = Section::new(format!(
        "2. Rebuild events/s over {} events on JetStream ({} MB of payload)",
        report::thousands(total as f64),
        raw_bytes / 1_000_000
    ));
    section.row(
        "fill: JetStreamLog::append, 1024 in flight (setup)",
        &fill,
        None,
    );
    section.row(
        "raw ordered consumer, payload lengths summed (baseline)",
        &raw,
        Some(1.0),
    );
    let ratio = rebuilt.per_second() / raw.per_second();
    section.row(
        "views::rebuild into a fresh redb file",
        &rebuilt,
        Some(ratio),
    );
    section.verdict(format!(
        "target: rebuild >= {:.0}% of raw replay: {:.0}% -> {}",
        TARGET_REBUILD_RATIO * 100.0,
        ratio * 100.0,
        pass(ratio >= TARGET_REBUILD_RATIO)
    ));
    section.note(format!(
        "views checksum {checksum}, file {} MB",
        size / 1_000_000
    ));
    Ok(section)
}

async fn embedded_rebuild_section(cli: &Cli) -> anyhow::Result<Section> {
    let total = cli.events + 1;
    let dir = tempfile::Builder::new()
        .prefix("modelreg-bench-embedded-")
        .tempdir()?;
    eprintln!("3/3 embedded log (optional): filling {total} events");
    let log: Arc<dyn EventLog> = Arc::new(
        EmbeddedLog::open(&dir.path().join("log.redb")).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let fill = rebuild::populate(&log, cli.events, "embedded", None).await?;
    eprintln!("3/3 embedded log: raw tail");
    let (raw, raw_bytes) = rebuild::raw_tail(&log, total).await?;
    eprintln!("3/3 embedded log: views::rebuild");
    let path = dir.path().join("views.redb");
    let (rebuilt, checksum) =
        rebuild::registry_rebuild(&log, &path, total, "embedded", None).await?;
    rebuild::check_rebuilt(&path, cli.events)?;
    drop(log);

    let mut section = Section::new(format!(
        "3. Optional: the same on the EMBEDDED log (redb), {} events ({} MB of payload)",
        report::thousands(total as f64),
        raw_bytes / 1_000_000
    ));
    section.row(
        "fill: EmbeddedLog::append, 1024 in flight (setup)",
        &fill,
        None,
    );
    section.row(
        "raw EventLog::tail, payload lengths summed (baseline)",
        &raw,
        Some(1.0),
    );
    let ratio = rebuilt.per_second() / raw.per_second();
    section.row(
        "views::rebuild into a fresh redb file",
        &rebuilt,
        Some(ratio),
    );
    section.verdict(format!(
        "same target, informative only: {:.0}% of raw tail -> {}",
        ratio * 100.0,
        pass(ratio >= TARGET_REBUILD_RATIO)
    ));
    section.note(format!("views checksum {checksum}"));
    Ok(section)
}

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}
