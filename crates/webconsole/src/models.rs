//! The Models page (platform and custom, searched, filtered and paged on the server through
//! `app::models::page`, the function `GET /v1/models` calls), a model's detail page (with
//! its truncations and the recommendation they call for, applied with one button),
//! deactivation with its confirmation, and reactivation.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use app::Registry;

use crate::layout::{self, CsrfForm, Section, app_error, html_response, page};
use crate::session::SignedIn;

/// Models on one page of the console.
const PAGE: u32 = 50;

/// The Models page's query: the API's own filters, and the cursor.
#[derive(Default, Deserialize)]
pub(crate) struct ListQuery {
    q: Option<String>,
    provider: Option<String>,
    capability: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    cursor: Option<String>,
}

pub(crate) async fn list(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return crate::layout::unreadable_query(&signed, rejection),
    };
    let blank = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let wanted = api::ModelsQuery {
        limit: Some(PAGE),
        cursor: blank(&query.cursor),
        q: blank(&query.q),
        provider: blank(&query.provider),
        capability: blank(&query.capability),
        status: blank(&query.status),
        kind: blank(&query.kind),
        as_of: None,
    };
    let listed = match app::models::page(&registry, &signed.read(), &wanted) {
        Ok(answer) => answer.value,
        Err(error) => {
            // A filter the API refuses keeps the form to fix it, as the audit page does.
            let problem = error.to_problem();
            if !matches!(problem.status, 400 | 422) {
                return app_error(&signed, &error);
            }
            let status =
                StatusCode::from_u16(problem.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let content = html! {
                div.toolbar { (filters(&wanted)) }
                (layout::problem_box(&problem))
            };
            return html_response(status, page(&signed, Section::Models, "Models", content));
        }
    };
    let next = listed.next_cursor.as_ref().map(|cursor| {
        let mut next = wanted.clone();
        next.cursor = Some(cursor.clone());
        next.limit = None;
        format!("/models?{}", query_string(&next))
    });
    let content = html! {
        div.toolbar {
            (filters(&wanted))
            a.button href="/picker" { "Model picker preview" }
            @if signed.is_admin() {
                a.button.primary href="/models/new" { "Add Custom Model" }
            }
        }
        p.count { (listed.matching.unwrap_or(0)) " matching models" }
        @if !listed.platform.is_empty() {
            h2 { "Platform" }
            table {
                caption.visually-hidden { "Platform models" }
                thead { tr { th { "Model" } th { "Provider" } th { "Capabilities" } th { "Status" } th { "Max tokens" } th { "Input $/token" } th { "Output $/token" } } }
                tbody {
                    @for model in &listed.platform {
                        tr {
                            td {
                                a href=(format!("/platform/{}", model.id)) { (model.display_name) }
                                @if model.default { " " span.badge.default { "default" } }
                                br; code.small { (model.id) }
                            }
                            td { (model.provider) }
                            td { (known_badges(&model.capabilities)) }
                            td { span.status { (model.status) } }
                            td { (unknown_or(model.max_tokens.map(|n| n.to_string()))) }
                            td { (unknown_or(model.input_cost_per_token.clone())) }
                            td { (unknown_or(model.output_cost_per_token.clone())) }
                        }
                    }
                }
            }
        }
        @if !listed.custom.is_empty() {
            h2 { "Custom" }
            table {
                caption.visually-hidden { "Custom models" }
                thead { tr { th { "Model" } th { "Provider" } th { "Capabilities" } th { "Status" } th { "Max tokens" } th { "Input $/token" } th { "Output $/token" } } }
                tbody {
                    @for model in &listed.custom {
                        tr {
                            td {
                                a href=(format!("/models/{}", model.slug)) { (model.display_name) }
                                br; code.small { (model.slug) }
                            }
                            td { (model.provider) }
                            td { (badges(&model.capabilities)) }
                            td { span.status { (model.status) } }
                            td { (model.max_tokens) }
                            td { (unknown_or(model.input_cost_per_token.clone())) }
                            td { (unknown_or(model.output_cost_per_token.clone())) }
                        }
                    }
                }
            }
        }
        @if listed.platform.is_empty() && listed.custom.is_empty() {
            p { "No model matches." }
        }
        @if let Some(next) = next {
            nav.pager aria-label="Pages" { a href=(next) { "Next page" } }
        }
    };
    html_response(
        StatusCode::OK,
        page(&signed, Section::Models, "Models", content),
    )
}

