//! The tail of the stream: an ordered consumer, the fast path for replaying the whole log;
//! direct gets while no consumer can be made; and the stream leader for any position the
//! node serving the tail lacks.
//!
//! A clustered JetStream creates consumers through its meta leader, so when the node that
//! led the meta group dies (taking, say, the old tail's consumer with it), no consumer can
//! be made until a new meta leader is elected, which on a loaded machine took over 10 s.
//! Direct gets are answered by any node holding the stream, leader or not: the tail reads
//! one message at a time with them meanwhile, and tries a consumer again every few seconds.
//! A tail does not wait long for its consumer either: one not made within a quarter of a
//! second (a healthy cluster makes one in milliseconds) is waited for in the background
//! while direct gets read, so that a replica that lost its tail with a node follows again
//! within its stall timeout and a moment, not after a consumer request timed out.
//!
//! Neither a consumer nor a direct get is served by the stream leader alone: a node that
//! was restarted may still be catching up, and Debian's 2.9.10 was seen to serve a history
//! with acknowledged messages missing. The registry never deletes from its stream, so a
//! message past the next position means the serving node lacks the ones between: the tail
//! asks the stream leader for the first message from the next position on (STREAM.MSG.GET,
//! which only the leader answers) and hands out what it holds before the later message, in
//! order; positions the leader does not hold either were deleted by an operator and are
//! passed over.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::stream::{self, DirectGetErrorKind};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};

use super::{CREATE_CONSUMER_TIMEOUT, STREAM_SUBJECTS, first_at_leader, unavailable};
use crate::{LogError, Stored};

pub(super) struct Tail {
    stream: stream::Stream,
    /// The position of the next message to hand out.
    next: u64,
    source: Source,
    /// A message received past a gap, handed out once the gap is filled.
    held: Option<Stored>,
}

enum Source {
    /// A consumer is to be made from `next`.
    Consumer,
    Ordered(Messages),
    /// Direct gets: while the consumer being made (`making`) is not ready, or, when none
    /// could be made, until `try_consumer_at`.
    Direct {
        making: Option<Making>,
        try_consumer_at: tokio::time::Instant,
    },
}

type Messages = BoxStream<'static, Result<Stored, LogError>>;
/// A consumer being made, from the position the tail had when it was asked for: whatever it
/// delivers before the tail's position by the time it is ready is passed over.
type Making = BoxFuture<'static, Result<Messages, LogError>>;

/// How often a tail reading with direct gets tries to make a consumer again.
const TRY_CONSUMER_EVERY: Duration = Duration::from_secs(5);
/// How long a tail reading with direct gets waits before asking again past the end.
const DIRECT_POLL: Duration = Duration::from_millis(20);
/// How long one direct get may take.
const GET_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a tail waits for its consumer before reading with direct gets until it is made.
const CONSUMER_GRACE: Duration = Duration::from_millis(250);

impl Tail {
    /// The tail from position `next` on.
    pub(super) fn new(stream: stream::Stream, next: u64) -> Self {
        Self {
            stream,
            next,
            source: Source::Consumer,
            held: None,
        }
    }

    /// The message at the next position (or, past a position deleted from the stream, the
    /// one after it).
    pub(super) async fn step(&mut self) -> Result<Stored, LogError> {
        loop {
            let stored = match self.held.take() {
                Some(held) => held,
                None => self.receive().await?,
            };
            if stored.seq < self.next {
                // Already handed out (from the leader, while the gap was filled).
                continue;
            }
            if stored.seq > self.next
                && let Some(found) = first_at_leader(&self.stream, STREAM_SUBJECTS, self.next)
                    .await?
                    .map(to_stored)
                && found.seq < stored.seq
            {
                tracing::warn!(
                    position = found.seq,
                    "the node serving the tail lacks this position; read it from the stream leader"
                );
                self.held = Some(stored);
                self.next = found.seq + 1;
                return Ok(found);
            }
            // (With nothing before it at the leader either, the positions between were
            // deleted from the stream.)
            self.next = stored.seq + 1;
            return Ok(stored);
        }
    }

