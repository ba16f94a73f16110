//! Prometheus text metrics, kept by hand: request latency per route, commands by outcome,
//! projection lag and worker jobs. A handful of series do not justify a metrics framework.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;

use axum::http::Method;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    total: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    /// route → (method, status class) → latency histogram. Looked up by `&str`, so a
    /// request allocates nothing here.
    requests: HashMap<String, BTreeMap<(String, u16), Histogram>>,
    /// (command, outcome) → count.
    commands: BTreeMap<(String, String), u64>,
}

/// The `method` label: a standard method's name, or `OTHER` for any other token, so that
/// clients sending made-up methods cannot grow the series without bound.
pub fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let by_route = match inner.requests.get_mut(route) {
            Some(by_route) => by_route,
            None => inner.requests.entry(route.to_owned()).or_default(),
        };
        let class = status / 100;
        let histogram = match by_route
            .iter_mut()
            .find(|((m, c), _)| m == method && *c == class)
        {
            Some((_, histogram)) => histogram,
            None => by_route.entry((method.to_owned(), class)).or_default(),
        };
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                histogram.counts[i] += 1;
            }
        }
        histogram.total += 1;
        histogram.sum += seconds;
    }

    pub fn count_command(&self, command: &str, outcome: &str) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        *inner
            .commands
            .entry((command.to_owned(), outcome.to_owned()))
            .or_default() += 1;
    }

    /// The exposition text; `lag` is how many log positions the views are behind.
    pub fn render(
        &self,
        log_position: u64,
        views_position: u64,
        jobs: &[((String, String), u64)],
    ) -> String {
        let mut out = String::new();
        let Ok(inner) = self.inner.lock() else {
            return out;
        };
        out.push_str("# HELP modelreg_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE modelreg_http_request_duration_seconds histogram\n");
        let mut routes: Vec<&String> = inner.requests.keys().collect();
        routes.sort();
        for route in routes {
            let Some(by_route) = inner.requests.get(route) else {
                continue;
            };
            for ((method, class), h) in by_route {
                let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{class}xx\"");
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "modelreg_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "modelreg_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    h.total
                );
                let _ = writeln!(
                    out,
                    "modelreg_http_request_duration_seconds_sum{{{labels}}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "modelreg_http_request_duration_seconds_count{{{labels}}} {}",
                    h.total
                );
            }
        }
        out.push_str("# HELP modelreg_commands_total Commands by outcome.\n# TYPE modelreg_commands_total counter\n");
        for ((command, outcome), n) in &inner.commands {
            let _ = writeln!(
                out,
                "modelreg_commands_total{{command=\"{command}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP modelreg_worker_jobs_total Worker jobs by outcome.\n# TYPE modelreg_worker_jobs_total counter\n");
        for ((worker, outcome), n) in jobs {
            let _ = writeln!(
                out,
                "modelreg_worker_jobs_total{{worker=\"{worker}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP modelreg_log_position Last position in the event log.\n# TYPE modelreg_log_position gauge\n");
        let _ = writeln!(out, "modelreg_log_position {log_position}");
        out.push_str("# HELP modelreg_views_position Last log position the views reflect.\n# TYPE modelreg_views_position gauge\n");
        let _ = writeln!(out, "modelreg_views_position {views_position}");
        out.push_str("# HELP modelreg_projection_lag Log positions the views are behind.\n# TYPE modelreg_projection_lag gauge\n");
        let _ = writeln!(
            out,
            "modelreg_projection_lag {}",
            log_position.saturating_sub(views_position)
        );
        out
    }
}