/// The search and filter form (a GET: it changes nothing).
fn filters(query: &api::ModelsQuery) -> Markup {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let choice = |name: &str, label: &str, current: &Option<String>, options: &[&str]| {
        html! {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                option value="" { "any" }
                @for option in options {
                    @if current.as_deref() == Some(*option) {
                        option value=(option) selected { (option) }
                    } @else {
                        option value=(option) { (option) }
                    }
                }
            }
        }
    };
    html! {
        form.filters method="get" action="/models" role="search" {
            label for="q" { "Search" }
            input id="q" name="q" type="search" value=(value(&query.q));
            label for="provider" { "Provider" }
            input id="provider" name="provider" type="text" value=(value(&query.provider));
            (choice("capability", "Capability", &query.capability, &["json_mode", "vision", "tool_use", "reasoning"]))
            (choice("status", "Status", &query.status, &["active", "deactivated", "retired"]))
            (choice("kind", "Kind", &query.kind, &["platform", "custom"]))
            button type="submit" { "Filter" }
        }
    }
}

fn query_string(query: &api::ModelsQuery) -> String {
    let mut parts = Vec::new();
    for (name, value) in [
        ("q", &query.q),
        ("provider", &query.provider),
        ("capability", &query.capability),
        ("status", &query.status),
        ("kind", &query.kind),
        ("cursor", &query.cursor),
    ] {
        if let Some(value) = value {
            parts.push(format!("{name}={}", encode(value)));
        }
    }
    parts.join("&")
}

/// Percent-encodes a query value (everything but unreserved characters).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A value the catalog may not know: "unknown", never 0.
fn unknown_or(value: Option<String>) -> Markup {
    match value {
        Some(value) => html! { (value) },
        None => html! { span.unknown { "unknown" } },
    }
}

fn badges(capabilities: &api::Capabilities) -> Markup {
    html! {
        @if capabilities.json_mode { span.badge { "JSON" } " " }
        @if capabilities.vision { span.badge { "vision" } " " }
        @if capabilities.tool_use { span.badge { "tools" } " " }
        @if let Some(shape) = &capabilities.reasoning { span.badge { "reasoning (" (shape) ")" } }
    }
}

fn known_badges(capabilities: &api::KnownCapabilities) -> Markup {
    html! {
        @if capabilities.json_mode == Some(true) { span.badge { "JSON" } " " }
        @if capabilities.vision == Some(true) { span.badge { "vision" } " " }
        @if capabilities.tool_use == Some(true) { span.badge { "tools" } " " }
        @if let Some(shape) = &capabilities.reasoning { span.badge { "reasoning (" (shape) ")" } }
    }
}

