//! What is wrong with a JSON body, in words that never quote it: serde's messages embed the
//! value they found (`invalid type: string "sk-…"`), and a body may carry a secret.

use serde_json::error::Category;

/// A JSON body's mistake: a stable problem code and, unless the JSON itself is broken, a
/// detail to put after the field's path.
pub struct JsonMistake {
    pub code: &'static str,
    pub detail: Option<String>,
}

impl JsonMistake {
    pub fn of(error: &serde_json::Error) -> Self {
        let message = serde_message(error);
        match error.classify() {
            Category::Data => Self {
                code: "body.invalid_shape",
                detail: Some(mistake(&message)),
            },
            // serde_json reports a number no Rust number holds as a syntax error; the JSON
            // is fine, the value is not.
            Category::Syntax if message.starts_with("number out of range") => Self {
                code: "body.number_out_of_range",
                detail: Some("the number is out of range".to_owned()),
            },
            Category::Syntax | Category::Eof | Category::Io => Self {
                code: "body.malformed_json",
                detail: None,
            },
        }
    }
}

/// serde's message without the ` at line L column C` that serde_json appends.
fn serde_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&position) {
        Some(message) => message.to_owned(),
        None => text,
    }
}

/// The kind of mistake in serde's `message`, rebuilt from fixed words. What follows
/// `, expected ` is kept: it comes from our types, while everything before it (the found
/// value, an unknown variant) comes from the client and may be a secret.
fn mistake(message: &str) -> String {
    let expected = message
        .rsplit_once(", expected ")
        .map(|(_, expected)| format!(", expected {expected}"))
        .unwrap_or_default();
    if let Some(found) = message.strip_prefix("invalid type: ") {
        return format!("found {}{expected}", kind_of(found));
    }
    if message.starts_with("invalid value: ") {
        return format!("invalid value{expected}");
    }
    if message.starts_with("invalid length ") {
        return format!("wrong length{expected}");
    }
    if message.starts_with("unknown variant ") {
        return format!("unknown variant{expected}");
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        return unknown_field(rest.split_once('`').map_or("", |(key, _)| key), &expected);
    }
    // These name one of our fields or are our own words, never the client's input.
    if message.starts_with("missing field `")
        || message.starts_with("duplicate field `")
        || message.starts_with(api::NULL_REFUSED)
    {
        return message.to_owned();
    }
    "invalid value".to_owned()
}

/// An unknown field, named when it is a near miss of an expected one (`display_nam` for
/// `display_name`): a key that close to one of ours is a typo, not a secret pasted as a
/// key, which is never repeated.
fn unknown_field(key: &str, expected: &str) -> String {
    let names = expected.split('`').skip(1).step_by(2);
    let near = names
        .filter(|name| key.len() <= 64 && edit_distance(key, name) <= 2)
        .min_by_key(|name| edit_distance(key, name));
    match near {
        Some(name) if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            format!("unknown field `{key}`: did you mean `{name}`?{expected}")
        }
        _ => format!("unknown field{expected}"),
    }
}

/// Levenshtein distance, for short field names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// What serde's `Unexpected` describes, without its value (`string "sk-…"` → `a string`).
fn kind_of(found: &str) -> &'static str {
    const KINDS: &[(&str, &str)] = &[
        ("string", "a string"),
        ("integer", "a number"),
        ("floating point", "a number"),
        ("boolean", "a boolean"),
        ("null", "null"),
        ("sequence", "an array"),
        ("map", "an object"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| found.starts_with(prefix))
        .map_or("a value of another type", |(_, kind)| kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        count: u32,
        kind: Option<Kind>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        One,
    }

    fn mistake_in(body: &str) -> JsonMistake {
        JsonMistake::of(&serde_json::from_str::<Shape>(body).unwrap_err())
    }

    #[test]
    fn a_mistake_never_quotes_the_body() {
        for body in [
            r#"{"count": "sk-canary-0123456789"}"#,
            r#"{"count": 1, "kind": "sk-canary-0123456789"}"#,
            r#"{"count": 1, "sk-canary-0123456789": 1}"#,
            r#""sk-canary-0123456789""#,
        ] {
            let mistake = mistake_in(body);
            assert_eq!(mistake.code, "body.invalid_shape", "{body}");
            let detail = mistake.detail.unwrap();
            assert!(!detail.contains("canary"), "{body}: {detail}");
        }
        assert_eq!(
            mistake_in(r#"{"count": "x"}"#).detail.unwrap(),
            "found a string, expected u32"
        );
    }

    #[test]
    fn a_near_miss_of_a_field_is_named_and_anything_else_is_not() {
        assert_eq!(
            mistake_in(r#"{"cuont": 1}"#).detail.unwrap(),
            "unknown field `cuont`: did you mean `count`?, expected `count` or `kind`"
        );
        for far in [r#"{"abcdefghij": 1}"#, r#"{"c-unt": 1}"#] {
            let detail = mistake_in(far).detail.unwrap();
            assert_eq!(detail, "unknown field, expected `count` or `kind`", "{far}");
        }
        assert_eq!(edit_distance("display_nam", "display_name"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn broken_json_and_huge_numbers_are_told_apart() {
        assert_eq!(mistake_in(r#"{"count": "#).code, "body.malformed_json");
        assert_eq!(
            mistake_in(r#"{"count": 1e400}"#).code,
            "body.number_out_of_range"
        );
    }
}
