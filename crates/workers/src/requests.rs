//! The NATS request/reply loop the pipelines' subjects share: a queue-group subscription
//! (API replicas share the load), each request handled and its answer sent as JSON to the
//! request's reply subject. Core NATS keeps nothing while no replica listens, so senders
//! retry when no reply comes.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use app::Registry;
use futures::StreamExt;
use serde::Serialize;

use crate::WorkerError;

/// Requests handled at once: one waiting for the views (a command's read-your-writes) does
/// not hold up the others.
const IN_FLIGHT: usize = 64;

/// Serves requests on `subject` in queue group `queue` until `shutdown` resolves; `what`
/// names a request in the log line when its answer cannot be sent. It joins the queue
/// group once this process's views have caught up with the log: before that, its answers
/// (an org or a model not found) would be wrong, and final for the sender.
pub(crate) async fn serve<F, Fut, R>(
    registry: &Registry,
    client: async_nats::Client,
    subject: &'static str,
    queue: &'static str,
    what: &'static str,
    shutdown: impl Future<Output = ()>,
    handle: F,
) -> Result<(), WorkerError>
where
    F: Fn(async_nats::Message) -> Fut,
    Fut: Future<Output = R>,
    R: Serialize,
{
    tokio::pin!(shutdown);
    if !crate::wait_for_views(registry, subject, &mut shutdown).await? {
        return Ok(());
    }
    let subscription = client
        .queue_subscribe(subject, queue.into())
        .await
        .map_err(|e| WorkerError::Subscribe {
            subject,
            source: Box::new(e),
        })?;
    let stopped = AtomicBool::new(false);
    let until = async {
        (&mut shutdown).await;
        stopped.store(true, Ordering::Relaxed);
    };
    let (client, handle) = (&client, &handle);
    subscription
        .take_until(until)
        .for_each_concurrent(IN_FLIGHT, |message| async move {
            let reply_to = message.reply.clone();
            let answer = handle(message).await;
            let payload = serde_json::to_vec(&answer).unwrap_or_default();
            if let Some(reply_to) = reply_to
                && let Err(error) = client.publish(reply_to, payload.into()).await
            {
                tracing::warn!(%error, "cannot answer {what}");
            }
        })
        .await;
    if stopped.load(Ordering::Relaxed) {
        Ok(())
    } else {
        Err(WorkerError::SubscriptionEnded)
    }
}
