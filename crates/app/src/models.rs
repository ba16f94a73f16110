//! Command handlers and queries for models and credentials.

use domain::Event;
use domain::event::kind;
use domain::model::{self, CredentialRef};
use domain::provider::{CredentialSecret, Provider, ProviderModelId};
use domain::values::{Costs, CredentialId, DisplayName, Slug};
use domain::{Invalid, credential};
use eventlog::{AppendError, Appended, Envelope, SCHEMA_VERSION, Subject};
use serde::Serialize;
use views::{ModelRow, StreamPos};

use crate::requests::{
    AddModelRequest, EditModelRequest, MatchCredentialRequest, Problems, parse_capabilities,
    parse_cost, parse_endpoint, parse_max_tokens,
};
use crate::responses::{
    CredentialSummary, CredentialView, ModelList, ModelView, PlatformModelView,
};
use crate::{Answer, AppError, Ctx, Registry, now_ms};

/// How many `-2`, `-3`, … suffixes to try for a taken slug before giving up.
const SLUG_ATTEMPTS: u32 = 1000;

/// What the slug candidates of a display name say about an add.
enum Candidates {
    /// This command already added the model under this slug.
    Added(Slug),
    /// Candidates from this suffix number on are free (as far as the views know).
    FreeFrom(u32),
}

#[derive(Clone, Debug, Serialize)]
pub struct AddOutcome {
    pub model: ModelView,
    /// Set when the secret entered equals a saved credential, which the model now uses
    /// instead of a second copy.
    pub reused_credential: Option<CredentialSummary>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CredentialMatch {
    /// The saved credential with this exact secret, if any ("Reuse saved credentials").
    pub reuse_available: Option<CredentialSummary>,
}

/// The credential a command ends up with, and the log position that made it (if new).
struct ResolvedCredential {
    reference: Option<CredentialRef>,
    reused: Option<CredentialSummary>,
    position: u64,
}

impl Registry {
    /// Appends one event of one aggregate; the message id is derived from the command id and
    /// the aggregate kind, so a retried command appends nothing twice.
    pub(crate) async fn append(
        &self,
        ctx: &Ctx,
        aggregate_id: &str,
        stream: Option<&StreamPos>,
        event: &Event,
    ) -> Result<Appended, AppendError> {
        if ctx.command_id.is_empty() {
            // Reads carry no command id; one reaching here is a defect, and an empty id
            // would make unrelated appends look like retries of each other.
            return Err(AppendError::Log(eventlog::LogError::Storage(
                "an append without a command id".into(),
            )));
        }
        let kind = event.kind();
        let subject = Subject::new(ctx.org.as_str(), kind, aggregate_id)
            .map_err(|e| AppendError::Log(eventlog::LogError::Storage(e.to_string())))?;
        let envelope = Envelope {
            schema_version: SCHEMA_VERSION,
            event_id: *uuid::Uuid::now_v7().as_bytes(),
            org: ctx.org.as_str().to_owned(),
            kind: kind.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            aggregate_version: stream.map_or(1, |s| s.version + 1),
            recorded_at_ms: now_ms(),
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
            command_id: ctx.command_id.clone(),
            prev_hash: stream.map_or([0; 32], |s| s.last_hash),
            payload: event.encode(),
        };
        let msg_id = format!("{}:{}:{kind}", ctx.org, ctx.command_id);
        let expected = stream.map_or(0, |s| s.last_seq);
        let appended = self
            .log
            .append(&subject, expected, &msg_id, envelope.encode())
            .await?;
        tracing::debug!(
            event = event.name(),
            seq = appended.seq,
            duplicate = appended.duplicate,
            "appended"
        );
        Ok(appended)
    }

    /// Waits until the local views reflect `position` (read your writes).
    pub(crate) async fn settle(&self, position: u64) -> Result<u64, AppError> {
        Ok(self
            .views
            .wait_for(position, self.read_your_writes_timeout)
            .await?)
    }

