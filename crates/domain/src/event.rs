//! Every event the registry records, as one append-only enum, and its postcard codec.
//!
//! Architecture invariant: variants are only appended, never reordered or removed, and
//! `schemas/events/v1/` holds a golden encoding of each; the test below decodes them all.

use serde::{Deserialize, Serialize};

use crate::{catalog, connection_test, credential, model, org, usage, workflow};

/// The payload version this build writes. A new incompatible payload layout gets a new
/// number and a decoder for the old one.
pub const PAYLOAD_VERSION: u16 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Org(org::Event),
    Credential(credential::Event),
    Model(model::Event),
    Workflow(workflow::Event),
    ConnectionTest(connection_test::Event),
    /// The platform catalog, under the platform's namespace (`reg._platform.catalog.platform`).
    Catalog(catalog::Event),
    /// A usage record, under `reg.<org>.usage.<record id>`.
    Usage(usage::Event),
}

/// The aggregate kinds, as they appear in subjects `reg.<org>.<kind>.<id>`.
pub mod kind {
    pub const ORG: &str = "org";
    pub const CREDENTIAL: &str = "credential";
    pub const MODEL: &str = "model";
    pub const WORKFLOW: &str = "workflow";
    pub const CONNECTION_TEST: &str = "connection_test";
    pub const CATALOG: &str = "catalog";
    pub const USAGE: &str = "usage";
}

#[derive(Debug, thiserror::Error)]
#[error("undecodable event payload: {0}")]
pub struct DecodeError(String);

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Org(_) => kind::ORG,
            Self::Credential(_) => kind::CREDENTIAL,
            Self::Model(_) => kind::MODEL,
            Self::Workflow(_) => kind::WORKFLOW,
            Self::ConnectionTest(_) => kind::CONNECTION_TEST,
            Self::Catalog(_) => kind::CATALOG,
            Self::Usage(_) => kind::USAGE,
        }
    }

    /// A short name for logs, metrics and the audit trail, e.g. `model.edited`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Org(org::Event::Created { .. }) => "org.created",
            Self::Org(org::Event::TokenIssued { .. }) => "org.token_issued",
            Self::Org(org::Event::TokenRevoked { .. }) => "org.token_revoked",
            Self::Org(org::Event::DefaultModelChosen { .. }) => "org.default_model_chosen",
            Self::Org(org::Event::PlatformModelsHidden { .. }) => "org.platform_models_hidden",
            Self::Org(org::Event::PlatformDependentsWarned { .. }) => {
                "org.platform_dependents_warned"
            }
            Self::Org(org::Event::TokenIssuedExpiring { .. }) => "org.token_issued_expiring",
            Self::Credential(credential::Event::Created(_)) => "credential.created",
            Self::Credential(credential::Event::Registered(_)) => "credential.registered",
            Self::Credential(credential::Event::Renamed { .. }) => "credential.renamed",
            Self::Credential(credential::Event::Rotated(_)) => "credential.rotated",
            Self::Credential(credential::Event::Shredded { .. }) => "credential.shredded",
            Self::Credential(credential::Event::Deleted) => "credential.deleted",
            Self::Model(model::Event::Added(_)) => "model.added",
            Self::Model(model::Event::Edited(_)) => "model.edited",
            Self::Model(model::Event::Deactivated) => "model.deactivated",
            Self::Model(model::Event::DependentsWarned { .. }) => "model.dependents_warned",
            Self::Model(model::Event::Reactivated) => "model.reactivated",
            Self::Workflow(workflow::Event::Saved(_)) => "workflow.saved",
            Self::Workflow(workflow::Event::Deleted) => "workflow.deleted",
            Self::ConnectionTest(connection_test::Event::Requested { .. }) => {
                "connection_test.requested"
            }
            Self::ConnectionTest(connection_test::Event::Completed(_)) => {
                "connection_test.completed"
            }
            Self::Catalog(catalog::Event::Seeded { .. }) => "catalog.seeded",
            Self::Catalog(catalog::Event::Synced(_)) => "catalog.synced",
            Self::Catalog(catalog::Event::Listed(_)) => "catalog.listed",
            Self::Catalog(catalog::Event::Retired { .. }) => "catalog.retired",
            Self::Catalog(catalog::Event::DefaultChanged { .. }) => "catalog.default_changed",
            Self::Catalog(catalog::Event::OverrideSet { .. }) => "catalog.override_set",
            Self::Catalog(catalog::Event::Reinstated { .. }) => "catalog.reinstated",
            Self::Usage(usage::Event::Recorded(_)) => "usage.recorded",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Plain owned data into a Vec: cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    pub fn decode(payload_version: u16, bytes: &[u8]) -> Result<Self, DecodeError> {
        if payload_version != PAYLOAD_VERSION {
            return Err(DecodeError(format!(
                "unknown payload version {payload_version}"
            )));
        }
        postcard::from_bytes(bytes).map_err(|e| DecodeError(e.to_string()))
    }
}

