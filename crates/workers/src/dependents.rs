//! The dependents worker: on each model deactivation, counts the active workflows that
//! reference the model, records a `DependentsWarned` event with their ids, and publishes one
//! notice per workflow on `notices.<org>.workflows.<id>`. On each retirement of a platform
//! model (by the operator, or by a sync that saw its expiration date come), the same for
//! every org whose active workflows reference it, recorded in each org's log. And on each
//! rotation or deletion of a credential, the shredding it owes: a version it retired that is
//! still unshredded (the command stopped short of it, by a crash say) is shredded here.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use app::workflows::Dependents;
use app::{Ctx, Registry};
use domain::Event;
use domain::values::OrgId;
use domain::{credential, model};
use eventlog::DurableConfig;
use serde_json::json;

use crate::{Done, Notifier, WorkerError};

/// The durable consumer's name; its position survives restarts.
pub const CONSUMER: &str = "dependents";
/// The durable consumer of the platform catalog's events.
pub const CATALOG_CONSUMER: &str = "catalog-dependents";
/// The durable consumer of credential events, for the shredding they owe.
pub const SHRED_CONSUMER: &str = "credential-shredder";

/// How the worker consumes the log.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a delivery may go unanswered before it is delivered again; the job in
    /// flight reports progress every third of it.
    pub ack_wait: Duration,
    /// Messages per pull. Every model event (adds and edits too) reaches this worker, and
    /// all but deactivations are skipped at once, so batches keep it abreast of bulk edits.
    pub batch: usize,
    /// A failed warning is retried with a backoff; after the last delivery it is logged
    /// as an error and dropped.
    pub retry: crate::Retry,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(30),
            batch: 64,
            retry: crate::Retry {
                max_deliver: 20,
                backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(30),
            },
        }
    }
}

/// Runs with the default [`Settings`] until `shutdown` resolves; finishes and acks the job
/// in flight first.
pub async fn run(
    registry: Arc<Registry>,
    notifier: Arc<dyn Notifier>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    run_with(registry, notifier, Settings::default(), shutdown).await
}

/// Runs until `shutdown` resolves; finishes and acks the job in flight first. Messages
/// fetched but not yet started are left unacked and come back after the ack wait.
pub async fn run_with(
    registry: Arc<Registry>,
    notifier: Arc<dyn Notifier>,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    use futures::FutureExt;
    let shutdown = shutdown.shared();
    let models = consume(
        &registry,
        notifier.as_ref(),
        &settings,
        CONSUMER,
        "reg.*.model.*",
        shutdown.clone(),
    );
    let catalog = consume(
        &registry,
        notifier.as_ref(),
        &settings,
        CATALOG_CONSUMER,
        "reg._platform.catalog.*",
        shutdown.clone(),
    );
    let credentials = consume(
        &registry,
        notifier.as_ref(),
        &settings,
        SHRED_CONSUMER,
        "reg.*.credential.*",
        shutdown,
    );
    tokio::try_join!(models, catalog, credentials).map(|_| ())
}

/// One durable consumer's loop.
async fn consume(
    registry: &Registry,
    notifier: &dyn Notifier,
    settings: &Settings,
    name: &str,
    filter: &str,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    let config = DurableConfig {
        name: name.into(),
        filter: filter.into(),
        ack_wait: settings.ack_wait,
        max_deliver: settings.retry.max_deliver,
        batch: settings.batch,
    };
    tokio::pin!(shutdown);
    if !crate::wait_for_views(registry, name, &mut shutdown).await? {
        return Ok(());
    }
    let mut consumer = crate::Consumer::open(registry, config).await;
    loop {
        crate::views_running(registry)?;
        let delivery = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            next = consumer.next(registry, Duration::from_secs(1)) => next,
        };
        let Some(delivery) = delivery else { continue };
        let read = crate::read(delivery)?;
        match name {
            CATALOG_CONSUMER => catalog_job(registry, notifier, settings, read).await,
            SHRED_CONSUMER => shred_job(registry, settings, read).await,
            _ => job(registry, notifier, settings, read).await,
        }
    }
}

/// One delivery of a catalog event: retirements warn their dependents, the rest is skipped.
async fn catalog_job(
    registry: &Registry,
    notifier: &dyn Notifier,
    settings: &Settings,
    read: crate::Read,
) {
    let Some((delivery, _, event)) = crate::job_or_drop(registry, CATALOG_CONSUMER, read).await
    else {
        return;
    };
    let retired = match &event {
        Event::Catalog(event) => domain::catalog::retired_by(event),
        _ => Vec::new(),
    };
    if retired.is_empty() {
        return crate::done(registry, CATALOG_CONSUMER, delivery, Done::Skipped).await;
    }
    let seq = delivery.stored.seq;
    let outcome = crate::keep_alive(
        &delivery,
        settings.ack_wait / 3,
        handle_retirements(registry, notifier, seq, retired),
    )
    .await;
    finish(registry, CATALOG_CONSUMER, settings, delivery, outcome).await;
}

/// One delivery of a credential event: rotations and deletions finish their shredding, the
/// rest is skipped.
async fn shred_job(registry: &Registry, settings: &Settings, read: crate::Read) {
    let Some((delivery, envelope, event)) =
        crate::job_or_drop(registry, SHRED_CONSUMER, read).await
    else {
        return;
    };
    if !matches!(
        event,
        Event::Credential(credential::Event::Rotated(_) | credential::Event::Deleted)
    ) {
        return crate::done(registry, SHRED_CONSUMER, delivery, Done::Skipped).await;
    }
    let seq = delivery.stored.seq;
    let outcome = crate::keep_alive(
        &delivery,
        settings.ack_wait / 3,
        finish_shredding(registry, seq, envelope),
    )
    .await;
    finish(registry, SHRED_CONSUMER, settings, delivery, outcome).await;
}

