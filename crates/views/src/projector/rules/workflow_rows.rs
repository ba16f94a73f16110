//! Workflow rows, what a deleted workflow leaves, the references to models and the notices
//! of deactivations.

use domain::workflow;

use super::{Meta, ProjectError, Tables, read, write};
use crate::rows::{DeletedWorkflowRow, Notice, WorkflowRow};
use crate::store::{key, ref_key};

pub(super) fn apply_workflow(
    t: &mut Tables<'_>,
    org_id: &str,
    id: &str,
    event: &workflow::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    let row_key = key(org_id, id);
    let before: Option<WorkflowRow> = read(&t.workflows, &row_key)?;
    if let Some(before) = &before {
        for model in before.workflow.models() {
            t.refs.remove(ref_key(org_id, model, id));
        }
    }
    match event {
        workflow::Event::Saved(saved) => {
            // Reported again after a delete: the id is taken again.
            t.deleted_workflows.remove(row_key.clone());
            for model in saved.models() {
                t.refs.insert(ref_key(org_id, model, id), Vec::new());
            }
            // A notice stays while the workflow still uses the deactivated model.
            let models = saved.models();
            let notices = before
                .map(|b| b.notices)
                .unwrap_or_default()
                .into_iter()
                .filter(|n| models.contains(&n.model.as_str()))
                .collect();
            let row = WorkflowRow {
                org: org_id.to_owned(),
                id: id.to_owned(),
                workflow: saved.clone(),
                updated_at_ms: at.recorded_at_ms,
                updated_by: at.actor.to_owned(),
                stream: at.stream(),
                notices,
            };
            write(&mut t.workflows, &row_key, &row)
        }
        workflow::Event::Deleted => {
            t.workflows.remove(&row_key);
            let deleted = DeletedWorkflowRow {
                stream: at.stream(),
                name: before.map(|row| row.workflow.name).unwrap_or_default(),
                command_id: at.command_id.to_owned(),
            };
            write(&mut t.deleted_workflows, &row_key, &deleted)
        }
    }
}

/// Gives each of the workflows `ids` the notice of a deactivated or retired model, once.
pub(super) fn give_notice(
    t: &mut Tables<'_>,
    org_id: &str,
    ids: &[String],
    notice: &Notice,
) -> Result<(), ProjectError> {
    for id in ids {
        let workflow_key = key(org_id, id);
        if let Some(mut workflow) = read::<WorkflowRow>(&t.workflows, &workflow_key)?
            && !workflow.notices.iter().any(|n| n.model == notice.model)
        {
            workflow.notices.push(notice.clone());
            write(&mut t.workflows, &workflow_key, &workflow)?;
        }
    }
    Ok(())
}

/// Drops notices about `model` from the workflows that reference it.
pub(super) fn clear_notices(
    t: &mut Tables<'_>,
    org_id: &str,
    model: &str,
) -> Result<(), ProjectError> {
    let ids = referencing_ids(t, org_id, model)?;
    for id in ids {
        let workflow_key = key(org_id, &id);
        if let Some(mut workflow) = read::<WorkflowRow>(&t.workflows, &workflow_key)? {
            workflow.notices.retain(|n| n.model != model);
            write(&mut t.workflows, &workflow_key, &workflow)?;
        }
    }
    Ok(())
}

fn referencing_ids(
    t: &mut Tables<'_>,
    org_id: &str,
    model: &str,
) -> Result<Vec<String>, ProjectError> {
    let start = ref_key(org_id, model, "");
    let end = format!("{org_id}/{model}\u{1}");
    let mut ids = Vec::new();
    for key in t.refs.keys_in(&start, &end)? {
        if let Some((_, id)) = key.split_once('\0') {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}
