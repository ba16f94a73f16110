//! The Add Custom Model dialog, built from the provider descriptions `GET /v1/providers`
//! serves (`app::providers`): Test Connection runs the same test as `POST
//! /v1/connection-tests` and waits for it; Save stays disabled until a test of exactly this
//! draft passed, and sends its receipt to `app::models::add`, which checks it (the console
//! checks nothing itself). The script keeps Save disabled again when a field the receipt
//! binds changes.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use app::Registry;

use crate::layout::{Section, app_error, html_response, page, problem_box};
use crate::session::SignedIn;

#[derive(Default, Deserialize)]
pub(crate) struct ProviderQuery {
    provider: Option<String>,
}

/// What the dialog posts. Secrets are read straight into zeroizing fields and never echoed.
#[derive(Default, Deserialize)]
pub(crate) struct Draft {
    pub(crate) csrf: Option<String>,
    /// The form's random submission id: Save's idempotency key.
    pub(crate) submission: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) display_name: Option<String>,
    pub(crate) provider_model_id: Option<String>,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) credential_kind: Option<String>,
    pub(crate) credential_id: Option<String>,
    pub(crate) api_key: Option<api::SecretField>,
    pub(crate) access_key_id: Option<String>,
    pub(crate) secret_access_key: Option<api::SecretField>,
    pub(crate) session_token: Option<api::SecretField>,
    pub(crate) bedrock_api_key: Option<api::SecretField>,
    pub(crate) max_tokens: Option<String>,
    pub(crate) json_mode: Option<String>,
    pub(crate) vision: Option<String>,
    pub(crate) tool_use: Option<String>,
    /// The extended reasoning switch; `reasoning` is the parameter shape it reveals.
    pub(crate) extended_reasoning: Option<String>,
    pub(crate) reasoning: Option<String>,
    pub(crate) input_cost_per_token: Option<String>,
    pub(crate) output_cost_per_token: Option<String>,
    pub(crate) connection_test_id: Option<String>,
    /// The model's version an edit was loaded at (If-Match).
    pub(crate) version: Option<String>,
}

