//! Whether a sync is too sweeping to record unattended. One that makes unknown what the
//! catalog knew of most of its models, or finds most of them gone, more likely says that the
//! upstream changed its answer's shape than its models: the periodic sync holds it back for
//! the operator (`modelreg catalog sync` shows it, `--apply` records it).

use std::collections::BTreeSet;

use super::*;

/// Catalogs with fewer listed models than this are never judged sweeping: a share of a
/// handful says little.
const FEWEST_LISTED: usize = 4;

/// Why `synced` is too sweeping to record unattended, or `None`: it makes facts unknown
/// (an expiration date excepted, which upstream drops when it no longer applies) of at
/// least half the listed models, or finds at least half of them gone upstream.
pub fn sweeping(catalog: &Catalog, synced: &Synced) -> Option<String> {
    let listed = catalog
        .models
        .values()
        .filter(|entry| entry.status == Status::Listed)
        .count();
    if listed < FEWEST_LISTED {
        return None;
    }
    let cleared: BTreeSet<&str> = synced
        .changed
        .iter()
        .filter(|c| c.before.is_some() && c.after.is_none())
        .filter(|c| c.fact != FactName::ExpirationDate)
        .map(|c| c.id.as_str())
        .collect();
    if cleared.len() * 2 >= listed {
        return Some(format!(
            "it would make facts unknown for {} of the {listed} listed models",
            cleared.len()
        ));
    }
    if synced.disappeared.len() * 2 >= listed {
        return Some(format!(
            "it finds {} of the {listed} listed models gone upstream",
            synced.disappeared.len()
        ));
    }
    None
}
