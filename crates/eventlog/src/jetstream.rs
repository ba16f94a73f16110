//! The NATS JetStream backend: one stream holds the log; the server enforces the
//! per-subject expected sequence and the message-id dedup window.
//!
//! async-nats types stay inside this module: every error is mapped to [`LogError`] here.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context as stream_errors;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, AckKind, Context};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

mod tail;

use crate::{
    Acker, AppendError, Appended, Delivery, Durable, DurableConfig, EventLog, LogError, Stored,
    Subject,
};

/// The subjects the registry stream captures.
pub const STREAM_SUBJECTS: &str = "reg.>";

/// How the stream is created when it does not exist yet. An existing stream is used as it
/// is (changing it is an operator's job, `ops/`), unless its settings would lose events:
/// see [`check_existing`].
#[derive(Clone, Debug)]
pub struct StreamSettings {
    /// The stream's name, e.g. `REGISTRY`.
    pub name: String,
    /// 1 on a single server; 3 on a three-node cluster for production durability.
    pub replicas: usize,
    /// How long the server remembers a message id for deduplication.
    pub duplicate_window: Duration,
}

impl StreamSettings {
    /// File storage, one replica, a two-minute dedup window.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// The event log on a NATS JetStream stream.
#[derive(Clone)]
pub struct JetStreamLog {
    context: Context,
    stream: stream::Stream,
    /// What [`check_existing`] found weak in the stream, for operators.
    warnings: Vec<String>,
    /// The client's counters: `connects` moves when it connects anew.
    client_stats: std::sync::Arc<async_nats::Statistics>,
}

impl JetStreamLog {
    /// Connect to `url` and create, or get, the stream `stream` with default settings.
    pub async fn connect(url: &str, stream: &str) -> Result<Self, LogError> {
        Self::connect_with(url, StreamSettings::new(stream)).await
    }

    /// Connect to `url` and create, or get, the stream described by `settings`.
    pub async fn connect_with(url: &str, settings: StreamSettings) -> Result<Self, LogError> {
        Self::from_client(connect_nats(url).await?, settings).await
    }

    /// Use an existing connection, e.g. one shared with the keyring's KV bucket.
    pub async fn from_client(
        client: async_nats::Client,
        settings: StreamSettings,
    ) -> Result<Self, LogError> {
        let client_stats = client.statistics();
        let context = jetstream::new(client);
        let config = stream::Config {
            name: settings.name.clone(),
            subjects: vec![STREAM_SUBJECTS.to_owned()],
            storage: StorageType::File,
            num_replicas: settings.replicas,
            duplicate_window: settings.duplicate_window,
            allow_direct: true,
            ..Default::default()
        };
        let stream = get_or_create(&context, config).await.map_err(|error| {
            LogError::unavailable_by(
                format!("cannot create or get stream {}", settings.name),
                error,
            )
        })?;
        let warnings: Vec<String> = check_existing(&stream.cached_info().config, &settings)
            .map_err(|refused| {
                LogError::storage_by("the existing stream cannot hold the log", refused)
            })?;
        for warning in &warnings {
            tracing::warn!(stream = %settings.name, "{warning}");
        }
        let warnings = warnings
            .into_iter()
            .map(|warning| format!("stream {}: {warning}", settings.name))
            .collect();
        Ok(Self {
            context,
            stream,
            warnings,
            client_stats,
        })
    }

