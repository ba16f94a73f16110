//! Test fixtures: log messages as the registry writes them, for the projector's tests.

use domain::event::Event;
use domain::model;
use eventlog::{Actor, ActorKind, Envelope, SCHEMA_VERSION, Stored};

pub(crate) fn envelope(kind: &str, id: &str, version: u64, event: &Event) -> Vec<u8> {
    Envelope {
        schema_version: SCHEMA_VERSION,
        event_id: [version as u8; 16],
        org: "acme".into(),
        kind: kind.into(),
        aggregate_id: id.into(),
        aggregate_version: version,
        recorded_at_ms: 1_700_000_000_000 + version as i64,
        actor: Actor {
            kind: ActorKind::System,
            id: "test".into(),
            label: "test".into(),
        },
        request_id: "r".into(),
        command_id: format!("c{version}-{id}"),
        prev_hash: [0; 32],
        payload: event.encode(),
        payload_version: domain::event::PAYLOAD_VERSION,
        client_addr: String::new(),
    }
    .encode()
}

/// An org, a model added and then deactivated, as stored messages.
pub(crate) fn messages() -> Vec<Stored> {
    let samples = domain::event::samples();
    let find = |name: &str| {
        samples
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| e.clone())
            .unwrap()
    };
    vec![
        Stored {
            seq: 1,
            subject: "reg.acme.org.acme".into(),
            data: envelope("org", "acme", 1, &find("org.created")),
        },
        Stored {
            seq: 2,
            subject: "reg.acme.model.team-gpt".into(),
            data: envelope("model", "team-gpt", 1, &find("model.added")),
        },
        Stored {
            seq: 3,
            subject: "reg.acme.model.team-gpt".into(),
            data: envelope(
                "model",
                "team-gpt",
                2,
                &Event::Model(model::Event::Deactivated),
            ),
        },
    ]
}

/// An org and `models` models added, as stored messages: a batch big enough for the audit
/// thread.
pub(crate) fn many_models(models: u64) -> Vec<Stored> {
    let added = domain::event::samples()
        .into_iter()
        .find(|(n, _)| *n == "model.added")
        .map(|(_, e)| e)
        .unwrap();
    let mut all = vec![messages().remove(0)];
    for n in 0..models {
        let id = format!("m-{n}");
        all.push(Stored {
            seq: n + 2,
            subject: format!("reg.acme.model.{id}"),
            data: envelope("model", &id, 1, &added),
        });
    }
    all
}
