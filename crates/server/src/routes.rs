//! The router: every route registered once, with its OpenAPI operation (utoipa-axum), so the
//! document is generated from what is served. Each handler extracts, calls `app`, and shapes
//! the answer: the value as JSON with the log `position` it reflects, also in the
//! `X-Modelreg-Position` header.

mod audit;
mod catalog;
mod connection_tests;
mod credentials;
mod models;
mod observe;
mod ops;
mod providers;
mod resolve;
mod usage;
mod workflows;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use serde::Serialize;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use app::{Answer, Registry};

use crate::BODY_LIMIT;
use crate::metrics::{Metrics, method_label};
use crate::problem::Problem;

type Result<T> = std::result::Result<T, Problem>;

/// Every documented route, each registered once: axum serves what the document describes.
fn documented() -> OpenApiRouter<Arc<Registry>> {
    OpenApiRouter::with_openapi(crate::docs::Frame::openapi())
        .routes(routes!(models::list_models, models::add_model))
        .routes(routes!(
            models::get_model,
            models::edit_model,
            models::deactivate_model
        ))
        .routes(routes!(models::reactivate_model))
        .routes(routes!(models::model_references))
        .routes(routes!(models::check_model))
        .routes(routes!(providers::list_providers))
        .routes(routes!(resolve::resolve))
        .routes(routes!(resolve::litellm_config))
        .routes(routes!(resolve::position))
        .routes(routes!(connection_tests::request_draft_test))
        .routes(routes!(connection_tests::get_connection_test))
        .routes(routes!(connection_tests::request_model_test))
        .routes(routes!(workflows::list_workflows))
        .routes(routes!(
            workflows::get_workflow,
            workflows::put_workflow,
            workflows::delete_workflow
        ))
        .routes(routes!(
            credentials::list_credentials,
            credentials::create_credential
        ))
        .routes(routes!(credentials::match_credential))
        .routes(routes!(
            credentials::get_credential,
            credentials::rename_credential,
            credentials::delete_credential
        ))
        .routes(routes!(credentials::rotate_credential))
        .routes(routes!(credentials::shred_version))
        .routes(routes!(credentials::issue_token, credentials::list_tokens))
        .routes(routes!(credentials::revoke_token))
        .routes(routes!(catalog::get_catalog))
        .routes(routes!(catalog::get_catalog_model))
        .routes(routes!(catalog::get_choices))
        .routes(routes!(catalog::choose_default))
        .routes(routes!(catalog::hide_models))
        .routes(routes!(audit::list_audit))
        .routes(routes!(audit::audit_head))
        .routes(routes!(audit::model_history))
        .routes(routes!(audit::credential_history))
        .routes(routes!(usage::report_usage))
        .routes(routes!(usage::usage_summary))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::render_metrics))
}

/// The OpenAPI document of the API, generated from the routes and the `api` types. A
/// catch-all segment (`{*model}`, which may hold slashes) is written `{model}`, as OpenAPI
/// has no catch-all syntax.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut document) = documented().split_for_parts();
    let paths = std::mem::take(&mut document.paths.paths);
    document.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    document
}

/// The JSON API and, beside it on the same router, the web console (`webconsole::routes`).
pub fn router(
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    console: Arc<webconsole::Console>,
) -> Router {
    let (api, _) = documented().split_for_parts();
    api.merge(webconsole::routes(console))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(request_log())
        .layer(observe::ObserveLayer::new(metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(registry)
}

/// Health, readiness and metrics alone, for a worker process (no API, no request metrics).
pub fn ops_router(registry: Arc<Registry>) -> Router {
    let (ops, _) = OpenApiRouter::<Arc<Registry>>::new()
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::render_metrics))
        .split_for_parts();
    ops.fallback(|| async { route_not_found() })
        .layer(Extension(Arc::new(Metrics::default())))
        .layer(Extension(ops::WorkerProcess))
        .with_state(registry)
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
        response.headers_mut().insert(POSITION_HEADER, value);
    }
    response
}

/// Named once: inserting by `&str` parses and checks the name on every answer.
const POSITION_HEADER: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-modelreg-position");

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
/// `If-Match: *` asks only that the model exists, as an edit does anyway (RFC 9110 13.1.1).
fn if_match(headers: &HeaderMap) -> Result<Option<u64>> {
    let Some(value) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse().map(Some).map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "if_match.invalid",
            "If-Match takes the model's version, e.g. If-Match: \"3\", or *",
        )
    })
}

fn query_problem(rejection: QueryRejection) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "query.invalid",
        query_mistake(&rejection.body_text()),
    )
}

