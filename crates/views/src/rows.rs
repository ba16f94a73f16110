//! The rows views store, postcard-encoded. Timestamps and actors come from envelopes, never
//! from the clock, so a rebuild writes the same bytes.

use std::collections::BTreeMap;

use domain::catalog::Catalog;
use domain::connection_test::ConnectionTest;
use domain::credential::Credential;
use domain::model::Model;
use domain::org::Role;
use domain::usage::Record;
use domain::values::Costs;
use domain::values::TokenId;
use domain::workflow::Workflow;
use secrets::Sealed;
use serde::{Deserialize, Serialize};

/// Where an aggregate's stream stands: what the next command needs for optimistic
/// concurrency (`last_seq`) and the audit chain (`last_hash`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPos {
    pub version: u64,
    pub last_seq: u64,
    pub last_hash: [u8; 32],
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRow {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub tokens: Vec<TokenId>,
    pub active_admins: Vec<TokenId>,
    pub revoked: Vec<TokenId>,
    /// The org's own default platform model, if it chose one.
    pub default_model: Option<String>,
    /// Platform models the org hides, sorted.
    pub hidden_models: Vec<String>,
    pub stream: StreamPos,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    pub token_id: TokenId,
    pub org: String,
    pub label: String,
    pub role: Role,
    pub hash: [u8; 32],
    pub issued_at_ms: i64,
    pub issued_by: String,
    /// When and by whom it was revoked; a revoked token is refused.
    pub revoked: Option<(i64, String)>,
    /// From when on it is refused, if it expires.
    pub expires_at_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRow {
    pub org: String,
    pub model: Model,
    /// The command that added the model: a retried add finds its model by it.
    pub added_by_command: String,
    /// The command of the last user change since the add (edit, deactivation, reactivation;
    /// not the dependents worker's record), `None` while that is the add itself (one id per
    /// row, not two, for the views' most numerous rows).
    pub changed_by_command: Option<String>,
    pub created_at_ms: i64,
    pub created_by: String,
    pub updated_at_ms: i64,
    pub updated_by: String,
    pub stream: StreamPos,
    /// Set while deactivated: when, by whom, and the log position of the deactivation.
    pub deactivation: Option<Deactivation>,
}

impl ModelRow {
    /// The command that made the model as it is (ignoring the dependents worker's record): a
    /// retried transition whose first attempt landed answers with the model instead of
    /// "already so".
    pub fn last_changed_by(&self) -> &str {
        self.changed_by_command
            .as_deref()
            .unwrap_or(&self.added_by_command)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deactivation {
    pub at_ms: i64,
    pub by: String,
    pub seq: u64,
    /// Filled by the dependents worker: the active workflows it warned.
    pub warned: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRow {
    pub org: String,
    pub id: String,
    pub workflow: Workflow,
    pub updated_at_ms: i64,
    pub updated_by: String,
    pub stream: StreamPos,
    /// Deactivations of referenced models this workflow was warned about, still unresolved.
    pub notices: Vec<Notice>,
}

/// What is kept of a deleted workflow: where its stream stands (a workflow reported again
/// under the id appends after it), its name and the command that deleted it (a retried
/// delete answers as the first did).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedWorkflowRow {
    pub stream: StreamPos,
    pub name: String,
    pub command_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionTestRow {
    pub org: String,
    pub id: String,
    pub test: ConnectionTest,
    /// The draft's digest, which a receipt binds.
    pub digest: [u8; 32],
    pub requested_at_ms: i64,
    pub requested_by: String,
    pub completed_at_ms: Option<i64>,
    pub stream: StreamPos,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub model: String,
    pub deactivated_at_ms: i64,
    pub deactivated_by: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRow {
    pub org: String,
    pub credential: Credential,
    /// Ciphertext of the current version; opening it needs the vault's keyring.
    pub sealed: Sealed,
    /// Active models that use this credential.
    pub used_by: u32,
    pub created_at_ms: i64,
    pub created_by: String,
    pub updated_at_ms: i64,
    pub stream: StreamPos,
    /// Every version, oldest first: when and by whom it was made, and when shredded.
    pub history: Vec<VersionRow>,
    /// The last completed connection test that used this saved credential.
    pub last_test: Option<LastTest>,
    /// The command of the last user change (creation, rename, rotation, deletion; not a
    /// shredding): a retried command that landed answers as the first time.
    pub changed_by_command: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRow {
    pub version: u64,
    pub preview: String,
    /// The secret's fingerprint: a retried create is told from a key reused on another
    /// secret by its first version's.
    pub fingerprint: secrets::Fingerprint,
    pub created_at_ms: i64,
    pub created_by: String,
    pub shredded_at_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastTest {
    /// The outcome class (`ok`, `auth_invalid`, …).
    pub class: String,
    pub completed_at_ms: i64,
    /// The saved model tested, if it was one.
    pub model: Option<String>,
}

/// The platform catalog: its state, where its stream stands, when and by whom each model was
/// retired (and whom the dependents worker warned), and its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRow {
    pub catalog: Catalog,
    pub stream: StreamPos,
    pub retirements: BTreeMap<String, Retirement>,
    /// Every change, oldest first.
    pub history: Vec<CatalogChange>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retirement {
    pub at_ms: i64,
    pub by: String,
    /// The log position of the event that retired the model.
    pub seq: u64,
    pub reason: String,
    /// Filled by the dependents worker: per org, the active workflows it warned.
    pub warned: BTreeMap<String, Vec<String>>,
}

/// One change of the catalog, for its history: the event, who recorded it and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogChange {
    pub seq: u64,
    pub at_ms: i64,
    pub by: String,
    /// The event's name, e.g. `catalog.synced`.
    pub event: String,
    pub summary: String,
}

/// One entry of the audit trail: an event as people read it. Written by the projector from
/// the event and the rows before it, so a rebuild writes the same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// The event's log position; also the entry's place in the trail (and its cursor).
    pub seq: u64,
    pub recorded_at_ms: i64,
    pub kind: String,
    pub aggregate_id: String,
    /// The event's name, e.g. `model.edited`.
    pub action: String,
    /// The action in words, e.g. "connection test failed: auth_invalid".
    pub summary: String,
    pub actor: eventlog::Actor,
    pub request_id: String,
    pub command_id: String,
    /// Empty when the command did not come over HTTP or was recorded before envelope v2.
    pub client_addr: String,
    /// The non-secret fields that changed, in a fixed order.
    pub changes: Vec<Change>,
    /// Other aggregates whose history shows the entry, as `(kind, id)`: the model a
    /// connection test tested, the credentials a model took up or let go.
    pub related: Vec<(String, String)>,
}

/// A field's value before and after an event; `None` where it had none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One usage record with the prices per token its model had at the record's log position:
/// a later price edit does not change what past usage cost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    pub id: String,
    pub record: Record,
    /// The model's costs when the record was recorded; a side without a price is unpriced.
    pub costs: Costs,
    /// The record's log position.
    pub seq: u64,
}