/// One sample of every variant, for golden files and codec tests.
pub fn samples() -> Vec<(&'static str, Event)> {
    use crate::provider::{CredentialKind, Endpoint, Provider, ProviderModelId};
    use crate::values::*;

    let model = model::Model {
        slug: Slug::parse("team-gpt").unwrap_or_else(|_| unreachable!()),
        display_name: DisplayName::parse("Team GPT").unwrap_or_else(|_| unreachable!()),
        provider: Provider::OpenaiCompatible,
        provider_model_id: ProviderModelId::parse(Provider::OpenaiCompatible, "llama3")
            .unwrap_or_else(|_| unreachable!()),
        credential_id: Some(CredentialId::parse("cred_1").unwrap_or_else(|_| unreachable!())),
        endpoint: Some(Endpoint::Url(
            HttpUrl::parse("endpoint_url", "https://llm.example.com/v1")
                .unwrap_or_else(|_| unreachable!()),
        )),
        max_tokens: MaxTokens::parse(32_000).unwrap_or_else(|_| unreachable!()),
        capabilities: Capabilities {
            json_mode: true,
            vision: false,
            tool_use: true,
            reasoning: Some(ReasoningParam::MaxTokens),
        },
        costs: Costs {
            input_per_token: Some(Cost::parse("c", "0.000003").unwrap_or_else(|_| unreachable!())),
            output_per_token: None,
        },
        status: model::Status::Active,
    };
    let day = |raw: &str| catalog::Day::parse(raw).unwrap_or_else(|_| unreachable!());
    let cost = |raw: &str| Cost::parse("c", raw).unwrap_or_else(|_| unreachable!());
    let listing = catalog::Listing {
        id: "google/gemini-3.1-pro-preview".into(),
        display_name: "Gemini 3.1 Pro".into(),
        facts: [
            (
                catalog::FactName::ToolUse,
                catalog::Sourced {
                    value: catalog::FactValue::Flag(true),
                    source: "openrouter".into(),
                    as_of: day("2026-02-01"),
                },
            ),
            (
                catalog::FactName::Reasoning,
                catalog::Sourced {
                    value: catalog::FactValue::Reasoning(Some(ReasoningParam::Effort)),
                    source: "openrouter".into(),
                    as_of: day("2026-02-01"),
                },
            ),
            (
                catalog::FactName::InputCost,
                catalog::Sourced {
                    value: catalog::FactValue::Cost(cost("0.000002")),
                    source: "openrouter".into(),
                    as_of: day("2026-02-01"),
                },
            ),
        ]
        .into_iter()
        .collect(),
    };
    vec![
        (
            "org.created",
            Event::Org(org::Event::Created {
                name: "Acme".into(),
            }),
        ),
        (
            "org.token_issued",
            Event::Org(org::Event::TokenIssued {
                token_id: TokenId::parse("tok_1").unwrap_or_else(|_| unreachable!()),
                label: "bootstrap".into(),
                role: org::Role::Admin,
                hash: [5; 32],
            }),
        ),
        (
            "org.token_revoked",
            Event::Org(org::Event::TokenRevoked {
                token_id: TokenId::parse("tok_1").unwrap_or_else(|_| unreachable!()),
            }),
        ),
        (
            "credential.created",
            Event::Credential(credential::Event::Created(credential::Created {
                id: CredentialId::parse("cred_1").unwrap_or_else(|_| unreachable!()),
                provider: Provider::Bedrock,
                kind: CredentialKind::AwsAccessKey,
                version: 1,
                sealed: secrets::Sealed {
                    nonce: [1; 12],
                    ciphertext: vec![2; 24],
                },
                fingerprint: [3; 32],
                preview: "••••MPLE".into(),
            })),
        ),
        (
            "credential.registered",
            Event::Credential(credential::Event::Registered(credential::Registered {
                id: CredentialId::parse("cred_2").unwrap_or_else(|_| unreachable!()),
                provider: Provider::Openai,
                kind: CredentialKind::ApiKey,
                version: 1,
                sealed: secrets::Sealed {
                    nonce: [7; 12],
                    ciphertext: vec![8; 24],
                },
                fingerprint: [9; 32],
                preview: "••••wxyz".into(),
                name: CredentialName::parse("Prod OpenAI").unwrap_or_else(|_| unreachable!()),
                expires_at_ms: Some(1_800_000_000_000),
            })),
        ),
        (
            "org.token_issued_expiring",
            Event::Org(org::Event::TokenIssuedExpiring {
                token_id: TokenId::parse("tok_2").unwrap_or_else(|_| unreachable!()),
                label: "nightly ci".into(),
                role: org::Role::Service,
                hash: [6; 32],
                expires_at_ms: 1_800_000_000_000,
            }),
        ),
        (
            "credential.renamed",
            Event::Credential(credential::Event::Renamed {
                name: CredentialName::parse("Staging").unwrap_or_else(|_| unreachable!()),
            }),
        ),
        (
            "credential.rotated",
            Event::Credential(credential::Event::Rotated(credential::Rotated {
                version: 2,
                kind: CredentialKind::ApiKey,
                sealed: secrets::Sealed {
                    nonce: [10; 12],
                    ciphertext: vec![11; 24],
                },
                fingerprint: [12; 32],
                preview: "••••abcd".into(),
                expires_at_ms: None,
            })),
        ),
        (
            "credential.shredded",
            Event::Credential(credential::Event::Shredded { version: 1 }),
        ),
        (
            "credential.deleted",
            Event::Credential(credential::Event::Deleted),
        ),
        ("model.added", Event::Model(model::Event::Added(model))),
        (
            "model.edited",
            Event::Model(model::Event::Edited(model::Edited {
                display_name: Some(
                    DisplayName::parse("Renamed").unwrap_or_else(|_| unreachable!()),
                ),
                endpoint: Some(Endpoint::Region(
                    AwsRegion::parse("us-east-1").unwrap_or_else(|_| unreachable!()),
                )),
                ..model::Edited::default()
            })),
        ),
        ("model.deactivated", Event::Model(model::Event::Deactivated)),
        (
            "model.dependents_warned",
            Event::Model(model::Event::DependentsWarned {
                deactivation_seq: 42,
                workflow_ids: vec!["wf-1".into(), "wf-2".into()],
            }),
        ),
        ("model.reactivated", Event::Model(model::Event::Reactivated)),
        (
            "workflow.saved",
            Event::Workflow(workflow::Event::Saved(workflow::Workflow {
                name: "Weekly digest".into(),
                active: true,
                steps: vec![workflow::Step {
                    model: "team-gpt".into(),
                    features: workflow::Features {
                        tools: true,
                        json_output: false,
                        vision_input: false,
                        reasoning: true,
                    },
                }],
            })),
        ),
        (
            "workflow.deleted",
            Event::Workflow(workflow::Event::Deleted),
        ),
        (
            "connection_test.requested",
            Event::ConnectionTest(connection_test::Event::Requested {
                draft: connection_test::Draft {
                    provider: Provider::Bedrock,
                    endpoint: Some(Endpoint::Region(
                        AwsRegion::parse("us-east-1").unwrap_or_else(|_| unreachable!()),
                    )),
                    provider_model_id: ProviderModelId::parse(
                        Provider::Bedrock,
                        "amazon.nova-pro-v1:0",
                    )
                    .unwrap_or_else(|_| unreachable!()),
                    credential: connection_test::TestCredential::Inline {
                        kind: CredentialKind::BedrockApiKey,
                        sealed: secrets::Sealed {
                            nonce: [4; 12],
                            ciphertext: vec![5; 20],
                        },
                    },
                    fingerprint: Some([6; 32]),
                },
                model: Some(Slug::parse("team-gpt").unwrap_or_else(|_| unreachable!())),
            }),
        ),
        (
            "connection_test.completed",
            Event::ConnectionTest(connection_test::Event::Completed(
                connection_test::TestResult {
                    class: "rate_limited".into(),
                    hint: "wait and retry".into(),
                    retry_after_ms: Some(2000),
                    upstream_status: Some(429),
                    upstream_message: Some("Too many requests".into()),
                    latency_ms: 87,
                    suggested_input_cost: Some(
                        Cost::parse("c", "0.000003").unwrap_or_else(|_| unreachable!()),
                    ),
                    suggested_output_cost: None,
                },
            )),
        ),
        (
            "org.default_model_chosen",
            Event::Org(org::Event::DefaultModelChosen {
                model: Some("x-ai/grok-4.3".into()),
            }),
        ),
        (
            "org.platform_models_hidden",
            Event::Org(org::Event::PlatformModelsHidden {
                models: vec!["openai/gpt-5.5".into()],
            }),
        ),
        (
            "org.platform_dependents_warned",
            Event::Org(org::Event::PlatformDependentsWarned {
                model: "x-ai/grok-4.3".into(),
                retirement_seq: 40,
                workflow_ids: vec!["wf-1".into()],
            }),
        ),
        (
            "catalog.seeded",
            Event::Catalog(catalog::Event::Seeded {
                default: "google/gemini-3.1-pro-preview".into(),
                models: vec![listing.clone()],
            }),
        ),
        (
            "catalog.synced",
            Event::Catalog(catalog::Event::Synced(catalog::Synced {
                source: "openrouter https://openrouter.ai/api/v1/models".into(),
                as_of: day("2026-02-01"),
                changed: vec![catalog::FactChange {
                    id: "google/gemini-3.1-pro-preview".into(),
                    fact: catalog::FactName::OutputCost,
                    before: None,
                    after: Some(catalog::FactValue::Cost(cost("0.000012"))),
                    overridden: false,
                }],
                proposed: vec![listing.clone()],
                listed: Vec::new(),
                disappeared: vec!["openai/gpt-5.5".into()],
                reappeared: vec!["openai/gpt-5.4".into()],
                expired: vec!["x-ai/grok-4.1-fast".into()],
            })),
        ),
        (
            "catalog.listed",
            Event::Catalog(catalog::Event::Listed(listing)),
        ),
        (
            "catalog.retired",
            Event::Catalog(catalog::Event::Retired {
                id: "x-ai/grok-4.3".into(),
                reason: "superseded".into(),
            }),
        ),
        (
            "catalog.default_changed",
            Event::Catalog(catalog::Event::DefaultChanged {
                id: "openai/gpt-5.4".into(),
            }),
        ),
        (
            "catalog.override_set",
            Event::Catalog(catalog::Event::OverrideSet {
                id: "openai/gpt-5.4".into(),
                fact: catalog::FactName::MaxCompletionTokens,
                value: Some(catalog::FactValue::Tokens(128_000)),
                reason: "measured".into(),
                as_of: day("2026-02-02"),
            }),
        ),
        (
            "catalog.reinstated",
            Event::Catalog(catalog::Event::Reinstated {
                id: "x-ai/grok-4.3".into(),
                reason: "retired by a wrong expiration date".into(),
            }),
        ),
        (
            "usage.recorded",
            Event::Usage(usage::Event::Recorded(usage::Record {
                model: "team-gpt".into(),
                workflow: WorkflowId::parse("wf-1").unwrap_or_else(|_| unreachable!()),
                input_tokens: 1200,
                output_tokens: 32_000,
                finish_reason: Some("length".into()),
                truncated_tool_calls: vec!["write_file".into()],
                round: Some(3),
                called_at_ms: 1_800_000_000_000,
            })),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn golden_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/events/v1")
    }

    /// Old encodings stay decodable: each golden file decodes to its sample and the sample
    /// still encodes to the same bytes. `MODELREG_BLESS=1` writes files for new variants only;
    /// an existing golden file is never rewritten.
    #[test]
    fn golden_encodings_decode_forever() {
        let bless = std::env::var("MODELREG_BLESS").is_ok_and(|v| v == "1");
        let samples = samples();
        for (name, event) in &samples {
            assert_eq!(event.name(), *name, "sample names match event names");
            let path = golden_dir().join(format!("{name}.hex"));
            if !path.exists() && bless {
                std::fs::write(&path, hex::encode(event.encode()) + "\n").unwrap();
            }
            let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!(
                    "missing golden file {}; run with MODELREG_BLESS=1 once",
                    path.display()
                )
            });
            let bytes = hex::decode(text.trim()).unwrap();
            assert_eq!(
                &Event::decode(PAYLOAD_VERSION, &bytes).unwrap(),
                event,
                "{name} decodes"
            );
            assert_eq!(event.encode(), bytes, "{name} encodes as before");
        }
        let files = std::fs::read_dir(golden_dir()).unwrap().count();
        assert_eq!(
            files,
            samples.len(),
            "every golden file has a sample and the other way round"
        );
    }

    #[test]
    fn unknown_payload_versions_are_refused() {
        assert!(Event::decode(2, &[]).is_err());
        assert!(Event::decode(PAYLOAD_VERSION, &[200]).is_err());
    }
}
