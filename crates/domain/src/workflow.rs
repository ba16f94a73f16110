//! Workflows as the pipelines product reports them: a name, an active flag, and the model
//! each step uses with the features it needs. The registry keeps them to warn before a
//! deactivation and to list broken references.

use serde::{Deserialize, Serialize};

use crate::Invalid;
use crate::values::{Capabilities, ReasoningParam};

/// What a pipeline step asks of its model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    pub tools: bool,
    pub json_output: bool,
    pub vision_input: bool,
    pub reasoning: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// A custom model's slug, or a platform model id (`vendor/model`).
    pub model: String,
    pub features: Features,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    pub name: String,
    pub active: bool,
    pub steps: Vec<Step>,
}

impl Workflow {
    /// Checks a reported workflow: a name, at most 200 steps, each naming a model.
    pub fn parse(name: &str, active: bool, steps: Vec<Step>) -> Result<Self, Invalid> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(Invalid::new(
                "name",
                "workflow.name_invalid",
                "a workflow name is 1 to 200 characters with no control characters",
            ));
        }
        if steps.len() > 200 {
            return Err(Invalid::new(
                "steps",
                "workflow.too_many_steps",
                "a workflow reports at most 200 steps",
            ));
        }
        for step in &steps {
            let ok = !step.model.is_empty()
                && step.model.len() <= 200
                && step.model.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b':')
                });
            if !ok {
                return Err(Invalid::new(
                    "steps.model",
                    "workflow.model_invalid",
                    "each step names a model: a custom model's slug or a platform model id such as google/gemini-3.1-pro-preview",
                ));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            active,
            steps,
        })
    }

    /// The distinct models the workflow references, in first-use order.
    pub fn models(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for step in &self.steps {
            if !seen.contains(&step.model.as_str()) {
                seen.push(&step.model);
            }
        }
        seen
    }
}

pub enum Command {
    Put(Workflow),
    Delete,
}

/// Architecture invariant: append-only, like every event enum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Saved(Workflow),
    Deleted,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no such workflow")]
    NotFound,
}

/// Saving what is already saved yields no event; deleting an unknown workflow is refused.
pub fn decide(state: Option<&Workflow>, command: Command) -> Result<Vec<Event>, Rejection> {
    match (state, command) {
        (Some(current), Command::Put(workflow)) if *current == workflow => Ok(Vec::new()),
        (_, Command::Put(workflow)) => Ok(vec![Event::Saved(workflow)]),
        (None, Command::Delete) => Err(Rejection::NotFound),
        (Some(_), Command::Delete) => Ok(vec![Event::Deleted]),
    }
}

pub fn evolve(_state: Option<Workflow>, event: &Event) -> Option<Workflow> {
    match event {
        Event::Saved(workflow) => Some(workflow.clone()),
        Event::Deleted => None,
    }
}

crate::aggregate::aggregate!(Workflow, WORKFLOW, Workflow);

/// What a caller asks to use a model for, in the capability check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub tools: bool,
    pub json_mode: bool,
    pub image_input: bool,
    pub reasoning_effort: bool,
    pub reasoning_budget: bool,
    pub max_tokens: Option<u64>,
}

/// One refused feature and why, in words a pipeline author can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub feature: &'static str,
    pub reason: String,
}

