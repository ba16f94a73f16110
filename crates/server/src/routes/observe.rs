//! What every route does around its handler, in one layer: refuses a body announced as far
//! over the limit, hands the metrics to `/metrics`, and times and counts the request.
//!
//! One hand-written layer rather than two `middleware::from_fn` and an `Extension` layer:
//! axum layers each route, and every `from_fn` clones the route's boxed service and boxes a
//! future and a `Next` per request. Resolve is on every LLM call, and this is its overhead.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::BODY_LIMIT;
use crate::metrics::Metrics;

/// [`Observe`] around each route.
#[derive(Clone)]
pub(super) struct ObserveLayer {
    metrics: Arc<Metrics>,
}

impl ObserveLayer {
    pub(super) fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// A route with its request observed (see the module).
#[derive(Clone)]
pub(super) struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        if announced_oversize(&request) {
            let refused = crate::extract::too_large().into_response();
            return Box::pin(std::future::ready(Ok(refused)));
        }
        let started = Instant::now();
        // Both cheap: a standard method is a plain value, a matched path an `Arc<str>`.
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        // For `/metrics`, which renders them.
        request.extensions_mut().insert(Arc::clone(&self.metrics));
        let metrics = Arc::clone(&self.metrics);
        // Called now: `poll_ready` was answered by this very service.
        let answer = self.inner.call(request);
        Box::pin(async move {
            let Ok(response) = answer.await;
            metrics.observe_request(
                &method,
                route.as_ref(),
                response.status(),
                started.elapsed(),
            );
            Ok(response)
        })
    }
}

/// A body announced as far over the limit (16 times) is refused before a byte of it is read,
/// instead of holding the connection while it arrives (or never does). One a little over
/// the limit is read up to it and refused then: a client still sending a small body reads
/// the answer instead of a reset connection.
fn announced_oversize(request: &Request) -> bool {
    request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .is_some_and(|length| length > 16 * BODY_LIMIT as u64)
}
