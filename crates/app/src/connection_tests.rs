//! Test Connection: requesting a test of a draft or a saved model, reading its result (with a
//! bounded long poll), what the worker needs to run one and to record its result, and the
//! receipt that the save gate of an add looks up.

use std::time::Duration;

use domain::connection_test::{
    self, ConnectionTest, Draft, Named, Receipt, TestCredential, TestResult,
};
use domain::provider::CredentialSecret;
use domain::values::{OrgId, Slug};

use crate::credentials;
use crate::execute::{self, Decision, Refused, Stream};
use crate::parse::{self, CredentialRequest};
use crate::{Answer, AppError, Ctx, Registry, present};

/// The longest a `GET` waits for a pending test to finish.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// Requests a test of a draft. Answers at once with the test's id; the worker runs it.
pub async fn request_draft(
    registry: &Registry,
    ctx: &Ctx,
    body: api::DraftTest,
) -> Result<Answer<api::ConnectionTest>, AppError> {
    ctx.require_admin()?;
    let parsed = parse::draft(body).map_err(AppError::Invalid)?;
    let test_id = new_test_id();
    let draft = Draft {
        provider: parsed.provider,
        endpoint: parsed.endpoint,
        provider_model_id: parsed.provider_model_id,
        credential: TestCredential::None,
        fingerprint: None,
    };
    request(registry, ctx, test_id, draft, parsed.credential, None).await
}

/// Requests a test of a saved model, with its stored credential unless a new one is given.
pub async fn request_for_model(
    registry: &Registry,
    ctx: &Ctx,
    slug: &str,
    body: api::ModelTest,
) -> Result<Answer<api::ConnectionTest>, AppError> {
    ctx.require_admin()?;
    let row = crate::models::row(registry, ctx, slug)?;
    let provider = row.model.provider;
    let credential = match (body.credential, &row.model.credential_id) {
        (Some(input), _) => CredentialRequest::Entered(parse::secret(input, provider)?),
        (None, Some(id)) => CredentialRequest::Saved(id.clone()),
        (None, None) => CredentialRequest::None,
    };
    let draft = Draft {
        provider,
        endpoint: row.model.endpoint.clone(),
        provider_model_id: row.model.provider_model_id.clone(),
        credential: TestCredential::None,
        fingerprint: None,
    };
    let model = Some(row.model.slug.clone());
    request(registry, ctx, new_test_id(), draft, credential, model).await
}

/// Requests a test of the saved model in `row` with `secret` instead of its stored credential
/// (a rotation's retest).
pub(crate) async fn request_with(
    registry: &Registry,
    ctx: &Ctx,
    row: &views::ModelRow,
    secret: CredentialSecret,
) -> Result<Answer<api::ConnectionTest>, AppError> {
    let draft = Draft {
        provider: row.model.provider,
        endpoint: row.model.endpoint.clone(),
        provider_model_id: row.model.provider_model_id.clone(),
        credential: TestCredential::None,
        fingerprint: None,
    };
    let model = Some(row.model.slug.clone());
    request(
        registry,
        ctx,
        new_test_id(),
        draft,
        CredentialRequest::Entered(secret),
        model,
    )
    .await
}

