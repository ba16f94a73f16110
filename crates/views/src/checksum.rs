//! The views' checksum: SHA-256 over every table's keys and values (the audit trail's blocks
//! entry by entry), so two replicas (or a rebuild and the live views) can be compared byte
//! for byte.

use redb::{ReadableTable, TableHandle};
use sha2::{Digest, Sha256};

use crate::audit::seq_of;
use crate::block;
use crate::store::{
    AUDIT, CHECKPOINT, META, ROW_TABLES, ViewError, Views, audit_key, in_audit_file, storage,
    storage_problem,
};

type Table = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

impl Views {
    /// SHA-256 over every table's keys and values, in order: equal views give equal sums.
    /// Tables are read from one snapshot of each file and hashed on threads of their own (a
    /// rebuild ends with this, and the big tables take seconds each). The audit tables count
    /// only entries up to the views' checkpoint: an audit file ahead of its views (it commits
    /// first) sums as one that is not. The trail's blocks are summed entry by entry.
    pub fn checksum(&self) -> Result<String, ViewError> {
        // The views' snapshot first: the audit file's, taken after, holds every entry up to
        // the views' checkpoint.
        let txn = self.db.begin_read().map_err(storage)?;
        let audit_txn = self.audit_db.begin_read().map_err(storage)?;
        let mut hasher = Sha256::new();
        let meta = txn.open_table(META).map_err(storage)?;
        let checkpoint = meta
            .get(CHECKPOINT)
            .map_err(storage)?
            .map_or(0, |v| v.value());
        hasher.update(b"meta");
        for entry in meta.iter().map_err(storage)? {
            let (k, v) = entry.map_err(storage)?;
            hash_pair(&mut hasher, k.value().as_bytes(), &v.value().to_be_bytes());
        }
        let mut tables = Vec::with_capacity(ROW_TABLES.len());
        for definition in ROW_TABLES {
            tables.push(if definition.name() == AUDIT.name() {
                (
                    audit_txn.open_table(definition).map_err(storage)?,
                    Rows::Blocks(checkpoint),
                )
            } else if in_audit_file(&definition) {
                (
                    audit_txn.open_table(definition).map_err(storage)?,
                    Rows::UpTo(checkpoint),
                )
            } else {
                (txn.open_table(definition).map_err(storage)?, Rows::All)
            });
        }
        let digests = std::thread::scope(|scope| {
            let running: Vec<_> = tables
                .iter()
                .map(|(table, rows)| scope.spawn(move || table_digest(table, *rows)))
                .collect();
            running
                .into_iter()
                .map(|thread| {
                    thread
                        .join()
                        .unwrap_or_else(|_| Err(storage_problem("a checksum thread panicked")))
                })
                .collect::<Result<Vec<_>, ViewError>>()
        })?;
        for (definition, (rows, digest)) in ROW_TABLES.iter().zip(digests) {
            hasher.update(redb::TableHandle::name(definition).as_bytes());
            hasher.update(rows.to_be_bytes());
            hasher.update(digest);
        }
        Ok(hex::encode(hasher.finalize()))
    }
}

/// Which of a table's rows a checksum counts.
#[derive(Clone, Copy)]
enum Rows {
    All,
    /// Those whose key ends in a position at or below this one (`audit_by`).
    UpTo(u64),
    /// The entries of `audit`'s blocks at or below this position, each hashed as the row
    /// `<org>/<position>` → entry: a block's entries past the position are left out.
    Blocks(u64),
}

/// How many rows and SHA-256 over their keys and values in key order.
fn table_digest(table: &Table, rows: Rows) -> Result<(u64, [u8; 32]), ViewError> {
    let mut hasher = Sha256::new();
    let mut counted = 0u64;
    for entry in table.iter().map_err(storage)? {
        let (k, v) = entry.map_err(storage)?;
        let key = k.value();
        match rows {
            Rows::All => {
                hash_pair(&mut hasher, key, v.value());
                counted += 1;
            }
            Rows::UpTo(up_to) => {
                if seq_of(key)? <= up_to {
                    hash_pair(&mut hasher, key, v.value());
                    counted += 1;
                }
            }
            Rows::Blocks(up_to) => {
                // `<org>/` and the block's first position, 20 digits.
                let org = key
                    .len()
                    .checked_sub(21)
                    .and_then(|at| std::str::from_utf8(&key[..at]).ok())
                    .ok_or_else(|| storage_problem("an audit key without an org"))?;
                for (seq, bytes) in block::entries(v.value(), seq_of(key)?)? {
                    if seq <= up_to {
                        hash_pair(&mut hasher, audit_key(org, seq).as_bytes(), bytes);
                        counted += 1;
                    }
                }
            }
        }
    }
    Ok((counted, hasher.finalize().into()))
}

fn hash_pair(hasher: &mut Sha256, key: &[u8], value: &[u8]) {
    hasher.update((key.len() as u64).to_be_bytes());
    hasher.update(key);
    hasher.update((value.len() as u64).to_be_bytes());
    hasher.update(value);
}
