//! Editing a custom model (every field; not gated on a test; a blank credential keeps the
//! stored one; the version the form was loaded at goes as If-Match, so a concurrent edit is
//! refused as a conflict and shown with the current values), and Test Connection of a saved
//! model (the stored credential when none is entered). Both call the `app` functions the
//! API's `PATCH /v1/models/{slug}` and `POST /v1/models/{slug}/connection-tests` call.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use app::Registry;

use crate::add::{
    Draft, capabilities_fieldset, credential_alternatives, filled, max_tokens_field, text_input,
};
use crate::layout::{Section, app_error, html_response, page, problem_box, unreadable_form};
use crate::session::SignedIn;

/// The edit form, filled with the model's current values.
pub(crate) async fn form(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    Path(slug): Path<String>,
) -> Response {
    let ctx = signed.read();
    let model = match app::models::get(&registry, &ctx, &slug) {
        Ok(answer) => answer.value,
        Err(error) => return app_error(&signed, &error),
    };
    render(&registry, &signed, &model, &Draft::of_model(&model), None)
}

fn render(
    registry: &Registry,
    signed: &SignedIn,
    model: &api::Model,
    draft: &Draft,
    problem: Option<(StatusCode, Markup)>,
) -> Response {
    let ctx = signed.read();
    let provider = app::providers::list(registry, &ctx)
        .ok()
        .and_then(|answer| {
            answer
                .value
                .providers
                .into_iter()
                .find(|p| p.name == model.provider)
        });
    let Some(provider) = provider else {
        return app_error(
            signed,
            &app::AppError::internal("the model's provider is not described"),
        );
    };
    let saved: Vec<api::Credential> = app::credentials::list(registry, &ctx)
        .map(|answer| {
            answer
                .value
                .into_iter()
                .filter(|c| c.provider == provider.name && c.state == "active")
                .collect()
        })
        .unwrap_or_default();
    let (status, shown) = match problem {
        Some((status, shown)) => (status, Some(shown)),
        None => (StatusCode::OK, None),
    };
    let content = html! {
        @if let Some(shown) = shown { (shown) }
        form.card method="post" action=(format!("/models/{}/edit", model.slug)) data-alternatives {
            input type="hidden" name="csrf" value=(signed.csrf);
            // Read by the max tokens advice (the documented ceiling is the provider model's).
            input type="hidden" name="provider" value=(model.provider);
            input type="hidden" name="version" value=(draft.version.clone().unwrap_or_default());
            p { "Slug " code { (model.slug) } " (never changes) · provider " (provider.label) }
            (text_input("display_name", "Display name", draft.display_name.as_deref(), "", "", "text", true))
            (text_input("provider_model_id", "Provider model ID", draft.provider_model_id.as_deref(), &provider.model_id.example,
                &format!("{}, e.g. {}", provider.model_id.form, provider.model_id.example), "text", true))
            @if let Some(endpoint) = &provider.endpoint {
                @let value = if endpoint.name == "region" { draft.region.as_deref() } else { draft.endpoint_url.as_deref() };
                @let kind = if endpoint.kind == "url" { "url" } else { "text" };
                (text_input(&endpoint.name, &endpoint.label, value, &endpoint.placeholder, &endpoint.help, kind, endpoint.required))
            }
            fieldset {
                legend { "Credential" }
                p.help {
                    "Leave blank to keep the stored credential"
                    @if let Some(credential) = &model.credential { " (" code { (credential.preview) } ")" }
                    "."
                }
                (credential_alternatives(&provider, draft))
                @if !saved.is_empty() {
                    div.field {
                        label for="credential_id" { "Or another saved credential" }
                        select id="credential_id" name="credential_id" {
                            option value="" { "keep the stored one" }
                            @for credential in &saved {
                                option value=(credential.id) {
                                    (credential.name.clone().unwrap_or_else(|| credential.id.clone())) " · " (credential.preview)
                                }
                            }
                        }
                    }
                }
            }
            (max_tokens_field(draft))
            (capabilities_fieldset(draft))
            (text_input("input_cost_per_token", "Input cost per token (USD)", draft.input_cost_per_token.as_deref(), "", "Empty: unknown.", "text", false))
            (text_input("output_cost_per_token", "Output cost per token (USD)", draft.output_cost_per_token.as_deref(), "", "Empty: unknown.", "text", false))
            div.actions {
                button.primary type="submit" { "Save changes" }
                a href=(format!("/models/{}", model.slug)) { "Cancel" }
            }
        }
    };
    html_response(
        status,
        page(
            signed,
            Section::Models,
            &format!("Edit {}", model.display_name),
            content,
        ),
    )
}

