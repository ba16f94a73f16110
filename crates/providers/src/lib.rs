//! Provider wire formats: the connection-test probe of each provider, the outcome classes its
//! answers map to, the outbound-safety policy for user-supplied URLs, and the pricing table.
//!
//! One module per provider builds the smallest documented live request with exactly the
//! credential under test and reads the answer (`shared/reference/providers.md` has the formats
//! and their sources). [`test_connection`] runs one probe under a deadline and a size cap and
//! returns an [`Outcome`] whose upstream message is already redacted. [`openrouter_models`]
//! reads OpenRouter's models API for the platform catalog's sync.
//!
//! Architecture invariant: this crate holds no registry state. It never looks a credential up
//! (the probe carries it), never logs, and no secret reaches an error, a `Debug` output or an
//! outcome.

mod anthropic;
mod bedrock;
mod chat_completions;
mod classify;
mod fireworks;
mod gemini;
mod http;
mod huggingface;
mod openai;
mod openai_compatible;
mod openrouter;
pub mod openrouter_models;
mod outbound;
mod outcome;
mod pricing;
mod redact;
mod settings;
mod together;

use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use domain::provider::{CredentialSecret, Endpoint, Provider, ProviderModelId, check_endpoint};
use secrets::Secret;

use crate::classify::Verdict;
use crate::http::{Call, Reply};

pub use outbound::{AddressKind, address_kind, is_allowed};
pub use outcome::{Outcome, OutcomeClass};
pub use pricing::{PRICING_SOURCE, suggest_pricing};
pub use redact::MESSAGE_MAX_CHARS;
pub use settings::{
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, OutboundPolicy, Settings, SettingsError,
};

/// The one user message of every connection test.
pub const TEST_PROMPT: &str = "ping";
/// The output budget of every connection test: enough for any model to start answering, small
/// enough to cost nothing. Reasoning models may spend it all thinking; that still passes.
pub const TEST_MAX_TOKENS: u32 = 16;

/// The draft under test: what the user entered, credential in the clear.
pub struct Probe {
    pub provider: Provider,
    /// A region (Bedrock) or URL (HuggingFace, OpenAI-compatible), as the provider needs.
    pub endpoint: Option<Endpoint>,
    pub provider_model_id: ProviderModelId,
    /// The credential under test; `None` only for an OpenAI-compatible server without a key.
    pub credential: Option<CredentialSecret>,
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe")
            .field("provider", &self.provider)
            .field("endpoint", &self.endpoint)
            .field("provider_model_id", &self.provider_model_id)
            .field("credential", &self.credential.as_ref().map(|c| c.kind()))
            .finish()
    }
}

