//! Value types parsed once at the edge and trusted after: names, slugs, ids, URLs, regions,
//! token limits, capabilities and costs.
//!
//! Every type deserializes without re-checking (`serde(transparent)`), so an event written
//! under older, looser rules stays readable forever; constructors check new input.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Invalid;

/// Longest slug, in bytes (all ASCII).
pub const SLUG_MAX: usize = 64;

/// An org's id: also its subject token, so `[a-z0-9-]`, 1..=64.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(String);

impl OrgId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let ok = !raw.is_empty()
            && raw.len() <= SLUG_MAX
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        if !ok {
            return Err(Invalid::new(
                "org",
                "org.invalid",
                "an org id is 1 to 64 characters of a-z, 0-9 and inner dashes",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A human name: trimmed, 1..=100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Invalid::new(
                "display_name",
                "display_name.empty",
                "give the model a name",
            ));
        }
        if trimmed.chars().count() > 100 {
            return Err(Invalid::new(
                "display_name",
                "display_name.too_long",
                "a display name has at most 100 characters",
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(Invalid::new(
                "display_name",
                "display_name.invalid",
                "a display name cannot contain control characters such as newlines or tabs",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The immutable, org-unique handle workflows use: `[a-z0-9-]`, no leading, trailing or double
/// dashes, 1..=64 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// Derives the slug from a display name. Latin letters with diacritics lose them; any other
    /// run of characters becomes one dash. A name with nothing left (say, only CJK characters)
    /// gets `model-` and a stable 8-digit hash of the name, so it still has a readable, stable
    /// slug.
    pub fn derive(name: &DisplayName) -> Self {
        let mut out = String::with_capacity(SLUG_MAX);
        for ch in name.as_str().chars() {
            let folded = fold_latin(ch);
            match folded {
                Some(s) => out.push_str(s),
                None if ch.is_ascii_alphanumeric() => out.push(ch.to_ascii_lowercase()),
                None => out.push('-'),
            }
        }
        let mut collapsed = String::with_capacity(out.len());
        for ch in out.chars() {
            if ch == '-' && (collapsed.is_empty() || collapsed.ends_with('-')) {
                continue;
            }
            collapsed.push(ch);
        }
        collapsed.truncate(SLUG_MAX);
        let trimmed = collapsed.trim_end_matches('-');
        if trimmed.is_empty() {
            return Self(format!("model-{:08x}", fnv1a(name.as_str().as_bytes())));
        }
        Self(trimmed.to_owned())
    }

    /// The `n`th candidate for a taken slug: `base-n`, cut so it still fits 64 bytes.
    pub fn with_suffix(&self, n: u32) -> Self {
        if n <= 1 {
            return self.clone();
        }
        let suffix = format!("-{n}");
        let mut base = self.0.clone();
        base.truncate(SLUG_MAX - suffix.len());
        let base = base.trim_end_matches('-');
        Self(format!("{base}{suffix}"))
    }

    /// Parses a slug given by a caller (a path segment, a reference).
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let ok = !raw.is_empty()
            && raw.len() <= SLUG_MAX
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-')
            && !raw.contains("--");
        if !ok {
            return Err(Invalid::new(
                "slug",
                "slug.invalid",
                "a slug is 1 to 64 characters of a-z, 0-9 and single inner dashes",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn fold_latin(ch: char) -> Option<&'static str> {
    Some(match ch {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å'
        | 'Ā' | 'Ă' | 'Ą' => "a",
        'æ' | 'Æ' => "ae",
        'ç' | 'ć' | 'č' | 'Ç' | 'Ć' | 'Č' => "c",
        'ď' | 'đ' | 'Ď' | 'Đ' | 'ð' | 'Ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' | 'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => {
            "e"
        }
        'ğ' | 'Ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' | 'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' | 'İ' => "i",
        'ł' | 'ľ' | 'Ł' | 'Ľ' => "l",
        'ñ' | 'ń' | 'ň' | 'Ñ' | 'Ń' | 'Ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō'
        | 'Ő' => "o",
        'œ' | 'Œ' => "oe",
        'ř' | 'Ř' => "r",
        'ś' | 'š' | 'ş' | 'Ś' | 'Š' | 'Ş' => "s",
        'ß' => "ss",
        'ť' | 'ţ' | 'Ť' | 'Ţ' => "t",
        'þ' | 'Þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' | 'Ů' | 'Ű' => {
            "u"
        }
        'ý' | 'ÿ' | 'Ý' | 'Ÿ' => "y",
        'ź' | 'ż' | 'ž' | 'Ź' | 'Ż' | 'Ž' => "z",
        _ => return None,
    })
}

/// FNV-1a, 32 bits: a stable hash with no dependency, for fallback slugs only.
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// An opaque id made at the edge (credential ids, token ids): `[A-Za-z0-9_-]`, 1..=64.
macro_rules! opaque_id {
    ($name:ident, $field:literal) => {
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, Invalid> {
                let ok = !raw.is_empty()
                    && raw.len() <= 64
                    && raw
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !ok {
                    return Err(Invalid::new(
                        $field,
                        concat!($field, ".invalid"),
                        "an id is 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'",
                    ));
                }
                Ok(Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

opaque_id!(CredentialId, "credential_id");
opaque_id!(TokenId, "token_id");

/// An absolute http(s) URL with a host, no credentials in it and no fragment.
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
        let text = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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
                format!("{raw:?} is not an AWS region; use a region code such as us-east-1"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Largest output budget a model may declare.
pub const MAX_TOKENS_LIMIT: u32 = 2_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MaxTokens(u32);

impl MaxTokens {
    pub fn parse(raw: i64) -> Result<Self, Invalid> {
        if raw < 1 || raw > i64::from(MAX_TOKENS_LIMIT) {
            return Err(Invalid::new(
                "max_tokens",
                "max_tokens.out_of_range",
                format!("max tokens must be between 1 and {MAX_TOKENS_LIMIT}, got {raw}"),
            ));
        }
        Ok(Self(raw as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// How a reasoning model takes its reasoning control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningParam {
    /// A level such as low / medium / high (OpenAI, OpenRouter, Gemini 3).
    Effort,
    /// A token budget (Anthropic, Bedrock, Gemini 2.5 thinking budget).
    MaxTokens,
}

impl ReasoningParam {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "effort" => Ok(Self::Effort),
            "max_tokens" => Ok(Self::MaxTokens),
            _ => Err(Invalid::new(
                "capabilities.reasoning",
                "reasoning.unknown_parameter",
                format!("{raw:?} is not a reasoning parameter; use \"effort\" or \"max_tokens\""),
            )),
        }
    }
}

/// What a model can do. `reasoning: None` means extended reasoning is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub json_mode: bool,
    pub vision: bool,
    pub tool_use: bool,
    pub reasoning: Option<ReasoningParam>,
}

/// A price in USD per token, exact. Serialized as a decimal string everywhere, so neither JSON
/// nor postcard ever sees a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost(Decimal);

impl Cost {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Invalid> {
        let value = Decimal::from_str(raw.trim())
            .or_else(|_| Decimal::from_scientific(raw.trim()))
            .map_err(|_| {
                Invalid::new(
                    field,
                    "cost.invalid",
                    format!(
                        "{raw:?} is not a decimal number; give USD per token, e.g. \"0.000003\""
                    ),
                )
            })?;
        if value.is_sign_negative() && !value.is_zero() {
            return Err(Invalid::new(
                field,
                "cost.negative",
                "a cost cannot be negative",
            ));
        }
        if value > Decimal::ONE {
            return Err(Invalid::new(
                field,
                "cost.too_large",
                "costs are USD per token; more than 1 USD per token is surely per million tokens",
            ));
        }
        Ok(Self(value.normalize()))
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Cost {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Cost {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Decimal::from_str(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// Optional per-token prices; `None` is "not set", never zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Costs {
    pub input_per_token: Option<Cost>,
    pub output_per_token: Option<Cost>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug_of(name: &str) -> String {
        Slug::derive(&DisplayName::parse(name).unwrap())
            .as_str()
            .to_owned()
    }

    #[test]
    fn slugs_are_lowercase_ascii_with_collapsed_dashes() {
        assert_eq!(slug_of("GPT-4o (Prod)"), "gpt-4o-prod");
        assert_eq!(slug_of("  Claude   Sonnet 4.6 "), "claude-sonnet-4-6");
        assert_eq!(slug_of("--Mistral__Large--"), "mistral-large");
        assert_eq!(slug_of("Modèle Équipe"), "modele-equipe");
        assert_eq!(slug_of("Straße"), "strasse");
    }

    #[test]
    fn slugs_fall_back_for_names_without_latin_letters() {
        let a = slug_of("模型");
        assert!(a.starts_with("model-") && a.len() == 14, "{a}");
        assert_eq!(a, slug_of("模型"), "stable");
        assert_ne!(a, slug_of("模型二"));
    }

    #[test]
    fn slugs_are_at_most_64_and_suffixes_fit() {
        let long = slug_of(&"ab c ".repeat(19));
        assert!(long.len() <= 64 && !long.ends_with('-'), "{long}");
        let base = Slug::parse(&"x".repeat(64)).unwrap();
        let second = base.with_suffix(2);
        assert_eq!(second.as_str().len(), 64);
        assert!(second.as_str().ends_with("-2"));
        assert_eq!(Slug::parse("gpt").unwrap().with_suffix(3).as_str(), "gpt-3");
        assert_eq!(Slug::parse("gpt").unwrap().with_suffix(1).as_str(), "gpt");
    }

    #[test]
    fn slugs_from_callers_are_checked() {
        assert!(Slug::parse("gpt-4o").is_ok());
        for bad in ["", "GPT", "a--b", "-a", "a-", "a.b", &"a".repeat(65)] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_names_are_checked() {
        assert_eq!(DisplayName::parse("  x ").unwrap().as_str(), "x");
        assert_eq!(
            DisplayName::parse("   ").unwrap_err().code,
            "display_name.empty"
        );
        assert_eq!(
            DisplayName::parse("a\nb").unwrap_err().code,
            "display_name.invalid"
        );
        assert_eq!(
            DisplayName::parse(&"a".repeat(101)).unwrap_err().code,
            "display_name.too_long"
        );
    }

    #[test]
    fn max_tokens_range() {
        assert!(MaxTokens::parse(1).is_ok());
        assert!(MaxTokens::parse(2_000_000).is_ok());
        assert_eq!(
            MaxTokens::parse(0).unwrap_err().code,
            "max_tokens.out_of_range"
        );
        assert_eq!(
            MaxTokens::parse(2_000_001).unwrap_err().code,
            "max_tokens.out_of_range"
        );
    }

    #[test]
    fn costs_are_exact_and_non_negative() {
        let cost = Cost::parse("cost", "0.0000030").unwrap();
        assert_eq!(cost.to_string(), "0.000003");
        assert_eq!(Cost::parse("cost", "3e-6").unwrap(), cost);
        assert_eq!(
            Cost::parse("cost", "-0.1").unwrap_err().code,
            "cost.negative"
        );
        assert_eq!(Cost::parse("cost", "abc").unwrap_err().code, "cost.invalid");
        assert_eq!(Cost::parse("cost", "3").unwrap_err().code, "cost.too_large");
        let json = serde_json::to_string(&cost).unwrap();
        assert_eq!(json, "\"0.000003\"");
        assert_eq!(
            postcard::from_bytes::<Cost>(&postcard::to_stdvec(&cost).unwrap()).unwrap(),
            cost
        );
    }

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
}