/// A custom model's detail page: every field, the credential, who references it, and the
/// actions an admin may take.
pub(crate) async fn detail(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    Path(slug): Path<String>,
) -> Response {
    let ctx = signed.read();
    let model = match app::models::get(&registry, &ctx, &slug) {
        Ok(answer) => answer.value,
        Err(error) => return app_error(&signed, &error),
    };
    let references = match app::workflows::references(&registry, &ctx, &slug) {
        Ok(answer) => answer.value,
        Err(error) => return app_error(&signed, &error),
    };
    // What each referencing workflow uses that the model lacks (the workflows' own view).
    let mismatches: Vec<(String, Vec<api::Refusal>)> = app::workflows::list(&registry, &ctx, false)
        .map(|answer| answer.value)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|workflow| {
            let warnings: Vec<api::Refusal> = workflow
                .references
                .into_iter()
                .filter(|reference| reference.model == slug)
                .flat_map(|reference| reference.warnings)
                .collect();
            (!warnings.is_empty()).then_some((workflow.name, warnings))
        })
        .collect();
    let history = app::audit::model_history(
        &registry,
        &ctx,
        &slug,
        api::HistoryQuery {
            limit: Some(20),
            ..api::HistoryQuery::default()
        },
    )
    .map(|answer| answer.value.items)
    .unwrap_or_default();
    // The credential's fingerprint is on the credential itself (metadata, never the secret).
    let fingerprint = model
        .credential
        .as_ref()
        .and_then(|c| app::credentials::get(&registry, &ctx, &c.id).ok())
        .map(|answer| answer.value.fingerprint);
    let yes_no = |on: bool| if on { "yes" } else { "no" };
    let content = html! {
        dl.fields {
            dt { "Slug" } dd { code { (model.slug) } }
            dt { "Status" } dd { span.status { (model.status) } }
            @if let (Some(at), Some(by)) = (&model.deactivated_at, &model.deactivated_by) {
                dt { "Deactivated" } dd { (at) " by " (by) }
            }
            dt { "Provider" } dd { (model.provider) }
            dt { "Provider model ID" } dd { code { (model.provider_model_id) } }
            @if let Some(url) = &model.endpoint_url { dt { "Endpoint URL" } dd { (url) } }
            @if let Some(region) = &model.region { dt { "Region" } dd { (region) } }
            dt { "Max tokens" } dd { (model.max_tokens) }
            dt { "JSON mode" } dd { (yes_no(model.capabilities.json_mode)) }
            dt { "Vision" } dd { (yes_no(model.capabilities.vision)) }
            dt { "Tool use" } dd { (yes_no(model.capabilities.tool_use)) }
            dt { "Extended reasoning" } dd {
                @match &model.capabilities.reasoning {
                    Some(shape) => { "yes, parameter " code { (shape) } }
                    None => { "no" }
                }
            }
            dt { "Input cost per token" } dd { (unknown_or(model.input_cost_per_token.clone())) }
            dt { "Output cost per token" } dd { (unknown_or(model.output_cost_per_token.clone())) }
            dt { "Credential" } dd {
                @match &model.credential {
                    Some(credential) => {
                        code { (credential.preview) } " (" (credential.state) ") "
                        span.small { (credential.id) }
                        @if let Some(fingerprint) = &fingerprint {
                            br; span.small { "fingerprint " code { (fingerprint) } }
                        }
                    }
                    None => { "none" }
                }
            }
            dt { "Version" } dd { (model.version) }
            dt { "Created" } dd { (model.created_at) " by " (model.created_by) }
            dt { "Updated" } dd { (model.updated_at) " by " (model.updated_by) }
        }
        @if !model.warnings.is_empty() {
            h2 { "Advice" }
            ul { @for warning in &model.warnings { li { code { (warning.code) } " " (warning.message) } } }
        }
        @if let Some(truncations) = &model.truncations {
            (truncation_section(&signed, &model, truncations))
        }
        h2 { "Workflows referencing it" }
        @if references.active.is_empty() && references.inactive.is_empty() {
            p { "None." }
        } @else {
            ul {
                @for workflow in &references.active { li { (dependent(workflow, "active")) } }
                @for workflow in &references.inactive { li { (dependent(workflow, "inactive")) } }
            }
        }
        @if !mismatches.is_empty() {
            h2 { "Features workflows use that it lacks" }
            ul {
                @for (workflow, warnings) in &mismatches {
                    @for warning in warnings {
                        li { strong { (workflow) } ": " (warning.feature) ", " (warning.reason) }
                    }
                }
            }
        }
        h2 { "History" }
        @if history.is_empty() {
            p { "No entries." }
        } @else {
            table {
                caption.visually-hidden { "History, newest first" }
                thead { tr { th { "When" } th { "Who" } th { "What" } th { "Changes" } } }
                tbody {
                    @for entry in &history {
                        tr {
                            td { (entry.at) br; span.small { "position " (entry.at_position) } }
                            td { (entry.actor.label) br; span.small { (entry.actor.kind) } }
                            td { (entry.summary) }
                            td {
                                @for change in &entry.changes {
                                    code { (change.field) } ": "
                                    (change.before.clone().unwrap_or_else(|| "none".into())) " → "
                                    (change.after.clone().unwrap_or_else(|| "none".into()))
                                    br;
                                }
                            }
                        }
                    }
                }
            }
        }
        @if signed.is_admin() {
            div.actions {
                @if model.status == "active" {
                    a.button href=(format!("/models/{}/edit", model.slug)) { "Edit" }
                    form method="post" action=(format!("/models/{}/test", model.slug)) {
                        input type="hidden" name="csrf" value=(signed.csrf);
                        button type="submit" hx-post=(format!("/models/{}/test", model.slug))
                            hx-target="#model-test" hx-indicator="#testing" { "Test Connection" }
                        " " span id="testing" .indicator role="status" { "Testing…" }
                    }
                    a.button.danger href=(format!("/models/{}/deactivate", model.slug)) { "Delete (deactivate)…" }
                } @else {
                    form method="post" action=(format!("/models/{}/reactivate", model.slug)) {
                        input type="hidden" name="csrf" value=(signed.csrf);
                        button.primary type="submit" { "Reactivate" }
                    }
                }
            }
            div id="model-test" aria-live="polite" {}
        }
    };
    html_response(
        StatusCode::OK,
        page(&signed, Section::Models, &model.display_name, content),
    )
}

