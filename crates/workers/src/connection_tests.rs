//! The connection-test worker: runs each requested test against its provider, concurrently
//! up to a limit, and records the result once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use app::{AppError, Ctx, Registry};
use domain::Event;
use domain::connection_test::{self, TestResult};
use domain::values::OrgId;
use eventlog::DurableConfig;
use tokio::sync::Semaphore;

use crate::{Done, WorkerError};

/// The durable consumer's name.
pub const CONSUMER: &str = "connection-tests";

/// The hint of a test the registry could not run: the class it is recorded under,
/// `provider_unavailable`, is the nearest of the classes clients know (as for a test whose
/// saved credential changed before it ran).
const NOT_RUN_HINT: &str = "The registry could not run this test (a problem on its side, not necessarily the provider's): test again, and if it keeps failing ask the operator to check the connection-test worker's logs.";

pub struct Settings {
    /// Tests in flight at once; each mostly waits on the network.
    pub concurrency: usize,
    pub providers: providers::Settings,
    /// How long a delivery may go without a word from its worker before it is given to
    /// another one: a worker that died mid-test. A running test reports progress every
    /// third of it, so it never runs out under a slow test.
    pub ack_wait: Duration,
    /// A failed test is retried with a backoff; on its last attempt (`retry.max_deliver`)
    /// it is recorded as completed with a failing class, so it does not stay pending. A
    /// delivery past that last attempt (which died) only records it so.
    pub retry: crate::Retry,
}

/// Runs until `shutdown` resolves, then lets the tests in flight finish and ack.
pub async fn run(
    registry: Arc<Registry>,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    let client =
        providers::Client::new(&settings.providers).map_err(|e| WorkerError::Settings {
            setting: "providers".into(),
            why: e.to_string(),
        })?;
    let config = durable_config(&settings);
    tokio::pin!(shutdown);
    if !crate::wait_for_views(&registry, CONSUMER, &mut shutdown).await? {
        return Ok(());
    }
    let mut consumer = crate::Consumer::open(&registry, config).await;
    let concurrency = settings.concurrency.max(1);
    let limit = Arc::new(Semaphore::new(concurrency));
    let shared = Arc::new((client, settings));
    let stopped = loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break Ok(()),
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed; were it, no job could run.
                Err(_) => break Ok(()),
            },
        };
        if let Err(error) = crate::views_running(&registry) {
            break Err(error);
        }
        let delivery = tokio::select! {
            _ = &mut shutdown => break Ok(()),
            next = consumer.next(&registry, Duration::from_millis(500)) => next,
        };
        let Some(delivery) = delivery else { continue };
        let read = match crate::read(delivery) {
            Ok(read) => read,
            Err(error) => break Err(error),
        };
        let (registry, shared) = (Arc::clone(&registry), Arc::clone(&shared));
        tokio::spawn(async move {
            let (client, settings) = (&shared.0, &shared.1);
            job(&registry, client, settings, read).await;
            drop(permit);
        });
    };
    // Let the tests in flight finish and ack.
    let _ = limit
        .acquire_many(u32::try_from(concurrency).unwrap_or(u32::MAX))
        .await;
    stopped
}

/// Deliveries past the worker's attempts. Each only records the test as not run: its last
/// attempt ended without a word (the worker died, or the test brought it down), and the
/// log would otherwise never deliver it again, leaving it pending for ever. The log gives
/// up after these, so a test that cannot even be settled does not circulate for ever.
const SETTLING_DELIVERIES: u64 = 10;

/// The worker's durable consumer: one test at a time (a fetched test would wait for a free
/// slot while its ack wait runs), delivered up to its attempts and then
/// [`SETTLING_DELIVERIES`] more.
pub fn durable_config(settings: &Settings) -> DurableConfig {
    let attempts = settings.retry.max_deliver;
    DurableConfig {
        name: CONSUMER.into(),
        filter: "reg.*.connection_test.*".into(),
        ack_wait: settings.ack_wait,
        // 0 is "unlimited" for both.
        max_deliver: match attempts {
            0 => 0,
            attempts => attempts.saturating_add(SETTLING_DELIVERIES),
        },
        batch: 1,
    }
}

