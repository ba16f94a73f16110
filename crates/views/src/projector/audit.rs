//! The audit trail's rules: each event as people read it ("model edited", "connection test
//! failed: auth_invalid"), with the non-secret fields it changed, before and after.
//!
//! Architecture invariant: [`describe`] matches every event variant with no `_` arm, so an
//! event added later does not compile until it says what it means to people. No secret
//! reaches an entry: a credential shows its preview and fingerprint, a connection test which
//! credential it used, never sealed bytes.

use domain::event::Event;
use domain::model::{self, Model};
use domain::provider::Endpoint;
use domain::values::Capabilities;
use domain::workflow::Workflow;
use domain::{connection_test, credential, org, usage};
use eventlog::Envelope;

use super::ProjectError;
use super::batch::{Tables, read};
use super::reader::Decoded;
use crate::rows::{AuditRow, Change, ConnectionTestRow, ModelRow, TokenRow, WorkflowRow};
use crate::store::key;

/// Gathers the audit entry of one event for the audit file. Runs before the event's rules,
/// so the rows it reads are the state before the event.
pub(super) fn record(t: &mut Tables<'_>, message: &Decoded) -> Result<(), ProjectError> {
    let Decoded {
        envelope, event, ..
    } = message;
    // Usage records are not audit entries: they change nothing anyone configured, and one
    // per LLM call would bury the changes. The log keeps them; the usage view answers.
    if matches!(event, Event::Usage(_)) {
        return Ok(());
    }
    let org_id = envelope.org.as_str();
    let described = describe(t, envelope, event)?;
    let row = AuditRow {
        seq: message.seq,
        recorded_at_ms: envelope.recorded_at_ms,
        kind: envelope.kind.clone(),
        aggregate_id: envelope.aggregate_id.clone(),
        action: event.name().to_owned(),
        summary: described.summary,
        actor: envelope.actor.clone(),
        request_id: envelope.request_id.clone(),
        command_id: envelope.command_id.clone(),
        client_addr: envelope.client_addr.clone(),
        changes: described.changes,
        related: described.related,
    };
    t.audit.entry(org_id, message.seq, row);
    Ok(())
}

/// An event in words, what it changed, and what else it concerns.
struct Described {
    summary: String,
    changes: Vec<Change>,
    related: Vec<(String, String)>,
}

impl Described {
    fn new(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            changes: Vec::new(),
            related: Vec::new(),
        }
    }

    fn changes(mut self, before: Vec<Field>, after: Vec<Field>) -> Self {
        self.changes.extend(diff(before, after));
        self
    }

    fn change(mut self, field: &str, before: Option<String>, after: Option<String>) -> Self {
        if before != after {
            self.changes.push(Change {
                field: field.to_owned(),
                before,
                after,
            });
        }
        self
    }

    fn related(mut self, kind: &str, id: &str) -> Self {
        let pair = (kind.to_owned(), id.to_owned());
        if !self.related.contains(&pair) {
            self.related.push(pair);
        }
        self
    }
}