    /// Settings of the existing stream that weaken a guarantee (fewer replicas than wanted,
    /// a shorter duplicate window), as logged at start; `/readyz` repeats them.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// How many times the client has connected so far.
    fn connects(&self) -> u64 {
        self.client_stats
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Awaits `ack`; `None` once the client has connected anew since `connects` was read and
    /// the ack has not come.
    async fn ack_unless_reconnected(
        &self,
        ack: async_nats::jetstream::context::PublishAckFuture,
        connects: u64,
    ) -> Option<Result<async_nats::jetstream::publish::PublishAck, stream_errors::PublishError>>
    {
        let mut ack = std::future::IntoFuture::into_future(ack);
        loop {
            if let Ok(acked) = tokio::time::timeout(RECONNECT_CHECK, &mut ack).await {
                return Some(acked);
            }
            if self.connects() != connects {
                return None;
            }
        }
    }
}

/// How often an append awaiting its ack checks whether the client connected anew.
const RECONNECT_CHECK: Duration = Duration::from_millis(100);
/// How many times an append publishes again after its connection was made anew.
const MAX_REPUBLISH: u32 = 3;

/// Gets the stream, or creates it. Replicas starting at once race to create it: the loser's
/// create fails ("name already in use", or "subjects overlap" with the winner's stream of the
/// same name) and gets the stream the winner made.
async fn get_or_create(
    context: &Context,
    config: stream::Config,
) -> Result<stream::Stream, stream_errors::CreateStreamError> {
    use async_nats::jetstream::ErrorCode;
    use stream_errors::CreateStreamErrorKind;
    let mut tries = 0;
    loop {
        match context.get_or_create_stream(config.clone()).await {
            Err(error)
                if tries < 5
                    && matches!(
                        error.kind(),
                        CreateStreamErrorKind::JetStream(ref js)
                            if js.error_code() == ErrorCode::STREAM_SUBJECT_OVERLAP
                                || js.error_code() == ErrorCode::STREAM_NAME_EXIST
                    ) =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50 * tries)).await;
            }
            other => return other,
        }
    }
}

/// An existing stream whose settings would lose events: what each setting does wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "stream {name} would lose events: {}; the event log is the registry's only record, so remove \
     these limits (nats stream edit {name}) or point MODELREG_STREAM at another stream",
    refusals.join("; ")
)]
pub struct StreamRefused {
    pub name: String,
    pub refusals: Vec<String>,
}

/// Checks a stream that may have been made by someone else: the log is the registry's only
/// record, so settings that delete events, or that do not capture its subjects, refuse to
/// start; settings that only weaken a guarantee are returned as warnings.
pub fn check_existing(
    config: &stream::Config,
    wanted: &StreamSettings,
) -> Result<Vec<String>, StreamRefused> {
    let name = &config.name;
    let mut refusals = Vec::new();
    if !config.subjects.iter().any(|s| s == STREAM_SUBJECTS) {
        refusals.push(format!(
            "it does not capture {STREAM_SUBJECTS} (subjects {:?})",
            config.subjects
        ));
    }
    if config.retention != RetentionPolicy::Limits {
        refusals.push(format!(
            "its retention is {:?}, which deletes acknowledged or uninteresting events (use limits)",
            config.retention
        ));
    }
    if config.storage != StorageType::File {
        refusals.push("it keeps events in memory, lost when nats-server restarts".to_owned());
    }
    if !config.max_age.is_zero() {
        refusals.push(format!("max_age {:?} deletes older events", config.max_age));
    }
    for (limit, value) in [
        ("max_msgs", config.max_messages),
        ("max_bytes", config.max_bytes),
        ("max_msgs_per_subject", config.max_messages_per_subject),
    ] {
        if value > 0 {
            refusals.push(format!("{limit} {value} deletes events past it"));
        }
    }
    if !refusals.is_empty() {
        return Err(StreamRefused {
            name: name.clone(),
            refusals,
        });
    }
    let mut warnings = Vec::new();
    if config.duplicate_window < wanted.duplicate_window {
        warnings.push(format!(
            "its duplicate window is {:?}, shorter than {:?}: a retried command older than that is applied again",
            config.duplicate_window, wanted.duplicate_window
        ));
    }
    if config.num_replicas < wanted.replicas {
        warnings.push(format!(
            "it has {} replica(s), fewer than the {} wanted",
            config.num_replicas, wanted.replicas
        ));
    }
    Ok(warnings)
}

/// How many messages of a subject past a stale expected sequence are searched for a
/// retried message id. A conflict means a few at most were written since (a race); a retry
/// not found among them is answered as the conflict it also is.
const RETRY_SEARCH: usize = 16;