/// A referencing workflow, with its truncated calls of the model when it has any.
fn dependent(workflow: &api::Dependent, state: &str) -> Markup {
    html! {
        (workflow.name) " " span.badge { (state) }
        @if workflow.keeps_truncating {
            " " span.badge.danger { "keeps truncating" }
        }
        @if workflow.truncated_calls_7d > 0 {
            " " span.small { (workflow.truncated_calls_7d) " truncated call(s) in 7 days" }
        }
    }
}

/// Truncated calls as runtimes reported them, what they had in common, and the
/// recommendation with the one button that applies it (admins).
fn truncation_section(
    signed: &SignedIn,
    model: &api::Model,
    truncations: &api::Truncations,
) -> Markup {
    html! {
        h2 { "Truncations" }
        p.truncations {
            strong { (truncations.last_24h) } " truncated call(s) in the last 24 hours, "
            strong { (truncations.last_7d) } " in the last 7 days."
        }
        @if !truncations.rounds.is_empty() {
            p { "Rounds: "
                @for (i, round) in truncations.rounds.iter().enumerate() {
                    @if i > 0 { ", " }
                    "round " (round.round) " (" (round.calls) ")"
                }
            }
        }
        @if !truncations.tool_calls.is_empty() {
            p { "Tool calls cut: "
                @for (i, tool) in truncations.tool_calls.iter().enumerate() {
                    @if i > 0 { ", " }
                    code { (tool.name) } " (" (tool.calls) ")"
                }
            }
        }
        @if !truncations.workflows.is_empty() {
            p { "Workflows: "
                @for (i, workflow) in truncations.workflows.iter().enumerate() {
                    @if i > 0 { ", " }
                    (workflow.id) " (" (workflow.truncated_calls_7d) ")"
                    @if workflow.keeps_truncating { " " span.badge.danger { "keeps truncating" } }
                }
            }
        }
        @if let Some(recommendation) = &model.recommendation {
            div.card.recommendation {
                p { strong { "Recommendation: " } (recommendation.message) " " code { (recommendation.code) } }
                @if signed.is_admin() && model.status == "active" {
                    form method="post" action=(format!("/models/{}/recommendation", model.slug)) {
                        input type="hidden" name="csrf" value=(signed.csrf);
                        input type="hidden" name="version" value=(model.version);
                        input type="hidden" name="max_tokens" value=(recommendation.edit.max_tokens);
                        button.primary type="submit" { "Set max tokens to " (recommendation.edit.max_tokens) }
                    }
                }
            }
        }
    }
}

