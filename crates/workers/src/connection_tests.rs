//! The connection-test worker: runs each requested test against its provider, concurrently
//! up to a limit, and records the result once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use app::{Ctx, Registry};
use domain::Event;
use domain::connection_test::{self, TestCredential, TestResult};
use domain::org::Role;
use domain::provider::CredentialSecret;
use domain::values::OrgId;
use eventlog::{Actor, ActorKind, DurableConfig};
use tokio::sync::Semaphore;

/// The durable consumer's name.
pub const CONSUMER: &str = "connection-tests";

pub struct Settings {
    /// Tests in flight at once; each mostly waits on the network.
    pub concurrency: usize,
    pub providers: providers::Settings,
}

/// Runs until `shutdown` resolves, then lets the tests in flight finish and ack.
pub async fn run(
    registry: Arc<Registry>,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let client = providers::Client::new(&settings.providers).map_err(|e| e.to_string())?;
    let config = DurableConfig {
        name: CONSUMER.into(),
        filter: "reg.*.connection_test.*".into(),
        // Longer than any one test, so a slow test is not handed to a second worker.
        ack_wait: settings.providers.timeout * 2 + Duration::from_secs(2),
        max_deliver: 5,
    };
    let mut consumer = registry
        .log
        .durable(config)
        .await
        .map_err(|e| e.to_string())?;
    let concurrency = settings.concurrency.max(1);
    let limit = Arc::new(Semaphore::new(concurrency));
    let shared = Arc::new((client, settings.providers));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = Arc::clone(&limit).acquire_owned() => permit.map_err(|e| e.to_string())?,
        };
        let delivery = tokio::select! {
            _ = &mut shutdown => break,
            next = consumer.next(Duration::from_millis(500)) => next.map_err(|e| e.to_string())?,
        };
        let Some(delivery) = delivery else { continue };
        let (registry, shared) = (Arc::clone(&registry), Arc::clone(&shared));
        tokio::spawn(async move {
            let outcome = handle(
                &registry,
                &shared.0,
                &shared.1,
                delivery.stored.seq,
                &delivery.stored.data,
            )
            .await;
            crate::finish(&registry, CONSUMER, delivery, outcome).await;
            drop(permit);
        });
    }
    // Let the tests in flight finish and ack.
    let _ = limit
        .acquire_many(u32::try_from(concurrency).unwrap_or(u32::MAX))
        .await;
    Ok(())
}

async fn handle(
    registry: &Registry,
    client: &providers::Client,
    settings: &providers::Settings,
    seq: u64,
    data: &[u8],
) -> Result<(), String> {
    let (envelope, event) = crate::decode(data)?;
    let Event::ConnectionTest(connection_test::Event::Requested { draft, .. }) = event else {
        return Ok(());
    };
    let org = OrgId::parse(&envelope.org).map_err(|e| e.to_string())?;
    let test_id = envelope.aggregate_id;
    registry
        .views
        .wait_for(seq, Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    let row = registry
        .views
        .connection_test(org.as_str(), &test_id)
        .map_err(|e| e.to_string())?;
    if row.as_ref().is_some_and(|r| r.test.result.is_some()) {
        return Ok(());
    }
    let credential = open_credential(registry, &org, &test_id, &draft.credential).await?;
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
    let ctx = Ctx {
        org,
        role: Role::Admin,
        actor: Actor {
            kind: ActorKind::Worker,
            id: CONSUMER.into(),
            label: "connection-test worker".into(),
        },
        request_id: app::new_id(),
        command_id: format!("{test_id}-result"),
    };
    registry
        .complete_connection_test(&ctx, &test_id, result)
        .await
        .map_err(|e| e.to_string())
}

async fn open_credential(
    registry: &Registry,
    org: &OrgId,
    test_id: &str,
    credential: &TestCredential,
) -> Result<Option<CredentialSecret>, String> {
    let (context_id, version, kind, sealed) = match credential {
        TestCredential::None => return Ok(None),
        TestCredential::Inline { kind, sealed } => (test_id.to_owned(), 1, *kind, sealed.clone()),
        TestCredential::Saved { id, version } => {
            let row = registry
                .views
                .credential(org.as_str(), id.as_str())
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("credential {id} is gone"))?;
            (
                id.as_str().to_owned(),
                *version,
                row.credential.kind,
                row.sealed,
            )
        }
    };
    let context = vault::SecretContext {
        org: org.as_str(),
        credential_id: &context_id,
        version,
    };
    let opened = registry
        .vault
        .open(&context, &sealed)
        .await
        .map_err(|e| e.to_string())?;
    CredentialSecret::from_sealable(kind, &opened)
        .map(Some)
        .ok_or_else(|| "the credential does not have its kind's shape".into())
}

/// The worker's settings from the registry's configuration.
pub fn settings(config: &app::config::ProvidersConfig) -> Result<Settings, String> {
    let mut providers = providers::Settings::default();
    providers.timeout = Duration::from_millis(config.timeout_ms);
    providers.outbound = providers::OutboundPolicy {
        allow_private: config.allow_private,
        allow_loopback: config.allow_loopback,
    };
    for (name, url) in &config.base_urls {
        let provider = domain::provider::Provider::parse(name)
            .map_err(|e| format!("providers.base_urls: {}", e.message))?;
        let url = domain::values::HttpUrl::parse("base_url", url)
            .map_err(|e| format!("base URL of {name}: {}", e.message))?;
        providers = providers
            .with_base_url(provider, url)
            .map_err(|e| e.to_string())?;
    }
    Ok(Settings {
        concurrency: config.concurrency,
        providers,
    })
}
