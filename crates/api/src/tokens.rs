//! API tokens: issuing one (shown once) for the caller's org, listing and revoking them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{SecretField, schema};

/// `POST /v1/tokens`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueToken {
    /// Who or what the token is for, as people will read it in the audit trail.
    #[schema(max_length = 100)]
    pub label: String,
    /// admin manages; member reads; service (the pipeline runtime) reads, reports workflows
    /// and resolves credentials.
    #[schema(value_type = schema::Role)]
    pub role: String,
    /// When the token stops being accepted (RFC 3339), if it does; it must lie in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// An issued token. `token` is shown to the request that issued it, once; a retry of that
/// request answers `null` there.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct IssuedToken {
    #[schema(value_type = schema::TokenId)]
    pub token_id: String,
    pub label: String,
    #[schema(value_type = schema::Role)]
    pub role: String,
    #[schema(value_type = Option<String>, format = Password)]
    pub token: Option<SecretField>,
    /// When it stops being accepted, if it does.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// An issued token as `GET /v1/tokens` lists it: never its secret.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Token {
    #[schema(value_type = schema::TokenId)]
    pub token_id: String,
    pub label: String,
    #[schema(value_type = schema::Role)]
    pub role: String,
    /// `active`, `revoked`, or `expired` (past `expires_at`: refused with `token.expired`).
    #[schema(value_type = String, pattern = "^(active|revoked|expired)$")]
    pub state: String,
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// The token id (or `system`) that issued it.
    pub issued_by: String,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    /// When it stops being accepted, if it does.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// When it was last used, to the minute, as this registry knows it (its own uses, and
    /// the other replicas' as of their last flush, at most a minute old); never: `null`.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}
