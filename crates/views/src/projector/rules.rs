//! The event-to-row rules: how each event changes the rows of the views.
//!
//! Rules read and write rows only through the batch's [`Tables`], so they see the writes of
//! earlier events in the same batch; the checkpoint is the batch's business, not theirs.

use domain::event::Event;
use domain::model::{self, Status};
use domain::{connection_test, credential, org};
use eventlog::Envelope;

use super::ProjectError;
use super::batch::{Tables, read, write};
use super::reader::Decoded;
use crate::rows::{
    ConnectionTestRow, CredentialRow, Deactivation, LastTest, ModelRow, Notice, OrgRow, StreamPos,
    TokenRow, VersionRow,
};
use crate::store::key;

mod catalog_rows;
mod usage_rows;
mod workflow_rows;

use catalog_rows::{apply_catalog, warn_of_retirement};
use usage_rows::apply_usage;
use workflow_rows::{apply_workflow, clear_notices, give_notice};

/// The `kind` under which the `commands` view keeps the token a command issued (tokens live
/// in the org's stream, so the aggregate kind would name the org).
pub const TOKEN_ISSUED: &str = "token";

/// Folds one decoded event into the rows; an event the rows cannot take is a poison event.
pub(super) fn apply_one(t: &mut Tables<'_>, message: &Decoded) -> Result<(), ProjectError> {
    let Decoded {
        envelope, event, ..
    } = message;
    let at = Meta {
        seq: message.seq,
        hash: message.hash,
        version: envelope.aggregate_version,
        recorded_at_ms: envelope.recorded_at_ms,
        actor: &envelope.actor.label,
        command_id: &envelope.command_id,
    };
    let org_id = envelope.org.as_str();
    // First, while the rows still say how things were before the event.
    super::audit::record(t, message)?;
    // Which command created a credential, a connection test or a token, whose ids are drawn
    // afresh by each attempt: a retry finds the original here. (A model's slug is found
    // through its row, and other events create nothing.)
    match event {
        Event::Credential(credential::Event::Created(_) | credential::Event::Registered(_))
        | Event::ConnectionTest(connection_test::Event::Requested { .. }) => {
            // `<org>/<command id>/<kind>`, as `key` would make it, in one allocation.
            let command_key = format!("{org_id}/{}/{}", envelope.command_id, envelope.kind);
            write(&mut t.commands, command_key, &envelope.aggregate_id)?;
        }
        Event::Org(
            org::Event::TokenIssued { token_id, .. }
            | org::Event::TokenIssuedExpiring { token_id, .. },
        ) => {
            let command_key = format!("{org_id}/{}/{TOKEN_ISSUED}", envelope.command_id);
            write(&mut t.commands, command_key, &token_id.as_str())?;
        }
        _ => {}
    }
    match event {
        Event::Org(event) => apply_org(t, org_id, event, &at),
        Event::Credential(event) => apply_credential(t, org_id, &envelope.aggregate_id, event, &at),
        Event::Model(event) => apply_model(t, org_id, &envelope.aggregate_id, event, &at),
        Event::Workflow(event) => apply_workflow(t, org_id, &envelope.aggregate_id, event, &at),
        Event::ConnectionTest(event) => apply_connection_test(t, envelope, event, &at),
        Event::Catalog(event) => apply_catalog(t, event, &at),
        Event::Usage(event) => apply_usage(t, org_id, &envelope.aggregate_id, event, &at),
    }
}

struct Meta<'a> {
    seq: u64,
    hash: [u8; 32],
    version: u64,
    recorded_at_ms: i64,
    actor: &'a str,
    command_id: &'a str,
}

impl Meta<'_> {
    fn stream(&self) -> StreamPos {
        StreamPos {
            version: self.version,
            last_seq: self.seq,
            last_hash: self.hash,
        }
    }
}

