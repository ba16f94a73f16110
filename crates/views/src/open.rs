//! Opening the views' two redb files, the views file and the audit file beside it: their
//! layouts, the order between them, and starting both afresh when either cannot be kept.
//!
//! The audit trail is the views' biggest B-tree workload after the model rows; in a file of
//! its own, the projector writes it from a second thread while the views thread writes the
//! rest. Each file is a redb database with its own META (layout and checkpoint). A crash
//! reverts each to its last durable commit; since a batch's audit commit precedes its views
//! commit, with the same durability, the audit file's checkpoint is never below the views'.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableTable, TableDefinition};
use tokio::sync::watch;

use crate::store::{
    AUDIT_TABLES, CHECKPOINT, META, ROW_TABLES, ViewError, Views, in_audit_file, storage,
    storage_problem,
};

/// The layout of tables and rows a file was written with, under this key in META.
const LAYOUT: &str = "layout";
/// The views file's layout, raised whenever a row gains a field or a table changes meaning:
/// an older file is then started afresh and replayed from the log (rows are postcard, which
/// has no optional trailing fields). 2: model rows carry the command that added them;
/// command rows only for credentials and connection tests. 3: command rows for issued
/// tokens too; model rows carry the command of their last change. 4: token rows say who
/// issued and who revoked them; org rows list active admin and revoked tokens. 5: credential
/// rows carry their name, expiry, versions and last test. 6: the platform catalog's table;
/// org rows carry the org's default and hidden platform models. 7: the audit trail (`audit`,
/// `audit_by`) and the running digest (`chain`). 8: token rows carry their expiry. 9: usage
/// records (`usage`, `truncations`). 10: truncation rows hold their record (rounds, tool
/// calls and workflows affected). 11: the audit trail moved to the audit file. 12: deleted
/// workflows keep their stream (`deleted_workflows`). 13: a credential's versions carry their
/// fingerprint. 14: a credential's last test is one of its current version (none after a rotation).
const LAYOUT_VERSION: u64 = 14;
/// The audit file's layout, raised as [`LAYOUT_VERSION`] is. 1: `audit` and `audit_by`.
/// 2: `audit` holds blocks of entries, `audit_by` the position of each entry's block.
const AUDIT_LAYOUT_VERSION: u64 = 2;

/// The page cache of the serving views: the hot rows stay in memory, and the process's
/// memory stays bounded whatever the views' size (the scale bench's 300 MB budget at 1,000
/// orgs × 100 models).
const SERVING_CACHE_BYTES: usize = 128 << 20;
/// The audit file's page cache when serving: pages of the trail are read rarely, newest
/// first, and written once.
const SERVING_AUDIT_CACHE_BYTES: usize = 32 << 20;

/// The audit file that belongs to the views file at `views_path` (`views.redb` →
/// `views.audit.redb`). Whoever moves or removes a views file moves or removes this one
/// too: the audit file first (one ahead of its views is fine, one behind is not).
pub fn audit_path(views_path: &Path) -> PathBuf {
    views_path.with_extension("audit.redb")
}

impl Views {
    /// Opens or creates the views file at `path`, and its audit file ([`audit_path`]).
    pub fn open(path: &Path) -> Result<Self, ViewError> {
        Self::open_with_cache(path, SERVING_CACHE_BYTES, SERVING_AUDIT_CACHE_BYTES)
    }

