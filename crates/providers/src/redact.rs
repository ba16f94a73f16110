//! Redaction of provider messages before they leave this crate: the credential under test and
//! anything shaped like a key or token is replaced, and the text is cut to one short line.
//!
//! Providers echo keys back (OpenAI quotes a masked key, proxies quote whole headers), and the
//! message ends up in events, views and API answers, so it is scrubbed once, here, when the
//! [`crate::Outcome`] is made.

/// Longest upstream message kept, in characters.
pub const MESSAGE_MAX_CHARS: usize = 300;

const REDACTED: &str = "[redacted]";

/// Secret fragments shorter than this are not hunted for inside other words: a short run
/// (`"sk"`, `"1234"`) matches too much ordinary text to mean anything.
const FRAGMENT_MIN_CHARS: usize = 8;

/// Prefixes that mark a key or token of a known provider or platform.
const KEY_PREFIXES: &[&str] = &[
    "sk-", "sk_", "rk_", "pk_", "AIza", "hf_", "AKIA", "ASIA", "ABSK", "fw_", "gsk_", "xai-",
    "eyJ", "ghp_", "gho_", "glpat-", "r8_", "nvapi-", "pplx-", "csk-", "sess-",
];

/// Words after which (with `=` or `:` between) the next word is a secret value.
const SECRET_NAMES: &[&str] = &[
    "key",
    "api_key",
    "apikey",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "token",
    "access_token",
    "session_token",
    "x-amz-security-token",
    "signature",
    "authorization",
    "password",
    "secret",
    "secret_access_key",
];

/// Scrubs the secrets of one probe out of text.
pub(crate) struct Redactor<'a> {
    secrets: Vec<&'a str>,
}

impl<'a> Redactor<'a> {
    /// `secrets` are every secret part of the credential under test (empty ones are ignored).
    pub(crate) fn new(secrets: Vec<&'a str>) -> Self {
        Self {
            secrets: secrets.into_iter().filter(|s| !s.is_empty()).collect(),
        }
    }

    /// One line, no secret, no key-shaped word, at most [`MESSAGE_MAX_CHARS`] characters.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        // Longest first, so a secret containing another is replaced whole.
        let mut secrets = self.secrets.clone();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for secret in secrets {
            if text.contains(secret) {
                text = text.replace(secret, REDACTED);
            }
            // A secret echoed from a URL or a form body arrives percent-encoded (an AWS
            // secret's `/` and `+` become `%2F` and `%2B`), and its pieces between the escapes
            // may be too short to be hunted as fragments.
            for encoded in [
                percent_encoded(secret, false),
                percent_encoded(secret, true),
            ] {
                if encoded != secret && text.contains(&encoded) {
                    text = text.replace(&encoded, REDACTED);
                }
            }
        }
        let scrubbed = self.scrub_words(&text);
        let collapsed = scrubbed.split_whitespace().collect::<Vec<_>>().join(" ");
        cap(&collapsed)
    }

    /// Replaces each word (a run of key characters) that is a fragment of a secret, looks like
    /// a key, or is the value of a secret-named field.
    fn scrub_words(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut previous_word = String::new();
        let mut separator = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some(&(start, c)) = chars.peek() {
            if !is_word_char(c) {
                separator.push(c);
                out.push(c);
                chars.next();
                continue;
            }
            let mut end = start;
            while let Some(&(index, c)) = chars.peek() {
                if !is_word_char(c) {
                    break;
                }
                end = index + c.len_utf8();
                chars.next();
            }
            let word = &text[start..end];
            let named_value = is_secret_name(&previous_word)
                && (separator.contains('=') || separator.contains(':'))
                && separator.chars().all(|c| " =:\"'".contains(c));
            let bearer_value =
                previous_word.eq_ignore_ascii_case("bearer") && separator.trim().is_empty();
            if word != "redacted"
                && (named_value || bearer_value || self.is_fragment(word) || looks_like_key(word))
            {
                out.push_str(REDACTED);
            } else {
                out.push_str(word);
            }
            previous_word = word.to_ascii_lowercase();
            separator.clear();
        }
        out
    }

    fn is_fragment(&self, word: &str) -> bool {
        word.chars().count() >= FRAGMENT_MIN_CHARS
            && self.secrets.iter().any(|secret| secret.contains(word))
    }
}

/// `text` with every byte outside the URL-unreserved set percent-encoded, in upper- or
/// lower-case hex.
fn percent_encoded(text: &str, lower: bool) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else if lower {
            out.push_str(&format!("%{byte:02x}"));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '.')
}

fn is_secret_name(word: &str) -> bool {
    SECRET_NAMES.contains(&word)
}

