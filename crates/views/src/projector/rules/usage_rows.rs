//! Usage records, priced as their model is at their position, and the truncated calls.

use domain::values::Costs;
use domain::{catalog, usage};

use super::{Meta, ProjectError, Tables, read, write};
use crate::rows::{CatalogRow, ModelRow, UsageRow};
use crate::store::{CATALOG_KEY, key, truncation_key, usage_key};

/// Keeps a usage record with the prices its model has now, at the record's position: the
/// custom model's costs, or the platform catalog's. A model without a row prices nothing
/// (the record stays unpriced), which is no reason to stop the projector.
pub(super) fn apply_usage(
    t: &mut Tables<'_>,
    org_id: &str,
    record_id: &str,
    event: &usage::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    let usage::Event::Recorded(record) = event;
    let costs = if record.model.contains('/') {
        let catalog: Option<CatalogRow> = read(&t.catalog, CATALOG_KEY)?;
        catalog
            .and_then(|row| {
                row.catalog.find(&record.model).map(|entry| Costs {
                    input_per_token: entry.cost(catalog::FactName::InputCost),
                    output_per_token: entry.cost(catalog::FactName::OutputCost),
                })
            })
            .unwrap_or_default()
    } else {
        let model: Option<ModelRow> = read(&t.models, &key(org_id, &record.model))?;
        model.map(|row| row.model.costs).unwrap_or_default()
    };
    if record.truncated() {
        write(
            &mut t.truncations,
            truncation_key(org_id, &record.model, record.called_at_ms, record_id),
            record,
        )?;
    }
    let row = UsageRow {
        id: record_id.to_owned(),
        record: record.clone(),
        costs,
        seq: at.seq,
    };
    write(
        &mut t.usage,
        usage_key(org_id, record.called_at_ms, record_id),
        &row,
    )
}