fn apply_org(
    t: &mut Tables<'_>,
    org_id: &str,
    event: &org::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    let state: Option<OrgRow> = read(&t.orgs, org_id)?;
    match event {
        org::Event::Created { name } => {
            let row = OrgRow {
                id: org_id.to_owned(),
                name: name.clone(),
                created_at_ms: at.recorded_at_ms,
                tokens: Vec::new(),
                active_admins: Vec::new(),
                revoked: Vec::new(),
                default_model: None,
                hidden_models: Vec::new(),
                stream: at.stream(),
            };
            write(&mut t.orgs, org_id, &row)
        }
        org::Event::TokenIssued {
            token_id,
            label,
            role,
            hash,
        }
        | org::Event::TokenIssuedExpiring {
            token_id,
            label,
            role,
            hash,
            ..
        } => {
            let expires_at_ms = match event {
                org::Event::TokenIssuedExpiring { expires_at_ms, .. } => Some(*expires_at_ms),
                _ => None,
            };
            let Some(mut row) = state else {
                return Err(ProjectError::Poison {
                    seq: at.seq,
                    why: "token issued for an unknown org".into(),
                });
            };
            row.tokens.push(token_id.clone());
            if *role == domain::org::Role::Admin {
                row.active_admins.push(token_id.clone());
            }
            row.stream = at.stream();
            write(&mut t.orgs, org_id, &row)?;
            let token = TokenRow {
                token_id: token_id.clone(),
                org: org_id.to_owned(),
                label: label.clone(),
                role: *role,
                hash: *hash,
                issued_at_ms: at.recorded_at_ms,
                issued_by: at.actor.to_owned(),
                revoked: None,
                expires_at_ms,
            };
            write(&mut t.tokens, token_id.as_str(), &token)
        }
        org::Event::TokenRevoked { token_id } => {
            let poison = |why: &str| ProjectError::Poison {
                seq: at.seq,
                why: why.into(),
            };
            let mut row = state.ok_or_else(|| poison("token revoked in an unknown org"))?;
            let mut token: TokenRow = read(&t.tokens, token_id.as_str())?
                .ok_or_else(|| poison("an unknown token revoked"))?;
            row.active_admins.retain(|id| id != token_id);
            row.revoked.push(token_id.clone());
            row.stream = at.stream();
            write(&mut t.orgs, org_id, &row)?;
            token.revoked = Some((at.recorded_at_ms, at.actor.to_owned()));
            write(&mut t.tokens, token_id.as_str(), &token)
        }
        org::Event::DefaultModelChosen { .. }
        | org::Event::PlatformModelsHidden { .. }
        | org::Event::PlatformDependentsWarned { .. } => {
            let Some(mut row) = state else {
                return Err(ProjectError::Poison {
                    seq: at.seq,
                    why: "a platform model choice of an unknown org".into(),
                });
            };
            row.stream = at.stream();
            match event {
                org::Event::DefaultModelChosen { model } => row.default_model = model.clone(),
                org::Event::PlatformModelsHidden { models } => row.hidden_models = models.clone(),
                org::Event::PlatformDependentsWarned {
                    model,
                    retirement_seq,
                    workflow_ids,
                } => warn_of_retirement(t, org_id, model, *retirement_seq, workflow_ids)?,
                _ => {}
            }
            write(&mut t.orgs, org_id, &row)
        }
    }
}

