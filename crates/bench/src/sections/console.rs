//! Section 6: the console's Models page, its first page, with `--console-models` custom
//! models in the org (10,000 by default), against `GET /v1/models` of the same page (the
//! same `app::models::page` query, as JSON) in the same run: p99 latency as a ratio (target:
//! at most 1.5x). Both are timed at the client over loopback keep-alive connections, one
//! request at a time, so the ratio is the server's time plus the same transport on each side.

use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::Cli;
use crate::judge::{ROUNDS, Rounds};
use crate::measure::{CpuClock, Measurement};
use crate::registry::{Backend, Body, Harness, Options};
use crate::report::{self, Section};

const TARGET_P99_RATIO: f64 = 1.5;
/// Requests per side and round (after a warm-up of as many).
const REQUESTS: u64 = 300;
/// Models on one page, as the console shows them.
const PAGE: u32 = 50;

pub(crate) async fn console_section(cli: &Cli) -> anyhow::Result<Section> {
    let options = Options {
        upstream_delay: Duration::ZERO,
        worker_concurrency: 4,
        clients: 16,
        data_key_cache_ttl_ms: 60_000,
    };
    let harness = Harness::start(&Backend::Embedded, &options).await?;
    let api = &harness.api;
    // One receipt serves every add of the same draft for 15 minutes.
    let receipt = api.passing_test(None).await?;
    eprintln!("6/7 console: adding {} custom models", cli.console_models);
    let fill_started = Instant::now();
    let clock = CpuClock::start(None);
    let mut adds = futures::stream::iter(0..cli.console_models)
        .map(|n| api.add_model(Body::Plain, n, receipt.clone()))
        .buffer_unordered(16);
    while let Some(added) = adds.next().await {
        added?;
    }
    drop(adds);
    let fill = Measurement {
        ops: cli.console_models,
        elapsed: fill_started.elapsed(),
        cpu: clock.finish(),
        latencies: Vec::new(),
    };

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let base = format!("http://{}", harness.addr());
    let session = sign_in(&http, &base, api.token()).await?;
    let json_page = format!("{base}/v1/models?limit={PAGE}");
    let html_page = format!("{base}/models");

    eprintln!("6/7 console: first pages, {ROUNDS} rounds of {REQUESTS} requests a side");
    let mut rounds = Rounds::default();
    for _ in 0..ROUNDS {
        let baseline = timed(REQUESTS, || {
            http.get(&json_page).bearer_auth(api.token()).send()
        })
        .await?;
        let measured = timed(REQUESTS, || {
            http.get(&html_page)
                .header("cookie", session.as_str())
                .send()
        })
        .await?;
        rounds.push(baseline, measured);
    }
    harness.stop().await?;

    let mut section = Section::new(format!(
        "6. Console: the Models page's first page with {} custom models (embedded log)",
        report::thousands(cli.console_models as f64)
    ));
    section.row("fill: POST /v1/models (setup)", &fill, None);
    let ratios = rounds.p99();
    for (round, (baseline, measured)) in rounds.pairs().iter().enumerate() {
        section.row(
            &format!(
                "round {}: GET /v1/models?limit={PAGE} (baseline)",
                round + 1
            ),
            baseline,
            Some(1.0),
        );
        let p99 = |m: &Measurement| m.percentile(0.99).unwrap_or_default().as_secs_f64();
        section.row(
            &format!("round {}: GET /models, the console's page", round + 1),
            measured,
            Some(p99(measured) / p99(baseline).max(1e-9)),
        );
    }
    section.verdict(ratios.at_most("Models page p99 / GET /v1/models p99", TARGET_P99_RATIO));
    section.note(
        "both pages run app::models::page (unfiltered: the page's rows read as a range, the match count a count of keys); the console adds the session lookup and the HTML".to_owned(),
    );
    Ok(section)
}

/// Signs in by pasting `token`: the session cookie (`name=value`) for the pages.
async fn sign_in(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<String> {
    let page = http.get(format!("{base}/sign-in")).send().await?;
    let cookie = cookie_pair(&page, "mr_sign_in")?;
    let body = page.text().await?;
    let marker = "name=\"csrf\" value=\"";
    let start = body
        .find(marker)
        .map(|at| at + marker.len())
        .ok_or_else(|| anyhow::anyhow!("no csrf on the sign-in page"))?;
    let csrf = &body[start..start + 64];
    let signed = http
        .post(format!("{base}/sign-in"))
        .header("cookie", cookie)
        .form(&[("csrf", csrf), ("token", token)])
        .send()
        .await?;
    anyhow::ensure!(
        signed.status() == reqwest::StatusCode::SEE_OTHER,
        "sign-in answered {}",
        signed.status()
    );
    cookie_pair(&signed, "mr_session")
}

fn cookie_pair(response: &reqwest::Response, name: &str) -> anyhow::Result<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no {name} cookie"))
}

/// `requests` requests one after another after as many unmeasured, each timed; every answer
/// must be 200 and is read in full.
async fn timed<F, Fut>(requests: u64, send: F) -> anyhow::Result<Measurement>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    for _ in 0..requests {
        read(send().await?).await?;
    }
    let clock = CpuClock::start(None);
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(requests as usize);
    for _ in 0..requests {
        let at = Instant::now();
        read(send().await?).await?;
        latencies.push(at.elapsed());
    }
    latencies.sort();
    Ok(Measurement {
        ops: requests,
        elapsed: started.elapsed(),
        cpu: clock.finish(),
        latencies,
    })
}

async fn read(response: reqwest::Response) -> anyhow::Result<()> {
    let status = response.status();
    let body = response.bytes().await?;
    anyhow::ensure!(status == reqwest::StatusCode::OK, "answered {status}");
    anyhow::ensure!(!body.is_empty(), "an empty page");
    Ok(())
}
