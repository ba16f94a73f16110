//! The redb files behind the views: tables, point reads, range scans and the checkpoint.
//! The audit trail (`audit`, `audit_by`) lives in a file of its own beside the views file
//! (see `open.rs`), written from a second thread; every other table is in the views file.

use std::time::Duration;

use redb::{Database, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::open::checkpoint_of;
use crate::rows::{
    CatalogRow, ConnectionTestRow, CredentialRow, DeletedWorkflowRow, ModelRow, OrgRow, TokenRow,
    UsageRow, WorkflowRow,
};

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const ORGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("orgs");
pub(crate) const TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tokens");
pub(crate) const MODELS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("models");
pub(crate) const CREDENTIALS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("credentials");
pub(crate) const FINGERPRINTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("fingerprints");
/// `<org>/<command id>/<kind>` → aggregate id: the credential or connection test a command
/// created, so a retried command answers with the original result.
pub(crate) const COMMANDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("commands");
pub(crate) const WORKFLOWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("workflows");
/// `<org>/<workflow id>` → a deleted workflow's stream, name and deleting command: a workflow
/// reported again under its id continues its stream, and a retried delete is recognised.
pub(crate) const DELETED_WORKFLOWS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("deleted_workflows");
pub(crate) const CONNECTION_TESTS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("connection_tests");
/// `<org>/<model>\0<workflow id>` → nothing: which workflows reference a model. `\0` cannot
/// occur in a model reference, so one model's rows are one prefix.
pub(crate) const REFS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("refs");
/// [`CATALOG_KEY`] → the platform catalog's row.
pub(crate) const CATALOG: TableDefinition<&[u8], &[u8]> = TableDefinition::new("catalog");
pub(crate) const CATALOG_KEY: &str = "platform";
/// `<org>/<position, 20 digits>` → a block of the org's audit entries (`crate::block`),
/// keyed by its first entry's position. In the audit file.
pub(crate) const AUDIT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("audit");
/// `<org>/<kind>/<id>/<position, 20 digits>` → the position of the entry's block (8 bytes,
/// big-endian): the entries of one aggregate (its own events and those related to it),
/// newest last. In the audit file.
pub(crate) const AUDIT_BY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("audit_by");
/// `<org>/<time of the call in ms, 20 digits>/<record id>` → the usage record priced as it
/// was recorded: one org's usage in a time range is one key range.
pub(crate) const USAGE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("usage");
/// `<org>/<model>\0<time of the call in ms, 20 digits>/<record id>` → the usage record (no
/// text: workflow, round, names of the cut tool calls): the truncated calls of a model, one
/// key range per model and time range.
pub(crate) const TRUNCATIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("truncations");
/// `head` → the last position folded and the running digest there (`eventlog::chain`).
pub(crate) const CHAIN: TableDefinition<&[u8], &[u8]> = TableDefinition::new("chain");

pub(crate) const CHECKPOINT: &str = "checkpoint";

/// Every table of rows, in the order the checksum takes them; [`AUDIT_TABLES`] are read
/// from the audit file, the others from the views file.
pub(crate) const ROW_TABLES: [TableDefinition<&[u8], &[u8]>; 16] = [
    ORGS,
    TOKENS,
    MODELS,
    CREDENTIALS,
    FINGERPRINTS,
    COMMANDS,
    WORKFLOWS,
    DELETED_WORKFLOWS,
    REFS,
    CONNECTION_TESTS,
    CATALOG,
    AUDIT,
    AUDIT_BY,
    CHAIN,
    USAGE,
    TRUNCATIONS,
];

/// The tables of the audit file.
pub(crate) const AUDIT_TABLES: [TableDefinition<&[u8], &[u8]>; 2] = [AUDIT, AUDIT_BY];

/// Whether `table` lives in the audit file rather than the views file.
pub(crate) fn in_audit_file(table: &TableDefinition<&[u8], &[u8]>) -> bool {
    use redb::TableHandle;
    AUDIT_TABLES.iter().any(|t| t.name() == table.name())
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("view storage error: {what}")]
    Storage {
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("corrupt view row")]
    Corrupt(#[source] postcard::Error),
    #[error("views did not reach position {wanted} within the deadline (at {reached})")]
    Lagging { wanted: u64, reached: u64 },
    #[error("the projector stopped: {0}")]
    Stopped(String),
}

/// A failure of redb (or of a thread the views ran), kept as the source.
pub(crate) fn storage(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ViewError {
    ViewError::Storage {
        what: "redb failed".into(),
        source: Some(e.into()),
    }
}

/// A storage failure with no foreign error behind it.
pub(crate) fn storage_problem(what: impl Into<String>) -> ViewError {
    ViewError::Storage {
        what: what.into(),
        source: None,
    }
}

/// Keys are `<org>/<id>`; `/` never occurs in an org or an id, so `<org>/`..`<org>0` is
/// exactly one org's rows.
pub(crate) fn key(org: &str, id: &str) -> String {
    // Pushed rather than `format!`ed: a fold builds one or two of these per event, and the
    // formatting machinery cost several times the copying.
    let mut key = String::with_capacity(org.len() + 1 + id.len());
    key.push_str(org);
    key.push('/');
    key.push_str(id);
    key
}

pub(crate) fn ref_key(org: &str, model: &str, workflow: &str) -> String {
    format!("{org}/{model}\0{workflow}")
}

/// The audit entry's key: positions zero-padded to 20 digits sort as numbers.
pub(crate) fn audit_key(org: &str, seq: u64) -> String {
    let mut key = String::with_capacity(org.len() + 21);
    key.push_str(org);
    key.push('/');
    push_position(&mut key, seq);
    key
}

/// An aggregate's index key for the entry at `seq`.
pub(crate) fn audit_by_key(org: &str, kind: &str, id: &str, seq: u64) -> String {
    let mut key = String::with_capacity(org.len() + kind.len() + id.len() + 23);
    for part in [org, kind, id] {
        key.push_str(part);
        key.push('/');
    }
    push_position(&mut key, seq);
    key
}

/// Appends `seq` as 20 digits, as `{seq:020}` would (`u64::MAX` has 20): two of these keys
/// are built per audit entry, and the formatting machinery's padding cost more than the
/// digits.
fn push_position(key: &mut String, mut seq: u64) {
    let mut digits = [b'0'; 20];
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (seq % 10) as u8;
        seq /= 10;
    }
    key.extend(digits.iter().map(|&d| char::from(d)));
}

/// A usage record's key: times zero-padded to 20 digits sort as numbers.
pub(crate) fn usage_key(org: &str, called_at_ms: i64, id: &str) -> String {
    format!("{org}/{called_at_ms:020}/{id}")
}

/// A truncated call's key in `truncations`.
pub(crate) fn truncation_key(org: &str, model: &str, called_at_ms: i64, id: &str) -> String {
    format!("{org}/{model}\0{called_at_ms:020}/{id}")
}

/// The key of the running digest in `chain`.
pub(crate) const HEAD: &str = "head";

pub(crate) fn encode<T: Serialize>(row: &T) -> Vec<u8> {
    postcard::to_stdvec(row).unwrap_or_default()
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ViewError> {
    postcard::from_bytes(bytes).map_err(ViewError::Corrupt)
}

/// The views of one process. Reads are direct redb point reads (microseconds); the
/// projector is the only writer.
///
/// Architecture invariant: the audit file is never behind the views file. A batch's audit
/// rows commit first, with the same durability, and the views commit only once they did;
/// entries past the views' checkpoint are never shown, and are not written again when the
/// projector gets there (the audit writer passes over positions its file already has).
pub struct Views {
    /// The audit file. Declared before `db` so that it is closed (and redb's closing commit
    /// made durable) first: the audit file stays ahead.
    pub(crate) audit_db: Database,
    pub(crate) db: Database,
    pub(crate) applied: watch::Sender<u64>,
    pub(crate) failure: watch::Sender<Option<String>>,
    /// Set while the projector waits to resume after losing the log (NATS restarting, say);
    /// readiness is false meanwhile, but commands keep waiting within their timeout.
    pub(crate) interrupted: watch::Sender<Option<String>>,
    /// How often the projector lost the log (an error, or a tail that stalled while the log
    /// moved on) and resumed from its checkpoint.
    pub(crate) resumes: std::sync::atomic::AtomicU64,
    /// The position of the last batch that revoked a token: a token row read at an earlier
    /// position may be stale.
    pub(crate) last_revocation: std::sync::atomic::AtomicU64,
    /// Where each org last changed in a way that can alter a resolve answer.
    pub(crate) resolve_changes: crate::changes::ResolveChanges,
    /// What the live projector wrote since start.
    pub(crate) written: WriteCounters,
}

/// The live projector's writes, counted as they happen and read at a scrape.
#[derive(Default)]
pub(crate) struct WriteCounters {
    batches: std::sync::atomic::AtomicU64,
    events: std::sync::atomic::AtomicU64,
    busy_ns: std::sync::atomic::AtomicU64,
}

impl WriteCounters {
    /// A batch of `events` written in `took`.
    pub(crate) fn record(&self, events: usize, took: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.batches.fetch_add(1, Relaxed);
        self.events
            .fetch_add(u64::try_from(events).unwrap_or(u64::MAX), Relaxed);
        self.busy_ns
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }
}

/// What the live projector wrote: batches (one write transaction per file each), the events
/// in them, and the time spent writing them. `busy` growing nearly as fast as the clock means
/// the projector is the bottleneck of commands (read your writes waits on it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProjectorWrites {
    pub batches: u64,
    pub events: u64,
    pub busy: Duration,
}

impl ProjectorWrites {
    /// What was written between `earlier` and `self`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            batches: self.batches.saturating_sub(earlier.batches),
            events: self.events.saturating_sub(earlier.events),
            busy: self.busy.saturating_sub(earlier.busy),
        }
    }
}

