//! Where notices go: NATS subjects in NATS mode; nowhere extra on the embedded log, where
//! the notice is visible in the event log and through the API.

use async_trait::async_trait;

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Publishes one notice; at-least-once, so payloads carry an id for deduplication.
    async fn notify(&self, subject: String, payload: Vec<u8>) -> Result<(), String>;
}

/// Core NATS publishes, flushed so a returned `Ok` means the server has them.
pub struct NatsNotifier(pub async_nats::Client);

#[async_trait]
impl Notifier for NatsNotifier {
    async fn notify(&self, subject: String, payload: Vec<u8>) -> Result<(), String> {
        self.0
            .publish(subject, payload.into())
            .await
            .map_err(|e| e.to_string())?;
        self.0.flush().await.map_err(|e| e.to_string())
    }
}

/// For the embedded log: the `DependentsWarned` event and the workflow view are the notice.
pub struct QuietNotifier;

#[async_trait]
impl Notifier for QuietNotifier {
    async fn notify(&self, _subject: String, _payload: Vec<u8>) -> Result<(), String> {
        Ok(())
    }
}
