//! Providers, the shape of each one's credential, its endpoint needs, and the form of its
//! model ids.

mod form;

pub use form::{Field, FieldKind, ModelIdForm};

use std::fmt;

use secrets::Secret;
use serde::{Deserialize, Serialize};

use crate::Invalid;
use crate::values::{AwsRegion, HttpUrl};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Openai,
    Anthropic,
    Gemini,
    Openrouter,
    Fireworks,
    Together,
    Bedrock,
    Huggingface,
    OpenaiCompatible,
}

impl Provider {
    pub const ALL: [Provider; 9] = [
        Self::Openai,
        Self::Anthropic,
        Self::Gemini,
        Self::Openrouter,
        Self::Fireworks,
        Self::Together,
        Self::Bedrock,
        Self::Huggingface,
        Self::OpenaiCompatible,
    ];

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == raw)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
                Invalid::new(
                    "provider",
                    "provider.unknown",
                    format!(
                        "the provider is not one modelreg supports; use one of {}",
                        known.join(", ")
                    ),
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Openrouter => "openrouter",
            Self::Fireworks => "fireworks",
            Self::Together => "together",
            Self::Bedrock => "bedrock",
            Self::Huggingface => "huggingface",
            Self::OpenaiCompatible => "openai_compatible",
        }
    }

    /// Which endpoint field a model of this provider needs, if any.
    pub fn endpoint_need(self) -> EndpointNeed {
        match self {
            Self::Bedrock => EndpointNeed::Region,
            Self::Huggingface | Self::OpenaiCompatible => EndpointNeed::Url,
            _ => EndpointNeed::None,
        }
    }

    /// Whether a model of this provider can work without a credential.
    pub fn credential_optional(self) -> bool {
        self == Self::OpenaiCompatible
    }

    /// The shapes of credential this provider takes, the usual one first.
    pub fn credential_kinds(self) -> &'static [CredentialKind] {
        match self {
            Self::Bedrock => &[CredentialKind::AwsAccessKey, CredentialKind::BedrockApiKey],
            _ => &[CredentialKind::ApiKey],
        }
    }

    /// What the provider's credential is made of, in words for a refusal.
    pub fn credential_fields(self) -> &'static str {
        match self {
            Self::Bedrock => {
                "access_key_id + secret_access_key (and optionally session_token), or a bedrock_api_key"
            }
            _ => "an api_key",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointNeed {
    None,
    /// An AWS region.
    Region,
    /// A base URL (OpenAI-compatible) or an Inference Endpoint URL (HuggingFace).
    Url,
}

/// Where a model is reached, beyond the provider's fixed public endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Url(HttpUrl),
    Region(AwsRegion),
}

/// Checks that `endpoint` is what `provider` needs.
pub fn check_endpoint(provider: Provider, endpoint: Option<&Endpoint>) -> Result<(), Invalid> {
    match (provider.endpoint_need(), endpoint) {
        (EndpointNeed::None, None)
        | (EndpointNeed::Region, Some(Endpoint::Region(_)))
        | (EndpointNeed::Url, Some(Endpoint::Url(_))) => Ok(()),
        (EndpointNeed::None, Some(_)) => Err(Invalid::new(
            "endpoint_url",
            "endpoint.not_allowed",
            format!(
                "{provider} models use the provider's own endpoint; leave endpoint_url and region empty"
            ),
        )),
        (EndpointNeed::Region, _) => Err(Invalid::new(
            "region",
            "region.required",
            "AWS Bedrock models need a region such as us-east-1",
        )),
        (EndpointNeed::Url, _) => Err(Invalid::new(
            "endpoint_url",
            "endpoint_url.required",
            match provider {
                Provider::Huggingface => "HuggingFace models need their Inference Endpoint URL",
                _ => "OpenAI-compatible models need a base URL such as https://llm.example.com/v1",
            },
        )),
    }
}

/// How a credential's secret material is laid out; stored in events (not secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    ApiKey,
    AwsAccessKey,
    BedrockApiKey,
}

impl CredentialKind {
    pub const ALL: [CredentialKind; 3] = [Self::ApiKey, Self::AwsAccessKey, Self::BedrockApiKey];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::AwsAccessKey => "aws_access_key",
            Self::BedrockApiKey => "bedrock_api_key",
        }
    }
}

