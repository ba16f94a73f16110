//! The Tokens page (the org's API tokens, from `app::orgs::list_tokens`, the function
//! `GET /v1/tokens` calls), issuing a token (shown once, on the answer to the form, never
//! again, with a Copy button the console's script wires to the clipboard), and revoking one
//! after a confirmation.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use app::Registry;

use crate::layout::{self, CsrfForm, Section, app_error, html_response, page, problem_box};
use crate::session::SignedIn;

pub(crate) async fn list(State(registry): State<Arc<Registry>>, signed: SignedIn) -> Response {
    match tokens_page(&registry, &signed, None) {
        Ok(markup) => html_response(StatusCode::OK, markup),
        Err(response) => *response,
    }
}

/// The page: the issue form, then every token of the org, oldest first (as the API lists
/// them). `issued` is the token just issued, shown once above the rest.
fn tokens_page(
    registry: &Registry,
    signed: &SignedIn,
    issued: Option<Markup>,
) -> Result<Markup, Box<Response>> {
    let tokens = match app::orgs::list_tokens(registry, &signed.read()) {
        Ok(answer) => answer.value,
        Err(error) => return Err(Box::new(app_error(signed, &error))),
    };
    let content = html! {
        @if let Some(issued) = issued { (issued) }
        form.card method="post" action="/tokens" {
            h2 { "Issue a token" }
            input type="hidden" name="csrf" value=(signed.csrf);
            (crate::layout::submission_field())
            div.field {
                label for="label" { "Label" }
                input id="label" name="label" type="text" maxlength="100" required;
                p.help { "Who or what the token is for, as the audit trail will name it." }
            }
            div.field {
                label for="role" { "Role" }
                select id="role" name="role" {
                    option value="member" { "member (reads)" }
                    option value="admin" { "admin (manages)" }
                    option value="service" { "service (the pipeline runtime)" }
                }
            }
            div.field {
                label for="expires_at" { "Expires (UTC, optional)" }
                input id="expires_at" name="expires_at" type="datetime-local";
                p.help { "Blank: it never expires. It must lie in the future." }
            }
            button.primary type="submit" { "Issue token" }
        }
        h2 { "Tokens" }
        table {
            caption.visually-hidden { "The org's API tokens" }
            thead { tr { th { "Label" } th { "Role" } th { "Issued" } th { "Expires" } th { "Last used" } th { "State" } th { span.visually-hidden { "Actions" } } } }
            tbody {
                @for token in &tokens {
                    tr {
                        td { (token.label) br; code.small { (token.token_id) } }
                        td { span.badge { (token.role) } }
                        td { (token.issued_at) br; span.small { "by " (token.issued_by) } }
                        td { (never_or(token.expires_at.as_deref(), "never")) }
                        td { (never_or(token.last_used_at.as_deref(), "never used")) }
                        td {
                            span.status { (token.state) }
                            @if let (Some(at), Some(by)) = (&token.revoked_at, &token.revoked_by) {
                                br; span.small { (at) " by " (by) }
                            }
                        }
                        td {
                            @if token.state == "active" {
                                a.button.danger href=(format!("/tokens/{}/revoke", token.token_id)) { "Revoke…" }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(signed, Section::Tokens, "Tokens", content))
}

fn never_or(value: Option<&str>, absent: &str) -> Markup {
    match value {
        Some(value) => html! { (value) },
        None => html! { span.unknown { (absent) } },
    }
}

#[derive(Deserialize)]
pub(crate) struct IssueForm {
    csrf: Option<String>,
    submission: Option<String>,
    label: Option<String>,
    role: Option<String>,
    expires_at: Option<String>,
}

/// Issues a token and answers the Tokens page with it shown once: the answer is not cached
/// (every console page is `no-store`) and nothing keeps the secret after it is rendered.
pub(crate) async fn issue(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    form: Result<Form<IssueForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return layout::unreadable_form(Some(&signed), rejection),
    };
    let ctx = match signed.command_once(
        "/v1/tokens",
        form.csrf.as_deref(),
        form.submission.as_deref(),
    ) {
        Ok(ctx) => ctx,
        Err(refused) => return *refused,
    };
    let request = api::IssueToken {
        label: form.label.unwrap_or_default(),
        role: form.role.unwrap_or_default(),
        expires_at: form
            .expires_at
            .filter(|v| !v.trim().is_empty())
            .map(|v| as_rfc3339(v.trim())),
    };
    let issued = match app::orgs::issue_token(&registry, &ctx, request).await {
        Ok(answer) => answer.value,
        Err(error) => {
            let problem = problem_box(&error.to_problem());
            let status = StatusCode::from_u16(error.to_problem().status)
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            return match tokens_page(&registry, &signed, Some(problem)) {
                Ok(markup) => html_response(status, markup),
                Err(response) => *response,
            };
        }
    };
    let shown = html! {
        div.passed role="status" {
            p { "Issued " strong { (issued.label) } " (" (issued.role) ")"
                @if let Some(at) = &issued.expires_at { ", expires " (at) } "." }
            @if issued.token.is_none() {
                p.help { "This form was sent before: the token was issued then, and its secret shown that once." }
            }
            @if let Some(token) = &issued.token {
                label for="issued-token" { "The token" }
                div.copy-row {
                    input id="issued-token" type="text" readonly value=(token.0.expose_secret()) size="70" aria-describedby="issued-token-help";
                    button id="copy-token" type="button" data-copy="issued-token" { "Copy" }
                }
                p.help id="issued-token-help" { strong { "Copy it now:" } " it is shown this once and never again. Use Copy, or select it and copy (Ctrl+C or ⌘C)." }
                p.small id="copy-token-status" role="status" aria-live="polite" {}
            }
        }
    };
    match tokens_page(&registry, &signed, Some(shown)) {
        Ok(markup) => html_response(StatusCode::CREATED, markup),
        Err(response) => *response,
    }
}

/// A `datetime-local` value (`2026-12-31T18:00`, read as UTC) as RFC 3339; anything else
/// as sent, for `app` to judge.
fn as_rfc3339(value: &str) -> String {
    match value.len() {
        16 if value.as_bytes()[10] == b'T' => format!("{value}:00Z"),
        19 if value.as_bytes()[10] == b'T' => format!("{value}Z"),
        _ => value.to_owned(),
    }
}

/// The confirmation before revoking.
pub(crate) async fn confirm_revocation(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let tokens = match app::orgs::list_tokens(&registry, &signed.read()) {
        Ok(answer) => answer.value,
        Err(error) => return app_error(&signed, &error),
    };
    let Some(token) = tokens.into_iter().find(|t| t.token_id == id) else {
        return layout::problem_page(
            Some(&signed),
            &api::Problem::new(404, "token.not_found", "no token of this org has this id"),
        );
    };
    let content = html! {
        // A modal once the script opens it (focus kept inside, Escape cancels), like the
        // model's delete confirmation.
        dialog.modal role="alertdialog" aria-labelledby="confirm-title" data-modal data-cancel-href="/tokens" open {
            h2 id="confirm-title" { "Revoke " (token.label) "?" }
            p { "Requests with this " (token.role) " token are refused from the next one on, and its console sessions end. This cannot be undone: issue a new token instead." }
            form method="post" action=(format!("/tokens/{}/revoke", token.token_id)) {
                input type="hidden" name="csrf" value=(signed.csrf);
                button.danger type="submit" { "Revoke" }
                " "
                a href="/tokens" autofocus { "Cancel" }
            }
        }
    };
    html_response(
        StatusCode::OK,
        page(&signed, Section::Tokens, "Revoke token", content),
    )
}

pub(crate) async fn revoke(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return layout::unreadable_form(Some(&signed), rejection),
    };
    let ctx = match signed.command(&format!("/v1/tokens/{id}"), form.csrf.as_deref()) {
        Ok(ctx) => ctx,
        Err(refused) => return *refused,
    };
    match app::orgs::revoke_token(&registry, &ctx, &id).await {
        Ok(_) => Redirect::to("/tokens").into_response(),
        Err(error) => app_error(&signed, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_time_is_read_as_utc() {
        assert_eq!(as_rfc3339("2026-12-31T18:00"), "2026-12-31T18:00:00Z");
        assert_eq!(as_rfc3339("2026-12-31T18:00:30"), "2026-12-31T18:00:30Z");
        assert_eq!(
            as_rfc3339("2026-12-31T18:00:00+01:00"),
            "2026-12-31T18:00:00+01:00"
        );
        assert_eq!(as_rfc3339("soon"), "soon");
    }
}
