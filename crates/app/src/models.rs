//! Models: adding (gated on a receipt), editing, reading and listing custom models, with
//! the platform catalog's models beside them; deactivation and the capability check live in
//! the submodules.

mod advice;
mod capabilities;
mod lifecycle;
mod listing;

pub use advice::{MAX_TOKENS_GUIDANCE, max_tokens_advice};
pub use capabilities::check;
pub(crate) use lifecycle::gone;
pub use lifecycle::{deactivate, reactivate, record_warning};
pub use listing::{MAX_LIMIT, page};

use domain::Invalid;
use domain::connection_test::ReceiptProblem;
use domain::model::{self, Model};
use domain::values::{CredentialId, Slug};
use views::ModelRow;

use crate::credentials::{self, Entered};
use crate::execute::{self, Decision, Refused, Stream};
use crate::parse;
use crate::{Answer, AppError, Ctx, Registry, present};

/// How many `-2`, `-3`, … suffixes to try for a taken slug before giving up.
const SLUG_ATTEMPTS: u32 = 1000;

/// What the slug candidates of a display name say about an add.
enum Candidates {
    /// This command already added the model under this slug.
    Added(Slug),
    /// Candidates from this suffix number on are free (as far as the views know).
    FreeFrom(u32),
}

/// Adds a custom model. The slug is the display name's, or the first free `-2`, `-3`, …;
/// uniqueness is the log's (a slug's subject must be empty). A retry of an add that landed
/// answers with the model it added, before the gate (its receipt may have expired since).
pub async fn add(
    registry: &Registry,
    ctx: &Ctx,
    mut request: api::AddModel,
) -> Result<Answer<api::AddedModel>, AppError> {
    ctx.require_admin()?;
    let test_first = std::mem::take(&mut request.test);
    if test_first && request.connection_test_id.is_some() {
        return Err(AppError::invalid(Invalid::new(
            "test",
            "test.with_receipt",
            "give test: true or connection_test_id, not both",
        )));
    }
    let draft = test_first.then(|| api::DraftTest::of(&request));
    let mut parsed = parse::add(request).map_err(AppError::Invalid)?;
    let base = Slug::derive(&parsed.display_name);
    let first_free = match slug_candidates(registry, ctx, &base)? {
        Candidates::FreeFrom(n) => n,
        Candidates::Added(slug) => {
            return Ok(Answer {
                value: added(registry, ctx, slug.as_str(), None)?,
                position: registry.views.position(),
            });
        }
    };
    // The one-call add: the same test a client would run first, then the same gate.
    let tested = match draft {
        Some(draft) => Some(test_draft(registry, ctx, draft).await?),
        None => None,
    };
    if let Some(test) = &tested {
        parsed.connection_test_id = Some(test.id.clone());
    }
    let (credential, mut entered) =
        credentials::choice(registry, ctx, parsed.provider, parsed.credential)?;
    let receipt =
        crate::connection_tests::receipt(registry, ctx, parsed.connection_test_id.as_deref())?;
    let mut add = model::Add {
        org: ctx.org.clone(),
        slug: base.with_suffix(first_free),
        display_name: parsed.display_name,
        provider: parsed.provider,
        provider_model_id: parsed.provider_model_id,
        credential,
        endpoint: parsed.endpoint,
        max_tokens: parsed.max_tokens,
        capabilities: parsed.capabilities,
        costs: parsed.costs,
        receipt,
    };
    let reused = match &add.credential {
        model::CredentialChoice::Entered {
            same_secret: Some(saved),
            ..
        } => Some(saved.id.clone()),
        _ => None,
    };
    if reused.is_some() {
        // The secret is saved already: nothing new to record.
        entered = None;
    }
    let mut credential_seq = 0;
    let mut n = first_free;
    loop {
        let slug = base.with_suffix(n);
        add.slug = slug.clone();
        let stream = Stream::new(slug.as_str(), None);
        // Decided before anything is stored, so a refused add leaves no credential behind.
        let event = match execute::decide::<Model>(
            ctx,
            stream,
            None,
            model::Command::Add(Box::new(add.clone())),
        ) {
            Ok(Decision::Append(event)) => event,
            Ok(Decision::Retried | Decision::Unchanged) => {
                return Err(AppError::internal("an add decided nothing"));
            }
            Err(refused) => return Err(refusal(refused, None)),
        };
        if let Some(entered) = entered.take() {
            let drawn = entered.id.clone();
            let recorded = record_entered(registry, ctx, entered, &mut add).await?;
            credential_seq = recorded.seq;
            if recorded.id != drawn {
                // A retried command whose first attempt recorded the credential under
                // another id: decide again with that one.
                continue;
            }
        }
        match execute::append::<Model>(registry, ctx, stream, event).await {
            Ok(appended) => {
                let position = registry.settle(appended.seq.max(credential_seq)).await?;
                let slug = if appended.duplicate {
                    // The log had this command already, possibly under another candidate;
                    // if none of this name's candidates is its model, the key came with
                    // another request.
                    match slug_candidates(registry, ctx, &base)? {
                        Candidates::Added(original) => original,
                        Candidates::FreeFrom(_) => return Err(AppError::idempotency_key_reused()),
                    }
                } else {
                    slug
                };
                let mut value = added(registry, ctx, slug.as_str(), reused.as_ref())?;
                value.connection_test = tested;
                return Ok(Answer { value, position });
            }
            // Taken meanwhile: the next candidate.
            Err(Refused::Conflict) if n < SLUG_ATTEMPTS => n += 1,
            Err(Refused::Conflict) => return Err(slugs_exhausted(&base)),
            Err(refused) => return Err(refusal(refused, None)),
        }
    }
}

