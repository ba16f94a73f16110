//! Connection tests: a draft (or a saved model) to try against its provider, and the
//! outcome the worker recorded. A passing test is the receipt that adding a model needs: it
//! is bound to a digest of the draft and expires after [`RECEIPT_TTL_MS`].

use secrets::{Fingerprint, Sealed};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Invalid;
use crate::provider::{CredentialKind, Endpoint, Provider, ProviderModelId, check_endpoint};
use crate::values::{Cost, CredentialId, OrgId, Slug};

/// Every outcome class a test can record, in the order clients are told about them; `ok` is
/// the one that passes. The providers crate maps answers to these (its test checks the list).
pub const OUTCOME_CLASSES: [&str; 12] = [
    "ok",
    "auth_invalid",
    "permission_denied",
    "model_not_found",
    "endpoint_unreachable",
    "timeout",
    "rate_limited",
    "quota_exceeded",
    "bad_response",
    "unsupported_parameter",
    "provider_unavailable",
    "destination_blocked",
];

/// How long a passing test lets a matching draft be added, by default: 15 minutes.
pub const RECEIPT_TTL_MS: i64 = 15 * 60 * 1000;

/// Which credential a test uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestCredential {
    /// OpenAI-compatible servers without auth.
    None,
    /// A saved credential at a version.
    Saved { id: CredentialId, version: u64 },
    /// Entered for this test only, sealed under the test's own data key.
    Inline {
        kind: CredentialKind,
        sealed: Sealed,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub provider: Provider,
    pub endpoint: Option<Endpoint>,
    pub provider_model_id: ProviderModelId,
    pub credential: TestCredential,
    /// Keyed fingerprint of the secret under test, `None` without a credential.
    pub fingerprint: Option<Fingerprint>,
}

impl Draft {
    /// What a receipt is bound to: org, provider, endpoint or region, provider model id and
    /// credential fingerprint, each length-prefixed so no two drafts share a digest.
    pub fn digest(&self, org: &OrgId) -> [u8; 32] {
        digest(
            org,
            self.provider,
            self.endpoint.as_ref(),
            &self.provider_model_id,
            self.fingerprint.as_ref(),
        )
    }
}

pub fn digest(
    org: &OrgId,
    provider: Provider,
    endpoint: Option<&Endpoint>,
    provider_model_id: &ProviderModelId,
    fingerprint: Option<&Fingerprint>,
) -> [u8; 32] {
    let endpoint = match endpoint {
        Some(Endpoint::Url(url)) => format!("url:{}", url.as_str()),
        Some(Endpoint::Region(region)) => format!("region:{}", region.as_str()),
        None => String::new(),
    };
    let mut hasher = Sha256::new();
    hasher.update(b"modelreg draft v1");
    for part in [
        org.as_str().as_bytes(),
        provider.as_str().as_bytes(),
        endpoint.as_bytes(),
        provider_model_id.as_str().as_bytes(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    match fingerprint {
        Some(fingerprint) => {
            hasher.update([1]);
            hasher.update(fingerprint);
        }
        None => hasher.update([0]),
    }
    hasher.finalize().into()
}

/// What the worker found, redacted: never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    /// `ok`, `auth_invalid`, `model_not_found`, … (stable codes).
    pub class: String,
    /// One line saying how to fix it.
    pub hint: String,
    pub retry_after_ms: Option<u64>,
    pub upstream_status: Option<u16>,
    pub upstream_message: Option<String>,
    pub latency_ms: u64,
    /// Known prices for this model, suggested where the user left costs blank.
    pub suggested_input_cost: Option<Cost>,
    pub suggested_output_cost: Option<Cost>,
}

impl TestResult {
    pub fn passed(&self) -> bool {
        self.class == "ok"
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionTest {
    pub draft: Draft,
    pub model: Option<Slug>,
    pub result: Option<TestResult>,
}

pub enum Command {
    Request {
        draft: Draft,
        /// The saved model under test, if it is one.
        model: Option<Slug>,
        /// The provider of the saved credential the draft names (looked up), if it names one.
        saved_credential_provider: Option<Provider>,
    },
    Complete(TestResult),
}

/// Architecture invariant: append-only, like every event enum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Requested { draft: Draft, model: Option<Slug> },
    Completed(TestResult),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("a test with this id exists")]
    AlreadyRequested,
    #[error("no such test")]
    NotFound,
    #[error("{0}")]
    Invalid(Invalid),
}

impl From<Invalid> for Rejection {
    fn from(invalid: Invalid) -> Self {
        Self::Invalid(invalid)
    }
}

/// A draft is tested only when it could be added: its endpoint is what its provider needs,
/// and it has a credential of its provider (unless the provider works without one). A second
/// completion (a redelivered job) records nothing: a result is recorded once.
pub fn decide(state: Option<&ConnectionTest>, command: Command) -> Result<Vec<Event>, Rejection> {
    match (state, command) {
        (Some(_), Command::Request { .. }) => Err(Rejection::AlreadyRequested),
        (
            None,
            Command::Request {
                draft,
                model,
                saved_credential_provider,
            },
        ) => {
            check_endpoint(draft.provider, draft.endpoint.as_ref())?;
            check_test_credential(&draft, saved_credential_provider)?;
            Ok(vec![Event::Requested { draft, model }])
        }
        (None, Command::Complete(_)) => Err(Rejection::NotFound),
        (Some(test), Command::Complete(_)) if test.result.is_some() => Ok(Vec::new()),
        (Some(_), Command::Complete(result)) => Ok(vec![Event::Completed(result)]),
    }
}

fn check_test_credential(
    draft: &Draft,
    saved_credential_provider: Option<Provider>,
) -> Result<(), Invalid> {
    let provider = draft.provider;
    match (&draft.credential, saved_credential_provider) {
        (TestCredential::None, _) if !provider.credential_optional() => Err(Invalid::new(
            "credential",
            "credential.required",
            format!(
                "{provider} needs a credential to test: give one inline or a saved credential_id"
            ),
        )),
        (TestCredential::Saved { id, .. }, Some(saved)) if saved != provider => Err(Invalid::new(
            "credential_id",
            "credential.provider_mismatch",
            format!(
                "the saved credential is a {saved} credential; this test needs a {provider} one"
            ),
        )),
        _ => Ok(()),
    }
}

pub fn evolve(state: Option<ConnectionTest>, event: &Event) -> Option<ConnectionTest> {
    match (state, event) {
        (_, Event::Requested { draft, model }) => Some(ConnectionTest {
            draft: draft.clone(),
            model: model.clone(),
            result: None,
        }),
        (Some(mut test), Event::Completed(result)) => {
            test.result = Some(result.clone());
            Some(test)
        }
        (None, Event::Completed(_)) => None,
    }
}

/// What the save gate knows when an add comes: the test the add names, looked up, and the
/// time. A receipt is a passing test of exactly the draft being added, at most `ttl_ms` old.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub named: Named,
    pub now_ms: i64,
    pub ttl_ms: i64,
}

