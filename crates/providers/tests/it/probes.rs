//! The provider table: one row per (provider, scenario, credential), the class, status and
//! retry-after it must give, and what the fake server must have received.

use std::time::Duration;

use domain::provider::{CredentialSecret, Endpoint, Provider, ProviderModelId};
use domain::values::{AwsRegion, HttpUrl};
use providers::{Client, OutboundPolicy, Outcome, OutcomeClass, Probe, Settings, test_connection};
use secrets::Secret;

use crate::fake::{self, Fake};

/// Which credential a row sends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Key {
    Good,
    Bad,
    /// Bedrock: a right access key ID with a wrong secret (the signature fails).
    BadSecret,
    /// Bedrock: a Bedrock API key instead of a key pair.
    BedrockToken,
    BadBedrockToken,
    /// OpenAI-compatible: no key at all.
    Absent,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Retry {
    No,
    Exactly(u64),
    /// An HTTP date: about this many seconds, minus the time the test took.
    About(u64),
}

/// Where the probe is sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Target {
    Fake,
    /// A port nothing listens on.
    ClosedPort,
}

pub(crate) struct Row {
    pub scenario: &'static str,
    pub key: Key,
    pub target: Target,
    pub class: OutcomeClass,
    pub status: Option<u16>,
    pub retry: Retry,
}

const fn row(
    scenario: &'static str,
    key: Key,
    class: OutcomeClass,
    status: Option<u16>,
    retry: Retry,
) -> Row {
    Row {
        scenario,
        key,
        target: Target::Fake,
        class,
        status,
        retry,
    }
}

use OutcomeClass as C;
use Retry::{About, Exactly, No};

/// The eight cases every provider must cover, given its own statuses.
fn standard(
    invalid_key_status: u16,
    unknown_model: (OutcomeClass, u16),
    rate_limit_retry: Retry,
) -> Vec<Row> {
    vec![
        row("pass", Key::Good, C::Ok, Some(200), No),
        row(
            "pass",
            Key::Bad,
            C::AuthInvalid,
            Some(invalid_key_status),
            No,
        ),
        row(
            "nosuchmodel",
            Key::Good,
            unknown_model.0,
            Some(unknown_model.1),
            No,
        ),
        row(
            "ratelimited",
            Key::Good,
            C::RateLimited,
            Some(429),
            rate_limit_retry,
        ),
        row("truncated", Key::Good, C::Ok, Some(200), No),
        Row {
            target: Target::ClosedPort,
            ..row("pass", Key::Good, C::EndpointUnreachable, None, No)
        },
        row("slow", Key::Good, C::Timeout, None, No),
        row("html", Key::Good, C::BadResponse, Some(200), No),
    ]
}

fn model_id(provider: Provider, scenario: &str) -> ProviderModelId {
    let raw = match provider {
        Provider::Openai => format!("gpt-{scenario}"),
        Provider::Anthropic => format!("claude-{scenario}"),
        Provider::Gemini => format!("gemini-{scenario}"),
        Provider::Openrouter => format!("fake/{scenario}"),
        Provider::Fireworks => format!("accounts/fake/models/{scenario}"),
        Provider::Together => format!("fake/{scenario}"),
        Provider::Bedrock => format!("fake.{scenario}-v1:0"),
        Provider::Huggingface => format!("tgi-{scenario}"),
        Provider::OpenaiCompatible => format!("local-{scenario}"),
    };
    ProviderModelId::parse(provider, &raw).expect("model id")
}

fn api_key(key: &str) -> Option<CredentialSecret> {
    Some(CredentialSecret::ApiKey(Secret::new(key.to_owned())))
}