/// Applies the edit, at the version the form was loaded at.
pub(crate) async fn save(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    Path(slug): Path<String>,
    form: Result<Form<Draft>, FormRejection>,
) -> Response {
    let Form(draft) = match form {
        Ok(form) => form,
        Err(rejection) => return unreadable_form(Some(&signed), rejection),
    };
    let ctx = match signed.command(&format!("/v1/models/{slug}"), draft.csrf.as_deref()) {
        Ok(ctx) => ctx,
        Err(refused) => return *refused,
    };
    let version = match crate::layout::form_version(&signed, draft.version.as_deref()) {
        Ok(version) => version,
        Err(refused) => return *refused,
    };
    match app::models::edit(&registry, &ctx, &slug, draft.edit(), version).await {
        Ok(_) => Redirect::to(&format!("/models/{slug}")).into_response(),
        Err(error) => {
            let problem = error.to_problem();
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::CONFLICT);
            let current = match app::models::get(&registry, &signed.read(), &slug) {
                Ok(answer) => answer.value,
                Err(error) => return app_error(&signed, &error),
            };
            // A conflict shows the current values; the form keeps what was entered, now
            // against the current version, so saving again applies it knowingly.
            let mut kept = draft;
            let shown = html! {
                (problem_box(&problem))
                @if problem.current_version.is_some() {
                    div.card {
                        h2 { "Current values (version " (current.version) ")" }
                        dl.fields {
                            dt { "Display name" } dd { (current.display_name) }
                            dt { "Provider model ID" } dd { code { (current.provider_model_id) } }
                            dt { "Max tokens" } dd { (current.max_tokens) }
                            dt { "Updated" } dd { (current.updated_at) " by " (current.updated_by) }
                        }
                    }
                }
            };
            if problem.current_version.is_some() {
                kept.version = Some(current.version.to_string());
            }
            render(&registry, &signed, &current, &kept, Some((status, shown)))
        }
    }
}

/// Test Connection of the saved model: the stored credential unless one is entered.
pub(crate) async fn test(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: Result<Form<Draft>, FormRejection>,
) -> Response {
    let Form(draft) = match form {
        Ok(form) => form,
        Err(rejection) => return unreadable_form(Some(&signed), rejection),
    };
    let ctx = match signed.command(
        &format!("/v1/models/{slug}/connection-tests"),
        draft.csrf.as_deref(),
    ) {
        Ok(ctx) => ctx,
        Err(refused) => return *refused,
    };
    let body = api::ModelTest {
        credential: draft.credential(),
    };
    let tested = async {
        let requested =
            app::connection_tests::request_for_model(&registry, &ctx, &slug, body).await?;
        app::connection_tests::get(
            &registry,
            &ctx,
            &requested.value.id,
            Some(app::connection_tests::MAX_WAIT),
        )
        .await
    }
    .await;
    let shown = match tested {
        Ok(answer) => crate::add::result(&answer.value),
        Err(error) => problem_box(&error.to_problem()),
    };
    if headers.contains_key("hx-request") {
        return html_response(StatusCode::OK, shown);
    }
    html_response(
        StatusCode::OK,
        page(
            &signed,
            Section::Models,
            "Test Connection",
            html! { (shown) p { a href=(format!("/models/{slug}")) { "Back to the model" } } },
        ),
    )
}

impl Draft {
    /// The form of an edit, from the model as it is.
    fn of_model(model: &api::Model) -> Self {
        let on = |flag: bool| flag.then(|| "on".to_owned());
        Self {
            version: Some(model.version.to_string()),
            provider: Some(model.provider.clone()),
            display_name: Some(model.display_name.clone()),
            provider_model_id: Some(model.provider_model_id.clone()),
            endpoint_url: model.endpoint_url.clone(),
            region: model.region.clone(),
            max_tokens: Some(model.max_tokens.to_string()),
            json_mode: on(model.capabilities.json_mode),
            vision: on(model.capabilities.vision),
            tool_use: on(model.capabilities.tool_use),
            extended_reasoning: model
                .capabilities
                .reasoning
                .as_ref()
                .map(|_| "on".to_owned()),
            reasoning: model.capabilities.reasoning.clone(),
            input_cost_per_token: model.input_cost_per_token.clone(),
            output_cost_per_token: model.output_cost_per_token.clone(),
            ..Self::default()
        }
    }

    /// The edit as `PATCH /v1/models/{slug}` takes it: every field the form holds; a blank
    /// credential is left out (the stored one stays); an empty cost clears it.
    fn edit(&self) -> api::EditModel {
        let added = self.add();
        let cost = |v: &Option<String>| {
            Some(filled(v).map_or(serde_json::Value::Null, serde_json::Value::String))
        };
        api::EditModel {
            display_name: added.display_name,
            provider_model_id: added.provider_model_id,
            credential: added.credential,
            credential_id: added.credential_id,
            endpoint_url: added.endpoint_url,
            region: added.region,
            max_tokens: added.max_tokens,
            capabilities: added.capabilities,
            input_cost_per_token: cost(&self.input_cost_per_token),
            output_cost_per_token: cost(&self.output_cost_per_token),
        }
    }
}