/// The recommendation's form: the edit it makes, at the version the page showed.
#[derive(Deserialize)]
pub(crate) struct RecommendationForm {
    csrf: Option<String>,
    version: Option<String>,
    max_tokens: Option<String>,
}

/// Applies a recommendation: the same edit the Edit page makes (`app::models::edit`, as
/// `PATCH /v1/models/{slug}`), with only max tokens set and the version the page was
/// loaded at, so a change made meanwhile is a conflict, not overwritten.
pub(crate) async fn apply_recommendation(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    Path(slug): Path<String>,
    form: Result<Form<RecommendationForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return layout::unreadable_form(Some(&signed), rejection),
    };
    let ctx = match signed.command(&format!("/v1/models/{slug}"), form.csrf.as_deref()) {
        Ok(ctx) => ctx,
        Err(refused) => return *refused,
    };
    let version = match crate::layout::form_version(&signed, form.version.as_deref()) {
        Ok(version) => version,
        Err(refused) => return *refused,
    };
    let max_tokens = form.max_tokens.map(|raw| match raw.trim().parse::<u64>() {
        Ok(n) => serde_json::Value::from(n),
        Err(_) => serde_json::Value::String(raw),
    });
    let edit = api::EditModel {
        max_tokens,
        ..api::EditModel::default()
    };
    match app::models::edit(&registry, &ctx, &slug, edit, version).await {
        Ok(_) => Redirect::to(&format!("/models/{slug}")).into_response(),
        Err(error) => app_error(&signed, &error),
    }
}

/// The confirmation before deactivating: how many active workflows still reference the
/// model, the first of them, and what happens to them.
pub(crate) async fn confirm_deactivation(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    Path(slug): Path<String>,
) -> Response {
    let ctx = signed.read();
    let model = match app::models::get(&registry, &ctx, &slug) {
        Ok(answer) => answer.value,
        Err(error) => return app_error(&signed, &error),
    };
    let references = match app::workflows::references(&registry, &ctx, &slug) {
        Ok(answer) => answer.value,
        Err(error) => return app_error(&signed, &error),
    };
    let count = references.active.len();
    let content = html! {
        // A modal once the script opens it (focus kept inside, Escape cancels).
        dialog.modal role="alertdialog" aria-labelledby="confirm-title" data-modal data-cancel-href=(format!("/models/{}", model.slug)) open {
            h2 id="confirm-title" { "Deactivate " (model.display_name) "?" }
            @if count == 0 {
                p.count { "No active workflow references this model." }
            } @else {
                p.count { strong { (count) } " active workflow(s) still reference this model" }
                p { "The first is " strong { (references.active[0].name) } ". They will fail to generate responses until they are repointed to another model." }
            }
            p { "The slug " code { (model.slug) } " is never reused. You can reactivate the model later." }
            // Decided on what this page showed: with no dependents it does not confirm any
            // (one that appears meanwhile is refused with its count), and a model changed
            // meanwhile is refused as a stale edit is.
            form method="post" action=(format!("/models/{}/deactivate", model.slug)) {
                input type="hidden" name="csrf" value=(signed.csrf);
                input type="hidden" name="confirm" value=(count > 0);
                input type="hidden" name="version" value=(model.version);
                button.danger type="submit" { "Deactivate" }
                " "
                a href=(format!("/models/{}", model.slug)) autofocus { "Cancel" }
            }
        }
    };
    html_response(
        StatusCode::OK,
        page(&signed, Section::Models, "Delete model", content),
    )
}