/// The credential a row sends, and what the fake must have seen as the credential.
fn credential(provider: Provider, key: Key) -> (Option<CredentialSecret>, Option<String>) {
    let good = match provider {
        Provider::Openai => fake::OPENAI_KEY,
        Provider::Anthropic => fake::ANTHROPIC_KEY,
        Provider::Gemini => fake::GEMINI_KEY,
        Provider::Openrouter => fake::OPENROUTER_KEY,
        Provider::Fireworks => fake::FIREWORKS_KEY,
        Provider::Together => fake::TOGETHER_KEY,
        Provider::Huggingface => fake::HF_KEY,
        Provider::OpenaiCompatible => fake::COMPAT_KEY,
        Provider::Bedrock => fake::AWS_ACCESS_KEY_ID,
    };
    let pair = |id: &str, secret: &str| {
        Some(CredentialSecret::AwsAccessKey {
            access_key_id: id.to_owned(),
            secret_access_key: Secret::new(secret.to_owned()),
            session_token: Some(Secret::new(fake::AWS_SESSION_TOKEN.to_owned())),
        })
    };
    let bad = format!("{good}REVOKED");
    match (provider, key) {
        (Provider::Bedrock, Key::Good) => (
            pair(fake::AWS_ACCESS_KEY_ID, fake::AWS_SECRET_ACCESS_KEY),
            Some(fake::AWS_ACCESS_KEY_ID.to_owned()),
        ),
        (Provider::Bedrock, Key::Bad) => (
            pair("AKIAUNKNOWNKEY000000", fake::AWS_SECRET_ACCESS_KEY),
            Some("AKIAUNKNOWNKEY000000".to_owned()),
        ),
        (Provider::Bedrock, Key::BadSecret) => (
            pair(
                fake::AWS_ACCESS_KEY_ID,
                "wrongSecretAccessKey/0123456789+abcdefghi",
            ),
            Some(fake::AWS_ACCESS_KEY_ID.to_owned()),
        ),
        (Provider::Bedrock, Key::BedrockToken) => (
            Some(CredentialSecret::BedrockApiKey(Secret::new(
                fake::BEDROCK_API_KEY.to_owned(),
            ))),
            Some(fake::BEDROCK_API_KEY.to_owned()),
        ),
        (Provider::Bedrock, Key::BadBedrockToken) => {
            let bad = format!("{}REVOKED", fake::BEDROCK_API_KEY);
            (
                Some(CredentialSecret::BedrockApiKey(Secret::new(bad.clone()))),
                Some(bad),
            )
        }
        (_, Key::Good) => (api_key(good), Some(good.to_owned())),
        (_, Key::Absent) => (None, None),
        (_, _) => (api_key(&bad), Some(bad)),
    }
}

/// Settings pointing every provider at `base` (the fake, or a closed port).
fn settings(base: &str, timeout: Duration) -> Settings {
    let url = |prefix: &str| HttpUrl::parse("base_url", &format!("{base}{prefix}")).expect("url");
    let mut settings = Settings::default();
    for (provider, prefix) in [
        (Provider::Openai, "/openai/v1"),
        (Provider::Anthropic, "/anthropic"),
        (Provider::Gemini, "/gemini/v1beta"),
        (Provider::Openrouter, "/openrouter/api/v1"),
        (Provider::Fireworks, "/fireworks/inference/v1"),
        (Provider::Together, "/together/v1"),
        (Provider::Bedrock, "/bedrock"),
    ] {
        settings = settings
            .with_base_url(provider, url(prefix))
            .expect("base url");
    }
    settings.timeout = timeout;
    settings.outbound = OutboundPolicy {
        allow_private: false,
        allow_loopback: true,
    };
    settings
}

fn endpoint(provider: Provider, base: &str) -> Option<Endpoint> {
    let url = |path: &str| {
        Endpoint::Url(HttpUrl::parse("endpoint_url", &format!("{base}{path}")).expect("url"))
    };
    match provider {
        Provider::Bedrock => Some(Endpoint::Region(
            AwsRegion::parse(fake::AWS_REGION).expect("region"),
        )),
        Provider::Huggingface => Some(url("/hf")),
        Provider::OpenaiCompatible => Some(url("/compat/v1")),
        _ => None,
    }
}

/// A base URL where nothing listens.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

pub(crate) fn probe(provider: Provider, scenario: &str, key: Key, base: &str) -> Probe {
    Probe {
        provider,
        endpoint: endpoint(provider, base),
        provider_model_id: model_id(provider, scenario),
        credential: credential(provider, key).0,
    }
}

/// Runs one probe against the fake (or a closed port) with the row's timeout.
pub(crate) async fn run(fake: &Fake, provider: Provider, row: &Row) -> Outcome {
    let base = match row.target {
        Target::Fake => fake.url(""),
        Target::ClosedPort => closed_port().await,
    };
    let timeout = match row.class {
        C::Timeout => Duration::from_millis(300),
        _ => Duration::from_secs(10),
    };
    let settings = settings(&base, timeout);
    let client = Client::new(&settings).expect("client");
    test_connection(
        &client,
        &probe(provider, row.scenario, row.key, &base),
        &settings,
    )
    .await
}

