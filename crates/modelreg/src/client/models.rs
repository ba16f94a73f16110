//! `modelreg models …`: list, show, add (Test Connection first), test, edit, deactivate and
//! reactivate custom models, each request one of the wire contract's types.

use anyhow::bail;
use api::{
    AddModel, AddedModel, CapabilitiesInput, CheckAnswer, CheckModel, CheckedDraft, ConfirmQuery,
    CredentialInput, DraftTest, DryRunQuery, EditModel, Model, ModelList, ModelReferences,
    ModelTest, Positioned, Problem, TestResult,
};
use serde_json::Value;

use super::args::{
    AddArgs, CheckArgs, EditArgs, ModelFields, ModelsCommand, NewSecretArgs, Remote,
};
use super::connection_test;
use super::http::{Answer, ApiError, Client, segment};
use super::input::{confirm, on_a_terminal, read_credential};
use super::output::{
    check_lines, model_list, model_references, model_summary, outcome_lines, platform_summary,
    price_lines, show,
};
use crate::{note, say};

pub(crate) async fn run(remote: Remote, command: ModelsCommand) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    let model: Answer<Positioned<Model>> = match command {
        ModelsCommand::List { all, as_of } => {
            let answer: Answer<Positioned<ModelList>> = client
                .get("/v1/models")
                .query(&api::AsOfQuery { as_of })
                .answer()
                .await?;
            return show(client.json, &answer, |list| model_list(&list.value, all));
        }
        ModelsCommand::Show { model, .. } if model.contains('/') => {
            return show_platform(&client, &model).await;
        }
        ModelsCommand::Show { model, as_of } => {
            client
                .get(&model_path(&model))
                .query(&api::AsOfQuery { as_of })
                .answer()
                .await?
        }
        ModelsCommand::Check(check) => return check_model(&client, check).await,
        ModelsCommand::History { slug, pages } => {
            let path = format!("{}/history", model_path(&slug));
            return super::audit::history(&client, &path, &pages).await;
        }
        ModelsCommand::Workflows { slug } => {
            let path = format!("{}/workflows", model_path(&slug));
            let answer: Answer<Positioned<ModelReferences>> = client.get(&path).answer().await?;
            return show(client.json, &answer, |references| {
                model_references(&references.value)
            });
        }
        ModelsCommand::Add(add) => {
            let added = add_model(&client, &add).await?;
            if client.json {
                say(&added.pretty()?);
                return Ok(());
            }
            let AddedModel {
                model,
                reused_credential,
                ..
            } = &added.value.value;
            if let Some(reused) = reused_credential {
                note(&format!(
                    "this secret is already saved as credential {}: the model uses it",
                    reused.id
                ));
            }
            for line in model_summary(model) {
                say(&line);
            }
            return Ok(());
        }
        ModelsCommand::Test { slug, secret } => return test_model(&client, &slug, &secret).await,
        ModelsCommand::Edit(edit) => edit_model(&client, &edit).await?,
        ModelsCommand::Deactivate { slug, yes } => deactivate_model(&client, &slug, yes).await?,
        ModelsCommand::Reactivate { slug } => {
            client
                .post(&format!("{}/activation", model_path(&slug)))
                .answer()
                .await?
        }
    };
    show(client.json, &model, |model| model_summary(&model.value))
}

