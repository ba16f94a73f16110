//! The OpenAPI document's frame: what the API is, how callers authenticate, and the problem
//! answers operations share. The operations themselves come from the routes as they are
//! registered (`routes.rs`), so a served route and its documentation are one registration.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};

/// The document's frame, before the routes add their operations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "modelreg",
        description = "The LLM model registry of an organization. Every request except /healthz, /readyz and /metrics carries `Authorization: Bearer <token>`; the token decides the org, so an org never sees another's models or credentials. Roles: `admin` manages, `member` reads, `service` (the pipeline runtime) reads, reports workflows and resolves credentials.\n\nCommands answer after the server's views reflect what they wrote (read your writes). Every answer carries the event-log `position` it reflects, in the body and in the `X-Modelreg-Position` header. Commands accept an `Idempotency-Key` header: retries with the same key, method and path are one command, and answer as its first attempt did (a token's secret is shown to the first attempt only). The same key with another method or path is another command; the same key with another request on the same method and path (another model to add, secret, label, draft, edit or name) answers 422 `idempotency_key.reused` and changes nothing, while its command is the latest change of what it changed (adds, credentials, tokens and connection tests: always). Duplicates are recognised within the log's 2-minute window, and after it while the command is the latest change of its model or credential (adds: always).\n\nErrors are RFC 9457 problem details (`application/problem+json`) with a stable `code`. Field validation answers 422 with every problem at once in `errors`. Requests that cannot be read answer 400 `path.invalid` (a path parameter that does not decode), `query.invalid`, `body.unreadable`, `body.malformed_json`, `body.number_out_of_range` (a number no integer or float holds, e.g. 1e400) or `body.invalid_shape` (a field of the wrong type, an unknown field), 413 `body.too_large` or 415 `body.content_type`. What cannot be read as HTTP/1.1 at all answers 400 `request.malformed`, 414 `request.uri_too_long` or 431 `request.headers_too_large`, problem+json as well. An `Idempotency-Key` that is not 1 to 100 characters of `A-Za-z0-9_-` (non-ASCII bytes included) answers 400 `idempotency_key.invalid`, never ignored. A `detail` names the field and the kind of mistake and never repeats a value from the request. A command whose event was recorded while this server's views lag answers 503 `command.landed_views_behind` with the `position` it landed at: it happened, and a retry with the same Idempotency-Key answers it without applying it twice.",
        license(name = "Apache-2.0"),
    ),
    servers((url = "http://127.0.0.1:8080")),
    security(("bearer" = [])),
    modifiers(&Bearer),
    components(schemas(api::Problem), responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        Gone,
        TooLarge,
        UnsupportedMediaType,
        Unprocessable,
        Internal,
        Unavailable
    ))
)]
pub(crate) struct Frame;

/// Adds the bearer scheme the document's `security` names.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

// The problem answers below only describe the document: none is ever built.

/// The request could not be read: a path parameter, the query or the body (malformed JSON,
/// a number out of range, a wrong shape, an unknown field), or an invalid header.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct BadRequest(#[allow(dead_code)] api::Problem);

/// No token, or one that is not valid.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct Unauthorized(#[allow(dead_code)] api::Problem);

/// The token's role may not do this.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct Forbidden(#[allow(dead_code)] api::Problem);

/// No such thing in the caller's org.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct NotFound(#[allow(dead_code)] api::Problem);

/// The thing is not in the state the command needs, or changed at the same time
/// (`current_version` says what won).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct Conflict(#[allow(dead_code)] api::Problem);

/// The model was deactivated: when, by whom, and the hint to repoint.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct Gone(#[allow(dead_code)] api::Problem);

/// The body is over the size limit.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct TooLarge(#[allow(dead_code)] api::Problem);

/// The body is not JSON.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct UnsupportedMediaType(#[allow(dead_code)] api::Problem);

/// The input breaks rules: every problem at once, in `errors`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct Unprocessable(#[allow(dead_code)] api::Problem);

/// A defect; it has been logged.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct Internal(#[allow(dead_code)] api::Problem);

/// A dependency is unavailable; retry (a command may have landed: retry it with the same
/// Idempotency-Key to apply it once).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub(crate) struct Unavailable(#[allow(dead_code)] api::Problem);