async fn check_provider(provider: Provider, rows: Vec<Row>) {
    let fake = Fake::start().await;
    for row in &rows {
        let before = fake.seen().len();
        let outcome = run(&fake, provider, row).await;
        let what = format!("{provider} {} {:?}: {outcome:?}", row.scenario, row.key);
        assert_eq!(outcome.class(), row.class, "{what}");
        assert_eq!(outcome.upstream_status(), row.status, "{what}");
        match row.retry {
            No => assert_eq!(outcome.retry_after(), None, "{what}"),
            Exactly(seconds) => {
                assert_eq!(
                    outcome.retry_after(),
                    Some(Duration::from_secs(seconds)),
                    "{what}"
                )
            }
            About(seconds) => {
                let wait = outcome.retry_after().expect("a retry-after").as_secs();
                assert!((seconds - 5..=seconds).contains(&wait), "{what}");
            }
        }
        if row.class != C::Ok {
            assert!(
                outcome.upstream_message().is_some(),
                "a failure says why: {what}"
            );
        }
        let seen = fake.seen();
        match row.target {
            Target::ClosedPort => assert_eq!(seen.len(), before, "{what}"),
            Target::Fake => {
                assert_eq!(seen.len(), before + 1, "exactly one call: {what}");
                let received = &seen[before];
                let (_, expected) = credential(provider, row.key);
                assert_eq!(
                    received.credential, expected,
                    "the credential under test: {what}"
                );
                if provider == Provider::Bedrock && matches!(row.key, Key::Good) {
                    assert_eq!(received.signature_valid, Some(true), "{what}");
                    assert_eq!(
                        received
                            .headers
                            .get("x-amz-security-token")
                            .and_then(|v| v.to_str().ok()),
                        Some(fake::AWS_SESSION_TOKEN),
                        "{what}"
                    );
                }
                if provider == Provider::Bedrock && row.key == Key::BadSecret {
                    assert_eq!(received.signature_valid, Some(false), "{what}");
                }
            }
        }
        assert_eq!(fake.violations(), Vec::<String>::new(), "{what}");
    }
}

#[tokio::test]
async fn openai() {
    let mut rows = standard(401, (C::ModelNotFound, 404), Exactly(7));
    rows.extend([
        row("quota", Key::Good, C::QuotaExceeded, Some(429), No),
        row(
            "unsupported",
            Key::Good,
            C::UnsupportedParameter,
            Some(400),
            No,
        ),
        row(
            "overloaded",
            Key::Good,
            C::ProviderUnavailable,
            Some(503),
            No,
        ),
        row("huge", Key::Good, C::BadResponse, Some(200), No),
        row("redirect", Key::Good, C::BadResponse, Some(302), No),
    ]);
    check_provider(Provider::Openai, rows).await;
}

#[tokio::test]
async fn anthropic() {
    let mut rows = standard(401, (C::ModelNotFound, 404), Exactly(12));
    rows.extend([
        row("quota", Key::Good, C::QuotaExceeded, Some(400), No),
        row(
            "overloaded",
            Key::Good,
            C::ProviderUnavailable,
            Some(529),
            No,
        ),
    ]);
    check_provider(Provider::Anthropic, rows).await;
}

#[tokio::test]
async fn gemini() {
    // An invalid key is a 400 (API_KEY_INVALID); the retry delay comes from RetryInfo.
    check_provider(
        Provider::Gemini,
        standard(400, (C::ModelNotFound, 404), Exactly(31)),
    )
    .await;
}

#[tokio::test]
async fn openrouter() {
    // An unknown model is a 400; Retry-After is an HTTP date 20 s ahead.
    let mut rows = standard(401, (C::ModelNotFound, 400), About(20));
    rows.extend([
        row("quota", Key::Good, C::QuotaExceeded, Some(402), No),
        row(
            "midstream",
            Key::Good,
            C::ProviderUnavailable,
            Some(200),
            No,
        ),
    ]);
    check_provider(Provider::Openrouter, rows).await;
}

#[tokio::test]
async fn fireworks() {
    let mut rows = standard(401, (C::ModelNotFound, 404), Exactly(3));
    rows.push(row(
        "legacymissing",
        Key::Good,
        C::ModelNotFound,
        Some(404),
        No,
    ));
    check_provider(Provider::Fireworks, rows).await;
}

#[tokio::test]
async fn together() {
    let mut rows = standard(401, (C::ModelNotFound, 404), Exactly(5));
    rows.push(row(
        "notavailable",
        Key::Good,
        C::ModelNotFound,
        Some(400),
        No,
    ));
    check_provider(Provider::Together, rows).await;
}

#[tokio::test]
async fn bedrock() {
    // SigV4 with a session token; a bad key is a 403; an unknown model a 400
    // ValidationException; throttling sends no Retry-After.
    let mut rows = standard(403, (C::ModelNotFound, 400), No);
    rows.extend([
        row("pass", Key::BadSecret, C::AuthInvalid, Some(403), No),
        row("pass", Key::BedrockToken, C::Ok, Some(200), No),
        row("truncated", Key::BedrockToken, C::Ok, Some(200), No),
        row("pass", Key::BadBedrockToken, C::AuthInvalid, Some(403), No),
        row("denied", Key::Good, C::PermissionDenied, Some(403), No),
    ]);
    check_provider(Provider::Bedrock, rows).await;
}

