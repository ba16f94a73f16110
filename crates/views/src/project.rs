//! The projector: folds log messages into the views in batches, one write transaction per
//! batch with the checkpoint inside it. Rebuild is the same fold into a new file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use domain::event::Event;
use domain::model::{self, Status};
use domain::{connection_test, credential, org, workflow};
use eventlog::{Envelope, EventLog, LogError, Stored};
use futures::StreamExt;
use futures::stream::BoxStream;
use redb::{Durability, ReadableTable, Table, WriteTransaction};

use crate::rows::{
    ConnectionTestRow, CredentialRow, Deactivation, ModelRow, Notice, OrgRow, StreamPos, TokenRow,
    WorkflowRow,
};
use crate::store::{
    CHECKPOINT, COMMANDS, CONNECTION_TESTS, CREDENTIALS, FINGERPRINTS, META, MODELS, ORGS, REFS,
    TOKENS, ViewError, Views, WORKFLOWS, decode, encode, key, ref_key, storage,
};

/// The `kind` under which the `commands` view keeps the token a command issued (tokens live
/// in the org's stream, so the aggregate kind would name the org).
pub const TOKEN_ISSUED: &str = "token";

/// Largest batch folded into one write transaction.
const BATCH: usize = 4096;
/// A rebuild's batches: at least this many messages when the reader is ahead.
const REBUILD_BATCH: usize = 16_384;
/// Chunks the reader may hold ready for the writer (live or rebuilding).
const CHUNKS_IN_FLIGHT: usize = 1024;
/// The page cache of a rebuild: it writes each page once or twice and reads few back, and
/// a small cache recycles its buffers rather than asking the kernel for fresh zeroed memory.
const REBUILD_CACHE_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("event log: {0}")]
    Log(String),
    #[error("event at position {seq} cannot be projected: {why}")]
    Poison { seq: u64, why: String },
    /// A write task failed (it panicked): a defect, not the log's trouble, so the projector
    /// stops rather than retry the same batch for ever.
    #[error("a views write task failed: {0}")]
    Task(String),
}

/// Follows the log from the views' checkpoint on until `shutdown` resolves.
///
/// Losing the log (a NATS restart ends the tail's consumer; the client gives up on it) is
/// not fatal: the projector resumes from its checkpoint after a growing pause, and readiness
/// is false meanwhile. On a poison event or a storage error it records why (readiness turns
/// false) and returns the error: a projector that skipped an event would serve wrong answers
/// quietly.
pub async fn run_projector(
    views: Arc<Views>,
    log: Arc<dyn EventLog>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ProjectError> {
    tokio::pin!(shutdown);
    let mut pause = RESUME_FIRST_PAUSE;
    loop {
        let started = tokio::time::Instant::now();
        let error = match follow(&views, Arc::clone(&log), shutdown.as_mut()).await {
            Ok(()) => return Ok(()),
            Err(error @ ProjectError::Log(_)) => error,
            Err(error) => {
                tracing::error!(%error, "projector stopped");
                views.failure.send_replace(Some(error.to_string()));
                return Err(error);
            }
        };
        if started.elapsed() > RESUME_MAX_PAUSE * 4 {
            // It had been following for a while: a fresh loss, not the same one again.
            pause = RESUME_FIRST_PAUSE;
        }
        tracing::warn!(%error, pause_ms = pause.as_millis() as u64, "projector lost the log; resuming from its checkpoint");
        views.interrupted.send_replace(Some(error.to_string()));
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(RESUME_MAX_PAUSE);
    }
}

/// The pause before the first attempt to resume following the log, doubled per attempt.
const RESUME_FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);
/// The longest pause between attempts to resume.
const RESUME_MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

