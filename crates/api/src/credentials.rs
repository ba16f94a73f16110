//! Credentials: the secret fields a request carries, and saved credentials' metadata (never a
//! secret).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{SecretField, schema};

/// The secret fields of a credential, as entered: `api_key` for every provider but Bedrock
/// (OpenRouter keys start `sk-or-`); Bedrock takes `access_key_id` + `secret_access_key` (+
/// `session_token`), or `bedrock_api_key`.
#[derive(Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretField>,
    /// An IAM access key ID (Bedrock); not secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bedrock_api_key: Option<SecretField>,
}

impl CredentialInput {
    /// A second copy of every field, for a request sent twice (a draft's test, then its add).
    pub fn duplicate(&self) -> Self {
        Self {
            api_key: self.api_key.as_ref().map(SecretField::duplicate),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.as_ref().map(SecretField::duplicate),
            session_token: self.session_token.as_ref().map(SecretField::duplicate),
            bedrock_api_key: self.bedrock_api_key.as_ref().map(SecretField::duplicate),
        }
    }
}

/// `POST /v1/credentials/match`: is this secret already saved? Saves nothing.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchCredential {
    #[schema(value_type = schema::Provider)]
    pub provider: String,
    pub credential: CredentialInput,
}

/// A saved credential as a model shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CredentialSummary {
    #[schema(value_type = schema::CredentialId)]
    pub id: String,
    /// Masked: the last 4 characters at most.
    pub preview: String,
}

/// The answer to a match: the saved credential with exactly this secret, if any ("Reuse saved
/// credentials").
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialMatch {
    pub reuse_available: Option<CredentialSummary>,
}

/// A saved credential, metadata only.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Credential {
    #[schema(value_type = schema::CredentialId)]
    pub id: String,
    #[schema(value_type = schema::Provider)]
    pub provider: String,
    #[schema(value_type = schema::CredentialKind)]
    pub kind: String,
    /// Masked: the last 4 characters at most.
    pub preview: String,
    /// Keyed fingerprint (HMAC-SHA256) of the secret, hex: equal secrets have equal
    /// fingerprints within an org.
    pub fingerprint: String,
    pub version: u64,
    /// Active models that use this credential.
    pub used_by: u32,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub created_by: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}
