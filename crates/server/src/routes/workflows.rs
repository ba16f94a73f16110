//! `/v1/workflows`: workflows as the pipelines product reports them, with their references.

use std::sync::Arc;

use api::schema;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use app::Registry;

use super::{Result, answer, query_problem};
use crate::auth::Caller;
use crate::extract::{Body, Param};

/// The org's workflows with their references, in id order; `?broken=true` lists active
/// workflows that reference a deactivated or unknown model. With `limit` (and the `cursor`
/// of the page before) one page at a time.
#[utoipa::path(get, path = "/v1/workflows", tag = "workflows",
    params(api::BrokenQuery),
    responses(
        (status = 200, description = "Workflows.", body = api::Items<api::Workflow>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn list_workflows(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    query: std::result::Result<Query<api::BrokenQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(query) = query.map_err(query_problem)?;
    Ok(answer(
        StatusCode::OK,
        app::workflows::page(&registry, &ctx, &query)?,
    ))
}

/// One workflow, its references (status and capability warnings) and notices.
#[utoipa::path(get, path = "/v1/workflows/{id}", tag = "workflows",
    params(("id" = schema::WorkflowId, Path)),
    responses(
        (status = 200, description = "The workflow.", body = api::Positioned<api::Workflow>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 404, response = crate::docs::NotFound),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn get_workflow(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::workflows::get(&registry, &ctx, &id)?,
    ))
}

/// Report a workflow (the pipelines product, with a service or admin token). Also accepted
/// as a request on `pipelines.<org>.workflows.<id>` in NATS mode.
#[utoipa::path(put, path = "/v1/workflows/{id}", tag = "workflows",
    params(
        ("id" = schema::WorkflowId, Path),
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command."),
    ),
    request_body = api::PutWorkflow,
    responses(
        (status = 200, description = "The saved workflow.", body = api::Positioned<api::Workflow>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 409, response = crate::docs::Conflict),
        (status = 413, response = crate::docs::TooLarge),
        (status = 415, response = crate::docs::UnsupportedMediaType),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn put_workflow(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
    Body(request): Body<api::PutWorkflow>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::workflows::put(&registry, &ctx, &id, request).await?,
    ))
}

/// Forget a workflow and its references. The id is free again: a workflow reported under it
/// later is saved anew.
#[utoipa::path(delete, path = "/v1/workflows/{id}", tag = "workflows",
    params(
        ("id" = schema::WorkflowId, Path),
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command."),
    ),
    responses(
        (status = 200, description = "Deleted.", body = api::Positioned<api::WorkflowSummary>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 404, response = crate::docs::NotFound),
        (status = 409, response = crate::docs::Conflict),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn delete_workflow(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::workflows::delete(&registry, &ctx, &id).await?,
    ))
}
