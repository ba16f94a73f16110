//! Saved credentials: reading their metadata, recognising a secret that is saved already
//! ("Reuse saved credentials"), and recording a new one (sealed under its own data key).

use domain::Invalid;
use domain::credential::{self, Credential};
use domain::event::kind;
use domain::model::{CredentialChoice, CredentialRef};
use domain::provider::{CredentialSecret, Provider};
use domain::values::CredentialId;
use secrets::Fingerprint;
use views::CredentialRow;

use crate::execute::{self, Decision, Refused, Stream};
use crate::parse::{self, CredentialRequest};
use crate::{Answer, AppError, Ctx, Registry, present};

/// The org's saved credentials, metadata only.
pub fn list(registry: &Registry, ctx: &Ctx) -> Result<Answer<Vec<api::Credential>>, AppError> {
    let position = registry.views.position();
    let rows = registry.views.credentials(ctx.org.as_str())?;
    Ok(Answer {
        value: rows.iter().map(present::credential).collect(),
        position,
    })
}

/// One saved credential, metadata only.
pub fn get(registry: &Registry, ctx: &Ctx, id: &str) -> Result<Answer<api::Credential>, AppError> {
    let position = registry.views.position();
    let row = registry
        .views
        .credential(ctx.org.as_str(), id)?
        .ok_or_else(|| AppError::NotFound {
            code: "credential.not_found",
            message: "no credential with this id in this org".into(),
        })?;
    Ok(Answer {
        value: present::credential(&row),
        position,
    })
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
            reuse_available: saved.as_ref().map(present::credential_summary),
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

/// A saved credential of the caller's org, or a clear refusal naming it.
pub(crate) fn saved(
    registry: &Registry,
    ctx: &Ctx,
    id: &CredentialId,
) -> Result<CredentialRow, AppError> {
    registry
        .views
        .credential(ctx.org.as_str(), id.as_str())?
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
    let opened = registry
        .vault
        .open(&context, &row.sealed)
        .await
        .map_err(|e| crate::error::opening(id, e))?;
    CredentialSecret::from_sealable(row.credential.kind, &opened).ok_or_else(|| {
        AppError::internal(format!("credential {id} does not have its kind's shape"))
    })
}
