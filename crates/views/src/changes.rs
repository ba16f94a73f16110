//! Where each org last changed in a way that can alter a resolve answer: its models,
//! credentials and tokens, or the platform catalog every org resolves from. A runtime's
//! resolve cache follows these positions rather than the whole log's, which every usage
//! record and workflow report moves.
//!
//! Kept in memory from the views' start: the start position itself stands for every change
//! before it, so a runtime whose cache is older than the views' start reads again once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use domain::Event;

/// Resolve-relevant change positions, per org and for every org at once.
#[derive(Default)]
pub(crate) struct ResolveChanges {
    /// The last change of every org's answers: the platform catalog's, and the views' start
    /// (no change before it is known one by one).
    everyone: AtomicU64,
    orgs: RwLock<HashMap<String, u64>>,
}

impl ResolveChanges {
    /// The views started at `position`: every change up to it counts as made there.
    pub(crate) fn start_at(&self, position: u64) {
        self.everyone.fetch_max(position, Ordering::AcqRel);
    }

    /// Notes the events of an applied batch, before its position is published: a reader
    /// that sees the new position sees these too.
    pub(crate) fn note<'a>(&self, events: impl Iterator<Item = (u64, &'a str, &'a Event)>) {
        let mut orgs = None;
        for (seq, org, event) in events {
            match event {
                Event::Catalog(_) => {
                    self.everyone.fetch_max(seq, Ordering::AcqRel);
                }
                Event::Org(_) | Event::Credential(_) | Event::Model(_) => {
                    // The map holds plain numbers: one a panicking writer left is still sound.
                    let orgs = orgs.get_or_insert_with(|| {
                        self.orgs.write().unwrap_or_else(PoisonError::into_inner)
                    });
                    match orgs.get_mut(org) {
                        Some(at) => *at = (*at).max(seq),
                        None => {
                            orgs.insert(org.to_owned(), seq);
                        }
                    }
                }
                Event::Workflow(_) | Event::ConnectionTest(_) | Event::Usage(_) => {}
            }
        }
    }

    /// The position of `org`'s last change that can alter a resolve answer, as far as these
    /// views know (the views' start position when nothing later changed).
    pub(crate) fn of(&self, org: &str) -> u64 {
        let orgs = self.orgs.read().unwrap_or_else(PoisonError::into_inner);
        let own = orgs.get(org).copied().unwrap_or(0);
        own.max(self.everyone.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use domain::{catalog, model, workflow};

    use super::*;

    #[test]
    fn an_org_changes_with_its_own_aggregates_and_the_catalog_only() {
        let changes = ResolveChanges::default();
        changes.start_at(10);
        assert_eq!(
            changes.of("acme"),
            10,
            "the start stands for what came before"
        );
        let deactivated = Event::Model(model::Event::Deactivated);
        let report = Event::Workflow(workflow::Event::Deleted);
        changes.note([(11, "acme", &deactivated), (12, "acme", &report)].into_iter());
        assert_eq!(
            changes.of("acme"),
            11,
            "a workflow report changes no resolve answer"
        );
        assert_eq!(
            changes.of("other"),
            10,
            "another org's change is not this org's"
        );
        let default = Event::Catalog(catalog::Event::DefaultChanged { id: "x/y".into() });
        changes.note([(13, "_platform", &default)].into_iter());
        assert_eq!(changes.of("acme"), 13);
        assert_eq!(changes.of("other"), 13, "the catalog is every org's");
    }
}
