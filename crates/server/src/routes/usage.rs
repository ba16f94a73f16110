//! `/v1/usage`: usage records from pipeline runtimes, and the spend summary.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use app::Registry;

use super::{Result, answer, query_problem};
use crate::auth::Caller;
use crate::extract::Body;

/// Report a batch of usage records (a service or admin token): model, workflow, tokens,
/// finish reason, truncated tool calls, round and time of each call, never its text. A
/// record sent again (by id) is counted once; a batch with a refused record records nothing.
#[utoipa::path(post, path = "/v1/usage", tag = "usage",
    request_body = api::UsageBatch,
    responses(
        (status = 200, description = "What the batch recorded.", body = api::Positioned<api::UsageReceipt>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 413, response = crate::docs::TooLarge),
        (status = 415, response = crate::docs::UnsupportedMediaType),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn report_usage(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Body(batch): Body<api::UsageBatch>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::usage::record(&registry, &ctx, batch).await?,
    ))
}

/// Tokens and spend of the org's calls in a time range, grouped by model, workflow or day.
/// Each call is priced at the costs its model had when it was recorded; calls of a model
/// with unknown costs are counted in tokens and flagged `unpriced`, never priced at $0.
#[utoipa::path(get, path = "/v1/usage/summary", tag = "usage",
    params(api::UsageSummaryQuery),
    responses(
        (status = 200, description = "The summary.", body = api::Positioned<api::UsageSummary>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn usage_summary(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    query: std::result::Result<Query<api::UsageSummaryQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(query) = query.map_err(query_problem)?;
    Ok(answer(
        StatusCode::OK,
        app::usage::summary(&registry, &ctx, query)?,
    ))
}
