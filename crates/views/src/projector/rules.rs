//! The event-to-row rules: how each event changes the rows of the views.
//!
//! Rules read and write rows only through the batch's [`Tables`], so they see the writes of
//! earlier events in the same batch; the checkpoint is the batch's business, not theirs.

use domain::event::Event;
use domain::model::{self, Status};
use domain::{connection_test, credential, org, workflow};
use eventlog::Envelope;

use super::ProjectError;
use super::batch::{Tables, read, write};
use super::reader::Decoded;
use crate::rows::{
    ConnectionTestRow, CredentialRow, Deactivation, ModelRow, Notice, OrgRow, StreamPos, TokenRow,
    WorkflowRow,
};
use crate::store::{key, ref_key};

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
        Event::Credential(credential::Event::Created(_))
        | Event::ConnectionTest(connection_test::Event::Requested { .. }) => {
            // `<org>/<command id>/<kind>`, as `key` would make it, in one allocation.
            let command_key = format!("{org_id}/{}/{}", envelope.command_id, envelope.kind);
            write(&mut t.commands, command_key, &envelope.aggregate_id)?;
        }
        Event::Org(org::Event::TokenIssued { token_id, .. }) => {
            let command_key = format!("{org_id}/{}/{TOKEN_ISSUED}", envelope.command_id);
            write(&mut t.commands, command_key, &token_id.as_str())?;
        }
        _ => {}
    }
    match event {
        Event::Org(event) => apply_org(t, org_id, event, &at),
        Event::Credential(event) => apply_credential(t, org_id, event, &at),
        Event::Model(event) => apply_model(t, org_id, &envelope.aggregate_id, event, &at),
        Event::Workflow(event) => apply_workflow(t, org_id, &envelope.aggregate_id, event, &at),
        Event::ConnectionTest(event) => apply_connection_test(t, envelope, event, &at),
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
                stream: at.stream(),
            };
            write(&mut t.orgs, org_id, &row)
        }
        org::Event::TokenIssued {
            token_id,
            label,
            role,
            hash,
        } => {
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
    }
}

fn apply_credential(
    t: &mut Tables<'_>,
    org_id: &str,
    event: &credential::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    match event {
        credential::Event::Created(created) => {
            let state = credential::evolve(None, event);
            let Some(credential) = state else {
                return Ok(());
            };
            let row = CredentialRow {
                org: org_id.to_owned(),
                credential,
                sealed: created.sealed.clone(),
                used_by: 0,
                created_at_ms: at.recorded_at_ms,
                created_by: at.actor.to_owned(),
                updated_at_ms: at.recorded_at_ms,
                stream: at.stream(),
            };
            write(&mut t.credentials, key(org_id, created.id.as_str()), &row)?;
            write(
                &mut t.fingerprints,
                key(org_id, &hex::encode(created.fingerprint)),
                &created.id.as_str().to_owned(),
            )
        }
    }
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
            for id in workflow_ids {
                let workflow_key = key(org_id, id);
                if let Some(mut workflow) = read::<WorkflowRow>(&t.workflows, &workflow_key)?
                    && !workflow.notices.iter().any(|n| n.model == slug)
                {
                    workflow.notices.push(notice.clone());
                    write(&mut t.workflows, &workflow_key, &workflow)?;
                }
            }
        }
        model::Event::Reactivated => {
            row.deactivation = None;
            clear_notices(t, org_id, slug)?;
        }
        model::Event::Added(_) | model::Event::Edited(_) => {}
    }
    write(&mut t.models, row_key, &row)
}

/// Drops notices about `model` from the workflows that reference it.
fn clear_notices(t: &mut Tables<'_>, org_id: &str, model: &str) -> Result<(), ProjectError> {
    let ids = referencing_ids(t, org_id, model)?;
    for id in ids {
        let workflow_key = key(org_id, &id);
        if let Some(mut workflow) = read::<WorkflowRow>(&t.workflows, &workflow_key)? {
            workflow.notices.retain(|n| n.model != model);
            write(&mut t.workflows, &workflow_key, &workflow)?;
        }
    }
    Ok(())
}

fn referencing_ids(
    t: &mut Tables<'_>,
    org_id: &str,
    model: &str,
) -> Result<Vec<String>, ProjectError> {
    let start = ref_key(org_id, model, "");
    let end = format!("{org_id}/{model}\u{1}");
    let mut ids = Vec::new();
    for key in t.refs.keys_in(&start, &end)? {
        if let Some((_, id)) = key.split_once('\0') {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
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
        (Some(before), connection_test::Event::Completed(_)) => ConnectionTestRow {
            test,
            completed_at_ms: Some(at.recorded_at_ms),
            stream: at.stream(),
            ..before
        },
        (None, connection_test::Event::Completed(_)) => {
            return Err(ProjectError::Poison {
                seq: at.seq,
                why: "a result for an unknown connection test".into(),
            });
        }
    };
    write(&mut t.tests, &row_key, &row)
}

fn apply_workflow(
    t: &mut Tables<'_>,
    org_id: &str,
    id: &str,
    event: &workflow::Event,
    at: &Meta<'_>,
) -> Result<(), ProjectError> {
    let row_key = key(org_id, id);
    let before: Option<WorkflowRow> = read(&t.workflows, &row_key)?;
    if let Some(before) = &before {
        for model in before.workflow.models() {
            t.refs.remove(ref_key(org_id, model, id));
        }
    }
    match event {
        workflow::Event::Saved(saved) => {
            for model in saved.models() {
                t.refs.insert(ref_key(org_id, model, id), Vec::new());
            }
            // A notice stays while the workflow still uses the deactivated model.
            let models = saved.models();
            let notices = before
                .map(|b| b.notices)
                .unwrap_or_default()
                .into_iter()
                .filter(|n| models.contains(&n.model.as_str()))
                .collect();
            let row = WorkflowRow {
                org: org_id.to_owned(),
                id: id.to_owned(),
                workflow: saved.clone(),
                updated_at_ms: at.recorded_at_ms,
                updated_by: at.actor.to_owned(),
                stream: at.stream(),
                notices,
            };
            write(&mut t.workflows, &row_key, &row)
        }
        workflow::Event::Deleted => {
            t.workflows.remove(&row_key);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use eventlog::Stored;
    use redb::Durability;

    use super::*;
    use crate::Views;
    use crate::projector::batch::apply_batch;
    use crate::projector::fixtures::{envelope, messages};
    use crate::projector::reader::decode_all;

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
