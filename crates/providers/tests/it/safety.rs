//! Outbound safety: user-supplied URLs pointing at metadata, link-local, private or (when not
//! allowed) loopback addresses are refused before any connection.

use std::time::Duration;

use domain::provider::{Endpoint, Provider};
use domain::values::HttpUrl;
use providers::{Client, OutboundPolicy, OutcomeClass, Settings, test_connection};

use crate::fake::Fake;
use crate::probes::{Key, probe};

fn settings(policy: OutboundPolicy) -> Settings {
    let mut settings = Settings::default();
    settings.outbound = policy;
    // Long enough that a real connection attempt to an unroutable address would show.
    settings.timeout = Duration::from_secs(5);
    settings
}

async fn outcome_for(provider: Provider, url: &str, policy: OutboundPolicy) -> providers::Outcome {
    let settings = settings(policy);
    let client = Client::new(&settings).expect("client");
    let mut probe = probe(provider, "pass", Key::Good, "http://unused.example");
    probe.endpoint = Some(Endpoint::Url(
        HttpUrl::parse("endpoint_url", url).expect("url"),
    ));
    test_connection(&client, &probe, &settings).await
}

#[tokio::test]
async fn metadata_link_local_and_private_addresses_are_refused_before_connecting() {
    let closed = OutboundPolicy::default();
    let open = OutboundPolicy {
        allow_private: true,
        allow_loopback: true,
    };
    for (url, policy) in [
        ("http://169.254.169.254/latest/meta-data", closed),
        ("http://169.254.169.254/latest/meta-data", open),
        ("http://[fd00:ec2::254]/", open),
        ("http://100.100.100.200/", open),
        ("http://169.254.10.1:8080/v1", open),
        ("http://[fe80::1]/v1", open),
        ("http://[::ffff:169.254.169.254]/", open),
        ("http://10.0.0.1/v1", closed),
        ("http://192.168.1.20:11434/v1", closed),
        ("http://172.20.0.5/v1", closed),
        ("http://100.64.1.1/v1", closed),
        ("http://[fd12:3456::1]/v1", closed),
        ("http://0.0.0.0:8080/v1", open),
        ("http://127.0.0.1:8080/v1", closed),
    ] {
        for provider in [Provider::OpenaiCompatible, Provider::Huggingface] {
            let outcome = outcome_for(provider, url, policy).await;
            assert_eq!(
                outcome.class(),
                OutcomeClass::DestinationBlocked,
                "{provider} {url} {policy:?}: {outcome:?}"
            );
            assert_eq!(outcome.upstream_status(), None);
            // No connection was tried: an unroutable address would have taken the timeout.
            assert!(
                outcome.latency() < Duration::from_secs(1),
                "{url}: {outcome:?}"
            );
            assert!(
                outcome
                    .upstream_message()
                    .is_some_and(|m| m.contains("refuses"))
            );
        }
    }
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_unless_loopback_is_allowed() {
    let fake = Fake::start().await;
    let port = fake.addr.port();
    let url = format!("http://localhost:{port}/compat/v1");
    let outcome = outcome_for(Provider::OpenaiCompatible, &url, OutboundPolicy::default()).await;
    assert_eq!(
        outcome.class(),
        OutcomeClass::DestinationBlocked,
        "{outcome:?}"
    );
    assert!(fake.seen().is_empty(), "the fake saw no request");

    let allowed = OutboundPolicy {
        allow_private: false,
        allow_loopback: true,
    };
    let outcome = outcome_for(Provider::OpenaiCompatible, &url, allowed).await;
    assert_eq!(outcome.class(), OutcomeClass::Ok, "{outcome:?}");
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn an_unresolvable_host_is_unreachable() {
    let outcome = outcome_for(
        Provider::OpenaiCompatible,
        "http://no-such-host.invalid/v1",
        OutboundPolicy::default(),
    )
    .await;
    assert_eq!(
        outcome.class(),
        OutcomeClass::EndpointUnreachable,
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let fake = Fake::start().await;
    let url = fake.url("/compat/v1");
    let settings = {
        let mut s = settings(OutboundPolicy {
            allow_private: false,
            allow_loopback: true,
        });
        s.timeout = Duration::from_secs(10);
        s
    };
    let client = Client::new(&settings).expect("client");
    let mut probe = probe(
        Provider::OpenaiCompatible,
        "redirect",
        Key::Good,
        "http://unused.example",
    );
    probe.endpoint = Some(Endpoint::Url(
        HttpUrl::parse("endpoint_url", &url).expect("url"),
    ));
    let outcome = test_connection(&client, &probe, &settings).await;
    // Followed, it would have gone to 169.254.169.254 and failed differently.
    assert_eq!(outcome.class(), OutcomeClass::BadResponse, "{outcome:?}");
    assert_eq!(outcome.upstream_status(), Some(302));
    assert_eq!(fake.seen().len(), 1);
}
