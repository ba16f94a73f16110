//! Reading the audit trail: newest first, filtered, paged by log position; and the running
//! digest the projector keeps beside it.
//!
//! The trail is read from the audit file, which may hold entries past the views' position
//! (it commits first): they are never shown before the views publish their position.

use crate::rows::AuditRow;
use crate::store::{
    AUDIT, AUDIT_BY, CHAIN, HEAD, ViewError, Views, audit_by_key, audit_key, decode, storage,
};

/// Which entries to keep. Every part set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The history of one aggregate, `(kind, id)`: its own events and those related to it
    /// (a model's connection tests, a credential's models). Read from its own index.
    pub aggregate: Option<(String, String)>,
    /// Entries of aggregates of this kind (`model`, `credential`, …).
    pub kind: Option<String>,
    /// The actor's id (a token id, `system`, a worker) or its label.
    pub actor: Option<String>,
    /// The action's name (`model.edited`), or a kind's actions as `model.`.
    pub action: Option<String>,
    /// Recorded at or after, in ms since the Unix epoch.
    pub since_ms: Option<i64>,
    /// Recorded at or before.
    pub until_ms: Option<i64>,
}

impl AuditFilter {
    fn keeps(&self, row: &AuditRow) -> bool {
        let action = self
            .action
            .as_deref()
            .is_none_or(|action| match action.strip_suffix('.') {
                Some(kind) => row.action.split_once('.').is_some_and(|(k, _)| k == kind),
                None => row.action == action,
            });
        action
            && self.kind.as_deref().is_none_or(|kind| row.kind == kind)
            && self
                .actor
                .as_deref()
                .is_none_or(|actor| row.actor.id == actor || row.actor.label == actor)
            && self
                .since_ms
                .is_none_or(|since| row.recorded_at_ms >= since)
            && self
                .until_ms
                .is_none_or(|until| row.recorded_at_ms <= until)
    }
}

/// A page of the trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditPage {
    pub entries: Vec<AuditRow>,
    /// Where the next page starts (entries before this position); `None` at the trail's
    /// start. A page may be short and still have a next one: see [`Views::audit`].
    pub next: Option<u64>,
}

impl Views {
    /// `org`'s entries before position `before` (from the newest with `None`), newest
    /// first, at most `limit` of those `filter` keeps. At most `budget` entries are
    /// examined, so a rare filter over a long trail answers in bounded time: the page then
    /// comes back short, with `next` where to go on. Positions never change, so paging with
    /// `next` returns every entry once while new ones land. Entries past [`Views::position`]
    /// are not shown yet.
    pub fn audit(
        &self,
        org: &str,
        filter: &AuditFilter,
        before: Option<u64>,
        limit: usize,
        budget: usize,
    ) -> Result<AuditPage, ViewError> {
        // The position first, then the snapshot: the audit file commits before the views,
        // so the snapshot holds every entry up to the position.
        let shown = self.position().saturating_add(1);
        let txn = self.audit_db.begin_read().map_err(storage)?;
        let audit = txn.open_table(AUDIT).map_err(storage)?;
        let end = before.map_or(shown, |b| b.min(shown));
        let mut page = AuditPage {
            entries: Vec::new(),
            next: None,
        };
        let mut examined = 0usize;
        let mut take = |seq: u64, row: AuditRow, page: &mut AuditPage| -> Option<()> {
            if page.entries.len() >= limit || examined >= budget {
                // One more exists: the page ends before it.
                page.next = Some(seq + 1);
                return None;
            }
            examined += 1;
            if filter.keeps(&row) {
                page.entries.push(row);
            }
            Some(())
        };
        match &filter.aggregate {
            Some((kind, id)) => {
                let by = txn.open_table(AUDIT_BY).map_err(storage)?;
                let start = format!("{org}/{kind}/{id}/");
                let stop = audit_by_key(org, kind, id, end);
                for entry in by
                    .range(start.as_bytes()..stop.as_bytes())
                    .map_err(storage)?
                    .rev()
                {
                    let (k, _) = entry.map_err(storage)?;
                    let seq = seq_of(k.value())?;
                    let Some(row) = entry_at(&audit, org, seq)? else {
                        continue;
                    };
                    if take(seq, row, &mut page).is_none() {
                        break;
                    }
                }
            }
            None => {
                let start = format!("{org}/");
                let stop = audit_key(org, end);
                for entry in audit
                    .range(start.as_bytes()..stop.as_bytes())
                    .map_err(storage)?
                    .rev()
                {
                    let (k, v) = entry.map_err(storage)?;
                    let row: AuditRow = decode(v.value())?;
                    if take(seq_of(k.value())?, row, &mut page).is_none() {
                        break;
                    }
                }
            }
        }
        Ok(page)
    }

