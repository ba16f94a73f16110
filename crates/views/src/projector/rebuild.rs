//! Rebuild: the whole log replayed into a fresh views file, in large batches.

use std::path::Path;
use std::sync::Arc;

use eventlog::EventLog;
use redb::Durability;

use super::ProjectError;
use super::batch::apply_batch;
use super::reader::Reader;
use crate::store::{Views, storage};

/// A rebuild's batches: at least this many messages when the reader is ahead.
const REBUILD_BATCH: usize = 16_384;
/// The page cache of a rebuild, for each of its two files: it writes each page once or
/// twice and reads few back, and a small cache recycles its buffers rather than asking the
/// kernel for fresh zeroed memory.
const REBUILD_CACHE_BYTES: usize = 64 << 20;

/// Replays the whole log into a fresh views file at `path` (and its audit file,
/// [`crate::audit_path`]) and returns its checksum.
/// `progress(done, total)` is called as batches land.
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    path: &Path,
    progress: impl Fn(u64, u64),
) -> Result<String, ProjectError> {
    let views = replay_into(log, path, None, progress).await?;
    Ok(views.checksum()?)
}

/// Replays the log up to and including position `until` into a fresh views file at `path`
/// and returns its checksum: the views as they were at that position.
pub async fn rebuild_until(
    log: Arc<dyn EventLog>,
    path: &Path,
    until: u64,
    progress: impl Fn(u64, u64),
) -> Result<String, ProjectError> {
    let views = replay_into(log, path, Some(until), progress).await?;
    Ok(views.checksum()?)
}

/// The views as they were at position `until`, replayed into a fresh file at `path` and
/// open for reading (time travel; the live views are not touched).
pub async fn replay(
    log: Arc<dyn EventLog>,
    path: &Path,
    until: u64,
) -> Result<Arc<Views>, ProjectError> {
    replay_into(log, path, Some(until), |_, _| {}).await
}

async fn replay_into(
    log: Arc<dyn EventLog>,
    path: &Path,
    until: Option<u64>,
    progress: impl Fn(u64, u64),
) -> Result<Arc<Views>, ProjectError> {
    // The audit file first: one left ahead of its views is fine, one behind is not.
    for file in [crate::audit_path(path).as_path(), path] {
        if file.exists() {
            std::fs::remove_file(file).map_err(storage)?;
        }
    }
    let views = Arc::new(Views::open_with_cache(
        path,
        REBUILD_CACHE_BYTES,
        REBUILD_CACHE_BYTES,
    )?);
    let last = log
        .last_seq()
        .await
        .map_err(|e| ProjectError::Log(e.to_string()))?;
    let target = until.map_or(last, |until| until.min(last));
    progress(0, target);
    if target > 0 {
        let stream = log
            .tail(1)
            .await
            .map_err(|e| ProjectError::Log(e.to_string()))?;
        let mut reader = Reader::spawn(stream, Some(target));
        let mut done = 0;
        let mut batches_applied = 0u64;
        while done < target {
            let messages = reader.next_batch(REBUILD_BATCH).await?;
            let views_for_write = Arc::clone(&views);
            // A half-built file is thrown away on failure, so most batches need no fsync.
            // Every eighth is durable all the same: redb frees pages only on durable commits,
            // and without them the file grows several times over.
            batches_applied += 1;
            let durability = if batches_applied.is_multiple_of(8) {
                Durability::Immediate
            } else {
                Durability::None
            };
            let last = tokio::task::spawn_blocking(move || {
                apply_batch(&views_for_write, &messages, durability)
            })
            .await
            .map_err(|e| ProjectError::Task(e.to_string()))??;
            if let Some(last) = last {
                done = last;
                progress(done, target);
            }
        }
    }
    views.make_durable()?;
    if let Some(last) = views.checkpoint().ok().filter(|c| *c > 0) {
        views.applied.send_replace(last);
    }
    Ok(views)
}