/// A credential as entered, secrets still in the clear. Built only at the edge, sealed at once.
pub enum CredentialSecret {
    /// One API key or token (OpenAI, Anthropic, Gemini, OpenRouter, Fireworks, Together,
    /// HuggingFace, OpenAI-compatible).
    ApiKey(Secret),
    /// An IAM key pair with an optional session token (Bedrock).
    AwsAccessKey {
        access_key_id: String,
        secret_access_key: Secret,
        session_token: Option<Secret>,
    },
    /// A Bedrock API key, sent as a bearer token.
    BedrockApiKey(Secret),
}

impl CredentialSecret {
    pub fn kind(&self) -> CredentialKind {
        match self {
            Self::ApiKey(_) => CredentialKind::ApiKey,
            Self::AwsAccessKey { .. } => CredentialKind::AwsAccessKey,
            Self::BedrockApiKey(_) => CredentialKind::BedrockApiKey,
        }
    }

    /// Checks the shape against the provider: the right kind, every field present and
    /// plausible. Messages never quote the secret.
    pub fn check(&self, provider: Provider) -> Result<(), Invalid> {
        if !provider.credential_kinds().contains(&self.kind()) {
            return Err(Invalid::new(
                "credential",
                "credential.wrong_shape",
                format!("{provider} takes {}", provider.credential_fields()),
            ));
        }
        match self {
            Self::ApiKey(key) => {
                check_secret_text("credential.api_key", key)?;
                if provider == Provider::Openrouter && !key.expose_secret().starts_with("sk-or-") {
                    return Err(Invalid::new(
                        "credential.api_key",
                        "credential.invalid",
                        "OpenRouter keys start with sk-or-v1-; copy the whole key from openrouter.ai/keys",
                    ));
                }
                Ok(())
            }
            Self::BedrockApiKey(key) => check_secret_text("credential.bedrock_api_key", key),
            Self::AwsAccessKey {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                let id_ok = (16..=128).contains(&access_key_id.len())
                    && access_key_id
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
                if !id_ok {
                    return Err(Invalid::new(
                        "credential.access_key_id",
                        "credential.invalid",
                        "an AWS access key ID is 16 to 128 characters of A-Z and 0-9, like AKIA…",
                    ));
                }
                check_secret_text("credential.secret_access_key", secret_access_key)?;
                if let Some(token) = session_token {
                    check_secret_text("credential.session_token", token)?;
                }
                Ok(())
            }
        }
    }

    /// One canonical string holding all secret fields, for sealing and fingerprinting.
    /// Fields are newline-separated; no field may contain a newline (checked above).
    pub fn to_sealable(&self) -> Secret {
        match self {
            Self::ApiKey(key) | Self::BedrockApiKey(key) => {
                Secret::new(key.expose_secret().to_owned())
            }
            Self::AwsAccessKey {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                let mut text = format!("{access_key_id}\n{}", secret_access_key.expose_secret());
                if let Some(token) = session_token {
                    text.push('\n');
                    text.push_str(token.expose_secret());
                }
                Secret::new(text)
            }
        }
    }

    /// The inverse of [`CredentialSecret::to_sealable`].
    pub fn from_sealable(kind: CredentialKind, sealed: &Secret) -> Option<Self> {
        let text = sealed.expose_secret();
        match kind {
            CredentialKind::ApiKey => Some(Self::ApiKey(Secret::new(text.to_owned()))),
            CredentialKind::BedrockApiKey => {
                Some(Self::BedrockApiKey(Secret::new(text.to_owned())))
            }
            CredentialKind::AwsAccessKey => {
                let mut parts = text.split('\n');
                let access_key_id = parts.next()?.to_owned();
                let secret_access_key = Secret::new(parts.next()?.to_owned());
                let session_token = parts.next().map(|t| Secret::new(t.to_owned()));
                Some(Self::AwsAccessKey {
                    access_key_id,
                    secret_access_key,
                    session_token,
                })
            }
        }
    }

    /// The text a preview is made from: the key, or the access key ID of a key pair.
    pub fn preview_source(&self) -> Secret {
        match self {
            Self::ApiKey(key) | Self::BedrockApiKey(key) => {
                Secret::new(key.expose_secret().to_owned())
            }
            Self::AwsAccessKey { access_key_id, .. } => Secret::new(access_key_id.clone()),
        }
    }