/// Checks an add's draft without its secret (a dry run): every field the parse checks, the
/// slug it would get now, and the advice. Nothing is tested or stored, so a client can check
/// a draft before it asks a person for a secret.
pub fn check_draft(
    registry: &Registry,
    ctx: &Ctx,
    mut request: api::AddModel,
) -> Result<Answer<api::CheckedDraft>, AppError> {
    ctx.require_admin()?;
    request.credential = None;
    request.credential_id = None;
    let position = registry.views.position();
    let parsed = parse::add(request).map_err(AppError::Invalid)?;
    let base = Slug::derive(&parsed.display_name);
    let slug = match slug_candidates(registry, ctx, &base)? {
        Candidates::FreeFrom(n) => base.with_suffix(n),
        Candidates::Added(slug) => slug,
    };
    let warnings = domain::advice::warnings(
        &parsed.capabilities,
        parsed.max_tokens.get(),
        domain::known::lookup(parsed.provider, &parsed.provider_model_id),
    );
    Ok(Answer {
        value: api::CheckedDraft {
            slug: slug.as_str().to_owned(),
            warnings: present::advice(warnings),
        },
        position,
    })
}

/// Runs Test Connection on an add's draft and waits for its outcome: the passed test, or
/// the refusal that carries it (failed, or still pending after the longest wait).
async fn test_draft(
    registry: &Registry,
    ctx: &Ctx,
    draft: api::DraftTest,
) -> Result<api::ConnectionTest, AppError> {
    use crate::connection_tests::{self, MAX_WAIT};
    let requested = connection_tests::request_draft(registry, ctx, draft).await?;
    let test = connection_tests::get(registry, ctx, &requested.value.id, Some(MAX_WAIT))
        .await?
        .value;
    match &test.result {
        Some(result) if result.passed => Ok(test),
        _ => Err(AppError::TestNotPassed(Box::new(test))),
    }
}

/// Records the credential an add entered and points the add at it.
async fn record_entered(
    registry: &Registry,
    ctx: &Ctx,
    entered: Entered,
    add: &mut model::Add,
) -> Result<credentials::Recorded, AppError> {
    let recorded = credentials::record(registry, ctx, entered).await?;
    if let model::CredentialChoice::Entered { new, .. } = &mut add.credential {
        new.id = recorded.id.clone();
    }
    Ok(recorded)
}

fn slugs_exhausted(base: &Slug) -> AppError {
    AppError::Conflict {
        code: "model.slug_exhausted",
        message: format!(
            "every slug from {base} to {base}-{SLUG_ATTEMPTS} is taken; choose another display name"
        ),
        current_version: None,
    }
}

/// The answer to an add: the model, and the saved credential it reuses.
fn added(
    registry: &Registry,
    ctx: &Ctx,
    slug: &str,
    reused: Option<&CredentialId>,
) -> Result<api::AddedModel, AppError> {
    let model = view(registry, ctx, slug)?;
    let reused_credential = reused.and_then(|id| {
        model
            .credential
            .clone()
            .filter(|credential| credential.id == id.as_str())
    });
    Ok(api::AddedModel {
        model,
        reused_credential,
        connection_test: None,
    })
}