impl Probe {
    /// Every secret part of the credential, for redaction.
    fn secret_parts(&self) -> Vec<&str> {
        match &self.credential {
            None => Vec::new(),
            Some(CredentialSecret::ApiKey(key) | CredentialSecret::BedrockApiKey(key)) => {
                vec![key.expose_secret()]
            }
            Some(CredentialSecret::AwsAccessKey {
                access_key_id,
                secret_access_key,
                session_token,
            }) => {
                let mut parts = vec![access_key_id.as_str(), secret_access_key.expose_secret()];
                parts.extend(session_token.as_ref().map(Secret::expose_secret));
                parts
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not build the HTTP client: {0}")]
    Build(String),
}

/// The HTTP client for provider calls: rustls, no redirects, no environment proxy, and the
/// vetting DNS resolver of the outbound policy. Build one per process and share it (it pools
/// connections); build it from the same [`Settings`] the tests run with.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
}

impl Client {
    pub fn new(settings: &Settings) -> Result<Self, ClientError> {
        let mut trusted = settings.trusted_hosts();
        trusted.extend(
            Provider::ALL
                .into_iter()
                .filter_map(Settings::default_base_url)
                .filter_map(|base| url::Url::parse(base).ok())
                .filter_map(|url| url.host_str().map(str::to_owned)),
        );
        let resolver = outbound::VettingResolver {
            policy: settings.outbound,
            trusted,
            trusted_suffix: ("bedrock-runtime.", ".amazonaws.com"),
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .user_agent(concat!("modelreg/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        Ok(Self { http })
    }
}

/// Makes the probe's live call and classifies the answer. Never fails: every failure is an
/// outcome class. The whole test (resolution included) runs under `settings.timeout`; a
/// user-supplied URL is vetted against `settings.outbound` before any connection.
pub async fn test_connection(client: &Client, probe: &Probe, settings: &Settings) -> Outcome {
    let started = Instant::now();
    let verdict =
        match tokio::time::timeout(settings.timeout, attempt(client, probe, settings)).await {
            Ok(verdict) => verdict,
            Err(_) => Verdict::new(
                OutcomeClass::Timeout,
                format!(
                    "no complete answer within {} ms",
                    settings.timeout.as_millis()
                ),
            ),
        };
    let redactor = redact::Redactor::new(probe.secret_parts());
    Outcome::new(
        verdict.class,
        verdict.retry_after,
        verdict.status,
        verdict.message.as_deref(),
        started.elapsed(),
        &redactor,
    )
}

/// A provider's reading of an answer.
type Reader = fn(&Reply) -> Verdict;

/// A call ready to go, whether its URL came from the user, and how to read its answer.
struct Prepared {
    call: Call,
    user_supplied_url: bool,
    classify: Reader,
}

async fn attempt(client: &Client, probe: &Probe, settings: &Settings) -> Verdict {
    let prepared = match prepare(probe, settings) {
        Ok(prepared) => prepared,
        Err(verdict) => return verdict,
    };
    if prepared.user_supplied_url {
        match outbound::vet_url(&prepared.call.url, &settings.outbound).await {
            Ok(()) => {}
            Err(outbound::Refused::Blocked(blocked)) => {
                return Verdict::new(OutcomeClass::DestinationBlocked, blocked.to_string());
            }
            Err(outbound::Refused::Unresolvable(why)) => {
                return Verdict::new(OutcomeClass::EndpointUnreachable, why);
            }
        }
    }
    let reply = match http::execute(&client.http, prepared.call, settings.max_response_bytes).await
    {
        Ok(reply) => reply,
        Err(verdict) => return verdict,
    };
    if (300..400).contains(&reply.status) {
        let mut verdict = Verdict::new(
            OutcomeClass::BadResponse,
            "the endpoint answered with a redirect, which is not followed; use the final URL",
        );
        verdict.status = Some(reply.status);
        return verdict;
    }
    (prepared.classify)(&reply)
}

fn prepare(probe: &Probe, settings: &Settings) -> Result<Prepared, Verdict> {
    check_endpoint(probe.provider, probe.endpoint.as_ref())
        .map_err(|invalid| Verdict::new(OutcomeClass::EndpointUnreachable, invalid.message))?;
    let model = &probe.provider_model_id;
    let credential = probe.credential.as_ref();
    let fixed = |call: Call, classify: Reader| Prepared {
        call,
        user_supplied_url: false,
        classify,
    };
    let base = |region| {
        settings
            .base_url(probe.provider, region)
            .ok_or_else(|| Verdict::new(OutcomeClass::EndpointUnreachable, "no base URL"))
    };
    Ok(match (probe.provider, probe.endpoint.as_ref()) {
        (Provider::Openai, _) => fixed(
            openai::call(&base(None)?, model, credential)?,
            openai::classify,
        ),
        (Provider::Anthropic, _) => fixed(
            anthropic::call(&base(None)?, model, credential)?,
            anthropic::classify,
        ),
        (Provider::Gemini, _) => fixed(
            gemini::call(&base(None)?, model, credential)?,
            gemini::classify,
        ),
        (Provider::Openrouter, _) => fixed(
            openrouter::call(&base(None)?, model, credential)?,
            openrouter::classify,
        ),
        (Provider::Fireworks, _) => fixed(
            fireworks::call(&base(None)?, model, credential)?,
            fireworks::classify,
        ),
        (Provider::Together, _) => fixed(
            together::call(&base(None)?, model, credential)?,
            together::classify,
        ),
        (Provider::Bedrock, Some(Endpoint::Region(region))) => fixed(
            bedrock::call(
                &base(Some(region))?,
                region,
                model,
                credential,
                SystemTime::now(),
            )?,
            bedrock::classify,
        ),
        (Provider::Huggingface, Some(Endpoint::Url(url))) => Prepared {
            call: huggingface::call(url, model, credential)?,
            user_supplied_url: true,
            classify: huggingface::classify,
        },
        (Provider::OpenaiCompatible, Some(Endpoint::Url(url))) => Prepared {
            call: openai_compatible::call(url, model, credential)?,
            user_supplied_url: true,
            classify: openai_compatible::classify,
        },
        (Provider::Bedrock | Provider::Huggingface | Provider::OpenaiCompatible, _) => {
            // check_endpoint above refuses these; kept total rather than trusted.
            return Err(Verdict::new(
                OutcomeClass::EndpointUnreachable,
                "the endpoint does not fit the provider",
            ));
        }
    })
}

/// The API key of a single-key provider, or the outcome saying why there is none.
pub(crate) fn api_key(
    provider: Provider,
    credential: Option<&CredentialSecret>,
) -> Result<&Secret, Verdict> {
    match credential {
        Some(CredentialSecret::ApiKey(key)) => Ok(key),
        Some(_) => Err(wrong_credential(provider)),
        None => Err(Verdict::new(
            OutcomeClass::AuthInvalid,
            format!(
                "no credential was given; {provider} needs {}",
                provider.credential_fields()
            ),
        )),
    }
}

/// A credential of a shape the provider does not take (the domain refuses those before a
/// test is requested; kept total rather than trusted). The shapes are the domain's table.
pub(crate) fn wrong_credential(provider: Provider) -> Verdict {
    Verdict::new(
        OutcomeClass::AuthInvalid,
        format!("{provider} takes {}", provider.credential_fields()),
    )
}

/// `base` with `suffix` appended to its path, query kept.
pub(crate) fn join(base: &str, suffix: &str) -> Result<String, Verdict> {
    let mut url = url::Url::parse(base).map_err(|e| {
        Verdict::new(
            OutcomeClass::EndpointUnreachable,
            format!("the base URL is not a URL: {e}"),
        )
    })?;
    let path = format!("{}{suffix}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_appends_to_the_path_and_keeps_the_query() {
        let joined = |base, suffix| join(base, suffix).expect("url");
        assert_eq!(
            joined("https://api.openai.com/v1", "/chat/completions"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            joined("https://gw.example/v1/?api-version=2", "/chat/completions"),
            "https://gw.example/v1/chat/completions?api-version=2"
        );
        assert_eq!(
            joined(
                "http://127.0.0.1:9/bedrock",
                "/model/anthropic.claude-v1%3A0/converse"
            ),
            "http://127.0.0.1:9/bedrock/model/anthropic.claude-v1%3A0/converse"
        );
    }

    /// The resolver is the second line: a name that passed (or skipped) the pre-check but
    /// resolves to a refused address at connect time — DNS rebinding — never connects.
    #[tokio::test]
    async fn the_client_resolver_refuses_blocked_addresses_at_connect_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let url = format!("http://localhost:{port}/v1/chat/completions");

        let client = Client::new(&Settings::default()).expect("client");
        let call = Call::json(url.clone(), &serde_json::json!({}));
        let verdict = http::execute(&client.http, call, 1024)
            .await
            .err()
            .expect("refused");
        assert_eq!(
            verdict.class,
            OutcomeClass::DestinationBlocked,
            "{verdict:?}"
        );
        let accepted =
            tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "no connection reached the listener");

        // An operator-configured base URL's host is trusted and connects.
        let base = domain::values::HttpUrl::parse("base_url", &format!("http://localhost:{port}"))
            .expect("url");
        let settings = Settings::default()
            .with_base_url(Provider::Openai, base)
            .expect("settings");
        let client = Client::new(&settings).expect("client");
        let call = Call::json(url, &serde_json::json!({}));
        let request = tokio::spawn(async move { http::execute(&client.http, call, 1024).await });
        let accepted =
            tokio::time::timeout(std::time::Duration::from_secs(5), listener.accept()).await;
        assert!(matches!(accepted, Ok(Ok(_))), "the trusted host connected");
        request.abort();
    }

    /// A chunked body (no Content-Length to refuse up front) is cut off at the cap while read.
    #[tokio::test]
    async fn a_streamed_body_is_capped_while_reading() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            let chunk = format!("400\r\n{}\r\n", "x".repeat(0x400));
            for _ in 0..64 {
                if socket.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
        });
        let client = Client::new(&Settings::default()).expect("client");
        let call = Call::json(format!("http://{addr}/v1"), &serde_json::json!({}));
        let verdict = http::execute(&client.http, call, 4096)
            .await
            .err()
            .expect("over the cap");
        assert_eq!(verdict.class, OutcomeClass::BadResponse, "{verdict:?}");
        assert_eq!(verdict.status, Some(200));
    }

    /// A 2xx that is JSON but not the provider's answer (an empty object, a model list) is
    /// not a working connection.
    #[test]
    fn every_provider_refuses_a_2xx_of_another_shape() {
        let readers: [(&str, Reader); 9] = [
            ("openai", openai::classify),
            ("anthropic", anthropic::classify),
            ("gemini", gemini::classify),
            ("openrouter", openrouter::classify),
            ("fireworks", fireworks::classify),
            ("together", together::classify),
            ("bedrock", bedrock::classify),
            ("huggingface", huggingface::classify),
            ("openai_compatible", openai_compatible::classify),
        ];
        for (name, classify) in readers {
            for body in [
                "{}",
                r#"{"object":"list","data":[]}"#,
                r#"{"choices":[]}"#,
                "[]",
                "",
            ] {
                let reply = Reply {
                    status: 200,
                    headers: reqwest::header::HeaderMap::new(),
                    body: body.as_bytes().to_vec(),
                };
                let verdict = classify(&reply);
                assert_eq!(verdict.class, OutcomeClass::BadResponse, "{name} {body}");
            }
        }
    }

    #[test]
    fn probe_debug_shows_no_secret() {
        let probe = Probe {
            provider: Provider::Openai,
            endpoint: None,
            provider_model_id: ProviderModelId::parse(Provider::Openai, "gpt-4o").expect("id"),
            credential: Some(CredentialSecret::ApiKey(Secret::new(
                "sk-very-secret-123456".to_owned(),
            ))),
        };
        let debug = format!("{probe:?}");
        assert!(!debug.contains("sk-very-secret"), "{debug}");
        assert!(debug.contains("ApiKey"), "{debug}");
    }
}
