//! Subjects of the log: `reg.<org>.<kind>.<id>`, one per aggregate.

use std::fmt;

/// A checked subject. Each token is 1..=128 characters of `[A-Za-z0-9_-]`, so no token can
/// carry a NATS wildcard, a dot or whitespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid subject token {0:?}: use 1 to 128 characters of A-Z, a-z, 0-9, '_' or '-'")]
pub struct SubjectError(pub String);

/// The prefix of every registry subject.
pub(crate) const PREFIX: &str = "reg";

impl Subject {
    pub fn new(org: &str, kind: &str, id: &str) -> Result<Self, SubjectError> {
        for token in [org, kind, id] {
            check_token(token)?;
        }
        Ok(Self(format!("{PREFIX}.{org}.{kind}.{id}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_token(token: &str) -> Result<(), SubjectError> {
    let ok = !token.is_empty()
        && token.len() <= 128
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SubjectError(token.to_owned()))
    }
}

/// True when `subject` matches a NATS-style `filter` (`*` one token, `>` the rest).
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for f in filter.split('.') {
        if f == ">" {
            return subject_tokens.next().is_some();
        }
        match subject_tokens.next() {
            Some(s) if f == "*" || f == s => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_rejects_tokens() {
        assert_eq!(
            Subject::new("acme", "model", "gpt-4o").unwrap().as_str(),
            "reg.acme.model.gpt-4o"
        );
        assert!(Subject::new("ac.me", "model", "x").is_err());
        assert!(Subject::new("acme", "*", "x").is_err());
        assert!(Subject::new("acme", "model", "").is_err());
    }

    #[test]
    fn filters_match_like_nats() {
        assert!(matches("reg.*.model.*", "reg.acme.model.x"));
        assert!(!matches("reg.*.model.*", "reg.acme.credential.x"));
        assert!(matches("reg.>", "reg.acme.model.x"));
        assert!(!matches("reg.*.model", "reg.acme.model.x"));
    }
}
