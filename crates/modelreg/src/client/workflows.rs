//! `modelreg workflows …`: workflows as the pipelines product reports them; `put` reports
//! one as a pipeline would, so a deactivation's warning can be seen from the CLI.

use anyhow::bail;
use api::{Features, Items, Positioned, PutWorkflow, Step, Workflow, WorkflowSummary};

use super::args::{PutWorkflowArgs, Remote, WorkflowsCommand};
use super::http::{Answer, Client, segment};
use super::output::{show, workflow_summary, workflow_table};
use crate::say;

pub(crate) async fn run(remote: Remote, command: WorkflowsCommand) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    match command {
        WorkflowsCommand::List { broken } => {
            let answer: Answer<Items<Workflow>> = client
                .get("/v1/workflows")
                .query(&api::BrokenQuery {
                    broken,
                    ..api::BrokenQuery::default()
                })
                .answer()
                .await?;
            show(client.json, &answer, |list| workflow_table(&list.items))
        }
        WorkflowsCommand::Show { id } => {
            let answer: Answer<Positioned<Workflow>> =
                client.get(&workflow_path(&id)).answer().await?;
            show(client.json, &answer, |w| workflow_summary(&w.value))
        }
        WorkflowsCommand::Put(put) => {
            let body = put_body(put.name.clone(), &put)?;
            let answer: Answer<Positioned<Workflow>> = client
                .put(&workflow_path(&put.id))
                .body(&body)
                .answer()
                .await?;
            show(client.json, &answer, |w| workflow_summary(&w.value))
        }
        WorkflowsCommand::Delete { id } => {
            let answer: Answer<Positioned<WorkflowSummary>> =
                client.delete(&workflow_path(&id)).answer().await?;
            if client.json {
                say(&answer.pretty()?);
            } else {
                say(&format!("deleted workflow {}", answer.value.value.id));
            }
            Ok(())
        }
    }
}

fn put_body(name: String, put: &PutWorkflowArgs) -> anyhow::Result<PutWorkflow> {
    let steps = put
        .steps
        .iter()
        .enumerate()
        .map(|(n, step)| parse_step(n + 1, step))
        .collect::<anyhow::Result<_>>()?;
    Ok(PutWorkflow {
        name,
        active: !put.inactive,
        steps,
    })
}

/// `MODEL[:FEATURE,FEATURE…]`. A platform model's id holds a `/` but no `:`, so the first
/// `:` ends the model.
fn parse_step(n: usize, raw: &str) -> anyhow::Result<Step> {
    let (model, features) = raw.split_once(':').unwrap_or((raw, ""));
    if model.is_empty() {
        bail!("--step number {n}: the model is missing (MODEL[:FEATURES])");
    }
    let mut wanted = Features::default();
    for feature in features.split(',').filter(|f| !f.is_empty()) {
        match feature {
            "tools" => wanted.tools = true,
            "json_output" => wanted.json_output = true,
            "vision_input" => wanted.vision_input = true,
            "reasoning" => wanted.reasoning = true,
            _ => bail!(
                "--step number {n}: unknown feature; use tools, json_output, vision_input or reasoning"
            ),
        }
    }
    Ok(Step {
        model: model.to_owned(),
        features: wanted,
    })
}

fn workflow_path(id: &str) -> String {
    format!("/v1/workflows/{}", segment(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_names_its_model_and_features() {
        let step = parse_step(1, "google/gemini-3.1-pro-preview:tools,reasoning").expect("step");
        assert_eq!(step.model, "google/gemini-3.1-pro-preview");
        assert!(step.features.tools && step.features.reasoning && !step.features.vision_input);
        assert_eq!(
            parse_step(1, "team-gpt").expect("plain").features,
            Features::default()
        );
        assert!(parse_step(2, "m:teleport").is_err());
        assert!(parse_step(3, ":tools").is_err());
    }
}