async fn follow(
    views: &Arc<Views>,
    log: Arc<dyn EventLog>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ProjectError> {
    let from = views.checkpoint()? + 1;
    let stream = log
        .tail(from)
        .await
        .map_err(|e| ProjectError::Log(e.to_string()))?;
    // Following again (after an interruption, the log answered).
    views
        .interrupted
        .send_if_modified(|why| why.take().is_some());
    let mut reader = Reader::spawn(stream, None);
    tokio::pin!(shutdown);
    // Views are rebuilt from the log, so a batch need not be fsynced the moment it lands:
    // commits are made durable at most every DURABLE_EVERY (and at shutdown). A crash loses
    // only non-durable commits, whose events are applied again from the durable checkpoint.
    let mut last_durable = tokio::time::Instant::now();
    let mut dirty = false;
    loop {
        let flush_at = last_durable + DURABLE_EVERY;
        let batch = tokio::select! {
            _ = &mut shutdown => {
                // `shutdown` has resolved: whatever happens now, this returns Ok, so the
                // caller never polls it again.
                if dirty && let Err(error) = make_durable(views).await {
                    tracing::error!(%error, "views not made durable at shutdown; the next start re-applies the tail");
                }
                return Ok(());
            }
            _ = tokio::time::sleep_until(flush_at), if dirty => {
                make_durable(views).await?;
                last_durable = tokio::time::Instant::now();
                dirty = false;
                continue;
            }
            batch = reader.next_batch(BATCH) => batch,
        };
        let messages = batch?;
        let durable = last_durable.elapsed() >= DURABLE_EVERY;
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        let views_for_write = Arc::clone(views);
        let last = tokio::task::spawn_blocking(move || {
            apply_batch(&views_for_write, &messages, durability)
        })
        .await
        .map_err(|e| ProjectError::Task(e.to_string()))??;
        if durable {
            last_durable = tokio::time::Instant::now();
        }
        dirty = !durable;
        if let Some(last) = last {
            views.applied.send_replace(last);
        }
    }
}

/// How long projected rows may stay in non-durable commits.
const DURABLE_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// An empty durable commit: makes every earlier commit durable too.
async fn make_durable(views: &Arc<Views>) -> Result<(), ProjectError> {
    let views = Arc::clone(views);
    tokio::task::spawn_blocking(move || {
        let mut txn = views.db.begin_write().map_err(storage)?;
        txn.set_durability(Durability::Immediate);
        txn.commit().map_err(storage)?;
        Ok::<(), ProjectError>(())
    })
    .await
    .map_err(|e| ProjectError::Task(e.to_string()))?
}

/// Replays the whole log into a fresh views file at `path` and returns its checksum.
/// `progress(done, total)` is called as batches land.
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    path: &Path,
    progress: impl Fn(u64, u64),
) -> Result<String, ProjectError> {
    if path.exists() {
        std::fs::remove_file(path).map_err(storage)?;
    }
    let views = Arc::new(Views::open_with_cache(path, REBUILD_CACHE_BYTES)?);
    let target = log
        .last_seq()
        .await
        .map_err(|e| ProjectError::Log(e.to_string()))?;
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
    let txn = views.db.begin_write().map_err(storage)?;
    txn.commit().map_err(storage)?;
    Ok(views.checksum()?)
}

