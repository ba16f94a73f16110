//! Workflow reports over NATS: the pipelines product sends `PUT`/`DELETE` of a workflow as a
//! request on `pipelines.<org>.workflows.<id>`; each becomes the same command as over HTTP,
//! and the reply says how it went.
//!
//! The subscription is a queue group, so API replicas share the load. Core NATS keeps no
//! messages while no replica listens: senders use request/reply and retry when no reply
//! comes, with an `Idempotency-Key` header to make retries one command.

use std::future::Future;
use std::sync::Arc;

use app::dependents::PutWorkflowRequest;
use app::{AppError, Ctx, Registry};
use domain::org::Role;
use domain::values::OrgId;
use eventlog::{Actor, ActorKind};
use futures::StreamExt;
use serde_json::{Value, json};

pub const SUBJECT: &str = "pipelines.*.workflows.*";
pub const QUEUE_GROUP: &str = "modelreg-pipelines";

/// Serves workflow reports until `shutdown` resolves.
pub async fn run(
    registry: Arc<Registry>,
    client: async_nats::Client,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let mut subscription = client
        .queue_subscribe(SUBJECT, QUEUE_GROUP.into())
        .await
        .map_err(|e| format!("cannot subscribe to {SUBJECT}: {e}"))?;
    tokio::pin!(shutdown);
    loop {
        let message = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            message = subscription.next() => message,
        };
        let Some(message) = message else {
            return Err("the NATS subscription ended".into());
        };
        let answer = handle(&registry, &message).await;
        if let Some(reply) = message.reply
            && let Err(error) = client.publish(reply, answer.to_string().into()).await
        {
            tracing::warn!(%error, "cannot answer a workflow report");
        }
    }
}

async fn handle(registry: &Registry, message: &async_nats::Message) -> Value {
    let mut tokens = message.subject.split('.');
    let (Some(_), Some(org), Some(_), Some(id)) =
        (tokens.next(), tokens.next(), tokens.next(), tokens.next())
    else {
        return problem("subject.invalid", "use pipelines.<org>.workflows.<id>");
    };
    let Ok(org) = OrgId::parse(org) else {
        return problem("org.invalid", "the subject's org is not an org id");
    };
    if registry.views.org(org.as_str()).ok().flatten().is_none() {
        return problem("org.not_found", "no such org");
    }
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    };
    let key = header("Idempotency-Key").filter(|k| {
        !k.is_empty()
            && k.len() <= 100
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let deleting = header("Modelreg-Method").is_some_and(|m| m.eq_ignore_ascii_case("DELETE"));
    let command_id = key.map_or_else(app::new_id, |key| {
        let method = if deleting { "DELETE" } else { "PUT" };
        app::keyed_command_id(method, &format!("/v1/workflows/{id}"), &key)
    });
    let ctx = Ctx {
        org,
        role: Role::Service,
        actor: Actor {
            kind: ActorKind::System,
            id: "pipelines".into(),
            label: "pipelines (NATS)".into(),
        },
        request_id: app::new_id(),
        command_id,
    };
    let result = if deleting {
        registry
            .delete_workflow(&ctx, id)
            .await
            .map(|a| json!({"ok": true, "position": a.position}))
    } else {
        match serde_json::from_slice::<PutWorkflowRequest>(&message.payload) {
            Ok(request) => registry
                .put_workflow(&ctx, id, request)
                .await
                .map(|a| json!({"ok": true, "position": a.position})),
            // Never serde's own words: they quote the value they found.
            Err(error) => {
                let mistake = app::JsonMistake::of(&error);
                let detail = mistake
                    .detail
                    .map_or_else(|| "not valid JSON".to_owned(), |d| format!("body: {d}"));
                return problem(mistake.code, &detail);
            }
        }
    };
    match result {
        Ok(answer) => answer,
        Err(AppError::Invalid(problems)) => {
            let first = problems.first();
            problem(
                first.map_or("body.invalid", |p| p.code),
                &first.map(|p| p.message.clone()).unwrap_or_default(),
            )
        }
        Err(error) => problem("failed", &error.to_string()),
    }
}

fn problem(code: &str, detail: &str) -> Value {
    json!({"ok": false, "code": code, "detail": detail})
}