    /// Opens or creates the views file at `path` and its audit file, with page caches of
    /// `cache_bytes` and `audit_cache_bytes`.
    pub(crate) fn open_with_cache(
        path: &Path,
        cache_bytes: usize,
        audit_cache_bytes: usize,
    ) -> Result<Self, ViewError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            eventlog::owner_only_dir(parent).map_err(storage)?;
        }
        let audit = audit_path(path);
        let files = [path, audit.as_path()];
        for file in files {
            eventlog::owner_only_file(file).map_err(storage)?;
        }
        let caches = (cache_bytes, audit_cache_bytes);
        let (audit_db, db) = match open_both(path, &audit, caches)? {
            Ok(dbs) => dbs,
            Err(why) => {
                // Views are disposable: start both files afresh and let the projector replay
                // the log into them.
                tracing::warn!(path = %path.display(), why, "rebuilding the views from the log");
                for file in files {
                    std::fs::remove_file(file).map_err(storage)?;
                    eventlog::owner_only_file(file).map_err(storage)?;
                }
                open_both(path, &audit, caches)?.map_err(|why| {
                    storage_problem(format!("fresh views files cannot be kept: {why}"))
                })?
            }
        };
        let views = Self {
            audit_db,
            db,
            applied: watch::Sender::new(0),
            failure: watch::Sender::new(None),
            interrupted: watch::Sender::new(None),
            resumes: std::sync::atomic::AtomicU64::new(0),
            last_revocation: std::sync::atomic::AtomicU64::new(0),
            resolve_changes: crate::changes::ResolveChanges::default(),
            written: crate::store::WriteCounters::default(),
        };
        let checkpoint = views.checkpoint()?;
        views.resolve_changes.start_at(checkpoint);
        views.applied.send_replace(checkpoint);
        Ok(views)
    }

    /// An empty durable commit on each file, the audit file first: makes every earlier
    /// commit durable too, and keeps the audit file ahead.
    pub(crate) fn make_durable(&self) -> Result<(), ViewError> {
        for db in [&self.audit_db, &self.db] {
            let mut txn = db.begin_write().map_err(storage)?;
            txn.set_durability(Durability::Immediate);
            txn.commit().map_err(storage)?;
        }
        Ok(())
    }
}

/// The last position a file's META holds (0: none).
pub(crate) fn checkpoint_of(db: &Database) -> Result<u64, ViewError> {
    let txn = db.begin_read().map_err(storage)?;
    let meta = txn.open_table(META).map_err(storage)?;
    Ok(meta
        .get(CHECKPOINT)
        .map_err(storage)?
        .map(|v| v.value())
        .unwrap_or(0))
}

/// The audit file and the views file, or why they cannot be kept as they are.
type Opened = Result<(Database, Database), &'static str>;

fn open_both(
    path: &Path,
    audit: &Path,
    (cache, audit_cache): (usize, usize),
) -> Result<Opened, ViewError> {
    let views_tables = ROW_TABLES.iter().filter(|t| !in_audit_file(t));
    let Some(db) = open_tables(path, cache, LAYOUT_VERSION, views_tables)? else {
        return Ok(Err("the views have an older layout"));
    };
    let Some(audit_db) = open_tables(
        audit,
        audit_cache,
        AUDIT_LAYOUT_VERSION,
        AUDIT_TABLES.iter(),
    )?
    else {
        return Ok(Err("the audit file has an older layout"));
    };
    let (views_at, audit_at) = (checkpoint_of(&db)?, checkpoint_of(&audit_db)?);
    if audit_at < views_at {
        return Ok(Err("the audit file is behind the views"));
    }
    // Empty views with an audit trail: a views file removed by hand, say. Its trail may come
    // from another log; replaying from the start rewrites it all the same.
    if views_at == 0 && audit_at > 0 {
        return Ok(Err("the views are empty but the audit file is not"));
    }
    Ok(Ok((audit_db, db)))
}

/// Opens the file and its tables; `None` when its layout is not `layout` or a table has
/// another key or value type.
fn open_tables<'a>(
    path: &Path,
    cache_bytes: usize,
    layout: u64,
    tables: impl Iterator<Item = &'a TableDefinition<'static, &'static [u8], &'static [u8]>>,
) -> Result<Option<Database>, ViewError> {
    let db = redb::Builder::new()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => storage_problem(format!(
                "{} is already open in another process; stop it first",
                path.display()
            )),
            other => storage(other),
        })?;
    let txn = db.begin_write().map_err(storage)?;
    {
        let mismatch =
            |e: &redb::TableError| matches!(e, redb::TableError::TableTypeMismatch { .. });
        let mut meta = match txn.open_table(META) {
            Ok(meta) => meta,
            Err(e) if mismatch(&e) => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        let written = meta.get(LAYOUT).map_err(storage)?.map(|v| v.value());
        let checkpoint = meta.get(CHECKPOINT).map_err(storage)?.map(|v| v.value());
        match (written, checkpoint) {
            (Some(written), _) if written == layout => {}
            // A file that holds nothing yet takes this layout.
            (None, None | Some(0)) => {
                meta.insert(LAYOUT, layout).map_err(storage)?;
            }
            _ => return Ok(None),
        }
        drop(meta);
        for table in tables {
            if let Err(e) = txn.open_table(*table) {
                return if mismatch(&e) {
                    Ok(None)
                } else {
                    Err(storage(e))
                };
            }
        }
    }
    txn.commit().map_err(storage)?;
    Ok(Some(db))
}

