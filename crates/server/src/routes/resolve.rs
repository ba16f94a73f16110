//! `/v1/resolve/{model}`: the runtime's hot path.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use app::Registry;

use super::{Result, answer, answer_bytes, no_store, query_problem};
use crate::auth::Caller;
use crate::extract::Param;

/// Everything the runtime needs to call a model, with the decrypted credential. Service
/// tokens only (403 otherwise).
///
/// Platform models resolve to OpenRouter with the platform key. A deactivated model answers
/// 410 `model.deactivated` with `deactivated_at`, `deactivated_by` and a hint to repoint; an
/// unknown one 404; a credential that cannot be opened 409
/// `credential.needs_reconfiguration`. The credential appears on this route only and is
/// never logged; the answer carries `Cache-Control: no-store`.
///
/// With `format=litellm` the answer is LiteLLM's `completion()` keyword arguments for that
/// provider (`kwargs`, passed as they are) and how to ask for extended reasoning.
#[utoipa::path(get, path = "/v1/resolve/{*model}", tag = "resolve",
    params(
        ("model" = String, Path, description = "A custom slug or a platform id such as google/gemini-3.1-pro-preview (slashes allowed)."),
        api::ResolveQuery,
    ),
    responses(
        (status = 200, description = "The resolved model, in the registry's shape or LiteLLM's.", body = api::ResolveAnswer),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 404, response = crate::docs::NotFound),
        (status = 409, response = crate::docs::Conflict),
        (status = 410, response = crate::docs::Gone),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn resolve(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    Param(model): Param,
    query: std::result::Result<Query<api::ResolveQuery>, QueryRejection>,
) -> Result<Response> {
    match query.map_err(query_problem)?.format.as_deref() {
        None => {}
        Some("litellm") => {
            let params = app::resolve::resolve_litellm(&registry, &ctx, &model).await?;
            return Ok(no_store(answer(StatusCode::OK, params)));
        }
        Some(_) => {
            return Err(crate::Problem::new(
                StatusCode::BAD_REQUEST,
                "query.invalid",
                "format takes litellm, or is left out for the registry's own shape",
            ));
        }
    }
    let resolved = app::resolve::resolve(&registry, &ctx, &model).await?;
    Ok(no_store(answer_bytes(
        StatusCode::OK,
        resolved.value.to_json(),
        resolved.position,
    )))
}

/// A LiteLLM proxy `model_list` for the org's active models (admins and service tokens):
/// each secret an `os.environ/VAR` reference, never the secret itself. `modelreg export
/// litellm-config` writes it as YAML, and with `--env-file` the variables' values.
#[utoipa::path(get, path = "/v1/exports/litellm-config", tag = "resolve",
    responses(
        (status = 200, description = "The model list.", body = api::Positioned<api::LiteLlmConfig>),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 403, response = crate::docs::Forbidden),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn litellm_config(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::resolve::litellm_config(&registry, &ctx)?,
    ))
}

/// The views position this server's answers reflect, and `changed_at`: where the caller's
/// org last changed in a way that can alter a resolve answer (any token). With `after`, the
/// answer is held up to `wait` seconds (at most 30) until the views pass that position, or
/// with `scope=resolve` until `changed_at` does, so a runtime that caches resolve answers
/// long-polls it and drops them the moment one may be stale (a deactivation, a rotation),
/// instead of asking on every call or on every usage record.
#[utoipa::path(get, path = "/v1/position", tag = "resolve",
    params(api::PositionQuery),
    responses(
        (status = 200, description = "The position, and whether it passed `after`.", body = api::Positioned<api::ViewsPosition>),
        (status = 400, response = crate::docs::BadRequest),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn position(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
    query: std::result::Result<Query<api::PositionQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(query) = query.map_err(query_problem)?;
    Ok(answer(
        StatusCode::OK,
        app::resolve::position(&registry, &ctx, query).await?,
    ))
}