/// One delivery, read at the loop, to its ack or nak.
async fn job(
    registry: &Registry,
    client: &providers::Client,
    settings: &Settings,
    read: crate::Read,
) {
    let Some((delivery, envelope, event)) = crate::job_or_drop(registry, CONSUMER, read).await
    else {
        return;
    };
    let Event::ConnectionTest(connection_test::Event::Requested { .. }) = event else {
        crate::done(registry, CONSUMER, delivery, Done::Skipped).await;
        return;
    };
    let seq = delivery.stored.seq;
    if settings.retry.is_spent(delivery.attempt) {
        return give_up(registry, settings, delivery, &envelope, None).await;
    }
    let outcome = crate::keep_alive(
        &delivery,
        settings.ack_wait / 3,
        handle(registry, client, &settings.providers, seq, &envelope),
    )
    .await;
    let error = match outcome {
        Ok(done) => return crate::done(registry, CONSUMER, delivery, done).await,
        Err(error) => error,
    };
    if !settings.retry.is_last(delivery.attempt) {
        return crate::retry_later(registry, CONSUMER, delivery, &settings.retry, &error).await;
    }
    give_up(
        registry,
        settings,
        delivery,
        &envelope,
        Some(crate::chain(&error)),
    )
    .await;
}

/// Records a test that will not be run again as completed and not run, so it does not stay
/// pending (and the add gate does not say "still running") for ever. `error` is why its last
/// attempt failed; `None` when that attempt ended without a word (its worker died, or the
/// test brought it down), or recorded its result and lost only its ack: then nothing more is
/// recorded. A recording that fails gives the delivery back, to try again.
async fn give_up(
    registry: &Registry,
    settings: &Settings,
    delivery: eventlog::Delivery,
    envelope: &eventlog::Envelope,
    error: Option<String>,
) {
    let (seq, test_id, attempt) = (
        delivery.stored.seq,
        &envelope.aggregate_id,
        delivery.attempt,
    );
    let record = async {
        let org = OrgId::parse(&envelope.org).map_err(AppError::from)?;
        registry.settle(seq).await?;
        complete_not_run(registry, org, test_id, NOT_RUN_HINT).await
    };
    let recorded = crate::keep_alive(&delivery, settings.ack_wait / 3, record).await;
    match recorded {
        Ok(false) if error.is_none() => {
            return crate::done(registry, CONSUMER, delivery, Done::Skipped).await;
        }
        Ok(_) => {
            registry.jobs().record(CONSUMER, "failed");
            let error = error
                .as_deref()
                .unwrap_or("its last attempt ended without a result");
            tracing::error!(%error, seq, test = %test_id, attempt, "connection test recorded as not run");
        }
        Err(recording) => {
            registry.jobs().record(CONSUMER, "failed");
            let recording = crate::chain(&recording);
            let delay = settings.retry.delay(attempt);
            tracing::error!(error = %recording, seq, test = %test_id, retry_in_ms = delay.as_millis(), "cannot record the connection test as not run; it will be tried again");
            if let Err(error) = delivery.nak(delay).await {
                tracing::warn!(%error, seq, test = %test_id, "nak failed; the test will be delivered again after the ack wait");
            }
            return;
        }
    }
    if let Err(error) = delivery.ack().await {
        tracing::warn!(%error, seq, test = %test_id, "ack of a given-up connection test failed");
    }
}

/// Records the test as completed and not run, under the nearest class clients know.
async fn complete_not_run(
    registry: &Registry,
    org: OrgId,
    test_id: &str,
    hint: &str,
) -> Result<bool, WorkerError> {
    let result = TestResult {
        class: providers::OutcomeClass::ProviderUnavailable
            .code()
            .to_owned(),
        hint: hint.to_owned(),
        retry_after_ms: None,
        upstream_status: None,
        upstream_message: None,
        latency_ms: 0,
        suggested_input_cost: None,
        suggested_output_cost: None,
    };
    Ok(
        app::connection_tests::complete(registry, &worker_ctx(org, test_id), test_id, result)
            .await?,
    )
}