    /// The next message the consumer or a direct get delivers, at or past `next`.
    async fn receive(&mut self) -> Result<Stored, LogError> {
        loop {
            match &mut self.source {
                Source::Consumer => {
                    let mut making: Making = ordered(self.stream.clone(), self.next).boxed();
                    let retry_at = tokio::time::Instant::now() + TRY_CONSUMER_EVERY;
                    self.source = match tokio::time::timeout(CONSUMER_GRACE, &mut making).await {
                        Ok(Ok(messages)) => Source::Ordered(messages),
                        Ok(Err(error)) => {
                            no_consumer(&error, self.next);
                            Source::Direct {
                                making: None,
                                try_consumer_at: retry_at,
                            }
                        }
                        Err(_) => {
                            tracing::info!(
                                from = self.next,
                                "the tail's consumer is slow to be made; reading with direct gets until it is"
                            );
                            Source::Direct {
                                making: Some(making),
                                try_consumer_at: retry_at,
                            }
                        }
                    };
                }
                Source::Ordered(messages) => {
                    return match messages.next().await {
                        Some(item) => item,
                        None => Err(LogError::unavailable("the tail ended")),
                    };
                }
                Source::Direct {
                    making,
                    try_consumer_at,
                } => {
                    if let Some(pending) = making {
                        // Polled between gets: its reply arrives on the client's own task.
                        match pending.as_mut().now_or_never() {
                            Some(Ok(messages)) => {
                                tracing::info!(
                                    at = self.next,
                                    "the tail's consumer is made; reading with it"
                                );
                                self.source = Source::Ordered(messages);
                                continue;
                            }
                            Some(Err(error)) => {
                                no_consumer(&error, self.next);
                                *making = None;
                                *try_consumer_at = tokio::time::Instant::now() + TRY_CONSUMER_EVERY;
                            }
                            None => {}
                        }
                    } else if tokio::time::Instant::now() >= *try_consumer_at {
                        self.source = Source::Consumer;
                        continue;
                    }
                    let get = self
                        .stream
                        .direct_get_next_for_subject(STREAM_SUBJECTS, Some(self.next));
                    match tokio::time::timeout(GET_TIMEOUT, get).await {
                        Ok(Ok(message)) => return Ok(to_stored(message)),
                        Ok(Err(error)) if error.kind() == DirectGetErrorKind::NotFound => {
                            tokio::time::sleep(DIRECT_POLL).await;
                        }
                        Ok(Err(error)) => return Err(unavailable("direct get failed", error)),
                        Err(elapsed) => return Err(unavailable("direct get timed out", elapsed)),
                    }
                }
            }
        }
    }
}

fn no_consumer(error: &LogError, at: u64) {
    tracing::warn!(%error, at, "no consumer for the tail now (a JetStream meta leader being elected?); reading with direct gets meanwhile");
}

/// A message a get answered with, as the log hands it out.
fn to_stored(message: async_nats::jetstream::message::StreamMessage) -> Stored {
    Stored {
        seq: message.sequence,
        subject: message.subject.as_str().to_owned(),
        data: message.payload.to_vec(),
    }
}

