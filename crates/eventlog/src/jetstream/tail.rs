//! The tail of the stream: an ordered consumer, the fast path for replaying the whole log;
//! direct gets while no consumer can be made; and the stream leader for any position the
//! node serving the tail lacks.
//!
//! A clustered JetStream creates consumers through its meta leader, so when the node that
//! led the meta group dies (taking, say, the old tail's consumer with it), no consumer can
//! be made until a new meta leader is elected, which on a loaded machine took over 10 s.
//! Direct gets are answered by any node holding the stream, leader or not: the tail reads
//! one message at a time with them meanwhile, and tries a consumer again every few seconds.
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
use futures::StreamExt;
use futures::stream::BoxStream;

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
    Ordered(BoxStream<'static, Result<Stored, LogError>>),
    Direct {
        try_consumer_at: tokio::time::Instant,
    },
}

/// How often a tail reading with direct gets tries to make a consumer again.
const TRY_CONSUMER_EVERY: Duration = Duration::from_secs(5);
/// How long a tail reading with direct gets waits before asking again past the end.
const DIRECT_POLL: Duration = Duration::from_millis(20);
/// How long one direct get may take.
const GET_TIMEOUT: Duration = Duration::from_secs(2);

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
                Source::Consumer => match ordered(&self.stream, self.next).await {
                    Ok(messages) => self.source = Source::Ordered(messages),
                    Err(error) => {
                        tracing::warn!(%error, from = self.next, "no consumer for the tail now (a JetStream meta leader being elected?); reading with direct gets meanwhile");
                        self.source = Source::Direct {
                            try_consumer_at: tokio::time::Instant::now() + TRY_CONSUMER_EVERY,
                        };
                    }
                },
                Source::Ordered(messages) => {
                    return match messages.next().await {
                        Some(item) => item,
                        None => Err(LogError::unavailable("the tail ended")),
                    };
                }
                Source::Direct { try_consumer_at } => {
                    if tokio::time::Instant::now() >= *try_consumer_at {
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
async fn ordered(
    stream: &stream::Stream,
    from: u64,
) -> Result<BoxStream<'static, Result<Stored, LogError>>, LogError> {
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
