//! `/v1/audit` (the org's trail and the running digest) and the histories of one model and
//! one credential.

use std::sync::Arc;

use api::schema;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use app::Registry;

use super::{Result, answer, query_problem};
use crate::auth::Caller;
use crate::extract::Param;

/// The org's audit trail, newest first (admins only): who did what, when, from where, with
/// the non-secret fields each event changed. Page with `cursor` (`next_cursor` of the
/// previous page): a place in the log, so entries landing meanwhile never shift a page.
#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(api::AuditQuery),
    responses(
        (status = 200, description = "A page of the trail.", body = api::Positioned<api::AuditPage>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn list_audit(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    query: std::result::Result<Query<api::AuditQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(query) = query.map_err(query_problem)?;
    Ok(answer(
        StatusCode::OK,
        app::audit::list(&registry, &ctx, query)?,
    ))
}

/// The running digest over the whole log at this server's views position (admins only).
/// Record `expect`; `modelreg audit verify --expect` later proves the log up to there is
/// unchanged and complete.
#[utoipa::path(get, path = "/v1/audit/head", tag = "audit",
    responses(
        (status = 200, description = "The digest.", body = api::Positioned<api::AuditHead>),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn audit_head(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
) -> Result<Response> {
    Ok(answer(StatusCode::OK, app::audit::head(&registry, &ctx)?))
}

/// A custom model's history, newest first: its changes, connection tests of it and the
/// dependents warnings of its deactivations. Any token of the org.
#[utoipa::path(get, path = "/v1/models/{slug}/history", tag = "audit",
    params(("slug" = schema::Slug, Path), api::HistoryQuery),
    responses(
        (status = 200, description = "A page of the model's history.", body = api::Positioned<api::AuditPage>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 404, response = crate::docs::NotFound),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn model_history(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(slug): Param,
    query: std::result::Result<Query<api::HistoryQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(query) = query.map_err(query_problem)?;
    Ok(answer(
        StatusCode::OK,
        app::audit::model_history(&registry, &ctx, &slug, query)?,
    ))
}

/// A saved credential's history, newest first: its events and the models that took it up
/// or let it go. Previews and fingerprints only, never a secret. Any token of the org.
#[utoipa::path(get, path = "/v1/credentials/{id}/history", tag = "audit",
    params(("id" = schema::CredentialId, Path), api::HistoryQuery),
    responses(
        (status = 200, description = "A page of the credential's history.", body = api::Positioned<api::AuditPage>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 404, response = crate::docs::NotFound),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn credential_history(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
    query: std::result::Result<Query<api::HistoryQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(query) = query.map_err(query_problem)?;
    Ok(answer(
        StatusCode::OK,
        app::audit::credential_history(&registry, &ctx, &id, query)?,
    ))
}