#[cfg(test)]
mod tests {
    use redb::{Durability, ReadableTableMetadata};

    use super::*;
    use crate::AuditFilter;
    use crate::projector::test_support::{apply, messages};

    #[test]
    fn views_of_an_older_layout_are_started_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("views.redb");
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            let old: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("models");
            txn.open_table(old)
                .unwrap()
                .insert("acme/x", [1u8].as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let views = Views::open(&path).unwrap();
        assert_eq!(views.checkpoint().unwrap(), 0, "replayed from the start");
        assert!(views.models("acme").unwrap().is_empty());
        assert_eq!(audit_path(&path), dir.path().join("views.audit.redb"));
        assert!(audit_path(&path).exists());
    }

    #[test]
    fn an_audit_file_behind_its_views_starts_both_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("views.redb");
        {
            let views = Views::open(&path).unwrap();
            apply(&views, &messages(), Durability::Immediate);
            assert_eq!(checkpoint_of(&views.audit_db).unwrap(), 3);
        }
        std::fs::remove_file(audit_path(&path)).unwrap();
        let views = Views::open(&path).unwrap();
        assert_eq!(views.checkpoint().unwrap(), 0, "replayed from the start");
        assert_eq!(views.position(), 0);
        assert!(views.models("acme").unwrap().is_empty());
        assert_eq!(views.head().unwrap(), None);
        drop(views);

        // Empty views beside a trail (the views file removed by hand): the trail goes too.
        {
            let views = Views::open(&path).unwrap();
            apply(&views, &messages(), Durability::Immediate);
        }
        std::fs::remove_file(&path).unwrap();
        let views = Views::open(&path).unwrap();
        assert_eq!(checkpoint_of(&views.audit_db).unwrap(), 0);
        let txn = views.audit_db.begin_read().unwrap();
        for table in AUDIT_TABLES {
            assert!(
                txn.open_table(table).unwrap().is_empty().unwrap(),
                "an empty trail"
            );
        }
    }

    /// An audit file ahead of its views (a crash between the two commits of a batch) is
    /// kept: what lies past the views' position is neither shown nor summed, nor written a
    /// second time when the views get there.
    #[test]
    fn an_audit_file_ahead_of_its_views_is_kept_and_caught_up() {
        let dir = tempfile::tempdir().unwrap();
        let (ahead, at_two, whole) = (
            dir.path().join("ahead.redb"),
            dir.path().join("two.redb"),
            dir.path().join("whole.redb"),
        );
        let all = messages();
        let (whole_sum, two_sum) = {
            let whole = Views::open(&whole).unwrap();
            apply(&whole, &all, Durability::Immediate);
            let two = Views::open(&at_two).unwrap();
            apply(&two, &all[..2], Durability::Immediate);
            let ahead = Views::open(&ahead).unwrap();
            apply(&ahead, &all[..2], Durability::Immediate);
            (whole.checksum().unwrap(), two.checksum().unwrap())
        };
        // The trail of all three events beside views at the second.
        std::fs::copy(audit_path(&whole), audit_path(&ahead)).unwrap();
        let views = Views::open(&ahead).unwrap();
        assert_eq!(views.checkpoint().unwrap(), 2, "kept");
        assert_eq!(checkpoint_of(&views.audit_db).unwrap(), 3);
        assert_eq!(
            views.checksum().unwrap(),
            two_sum,
            "the third entry not summed"
        );
        let page = views
            .audit("acme", &AuditFilter::default(), None, 10, 1000)
            .unwrap();
        let positions: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
        assert_eq!(positions, [2, 1], "nothing past the views' position");
        let model = AuditFilter {
            aggregate: Some(("model".into(), "team-gpt".into())),
            ..AuditFilter::default()
        };
        let history = views.audit("acme", &model, Some(10), 10, 1000).unwrap();
        assert_eq!(history.entries.len(), 1);
        assert_eq!(views.position_at("acme", i64::MAX).unwrap(), 2);

        // The projector gets there: the same bytes, the same sum as views that never lagged.
        apply(&views, &all, Durability::Immediate);
        assert_eq!(views.checkpoint().unwrap(), 3);
        assert_eq!(views.checksum().unwrap(), whole_sum);
        assert_eq!(views.position_at("acme", i64::MAX).unwrap(), 3);
        drop(views);
        let views = Views::open(&ahead).unwrap();
        assert_eq!(views.checksum().unwrap(), whole_sum, "and after a restart");
    }
}