/// Reads the log on a task of its own and decodes as it goes, so that reading, decoding
/// and writing overlap. The log hands over small chunks (about a hundred messages at
/// speed); many wait in the channel, so the writer can gather a large batch and pay a write
/// transaction's fixed cost once per thousands of events.
struct Reader {
    chunks: tokio::sync::mpsc::Receiver<Result<Vec<Decoded>, ProjectError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Reader {
    /// Reads `stream` up to and including position `until` (for ever with `None`).
    fn spawn(stream: BoxStream<'static, Result<Stored, LogError>>, until: Option<u64>) -> Self {
        let (sender, chunks) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
        let task = tokio::spawn(async move {
            let mut ready = stream.ready_chunks(BATCH);
            loop {
                let Some(items) = ready.next().await else {
                    let _ = sender
                        .send(Err(ProjectError::Log("the log's stream ended".into())))
                        .await;
                    return;
                };
                let mut messages = Vec::with_capacity(items.len());
                let mut reached = false;
                for item in items {
                    match item {
                        Ok(stored) if until.is_some_and(|u| stored.seq > u) => {
                            reached = true;
                            break;
                        }
                        Ok(stored) => {
                            reached = until.is_some_and(|u| stored.seq >= u);
                            messages.push(stored);
                        }
                        Err(e) => {
                            let _ = sender.send(Err(ProjectError::Log(e.to_string()))).await;
                            return;
                        }
                    }
                }
                let decoded = decode_all(&messages);
                let failed = decoded.is_err();
                if sender.send(decoded).await.is_err() || failed || reached {
                    return;
                }
            }
        });
        Self { chunks, task }
    }

    /// The next chunk and the chunks already waiting behind it, up to about `max` messages.
    /// Cancel-safe: after the first chunk arrives nothing awaits, so a batch taken from the
    /// channel is always returned.
    /// The chunks stay as the reader made them: joining them would move every message again.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Vec<Decoded>>, ProjectError> {
        let Some(chunk) = self.chunks.recv().await else {
            return Err(ProjectError::Log("the log reader stopped".into()));
        };
        let chunk = chunk?;
        let mut messages = chunk.len();
        let mut batch = vec![chunk];
        while messages < max {
            match self.chunks.try_recv() {
                Ok(Ok(chunk)) => {
                    messages += chunk.len();
                    batch.push(chunk);
                }
                // The projector stops at a bad chunk, so the batch it would close is moot.
                Ok(Err(error)) => return Err(error),
                Err(_) => break,
            }
        }
        Ok(batch)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A log message decoded and hashed, ready to fold into the views.
struct Decoded {
    seq: u64,
    hash: [u8; 32],
    envelope: Envelope,
    event: Event,
}

/// Decodes messages in order; the first that cannot be decoded is a poison event.
fn decode_all(messages: &[Stored]) -> Result<Vec<Decoded>, ProjectError> {
    // Sized up front: collecting `Result`s cannot know the length and would grow the vector
    // (and move every message) several times over.
    let mut decoded = Vec::with_capacity(messages.len());
    for message in messages {
        decoded.push(decode_one(message)?);
    }
    Ok(decoded)
}

fn decode_one(message: &Stored) -> Result<Decoded, ProjectError> {
    let poison = |why: String| ProjectError::Poison {
        seq: message.seq,
        why,
    };
    let mut envelope = Envelope::decode(&message.data).map_err(|e| poison(e.to_string()))?;
    let event = Event::decode(envelope.schema_version, &envelope.payload)
        .map_err(|e| poison(e.to_string()))?;
    // The payload lives on as `event`.
    envelope.payload = Vec::new();
    Ok(Decoded {
        seq: message.seq,
        hash: Envelope::hash_of(&message.data),
        envelope,
        event,
    })
}

/// Applies chunks of decoded messages, in order, in one write transaction; returns the
/// last position applied.
fn apply_batch(
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
    {
        // Every table is opened once per batch, not once per event.
        let mut tables = Tables::open(&txn)?;
        for message in chunks.iter().flatten() {
            // A message at or below the checkpoint is already in (a redelivered tail).
            if message.seq <= checkpoint {
                continue;
            }
            apply_one(&mut tables, message)?;
        }
        tables.flush()?;
    }
    {
        let mut meta = txn.open_table(META).map_err(storage)?;
        meta.insert(CHECKPOINT, last.max(checkpoint))
            .map_err(storage)?;
    }
    txn.commit().map_err(storage)?;
    Ok(Some(last.max(checkpoint)))
}

fn apply_one(t: &mut Tables<'_>, message: &Decoded) -> Result<(), ProjectError> {
    let Decoded {
        envelope, event, ..
    } = message;
    let at = Meta {
        seq: message.seq,
        hash: message.hash,
        version: envelope.aggregate_version,
        recorded_at_ms: envelope.recorded_at_ms,
        actor: &envelope.actor.label,
        command_id: &envelope.command_id,
    };
    let org_id = envelope.org.as_str();
    // Which command created a credential, a connection test or a token, whose ids are drawn
    // afresh by each attempt: a retry finds the original here. (A model's slug is found
    // through its row, and other events create nothing.)
    match event {
        Event::Credential(credential::Event::Created(_))
        | Event::ConnectionTest(connection_test::Event::Requested { .. }) => {
            // `<org>/<command id>/<kind>`, as `key` would make it, in one allocation.
            let command_key = format!("{org_id}/{}/{}", envelope.command_id, envelope.kind);
            write(&mut t.commands, command_key, &envelope.aggregate_id)?;
        }
        Event::Org(org::Event::TokenIssued { token_id, .. }) => {
            let command_key = format!("{org_id}/{}/{TOKEN_ISSUED}", envelope.command_id);
            write(&mut t.commands, command_key, &token_id.as_str())?;
        }
        _ => {}
    }
    match event {
        Event::Org(event) => apply_org(t, org_id, event, &at),
        Event::Credential(event) => apply_credential(t, org_id, event, &at),
        Event::Model(event) => apply_model(t, org_id, &envelope.aggregate_id, event, &at),
        Event::Workflow(event) => apply_workflow(t, org_id, &envelope.aggregate_id, event, &at),
        Event::ConnectionTest(event) => apply_connection_test(t, envelope, event, &at),
    }
}

struct Meta<'a> {
    seq: u64,
    hash: [u8; 32],
    version: u64,
    recorded_at_ms: i64,
    actor: &'a str,
    command_id: &'a str,
}

impl Meta<'_> {
    fn stream(&self) -> StreamPos {
        StreamPos {
            version: self.version,
            last_seq: self.seq,
            last_hash: self.hash,
        }
    }
}