    pub async fn add_model(
        &self,
        ctx: &Ctx,
        request: AddModelRequest,
    ) -> Result<Answer<AddOutcome>, AppError> {
        ctx.require_admin()?;
        let parsed = request.parse().map_err(AppError::Invalid)?;
        let base = Slug::derive(&parsed.display_name);
        let first_free = match self.slug_candidates(ctx, &base)? {
            Candidates::FreeFrom(n) => n,
            Candidates::Added(slug) => {
                // A retry of a command that already landed: answer as the first time, before
                // the gate (its receipt may have expired since).
                let model = self.model_view(ctx, slug.as_str())?;
                return Ok(Answer {
                    value: AddOutcome {
                        model,
                        reused_credential: None,
                    },
                    position: self.views.position(),
                });
            }
        };
        // Check the draft fully before the gate, so a bad draft hears what is wrong with it
        // rather than that it lacks a test.
        let (fingerprint, credential_provider) = match (&parsed.credential, &parsed.credential_id) {
            (Some(secret), _) => (
                Some(self.vault.fingerprint(
                    ctx.org.as_str(),
                    parsed.provider.as_str(),
                    &secret.to_sealable(),
                )),
                Some(parsed.provider),
            ),
            (None, Some(id)) => {
                let row = self.saved_credential(ctx, id)?;
                (
                    Some(row.credential.fingerprint),
                    Some(row.credential.provider),
                )
            }
            (None, None) => (None, None),
        };
        let pending = credential_provider.map(|provider| CredentialRef {
            id: parsed.credential_id.clone().unwrap_or_else(|| {
                CredentialId::parse("pending").unwrap_or_else(|_| unreachable!())
            }),
            provider,
        });
        model::check_draft(parsed.provider, parsed.endpoint.as_ref(), pending.as_ref())?;
        self.check_gate(
            ctx,
            parsed.connection_test_id.as_deref(),
            parsed.provider,
            parsed.endpoint.as_ref(),
            &parsed.provider_model_id,
            fingerprint.as_ref(),
        )?;
        let credential = self
            .resolve_credential(
                ctx,
                parsed.provider,
                parsed.credential,
                parsed.credential_id.as_ref(),
            )
            .await?;
        let mut landed = None;
        for n in first_free..=SLUG_ATTEMPTS {
            let slug = base.with_suffix(n);
            // `slug_candidates` just found the first free; a later candidate may be taken
            // already. (Skipping a taken one is only a shortcut: the log refuses it anyway.)
            if n > first_free && self.views.model(ctx.org.as_str(), slug.as_str())?.is_some() {
                continue;
            }
            let command = model::Command::Add(model::Add {
                slug: slug.clone(),
                display_name: parsed.display_name.clone(),
                provider: parsed.provider,
                provider_model_id: parsed.provider_model_id.clone(),
                credential: credential.reference.clone(),
                endpoint: parsed.endpoint.clone(),
                max_tokens: parsed.max_tokens,
                capabilities: parsed.capabilities,
                costs: parsed.costs,
            });
            let events = model::decide(None, command).map_err(model_rejection)?;
            let Some(event) = events.into_iter().next() else {
                break;
            };
            // Uniqueness is the log's: expected last sequence 0 on the slug's subject.
            match self
                .append(ctx, slug.as_str(), None, &Event::Model(event))
                .await
            {
                Ok(appended) => {
                    landed = Some((slug, appended));
                    break;
                }
                Err(AppendError::Conflict { .. }) => continue,
                Err(AppendError::Log(e)) => return Err(e.into()),
            }
        }
        let Some((mut slug, appended)) = landed else {
            return Err(AppError::Conflict {
                code: "model.slug_exhausted",
                message: format!(
                    "every slug from {base} to {base}-{SLUG_ATTEMPTS} is taken; choose another display name"
                ),
                current_version: None,
            });
        };
        let position = self.settle(appended.seq.max(credential.position)).await?;
        if appended.duplicate {
            // The log already had this command, possibly under another slug candidate; if
            // none of this name's candidates is its model, the key came with another request.
            match self.slug_candidates(ctx, &base)? {
                Candidates::Added(original) => slug = original,
                Candidates::FreeFrom(_) => return Err(AppError::idempotency_key_reused()),
            }
        }
        let model = self.model_view(ctx, slug.as_str())?;
        Ok(Answer {
            value: AddOutcome {
                model,
                reused_credential: credential.reused,
            },
            position,
        })
    }

    /// Walks the slug candidates of `base` up to the first free one. Candidates are taken
    /// in order and a slug is never freed, so a model this command already added (a retry)
    /// is among the taken ones.
    fn slug_candidates(&self, ctx: &Ctx, base: &Slug) -> Result<Candidates, AppError> {
        for n in 1..=SLUG_ATTEMPTS {
            let slug = base.with_suffix(n);
            match self.views.model(ctx.org.as_str(), slug.as_str())? {
                Some(row) if row.added_by_command == ctx.command_id => {
                    return Ok(Candidates::Added(slug));
                }
                Some(_) => {}
                None => return Ok(Candidates::FreeFrom(n)),
            }
        }
        Ok(Candidates::FreeFrom(SLUG_ATTEMPTS + 1))
    }

