//! Batch writes: one write transaction per batch and file, with the batch's row writes held
//! in key order and the checkpoint written beside them.
//!
//! The audit trail goes to a file of its own. The views thread folds the events and gathers
//! each one's audit entry instead of writing it; in a large batch it hands them a chunk at a
//! time to a thread that writes the audit file (`audit_file`) while the views thread folds
//! the rest and writes the views' rows: the two B-tree workloads run on two cores. The audit
//! transaction commits first, and the views only once it did: the audit file is never
//! behind the views.

use std::collections::BTreeMap;

use redb::{Durability, ReadableTable, Table, WriteTransaction};

use super::ProjectError;
use super::audit_file::{self, AuditWrites, Chunk};
use super::reader::Decoded;
use super::rules::apply_one;
use crate::store::{
    CATALOG, CHAIN, CHECKPOINT, COMMANDS, CONNECTION_TESTS, CREDENTIALS, DELETED_WORKFLOWS,
    FINGERPRINTS, HEAD, META, MODELS, ORGS, REFS, TOKENS, TRUNCATIONS, USAGE, Views, WORKFLOWS,
    decode, encode, storage, storage_problem,
};

/// Batches of at least this many messages write the audit file on a thread of their own;
/// smaller ones (a command or two, live) inline: waking a thread costs about what a small
/// batch's audit transaction does, so running it beside the views' own gains nothing there.
const AUDIT_THREAD_FROM: usize = 256;
/// The audit thread is handed the entries of this many events at a time, so it writes while
/// the views thread folds the rest of the batch.
const AUDIT_CHUNK: usize = 512;

/// Applies chunks of decoded messages, in order, in one write transaction per file (the
/// audit file's commits first); returns the last position applied.
pub(super) fn apply_batch(
    views: &Views,
    chunks: &[Vec<Decoded>],
    durability: Durability,
) -> Result<Option<u64>, ProjectError> {
    let Some(last) = chunks
        .iter()
        .rev()
        .find_map(|chunk| chunk.last())
        .map(|m| m.seq)
    else {
        return Ok(None);
    };
    let mut txn = views.db.begin_write().map_err(storage)?;
    txn.set_durability(durability);
    let checkpoint = {
        let meta = txn.open_table(META).map_err(storage)?;
        meta.get(CHECKPOINT)
            .map_err(storage)?
            .map(|v| v.value())
            .unwrap_or(0)
    };
    let checkpoint_after = last.max(checkpoint);
    {
        // Every table is opened once per batch, not once per event.
        let mut tables = Tables::open(&txn)?;
        let audit_db = &views.audit_db;
        let messages: usize = chunks.iter().map(Vec::len).sum();
        if messages < AUDIT_THREAD_FROM {
            fold(&mut tables, chunks, checkpoint, None)?;
            let entries = std::mem::take(&mut tables.audit);
            let chunks = [Chunk::Entries(entries), Chunk::Commit];
            audit_file::write(audit_db, durability, checkpoint_after, chunks)?;
            tables.flush()?;
        } else {
            std::thread::scope(|scope| {
                let (sender, receiver) = std::sync::mpsc::channel();
                let write =
                    move || audit_file::write(audit_db, durability, checkpoint_after, receiver);
                let audited = std::thread::Builder::new()
                    // Named, so that it shows apart in `top -H` and profiles.
                    .name("views-audit".into())
                    .spawn_scoped(scope, write)
                    .map_err(storage)?;
                let folded = fold(&mut tables, chunks, checkpoint, Some(&sender));
                // The audit file commits on `Commit` only, so a batch that failed to fold
                // leaves it as it was; it commits while the views' rows reach their B-trees.
                let flushed = folded.map(|()| {
                    let _ = sender.send(Chunk::Commit);
                    drop(sender);
                    tables.flush()
                });
                let audited = audited
                    .join()
                    .unwrap_or_else(|_| Err(storage_problem("the audit thread panicked").into()));
                // The views are not to commit without the audit file.
                let flushed = flushed?;
                audited.and(flushed)
            })?;
        }
    }
    {
        let mut meta = txn.open_table(META).map_err(storage)?;
        meta.insert(CHECKPOINT, checkpoint_after).map_err(storage)?;
    }
    txn.commit().map_err(storage)?;
    // Before the position is published: a reader that sees the new position also sees that
    // its cached token rows are stale.
    let revokes = |m: &Decoded| {
        matches!(
            m.event,
            domain::Event::Org(domain::org::Event::TokenRevoked { .. })
        )
    };
    if chunks.iter().flatten().any(revokes) {
        views
            .last_revocation
            .fetch_max(last, std::sync::atomic::Ordering::Release);
    }
    views.resolve_changes.note(
        chunks
            .iter()
            .flatten()
            .filter(|m| m.seq > checkpoint)
            .map(|m| (m.seq, m.envelope.org.as_str(), &m.event)),
    );
    Ok(Some(checkpoint_after))
}

