//! Workflows that reference models: reporting them, the reference view, deactivation with a
//! dependents warning, reactivation, broken references, and the capability check.

use domain::Event;
use domain::model::{self, Status};
use domain::workflow::{self, Features, Refusal, Step, Wanted, Workflow};
use domain::{Invalid, catalog};
use eventlog::AppendError;
use serde::{Deserialize, Serialize};
use views::WorkflowRow;

use crate::models::model_rejection;
use crate::responses::{ModelView, rfc3339};
use crate::{Answer, AppError, Ctx, Registry};

/// `PUT /v1/workflows/{id}` and the `pipelines.<org>.workflows.<id>` message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutWorkflowRequest {
    pub name: String,
    pub active: bool,
    #[serde(default)]
    pub steps: Vec<StepRequest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    pub model: String,
    #[serde(default)]
    pub features: FeaturesRequest,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesRequest {
    #[serde(default)]
    pub tools: bool,
    #[serde(default)]
    pub json_output: bool,
    #[serde(default)]
    pub vision_input: bool,
    #[serde(default)]
    pub reasoning: bool,
}

/// `POST /v1/models/{model}/check`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    #[serde(default)]
    pub tools: bool,
    #[serde(default)]
    pub json_mode: bool,
    #[serde(default)]
    pub image_input: bool,
    #[serde(default)]
    pub reasoning_effort: bool,
    #[serde(default)]
    pub reasoning_budget: bool,
    pub max_tokens: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckAnswer {
    pub model: String,
    /// True when every wanted feature is available.
    pub allowed: bool,
    pub refused: Vec<Refusal>,
    /// Features the catalog cannot vouch for (platform models with unknown capabilities).
    pub unknown: Vec<&'static str>,
}

