//! Section 10: scale. One data dir on the embedded log grows to 10%, 50% and 100% of
//! `--scale-orgs` orgs (1,000 by default), each with 100 custom models and 100 workflows of
//! 10 steps (1,000,000 workflow references at full size). The orgs, their admin tokens and a
//! service token are created through the app; the models and workflows are the domain's own
//! events in real envelopes appended straight to the log (as `rebuild.rs` fills it). At each
//! size the views are rebuilt from the whole log (timed), then `modelreg serve` runs on the
//! data dir as a separate process and is measured over loopback: its RSS, and the p99 of a
//! resolve (service token) and of a first page of models against `GET /healthz` of the same
//! server in the same rounds. The report says how each grows from 10% to 100%.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use domain::Event;
use domain::values::WorkflowId;
use domain::workflow::{self, Features, Step, Workflow};
use eventlog::{EmbeddedLog, EventLog, Subject};
use futures::StreamExt;

mod served;

use self::served::{Served, file_mb, memory_mb, modelreg_binary};
use crate::Cli;
use crate::judge::{ROUNDS, Rounds};
use crate::measure::{CpuClock, Measurement};
use crate::rebuild;
use crate::registry::MASTER_KEY;
use crate::report::{self, Section};

/// Custom models in every org.
const MODELS_PER_ORG: u64 = 100;
/// Workflows in every org, each with `STEPS` steps naming a custom model.
const WORKFLOWS_PER_ORG: u64 = 100;
const STEPS: u64 = 10;
/// The sizes measured, in percent of the full size.
const SIZES: [u64; 3] = [10, 50, 100];
/// Requests per kind and round, one at a time (after a warm-up of `WARMUP`).
const REQUESTS: u64 = 300;
const WARMUP: u64 = 50;
/// Models on a first page.
const PAGE: u32 = 50;
/// Appends in flight while filling the log.
const IN_FLIGHT: usize = 1024;
/// Orgs created through the app at once.
const ORGS_IN_FLIGHT: usize = 16;
/// The server's resident memory at full size must stay under this.
const RSS_TARGET_MB: f64 = 300.0;
/// Memory judged bounded: RSS at 100% at most this many times RSS at 10%, while the log grows
/// about ten times (memory growing with the log would come near 10x).
const RSS_GROWTH_TARGET: f64 = 2.0;
/// Memory judged flat: RSS at 100% at most this many times RSS at 50% (the log doubles;
/// memory growing with it would come near 2x).
const RSS_PLATEAU_TARGET: f64 = 1.25;
/// How long `modelreg serve` may take to answer `/readyz` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(600);

/// Org 0, the one the latencies are measured in: its admin and service tokens.
struct Probe {
    admin: String,
    service: String,
}

/// What one size measured.
struct Size {
    percent: u64,
    orgs: u64,
    events: u64,
    fill: Measurement,
    rebuild: Measurement,
    ready: Duration,
    rss_ready_mb: f64,
    rss_mb: f64,
    hwm_mb: f64,
    log_mb: f64,
    views_mb: f64,
    since_fill: Duration,
    /// The same server restarted (stopped with SIGTERM) once the idempotency window has let
    /// go of the bulk's ids, if `--scale-settle-secs` allows: RSS when ready and after a
    /// round of requests, and how long after the last append it started.
    restart: Option<Restart>,
    healthz: Measurement,
    resolve: Measurement,
    page: Measurement,
    resolve_p99_ratio: f64,
    page_p99_ratio: f64,
}

struct Restart {
    since_fill: Duration,
    rss_ready_mb: f64,
    /// After `IDLE` with no request.
    rss_idle_mb: f64,
    /// After a warm-up and a measured run of resolves.
    rss_resolves_mb: f64,
    /// After the same of first pages.
    rss_mb: f64,
}

/// How long the restarted server is left alone before its RSS is read again.
const IDLE: Duration = Duration::from_secs(3);