type RowTable<'t> = Table<'t, &'static [u8], &'static [u8]>;

/// A table with the batch's writes held back in key order: reads see them, and they reach
/// redb sorted (faster B-tree inserts than in event order) and once per key per batch.
struct Overlay<'t> {
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

    fn insert(&mut self, key: impl Into<String>, value: Vec<u8>) {
        self.pending.insert(key.into(), Some(value));
    }

    fn remove(&mut self, key: impl Into<String>) {
        self.pending.insert(key.into(), None);
    }

    /// Keys in `start..end`, pending writes included.
    fn keys_in(&mut self, start: &str, end: &str) -> Result<Vec<String>, ProjectError> {
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
struct Tables<'t> {
    orgs: Overlay<'t>,
    tokens: Overlay<'t>,
    models: Overlay<'t>,
    credentials: Overlay<'t>,
    fingerprints: Overlay<'t>,
    commands: Overlay<'t>,
    workflows: Overlay<'t>,
    refs: Overlay<'t>,
    tests: Overlay<'t>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, ProjectError> {
        Ok(Self {
            orgs: Overlay::new(txn.open_table(ORGS).map_err(storage)?),
            tokens: Overlay::new(txn.open_table(TOKENS).map_err(storage)?),
            models: Overlay::new(txn.open_table(MODELS).map_err(storage)?),
            credentials: Overlay::new(txn.open_table(CREDENTIALS).map_err(storage)?),
            fingerprints: Overlay::new(txn.open_table(FINGERPRINTS).map_err(storage)?),
            commands: Overlay::new(txn.open_table(COMMANDS).map_err(storage)?),
            workflows: Overlay::new(txn.open_table(WORKFLOWS).map_err(storage)?),
            refs: Overlay::new(txn.open_table(REFS).map_err(storage)?),
            tests: Overlay::new(txn.open_table(CONNECTION_TESTS).map_err(storage)?),
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
            &mut self.refs,
            &mut self.tests,
        ] {
            table.flush()?;
        }
        Ok(())
    }
}

fn read<T: serde::de::DeserializeOwned>(
    table: &Overlay<'_>,
    key: &str,
) -> Result<Option<T>, ProjectError> {
    match table.get_bytes(key)? {
        Some(bytes) => Ok(Some(decode(&bytes)?)),
        None => Ok(None),
    }
}

fn write<T: serde::Serialize>(
    table: &mut Overlay<'_>,
    key: impl Into<String>,
    row: &T,
) -> Result<(), ProjectError> {
    table.insert(key, encode(row));
    Ok(())
}

fn apply_org(
    t: &mut Tables<'_>,
    org_id: &str,
    event: &org::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    let state: Option<OrgRow> = read(&t.orgs, org_id)?;
    match event {
        org::Event::Created { name } => {
            let row = OrgRow {
                id: org_id.to_owned(),
                name: name.clone(),
                created_at_ms: at.recorded_at_ms,
                tokens: Vec::new(),
                stream: at.stream(),
            };
            write(&mut t.orgs, org_id, &row)
        }
        org::Event::TokenIssued {
            token_id,
            label,
            role,
            hash,
        } => {
            let Some(mut row) = state else {
                return Err(ProjectError::Poison {
                    seq: at.seq,
                    why: "token issued for an unknown org".into(),
                });
            };
            row.tokens.push(token_id.clone());
            row.stream = at.stream();
            write(&mut t.orgs, org_id, &row)?;
            let token = TokenRow {
                token_id: token_id.clone(),
                org: org_id.to_owned(),
                label: label.clone(),
                role: *role,
                hash: *hash,
                issued_at_ms: at.recorded_at_ms,
            };
            write(&mut t.tokens, token_id.as_str(), &token)
        }
    }
}