fn apply_credential(
    t: &mut Tables<'_>,
    org_id: &str,
    id: &str,
    event: &credential::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    let row_key = key(org_id, id);
    let version_row = |version: u64, preview: &str, fingerprint: secrets::Fingerprint| VersionRow {
        version,
        preview: preview.to_owned(),
        fingerprint,
        created_at_ms: at.recorded_at_ms,
        created_by: at.actor.to_owned(),
        shredded_at_ms: None,
    };
    let (credential, sealed, fingerprint) = match event {
        credential::Event::Created(credential::Created {
            sealed,
            fingerprint,
            ..
        })
        | credential::Event::Registered(credential::Registered {
            sealed,
            fingerprint,
            ..
        }) => {
            let Some(credential) = credential::evolve(None, event) else {
                return Ok(());
            };
            (credential, sealed, fingerprint)
        }
        _ => {
            let Some(mut row) = read::<CredentialRow>(&t.credentials, &row_key)? else {
                return Err(ProjectError::Poison {
                    seq: at.seq,
                    why: "an event of an unknown credential".into(),
                });
            };
            let before = row.credential.clone();
            let Some(after) = credential::evolve(Some(before.clone()), event) else {
                return Ok(());
            };
            match event {
                credential::Event::Rotated(rotated) => {
                    row.sealed = rotated.sealed.clone();
                    // The new version is untested as a saved credential.
                    row.last_test = None;
                    row.history.push(version_row(
                        rotated.version,
                        &rotated.preview,
                        rotated.fingerprint,
                    ));
                }
                credential::Event::Shredded { version } => {
                    for v in &mut row.history {
                        if v.version == *version {
                            v.shredded_at_ms = Some(at.recorded_at_ms);
                        }
                    }
                }
                _ => {}
            }
            // The fingerprint index names live credentials by their current secret.
            if before.fingerprint != after.fingerprint || after.deleted {
                t.fingerprints
                    .remove(key(org_id, &hex::encode(before.fingerprint)));
            }
            if !after.deleted {
                write(
                    &mut t.fingerprints,
                    key(org_id, &hex::encode(after.fingerprint)),
                    &after.id.as_str().to_owned(),
                )?;
            }
            if !matches!(event, credential::Event::Shredded { .. }) {
                row.changed_by_command = at.command_id.to_owned();
            }
            row.credential = after;
            row.updated_at_ms = at.recorded_at_ms;
            row.stream = at.stream();
            return write(&mut t.credentials, row_key, &row);
        }
    };
    let row = CredentialRow {
        org: org_id.to_owned(),
        history: vec![version_row(
            credential.version,
            &credential.preview,
            credential.fingerprint,
        )],
        credential,
        sealed: sealed.clone(),
        used_by: 0,
        created_at_ms: at.recorded_at_ms,
        created_by: at.actor.to_owned(),
        updated_at_ms: at.recorded_at_ms,
        stream: at.stream(),
        last_test: None,
        changed_by_command: at.command_id.to_owned(),
    };
    write(&mut t.credentials, row_key, &row)?;
    write(
        &mut t.fingerprints,
        key(org_id, &hex::encode(fingerprint)),
        &id.to_owned(),
    )
}

fn apply_model(
    t: &mut Tables<'_>,
    org_id: &str,
    slug: &str,
    event: &model::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    let row_key = key(org_id, slug);
    // A model is added once, as the first event of its subject (the log enforces expected
    // sequence 0), so there is nothing before it to read.
    let before: Option<ModelRow> = match event {
        model::Event::Added(_) if at.version == 1 => None,
        _ => read(&t.models, &row_key)?,
    };
    let Some(after) = model::evolve(before.as_ref().map(|r| r.model.clone()), event) else {
        return Err(ProjectError::Poison {
            seq: at.seq,
            why: format!("{event:?} for unknown model {slug}"),
        });
    };
    // Keep the credential's used-by count: active models that reference it.
    let uses = |m: Option<&domain::model::Model>| {
        m.filter(|m| m.status == Status::Active)
            .and_then(|m| m.credential_id.clone())
    };
    let old_use = uses(before.as_ref().map(|r| &r.model));
    let new_use = uses(Some(&after));
    if old_use != new_use {
        for (id, delta) in [(old_use, -1i64), (new_use, 1i64)] {
            let Some(id) = id else { continue };
            let cred_key = key(org_id, id.as_str());
            if let Some(mut row) = read::<CredentialRow>(&t.credentials, &cred_key)? {
                row.used_by = (i64::from(row.used_by) + delta).max(0) as u32;
                write(&mut t.credentials, &cred_key, &row)?;
            }
        }
    }
    let mut row = match before {
        Some(before) => ModelRow {
            model: after,
            changed_by_command: if matches!(event, model::Event::DependentsWarned { .. }) {
                before.changed_by_command.clone()
            } else {
                Some(at.command_id.to_owned())
            },
            updated_at_ms: at.recorded_at_ms,
            updated_by: at.actor.to_owned(),
            stream: at.stream(),
            ..before
        },
        None => ModelRow {
            org: org_id.to_owned(),
            model: after,
            added_by_command: at.command_id.to_owned(),
            changed_by_command: None,
            created_at_ms: at.recorded_at_ms,
            created_by: at.actor.to_owned(),
            updated_at_ms: at.recorded_at_ms,
            updated_by: at.actor.to_owned(),
            stream: at.stream(),
            deactivation: None,
        },
    };
    match event {
        model::Event::Deactivated => {
            row.deactivation = Some(Deactivation {
                at_ms: at.recorded_at_ms,
                by: at.actor.to_owned(),
                seq: at.seq,
                warned: None,
            });
        }
        model::Event::DependentsWarned { workflow_ids, .. } => {
            let Some(deactivation) = row.deactivation.as_mut() else {
                return write(&mut t.models, &row_key, &row);
            };
            deactivation.warned = Some(workflow_ids.clone());
            let notice = Notice {
                model: slug.to_owned(),
                deactivated_at_ms: deactivation.at_ms,
                deactivated_by: deactivation.by.clone(),
            };
            give_notice(t, org_id, workflow_ids, &notice)?;
        }
        model::Event::Reactivated => {
            row.deactivation = None;
            clear_notices(t, org_id, slug)?;
        }
        model::Event::Added(_) | model::Event::Edited(_) => {}
    }
    write(&mut t.models, row_key, &row)
}