/// Folds the messages past `checkpoint` into the tables and the running digest; with an
/// `audit` thread, hands their audit entries over to it as it goes.
fn fold(
    tables: &mut Tables<'_>,
    chunks: &[Vec<Decoded>],
    checkpoint: u64,
    audit: Option<&std::sync::mpsc::Sender<Chunk>>,
) -> Result<(), ProjectError> {
    // The running digest over the whole log, folded in stream order (`eventlog::chain`).
    let mut head: (u64, [u8; 32]) =
        read(&tables.chain, HEAD)?.unwrap_or((0, eventlog::chain::GENESIS));
    for message in chunks.iter().flatten() {
        // A message at or below the checkpoint is already in (a redelivered tail).
        if message.seq <= checkpoint {
            continue;
        }
        apply_one(tables, message)?;
        head = (
            message.seq,
            eventlog::chain::next_digest(&head.1, message.seq, &message.hash),
        );
        if let Some(audit) = audit
            && tables.audit.len() >= AUDIT_CHUNK
        {
            // A thread that failed has hung up: its error is the batch's, once joined.
            let _ = audit.send(Chunk::Entries(std::mem::take(&mut tables.audit)));
        }
    }
    if let Some(audit) = audit {
        let _ = audit.send(Chunk::Entries(std::mem::take(&mut tables.audit)));
    }
    write(&mut tables.chain, HEAD, &head)
}

type RowTable<'t> = Table<'t, &'static [u8], &'static [u8]>;

/// A table with the batch's writes held back in key order: reads see them, and they reach
/// redb sorted (faster B-tree inserts than in event order) and once per key per batch.
pub(super) struct Overlay<'t> {
    table: RowTable<'t>,
    pending: BTreeMap<String, Option<Vec<u8>>>,
}

impl<'t> Overlay<'t> {
    fn new(table: RowTable<'t>) -> Self {
        Self {
            table,
            pending: BTreeMap::new(),
        }
    }

    fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, ProjectError> {
        if let Some(pending) = self.pending.get(key) {
            return Ok(pending.clone());
        }
        Ok(self
            .table
            .get(key.as_bytes())
            .map_err(storage)?
            .map(|v| v.value().to_vec()))
    }

    pub(super) fn insert(&mut self, key: impl Into<String>, value: Vec<u8>) {
        self.pending.insert(key.into(), Some(value));
    }

    pub(super) fn remove(&mut self, key: impl Into<String>) {
        self.pending.insert(key.into(), None);
    }

    /// Keys in `start..end`, pending writes included.
    pub(super) fn keys_in(&mut self, start: &str, end: &str) -> Result<Vec<String>, ProjectError> {
        self.flush()?;
        let mut keys = Vec::new();
        for entry in self
            .table
            .range(start.as_bytes()..end.as_bytes())
            .map_err(storage)?
        {
            let (k, _) = entry.map_err(storage)?;
            keys.push(String::from_utf8_lossy(k.value()).into_owned());
        }
        Ok(keys)
    }

    fn flush(&mut self) -> Result<(), ProjectError> {
        for (key, value) in std::mem::take(&mut self.pending) {
            match value {
                Some(value) => {
                    self.table
                        .insert(key.as_bytes(), value.as_slice())
                        .map_err(storage)?;
                }
                None => {
                    self.table.remove(key.as_bytes()).map_err(storage)?;
                }
            }
        }
        Ok(())
    }
}