/// Walks the slug candidates of `base` up to the first free one. Candidates are taken in
/// order and a slug is never freed, so a model this command already added (a retry) is
/// among the taken ones.
fn slug_candidates(registry: &Registry, ctx: &Ctx, base: &Slug) -> Result<Candidates, AppError> {
    for n in 1..=SLUG_ATTEMPTS {
        let slug = base.with_suffix(n);
        match registry.views.model(ctx.org.as_str(), slug.as_str())? {
            Some(row) if row.added_by_command == ctx.command_id => {
                return Ok(Candidates::Added(slug));
            }
            Some(_) => {}
            None => return Ok(Candidates::FreeFrom(n)),
        }
    }
    Err(slugs_exhausted(base))
}

/// Edits a model partially; with `if_match`, only while it is at that version. Not gated on
/// a connection test.
pub async fn edit(
    registry: &Registry,
    ctx: &Ctx,
    slug: &str,
    request: api::EditModel,
    if_match: Option<u64>,
) -> Result<Answer<api::Model>, AppError> {
    ctx.require_admin()?;
    let row = row(registry, ctx, slug)?;
    // A retry of this very edit, which landed, named the version before it in its If-Match;
    // deciding it finds it a retry (answered as the first time) or another edit under the
    // same key (refused).
    if row.last_changed_by() != ctx.command_id {
        expect_version(&row, ctx, if_match)?;
    }
    let provider = row.model.provider;
    let parsed = parse::edit(request, provider, row.model.capabilities, row.model.costs)
        .map_err(AppError::Invalid)?;
    let (choice, entered) = credentials::choice(registry, ctx, provider, parsed.credential)?;
    let mut edit = model::Edit {
        display_name: parsed.display_name,
        provider_model_id: parsed.provider_model_id,
        credential: match choice {
            model::CredentialChoice::None => None,
            choice => Some(choice),
        },
        endpoint: parsed.endpoint,
        max_tokens: parsed.max_tokens,
        capabilities: parsed.capabilities,
        costs: parsed.costs,
    };
    if row.last_changed_by() == ctx.command_id
        && let Some(model::CredentialChoice::Entered {
            new,
            same_secret: None,
        }) = &edit.credential
        && holds_version(registry, ctx, &row, &new.fingerprint)?
    {
        // A retry of this edit, whose secret became the model's credential and was rotated
        // since: it asks for nothing more than the first attempt did.
        edit.credential = None;
    }
    let reuses = matches!(
        &edit.credential,
        Some(model::CredentialChoice::Entered {
            same_secret: Some(_),
            ..
        })
    );
    let stream = Stream {
        id: slug,
        at: Some(&row.stream),
        last_command: Some(row.last_changed_by()),
    };
    let decided = execute::decide::<Model>(
        ctx,
        stream,
        Some(&row.model),
        model::Command::Edit(Box::new(edit.clone())),
    )
    .map_err(|refused| refusal(refused, Some(row.stream.version)))?;
    let mut event = match decided {
        Decision::Append(event) => event,
        Decision::Retried | Decision::Unchanged => {
            return answer(registry, ctx, slug, registry.views.position());
        }
    };
    let mut credential_seq = 0;
    if let Some(entered) = entered.filter(|_| !reuses) {
        let drawn = entered.id.clone();
        let recorded = credentials::record(registry, ctx, entered).await?;
        credential_seq = recorded.seq;
        if recorded.id != drawn {
            // A retried command whose first attempt recorded the credential under another
            // id: decide again with that one.
            if let Some(model::CredentialChoice::Entered { new, .. }) = &mut edit.credential {
                new.id = recorded.id;
            }
            match execute::decide::<Model>(
                ctx,
                stream,
                Some(&row.model),
                model::Command::Edit(Box::new(edit)),
            ) {
                Ok(Decision::Append(again)) => event = again,
                Ok(_) => return answer(registry, ctx, slug, credential_seq),
                Err(refused) => return Err(refusal(refused, Some(row.stream.version))),
            }
        }
    }
    match execute::append::<Model>(registry, ctx, stream, event).await {
        Ok(appended) => {
            let position = registry.settle(appended.seq.max(credential_seq)).await?;
            answer(registry, ctx, slug, position)
        }
        Err(refused) => Err(conflict_or(registry, ctx, slug, refused).await),
    }
}

/// One custom model.
pub fn get(registry: &Registry, ctx: &Ctx, slug: &str) -> Result<Answer<api::Model>, AppError> {
    answer(registry, ctx, slug, registry.views.position())
}

/// Platform and custom models, each group in a stable order.
pub fn list(registry: &Registry, ctx: &Ctx) -> Result<Answer<api::ModelList>, AppError> {
    list_in(registry, &registry.views, ctx, registry.views.position())
}