/// Tests the draft, then adds it; the API's answer (the model and any reused credential).
async fn add_model(
    client: &Client,
    add: &AddArgs,
) -> anyhow::Result<Answer<Positioned<AddedModel>>> {
    // Everything checkable here is checked before asking for a secret.
    let missing: Vec<&str> = [
        ("--name", add.fields.name.is_none()),
        ("--provider", add.provider.is_none()),
        ("--model-id", add.fields.model_id.is_none()),
        ("--max-tokens", add.fields.max_tokens.is_none()),
    ]
    .into_iter()
    .filter_map(|(flag, absent)| absent.then_some(flag))
    .collect();
    if !missing.is_empty() {
        bail!(
            "missing {}: `models add` needs --name, --provider, --model-id and --max-tokens",
            missing.join(", ")
        );
    }
    let provider = add.provider.clone().unwrap_or_default();
    if add.access_key_id.is_some() && provider != "bedrock" {
        bail!("--access-key-id is for Bedrock; a {provider} model takes an API key");
    }
    let fields = &add.fields;
    let mut body = AddModel {
        display_name: fields.name.clone(),
        provider: Some(provider.clone()),
        provider_model_id: fields.model_id.clone(),
        credential: None,
        credential_id: fields.credential_id.clone(),
        connection_test_id: None,
        test: false,
        endpoint_url: fields.endpoint_url.clone(),
        region: fields.region.clone(),
        max_tokens: fields.max_tokens.map(Value::from),
        capabilities: capabilities(fields),
        input_cost_per_token: cost("--input-cost", &fields.input_cost, false)?,
        output_cost_per_token: cost("--output-cost", &fields.output_cost, false)?,
    };
    // The server checks the draft (provider, model id, endpoint, max tokens, capabilities,
    // costs) before a person is asked for a secret.
    let _: Answer<Positioned<CheckedDraft>> = client
        .post("/v1/models")
        .query(&DryRunQuery { dry_run: true })
        .body(&body)
        .answer()
        .await?;
    if fields.credential_id.is_none() && !add.no_credential {
        let empty_hint = (provider == "openai_compatible")
            .then_some("; for an OpenAI-compatible server without auth, pass --no-credential");
        body.credential = Some(read_credential(
            &provider,
            add.access_key_id.as_deref(),
            add.session_token,
            add.secret_stdin,
            empty_hint,
        )?);
    }
    let tested =
        connection_test::run(client, "/v1/connection-tests", &DraftTest::of(&body)).await?;
    for line in outcome_lines(&tested.result) {
        note(&line);
    }
    if !tested.result.passed {
        bail!("not added: Test Connection did not pass");
    }
    body.connection_test_id = Some(tested.id().to_owned());
    offer_prices(&mut body, &tested.result, add.accept_suggested_prices)?;
    client.post("/v1/models").body(&body).answer().await
}

async fn test_model(client: &Client, slug: &str, secret: &NewSecretArgs) -> anyhow::Result<()> {
    let mut body = ModelTest::default();
    if secret.new_secret {
        let provider = provider_of(client, slug).await?;
        body.credential = Some(read_new_secret(&provider, secret)?);
    }
    let path = format!("{}/connection-tests", model_path(slug));
    let tested = connection_test::run(client, &path, &body).await?;
    let lines = outcome_lines(&tested.result)
        .into_iter()
        .chain(price_lines(&tested.result));
    if client.json {
        say(&tested.answer.pretty()?);
        lines.for_each(|line| note(&line));
    } else {
        lines.for_each(|line| say(&line));
    }
    if !tested.result.passed {
        bail!("Test Connection did not pass");
    }
    Ok(())
}

async fn edit_model(client: &Client, edit: &EditArgs) -> anyhow::Result<Answer<Positioned<Model>>> {
    if edit.provider.is_some() {
        bail!(
            "--provider: a model's provider cannot change; add a new model with that provider (and deactivate this one)"
        );
    }
    if edit.no_credential {
        bail!(
            "--no-credential: edit cannot remove a model's credential; add a new model without one"
        );
    }
    if edit.fields.credential_id.is_some() && edit.secret.new_secret {
        bail!("give --credential-id or --new-secret, not both");
    }
    let fields = &edit.fields;
    let mut body = EditModel {
        display_name: fields.name.clone(),
        provider_model_id: fields.model_id.clone(),
        credential: None,
        credential_id: fields.credential_id.clone(),
        endpoint_url: fields.endpoint_url.clone(),
        region: fields.region.clone(),
        max_tokens: fields.max_tokens.map(Value::from),
        capabilities: capabilities(fields),
        input_cost_per_token: cost("--input-cost", &fields.input_cost, true)?,
        output_cost_per_token: cost("--output-cost", &fields.output_cost, true)?,
    };
    if changes_nothing(&body) && !edit.secret.new_secret {
        bail!("nothing to change: give the flags to change (see `modelreg models edit --help`)");
    }
    if edit.secret.new_secret {
        // The secret's shape depends on the provider, which only the saved model knows.
        let provider = provider_of(client, &edit.slug).await?;
        body.credential = Some(read_new_secret(&provider, &edit.secret)?);
    }
    client
        .patch(&model_path(&edit.slug))
        .body(&body)
        .if_match(edit.if_match)
        .answer()
        .await
}