pub(crate) fn filled(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn filled_secret(value: &Option<api::SecretField>) -> Option<api::SecretField> {
    value
        .as_ref()
        .filter(|v| !v.0.expose_secret().is_empty())
        .map(api::SecretField::duplicate)
}

impl Draft {
    /// The credential as entered, for the chosen alternative only; `None` when a saved one
    /// is picked or nothing was entered.
    pub(crate) fn credential(&self) -> Option<api::CredentialInput> {
        if filled(&self.credential_id).is_some() {
            return None;
        }
        let input = match self.credential_kind.as_deref() {
            Some("aws_access_key") => api::CredentialInput {
                access_key_id: filled(&self.access_key_id),
                secret_access_key: filled_secret(&self.secret_access_key),
                session_token: filled_secret(&self.session_token),
                ..api::CredentialInput::default()
            },
            Some("bedrock_api_key") => api::CredentialInput {
                bedrock_api_key: filled_secret(&self.bedrock_api_key),
                ..api::CredentialInput::default()
            },
            _ => api::CredentialInput {
                api_key: filled_secret(&self.api_key),
                ..api::CredentialInput::default()
            },
        };
        let empty = input.api_key.is_none()
            && input.access_key_id.is_none()
            && input.secret_access_key.is_none()
            && input.bedrock_api_key.is_none();
        (!empty).then_some(input)
    }

    /// The reasoning parameter shape when the switch is on (as chosen, for `app` to judge),
    /// `None` when it is off.
    fn reasoning_shape(&self) -> Option<String> {
        match self.extended_reasoning.as_deref() {
            Some("on") => Some(filled(&self.reasoning).unwrap_or_default()),
            _ => None,
        }
    }

    fn test(&self) -> api::DraftTest {
        api::DraftTest {
            provider: filled(&self.provider).unwrap_or_default(),
            provider_model_id: filled(&self.provider_model_id).unwrap_or_default(),
            endpoint_url: filled(&self.endpoint_url),
            region: filled(&self.region),
            credential: self.credential(),
            credential_id: filled(&self.credential_id),
        }
    }

    pub(crate) fn add(&self) -> api::AddModel {
        let on = |v: &Option<String>| v.as_deref().map(|v| v == "on" || v == "true");
        // Numbers and decimals go to `app` as the text entered; its parse says what is wrong.
        let number = |v: &Option<String>| {
            filled(v).map(|text| match text.parse::<u64>() {
                Ok(n) => serde_json::Value::from(n),
                Err(_) => serde_json::Value::String(text),
            })
        };
        let decimal = |v: &Option<String>| filled(v).map(serde_json::Value::String);
        api::AddModel {
            display_name: filled(&self.display_name),
            provider: filled(&self.provider),
            provider_model_id: filled(&self.provider_model_id),
            credential: self.credential(),
            credential_id: filled(&self.credential_id),
            connection_test_id: filled(&self.connection_test_id),
            test: false,
            endpoint_url: filled(&self.endpoint_url),
            region: filled(&self.region),
            max_tokens: number(&self.max_tokens),
            capabilities: Some(api::CapabilitiesInput {
                json_mode: Some(on(&self.json_mode).unwrap_or(false)),
                vision: Some(on(&self.vision).unwrap_or(false)),
                tool_use: Some(on(&self.tool_use).unwrap_or(false)),
                reasoning: Some(self.reasoning_shape()),
            }),
            input_cost_per_token: decimal(&self.input_cost_per_token),
            output_cost_per_token: decimal(&self.output_cost_per_token),
        }
    }
}

/// The dialog for the provider picked (the first one until then).
pub(crate) async fn form(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    query: Result<Query<ProviderQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let chosen = query.ok().and_then(|Query(q)| q.provider);
    let draft = Draft {
        provider: chosen,
        ..Draft::default()
    };
    render(&registry, &signed, &draft, None, StatusCode::OK)
}

fn render(
    registry: &Registry,
    signed: &SignedIn,
    draft: &Draft,
    outcome: Option<Markup>,
    status: StatusCode,
) -> Response {
    let ctx = signed.read();
    let providers = match app::providers::list(registry, &ctx) {
        Ok(answer) => answer.value.providers,
        Err(error) => return app_error(signed, &error),
    };
    let Some(provider) = providers
        .iter()
        .find(|p| Some(&p.name) == draft.provider.as_ref())
        .or_else(|| providers.first())
    else {
        return app_error(signed, &app::AppError::internal("no provider is described"));
    };
    let saved: Vec<api::Credential> = match app::credentials::list(registry, &ctx) {
        Ok(answer) => answer
            .value
            .into_iter()
            .filter(|c| c.provider == provider.name && c.state == "active")
            .collect(),
        Err(error) => return app_error(signed, &error),
    };
    let content = dialog(signed, &providers, provider, &saved, draft, outcome);
    html_response(
        status,
        page(signed, Section::Models, "Add Custom Model", content),
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn text_input(
    name: &str,
    label: &str,
    value: Option<&str>,
    placeholder: &str,
    help: &str,
    kind: &str,
    required: bool,
) -> Markup {
    let help_id = format!("{name}-help");
    // Password managers ignore `off` on a password field, and would fill in the token saved
    // at sign-in: `new-password` keeps them from filling a secret in.
    let autocomplete = if kind == "password" {
        "new-password"
    } else {
        "off"
    };
    html! {
        div.field {
            label for=(name) { (label) @if required { " " span.required aria-hidden="true" { "*" } } }
            input id=(name) name=(name) type=(kind) value=[value] placeholder=(placeholder)
                required[required] aria-describedby=(help_id) autocomplete=(autocomplete);
            @if !help.is_empty() { p.help id=(help_id) { (help) } }
        }
    }
}

fn dialog(
    signed: &SignedIn,
    providers: &[api::ProviderInfo],
    provider: &api::ProviderInfo,
    saved: &[api::Credential],
    draft: &Draft,
    outcome: Option<Markup>,
) -> Markup {
    // A real modal once the script opens it (focus kept inside, Escape cancels); served
    // open, so that without the script it is the page's content.
    html! {
        dialog.modal id="add-dialog" data-modal data-cancel-href="/models" aria-labelledby="add-dialog-title" open {
        h2 id="add-dialog-title" { "Add Custom Model" }
        form.filters method="get" action="/models/new" data-autosubmit {
            label for="pick-provider" { "Provider" }
            select id="pick-provider" name="provider" {
                @for p in providers {
                    @if p.name == provider.name {
                        option value=(p.name) selected { (p.label) }
                    } @else {
                        option value=(p.name) { (p.label) }
                    }
                }
            }
            button type="submit" { "Choose" }
        }
        form.card id="add-model" method="post" action="/models" data-receipt-form data-alternatives {
            input type="hidden" name="csrf" value=(signed.csrf);
            (crate::layout::submission_field())
            input type="hidden" name="provider" value=(provider.name);
            h2 { (provider.label) }
            div hx-post="/models/new/check" hx-trigger=(CHECK_TRIGGER) hx-target="#draft-check" hx-params=(CHECK_PARAMS) hx-sync="closest form:queue last" {
                (text_input("display_name", "Display name", draft.display_name.as_deref(), "Team GPT", "The slug is derived from it once and never changes.", "text", true))
            }
            div id="draft-check" aria-live="polite" {}
            (text_input("provider_model_id", "Provider model ID", draft.provider_model_id.as_deref(), &provider.model_id.example,
                &format!("{}, e.g. {}", provider.model_id.form, provider.model_id.example), "text", true))
            @if let Some(endpoint) = &provider.endpoint {
                @let value = if endpoint.name == "region" { draft.region.as_deref() } else { draft.endpoint_url.as_deref() };
                @let kind = if endpoint.kind == "url" { "url" } else { "text" };
                (text_input(&endpoint.name, &endpoint.label, value, &endpoint.placeholder, &endpoint.help, kind, endpoint.required))
            }
            fieldset {
                legend { "Credential" @if !provider.credential_required { " (optional)" } }
                (credential_alternatives(provider, draft))
                @if !saved.is_empty() {
                    div.field {
                        label for="credential_id" { "Or reuse saved credentials" }
                        select id="credential_id" name="credential_id" {
                            option value="" { "enter a new credential above" }
                            @for credential in saved {
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
            (text_input("input_cost_per_token", "Input cost per token (USD)", draft.input_cost_per_token.as_deref(), "0.000001", "Leave empty when unknown.", "text", false))
            (text_input("output_cost_per_token", "Output cost per token (USD)", draft.output_cost_per_token.as_deref(), "0.000004", "Leave empty when unknown.", "text", false))
            div.actions {
                button type="submit" formaction="/models/new/test" hx-post="/models/new/test"
                    hx-target="#test-outcome" hx-swap="innerHTML" hx-indicator="#testing" {
                    "Test Connection"
                }
                span id="testing" .indicator role="status" { "Testing…" }
                (save_button(false))
                a href="/models" { "Cancel" }
            }
            div id="test-outcome" aria-live="polite" {
                @if let Some(outcome) = outcome { (outcome) }
                @else { p.help id="save-why" { "Save is enabled once a Test Connection of exactly this draft passes." } }
            }
        }
        }
    }
}

/// The provider's credential alternatives (Bedrock's "IAM key pair" or "Bedrock API key")
/// as an explicit choice, each alternative's fields in its own fieldset (the script shows
/// the chosen one only); one alternative needs no choice. Secrets are never echoed back.
pub(crate) fn credential_alternatives(provider: &api::ProviderInfo, draft: &Draft) -> Markup {
    let chosen_kind = draft
        .credential_kind
        .clone()
        .or_else(|| {
            provider
                .credential_alternatives
                .first()
                .map(|a| a.kind.clone())
        })
        .unwrap_or_default();
    html! {
        @if provider.credential_alternatives.len() > 1 {
            p.help { "Give exactly one of these:" }
            @for alternative in &provider.credential_alternatives {
                label.inline {
                    input type="radio" name="credential_kind" value=(alternative.kind) checked[alternative.kind == chosen_kind];
                    " " (alternative.label)
                }
            }
        } @else if let Some(alternative) = provider.credential_alternatives.first() {
            input type="hidden" name="credential_kind" value=(alternative.kind);
        }
        @for alternative in &provider.credential_alternatives {
            fieldset.alternative data-kind=(alternative.kind) {
                legend { (alternative.label) }
                @for field in &alternative.fields {
                    @let kind = if field.kind == "secret" { "password" } else { "text" };
                    @let value = if field.name == "access_key_id" { draft.access_key_id.as_deref() } else { None };
                    (text_input(&field.name, &field.label, value, &field.placeholder, &field.help, kind, false))
                }
            }
        }
    }
}

/// The max tokens field with the guidance beside it and the server's warnings for the draft
/// as it stands, asked again (`/models/advice`) as the value or a capability switch changes.
pub(crate) fn max_tokens_field(draft: &Draft) -> Markup {
    html! {
        div.field {
            label for="max_tokens" { "Max tokens " span.required aria-hidden="true" { "*" } }
            input id="max_tokens" name="max_tokens" type="number" min="1" value=[draft.max_tokens.as_deref()]
                placeholder="32000" required aria-describedby="max_tokens-help max-tokens-advice" autocomplete="off";
            ul.help id="max_tokens-help" {
                li { "The most output tokens a call may ask for." }
                @for guidance in app::models::MAX_TOKENS_GUIDANCE { li { (guidance) } }
            }
            div id="max-tokens-advice" aria-live="polite" hx-post="/models/advice" hx-trigger=(ADVICE_TRIGGER)
                hx-include="closest form" hx-params=(CHECK_PARAMS) hx-target="this" hx-sync="this:queue last" {
                (advice(draft))
            }
        }
    }
}

/// The capability switches; extended reasoning reveals its parameter shape (CSS `:has`, so
/// hidden choices leave the tab order and no script is needed).
pub(crate) fn capabilities_fieldset(draft: &Draft) -> Markup {
    let on = |value: &Option<String>| value.as_deref() == Some("on");
    let shape = filled(&draft.reasoning).unwrap_or_else(|| "effort".to_owned());
    html! {
        fieldset.capabilities {
            legend { "Capabilities" }
            label.inline { input type="checkbox" name="json_mode" checked[on(&draft.json_mode)]; " JSON mode" }
            label.inline { input type="checkbox" name="vision" checked[on(&draft.vision)]; " Vision" }
            label.inline { input type="checkbox" name="tool_use" checked[on(&draft.tool_use)]; " Tool use" }
            label.inline { input id="extended_reasoning" type="checkbox" name="extended_reasoning" checked[on(&draft.extended_reasoning)]; " Extended reasoning" }
            fieldset.reasoning-shape id="reasoning-shape" {
                legend { "Reasoning parameter" }
                @for (value, label) in [("effort", "reasoning effort (low, medium, high)"), ("max_tokens", "reasoning max_tokens budget")] {
                    label.inline { input type="radio" name="reasoning" value=(value) checked[shape == value]; " " (label) }
                }
            }
        }
    }
}

/// The warnings for the draft's max tokens (nothing while the value is empty), or why the
/// value is not one.
fn advice(draft: &Draft) -> Markup {
    match app::models::max_tokens_advice(draft.add()) {
        Ok(warnings) => html! {
            @for warning in &warnings {
                p.warning { code { (warning.code) } " " (warning.message) }
            }
        },
        Err(error) => {
            let problem = error.to_problem();
            html! {
                @for field in &problem.errors { p.warning { code { (field.code) } " " (field.detail) } }
                @if problem.errors.is_empty() { p.warning { (problem.detail) } }
            }
        }
    }
}

/// The advice fragment for the add dialog and the edit page.
pub(crate) async fn advise(signed: SignedIn, form: Result<Form<Draft>, FormRejection>) -> Response {
    let Form(draft) = match form {
        Ok(form) => form,
        Err(rejection) => return crate::layout::unreadable_form(Some(&signed), rejection),
    };
    if let Err(refused) = signed.command("/v1/models", draft.csrf.as_deref()) {
        return *refused;
    }
    crate::layout::html_response(StatusCode::OK, advice(&draft))
}

/// When the advice is asked again: typing in max tokens settles, or any field changes.
/// Its requests queue (`hx-sync="this:queue last"`) rather than replace one another: a
/// replaced request is aborted, which htmx reports as an error in the browser's console, and
/// the latest values are asked for all the same.
const ADVICE_TRIGGER: &str = "keyup delay:400ms from:#max_tokens, change from:closest form";

/// When the dialog asks the server for the slug: typing settles, or a value changes.
const CHECK_TRIGGER: &str = "keyup delay:500ms, change";
/// The dry run needs no secret: none is sent with it. The checks share one queue on the form
/// (`hx-sync`): one at a time, the latest waiting, so a late answer never overwrites a newer.
const CHECK_PARAMS: &str = "not api_key,secret_access_key,session_token,bedrock_api_key";

fn save_button(enabled: bool) -> Markup {
    html! {
        @if enabled {
            button.primary id="save" type="submit" { "Save" }
        } @else {
            button.primary id="save" type="submit" disabled aria-describedby="save-why" { "Save" }
        }
    }
}

/// What a test found: its class, one-line fix and the provider's redacted message; on
/// success the known prices, with a button that copies them into the form.
pub(crate) fn result(test: &api::ConnectionTest) -> Markup {
    match &test.result {
        None => html! {
            p.problem role="alert" { "The test is still running; test again in a moment." }
        },
        Some(result) if result.passed => html! {
            div.passed {
                p { strong { "Connection works" } " (" (result.class) ", " (result.latency_ms) " ms)." }
                @if let (Some(input), Some(output)) = (&result.suggested_input_cost_per_token, &result.suggested_output_cost_per_token) {
                    p {
                        "Known prices: input " (input) ", output " (output) " USD per token. "
                        button type="button" data-fill-input=(input) data-fill-output=(output) { "Use these prices" }
                    }
                }
            }
        },
        Some(result) => html! {
            div.problem role="alert" {
                p { strong { "Test failed: " } code { (result.class) } }
                p { (result.hint) }
                @if let Some(message) = &result.upstream_message {
                    p { "The provider said: " (message) }
                }
            }
        },
    }
}

/// [`result`], with the receipt inside the form when it passed and Save enabled or not.
fn outcome(test: &api::ConnectionTest) -> Markup {
    let passed = test.result.as_ref().is_some_and(|r| r.passed);
    html! {
        (result(test))
        @if passed {
            input type="hidden" name="connection_test_id" value=(test.id) data-receipt;
            p.help id="save-why" { "Changing the provider model ID, endpoint or credential disables Save until you test again." }
        } @else {
            p.help id="save-why" { "Save stays disabled until a test of this draft passes." }
        }
        (save_button_oob(passed))
    }
}

/// The Save button replaced out of band (an htmx swap beside the outcome).
fn save_button_oob(enabled: bool) -> Markup {
    html! {
        @if enabled {
            button.primary id="save" type="submit" hx-swap-oob="true" { "Save" }
        } @else {
            button.primary id="save" type="submit" disabled hx-swap-oob="true" { "Save" }
        }
    }
}

/// The draft checked without its secret (`POST /v1/models?dry_run=true`'s function): the
/// slug it would get, or what is missing (the max tokens advice has its own place).
pub(crate) async fn check(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    form: Result<Form<Draft>, FormRejection>,
) -> Response {
    let Form(draft) = match form {
        Ok(form) => form,
        Err(rejection) => return crate::layout::unreadable_form(Some(&signed), rejection),
    };
    let ctx = match signed.command("/v1/models", draft.csrf.as_deref()) {
        Ok(ctx) => ctx,
        Err(refused) => return *refused,
    };
    let shown = match app::models::check_draft(&registry, &ctx, draft.add()) {
        Ok(answer) => html! {
            p.help { "Slug: " code { (answer.value.slug) } }
        },
        // While the draft is incomplete, say what is missing, quietly.
        Err(error) => {
            let problem = error.to_problem();
            html! {
                ul.help {
                    @for field in &problem.errors { li { code { (field.field) } ": " (field.detail) } }
                    @if problem.errors.is_empty() { li { (problem.detail) } }
                }
            }
        }
    };
    crate::layout::html_response(StatusCode::OK, shown)
}

/// Runs Test Connection on the draft and shows its outcome: a fragment for htmx, else the
/// whole dialog again (secrets are not echoed: enter them again before saving).
pub(crate) async fn test(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    headers: HeaderMap,
    form: Result<Form<Draft>, FormRejection>,
) -> Response {
    let Form(draft) = match form {
        Ok(form) => form,
        Err(rejection) => return crate::layout::unreadable_form(Some(&signed), rejection),
    };
    let ctx = match signed.command("/v1/connection-tests", draft.csrf.as_deref()) {
        Ok(ctx) => ctx,
        Err(refused) => return *refused,
    };
    let fragment = headers.contains_key("hx-request");
    let tested = run_test(&registry, &ctx, draft.test()).await;
    // "Reuse saved credentials": the entered secret is saved already (app compares keyed
    // fingerprints); the add then uses the saved credential instead of a second copy.
    let reuse = match (&tested, draft.credential(), filled(&draft.provider)) {
        (Ok(_), Some(credential), Some(provider)) => app::credentials::matching(
            &registry,
            &ctx,
            api::MatchCredential {
                provider,
                credential,
            },
        )
        .ok()
        .and_then(|answer| answer.value.reuse_available),
        _ => None,
    };
    let shown = match tested {
        Ok(test) => html! {
            (outcome(&test))
            @if let Some(saved) = reuse {
                p.reuse role="status" {
                    strong { "Reuse saved credentials: " }
                    "this secret is saved already (" code { (saved.preview) } ", " (saved.id) "); Save uses the saved credential instead of a second copy."
                }
            }
        },
        Err(error) => html! { (problem_box(&error.to_problem())) (save_button_oob(false)) },
    };
    if fragment {
        return crate::layout::html_response(StatusCode::OK, shown);
    }
    render(&registry, &signed, &draft, Some(shown), StatusCode::OK)
}

async fn run_test(
    registry: &Registry,
    ctx: &app::Ctx,
    draft: api::DraftTest,
) -> Result<api::ConnectionTest, app::AppError> {
    let requested = app::connection_tests::request_draft(registry, ctx, draft).await?;
    let waited = app::connection_tests::get(
        registry,
        ctx,
        &requested.value.id,
        Some(app::connection_tests::MAX_WAIT),
    )
    .await?;
    Ok(waited.value)
}

/// Saves the model through `app::models::add`, gated there on the receipt.
pub(crate) async fn save(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    form: Result<Form<Draft>, FormRejection>,
) -> Response {
    let Form(draft) = match form {
        Ok(form) => form,
        Err(rejection) => return crate::layout::unreadable_form(Some(&signed), rejection),
    };
    let ctx = match signed.command_once(
        "/v1/models",
        draft.csrf.as_deref(),
        draft.submission.as_deref(),
    ) {
        Ok(ctx) => ctx,
        Err(refused) => return *refused,
    };
    match app::models::add(&registry, &ctx, draft.add()).await {
        Ok(added) => Redirect::to(&format!("/models/{}", added.value.model.slug)).into_response(),
        Err(error) => {
            let problem = error.to_problem();
            let status =
                StatusCode::from_u16(problem.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            render(
                &registry,
                &signed,
                &draft,
                Some(problem_box(&problem)),
                status,
            )
        }
    }
}