fn describe(t: &Tables<'_>, envelope: &Envelope, event: &Event) -> Result<Described, ProjectError> {
    let org_id = envelope.org.as_str();
    let row_key = key(org_id, &envelope.aggregate_id);
    Ok(match event {
        Event::Org(org::Event::Created { name }) => {
            Described::new("org created").change("name", None, Some(name.clone()))
        }
        Event::Org(org::Event::TokenIssued {
            token_id,
            label,
            role,
            hash: _,
        }) => Described::new(format!("token issued: {label} ({})", role.as_str()))
            .change("token", None, Some(token_id.as_str().to_owned()))
            .change("label", None, Some(label.clone()))
            .change("role", None, Some(role.as_str().to_owned()))
            .related("token", token_id.as_str()),
        Event::Org(org::Event::TokenIssuedExpiring {
            token_id,
            label,
            role,
            hash: _,
            expires_at_ms,
        }) => Described::new(format!(
            "token issued: {label} ({}), refused once it expires",
            role.as_str()
        ))
        .change("token", None, Some(token_id.as_str().to_owned()))
        .change("label", None, Some(label.clone()))
        .change("role", None, Some(role.as_str().to_owned()))
        .change("expires_at_ms", None, Some(expires_at_ms.to_string()))
        .related("token", token_id.as_str()),
        Event::Org(org::Event::TokenRevoked { token_id }) => {
            let token: Option<TokenRow> = read(&t.tokens, token_id.as_str())?;
            let label = token.map_or_else(|| token_id.as_str().to_owned(), |t| t.label);
            Described::new(format!("token revoked: {label}"))
                .change("token", Some(token_id.as_str().to_owned()), None)
                .change("state", Some("active".into()), Some("revoked".into()))
                .related("token", token_id.as_str())
        }
        Event::Org(org::Event::DefaultModelChosen { model }) => Described::new(match model {
            Some(model) => format!("default model chosen: {model}"),
            None => "default model reset to the platform's".to_owned(),
        })
        .change("default_model", None, model.clone()),
        Event::Org(org::Event::PlatformModelsHidden { models }) => {
            Described::new(match models.len() {
                0 => "every platform model shown".to_owned(),
                1 => "1 platform model hidden".to_owned(),
                n => format!("{n} platform models hidden"),
            })
            .change(
                "hidden_models",
                None,
                (!models.is_empty()).then(|| models.join(", ")),
            )
        }
        Event::Org(org::Event::PlatformDependentsWarned {
            model,
            retirement_seq: _,
            workflow_ids,
        }) => Described::new(match workflow_ids.len() {
            1 => format!("dependents of retired {model} warned: 1 active workflow"),
            n => format!("dependents of retired {model} warned: {n} active workflows"),
        })
        .change(
            "warned_workflows",
            None,
            (!workflow_ids.is_empty()).then(|| workflow_ids.join(", ")),
        ),
        Event::Credential(event) => {
            let before = match event {
                credential::Event::Created(_) | credential::Event::Registered(_) => None,
                _ => read::<crate::rows::CredentialRow>(&t.credentials, &row_key)?
                    .map(|row| row.credential),
            };
            let after = credential::evolve(before.clone(), event);
            let summary = match event {
                credential::Event::Created(_) => "credential created".to_owned(),
                credential::Event::Registered(_) => "credential saved".to_owned(),
                credential::Event::Renamed { .. } => "credential renamed".to_owned(),
                credential::Event::Rotated(rotated) => {
                    format!("credential rotated to version {}", rotated.version)
                }
                credential::Event::Shredded { version } => {
                    format!("credential version {version} shredded")
                }
                credential::Event::Deleted => "credential deleted".to_owned(),
            };
            Described::new(summary).changes(
                credential_fields(before.as_ref()),
                credential_fields(after.as_ref()),
            )
        }
        Event::Catalog(event) => describe_catalog(event),
        // Words for the event all the same (`record` leaves usage out of the trail).
        Event::Usage(usage::Event::Recorded(record)) => Described::new(format!(
            "usage recorded: {} in, {} out tokens",
            record.input_tokens, record.output_tokens
        ))
        .related("model", &record.model),
        Event::Model(event) => describe_model(t, &row_key, envelope.aggregate_version, event)?,
        Event::Workflow(event) => {
            let before: Option<WorkflowRow> = read(&t.workflows, &row_key)?;
            let before = before.map(|row| row.workflow);
            let after = domain::workflow::evolve(before.clone(), event);
            let summary = match (event, &before) {
                (domain::workflow::Event::Saved(_), None) => "workflow created",
                (domain::workflow::Event::Saved(_), Some(_)) => "workflow saved",
                (domain::workflow::Event::Deleted, _) => "workflow deleted",
            };
            Described::new(summary).changes(
                workflow_fields(before.as_ref()),
                workflow_fields(after.as_ref()),
            )
        }
        Event::ConnectionTest(connection_test::Event::Requested { draft, model }) => {
            let described = Described::new("connection test requested")
                .change("provider", None, Some(draft.provider.as_str().to_owned()))
                .change(
                    "provider_model_id",
                    None,
                    Some(draft.provider_model_id.as_str().to_owned()),
                )
                .change("endpoint", None, draft.endpoint.as_ref().map(endpoint))
                .change("credential", None, Some(test_credential(&draft.credential)));
            match model {
                Some(slug) => described
                    .change("model", None, Some(slug.as_str().to_owned()))
                    .related(domain::event::kind::MODEL, slug.as_str()),
                None => described,
            }
        }
        Event::ConnectionTest(connection_test::Event::Completed(result)) => {
            let before: Option<ConnectionTestRow> = read(&t.tests, &row_key)?;
            let summary = if result.passed() {
                "connection test passed".to_owned()
            } else {
                format!("connection test failed: {}", result.class)
            };
            let described = Described::new(summary)
                .change("outcome", None, Some(result.class.clone()))
                .change(
                    "upstream_status",
                    None,
                    result.upstream_status.map(|s| s.to_string()),
                )
                .change("latency_ms", None, Some(result.latency_ms.to_string()));
            match before.and_then(|row| row.test.model) {
                Some(slug) => described.related(domain::event::kind::MODEL, slug.as_str()),
                None => described,
            }
        }
    })
}

