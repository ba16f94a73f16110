//! Operator settings for outbound provider calls: base URLs per provider (the public endpoints
//! by default, overridable for corporate proxies and tests), the per-test timeout, the response
//! size cap and the outbound-safety policy.

use std::collections::BTreeMap;
use std::time::Duration;

use domain::provider::Provider;
use domain::values::{AwsRegion, HttpUrl};

/// Default per-test deadline, DNS to last byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// Default cap on a response body.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Where user-supplied URLs may point. Link-local, cloud-metadata, unspecified, broadcast and
/// multicast addresses are refused whatever this says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Private ranges: 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7.
    pub allow_private: bool,
    /// Loopback: 127/8, ::1 (and names resolving there, such as `localhost`).
    pub allow_loopback: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error(
        "{0} models carry their own URL (the endpoint URL of each model); it has no base URL setting"
    )]
    NoBaseUrl(Provider),
    #[error("{variable}: {message}")]
    InvalidBaseUrl { variable: String, message: String },
}

/// Settings for [`crate::test_connection`] and [`crate::Client::new`].
#[derive(Clone, Debug)]
pub struct Settings {
    base_urls: BTreeMap<Provider, HttpUrl>,
    /// The whole test's deadline: resolving, connecting, sending and reading.
    pub timeout: Duration,
    /// Bodies longer than this are not read further; the test reports `bad_response`.
    pub max_response_bytes: usize,
    pub outbound: OutboundPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            base_urls: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            outbound: OutboundPolicy::default(),
        }
    }
}

impl Settings {
    /// The provider's public base URL, as its official SDK names it. Bedrock's depends on the
    /// region (see [`Settings::base_url`]); HuggingFace and OpenAI-compatible models bring
    /// their own URL.
    pub fn default_base_url(provider: Provider) -> Option<&'static str> {
        match provider {
            Provider::Openai => Some("https://api.openai.com/v1"),
            Provider::Anthropic => Some("https://api.anthropic.com"),
            Provider::Gemini => Some("https://generativelanguage.googleapis.com/v1beta"),
            Provider::Openrouter => Some("https://openrouter.ai/api/v1"),
            Provider::Fireworks => Some("https://api.fireworks.ai/inference/v1"),
            Provider::Together => Some("https://api.together.xyz/v1"),
            Provider::Bedrock | Provider::Huggingface | Provider::OpenaiCompatible => None,
        }
    }

    /// Whether the provider has a base URL setting (every provider but HuggingFace and
    /// OpenAI-compatible, whose URL is part of each model).
    pub fn has_base_url(provider: Provider) -> bool {
        !matches!(provider, Provider::Huggingface | Provider::OpenaiCompatible)
    }

    /// The environment variable that overrides a provider's base URL, e.g.
    /// `MODELREG_PROVIDER_ANTHROPIC_BASE_URL`.
    pub fn base_url_env_var(provider: Provider) -> String {
        format!(
            "MODELREG_PROVIDER_{}_BASE_URL",
            provider.as_str().to_ascii_uppercase()
        )
    }

    /// Replaces a provider's base URL. The override replaces the whole base, version prefix
    /// included (`https://proxy.corp/openai/v1`); for Bedrock it serves every region.
    pub fn with_base_url(
        mut self,
        provider: Provider,
        url: HttpUrl,
    ) -> Result<Self, SettingsError> {
        if !Self::has_base_url(provider) {
            return Err(SettingsError::NoBaseUrl(provider));
        }
        self.base_urls.insert(provider, url);
        Ok(self)
    }

    /// Applies every `MODELREG_PROVIDER_<NAME>_BASE_URL` that `lookup` knows (pass
    /// `|name| std::env::var(name).ok()`).
    pub fn with_env_overrides(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        for provider in Provider::ALL.into_iter().filter(|p| Self::has_base_url(*p)) {
            let variable = Self::base_url_env_var(provider);
            let Some(raw) = lookup(&variable) else {
                continue;
            };
            let url = HttpUrl::parse("base_url", &raw).map_err(|invalid| {
                SettingsError::InvalidBaseUrl {
                    variable: variable.clone(),
                    message: invalid.message.clone(),
                }
            })?;
            self = self.with_base_url(provider, url)?;
        }
        Ok(self)
    }

    /// The base URL a call to `provider` goes to, without a trailing slash; `region` picks
    /// Bedrock's regional endpoint unless overridden.
    pub fn base_url(&self, provider: Provider, region: Option<&AwsRegion>) -> Option<String> {
        if let Some(url) = self.base_urls.get(&provider) {
            return Some(url.as_str().trim_end_matches('/').to_owned());
        }
        match provider {
            Provider::Bedrock => {
                region.map(|r| format!("https://bedrock-runtime.{}.amazonaws.com", r.as_str()))
            }
            other => Self::default_base_url(other).map(str::to_owned),
        }
    }

    /// Hosts of operator-configured base URLs: trusted, so the outbound policy does not apply
    /// to them (a corporate proxy may well sit on a private address).
    pub(crate) fn trusted_hosts(&self) -> Vec<String> {
        self.base_urls
            .values()
            .filter_map(|url| url::Url::parse(url.as_str()).ok())
            .filter_map(|url| {
                url.host_str()
                    .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_public_endpoints_and_overrides_replace_them() {
        let settings = Settings::default();
        assert_eq!(
            settings.base_url(Provider::Openai, None).as_deref(),
            Some("https://api.openai.com/v1")
        );
        let region = AwsRegion::parse("eu-west-3").ok();
        assert_eq!(
            settings
                .base_url(Provider::Bedrock, region.as_ref())
                .as_deref(),
            Some("https://bedrock-runtime.eu-west-3.amazonaws.com")
        );
        assert_eq!(settings.base_url(Provider::Huggingface, None), None);

        let env = |name: &str| {
            (name == "MODELREG_PROVIDER_ANTHROPIC_BASE_URL")
                .then(|| "https://proxy.corp.example/anthropic/".to_owned())
        };
        let settings = Settings::default().with_env_overrides(env).expect("valid");
        assert_eq!(
            settings.base_url(Provider::Anthropic, None).as_deref(),
            Some("https://proxy.corp.example/anthropic")
        );
        assert_eq!(
            settings.trusted_hosts(),
            vec!["proxy.corp.example".to_owned()]
        );

        let bad = |name: &str| {
            (name == "MODELREG_PROVIDER_GEMINI_BASE_URL").then(|| "ftp://x".to_owned())
        };
        assert!(matches!(
            Settings::default().with_env_overrides(bad),
            Err(SettingsError::InvalidBaseUrl { .. })
        ));
        let url = HttpUrl::parse("base_url", "https://x.example").expect("url");
        assert_eq!(
            Settings::default()
                .with_base_url(Provider::OpenaiCompatible, url)
                .err(),
            Some(SettingsError::NoBaseUrl(Provider::OpenaiCompatible))
        );
    }
}
