//! The result of a connection test: a class the caller can act on, a one-line fix hint, and
//! the provider's own (redacted) status and message kept alongside.

use std::fmt;
use std::time::Duration;

use crate::redact::Redactor;

/// What a connection test found, named for what the user can do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutcomeClass {
    /// The provider accepted the credential and the model and answered (a reply cut short by
    /// the tiny output budget counts: reasoning models spend it before writing anything).
    Ok,
    AuthInvalid,
    PermissionDenied,
    ModelNotFound,
    /// DNS, TLS or TCP failed: nothing answered at the endpoint.
    EndpointUnreachable,
    Timeout,
    RateLimited,
    QuotaExceeded,
    /// Something answered, but not in the provider's shape (an HTML page, a proxy, a redirect,
    /// a body over the size cap).
    BadResponse,
    UnsupportedParameter,
    /// The provider answered with a server error or said it is overloaded.
    ProviderUnavailable,
    /// The outbound-safety policy refused the destination before any connection.
    DestinationBlocked,
}

impl OutcomeClass {
    pub const ALL: [OutcomeClass; 12] = [
        Self::Ok,
        Self::AuthInvalid,
        Self::PermissionDenied,
        Self::ModelNotFound,
        Self::EndpointUnreachable,
        Self::Timeout,
        Self::RateLimited,
        Self::QuotaExceeded,
        Self::BadResponse,
        Self::UnsupportedParameter,
        Self::ProviderUnavailable,
        Self::DestinationBlocked,
    ];

    /// The stable snake_case code stored in events and shown by the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::AuthInvalid => "auth_invalid",
            Self::PermissionDenied => "permission_denied",
            Self::ModelNotFound => "model_not_found",
            Self::EndpointUnreachable => "endpoint_unreachable",
            Self::Timeout => "timeout",
            Self::RateLimited => "rate_limited",
            Self::QuotaExceeded => "quota_exceeded",
            Self::BadResponse => "bad_response",
            Self::UnsupportedParameter => "unsupported_parameter",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::DestinationBlocked => "destination_blocked",
        }
    }

    /// The inverse of [`OutcomeClass::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.code() == code)
    }

    /// One line telling the user how to fix it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Ok => "The provider accepted the credential and the model; you can save it.",
            Self::AuthInvalid => {
                "The provider rejected the credential: copy the whole key again from the provider's console, or create a new one."
            }
            Self::PermissionDenied => {
                "The credential is valid but may not use this model: grant access to the model (Bedrock model access, IAM policy, org or project settings) or use another key."
            }
            Self::ModelNotFound => {
                "The provider does not know this model id (or it is not served to this account): check the provider model id, its spelling and any required prefix or inference profile."
            }
            Self::EndpointUnreachable => {
                "Nothing answered at the endpoint (DNS, TLS or connection refused): check the URL or region, and that this server can reach it."
            }
            Self::Timeout => {
                "The provider did not answer in time: retry, and if it persists check the endpoint and the provider's status page."
            }
            Self::RateLimited => {
                "The provider is rate limiting this key: wait for the retry-after time and test again."
            }
            Self::QuotaExceeded => {
                "The account has no quota or credit left: add credit or raise the quota in the provider's billing settings."
            }
            Self::BadResponse => {
                "Something answered that is not this provider's API (a proxy, a web page or a redirect): check the base URL or endpoint URL."
            }
            Self::UnsupportedParameter => {
                "The model rejected the minimal test request: check that it is a chat model on this provider, and read the provider's message for the parameter."
            }
            Self::ProviderUnavailable => {
                "The provider failed on its side or is overloaded: retry in a minute, or check its status page."
            }
            Self::DestinationBlocked => {
                "The URL points to a private, loopback, link-local or cloud-metadata address, which this server refuses: use a public address; for a server on this machine the operator sets MODELREG_PROVIDERS_ALLOW_LOOPBACK=true, for one on a private network MODELREG_PROVIDERS_ALLOW_PRIVATE=true (link-local and metadata addresses stay refused)."
            }
        }
    }
}

impl fmt::Display for OutcomeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What one connection test found. The upstream message is redacted when the outcome is made:
/// it never holds the credential under test nor anything shaped like a key or token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    class: OutcomeClass,
    retry_after: Option<Duration>,
    upstream_status: Option<u16>,
    upstream_message: Option<String>,
    latency: Duration,
}

impl Outcome {
    pub(crate) fn new(
        class: OutcomeClass,
        retry_after: Option<Duration>,
        upstream_status: Option<u16>,
        upstream_message: Option<&str>,
        latency: Duration,
        redactor: &Redactor<'_>,
    ) -> Self {
        Self {
            class,
            retry_after,
            upstream_status,
            upstream_message: upstream_message
                .map(|message| redactor.redact(message))
                .filter(|message| !message.is_empty()),
            latency,
        }
    }

    pub fn class(&self) -> OutcomeClass {
        self.class
    }

    pub fn is_ok(&self) -> bool {
        self.class == OutcomeClass::Ok
    }

    /// The class's fix hint.
    pub fn hint(&self) -> &'static str {
        self.class.hint()
    }

    /// How long the provider asked us to wait (rate limits), when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The HTTP status the provider answered with, if it answered.
    pub fn upstream_status(&self) -> Option<u16> {
        self.upstream_status
    }

    /// The provider's message or our description of the failure, redacted and at most
    /// [`crate::MESSAGE_MAX_CHARS`] characters.
    pub fn upstream_message(&self) -> Option<&str> {
        self.upstream_message.as_deref()
    }

    /// Wall time from the start of the test to its outcome.
    pub fn latency(&self) -> Duration {
        self.latency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_unique_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for class in OutcomeClass::ALL {
            let code = class.code();
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
            assert!(seen.insert(code), "duplicate {code}");
            assert_eq!(OutcomeClass::from_code(code), Some(class));
            assert!(!class.hint().is_empty() && !class.hint().contains('\n'));
        }
        assert_eq!(OutcomeClass::from_code("nope"), None);
    }

    #[test]
    fn the_domain_lists_exactly_these_classes() {
        let codes: Vec<&str> = OutcomeClass::ALL.iter().map(OutcomeClass::code).collect();
        assert_eq!(codes, domain::connection_test::OUTCOME_CLASSES);
    }
}