fn describe_model(
    t: &Tables<'_>,
    row_key: &str,
    version: u64,
    event: &model::Event,
) -> Result<Described, ProjectError> {
    // A model is added as the first event of its subject: nothing before it to read (the
    // most numerous event of a rebuild skips a lookup).
    let before: Option<ModelRow> = match event {
        model::Event::Added(_) if version == 1 => None,
        _ => read(&t.models, row_key)?,
    };
    let before = before.map(|row| row.model);
    let after = model::evolve(before.clone(), event);
    let mut described = match event {
        model::Event::Added(_) => Described::new("model added"),
        model::Event::Edited(_) => Described::new("model edited"),
        model::Event::Deactivated => Described::new("model deactivated"),
        model::Event::DependentsWarned {
            deactivation_seq: _,
            workflow_ids,
        } => {
            let described = match workflow_ids.len() {
                0 => Described::new("dependents checked: no active workflow uses the model"),
                1 => Described::new("dependents warned: 1 active workflow"),
                n => Described::new(format!("dependents warned: {n} active workflows")),
            };
            described.change(
                "warned_workflows",
                None,
                (!workflow_ids.is_empty()).then(|| workflow_ids.join(", ")),
            )
        }
        model::Event::Reactivated => Described::new("model reactivated"),
    };
    described = described.changes(model_fields(before.as_ref()), model_fields(after.as_ref()));
    // A credential taken up or let go shows in that credential's history too.
    let credential_of = |m: Option<&Model>| m.and_then(|m| m.credential_id.clone());
    let (was, is) = (
        credential_of(before.as_ref()),
        credential_of(after.as_ref()),
    );
    if was != is {
        for id in [was, is].into_iter().flatten() {
            described = described.related(domain::event::kind::CREDENTIAL, id.as_str());
        }
    }
    Ok(described)
}

