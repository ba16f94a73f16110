//! Ids and handles: org ids, slugs (derived once from a display name), opaque ids made at
//! the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Invalid;
use crate::values::DisplayName;

/// Longest slug, in bytes (all ASCII).
pub const SLUG_MAX: usize = 64;

/// An org's id: also its subject token, so `[a-z0-9-]`, 1..=64.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(String);

impl OrgId {
    /// What [`OrgId::parse`] accepts, as a regular expression (for the API document).
    pub const PATTERN: &'static str = "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$";

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

    /// The platform's own namespace in the log (`reg._platform.…`): the catalog lives there.
    /// No org can have this id (`parse` refuses `_`), so no org's subjects or rows meet it.
    pub fn platform() -> Self {
        Self(PLATFORM_ORG.to_owned())
    }

    pub fn is_platform(&self) -> bool {
        self.0 == PLATFORM_ORG
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id of the platform's namespace; see [`OrgId::platform`].
pub const PLATFORM_ORG: &str = "_platform";

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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

    /// What [`Slug::parse`] accepts, as a regular expression (for the API document; the
    /// length is at most [`SLUG_MAX`] besides).
    pub const PATTERN: &'static str = "^[a-z0-9]+(-[a-z0-9]+)*$";

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
            /// What `parse` accepts, as a regular expression (for the API document).
            pub const PATTERN: &'static str = "^[A-Za-z0-9_-]{1,64}$";

            pub fn parse(raw: &str) -> Result<Self, Invalid> {
                if !is_token(raw, 64) {
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

/// A workflow's id as the pipelines product names it: `[A-Za-z0-9_-]`, 1..=64.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkflowId(String);

impl WorkflowId {
    /// What [`WorkflowId::parse`] accepts, as a regular expression.
    pub const PATTERN: &'static str = "^[A-Za-z0-9_-]{1,64}$";

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if !is_token(raw, 64) {
            return Err(Invalid::new(
                "id",
                "workflow.id_invalid",
                "a workflow id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkflowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client's `Idempotency-Key`: retries carrying one key (on one method and path) are one
/// command. `[A-Za-z0-9_-]`, 1..=100, the same rule on HTTP and on NATS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// What [`IdempotencyKey::parse`] accepts, as a regular expression.
    pub const PATTERN: &'static str = "^[A-Za-z0-9_-]{1,100}$";

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if !is_token(raw, 100) {
            return Err(Invalid::new(
                "idempotency_key",
                "idempotency_key.invalid",
                "Idempotency-Key is 1 to 100 characters of A-Z, a-z, 0-9, '-' and '_'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 1..=`max` bytes of `[A-Za-z0-9_-]`.
fn is_token(raw: &str, max: usize) -> bool {
    !raw.is_empty()
        && raw.len() <= max
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
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
    fn workflow_ids_and_idempotency_keys_are_plain_tokens() {
        assert!(WorkflowId::parse("wf_1-a").is_ok());
        assert_eq!(
            WorkflowId::parse("a b").unwrap_err().code,
            "workflow.id_invalid"
        );
        assert!(WorkflowId::parse(&"w".repeat(65)).is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(100)).is_ok());
        for bad in ["", "a b", "é", "k\n", &"k".repeat(101)] {
            assert_eq!(
                IdempotencyKey::parse(bad).unwrap_err().code,
                "idempotency_key.invalid",
                "{bad:?}"
            );
        }
    }
}
