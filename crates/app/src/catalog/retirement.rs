//! A platform model's retirement reaching the orgs whose workflows use it: whom the
//! dependents worker warns, and the warnings it records.

use super::choices::org_command;
use super::*;

/// Whom to warn of the retirement of platform model `model` recorded at `seq`: per org, its
/// active workflows that reference the model, and whether that warning is recorded already
/// (a redelivered job warns again and records nothing). Counted from views that hold the
/// retirement.
pub struct RetirementWarnings {
    pub retired_by: String,
    pub orgs: Vec<OrgWarning>,
}

pub struct OrgWarning {
    pub org: OrgId,
    pub workflow_ids: Vec<String>,
    pub recorded: bool,
}

pub async fn dependents_of_retirement(
    registry: &Registry,
    model: &str,
    seq: u64,
) -> Result<Option<RetirementWarnings>, AppError> {
    registry.settle(seq).await?;
    let row = seeded(registry)?;
    let Some(retirement) = row.retirements.get(model).filter(|r| r.seq == seq) else {
        return Ok(None);
    };
    let mut orgs = Vec::new();
    for org_id in registry.views.org_ids()? {
        let org = OrgId::parse(&org_id)?;
        if let Some(warned) = retirement.warned.get(&org_id) {
            orgs.push(OrgWarning {
                org,
                workflow_ids: warned.clone(),
                recorded: true,
            });
            continue;
        }
        let mut workflow_ids: Vec<String> = registry
            .views
            .referencing(&org_id, model)?
            .into_iter()
            .filter(|w| w.workflow.active)
            .map(|w| w.id)
            .collect();
        if workflow_ids.is_empty() {
            continue;
        }
        workflow_ids.sort();
        orgs.push(OrgWarning {
            org,
            workflow_ids,
            recorded: false,
        });
    }
    Ok(Some(RetirementWarnings {
        retired_by: retirement.by.clone(),
        orgs,
    }))
}

/// The dependents worker's record, in the org's log, of whom it warned.
pub async fn record_platform_warning(
    registry: &Registry,
    ctx: &Ctx,
    model: &str,
    seq: u64,
    workflow_ids: Vec<String>,
) -> Result<u64, AppError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let command = org::Command::RecordPlatformWarning {
            model: model.to_owned(),
            retirement_seq: seq,
            workflow_ids: workflow_ids.clone(),
        };
        match org_command(registry, ctx, command).await {
            Err(AppError::Conflict {
                code: "org.conflict",
                ..
            }) if attempts < 5 => registry.catch_up().await?,
            other => return other,
        }
    }
}