/// The test an add names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Named {
    /// The add names no test.
    Nothing,
    /// The add names a test this org does not have.
    Unknown,
    /// The test, and when it completed (if it did).
    Test {
        test: Box<ConnectionTest>,
        completed_at_ms: Option<i64>,
    },
}

/// Why a receipt does not let a draft be added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiptProblem {
    Missing,
    NotFound,
    Pending,
    Failed(String),
    Mismatch,
    /// Older than a receipt lasts (`ttl_ms`).
    Expired {
        ttl_ms: i64,
    },
}

impl Receipt {
    /// Checks that the receipt lets the draft with `draft_digest` be added in `org`.
    pub fn check(&self, org: &OrgId, draft_digest: &[u8; 32]) -> Result<(), ReceiptProblem> {
        let (test, completed_at_ms) = match &self.named {
            Named::Nothing => return Err(ReceiptProblem::Missing),
            Named::Unknown => return Err(ReceiptProblem::NotFound),
            Named::Test {
                test,
                completed_at_ms,
            } => (test, completed_at_ms.unwrap_or(0)),
        };
        let Some(result) = &test.result else {
            return Err(ReceiptProblem::Pending);
        };
        if !result.passed() {
            return Err(ReceiptProblem::Failed(result.class.clone()));
        }
        if test.draft.digest(org) != *draft_digest {
            return Err(ReceiptProblem::Mismatch);
        }
        if self.now_ms - completed_at_ms > self.ttl_ms {
            return Err(ReceiptProblem::Expired {
                ttl_ms: self.ttl_ms,
            });
        }
        Ok(())
    }
}

