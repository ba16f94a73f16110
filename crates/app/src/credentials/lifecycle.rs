//! A credential's life as a resource: created with a name, renamed, rotated to a new version
//! (after a retest of every model using it, when asked), its retired versions shredded (their
//! data keys destroyed), and deleted once no active model uses it.

use domain::credential::{self, Credential, Outcome, Retest, SealedMaterial};
use domain::event::kind;
use domain::provider::CredentialSecret;
use domain::values::CredentialId;
use views::CredentialRow;

use crate::execute::{self, Decision, Refused, Stream};
use crate::parse;
use crate::{Answer, AppError, Ctx, Registry};

/// Creates a credential as a resource (`POST /v1/credentials`). A secret the org has saved
/// already is refused, naming the credential that holds it.
pub async fn create(
    registry: &Registry,
    ctx: &Ctx,
    request: api::CreateCredential,
) -> Result<Answer<api::Credential>, AppError> {
    ctx.require_admin()?;
    let org = ctx.org.as_str();
    let new = parse::new_credential(request).map_err(AppError::Invalid)?;
    let fingerprint = super::fingerprint(registry, ctx, new.provider, &new.secret);
    // A retry of a create that landed answers with what it created; the same key sent with
    // another secret or provider is another request, refused rather than answered with a
    // credential that holds none of it.
    if let Some(original) = registry
        .views
        .command_target(org, &ctx.command_id, kind::CREDENTIAL)?
    {
        let row = super::found(registry, ctx, &original)?;
        let first = row.history.first().map(|version| version.fingerprint);
        if row.credential.provider != new.provider || first != Some(fingerprint) {
            return Err(AppError::idempotency_key_reused());
        }
        return super::get(registry, ctx, &original);
    }
    let same_secret = registry
        .views
        .credential_by_fingerprint(org, &fingerprint)?
        .map(|row| row.credential.id);
    let id = CredentialId::parse(&format!("cred_{}", crate::new_id()))?;
    let context = vault::SecretContext {
        org,
        credential_id: id.as_str(),
        version: 1,
    };
    let (sealed, key) = registry
        .vault
        .seal_new(&context, &new.secret.to_sealable())?;
    let command = credential::Command::Register(Box::new(credential::Register {
        id: id.clone(),
        provider: new.provider,
        name: new.name,
        material: material(&new.secret, sealed, fingerprint),
        expires_at_ms: new.expires_at_ms,
        now_ms: registry.now_ms(),
        same_secret,
    }));
    let stream = Stream::new(id.as_str(), None);
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
    let position = registry.settle(appended.seq).await?;
    let id = match appended.duplicate {
        false => id.as_str().to_owned(),
        // A retry racing its first attempt: that one's credential is the answer.
        true => registry
            .views
            .command_target(org, &ctx.command_id, kind::CREDENTIAL)?
            .ok_or_else(|| AppError::internal("a retried credential has no command row"))?,
    };
    Ok(Answer {
        value: super::view(registry, ctx, &id)?,
        position,
    })
}

/// Renames a credential.
pub async fn rename(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
    request: api::RenameCredential,
) -> Result<Answer<api::Credential>, AppError> {
    ctx.require_admin()?;
    let row = super::found(registry, ctx, id)?;
    let name = domain::values::CredentialName::parse(&request.name)?;
    let done = execute::execute::<Credential>(
        registry,
        ctx,
        stream(&row),
        Some(&row.credential),
        credential::Command::Rename { name },
    )
    .await
    .map_err(refusal)?;
    Ok(Answer {
        value: super::view(registry, ctx, id)?,
        position: done.position(),
    })
}

/// Deletes a credential no active model uses, then shreds every version of it. Refused with
/// the models that use it until they are moved to another credential (or deactivated).
pub async fn delete(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
) -> Result<Answer<api::Credential>, AppError> {
    ctx.require_admin()?;
    let row = super::found(registry, ctx, id)?;
    let users = super::active_users(registry, ctx, &row.credential.id)?
        .into_iter()
        .map(|model| model.model.slug.as_str().to_owned())
        .collect();
    let done = execute::execute::<Credential>(
        registry,
        ctx,
        stream(&row),
        Some(&row.credential),
        credential::Command::Delete { users },
    )
    .await
    .map_err(refusal)?;
    let position = shred_retired(registry, ctx, id, done.position()).await?;
    Ok(Answer {
        value: super::view(registry, ctx, id)?,
        position,
    })
}

