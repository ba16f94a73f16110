//! Value types parsed once at the edge and trusted after: names, slugs, ids, URLs, regions,
//! token limits, capabilities and costs.
//!
//! Every type deserializes without re-checking (`serde(transparent)`), so an event written
//! under older, looser rules stays readable forever; constructors check new input.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Invalid, echo};

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

/// A human name: trimmed, 1..=100 characters, no control characters and no invisible format
/// characters (bidi overrides, zero-width characters), which could make a name read as another.
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
        if trimmed
            .chars()
            .any(|ch| ch.is_control() || is_format_character(ch))
        {
            return Err(Invalid::new(
                "display_name",
                "display_name.invalid",
                "a display name cannot contain control characters such as newlines or tabs, \
                 nor invisible formatting characters such as bidi overrides or zero-width spaces",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `ch` is in Unicode's general category Cf (format): invisible characters that steer
/// layout, such as bidi overrides and zero-width spaces. `char::is_control` covers Cc only, and
/// the standard library has no Cf test, so the ranges (Unicode 16) are listed here.
fn is_format_character(ch: char) -> bool {
    matches!(
        ch,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
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
        if let Some((name, _)) = url
            .query_pairs()
            .find(|(name, _)| is_secret_query_parameter(name))
        {
            // The name only: the value is the secret.
            return Err(Invalid::new(
                field,
                "url.secret_in_query",
                format!(
                    "the query parameter {} looks like a secret, and the URL is shown to every \
                     member; leave it out of the URL and give the key as the credential instead",
                    echo(&name)
                ),
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
                format!(
                    "{} is not an AWS region; use a region code such as us-east-1",
                    echo(raw)
                ),
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
        match u32::try_from(raw) {
            Ok(n) if (1..=MAX_TOKENS_LIMIT).contains(&n) => Ok(Self(n)),
            _ => Err(Self::out_of_range(&raw.to_string())),
        }
    }

    /// The problem for a whole number outside `1..=MAX_TOKENS_LIMIT`, including one too large
    /// for any integer type; `got` is the number as written.
    pub fn out_of_range(got: &str) -> Invalid {
        Invalid::new(
            "max_tokens",
            "max_tokens.out_of_range",
            format!("max tokens must be between 1 and {MAX_TOKENS_LIMIT}, got {got}"),
        )
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
                format!(
                    "{} is not a reasoning parameter; use \"effort\" or \"max_tokens\"",
                    echo(raw)
                ),
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

/// Most decimal places a cost keeps (all that [`Decimal`] holds). A finer price is refused,
/// never rounded.
pub const COST_MAX_DECIMAL_PLACES: u32 = Decimal::MAX_SCALE;

/// A price in USD per token, exact. Serialized as a decimal string everywhere, so neither JSON
/// nor postcard ever sees a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost(Decimal);

impl Cost {
    /// Parses a plain or scientific decimal (`"0.000003"`, `"3e-6"`) exactly: a value that
    /// [`Decimal`] could only hold rounded is refused, never rounded.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Invalid> {
        let Some(exact) = ExactDecimal::parse(raw.trim()) else {
            return Err(Invalid::new(
                field,
                "cost.invalid",
                format!(
                    "{} is not a decimal number; give USD per token, e.g. \"0.000003\"",
                    echo(raw)
                ),
            ));
        };
        if exact.negative && !exact.is_zero() {
            return Err(Invalid::new(
                field,
                "cost.negative",
                "a cost cannot be negative",
            ));
        }
        if exact.exceeds_one() {
            return Err(Invalid::new(
                field,
                "cost.too_large",
                "a cost is at most 1 USD per token; a larger value is surely a price per million \
                 tokens",
            ));
        }
        // Zero is exact however many zeros follow the point.
        if !exact.is_zero() && exact.decimal_places() > i64::from(COST_MAX_DECIMAL_PLACES) {
            return Err(Invalid::new(
                field,
                "cost.too_precise",
                format!(
                    "a cost has at most {COST_MAX_DECIMAL_PLACES} decimal places; round it \
                     before sending, as the registry never rounds a price"
                ),
            ));
        }
        let value = exact.to_decimal().ok_or_else(|| {
            // Unreachable after the checks above (at most 1 with at most 28 places fits), but
            // a refusal is better than a panic.
            Invalid::new(
                field,
                "cost.invalid",
                format!("{} cannot be held exactly", echo(raw)),
            )
        })?;
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

/// A decimal number exactly as written: `digits × 10^exponent`, with neither leading nor trailing
/// zeros in `digits` (so zero has no digits). Checking size and precision on this form, before
/// building a [`Decimal`], is what keeps parsing from rounding.
struct ExactDecimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl ExactDecimal {
    /// Exponents beyond this are clamped: any such value is far too large or too precise anyway.
    const EXPONENT_CLAMP: i64 = 1_000_000_000;

    /// `[+-]digits[.digits][(e|E)[+-]digits]`, with at least one digit before the exponent.
    fn parse(text: &str) -> Option<Self> {
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, written_exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
            None => (unsigned, None),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.len() + fraction.len() == 0 || !all_digits(whole) || !all_digits(fraction) {
            return None;
        }
        let written_exponent = match written_exponent {
            None => 0,
            Some(text) => {
                let magnitude = text.strip_prefix(['+', '-']).unwrap_or(text);
                if magnitude.is_empty() || !all_digits(magnitude) {
                    return None;
                }
                let clamped = magnitude
                    .parse::<i64>()
                    .map_or(Self::EXPONENT_CLAMP, |e| e.min(Self::EXPONENT_CLAMP));
                if text.starts_with('-') {
                    -clamped
                } else {
                    clamped
                }
            }
        };
        let fraction_len = i64::try_from(fraction.len()).ok()?;
        let joined = format!("{whole}{fraction}");
        let significant = joined.trim_start_matches('0');
        let digits = significant.trim_end_matches('0');
        let trailing_zeros = i64::try_from(significant.len() - digits.len()).ok()?;
        Some(Self {
            negative,
            digits: digits.to_owned(),
            exponent: written_exponent - fraction_len + trailing_zeros,
        })
    }

    fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Whether the magnitude is above 1, the largest cost.
    fn exceeds_one(&self) -> bool {
        if self.is_zero() {
            return false;
        }
        let Ok(count) = i64::try_from(self.digits.len()) else {
            return true;
        };
        // The leading digit stands at 10^(count - 1 + exponent).
        match (count - 1 + self.exponent).cmp(&0) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => self.digits != "1" || self.exponent != 0,
        }
    }

    fn decimal_places(&self) -> i64 {
        (-self.exponent).max(0)
    }

    /// The value as a [`Decimal`], when it fits exactly.
    fn to_decimal(&self) -> Option<Decimal> {
        if self.is_zero() {
            return Some(Decimal::ZERO);
        }
        if self.exponent > 0 {
            return None;
        }
        let scale = u32::try_from(-self.exponent).ok()?;
        let mantissa: i128 = self.digits.parse().ok()?;
        let magnitude = Decimal::try_from_i128_with_scale(mantissa, scale).ok()?;
        Some(if self.negative { -magnitude } else { magnitude })
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

    #[test]
    fn display_names_refuse_invisible_format_characters() {
        // Given names hiding a bidi override, an isolate, zero-width characters, a BOM or a
        // soft hyphen
        for hidden in [
            '\u{202E}',
            '\u{202A}',
            '\u{2066}',
            '\u{2069}',
            '\u{200B}',
            '\u{200D}',
            '\u{200F}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{E0041}',
        ] {
            let name = format!("gpt{hidden}-prod");
            // When parsed
            let refused = DisplayName::parse(&name).unwrap_err();
            // Then they are refused with the code for control characters
            assert_eq!(refused.code, "display_name.invalid", "{:?}", hidden);
        }
        // And visible non-ASCII names still parse and derive their slugs as before
        assert_eq!(slug_of("GPT 🚀 Prod"), "gpt-prod");
        assert_eq!(slug_of("Modèle Équipe"), "modele-equipe");
        assert!(slug_of("模型").starts_with("model-"));
    }

    #[test]
    fn max_tokens_out_of_range_names_the_range() {
        // Given a number beyond every integer type
        // When its problem is made
        let problem = MaxTokens::out_of_range("9223372036854775808");
        // Then it is out of range and says the allowed range
        assert_eq!(problem.code, "max_tokens.out_of_range");
        assert!(
            problem.message.contains("between 1 and 2000000"),
            "{}",
            problem.message
        );
        assert_eq!(
            MaxTokens::parse(-5).unwrap_err().code,
            "max_tokens.out_of_range"
        );
    }

    #[test]
    fn costs_are_never_rounded() {
        // Given a cost with exactly 28 decimal places
        let finest = format!("0.{}1", "0".repeat(27));
        // When parsed
        // Then it is kept exactly
        assert_eq!(Cost::parse("cost", &finest).unwrap().to_string(), finest);
        assert_eq!(Cost::parse("cost", "1e-28").unwrap().to_string(), finest);
        // And trailing zeros past 28 places change nothing, so they are fine
        let padded = format!("0.1{}", "0".repeat(40));
        assert_eq!(Cost::parse("cost", &padded).unwrap().to_string(), "0.1");
        // Nor are they for zero
        let zero = format!("0.{}", "0".repeat(40));
        assert!(
            Cost::parse("cost", &zero)
                .unwrap()
                .to_string()
                .starts_with('0')
        );
        // Given costs with a 29th decimal place
        for too_fine in [
            "1e-29".to_owned(),
            format!("0.{}1", "0".repeat(28)),
            format!("0.0000012{}5", "0".repeat(30)),
            "1e-99999999999999999999999".to_owned(),
        ] {
            // When parsed
            let refused = Cost::parse("cost", &too_fine).unwrap_err();
            // Then they are refused, naming the maximum, not rounded (possibly to 0)
            assert_eq!(refused.code, "cost.too_precise", "{too_fine}");
            assert!(
                refused.message.contains("28 decimal places"),
                "{}",
                refused.message
            );
        }
    }

    #[test]
    fn costs_above_one_are_too_large_however_long() {
        // Given values above the 1 USD maximum, some beyond what a Decimal holds
        for too_large in [
            "1.0000000000000000000000000000001".to_owned(),
            "1".repeat(40),
            "1e999999999999999999999".to_owned(),
            "12345.0000000000000000000000000000001".to_owned(),
        ] {
            // When parsed
            let refused = Cost::parse("cost", &too_large).unwrap_err();
            // Then they are too large, and the message names the maximum
            assert_eq!(refused.code, "cost.too_large", "{too_large}");
            assert!(
                refused.message.contains("at most 1 USD"),
                "{}",
                refused.message
            );
        }
        // And 1 itself, however written, is allowed
        for one in ["1", "1.000", "0.1e1", "+1", "100e-2"] {
            assert_eq!(Cost::parse("cost", one).unwrap().to_string(), "1", "{one}");
        }
    }

    #[test]
    fn costs_keep_their_codes_for_negative_zero_and_garbage() {
        assert_eq!(
            Cost::parse("cost", "-1e-40").unwrap_err().code,
            "cost.negative"
        );
        assert_eq!(Cost::parse("cost", "-0").unwrap().to_string(), "0");
        assert_eq!(Cost::parse("cost", "0e999999999").unwrap().to_string(), "0");
        assert_eq!(
            Cost::parse("cost", " 3E-6 ").unwrap().to_string(),
            "0.000003"
        );
        assert_eq!(Cost::parse("cost", ".5").unwrap().to_string(), "0.5");
        for garbage in [
            "", ".", "e5", "1e", "1e+", "1.2.3", "--1", "1 0", "NaN", "inf", "0x1", "1_0",
        ] {
            assert_eq!(
                Cost::parse("cost", garbage).unwrap_err().code,
                "cost.invalid",
                "{garbage:?}"
            );
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

    #[test]
    fn echoed_values_are_capped() {
        // Given a 64 KiB value
        let huge = "x".repeat(64 * 1024);
        // When fields that quote their input refuse it
        let problems = [
            AwsRegion::parse(&huge).unwrap_err(),
            ReasoningParam::parse(&huge).unwrap_err(),
            Cost::parse("cost", &huge).unwrap_err(),
            crate::provider::Provider::parse(&huge).unwrap_err(),
            crate::org::Role::parse(&huge).unwrap_err(),
        ];
        // Then each message quotes only the first characters, then an ellipsis
        let quoted = format!("{:?}…", "x".repeat(crate::ECHO_MAX_CHARS));
        for problem in problems {
            assert!(problem.message.contains(&quoted), "{}", problem.code);
            assert!(
                problem.message.len() < 400,
                "{}: {}",
                problem.code,
                problem.message.len()
            );
        }
    }
}
