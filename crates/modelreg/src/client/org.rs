//! `modelreg org …`: the org's choices among platform models (its default, hidden models).

use api::{ChooseDefault, HideModels, PlatformChoices, Positioned};

use super::args::{OrgCommand, Remote};
use super::http::{Answer, Client};
use super::output::show;

pub(crate) async fn run(remote: Remote, command: OrgCommand) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    let answer: Answer<Positioned<PlatformChoices>> = match command {
        OrgCommand::PlatformModels => client.get("/v1/org/platform-models").answer().await?,
        OrgCommand::DefaultModel { id, .. } => {
            client
                .put("/v1/org/default-model")
                .body(&ChooseDefault { model: id })
                .answer()
                .await?
        }
        OrgCommand::HideModels { ids } => {
            client
                .put("/v1/org/hidden-models")
                .body(&HideModels { models: ids })
                .answer()
                .await?
        }
    };
    show(client.json, &answer, |choices| choice_lines(&choices.value))
}

fn choice_lines(choices: &PlatformChoices) -> Vec<String> {
    let default = &choices.default_model;
    let mut lines = vec![format!(
        "default model: {} (chosen by the {})",
        default.model, default.chosen_by
    )];
    if let Some(note) = &default.note {
        lines.push(format!("  {note}"));
    }
    lines.push(if choices.hidden_models.is_empty() {
        "hidden platform models: none".into()
    } else {
        format!(
            "hidden platform models: {}",
            choices.hidden_models.join(", ")
        )
    });
    lines
}