/// Shreds what the rotation or deletion at `seq` retired and left unshredded, if anything.
async fn finish_shredding(
    registry: &Registry,
    seq: u64,
    envelope: eventlog::Envelope,
) -> Result<(), WorkerError> {
    let org = OrgId::parse(&envelope.org).map_err(app::AppError::from)?;
    let id = envelope.aggregate_id;
    let ctx = Ctx::worker(
        org.clone(),
        SHRED_CONSUMER,
        "credential shredder",
        format!("shred-owed-{seq}"),
    );
    if app::credentials::finish_retirement(registry, &ctx, &id, seq).await? {
        tracing::info!(org = %org, credential = %id, seq, "retired versions a command left unshredded are shredded");
    }
    Ok(())
}

/// Warns, org by org, the active workflows that use the platform models retired at `seq`:
/// records whom in each org's log (once), then sends each a notice (again on a redelivery).
async fn handle_retirements(
    registry: &Registry,
    notifier: &dyn Notifier,
    seq: u64,
    models: Vec<String>,
) -> Result<(), WorkerError> {
    for (index, model) in models.iter().enumerate() {
        let Some(warnings) = app::catalog::dependents_of_retirement(registry, model, seq).await?
        else {
            continue;
        };
        for org in warnings.orgs {
            if !org.recorded {
                let ctx = Ctx::worker(
                    org.org.clone(),
                    CATALOG_CONSUMER,
                    "dependents worker",
                    format!("platform-dependents-{seq}-{index}"),
                );
                app::catalog::record_platform_warning(
                    registry,
                    &ctx,
                    model,
                    seq,
                    org.workflow_ids.clone(),
                )
                .await?;
            }
            for id in &org.workflow_ids {
                let payload = json!({
                    // One event can retire several models: each has its own notices.
                    "notice_id": format!("{}-{seq}-{index}-{id}", org.org),
                    "org": org.org.as_str(),
                    "workflow": id,
                    "model": model,
                    "retired_by": warnings.retired_by,
                    "message": app::workflows::notice_message(model),
                });
                notifier
                    .notify(
                        format!("notices.{}.workflows.{id}", org.org),
                        payload.to_string().into_bytes(),
                    )
                    .await?;
            }
            tracing::info!(org = %org.org, model = %model, warned = org.workflow_ids.len(), "dependents of a retired platform model warned");
        }
    }
    Ok(())
}

/// Acks a job that did its work, or gives it back to be retried, or gives up on its last
/// delivery.
async fn finish(
    registry: &Registry,
    consumer: &str,
    settings: &Settings,
    delivery: eventlog::Delivery,
    outcome: Result<(), WorkerError>,
) {
    let seq = delivery.stored.seq;
    let error = match outcome {
        Ok(()) => return crate::done(registry, consumer, delivery, Done::Recorded).await,
        Err(error) => error,
    };
    if !settings.retry.is_last(delivery.attempt) {
        return crate::retry_later(registry, consumer, delivery, &settings.retry, &error).await;
    }
    registry.jobs().record(consumer, "failed");
    let error = crate::chain(&error);
    tracing::error!(%error, seq, attempt = delivery.attempt, consumer, "the job failed on its last delivery and is dropped (dependents not warned, or versions not shredded)");
    if let Err(error) = delivery.ack().await {
        tracing::warn!(%error, seq, "ack of a given-up dependents job failed");
    }
}

/// One delivery, read at the loop, to its ack or nak.
async fn job(registry: &Registry, notifier: &dyn Notifier, settings: &Settings, read: crate::Read) {
    let Some((delivery, envelope, event)) = crate::job_or_drop(registry, CONSUMER, read).await
    else {
        return;
    };
    if !matches!(event, Event::Model(model::Event::Deactivated)) {
        return crate::done(registry, CONSUMER, delivery, Done::Skipped).await;
    }
    let seq = delivery.stored.seq;
    let outcome = crate::keep_alive(
        &delivery,
        settings.ack_wait / 3,
        handle(registry, notifier, seq, envelope),
    )
    .await;
    finish(registry, CONSUMER, settings, delivery, outcome).await;
}

/// Warns the dependents of the model deactivated at `seq`: records whom (once), then sends
/// each a notice (again on a redelivery, as notices are at-least-once).
async fn handle(
    registry: &Registry,
    notifier: &dyn Notifier,
    seq: u64,
    envelope: eventlog::Envelope,
) -> Result<(), WorkerError> {
    let org = OrgId::parse(&envelope.org).map_err(app::AppError::from)?;
    let slug = envelope.aggregate_id;
    let (ids, deactivated_by, recorded) =
        match app::workflows::dependents_of_deactivation(registry, &org, &slug, seq).await? {
            Dependents::Moot => return Ok(()),
            Dependents::Warn {
                workflow_ids,
                deactivated_by,
                recorded,
            } => (workflow_ids, deactivated_by, recorded),
        };
    if !recorded {
        let ctx = Ctx::worker(
            org.clone(),
            CONSUMER,
            "dependents worker",
            format!("dependents-{seq}"),
        );
        app::models::record_warning(registry, &ctx, &slug, seq, ids.clone()).await?;
    }
    for id in &ids {
        let payload = json!({
            "notice_id": format!("{org}-{seq}-{id}"),
            "org": org.as_str(),
            "workflow": id,
            "model": slug,
            "deactivated_by": deactivated_by,
            "message": app::workflows::notice_message(&slug),
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
