//! Saved credentials: reading their metadata and state, recognising a secret that is saved
//! already ("Reuse saved credentials"), recording one entered with a model (sealed under its
//! own data key), opening one for the call that needs it, and knowing which data keys this
//! process cannot unwrap. Their life as resources (create, rename, rotate, shred, delete)
//! is in `lifecycle`.

mod health;
mod lifecycle;

pub(crate) use health::KeyHealth;
pub use health::{check_keys, watch_keys};
pub use lifecycle::{create, delete, finish_retirement, rename, rotate, shred};

use domain::Invalid;
use domain::credential::{self, Credential, State};
use domain::event::kind;
use domain::model::{CredentialChoice, CredentialRef};
use domain::provider::{CredentialSecret, Provider};
use domain::values::CredentialId;
use secrets::Fingerprint;
use views::CredentialRow;

use crate::execute::{self, Decision, Refused, Stream};
use crate::parse::{self, CredentialRequest};
use crate::{Answer, AppError, Ctx, Registry, present};

/// The org's saved credentials (deleted ones left out), metadata only.
pub fn list(registry: &Registry, ctx: &Ctx) -> Result<Answer<Vec<api::Credential>>, AppError> {
    list_in(registry, &registry.views, ctx, registry.views.position())
}

/// A page of [`list`]: `limit` credentials after `cursor`, in id order (the whole list with
/// neither). `as_of` answers a whole list (`as_of::credentials`), never a page.
pub fn page(
    registry: &Registry,
    ctx: &Ctx,
    query: &api::CredentialsQuery,
) -> Result<Answer<api::Paged<api::Credential>>, AppError> {
    if query.as_of.is_some() {
        return Err(AppError::invalid(Invalid::new(
            "as_of",
            "as_of.with_page",
            "as_of answers every credential at once; leave out limit and cursor",
        )));
    }
    let Some(page) = crate::paging::Page::parse(query.limit, query.cursor.as_deref())? else {
        return list(registry, ctx).map(|answer| Answer {
            value: crate::paging::whole(answer.value),
            position: answer.position,
        });
    };
    let position = registry.views.position();
    let views = &registry.views;
    let org = ctx.org.as_str();
    let users = users_by_credential(views, ctx)?;
    let mut found = Vec::new();
    let mut after = page.after.clone();
    while found.len() <= page.limit {
        let rows = views.credentials_after(org, after.as_deref(), page.limit + 1)?;
        let Some(last) = rows.last() else { break };
        after = Some(last.credential.id.as_str().to_owned());
        let exhausted = rows.len() <= page.limit;
        for row in rows.iter().filter(|row| !row.credential.deleted) {
            let models = users
                .get(row.credential.id.as_str())
                .cloned()
                .unwrap_or_default();
            found.push(present::credential(
                row,
                state(registry, row),
                registry.now_ms(),
                models,
            ));
        }
        if exhausted {
            break;
        }
    }
    found.truncate(page.limit + 1);
    Ok(Answer {
        value: page.cut(found, |credential| credential.id.as_str()),
        position,
    })
}

/// [`list`] from `views` (the live ones, or a replay as of `position`).
pub(crate) fn list_in(
    registry: &Registry,
    views: &views::Views,
    ctx: &Ctx,
    position: u64,
) -> Result<Answer<Vec<api::Credential>>, AppError> {
    let rows = views.credentials(ctx.org.as_str())?;
    let users = users_by_credential(views, ctx)?;
    let value = rows
        .iter()
        .filter(|row| !row.credential.deleted)
        .map(|row| {
            let models = users
                .get(row.credential.id.as_str())
                .cloned()
                .unwrap_or_default();
            present::credential(row, state(registry, row), registry.now_ms(), models)
        })
        .collect();
    Ok(Answer { value, position })
}

/// One saved credential (a deleted one too), metadata only.
pub fn get(registry: &Registry, ctx: &Ctx, id: &str) -> Result<Answer<api::Credential>, AppError> {
    let position = registry.views.position();
    Ok(Answer {
        value: view(registry, ctx, id)?,
        position,
    })
}

pub(crate) fn view(registry: &Registry, ctx: &Ctx, id: &str) -> Result<api::Credential, AppError> {
    let row = found(registry, ctx, id)?;
    let models = users_by_credential(&registry.views, ctx)?
        .remove(row.credential.id.as_str())
        .unwrap_or_default();
    Ok(present::credential(
        &row,
        state(registry, &row),
        registry.now_ms(),
        models,
    ))
}