impl Views {
    /// The last log position the views reflect.
    pub fn position(&self) -> u64 {
        *self.applied.borrow()
    }

    /// The last log position the views file holds (0: none).
    pub fn checkpoint(&self) -> Result<u64, ViewError> {
        checkpoint_of(&self.db)
    }

    /// Waits until the views reflect `position`, at most `timeout`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<u64, ViewError> {
        let mut applied = self.applied.subscribe();
        let mut failure = self.failure.subscribe();
        let wait = async {
            loop {
                let reached = *applied.borrow_and_update();
                if reached >= position {
                    return Ok(reached);
                }
                if let Some(why) = failure.borrow_and_update().clone() {
                    return Err(ViewError::Stopped(why));
                }
                tokio::select! {
                    changed = applied.changed() => if changed.is_err() { return Err(ViewError::Stopped("views closed".into())) },
                    _ = failure.changed() => {}
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(result) => result,
            Err(_) => Err(ViewError::Lagging {
                wanted: position,
                reached: self.position(),
            }),
        }
    }

    /// Why the projector stopped, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// Why the projector is waiting to resume following the log, if it is.
    pub fn interrupted(&self) -> Option<String> {
        self.interrupted.borrow().clone()
    }

    /// How often the projector lost the log and resumed from its checkpoint since start.
    pub fn resumes(&self) -> u64 {
        self.resumes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What the live projector wrote since start (a rebuild is not counted).
    pub fn projector_writes(&self) -> ProjectorWrites {
        use std::sync::atomic::Ordering::Relaxed;
        ProjectorWrites {
            batches: self.written.batches.load(Relaxed),
            events: self.written.events.load(Relaxed),
            busy: Duration::from_nanos(self.written.busy_ns.load(Relaxed)),
        }
    }

    fn get<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        key: &str,
    ) -> Result<Option<T>, ViewError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(table).map_err(storage)?;
        match table.get(key.as_bytes()).map_err(storage)? {
            Some(value) => decode(value.value()).map(Some),
            None => Ok(None),
        }
    }