pub(crate) async fn scale_section(cli: &Cli) -> anyhow::Result<Section> {
    let binary = modelreg_binary()?;
    let data = tempfile::Builder::new()
        .prefix("modelreg-bench-scale-")
        .tempdir()?;
    let full = cli.scale_orgs.max(1);
    let mut created = 0u64;
    let mut probe = None;
    let mut sizes = Vec::new();
    for percent in SIZES {
        let orgs = (full * percent / 100).max(1).max(created);
        eprintln!("10 scale: {percent}%: {orgs} orgs");
        let fill = grow(data.path(), created..orgs, &mut probe).await?;
        created = orgs;
        let filled_at = Instant::now();
        let Some(tokens) = probe.as_ref() else {
            bail!("org 0 has no tokens");
        };
        let (rebuild, events) = rebuild_views(data.path(), percent).await?;
        let settle = Duration::from_secs(cli.scale_settle_secs);
        let mut size = serve_and_measure(&binary, data.path(), tokens, percent, filled_at).await?;
        if !settle.is_zero() {
            size.restart = Some(restart(&binary, data.path(), tokens, filled_at, settle).await?);
        }
        size.orgs = orgs;
        size.events = events;
        size.fill = fill;
        size.rebuild = rebuild;
        sizes.push(size);
    }
    Ok(render(full, &sizes))
}

/// Creates orgs `range` through the app (with org 0's service token on the first call), then
/// appends their models and workflows straight to the log.
async fn grow(
    dir: &Path,
    range: std::ops::Range<u64>,
    probe: &mut Option<Probe>,
) -> anyhow::Result<Measurement> {
    let clock = CpuClock::start(None);
    let started = Instant::now();
    create_orgs(dir, range.clone(), probe).await?;
    let log = open_log(dir).await?;
    let first = log.last_seq().await?;
    let events = futures::stream::iter(range.clone()).flat_map(|org| {
        let models = (0..MODELS_PER_ORG).map(move |n| (org, Item::Model(n)));
        let workflows = (0..WORKFLOWS_PER_ORG).map(move |w| (org, Item::Workflow(w)));
        futures::stream::iter(models.chain(workflows))
    });
    let total = (range.end - range.start) * (MODELS_PER_ORG + WORKFLOWS_PER_ORG);
    let done = AtomicU64::new(0);
    let mut appends = events
        .map(|(org, item)| {
            let log = Arc::clone(&log);
            let done = &done;
            async move {
                let (subject, msg_id, data) = item.event(&org_id(org))?;
                let appended = log.append(&subject, 0, &msg_id, data).await?;
                ensure!(!appended.duplicate, "an event was taken for a duplicate");
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(100_000) {
                    eprintln!("  scale: appended {n} / {total}");
                }
                Ok(())
            }
        })
        .buffer_unordered(IN_FLIGHT);
    while let Some(appended) = appends.next().await {
        appended?;
    }
    drop(appends);
    let last = log.last_seq().await?;
    ensure!(
        last == first + total,
        "the log holds {last} events, expected {}",
        first + total
    );
    Ok(Measurement {
        ops: total,
        elapsed: started.elapsed(),
        cpu: clock.finish(),
        latencies: Vec::new(),
    })
}

/// One bulk event of an org.
#[derive(Clone, Copy)]
enum Item {
    Model(u64),
    Workflow(u64),
}

impl Item {
    fn event(self, org: &str) -> anyhow::Result<(Subject, String, Vec<u8>)> {
        match self {
            Item::Model(n) => rebuild::model_added_in(org, n),
            Item::Workflow(w) => workflow_saved(org, w),
        }
    }
}

fn org_id(n: u64) -> String {
    format!("org-{n}")
}