fn apply_connection_test(
    t: &mut Tables<'_>,
    envelope: &Envelope,
    event: &connection_test::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    let row_key = key(&envelope.org, &envelope.aggregate_id);
    let before: Option<ConnectionTestRow> = read(&t.tests, &row_key)?;
    let Some(test) = connection_test::evolve(before.as_ref().map(|r| r.test.clone()), event) else {
        return Err(ProjectError::Poison {
            seq: at.seq,
            why: "a result for an unknown connection test".into(),
        });
    };
    let row = match (before, event) {
        (_, connection_test::Event::Requested { draft, .. }) => {
            let org =
                domain::values::OrgId::parse(&envelope.org).map_err(|e| ProjectError::Poison {
                    seq: at.seq,
                    why: e.to_string(),
                })?;
            ConnectionTestRow {
                org: envelope.org.clone(),
                id: envelope.aggregate_id.clone(),
                digest: draft.digest(&org),
                test,
                requested_at_ms: at.recorded_at_ms,
                requested_by: at.actor.to_owned(),
                completed_at_ms: None,
                stream: at.stream(),
            }
        }
        (Some(before), connection_test::Event::Completed(result)) => {
            // A test of a saved credential's current version is that credential's last
            // test (one of a version rotated away since says nothing of the secret in use).
            if let connection_test::TestCredential::Saved { id, version } = &test.draft.credential {
                let credential_key = key(&envelope.org, id.as_str());
                if let Some(mut credential) =
                    read::<CredentialRow>(&t.credentials, &credential_key)?
                    && credential.credential.version == *version
                {
                    credential.last_test = Some(LastTest {
                        class: result.class.clone(),
                        completed_at_ms: at.recorded_at_ms,
                        model: test.model.as_ref().map(|m| m.as_str().to_owned()),
                    });
                    write(&mut t.credentials, credential_key, &credential)?;
                }
            }
            ConnectionTestRow {
                test,
                completed_at_ms: Some(at.recorded_at_ms),
                stream: at.stream(),
                ..before
            }
        }
        (None, connection_test::Event::Completed(_)) => {
            return Err(ProjectError::Poison {
                seq: at.seq,
                why: "a result for an unknown connection test".into(),
            });
        }
    };
    write(&mut t.tests, &row_key, &row)
}

#[cfg(test)]
mod tests {
    use domain::{catalog, workflow};
    use eventlog::Stored;
    use redb::Durability;

    use super::*;
    use crate::Views;
    use crate::projector::batch::apply_batch;
    use crate::projector::fixtures::{envelope, messages};
    use crate::projector::reader::decode_all;