fn apply_credential(
    t: &mut Tables<'_>,
    org_id: &str,
    event: &credential::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    match event {
        credential::Event::Created(created) => {
            let state = credential::evolve(None, event);
            let Some(credential) = state else {
                return Ok(());
            };
            let row = CredentialRow {
                org: org_id.to_owned(),
                credential,
                sealed: created.sealed.clone(),
                used_by: 0,
                created_at_ms: at.recorded_at_ms,
                created_by: at.actor.to_owned(),
                updated_at_ms: at.recorded_at_ms,
                stream: at.stream(),
            };
            write(&mut t.credentials, key(org_id, created.id.as_str()), &row)?;
            write(
                &mut t.fingerprints,
                key(org_id, &hex::encode(created.fingerprint)),
                &created.id.as_str().to_owned(),
            )
        }
    }
}

fn apply_model(
    t: &mut Tables<'_>,
    org_id: &str,
    slug: &str,
    event: &model::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    let row_key = key(org_id, slug);
    // A model is added once, as the first event of its subject (the log enforces expected
    // sequence 0), so there is nothing before it to read.
    let before: Option<ModelRow> = match event {
        model::Event::Added(_) if at.version == 1 => None,
        _ => read(&t.models, &row_key)?,
    };
    let Some(after) = model::evolve(before.as_ref().map(|r| r.model.clone()), event) else {
        return Err(ProjectError::Poison {
            seq: at.seq,
            why: format!("{event:?} for unknown model {slug}"),
        });
    };
    // Keep the credential's used-by count: active models that reference it.
    let uses = |m: Option<&domain::model::Model>| {
        m.filter(|m| m.status == Status::Active)
            .and_then(|m| m.credential_id.clone())
    };
    let old_use = uses(before.as_ref().map(|r| &r.model));
    let new_use = uses(Some(&after));
    if old_use != new_use {
        for (id, delta) in [(old_use, -1i64), (new_use, 1i64)] {
            let Some(id) = id else { continue };
            let cred_key = key(org_id, id.as_str());
            if let Some(mut row) = read::<CredentialRow>(&t.credentials, &cred_key)? {
                row.used_by = (i64::from(row.used_by) + delta).max(0) as u32;
                write(&mut t.credentials, &cred_key, &row)?;
            }
        }
    }
    let mut row = match before {
        Some(before) => ModelRow {
            model: after,
            changed_by_command: if matches!(event, model::Event::DependentsWarned { .. }) {
                before.changed_by_command.clone()
            } else {
                Some(at.command_id.to_owned())
            },
            updated_at_ms: at.recorded_at_ms,
            updated_by: at.actor.to_owned(),
            stream: at.stream(),
            ..before
        },
        None => ModelRow {
            org: org_id.to_owned(),
            model: after,
            added_by_command: at.command_id.to_owned(),
            changed_by_command: None,
            created_at_ms: at.recorded_at_ms,
            created_by: at.actor.to_owned(),
            updated_at_ms: at.recorded_at_ms,
            updated_by: at.actor.to_owned(),
            stream: at.stream(),
            deactivation: None,
        },
    };
    match event {
        model::Event::Deactivated => {
            row.deactivation = Some(Deactivation {
                at_ms: at.recorded_at_ms,
                by: at.actor.to_owned(),
                seq: at.seq,
                warned: None,
            });
        }
        model::Event::DependentsWarned { workflow_ids, .. } => {
            let Some(deactivation) = row.deactivation.as_mut() else {
                return write(&mut t.models, &row_key, &row);
            };
            deactivation.warned = Some(workflow_ids.clone());
            let notice = Notice {
                model: slug.to_owned(),
                deactivated_at_ms: deactivation.at_ms,
                deactivated_by: deactivation.by.clone(),
            };
            for id in workflow_ids {
                let workflow_key = key(org_id, id);
                if let Some(mut workflow) = read::<WorkflowRow>(&t.workflows, &workflow_key)?
                    && !workflow.notices.iter().any(|n| n.model == slug)
                {
                    workflow.notices.push(notice.clone());
                    write(&mut t.workflows, &workflow_key, &workflow)?;
                }
            }
        }
        model::Event::Reactivated => {
            row.deactivation = None;
            clear_notices(t, org_id, slug)?;
        }
        model::Event::Added(_) | model::Event::Edited(_) => {}
    }
    write(&mut t.models, row_key, &row)
}