/// Destroys the data key of one retired version (`modelreg credentials shred`): its
/// ciphertext, in every copy of the log, can never be opened again. Shredding a shredded
/// version destroys its key again (a run interrupted between the two finishes) and records
/// nothing new.
pub async fn shred(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
    version: u64,
) -> Result<Answer<api::Credential>, AppError> {
    ctx.require_admin()?;
    let row = super::found(registry, ctx, id)?;
    let position = shred_version(registry, ctx, &row, version).await?;
    Ok(Answer {
        value: super::view(registry, ctx, id)?,
        position,
    })
}

/// Rotates a credential to a new secret: a new version, current for every model using the
/// credential at once (one event). With `retest`, every active model using it is tested with
/// the new secret first, concurrently through the connection-test worker, and the rotation
/// is refused, switching none, unless all pass. The retired version is then shredded.
pub async fn rotate(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
    request: api::RotateCredential,
) -> Result<Answer<api::Rotation>, AppError> {
    ctx.require_admin()?;
    let row = super::found(registry, ctx, id)?;
    let retest_wanted = request.retest;
    let (secret, expires_at_ms) =
        parse::rotation(request, row.credential.provider).map_err(AppError::Invalid)?;
    let org = ctx.org.as_str();
    let fingerprint = super::fingerprint(registry, ctx, row.credential.provider, &secret);
    if row.changed_by_command == ctx.command_id {
        // A retry of this very rotation, which landed: answer as the first time, once the
        // versions it retired are shredded (the first attempt may have stopped short of it).
        // The same key sent with another secret is another request.
        if row.credential.fingerprint != fingerprint {
            return Err(AppError::idempotency_key_reused());
        }
        let position = shred_retired(registry, ctx, id, registry.views.position()).await?;
        return Ok(Answer {
            value: api::Rotation {
                credential: super::view(registry, ctx, id)?,
                tests: Vec::new(),
            },
            position,
        });
    }
    let same_secret = registry
        .views
        .credential_by_fingerprint(org, &fingerprint)?
        .map(|saved| saved.credential.id);
    let (retest, tests) = if retest_wanted && !row.credential.deleted && same_secret.is_none() {
        let (retest, tests) = run_retest(registry, ctx, &row, &secret).await?;
        (Some(retest), tests)
    } else {
        (None, Vec::new())
    };
    let version = row.credential.version + 1;
    let credential_id = row.credential.id.as_str().to_owned();
    let context = vault::SecretContext {
        org,
        credential_id: &credential_id,
        version,
    };
    let plaintext = secret.to_sealable();
    let (mut sealed, key) = registry.vault.seal_new(&context, &plaintext)?;
    let mut key = Some(key);
    let mut row = row;
    let decide = |row: &CredentialRow, sealed: &secrets::Sealed| {
        let command = credential::Command::Rotate(Box::new(credential::Rotate {
            material: material(&secret, sealed.clone(), fingerprint),
            expires_at_ms,
            now_ms: registry.now_ms(),
            same_secret: same_secret.clone(),
            retest: retest.clone(),
        }));
        match execute::decide::<Credential>(ctx, stream(row), Some(&row.credential), command) {
            Ok(Decision::Append(event)) => Ok(event),
            Ok(Decision::Retried | Decision::Unchanged) => {
                Err(AppError::internal("a rotation decided nothing"))
            }
            Err(refused) => Err(refusal(refused)),
        }
    };
    // Another change of the credential while the retest ran (a rename, a shred) is no reason
    // to test again: the rotation is decided again on the fresh state, as long as that is
    // still the version it rotates from.
    let mut attempts = 0;
    let appended = loop {
        attempts += 1;
        let mut event = decide(&row, &sealed)?;
        if let Some(key) = key.take()
            && let Some(resealed) =
                store_new_version(registry, &context, &row, key, &plaintext).await?
        {
            sealed = resealed;
            event = decide(&row, &sealed)?;
        }
        match execute::append::<Credential>(registry, ctx, stream(&row), event).await {
            Ok(appended) => break appended,
            Err(Refused::Conflict) if attempts < 3 => {
                let last = registry.log.last_seq().await?;
                registry.settle(last).await?;
                let now = super::found(registry, ctx, id)?;
                if now.credential.version != version - 1 {
                    return Err(refusal(Refused::Conflict));
                }
                row = now;
            }
            Err(refused) => return Err(refusal(refused)),
        }
    };
    let position = registry.settle(appended.seq).await?;
    let position = shred_retired(registry, ctx, id, position).await?;
    Ok(Answer {
        value: api::Rotation {
            credential: super::view(registry, ctx, id)?,
            tests,
        },
        position,
    })
}