/// `PUT /v1/workflows/wf-<w>` as the pipelines product reports it: `STEPS` steps, each
/// naming one of the org's custom models, decided by the domain.
fn workflow_saved(org: &str, w: u64) -> anyhow::Result<(Subject, String, Vec<u8>)> {
    let steps = (0..STEPS)
        .map(|s| Step {
            model: format!("m-{}", (w + s) % MODELS_PER_ORG),
            features: Features::default(),
        })
        .collect();
    let workflow = Workflow::parse(&format!("workflow {w}"), true, steps)?;
    let id = WorkflowId::parse(&format!("wf-{w}"))?;
    let events = workflow::decide(None, workflow::Command::Put(workflow))?;
    let Some(event) = events.into_iter().next() else {
        bail!("saving a workflow decided nothing");
    };
    let event = Event::Workflow(event);
    rebuild::envelope_in(org, event.kind(), id.as_str(), &event)
}

/// The registry on `dir`, in-process: creates orgs `Org <n>` (id `org-<n>`) with their admin
/// tokens, and on the first call org 0's service token. Stops it, so the log can be opened.
async fn create_orgs(
    dir: &Path,
    range: std::ops::Range<u64>,
    probe: &mut Option<Probe>,
) -> anyhow::Result<()> {
    let config = app::config::Config {
        data_dir: dir.to_path_buf(),
        master_key: Some(MASTER_KEY.to_owned()),
        bootstrap_default_org: false,
        ..app::config::Config::default()
    };
    let running = app::start(&config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the registry: {e}"))?;
    let registry = Arc::clone(&running.registry);
    let mut creates = futures::stream::iter(range)
        .map(|n| {
            let registry = Arc::clone(&registry);
            async move {
                let created = app::orgs::create(&registry, &format!("Org {n}"))
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot create org {n}: {e}"))?;
                ensure!(created.org.as_str() == org_id(n), "unexpected org id");
                Ok((n, created.admin_token.expose_secret().to_owned()))
            }
        })
        .buffer_unordered(ORGS_IN_FLIGHT);
    let mut admin0 = None;
    while let Some(created) = creates.next().await {
        let (n, admin) = created?;
        if n == 0 {
            admin0 = Some(admin);
        }
    }
    drop(creates);
    if let (None, Some(admin)) = (probe.as_ref(), admin0) {
        let org = domain::values::OrgId::parse(&org_id(0))?;
        let issued = app::orgs::issue_prepared(
            &registry,
            &app::Ctx::system(org, "bench scale"),
            "runtime",
            app::Role::Service,
            None,
            app::orgs::PreparedToken::draw(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot issue the service token: {e}"))?;
        let Some(service) = issued.value.token else {
            bail!("an issued token without its secret");
        };
        *probe = Some(Probe {
            admin,
            service: service.0.expose_secret().to_owned(),
        });
    }
    drop(registry);
    running.stop().await;
    Ok(())
}

/// The embedded log of `dir`; the file is one process's, so this waits briefly for a
/// registry stopped just before to let go of it.
async fn open_log(dir: &Path) -> anyhow::Result<Arc<dyn EventLog>> {
    let path = dir.join("log.redb");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match EmbeddedLog::open(&path) {
            Ok(log) => return Ok(Arc::new(log)),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => bail!("cannot open {}: {error}", path.display()),
        }
    }
}

/// Rebuilds the views of `dir` from the whole log into a fresh file; the measurement and the
/// log's length.
async fn rebuild_views(dir: &Path, percent: u64) -> anyhow::Result<(Measurement, u64)> {
    let path = app::views_path(dir);
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    let log = open_log(dir).await?;
    let total = log.last_seq().await?;
    let label = format!("scale {percent}%");
    let (measured, _) = rebuild::registry_rebuild(&log, &path, total, &label, None).await?;
    Ok((measured, total))
}

/// Starts `modelreg serve` on `dir`, waits until it is ready, and measures it. `filled_at`:
/// when the last bulk append landed (the embedded log remembers message ids for 120 s, so a
/// server started sooner holds the bulk's ids in its idempotency window).
async fn serve_and_measure(
    binary: &Path,
    dir: &Path,
    probe: &Probe,
    percent: u64,
    filled_at: Instant,
) -> anyhow::Result<Size> {
    let log_mb = file_mb(&dir.join("log.redb"));
    let views_mb = file_mb(&app::views_path(dir));
    let since_fill = filled_at.elapsed();
    let server = Served::start(binary, dir).await?;
    let ready = server.started.elapsed();
    let rss_ready_mb = memory_mb(server.pid(), "VmRSS")?;
    eprintln!("10 scale: {percent}%: ready in {ready:.1?}, RSS {rss_ready_mb:.1} MB");

    let http = reqwest::Client::builder().build()?;
    let base = server.base.clone();
    let healthz = format!("{base}/healthz");
    let page = format!("{base}/v1/models?limit={PAGE}");
    check_page(&http, &page, &probe.admin).await?;
    let resolved = AtomicU64::new(0);
    let resolve = || {
        let n = resolved.fetch_add(1, Ordering::Relaxed) % MODELS_PER_ORG;
        http.get(format!("{base}/v1/resolve/m-{n}"))
            .bearer_auth(&probe.service)
            .send()
    };
    let mut resolves = Rounds::default();
    let mut pages = Rounds::default();
    let (mut healthz_all, mut resolve_all, mut page_all) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let baseline = timed(|| http.get(&healthz).send()).await?;
        let resolved = timed(resolve).await?;
        let paged = timed(|| http.get(&page).bearer_auth(&probe.admin).send()).await?;
        resolves.push(baseline.clone(), resolved.clone());
        pages.push(baseline.clone(), paged.clone());
        healthz_all.push(baseline);
        resolve_all.push(resolved);
        page_all.push(paged);
    }
    let rss_mb = memory_mb(server.pid(), "VmRSS")?;
    let hwm_mb = memory_mb(server.pid(), "VmHWM")?;
    server.terminate().await?;
    Ok(Size {
        percent,
        orgs: 0,
        events: 0,
        fill: empty(),
        rebuild: empty(),
        ready,
        rss_ready_mb,
        rss_mb,
        hwm_mb,
        log_mb,
        views_mb,
        since_fill,
        restart: None,
        healthz: merged(healthz_all),
        resolve: merged(resolve_all),
        page: merged(page_all),
        resolve_p99_ratio: resolves.p99().median(),
        page_p99_ratio: pages.p99().median(),
    })
}

/// Starts `modelreg serve` on `dir` again `settle` after the last append at `filled_at` (once the idempotency window no
/// longer holds the bulk's ids, and the workers' consumers have caught up on the first start)
/// and reads its RSS when ready and after a round of resolves and first pages.
async fn restart(
    binary: &Path,
    dir: &Path,
    probe: &Probe,
    filled_at: Instant,
    settle: Duration,
) -> anyhow::Result<Restart> {
    let wait = (filled_at + settle).saturating_duration_since(Instant::now());
    if !wait.is_zero() {
        eprintln!("10 scale: restarting in {:.0} s", wait.as_secs_f64());
        tokio::time::sleep(wait).await;
    }
    let since_fill = filled_at.elapsed();
    let server = Served::start(binary, dir).await?;
    let rss_ready_mb = memory_mb(server.pid(), "VmRSS")?;
    tokio::time::sleep(IDLE).await;
    let rss_idle_mb = memory_mb(server.pid(), "VmRSS")?;
    let http = reqwest::Client::builder().build()?;
    let base = server.base.clone();
    let resolved = AtomicU64::new(0);
    timed(|| {
        let n = resolved.fetch_add(1, Ordering::Relaxed) % MODELS_PER_ORG;
        http.get(format!("{base}/v1/resolve/m-{n}"))
            .bearer_auth(&probe.service)
            .send()
    })
    .await?;
    let rss_resolves_mb = memory_mb(server.pid(), "VmRSS")?;
    timed(|| {
        http.get(format!("{base}/v1/models?limit={PAGE}"))
            .bearer_auth(&probe.admin)
            .send()
    })
    .await?;
    let rss_mb = memory_mb(server.pid(), "VmRSS")?;
    server.terminate().await?;
    Ok(Restart {
        since_fill,
        rss_ready_mb,
        rss_idle_mb,
        rss_resolves_mb,
        rss_mb,
    })
}

/// The first page must hold `PAGE` models (platform ones first, then custom) and say there is
/// more.
async fn check_page(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<()> {
    let response = http.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let text = response.text().await?;
    ensure!(
        status == reqwest::StatusCode::OK,
        "GET /v1/models answered {status}: {text}"
    );
    let page: serde_json::Value = serde_json::from_str(&text)?;
    let count = |kind: &str| page[kind].as_array().map_or(0, Vec::len);
    let items = count("platform") + count("custom");
    ensure!(
        items == PAGE as usize && page["next_cursor"].is_string(),
        "a first page of {items} models without a next cursor"
    );
    Ok(())
}

fn empty() -> Measurement {
    Measurement {
        ops: 0,
        elapsed: Duration::ZERO,
        cpu: crate::measure::Cpu::default(),
        latencies: Vec::new(),
    }
}

/// The rounds of one kind as one measurement (every latency, summed times).
fn merged(rounds: Vec<Measurement>) -> Measurement {
    let mut all = empty();
    for m in rounds {
        all.ops += m.ops;
        all.elapsed += m.elapsed;
        all.cpu.bench += m.cpu.bench;
        all.latencies.extend(m.latencies);
    }
    all.latencies.sort();
    all
}

/// `REQUESTS` requests one after another after `WARMUP` unmeasured, each timed; every answer
/// must be 200 and is read in full.
async fn timed<F, Fut>(send: F) -> anyhow::Result<Measurement>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    for _ in 0..WARMUP {
        read(send().await?).await?;
    }
    let clock = CpuClock::start(None);
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(REQUESTS as usize);
    for _ in 0..REQUESTS {
        let at = Instant::now();
        read(send().await?).await?;
        latencies.push(at.elapsed());
    }
    latencies.sort();
    Ok(Measurement {
        ops: REQUESTS,
        elapsed: started.elapsed(),
        cpu: clock.finish(),
        latencies,
    })
}

async fn read(response: reqwest::Response) -> anyhow::Result<()> {
    let status = response.status();
    let url = response.url().path().to_owned();
    let body = response.bytes().await?;
    ensure!(
        status == reqwest::StatusCode::OK,
        "GET {url} answered {status}"
    );
    ensure!(!body.is_empty(), "GET {url}: an empty answer");
    Ok(())
}

fn render(full: u64, sizes: &[Size]) -> Section {
    let mut section = Section::new(format!(
        "10. Scale: up to {} orgs x {MODELS_PER_ORG} custom models, {} workflow references (embedded log, modelreg serve as its own process)",
        report::thousands(full as f64),
        report::thousands((full * WORKFLOWS_PER_ORG * STEPS) as f64)
    ));
    for size in sizes {
        let at = format!("{}% ({} orgs)", size.percent, size.orgs);
        section.row(
            &format!("{at}: fill: orgs via the app, bulk appended (setup)"),
            &size.fill,
            None,
        );
        section.row(
            &format!("{at}: rebuild of the whole log"),
            &size.rebuild,
            None,
        );
        section.row(
            &format!("{at}: GET /healthz (baseline)"),
            &size.healthz,
            Some(1.0),
        );
        section.row(
            &format!("{at}: GET /v1/resolve/{{model}}, service token"),
            &size.resolve,
            Some(size.resolve_p99_ratio),
        );
        section.row(
            &format!("{at}: GET /v1/models?limit={PAGE}"),
            &size.page,
            Some(size.page_p99_ratio),
        );
        section.note(format!(
            "{at}: {} events in the log ({:.0} MB), views {:.0} MB; serve started {:.0} s after the last append (the idempotency window is 120 s), ready in {:.1} s; RSS {:.1} MB when ready, {:.1} MB after the requests (peak {:.1} MB)",
            report::thousands(size.events as f64),
            size.log_mb,
            size.views_mb,
            size.since_fill.as_secs_f64(),
            size.ready.as_secs_f64(),
            size.rss_ready_mb,
            size.rss_mb,
            size.hwm_mb,
        ));
        if let Some(restart) = &size.restart {
            section.note(format!(
                "{at}: restarted {:.0} s after the last append: RSS {:.1} MB when ready, {:.1} MB {:.0} s later, {:.1} MB after {} resolves, {:.1} MB after as many first pages",
                restart.since_fill.as_secs_f64(),
                restart.rss_ready_mb,
                restart.rss_idle_mb,
                IDLE.as_secs_f64(),
                restart.rss_resolves_mb,
                WARMUP + REQUESTS,
                restart.rss_mb,
            ));
        }
    }
    section.note(
        "ratios: p99 over the same server's GET /healthz p99, median of the rounds".to_owned(),
    );
    let (Some(small), Some(large)) = (sizes.first(), sizes.last()) else {
        return section;
    };
    let grows = |a: f64, b: f64| b / a.max(1e-9);
    let p99 = |m: &Measurement| m.percentile(0.99).unwrap_or_default().as_secs_f64();
    let events = grows(small.events as f64, large.events as f64);
    let rss = grows(small.rss_mb, large.rss_mb);
    section.note(format!(
        "growth {}% -> {}% (ratio): events {events:.1} x, RSS {rss:.2} x, rebuild time {:.1} x, resolve p99 {:.2} x, first page p99 {:.2} x, healthz p99 {:.2} x",
        small.percent,
        large.percent,
        grows(
            small.rebuild.elapsed.as_secs_f64(),
            large.rebuild.elapsed.as_secs_f64()
        ),
        grows(p99(&small.resolve), p99(&large.resolve)),
        grows(p99(&small.page), p99(&large.page)),
        grows(p99(&small.healthz), p99(&large.healthz)),
    ));
    if let (Some(small), Some(large)) = (&small.restart, &large.restart) {
        section.note(format!(
            "growth of the restarted server's RSS: {:.2} x",
            grows(small.rss_mb, large.rss_mb)
        ));
    }
    section.verdict(format!(
        "target: server RSS at {}% < {RSS_TARGET_MB:.0} MB: {:.1} MB -> {}",
        large.percent,
        large.rss_mb,
        pass(large.rss_mb < RSS_TARGET_MB)
    ));
    section.verdict(format!(
        "target: memory bounded, RSS {}% / {}% <= {RSS_GROWTH_TARGET:.2} x while the log grows {events:.1} x: {rss:.2} x -> {}",
        large.percent,
        small.percent,
        pass(rss <= RSS_GROWTH_TARGET)
    ));
    // Bounded page caches fill between the small sizes, so the ratio above counts them
    // filling; once full, a bounded process stays flat while the log keeps growing.
    if sizes.len() >= 3 {
        let middle = &sizes[sizes.len() / 2];
        let plateau = grows(middle.rss_mb, large.rss_mb);
        let log = grows(middle.events as f64, large.events as f64);
        section.verdict(format!(
            "target: memory flat once the caches are full, RSS {}% / {}% <= {RSS_PLATEAU_TARGET:.2} x while the log grows {log:.1} x: {plateau:.2} x -> {}",
            large.percent,
            middle.percent,
            pass(plateau <= RSS_PLATEAU_TARGET)
        ));
    }
    section
}

fn pass(met: bool) -> &'static str {
    if met { "PASS" } else { "MISS" }
}