    pub async fn edit_model(
        &self,
        ctx: &Ctx,
        slug: &str,
        request: EditModelRequest,
        if_match: Option<u64>,
    ) -> Result<Answer<ModelView>, AppError> {
        ctx.require_admin()?;
        let row = self.model_row(ctx, slug)?;
        if row.last_changed_by() == ctx.command_id {
            // A retry of this very edit, which landed (its If-Match named the version before
            // it): answer as the first time.
            return Ok(Answer {
                value: self.model_view(ctx, slug)?,
                position: self.views.position(),
            });
        }
        if let Some(expected) = if_match
            && expected != row.stream.version
        {
            return Err(version_conflict(row.stream.version));
        }
        let provider = row.model.provider;
        let mut problems = Problems::default();
        let edit_base = model::Edit {
            display_name: request
                .display_name
                .as_deref()
                .and_then(|raw| problems.take(DisplayName::parse(raw))),
            provider_model_id: request
                .provider_model_id
                .as_deref()
                .and_then(|raw| problems.take(ProviderModelId::parse(provider, raw))),
            credential: None,
            endpoint: problems
                .take(parse_endpoint(
                    provider,
                    request.endpoint_url.as_deref(),
                    request.region.as_deref(),
                ))
                .flatten(),
            max_tokens: request
                .max_tokens
                .as_ref()
                .and_then(|v| problems.take(parse_max_tokens(v))),
            capabilities: request
                .capabilities
                .and_then(|input| problems.take(parse_capabilities(input, row.model.capabilities))),
            costs: edited_costs(
                &mut problems,
                row.model.costs,
                request.input_cost_per_token,
                request.output_cost_per_token,
            ),
        };
        let credential_id = request
            .credential_id
            .as_deref()
            .and_then(|raw| problems.take(CredentialId::parse(raw)));
        let secret = match request.credential {
            Some(_) if request.credential_id.is_some() => {
                problems.0.push(Invalid::new(
                    "credential",
                    "credential.ambiguous",
                    "give a new credential or a saved credential_id, not both",
                ));
                None
            }
            Some(input) => problems.take(input.into_secret(provider)),
            None => None,
        };
        if !problems.0.is_empty() {
            return Err(AppError::Invalid(problems.0));
        }
        let credential = self
            .resolve_credential(ctx, provider, secret, credential_id.as_ref())
            .await?;
        let edit = model::Edit {
            credential: credential.reference,
            ..edit_base
        };
        let events =
            model::decide(Some(&row.model), model::Command::Edit(edit)).map_err(model_rejection)?;
        let Some(event) = events.into_iter().next() else {
            let position = self.settle(credential.position).await?;
            return Ok(Answer {
                value: self.model_view(ctx, slug)?,
                position,
            });
        };
        self.append_model_event(ctx, slug, &row.stream, event).await
    }

    pub fn get_model(&self, ctx: &Ctx, slug: &str) -> Result<Answer<ModelView>, AppError> {
        let position = self.views.position();
        Ok(Answer {
            value: self.model_view(ctx, slug)?,
            position,
        })
    }

    /// Platform and custom models, each group in a stable order.
    pub fn list_models(&self, ctx: &Ctx) -> Result<Answer<ModelList>, AppError> {
        let position = self.views.position();
        let platform = domain::catalog::platform_models()
            .iter()
            .map(PlatformModelView::new)
            .collect();
        let mut custom = Vec::new();
        for row in self.views.models(ctx.org.as_str())? {
            let credential = self.credential_of(ctx, &row)?;
            custom.push(ModelView::new(&row, credential.as_ref()));
        }
        Ok(Answer {
            value: ModelList { platform, custom },
            position,
        })
    }

    pub fn list_credentials(&self, ctx: &Ctx) -> Result<Answer<Vec<CredentialView>>, AppError> {
        let position = self.views.position();
        let rows = self.views.credentials(ctx.org.as_str())?;
        Ok(Answer {
            value: rows.iter().map(CredentialView::new).collect(),
            position,
        })
    }

