//! The model picker preview: the model dropdown as the Pipeline Builder presents it, grouped
//! Platform and Custom, and the step's controls for the model picked, enabled or shown only
//! as the API's `controls` for that model say (tool calling only with tool use, JSON output
//! only with JSON mode, image input only with vision, the reasoning control in the model's
//! shape: an effort choice or a token budget). For the pipelines team to see and copy.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use app::Registry;

use crate::layout::{Section, app_error, html_response, page};
use crate::session::SignedIn;

#[derive(Default, Deserialize)]
pub(crate) struct PickerQuery {
    model: Option<String>,
}

pub(crate) async fn preview(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    query: Result<Query<PickerQuery>, QueryRejection>,
) -> Response {
    let wanted = api::ModelsQuery {
        status: Some("active".into()),
        limit: Some(app::models::MAX_LIMIT),
        ..api::ModelsQuery::default()
    };
    let models = match app::models::page(&registry, &signed.read(), &wanted) {
        Ok(answer) => answer.value,
        Err(error) => return app_error(&signed, &error),
    };
    let chosen = query
        .ok()
        .and_then(|Query(q)| q.model)
        .or_else(|| models.default_model.as_ref().map(|d| d.model.clone()))
        .unwrap_or_default();
    let listed = models
        .platform
        .iter()
        .find(|m| m.id == chosen)
        .map(|m| (m.display_name.clone(), m.controls))
        .or_else(|| {
            models
                .custom
                .iter()
                .find(|m| m.slug == chosen)
                .map(|m| (m.display_name.clone(), m.controls))
        });
    // The list is one page (at most `MAX_LIMIT` models): a custom model past it is read on
    // its own, and offered in the dropdown too.
    let beyond = match &listed {
        None if !chosen.is_empty() && !chosen.contains('/') => {
            app::models::get(&registry, &signed.read(), &chosen)
                .ok()
                .map(|answer| answer.value)
                .filter(|model| model.status == "active")
        }
        _ => None,
    };
    let controls = listed.or_else(|| {
        beyond
            .as_ref()
            .map(|m| (m.display_name.clone(), m.controls))
    });
    let content = html! {
        p.help { "The model dropdown and step controls as the Pipeline Builder shows them, from each model's " code { "controls" } " in " code { "GET /v1/models" } "." }
        form.filters method="get" action="/picker" data-autosubmit {
            label for="model" { "Model" }
            select id="model" name="model" {
                optgroup label="Platform" {
                    @for model in &models.platform {
                        option value=(model.id) selected[model.id == chosen] {
                            (model.display_name) @if model.default { " (default)" }
                        }
                    }
                }
                @if !models.custom.is_empty() || beyond.is_some() {
                    optgroup label="Custom" {
                        @for model in &models.custom {
                            option value=(model.slug) selected[model.slug == chosen] { (model.display_name) }
                        }
                        @if let Some(model) = &beyond {
                            option value=(model.slug) selected { (model.display_name) }
                        }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        @match controls {
            Some((name, controls)) => { (panel(&name, &controls)) }
            None => { p { "Pick a model." } }
        }
    };
    html_response(
        StatusCode::OK,
        page(&signed, Section::Models, "Model picker preview", content),
    )
}

fn panel(name: &str, controls: &api::Controls) -> Markup {
    let toggle = |id: &str, label: &str, enabled: bool, why: &str| {
        html! {
            div.field {
                label.inline {
                    input type="checkbox" id=(id) name=(id) disabled[!enabled];
                    " " (label)
                }
                @if !enabled { p.help { (why) } }
            }
        }
    };
    html! {
        fieldset.card {
            legend { "Step controls for " (name) }
            (toggle("tools", "Tool calling", controls.tools, "Disabled: the model does not have Tool use."))
            (toggle("json_output", "JSON output", controls.json_mode, "Disabled: the model does not have JSON mode."))
            (toggle("image_input", "Image input", controls.image_input, "Disabled: the model does not have Vision."))
            @if controls.reasoning_effort {
                div.field {
                    label for="reasoning_effort" { "Reasoning effort" }
                    select id="reasoning_effort" name="reasoning_effort" {
                        option { "low" } option selected { "medium" } option { "high" }
                    }
                }
            } @else if controls.reasoning_budget {
                div.field {
                    label for="reasoning_budget" { "Reasoning budget (max_tokens)" }
                    input id="reasoning_budget" name="reasoning_budget" type="number" min="1" value="4096";
                }
            } @else {
                p.help id="no-reasoning" { "No extended reasoning control: the model does not reason, or the catalog does not know." }
            }
        }
    }
}