#[derive(Deserialize)]
pub(crate) struct DeactivateForm {
    csrf: Option<String>,
    confirm: Option<String>,
    version: Option<String>,
}

pub(crate) async fn deactivate(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    Path(slug): Path<String>,
    form: Result<Form<DeactivateForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return layout::unreadable_form(Some(&signed), rejection),
    };
    let ctx = match signed.command(&format!("/v1/models/{slug}"), form.csrf.as_deref()) {
        Ok(ctx) => ctx,
        Err(refused) => return *refused,
    };
    let confirm = form.confirm.as_deref() == Some("true");
    let version = match layout::form_version(&signed, form.version.as_deref()) {
        Ok(version) => version,
        Err(refused) => return *refused,
    };
    match app::models::deactivate(&registry, &ctx, &slug, confirm, version).await {
        Ok(_) => Redirect::to(&format!("/models/{slug}")).into_response(),
        Err(error) => app_error(&signed, &error),
    }
}

pub(crate) async fn reactivate(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    Path(slug): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return layout::unreadable_form(Some(&signed), rejection),
    };
    let ctx = match signed.command(
        &format!("/v1/models/{slug}/activation"),
        form.csrf.as_deref(),
    ) {
        Ok(ctx) => ctx,
        Err(refused) => return *refused,
    };
    match app::models::reactivate(&registry, &ctx, &slug).await {
        Ok(_) => Redirect::to(&format!("/models/{slug}")).into_response(),
        Err(error) => app_error(&signed, &error),
    }
}

/// A platform model's page: every fact with its source and date, what is unknown, and the
/// org's workflows that reference it.
pub(crate) async fn platform(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let ctx = signed.read();
    let model = match app::catalog::get_model(&registry, &ctx, &id) {
        Ok(answer) => answer.value,
        Err(error) => return app_error(&signed, &error),
    };
    let references = app::workflows::references(&registry, &ctx, &id)
        .map(|answer| answer.value)
        .ok();
    let content = html! {
        dl.fields {
            dt { "Id" } dd { code { (model.id) } }
            dt { "Status" } dd { span.status { (model.status) } @if model.default { " " span.badge.default { "platform default" } } }
            @if let Some(reason) = &model.retired_reason { dt { "Retired" } dd { (reason) } }
            @if let Some(date) = &model.expires_on { dt { "Expires on" } dd { (date) } }
        }
        h2 { "Facts" }
        @if model.facts.is_empty() {
            p { "None known." }
        } @else {
            table {
                caption.visually-hidden { "Facts with their sources" }
                thead { tr { th { "Fact" } th { "Value" } th { "Source" } th { "As of" } } }
                tbody {
                    @for fact in &model.facts {
                        tr {
                            td { code { (fact.fact) } }
                            td { (fact.value) }
                            td { (fact.source) @if let Some(reason) = &fact.override_reason { br; span.small { "override: " (reason) } } }
                            td { (fact.as_of) }
                        }
                    }
                }
            }
        }
        @if !model.unknown.is_empty() {
            p { "Unknown (no source gave them): "
                @for (n, name) in model.unknown.iter().enumerate() {
                    @if n > 0 { ", " }
                    span.unknown { (name) }
                }
            }
        }
        @if let Some(references) = references {
            h2 { "Workflows referencing it" }
            @if references.active.is_empty() && references.inactive.is_empty() {
                p { "None." }
            } @else {
                ul {
                    @for workflow in &references.active { li { (workflow.name) " " span.badge { "active" } } }
                    @for workflow in &references.inactive { li { (workflow.name) " " span.badge { "inactive" } } }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        page(&signed, Section::Models, &model.display_name, content),
    )
}