impl JetStreamLog {
    /// The position of the message `msg_id` on `subject` after `expected_last`, if stored.
    ///
    /// nats-server 2.9 checks a message id before the expected sequence, so a retry whose
    /// expected sequence went stale (the first attempt was stored, its ack lost) is answered
    /// as a duplicate. 2.10 and later check the expected sequence first and refuse such a
    /// retry as a conflict: the message it retries is then searched for here, among the
    /// subject's messages since (read from the stream leader), so both versions answer it
    /// with the original position.
    async fn stored_after(
        &self,
        subject: &Subject,
        expected_last: u64,
        msg_id: &str,
    ) -> Result<Option<u64>, LogError> {
        if msg_id.is_empty() {
            return Ok(None);
        }
        let mut from = expected_last.saturating_add(1);
        for _ in 0..RETRY_SEARCH {
            let Some(message) = first_at_leader(&self.stream, subject.as_str(), from).await? else {
                return Ok(None);
            };
            let id = message.headers.get(async_nats::header::NATS_MESSAGE_ID);
            if id.is_some_and(|id| id.as_str() == msg_id) {
                return Ok(Some(message.sequence));
            }
            from = message.sequence + 1;
        }
        Ok(None)
    }
}

/// How long one get from the stream leader may take.
const LEADER_GET_TIMEOUT: Duration = Duration::from_secs(2);

/// The first message on `subject` (a filter, wildcards allowed) at or after `seq`, as the
/// stream leader holds it (STREAM.MSG.GET, which only the leader answers); `None` if it
/// holds none.
async fn first_at_leader(
    stream: &stream::Stream,
    subject: &str,
    seq: u64,
) -> Result<Option<async_nats::jetstream::message::StreamMessage>, LogError> {
    let get = stream.get_first_raw_message_by_subject(subject, seq);
    match tokio::time::timeout(LEADER_GET_TIMEOUT, get).await {
        Ok(Ok(message)) => Ok(Some(message)),
        Ok(Err(error)) if matches!(error.kind(), LastRawMessageErrorKind::NoMessageFound) => {
            Ok(None)
        }
        Ok(Err(error)) => Err(unavailable("get from the stream leader failed", error)),
        Err(elapsed) => Err(unavailable("get from the stream leader timed out", elapsed)),
    }
}

fn unavailable(what: &str, error: impl Into<crate::BoxError>) -> LogError {
    LogError::unavailable_by(what, error)
}

