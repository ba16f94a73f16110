//! Prometheus metrics with prometheus-client: request latency per route, commands by
//! outcome, and, read at each scrape, log and views positions, projection lag, what the
//! projector wrote (batches, events, time spent) and worker jobs.
//!
//! Every label comes from a fixed set (a known method or `OTHER`, a route template or
//! `unmatched`, a status class), never from the raw request, so clients cannot grow the
//! series. The registry belongs to the [`Metrics`] value: there is no global one.

use std::fmt::Write;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Method, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`]'s text (Prometheus text format 0.0.4).
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The `method` label: a standard method's name, or `OTHER` for any other token, so that
/// clients sending made-up methods cannot grow the series without bound.
pub(crate) fn method_label(method: &Method) -> &'static str {
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

/// The `route` label: the template the router matched, or `unmatched`. A `MatchedPath` is
/// an `Arc<str>`, so making one for a request is a reference count, not an allocation.
#[derive(Clone, Debug)]
enum Route {
    Matched(MatchedPath),
    Unmatched,
}

impl Route {
    fn as_str(&self) -> &str {
        match self {
            Route::Matched(path) => path.as_str(),
            Route::Unmatched => "unmatched",
        }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// The `status` label: `2xx`, `4xx`, …
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct StatusClass(u16);

impl EncodeLabelValue for StatusClass {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        write!(encoder, "{}xx", self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Route,
    status: StatusClass,
}

/// The `command` label: `POST /v1/models`, written out only when scraped.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Command {
    method: &'static str,
    route: Route,
}

impl EncodeLabelValue for Command {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.method)?;
        encoder.write_str(" ")?;
        encoder.write_str(self.route.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CommandLabels {
    command: Command,
    outcome: &'static str,
}

type LatencyFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// One process's metrics. Requests are counted as they are served; positions, lag and
/// worker jobs are read when scraped ([`Metrics::render`]).
pub struct Metrics {
    registry: Registry,
    requests: LatencyFamily,
    commands: Family<CommandLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = LatencyFamily::new_with_constructor(|| Histogram::new(BUCKETS));
        let commands = Family::<CommandLabels, Counter>::default();
        let mut registry = Registry::default();
        // prometheus-client adds the final period to help texts and `_total` to counters.
        registry.register(
            "modelreg_http_request_duration_seconds",
            "HTTP request latency",
            requests.clone(),
        );
        registry.register("modelreg_commands", "Commands by outcome", commands.clone());
        Self {
            registry,
            requests,
            commands,
        }
    }
}

impl Metrics {
    /// Records one served request: its latency by method, route and status class, and, for
    /// a command (any method but GET under `/v1/`), its outcome.
    pub fn observe_request(
        &self,
        method: &Method,
        route: Option<&MatchedPath>,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        let route = route.map_or(Route::Unmatched, |path| Route::Matched(path.clone()));
        let is_command = method != "GET" && route.as_str().starts_with("/v1/");
        let labels = RequestLabels {
            method,
            route,
            status: StatusClass(status.as_u16() / 100),
        };
        self.requests
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if !is_command {
            return;
        }
        let outcome = match status.as_u16() {
            ..400 => "ok",
            400..500 => "rejected",
            _ => "failed",
        };
        let labels = CommandLabels {
            command: Command {
                method,
                route: labels.route,
            },
            outcome,
        };
        self.commands.get_or_create(&labels).inc();
    }

    /// The exposition text (of [`CONTENT_TYPE`]) with the values read for this scrape.
    pub fn render(&self, scrape: Scrape) -> String {
        // What is known only now joins through a registry made for this scrape, so the
        // long-lived one holds no copy of values that belong to `app`.
        let mut scraped = Registry::default();
        scraped.register_collector(Box::new(scrape));
        let mut out = String::new();
        // Writing to a String cannot fail; an encoding error would be a bug in a label.
        let encoded =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
                .and_then(|()| {
                    prometheus_client::encoding::prometheus_text::encode(&mut out, &scraped)
                });
        if encoded.is_err() {
            tracing::error!("metrics could not be encoded");
        }
        out
    }
}

/// Values read at scrape time, encoded as constant metrics.
#[derive(Debug, Default)]
pub struct Scrape {
    pub log_position: u64,
    pub views_position: u64,
    /// `app::JobCounters::snapshot()`.
    pub jobs: Vec<((String, String), u64)>,
    /// How often the projector lost the log and resumed (`views::Views::resumes`).
    pub projector_resumes: u64,
    /// 1 while the projector waits to resume, else 0.
    pub projector_interrupted: u64,
    /// `app::ConsumerHealth::losses()`.
    pub consumer_losses: Vec<(String, u64)>,
    /// What the projector wrote since start (`views::Views::projector_writes()`): batches,
    /// events, and the time spent writing them.
    pub projector_batches: u64,
    pub projector_events: u64,
    pub projector_busy: Duration,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if !self.consumer_losses.is_empty() {
            let mut family = encoder.encode_descriptor(
                "modelreg_consumer_losses",
                "Times a worker's durable consumer lost the log and was opened anew.",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (consumer, count) in &self.consumer_losses {
                let labels = [("consumer", consumer.as_str())];
                ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
            }
        }
        for (name, help, count) in [
            (
                "modelreg_projector_batches",
                "Batches the projector wrote: one write transaction per views file each.",
                self.projector_batches,
            ),
            (
                "modelreg_projector_events",
                "Events the projector wrote into the views.",
                self.projector_events,
            ),
        ] {
            let counter = ConstCounter::new(count);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let busy = ConstCounter::new(self.projector_busy.as_secs_f64());
        busy.encode(encoder.encode_descriptor(
            "modelreg_projector_busy_seconds",
            "Time the projector spent writing batches; a rate near 1 means commands wait on it.",
            None,
            busy.metric_type(),
        )?)?;
        let resumes = ConstCounter::new(self.projector_resumes);
        resumes.encode(encoder.encode_descriptor(
            "modelreg_projector_resumes",
            "Times the projector lost the log (an error, or a tail stalled while the log moved on) and resumed from its checkpoint.",
            None,
            resumes.metric_type(),
        )?)?;
        if !self.jobs.is_empty() {
            let mut family = encoder.encode_descriptor(
                "modelreg_worker_jobs",
                "Worker jobs by outcome.",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for ((worker, outcome), count) in &self.jobs {
                let labels = [("worker", worker.as_str()), ("outcome", outcome.as_str())];
                ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
            }
        }
        for (name, help, value) in [
            (
                "modelreg_log_position",
                "Last position in the event log.",
                self.log_position,
            ),
            (
                "modelreg_views_position",
                "Last log position the views reflect.",
                self.views_position,
            ),
            (
                "modelreg_projection_lag",
                "Log positions the views are behind.",
                self.log_position.saturating_sub(self.views_position),
            ),
            (
                "modelreg_projector_interrupted",
                "1 while the projector waits to resume following the log.",
                self.projector_interrupted,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_keeps_its_names_labels_and_help() {
        let metrics = Metrics::default();
        metrics.observe_request(
            &Method::POST,
            None,
            StatusCode::NOT_FOUND,
            Duration::from_millis(3),
        );
        metrics.observe_request(
            &Method::from_bytes(b"BREW").expect("a method token"),
            None,
            StatusCode::OK,
            Duration::from_millis(700),
        );
        let text = metrics.render(Scrape {
            log_position: 10,
            views_position: 7,
            jobs: vec![(("connection-tests".to_owned(), "ok".to_owned()), 4)],
            projector_resumes: 2,
            projector_interrupted: 1,
            consumer_losses: vec![("dependents".to_owned(), 3)],
            projector_batches: 4,
            projector_events: 90,
            projector_busy: Duration::from_millis(1500),
        });
        for line in [
            "# HELP modelreg_http_request_duration_seconds HTTP request latency.",
            "# TYPE modelreg_http_request_duration_seconds histogram",
            "modelreg_http_request_duration_seconds_bucket{method=\"POST\",route=\"unmatched\",status=\"4xx\",le=\"0.0025\"} 0",
            "modelreg_http_request_duration_seconds_bucket{method=\"POST\",route=\"unmatched\",status=\"4xx\",le=\"0.005\"} 1",
            "modelreg_http_request_duration_seconds_bucket{method=\"OTHER\",route=\"unmatched\",status=\"2xx\",le=\"+Inf\"} 1",
            "modelreg_http_request_duration_seconds_count{method=\"POST\",route=\"unmatched\",status=\"4xx\"} 1",
            "# HELP modelreg_worker_jobs_total Worker jobs by outcome.",
            "# TYPE modelreg_worker_jobs_total counter",
            "modelreg_worker_jobs_total{worker=\"connection-tests\",outcome=\"ok\"} 4",
            "# HELP modelreg_log_position Last position in the event log.",
            "# TYPE modelreg_log_position gauge",
            "modelreg_log_position 10",
            "modelreg_views_position 7",
            "# HELP modelreg_projection_lag Log positions the views are behind.",
            "modelreg_projection_lag 3",
            "# TYPE modelreg_projector_resumes_total counter",
            "modelreg_projector_resumes_total 2",
            "modelreg_projector_interrupted 1",
            "modelreg_consumer_losses_total{consumer=\"dependents\"} 3",
            "# TYPE modelreg_projector_batches_total counter",
            "modelreg_projector_batches_total 4",
            "modelreg_projector_events_total 90",
            "# TYPE modelreg_projector_busy_seconds_total counter",
            "modelreg_projector_busy_seconds_total 1.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        // Unmatched requests are no commands: those are counted by route template only.
        assert!(!text.contains("modelreg_commands_total{"), "{text}");
    }
}
