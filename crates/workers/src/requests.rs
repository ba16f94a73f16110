//! The NATS request/reply loop the pipelines' subjects share: a queue-group subscription
//! (API replicas share the load), each request handled and its answer sent as JSON to the
//! request's reply subject. Core NATS keeps nothing while no replica listens, so senders
//! retry when no reply comes.

use std::future::Future;

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
    let mut subscription = client
        .queue_subscribe(subject, queue.into())
        .await
        .map_err(|e| WorkerError::Subscribe {
            subject,
            source: Box::new(e),
        })?;
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let ended = loop {
        tokio::select! {
            () = &mut shutdown => break false,
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            message = subscription.next(), if in_flight.len() < IN_FLIGHT => match message {
                Some(message) => in_flight.push(answer(&client, &handle, what, message)),
                None => break true,
            },
        }
    };
    // Out of the queue group first, so that NATS sends the group's requests to the other
    // replicas while those in flight here finish and answer.
    if let Err(error) = subscription.unsubscribe().await {
        tracing::warn!(%error, subject, "cannot leave the queue group");
    }
    while in_flight.next().await.is_some() {}
    if ended {
        Err(WorkerError::SubscriptionEnded)
    } else {
        Ok(())
    }
}

/// Handles one request and sends its answer to the reply subject.
async fn answer<F, Fut, R>(
    client: &async_nats::Client,
    handle: &F,
    what: &'static str,
    message: async_nats::Message,
) where
    F: Fn(async_nats::Message) -> Fut,
    Fut: Future<Output = R>,
    R: Serialize,
{
    let reply_to = message.reply.clone();
    let answer = handle(message).await;
    let payload = serde_json::to_vec(&answer).unwrap_or_default();
    if let Some(reply_to) = reply_to
        && let Err(error) = client.publish(reply_to, payload.into()).await
    {
        tracing::warn!(%error, "cannot answer {what}");
    }
}