/// Whether an edit leaves every field as it is. Destructured field by field, so that a field
/// added to the contract must be considered here.
fn changes_nothing(edit: &EditModel) -> bool {
    let EditModel {
        display_name,
        provider_model_id,
        credential,
        credential_id,
        endpoint_url,
        region,
        max_tokens,
        capabilities,
        input_cost_per_token,
        output_cost_per_token,
    } = edit;
    display_name.is_none()
        && provider_model_id.is_none()
        && credential.is_none()
        && credential_id.is_none()
        && endpoint_url.is_none()
        && region.is_none()
        && max_tokens.is_none()
        && capabilities.is_none()
        && input_cost_per_token.is_none()
        && output_cost_per_token.is_none()
}

async fn deactivate_model(
    client: &Client,
    slug: &str,
    yes: bool,
) -> anyhow::Result<Answer<Positioned<Model>>> {
    let path = model_path(slug);
    let error = match client.delete(&path).answer().await {
        Ok(model) => return Ok(model),
        Err(error) => error,
    };
    let Some(refusal) = error
        .downcast_ref::<ApiError>()
        .and_then(ApiError::problem)
        .filter(|problem| problem.code == "model.has_dependents")
    else {
        return Err(error);
    };
    let notice = dependents_notice(slug, refusal);
    if !yes {
        if !on_a_terminal() {
            bail!(
                "not deactivated: {notice} (model.has_dependents); no terminal to ask on, pass --yes to deactivate anyway"
            );
        }
        note(&notice);
        if !confirm("Deactivate anyway? [y/N] ")? {
            bail!("not deactivated");
        }
    } else {
        note(&notice);
    }
    client
        .delete(&path)
        .query(&ConfirmQuery { confirm: true })
        .answer()
        .await
}

/// "2 active workflows (first: "Nightly digest") reference team-gpt; …", from the
/// `model.has_dependents` problem's `count` and `first_dependent`.
fn dependents_notice(slug: &str, problem: &Problem) -> String {
    let count = problem.count.unwrap_or(0);
    let first = match &problem.first_dependent {
        Some(name) => format!(" (first: {name:?})"),
        None => String::new(),
    };
    let (workflows, reference) = if count == 1 {
        ("workflow", "references")
    } else {
        ("workflows", "reference")
    };
    format!(
        "{count} active {workflows}{first} {reference} {slug}; they fail to generate LLM responses until repointed."
    )
}

async fn provider_of(client: &Client, slug: &str) -> anyhow::Result<String> {
    let model: Answer<Positioned<Model>> = client.get(&model_path(slug)).answer().await?;
    Ok(model.value.value.provider)
}

fn read_new_secret(provider: &str, secret: &NewSecretArgs) -> anyhow::Result<CredentialInput> {
    read_credential(
        provider,
        secret.access_key_id.as_deref(),
        secret.session_token,
        secret.secret_stdin,
        None,
    )
}

/// Offers the suggested prices for costs left blank: applied with `accept`, or after a yes
/// on a terminal; without either, only shown.
fn offer_prices(add: &mut AddModel, result: &TestResult, accept: bool) -> anyhow::Result<()> {
    let suggested = |given: &Option<Value>, price: &Option<String>| match given {
        None => price.clone(),
        Some(_) => None,
    };
    let input = suggested(
        &add.input_cost_per_token,
        &result.suggested_input_cost_per_token,
    );
    let output = suggested(
        &add.output_cost_per_token,
        &result.suggested_output_cost_per_token,
    );
    let listing: Vec<String> = [
        ("input_cost_per_token", &input),
        ("output_cost_per_token", &output),
    ]
    .into_iter()
    .filter_map(|(field, price)| Some(format!("{field} = {}", price.as_ref()?)))
    .collect();
    if listing.is_empty() {
        return Ok(());
    }
    note(&format!(
        "known prices for this model: {}",
        listing.join(", ")
    ));
    if !accept && !on_a_terminal() {
        note("  (not applied: pass --accept-suggested-prices, or --input-cost / --output-cost)");
        return Ok(());
    }
    if accept || confirm("Use them? [y/N] ")? {
        if let Some(price) = input {
            add.input_cost_per_token = Some(Value::String(price));
        }
        if let Some(price) = output {
            add.output_cost_per_token = Some(Value::String(price));
        }
    }
    Ok(())
}

