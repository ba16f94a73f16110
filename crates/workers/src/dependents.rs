//! The dependents worker: on each model deactivation, counts the active workflows that
//! reference the model, records a `DependentsWarned` event with their ids, and publishes one
//! notice per workflow on `notices.<org>.workflows.<id>`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use app::{Ctx, Registry};
use domain::Event;
use domain::model::{self, Status};
use domain::org::Role;
use domain::values::OrgId;
use eventlog::{Actor, ActorKind, DurableConfig};
use serde_json::json;

use crate::Notifier;

/// The durable consumer's name; its position survives restarts.
pub const CONSUMER: &str = "dependents";

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("event log: {0}")]
    Log(String),
}

/// Runs until `shutdown` resolves; finishes and acks the job in flight first.
pub async fn run(
    registry: Arc<Registry>,
    notifier: Arc<dyn Notifier>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    let config = DurableConfig {
        name: CONSUMER.into(),
        filter: "reg.*.model.*".into(),
        ack_wait: Duration::from_secs(30),
        max_deliver: 20,
    };
    let mut consumer = registry
        .log
        .durable(config)
        .await
        .map_err(|e| WorkerError::Log(e.to_string()))?;
    tokio::pin!(shutdown);
    loop {
        let delivery = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            next = consumer.next(Duration::from_secs(1)) => next.map_err(|e| WorkerError::Log(e.to_string()))?,
        };
        let Some(delivery) = delivery else { continue };
        let outcome = handle(
            &registry,
            notifier.as_ref(),
            delivery.stored.seq,
            &delivery.stored.data,
        )
        .await;
        crate::finish(&registry, CONSUMER, delivery, outcome).await;
    }
}

async fn handle(
    registry: &Registry,
    notifier: &dyn Notifier,
    seq: u64,
    data: &[u8],
) -> Result<(), String> {
    let (envelope, event) = crate::decode(data)?;
    if !matches!(event, Event::Model(model::Event::Deactivated)) {
        return Ok(());
    }
    let org = OrgId::parse(&envelope.org).map_err(|e| e.to_string())?;
    let slug = envelope.aggregate_id;
    // Count from views that include the deactivation: a workflow saved later is listed as
    // broken instead, so none is lost.
    registry
        .views
        .wait_for(seq, Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    let Some(row) = registry
        .views
        .model(org.as_str(), &slug)
        .map_err(|e| e.to_string())?
    else {
        return Err(format!("deactivated model {slug} is not in the views"));
    };
    let current = row
        .deactivation
        .as_ref()
        .filter(|d| d.seq == seq && row.model.status == Status::Deactivated);
    let Some(deactivation) = current else {
        // Reactivated since, or deactivated again later (that delivery will handle it).
        return Ok(());
    };
    let ctx = Ctx {
        org: org.clone(),
        role: Role::Admin,
        actor: Actor {
            kind: ActorKind::Worker,
            id: CONSUMER.into(),
            label: "dependents worker".into(),
        },
        request_id: app::new_id(),
        command_id: format!("dependents-{seq}"),
    };
    let dependents = registry
        .active_dependents(&ctx, &slug)
        .map_err(|e| e.to_string())?;
    let ids: Vec<String> = match &deactivation.warned {
        // Already recorded (a redelivery): warn the same workflows again, record nothing.
        Some(warned) => warned.clone(),
        None => {
            let ids: Vec<String> = dependents.iter().map(|d| d.id.clone()).collect();
            registry
                .record_warning(&ctx, &slug, seq, ids.clone())
                .await
                .map_err(|e| e.to_string())?;
            ids
        }
    };
    for id in &ids {
        let payload = json!({
            "notice_id": format!("{org}-{seq}-{id}"),
            "org": org.as_str(),
            "workflow": id,
            "model": slug,
            "deactivated_by": deactivation.by,
            "message": format!("model {slug} was deactivated; this workflow cannot generate LLM responses with it until it is repointed to an active model"),
        });
        notifier
            .notify(
                format!("notices.{org}.workflows.{id}"),
                payload.to_string().into_bytes(),
            )
            .await?;
    }
    tracing::info!(org = %org, model = %slug, warned = ids.len(), "dependents warned");
    Ok(())
}
