//! Errors named for what the caller can do: fix the input, retry after a conflict, reconfigure
//! a credential, or call an operator; and the one mapping from an error to the problem every
//! transport answers with (HTTP, the NATS API, the workers' logs).

use domain::Invalid;

/// A foreign error kept as the source of ours, so its chain reaches the log.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input breaks one or more rules; the caller fixes it.
    #[error("invalid input: {}", .0.first().map(|i| i.message.as_str()).unwrap_or(""))]
    Invalid(Vec<Invalid>),
    #[error("authentication required: {0}")]
    Unauthorized(String),
    /// The token was valid until `at`; an admin issues a new one.
    #[error("the token expired at {at}")]
    TokenExpired { at: String },
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// Someone else changed the thing first, or it is not in the state the command needs;
    /// the caller re-reads and retries.
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
    /// A stored credential cannot be opened any more: its data key was destroyed (shredded)
    /// or cannot be unwrapped with this master key. The user enters the credential again (or
    /// the operator restores the right master key); retrying changes nothing.
    #[error("credential {credential} needs reconfiguration: {why}")]
    NeedsReconfiguration {
        credential: String,
        why: &'static str,
    },
    /// A credential cannot be deleted while active models use it; the caller moves them to
    /// another credential (or deactivates them) first.
    #[error("{} active models use the credential", .models.len())]
    CredentialInUse { models: Vec<String> },
    /// A rotation's retest failed for some models: nothing was switched.
    #[error("the retest of a rotation failed for {} models", .failures.len())]
    RetestFailed { failures: Vec<api::RetestFailure> },
    /// A credential that exists but cannot be handed out now (expired, deleted); the user
    /// rotates it or moves the model to another one.
    #[error("{message}")]
    CredentialUnusable { code: &'static str, message: String },
    /// The connection test an add ran first (`test: true`) did not pass, or had not
    /// finished within the wait; the problem carries the test.
    #[error("the connection test did not pass")]
    TestNotPassed(Box<api::ConnectionTest>),
    /// The command was recorded in the log at `position`, but this process's views did not
    /// reach it within the read-your-writes timeout: it happened; reading it back here has
    /// to wait. A retry with the same Idempotency-Key answers it without applying it twice.
    #[error("the command landed at position {position}; the views are behind")]
    Landed {
        position: u64,
        #[source]
        source: Option<BoxError>,
    },
    /// The operator has not configured what this needs (the platform's OpenRouter key);
    /// retrying cannot help until they do.
    #[error("not configured: {message}")]
    NotConfigured { code: &'static str, message: String },
    /// A dependency is down or slow; retrying later may work.
    #[error("temporarily unavailable: {what}")]
    Unavailable {
        what: String,
        #[source]
        source: Option<BoxError>,
    },
    /// A defect or corrupt state; an operator must look.
    #[error("internal error: {what}")]
    Internal {
        what: String,
        #[source]
        source: Option<BoxError>,
    },
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

    /// Whether the operator must fix the configuration for this to go away: a master key
    /// that is malformed, or a key file that cannot be read or trusted. Retrying (a restart
    /// policy) cannot fix it, so `modelreg` exits with the configuration error status.
    pub fn is_misconfiguration(&self) -> bool {
        let (Self::Internal { source, .. } | Self::Unavailable { source, .. }) = self else {
            return false;
        };
        source
            .as_deref()
            .and_then(|source| source.downcast_ref::<vault::VaultError>())
            .is_some_and(|error| {
                matches!(
                    error,
                    vault::VaultError::BadMasterKey(_) | vault::VaultError::KeyFile(_)
                )
            })
    }

    pub fn internal(what: impl Into<String>) -> Self {
        Self::Internal {
            what: what.into(),
            source: None,
        }
    }

    /// The problem a caller is answered with. Technical failures are logged here, with their
    /// source chain, and answered without their text: it names files, hosts and internals.
    pub fn to_problem(&self) -> api::Problem {
        use api::Problem;
        match self {
            Self::Invalid(problems) => {
                let first = problems.first();
                let code = first.map_or("body.invalid", |p| p.code);
                let detail = first.map_or_else(
                    || "the request is invalid".to_owned(),
                    |p| p.message.clone(),
                );
                let mut problem = Problem::new(422, code, detail);
                problem.errors = problems
                    .iter()
                    .map(|p| api::FieldProblem {
                        field: p.field.to_owned(),
                        code: p.code.to_owned(),
                        detail: p.message.clone(),
                    })
                    .collect();
                problem
            }
            Self::Unauthorized(detail) => Problem::new(401, "auth.invalid_token", detail),
            Self::TokenExpired { at } => Problem::new(
                401,
                "token.expired",
                format!("the token expired at {at}; ask an org admin for a new one"),
            ),
            Self::Forbidden(detail) => Problem::new(403, "auth.forbidden", detail),
            Self::NotFound { code, message } => Problem::new(404, code, message),
            Self::Conflict {
                code,
                message,
                current_version,
            } => {
                let mut problem = Problem::new(409, code, message);
                problem.current_version = *current_version;
                problem
            }
            Self::HasDependents { count, first } => {
                let mut problem = Problem::new(
                    409,
                    "model.has_dependents",
                    format!(
                        "{count} active workflow(s) still reference this model, first {first:?}; they fail to generate LLM responses until repointed. Repeat with ?confirm=true to deactivate anyway"
                    ),
                );
                problem.count = Some(*count);
                problem.first_dependent = Some(first.clone());
                problem
            }
            Self::Gone {
                code,
                message,
                at,
                by,
            } => {
                let mut problem = Problem::new(410, code, message);
                problem.deactivated_at = Some(at.clone());
                problem.deactivated_by = Some(by.clone());
                problem.hint = Some("repoint the workflow to an active model".into());
                problem
            }
            Self::NeedsReconfiguration { credential, why } => {
                tracing::warn!(%credential, why, "a credential cannot be opened");
                let mut problem = Problem::new(
                    409,
                    "credential.needs_reconfiguration",
                    format!(
                        "credential {credential} cannot be opened ({why}); enter it again (edit the model with a new credential), or ask the operator to check the master key"
                    ),
                );
                problem.hint = Some("enter the credential again".into());
                problem
            }
            Self::CredentialInUse { models } => {
                let mut problem = Problem::new(
                    409,
                    "credential.in_use",
                    format!(
                        "{} active model(s) use this credential; move them to another credential (PATCH /v1/models/{{slug}} with credential_id) or deactivate them, then delete it",
                        models.len()
                    ),
                );
                problem.models = models.clone();
                problem
            }
            Self::RetestFailed { failures } => {
                let mut problem = Problem::new(
                    409,
                    "credential.retest_failed",
                    format!(
                        "not rotated: the new secret failed the connection test of {} model(s); no model was switched. See failures for each model's outcome and hint",
                        failures.len()
                    ),
                );
                problem.failures = failures.clone();
                problem.hint =
                    Some("fix the new secret (or the failing models) and rotate again".into());
                problem
            }
            Self::CredentialUnusable { code, message } => {
                let mut problem = Problem::new(409, code, message.clone());
                problem.hint = Some(
                    "rotate the credential (POST /v1/credentials/{id}/rotation), or move the model to another credential".into(),
                );
                problem
            }
            Self::TestNotPassed(test) => {
                let mut problem = match &test.result {
                    Some(result) => {
                        let mut problem = Problem::new(
                            422,
                            "connection_test.failed",
                            format!(
                                "not added: the connection test did not pass ({}); fix what it reports and add again",
                                result.class
                            ),
                        );
                        problem.hint = Some(result.hint.clone());
                        problem
                    }
                    None => Problem::new(
                        409,
                        "connection_test.pending",
                        format!(
                            "not added: the connection test {} is still running; wait for it (GET /v1/connection-tests/{{id}}?wait=30), then add with its id as connection_test_id",
                            test.id
                        ),
                    ),
                };
                problem.connection_test = Some(test.clone());
                problem
            }
            Self::NotConfigured { code, message } => {
                let mut problem = Problem::new(503, code, message.clone());
                problem.hint = Some("ask the operator; retrying will not help until then".into());
                problem
            }
            Self::Landed { position, .. } => {
                tracing::warn!(error = %chain(self), "a command landed, the views lag");
                let mut problem = Problem::new(
                    503,
                    "command.landed_views_behind",
                    format!(
                        "the command was recorded (log position {position}), but this server's views have not caught up with it yet; read it back shortly, or retry with the same Idempotency-Key, which answers it without applying it twice"
                    ),
                );
                problem.position = Some(*position);
                problem
            }
            Self::Unavailable { .. } => {
                tracing::warn!(error = %chain(self), "unavailable");
                Problem::new(
                    503,
                    "service.unavailable",
                    "a dependency is unavailable; retry shortly (a command may still have \
                     landed: retry it with the same Idempotency-Key to apply it once)",
                )
            }
            Self::Internal { .. } => {
                tracing::error!(error = %chain(self), "internal error");
                Problem::new(
                    500,
                    "internal",
                    "an internal error occurred; it has been logged",
                )
            }
        }
    }
}

/// An error and its sources, `outer: inner: innermost`, for a log line.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<Invalid> for AppError {
    fn from(invalid: Invalid) -> Self {
        Self::invalid(invalid)
    }
}

