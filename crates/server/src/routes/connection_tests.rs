//! `/v1/connection-tests` and `/v1/models/{slug}/connection-tests`: Test Connection of a draft
//! or of a saved model, answered at once with a test a worker then runs.

use std::sync::Arc;

use api::schema;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use app::Registry;

use super::{Result, answer, query_problem};
use crate::auth::Caller;
use crate::extract::{Body, Param, bytes_problem, parse_json};

/// Test Connection of a draft (the Add form). Answers 202 with a test id; a worker makes the
/// call.
///
/// The smallest documented live request to the provider, with exactly the credential under
/// test (inline, or a saved `credential_id`). User-supplied URLs are checked before any
/// connection: link-local and cloud-metadata addresses are always refused, private and
/// loopback ranges unless the operator allows them. A passing test is the receipt that
/// `POST /v1/models` needs (`connection_test_id`), bound to a digest of the draft (org,
/// provider, endpoint or region, provider model id, credential fingerprint) and valid for 15
/// minutes.
#[utoipa::path(post, path = "/v1/connection-tests", tag = "connection tests",
    params(
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command."),
    ),
    request_body = api::DraftTest,
    responses(
        (status = 202, description = "Requested.", body = api::Positioned<api::ConnectionTest>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 413, response = crate::docs::TooLarge),
        (status = 415, response = crate::docs::UnsupportedMediaType),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn request_draft_test(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Body(request): Body<api::DraftTest>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::ACCEPTED,
        app::connection_tests::request_draft(&registry, &ctx, request).await?,
    ))
}

/// A test's status and result; `?wait=N` holds the answer up to N seconds (at most 30) until
/// it completes.
#[utoipa::path(get, path = "/v1/connection-tests/{id}", tag = "connection tests",
    params(("id" = String, Path), api::WaitQuery),
    responses(
        (status = 200, description = "The test.", body = api::Positioned<api::ConnectionTest>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 404, response = crate::docs::NotFound),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn get_connection_test(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
    query: std::result::Result<Query<api::WaitQuery>, QueryRejection>,
) -> Result<Response> {
    let wait = query
        .map_err(query_problem)?
        .wait
        .map(std::time::Duration::from_secs);
    Ok(answer(
        StatusCode::OK,
        app::connection_tests::get(&registry, &ctx, &id, wait).await?,
    ))
}

/// Test Connection of a saved model. No body (or `{}`) means the stored credential.
#[utoipa::path(post, path = "/v1/models/{slug}/connection-tests", tag = "connection tests",
    params(
        ("slug" = schema::Slug, Path),
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command."),
    ),
    request_body = Option<api::ModelTest>,
    responses(
        (status = 202, description = "Requested.", body = api::Positioned<api::ConnectionTest>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 404, response = crate::docs::NotFound),
        (status = 413, response = crate::docs::TooLarge),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn request_model_test(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(slug): Param,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let bytes = body.map_err(bytes_problem)?;
    // No body at all is the common case: test with the stored credential.
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        api::ModelTest::default()
    } else {
        parse_json(&bytes)?
    };
    Ok(answer(
        StatusCode::ACCEPTED,
        app::connection_tests::request_for_model(&registry, &ctx, &slug, body).await?,
    ))
}
