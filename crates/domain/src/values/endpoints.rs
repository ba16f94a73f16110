//! Where a model is reached: URLs a user supplies (never carrying a secret) and AWS regions.

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// An absolute http(s) URL with a host, no credentials in it (neither user info nor a query
/// parameter named like a secret) and no fragment. The URL is stored in events and shown to
/// every member, so a secret in it would be in clear forever.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HttpUrl(String);

impl HttpUrl {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Invalid> {
        let bad = |why: &str| {
            Invalid::new(
                field,
                "url.invalid",
                format!("{why}; give an absolute http(s) URL such as https://llm.example.com/v1"),
            )
        };
        let url = url::Url::parse(raw.trim()).map_err(|e| bad(&format!("not a URL ({e})")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(bad("only http and https are supported"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("the URL has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "put credentials in the credential fields, not in the URL",
            ));
        }
        if url.fragment().is_some() {
            return Err(bad("a URL fragment (#…) has no meaning here"));
        }
        if url
            .query_pairs()
            .any(|(name, _)| is_secret_query_parameter(&name))
        {
            return Err(Invalid::new(
                field,
                "url.secret_in_query",
                "the URL's query has a parameter named like a secret (key, token, secret or \
                 signature), and the URL is shown to every member; leave it out of the URL and \
                 give the key as the credential instead",
            ));
        }
        let text = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Query parameter names that carry a key, token or signature (compared case-insensitively,
/// `-` and `_` alike). Others, such as Azure's `api-version`, are fine in a URL.
const SECRET_QUERY_PARAMETERS: &[&str] = &[
    "key",
    "api_key",
    "apikey",
    "access_token",
    "token",
    "secret",
    "client_secret",
    "password",
    "sig",
    "signature",
    "x_api_key",
    "auth",
    "authorization",
    "code",
];

fn is_secret_query_parameter(name: &str) -> bool {
    let normalized = name.trim().to_ascii_lowercase().replace('-', "_");
    SECRET_QUERY_PARAMETERS.contains(&normalized.as_str())
}

/// An AWS region such as `us-east-1` or `us-gov-west-1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AwsRegion(String);

impl AwsRegion {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let parts: Vec<&str> = raw.split('-').collect();
        let ok = parts.len() >= 3
            && parts[0].len() == 2
            && parts
                .iter()
                .take(parts.len() - 1)
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts
                .last()
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(Invalid::new(
                "region",
                "region.invalid",
                "the region is not an AWS region code; use one such as us-east-1",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_regions() {
        assert_eq!(
            HttpUrl::parse("u", "https://x.example/v1/")
                .unwrap()
                .as_str(),
            "https://x.example/v1"
        );
        for bad in [
            "ftp://x",
            "x.example",
            "https://u:p@x.example",
            "https://x.example/#a",
            "http://",
        ] {
            assert_eq!(
                HttpUrl::parse("u", bad).unwrap_err().code,
                "url.invalid",
                "{bad}"
            );
        }
        assert!(AwsRegion::parse("us-east-1").is_ok());
        assert!(AwsRegion::parse("us-gov-west-1").is_ok());
        for bad in ["us-east", "useast1", "US-EAST-1", "u-east-1"] {
            assert!(AwsRegion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_refuse_secrets_in_the_query() {
        // Given URLs carrying a key in a query parameter, in any case and encoding
        for name in [
            "key",
            "api_key",
            "apikey",
            "api-key",
            "access_token",
            "token",
            "secret",
            "client_secret",
            "password",
            "sig",
            "signature",
            "x-api-key",
            "auth",
            "authorization",
            "code",
            "API_KEY",
            "Api-Key",
            "api%5Fkey",
            "X_API_KEY",
        ] {
            let url = format!("https://h.example/v1?api-version=2024-10-21&{name}=SECRET123");
            // When parsed
            let refused = HttpUrl::parse("endpoint_url", &url).unwrap_err();
            // Then they are refused with a code saying why, and the value is not echoed
            assert_eq!(refused.code, "url.secret_in_query", "{name}");
            assert!(
                refused.message.contains("credential"),
                "{}",
                refused.message
            );
            assert!(
                !refused.message.contains("SECRET123"),
                "{}",
                refused.message
            );
        }
        // And other parameters, such as Azure's api-version, stay allowed
        assert_eq!(
            HttpUrl::parse("u", "https://h.example/openai?api-version=2024-10-21")
                .unwrap()
                .as_str(),
            "https://h.example/openai?api-version=2024-10-21"
        );
        assert!(HttpUrl::parse("u", "https://h.example/v1?keys=1&tokenizer=x").is_ok());
    }
}