impl From<views::ViewError> for AppError {
    fn from(error: views::ViewError) -> Self {
        match error {
            views::ViewError::Lagging { .. } => Self::Unavailable {
                what: "the views are behind the log".into(),
                source: Some(Box::new(error)),
            },
            other => Self::Internal {
                what: "the views failed".into(),
                source: Some(Box::new(other)),
            },
        }
    }
}

impl From<eventlog::LogError> for AppError {
    fn from(error: eventlog::LogError) -> Self {
        Self::Unavailable {
            what: "the event log failed".into(),
            source: Some(Box::new(error)),
        }
    }
}

impl From<vault::VaultError> for AppError {
    fn from(error: vault::VaultError) -> Self {
        match error {
            vault::VaultError::Keyring(_) => Self::Unavailable {
                what: "the keyring failed".into(),
                source: Some(Box::new(error)),
            },
            vault::VaultError::BadMasterKey(_) | vault::VaultError::KeyFile(_) => Self::Internal {
                what: "the master key cannot be used".into(),
                source: Some(Box::new(error)),
            },
            other => Self::Internal {
                what: "the vault failed".into(),
                source: Some(Box::new(other)),
            },
        }
    }
}

/// A vault error while opening `credential`: a destroyed or unreadable data key is a state
/// the user can fix, not a defect.
pub(crate) fn opening(credential: &str, error: vault::VaultError) -> AppError {
    match error {
        vault::VaultError::KeyDestroyed => AppError::NeedsReconfiguration {
            credential: credential.to_owned(),
            why: "its data key was destroyed",
        },
        vault::VaultError::KeyUnwrap => AppError::NeedsReconfiguration {
            credential: credential.to_owned(),
            why: "its data key cannot be unwrapped with the configured master key",
        },
        vault::VaultError::Integrity => AppError::NeedsReconfiguration {
            credential: credential.to_owned(),
            why: "its sealed secret does not authenticate",
        },
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn technical_failures_answer_without_their_text() {
        let error = AppError::Internal {
            what: "redb at /srv/secret-path failed".into(),
            source: None,
        };
        let problem = error.to_problem();
        assert_eq!((problem.status, problem.code.as_str()), (500, "internal"));
        assert!(
            !problem.detail.contains("secret-path"),
            "{}",
            problem.detail
        );
    }

    #[test]
    fn an_unopenable_credential_is_a_named_state_not_a_500() {
        let problem = opening("cred_1", vault::VaultError::KeyDestroyed).to_problem();
        assert_eq!(
            (problem.status, problem.code.as_str()),
            (409, "credential.needs_reconfiguration")
        );
        assert!(problem.detail.contains("cred_1"), "{}", problem.detail);
        let problem = opening("cred_1", vault::VaultError::KeyUnwrap).to_problem();
        assert_eq!(problem.code, "credential.needs_reconfiguration");
    }

    #[test]
    fn sources_reach_the_log_line() {
        let inner = std::io::Error::other("disk full");
        let error = AppError::Unavailable {
            what: "the event log failed".into(),
            source: Some(Box::new(inner)),
        };
        assert_eq!(
            chain(&error),
            "temporarily unavailable: the event log failed: disk full"
        );
    }
}