/// Stores the data key of a rotation's new version, before its event is appended. When the
/// version has a key already, answers the secret sealed again under that key, which the
/// event must carry instead (see inside: replacing it could strand a racing rotation).
async fn store_new_version(
    registry: &Registry,
    context: &vault::SecretContext<'_>,
    row: &CredentialRow,
    key: vault::UnstoredKey,
    plaintext: &secrets::Secret,
) -> Result<Option<secrets::Sealed>, AppError> {
    match registry.vault.store(key.clone()).await {
        Ok(()) => return Ok(None),
        Err(vault::VaultError::KeyExists) => {}
        Err(other) => return Err(other.into()),
    }
    // The version has a key already: stored by a rotation that is about to append (on
    // another replica, say) or by one interrupted before it could. Either may be the one
    // whose event lands, so the key stays and this rotation seals with it too.
    match registry.vault.seal(context, plaintext).await {
        Ok(sealed) => return Ok(Some(sealed)),
        Err(vault::VaultError::KeyUnwrap) => {}
        Err(other) => return Err(other.into()),
    }
    // A key this master key cannot unwrap protects nothing this rotation could append: it
    // was left by an attempt under an earlier master key. It is replaced, unless the
    // credential moved meanwhile.
    let last = registry.log.last_seq().await?;
    registry.settle(last).await?;
    let now = registry
        .views
        .credential(context.org, context.credential_id)?
        .ok_or_else(|| AppError::internal("a rotated credential has no row"))?;
    if now.stream.last_seq != row.stream.last_seq {
        return Err(AppError::Conflict {
            code: "credential.conflict",
            message: "the credential was changed by someone else at the same time; reload it and try again".into(),
            current_version: None,
        });
    }
    tracing::warn!(credential = %context.credential_id, version = context.version, "replacing a data key the master key cannot unwrap, left by an interrupted rotation");
    registry.vault.replace(key).await?;
    Ok(None)
}

/// Tests the new secret with every active model that uses the credential, concurrently
/// (each test its own command, derived from this one, so a retried rotation reuses them),
/// and waits for their outcomes.
async fn run_retest(
    registry: &Registry,
    ctx: &Ctx,
    row: &CredentialRow,
    secret: &CredentialSecret,
) -> Result<(Retest, Vec<api::ConnectionTest>), AppError> {
    use crate::connection_tests::{self, MAX_WAIT};
    let users = super::active_users(registry, ctx, &row.credential.id)?;
    let runs = users.iter().map(|user| async move {
        let slug = user.model.slug.as_str();
        let test_ctx = ctx.derived(&format!("retest-{slug}"));
        let copy = CredentialSecret::from_sealable(secret.kind(), &secret.to_sealable())
            .ok_or_else(|| AppError::internal("a secret does not have its kind's shape"))?;
        let requested = connection_tests::request_with(registry, &test_ctx, user, copy).await?;
        let test = connection_tests::get(registry, ctx, &requested.value.id, Some(MAX_WAIT))
            .await?
            .value;
        Ok::<_, AppError>((slug.to_owned(), test))
    });
    let mut outcomes = Vec::with_capacity(users.len());
    let mut tests = Vec::with_capacity(users.len());
    for run in futures::future::join_all(runs).await {
        let (model, test) = run?;
        let result = match (
            &test.result,
            registry.views.connection_test(ctx.org.as_str(), &test.id)?,
        ) {
            (Some(_), Some(row)) => row.test.result,
            _ => None,
        };
        outcomes.push(Outcome { model, result });
        tests.push(test);
    }
    let retest = Retest {
        users: users
            .iter()
            .map(|user| user.model.slug.as_str().to_owned())
            .collect(),
        outcomes,
    };
    Ok((retest, tests))
}

/// The shredding a rotation or deletion at `seq` owes, for the workers: every retired
/// version of credential `id` still marked unshredded is shredded (its command stopped short
/// of it: a crash, or views that lagged). Idempotent; true when something was owed.
pub async fn finish_retirement(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
    seq: u64,
) -> Result<bool, AppError> {
    registry.settle(seq).await?;
    let row = super::found(registry, ctx, id)?;
    if row.credential.retired_versions().is_empty() {
        return Ok(false);
    }
    shred_retired(registry, ctx, id, registry.views.position()).await?;
    Ok(true)
}

/// Shreds every retired version of credential `id` (after a rotation or a deletion), each
/// as its own command derived from this one. Returns the position the views then reflect.
async fn shred_retired(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
    position: u64,
) -> Result<u64, AppError> {
    let row = super::found(registry, ctx, id)?;
    let mut position = position;
    for version in row.credential.retired_versions() {
        let shred_ctx = ctx.derived(&format!("shred-{version}"));
        let row = super::found(registry, ctx, id)?;
        position = position.max(shred_version(registry, &shred_ctx, &row, version).await?);
    }
    Ok(position)
}

