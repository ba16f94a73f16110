//! Workflows that reference models, as the pipelines product reports them: saving and
//! deleting them, the reference view of a workflow and of a model, broken references, and
//! what the dependents worker needs to warn them.

use domain::model::Status;
use domain::values::{OrgId, WorkflowId};
use domain::workflow::{self, Features, Step, Workflow};
use views::WorkflowRow;

use crate::execute::{self, Refused, Stream};
use crate::present::{self, rfc3339};
use crate::{Answer, AppError, Ctx, Registry};

/// Saves a reported workflow; saving what is saved already records nothing.
pub async fn put(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
    request: api::PutWorkflow,
) -> Result<Answer<api::Workflow>, AppError> {
    ctx.require_reporter()?;
    let id = WorkflowId::parse(id)?;
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
    let current = Current::read(registry, ctx, &id)?;
    let position = command(
        registry,
        ctx,
        &id,
        &current,
        workflow::Command::Put(workflow),
    )
    .await?;
    Ok(Answer {
        value: view_by_id(registry, ctx, id.as_str())?,
        position,
    })
}

/// Forgets a workflow and its references.
pub async fn delete(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
) -> Result<Answer<api::WorkflowSummary>, AppError> {
    ctx.require_reporter()?;
    let id = WorkflowId::parse(id)?;
    let current = Current::read(registry, ctx, &id)?;
    let name = match &current {
        Current::Saved(row) => row.workflow.name.clone(),
        Current::Deleted(gone) => gone.name.clone(),
        Current::Never => String::new(),
    };
    let position = command(registry, ctx, &id, &current, workflow::Command::Delete).await?;
    Ok(Answer {
        value: api::WorkflowSummary {
            id: id.as_str().to_owned(),
            name,
        },
        position,
    })
}

/// A workflow id as the views know it.
enum Current {
    Saved(WorkflowRow),
    /// Deleted: the id is free, and its stream goes on from the delete.
    Deleted(views::DeletedWorkflowRow),
    Never,
}

impl Current {
    fn read(registry: &Registry, ctx: &Ctx, id: &WorkflowId) -> Result<Self, AppError> {
        let org = ctx.org.as_str();
        if let Some(row) = registry.views.workflow(org, id.as_str())? {
            return Ok(Self::Saved(row));
        }
        Ok(match registry.views.deleted_workflow(org, id.as_str())? {
            Some(gone) => Self::Deleted(gone),
            None => Self::Never,
        })
    }
}

async fn command(
    registry: &Registry,
    ctx: &Ctx,
    id: &WorkflowId,
    current: &Current,
    command: workflow::Command,
) -> Result<u64, AppError> {
    let (stream, state) = match current {
        Current::Saved(row) => (
            Stream::new(id.as_str(), Some(&row.stream)),
            Some(&row.workflow),
        ),
        // A delete retried under the same command answers as the first did; anything else
        // starts the workflow anew where its stream stands.
        Current::Deleted(gone) => (
            Stream {
                id: id.as_str(),
                at: Some(&gone.stream),
                last_command: Some(gone.command_id.as_str()),
            },
            None,
        ),
        Current::Never => (Stream::new(id.as_str(), None), None),
    };
    match execute::execute::<Workflow>(registry, ctx, stream, state, command).await {
        Ok(done) => Ok(done.position()),
        Err(Refused::Rejected(workflow::Rejection::NotFound)) => Err(not_found()),
        Err(Refused::Conflict) => Err(AppError::Conflict {
            code: "workflow.conflict",
            message: "the workflow changed at the same time; send it again".into(),
            current_version: stream.at.map(|at| at.version),
        }),
        Err(Refused::Failed(error)) => Err(error),
    }
}

fn not_found() -> AppError {
    AppError::NotFound {
        code: "workflow.not_found",
        message: "no workflow with this id in this org".into(),
    }
}

pub fn get(registry: &Registry, ctx: &Ctx, id: &str) -> Result<Answer<api::Workflow>, AppError> {
    Ok(Answer {
        value: view_by_id(registry, ctx, id)?,
        position: registry.views.position(),
    })
}

/// All workflows, or with `broken_only` the active ones referencing a deactivated or
/// unknown model.
pub fn list(
    registry: &Registry,
    ctx: &Ctx,
    broken_only: bool,
) -> Result<Answer<Vec<api::Workflow>>, AppError> {
    let position = registry.views.position();
    let mut out = Vec::new();
    for row in registry.views.workflows(ctx.org.as_str())? {
        let view = view(registry, ctx, &row)?;
        if !broken_only || view.broken {
            out.push(view);
        }
    }
    Ok(Answer {
        value: out,
        position,
    })
}