    pub fn get_credential(&self, ctx: &Ctx, id: &str) -> Result<Answer<CredentialView>, AppError> {
        let position = self.views.position();
        let row = self
            .views
            .credential(ctx.org.as_str(), id)?
            .ok_or_else(|| AppError::NotFound {
                code: "credential.not_found",
                message: format!("no credential {} in this org", domain::echo(id)),
            })?;
        Ok(Answer {
            value: CredentialView::new(&row),
            position,
        })
    }

    /// Tells whether an entered secret equals a saved credential, without saving anything.
    pub fn match_credential(
        &self,
        ctx: &Ctx,
        request: MatchCredentialRequest,
    ) -> Result<Answer<CredentialMatch>, AppError> {
        ctx.require_admin()?;
        let provider = Provider::parse(&request.provider)?;
        let secret = request.credential.into_secret(provider)?;
        let fingerprint =
            self.vault
                .fingerprint(ctx.org.as_str(), provider.as_str(), &secret.to_sealable());
        let saved = self
            .views
            .credential_by_fingerprint(ctx.org.as_str(), &fingerprint)?;
        let reuse_available = saved.map(|row| CredentialSummary {
            id: row.credential.id.as_str().to_owned(),
            preview: row.credential.preview,
        });
        Ok(Answer {
            value: CredentialMatch { reuse_available },
            position: self.views.position(),
        })
    }

    /// Turns what a command says about credentials into a reference: a saved one by id, a
    /// saved one whose secret equals the entered one, or a newly sealed and recorded one.
    async fn resolve_credential(
        &self,
        ctx: &Ctx,
        provider: Provider,
        secret: Option<CredentialSecret>,
        credential_id: Option<&CredentialId>,
    ) -> Result<ResolvedCredential, AppError> {
        let org = ctx.org.as_str();
        if let Some(id) = credential_id {
            let row = self.saved_credential(ctx, id)?;
            let reference = CredentialRef {
                id: id.clone(),
                provider: row.credential.provider,
            };
            return Ok(ResolvedCredential {
                reference: Some(reference),
                reused: None,
                position: 0,
            });
        }
        let Some(secret) = secret else {
            return Ok(ResolvedCredential {
                reference: None,
                reused: None,
                position: 0,
            });
        };
        let sealable = secret.to_sealable();
        let fingerprint = self.vault.fingerprint(org, provider.as_str(), &sealable);
        if let Some(row) = self.views.credential_by_fingerprint(org, &fingerprint)? {
            let summary = CredentialSummary {
                id: row.credential.id.as_str().to_owned(),
                preview: row.credential.preview.clone(),
            };
            let reference = CredentialRef {
                id: row.credential.id,
                provider: row.credential.provider,
            };
            return Ok(ResolvedCredential {
                reference: Some(reference),
                reused: Some(summary),
                position: 0,
            });
        }
        let id = CredentialId::parse(&format!("cred_{}", crate::new_id()))?;
        let context = vault::SecretContext {
            org,
            credential_id: id.as_str(),
            version: 1,
        };
        let sealed = self.vault.seal(&context, &sealable).await?;
        let material = credential::SealedMaterial {
            kind: secret.kind(),
            sealed,
            fingerprint,
            preview: secrets::preview(&secret.preview_source()),
        };
        let command = credential::Command::Create {
            id: id.clone(),
            provider,
            material,
        };
        let events = credential::decide(None, command)
            .map_err(|e| AppError::Internal(format!("credential id collision: {e}")))?;
        let Some(event) = events.into_iter().next() else {
            return Err(AppError::Internal(
                "credential creation decided nothing".into(),
            ));
        };
        let appended = match self
            .append(ctx, id.as_str(), None, &Event::Credential(event))
            .await
        {
            Ok(appended) => appended,
            Err(AppendError::Conflict { .. }) => {
                return Err(AppError::Internal("credential id collision".into()));
            }
            Err(AppendError::Log(e)) => return Err(e.into()),
        };
        let mut final_id = id;
        if appended.duplicate {
            // A retried command: its first attempt recorded the credential under another id.
            self.settle(appended.seq).await?;
            if let Some(original) =
                self.views
                    .command_target(org, &ctx.command_id, kind::CREDENTIAL)?
            {
                final_id = CredentialId::parse(&original)?;
            }
        }
        Ok(ResolvedCredential {
            reference: Some(CredentialRef {
                id: final_id,
                provider,
            }),
            reused: None,
            position: appended.seq,
        })
    }

