//! Schemas of the vocabularies and patterns the wire uses, built from the domain's own lists
//! and constants so the document and the rules cannot disagree. Each is a marker type that
//! only describes a field (`#[schema(value_type = schema::Provider)]`); the field itself stays
//! a plain string.

use domain::connection_test::OUTCOME_CLASSES;
use domain::credential::State as CredentialStateValue;
use domain::model::Status as ModelStatus;
use domain::org::Role as OrgRole;
use domain::provider::{CredentialKind as Kind, Provider as ProviderName};
use domain::values::{
    COST_MAX_DECIMAL_PLACES, CredentialId as CredentialIdValue, IdempotencyKey as KeyValue,
    ReasoningParam, SLUG_MAX, Slug as SlugValue, TokenId as TokenIdValue,
    WorkflowId as WorkflowIdValue,
};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

/// Declares a marker type whose schema is `$body`.
macro_rules! marker {
    ($(#[$doc:meta])* $name:ident => $body:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $body.into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

fn one_of(values: Vec<&'static str>, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description))
}

fn token(pattern: &str, max: usize, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .max_length(Some(max))
        .description(Some(description))
}

marker!(
    /// A provider's name.
    Provider => one_of(
        ProviderName::ALL.iter().map(|p| p.as_str()).collect(),
        "The provider: its credential shape and endpoint follow from it.",
    )
);

marker!(
    /// A token's role.
    Role => one_of(
        OrgRole::ALL.iter().map(|r| r.as_str()).collect(),
        "admin manages; member reads; service (the pipeline runtime) reads, reports workflows and resolves credentials.",
    )
);

marker!(
    /// How a reasoning model takes its reasoning control.
    Reasoning => one_of(
        ReasoningParam::ALL.iter().map(|r| r.as_str()).collect(),
        "effort: a level such as low/medium/high (OpenAI, OpenRouter, Gemini 3); max_tokens: a token budget (Anthropic, Bedrock, Gemini 2.5).",
    )
);

marker!(
    /// A saved credential's state.
    CredentialState => one_of(
        CredentialStateValue::ALL.iter().map(|s| s.as_str()).collect(),
        "needs_reconfiguration: its secret cannot be opened (a shredded version, or a data key the master key cannot unwrap); enter it again, or the operator restores the master key. expired: past its expiry; resolve refuses it.",
    )
);

marker!(
    /// A model's status.
    Status => one_of(
        ModelStatus::ALL.iter().map(ModelStatus::as_str).collect(),
        "A deactivated model keeps its slug and can be reactivated.",
    )
);

marker!(
    /// How a credential's secret is laid out.
    CredentialKind => one_of(
        Kind::ALL.iter().map(|k| k.as_str()).collect(),
        "api_key for every provider but Bedrock; Bedrock takes aws_access_key or bedrock_api_key.",
    )
);

marker!(
    /// A connection test's outcome class.
    OutcomeClass => one_of(
        OUTCOME_CLASSES.to_vec(),
        "ok passes; every other class comes with a one-line hint saying how to fix it.",
    )
);

marker!(
    /// An exact price.
    Decimal => ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(format!(
            "An exact decimal, USD per token, e.g. \"0.000003\": at most 1, at most \
             {COST_MAX_DECIMAL_PLACES} decimal places (cost.too_large, cost.too_precise; never \
             rounded). JSON numbers are accepted on input but pass through a binary float \
             first: send strings for exactness."
        )))
        .examples(["0.000003"])
);

marker!(
    /// A custom model's slug.
    Slug => token(
        SlugValue::PATTERN,
        SLUG_MAX,
        "Derived once from the display name, immutable, never reused in the org.",
    )
);

marker!(
    /// A saved credential's id.
    CredentialId => token(CredentialIdValue::PATTERN, 64, "A saved credential's id.")
);

marker!(
    /// An API token's id (the part after `mr_` and before the secret).
    TokenId => token(TokenIdValue::PATTERN, 64, "An API token's id.")
);

marker!(
    /// A workflow's id.
    WorkflowId => token(WorkflowIdValue::PATTERN, 64, "A workflow's id, as the pipelines product names it.")
);

marker!(
    /// A client's idempotency key.
    IdempotencyKey => token(
        KeyValue::PATTERN,
        100,
        "Retries with one key (on the same method and path) are one command, and answer as its first attempt did.",
    )
);

marker!(
    /// A usage record's id.
    UsageRecordId => token(
        domain::usage::RecordId::PATTERN,
        64,
        "A usage record's id, chosen by the reporter: a record sent again with the same id is counted once.",
    )
);

marker!(
    /// An amount of money in USD, exact.
    Usd => ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("An exact decimal amount in USD, e.g. \"0.0129\" (never a float)."))
);