    /// Given a seeded catalog and a workflow on a platform model, when the model is retired
    /// and the dependents worker records whom it warned, then the retirement says when, by
    /// whom and whom, the workflow has one notice, and the history has both changes.
    #[test]
    fn a_platform_retirement_and_its_warning_reach_the_catalog_and_the_workflow() {
        let dir = tempfile::tempdir().unwrap();
        let views = Views::open(&dir.path().join("views.redb")).unwrap();
        let shipped = catalog::shipped();
        let seeded = catalog::decide(
            None,
            catalog::Command::Seed {
                default: shipped.default,
                models: shipped.models,
                as_of: catalog::Day::parse("2026-01-01").unwrap(),
            },
        )
        .unwrap()
        .remove(0);
        let grok = "x-ai/grok-4.3";
        let workflow = Event::Workflow(workflow::Event::Saved(workflow::Workflow {
            name: "Nightly".into(),
            active: true,
            steps: vec![workflow::Step {
                model: grok.into(),
                features: workflow::Features::default(),
            }],
        }));
        let message = |seq, subject: &str, kind, id, version, event: &Event| Stored {
            seq,
            subject: subject.into(),
            data: envelope(kind, id, version, event),
        };
        let created = domain::event::samples().remove(0).1;
        let batch = [
            message(1, "reg.acme.org.acme", "org", "acme", 1, &created),
            message(
                2,
                "reg.acme.workflow.wf-1",
                "workflow",
                "wf-1",
                1,
                &workflow,
            ),
            message(
                3,
                "reg._platform.catalog.platform",
                "catalog",
                "platform",
                1,
                &Event::Catalog(seeded),
            ),
            message(
                4,
                "reg._platform.catalog.platform",
                "catalog",
                "platform",
                2,
                &Event::Catalog(catalog::Event::Retired {
                    id: grok.into(),
                    reason: "superseded".into(),
                }),
            ),
            message(
                5,
                "reg.acme.org.acme",
                "org",
                "acme",
                2,
                &Event::Org(org::Event::PlatformDependentsWarned {
                    model: grok.into(),
                    retirement_seq: 4,
                    workflow_ids: vec!["wf-1".into()],
                }),
            ),
        ];
        apply_batch(&views, &[decode_all(&batch).unwrap()], Durability::None).unwrap();
        let row = views.catalog().unwrap().unwrap();
        let retirement = &row.retirements[grok];
        assert_eq!(
            (retirement.seq, retirement.reason.as_str()),
            (4, "superseded")
        );
        assert_eq!(retirement.warned["acme"], ["wf-1"]);
        assert_eq!(row.history.len(), 2);
        assert_eq!(row.history[1].event, "catalog.retired");
        let notices = views.workflow("acme", "wf-1").unwrap().unwrap().notices;
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].model, grok);
        // A catalog change before any seed is a poison event.
        let fresh = Views::open(&dir.path().join("fresh.redb")).unwrap();
        let early = decode_all(&batch[3..4]).unwrap();
        assert!(matches!(
            apply_batch(&fresh, &[early], Durability::None),
            Err(ProjectError::Poison { seq: 4, .. })
        ));
    }

    #[test]
    fn only_creations_of_credentials_tests_and_tokens_are_indexed_by_command() {
        let dir = tempfile::tempdir().unwrap();
        let views = Views::open(&dir.path().join("views.redb")).unwrap();
        apply_batch(
            &views,
            &[decode_all(&messages()).unwrap()],
            Durability::None,
        )
        .unwrap();
        // The model is found by the command that added it, through its row.
        let row = views.model("acme", "team-gpt").unwrap().unwrap();
        assert_eq!(row.added_by_command, "c1-team-gpt");
        assert_eq!(
            views
                .command_target("acme", "c1-team-gpt", "model")
                .unwrap(),
            None
        );
        assert_eq!(
            views.command_target("acme", "c1-acme", "org").unwrap(),
            None
        );
        // A token's issue is, under its own kind.
        let issued = domain::event::samples()
            .into_iter()
            .find(|(name, _)| *name == "org.token_issued")
            .map(|(_, event)| event)
            .unwrap();
        let Event::Org(org::Event::TokenIssued { token_id, .. }) = &issued else {
            panic!("not a token issue");
        };
        let message = Stored {
            seq: 5,
            subject: "reg.acme.org.acme".into(),
            data: envelope("org", "acme", 9, &issued),
        };
        apply_batch(&views, &[decode_all(&[message]).unwrap()], Durability::None).unwrap();
        assert_eq!(
            views
                .command_target("acme", "c9-acme", TOKEN_ISSUED)
                .unwrap(),
            Some(token_id.as_str().to_owned())
        );
        // A credential's creation is.
        let created = domain::event::samples()
            .into_iter()
            .find(|(name, _)| *name == "credential.created")
            .map(|(_, event)| event)
            .unwrap();
        let message = Stored {
            seq: 6,
            subject: "reg.acme.credential.cred-1".into(),
            data: envelope("credential", "cred-1", 1, &created),
        };
        apply_batch(&views, &[decode_all(&[message]).unwrap()], Durability::None).unwrap();
        assert_eq!(
            views
                .command_target("acme", "c1-cred-1", "credential")
                .unwrap(),
            Some("cred-1".to_owned())
        );
    }
}
