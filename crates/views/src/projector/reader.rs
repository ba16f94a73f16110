//! The read pipeline: a task of its own reads the log, decodes and hashes each message, and
//! hands chunks to the writer ahead of time.

use domain::event::Event;
use eventlog::{Envelope, LogError, Stored};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::{BATCH, ProjectError};

/// Chunks the reader may hold ready for the writer (live or rebuilding).
const CHUNKS_IN_FLIGHT: usize = 1024;

/// Reads the log on a task of its own and decodes as it goes, so that reading, decoding
/// and writing overlap. The log hands over small chunks (about a hundred messages at
/// speed); many wait in the channel, so the writer can gather a large batch and pay a write
/// transaction's fixed cost once per thousands of events.
pub(super) struct Reader {
    chunks: tokio::sync::mpsc::Receiver<Result<Vec<Decoded>, ProjectError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Reader {
    /// Reads `stream` up to and including position `until` (for ever with `None`).
    pub(super) fn spawn(
        stream: BoxStream<'static, Result<Stored, LogError>>,
        until: Option<u64>,
    ) -> Self {
        let (sender, chunks) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
        let task = tokio::spawn(async move {
            let mut ready = stream.ready_chunks(BATCH);
            loop {
                let Some(items) = ready.next().await else {
                    let _ = sender
                        .send(Err(ProjectError::Log("the log's stream ended".into())))
                        .await;
                    return;
                };
                let mut messages = Vec::with_capacity(items.len());
                let mut reached = false;
                for item in items {
                    match item {
                        Ok(stored) if until.is_some_and(|u| stored.seq > u) => {
                            reached = true;
                            break;
                        }
                        Ok(stored) => {
                            reached = until.is_some_and(|u| stored.seq >= u);
                            messages.push(stored);
                        }
                        Err(e) => {
                            let _ = sender.send(Err(ProjectError::Log(e.to_string()))).await;
                            return;
                        }
                    }
                }
                let decoded = decode_all(&messages);
                let failed = decoded.is_err();
                if sender.send(decoded).await.is_err() || failed || reached {
                    return;
                }
            }
        });
        Self { chunks, task }
    }

    /// The next chunk and the chunks already waiting behind it, up to about `max` messages.
    /// Cancel-safe: after the first chunk arrives nothing awaits, so a batch taken from the
    /// channel is always returned.
    /// The chunks stay as the reader made them: joining them would move every message again.
    pub(super) async fn next_batch(
        &mut self,
        max: usize,
    ) -> Result<Vec<Vec<Decoded>>, ProjectError> {
        let Some(chunk) = self.chunks.recv().await else {
            return Err(ProjectError::Log("the log reader stopped".into()));
        };
        let chunk = chunk?;
        let mut messages = chunk.len();
        let mut batch = vec![chunk];
        while messages < max {
            match self.chunks.try_recv() {
                Ok(Ok(chunk)) => {
                    messages += chunk.len();
                    batch.push(chunk);
                }
                // The projector stops at a bad chunk, so the batch it would close is moot.
                Ok(Err(error)) => return Err(error),
                Err(_) => break,
            }
        }
        Ok(batch)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A log message decoded and hashed, ready to fold into the views.
pub(super) struct Decoded {
    pub(super) seq: u64,
    pub(super) hash: [u8; 32],
    pub(super) envelope: Envelope,
    pub(super) event: Event,
}

/// Decodes messages in order; the first that cannot be decoded is a poison event.
pub(super) fn decode_all(messages: &[Stored]) -> Result<Vec<Decoded>, ProjectError> {
    // Sized up front: collecting `Result`s cannot know the length and would grow the vector
    // (and move every message) several times over.
    let mut decoded = Vec::with_capacity(messages.len());
    for message in messages {
        decoded.push(decode_one(message)?);
    }
    Ok(decoded)
}

fn decode_one(message: &Stored) -> Result<Decoded, ProjectError> {
    let poison = |why: String| ProjectError::Poison {
        seq: message.seq,
        why,
    };
    let mut envelope = Envelope::decode(&message.data).map_err(|e| poison(e.to_string()))?;
    let event = Event::decode(envelope.payload_version, &envelope.payload)
        .map_err(|e| poison(e.to_string()))?;
    // The payload lives on as `event`.
    envelope.payload = Vec::new();
    Ok(Decoded {
        seq: message.seq,
        hash: Envelope::hash_of(&message.data),
        envelope,
        event,
    })
}
