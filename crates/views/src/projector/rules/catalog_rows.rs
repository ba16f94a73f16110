//! The platform catalog's row: its state, retirements and history; and whom a retirement's
//! warning reached.

use domain::catalog;
use domain::event::Event;

use super::{Meta, ProjectError, Tables, clear_notices, give_notice, read, write};
use crate::rows::{CatalogChange, CatalogRow, Notice, Retirement};
use crate::store::CATALOG_KEY;

pub(super) fn apply_catalog(
    t: &mut Tables<'_>,
    event: &catalog::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    let before: Option<CatalogRow> = read(&t.catalog, CATALOG_KEY)?;
    let (state, mut retirements, mut history) = match before {
        Some(row) => (Some(row.catalog), row.retirements, row.history),
        None => (None, Default::default(), Vec::new()),
    };
    let Some(after) = catalog::evolve(state, event) else {
        return Err(ProjectError::Poison {
            seq: at.seq,
            why: "a catalog change before the catalog was seeded".into(),
        });
    };
    // A reinstated model's retirement is over, its notices with it; a later one is
    // recorded (and warned) anew.
    if let catalog::Event::Reinstated { id, .. } = event
        && let Some(over) = retirements.remove(id)
    {
        for org in over.warned.keys() {
            clear_notices(t, org, id)?;
        }
    }
    for id in catalog::retired_by(event) {
        let reason = match after.find(&id).map(|e| &e.status) {
            Some(catalog::Status::Retired { reason }) => reason.clone(),
            _ => String::new(),
        };
        retirements.entry(id).or_insert_with(|| Retirement {
            at_ms: at.recorded_at_ms,
            by: at.actor.to_owned(),
            seq: at.seq,
            reason,
            warned: Default::default(),
        });
    }
    history.push(CatalogChange {
        seq: at.seq,
        at_ms: at.recorded_at_ms,
        by: at.actor.to_owned(),
        event: Event::Catalog(event.clone()).name().to_owned(),
        summary: summary(event),
    });
    let row = CatalogRow {
        catalog: after,
        stream: at.stream(),
        retirements,
        history,
    };
    write(&mut t.catalog, CATALOG_KEY, &row)
}

/// One line on a catalog change, for its history.
fn summary(event: &catalog::Event) -> String {
    match event {
        catalog::Event::Seeded { models, default } => {
            format!(
                "seeded with {} models from the shipped catalog; default {default}",
                models.len()
            )
        }
        catalog::Event::Synced(synced) => format!(
            "sync from {}: {} fact(s) changed, {} model(s) proposed, {} listed by rule, {} disappeared, {} back, {} expired",
            synced.source,
            synced.changed.len(),
            synced.proposed.len(),
            synced.listed.len(),
            synced.disappeared.len(),
            synced.reappeared.len(),
            synced.expired.len()
        ),
        catalog::Event::Listed(listing) => format!("listed {}", listing.id),
        catalog::Event::Retired { id, reason } => format!("retired {id}: {reason}"),
        catalog::Event::DefaultChanged { id } => format!("default is now {id}"),
        catalog::Event::Reinstated { id, reason } => format!("reinstated {id}: {reason}"),
        catalog::Event::OverrideSet {
            id,
            fact,
            value: Some(value),
            reason,
            ..
        } => format!("{id}: {fact} overridden to {value} ({reason})"),
        catalog::Event::OverrideSet {
            id, fact, reason, ..
        } => format!("{id}: override of {fact} cleared ({reason})"),
    }
}

/// Records whom the dependents worker warned of a platform model's retirement in an org, and
/// gives each of those workflows a notice (once).
pub(super) fn warn_of_retirement(
    t: &mut Tables<'_>,
    org_id: &str,
    model: &str,
    retirement_seq: u64,
    workflow_ids: &[String],
) -> Result<(), ProjectError> {
    let Some(mut catalog) = read::<CatalogRow>(&t.catalog, CATALOG_KEY)? else {
        return Ok(());
    };
    // A warning of an earlier retirement, since undone, is not this one's.
    let Some(retirement) = catalog
        .retirements
        .get_mut(model)
        .filter(|retirement| retirement.seq == retirement_seq)
    else {
        return Ok(());
    };
    retirement
        .warned
        .insert(org_id.to_owned(), workflow_ids.to_vec());
    let notice = Notice {
        model: model.to_owned(),
        deactivated_at_ms: retirement.at_ms,
        deactivated_by: retirement.by.clone(),
    };
    give_notice(t, org_id, workflow_ids, &notice)?;
    write(&mut t.catalog, CATALOG_KEY, &catalog)
}