/// The row tables of one write transaction.
pub(super) struct Tables<'t> {
    pub(super) orgs: Overlay<'t>,
    pub(super) tokens: Overlay<'t>,
    pub(super) models: Overlay<'t>,
    pub(super) credentials: Overlay<'t>,
    pub(super) fingerprints: Overlay<'t>,
    pub(super) commands: Overlay<'t>,
    pub(super) workflows: Overlay<'t>,
    pub(super) deleted_workflows: Overlay<'t>,
    pub(super) refs: Overlay<'t>,
    pub(super) tests: Overlay<'t>,
    pub(super) catalog: Overlay<'t>,
    /// The audit entries, for the audit file.
    pub(super) audit: AuditWrites,
    pub(super) chain: Overlay<'t>,
    pub(super) usage: Overlay<'t>,
    pub(super) truncations: Overlay<'t>,
}

impl<'t> Tables<'t> {
    pub(super) fn open(txn: &'t WriteTransaction) -> Result<Self, ProjectError> {
        Ok(Self {
            orgs: Overlay::new(txn.open_table(ORGS).map_err(storage)?),
            tokens: Overlay::new(txn.open_table(TOKENS).map_err(storage)?),
            models: Overlay::new(txn.open_table(MODELS).map_err(storage)?),
            credentials: Overlay::new(txn.open_table(CREDENTIALS).map_err(storage)?),
            fingerprints: Overlay::new(txn.open_table(FINGERPRINTS).map_err(storage)?),
            commands: Overlay::new(txn.open_table(COMMANDS).map_err(storage)?),
            workflows: Overlay::new(txn.open_table(WORKFLOWS).map_err(storage)?),
            deleted_workflows: Overlay::new(txn.open_table(DELETED_WORKFLOWS).map_err(storage)?),
            refs: Overlay::new(txn.open_table(REFS).map_err(storage)?),
            tests: Overlay::new(txn.open_table(CONNECTION_TESTS).map_err(storage)?),
            catalog: Overlay::new(txn.open_table(CATALOG).map_err(storage)?),
            audit: AuditWrites::default(),
            chain: Overlay::new(txn.open_table(CHAIN).map_err(storage)?),
            usage: Overlay::new(txn.open_table(USAGE).map_err(storage)?),
            truncations: Overlay::new(txn.open_table(TRUNCATIONS).map_err(storage)?),
        })
    }

    fn flush(&mut self) -> Result<(), ProjectError> {
        for table in [
            &mut self.orgs,
            &mut self.tokens,
            &mut self.models,
            &mut self.credentials,
            &mut self.fingerprints,
            &mut self.commands,
            &mut self.workflows,
            &mut self.deleted_workflows,
            &mut self.refs,
            &mut self.tests,
            &mut self.catalog,
            &mut self.chain,
            &mut self.usage,
            &mut self.truncations,
        ] {
            table.flush()?;
        }
        Ok(())
    }
}

pub(super) fn read<T: serde::de::DeserializeOwned>(
    table: &Overlay<'_>,
    key: &str,
) -> Result<Option<T>, ProjectError> {
    match table.get_bytes(key)? {
        Some(bytes) => Ok(Some(decode(&bytes)?)),
        None => Ok(None),
    }
}

pub(super) fn write<T: serde::Serialize>(
    table: &mut Overlay<'_>,
    key: impl Into<String>,
    row: &T,
) -> Result<(), ProjectError> {
    table.insert(key, encode(row));
    Ok(())
}

#[cfg(test)]
mod tests {
    use domain::model;

    use super::*;
    use crate::projector::fixtures::messages;
    use crate::projector::reader::decode_all;

