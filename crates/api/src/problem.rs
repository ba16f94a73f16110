//! RFC 9457 problem details with a stable `code`: what every refusal looks like, over HTTP
//! (`application/problem+json`) and in the NATS API's replies.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A problem. `code` is stable and names the broken rule (`display_name.empty`,
/// `model.has_dependents`); `detail` says what to do, and never repeats a value from the
/// request. The optional fields belong to particular codes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// `https://modelreg.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    pub detail: String,
    /// Every field problem of a 422, so a form can mark all bad fields in one round trip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// A conflict's winning version (`model.version_mismatch`, `model.conflict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
    /// `model.has_dependents`: how many active workflows still reference the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// `model.has_dependents`: the first of them by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_dependent: Option<String>,
    /// `model.deactivated` (410): when and by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub deactivated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivated_by: Option<String>,
    /// What to do next, where it is not in `detail` already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// `connection_test.failed` and `connection_test.pending` of an add with `test: true`:
    /// the test it ran, with its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_test: Option<Box<crate::ConnectionTest>>,
    /// `command.landed_views_behind`: the log position the command was recorded at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// `credential.in_use`: the active models that still use the credential.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// `credential.retest_failed`: the models whose test with the new secret did not pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<crate::RetestFailure>,
}

/// One field's problem in a 422.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldProblem {
    /// The field's path, e.g. `credential.api_key`.
    pub field: String,
    pub code: String,
    pub detail: String,
}

impl Problem {
    pub fn new(status: u16, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("https://modelreg.dev/problems/{code}"),
            title: reason(status).to_owned(),
            status,
            code: code.to_owned(),
            detail: detail.into(),
            errors: Vec::new(),
            current_version: None,
            count: None,
            first_dependent: None,
            deactivated_at: None,
            deactivated_by: None,
            hint: None,
            connection_test: None,
            position: None,
            models: Vec::new(),
            failures: Vec::new(),
        }
    }
}

/// The reason phrase of the statuses the registry answers with.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
