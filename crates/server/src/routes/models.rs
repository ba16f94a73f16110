//! `/v1/models`: the org's models, adding, editing, deactivating and reactivating custom
//! models, who references a model, and the capability check.

use std::sync::Arc;

use api::schema;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use app::Registry;

use super::{Result, answer, if_match, query_problem};
use crate::auth::Caller;
use crate::extract::{Body, Param};

/// List models, grouped platform and custom; with `as_of`, as they were then.
///
/// With `limit`, `cursor`, `q` or a filter (`provider`, `capability`, `status`, `kind`), a
/// page of the matching models (platform first, then custom in slug order), its
/// `next_cursor` and the count `matching`; with none, every model.
#[utoipa::path(get, path = "/v1/models", tag = "models",
    params(api::ModelsQuery),
    responses(
        (status = 200, description = "The org's models.", body = api::Positioned<api::ModelList>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn list_models(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    query: std::result::Result<Query<api::ModelsQuery>, QueryRejection>,
) -> Result<Response> {
    let query = query.map_err(query_problem)?.0;
    if let Some(as_of) = query.as_of.as_deref().filter(|_| !query.pages_or_filters()) {
        return Ok(answer(
            StatusCode::OK,
            app::as_of::models(&registry, &ctx, as_of).await?,
        ));
    }
    Ok(answer(
        StatusCode::OK,
        app::models::page(&registry, &ctx, &query)?,
    ))
}

/// Add a custom model.
///
/// Gated: `connection_test_id` must name a passing Test Connection of exactly this draft,
/// completed less than 15 minutes ago (`connection_test.required`, `.not_found`, `.failed`,
/// `.mismatch`, `.expired`; 409 `.pending` while it runs). Give the credential inline
/// (`credential`) or a saved one (`credential_id`). When an inline secret equals a saved
/// credential of the org, the model uses the saved one and the answer names it in
/// `reused_credential`. The slug is derived once from the display name and never changes; a
/// taken slug becomes `-2`, `-3`, ….
#[utoipa::path(post, path = "/v1/models", tag = "models",
    params(
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command."),
        api::DryRunQuery,
    ),
    request_body = api::AddModel,
    responses(
        (status = 200, description = "`dry_run=true`: the draft is valid; nothing was stored.", body = api::Positioned<api::CheckedDraft>),
        (status = 201, description = "Added.", body = api::Positioned<api::AddedModel>),
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
pub(crate) async fn add_model(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    query: std::result::Result<Query<api::DryRunQuery>, QueryRejection>,
    Body(request): Body<api::AddModel>,
) -> Result<Response> {
    if query.map_err(query_problem)?.dry_run {
        return Ok(answer(
            StatusCode::OK,
            app::models::check_draft(&registry, &ctx, request)?,
        ));
    }
    Ok(answer(
        StatusCode::CREATED,
        app::models::add(&registry, &ctx, request).await?,
    ))
}

/// One custom model; with `as_of`, as it was then (404 if it did not exist yet).
#[utoipa::path(get, path = "/v1/models/{slug}", tag = "models",
    params(("slug" = schema::Slug, Path), api::AsOfQuery),
    responses(
        (status = 200, description = "The model.", body = api::Positioned<api::Model>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 404, response = crate::docs::NotFound),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn get_model(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(slug): Param,
    query: std::result::Result<Query<api::AsOfQuery>, QueryRejection>,
) -> Result<Response> {
    if let Some(as_of) = query.map_err(query_problem)?.0.as_of {
        return Ok(answer(
            StatusCode::OK,
            app::as_of::model(&registry, &ctx, &slug, &as_of).await?,
        ));
    }
    Ok(answer(
        StatusCode::OK,
        app::models::get(&registry, &ctx, &slug)?,
    ))
}

/// Edit a custom model (partial). Not gated on Test Connection.
///
/// Absent fields stay as they are; `null` clears a cost. The secret changes only when a new
/// `credential` is given. With `If-Match: "<version>"` the edit is refused with 409
/// `model.version_mismatch` unless the model is still at that version; of two concurrent
/// edits of one version one wins, the other gets 409 with `current_version`.
#[utoipa::path(patch, path = "/v1/models/{slug}", tag = "models",
    params(
        ("slug" = schema::Slug, Path),
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command."),
        ("If-Match" = Option<String>, Header, description = "The model's version the edit was made against, e.g. \"3\"; * asks only that the model exists."),
    ),
    request_body = api::EditModel,
    responses(
        (status = 200, description = "The model after the edit.", body = api::Positioned<api::Model>),
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
pub(crate) async fn edit_model(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(slug): Param,
    headers: HeaderMap,
    Body(request): Body<api::EditModel>,
) -> Result<Response> {
    let if_match = if_match(&headers)?;
    Ok(answer(
        StatusCode::OK,
        app::models::edit(&registry, &ctx, &slug, request, if_match).await?,
    ))
}

/// Deactivate a custom model (the UI's Delete). The slug is never reused.
///
/// With active workflows still referencing the model and no `?confirm=true`, answers 409
/// `model.has_dependents` with `count` and `first_dependent`; those workflows fail to
/// generate LLM responses until repointed. With no active dependents it deactivates at
/// once. The dependents worker then records whom it warned and sends each a notice. With
/// `If-Match: "<version>"` it is refused with 409 `model.version_mismatch` unless the model
/// is still at that version.
#[utoipa::path(delete, path = "/v1/models/{slug}", tag = "models",
    params(
        ("slug" = schema::Slug, Path),
        api::ConfirmQuery,
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command."),
        ("If-Match" = Option<String>, Header, description = "The model's version the deactivation was decided against, e.g. \"3\"; * asks only that the model exists."),
    ),
    responses(
        (status = 200, description = "The deactivated model.", body = api::Positioned<api::Model>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 404, response = crate::docs::NotFound),
        (status = 409, response = crate::docs::Conflict),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn deactivate_model(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(slug): Param,
    headers: HeaderMap,
    query: std::result::Result<Query<api::ConfirmQuery>, QueryRejection>,
) -> Result<Response> {
    let if_match = if_match(&headers)?;
    let confirm = query.map_err(query_problem)?.confirm;
    Ok(answer(
        StatusCode::OK,
        app::models::deactivate(&registry, &ctx, &slug, confirm, if_match).await?,
    ))
}

/// Reactivate a deactivated model; clears its warning state and the workflows' notices.
#[utoipa::path(post, path = "/v1/models/{slug}/activation", tag = "models",
    params(
        ("slug" = schema::Slug, Path),
        ("Idempotency-Key" = Option<schema::IdempotencyKey>, Header, description = "Retries with one key are one command."),
    ),
    responses(
        (status = 200, description = "The active model.", body = api::Positioned<api::Model>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 404, response = crate::docs::NotFound),
        (status = 409, response = crate::docs::Conflict),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn reactivate_model(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(slug): Param,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::models::reactivate(&registry, &ctx, &slug).await?,
    ))
}

/// The reference view of one model, custom or platform (encode the `/` of a platform id as
/// %2F): active and inactive workflows that reference it; with `limit` (and the `cursor`
/// of the page before) one page at a time.
#[utoipa::path(get, path = "/v1/models/{slug}/workflows", tag = "models",
    params(("slug" = String, Path, description = "A custom slug or a platform id with its `/` encoded as %2F."), api::PageQuery),
    responses(
        (status = 200, description = "Who references the model.", body = api::Positioned<api::ModelReferences>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 404, response = crate::docs::NotFound),
        (status = 422, response = crate::docs::Unprocessable),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn model_references(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(slug): Param,
    query: std::result::Result<Query<api::PageQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(query) = query.map_err(query_problem)?;
    Ok(answer(
        StatusCode::OK,
        app::workflows::references_page(&registry, &ctx, &slug, &query)?,
    ))
}

/// Capability gating: which of the features a pipeline step wants the model serves, with a
/// reason for each refusal.
#[utoipa::path(post, path = "/v1/models/{model}/check", tag = "models",
    params(("model" = String, Path, description = "A custom slug or a platform id with its `/` encoded as %2F.")),
    request_body = api::CheckModel,
    responses(
        (status = 200, description = "The verdict.", body = api::Positioned<api::CheckAnswer>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 404, response = crate::docs::NotFound),
        (status = 410, response = crate::docs::Gone),
        (status = 413, response = crate::docs::TooLarge),
        (status = 415, response = crate::docs::UnsupportedMediaType),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn check_model(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(model): Param,
    Body(request): Body<api::CheckModel>,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::models::check(&registry, &ctx, &model, request)?,
    ))
}
