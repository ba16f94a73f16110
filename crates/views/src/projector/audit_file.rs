//! Writing the audit file: a batch's audit entries, gathered by the views thread as it folds
//! the events, written in one transaction of their own that commits once told the batch is
//! folded (before the views thread commits the views).

use redb::{Database, Durability, ReadableTable};

use super::ProjectError;
use crate::rows::AuditRow;
use crate::store::{AUDIT, AUDIT_BY, CHECKPOINT, META, encode, storage, storage_problem};

/// Audit entries of some of a batch's events, gathered by the views thread.
#[derive(Default)]
pub(super) struct AuditWrites {
    /// `audit` keys and their entries, encoded.
    entries: Vec<(String, Vec<u8>)>,
    /// `audit_by` keys.
    index: Vec<String>,
}

impl AuditWrites {
    /// The entry at `key` (an `audit` key). Encoded here, on the views thread: the audit
    /// thread has the longer part of a batch's work.
    pub(super) fn entry(&mut self, key: String, row: &AuditRow) {
        self.entries.push((key, encode(row)));
    }

    /// An `audit_by` key.
    pub(super) fn index(&mut self, key: String) {
        self.index.push(key);
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

/// Writes the entries as they come, each chunk in key order (one org's keys already are;
/// several orgs interleave), with the checkpoint, and commits once told to. Chunks rather
/// than the whole batch sorted once: the writer starts while the batch is being folded.
pub(super) fn write(
    db: &Database,
    durability: Durability,
    checkpoint: u64,
    chunks: impl IntoIterator<Item = Chunk>,
) -> Result<(), ProjectError> {
    let mut txn = db.begin_write().map_err(storage)?;
    txn.set_durability(durability);
    {
        let mut audit = txn.open_table(AUDIT).map_err(storage)?;
        let mut index = txn.open_table(AUDIT_BY).map_err(storage)?;
        let mut chunks = chunks.into_iter();
        loop {
            let mut writes = match chunks.next() {
                Some(Chunk::Entries(writes)) => writes,
                Some(Chunk::Commit) => break,
                // The batch failed before it was folded: nothing is committed.
                None => return Err(storage_problem("the batch was not folded").into()),
            };
            writes.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (key, value) in &writes.entries {
                audit
                    .insert(key.as_bytes(), value.as_slice())
                    .map_err(storage)?;
            }
            writes.index.sort_unstable();
            for key in &writes.index {
                index
                    .insert(key.as_bytes(), [].as_slice())
                    .map_err(storage)?;
            }
        }
        // An audit file ahead of the views (a crash between the two commits) keeps its
        // checkpoint as the views catch up.
        let mut meta = txn.open_table(META).map_err(storage)?;
        let written = meta
            .get(CHECKPOINT)
            .map_err(storage)?
            .map_or(0, |v| v.value());
        meta.insert(CHECKPOINT, checkpoint.max(written))
            .map_err(storage)?;
    }
    txn.commit().map_err(storage)?;
    Ok(())
}