/// A field's name and its value as people read it (`None`: not set).
type Field = (&'static str, Option<String>);

/// The fields that differ between two states, in the order they are listed; the values
/// are moved into the changes, not copied.
fn diff(before: Vec<Field>, after: Vec<Field>) -> impl Iterator<Item = Change> {
    before
        .into_iter()
        .zip(after)
        .filter(|((_, b), (_, a))| b != a)
        .map(|((field, before), (_, after))| Change {
            field: field.to_owned(),
            before,
            after,
        })
}

fn model_fields(model: Option<&Model>) -> Vec<Field> {
    let value = |f: fn(&Model) -> Option<String>| model.and_then(f);
    vec![
        (
            "display_name",
            value(|m| Some(m.display_name.as_str().to_owned())),
        ),
        ("provider", value(|m| Some(m.provider.as_str().to_owned()))),
        (
            "provider_model_id",
            value(|m| Some(m.provider_model_id.as_str().to_owned())),
        ),
        (
            "credential",
            value(|m| m.credential_id.as_ref().map(|c| c.as_str().to_owned())),
        ),
        ("endpoint", value(|m| m.endpoint.as_ref().map(endpoint))),
        (
            "max_tokens",
            value(|m| Some(m.max_tokens.get().to_string())),
        ),
        (
            "capabilities",
            value(|m| Some(capabilities(&m.capabilities))),
        ),
        (
            "input_cost_per_token",
            value(|m| m.costs.input_per_token.map(|c| c.to_string())),
        ),
        (
            "output_cost_per_token",
            value(|m| m.costs.output_per_token.map(|c| c.to_string())),
        ),
        ("status", value(|m| Some(m.status.as_str().to_owned()))),
    ]
}

/// A credential's metadata: its preview and fingerprint stand for the secret.
fn credential_fields(credential: Option<&credential::Credential>) -> Vec<Field> {
    let value = |f: fn(&credential::Credential) -> Option<String>| credential.and_then(f);
    vec![
        (
            "name",
            value(|c| c.name.as_ref().map(|n| n.as_str().to_owned())),
        ),
        ("provider", value(|c| Some(c.provider.as_str().to_owned()))),
        ("kind", value(|c| Some(c.kind.as_str().to_owned()))),
        ("version", value(|c| Some(c.version.to_string()))),
        ("preview", value(|c| Some(c.preview.clone()))),
        ("fingerprint", value(|c| Some(hex::encode(c.fingerprint)))),
        (
            "expires_at_ms",
            value(|c| c.expires_at_ms.map(|ms| ms.to_string())),
        ),
        (
            "shredded_versions",
            value(|c| {
                let shredded: Vec<String> = c
                    .versions
                    .iter()
                    .filter(|v| v.shredded)
                    .map(|v| v.version.to_string())
                    .collect();
                (!shredded.is_empty()).then(|| shredded.join(", "))
            }),
        ),
        (
            "state",
            value(|c| Some(if c.deleted { "deleted" } else { "active" }.to_owned())),
        ),
    ]
}

/// A change to the platform catalog (recorded under the reserved `_platform` org).
fn describe_catalog(event: &domain::catalog::Event) -> Described {
    use domain::catalog::Event as Catalog;
    match event {
        Catalog::Seeded { default, models } => Described::new(format!(
            "platform catalog seeded: {} models",
            models.len()
        ))
        .change("default_model", None, Some(default.clone())),
        Catalog::Synced(synced) => {
            let mut described = Described::new(format!(
                "platform catalog synced from {}: {} facts changed, {} proposed, {} listed, {} gone upstream",
                synced.source,
                synced.changed.len(),
                synced.proposed.len(),
                synced.listed.len(),
                synced.disappeared.len()
            ));
            for change in &synced.changed {
                described.changes.push(Change {
                    field: format!("{}.{}", change.id, change.fact),
                    before: change.before.as_ref().map(ToString::to_string),
                    after: change.after.as_ref().map(ToString::to_string),
                });
            }
            described
        }
        Catalog::Listed(listing) => Described::new(format!(
            "platform model listed: {}",
            listing.id
        ))
        .change("listed", None, Some(listing.id.clone())),
        Catalog::Retired { id, reason } => Described::new(format!("platform model retired: {id}"))
            .change("retired", None, Some(id.clone()))
            .change("reason", None, Some(reason.clone())),
        Catalog::DefaultChanged { id } => Described::new(format!(
            "platform default changed to {id}"
        ))
        .change("default_model", None, Some(id.clone())),
        Catalog::Reinstated { id, reason } => {
            Described::new(format!("platform model reinstated: {id}"))
                .change("reinstated", None, Some(id.clone()))
                .change("reason", None, Some(reason.clone()))
        }
        Catalog::OverrideSet {
            id,
            fact,
            value,
            reason,
            as_of: _,
        } => Described::new(match value {
            Some(_) => format!("fact overridden: {id} {fact}"),
            None => format!("fact override cleared: {id} {fact}"),
        })
        .change(
            &format!("{id}.{fact}"),
            None,
            value.as_ref().map(ToString::to_string),
        )
        .change("reason", None, Some(reason.clone())),
    }
}

fn workflow_fields(workflow: Option<&Workflow>) -> Vec<Field> {
    let value = |f: fn(&Workflow) -> String| workflow.map(f);
    vec![
        ("name", value(|w| w.name.clone())),
        ("active", value(|w| w.active.to_string())),
        ("models", value(|w| w.models().join(", "))),
    ]
}

fn endpoint(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Url(url) => url.as_str().to_owned(),
        Endpoint::Region(region) => region.as_str().to_owned(),
    }
}

