//! Test Connection: requesting a test of a draft or a saved model, reading its result (with
//! a bounded long poll), recording the worker's result, and the receipt check that gates
//! adding a model.

use std::time::Duration;

use domain::Event;
use domain::Invalid;
use domain::connection_test::{self, Draft, ReceiptProblem, TestCredential, TestResult};
use domain::provider::{CredentialSecret, Endpoint, Provider, ProviderModelId};
use domain::values::{CredentialId, OrgId, Slug};
use eventlog::AppendError;
use serde::{Deserialize, Serialize};
use views::ConnectionTestRow;

use crate::requests::{CredentialInput, Problems, parse_endpoint};
use crate::responses::rfc3339;
use crate::{Answer, AppError, Ctx, Registry, now_ms};

/// The longest a `GET` waits for a pending test to finish.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// `POST /v1/connection-tests`: a draft as the Add form holds it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftTestRequest {
    pub provider: String,
    pub provider_model_id: String,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub credential: Option<CredentialInput>,
    pub credential_id: Option<String>,
}

impl DraftTestRequest {
    /// The fields of a draft test, which an add body carries too.
    pub const FIELDS: [&str; 6] = [
        "provider",
        "provider_model_id",
        "endpoint_url",
        "region",
        "credential",
        "credential_id",
    ];

    /// The draft test of a `POST /v1/models` body: its fields the test takes, as they are.
    pub fn body_of_add(add: &serde_json::Value) -> serde_json::Value {
        let draft = Self::FIELDS
            .iter()
            .filter_map(|field| Some(((*field).to_owned(), add.get(field)?.clone())))
            .collect();
        serde_json::Value::Object(draft)
    }
}