#[async_trait]
impl EventLog for JetStreamLog {
    async fn append(
        &self,
        subject: &Subject,
        expected_last: u64,
        msg_id: &str,
        data: Vec<u8>,
    ) -> Result<Appended, AppendError> {
        let mut publish = PublishMessage::build()
            .payload(Bytes::from(data))
            .expected_last_subject_sequence(expected_last);
        // Without an id there is nothing to deduplicate on, as with a missing header.
        if !msg_id.is_empty() {
            publish = publish.message_id(msg_id);
        }
        let mut published = 0;
        let acked = loop {
            let connects = self.connects();
            let ack = self
                .context
                .send_publish(subject.as_str().to_owned(), publish.clone())
                .await
                .map_err(|error| unavailable("publish failed", error))?;
            published += 1;
            if published > MAX_REPUBLISH {
                break ack.await;
            }
            match self.ack_unless_reconnected(ack, connects).await {
                Some(acked) => break acked,
                // The client connected anew while the ack was awaited (its server went away):
                // the message or its ack may be lost with the old connection, and the ack
                // would be waited for until the client's timeout. Published again under the
                // same id, a stored first attempt answers as a duplicate.
                None => tracing::warn!(
                    subject = subject.as_str(),
                    "the NATS connection was made anew while an append awaited its ack; publishing it again"
                ),
            }
        };
        match acked {
            Ok(ack) => Ok(Appended {
                seq: ack.sequence,
                duplicate: ack.duplicate,
            }),
            // JetStream API error 10071, "wrong last sequence".
            Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                match self.stored_after(subject, expected_last, msg_id).await? {
                    Some(seq) => Ok(Appended {
                        seq,
                        duplicate: true,
                    }),
                    None => Err(AppendError::Conflict {
                        expected: expected_last,
                    }),
                }
            }
            Err(error) => Err(unavailable("publish not acknowledged", error).into()),
        }
    }

    async fn last_seq(&self) -> Result<u64, LogError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|error| unavailable("stream info failed", error))?;
        Ok(info.state.last_sequence)
    }

    async fn subject_last_seq(&self, subject: &Subject) -> Result<u64, LogError> {
        // The leader answers STREAM.MSG.GET, so this reads the same state the
        // expected-sequence check runs against; a direct get may be served by a lagging
        // replica of an R3 stream.
        match self
            .stream
            .get_last_raw_message_by_subject(subject.as_str())
            .await
        {
            Ok(message) => Ok(message.sequence),
            Err(error) if matches!(error.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(0),
            Err(error) => Err(unavailable("last message by subject failed", error)),
        }
    }

    async fn tail(
        &self,
        from: u64,
    ) -> Result<BoxStream<'static, Result<Stored, LogError>>, LogError> {
        let tail = tail::Tail::new(self.stream.clone(), from.max(1));
        let items = futures::stream::unfold(tail, |mut tail| async move {
            let item = tail.step().await;
            Some((item, tail))
        });
        Ok(items.boxed())
    }

    async fn durable(&self, config: DurableConfig) -> Result<Box<dyn Durable>, LogError> {
        let consumer_config = pull::Config {
            durable_name: Some(config.name.clone()),
            filter_subject: config.filter.clone(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: config.ack_wait,
            // 0 is "unlimited" on both sides.
            max_deliver: i64::try_from(config.max_deliver).unwrap_or(i64::MAX),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        };
        // Create-or-update: an existing durable keeps its position and takes new settings.
        let create = self.stream.create_consumer(consumer_config);
        let consumer = tokio::time::timeout(CREATE_CONSUMER_TIMEOUT, create)
            .await
            .map_err(|elapsed| {
                unavailable(
                    &format!("creating durable consumer {:?} timed out", config.name),
                    elapsed,
                )
            })?
            .map_err(|error| {
                unavailable(
                    &format!("cannot create or get durable consumer {:?}", config.name),
                    error,
                )
            })?;
        Ok(Box::new(JetStreamDurable {
            consumer,
            batch: config.batch.max(1),
            fetched: VecDeque::new(),
            fetched_at: std::time::Instant::now(),
            ack_wait: config.ack_wait,
        }))
    }
}

struct JetStreamDurable {
    consumer: jetstream::consumer::Consumer<pull::Config>,
    /// Messages one pull may fetch.
    batch: usize,
    /// Fetched and not yet handed out, in stream order.
    fetched: VecDeque<Delivery>,
    /// When the messages in `fetched` were fetched or last said to be in progress: their
    /// ack wait runs from then, while earlier ones are worked on.
    fetched_at: std::time::Instant,
    ack_wait: Duration,
}

/// How long a consumer's creation may take before the caller tries again. A cluster creates
/// consumers through its JetStream meta leader: while a new one is elected (its node died),
/// a request waits out the client's whole request timeout, although a retry a moment later
/// would be answered at once.
const CREATE_CONSUMER_TIMEOUT: Duration = Duration::from_secs(2);

/// The shortest pull request: an `expires` of 0 would mean "never expire" to the server.
const MIN_WAIT: Duration = Duration::from_millis(10);
/// How long past its own expiry a pull request may take before the client gives up on it.
const PULL_GRACE: Duration = Duration::from_secs(2);

#[async_trait]
impl Durable for JetStreamDurable {
    async fn next(&mut self, wait: Duration) -> Result<Option<Delivery>, LogError> {
        if !self.fetched.is_empty() {
            let waited = self.fetched_at.elapsed();
            if waited >= self.ack_wait {
                // The server may already have handed these out again: working on these
                // copies too would do each job twice. Let the redeliveries come.
                self.fetched.clear();
            } else if waited >= self.ack_wait / 2 {
                // An earlier job took long: keep the rest ours.
                for delivery in &self.fetched {
                    if let Err(error) = delivery.in_progress().await {
                        tracing::warn!(%error, seq = delivery.stored.seq, "progress ack failed");
                    }
                }
                self.fetched_at = std::time::Instant::now();
            }
        }
        if let Some(delivery) = self.fetched.pop_front() {
            return Ok(Some(delivery));
        }
        if self.batch > 1 {
            self.fetch_available().await?;
            if let Some(delivery) = self.fetched.pop_front() {
                return Ok(Some(delivery));
            }
        }
        // Nothing waiting: one message per pull request, held open for `wait`. A larger
        // request left open would keep taking messages after this call returned.
        let wait = wait.max(MIN_WAIT);
        let mut batch = self
            .consumer
            .batch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(|error| unavailable("pull request failed", error))?;
        let message = match tokio::time::timeout(wait + PULL_GRACE, batch.next()).await {
            Err(_) | Ok(None) => return Ok(None),
            Ok(Some(Err(error))) => return Err(unavailable("pull failed", error)),
            Ok(Some(Ok(message))) => message,
        };
        delivery(message).map(Some)
    }
}

