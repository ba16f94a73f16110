//! `/v1/credentials` (saved credentials over their life: metadata only, never a secret)
//! and `/v1/tokens` (API tokens).

use std::sync::Arc;

use api::schema;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use app::Registry;

use super::{Result, answer, no_store, query_problem};
use crate::auth::Caller;
use crate::extract::{Body, Param, Params2};

/// Saved credentials, metadata only (never a secret); with `as_of`, as they were then.
#[utoipa::path(get, path = "/v1/credentials", tag = "credentials",
    params(api::CredentialsQuery),
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
    query: std::result::Result<Query<api::CredentialsQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(query) = query.map_err(query_problem)?;
    if let Some(as_of) = &query.as_of
        && query.limit.is_none()
        && query.cursor.is_none()
    {
        return Ok(answer(
            StatusCode::OK,
            app::as_of::credentials(&registry, &ctx, as_of).await?,
        ));
    }
    Ok(answer(
        StatusCode::OK,
        app::credentials::page(&registry, &ctx, &query)?,
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

/// Save a credential as a resource, for models to reference by `credential_id`.
///
/// A secret the org has saved already is refused (409 `credential.secret_saved`, naming the
/// credential that holds it). A Bedrock short-term API key expires within 12 hours whatever
/// `expires_at` says.
#[utoipa::path(post, path = "/v1/credentials", tag = "credentials",
    params(
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command; the key sent again with another secret or provider is refused (422 idempotency_key.reused)."),
    ),
    request_body = api::CreateCredential,
    responses(
        (status = 201, description = "The credential, metadata only.", body = api::Positioned<api::Credential>),
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
pub(crate) async fn create_credential(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Body(request): Body<api::CreateCredential>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::CREATED,
        app::credentials::create(&registry, &ctx, request).await?,
    ))
}

/// Rename a credential.
#[utoipa::path(patch, path = "/v1/credentials/{id}", tag = "credentials",
    params(
        ("id" = schema::CredentialId, Path),
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command."),
    ),
    request_body = api::RenameCredential,
    responses(
        (status = 200, description = "The credential.", body = api::Positioned<api::Credential>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 404, response = crate::docs::NotFound),
        (status = 409, response = crate::docs::Conflict),
        (status = 413, response = crate::docs::TooLarge),
        (status = 415, response = crate::docs::UnsupportedMediaType),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn rename_credential(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
    Body(request): Body<api::RenameCredential>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::credentials::rename(&registry, &ctx, &id, request).await?,
    ))
}

/// Delete a credential, and shred every version of it (its data keys are destroyed).
///
/// Refused while active models use it: 409 `credential.in_use` lists them in `models`; move
/// them to another credential (`PATCH /v1/models/{slug}` with `credential_id`) first.
#[utoipa::path(delete, path = "/v1/credentials/{id}", tag = "credentials",
    params(
        ("id" = schema::CredentialId, Path),
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command."),
    ),
    responses(
        (status = 200, description = "The deleted credential, its versions shredded.", body = api::Positioned<api::Credential>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 404, response = crate::docs::NotFound),
        (status = 409, response = crate::docs::Conflict),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn delete_credential(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::credentials::delete(&registry, &ctx, &id).await?,
    ))
}

/// Rotate a credential to a new secret: a new version, used by every model of the
/// credential at once; the previous version is then shredded.
///
/// With `retest: true`, every active model using the credential is first tested with the
/// new secret (concurrently, through the connection-test worker); if any test fails, no
/// model is switched and 409 `credential.retest_failed` lists each failing model with its
/// outcome class and hint in `failures`.
#[utoipa::path(post, path = "/v1/credentials/{id}/rotation", tag = "credentials",
    params(
        ("id" = schema::CredentialId, Path),
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command (the retest's tests too)."),
    ),
    request_body = api::RotateCredential,
    responses(
        (status = 200, description = "The credential at its new version, and the retest's tests.", body = api::Positioned<api::Rotation>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 404, response = crate::docs::NotFound),
        (status = 409, response = crate::docs::Conflict),
        (status = 413, response = crate::docs::TooLarge),
        (status = 415, response = crate::docs::UnsupportedMediaType),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn rotate_credential(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
    Body(request): Body<api::RotateCredential>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::credentials::rotate(&registry, &ctx, &id, request).await?,
    ))
}

/// Shred a retired version: destroy its data key, so its ciphertext (in the log, its
/// replicas and backups) can never be opened again. The current version cannot be shredded
/// (409 `credential.version_in_use`); shredding twice destroys again and records nothing.
#[utoipa::path(delete, path = "/v1/credentials/{id}/versions/{version}", tag = "credentials",
    params(
        ("id" = schema::CredentialId, Path),
        ("version" = u64, Path),
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command."),
    ),
    responses(
        (status = 200, description = "The credential, the version shredded.", body = api::Positioned<api::Credential>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 404, response = crate::docs::NotFound),
        (status = 409, response = crate::docs::Conflict),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn shred_version(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Params2(id, version): Params2,
) -> Result<Response> {
    let Ok(version) = version.parse::<u64>() else {
        return Err(app::AppError::NotFound {
            code: "credential.version_not_found",
            message: "the credential has no such version".into(),
        }
        .into());
    };
    Ok(answer(
        StatusCode::OK,
        app::credentials::shred(&registry, &ctx, &id, version).await?,
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
/// was revoked. Never a secret. With `limit` (and the `cursor` of the page before) one page
/// at a time.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    params(api::PageQuery),
    responses(
        (status = 200, description = "Tokens, in the order they were issued.", body = api::Items<api::Token>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn list_tokens(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    query: std::result::Result<Query<api::PageQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(query) = query.map_err(query_problem)?;
    Ok(answer(
        StatusCode::OK,
        app::orgs::tokens_page(&registry, &ctx, &query)?,
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
