//! `/v1/credentials` (saved credentials, metadata only) and `/v1/tokens` (API tokens).

use std::sync::Arc;

use api::schema;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use app::Registry;

use super::{Result, answer, no_store, query_problem};
use crate::auth::Caller;
use crate::extract::{Body, Param};

/// Saved credentials, metadata only (never a secret); with `as_of`, as they were then.
#[utoipa::path(get, path = "/v1/credentials", tag = "credentials",
    params(api::AsOfQuery),
    responses(
        (status = 200, description = "Credentials.", body = api::Items<api::Credential>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn list_credentials(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    query: std::result::Result<Query<api::AsOfQuery>, QueryRejection>,
) -> Result<Response> {
    if let Some(as_of) = query.map_err(query_problem)?.0.as_of {
        return Ok(answer(
            StatusCode::OK,
            app::as_of::credentials(&registry, &ctx, &as_of).await?,
        ));
    }
    Ok(answer(
        StatusCode::OK,
        app::credentials::list(&registry, &ctx)?,
    ))
}

/// One saved credential, metadata only.
#[utoipa::path(get, path = "/v1/credentials/{id}", tag = "credentials",
    params(("id" = schema::CredentialId, Path)),
    responses(
        (status = 200, description = "The credential.", body = api::Positioned<api::Credential>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 404, response = crate::docs::NotFound),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn get_credential(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::credentials::get(&registry, &ctx, &id)?,
    ))
}

/// Is this secret already saved? ("Reuse saved credentials"). Saves nothing.
#[utoipa::path(post, path = "/v1/credentials/match", tag = "credentials",
    request_body = api::MatchCredential,
    responses(
        (status = 200, description = "The saved credential with this secret, or null.", body = api::Positioned<api::CredentialMatch>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 413, response = crate::docs::TooLarge),
        (status = 415, response = crate::docs::UnsupportedMediaType),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn match_credential(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Body(request): Body<api::MatchCredential>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::credentials::matching(&registry, &ctx, request)?,
    ))
}

/// Issue an API token for the caller's org (admins only). The token is shown once, with
/// `Cache-Control: no-store`.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens",
    params(
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command; a retry answers without the token's secret."),
    ),
    request_body = api::IssueToken,
    responses(
        (status = 201, description = "The token.", body = api::Positioned<api::IssuedToken>),
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
pub(crate) async fn issue_token(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Body(request): Body<api::IssueToken>,
) -> Result<Response> {
    let issued = app::orgs::issue_token(&registry, &ctx, request).await?;
    Ok(no_store(answer(StatusCode::CREATED, issued)))
}

/// The org's API tokens (admins only): label, role, who issued it and when, and whether it
/// was revoked. Never a secret.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    responses(
        (status = 200, description = "Tokens, in the order they were issued.", body = api::Items<api::Token>),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn list_tokens(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::orgs::list_tokens(&registry, &ctx)?,
    ))
}

/// Revoke a token (admins only): refused from the next request on, on every replica once
/// its views include the revocation. The org's last active admin token cannot be revoked
/// (409 `token.last_admin`); revoking a revoked token answers it unchanged.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens",
    params(
        ("id" = schema::TokenId, Path),
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command."),
    ),
    responses(
        (status = 200, description = "The revoked token.", body = api::Positioned<api::Token>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 404, response = crate::docs::NotFound),
        (status = 409, response = crate::docs::Conflict),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn revoke_token(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::orgs::revoke_token(&registry, &ctx, &id).await?,
    ))
}
