//! The caller of a request: bearer token → org, role and actor; plus request id and
//! idempotency key, which make a command's id.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use app::{Ctx, Registry};

use crate::listen::ClientAddr;
use crate::problem::Problem;

/// An authenticated caller, ready to run commands.
pub(crate) struct Caller(pub Ctx);

impl FromRequestParts<Arc<Registry>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        registry: &Arc<Registry>,
    ) -> Result<Self, Problem> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "auth.missing_token",
                    "send Authorization: Bearer <token>",
                )
            })?;
        // RFC 9110 §11.1: the scheme name is case-insensitive (`bearer`, `BEARER`).
        let bearer = header
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
            .map(|(_, token)| token)
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "auth.invalid_token",
                    "use the Bearer scheme",
                )
            })?;
        let principal = app::orgs::authenticate(registry, bearer.trim()).map_err(Problem::from)?;
        if is_read(&parts.method) {
            return Ok(Caller(Ctx::read(principal)));
        }
        let key =
            app::idempotency_key(header_text(parts, "idempotency-key")).map_err(|invalid| {
                Problem::new(StatusCode::BAD_REQUEST, invalid.code, invalid.message)
            })?;
        let ctx = Ctx::command(
            principal,
            parts.method.as_str(),
            parts.uri.path(),
            key.as_ref(),
            header_text(parts, "x-request-id"),
        );
        Ok(Caller(match parts.extensions.get::<ClientAddr>() {
            Some(ClientAddr(peer)) => ctx.from_address(peer),
            None => ctx,
        }))
    }
}

/// Whether a request only reads. Reads append nothing, so they need no ids and no peer
/// address (and skip making them on the hot path).
pub(crate) fn is_read(method: &axum::http::Method) -> bool {
    method == axum::http::Method::GET
}

/// A header's value as text; one that is not visible ASCII counts as absent, except for the
/// idempotency key, whose parse refuses it.
fn header_text<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    let value = parts.headers.get(name)?;
    Some(value.to_str().unwrap_or("\u{0}"))
}
