//! Where notices go: NATS subjects in NATS mode; nowhere extra on the embedded log, where
//! the notice is visible in the event log and through the API.

use std::time::Duration;

use async_trait::async_trait;

/// A notice that did not reach its subject; the job is retried.
#[derive(Debug, thiserror::Error)]
#[error("the notice on {subject} was not sent")]
pub struct NotifyError {
    pub subject: String,
    #[source]
    pub source: app::BoxError,
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Publishes one notice; at-least-once, so payloads carry an id for deduplication.
    async fn notify(&self, subject: String, payload: Vec<u8>) -> Result<(), NotifyError>;
}

/// Core NATS publishes, flushed so a returned `Ok` means the server has them.
pub struct NatsNotifier(pub async_nats::Client);

impl NatsNotifier {
    /// How long a publish and its flush may take. During a NATS outage the client holds
    /// messages until it reconnects; the job fails instead and is retried later.
    pub const TIMEOUT: Duration = Duration::from_secs(5);
}

#[async_trait]
impl Notifier for NatsNotifier {
    async fn notify(&self, subject: String, payload: Vec<u8>) -> Result<(), NotifyError> {
        publish_flushed(&self.0, subject.clone(), payload, Self::TIMEOUT)
            .await
            .map_err(|source| NotifyError { subject, source })
    }
}

async fn publish_flushed(
    client: &async_nats::Client,
    subject: String,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<(), app::BoxError> {
    let publish = async {
        client.publish(subject, payload.into()).await?;
        client.flush().await?;
        Ok::<(), app::BoxError>(())
    };
    match tokio::time::timeout(timeout, publish).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "NATS did not take the notice within {} ms",
            timeout.as_millis()
        )
        .into()),
    }
}

/// For the embedded log: the `DependentsWarned` event and the workflow view are the notice.
pub struct QuietNotifier;

#[async_trait]
impl Notifier for QuietNotifier {
    async fn notify(&self, _subject: String, _payload: Vec<u8>) -> Result<(), NotifyError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client whose server is gone holds publishes until it reconnects: the notice must
    /// fail within its timeout instead of waiting for the outage to end.
    #[tokio::test]
    async fn a_notice_fails_in_time_while_nats_is_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        // Connects in the background, so the client exists while nothing listens.
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(format!("nats://127.0.0.1:{port}"))
            .await
            .expect("a client that keeps trying");
        let timeout = Duration::from_millis(200);
        let started = tokio::time::Instant::now();
        let outcome = tokio::time::timeout(
            Duration::from_secs(10),
            publish_flushed(
                &client,
                "notices.acme.workflows.w".into(),
                b"{}".to_vec(),
                timeout,
            ),
        )
        .await
        .expect("the notice must not wait for NATS to come back");
        assert!(outcome.is_err(), "an undelivered notice is a failed job");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