    /// The longest this secret can live, where its provider makes that known: a Bedrock
    /// short-term API key (`bedrock-api-key-…`, a presigned request) lasts at most 12 hours.
    pub fn known_lifetime_ms(&self) -> Option<i64> {
        match self {
            Self::BedrockApiKey(key)
                if key.expose_secret().starts_with(BEDROCK_SHORT_TERM_PREFIX) =>
            {
                Some(BEDROCK_SHORT_TERM_LIFETIME_MS)
            }
            Self::ApiKey(_) | Self::BedrockApiKey(_) | Self::AwsAccessKey { .. } => None,
        }
    }
}

/// How a Bedrock short-term API key begins (long-term ones begin `ABSK`).
const BEDROCK_SHORT_TERM_PREFIX: &str = "bedrock-api-key-";
/// A Bedrock short-term API key lasts at most 12 hours.
pub const BEDROCK_SHORT_TERM_LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;

fn check_secret_text(field: &'static str, secret: &Secret) -> Result<(), Invalid> {
    let text = secret.expose_secret();
    if text.trim().is_empty() {
        return Err(Invalid::new(
            field,
            "credential.missing_field",
            format!("{field} is required"),
        ));
    }
    if text.chars().count() > 8192 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Invalid::new(
            field,
            "credential.invalid",
            format!(
                "{field} must be one line with no spaces, at most 8192 characters; check the copy-paste"
            ),
        ));
    }
    Ok(())
}

/// The model id as the provider names it, checked where the provider documents a form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderModelId(String);