/// What is wrong with a query string, in words that never quote it. axum's text reads
/// "<its fixed words>: <parameter>: <serde's message>"; an unknown parameter's name is the
/// client's (a key pasted as `?sk-…` is one), so only our own words are kept: the names of
/// the parameters the route takes, and the name of one whose value is wrong.
fn query_mistake(text: &str) -> String {
    let said = text.split_once(": ").map_or("", |(_, said)| said);
    if let Some((_, unknown)) = said.split_once("unknown field `") {
        // serde puts our names last, after the unknown one.
        let takes = unknown
            .rsplit_once(", expected ")
            .map(|(_, expected)| format!(", expected {expected}"))
            .unwrap_or_default();
        return format!("the query has a parameter this route does not take{takes}");
    }
    if let Some(missing) = said.strip_prefix("missing field `") {
        return format!("missing query parameter `{missing}");
    }
    // A wrong value was read for one of the route's own parameters, whose name is ours.
    let parameter = said.split_once(": ").map(|(parameter, _)| parameter);
    match parameter
        .filter(|p| p.len() <= 64 && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        Some(parameter) => format!("query parameter `{parameter}` has a value of the wrong kind"),
        None => "the query string cannot be read".to_owned(),
    }
}

fn route_not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "route.not_found",
        "no such route; see schemas/openapi.yaml",
    )
}

async fn not_found(uri: axum::http::Uri) -> Response {
    if is_api_path(uri.path()) {
        return route_not_found().into_response();
    }
    webconsole::refusal_page(&api::Problem::new(
        404,
        "console.not_found",
        "the console has no such page",
    ))
}

async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    if is_api_path(uri.path()) {
        return Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "route.method_not_allowed",
            "this route does not take that method",
        )
        .into_response();
    }
    webconsole::refusal_page(&api::Problem::new(
        405,
        "console.method_not_allowed",
        "this address is a form's action, not a page: open it from the console's links",
    ))
}

/// The JSON API's paths (and the probes beside it), which answer problem+json; every other
/// path is the console's.
fn is_api_path(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/") || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problem a query string gets on the models list, read as axum reads it.
    fn query_detail(query: &str) -> String {
        let uri: axum::http::Uri = format!("/v1/models?{query}").parse().expect("a URI");
        let Err(rejection) = axum::extract::Query::<api::ModelsQuery>::try_from_uri(&uri) else {
            panic!("{query} was taken");
        };
        query_mistake(&rejection.body_text())
    }

    /// An unknown parameter is the client's word and never comes back (a key pasted as
    /// `?sk-…`, or with dots, backticks or colons in it); the route's own names do.
    #[test]
    fn a_query_mistake_never_quotes_the_query() {
        for query in [
            "sk-canary-42",
            "sk-canary-42=1",
            "limit=1&sk.canary.42=x",
            "sk%60canary-42%3A%20x=1",
        ] {
            let detail = query_detail(query);
            assert!(!detail.contains("canary"), "{query}: {detail}");
            assert!(
                detail.starts_with(
                    "the query has a parameter this route does not take, expected one of `as_of`"
                ),
                "{query}: {detail}"
            );
        }
        let detail = query_detail("limit=sk-canary-42");
        assert_eq!(
            detail,
            "query parameter `limit` has a value of the wrong kind"
        );
        let detail = query_detail("limit=99999999999");
        assert_eq!(
            detail,
            "query parameter `limit` has a value of the wrong kind"
        );
    }

    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/openapi.yaml")
    }

    fn generated() -> String {
        openapi().to_yaml().expect("the document serializes")
    }

    /// `schemas/openapi.yaml` is the generated document, committed: a change to a route or a
    /// wire type must come with the regenerated file (`MODELREG_BLESS=1 cargo test -p
    /// server` writes it).
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let generated = generated();
        if std::env::var("MODELREG_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(committed_path(), &generated).expect("write schemas/openapi.yaml");
        }
        let committed = std::fs::read_to_string(committed_path()).expect("schemas/openapi.yaml");
        assert!(
            committed == generated,
            "schemas/openapi.yaml is stale: run MODELREG_BLESS=1 cargo test -p server"
        );
    }

    /// The document is OpenAPI 3.1 as an independent parser reads it, not only as utoipa
    /// writes it.
    #[test]
    fn the_document_parses_as_openapi_3_1() {
        let spec = oas3::from_yaml(generated()).expect("a valid OpenAPI 3.1 document");
        assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
        let paths = spec.paths.expect("paths");
        assert!(
            paths.contains_key("/v1/resolve/{model}"),
            "catch-all written as a parameter"
        );
        assert!(paths.keys().all(|path| !path.contains('*')));
    }

    #[test]
    fn bodies_refuse_unknown_fields_and_mark_required_ones() {
        let document = serde_json::to_value(openapi()).expect("json");
        let add = &document["components"]["schemas"]["AddModel"];
        assert_eq!(add["additionalProperties"], false, "{add}");
        let required: Vec<&str> = add["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        for field in [
            "display_name",
            "provider",
            "provider_model_id",
            "max_tokens",
        ] {
            assert!(required.contains(&field), "{field} in {required:?}");
        }
        assert!(!required.contains(&"credential"), "{required:?}");
        // Patterns come from the domain's rules.
        let slug = &document["components"]["schemas"]["Slug"];
        assert_eq!(slug["pattern"], domain::values::Slug::PATTERN, "{slug}");
        // Operations list their statuses, not a catch-all.
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("item") {
                let responses = operation["responses"].as_object().expect("responses");
                assert!(!responses.contains_key("default"), "{method} {path}");
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{method} {path} has no success"
                );
            }
        }
    }
}
