//! Workflow reports over NATS: the pipelines product sends `PUT`/`DELETE` of a workflow as a
//! request on `pipelines.<org>.workflows.<id>`; each becomes the same command as over HTTP,
//! and the reply (`api::ReportReply`) says how it went, with the problem the HTTP API would
//! answer.
//!
//! The subscription is a queue group, so API replicas share the load. Core NATS keeps no
//! messages while no replica listens: senders use request/reply and retry when no reply
//! comes, with an `Idempotency-Key` header to make retries one command.

use std::future::Future;
use std::sync::Arc;

use app::{AppError, Ctx, Registry};
use domain::values::OrgId;

use crate::WorkerError;

pub const SUBJECT: &str = "pipelines.*.workflows.*";
pub const QUEUE_GROUP: &str = "modelreg-pipelines";

/// Serves workflow reports until `shutdown` resolves.
pub async fn run(
    registry: Arc<Registry>,
    client: async_nats::Client,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    let serving = Arc::clone(&registry);
    let handle = move |message: async_nats::Message| {
        let registry = Arc::clone(&registry);
        async move {
            match handle(&registry, &message).await {
                Ok(position) => api::ReportReply {
                    ok: true,
                    position: Some(position),
                    problem: None,
                },
                Err(problem) => api::ReportReply {
                    ok: false,
                    position: None,
                    problem: Some(problem),
                },
            }
        }
    };
    crate::requests::serve(
        &serving,
        client,
        SUBJECT,
        QUEUE_GROUP,
        "a workflow report",
        shutdown,
        handle,
    )
    .await
}

/// One report: its log position, or the problem (mapped as for HTTP, by `app`).
async fn handle(registry: &Registry, message: &async_nats::Message) -> Result<u64, api::Problem> {
    let problem = |status, code: &str, detail: &str| api::Problem::new(status, code, detail);
    let mut tokens = message.subject.split('.');
    let (Some(_), Some(org), Some(_), Some(id)) =
        (tokens.next(), tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(problem(
            400,
            "subject.invalid",
            "use pipelines.<org>.workflows.<id>",
        ));
    };
    let org = OrgId::parse(org)
        .map_err(|_| problem(400, "org.invalid", "the subject's org is not an org id"))?;
    if !app::orgs::exists(registry, &org).map_err(|e| e.to_problem())? {
        return Err(problem(404, "org.not_found", "no such org"));
    }
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    };
    let key = app::idempotency_key(header("Idempotency-Key").as_deref())
        .map_err(|invalid| AppError::invalid(invalid).to_problem())?;
    let deleting = header("Modelreg-Method").is_some_and(|m| m.eq_ignore_ascii_case("DELETE"));
    let method = if deleting { "DELETE" } else { "PUT" };
    let ctx = Ctx::pipelines(org, method, &format!("/v1/workflows/{id}"), key.as_ref());
    let result = if deleting {
        app::workflows::delete(registry, &ctx, id)
            .await
            .map(|a| a.position)
    } else {
        match serde_json::from_slice::<api::PutWorkflow>(&message.payload) {
            Ok(request) => app::workflows::put(registry, &ctx, id, request)
                .await
                .map(|a| a.position),
            Err(error) => return Err(crate::body_problem(&error)),
        }
    };
    result.map_err(|error| error.to_problem())
}