impl ProviderModelId {
    pub fn parse(provider: Provider, raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        let bad = |hint: &str| {
            Invalid::new(
                "provider_model_id",
                "provider_model_id.invalid",
                hint.to_owned(),
            )
        };
        if raw.is_empty() {
            return Err(Invalid::new(
                "provider_model_id",
                "provider_model_id.empty",
                "give the model id as the provider names it",
            ));
        }
        if raw.chars().count() > 256 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                "a provider model id has no spaces and at most 256 characters",
            ));
        }
        match provider {
            Provider::Fireworks => {
                let parts: Vec<&str> = raw.split('/').collect();
                let ok = parts.len() == 4
                    && parts[0] == "accounts"
                    && parts[2] == "models"
                    && is_id_token(parts[1])
                    && is_id_token(parts[3]);
                if !ok {
                    return Err(bad(&form_hint(provider)));
                }
            }
            Provider::Openrouter => {
                let ok = raw.split_once('/').is_some_and(|(vendor, model)| {
                    is_id_token(vendor) && !model.is_empty() && !model.contains('/')
                });
                if !ok {
                    return Err(bad(&form_hint(provider)));
                }
            }
            Provider::Bedrock if !is_bedrock_id(raw) => {
                return Err(bad(
                    "Bedrock model ids look like anthropic.claude-sonnet-4-20250514-v1:0, an inference profile such as us.anthropic.claude-…, or an arn:aws:bedrock:… ARN",
                ));
            }
            _ => {}
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A refusal's hint: the documented form of `provider`'s model ids, from [`form`].
fn form_hint(provider: Provider) -> String {
    let ModelIdForm { form, example } = provider.model_id_form();
    format!(
        "{} model ids look like {form}, e.g. {example}",
        provider.label()
    )
}

fn is_id_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Foundation model ids (`vendor.model[:n]`), inference profile ids (a geography prefix on
/// one), and Bedrock ARNs.
fn is_bedrock_id(raw: &str) -> bool {
    if let Some(rest) = raw.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        return parts.len() == 5
            && parts[0].starts_with("aws")
            && parts[1] == "bedrock"
            && !parts[2].is_empty()
            && parts[4].contains('/');
    }
    let (name, version) = match raw.split_once(':') {
        Some((name, version)) => (name, Some(version)),
        None => (raw, None),
    };
    let version_ok = version.is_none_or(|v| {
        !v.is_empty()
            && v.split(':')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
    });
    let segments: Vec<&str> = name.split('.').collect();
    version_ok
        && segments.len() >= 2
        && segments.iter().all(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_parse_by_name() {
        for provider in Provider::ALL {
            assert_eq!(Provider::parse(provider.as_str()).unwrap(), provider);
        }
        assert_eq!(
            Provider::parse("azure").unwrap_err().code,
            "provider.unknown"
        );
    }

    #[test]
    fn provider_model_ids_follow_documented_forms() {
        let ok = [
            (Provider::Fireworks, "accounts/fireworks/models/deepseek-v3"),
            (Provider::Openrouter, "anthropic/claude-sonnet-4.6"),
            (
                Provider::Openrouter,
                "meta-llama/llama-3.3-70b-instruct:free",
            ),
            (Provider::Bedrock, "anthropic.claude-sonnet-4-20250514-v1:0"),
            (
                Provider::Bedrock,
                "us.anthropic.claude-sonnet-4-20250514-v1:0",
            ),
            (Provider::Bedrock, "amazon.nova-pro-v1:0"),
            (
                Provider::Bedrock,
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3",
            ),
            (Provider::Openai, "gpt-5"),
            (
                Provider::Together,
                "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            ),
        ];
        for (provider, id) in ok {
            assert!(
                ProviderModelId::parse(provider, id).is_ok(),
                "{provider} {id}"
            );
        }
        let bad = [
            (Provider::Fireworks, "deepseek-v3"),
            (Provider::Fireworks, "accounts/fireworks/deepseek-v3"),
            (Provider::Openrouter, "gpt-4o"),
            (Provider::Openrouter, "a/b/c"),
            (Provider::Bedrock, "claude"),
            (Provider::Bedrock, "Anthropic.Claude"),
            (Provider::Openai, "gpt 5"),
        ];
        for (provider, id) in bad {
            assert_eq!(
                ProviderModelId::parse(provider, id).unwrap_err().code,
                "provider_model_id.invalid",
                "{provider} {id}"
            );
        }
        assert_eq!(
            ProviderModelId::parse(Provider::Openai, " ")
                .unwrap_err()
                .code,
            "provider_model_id.empty"
        );
    }

    #[test]
    fn credentials_match_their_provider() {
        let key = || CredentialSecret::ApiKey(Secret::new("sk-abcdefghijklmnop".into()));
        assert!(key().check(Provider::Openai).is_ok());
        assert_eq!(
            key().check(Provider::Bedrock).unwrap_err().code,
            "credential.wrong_shape"
        );
        assert_eq!(
            key().check(Provider::Openrouter).unwrap_err().code,
            "credential.invalid"
        );
        let empty = CredentialSecret::ApiKey(Secret::new(" ".into()));
        assert_eq!(
            empty.check(Provider::Anthropic).unwrap_err().code,
            "credential.missing_field"
        );
        let pair = CredentialSecret::AwsAccessKey {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
            session_token: None,
        };
        assert!(pair.check(Provider::Bedrock).is_ok());
        assert_eq!(
            pair.check(Provider::Openai).unwrap_err().code,
            "credential.wrong_shape"
        );
        let sealable = pair.to_sealable();
        let back =
            CredentialSecret::from_sealable(CredentialKind::AwsAccessKey, &sealable).unwrap();
        assert_eq!(back.to_sealable().expose_secret(), sealable.expose_secret());
    }

    #[test]
    fn endpoints_match_their_provider() {
        let url = Endpoint::Url(HttpUrl::parse("endpoint_url", "https://x.example/v1").unwrap());
        let region = Endpoint::Region(AwsRegion::parse("us-east-1").unwrap());
        assert!(check_endpoint(Provider::OpenaiCompatible, Some(&url)).is_ok());
        assert!(check_endpoint(Provider::Bedrock, Some(&region)).is_ok());
        assert!(check_endpoint(Provider::Openai, None).is_ok());
        assert_eq!(
            check_endpoint(Provider::Openai, Some(&url))
                .unwrap_err()
                .code,
            "endpoint.not_allowed"
        );
        assert_eq!(
            check_endpoint(Provider::Bedrock, None).unwrap_err().code,
            "region.required"
        );
        assert_eq!(
            check_endpoint(Provider::Huggingface, Some(&region))
                .unwrap_err()
                .code,
            "endpoint_url.required"
        );
    }
}