impl JetStreamDurable {
    /// Takes up to `batch` messages that are ready now, without waiting for new ones: a
    /// no-wait pull, which the server ends as soon as it has sent what it has. One pull (a
    /// subscription, a request, an unsubscribe) then serves many deliveries.
    async fn fetch_available(&mut self) -> Result<(), LogError> {
        let mut fetch = self
            .consumer
            .fetch()
            .max_messages(self.batch)
            .messages()
            .await
            .map_err(|error| unavailable("pull request failed", error))?;
        self.fetched_at = std::time::Instant::now();
        loop {
            match tokio::time::timeout(PULL_GRACE, fetch.next()).await {
                Err(_) | Ok(None) => return Ok(()),
                Ok(Some(Err(error))) => {
                    // Keep what arrived before the error: those messages are ours until
                    // their ack wait runs out.
                    if self.fetched.is_empty() {
                        return Err(unavailable("pull failed", error));
                    }
                    return Ok(());
                }
                Ok(Some(Ok(message))) => self.fetched.push_back(delivery(message)?),
            }
        }
    }
}

fn delivery(message: jetstream::Message) -> Result<Delivery, LogError> {
    let info = message
        .info()
        .map_err(|error| unavailable("delivery without metadata", error))?;
    let seq = info.stream_sequence;
    let attempt = u64::try_from(info.delivered).unwrap_or(1);
    let (message, acker) = message.split();
    let stored = Stored {
        seq,
        subject: message.subject.as_str().to_owned(),
        data: message.payload.to_vec(),
    };
    Ok(Delivery::new(
        stored,
        attempt,
        Box::new(JetStreamAcker(acker)),
    ))
}

struct JetStreamAcker(jetstream::message::Acker);

#[async_trait]
impl Acker for JetStreamAcker {
    /// A double ack: returns once the server confirmed it, so a returned ack is not lost.
    async fn ack(self: Box<Self>) -> Result<(), LogError> {
        self.0
            .double_ack()
            .await
            .map_err(|error| unavailable("ack failed", error))
    }

    async fn ack_unconfirmed(self: Box<Self>) -> Result<(), LogError> {
        self.0
            .ack_with(AckKind::Ack)
            .await
            .map_err(|error| unavailable("ack failed", error))
    }

    async fn nak(self: Box<Self>, delay: Duration) -> Result<(), LogError> {
        self.0
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|error| unavailable("nak failed", error))
    }

    async fn in_progress(&self) -> Result<(), LogError> {
        self.0
            .ack_with(AckKind::Progress)
            .await
            .map_err(|error| unavailable("progress ack failed", error))
    }
}

/// `url` (or a comma-separated list of server URLs) fit to print: a user name, password or
/// token in a URL's userinfo becomes `***`. NATS credentials may ride in the URL, which is
/// shown in banners and errors.
pub fn redacted_url(url: &str) -> String {
    redact(url)
}

/// A wrong list of NATS server URLs. It names the position of a wrong entry, never its text
/// (a URL may carry a password).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServerListError {
    #[error("expected a NATS server URL, or several separated by commas")]
    Empty,
    #[error("entry {position} of the server list is empty")]
    EmptyEntry { position: usize },
    #[error(
        "entry {position} of the server list is not a NATS URL (nats://host:4222, tls://…, ws://…)"
    )]
    NotAUrl { position: usize },
}

