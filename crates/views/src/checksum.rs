//! The views' checksum: SHA-256 over every table's keys and values, so two replicas (or a
//! rebuild and the live views) can be compared byte for byte.

use redb::{ReadableTable, ReadableTableMetadata};
use sha2::{Digest, Sha256};

use crate::store::{META, ROW_TABLES, ViewError, Views, storage, storage_problem};

impl Views {
    /// SHA-256 over every table's keys and values, in order: equal views give equal sums.
    /// Tables are read from one snapshot and hashed on threads of their own (a rebuild
    /// ends with this, and the big tables take seconds each).
    pub fn checksum(&self) -> Result<String, ViewError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let mut hasher = Sha256::new();
        let meta = txn.open_table(META).map_err(storage)?;
        hasher.update(b"meta");
        for entry in meta.iter().map_err(storage)? {
            let (k, v) = entry.map_err(storage)?;
            hash_pair(&mut hasher, k.value().as_bytes(), &v.value().to_be_bytes());
        }
        let mut tables = Vec::with_capacity(ROW_TABLES.len());
        for definition in ROW_TABLES {
            tables.push(txn.open_table(definition).map_err(storage)?);
        }
        let digests = std::thread::scope(|scope| {
            let running: Vec<_> = tables
                .iter()
                .map(|table| scope.spawn(move || table_digest(table)))
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
        for ((definition, table), digest) in ROW_TABLES.iter().zip(&tables).zip(digests) {
            hasher.update(redb::TableHandle::name(definition).as_bytes());
            hasher.update(table.len().map_err(storage)?.to_be_bytes());
            hasher.update(digest);
        }
        Ok(hex::encode(hasher.finalize()))
    }
}

/// SHA-256 over one table's keys and values in key order.
fn table_digest(table: &redb::ReadOnlyTable<&[u8], &[u8]>) -> Result<[u8; 32], ViewError> {
    let mut hasher = Sha256::new();
    for entry in table.iter().map_err(storage)? {
        let (k, v) = entry.map_err(storage)?;
        hash_pair(&mut hasher, k.value(), v.value());
    }
    Ok(hasher.finalize().into())
}

fn hash_pair(hasher: &mut Sha256, key: &[u8], value: &[u8]) {
    hasher.update((key.len() as u64).to_be_bytes());
    hasher.update(key);
    hasher.update((value.len() as u64).to_be_bytes());
    hasher.update(value);
}