    fn scan_org<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        org: &str,
    ) -> Result<Vec<T>, ViewError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(table).map_err(storage)?;
        let start = format!("{org}/");
        let end = format!("{org}0");
        let mut rows = Vec::new();
        for entry in table
            .range(start.as_bytes()..end.as_bytes())
            .map_err(storage)?
        {
            let (_, value) = entry.map_err(storage)?;
            rows.push(decode(value.value())?);
        }
        Ok(rows)
    }

    /// Up to `limit` rows of `org` whose id sorts after `after` (from the first with none),
    /// in id order: one page read as a range, whatever the org holds.
    fn scan_org_after<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        org: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<T>, ViewError> {
        use std::ops::Bound;
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(table).map_err(storage)?;
        let start = match after {
            Some(id) => Bound::Excluded(key(org, id)),
            None => Bound::Included(format!("{org}/")),
        };
        let end = format!("{org}0");
        let range: (Bound<&[u8]>, Bound<&[u8]>) = (
            start.as_ref().map(String::as_bytes),
            Bound::Excluded(end.as_bytes()),
        );
        let mut rows = Vec::with_capacity(limit.min(1024));
        for entry in table.range::<&[u8]>(range).map_err(storage)?.take(limit) {
            let (_, value) = entry.map_err(storage)?;
            rows.push(decode(value.value())?);
        }
        Ok(rows)
    }

    pub fn org(&self, org: &str) -> Result<Option<OrgRow>, ViewError> {
        self.get(ORGS, org)
    }

    /// Every org's id, in order (the platform's namespace is not an org).
    pub fn org_ids(&self) -> Result<Vec<String>, ViewError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(ORGS).map_err(storage)?;
        let mut ids = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (k, _) = entry.map_err(storage)?;
            ids.push(String::from_utf8_lossy(k.value()).into_owned());
        }
        Ok(ids)
    }

    /// The platform catalog, once seeded.
    pub fn catalog(&self) -> Result<Option<CatalogRow>, ViewError> {
        self.get(CATALOG, CATALOG_KEY)
    }

    pub fn token(&self, token_id: &str) -> Result<Option<TokenRow>, ViewError> {
        self.get(TOKENS, token_id)
    }

    /// The org's tokens, in the order they were issued (revoked ones included).
    pub fn tokens(&self, org: &str) -> Result<Vec<TokenRow>, ViewError> {
        let Some(row) = self.org(org)? else {
            return Ok(Vec::new());
        };
        let mut tokens = Vec::with_capacity(row.tokens.len());
        for id in &row.tokens {
            if let Some(token) = self.token(id.as_str())? {
                tokens.push(token);
            }
        }
        Ok(tokens)
    }

    /// The position of the last revocation these views applied (0: none since start, or
    /// none at all): a cached token row read at an earlier position is to be read again.
    pub fn last_revocation(&self) -> u64 {
        self.last_revocation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The position of `org`'s last change that can alter a resolve answer (its models,
    /// credentials and tokens, or the platform catalog), as far as these views know: at
    /// least the position they started at.
    pub fn resolve_changed_at(&self, org: &str) -> u64 {
        self.resolve_changes.of(org)
    }

    pub fn model(&self, org: &str, slug: &str) -> Result<Option<ModelRow>, ViewError> {
        self.get(MODELS, &key(org, slug))
    }

    /// An org's models in slug order.
    pub fn models(&self, org: &str) -> Result<Vec<ModelRow>, ViewError> {
        self.scan_org(MODELS, org)
    }

    /// Up to `limit` models of `org` after the slug `after`, in slug order.
    pub fn models_after(
        &self,
        org: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ModelRow>, ViewError> {
        self.scan_org_after(MODELS, org, after, limit)
    }

    /// How many custom models `org` has, counted on the keys (no row is decoded).
    pub fn count_models(&self, org: &str) -> Result<u64, ViewError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(MODELS).map_err(storage)?;
        let start = format!("{org}/");
        let end = format!("{org}0");
        let mut count = 0;
        for entry in table
            .range(start.as_bytes()..end.as_bytes())
            .map_err(storage)?
        {
            entry.map_err(storage)?;
            count += 1;
        }
        Ok(count)
    }

    /// A model and the credential it uses, read in one transaction (the resolve path).
    pub fn model_with_credential(
        &self,
        org: &str,
        slug: &str,
    ) -> Result<Option<(ModelRow, Option<CredentialRow>)>, ViewError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let models = txn.open_table(MODELS).map_err(storage)?;
        let Some(model) = models.get(key(org, slug).as_bytes()).map_err(storage)? else {
            return Ok(None);
        };
        let model: ModelRow = decode(model.value())?;
        let credential = match &model.model.credential_id {
            Some(id) => {
                let credentials = txn.open_table(CREDENTIALS).map_err(storage)?;
                let row = credentials
                    .get(key(org, id.as_str()).as_bytes())
                    .map_err(storage)?;
                match row {
                    Some(row) => Some(decode(row.value())?),
                    None => None,
                }
            }
            None => None,
        };
        Ok(Some((model, credential)))
    }

    pub fn credential(&self, org: &str, id: &str) -> Result<Option<CredentialRow>, ViewError> {
        self.get(CREDENTIALS, &key(org, id))
    }

    /// The org's credentials, deleted ones included, in id order.
    pub fn credentials(&self, org: &str) -> Result<Vec<CredentialRow>, ViewError> {
        self.scan_org(CREDENTIALS, org)
    }

    /// Up to `limit` credentials of `org` after the id `after`, in id order.
    pub fn credentials_after(
        &self,
        org: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CredentialRow>, ViewError> {
        self.scan_org_after(CREDENTIALS, org, after, limit)
    }

    /// Every credential of every org (the key health check walks them).
    pub fn all_credentials(&self) -> Result<Vec<CredentialRow>, ViewError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(CREDENTIALS).map_err(storage)?;
        let mut rows = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (_, value) = entry.map_err(storage)?;
            rows.push(decode(value.value())?);
        }
        Ok(rows)
    }

    /// The saved credential whose secret has this fingerprint, if any.
    pub fn credential_by_fingerprint(
        &self,
        org: &str,
        fingerprint: &[u8; 32],
    ) -> Result<Option<CredentialRow>, ViewError> {
        let id: Option<String> = self.get(FINGERPRINTS, &key(org, &hex::encode(fingerprint)))?;
        match id {
            Some(id) => Ok(self
                .credential(org, &id)?
                .filter(|row| !row.credential.deleted)),
            None => Ok(None),
        }
    }

    pub fn connection_test(
        &self,
        org: &str,
        id: &str,
    ) -> Result<Option<ConnectionTestRow>, ViewError> {
        self.get(CONNECTION_TESTS, &key(org, id))
    }

    /// Waits until the views pass `seen` or `timeout` passes (for long polls). The position is
    /// checked as the wait begins, so a change made after the caller read `seen` is not missed.
    pub async fn changed_after(&self, seen: u64, timeout: Duration) {
        let mut applied = self.applied.subscribe();
        let _ = tokio::time::timeout(timeout, applied.wait_for(|position| *position > seen)).await;
    }

    pub fn workflow(&self, org: &str, id: &str) -> Result<Option<WorkflowRow>, ViewError> {
        self.get(WORKFLOWS, &key(org, id))
    }

    /// The workflow deleted under `id`, if the id is free again after a delete.
    pub fn deleted_workflow(
        &self,
        org: &str,
        id: &str,
    ) -> Result<Option<DeletedWorkflowRow>, ViewError> {
        self.get(DELETED_WORKFLOWS, &key(org, id))
    }

    /// An org's workflows in id order.
    pub fn workflows(&self, org: &str) -> Result<Vec<WorkflowRow>, ViewError> {
        self.scan_org(WORKFLOWS, org)
    }

    /// Up to `limit` workflows of `org` after the id `after`, in id order.
    pub fn workflows_after(
        &self,
        org: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkflowRow>, ViewError> {
        self.scan_org_after(WORKFLOWS, org, after, limit)
    }

    /// Workflows (active or not) with a step on `model`, in id order.
    pub fn referencing(&self, org: &str, model: &str) -> Result<Vec<WorkflowRow>, ViewError> {
        self.referencing_after(org, model, None, usize::MAX)
    }

    /// Up to `limit` workflows with a step on `model` whose id sorts after `after`, in id
    /// order.
    pub fn referencing_after(
        &self,
        org: &str,
        model: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkflowRow>, ViewError> {
        use std::ops::Bound;
        let ids = {
            let txn = self.db.begin_read().map_err(storage)?;
            let table = txn.open_table(REFS).map_err(storage)?;
            let start = match after {
                Some(id) => Bound::Excluded(ref_key(org, model, id)),
                None => Bound::Included(ref_key(org, model, "")),
            };
            let end = format!("{org}/{model}\u{1}");
            let range: (Bound<&[u8]>, Bound<&[u8]>) = (
                start.as_ref().map(String::as_bytes),
                Bound::Excluded(end.as_bytes()),
            );
            let mut ids = Vec::new();
            for entry in table.range::<&[u8]>(range).map_err(storage)?.take(limit) {
                let (k, _) = entry.map_err(storage)?;
                if let Some((_, id)) = std::str::from_utf8(k.value())
                    .unwrap_or_default()
                    .split_once('\0')
                {
                    ids.push(id.to_owned());
                }
            }
            ids
        };
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(row) = self.workflow(org, &id)? {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// An org's usage records called in `from_ms..to_ms`, in order of the time of the call.
    pub fn usage(&self, org: &str, from_ms: i64, to_ms: i64) -> Result<Vec<UsageRow>, ViewError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(USAGE).map_err(storage)?;
        let start = format!("{org}/{:020}", from_ms.max(0));
        let end = format!("{org}/{:020}", to_ms.max(0));
        let mut rows = Vec::new();
        for entry in table
            .range(start.as_bytes()..end.as_bytes())
            .map_err(storage)?
        {
            let (_, value) = entry.map_err(storage)?;
            rows.push(decode(value.value())?);
        }
        Ok(rows)
    }

    /// The truncated calls of `model` made in `from_ms..to_ms`, in order of the time of the
    /// call.
    pub fn truncated_calls(
        &self,
        org: &str,
        model: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<domain::usage::Record>, ViewError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TRUNCATIONS).map_err(storage)?;
        let start = format!("{org}/{model}\0{:020}", from_ms.max(0));
        let end = format!("{org}/{model}\0{:020}", to_ms.max(0));
        let mut records = Vec::new();
        for entry in table
            .range(start.as_bytes()..end.as_bytes())
            .map_err(storage)?
        {
            let (_, value) = entry.map_err(storage)?;
            records.push(decode(value.value())?);
        }
        Ok(records)
    }

    /// The id of the aggregate of `kind` that command `command_id` wrote to, if it did.
    pub fn command_target(
        &self,
        org: &str,
        command_id: &str,
        kind: &str,
    ) -> Result<Option<String>, ViewError> {
        self.get(COMMANDS, &key(org, &format!("{command_id}/{kind}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_keys_are_the_org_and_the_id() {
        assert_eq!(key("acme", "team-gpt"), "acme/team-gpt");
        assert_eq!(key("", ""), "/");
    }

    #[test]
    fn audit_keys_pad_positions_to_20_digits() {
        for seq in [0, 7, 1_234_567, u64::MAX] {
            assert_eq!(audit_key("acme", seq), format!("acme/{seq:020}"));
            assert_eq!(
                audit_by_key("acme", "model", "team-gpt", seq),
                format!("acme/model/team-gpt/{seq:020}")
            );
        }
    }
}
