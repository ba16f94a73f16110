//! The NATS request/reply loop the pipelines' subjects share: a queue-group subscription
//! (API replicas share the load), each request handled and its answer sent as JSON to the
//! request's reply subject. Core NATS keeps nothing while no replica listens, so senders
//! retry when no reply comes.

use std::future::Future;

use futures::StreamExt;
use serde::Serialize;

use crate::WorkerError;

/// Serves requests on `subject` in queue group `queue` until `shutdown` resolves; `what`
/// names a request in the log line when its answer cannot be sent.
pub(crate) async fn serve<F, Fut, R>(
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
    let mut subscription = client
        .queue_subscribe(subject, queue.into())
        .await
        .map_err(|e| WorkerError::Subscribe {
            subject,
            source: Box::new(e),
        })?;
    tokio::pin!(shutdown);
    loop {
        let message = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            message = subscription.next() => message,
        };
        let Some(message) = message else {
            return Err(WorkerError::SubscriptionEnded);
        };
        let reply_to = message.reply.clone();
        let answer = handle(message).await;
        let payload = serde_json::to_vec(&answer).unwrap_or_default();
        if let Some(reply_to) = reply_to
            && let Err(error) = client.publish(reply_to, payload.into()).await
        {
            tracing::warn!(%error, "cannot answer {what}");
        }
    }
}