/// The context of the worker's result command; its command id derives from the test, so a
/// result is recorded once however often the job runs.
fn worker_ctx(org: OrgId, test_id: &str) -> Ctx {
    Ctx::worker(
        org,
        CONSUMER,
        "connection-test worker",
        format!("{test_id}-result"),
    )
}

async fn handle(
    registry: &Registry,
    client: &providers::Client,
    settings: &providers::Settings,
    seq: u64,
    envelope: &eventlog::Envelope,
) -> Result<Done, WorkerError> {
    let org = OrgId::parse(&envelope.org).map_err(AppError::from)?;
    let test_id = envelope.aggregate_id.as_str();
    let (draft, credential) = match app::connection_tests::job(registry, &org, test_id, seq).await?
    {
        app::connection_tests::Job::Run { draft, credential } => (draft, credential),
        app::connection_tests::Job::Done => return Ok(Done::Skipped),
        app::connection_tests::Job::Stale(hint) => {
            tracing::info!(org = %org, test = %test_id, "connection test not run: its saved credential changed since it was requested");
            complete_not_run(registry, org, test_id, hint).await?;
            return Ok(Done::Recorded);
        }
    };
    let probe = providers::Probe {
        provider: draft.provider,
        endpoint: draft.endpoint.clone(),
        provider_model_id: draft.provider_model_id.clone(),
        credential,
    };
    let outcome = providers::test_connection(client, &probe, settings).await;
    // Prices are suggested for a working model only.
    let (input, output) = if outcome.is_ok() {
        providers::suggest_pricing(draft.provider, &draft.provider_model_id).unwrap_or((None, None))
    } else {
        (None, None)
    };
    let result = TestResult {
        class: outcome.class().code().to_owned(),
        hint: outcome.hint().to_owned(),
        retry_after_ms: outcome
            .retry_after()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        upstream_status: outcome.upstream_status(),
        upstream_message: outcome.upstream_message().map(str::to_owned),
        latency_ms: u64::try_from(outcome.latency().as_millis()).unwrap_or(u64::MAX),
        suggested_input_cost: input,
        suggested_output_cost: output,
    };
    tracing::info!(org = %org, test = %test_id, provider = %draft.provider, class = %result.class, "connection test done");
    app::connection_tests::complete(registry, &worker_ctx(org, test_id), test_id, result).await?;
    Ok(Done::Recorded)
}