/// A key of a known shape, or a long random-looking run: a segment (between `-` and `_`) of at
/// least 16 characters mixing digits with both letter cases, or a hex run of 32 or more.
/// Model ids (`claude-sonnet-4-20250514`, `Llama-3.3-70B-Instruct-Turbo`) stay readable.
fn looks_like_key(word: &str) -> bool {
    if word.len() >= 12 && KEY_PREFIXES.iter().any(|prefix| word.starts_with(prefix)) {
        return true;
    }
    let random_segment = word.split(['-', '_']).any(|segment| {
        segment.len() >= 16
            && segment.bytes().any(|b| b.is_ascii_digit())
            && segment.bytes().any(|b| b.is_ascii_uppercase())
            && segment.bytes().any(|b| b.is_ascii_lowercase())
    });
    let hex = word.len() >= 32 && word.bytes().all(|b| b.is_ascii_hexdigit());
    random_segment || hex
}

fn cap(text: &str) -> String {
    let trimmed = text.trim();
    if trimmed.chars().count() <= MESSAGE_MAX_CHARS {
        return trimmed.to_owned();
    }
    let mut out: String = trimmed.chars().take(MESSAGE_MAX_CHARS - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_and_its_fragments_are_scrubbed() {
        let key = "sk-test-Q2hhbmdlTWVQbGVhc2UxMjM0NTY3ODk";
        let redactor = Redactor::new(vec![key]);
        let echoed = format!("Incorrect API key provided: {key}. You can find your key at …");
        let out = redactor.redact(&echoed);
        assert!(!out.contains(key), "{out}");
        assert!(
            out.starts_with("Incorrect API key provided: [redacted]"),
            "{out}"
        );
        // A masked echo keeps no run of 8+ characters of the key.
        let masked = "Incorrect API key provided: sk-test-****************************6789.";
        let out = redactor.redact(masked);
        assert!(!out.contains("sk-test-"), "{out}");
        // A fragment in the middle of a longer word.
        let out = redactor.redact("bad key Q2hhbmdlTWVQbGVhc2U here");
        assert_eq!(out, "bad key [redacted] here");
    }

    #[test]
    fn a_percent_encoded_echo_of_the_secret_is_scrubbed() {
        // An AWS-style secret whose `/` and `+` split it into pieces shorter than a fragment.
        let secret = "wJalr/XUtnF+EMI/K7MD+ENG/bPxR+fiCY";
        let redactor = Redactor::new(vec![secret]);
        for encoded in [
            "wJalr%2FXUtnF%2BEMI%2FK7MD%2BENG%2FbPxR%2BfiCY",
            "wJalr%2fXUtnF%2bEMI%2fK7MD%2bENG%2fbPxR%2bfiCY",
        ] {
            let out = redactor.redact(&format!("denied: X-Amz-Credential={encoded}&x=1"));
            for piece in ["wJalr", "XUtnF", "K7MD", "bPxR", "fiCY"] {
                assert!(!out.contains(piece), "{out}");
            }
        }
    }

    #[test]
    fn key_shaped_words_are_scrubbed_but_model_ids_stay() {
        let redactor = Redactor::new(vec![]);
        for (input, expected) in [
            (
                "The model `gpt-4o-mini-x` does not exist",
                "The model `gpt-4o-mini-x` does not exist",
            ),
            (
                "models/gemini-2.5-flash is not found for API version v1beta",
                "models/gemini-2.5-flash is not found for API version v1beta",
            ),
            (
                "The provided model identifier us.anthropic.claude-sonnet-4-20250514-v1:0 is invalid.",
                "The provided model identifier us.anthropic.claude-sonnet-4-20250514-v1:0 is invalid.",
            ),
            (
                "Unable to access model deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
                "Unable to access model deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
            ),
            (
                "API key not valid. Please pass a valid API key.",
                "API key not valid. Please pass a valid API key.",
            ),
            ("key AIzaSyA1b2C3d4E5f6G7h8", "key [redacted]"),
            (
                "header Authorization: Bearer abc.def",
                "header Authorization: [redacted] [redacted]",
            ),
            (
                "url ?key=hunter2hunter2&alt=sse",
                "url ?key=[redacted]&alt=sse",
            ),
            (
                "secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY end",
                "secret [redacted] end",
            ),
            (
                "together 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "together [redacted]",
            ),
        ] {
            assert_eq!(redactor.redact(input), expected, "{input}");
        }
    }

    #[test]
    fn messages_are_one_capped_line() {
        let redactor = Redactor::new(vec![]);
        assert_eq!(redactor.redact("a\nb\r\n\tc"), "a b c");
        let long = "word ".repeat(200);
        let out = redactor.redact(&long);
        assert_eq!(out.chars().count(), MESSAGE_MAX_CHARS);
        assert!(out.ends_with('…'));
    }
}
