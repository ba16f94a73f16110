//! Routes and handlers. Each handler extracts, calls `app`, and shapes the answer: the
//! value as JSON with the log `position` it reflects, also in the `X-Modelreg-Position`
//! header.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Serialize;
use serde_json::json;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;

use app::connection_tests::{DraftTestRequest, ModelTestRequest};
use app::dependents::{CheckRequest, PutWorkflowRequest};
use app::requests::{AddModelRequest, EditModelRequest, IssueTokenRequest, MatchCredentialRequest};
use app::{Answer, AppError, Registry};

use crate::BODY_LIMIT;
use crate::auth::Caller;
use crate::extract::{Body, Param, bytes_problem, parse_json};
use crate::metrics::{Metrics, method_label};
use crate::problem::Problem;

/// Every served route as `METHOD path`, in OpenAPI path syntax; a test compares it with
/// `schemas/openapi.yaml`.
pub const ROUTES: &[&str] = &[
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /v1/models",
    "POST /v1/models",
    "GET /v1/models/{slug}",
    "PATCH /v1/models/{slug}",
    "DELETE /v1/models/{slug}",
    "POST /v1/models/{slug}/activation",
    "GET /v1/models/{slug}/workflows",
    "POST /v1/models/{model}/check",
    "GET /v1/resolve/{model}",
    "POST /v1/connection-tests",
    "GET /v1/connection-tests/{id}",
    "POST /v1/models/{slug}/connection-tests",
    "GET /v1/workflows",
    "GET /v1/workflows/{id}",
    "PUT /v1/workflows/{id}",
    "DELETE /v1/workflows/{id}",
    "GET /v1/credentials",
    "POST /v1/credentials/match",
    "GET /v1/credentials/{id}",
    "POST /v1/tokens",
];

pub fn router(registry: Arc<Registry>, metrics: Arc<Metrics>) -> Router {
    let api = Router::new()
        .route("/v1/models", get(list_models).post(add_model))
        .route(
            "/v1/models/{slug}",
            get(get_model).patch(edit_model).delete(deactivate_model),
        )
        .route("/v1/models/{slug}/activation", post(reactivate_model))
        .route("/v1/models/{slug}/workflows", get(model_references))
        .route("/v1/models/{model}/check", post(check_model))
        .route("/v1/resolve/{*model}", get(resolve))
        .route("/v1/connection-tests", post(request_draft_test))
        .route("/v1/connection-tests/{id}", get(get_connection_test))
        .route(
            "/v1/models/{slug}/connection-tests",
            post(request_model_test),
        )
        .route("/v1/workflows", get(list_workflows))
        .route(
            "/v1/workflows/{id}",
            get(get_workflow).put(put_workflow).delete(delete_workflow),
        )
        .route("/v1/credentials", get(list_credentials))
        .route("/v1/credentials/match", post(match_credential))
        .route("/v1/credentials/{id}", get(get_credential))
        .route("/v1/tokens", post(issue_token))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    api.layer(request_log())
        .layer(middleware::from_fn(measure))
        .layer(Extension(metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(registry)
}

/// Health, readiness and metrics alone, for a worker process (no API, no request metrics).
pub fn ops_router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .fallback(not_found)
        .layer(Extension(Arc::new(Metrics::default())))
        .with_state(registry)
}

/// Times and counts every request (see `metrics.rs` for the labels).
async fn measure(
    Extension(metrics): Extension<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    // Both cheap: a standard method is a plain value, a matched path an `Arc<str>`.
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    metrics.observe_request(
        &method,
        route.as_ref(),
        response.status(),
        started.elapsed(),
    );
    response
}

/// tower-http's trace layer with our span and line, its other events off.
type RequestLog = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request) -> tracing::Span,
    (),
    fn(&Response, Duration, &tracing::Span),
    (),
    (),
    (),
>;

/// One info line per request, in a span naming its method and route template: never a
/// header, the path or query as sent, or a body, at any level, since those carry tokens and
/// keys. tower-http's other events are off: a failed request is logged where its problem is
/// made (`problem.rs`), and a started request or a body chunk is not worth a line.
fn request_log() -> RequestLog {
    TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request) -> tracing::Span)
        .on_request(())
        .on_response(request_done as fn(&Response, Duration, &tracing::Span))
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    tracing::info_span!("request", method = %method_label(request.method()), route = %route)
}