/// A platform model, found in the catalog the list answers (platform ids hold a `/`, which
/// no custom slug does).
async fn show_platform(client: &Client, id: &str) -> anyhow::Result<()> {
    let answer: Answer<Positioned<ModelList>> = client.get("/v1/models").answer().await?;
    let Some(model) = answer.value.value.platform.iter().find(|m| m.id == id) else {
        bail!(
            "no platform model has this id; `modelreg models list` shows the catalog (custom models go by their slug)"
        );
    };
    if client.json {
        say(&serde_json::to_string_pretty(model)?);
        return Ok(());
    }
    platform_summary(model).iter().for_each(|line| say(line));
    Ok(())
}

async fn check_model(client: &Client, check: CheckArgs) -> anyhow::Result<()> {
    let body = CheckModel {
        tools: check.tools,
        json_mode: check.json_mode,
        image_input: check.image_input,
        reasoning_effort: check.reasoning_effort,
        reasoning_budget: check.reasoning_budget,
        max_tokens: check.max_tokens,
    };
    let path = format!("/v1/models/{}/check", segment(&check.model));
    let answer: Answer<Positioned<CheckAnswer>> = client.post(&path).body(&body).answer().await?;
    show(client.json, &answer, |verdict| check_lines(&verdict.value))?;
    if !answer.value.value.allowed {
        bail!("not every wanted feature is available on this model");
    }
    Ok(())
}

/// The capability switches given, if any: `--reasoning off` sends `null` (turns it off).
fn capabilities(fields: &ModelFields) -> Option<CapabilitiesInput> {
    let any = fields.json_mode.is_some()
        || fields.vision.is_some()
        || fields.tool_use.is_some()
        || fields.reasoning.is_some();
    any.then(|| CapabilitiesInput {
        json_mode: fields.json_mode,
        vision: fields.vision,
        tool_use: fields.tool_use,
        reasoning: fields
            .reasoning
            .as_ref()
            .map(|reasoning| (reasoning != "off").then(|| reasoning.clone())),
    })
}

/// A cost flag as the contract takes it: a decimal string, or (`editing` only) `none` for a
/// `null` that clears it. The cost field is raw JSON in the contract, so that `app` can tell
/// a number from a string.
fn cost(flag: &str, given: &Option<String>, editing: bool) -> anyhow::Result<Option<Value>> {
    match given.as_deref() {
        None => Ok(None),
        Some("none") if editing => Ok(Some(Value::Null)),
        Some("none") => {
            bail!("{flag} none clears a cost when editing; when adding, leave the flag out")
        }
        Some(cost) => Ok(Some(Value::String(cost.to_owned()))),
    }
}

/// The path of one model.
fn model_path(slug: &str) -> String {
    format!("/v1/models/{}", segment(slug))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dependents_notice_counts_and_names_the_first() {
        let mut one = Problem::new(409, "model.has_dependents", "referenced");
        one.count = Some(1);
        one.first_dependent = Some("Nightly digest".into());
        assert_eq!(
            dependents_notice("team-gpt", &one),
            "1 active workflow (first: \"Nightly digest\") references team-gpt; they fail to generate LLM responses until repointed."
        );
        let mut two = Problem::new(409, "model.has_dependents", "referenced");
        two.count = Some(2);
        two.first_dependent = Some("A".into());
        assert!(
            dependents_notice("m", &two)
                .starts_with("2 active workflows (first: \"A\") reference m;")
        );
    }

    #[test]
    fn an_edit_with_no_flags_changes_nothing() {
        assert!(changes_nothing(&EditModel::default()));
        let cleared = EditModel {
            input_cost_per_token: Some(Value::Null),
            ..EditModel::default()
        };
        assert!(!changes_nothing(&cleared));
    }
}