/// Where a workflow's step points, and what is wrong with it.
#[derive(Clone, Debug, Serialize)]
pub struct ReferenceView {
    pub model: String,
    /// `active`, `deactivated` or `unknown`.
    pub status: &'static str,
    /// Features the step uses that the model lacks.
    pub warnings: Vec<Refusal>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NoticeView {
    pub model: String,
    pub deactivated_at: String,
    pub deactivated_by: String,
    pub message: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkflowView {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub steps: Vec<Step>,
    pub references: Vec<ReferenceView>,
    /// True when an active workflow references a deactivated or unknown model.
    pub broken: bool,
    pub notices: Vec<NoticeView>,
    pub version: u64,
    pub updated_at: String,
    pub updated_by: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkflowSummary {
    pub id: String,
    pub name: String,
}

/// `GET /v1/models/{slug}/workflows`: who references a model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelReferences {
    pub model: String,
    pub active: Vec<WorkflowSummary>,
    pub inactive: Vec<WorkflowSummary>,
}

/// The status of the model a reference names: custom slugs from the views, platform ids
/// (with a `/`) from the catalog.
fn reference_status(
    registry: &Registry,
    ctx: &Ctx,
    model: &str,
) -> Result<(&'static str, Option<views::ModelRow>), AppError> {
    if model.contains('/') {
        return Ok((
            if catalog::find(model).is_some() {
                "active"
            } else {
                "unknown"
            },
            None,
        ));
    }
    match registry.views.model(ctx.org.as_str(), model)? {
        Some(row) if row.model.status == Status::Active => Ok(("active", Some(row))),
        Some(row) => Ok(("deactivated", Some(row))),
        None => Ok(("unknown", None)),
    }
}

impl Registry {
    pub async fn put_workflow(
        &self,
        ctx: &Ctx,
        id: &str,
        request: PutWorkflowRequest,
    ) -> Result<Answer<WorkflowView>, AppError> {
        ctx.require_reporter()?;
        let id = workflow_id(id)?;
        let steps = request
            .steps
            .into_iter()
            .map(|s| Step {
                model: s.model,
                features: Features {
                    tools: s.features.tools,
                    json_output: s.features.json_output,
                    vision_input: s.features.vision_input,
                    reasoning: s.features.reasoning,
                },
            })
            .collect();
        let workflow = Workflow::parse(&request.name, request.active, steps)?;
        let current = self.views.workflow(ctx.org.as_str(), &id)?;
        let events = workflow::decide(
            current.as_ref().map(|r| &r.workflow),
            workflow::Command::Put(workflow),
        )
        .map_err(|_| AppError::Internal("saving a workflow cannot be refused".into()))?;
        let position = match events.into_iter().next() {
            None => self.views.position(),
            Some(event) => {
                self.append_workflow(ctx, &id, current.as_ref(), event)
                    .await?
            }
        };
        Ok(Answer {
            value: self.workflow_view(ctx, &id)?,
            position,
        })
    }

    pub async fn delete_workflow(
        &self,
        ctx: &Ctx,
        id: &str,
    ) -> Result<Answer<WorkflowSummary>, AppError> {
        ctx.require_reporter()?;
        let id = workflow_id(id)?;
        let current = self.views.workflow(ctx.org.as_str(), &id)?;
        let events = workflow::decide(
            current.as_ref().map(|r| &r.workflow),
            workflow::Command::Delete,
        )
        .map_err(|_| AppError::NotFound {
            code: "workflow.not_found",
            message: format!("no workflow {} in this org", domain::echo(&id)),
        })?;
        let name = current
            .as_ref()
            .map(|r| r.workflow.name.clone())
            .unwrap_or_default();
        let mut position = self.views.position();
        if let Some(event) = events.into_iter().next() {
            position = self
                .append_workflow(ctx, &id, current.as_ref(), event)
                .await?;
        }
        Ok(Answer {
            value: WorkflowSummary { id, name },
            position,
        })
    }

    async fn append_workflow(
        &self,
        ctx: &Ctx,
        id: &str,
        current: Option<&WorkflowRow>,
        event: workflow::Event,
    ) -> Result<u64, AppError> {
        let appended = match self
            .append(ctx, id, current.map(|r| &r.stream), &Event::Workflow(event))
            .await
        {
            Ok(appended) => appended,
            Err(AppendError::Conflict { .. }) => {
                return Err(AppError::Conflict {
                    code: "workflow.conflict",
                    message: "the workflow changed at the same time; send it again".into(),
                    current_version: current.map(|r| r.stream.version),
                });
            }
            Err(AppendError::Log(e)) => return Err(e.into()),
        };
        self.settle(appended.seq).await
    }

    pub fn get_workflow(&self, ctx: &Ctx, id: &str) -> Result<Answer<WorkflowView>, AppError> {
        Ok(Answer {
            value: self.workflow_view(ctx, id)?,
            position: self.views.position(),
        })
    }

    /// All workflows, or with `broken_only` the active ones referencing a deactivated or
    /// unknown model.
    pub fn list_workflows(
        &self,
        ctx: &Ctx,
        broken_only: bool,
    ) -> Result<Answer<Vec<WorkflowView>>, AppError> {
        let position = self.views.position();
        let mut out = Vec::new();
        for row in self.views.workflows(ctx.org.as_str())? {
            let view = self.view_of(ctx, &row)?;
            if !broken_only || view.broken {
                out.push(view);
            }
        }
        Ok(Answer {
            value: out,
            position,
        })
    }

    pub fn model_references(
        &self,
        ctx: &Ctx,
        slug: &str,
    ) -> Result<Answer<ModelReferences>, AppError> {
        let position = self.views.position();
        let is_platform = slug.contains('/') && catalog::find(slug).is_some();
        if !is_platform {
            self.model_row(ctx, slug)?;
        }
        let (mut active, mut inactive) = (Vec::new(), Vec::new());
        for row in self.views.referencing(ctx.org.as_str(), slug)? {
            let summary = WorkflowSummary {
                id: row.id.clone(),
                name: row.workflow.name.clone(),
            };
            if row.workflow.active {
                active.push(summary)
            } else {
                inactive.push(summary)
            }
        }
        Ok(Answer {
            value: ModelReferences {
                model: slug.to_owned(),
                active,
                inactive,
            },
            position,
        })
    }

    fn workflow_view(&self, ctx: &Ctx, id: &str) -> Result<WorkflowView, AppError> {
        let row = self
            .views
            .workflow(ctx.org.as_str(), id)?
            .ok_or_else(|| AppError::NotFound {
                code: "workflow.not_found",
                message: format!("no workflow {} in this org", domain::echo(id)),
            })?;
        self.view_of(ctx, &row)
    }

    fn view_of(&self, ctx: &Ctx, row: &WorkflowRow) -> Result<WorkflowView, AppError> {
        let mut references = Vec::new();
        for model in row.workflow.models() {
            let (status, model_row) = reference_status(self, ctx, model)?;
            let mut warnings = Vec::new();
            if let Some(model_row) = &model_row {
                for step in row.workflow.steps.iter().filter(|s| s.model == model) {
                    for refusal in workflow::step_refusals(
                        &model_row.model.capabilities,
                        model_row.model.max_tokens.get(),
                        &step.features,
                    ) {
                        if !warnings.contains(&refusal) {
                            warnings.push(refusal);
                        }
                    }
                }
            }
            references.push(ReferenceView {
                model: model.to_owned(),
                status,
                warnings,
            });
        }
        let broken = row.workflow.active && references.iter().any(|r| r.status != "active");
        let notices = row
            .notices
            .iter()
            .map(|n| NoticeView {
                model: n.model.clone(),
                deactivated_at: rfc3339(n.deactivated_at_ms),
                deactivated_by: n.deactivated_by.clone(),
                message: format!("model {} was deactivated; this workflow cannot generate LLM responses with it until it is repointed to an active model", n.model),
            })
            .collect();
        Ok(WorkflowView {
            id: row.id.clone(),
            name: row.workflow.name.clone(),
            active: row.workflow.active,
            steps: row.workflow.steps.clone(),
            references,
            broken,
            notices,
            version: row.stream.version,
            updated_at: rfc3339(row.updated_at_ms),
            updated_by: row.updated_by.clone(),
        })
    }

    /// Deactivates a model. With active workflows still referencing it and no `confirm`, it
    /// refuses with their count and the first by name.
    pub async fn deactivate_model(
        &self,
        ctx: &Ctx,
        slug: &str,
        confirm: bool,
    ) -> Result<Answer<ModelView>, AppError> {
        ctx.require_admin()?;
        let row = self.model_row(ctx, slug)?;
        if row.last_changed_by() == ctx.command_id {
            // A retry of the deactivation that landed: answer as the first time.
            return Ok(Answer {
                value: self.model_view(ctx, slug)?,
                position: self.views.position(),
            });
        }
        if row.model.status == Status::Deactivated {
            return Err(model_rejection(model::Rejection::AlreadyDeactivated));
        }
        if !confirm {
            let active: Vec<WorkflowRow> = self
                .views
                .referencing(ctx.org.as_str(), slug)?
                .into_iter()
                .filter(|w| w.workflow.active)
                .collect();
            if let Some(first) = active.iter().map(|w| w.workflow.name.clone()).min() {
                return Err(AppError::HasDependents {
                    count: active.len(),
                    first,
                });
            }
        }
        self.model_transition(ctx, slug, model::Command::Deactivate)
            .await
    }

    pub async fn reactivate_model(
        &self,
        ctx: &Ctx,
        slug: &str,
    ) -> Result<Answer<ModelView>, AppError> {
        ctx.require_admin()?;
        self.model_transition(ctx, slug, model::Command::Reactivate)
            .await
    }

    /// The dependents worker's record of whom it warned. Idempotent: the message id is
    /// derived from the deactivation's position.
    pub async fn record_warning(
        &self,
        ctx: &Ctx,
        slug: &str,
        deactivation_seq: u64,
        workflow_ids: Vec<String>,
    ) -> Result<u64, AppError> {
        let command = model::Command::RecordWarning {
            deactivation_seq,
            workflow_ids,
        };
        Ok(self.model_transition(ctx, slug, command).await?.position)
    }

    async fn model_transition(
        &self,
        ctx: &Ctx,
        slug: &str,
        command: model::Command,
    ) -> Result<Answer<ModelView>, AppError> {
        // These transitions re-check their own preconditions, so a lost race (say, with the
        // dependents worker recording its warning) is retried on fresh state, not refused.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let row = self.model_row(ctx, slug)?;
            if row.last_changed_by() == ctx.command_id {
                // A retry of this very transition, which landed: answer as the first time.
                return Ok(Answer {
                    value: self.model_view(ctx, slug)?,
                    position: self.views.position(),
                });
            }
            let events =
                model::decide(Some(&row.model), command.clone()).map_err(model_rejection)?;
            let Some(event) = events.into_iter().next() else {
                return Ok(Answer {
                    value: self.model_view(ctx, slug)?,
                    position: self.views.position(),
                });
            };
            match self.append_model_event(ctx, slug, &row.stream, event).await {
                Err(AppError::Conflict {
                    code: "model.conflict",
                    ..
                }) if attempts < 5 => continue,
                other => return other,
            }
        }
    }

    /// Active workflows referencing `slug` as the views see them now, ids sorted.
    pub fn active_dependents(
        &self,
        ctx: &Ctx,
        slug: &str,
    ) -> Result<Vec<WorkflowSummary>, AppError> {
        let mut out: Vec<WorkflowSummary> = self
            .views
            .referencing(ctx.org.as_str(), slug)?
            .into_iter()
            .filter(|w| w.workflow.active)
            .map(|w| WorkflowSummary {
                id: w.id,
                name: w.workflow.name,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Which of the wanted features a model can serve, with a reason for each refusal.
    pub fn check_model(
        &self,
        ctx: &Ctx,
        model: &str,
        request: CheckRequest,
    ) -> Result<Answer<CheckAnswer>, AppError> {
        let position = self.views.position();
        let wanted = Wanted {
            tools: request.tools,
            json_mode: request.json_mode,
            image_input: request.image_input,
            reasoning_effort: request.reasoning_effort,
            reasoning_budget: request.reasoning_budget,
            max_tokens: request.max_tokens,
        };
        if let Some(platform) = catalog::find(model) {
            // Platform capabilities the catalog does not know are reported, not guessed.
            let caps = &platform.capabilities;
            let mut unknown = Vec::new();
            let mut refused = Vec::new();
            for (feature, want, known) in [
                ("tools", wanted.tools, caps.tool_use),
                ("json_mode", wanted.json_mode, caps.json_mode),
                ("image_input", wanted.image_input, caps.vision),
            ] {
                match (want, known) {
                    (false, _) => {}
                    (true, None) => unknown.push(feature),
                    (true, Some(false)) => refused.push(Refusal {
                        feature,
                        reason: format!("{feature} is not supported by {model}"),
                    }),
                    (true, Some(true)) => {}
                }
            }
            if (wanted.reasoning_effort || wanted.reasoning_budget) && caps.reasoning.is_none() {
                unknown.push("reasoning");
            }
            if wanted.max_tokens.is_some() && platform.max_tokens.is_none() {
                unknown.push("max_tokens");
            }
            let allowed = refused.is_empty() && unknown.is_empty();
            return Ok(Answer {
                value: CheckAnswer {
                    model: model.to_owned(),
                    allowed,
                    refused,
                    unknown,
                },
                position,
            });
        }
        let row = self.model_row(ctx, model)?;
        if row.model.status == Status::Deactivated {
            return Err(self.gone(&row));
        }
        let refused =
            workflow::refusals(&row.model.capabilities, row.model.max_tokens.get(), &wanted);
        Ok(Answer {
            value: CheckAnswer {
                model: model.to_owned(),
                allowed: refused.is_empty(),
                refused,
                unknown: Vec::new(),
            },
            position,
        })
    }

    /// 410 for a deactivated model: when, by whom, and what to do.
    pub(crate) fn gone(&self, row: &views::ModelRow) -> AppError {
        let (at, by) = row
            .deactivation
            .as_ref()
            .map(|d| (rfc3339(d.at_ms), d.by.clone()))
            .unwrap_or_else(|| (rfc3339(row.updated_at_ms), row.updated_by.clone()));
        AppError::Gone {
            code: "model.deactivated",
            message: format!(
                "model {} was deactivated at {at} by {by}; repoint the workflow to an active model",
                row.model.slug
            ),
            at,
            by,
        }
    }
}

fn workflow_id(raw: &str) -> Result<String, AppError> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(AppError::invalid(Invalid::new(
            "id",
            "workflow.id_invalid",
            "a workflow id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'",
        )));
    }
    Ok(raw.to_owned())
}
