//! `/healthz`, `/readyz` and `/metrics`: the operators' window, on the API and on workers.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use app::{AppError, Registry};

use crate::metrics::Metrics;
use crate::problem::Problem;

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process is up.", body = String, content_type = "text/plain")))]
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// How far behind the log's position (in time) the views may be and still count as ready.
const READY_LAG: std::time::Duration = std::time::Duration::from_secs(1);

/// Marks the router of a worker process (`ops_router`): its readiness includes its
/// consumers, which are all it does.
#[derive(Clone, Copy)]
pub(crate) struct WorkerProcess;

/// Readiness: ready when the projector runs and the views have caught up with the log. A
/// worker process is also unready while one of its consumers resumes after losing the log;
/// an API replica serves every request meanwhile, so it stays ready and says which consumer
/// resumes (every replica's consumers are lost at once when a NATS node dies, and taking
/// them all out of rotation for that would stop the whole API).
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Ready (with a `warning:` line for each weakened guarantee, or a worker consumer resuming).", body = String, content_type = "text/plain"),
        (status = 503, description = "Catching up, or the projector stopped; on a worker process, also a consumer resuming.", body = String, content_type = "text/plain"),
    ))]
pub(crate) async fn readyz(
    State(registry): State<Arc<Registry>>,
    worker: Option<Extension<WorkerProcess>>,
) -> Response {
    let views = registry.views();
    if let Some(why) = views.failure() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("projector stopped: {why}\n"),
        )
            .into_response();
    }
    if let Some(why) = views.interrupted() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("projector resuming after losing the log: {why}\n"),
        )
            .into_response();
    }
    let resuming = registry.consumers().interrupted().map(|(consumer, why)| {
        format!("worker consumer {consumer} resuming after losing the log: {why}")
    });
    if let Some(resuming) = &resuming
        && worker.is_some()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{resuming}\n")).into_response();
    }
    let log = match registry.log().last_seq().await {
        Ok(seq) => seq,
        Err(error) => return Problem::from(AppError::from(error)).into_response(),
    };
    // Under write load the log is always a little ahead; a replica whose views reach the
    // position the log had when asked, within READY_LAG, is keeping up.
    match views.wait_for(log, READY_LAG).await {
        Ok(reached) => {
            let mut text = format!("ready at {reached}\n");
            for warning in registry.operator_warnings().into_iter().chain(resuming) {
                text.push_str(&format!("warning: {warning}\n"));
            }
            (StatusCode::OK, text).into_response()
        }
        Err(_) => {
            let reached = views.position();
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("catching up: views at {reached}, log at {log}\n"),
            )
                .into_response()
        }
    }
}

/// Prometheus text metrics (request latency, commands by outcome, projection lag, the
/// projector's writes, worker jobs).
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Exposition text.", body = String, content_type = "text/plain")))]
pub(crate) async fn render_metrics(
    State(registry): State<Arc<Registry>>,
    Extension(metrics): Extension<Arc<Metrics>>,
) -> Response {
    let views = registry.views();
    let written = views.projector_writes();
    let text = metrics.render(crate::metrics::Scrape {
        log_position: registry.log().last_seq().await.unwrap_or(0),
        views_position: views.position(),
        jobs: registry.jobs().snapshot(),
        projector_resumes: views.resumes(),
        projector_interrupted: u64::from(views.interrupted().is_some()),
        consumer_losses: registry.consumers().losses(),
        projector_batches: written.batches,
        projector_events: written.events,
        projector_busy: written.busy,
    });
    let mut response = text.into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}
