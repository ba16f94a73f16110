//! Names people give things: trimmed, bounded, and free of characters that make one name
//! read as another.

use serde::{Deserialize, Serialize};

use crate::Invalid;

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

/// A credential's name, as people tell credentials apart ("Prod OpenAI key"): the same rules
/// as a display name (trimmed, 1..=100 characters, nothing invisible), under the field `name`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CredentialName(String);

impl CredentialName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Invalid::new(
                "name",
                "name.empty",
                "give the credential a name",
            ));
        }
        if trimmed.chars().count() > 100 {
            return Err(Invalid::new(
                "name",
                "name.too_long",
                "a credential name has at most 100 characters",
            ));
        }
        if trimmed
            .chars()
            .any(|ch| ch.is_control() || is_format_character(ch))
        {
            return Err(Invalid::new(
                "name",
                "name.invalid",
                "a credential name cannot contain control characters such as newlines or tabs, \
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Slug;

    fn slug_of(name: &str) -> String {
        Slug::derive(&DisplayName::parse(name).unwrap())
            .as_str()
            .to_owned()
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
    fn credential_names_are_checked_like_display_names() {
        assert_eq!(
            CredentialName::parse(" Prod key ").unwrap().as_str(),
            "Prod key"
        );
        assert_eq!(CredentialName::parse("").unwrap_err().code, "name.empty");
        assert_eq!(
            CredentialName::parse("a\u{202E}b").unwrap_err().code,
            "name.invalid"
        );
        assert_eq!(
            CredentialName::parse(&"a".repeat(101)).unwrap_err().code,
            "name.too_long"
        );
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
}
