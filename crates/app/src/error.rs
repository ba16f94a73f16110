//! Errors named for what the caller can do: fix the input, retry after a conflict, or call
//! an operator.

use domain::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input breaks one or more rules; the caller fixes it.
    #[error("invalid input: {}", .0.first().map(|i| i.message.as_str()).unwrap_or(""))]
    Invalid(Vec<Invalid>),
    #[error("authentication required: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// Someone else changed the thing first; the caller re-reads and retries.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        current_version: Option<u64>,
    },
    /// Deactivating would break active workflows; the caller confirms or repoints first.
    #[error("{count} active workflows reference the model")]
    HasDependents { count: usize, first: String },
    /// The thing existed and is gone (a deactivated model).
    #[error("{message}")]
    Gone {
        code: &'static str,
        message: String,
        at: String,
        by: String,
    },
    /// A dependency is down or slow; retrying later may work.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A defect or corrupt state; an operator must look.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// A retried command whose first attempt was a different request: the client reused an
    /// `Idempotency-Key`.
    pub fn idempotency_key_reused() -> Self {
        Self::invalid(Invalid::new(
            "idempotency_key",
            "idempotency_key.reused",
            "this Idempotency-Key was used for a different request; send a new key",
        ))
    }

    pub fn invalid(invalid: Invalid) -> Self {
        Self::Invalid(vec![invalid])
    }
}

impl From<Invalid> for AppError {
    fn from(invalid: Invalid) -> Self {
        Self::invalid(invalid)
    }
}

impl From<views::ViewError> for AppError {
    fn from(error: views::ViewError) -> Self {
        match error {
            views::ViewError::Lagging { .. } => Self::Unavailable(error.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<eventlog::LogError> for AppError {
    fn from(error: eventlog::LogError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<vault::VaultError> for AppError {
    fn from(error: vault::VaultError) -> Self {
        Self::Internal(format!("vault: {error}"))
    }
}