fn capabilities(capabilities: &Capabilities) -> String {
    let mut named = Vec::new();
    for (on, name) in [
        (capabilities.json_mode, "json_mode"),
        (capabilities.vision, "vision"),
        (capabilities.tool_use, "tool_use"),
    ] {
        if on {
            named.push(name.to_owned());
        }
    }
    if let Some(reasoning) = capabilities.reasoning {
        named.push(format!("reasoning ({})", reasoning.as_str()));
    }
    if named.is_empty() {
        return "none".to_owned();
    }
    named.join(", ")
}

/// Which credential a test used, never its secret.
fn test_credential(credential: &connection_test::TestCredential) -> String {
    match credential {
        connection_test::TestCredential::None => "none".to_owned(),
        connection_test::TestCredential::Saved { id, version } => {
            format!("{} (version {version})", id.as_str())
        }
        connection_test::TestCredential::Inline { kind, sealed: _ } => {
            format!("entered for this test ({})", kind.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Views;

    /// Every event of the catalog has words, and what a credential shows of its secret is the
    /// preview and fingerprint, never sealed bytes.
    #[test]
    fn every_event_is_described_without_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let views = Views::open(&dir.path().join("views.redb")).unwrap();
        let txn = views.db.begin_write().unwrap();
        let tables = Tables::open(&txn).unwrap();
        for (name, event) in domain::event::samples() {
            let (kind, id) = match &event {
                Event::Org(_) => ("org", "acme"),
                Event::Credential(_) => ("credential", "cred_1"),
                Event::Model(_) => ("model", "team-gpt"),
                Event::Workflow(_) => ("workflow", "wf-1"),
                Event::ConnectionTest(_) => ("connection_test", "ct-1"),
                Event::Catalog(_) => ("catalog", "platform"),
                Event::Usage(_) => ("usage", "r-1"),
            };
            let envelope =
                Envelope::decode(&crate::projector::fixtures::envelope(kind, id, 1, &event))
                    .unwrap();
            let described = describe(&tables, &envelope, &event).unwrap();
            assert!(!described.summary.is_empty(), "{name}");
            let text = format!("{:?}", described.changes);
            assert!(!text.contains("020202"), "{name}: sealed bytes in {text}");
            assert!(!text.contains("[2, 2"), "{name}: sealed bytes in {text}");
            if name == "credential.created" {
                assert!(
                    text.contains("••••MPLE") && text.contains(&hex::encode([3u8; 32])),
                    "{text}"
                );
            }
            if name == "connection_test.completed" {
                assert_eq!(described.summary, "connection test failed: rate_limited");
            }
            if name == "model.added" {
                assert_eq!(
                    described.related,
                    [("credential".to_owned(), "cred_1".to_owned())]
                );
                assert!(
                    described.changes.iter().all(|c| c.before.is_none()),
                    "{text}"
                );
            }
        }
    }
}