/// An ordered consumer from `from` on: ephemeral, flow-controlled, no acks, and recreated by
/// the client on a gap.
async fn ordered(stream: stream::Stream, from: u64) -> Result<Messages, LogError> {
    let create = stream.create_consumer(pull::OrderedConfig {
        deliver_policy: DeliverPolicy::ByStartSequence {
            start_sequence: from,
        },
        ..Default::default()
    });
    let consumer = tokio::time::timeout(CREATE_CONSUMER_TIMEOUT, create)
        .await
        .map_err(|elapsed| unavailable("creating the tail consumer timed out", elapsed))?
        .map_err(|error| unavailable("cannot create the tail consumer", error))?;
    let messages = consumer
        .messages()
        .await
        .map_err(|error| unavailable("cannot start the tail", error))?;
    let stored = messages.map(|message| {
        let message = message.map_err(|error| unavailable("tail failed", error))?;
        let info = message
            .info()
            .map_err(|error| unavailable("tail message without metadata", error))?;
        Ok(Stored {
            seq: info.stream_sequence,
            subject: message.subject.as_str().to_owned(),
            data: message.payload.to_vec(),
        })
    });
    Ok(stored.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventLog, Subject};
    use testkit::NatsServer;

    use super::super::tests::open_log;

    /// Appends one message a subject for `count` subjects; the message at position n holds
    /// `[n - 1]`.
    async fn log_of(server: &NatsServer, count: u8) -> super::super::JetStreamLog {
        let log = open_log(&server.url()).await;
        for i in 0..count {
            let subject = Subject::new("acme", "model", &format!("m{i}")).unwrap();
            log.append(&subject, 0, &format!("m-{i}"), vec![i])
                .await
                .unwrap();
        }
        log
    }

    fn on(log: &super::super::JetStreamLog, next: u64, source: Source) -> Tail {
        Tail {
            source,
            ..Tail::new(log.stream.clone(), next)
        }
    }

    async fn positions(tail: &mut Tail, count: usize) -> Vec<u64> {
        let mut seqs = Vec::new();
        for _ in 0..count {
            let stored = tail.step().await.unwrap();
            assert_eq!(stored.data, vec![u8::try_from(stored.seq - 1).unwrap()]);
            seqs.push(stored.seq);
        }
        seqs
    }

    /// While no consumer can be made, the tail reads with direct gets: in order, from its
    /// position, then what is appended later.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tail_without_a_consumer_reads_with_direct_gets() {
        let server = NatsServer::start();
        let log = log_of(&server, 5).await;
        let direct = Source::Direct {
            making: None,
            try_consumer_at: tokio::time::Instant::now() + Duration::from_secs(3600),
        };
        let mut tail = on(&log, 2, direct);
        assert_eq!(positions(&mut tail, 4).await, [2, 3, 4, 5]);
        let waiting = tokio::spawn(async move { tail.step().await.map(|stored| stored.seq) });
        let subject = Subject::new("acme", "model", "m5").unwrap();
        log.append(&subject, 0, "m-5", vec![5]).await.unwrap();
        let next = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the appended message arrives")
            .unwrap()
            .unwrap();
        assert_eq!(next, 6);
    }

    /// A consumer slow to be made: direct gets read meanwhile, and once it is made the tail
    /// reads with it, handing out nothing twice (it starts where the tail was when asked).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tail_reads_with_direct_gets_until_its_consumer_is_made() {
        let server = NatsServer::start();
        let log = log_of(&server, 5).await;
        let (ready, made) = tokio::sync::oneshot::channel::<()>();
        let stream = log.stream.clone();
        // A consumer from position 1 whose making ends only when told.
        let making = async move {
            let _ = made.await;
            ordered(stream, 1).await
        };
        let direct = Source::Direct {
            making: Some(making.boxed()),
            try_consumer_at: tokio::time::Instant::now() + Duration::from_secs(3600),
        };
        let mut tail = on(&log, 1, direct);
        assert_eq!(positions(&mut tail, 3).await, [1, 2, 3]);
        assert!(matches!(tail.source, Source::Direct { .. }), "not made yet");
        ready.send(()).unwrap();
        // It is made within moments; the positions it delivers again are passed over.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut seqs = positions(&mut tail, 2).await;
        while !matches!(tail.source, Source::Ordered(_)) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never read with the consumer"
            );
            let subject = Subject::new("acme", "model", &format!("m{}", seqs.len() + 3)).unwrap();
            let n = u8::try_from(seqs.len() + 3).unwrap();
            log.append(&subject, 0, &format!("m-{n}"), vec![n])
                .await
                .unwrap();
            seqs.extend(positions(&mut tail, 1).await);
        }
        let subject = Subject::new("acme", "model", "last").unwrap();
        let n = u8::try_from(seqs.len() + 3).unwrap();
        log.append(&subject, 0, "m-last", vec![n]).await.unwrap();
        seqs.extend(positions(&mut tail, 1).await);
        let expected: Vec<u64> = (4..=u64::from(n) + 1).collect();
        assert_eq!(seqs, expected, "every position once, in order");
    }

    /// A node that serves the tail without some positions (catching up after a restart, or
    /// having lost them): the tail reads those from the stream leader and hands every
    /// message out once, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn positions_the_serving_node_lacks_are_read_from_the_leader() {
        let server = NatsServer::start();
        let log = log_of(&server, 7).await;
        let stored = |seq: u64| Stored {
            seq,
            subject: "reg.acme.model.x".into(),
            data: vec![u8::try_from(seq - 1).unwrap()],
        };
        // What such a node delivers: 1, then 4 (2 and 3 missing), 5, 7 (6 missing), and
        // then 6 and 7 late.
        let served = futures::stream::iter([1, 4, 5, 7, 6, 7].map(|seq| Ok(stored(seq))));
        let mut tail = on(&log, 1, Source::Ordered(served.boxed()));
        assert_eq!(positions(&mut tail, 7).await, [1, 2, 3, 4, 5, 6, 7]);
        // 6 and 7 arriving late are not handed out again.
        assert!(tail.step().await.is_err(), "the served messages ended");
    }

    /// A position deleted from the stream (by an operator: the registry never deletes) is
    /// passed over, not waited for.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_position_deleted_from_the_stream_is_passed_over() {
        let server = NatsServer::start();
        let log = log_of(&server, 5).await;
        assert!(log.stream.delete_message(3).await.unwrap());
        let mut tail = Tail::new(log.stream.clone(), 1);
        let mut seqs = Vec::new();
        for _ in 0..4 {
            seqs.push(tail.step().await.unwrap().seq);
        }
        assert_eq!(seqs, [1, 2, 4, 5]);
    }
}
