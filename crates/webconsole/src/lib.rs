//! The web console: server-rendered pages (maud templates, checked at compile time, which
//! escape every interpolated string) with htmx for partial updates, our own CSS and a small
//! script of ours, all embedded in the binary; sessions opened by a one-time sign-in code or
//! a pasted API token; a CSRF token on every state-changing form; a strict
//! Content-Security-Policy (no inline script or style).
//!
//! Architecture invariant: no business rule lives here. Every page calls the same `app`
//! function the JSON API's handler calls, with the caller's own token's context, so a member
//! posting an admin form is refused by `app`'s authorization, and every refusal is the API's
//! problem (`code` and detail) rendered as a page.

mod add;
mod audit;
mod edit;
mod layout;
mod lists;
mod models;
mod picker;
mod session;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use secrets::Secret;

use app::Registry;

pub use session::{SESSION_COOKIE, SIGN_IN_COOKIE};

/// The policy every console answer carries: scripts, styles and requests from this origin
/// only, no inline script or style, no framing, forms posting here only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How long a session may sit unused before it ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The console of one serving process: its sessions and sign-in codes (in memory).
pub struct Console {
    sessions: Arc<session::Sessions>,
}

impl Default for Console {
    fn default() -> Self {
        Self::new(IDLE_TIMEOUT, false)
    }
}

impl Console {
    /// A console whose sessions end after `idle` unused; `secure` when it is served over
    /// TLS (its cookies then carry `Secure`).
    pub fn new(idle: Duration, secure: bool) -> Self {
        Self {
            sessions: Arc::new(session::Sessions::new(idle, secure)),
        }
    }

    /// A code that signs in once as the holder of `token` (the bootstrap admin's, say): the
    /// path and query to append to the server's base URL, `/sign-in?code=…`.
    pub fn sign_in_link(&self, token: &Secret) -> String {
        let copy = Secret::new(token.expose_secret().to_owned());
        format!("/sign-in?code={}", self.sessions.issue_code(copy))
    }
}

/// The console's routes, for the server to merge beside the JSON API (same listener, same
/// state).
pub fn routes(console: Arc<Console>) -> Router<Arc<Registry>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/models") }))
        .route("/sign-in", get(layout::sign_in_page).post(layout::sign_in))
        .route("/sign-out", post(layout::sign_out))
        .route("/models", get(models::list).post(add::save))
        .route("/models/new", get(add::form))
        .route("/models/new/test", post(add::test))
        .route("/models/new/check", post(add::check))
        .route("/models/advice", post(add::advise))
        .route("/models/{slug}", get(models::detail))
        .route(
            "/models/{slug}/deactivate",
            get(models::confirm_deactivation).post(models::deactivate),
        )
        .route("/models/{slug}/reactivate", post(models::reactivate))
        .route(
            "/models/{slug}/recommendation",
            post(models::apply_recommendation),
        )
        .route("/models/{slug}/edit", get(edit::form).post(edit::save))
        .route("/models/{slug}/test", post(edit::test))
        .route("/platform/{*id}", get(models::platform))
        .route("/picker", get(picker::preview))
        .route("/credentials", get(lists::credentials))
        .route("/workflows", get(lists::workflows))
        .route("/tokens", get(tokens::list).post(tokens::issue))
        .route(
            "/tokens/{id}/revoke",
            get(tokens::confirm_revocation).post(tokens::revoke),
        )
        .route("/audit", get(audit::trail))
        .route("/assets/htmx.min.js", get(htmx))
        .route("/assets/console.js", get(script))
        .route("/assets/console.css", get(style))
        .route("/assets/icon.svg", get(icon))
        .route("/favicon.ico", get(icon))
        .layer(middleware::from_fn(secure_headers))
        .layer(axum::Extension(console))
}

/// Headers on every console answer: the policy, no sniffing, no referrer, no framing, and
/// no caching of pages (they show an org's data).
async fn secure_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    set_secure_headers(&mut response, is_asset);
    response
}

/// A page or method the console does not have, as a console page with its headers: the
/// server's fallback answers the API's paths with problem+json, and every other with this.
pub fn refusal_page(problem: &api::Problem) -> Response {
    let mut response = layout::problem_page(None, problem);
    set_secure_headers(&mut response, false);
    response
}

fn set_secure_headers(response: &mut Response, is_asset: bool) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn htmx() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/htmx.min.js"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/console.js"),
    )
}

async fn icon() -> Response {
    asset("image/svg+xml", include_bytes!("../assets/icon.svg"))
}

async fn style() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_bytes!("../assets/console.css"),
    )
}