    /// The last position the views folded and the running digest there (`None` before the
    /// first event).
    pub fn head(&self) -> Result<Option<eventlog::Head>, ViewError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let chain = txn.open_table(CHAIN).map_err(storage)?;
        let Some(value) = chain.get(HEAD.as_bytes()).map_err(storage)? else {
            return Ok(None);
        };
        let (position, digest): (u64, [u8; 32]) = decode(value.value())?;
        Ok(Some(eventlog::Head { position, digest }))
    }

    /// The last position of `org`'s events recorded at or before `time_ms` (0: none), up to
    /// the views' position.
    pub fn position_at(&self, org: &str, time_ms: i64) -> Result<u64, ViewError> {
        let shown = self.position().saturating_add(1);
        let txn = self.audit_db.begin_read().map_err(storage)?;
        let audit = txn.open_table(AUDIT).map_err(storage)?;
        let start = format!("{org}/");
        let stop = audit_key(org, shown);
        for entry in audit
            .range(start.as_bytes()..stop.as_bytes())
            .map_err(storage)?
            .rev()
        {
            let (k, v) = entry.map_err(storage)?;
            let row: AuditRow = decode(v.value())?;
            if row.recorded_at_ms <= time_ms {
                return seq_of(k.value());
            }
        }
        Ok(0)
    }
}

type Table = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

fn entry_at(audit: &Table, org: &str, seq: u64) -> Result<Option<AuditRow>, ViewError> {
    match audit.get(audit_key(org, seq).as_bytes()).map_err(storage)? {
        Some(value) => decode(value.value()).map(Some),
        None => Ok(None),
    }
}

/// The position at the end of an audit key (its last 20 digits).
pub(crate) fn seq_of(key: &[u8]) -> Result<u64, ViewError> {
    key.len()
        .checked_sub(20)
        .and_then(|at| std::str::from_utf8(&key[at..]).ok())
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| crate::store::storage_problem("an audit key without a position"))
}

#[cfg(test)]
mod tests {
    use redb::Durability;

    use super::*;
    use crate::projector::test_support::{apply, messages};

    #[test]
    fn entries_read_newest_first_filtered_and_paged_by_position() {
        let dir = tempfile::tempdir().unwrap();
        let views = Views::open(&dir.path().join("views.redb")).unwrap();
        apply(&views, &messages(), Durability::None);
        let all = views
            .audit("acme", &AuditFilter::default(), None, 10, 1000)
            .unwrap();
        let summaries: Vec<&str> = all.entries.iter().map(|e| e.summary.as_str()).collect();
        assert_eq!(
            summaries,
            ["model deactivated", "model added", "org created"]
        );
        assert_eq!(all.next, None);
        let deactivated = &all.entries[0];
        assert_eq!(
            (deactivated.seq, deactivated.changes[0].field.as_str()),
            (3, "status")
        );
        assert_eq!(
            (
                deactivated.changes[0].before.as_deref(),
                deactivated.changes[0].after.as_deref()
            ),
            (Some("active"), Some("deactivated")),
            "only what changed"
        );
        assert_eq!(deactivated.changes.len(), 1);

        // Two at a time: every entry once.
        let first = views
            .audit("acme", &AuditFilter::default(), None, 2, 1000)
            .unwrap();
        assert_eq!(first.entries.len(), 2);
        assert_eq!(first.next, Some(2));
        let second = views
            .audit("acme", &AuditFilter::default(), first.next, 2, 1000)
            .unwrap();
        assert_eq!(second.entries.len(), 1);
        assert_eq!((second.entries[0].seq, second.next), (1, None));

        // One aggregate's history; an action; a budget that runs out first.
        let model = AuditFilter {
            aggregate: Some(("model".into(), "team-gpt".into())),
            ..AuditFilter::default()
        };
        let history = views.audit("acme", &model, None, 10, 1000).unwrap();
        assert_eq!(history.entries.len(), 2);
        let added = AuditFilter {
            action: Some("model.added".into()),
            ..AuditFilter::default()
        };
        let short = views.audit("acme", &added, None, 10, 1).unwrap();
        assert_eq!((short.entries.len(), short.next), (0, Some(3)));
        let rest = views.audit("acme", &added, short.next, 10, 1000).unwrap();
        assert_eq!(rest.entries[0].action, "model.added");
        assert!(
            views
                .audit("other", &AuditFilter::default(), None, 10, 10)
                .unwrap()
                .entries
                .is_empty()
        );

        // The running digest, as the log's chain computes it.
        let mut digest = eventlog::chain::GENESIS;
        for message in messages() {
            digest = eventlog::chain::next_digest(
                &digest,
                message.seq,
                &eventlog::Envelope::hash_of(&message.data),
            );
        }
        assert_eq!(
            views.head().unwrap(),
            Some(eventlog::Head {
                position: 3,
                digest
            })
        );
        assert_eq!(views.position_at("acme", 1_700_000_000_001).unwrap(), 2);
        assert_eq!(views.position_at("acme", 0).unwrap(), 0);
    }
}