/// [`list`] from `views` (the live ones, or a replay as of `position`).
pub(crate) fn list_in(
    registry: &Registry,
    views: &views::Views,
    ctx: &Ctx,
    position: u64,
) -> Result<Answer<api::ModelList>, AppError> {
    let platform = crate::catalog::org_view_in(registry, views, ctx)?;
    let mut custom = Vec::new();
    for row in views.models(ctx.org.as_str())? {
        let credential = credential_in(views, ctx, &row)?;
        let summary = credential
            .as_ref()
            .map(|c| credentials::summary(registry, c));
        custom.push(present::model(&row, summary));
    }
    Ok(Answer {
        value: api::ModelList {
            platform: platform.models,
            custom,
            default_model: Some(platform.default),
            hidden_platform: platform.hidden,
            next_cursor: None,
            matching: None,
        },
        position,
    })
}

fn answer(
    registry: &Registry,
    ctx: &Ctx,
    slug: &str,
    position: u64,
) -> Result<Answer<api::Model>, AppError> {
    Ok(Answer {
        value: view(registry, ctx, slug)?,
        position,
    })
}

/// A model's row, or 404 naming it.
pub(crate) fn row(registry: &Registry, ctx: &Ctx, slug: &str) -> Result<ModelRow, AppError> {
    row_in(&registry.views, ctx, slug)
}

fn row_in(views: &views::Views, ctx: &Ctx, slug: &str) -> Result<ModelRow, AppError> {
    let not_found = || AppError::NotFound {
        code: "model.not_found",
        message: "no model with this slug in this org".into(),
    };
    if Slug::parse(slug).is_err() {
        return Err(not_found());
    }
    views.model(ctx.org.as_str(), slug)?.ok_or_else(not_found)
}

fn credential_in(
    views: &views::Views,
    ctx: &Ctx,
    row: &ModelRow,
) -> Result<Option<views::CredentialRow>, AppError> {
    match &row.model.credential_id {
        Some(id) => Ok(views.credential(ctx.org.as_str(), id.as_str())?),
        None => Ok(None),
    }
}

pub(crate) fn view(registry: &Registry, ctx: &Ctx, slug: &str) -> Result<api::Model, AppError> {
    view_in(registry, &registry.views, ctx, slug)
}

/// One custom model as `views` hold it (the live ones, or a replay).
pub(crate) fn view_in(
    registry: &Registry,
    views: &views::Views,
    ctx: &Ctx,
    slug: &str,
) -> Result<api::Model, AppError> {
    let row = row_in(views, ctx, slug)?;
    let credential = credential_in(views, ctx, &row)?;
    let summary = credential
        .as_ref()
        .map(|c| credentials::summary(registry, c));
    let mut model = present::model(&row, summary);
    let truncations = crate::usage::truncations(registry, views, ctx, slug)?;
    // A deactivated model is called by no one: nothing to advise until it is back.
    model.recommendation = domain::advice::recommendation(
        &row.model.capabilities,
        row.model.max_tokens.get(),
        truncations.last_7d,
        domain::known::lookup(row.model.provider, &row.model.provider_model_id),
    )
    .filter(|_| row.model.status == domain::model::Status::Active)
    .map(present::recommendation);
    model.truncations = Some(truncations);
    Ok(model)
}

/// A refused append of a model event: a lost race is 409 with the version that won, read
/// once the views have caught up with the log (the winner's write may still be in flight).
pub(crate) async fn conflict_or(
    registry: &Registry,
    ctx: &Ctx,
    slug: &str,
    refused: Refused<model::Rejection>,
) -> AppError {
    match refused {
        Refused::Conflict => {
            if let Ok(last) = registry.log.last_seq().await {
                let _ = registry.settle(last).await;
            }
            let current = registry
                .views
                .model(ctx.org.as_str(), slug)
                .ok()
                .flatten()
                .map(|r| r.stream.version);
            AppError::Conflict {
                code: "model.conflict",
                message: "the model was changed by someone else at the same time; reload it and apply your change again".into(),
                current_version: current,
            }
        }
        other => refusal(other, None),
    }
}

/// Refuses a command made against another version of the model than its current one
/// (`If-Match`), unless it is a retry of the command that made the current one.
fn expect_version(row: &ModelRow, ctx: &Ctx, if_match: Option<u64>) -> Result<(), AppError> {
    match if_match {
        Some(expected)
            if expected != row.stream.version && row.last_changed_by() != ctx.command_id =>
        {
            Err(version_conflict(row.stream.version))
        }
        _ => Ok(()),
    }
}

