//! Reading the audit trail: newest first, filtered, paged by log position; and the running
//! digest the projector keeps beside it.
//!
//! The trail is read from the audit file, which may hold entries past the views' position
//! (it commits first): they are never shown before the views publish their position.

use crate::block;
use crate::rows::AuditRow;
use crate::store::{
    AUDIT, AUDIT_BY, CHAIN, HEAD, ViewError, Views, audit_by_key, audit_key, decode, storage,
    storage_problem,
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
        // Decodes the entry only once it is to be examined.
        let mut take = |seq: u64, bytes: &[u8], page: &mut AuditPage| -> Result<bool, ViewError> {
            if page.entries.len() >= limit || examined >= budget {
                // One more exists: the page ends before it.
                page.next = Some(seq + 1);
                return Ok(false);
            }
            examined += 1;
            let row: AuditRow = decode(bytes)?;
            if filter.keeps(&row) {
                page.entries.push(row);
            }
            Ok(true)
        };
        match &filter.aggregate {
            Some((kind, id)) => {
                let by = txn.open_table(AUDIT_BY).map_err(storage)?;
                let start = format!("{org}/{kind}/{id}/");
                let stop = audit_by_key(org, kind, id, end);
                let mut blocks = Blocks::new(&audit, org);
                for entry in by
                    .range(start.as_bytes()..stop.as_bytes())
                    .map_err(storage)?
                    .rev()
                {
                    let (k, v) = entry.map_err(storage)?;
                    let seq = seq_of(k.value())?;
                    // A key that sorts in range but names a later position is not shown.
                    if seq >= end {
                        continue;
                    }
                    let bytes = blocks.entry(block_of(v.value())?, seq)?.ok_or_else(|| {
                        storage_problem("an audit index row names a missing entry")
                    })?;
                    if !take(seq, bytes, &mut page)? {
                        break;
                    }
                }
            }
            None => {
                newest_first(&audit, org, end, |seq, bytes| take(seq, bytes, &mut page))?;
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
        let mut found = 0;
        newest_first(&audit, org, shown, |seq, bytes| {
            let row: AuditRow = decode(bytes)?;
            if row.recorded_at_ms <= time_ms {
                found = seq;
                return Ok(false);
            }
            Ok(true)
        })?;
        Ok(found)
    }
}

type Table = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// `org`'s entries before position `end`, newest first, handed to `visit` until it says
/// to stop (`false`).
fn newest_first(
    audit: &Table,
    org: &str,
    end: u64,
    mut visit: impl FnMut(u64, &[u8]) -> Result<bool, ViewError>,
) -> Result<(), ViewError> {
    // A block's key is its first entry's position: those below `end` hold the entries.
    let (start, stop) = (format!("{org}/"), audit_key(org, end));
    for block in audit
        .range(start.as_bytes()..stop.as_bytes())
        .map_err(storage)?
        .rev()
    {
        let (key, value) = block.map_err(storage)?;
        for (seq, bytes) in block::entries(value.value(), seq_of(key.value())?)?
            .into_iter()
            .rev()
        {
            if seq < end && !visit(seq, bytes)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// One org's entries read by the position of their block, the last block read kept: an
/// aggregate's entries are often neighbours.
struct Blocks<'a> {
    audit: &'a Table,
    org: &'a str,
    /// The last block read and its position.
    last: Option<(u64, redb::AccessGuard<'static, &'static [u8]>)>,
}

impl<'a> Blocks<'a> {
    fn new(audit: &'a Table, org: &'a str) -> Self {
        Self {
            audit,
            org,
            last: None,
        }
    }

    /// The encoded entry at `seq` in the block at `first`, if there is one.
    fn entry(&mut self, first: u64, seq: u64) -> Result<Option<&[u8]>, ViewError> {
        if self.last.as_ref().is_none_or(|(at, _)| *at != first) {
            self.last = self
                .audit
                .get(audit_key(self.org, first).as_bytes())
                .map_err(storage)?
                .map(|block| (first, block));
        }
        match &self.last {
            Some((_, block)) => block::find(block.value(), first, seq),
            None => Ok(None),
        }
    }
}

/// The block position an `audit_by` row holds.
fn block_of(value: &[u8]) -> Result<u64, ViewError> {
    value
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| storage_problem("an audit index row without a block"))
}

/// The position at the end of an audit key (its last 20 digits).
pub(crate) fn seq_of(key: &[u8]) -> Result<u64, ViewError> {
    key.len()
        .checked_sub(20)
        .and_then(|at| std::str::from_utf8(&key[at..]).ok())
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| storage_problem("an audit key without a position"))
}

#[cfg(test)]
mod tests {
    use redb::Durability;

    use super::*;
    use crate::projector::test_support::{apply, messages};
    use crate::store::AUDIT;

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

    /// An org's entries go into blocks of 16 (`crate::block`), the same rows whatever the
    /// batches were, and read back across block edges as if each were a row.
    #[test]
    fn blocks_are_cut_the_same_whatever_the_batches_and_read_across_their_edges() {
        use crate::projector::test_support::many_models;
        use redb::ReadableTable;

        let dir = tempfile::tempdir().unwrap();
        let all = many_models(100);
        let whole = Views::open(&dir.path().join("whole.redb")).unwrap();
        apply(&whole, &all, Durability::None);
        let pieces = Views::open(&dir.path().join("pieces.redb")).unwrap();
        for range in [0..1, 1..16, 16..18, 18..75, 75..all.len()] {
            apply(&pieces, &all[range], Durability::None);
        }
        let rows = |views: &Views, table: redb::TableDefinition<&[u8], &[u8]>| {
            let txn = views.audit_db.begin_read().unwrap();
            let audit = txn.open_table(table).unwrap();
            audit
                .iter()
                .unwrap()
                .map(|row| {
                    let (k, v) = row.unwrap();
                    (k.value().to_vec(), v.value().to_vec())
                })
                .collect::<Vec<_>>()
        };
        let cut = rows(&whole, AUDIT);
        assert_eq!(cut, rows(&pieces, AUDIT), "the same rows, byte for byte");
        let index = rows(&pieces, AUDIT_BY);
        assert_eq!(index, rows(&whole, AUDIT_BY), "and the same index");
        assert_eq!(index.len(), 201, "each model's key and its credential's");
        let firsts: Vec<u64> = cut.iter().map(|(k, _)| seq_of(k).unwrap()).collect();
        assert_eq!(
            firsts,
            [1, 17, 33, 49, 65, 81, 97],
            "101 entries, 16 to a block"
        );
        assert_eq!(whole.checksum().unwrap(), pieces.checksum().unwrap());

        // Seven at a time, newest first: every entry once, across the blocks' edges.
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = pieces
                .audit("acme", &AuditFilter::default(), before, 7, 1000)
                .unwrap();
            seen.extend(page.entries.iter().map(|e| e.seq));
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, (1..=101).rev().collect::<Vec<u64>>());
        let from_34 = pieces
            .audit("acme", &AuditFilter::default(), Some(34), 3, 1000)
            .unwrap();
        let positions: Vec<u64> = from_34.entries.iter().map(|e| e.seq).collect();
        assert_eq!((positions, from_34.next), (vec![33, 32, 31], Some(31)));

        // One aggregate's entry, found in its block by position.
        for (model, seq) in [("m-0", 2), ("m-14", 16), ("m-15", 17), ("m-99", 101)] {
            let filter = AuditFilter {
                aggregate: Some(("model".into(), model.into())),
                ..AuditFilter::default()
            };
            let history = pieces.audit("acme", &filter, None, 10, 1000).unwrap();
            let positions: Vec<u64> = history.entries.iter().map(|e| e.seq).collect();
            assert_eq!(positions, [seq], "{model}");
        }

        // An index row naming a block that is not there is a storage error, not a gap.
        let txn = pieces.audit_db.begin_write().unwrap();
        {
            let mut index = txn.open_table(AUDIT_BY).unwrap();
            let key = audit_by_key("acme", "model", "m-0", 2);
            index
                .insert(key.as_bytes(), 999u64.to_be_bytes().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
        let filter = AuditFilter {
            aggregate: Some(("model".into(), "m-0".into())),
            ..AuditFilter::default()
        };
        assert!(pieces.audit("acme", &filter, None, 10, 1000).is_err());
    }
}
