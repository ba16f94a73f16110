//! Writing the audit file: a batch's audit entries, gathered by the views thread as it folds
//! the events, written in one transaction of their own that commits once told the batch is
//! folded (before the views thread commits the views). Entries go into their org's open
//! block (`crate::block`), held in memory for the transaction and written once full or at
//! the commit. The aggregate index keeps a key per entry whose value is the position of the
//! entry's block, so a history reads each block with a point read.

use std::collections::HashMap;

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
    /// `org`'s entry at `seq`. Encoded and indexed by the audit thread: with the trail in
    /// blocks, the views thread has the longer part of a batch's work.
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
    /// The position of its first entry: its key.
    first: u64,
    entries: usize,
    bytes: Vec<u8>,
    /// Holds entries the table does not have yet.
    dirty: bool,
}

impl Open {
    /// `org`'s last block as the table has it; a full one (or none) is left to be followed.
    fn last_of(audit: &AuditTable<'_>, org: &str) -> Result<Self, ProjectError> {
        let (start, stop) = (format!("{org}/"), format!("{org}0"));
        let mut open = Self {
            first: 0,
            entries: BLOCK_ENTRIES,
            bytes: Vec::new(),
            dirty: false,
        };
        if let Some(last) = audit
            .range(start.as_bytes()..stop.as_bytes())
            .map_err(storage)?
            .next_back()
        {
            let (key, value) = last.map_err(storage)?;
            let entries = block::entries(value.value())?.len();
            if entries < BLOCK_ENTRIES {
                open = Self {
                    first: seq_of(key.value())?,
                    entries,
                    bytes: value.value().to_vec(),
                    dirty: false,
                };
            }
        }
        Ok(open)
    }

    /// Appends the entry at `seq`, first writing the block out if it is full; returns the
    /// position of the block it went into.
    fn push(
        &mut self,
        audit: &mut AuditTable<'_>,
        org: &str,
        entry: &Entry,
    ) -> Result<u64, ProjectError> {
        if self.entries >= BLOCK_ENTRIES {
            self.write(audit, org)?;
            self.first = entry.seq;
            self.entries = 0;
            self.bytes.clear();
        }
        block::push(&mut self.bytes, entry.seq, &entry.row)?;
        self.entries += 1;
        self.dirty = true;
        Ok(self.first)
    }

    fn write(&mut self, audit: &mut AuditTable<'_>, org: &str) -> Result<(), ProjectError> {
        if self.dirty {
            audit
                .insert(audit_key(org, self.first).as_bytes(), self.bytes.as_slice())
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
            for entry in writes.entries.iter().filter(|e| e.seq > written) {
                if !open.contains_key(&entry.org) {
                    let block = Open::last_of(&audit, &entry.org)?;
                    open.insert(entry.org.clone(), block);
                }
                let block = open
                    .get_mut(&entry.org)
                    .ok_or_else(|| storage_problem("an org's open audit block went missing"))?;
                let first = block.push(&mut audit, &entry.org, entry)?;
                let row = &entry.row;
                for (kind, id) in std::iter::once((&row.kind, &row.aggregate_id))
                    .chain(row.related.iter().map(|(k, i)| (k, i)))
                {
                    keys.push((audit_by_key(&entry.org, kind, id, entry.seq), first));
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
        for (org, block) in &mut open {
            block.write(&mut audit, org)?;
        }
        meta.insert(CHECKPOINT, checkpoint.max(written))
            .map_err(storage)?;
    }
    txn.commit().map_err(storage)?;
    Ok(())
}