    /// A saved credential of the caller's org, or a clear refusal naming it.
    pub(crate) fn saved_credential(
        &self,
        ctx: &Ctx,
        id: &CredentialId,
    ) -> Result<views::CredentialRow, AppError> {
        self.views
            .credential(ctx.org.as_str(), id.as_str())?
            .ok_or_else(|| {
                AppError::invalid(Invalid::new(
                    "credential_id",
                    "credential.not_found",
                    format!("there is no saved credential {id} in this org"),
                ))
            })
    }

    /// Appends a model event against the stream the command read, waits for the views, and
    /// answers with the model; a lost race is 409 with the winning version.
    pub(crate) async fn append_model_event(
        &self,
        ctx: &Ctx,
        slug: &str,
        stream: &StreamPos,
        event: model::Event,
    ) -> Result<Answer<ModelView>, AppError> {
        let appended = match self
            .append(ctx, slug, Some(stream), &Event::Model(event))
            .await
        {
            Ok(appended) => appended,
            Err(error) => return Err(self.append_conflict(ctx, slug, error).await),
        };
        let position = self.settle(appended.seq).await?;
        Ok(Answer {
            value: self.model_view(ctx, slug)?,
            position,
        })
    }

    pub(crate) fn model_row(&self, ctx: &Ctx, slug: &str) -> Result<ModelRow, AppError> {
        let not_found = || AppError::NotFound {
            code: "model.not_found",
            message: format!("no model {} in this org", domain::echo(slug)),
        };
        if Slug::parse(slug).is_err() {
            return Err(not_found());
        }
        self.views
            .model(ctx.org.as_str(), slug)?
            .ok_or_else(not_found)
    }

    fn credential_of(
        &self,
        ctx: &Ctx,
        row: &ModelRow,
    ) -> Result<Option<views::CredentialRow>, AppError> {
        match &row.model.credential_id {
            Some(id) => Ok(self.views.credential(ctx.org.as_str(), id.as_str())?),
            None => Ok(None),
        }
    }

    pub(crate) fn model_view(&self, ctx: &Ctx, slug: &str) -> Result<ModelView, AppError> {
        let row = self.model_row(ctx, slug)?;
        let credential = self.credential_of(ctx, &row)?;
        Ok(ModelView::new(&row, credential.as_ref()))
    }

    /// A lost optimistic-concurrency race becomes 409 with the version that won, read once
    /// the views have caught up with the log (the winner's write may still be in flight).
    pub(crate) async fn append_conflict(
        &self,
        ctx: &Ctx,
        slug: &str,
        error: AppendError,
    ) -> AppError {
        match error {
            AppendError::Conflict { .. } => {
                if let Ok(last) = self.log.last_seq().await {
                    let _ = self.settle(last).await;
                }
                let current = self
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
            AppendError::Log(e) => e.into(),
        }
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

pub(crate) fn model_rejection(rejection: model::Rejection) -> AppError {
    match rejection {
        model::Rejection::Invalid(invalid) => AppError::invalid(invalid),
        model::Rejection::NotFound => AppError::NotFound {
            code: "model.not_found",
            message: "no such model".into(),
        },
        model::Rejection::SlugTaken => AppError::Conflict {
            code: "model.slug_taken",
            message: "a model with this slug exists".into(),
            current_version: None,
        },
        model::Rejection::Deactivated => AppError::Conflict {
            code: "model.deactivated",
            message: "the model is deactivated; it can no longer be edited".into(),
            current_version: None,
        },
        model::Rejection::NotDeactivated => AppError::Conflict {
            code: "model.active",
            message: "the model is active".into(),
            current_version: None,
        },
        model::Rejection::AlreadyDeactivated => AppError::Conflict {
            code: "model.already_deactivated",
            message: "the model is already deactivated".into(),
            current_version: None,
        },
    }
}

/// Applies cost edits: absent keeps, `null` clears, a value sets.
fn edited_costs(
    problems: &mut Problems,
    current: Costs,
    input: Option<serde_json::Value>,
    output: Option<serde_json::Value>,
) -> Option<Costs> {
    if input.is_none() && output.is_none() {
        return None;
    }
    let mut costs = current;
    if let Some(value) = input
        && let Some(parsed) = problems.take(parse_cost("input_cost_per_token", &value))
    {
        costs.input_per_token = parsed;
    }
    if let Some(value) = output
        && let Some(parsed) = problems.take(parse_cost("output_cost_per_token", &value))
    {
        costs.output_per_token = parsed;
    }
    Some(costs)
}