fn request_done(response: &Response, latency: Duration, _: &tracing::Span) {
    let ms = latency.as_secs_f64() * 1000.0;
    tracing::info!(status = response.status().as_u16(), ms, "request");
}

/// The answer to a query or command: `value`'s fields plus `position`.
fn answer<T: Serialize>(status: StatusCode, answer: Answer<T>) -> Response {
    let body = serde_json::to_vec(&answer.value).unwrap_or_else(|_| b"null".to_vec());
    answer_bytes(status, body, answer.position)
}

/// An answer already serialized as JSON, with `position` spliced in.
fn answer_bytes(status: StatusCode, mut body: Vec<u8>, position: u64) -> Response {
    // Serialized once, straight to bytes; `position` is spliced into the object (or a list
    // is wrapped as `items`), which is cheaper than building a JSON value first.
    let position = position.to_string();
    if body.last() == Some(&b'}') {
        body.pop();
        if body.len() > 1 {
            body.push(b',');
        }
        body.extend_from_slice(b"\"position\":");
        body.extend_from_slice(position.as_bytes());
        body.push(b'}');
    } else {
        let mut wrapped = b"{\"items\":".to_vec();
        wrapped.extend_from_slice(&body);
        wrapped.extend_from_slice(b",\"position\":");
        wrapped.extend_from_slice(position.as_bytes());
        wrapped.push(b'}');
        body = wrapped;
    }
    let mut response = (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&position) {
        response.headers_mut().insert("x-modelreg-position", value);
    }
    response
}

type Result<T> = std::result::Result<T, Problem>;

async fn list_models(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
) -> Result<Response> {
    Ok(answer(StatusCode::OK, registry.list_models(&ctx)?))
}

async fn add_model(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Body(request): Body<AddModelRequest>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::CREATED,
        registry.add_model(&ctx, request).await?,
    ))
}

async fn get_model(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(slug): Param,
) -> Result<Response> {
    Ok(answer(StatusCode::OK, registry.get_model(&ctx, &slug)?))
}

async fn edit_model(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(slug): Param,
    headers: HeaderMap,
    Body(request): Body<EditModelRequest>,
) -> Result<Response> {
    let if_match = if_match(&headers)?;
    Ok(answer(
        StatusCode::OK,
        registry.edit_model(&ctx, &slug, request, if_match).await?,
    ))
}

fn query_problem(rejection: QueryRejection) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "query.invalid",
        rejection.body_text(),
    )
}

#[derive(serde::Deserialize)]
struct ConfirmQuery {
    #[serde(default)]
    confirm: bool,
}

async fn deactivate_model(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(slug): Param,
    query: std::result::Result<Query<ConfirmQuery>, QueryRejection>,
) -> Result<Response> {
    let confirm = query.map_err(query_problem)?.confirm;
    Ok(answer(
        StatusCode::OK,
        registry.deactivate_model(&ctx, &slug, confirm).await?,
    ))
}

async fn reactivate_model(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(slug): Param,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        registry.reactivate_model(&ctx, &slug).await?,
    ))
}

async fn model_references(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(slug): Param,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        registry.model_references(&ctx, &slug)?,
    ))
}

async fn check_model(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(model): Param,
    Body(request): Body<CheckRequest>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        registry.check_model(&ctx, &model, request)?,
    ))
}

async fn resolve(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(model): Param,
) -> Result<Response> {
    let resolved = registry.resolve(&ctx, &model).await?;
    Ok(no_store(answer_bytes(
        StatusCode::OK,
        resolved.value.to_json(),
        resolved.position,
    )))
}

async fn request_draft_test(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Body(request): Body<DraftTestRequest>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::ACCEPTED,
        registry.request_draft_test(&ctx, request).await?,
    ))
}

async fn request_model_test(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(slug): Param,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let bytes = body.map_err(bytes_problem)?;
    // No body at all is the common case: test with the stored credential.
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        ModelTestRequest::default()
    } else {
        parse_json(&bytes)?
    };
    Ok(answer(
        StatusCode::ACCEPTED,
        registry.request_model_test(&ctx, &slug, body).await?,
    ))
}