/// `POST /v1/models/{slug}/connection-tests`: a blank credential means the stored one.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelTestRequest {
    pub credential: Option<CredentialInput>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResultView {
    pub class: String,
    pub passed: bool,
    pub hint: String,
    pub retry_after_ms: Option<u64>,
    pub upstream_status: Option<u16>,
    pub upstream_message: Option<String>,
    pub latency_ms: u64,
    pub suggested_input_cost_per_token: Option<domain::values::Cost>,
    pub suggested_output_cost_per_token: Option<domain::values::Cost>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConnectionTestView {
    pub id: String,
    /// `pending` or `completed`.
    pub status: &'static str,
    pub provider: &'static str,
    pub provider_model_id: String,
    pub model: Option<String>,
    pub result: Option<ResultView>,
    pub requested_at: String,
    pub requested_by: String,
    pub completed_at: Option<String>,
    /// For a passing test of a draft: until when it lets that draft be added.
    pub receipt_expires_at: Option<String>,
    /// Events recorded for this test: 1 while pending, 2 once completed (never more).
    pub version: u64,
}

impl ConnectionTestView {
    fn new(row: &ConnectionTestRow, ttl_ms: i64) -> Self {
        let result = row.test.result.as_ref().map(|r| ResultView {
            class: r.class.clone(),
            passed: r.passed(),
            hint: r.hint.clone(),
            retry_after_ms: r.retry_after_ms,
            upstream_status: r.upstream_status,
            upstream_message: r.upstream_message.clone(),
            latency_ms: r.latency_ms,
            suggested_input_cost_per_token: r.suggested_input_cost,
            suggested_output_cost_per_token: r.suggested_output_cost,
        });
        let passed = row.test.result.as_ref().is_some_and(TestResult::passed);
        Self {
            id: row.id.clone(),
            status: if row.test.result.is_some() {
                "completed"
            } else {
                "pending"
            },
            provider: row.test.draft.provider.as_str(),
            provider_model_id: row.test.draft.provider_model_id.as_str().to_owned(),
            model: row.test.model.as_ref().map(|s| s.as_str().to_owned()),
            result,
            requested_at: rfc3339(row.requested_at_ms),
            requested_by: row.requested_by.clone(),
            completed_at: row.completed_at_ms.map(rfc3339),
            receipt_expires_at: row
                .completed_at_ms
                .filter(|_| passed)
                .map(|at| rfc3339(at + ttl_ms)),
            version: row.stream.version,
        }
    }
}

impl Registry {
    /// Requests a test of a draft. Answers at once with the test's id; the worker runs it.
    pub async fn request_draft_test(
        &self,
        ctx: &Ctx,
        request: DraftTestRequest,
    ) -> Result<Answer<ConnectionTestView>, AppError> {
        ctx.require_admin()?;
        let mut problems = Problems::default();
        let provider = problems.take(Provider::parse(&request.provider));
        let provider_model_id = provider
            .and_then(|p| problems.take(ProviderModelId::parse(p, &request.provider_model_id)));
        let endpoint = provider
            .and_then(|p| {
                problems.take(parse_endpoint(
                    p,
                    request.endpoint_url.as_deref(),
                    request.region.as_deref(),
                ))
            })
            .flatten();
        if let Some(p) = provider {
            problems.take(domain::provider::check_endpoint(p, endpoint.as_ref()));
        }
        let credential_id = request
            .credential_id
            .as_deref()
            .and_then(|raw| problems.take(CredentialId::parse(raw)));
        let secret = match (request.credential, provider) {
            (Some(_), _) if request.credential_id.is_some() => {
                problems.0.push(Invalid::new(
                    "credential",
                    "credential.ambiguous",
                    "give a credential or a saved credential_id, not both",
                ));
                None
            }
            (Some(input), Some(p)) => problems.take(input.into_secret(p)),
            _ => None,
        };
        if !problems.0.is_empty() {
            return Err(AppError::Invalid(problems.0));
        }
        let (Some(provider), Some(provider_model_id)) = (provider, provider_model_id) else {
            return Err(AppError::invalid(Invalid::new(
                "body",
                "body.incomplete",
                "the request is incomplete",
            )));
        };
        let test_id = new_test_id()?;
        let (credential, fingerprint) = match (secret, credential_id) {
            (Some(secret), _) => self.seal_for_test(ctx, &test_id, provider, &secret).await?,
            (None, Some(id)) => self.saved_for_test(ctx, provider, &id)?,
            (None, None) if provider.credential_optional() => (TestCredential::None, None),
            (None, None) => {
                return Err(AppError::invalid(Invalid::new(
                    "credential",
                    "credential.required",
                    format!(
                        "{provider} needs a credential to test: give one inline or a saved credential_id"
                    ),
                )));
            }
        };
        let draft = Draft {
            provider,
            endpoint,
            provider_model_id,
            credential,
            fingerprint,
        };
        self.append_test_request(ctx, &test_id, draft, None).await
    }

    /// Requests a test of a saved model, with its stored credential unless a new one is given.
    pub async fn request_model_test(
        &self,
        ctx: &Ctx,
        slug: &str,
        request: ModelTestRequest,
    ) -> Result<Answer<ConnectionTestView>, AppError> {
        ctx.require_admin()?;
        let row = self.model_row(ctx, slug)?;
        let provider = row.model.provider;
        let test_id = new_test_id()?;
        let (credential, fingerprint) = match (request.credential, &row.model.credential_id) {
            (Some(input), _) => {
                let secret = input.into_secret(provider)?;
                self.seal_for_test(ctx, &test_id, provider, &secret).await?
            }
            (None, Some(id)) => self.saved_for_test(ctx, provider, id)?,
            (None, None) => (TestCredential::None, None),
        };
        let draft = Draft {
            provider,
            endpoint: row.model.endpoint.clone(),
            provider_model_id: row.model.provider_model_id.clone(),
            credential,
            fingerprint,
        };
        self.append_test_request(ctx, &test_id, draft, Some(row.model.slug.clone()))
            .await
    }

    async fn seal_for_test(
        &self,
        ctx: &Ctx,
        test_id: &str,
        provider: Provider,
        secret: &CredentialSecret,
    ) -> Result<(TestCredential, Option<[u8; 32]>), AppError> {
        let sealable = secret.to_sealable();
        let fingerprint = self
            .vault
            .fingerprint(ctx.org.as_str(), provider.as_str(), &sealable);
        let context = vault::SecretContext {
            org: ctx.org.as_str(),
            credential_id: test_id,
            version: 1,
        };
        let sealed = self.vault.seal(&context, &sealable).await?;
        Ok((
            TestCredential::Inline {
                kind: secret.kind(),
                sealed,
            },
            Some(fingerprint),
        ))
    }

    fn saved_for_test(
        &self,
        ctx: &Ctx,
        provider: Provider,
        id: &CredentialId,
    ) -> Result<(TestCredential, Option<[u8; 32]>), AppError> {
        let row = self.saved_credential(ctx, id)?;
        if row.credential.provider != provider {
            return Err(AppError::invalid(Invalid::new(
                "credential_id",
                "credential.provider_mismatch",
                format!(
                    "credential {id} is a {} credential; this test needs a {provider} one",
                    row.credential.provider
                ),
            )));
        }
        let credential = TestCredential::Saved {
            id: id.clone(),
            version: row.credential.version,
        };
        Ok((credential, Some(row.credential.fingerprint)))
    }

    async fn append_test_request(
        &self,
        ctx: &Ctx,
        test_id: &str,
        draft: Draft,
        model: Option<Slug>,
    ) -> Result<Answer<ConnectionTestView>, AppError> {
        let events =
            connection_test::decide(None, connection_test::Command::Request { draft, model })
                .map_err(|e| AppError::Internal(format!("connection test id collision: {e}")))?;
        let Some(event) = events.into_iter().next() else {
            return Err(AppError::Internal("a test request decided nothing".into()));
        };
        let appended = match self
            .append(ctx, test_id, None, &Event::ConnectionTest(event))
            .await
        {
            Ok(appended) => appended,
            Err(AppendError::Conflict { .. }) => {
                return Err(AppError::Internal("connection test id collision".into()));
            }
            Err(AppendError::Log(e)) => return Err(e.into()),
        };
        let position = self.settle(appended.seq).await?;
        let mut id = test_id.to_owned();
        if appended.duplicate
            && let Some(original) = self.views.command_target(
                ctx.org.as_str(),
                &ctx.command_id,
                domain::event::kind::CONNECTION_TEST,
            )?
        {
            id = original;
        }
        Ok(Answer {
            value: self.test_view(ctx, &id)?,
            position,
        })
    }

    /// A test's status and result; with `wait`, holds the answer (at most [`MAX_WAIT`]) until
    /// the test completes.
    pub async fn get_connection_test(
        &self,
        ctx: &Ctx,
        id: &str,
        wait: Option<Duration>,
    ) -> Result<Answer<ConnectionTestView>, AppError> {
        let deadline = tokio::time::Instant::now() + wait.unwrap_or_default().min(MAX_WAIT);
        loop {
            let position = self.views.position();
            let view = self.test_view(ctx, id)?;
            let now = tokio::time::Instant::now();
            if view.status == "completed" || now >= deadline {
                return Ok(Answer {
                    value: view,
                    position,
                });
            }
            self.views.changed(deadline - now).await;
        }
    }

    fn test_view(&self, ctx: &Ctx, id: &str) -> Result<ConnectionTestView, AppError> {
        let row = self
            .views
            .connection_test(ctx.org.as_str(), id)?
            .ok_or_else(|| AppError::NotFound {
                code: "connection_test.not_found",
                message: format!("no connection test {} in this org", domain::echo(id)),
            })?;
        Ok(ConnectionTestView::new(&row, self.receipt_ttl_ms))
    }

    /// Records the worker's result once; a redelivered job's second result records nothing.
    pub async fn complete_connection_test(
        &self,
        ctx: &Ctx,
        id: &str,
        result: TestResult,
    ) -> Result<(), AppError> {
        let row = self
            .views
            .connection_test(ctx.org.as_str(), id)?
            .ok_or_else(|| AppError::NotFound {
                code: "connection_test.not_found",
                message: format!("no connection test {}", domain::echo(id)),
            })?;
        let events =
            connection_test::decide(Some(&row.test), connection_test::Command::Complete(result))
                .map_err(|e| AppError::Internal(e.to_string()))?;
        let Some(event) = events.into_iter().next() else {
            return Ok(());
        };
        match self
            .append(ctx, id, Some(&row.stream), &Event::ConnectionTest(event))
            .await
        {
            Ok(appended) => {
                self.settle(appended.seq).await?;
                Ok(())
            }
            // Someone completed it first: recorded once all the same.
            Err(AppendError::Conflict { .. }) => Ok(()),
            Err(AppendError::Log(e)) => Err(e.into()),
        }
    }

    /// The gate: adding a model needs a passing test of exactly this draft, less than 15
    /// minutes old.
    pub(crate) fn check_gate(
        &self,
        ctx: &Ctx,
        test_id: Option<&str>,
        provider: Provider,
        endpoint: Option<&Endpoint>,
        provider_model_id: &ProviderModelId,
        fingerprint: Option<&[u8; 32]>,
    ) -> Result<(), AppError> {
        let refuse = |code: &'static str, message: String| {
            AppError::invalid(Invalid::new("connection_test_id", code, message))
        };
        let Some(test_id) = test_id else {
            return Err(refuse(
                "connection_test.required",
                "adding a model needs a passing Test Connection of this draft: POST /v1/connection-tests, then send its id as connection_test_id".into(),
            ));
        };
        let row = self
            .views
            .connection_test(ctx.org.as_str(), test_id)?
            .ok_or_else(|| {
                refuse(
                    "connection_test.not_found",
                    format!("no connection test {} in this org", domain::echo(test_id)),
                )
            })?;
        let org: &OrgId = &ctx.org;
        let draft_digest =
            connection_test::digest(org, provider, endpoint, provider_model_id, fingerprint);
        let completed_at = row.completed_at_ms.unwrap_or(0);
        let time = connection_test::ReceiptTime {
            completed_at_ms: completed_at,
            now_ms: now_ms(),
            ttl_ms: self.receipt_ttl_ms,
        };
        match connection_test::check_receipt(&row.test, &row.digest, &draft_digest, time) {
            Ok(()) => Ok(()),
            Err(ReceiptProblem::Pending) => Err(AppError::Conflict {
                code: "connection_test.pending",
                message: "the connection test is still running; wait for it (GET /v1/connection-tests/{id}?wait=10) and retry".into(),
                current_version: None,
            }),
            Err(ReceiptProblem::Failed(class)) => Err(refuse(
                "connection_test.failed",
                format!("the connection test did not pass ({class}); fix what it reports and test again"),
            )),
            Err(ReceiptProblem::Mismatch) => Err(refuse(
                "connection_test.mismatch",
                "the connection test was for a different draft (provider, endpoint, model id or credential changed); test this one".into(),
            )),
            Err(ReceiptProblem::Expired) => Err(refuse(
                "connection_test.expired",
                format!("the connection test is more than {} minutes old; test again", self.receipt_ttl_ms / 60_000),
            )),
        }
    }
}

fn new_test_id() -> Result<String, AppError> {
    Ok(format!("ct_{}", crate::new_id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_is_the_add_body_s_test_fields() {
        let add = serde_json::json!({
            "display_name": "X", "provider": "openai_compatible", "provider_model_id": "m",
            "endpoint_url": "https://h.example/v1", "region": "us-east-1",
            "credential": {"api_key": "k"}, "credential_id": "c", "max_tokens": 5
        });
        let draft = DraftTestRequest::body_of_add(&add);
        assert_eq!(draft.as_object().map(serde_json::Map::len), Some(6));
        // Every field named is one the draft request takes.
        assert!(serde_json::from_value::<DraftTestRequest>(draft).is_ok());
    }
}
