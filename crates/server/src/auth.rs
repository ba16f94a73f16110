//! The caller of a request: bearer token → org, role and actor; plus request id and
//! idempotency key.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use app::{Ctx, Registry};

use crate::problem::Problem;

/// An authenticated caller, ready to run commands.
pub struct Caller(pub Ctx);

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
        let principal = registry
            .authenticate(bearer.trim())
            .map_err(Problem::from)?;
        // Reads append nothing, so they need no ids (and skip making them on the hot path).
        if parts.method == axum::http::Method::GET {
            return Ok(Caller(Ctx {
                org: principal.org,
                role: principal.role,
                actor: principal.actor,
                request_id: String::new(),
                command_id: String::new(),
            }));
        }
        let request_id = header_text(parts, "x-request-id")
            .filter(|id| valid_key(id))
            .unwrap_or_else(app::new_id);
        let command_id = match header_text(parts, "idempotency-key") {
            Some(key) if valid_key(&key) => {
                app::keyed_command_id(parts.method.as_str(), parts.uri.path(), &key)
            }
            Some(_) => {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "idempotency_key.invalid",
                    "Idempotency-Key is 1 to 100 characters of A-Z, a-z, 0-9, '-' and '_'",
                ));
            }
            None => app::new_id(),
        };
        Ok(Caller(Ctx {
            org: principal.org,
            role: principal.role,
            actor: principal.actor,
            request_id,
            command_id,
        }))
    }
}

fn header_text(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 100
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