crate::aggregate::aggregate!(ConnectionTest, CONNECTION_TEST, ConnectionTest);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::HttpUrl;

    fn draft(model: &str) -> Draft {
        Draft {
            provider: Provider::OpenaiCompatible,
            endpoint: Some(Endpoint::Url(
                HttpUrl::parse("endpoint_url", "http://127.0.0.1:9/v1").unwrap(),
            )),
            provider_model_id: ProviderModelId::parse(Provider::OpenaiCompatible, model).unwrap(),
            credential: TestCredential::None,
            fingerprint: None,
        }
    }

    fn passed() -> TestResult {
        TestResult {
            class: "ok".into(),
            hint: "".into(),
            retry_after_ms: None,
            upstream_status: Some(200),
            upstream_message: None,
            latency_ms: 12,
            suggested_input_cost: None,
            suggested_output_cost: None,
        }
    }

    fn request(draft: Draft) -> Command {
        Command::Request {
            draft,
            model: None,
            saved_credential_provider: None,
        }
    }

    #[test]
    fn a_result_is_recorded_once() {
        // Given a requested test
        let requested = decide(None, request(draft("llama3"))).unwrap();
        let state = requested.iter().fold(None, evolve);
        // When it completes
        let completed = decide(state.as_ref(), Command::Complete(passed())).unwrap();
        let state = completed.iter().fold(state, evolve);
        // Then a second completion (a redelivered job) records nothing
        assert!(
            decide(state.as_ref(), Command::Complete(passed()))
                .unwrap()
                .is_empty()
        );
        // And a completion of no test is refused
        assert_eq!(
            decide(None, Command::Complete(passed())).unwrap_err(),
            Rejection::NotFound
        );
        // And a test is requested once
        assert_eq!(
            decide(state.as_ref(), request(draft("llama3"))).unwrap_err(),
            Rejection::AlreadyRequested
        );
    }

    fn invalid_code(command: Command) -> &'static str {
        match decide(None, command) {
            Err(Rejection::Invalid(invalid)) => invalid.code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_draft_is_tested_only_when_it_could_be_added() {
        // Given a draft without its endpoint
        let mut no_url = draft("llama3");
        no_url.endpoint = None;
        // Then it is refused for what it lacks
        assert_eq!(invalid_code(request(no_url)), "endpoint_url.required");
        // Given an Anthropic draft without a credential
        let anthropic = Draft {
            provider: Provider::Anthropic,
            endpoint: None,
            provider_model_id: ProviderModelId::parse(Provider::Anthropic, "claude-sonnet-4-6")
                .unwrap(),
            credential: TestCredential::None,
            fingerprint: None,
        };
        assert_eq!(
            invalid_code(request(anthropic.clone())),
            "credential.required"
        );
        // Given the same draft naming a saved OpenAI credential
        let saved = Draft {
            credential: TestCredential::Saved {
                id: CredentialId::parse("cred_1").unwrap(),
                version: 1,
            },
            fingerprint: Some([1; 32]),
            ..anthropic
        };
        let command = |provider| Command::Request {
            draft: saved.clone(),
            model: None,
            saved_credential_provider: Some(provider),
        };
        assert_eq!(
            invalid_code(command(Provider::Openai)),
            "credential.provider_mismatch"
        );
        // And with an Anthropic one it is requested
        assert!(decide(None, command(Provider::Anthropic)).is_ok());
        // And an OpenAI-compatible server may be tested without a credential
        assert!(decide(None, request(draft("llama3"))).is_ok());
    }

    fn receipt(test: Option<&ConnectionTest>, completed_at_ms: i64, now_ms: i64) -> Receipt {
        Receipt {
            named: match test {
                Some(test) => Named::Test {
                    test: Box::new(test.clone()),
                    completed_at_ms: Some(completed_at_ms),
                },
                None => Named::Unknown,
            },
            now_ms,
            ttl_ms: RECEIPT_TTL_MS,
        }
    }

    #[test]
    fn receipts_bind_the_draft_and_expire() {
        let org = OrgId::parse("acme").unwrap();
        let test = ConnectionTest {
            draft: draft("llama3"),
            model: None,
            result: Some(passed()),
        };
        let same = draft("llama3").digest(&org);
        let other = draft("llama4").digest(&org);
        assert_ne!(same, other);
        assert_ne!(same, draft("llama3").digest(&OrgId::parse("beta").unwrap()));
        // A passing test of this draft, up to its lifetime
        assert_eq!(
            receipt(Some(&test), 0, RECEIPT_TTL_MS).check(&org, &same),
            Ok(())
        );
        // Of another draft, in another org, or too old
        assert_eq!(
            receipt(Some(&test), 0, 1).check(&org, &other),
            Err(ReceiptProblem::Mismatch)
        );
        assert_eq!(
            receipt(Some(&test), 0, 1).check(&OrgId::parse("beta").unwrap(), &same),
            Err(ReceiptProblem::Mismatch)
        );
        assert_eq!(
            receipt(Some(&test), 0, RECEIPT_TTL_MS + 1).check(&org, &same),
            Err(ReceiptProblem::Expired {
                ttl_ms: RECEIPT_TTL_MS
            })
        );
        // A failed or pending test, an unknown one, or none
        let failed = ConnectionTest {
            result: Some(TestResult {
                class: "auth_invalid".into(),
                ..passed()
            }),
            ..test.clone()
        };
        assert_eq!(
            receipt(Some(&failed), 0, 1).check(&org, &same),
            Err(ReceiptProblem::Failed("auth_invalid".into()))
        );
        let pending = ConnectionTest {
            result: None,
            ..test
        };
        assert_eq!(
            receipt(Some(&pending), 0, 1).check(&org, &same),
            Err(ReceiptProblem::Pending)
        );
        assert_eq!(
            receipt(None, 0, 1).check(&org, &same),
            Err(ReceiptProblem::NotFound)
        );
        let nothing = Receipt {
            named: Named::Nothing,
            now_ms: 1,
            ttl_ms: RECEIPT_TTL_MS,
        };
        assert_eq!(nothing.check(&org, &same), Err(ReceiptProblem::Missing));
    }
}