/// A page of [`list`]: `limit` workflows after `cursor`, in id order (the whole list with
/// neither). With `broken`, the page holds only broken workflows, read on from the cursor
/// until it is full.
pub fn page(
    registry: &Registry,
    ctx: &Ctx,
    query: &api::BrokenQuery,
) -> Result<Answer<api::Paged<api::Workflow>>, AppError> {
    let Some(page) = crate::paging::Page::parse(query.limit, query.cursor.as_deref())? else {
        return list(registry, ctx, query.broken).map(|answer| Answer {
            value: crate::paging::whole(answer.value),
            position: answer.position,
        });
    };
    let position = registry.views.position();
    let org = ctx.org.as_str();
    let mut found = Vec::new();
    let mut after = page.after.clone();
    // One more than the page, to know whether another follows.
    while found.len() <= page.limit {
        let rows = registry
            .views
            .workflows_after(org, after.as_deref(), page.limit + 1)?;
        let Some(last) = rows.last() else { break };
        after = Some(last.id.clone());
        let exhausted = rows.len() <= page.limit;
        for row in &rows {
            let view = view(registry, ctx, row)?;
            if !query.broken || view.broken {
                found.push(view);
            }
        }
        if exhausted {
            break;
        }
    }
    found.truncate(page.limit + 1);
    Ok(Answer {
        value: page.cut(found, |workflow| workflow.id.as_str()),
        position,
    })
}

/// Who references a model, custom (by slug) or platform (by id).
pub fn references(
    registry: &Registry,
    ctx: &Ctx,
    slug: &str,
) -> Result<Answer<api::ModelReferences>, AppError> {
    references_page(registry, ctx, slug, &api::PageQuery::default())
}

/// A page of [`references`]: `limit` referencing workflows after `cursor`, in id order,
/// split into active and inactive (all of them with neither).
pub fn references_page(
    registry: &Registry,
    ctx: &Ctx,
    slug: &str,
    query: &api::PageQuery,
) -> Result<Answer<api::ModelReferences>, AppError> {
    let page = crate::paging::Page::parse(query.limit, query.cursor.as_deref())?;
    let position = registry.views.position();
    let is_platform =
        crate::catalog::current(registry)?.is_some_and(|row| row.catalog.find(slug).is_some());
    if !is_platform {
        crate::models::row(registry, ctx, slug)?;
    }
    let truncated = crate::usage::truncated_calls_by_workflow(registry, ctx, slug)?;
    let org = ctx.org.as_str();
    let (rows, next_cursor) = match &page {
        None => (registry.views.referencing(org, slug)?, None),
        Some(page) => {
            let rows = registry.views.referencing_after(
                org,
                slug,
                page.after.as_deref(),
                page.limit + 1,
            )?;
            let cut = page.cut(rows, |row| row.id.as_str());
            (cut.items, cut.next_cursor)
        }
    };
    let (mut active, mut inactive) = (Vec::new(), Vec::new());
    for row in rows {
        let truncated_calls_7d = truncated.get(&row.id).copied().unwrap_or(0);
        let summary = api::Dependent {
            id: row.id.clone(),
            name: row.workflow.name.clone(),
            truncated_calls_7d,
            keeps_truncating: domain::usage::keeps_truncating(truncated_calls_7d),
        };
        if row.workflow.active {
            active.push(summary)
        } else {
            inactive.push(summary)
        }
    }
    Ok(Answer {
        value: api::ModelReferences {
            model: slug.to_owned(),
            active,
            inactive,
            next_cursor,
        },
        position,
    })
}

/// What the dependents worker should do about the deactivation at `seq`.
pub enum Dependents {
    /// The model was reactivated since, or deactivated again later (that one will be warned).
    Moot,
    /// Warn these workflows; `recorded` when the warning is in the log already (a redelivered
    /// job warns the same workflows again and records nothing).
    Warn {
        workflow_ids: Vec<String>,
        deactivated_by: String,
        recorded: bool,
    },
}