#[derive(serde::Deserialize)]
struct WaitQuery {
    /// Seconds to wait for a pending test to complete (at most 30).
    wait: Option<u64>,
}

async fn get_connection_test(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
    query: std::result::Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Response> {
    let wait = query
        .map_err(query_problem)?
        .wait
        .map(std::time::Duration::from_secs);
    Ok(answer(
        StatusCode::OK,
        registry.get_connection_test(&ctx, &id, wait).await?,
    ))
}

#[derive(serde::Deserialize)]
struct BrokenQuery {
    #[serde(default)]
    broken: bool,
}

async fn list_workflows(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    query: std::result::Result<Query<BrokenQuery>, QueryRejection>,
) -> Result<Response> {
    let broken = query.map_err(query_problem)?.broken;
    Ok(answer(
        StatusCode::OK,
        registry.list_workflows(&ctx, broken)?,
    ))
}

async fn get_workflow(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
) -> Result<Response> {
    Ok(answer(StatusCode::OK, registry.get_workflow(&ctx, &id)?))
}

async fn put_workflow(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
    Body(request): Body<PutWorkflowRequest>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        registry.put_workflow(&ctx, &id, request).await?,
    ))
}

async fn delete_workflow(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        registry.delete_workflow(&ctx, &id).await?,
    ))
}

async fn list_credentials(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
) -> Result<Response> {
    Ok(answer(StatusCode::OK, registry.list_credentials(&ctx)?))
}

async fn get_credential(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
) -> Result<Response> {
    Ok(answer(StatusCode::OK, registry.get_credential(&ctx, &id)?))
}

async fn match_credential(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Body(request): Body<MatchCredentialRequest>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        registry.match_credential(&ctx, request)?,
    ))
}

async fn issue_token(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Body(request): Body<IssueTokenRequest>,
) -> Result<Response> {
    let issued = registry
        .issue_token(&ctx, &request.label, &request.role)
        .await?;
    let token = issued
        .value
        .token
        .as_ref()
        .map(|t| t.expose_secret().to_owned());
    let body = json!({
        "token_id": issued.value.token_id,
        "label": issued.value.label,
        "role": issued.value.role,
        "token": token,
    });
    Ok(no_store(answer(
        StatusCode::CREATED,
        Answer {
            value: body,
            position: issued.position,
        },
    )))
}

/// Marks an answer that carries a secret (a resolved credential, a new token) as not to be
/// kept by any cache.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

/// `If-Match: "3"` (or `3`, or `W/"3"`): the model version the edit was made against.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>> {
    let Some(value) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse().map(Some).map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "if_match.invalid",
            "If-Match takes the model's version, e.g. If-Match: \"3\"",
        )
    })
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the projector runs and the views have caught up with the log.
/// How far behind the log's position (in time) the views may be and still count as ready.
const READY_LAG: std::time::Duration = std::time::Duration::from_secs(1);

async fn readyz(State(registry): State<Arc<Registry>>) -> Response {
    if let Some(why) = registry.views.failure() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("projector stopped: {why}\n"),
        )
            .into_response();
    }
    if let Some(why) = registry.views.interrupted() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("projector resuming after losing the log: {why}\n"),
        )
            .into_response();
    }
    let log = match registry.log.last_seq().await {
        Ok(seq) => seq,
        Err(error) => return Problem::from(AppError::from(error)).into_response(),
    };
    // Under write load the log is always a little ahead; a replica whose views reach the
    // position the log had when asked, within READY_LAG, is keeping up.
    match registry.views.wait_for(log, READY_LAG).await {
        Ok(views) => (StatusCode::OK, format!("ready at {views}\n")).into_response(),
        Err(_) => {
            let views = registry.views.position();
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("catching up: views at {views}, log at {log}\n"),
            )
                .into_response()
        }
    }
}

async fn render_metrics(
    State(registry): State<Arc<Registry>>,
    Extension(metrics): Extension<Arc<Metrics>>,
) -> Response {
    let log = registry.log.last_seq().await.unwrap_or(0);
    let text = metrics.render(log, registry.views.position(), &registry.jobs.snapshot());
    let mut response = text.into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}

async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "route.not_found",
        "no such route; see schemas/openapi.yaml",
    )
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "route.method_not_allowed",
        "this route does not take that method",
    )
}
