//! The HTTP API: axum routes under `/v1`, bearer-token auth, RFC 9457 problem+json errors,
//! health, readiness and Prometheus metrics; the web console (`webconsole`) on the same router.
//!
//! Architecture invariant: no business rule lives here. Handlers extract, call `app`, and
//! shape the answer; which status an error gets is decided once, in `app` (`to_problem`).
//! Every route is registered once, with its OpenAPI operation: [`openapi`] is the document of
//! what [`router`] serves.

mod auth;
mod docs;
mod extract;
mod listen;
mod metrics;
mod problem;
mod routes;

use std::future::Future;
use std::sync::Arc;

pub use listen::Timeouts;
pub use metrics::{Metrics, Scrape};
pub use problem::Problem;
pub use routes::{openapi, ops_router, router};

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Serves `/healthz`, `/readyz` and `/metrics` alone on `listener` until `shutdown`
/// resolves: a worker process's window for operators (its job counters live in it). The
/// same accept loop as the API's, so its timeouts and rejections hold here too.
pub async fn serve_ops(
    listener: tokio::net::TcpListener,
    registry: Arc<app::Registry>,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listen::serve(listener, ops_router(registry), timeouts, shutdown).await
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Arc<app::Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, registry, Timeouts::default(), shutdown).await
}

/// [`serve`] with the connection timeouts given.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    registry: Arc<app::Registry>,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let console = Arc::new(webconsole::Console::default());
    serve_console(listener, registry, console, timeouts, shutdown).await
}

/// [`serve_with`] with the given console, whose sign-in codes the caller issues (the
/// bootstrap admin's link that `modelreg serve` prints).
pub async fn serve_console(
    listener: tokio::net::TcpListener,
    registry: Arc<app::Registry>,
    console: Arc<webconsole::Console>,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(registry, Arc::new(Metrics::default()), console);
    listen::serve(listener, app, timeouts, shutdown).await
}