/// A credential of the caller's org by the id in a path, deleted or not, or 404.
pub(crate) fn found(registry: &Registry, ctx: &Ctx, id: &str) -> Result<CredentialRow, AppError> {
    let not_found = || AppError::NotFound {
        code: "credential.not_found",
        message: "no credential with this id in this org".into(),
    };
    if CredentialId::parse(id).is_err() {
        return Err(not_found());
    }
    registry
        .views
        .credential(ctx.org.as_str(), id)?
        .ok_or_else(not_found)
}

/// The slugs of the models that reference each credential, active or not.
fn users_by_credential(
    views: &views::Views,
    ctx: &Ctx,
) -> Result<std::collections::HashMap<String, Vec<String>>, AppError> {
    let mut users: std::collections::HashMap<String, Vec<String>> = Default::default();
    for row in views.models(ctx.org.as_str())? {
        if let Some(id) = &row.model.credential_id {
            users
                .entry(id.as_str().to_owned())
                .or_default()
                .push(row.model.slug.as_str().to_owned());
        }
    }
    Ok(users)
}

/// The active models that use credential `id`, by slug.
pub(crate) fn active_users(
    registry: &Registry,
    ctx: &Ctx,
    id: &CredentialId,
) -> Result<Vec<views::ModelRow>, AppError> {
    Ok(registry
        .views
        .models(ctx.org.as_str())?
        .into_iter()
        .filter(|row| {
            row.model.status == domain::model::Status::Active
                && row.model.credential_id.as_ref() == Some(id)
        })
        .collect())
}

/// What clients are told about a credential now: the domain's state, given the time and
/// whether this process could unwrap its current data key.
pub(crate) fn state(registry: &Registry, row: &CredentialRow) -> State {
    let readable = registry.key_health.readable(&key_id(
        &row.org,
        &row.credential.id,
        row.credential.version,
    ));
    row.credential.state(registry.now_ms(), readable)
}

/// A credential as a model shows it.
pub(crate) fn summary(registry: &Registry, row: &CredentialRow) -> api::CredentialSummary {
    present::credential_summary(row, state(registry, row))
}

/// The keyring entry of a credential version (as the vault names it).
pub(crate) fn key_id(org: &str, id: &CredentialId, version: u64) -> String {
    format!("{org}.{}.{version}", id.as_str())
}

/// Tells whether an entered secret equals a saved credential, without saving anything.
pub fn matching(
    registry: &Registry,
    ctx: &Ctx,
    request: api::MatchCredential,
) -> Result<Answer<api::CredentialMatch>, AppError> {
    ctx.require_admin()?;
    let provider = Provider::parse(&request.provider)?;
    let secret = parse::secret(request.credential, provider)?;
    let fingerprint = fingerprint(registry, ctx, provider, &secret);
    let saved = registry
        .views
        .credential_by_fingerprint(ctx.org.as_str(), &fingerprint)?;
    Ok(Answer {
        value: api::CredentialMatch {
            reuse_available: saved.as_ref().map(|row| summary(registry, row)),
        },
        position: registry.views.position(),
    })
}

/// A secret entered with a command and not saved yet: it becomes credential `id` once the
/// command is decided (see [`record`]).
pub(crate) struct Entered {
    pub id: CredentialId,
    pub provider: Provider,
    pub secret: CredentialSecret,
    pub fingerprint: Fingerprint,
}

/// What a command's credential fields mean for a model of `provider`: the choice the domain
/// decides on (with the saved credential of the same secret looked up), and the entered
/// secret to record if the choice falls on it.
pub(crate) fn choice(
    registry: &Registry,
    ctx: &Ctx,
    provider: Provider,
    request: CredentialRequest,
) -> Result<(CredentialChoice, Option<Entered>), AppError> {
    match request {
        CredentialRequest::None => Ok((CredentialChoice::None, None)),
        CredentialRequest::Saved(id) => {
            let row = saved(registry, ctx, &id)?;
            Ok((CredentialChoice::Saved(reference(&row)), None))
        }
        CredentialRequest::Entered(secret) => {
            let fingerprint = fingerprint(registry, ctx, provider, &secret);
            let same_secret = registry
                .views
                .credential_by_fingerprint(ctx.org.as_str(), &fingerprint)?
                .map(|row| reference(&row));
            let id = CredentialId::parse(&format!("cred_{}", crate::new_id()))?;
            let new = CredentialRef {
                id: id.clone(),
                provider,
                fingerprint,
            };
            let entered = Entered {
                id,
                provider,
                secret,
                fingerprint,
            };
            Ok((
                CredentialChoice::Entered { new, same_secret },
                Some(entered),
            ))
        }
    }
}

/// A recorded credential: its id (the first attempt's, for a retried command) and the log
/// position of the event (not yet waited for).
pub(crate) struct Recorded {
    pub id: CredentialId,
    pub seq: u64,
}

