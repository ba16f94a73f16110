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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::given;

    fn day(raw: &str) -> Day {
        Day::parse(raw).unwrap()
    }

    fn upstream(id: &str, facts: &[(FactName, FactValue)]) -> Upstream {
        Upstream {
            id: id.into(),
            name: id.into(),
            facts: facts.iter().cloned().collect(),
        }
    }

    #[test]
    fn a_sync_that_clears_or_loses_most_models_is_sweeping() {
        let shipped = shipped();
        let ids: Vec<String> = shipped.models.iter().map(|m| m.id.clone()).collect();
        let seed = Command::Seed {
            default: shipped.default,
            models: shipped.models,
            as_of: day("2026-01-01"),
        };
        let mut events = decide(None, seed).unwrap();
        let known = [(FactName::ToolUse, FactValue::Flag(true))];
        let all_known: Vec<Upstream> = ids.iter().map(|id| upstream(id, &known)).collect();
        let catalog = given::<Catalog>(&events).unwrap();
        let first = diff(&catalog, "openrouter", &day("2026-01-02"), &all_known, &[]);
        assert_eq!(
            sweeping(&catalog, &first),
            None,
            "learning facts is not sweeping"
        );
        events.push(Event::Synced(first));
        let catalog = given::<Catalog>(&events).unwrap();
        let on = day("2026-01-03");

        // The answer's shape changed: every model is there, with no facts.
        let bare: Vec<Upstream> = ids.iter().map(|id| upstream(id, &[])).collect();
        let why = sweeping(&catalog, &diff(&catalog, "openrouter", &on, &bare, &[]));
        assert!(why.is_some_and(|why| why.contains("10 of the 10")));
        // An empty answer.
        let why = sweeping(&catalog, &diff(&catalog, "openrouter", &on, &[], &[]));
        assert!(why.is_some_and(|why| why.contains("gone upstream")));
        // One model lost a fact: an ordinary sync.
        let mut one = all_known.clone();
        one[0] = upstream(&ids[0], &[]);
        assert_eq!(
            sweeping(&catalog, &diff(&catalog, "openrouter", &on, &one, &[])),
            None
        );
    }
}