/// The active workflows to warn about the deactivation of `slug` at `seq`, counted from
/// views that include it: a workflow saved later is listed as broken instead, so none is
/// lost.
pub async fn dependents_of_deactivation(
    registry: &Registry,
    org: &OrgId,
    slug: &str,
    seq: u64,
) -> Result<Dependents, AppError> {
    registry.settle(seq).await?;
    let Some(row) = registry.views.model(org.as_str(), slug)? else {
        return Err(AppError::internal(format!(
            "deactivated model {slug} is not in the views"
        )));
    };
    let Some(deactivation) = row
        .deactivation
        .as_ref()
        .filter(|d| d.seq == seq && row.model.status == Status::Deactivated)
    else {
        return Ok(Dependents::Moot);
    };
    if let Some(warned) = &deactivation.warned {
        return Ok(Dependents::Warn {
            workflow_ids: warned.clone(),
            deactivated_by: deactivation.by.clone(),
            recorded: true,
        });
    }
    let mut workflow_ids: Vec<String> = registry
        .views
        .referencing(org.as_str(), slug)?
        .into_iter()
        .filter(|w| w.workflow.active)
        .map(|w| w.id)
        .collect();
    workflow_ids.sort();
    Ok(Dependents::Warn {
        workflow_ids,
        deactivated_by: deactivation.by.clone(),
        recorded: false,
    })
}

fn view_by_id(registry: &Registry, ctx: &Ctx, id: &str) -> Result<api::Workflow, AppError> {
    let row = registry
        .views
        .workflow(ctx.org.as_str(), id)?
        .ok_or_else(not_found)?;
    view(registry, ctx, &row)
}

/// The status of the model a reference names: custom slugs from the views, platform ids
/// (with a `/`) from the catalog.
fn reference_status(
    registry: &Registry,
    ctx: &Ctx,
    model: &str,
) -> Result<(&'static str, Option<views::ModelRow>), AppError> {
    if model.contains('/') {
        let status = crate::catalog::reference_status(registry, &ctx.org, model)?;
        return Ok((status, None));
    }
    match registry.views.model(ctx.org.as_str(), model)? {
        Some(row) if row.model.status == Status::Active => Ok(("active", Some(row))),
        Some(row) => Ok(("deactivated", Some(row))),
        None => Ok(("unknown", None)),
    }
}

fn view(registry: &Registry, ctx: &Ctx, row: &WorkflowRow) -> Result<api::Workflow, AppError> {
    let mut references = Vec::new();
    for model in row.workflow.models() {
        let (status, model_row) = reference_status(registry, ctx, model)?;
        let mut warnings: Vec<api::Refusal> = Vec::new();
        if let Some(model_row) = &model_row {
            for step in row.workflow.steps.iter().filter(|s| s.model == model) {
                for refusal in workflow::step_refusals(
                    &model_row.model.capabilities,
                    model_row.model.max_tokens.get(),
                    &step.features,
                ) {
                    let refusal = present::refusal(refusal);
                    if !warnings.contains(&refusal) {
                        warnings.push(refusal);
                    }
                }
            }
        } else if status == "active"
            && let Some(catalog) = crate::catalog::current(registry)?
            && let Some(entry) = catalog.catalog.find(model)
        {
            for step in row.workflow.steps.iter().filter(|s| s.model == model) {
                for refusal in domain::catalog::step_refusals(entry, &step.features) {
                    let refusal = present::refusal(refusal);
                    if !warnings.contains(&refusal) {
                        warnings.push(refusal);
                    }
                }
            }
        }
        references.push(api::Reference {
            model: model.to_owned(),
            status: status.to_owned(),
            warnings,
        });
    }
    let broken = row.workflow.active && references.iter().any(|r| r.status != "active");
    let notices = row
        .notices
        .iter()
        .map(|n| api::Notice {
            model: n.model.clone(),
            deactivated_at: rfc3339(n.deactivated_at_ms),
            deactivated_by: n.deactivated_by.clone(),
            message: notice_message(&n.model),
        })
        .collect();
    Ok(api::Workflow {
        id: row.id.clone(),
        name: row.workflow.name.clone(),
        active: row.workflow.active,
        steps: row
            .workflow
            .steps
            .iter()
            .map(|s| api::Step {
                model: s.model.clone(),
                features: api::Features {
                    tools: s.features.tools,
                    json_output: s.features.json_output,
                    vision_input: s.features.vision_input,
                    reasoning: s.features.reasoning,
                },
            })
            .collect(),
        references,
        broken,
        notices,
        version: row.stream.version,
        updated_at: rfc3339(row.updated_at_ms),
        updated_by: row.updated_by.clone(),
    })
}

/// What a workflow is told when a model it references is deactivated (a custom model) or
/// retired (a platform model, whose id holds a `/`).
pub fn notice_message(model: &str) -> String {
    if model.contains('/') {
        return format!(
            "platform model {model} was retired; this workflow cannot generate LLM responses with it until it is repointed to an active model"
        );
    }
    format!(
        "model {model} was deactivated; this workflow cannot generate LLM responses with it until it is repointed to an active model"
    )
}
