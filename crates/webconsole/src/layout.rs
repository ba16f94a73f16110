//! The page shell (left sidebar, main area), problem pages, and the sign-in and sign-out
//! routes.

use std::sync::Arc;

use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, extract::rejection::FormRejection};
use maud::{DOCTYPE, Markup, html};
use secrets::Secret;
use serde::Deserialize;

use app::Registry;

use crate::Console;
use crate::session::{SIGN_IN_COOKIE, SignedIn, cookie_value, random_hex, same};

/// Which sidebar entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Models,
    Credentials,
    Workflows,
    Tokens,
    Audit,
    None,
}

/// htmx's settings: no indicator styles injected (the policy forbids inline style), no
/// `eval`, no script tags from swapped content.
const HTMX_CONFIG: &str =
    r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="htmx-config" content=(HTMX_CONFIG);
            title { (title) " · modelreg" }
            link rel="stylesheet" href="/assets/console.css";
            link rel="icon" href="/assets/icon.svg" type="image/svg+xml";
            script src="/assets/htmx.min.js" defer {}
            script src="/assets/console.js" defer {}
        }
    }
}

/// A full page for a signed-in caller.
pub(crate) fn page(signed: &SignedIn, section: Section, title: &str, content: Markup) -> Markup {
    let entry = |target: Section, href: &str, label: &str| {
        html! {
            li {
                @if target == section {
                    a href=(href) aria-current="page" { (label) }
                } @else {
                    a href=(href) { (label) }
                }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                div.frame {
                    nav.sidebar aria-label="Sections" {
                        p.brand { "modelreg" }
                        ul {
                            (entry(Section::Models, "/models", "Models"))
                            (entry(Section::Credentials, "/credentials", "Credentials"))
                            (entry(Section::Workflows, "/workflows", "Workflows"))
                            // What `app` lets admins only: a member reaching them by URL
                            // gets the API's refusal.
                            @if signed.is_admin() {
                                (entry(Section::Audit, "/audit", "Audit"))
                                (entry(Section::Tokens, "/tokens", "Tokens"))
                            }
                        }
                        div.who {
                            p { "Org " strong { (signed.principal.org().as_str()) } }
                            p { "Role " span.badge { (signed.principal.role().as_str()) } }
                            form method="post" action="/sign-out" {
                                input type="hidden" name="csrf" value=(signed.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                    main id="main" tabindex="-1" {
                        h1 { (title) }
                        (content)
                    }
                }
            }
        }
    }
}

/// A page for someone not signed in.
fn bare(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                main id="main" .narrow {
                    h1 { (title) }
                    (content)
                }
            }
        }
    }
}

pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// The API's problem as the console shows it: its `code`, detail and field errors.
pub(crate) fn problem_box(problem: &api::Problem) -> Markup {
    html! {
        div.problem role="alert" {
            p { strong { (problem.title) } " " code { (problem.code) } }
            p { (problem.detail) }
            @if !problem.errors.is_empty() {
                ul {
                    @for error in &problem.errors {
                        li { code { (error.field) } ": " (error.detail) " " code { (error.code) } }
                    }
                }
            }
            @if let Some(count) = problem.count {
                p { (count) " active workflow(s) still reference it" }
            }
        }
    }
}

/// The hidden `submission` of a form that creates something: random, made afresh each
/// time the form is rendered, and sent as the command's idempotency key
/// ([`crate::session::SignedIn::command_once`]).
pub(crate) fn submission_field() -> Markup {
    html! { input type="hidden" name="submission" value=(crate::session::random_hex()); }
}

/// A refusal as a full page, with the problem's status.
pub(crate) fn problem_page(signed: Option<&SignedIn>, problem: &api::Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content = problem_box(problem);
    let markup = match signed {
        Some(signed) => page(signed, Section::None, "Refused", content),
        None => bare("Refused", content),
    };
    html_response(status, markup)
}

/// An `app` error as a page.
pub(crate) fn app_error(signed: &SignedIn, error: &app::AppError) -> Response {
    problem_page(Some(signed), &error.to_problem())
}

/// A query string the console cannot read (never quoting it): refused, rather than dropped
/// for an unfiltered page that would look like the answer to it.
pub(crate) fn unreadable_query(
    signed: &SignedIn,
    _rejection: axum::extract::rejection::QueryRejection,
) -> Response {
    problem_page(
        Some(signed),
        &api::Problem::new(
            400,
            "console.query_unreadable",
            "the query string could not be read",
        ),
    )
}

/// A form's hidden `version` (the model version the form was made from): a value that is
/// not one is refused, not dropped, as dropping it would skip the check against
/// concurrent edits.
pub(crate) fn form_version(
    signed: &SignedIn,
    raw: Option<&str>,
) -> Result<Option<u64>, Box<Response>> {
    match raw.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(version) => version.parse().map(Some).map_err(|_| {
            Box::new(problem_page(
                Some(signed),
                &api::Problem::new(
                    400,
                    "console.version_invalid",
                    "the form's version is not a model version; open the model again",
                ),
            ))
        }),
    }
}