/// Checks a comma-separated list of NATS URLs (`nats://a:4222,nats://b:4222`; a bare
/// `host:port` means `nats://`): how many servers it names.
pub fn check_server_list(list: &str) -> Result<usize, ServerListError> {
    nats_servers(list).map(|servers| servers.len())
}

/// The servers of a list [`check_server_list`] accepts.
fn nats_servers(list: &str) -> Result<Vec<async_nats::ServerAddr>, ServerListError> {
    let entries: Vec<&str> = list.split(',').map(str::trim).collect();
    if entries.iter().all(|e| e.is_empty()) {
        return Err(ServerListError::Empty);
    }
    entries
        .iter()
        .enumerate()
        .map(|(n, entry)| {
            let position = n + 1;
            if entry.is_empty() {
                return Err(ServerListError::EmptyEntry { position });
            }
            entry
                .parse::<async_nats::ServerAddr>()
                .map_err(|_| ServerListError::NotAUrl { position })
        })
        .collect()
}

/// Connects to any reachable server of the list: the client tries each and fails over
/// between them later. All down is "unavailable" (retrying may help); a wrong list is a
/// configuration error, refused before (see [`nats_servers`]).
pub async fn connect_nats(list: &str) -> Result<async_nats::Client, LogError> {
    let servers = nats_servers(list)
        .map_err(|error| LogError::storage_by("the NATS server list is wrong", error))?;
    async_nats::connect(servers).await.map_err(|error| {
        LogError::unavailable_by(
            format!(
                "cannot connect to any NATS server of {}",
                redacted_url(list)
            ),
            error,
        )
    })
}

