//! The audit trail: who changed what, when, from where; a model's or a credential's history;
//! and the running digest over the whole log.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `GET /v1/audit`: every filter given must match.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries of aggregates of this kind: `org` (tokens are the org's), `credential`,
    /// `model`, `workflow`, `connection_test`; with `id`, also `token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// With `kind`: one aggregate's history, by its id (a model's slug, a credential's id,
    /// a token's id, …), including the events related to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The actor: a token id, `system`, a worker's name, or a token's label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// An action (`model.edited`), or every action of a kind (`model.`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Recorded at or after this RFC 3339 time.
    #[param(format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Recorded at or before this RFC 3339 time.
    #[param(format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Entries per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `GET /v1/models/{slug}/history` and `GET /v1/credentials/{id}/history`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// `next_cursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Entries per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A page of the trail, newest first.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; `null` at the start of the trail. A
    /// cursor is a place in the log, not an offset: entries that land meanwhile never shift
    /// a page. A page may be short (filters are applied to a bounded number of entries per
    /// request) and still have a next one.
    pub next_cursor: Option<String>,
}

/// One event as people read it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// The event's position in the log.
    pub at_position: u64,
    #[schema(format = DateTime)]
    pub at: String,
    /// The event's name, e.g. `model.edited`.
    pub action: String,
    /// The action in words, e.g. "connection test failed: auth_invalid".
    pub summary: String,
    pub aggregate: AuditAggregate,
    pub actor: AuditActor,
    pub request_id: String,
    pub command_id: String,
    /// The client's address as the server saw it; `null` off HTTP (the system, a worker)
    /// and for events recorded before it was kept.
    pub client_address: Option<String>,
    /// The non-secret fields that changed: for an edit only those, for a creation every
    /// field set. A credential shows its preview and fingerprint, never a secret.
    pub changes: Vec<AuditChange>,
    /// Other aggregates whose history shows this entry.
    pub related: Vec<AuditAggregate>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditAggregate {
    pub kind: String,
    pub id: String,
}

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditActor {
    /// `token`, `system` or `worker`.
    #[schema(pattern = "^(token|system|worker)$")]
    pub kind: String,
    /// A token id, `system`, or the worker's name.
    pub id: String,
    /// The token's label (e.g. "bootstrap admin"), or what the system or worker did.
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The running digest over the whole log at the server's views position: record it
/// somewhere safe; `modelreg audit verify --expect <expect>` later proves that the log up
/// to there is unchanged and was not cut short.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditHead {
    /// The last position folded into the digest.
    pub head_position: u64,
    /// SHA-256 running digest, hex.
    pub digest: String,
    /// `POSITION:DIGEST`, as `verify --expect` takes it.
    pub expect: String,
}

/// `GET /v1/credentials`: the list as of a moment, or the current one paged with `limit`
/// and `cursor` (in id order; not with `as_of`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CredentialsQuery {
    /// A log position (e.g. `42`) or an RFC 3339 time (e.g. `2026-01-31T12:00:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// How many credentials one page holds (1 to 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(max_length = 128)]
    pub cursor: Option<String>,
}

/// `?as_of=`: the answer as it was at a log position, or at a moment (the org's last event
/// recorded at or before it), from a replay of the log up to there.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AsOfQuery {
    /// A log position (e.g. `42`) or an RFC 3339 time (e.g. `2026-01-31T12:00:00Z`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
}
