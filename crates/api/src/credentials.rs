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
    /// `active`, `expired`, `needs_reconfiguration` (its secret cannot be opened: enter it
    /// again, or the operator restores the master key) or `deleted`.
    #[serde(default = "active")]
    #[schema(value_type = schema::CredentialState)]
    pub state: String,
}

fn active() -> String {
    "active".to_owned()
}

/// `POST /v1/credentials`: a credential saved as a resource, for models to reference by id.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    /// What people call it, e.g. "Prod OpenAI".
    pub name: String,
    #[schema(value_type = schema::Provider)]
    pub provider: String,
    pub credential: CredentialInput,
    /// When the secret stops working (RFC 3339), if it does. A Bedrock short-term API key
    /// expires within 12 hours whatever is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// `PATCH /v1/credentials/{id}`: rename.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameCredential {
    pub name: String,
}

/// `POST /v1/credentials/{id}/rotation`: a new secret, which becomes a new version used by
/// every model of the credential at once.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateCredential {
    pub credential: CredentialInput,
    /// The new secret's expiry (RFC 3339), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Test the new secret with every active model that uses the credential first (through
    /// the connection-test worker, concurrently), and switch only if every test passes.
    #[serde(default)]
    pub retest: bool,
}

/// The answer to a rotation: the credential at its new version, and the tests a retest ran.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Rotation {
    pub credential: Credential,
    pub tests: Vec<crate::ConnectionTest>,
}

/// A model whose retest with the new secret did not pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetestFailure {
    #[schema(value_type = schema::Slug)]
    pub model: String,
    /// The test's outcome class, or `not_completed`.
    pub class: String,
    pub hint: String,
}

/// One version of a credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CredentialVersion {
    pub version: u64,
    /// Masked: the last 4 characters at most.
    pub preview: String,
    /// `current`, `retired` (no model uses it; its key awaits shredding) or `shredded` (its
    /// data key is destroyed: the secret is unrecoverable).
    #[schema(value_type = String, pattern = "^(current|retired|shredded)$")]
    pub state: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub created_by: String,
    #[schema(format = DateTime)]
    pub shredded_at: Option<String>,
}

/// The last connection test that used a saved credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CredentialTest {
    pub class: String,
    pub passed: bool,
    #[schema(format = DateTime)]
    pub completed_at: String,
    #[schema(value_type = Option<schema::Slug>)]
    pub model: Option<String>,
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
    /// Its name; a credential entered with a model and never named has none.
    #[serde(default)]
    pub name: Option<String>,
    /// `active`, `expired`, `needs_reconfiguration` or `deleted`.
    #[serde(default = "active")]
    #[schema(value_type = schema::CredentialState)]
    pub state: String,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Expires within 7 days.
    #[serde(default)]
    pub expiring_soon: bool,
    /// The models that reference it (active and deactivated), by slug.
    #[serde(default)]
    #[schema(value_type = Vec<schema::Slug>)]
    pub models: Vec<String>,
    #[serde(default)]
    pub last_test: Option<CredentialTest>,
    /// Every version, oldest first.
    #[serde(default)]
    pub versions: Vec<CredentialVersion>,
}
