//! The one error type for input that breaks a rule of shape: which field, a stable code, and a
//! sentence saying how to fix it.

use std::fmt;

/// A field's value is not acceptable. `code` is stable and machine-readable
/// (`<field>.<rule>`); `message` is for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for Invalid {}

/// Most characters of a caller's value that an error message quotes.
pub const ECHO_MAX_CHARS: usize = 40;

/// A caller's value quoted for an error message: in quotes, escaped as Rust's `{:?}` does, and
/// cut after [`ECHO_MAX_CHARS`] characters with `…` outside the quotes, so a 64 KiB value is
/// not sent back (and logged) whole. Every message that quotes input goes through here.
///
/// Never pass a secret: a cut secret is still a secret.
pub fn echo(raw: &str) -> String {
    match raw.char_indices().nth(ECHO_MAX_CHARS) {
        None => format!("{raw:?}"),
        Some((cut, _)) => format!("{:?}…", &raw[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_echoed_whole_and_quoted() {
        // Given a short value with a character that needs escaping
        let raw = "us-east\n1";
        // When it is echoed
        let echoed = echo(raw);
        // Then it is quoted and escaped, with nothing cut
        assert_eq!(echoed, r#""us-east\n1""#);
    }

    #[test]
    fn long_values_are_cut_after_the_cap() {
        // Given a 64 KiB value of multi-byte characters
        let raw = "é".repeat(64 * 1024);
        // When it is echoed
        let echoed = echo(&raw);
        // Then only the first ECHO_MAX_CHARS characters are quoted, then an ellipsis
        assert_eq!(echoed, format!("{:?}…", "é".repeat(ECHO_MAX_CHARS)));
        // And a value of exactly the cap is not cut
        assert_eq!(
            echo(&"a".repeat(ECHO_MAX_CHARS)),
            format!("{:?}", "a".repeat(ECHO_MAX_CHARS))
        );
    }
}