/// Which wanted features a model with `capabilities` and `max_tokens` cannot serve.
pub fn refusals(capabilities: &Capabilities, max_tokens: u32, wanted: &Wanted) -> Vec<Refusal> {
    let mut out = Vec::new();
    let mut refuse = |feature: &'static str, reason: String| out.push(Refusal { feature, reason });
    if wanted.tools && !capabilities.tool_use {
        refuse(
            "tools",
            "tool calling is unavailable because Tool use is off for this model".into(),
        );
    }
    if wanted.json_mode && !capabilities.json_mode {
        refuse(
            "json_mode",
            "JSON output is unavailable because JSON mode is off for this model".into(),
        );
    }
    if wanted.image_input && !capabilities.vision {
        refuse(
            "image_input",
            "image input is unavailable because Vision is off for this model".into(),
        );
    }
    match capabilities.reasoning {
        None => {
            if wanted.reasoning_effort {
                refuse(
                    "reasoning_effort",
                    "extended reasoning is off for this model".into(),
                );
            }
            if wanted.reasoning_budget {
                refuse(
                    "reasoning_budget",
                    "extended reasoning is off for this model".into(),
                );
            }
        }
        Some(ReasoningParam::MaxTokens) if wanted.reasoning_effort => {
            refuse(
                "reasoning_effort",
                "reasoning effort is refused because the model takes a max_tokens budget".into(),
            );
        }
        Some(ReasoningParam::Effort) if wanted.reasoning_budget => {
            refuse(
                "reasoning_budget",
                "a reasoning budget is refused because the model takes an effort level".into(),
            );
        }
        Some(_) => {}
    }
    if let Some(wanted_tokens) = wanted.max_tokens
        && wanted_tokens > u64::from(max_tokens)
    {
        refuse(
            "max_tokens",
            format!("the model allows at most {max_tokens} output tokens"),
        );
    }
    out
}

/// The features a step uses that its model lacks: warnings for the reference view.
pub fn step_refusals(
    capabilities: &Capabilities,
    max_tokens: u32,
    features: &Features,
) -> Vec<Refusal> {
    let wanted = Wanted {
        tools: features.tools,
        json_mode: features.json_output,
        image_input: features.vision_input,
        reasoning_effort: false,
        reasoning_budget: false,
        max_tokens: None,
    };
    let mut out = refusals(capabilities, max_tokens, &wanted);
    if features.reasoning && capabilities.reasoning.is_none() {
        out.push(Refusal {
            feature: "reasoning",
            reason: "the step uses reasoning but extended reasoning is off for this model".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(model: &str) -> Step {
        Step {
            model: model.into(),
            features: Features::default(),
        }
    }

    #[test]
    fn put_saves_changes_only_and_delete_needs_a_workflow() {
        let workflow = Workflow::parse(
            "Digest",
            true,
            vec![
                step("team-gpt"),
                step("team-gpt"),
                step("google/gemini-3.1-pro-preview"),
            ],
        )
        .unwrap();
        assert_eq!(
            workflow.models(),
            ["team-gpt", "google/gemini-3.1-pro-preview"]
        );
        let saved = decide(None, Command::Put(workflow.clone())).unwrap();
        let state = saved.iter().fold(None, evolve);
        assert!(
            decide(state.as_ref(), Command::Put(workflow))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            decide(state.as_ref(), Command::Delete).unwrap(),
            vec![Event::Deleted]
        );
        assert_eq!(
            decide(None, Command::Delete).unwrap_err(),
            Rejection::NotFound
        );
    }

    #[test]
    fn reported_workflows_are_checked() {
        assert_eq!(
            Workflow::parse(" ", true, vec![]).unwrap_err().code,
            "workflow.name_invalid"
        );
        assert_eq!(
            Workflow::parse("x", true, vec![step("a b")])
                .unwrap_err()
                .code,
            "workflow.model_invalid"
        );
    }

    #[test]
    fn refusals_say_why() {
        let caps = Capabilities {
            tool_use: false,
            json_mode: true,
            vision: false,
            reasoning: Some(ReasoningParam::MaxTokens),
        };
        let wanted = Wanted {
            tools: true,
            json_mode: true,
            image_input: true,
            reasoning_effort: true,
            reasoning_budget: true,
            max_tokens: Some(50_000),
        };
        let refused: Vec<&str> = refusals(&caps, 32_000, &wanted)
            .iter()
            .map(|r| r.feature)
            .collect();
        assert_eq!(
            refused,
            ["tools", "image_input", "reasoning_effort", "max_tokens"]
        );
        let tools = &refusals(&caps, 32_000, &wanted)[0];
        assert!(tools.reason.contains("Tool use is off"));
        let all_on = Capabilities {
            tool_use: true,
            json_mode: true,
            vision: true,
            reasoning: Some(ReasoningParam::Effort),
        };
        let ok = Wanted {
            tools: true,
            json_mode: true,
            image_input: true,
            reasoning_effort: true,
            ..Wanted::default()
        };
        assert!(refusals(&all_on, 32_000, &ok).is_empty());
    }
}