fn version_conflict(current: u64) -> AppError {
    AppError::Conflict {
        code: "model.version_mismatch",
        message: format!(
            "the model is at version {current}; reload it and apply your change again"
        ),
        current_version: Some(current),
    }
}

/// A refused model command as the caller hears it.
pub(crate) fn refusal(refused: Refused<model::Rejection>, version: Option<u64>) -> AppError {
    let rejection = match refused {
        Refused::Rejected(rejection) => rejection,
        Refused::Conflict => {
            return AppError::Conflict {
                code: "model.conflict",
                message: "the model was changed by someone else at the same time; reload it and apply your change again".into(),
                current_version: version,
            };
        }
        Refused::Failed(error) => return error,
    };
    let conflict = |code, message: &str| AppError::Conflict {
        code,
        message: message.into(),
        current_version: None,
    };
    match rejection {
        model::Rejection::Invalid(invalid) => AppError::invalid(invalid),
        model::Rejection::NotFound => AppError::NotFound {
            code: "model.not_found",
            message: "no such model".into(),
        },
        model::Rejection::SlugTaken => {
            conflict("model.slug_taken", "a model with this slug exists")
        }
        model::Rejection::Deactivated => conflict(
            "model.deactivated",
            "the model is deactivated; it can no longer be edited",
        ),
        model::Rejection::NotDeactivated => conflict("model.active", "the model is active"),
        model::Rejection::AlreadyDeactivated => conflict(
            "model.already_deactivated",
            "the model is already deactivated",
        ),
        model::Rejection::HasDependents { count, first } => {
            AppError::HasDependents { count, first }
        }
        model::Rejection::Receipt(problem) => receipt_refusal(problem),
    }
}

/// Why the save gate refused an add, and what to do.
fn receipt_refusal(problem: ReceiptProblem) -> AppError {
    let refuse = |code: &'static str, message: String| {
        AppError::invalid(Invalid::new("connection_test_id", code, message))
    };
    match problem {
        ReceiptProblem::Missing => refuse(
            "connection_test.required",
            "adding a model needs a passing Test Connection of this draft: POST /v1/connection-tests, then send its id as connection_test_id".into(),
        ),
        ReceiptProblem::NotFound => refuse(
            "connection_test.not_found",
            "no such connection test in this org".into(),
        ),
        ReceiptProblem::Pending => AppError::Conflict {
            code: "connection_test.pending",
            message: "the connection test is still running; wait for it (GET /v1/connection-tests/{id}?wait=10) and retry".into(),
            current_version: None,
        },
        ReceiptProblem::Failed(class) => refuse(
            "connection_test.failed",
            format!("the connection test did not pass ({class}); fix what it reports and test again"),
        ),
        ReceiptProblem::Mismatch => refuse(
            "connection_test.mismatch",
            "the connection test was for a different draft (provider, endpoint, model id or credential changed); test this one".into(),
        ),
        ReceiptProblem::Expired { ttl_ms } => refuse(
            "connection_test.expired",
            format!(
                "the connection test is more than {} minutes old; test again",
                ttl_ms / 60_000
            ),
        ),
    }
}

/// Whether a version of the model's credential, current or retired, had `fingerprint`.
fn holds_version(
    registry: &Registry,
    ctx: &Ctx,
    row: &ModelRow,
    fingerprint: &secrets::Fingerprint,
) -> Result<bool, AppError> {
    let Some(id) = &row.model.credential_id else {
        return Ok(false);
    };
    let credential = registry.views.credential(ctx.org.as_str(), id.as_str())?;
    Ok(credential.is_some_and(|c| c.history.iter().any(|v| v.fingerprint == *fingerprint)))
}

/// A transition of the model at `slug` that re-checks its own preconditions, retried on
/// fresh state when it loses a race (say, with the dependents worker recording its warning).
pub(crate) async fn transition(
    registry: &Registry,
    ctx: &Ctx,
    slug: &str,
    command: impl Fn(&ModelRow) -> Result<model::Command, AppError>,
) -> Result<Answer<api::Model>, AppError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let row = row(registry, ctx, slug)?;
        let stream = Stream {
            id: slug,
            at: Some(&row.stream),
            last_command: Some(row.last_changed_by()),
        };
        match execute::execute::<Model>(registry, ctx, stream, Some(&row.model), command(&row)?)
            .await
        {
            Ok(done) => return answer(registry, ctx, slug, done.position()),
            // Another change (the dependents worker's record, say) landed first: read the
            // model again once the views hold it.
            Err(Refused::Conflict) if attempts < 5 => registry.catch_up().await?,
            Err(refused) => return Err(conflict_or(registry, ctx, slug, refused).await),
        }
    }
}
