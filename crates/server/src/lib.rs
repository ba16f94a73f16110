//! The HTTP API: axum routes under `/v1`, bearer-token auth, RFC 9457 problem+json errors,
//! health, readiness and Prometheus metrics.
//!
//! Architecture invariant: no business rule lives here. Handlers extract, call `app`, and
//! shape the answer; `problem.rs` is the one place that maps errors to status codes.

mod auth;
mod extract;
mod metrics;
mod problem;
mod routes;

use std::future::Future;
use std::sync::Arc;

pub use metrics::Metrics;
pub use problem::Problem;
pub use routes::{ROUTES, router};

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Serves `router` on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Arc<app::Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(registry, Arc::new(Metrics::default()));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