#[tokio::test]
async fn huggingface() {
    // TGI ignores `model`: an unknown model id still answers, as the real endpoint does.
    let mut rows = standard(401, (C::Ok, 200), No);
    rows.push(row(
        "unsupported",
        Key::Good,
        C::UnsupportedParameter,
        Some(422),
        No,
    ));
    check_provider(Provider::Huggingface, rows).await;
}

#[tokio::test]
async fn openai_compatible() {
    let mut rows = standard(401, (C::ModelNotFound, 404), Exactly(4));
    rows.extend([
        row("legacymissing", Key::Good, C::ModelNotFound, Some(404), No),
        row("pass", Key::Absent, C::Ok, Some(200), No),
    ]);
    check_provider(Provider::OpenaiCompatible, rows).await;
}

#[tokio::test]
async fn a_wrong_endpoint_path_is_a_bad_response_not_an_unknown_model() {
    let fake = Fake::start().await;
    let settings = settings(&fake.url(""), Duration::from_secs(10));
    let client = Client::new(&settings).expect("client");
    let mut probe = probe(Provider::Huggingface, "pass", Key::Good, &fake.url(""));
    probe.endpoint = Some(Endpoint::Url(
        HttpUrl::parse("endpoint_url", &fake.url("/hf/wrong")).expect("url"),
    ));
    let outcome = test_connection(&client, &probe, &settings).await;
    assert_eq!(outcome.class(), C::BadResponse, "{outcome:?}");
    assert_eq!(outcome.upstream_status(), Some(404));
}

/// Providers that quote back the key, the auth header, even a `?key=`: the outcome's message
/// and its `Debug` hold none of it.
#[tokio::test]
async fn echoed_secrets_never_reach_the_outcome() {
    let fake = Fake::start().await;
    let settings = settings(&fake.url(""), Duration::from_secs(10));
    let client = Client::new(&settings).expect("client");
    for provider in Provider::ALL {
        for key in [Key::Good, Key::BedrockToken] {
            if key == Key::BedrockToken && provider != Provider::Bedrock {
                continue;
            }
            let probe = probe(provider, "echo", key, &fake.url(""));
            let outcome = test_connection(&client, &probe, &settings).await;
            let message = outcome.upstream_message().expect("a message").to_owned();
            let debug = format!("{outcome:?}");
            let secrets = [
                fake::OPENAI_KEY,
                fake::ANTHROPIC_KEY,
                fake::GEMINI_KEY,
                fake::OPENROUTER_KEY,
                fake::FIREWORKS_KEY,
                fake::TOGETHER_KEY,
                fake::HF_KEY,
                fake::COMPAT_KEY,
                fake::AWS_SECRET_ACCESS_KEY,
                fake::AWS_SESSION_TOKEN,
                fake::BEDROCK_API_KEY,
                fake::AWS_ACCESS_KEY_ID,
            ];
            for secret in secrets {
                assert!(!message.contains(secret), "{provider}: {message}");
                assert!(!debug.contains(secret), "{provider}: {debug}");
                // Nor a long piece of it.
                let middle = &secret[4..secret.len() - 4];
                assert!(!message.contains(middle), "{provider}: {message}");
            }
            assert_eq!(outcome.class(), C::AuthInvalid, "{provider}: {outcome:?}");
            assert!(
                message.starts_with("Incorrect API key provided: [redacted]"),
                "{provider}: {message}"
            );
            assert!(message.chars().count() <= providers::MESSAGE_MAX_CHARS);
        }
    }
    assert_eq!(fake.violations(), Vec::<String>::new());
}

/// TLS is compiled in, and a failed handshake (here: a plain-HTTP server behind an https URL)
/// is an unreachable endpoint, with nothing sent.
#[tokio::test]
async fn a_tls_failure_is_an_unreachable_endpoint() {
    let fake = Fake::start().await;
    let base = format!("https://{}", fake.addr);
    let settings = settings(&base, Duration::from_secs(10));
    let client = Client::new(&settings).expect("client");
    let outcome = test_connection(
        &client,
        &probe(Provider::Openai, "pass", Key::Good, &base),
        &settings,
    )
    .await;
    assert_eq!(outcome.class(), C::EndpointUnreachable, "{outcome:?}");
    assert!(fake.seen().is_empty());
}
