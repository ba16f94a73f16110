//! `/v1/providers`: what each provider's form asks for.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use app::Registry;

use super::{Result, answer};
use crate::auth::Caller;

/// The providers a custom model can use: each one's credential alternatives and their
/// fields (label, kind, required, placeholder, help), its endpoint field, and the documented
/// form of its model ids with an example. Forms are built from it.
#[utoipa::path(get, path = "/v1/providers", tag = "models",
    responses(
        (status = 200, description = "The providers.", body = api::Positioned<api::ProviderList>),
        (status = 401, response = crate::docs::Unauthorized),
        (status = 500, response = crate::docs::Internal),
        (status = 503, response = crate::docs::Unavailable),
    ))]
pub(crate) async fn list_providers(
    State(registry): State<Arc<Registry>>,
    Caller(ctx): Caller,
) -> Result<Response> {
    Ok(answer(
        StatusCode::OK,
        app::providers::list(&registry, &ctx)?,
    ))
}
