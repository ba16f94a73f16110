//! Writing the audit file: a batch's audit entries, gathered by the views thread as it folds
//! the events, written in one transaction of their own that commits once told the batch is
//! folded (before the views thread commits the views). Entries go into their org's open
//! block (`crate::block`), held in memory for the transaction and written once full or at
//! the commit. The aggregate index keeps a key per entry whose value is the position of the
//! entry's block, so a history reads each block with a point read.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;

use redb::{Database, Durability, ReadableTable, Table};

use super::ProjectError;
use crate::audit::seq_of;
use crate::block::{self, BLOCK_ENTRIES};
use crate::rows::AuditRow;
use crate::store::{
    AUDIT, AUDIT_BY, CHECKPOINT, META, audit_by_key, audit_key, storage, storage_problem,
};

/// One event's audit entry.
struct Entry {
    org: String,
    seq: u64,
    row: AuditRow,
}

/// Audit entries of some of a batch's events, gathered by the views thread.
#[derive(Default)]
pub(super) struct AuditWrites {
    /// The entries, in the order of their positions.
    entries: Vec<Entry>,
}

impl AuditWrites {
    /// `org`'s entry at `seq`. Encoded and indexed by the audit file's writer (on a thread
    /// of its own in a large batch): with the trail in blocks, the views thread has the
    /// longer part of a batch's work.
    pub(super) fn entry(&mut self, org: &str, seq: u64, row: AuditRow) {
        self.entries.push(Entry {
            org: org.to_owned(),
            seq,
            row,
        });
    }

    /// How many entries are gathered.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// What the views thread hands the audit file's writer during a batch.
pub(super) enum Chunk {
    Entries(AuditWrites),
    /// The batch folded: commit.
    Commit,
}

type AuditTable<'t> = Table<'t, &'static [u8], &'static [u8]>;

/// An org's last block during a transaction.
struct Open {
    org: String,
    /// The position of its first entry: its key.
    first: u64,
    entries: usize,
    /// The position of the org's last entry, in the file or this transaction.
    last: Option<u64>,
    bytes: Vec<u8>,
    /// Holds entries the table does not have yet.
    dirty: bool,
}

impl Open {
    /// `org`'s last block as the table has it; a full one (or none) is left to be followed.
    fn last_of(audit: &AuditTable<'_>, org: String) -> Result<Self, ProjectError> {
        let (start, stop) = (format!("{org}/"), format!("{org}0"));
        let mut open = Self {
            org,
            first: 0,
            entries: BLOCK_ENTRIES,
            last: None,
            bytes: Vec::new(),
            dirty: false,
        };
        if let Some(last) = audit
            .range(start.as_bytes()..stop.as_bytes())
            .map_err(storage)?
            .next_back()
        {
            let (key, value) = last.map_err(storage)?;
            let first = seq_of(key.value())?;
            let entries = block::entries(value.value(), first)?;
            open.last = entries.last().map(|(seq, _)| *seq);
            if entries.len() < BLOCK_ENTRIES {
                open = Self {
                    first,
                    entries: entries.len(),
                    bytes: value.value().to_vec(),
                    ..open
                };
            }
        }
        Ok(open)
    }

    /// Appends the entry at `seq`, first writing the block out if it is full; returns the
    /// position of the block it went into, or `None` if the org has an entry at or past
    /// `seq` already (positions only grow: the entry is in).
    fn push(
        &mut self,
        audit: &mut AuditTable<'_>,
        seq: u64,
        row: &AuditRow,
    ) -> Result<Option<u64>, ProjectError> {
        if self.last.is_some_and(|last| seq <= last) {
            return Ok(None);
        }
        if self.entries >= BLOCK_ENTRIES {
            self.write(audit)?;
            self.first = seq;
            self.entries = 0;
            self.bytes.clear();
        }
        block::push(&mut self.bytes, seq, row)?;
        self.entries += 1;
        self.last = Some(seq);
        self.dirty = true;
        Ok(Some(self.first))
    }

