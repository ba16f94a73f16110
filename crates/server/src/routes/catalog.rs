//! `/v1/catalog`: the platform catalog (any token reads it; the operator changes it with
//! server-side commands), and `/v1/org/…`: an org admin's choices among platform models.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use app::Registry;

use super::{Result, answer};
use crate::auth::Caller;
use crate::extract::{Body, Param};

/// The platform catalog: every listed model (retired ones included) with its facts, each with
/// its source and date, the facts no source gave (`unknown`), the models syncs proposed but
/// nobody listed, and every change with who made it.
#[utoipa::path(get, path = "/v1/catalog", tag = "catalog",
    responses(
        (status = 200, description = "The catalog.", body = api::Positioned<api::Catalog>),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn get_catalog(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
) -> Result<Response> {
    Ok(answer(StatusCode::OK, app::catalog::get(&registry, &ctx)?))
}

/// One listed platform model with its facts and their provenance.
#[utoipa::path(get, path = "/v1/catalog/models/{*id}", tag = "catalog",
    params(("id" = String, Path, description = "A platform id such as google/gemini-3.1-pro-preview (slashes allowed).")),
    responses(
        (status = 200, description = "The model.", body = api::Positioned<api::CatalogModel>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 404, response = crate::docs::NotFound),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn get_catalog_model(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(id): Param,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::catalog::get_model(&registry, &ctx, &id)?,
    ))
}

/// The org's choices among platform models: its own default (if any), the models it hides,
/// and the default that applies, with why the platform's applies when the org's cannot.
#[utoipa::path(get, path = "/v1/org/platform-models", tag = "catalog",
    responses(
        (status = 200, description = "The org's choices.", body = api::Positioned<api::PlatformChoices>),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn get_choices(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::catalog::choices(&registry, &ctx)?,
    ))
}

/// Choose the org's default model among the active platform models (admins); `null` goes
/// back to the platform's default. An org default that is later retired or hidden falls
/// back to the platform's, and the model list says so.
#[utoipa::path(put, path = "/v1/org/default-model", tag = "catalog",
    params(("Idempotency-Key" = Option<api::schema::IdempotencyKey>, Header, description = "Retries with one key are one command.")),
    request_body = api::ChooseDefault,
    responses(
        (status = 200, description = "The org's choices.", body = api::Positioned<api::PlatformChoices>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 404, response = crate::docs::NotFound),
        (status = 409, response = crate::docs::Conflict),
        (status = 413, response = crate::docs::TooLarge),
        (status = 415, response = crate::docs::UnsupportedMediaType),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn choose_default(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Body(request): Body<api::ChooseDefault>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::catalog::choose_default(&registry, &ctx, request).await?,
    ))
}

/// Hide exactly these platform models from the org (admins): they leave its model list, and
/// resolving one answers 404 `platform_model.hidden`. An empty list shows them all again.
#[utoipa::path(put, path = "/v1/org/hidden-models", tag = "catalog",
    params(("Idempotency-Key" = Option<api::schema::IdempotencyKey>, Header, description = "Retries with one key are one command.")),
    request_body = api::HideModels,
    responses(
        (status = 200, description = "The org's choices.", body = api::Positioned<api::PlatformChoices>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 404, response = crate::docs::NotFound),
        (status = 409, response = crate::docs::Conflict),
        (status = 413, response = crate::docs::TooLarge),
        (status = 415, response = crate::docs::UnsupportedMediaType),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn hide_models(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Body(request): Body<api::HideModels>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::catalog::hide(&registry, &ctx, request).await?,
    ))
}
