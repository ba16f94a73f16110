//! Connection tests: a draft (or a saved model) to try against its provider, and the
//! outcome the worker recorded. A passing test is the receipt that adding a model needs: it
//! is bound to a digest of the draft and expires after [`RECEIPT_TTL_MS`].

use secrets::Sealed;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::provider::{CredentialKind, Endpoint, Provider, ProviderModelId};
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
    pub fingerprint: Option<[u8; 32]>,
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
    fingerprint: Option<&[u8; 32]>,
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
    Request { draft: Draft, model: Option<Slug> },
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
}

/// A second completion (a redelivered job) records nothing: a result is recorded once.
pub fn decide(state: Option<&ConnectionTest>, command: Command) -> Result<Vec<Event>, Rejection> {
    match (state, command) {
        (Some(_), Command::Request { .. }) => Err(Rejection::AlreadyRequested),
        (None, Command::Request { draft, model }) => Ok(vec![Event::Requested { draft, model }]),
        (None, Command::Complete(_)) => Err(Rejection::NotFound),
        (Some(test), Command::Complete(_)) if test.result.is_some() => Ok(Vec::new()),
        (Some(_), Command::Complete(result)) => Ok(vec![Event::Completed(result)]),
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

/// Why a receipt does not let a draft be added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiptProblem {
    Pending,
    Failed(String),
    Mismatch,
    Expired,
}

/// When a receipt was issued and how long it lasts.
#[derive(Clone, Copy, Debug)]
pub struct ReceiptTime {
    pub completed_at_ms: i64,
    pub now_ms: i64,
    pub ttl_ms: i64,
}

/// Checks a receipt (a completed test) for a draft with `draft_digest`.
pub fn check_receipt(
    test: &ConnectionTest,
    test_digest: &[u8; 32],
    draft_digest: &[u8; 32],
    time: ReceiptTime,
) -> Result<(), ReceiptProblem> {
    let Some(result) = &test.result else {
        return Err(ReceiptProblem::Pending);
    };
    if !result.passed() {
        return Err(ReceiptProblem::Failed(result.class.clone()));
    }
    if test_digest != draft_digest {
        return Err(ReceiptProblem::Mismatch);
    }
    if time.now_ms - time.completed_at_ms > time.ttl_ms {
        return Err(ReceiptProblem::Expired);
    }
    Ok(())
}

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

    #[test]
    fn a_result_is_recorded_once() {
        let requested = decide(
            None,
            Command::Request {
                draft: draft("llama3"),
                model: None,
            },
        )
        .unwrap();
        let state = requested.iter().fold(None, evolve);
        let completed = decide(state.as_ref(), Command::Complete(passed())).unwrap();
        let state = completed.iter().fold(state, evolve);
        assert!(
            decide(state.as_ref(), Command::Complete(passed()))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            decide(None, Command::Complete(passed())).unwrap_err(),
            Rejection::NotFound
        );
    }

    fn at(completed_at_ms: i64, now_ms: i64) -> ReceiptTime {
        ReceiptTime {
            completed_at_ms,
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
        assert_eq!(
            check_receipt(&test, &same, &same, at(0, RECEIPT_TTL_MS)),
            Ok(())
        );
        assert_eq!(
            check_receipt(&test, &same, &other, at(0, 1)),
            Err(ReceiptProblem::Mismatch)
        );
        assert_eq!(
            check_receipt(&test, &same, &same, at(0, RECEIPT_TTL_MS + 1)),
            Err(ReceiptProblem::Expired)
        );
        let failed = ConnectionTest {
            result: Some(TestResult {
                class: "auth_invalid".into(),
                ..passed()
            }),
            ..test.clone()
        };
        assert_eq!(
            check_receipt(&failed, &same, &same, at(0, 1)),
            Err(ReceiptProblem::Failed("auth_invalid".into()))
        );
        let pending = ConnectionTest {
            result: None,
            ..test
        };
        assert_eq!(
            check_receipt(&pending, &same, &same, at(0, 1)),
            Err(ReceiptProblem::Pending)
        );
    }
}