/// Decides the shredding of `version`, destroys its data key, then records it: a crash in
/// between leaves the key destroyed and the version not yet marked, which the next shred
/// records (never a version marked shredded whose key still opens). A change of the
/// credential meanwhile (a rename, say) makes it read the credential again and record.
async fn shred_version(
    registry: &Registry,
    ctx: &Ctx,
    row: &CredentialRow,
    version: u64,
) -> Result<u64, AppError> {
    let context = vault::SecretContext {
        org: ctx.org.as_str(),
        credential_id: row.credential.id.as_str(),
        version,
    };
    let mut row = row.clone();
    for _ in 0..5 {
        let stream = Stream::new(row.credential.id.as_str(), Some(&row.stream));
        let decided = execute::decide::<Credential>(
            ctx,
            stream,
            Some(&row.credential),
            credential::Command::Shred { version },
        )
        .map_err(refusal)?;
        registry.vault.destroy(&context).await?;
        registry.key_health.mark(&context, false);
        let Decision::Append(event) = decided else {
            return Ok(registry.views.position());
        };
        match execute::append::<Credential>(registry, ctx, stream, event).await {
            Ok(appended) => return registry.settle(appended.seq).await,
            Err(Refused::Conflict) => {
                let last = registry.log.last_seq().await?;
                registry.settle(last).await?;
                row = super::found(registry, ctx, row.credential.id.as_str())?;
            }
            Err(refused) => return Err(refusal(refused)),
        }
    }
    Err(refusal(Refused::Conflict))
}

fn material(
    secret: &CredentialSecret,
    sealed: secrets::Sealed,
    fingerprint: secrets::Fingerprint,
) -> SealedMaterial {
    SealedMaterial {
        kind: secret.kind(),
        sealed,
        fingerprint,
        preview: secrets::preview(&secret.preview_source()),
        known_lifetime_ms: secret.known_lifetime_ms(),
    }
}

/// The credential's stream as the views hold it, with its last user command (a retry of a
/// command that landed is recognised).
fn stream(row: &CredentialRow) -> Stream<'_> {
    Stream {
        id: row.credential.id.as_str(),
        at: Some(&row.stream),
        last_command: Some(&row.changed_by_command),
    }
}

/// A refused credential command as the caller hears it.
fn refusal(refused: Refused<credential::Rejection>) -> AppError {
    use credential::Rejection;
    let rejection = match refused {
        Refused::Rejected(rejection) => rejection,
        Refused::Conflict => {
            return AppError::Conflict {
                code: "credential.conflict",
                message: "the credential was changed by someone else at the same time; reload it and try again".into(),
                current_version: None,
            };
        }
        Refused::Failed(error) => return error,
    };
    let conflict = |code, message: String| AppError::Conflict {
        code,
        message,
        current_version: None,
    };
    match rejection {
        Rejection::Invalid(invalid) => AppError::invalid(invalid),
        // Ids are drawn fresh per command: a collision is a defect.
        Rejection::AlreadyExists => AppError::internal("credential id collision"),
        Rejection::NotFound => AppError::NotFound {
            code: "credential.not_found",
            message: "no credential with this id in this org".into(),
        },
        Rejection::Deleted => conflict(
            "credential.deleted",
            "the credential is deleted; create a new one".into(),
        ),
        Rejection::SecretSaved(id) => conflict(
            "credential.secret_saved",
            format!("this secret is saved already, as credential {id}: use that one"),
        ),
        Rejection::SameSecret => AppError::invalid(domain::Invalid::new(
            "credential",
            "credential.same_secret",
            "the new secret is the one the credential has now; give the new one",
        )),
        Rejection::InUse { models } => AppError::CredentialInUse { models },
        Rejection::RetestFailed(failures) => AppError::RetestFailed {
            failures: failures
                .into_iter()
                .map(|f| api::RetestFailure {
                    model: f.model,
                    class: f.class,
                    hint: f.hint,
                })
                .collect(),
        },
        Rejection::NoSuchVersion(_) => AppError::NotFound {
            code: "credential.version_not_found",
            message: "the credential has no such version".into(),
        },
        Rejection::VersionInUse(_) => conflict(
            "credential.version_in_use",
            "that version is the current one, which its models use: rotate the credential first, or delete it".into(),
        ),
    }
}