    #[test]
    fn a_batch_applied_twice_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let views = Views::open(&dir.path().join("views.redb")).unwrap();
        let batch = messages();
        assert_eq!(
            apply_batch(&views, &[decode_all(&batch).unwrap()], Durability::None).unwrap(),
            Some(3)
        );
        let once = views.checksum().unwrap();
        // A redelivered tail at or below the checkpoint is skipped, in one transaction.
        assert_eq!(
            apply_batch(
                &views,
                &[decode_all(&batch).unwrap()],
                Durability::Immediate
            )
            .unwrap(),
            Some(3)
        );
        assert_eq!(views.checksum().unwrap(), once);
        let row = views.model("acme", "team-gpt").unwrap().unwrap();
        assert_eq!(row.stream.version, 2);
        assert_eq!(row.model.status, model::Status::Deactivated);
        assert_eq!(row.deactivation.unwrap().seq, 3);
        assert_eq!(views.checkpoint().unwrap(), 3);
    }

    /// One batch handed to the audit writer in chunks writes what many small ones write.
    #[test]
    fn a_batch_in_chunks_writes_what_small_batches_write() {
        let dir = tempfile::tempdir().unwrap();
        let batch = crate::projector::fixtures::many_models(2 * AUDIT_CHUNK as u64 + 7);
        let big = Views::open(&dir.path().join("big.redb")).unwrap();
        apply_batch(&big, &[decode_all(&batch).unwrap()], Durability::None).unwrap();
        let small = Views::open(&dir.path().join("small.redb")).unwrap();
        for messages in batch.chunks(100) {
            apply_batch(&small, &[decode_all(messages).unwrap()], Durability::None).unwrap();
        }
        let last = batch.len() as u64;
        for views in [&big, &small] {
            assert_eq!(views.checkpoint().unwrap(), last);
            assert_eq!(crate::open::checkpoint_of(&views.audit_db).unwrap(), last);
        }
        assert_eq!(big.checksum().unwrap(), small.checksum().unwrap());
    }

    /// A batch that fails to fold, after chunks of it reached the audit writer, leaves the
    /// audit file as it was, as it does the views.
    #[test]
    fn a_failed_batch_commits_nothing_to_the_audit_file() {
        let dir = tempfile::tempdir().unwrap();
        let views = Views::open(&dir.path().join("views.redb")).unwrap();
        let mut batch = decode_all(&crate::projector::fixtures::many_models(
            2 * AUDIT_CHUNK as u64,
        ))
        .unwrap();
        // A deactivation of a model never added, past the first chunks handed over.
        let mut poison = decode_all(&messages()).unwrap().remove(2);
        poison.seq = batch.len() as u64 + 1;
        batch.push(poison);
        let error = apply_batch(&views, &[batch], Durability::Immediate).unwrap_err();
        assert!(matches!(error, ProjectError::Poison { .. }), "{error}");
        assert_eq!(views.checkpoint().unwrap(), 0);
        assert_eq!(crate::open::checkpoint_of(&views.audit_db).unwrap(), 0);
        let txn = views.audit_db.begin_read().unwrap();
        for table in crate::store::AUDIT_TABLES {
            let table = txn.open_table(table).unwrap();
            assert_eq!(table.iter().unwrap().count(), 0, "nothing written");
        }
    }

    #[test]
    fn a_poison_event_names_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let views = Views::open(&dir.path().join("views.redb")).unwrap();
        // Bytes that do not decode.
        let mut batch = messages();
        batch[1].data = vec![1, 2, 3];
        let error = decode_all(&batch).err().unwrap();
        assert!(
            matches!(error, ProjectError::Poison { seq: 2, .. }),
            "{error}"
        );
        // An event that decodes but cannot be folded: a deactivation of a model never added.
        let mut batch = decode_all(&messages()).unwrap();
        batch.remove(1);
        let error = apply_batch(&views, &[batch], Durability::None).unwrap_err();
        assert!(
            matches!(error, ProjectError::Poison { seq: 3, .. }),
            "{error}"
        );
        assert_eq!(
            views.checkpoint().unwrap(),
            0,
            "nothing of the failed batch was kept"
        );
        assert!(views.org("acme").unwrap().is_none());
    }

    #[test]
    fn views_written_with_another_row_layout_are_started_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("views.redb");
        {
            // What a build before layout versions left: rows and a checkpoint, no layout.
            let views = Views::open(&path).unwrap();
            apply_batch(
                &views,
                &[decode_all(&messages()).unwrap()],
                Durability::Immediate,
            )
            .unwrap();
            let txn = views.db.begin_write().unwrap();
            txn.open_table(META).unwrap().remove("layout").unwrap();
            txn.commit().unwrap();
        }
        let views = Views::open(&path).unwrap();
        assert_eq!(views.checkpoint().unwrap(), 0, "replayed from the start");
        assert!(views.models("acme").unwrap().is_empty());
        // A file of this layout is kept as it is.
        apply_batch(
            &views,
            &[decode_all(&messages()).unwrap()],
            Durability::Immediate,
        )
        .unwrap();
        drop(views);
        let views = Views::open(&path).unwrap();
        assert_eq!(views.checkpoint().unwrap(), 3);
    }
}