/// Decides and records a test request. An entered secret is sealed under the test's own
/// data key (so a worker in another process can open it), which is stored only once the
/// domain accepted the draft.
async fn request(
    registry: &Registry,
    ctx: &Ctx,
    test_id: String,
    mut draft: Draft,
    credential: CredentialRequest,
    model: Option<Slug>,
) -> Result<Answer<api::ConnectionTest>, AppError> {
    // A retry of a request that landed answers with its test, whenever it comes: the log's
    // deduplication lasts a window only, and a retry would otherwise store a data key for a
    // test id that never lands.
    if let Some(original) = registry.views.command_target(
        ctx.org.as_str(),
        &ctx.command_id,
        domain::event::kind::CONNECTION_TEST,
    )? {
        let row = registry
            .views
            .connection_test(ctx.org.as_str(), &original)?
            .ok_or_else(|| AppError::internal(format!("test {original} is not in the views")))?;
        if !same_request(
            registry,
            ctx,
            &row.test,
            &draft,
            &credential,
            model.as_ref(),
        ) {
            return Err(AppError::idempotency_key_reused());
        }
        return Ok(Answer {
            value: present::connection_test(&row, registry.receipt_ttl_ms),
            position: registry.views.position(),
        });
    }
    let mut saved_credential_provider = None;
    let mut key = None;
    match credential {
        CredentialRequest::None => {}
        CredentialRequest::Saved(id) => {
            let row = credentials::saved(registry, ctx, &id)?;
            saved_credential_provider = Some(row.credential.provider);
            draft.fingerprint = Some(row.credential.fingerprint);
            draft.credential = TestCredential::Saved {
                id,
                version: row.credential.version,
            };
        }
        CredentialRequest::Entered(secret) => {
            let sealable = secret.to_sealable();
            draft.fingerprint = Some(credentials::fingerprint(
                registry,
                ctx,
                draft.provider,
                &secret,
            ));
            let context = vault::SecretContext {
                org: ctx.org.as_str(),
                credential_id: &test_id,
                version: 1,
            };
            let (sealed, unstored) = registry.vault.seal_new(&context, &sealable)?;
            key = Some(unstored);
            draft.credential = TestCredential::Inline {
                kind: secret.kind(),
                sealed,
            };
        }
    }
    let command = connection_test::Command::Request {
        draft,
        model,
        saved_credential_provider,
    };
    let stream = Stream::new(&test_id, None);
    let event = match execute::decide::<ConnectionTest>(ctx, stream, None, command) {
        Ok(Decision::Append(event)) => event,
        Ok(_) => return Err(AppError::internal("a test request decided nothing")),
        Err(refused) => return Err(refusal(refused)),
    };
    if let Some(key) = key {
        registry.vault.store(key).await?;
    }
    let appended = execute::append::<ConnectionTest>(registry, ctx, stream, event)
        .await
        .map_err(refusal)?;
    let position = registry.settle(appended.seq).await?;
    let mut id = test_id;
    if appended.duplicate
        && let Some(original) = registry.views.command_target(
            ctx.org.as_str(),
            &ctx.command_id,
            domain::event::kind::CONNECTION_TEST,
        )?
    {
        id = original;
    }
    Ok(Answer {
        value: view(registry, ctx, &id)?,
        position,
    })
}

/// Whether a retried request asks for the test `first` is: the same draft, model and
/// credential (a saved one by id, as it may have rotated since; an entered one by its
/// fingerprint).
fn same_request(
    registry: &Registry,
    ctx: &Ctx,
    first: &domain::connection_test::ConnectionTest,
    draft: &Draft,
    credential: &CredentialRequest,
    model: Option<&Slug>,
) -> bool {
    let was = &first.draft;
    let same_credential = match (credential, &was.credential) {
        (CredentialRequest::None, TestCredential::None) => true,
        (CredentialRequest::Saved(id), TestCredential::Saved { id: first_id, .. }) => {
            id == first_id
        }
        (CredentialRequest::Entered(secret), TestCredential::Inline { .. }) => {
            was.fingerprint
                == Some(credentials::fingerprint(
                    registry,
                    ctx,
                    draft.provider,
                    secret,
                ))
        }
        _ => false,
    };
    same_credential
        && was.provider == draft.provider
        && was.endpoint == draft.endpoint
        && was.provider_model_id == draft.provider_model_id
        && first.model.as_ref() == model
}

fn refusal(refused: Refused<connection_test::Rejection>) -> AppError {
    match refused {
        Refused::Rejected(connection_test::Rejection::Invalid(invalid)) => {
            AppError::invalid(invalid)
        }
        Refused::Rejected(connection_test::Rejection::NotFound) => AppError::NotFound {
            code: "connection_test.not_found",
            message: "no such connection test".into(),
        },
        // Ids are drawn fresh per request: a collision is a defect.
        Refused::Rejected(connection_test::Rejection::AlreadyRequested) | Refused::Conflict => {
            AppError::internal("connection test id collision")
        }
        Refused::Failed(error) => error,
    }
}

/// A test's status and result; with `wait`, holds the answer (at most [`MAX_WAIT`]) until
/// the test completes.
pub async fn get(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
    wait: Option<Duration>,
) -> Result<Answer<api::ConnectionTest>, AppError> {
    let deadline = tokio::time::Instant::now() + wait.unwrap_or_default().min(MAX_WAIT);
    loop {
        let position = registry.views.position();
        let view = view(registry, ctx, id)?;
        let now = tokio::time::Instant::now();
        if view.status == "completed" || now >= deadline {
            return Ok(Answer {
                value: view,
                position,
            });
        }
        registry.views.changed_after(position, deadline - now).await;
    }
}

