//! Usage records over NATS: a pipeline runtime sends a batch of one model's usage records
//! (`api::UsageBatch`) as a request on `usage.<org>.<model>`; it is recorded as
//! `POST /v1/usage` records it (each record once, by its id), and the reply
//! (`api::UsageReply`) carries the receipt or the problem the HTTP API would answer.
//!
//! A platform model id has dots (`google/gemini-3.1-pro-preview`), so the model is every
//! token after the org. Like the workflow reports, the subscription is a queue group and
//! senders retry when no reply comes; a retry counts each record once.

use std::future::Future;
use std::sync::Arc;

use app::{Ctx, Registry};
use domain::values::OrgId;

use crate::WorkerError;

pub const SUBJECT: &str = "usage.>";
pub const QUEUE_GROUP: &str = "modelreg-usage";

/// Serves usage reports until `shutdown` resolves.
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
                Ok(answer) => api::UsageReply {
                    ok: true,
                    receipt: Some(answer.value),
                    position: Some(answer.position),
                    problem: None,
                },
                Err(problem) => api::UsageReply {
                    ok: false,
                    receipt: None,
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
        "a usage report",
        shutdown,
        handle,
    )
    .await
}

/// One batch: its receipt, or the problem (mapped as for HTTP, by `app`).
async fn handle(
    registry: &Registry,
    message: &async_nats::Message,
) -> Result<app::Answer<api::UsageReceipt>, api::Problem> {
    let problem = |status, code: &str, detail: &str| api::Problem::new(status, code, detail);
    let subject: &str = &message.subject;
    let mut tokens = subject.splitn(3, '.');
    let (Some(_), Some(org), Some(model)) = (tokens.next(), tokens.next(), tokens.next()) else {
        return Err(problem(400, "subject.invalid", "use usage.<org>.<model>"));
    };
    let org = OrgId::parse(org)
        .map_err(|_| problem(400, "org.invalid", "the subject's org is not an org id"))?;
    if !app::orgs::exists(registry, &org).map_err(|e| e.to_problem())? {
        return Err(problem(404, "org.not_found", "no such org"));
    }
    let batch = match serde_json::from_slice::<api::UsageBatch>(&message.payload) {
        Ok(batch) => batch,
        Err(error) => return Err(crate::body_problem(&error)),
    };
    let ctx = Ctx::pipelines(org, "POST", "/v1/usage", None);
    app::usage::record_for_model(registry, &ctx, model, batch)
        .await
        .map_err(|error| error.to_problem())
}