fn redact(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let (scheme, rest) = match one.find("://") {
                Some(at) => one.split_at(at + 3),
                None => ("", one),
            };
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(authority_end);
            match authority.rfind('@') {
                Some(at) => format!("{scheme}***{}{tail}", &authority[at..]),
                None => one.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;
    use std::net::TcpListener;
    use std::time::Instant;
    use testkit::NatsServer;

    fn registry_stream() -> stream::Config {
        stream::Config {
            name: "REGISTRY".into(),
            subjects: vec![STREAM_SUBJECTS.into()],
            storage: StorageType::File,
            num_replicas: 1,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        }
    }

    #[test]
    fn a_stream_that_would_lose_events_is_refused() {
        let wanted = StreamSettings::new("REGISTRY");
        assert_eq!(check_existing(&registry_stream(), &wanted), Ok(vec![]));
        type Change = fn(&mut stream::Config);
        let losing: [(&str, Change); 7] = [
            ("max_age", |c| c.max_age = Duration::from_secs(86_400)),
            ("max_msgs", |c| c.max_messages = 1_000_000),
            ("max_bytes", |c| c.max_bytes = 1 << 30),
            ("max_msgs_per_subject", |c| c.max_messages_per_subject = 1),
            ("WorkQueue", |c| c.retention = RetentionPolicy::WorkQueue),
            ("memory", |c| c.storage = StorageType::Memory),
            ("does not capture", |c| c.subjects = vec!["other.>".into()]),
        ];
        for (named, change) in losing {
            let mut config = registry_stream();
            change(&mut config);
            let refusal = check_existing(&config, &wanted).unwrap_err().to_string();
            assert!(refusal.contains(named), "{refusal}");
            assert!(refusal.contains("nats stream edit REGISTRY"), "{refusal}");
        }
    }

    #[test]
    fn a_weaker_stream_is_used_with_warnings() {
        let wanted = StreamSettings {
            replicas: 3,
            ..StreamSettings::new("REGISTRY")
        };
        let mut config = registry_stream();
        config.duplicate_window = Duration::from_secs(30);
        let warnings = check_existing(&config, &wanted).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }
    /// A replica whose first listed node is down starts on the next one.
    #[tokio::test]
    async fn any_reachable_server_of_the_list_serves() {
        let server = NatsServer::start();
        let dead = TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_port = dead.local_addr().unwrap().port();
        drop(dead);
        let list = format!("nats://127.0.0.1:{dead_port},{}", server.url());
        let log = JetStreamLog::connect(&list, "LISTED")
            .await
            .expect("connects");
        assert_eq!(log.last_seq().await.expect("last seq"), 0);
        let all_down = format!("nats://127.0.0.1:{dead_port}");
        let Err(error) = connect_nats(&all_down).await else {
            panic!("connected to a server that is down");
        };
        assert!(matches!(error, LogError::Unavailable { .. }), "{error}");
        assert_eq!(
            check_server_list("nats://a:4222,,"),
            Err(ServerListError::EmptyEntry { position: 2 })
        );
        assert_eq!(
            check_server_list("nats://a:4222, nats://:x"),
            Err(ServerListError::NotAUrl { position: 2 })
        );
        assert_eq!(check_server_list(" , "), Err(ServerListError::Empty));
        assert_eq!(check_server_list("a:4222,nats://b:4222"), Ok(2));
    }

    #[test]
    fn credentials_in_a_nats_url_are_not_shown() {
        assert_eq!(
            redacted_url("nats://127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
        assert_eq!(
            redacted_url("nats://alice:s3cret@nats.internal:4222"),
            "nats://***@nats.internal:4222"
        );
        assert_eq!(
            redacted_url("tls://tok3n@a:4222,nats://b:4222/x?y=1"),
            "tls://***@a:4222,nats://b:4222/x?y=1"
        );
        assert_eq!(redacted_url("u:p@host:4222"), "***@host:4222");
    }

    /// Opens the log on the server at `url`, retrying with a deadline: JetStream may still be
    /// starting when the port accepts.
    pub(super) async fn open_log(url: &str) -> JetStreamLog {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match JetStreamLog::connect(url, "REGISTRY").await {
                Ok(log) => return log,
                Err(error) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot open the JetStream log: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// On Debian's server and the current one production needs (`just deps`): they order
    /// their checks differently (a retried message id with a stale expected sequence).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_conformance_suite() {
        for program in testkit::server_programs() {
            let server = NatsServer::start_with(&program.path);
            let log = open_log(&server.url()).await;
            conformance::run_all(&log).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn durable_state_survives_a_server_restart() {
        for program in testkit::server_programs() {
            let server = std::sync::Mutex::new(NatsServer::start_with(&program.path));
            conformance::durable_survives_reopen(|round| {
                let url = {
                    let mut server = server.lock().unwrap();
                    if round > 0 {
                        server.restart();
                    }
                    server.url()
                };
                async move { open_log(&url).await }
            })
            .await;
        }
    }

    /// A TCP proxy in front of a NATS server that can swallow what the server sends (an ack
    /// lost with its connection) and cut every connection it carries.
    struct Proxy {
        port: u16,
        swallow: std::sync::Arc<std::sync::atomic::AtomicBool>,
        cut: tokio::sync::watch::Sender<u64>,
    }

    impl Proxy {
        async fn start(to: u16) -> Self {
            use std::sync::atomic::Ordering;
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let swallow = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (cut, cuts) = tokio::sync::watch::channel(0u64);
            let swallowing = swallow.clone();
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await
                    else {
                        continue;
                    };
                    let (mut client_read, mut client_write) = inbound.into_split();
                    let (mut server_read, mut server_write) = outbound.into_split();
                    let (swallow, mut cuts) = (swallowing.clone(), cuts.clone());
                    cuts.mark_unchanged();
                    tokio::spawn(async move {
                        let up = tokio::io::copy(&mut client_read, &mut server_write);
                        let down = async {
                            let mut buffer = vec![0u8; 64 * 1024];
                            loop {
                                let read = server_read.read(&mut buffer).await?;
                                if read == 0 {
                                    return Ok::<_, std::io::Error>(());
                                }
                                if !swallow.load(Ordering::SeqCst) {
                                    client_write.write_all(&buffer[..read]).await?;
                                }
                            }
                        };
                        // The first to end ends the connection: both halves are dropped.
                        tokio::select! {
                            _ = up => {}
                            _ = down => {}
                            _ = cuts.changed() => {}
                        }
                    });
                }
            });
            Self { port, swallow, cut }
        }

        fn url(&self) -> String {
            format!("nats://127.0.0.1:{}", self.port)
        }
    }

    /// The connection an append awaits its ack on is cut after the server stored the message
    /// and the ack was lost: the client connects anew, and the append publishes again under
    /// the same id and answers as a duplicate at once, rather than failing when the client's
    /// ack timeout (5 s) runs out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_whose_ack_was_lost_with_its_connection_is_published_again() {
        for program in testkit::server_programs() {
            let server = NatsServer::start_with(&program.path);
            let proxy = Proxy::start(server.port()).await;
            let log = open_log(&proxy.url()).await;
            let subject = Subject::new("acme", "model", "m").unwrap();
            proxy
                .swallow
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let appending =
                tokio::spawn(
                    async move { log.append(&subject, 0, "acme:c1:model", vec![1]).await },
                );
            // The server stores the message; its ack goes nowhere.
            let direct = open_log(&server.url()).await;
            let deadline = Instant::now() + Duration::from_secs(4);
            while direct.last_seq().await.unwrap() < 1 {
                assert!(
                    Instant::now() < deadline,
                    "the message never reached the stream"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            proxy
                .swallow
                .store(false, std::sync::atomic::Ordering::SeqCst);
            proxy.cut.send_modify(|cuts| *cuts += 1);
            let appended = appending.await.unwrap().expect("answered, not timed out");
            assert_eq!(appended.seq, 1, "[{}]", program.version);
            assert!(
                appended.duplicate,
                "[{}] the first attempt was stored",
                program.version
            );
            assert_eq!(direct.last_seq().await.unwrap(), 1, "stored once");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acked_appends_survive_a_server_crash() {
        let mut server = NatsServer::start();
        let subject = Subject::new("acme", "model", "m").unwrap();
        {
            let log = open_log(&server.url()).await;
            let mut expected = 0;
            for i in 0..100 {
                let appended = log
                    .append(&subject, expected, &format!("m-{i}"), vec![i])
                    .await
                    .unwrap();
                expected = appended.seq;
            }
        }
        server.crash_and_restart();
        let log = open_log(&server.url()).await;
        assert_eq!(
            log.last_seq().await.unwrap(),
            100,
            "every acked append survives SIGKILL"
        );
        assert_eq!(log.subject_last_seq(&subject).await.unwrap(), 100);
        let stored: Vec<Stored> = log
            .tail(1)
            .await
            .unwrap()
            .take(100)
            .map(|item| item.unwrap())
            .collect()
            .await;
        let data: Vec<u8> = stored.iter().map(|stored| stored.data[0]).collect();
        assert_eq!(data, (0..100).collect::<Vec<u8>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_server_is_unavailable() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let result = JetStreamLog::connect(&format!("nats://127.0.0.1:{port}"), "REGISTRY").await;
        assert!(matches!(result, Err(LogError::Unavailable { .. })));
    }

    /// Pipelined appends and ordered replay against a real server.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn append_and_replay_throughput() {
        let server = NatsServer::start();
        let log = std::sync::Arc::new(open_log(&server.url()).await);
        let (tasks, per_task) = (64u64, 300u64);
        let started = Instant::now();
        let mut handles = Vec::new();
        for task in 0..tasks {
            let log = log.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..per_task {
                    let subject = Subject::new("perf", "t", &format!("{task}-{i}")).unwrap();
                    log.append(&subject, 0, &format!("{task}-{i}"), vec![0; 200])
                        .await
                        .unwrap();
                }
            }));
        }
        for handle in handles {
            handle.await.unwrap();
        }
        let total = tasks * per_task;
        let elapsed = started.elapsed();
        println!(
            "{total} appends from {tasks} tasks: {elapsed:?} ({:.0}/s)",
            total as f64 / elapsed.as_secs_f64()
        );
        assert_eq!(log.last_seq().await.unwrap(), total);

        let started = Instant::now();
        let mut tail = log.tail(1).await.unwrap();
        let mut expected = 1;
        while expected <= total {
            let stored = tail.next().await.unwrap().unwrap();
            assert_eq!(stored.seq, expected);
            expected += 1;
        }
        let elapsed = started.elapsed();
        println!(
            "replayed {total} through tail: {elapsed:?} ({:.0}/s)",
            total as f64 / elapsed.as_secs_f64()
        );
    }
}