fn view(registry: &Registry, ctx: &Ctx, id: &str) -> Result<api::ConnectionTest, AppError> {
    let row = registry
        .views
        .connection_test(ctx.org.as_str(), id)?
        .ok_or_else(|| AppError::NotFound {
            code: "connection_test.not_found",
            message: "no connection test with this id in this org".into(),
        })?;
    Ok(present::connection_test(&row, registry.receipt_ttl_ms))
}

/// What the worker is to do with a requested test.
pub enum Job {
    /// Run it: its draft and the credential under test, opened.
    Run {
        draft: Draft,
        credential: Option<CredentialSecret>,
    },
    /// Nothing: it has a result already (a redelivered job).
    Done,
    /// Record it as not run, with this hint: the saved credential it names was rotated or
    /// deleted since it was requested, and testing another secret under its request would
    /// report on what the user did not ask for.
    Stale(&'static str),
}

/// The hint of a test whose saved credential changed before it ran.
const STALE_HINT: &str = "The saved credential is no longer the version this test was requested with (it was rotated or deleted), so it was not run: test again.";

/// The test requested at `seq`, once the views include it.
pub async fn job(
    registry: &Registry,
    org: &OrgId,
    test_id: &str,
    seq: u64,
) -> Result<Job, AppError> {
    registry.settle(seq).await?;
    let Some(row) = registry.views.connection_test(org.as_str(), test_id)? else {
        return Err(AppError::internal(format!(
            "requested connection test {test_id} is not in the views"
        )));
    };
    if row.test.result.is_some() {
        return Ok(Job::Done);
    }
    let draft = row.test.draft;
    let credential = match &draft.credential {
        TestCredential::None => None,
        TestCredential::Inline { kind, sealed } => {
            let context = vault::SecretContext {
                org: org.as_str(),
                credential_id: test_id,
                version: 1,
            };
            let opened = registry
                .vault
                .open(&context, sealed)
                .await
                .map_err(|e| crate::error::opening(test_id, e))?;
            Some(
                CredentialSecret::from_sealable(*kind, &opened).ok_or_else(|| {
                    AppError::internal("the test's credential does not have its kind's shape")
                })?,
            )
        }
        TestCredential::Saved { id, version } => {
            let row = registry.views.credential(org.as_str(), id.as_str())?;
            match row {
                Some(row) if !row.credential.deleted && row.credential.version == *version => {
                    Some(credentials::open(registry, org, &row).await?)
                }
                _ => return Ok(Job::Stale(STALE_HINT)),
            }
        }
    };
    Ok(Job::Run { draft, credential })
}

/// Records the worker's result once; a redelivered job's second result records nothing.
/// True when this call recorded it.
pub async fn complete(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
    result: TestResult,
) -> Result<bool, AppError> {
    let row = registry
        .views
        .connection_test(ctx.org.as_str(), id)?
        .ok_or_else(|| AppError::NotFound {
            code: "connection_test.not_found",
            message: "no connection test with this id".into(),
        })?;
    let stream = Stream::new(id, Some(&row.stream));
    match execute::execute::<ConnectionTest>(
        registry,
        ctx,
        stream,
        Some(&row.test),
        connection_test::Command::Complete(result),
    )
    .await
    {
        Ok(done) => Ok(matches!(done, execute::Done::Appended { .. })),
        // Someone completed it first: recorded once all the same.
        Err(Refused::Conflict) => Ok(false),
        Err(refused) => Err(refusal(refused)),
    }
}

/// What the save gate knows about the test an add names.
pub(crate) fn receipt(
    registry: &Registry,
    ctx: &Ctx,
    test_id: Option<&str>,
) -> Result<Receipt, AppError> {
    let named = match test_id {
        None => Named::Nothing,
        Some(id) => match registry.views.connection_test(ctx.org.as_str(), id)? {
            None => Named::Unknown,
            Some(row) => Named::Test {
                test: Box::new(row.test),
                completed_at_ms: row.completed_at_ms,
            },
        },
    };
    Ok(Receipt {
        named,
        now_ms: registry.now_ms(),
        ttl_ms: registry.receipt_ttl_ms,
    })
}

fn new_test_id() -> String {
    format!("ct_{}", crate::new_id())
}