/// Seals `entered` under a new data key and records it. The command's views are not waited
/// for: the model event that follows waits for both.
pub(crate) async fn record(
    registry: &Registry,
    ctx: &Ctx,
    entered: Entered,
) -> Result<Recorded, AppError> {
    let org = ctx.org.as_str();
    let context = vault::SecretContext {
        org,
        credential_id: entered.id.as_str(),
        version: 1,
    };
    let (sealed, key) = registry
        .vault
        .seal_new(&context, &entered.secret.to_sealable())?;
    let command = credential::Command::Create {
        id: entered.id.clone(),
        provider: entered.provider,
        material: credential::SealedMaterial {
            kind: entered.secret.kind(),
            sealed,
            fingerprint: entered.fingerprint,
            preview: secrets::preview(&entered.secret.preview_source()),
            known_lifetime_ms: entered.secret.known_lifetime_ms(),
        },
    };
    let stream = Stream::new(entered.id.as_str(), None);
    let event = match execute::decide::<Credential>(ctx, stream, None, command) {
        Ok(Decision::Append(event)) => event,
        Ok(Decision::Retried | Decision::Unchanged) => {
            return Err(AppError::internal("a new credential decided nothing"));
        }
        Err(refused) => return Err(refusal(refused)),
    };
    // The key is in the keyring before its ciphertext is in the log.
    registry.vault.store(key).await?;
    let appended = execute::append::<Credential>(registry, ctx, stream, event)
        .await
        .map_err(refusal)?;
    if !appended.duplicate {
        return Ok(Recorded {
            id: entered.id,
            seq: appended.seq,
        });
    }
    // A retried command: its first attempt recorded the credential under another id.
    registry.settle(appended.seq).await?;
    let original = registry
        .views
        .command_target(org, &ctx.command_id, kind::CREDENTIAL)?
        .ok_or_else(|| AppError::internal("a retried credential has no command row"))?;
    Ok(Recorded {
        id: CredentialId::parse(&original)?,
        seq: appended.seq,
    })
}

fn refusal(refused: Refused<credential::Rejection>) -> AppError {
    match refused {
        // Ids are drawn fresh per command: a collision is a defect.
        Refused::Rejected(rejection) => {
            AppError::internal(format!("credential id collision: {rejection}"))
        }
        Refused::Conflict => AppError::internal("credential id collision"),
        Refused::Failed(error) => error,
    }
}

/// A saved credential of the caller's org (not deleted), or a clear refusal naming it.
pub(crate) fn saved(
    registry: &Registry,
    ctx: &Ctx,
    id: &CredentialId,
) -> Result<CredentialRow, AppError> {
    registry
        .views
        .credential(ctx.org.as_str(), id.as_str())?
        .filter(|row| !row.credential.deleted)
        .ok_or_else(|| {
            AppError::invalid(Invalid::new(
                "credential_id",
                "credential.not_found",
                "there is no saved credential with this id in this org".to_owned(),
            ))
        })
}

pub(crate) fn reference(row: &CredentialRow) -> CredentialRef {
    CredentialRef {
        id: row.credential.id.clone(),
        provider: row.credential.provider,
        fingerprint: row.credential.fingerprint,
    }
}

/// The keyed fingerprint of `secret` in the caller's org for `provider`.
pub(crate) fn fingerprint(
    registry: &Registry,
    ctx: &Ctx,
    provider: Provider,
    secret: &CredentialSecret,
) -> Fingerprint {
    registry
        .vault
        .fingerprint(ctx.org.as_str(), provider.as_str(), &secret.to_sealable())
}

/// Opens the current version of a saved credential of `org`: its plaintext, for the one
/// call that needs it (resolve, a connection test). A data key that is gone or cannot be
/// unwrapped is `credential.needs_reconfiguration`.
pub async fn open(
    registry: &Registry,
    org: &domain::values::OrgId,
    row: &CredentialRow,
) -> Result<CredentialSecret, AppError> {
    let id = row.credential.id.as_str();
    let context = vault::SecretContext {
        org: org.as_str(),
        credential_id: id,
        version: row.credential.version,
    };
    let opened = match registry.vault.open(&context, &row.sealed).await {
        Ok(opened) => {
            registry.key_health.mark(&context, true);
            opened
        }
        Err(error) => {
            if matches!(
                error,
                vault::VaultError::KeyDestroyed | vault::VaultError::KeyUnwrap
            ) {
                registry.key_health.mark(&context, false);
            }
            return Err(crate::error::opening(id, error));
        }
    };
    CredentialSecret::from_sealable(row.credential.kind, &opened).ok_or_else(|| {
        AppError::internal(format!("credential {id} does not have its kind's shape"))
    })
}