/// The worker's settings from the registry's configuration.
pub fn settings(config: &app::config::ProvidersConfig) -> Result<Settings, WorkerError> {
    let invalid = |setting: String, why: String| WorkerError::Settings { setting, why };
    let mut providers = providers::Settings::default();
    providers.timeout = Duration::from_millis(config.timeout_ms);
    providers.outbound = providers::OutboundPolicy {
        allow_private: config.allow_private,
        allow_loopback: config.allow_loopback,
    };
    for (name, url) in &config.base_urls {
        let provider = domain::provider::Provider::parse(name)
            .map_err(|e| invalid("providers.base_urls".into(), e.message))?;
        let url = domain::values::HttpUrl::parse("base_url", url)
            .map_err(|e| invalid(format!("providers.base_urls.{name}"), e.message))?;
        providers = providers
            .with_base_url(provider, url)
            .map_err(|e| invalid(format!("providers.base_urls.{name}"), e.to_string()))?;
    }
    // A worker that died mid-test hands its test on after this long; see `Settings::ack_wait`.
    let ack_wait = providers.timeout * 2 + Duration::from_secs(2);
    Ok(Settings {
        concurrency: config.concurrency,
        providers,
        ack_wait,
        retry: crate::Retry {
            max_deliver: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use eventlog::{
        Acker, AppendError, Appended, Delivery, Durable, EventLog, LogError, Stored, Subject,
    };
    use futures::stream::BoxStream;
    use serde_json::json;

    use super::*;

    const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    /// The log as the worker sees it: its first `fakes` durable consumers are fake, and the
    /// one opened after them is the real one. The first fake hands out one message of
    /// `data`, if any; every fake then fails its pulls, after `pull_for`, as one whose NATS
    /// node died. The projector reads the real log and never sees them.
    struct FakeFirst {
        inner: Arc<dyn EventLog>,
        data: Option<Vec<u8>>,
        acked: Arc<AtomicBool>,
        opened: std::sync::atomic::AtomicU64,
        fakes: u64,
        pull_for: Duration,
    }

    #[async_trait]
    impl EventLog for FakeFirst {
        async fn append(
            &self,
            subject: &Subject,
            expected_last: u64,
            msg_id: &str,
            data: Vec<u8>,
        ) -> Result<Appended, AppendError> {
            self.inner
                .append(subject, expected_last, msg_id, data)
                .await
        }

        async fn last_seq(&self) -> Result<u64, LogError> {
            self.inner.last_seq().await
        }

        async fn subject_last_seq(&self, subject: &Subject) -> Result<u64, LogError> {
            self.inner.subject_last_seq(subject).await
        }

        async fn tail(
            &self,
            from: u64,
        ) -> Result<BoxStream<'static, Result<Stored, LogError>>, LogError> {
            self.inner.tail(from).await
        }

        async fn durable(&self, config: DurableConfig) -> Result<Box<dyn Durable>, LogError> {
            let opened = self.opened.fetch_add(1, Ordering::SeqCst);
            if opened >= self.fakes {
                return self.inner.durable(config).await;
            }
            let first = self.data.clone().filter(|_| opened == 0).map(|data| {
                let stored = Stored {
                    seq: 424_242,
                    subject: "reg.acme.connection_test.poison".into(),
                    data,
                };
                let acker = Recording(Arc::clone(&self.acked));
                Delivery::new(stored, 1, Box::new(acker))
            });
            Ok(Box::new(FakeDurable {
                first,
                pull_for: self.pull_for,
            }))
        }
    }

    struct FakeDurable {
        first: Option<Delivery>,
        pull_for: Duration,
    }

    #[async_trait]
    impl Durable for FakeDurable {
        async fn next(&mut self, _wait: Duration) -> Result<Option<Delivery>, LogError> {
            if let Some(first) = self.first.take() {
                return Ok(Some(first));
            }
            tokio::time::sleep(self.pull_for).await;
            Err(LogError::unavailable("the consumer's node died"))
        }
    }

    /// Notes an ack; a nak or a drop leaves the flag down.
    struct Recording(Arc<AtomicBool>);

    #[async_trait]
    impl Acker for Recording {
        async fn ack(self: Box<Self>) -> Result<(), LogError> {
            self.0.store(true, Ordering::SeqCst);
            Ok(())
        }
        async fn ack_unconfirmed(self: Box<Self>) -> Result<(), LogError> {
            self.ack().await
        }
        async fn nak(self: Box<Self>, _delay: Duration) -> Result<(), LogError> {
            Ok(())
        }
        async fn in_progress(&self) -> Result<(), LogError> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poison_message_is_acked_and_a_lost_consumer_is_opened_anew() {
        let (running, ctx, dir) = started().await;
        let registry = Arc::clone(&running.registry);
        let acked = Arc::new(AtomicBool::new(false));
        // This build's envelope version (2, a postcard varint), then bytes that do not
        // decode: poison, not a newer release's message.
        let worker_registry = first_delivering(&registry, vec![2, 0xff, 0xff, 0xff], &acked);
        let settings = settings(&app::config::ProvidersConfig::default()).expect("settings");
        let worker = tokio::spawn(run(
            Arc::clone(&worker_registry),
            settings,
            running.stopped(),
        ));

        // A private address is refused before any connection: a quick, offline result.
        let request = json!({"provider": "openai_compatible", "provider_model_id": "llama3",
            "endpoint_url": "http://10.0.0.1/v1"});
        let request = serde_json::from_value(request).expect("request");
        let id = app::connection_tests::request_draft(&registry, &ctx, request)
            .await
            .expect("requested")
            .value
            .id;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let test = loop {
            let test =
                app::connection_tests::get(&registry, &ctx, &id, Some(Duration::from_secs(5)))
                    .await
                    .expect("test")
                    .value;
            if test.status == "completed" || tokio::time::Instant::now() > deadline {
                break test;
            }
        };
        assert_eq!(test.status, "completed", "the test after the poison ran");
        assert_eq!(
            test.result.map(|r| r.class).as_deref(),
            Some("destination_blocked")
        );
        assert!(acked.load(Ordering::SeqCst), "the poison message is acked");
        let failed = worker_registry
            .jobs()
            .snapshot()
            .into_iter()
            .find(|((worker, outcome), _)| worker == CONSUMER && outcome == "failed")
            .map(|(_, count)| count);
        assert_eq!(failed, Some(1), "the poison counts as one failed job");
        assert_eq!(
            worker_registry.consumers().losses(),
            vec![(CONSUMER.to_owned(), 1)],
            "the lost consumer is counted once"
        );
        assert_eq!(worker_registry.consumers().interrupted(), None);

        running.stop().await;
        worker.await.expect("worker task").expect("worker");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A registry for the worker over `registry`'s log and views, whose first durable
    /// consumer hands out one message of `data` (acks noted in `acked`). The tests need no
    /// credential, so no data key.
    fn first_delivering(
        registry: &Registry,
        data: Vec<u8>,
        acked: &Arc<AtomicBool>,
    ) -> Arc<Registry> {
        over_fake_log(
            registry,
            FakeFirst {
                inner: Arc::clone(registry.log()),
                data: Some(data),
                acked: Arc::clone(acked),
                opened: std::sync::atomic::AtomicU64::new(0),
                fakes: 1,
                pull_for: Duration::ZERO,
            },
        )
    }

    fn over_fake_log(registry: &Registry, log: FakeFirst) -> Arc<Registry> {
        let master = vault::MasterKey::from_base64(MASTER_KEY).expect("master key");
        Arc::new(Registry::new(app::Parts {
            log: Arc::new(log),
            views: Arc::clone(registry.views()),
            vault: vault::Vault::new(master, Arc::new(vault::MemoryKeyring::new())),
            clock: Arc::new(app::SystemClock),
            read_your_writes_timeout: Duration::from_secs(30),
            receipt_ttl_ms: 900_000,
            platform_key: None,
        }))
    }

    /// A registry on a fresh embedded log in a temp dir, with org `acme`.
    async fn started() -> (app::Running, Ctx, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("modelreg-workers-{}", app::new_id()));
        let config = app::config::Config {
            data_dir: dir.clone(),
            master_key: Some(MASTER_KEY.into()),
            bootstrap_default_org: false,
            ..app::config::Config::default()
        };
        let running = app::start(&config).await.expect("registry");
        let org = app::orgs::create(&running.registry, "Acme")
            .await
            .expect("org")
            .org;
        (running, Ctx::system(org, "test"), dir)
    }

    /// A message a newer release wrote (an envelope version this build does not know) is
    /// neither run nor acked: the worker stops there, saying why, and an upgraded one takes
    /// it. It used to be acked as undecodable, and its job lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_from_a_newer_release_stops_the_worker_unacked() {
        let (running, _, dir) = started().await;
        let registry = Arc::clone(&running.registry);
        // An envelope of this build whose event has no variant here (a newer release's new
        // event: ops/evolving-events.md), as the registry would append it.
        let new_variant = eventlog::Envelope {
            schema_version: eventlog::SCHEMA_VERSION,
            event_id: [7; 16],
            org: "acme".into(),
            kind: "connection_test".into(),
            aggregate_id: "ct_new".into(),
            aggregate_version: 1,
            recorded_at_ms: 0,
            actor: eventlog::Actor {
                kind: eventlog::ActorKind::System,
                id: "test".into(),
                label: "test".into(),
            },
            request_id: String::new(),
            command_id: "c".into(),
            prev_hash: [0; 32],
            payload: vec![250, 1],
            payload_version: domain::event::PAYLOAD_VERSION,
            client_addr: String::new(),
        }
        .encode();
        // Envelope schema version 99 (a postcard varint), then a body.
        for (data, named) in [(vec![99, 1, 2, 3], "99"), (new_variant, "no variant")] {
            let acked = Arc::new(AtomicBool::new(false));
            let worker_registry = first_delivering(&registry, data, &acked);
            let settings = settings(&app::config::ProvidersConfig::default()).expect("settings");
            let stopped = tokio::time::timeout(
                Duration::from_secs(20),
                run(worker_registry, settings, std::future::pending::<()>()),
            )
            .await
            .expect("the worker stops");
            match stopped {
                Err(WorkerError::NewerRelease { seq, why }) => {
                    assert_eq!(seq, 424_242);
                    assert!(why.contains(named), "{why}");
                }
                other => panic!("expected a stop at the newer message, got {other:?}"),
            }
            assert!(!acked.load(Ordering::SeqCst), "the newer message was acked");
        }
        running.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Once the views stop for good (a poison event in the log), the worker stops too,
    /// instead of taking jobs that could only fail until their deliveries ran out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_worker_stops_when_its_views_stop() {
        let (running, _, dir) = started().await;
        let registry = Arc::clone(&running.registry);
        let settings = settings(&app::config::ProvidersConfig::default()).expect("settings");
        let worker = tokio::spawn(run(
            Arc::clone(&registry),
            settings,
            std::future::pending::<()>(),
        ));
        // The worker is taking jobs; then the projector meets an event it cannot decode.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while registry.consumers().interrupted().is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the worker never started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !worker.is_finished(),
            "the worker stopped before any poison"
        );
        let subject = Subject::new("acme", "model", "poisoned").expect("subject");
        registry
            .log()
            .append(&subject, 0, "poison-1", b"not an envelope".to_vec())
            .await
            .expect("append");
        let stopped = tokio::time::timeout(Duration::from_secs(20), worker)
            .await
            .expect("the worker stops")
            .expect("worker task");
        assert!(
            matches!(stopped, Err(WorkerError::ViewsStopped(_))),
            "{stopped:?}"
        );
        assert!(registry.views().failure().is_some());
        running.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A consumer that lost the log is reported interrupted (in `/readyz`) until a pull
    /// works again. Opening it anew used to clear that, so a node that let the consumer be
    /// opened and then failed every pull kept readiness flapping.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_consumer_whose_pulls_keep_failing_stays_interrupted() {
        let (running, _, dir) = started().await;
        let registry = over_fake_log(
            &running.registry,
            FakeFirst {
                inner: Arc::clone(running.registry.log()),
                data: None,
                acked: Arc::new(AtomicBool::new(false)),
                opened: std::sync::atomic::AtomicU64::new(0),
                fakes: u64::MAX,
                pull_for: Duration::from_millis(100),
            },
        );
        let settings = settings(&app::config::ProvidersConfig::default()).expect("settings");
        let mut consumer = crate::Consumer::open(&registry, durable_config(&settings)).await;
        let pulling = {
            let registry = Arc::clone(&registry);
            tokio::spawn(async move { consumer.next(&registry, Duration::from_millis(50)).await })
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while registry.consumers().interrupted().is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the loss is never reported"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let until = tokio::time::Instant::now() + Duration::from_millis(1500);
        while tokio::time::Instant::now() < until {
            assert!(
                registry.consumers().interrupted().is_some(),
                "reported delivering while every pull fails"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let losses = registry.consumers().losses();
        assert!(
            matches!(losses.as_slice(), [(name, n)] if name == CONSUMER && *n >= 3),
            "opened anew, again and again: {losses:?}"
        );
        pulling.abort();
        running.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