/// Drops notices about `model` from the workflows that reference it.
fn clear_notices(t: &mut Tables<'_>, org_id: &str, model: &str) -> Result<(), ProjectError> {
    let ids = referencing_ids(t, org_id, model)?;
    for id in ids {
        let workflow_key = key(org_id, &id);
        if let Some(mut workflow) = read::<WorkflowRow>(&t.workflows, &workflow_key)? {
            workflow.notices.retain(|n| n.model != model);
            write(&mut t.workflows, &workflow_key, &workflow)?;
        }
    }
    Ok(())
}

fn referencing_ids(
    t: &mut Tables<'_>,
    org_id: &str,
    model: &str,
) -> Result<Vec<String>, ProjectError> {
    let start = ref_key(org_id, model, "");
    let end = format!("{org_id}/{model}\u{1}");
    let mut ids = Vec::new();
    for key in t.refs.keys_in(&start, &end)? {
        if let Some((_, id)) = key.split_once('\0') {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

fn apply_connection_test(
    t: &mut Tables<'_>,
    envelope: &Envelope,
    event: &connection_test::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    let row_key = key(&envelope.org, &envelope.aggregate_id);
    let before: Option<ConnectionTestRow> = read(&t.tests, &row_key)?;
    let Some(test) = connection_test::evolve(before.as_ref().map(|r| r.test.clone()), event) else {
        return Err(ProjectError::Poison {
            seq: at.seq,
            why: "a result for an unknown connection test".into(),
        });
    };
    let row = match (before, event) {
        (_, connection_test::Event::Requested { draft, .. }) => {
            let org =
                domain::values::OrgId::parse(&envelope.org).map_err(|e| ProjectError::Poison {
                    seq: at.seq,
                    why: e.to_string(),
                })?;
            ConnectionTestRow {
                org: envelope.org.clone(),
                id: envelope.aggregate_id.clone(),
                digest: draft.digest(&org),
                test,
                requested_at_ms: at.recorded_at_ms,
                requested_by: at.actor.to_owned(),
                completed_at_ms: None,
                stream: at.stream(),
            }
        }
        (Some(before), connection_test::Event::Completed(_)) => ConnectionTestRow {
            test,
            completed_at_ms: Some(at.recorded_at_ms),
            stream: at.stream(),
            ..before
        },
        (None, connection_test::Event::Completed(_)) => {
            return Err(ProjectError::Poison {
                seq: at.seq,
                why: "a result for an unknown connection test".into(),
            });
        }
    };
    write(&mut t.tests, &row_key, &row)
}

fn apply_workflow(
    t: &mut Tables<'_>,
    org_id: &str,
    id: &str,
    event: &workflow::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    let row_key = key(org_id, id);
    let before: Option<WorkflowRow> = read(&t.workflows, &row_key)?;
    if let Some(before) = &before {
        for model in before.workflow.models() {
            t.refs.remove(ref_key(org_id, model, id));
        }
    }
    match event {
        workflow::Event::Saved(saved) => {
            for model in saved.models() {
                t.refs.insert(ref_key(org_id, model, id), Vec::new());
            }
            // A notice stays while the workflow still uses the deactivated model.
            let models = saved.models();
            let notices = before
                .map(|b| b.notices)
                .unwrap_or_default()
                .into_iter()
                .filter(|n| models.contains(&n.model.as_str()))
                .collect();
            let row = WorkflowRow {
                org: org_id.to_owned(),
                id: id.to_owned(),
                workflow: saved.clone(),
                updated_at_ms: at.recorded_at_ms,
                updated_by: at.actor.to_owned(),
                stream: at.stream(),
                notices,
            };
            write(&mut t.workflows, &row_key, &row)
        }
        workflow::Event::Deleted => {
            t.workflows.remove(&row_key);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use domain::model;
    use eventlog::{Actor, ActorKind, EmbeddedLog, SCHEMA_VERSION, Subject};

    use super::*;

    fn envelope(kind: &str, id: &str, version: u64, event: &Event) -> Vec<u8> {
        Envelope {
            schema_version: SCHEMA_VERSION,
            event_id: [version as u8; 16],
            org: "acme".into(),
            kind: kind.into(),
            aggregate_id: id.into(),
            aggregate_version: version,
            recorded_at_ms: 1_700_000_000_000 + version as i64,
            actor: Actor {
                kind: ActorKind::System,
                id: "test".into(),
                label: "test".into(),
            },
            request_id: "r".into(),
            command_id: format!("c{version}-{id}"),
            prev_hash: [0; 32],
            payload: event.encode(),
        }
        .encode()
    }

    /// An org, a model added and then deactivated, as stored messages.
    fn messages() -> Vec<Stored> {
        let samples = domain::event::samples();
        let find = |name: &str| {
            samples
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, e)| e.clone())
                .unwrap()
        };
        vec![
            Stored {
                seq: 1,
                subject: "reg.acme.org.acme".into(),
                data: envelope("org", "acme", 1, &find("org.created")),
            },
            Stored {
                seq: 2,
                subject: "reg.acme.model.team-gpt".into(),
                data: envelope("model", "team-gpt", 1, &find("model.added")),
            },
            Stored {
                seq: 3,
                subject: "reg.acme.model.team-gpt".into(),
                data: envelope(
                    "model",
                    "team-gpt",
                    2,
                    &Event::Model(model::Event::Deactivated),
                ),
            },
        ]
    }

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

    #[test]
    fn only_creations_of_credentials_tests_and_tokens_are_indexed_by_command() {
        let dir = tempfile::tempdir().unwrap();
        let views = Views::open(&dir.path().join("views.redb")).unwrap();
        apply_batch(
            &views,
            &[decode_all(&messages()).unwrap()],
            Durability::None,
        )
        .unwrap();
        // The model is found by the command that added it, through its row.
        let row = views.model("acme", "team-gpt").unwrap().unwrap();
        assert_eq!(row.added_by_command, "c1-team-gpt");
        assert_eq!(
            views
                .command_target("acme", "c1-team-gpt", "model")
                .unwrap(),
            None
        );
        assert_eq!(
            views.command_target("acme", "c1-acme", "org").unwrap(),
            None
        );
        // A token's issue is, under its own kind.
        let issued = domain::event::samples()
            .into_iter()
            .find(|(name, _)| *name == "org.token_issued")
            .map(|(_, event)| event)
            .unwrap();
        let Event::Org(org::Event::TokenIssued { token_id, .. }) = &issued else {
            panic!("not a token issue");
        };
        let message = Stored {
            seq: 5,
            subject: "reg.acme.org.acme".into(),
            data: envelope("org", "acme", 9, &issued),
        };
        apply_batch(&views, &[decode_all(&[message]).unwrap()], Durability::None).unwrap();
        assert_eq!(
            views
                .command_target("acme", "c9-acme", TOKEN_ISSUED)
                .unwrap(),
            Some(token_id.as_str().to_owned())
        );
        // A credential's creation is.
        let created = domain::event::samples()
            .into_iter()
            .find(|(name, _)| *name == "credential.created")
            .map(|(_, event)| event)
            .unwrap();
        let message = Stored {
            seq: 6,
            subject: "reg.acme.credential.cred-1".into(),
            data: envelope("credential", "cred-1", 1, &created),
        };
        apply_batch(&views, &[decode_all(&[message]).unwrap()], Durability::None).unwrap();
        assert_eq!(
            views
                .command_target("acme", "c1-cred-1", "credential")
                .unwrap(),
            Some("cred-1".to_owned())
        );
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_projector_and_a_rebuild_agree() {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn EventLog> =
            Arc::new(EmbeddedLog::open(&dir.path().join("log.redb")).unwrap());
        let mut last_on = std::collections::HashMap::new();
        for message in messages() {
            let mut parts = message.subject.split('.').skip(1);
            let (org, kind, id) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            let subject = Subject::new(org, kind, id).unwrap();
            let expected = last_on.get(&message.subject).copied().unwrap_or(0);
            let appended = log
                .append(
                    &subject,
                    expected,
                    &format!("m{}", message.seq),
                    message.data,
                )
                .await
                .unwrap();
            last_on.insert(message.subject, appended.seq);
        }
        let views = Arc::new(Views::open(&dir.path().join("views.redb")).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let projector = tokio::spawn(run_projector(Arc::clone(&views), Arc::clone(&log), async {
            let _ = stopped.await;
        }));
        views.wait_for(3, Duration::from_secs(10)).await.unwrap();
        let live = views.checksum().unwrap();
        let rebuilt = rebuild(log, &dir.path().join("rebuilt.redb"), |_, _| {})
            .await
            .unwrap();
        assert_eq!(live, rebuilt);
        let _ = stop.send(());
        projector.await.unwrap().unwrap();
    }
}
