//! The `Secret` type and the suffix preview, the only shape of a secret shown to people.

use zeroize::Zeroizing;

/// A plaintext secret (an API key, a token, a password).
///
/// It has no `Debug`, `Display`, `Serialize` or `Clone` on purpose: it cannot reach a log,
/// a response or an event by accident. The memory is wiped on drop. The only way to read it
/// is [`Secret::expose_secret`], which keeps every such read greppable.
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Takes ownership of the plaintext; from here on it is wiped on drop.
    pub fn new(plaintext: String) -> Self {
        Self(Zeroizing::new(plaintext))
    }

    /// The plaintext. Call it only where the secret must leave the process in the clear
    /// (the provider request) or be sealed.
    pub fn expose_secret(&self) -> &str {
        self.0.as_str()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Secrets shorter than this many characters get a preview with no characters at all, so a
/// short secret is never mostly revealed.
const PREVIEW_MIN_CHARS: usize = 12;
/// How many trailing characters a preview shows.
const PREVIEW_SUFFIX_CHARS: usize = 4;
/// What stands in for the hidden part.
const PREVIEW_MASK: &str = "••••";

/// A display form that reveals at most the last four characters: `"••••Ab9z"` for secrets of
/// at least 12 characters, `"••••"` for shorter ones. Counts Unicode scalar values, so it
/// never splits a character.
pub fn preview(secret: &Secret) -> String {
    let plaintext = secret.expose_secret();
    if plaintext.chars().count() < PREVIEW_MIN_CHARS {
        return PREVIEW_MASK.to_owned();
    }
    let suffix_start = plaintext
        .char_indices()
        .rev()
        .nth(PREVIEW_SUFFIX_CHARS - 1)
        .map_or(0, |(index, _)| index);
    format!("{PREVIEW_MASK}{}", &plaintext[suffix_start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_shows_only_the_last_four_characters() {
        let secret = Secret::new("sk-proj-abcdefghAb9z".to_owned());
        assert_eq!(preview(&secret), "••••Ab9z");
    }

    #[test]
    fn preview_of_a_secret_of_exactly_twelve_characters_shows_four() {
        assert_eq!(preview(&Secret::new("abcdefgh1234".to_owned())), "••••1234");
    }

    #[test]
    fn preview_of_a_short_secret_shows_nothing() {
        for short in ["", "a", "abcd", "abcde", "abcdefghijk"] {
            assert_eq!(preview(&Secret::new(short.to_owned())), "••••", "{short:?}");
        }
    }

    #[test]
    fn preview_counts_characters_not_bytes() {
        // 11 characters but 22+ bytes: still short, so nothing shown.
        assert_eq!(preview(&Secret::new("ééééééééééé".to_owned())), "••••");
        // 12 characters with multi-byte ones at the end: the suffix is 4 whole characters.
        let secret = Secret::new("abcdefgh🔑é€ß".to_owned());
        assert_eq!(preview(&secret), "••••🔑é€ß");
    }

    #[test]
    fn len_and_is_empty_report_the_plaintext_length() {
        let secret = Secret::new("abc".to_owned());
        assert_eq!(secret.len(), 3);
        assert!(!secret.is_empty());
        assert!(Secret::new(String::new()).is_empty());
    }
}