/// A form the console cannot read (never quoting what was sent).
pub(crate) fn unreadable_form(signed: Option<&SignedIn>, _rejection: FormRejection) -> Response {
    problem_page(
        signed,
        &api::Problem::new(400, "console.form_unreadable", "the form could not be read"),
    )
}

#[derive(Deserialize)]
pub(crate) struct SignInQuery {
    code: Option<String>,
}

/// The sign-in page: continue with a one-time code from the link `serve` printed, or paste
/// an API token. Sets the form's own CSRF cookie.
pub(crate) async fn sign_in_page(
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    query: Result<Query<SignInQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let code = query.ok().and_then(|Query(q)| q.code).filter(|c| is_hex(c));
    let csrf = random_hex();
    let markup = bare(
        "Sign in",
        html! {
            @if let Some(code) = &code {
                form.card method="post" action="/sign-in" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="code" value=(code);
                    p { "This link signs you in once, as the admin it was printed for." }
                    button.primary type="submit" { "Continue" }
                }
            }
            form.card method="post" action="/sign-in" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "API token" }
                input id="token" name="token" type="password" autocomplete="off" required;
                p.help { "Any token of your org: admin tokens manage, member tokens read." }
                button type="submit" { "Sign in" }
            }
        },
    );
    let mut response = html_response(StatusCode::OK, markup);
    response.headers_mut().append(
        header::SET_COOKIE,
        console.sessions.sign_in_cookie(&csrf, &headers),
    );
    response
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    csrf: Option<String>,
    code: Option<String>,
    token: Option<String>,
}

/// Exchanges a one-time code or a pasted token for a session.
pub(crate) async fn sign_in(
    State(registry): State<Arc<Registry>>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return unreadable_form(None, rejection),
    };
    let expected = cookie_value(&headers, SIGN_IN_COOKIE).unwrap_or("");
    let sent = form.csrf.as_deref().unwrap_or("");
    if expected.is_empty() || !same(expected, sent) {
        return problem_page(
            None,
            &api::Problem::new(
                403,
                "console.csrf",
                "the sign-in form was missing its anti-forgery token; open the sign-in page again",
            ),
        );
    }
    let token = match (form.code, form.token) {
        (Some(code), _) if !code.is_empty() => match console.sessions.redeem_code(&code) {
            Some(token) => token,
            None => {
                return problem_page(
                    None,
                    &api::Problem::new(
                        401,
                        "console.sign_in_code_used",
                        "this sign-in link was used already or has expired; sign in by pasting an API token",
                    ),
                );
            }
        },
        (_, Some(token)) if !token.trim().is_empty() => Secret::new(token.trim().to_owned()),
        _ => {
            return problem_page(
                None,
                &api::Problem::new(
                    422,
                    "console.token_missing",
                    "paste an API token, or use the sign-in link the server printed",
                ),
            );
        }
    };
    if let Err(error) = app::orgs::authenticate(&registry, token.expose_secret()) {
        return problem_page(None, &error.to_problem());
    }
    let id = console.sessions.open(token);
    let mut response = Redirect::to("/models").into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        console.sessions.session_cookie(&id, &headers),
    );
    cookies.append(
        header::SET_COOKIE,
        console.sessions.sign_in_cookie("", &headers),
    );
    response
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: Option<String>,
}

/// Ends the session.
pub(crate) async fn sign_out(
    signed: SignedIn,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return unreadable_form(Some(&signed), rejection),
    };
    if let Err(refused) = signed.command("/sign-out", form.csrf.as_deref()) {
        return *refused;
    }
    console.sessions.close(&signed.session);
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        console.sessions.clear_session_cookie(&headers),
    );
    response
}

fn is_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}
