//! The Credentials page (preview, provider, how many models use each, the last test) and the
//! Workflows page (each workflow's references, the broken ones first), from the functions
//! `GET /v1/credentials` and `GET /v1/workflows` call.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use app::Registry;

use crate::layout::{Section, app_error, html_response, page};
use crate::session::SignedIn;

pub(crate) async fn credentials(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
) -> Response {
    let credentials = match app::credentials::list(&registry, &signed.read()) {
        Ok(answer) => answer.value,
        Err(error) => return app_error(&signed, &error),
    };
    let content = html! {
        @if credentials.is_empty() {
            p { "No saved credentials. A credential is saved when a custom model is added with one." }
        } @else {
            table {
                caption.visually-hidden { "Saved credentials" }
                thead { tr { th { "Name" } th { "Provider" } th { "Preview" } th { "Fingerprint" } th { "State" } th { "Used by" } th { "Last test" } } }
                tbody {
                    @for credential in &credentials {
                        tr {
                            td { (credential.name.clone().unwrap_or_else(|| credential.id.clone())) }
                            td { (credential.provider) " " span.small { (credential.kind) } }
                            td { code { (credential.preview) } }
                            td { code.small title=(credential.fingerprint) { (credential.fingerprint.chars().take(12).collect::<String>()) "…" } }
                            td { span.status { (credential.state) } @if credential.expiring_soon { " " span.badge { "expiring soon" } } }
                            td {
                                (credential.used_by) " active model(s)"
                                @for slug in &credential.models { br; a href=(format!("/models/{slug}")) { (slug) } }
                            }
                            td {
                                @match &credential.last_test {
                                    Some(test) => { (if test.passed { "passed" } else { "failed" }) " " code { (test.class) } br; span.small { (test.completed_at) } }
                                    None => { span.unknown { "never tested" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        page(&signed, Section::Credentials, "Credentials", content),
    )
}

pub(crate) async fn workflows(State(registry): State<Arc<Registry>>, signed: SignedIn) -> Response {
    let mut workflows = match app::workflows::list(&registry, &signed.read(), false) {
        Ok(answer) => answer.value,
        Err(error) => return app_error(&signed, &error),
    };
    // The broken ones first: they need someone.
    workflows.sort_by_key(|w| !w.broken);
    let broken = workflows.iter().filter(|w| w.broken).count();
    let content = html! {
        p.count { (broken) " broken workflow(s) of " (workflows.len()) }
        @if workflows.is_empty() {
            p { "No workflows reported yet." }
        } @else {
            table {
                caption.visually-hidden { "Workflows" }
                thead { tr { th { "Workflow" } th { "State" } th { "Models referenced" } } }
                tbody {
                    @for workflow in &workflows {
                        tr {
                            td { (workflow.name) br; code.small { (workflow.id) } }
                            td {
                                @if workflow.broken { span.badge.danger { "broken" } " " }
                                (if workflow.active { "active" } else { "inactive" })
                            }
                            td {
                                ul.plain {
                                    @for reference in &workflow.references {
                                        li {
                                            @if reference.model.contains('/') {
                                                code { (reference.model) }
                                            } @else {
                                                a href=(format!("/models/{}", reference.model)) { (reference.model) }
                                            }
                                            " " span.status { (reference.status) }
                                            @for warning in &reference.warnings {
                                                br; span.small { "lacks " (warning.feature) ": " (warning.reason) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        page(&signed, Section::Workflows, "Workflows", content),
    )
}