    fn write(&mut self, audit: &mut AuditTable<'_>) -> Result<(), ProjectError> {
        if self.dirty {
            audit
                .insert(
                    audit_key(&self.org, self.first).as_bytes(),
                    self.bytes.as_slice(),
                )
                .map_err(storage)?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// Writes the entries as they come, with the checkpoint, and commits once told to. Chunks
/// rather than the whole batch at once: the writer starts while the batch is being folded.
pub(super) fn write(
    db: &Database,
    durability: Durability,
    checkpoint: u64,
    chunks: impl IntoIterator<Item = Chunk>,
) -> Result<(), ProjectError> {
    let mut txn = db.begin_write().map_err(storage)?;
    txn.set_durability(durability);
    {
        let mut meta = txn.open_table(META).map_err(storage)?;
        // An audit file ahead of the views (a crash between the two commits) has the
        // entries up to its checkpoint already, and keeps it as the views catch up.
        let written = meta
            .get(CHECKPOINT)
            .map_err(storage)?
            .map_or(0, |v| v.value());
        let mut audit = txn.open_table(AUDIT).map_err(storage)?;
        let mut index = txn.open_table(AUDIT_BY).map_err(storage)?;
        let mut open: HashMap<String, Open> = HashMap::new();
        let mut chunks = chunks.into_iter();
        loop {
            let writes = match chunks.next() {
                Some(Chunk::Entries(writes)) => writes,
                Some(Chunk::Commit) => break,
                // The batch failed before it was folded: nothing is committed.
                None => return Err(storage_problem("the batch was not folded").into()),
            };
            let mut keys = Vec::with_capacity(writes.entries.len());
            for Entry { org, seq, row } in writes.entries {
                if seq <= written {
                    continue;
                }
                let block = match open.entry(org) {
                    Slot::Occupied(slot) => slot.into_mut(),
                    Slot::Vacant(slot) => {
                        let block = Open::last_of(&audit, slot.key().clone())?;
                        slot.insert(block)
                    }
                };
                let Some(first) = block.push(&mut audit, seq, &row)? else {
                    continue;
                };
                for (kind, id) in std::iter::once((&row.kind, &row.aggregate_id))
                    .chain(row.related.iter().map(|(k, i)| (k, i)))
                {
                    keys.push((audit_by_key(&block.org, kind, id, seq), first));
                }
            }
            // In key order: sorted inserts are the cheaper B-tree work.
            keys.sort_unstable();
            for (key, first) in &keys {
                index
                    .insert(key.as_bytes(), first.to_be_bytes().as_slice())
                    .map_err(storage)?;
            }
        }
        for block in open.values_mut() {
            block.write(&mut audit)?;
        }
        meta.insert(CHECKPOINT, checkpoint.max(written))
            .map_err(storage)?;
    }
    txn.commit().map_err(storage)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Views;
    use crate::store::AUDIT_BY;

    fn row(seq: u64) -> AuditRow {
        AuditRow {
            seq,
            recorded_at_ms: 1,
            kind: "model".into(),
            aggregate_id: format!("m-{seq}"),
            action: "model.added".into(),
            summary: "model added".into(),
            actor: eventlog::Actor {
                kind: eventlog::ActorKind::System,
                id: "test".into(),
                label: "test".into(),
            },
            request_id: "r".into(),
            command_id: "c".into(),
            client_addr: String::new(),
            changes: Vec::new(),
            related: Vec::new(),
        }
    }

    fn writes(orgs_and_positions: &[(&str, u64)]) -> Chunk {
        let mut writes = AuditWrites::default();
        for (org, seq) in orgs_and_positions {
            writes.entry(org, *seq, row(*seq));
        }
        Chunk::Entries(writes)
    }

    /// Orgs interleaved in a batch keep a block each, and a position the file has already
    /// (a redelivery, or a batch replayed over an audit file ahead of its views) is passed
    /// over rather than framed twice.
    #[test]
    fn each_org_has_its_blocks_and_no_position_is_written_twice() {
        let dir = tempfile::tempdir().unwrap();
        let views = Views::open(&dir.path().join("views.redb")).unwrap();
        let first: Vec<(&str, u64)> = (1..=20)
            .map(|seq| (if seq % 2 == 0 { "acme" } else { "beta" }, seq))
            .collect();
        write(
            &views.audit_db,
            Durability::None,
            20,
            [writes(&first), Chunk::Commit],
        )
        .unwrap();
        // The last two again with the next ones, checkpoint lowered as if not yet written.
        let again = [("acme", 20), ("beta", 19), ("acme", 21), ("acme", 22)];
        let txn = views.audit_db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(CHECKPOINT, 18)
            .unwrap();
        txn.commit().unwrap();
        write(
            &views.audit_db,
            Durability::None,
            22,
            [writes(&again), Chunk::Commit],
        )
        .unwrap();

        let txn = views.audit_db.begin_read().unwrap();
        let audit = txn.open_table(AUDIT).unwrap();
        let mut blocks = Vec::new();
        for row in audit.iter().unwrap() {
            let (k, v) = row.unwrap();
            let positions: Vec<u64> = block::entries(v.value(), seq_of(k.value()).unwrap())
                .unwrap()
                .iter()
                .map(|(seq, _)| *seq)
                .collect();
            blocks.push((String::from_utf8(k.value().to_vec()).unwrap(), positions));
        }
        let mut acme: Vec<u64> = (2..=22).step_by(2).chain([21]).collect();
        acme.sort_unstable();
        let beta: Vec<u64> = (1..=19).step_by(2).collect();
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        assert_eq!(blocks[0], (audit_key("acme", 2), acme));
        assert_eq!(blocks[1], (audit_key("beta", 1), beta));
        let index = txn.open_table(AUDIT_BY).unwrap();
        assert_eq!(index.iter().unwrap().count(), 22, "a key per position");
    }
}
