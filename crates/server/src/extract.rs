//! Extractors that answer problem+json: JSON bodies and path parameters. A rejection names
//! the field or parameter and the kind of mistake, and never quotes what the client sent:
//! bodies carry secrets, and serde's messages quote the offending value.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use app::AppError;

use crate::BODY_LIMIT;
use crate::problem::Problem;

/// A JSON body. Wrong content type, oversize, unreadable, malformed, out-of-range numbers
/// and wrong shapes each get their own code.
pub(crate) struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(request.headers()) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "body.content_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(bytes_problem)?;
        parse_json(&bytes).map(Self)
    }
}

/// The route's one path parameter, percent-decoded.
pub(crate) struct Param(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Param {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(path_problem(&rejection)),
        }
    }
}

/// The route's two path parameters, percent-decoded.
pub(crate) struct Params2(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for Params2 {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match Path::<(String, String)>::from_request_parts(parts, state).await {
            Ok(Path((first, second))) => Ok(Self(first, second)),
            Err(rejection) => Err(path_problem(&rejection)),
        }
    }
}

/// The answer to a body over [`BODY_LIMIT`], read or announced.
pub(crate) fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body.too_large",
        format!("the body is over the {} KiB limit", BODY_LIMIT / 1024),
    )
}

/// The answer to a body that could not be read: only the length limit is 413.
pub(crate) fn bytes_problem(rejection: BytesRejection) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large();
    }
    Problem::new(
        StatusCode::BAD_REQUEST,
        "body.unreadable",
        "the body could not be read",
    )
}

/// `bytes` as a `T`, or the problem with them.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let rejection = match Json::<T>::from_bytes(bytes) {
        Ok(Json(value)) => return Ok(value),
        Err(rejection) => rejection,
    };
    // axum's rejection knows the field path but only as display text that embeds serde's
    // message; parsing again (on failure only) gives the `serde_json::Error` itself.
    match serde_json::from_slice::<T>(bytes) {
        Ok(_) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "body.invalid_shape",
            "the body does not have the expected shape",
        )),
        Err(error) => Err(json_problem(&rejection, &error)),
    }
}

fn json_problem(rejection: &JsonRejection, error: &serde_json::Error) -> Problem {
    let place = field_path(rejection, error).unwrap_or_else(|| "body".to_owned());
    let mistake = app::JsonMistake::of(error);
    Problem::new(
        StatusCode::BAD_REQUEST,
        mistake.code,
        match mistake.detail {
            Some(detail) => format!("{place}: {detail}"),
            None => "the body is not valid JSON".to_owned(),
        },
    )
}

/// The field path axum's rejection names (`credential`, `steps[0].model`), if any.
fn field_path(rejection: &JsonRejection, error: &serde_json::Error) -> Option<String> {
    // The rejection reads "<axum's fixed words>: <path>: <serde_json's message>", or
    // without "<path>: " at the top level; cutting serde_json's exact message off the end
    // leaves the path with no guessing about where it stops.
    let text = rejection.body_text();
    let head = text.strip_suffix(&error.to_string())?.strip_suffix(": ")?;
    let (_, mut path) = head.split_once(": ")?;
    if let Some(key) = unknown_key(&error.to_string()) {
        // The last segment is the unknown key itself, which the client chose (a secret
        // pasted as a key would come back): name the object it sits in instead. The key is
        // cut off whole, dots and all; a path that does not end with it is not repeated.
        path = path.strip_suffix(key)?.strip_suffix('.')?;
    }
    // A path names keys, never values; but a map key is a key the client chose, so only
    // short paths of plain characters are repeated.
    let ours = path.len() <= 100
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.[]?".contains(c));
    ours.then(|| path.to_owned())
}

/// The key serde's "unknown field `<key>`, expected …" names: up to the last backtick before
/// serde's own words, as a key may hold backticks and commas itself.
fn unknown_key(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.rsplit_once("`, expected ")
        .or_else(|| rest.rsplit_once("`, there are no fields"))
        .map(|(key, _)| key)
}

/// `application/json` or `application/<anything>+json`, as axum's `Json` accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application") && (subtype == "json" || subtype.ends_with("+json"))
}

fn path_problem(rejection: &PathRejection) -> Problem {
    if rejection.status().is_server_error() {
        // A route asked for a parameter it does not have: our bug, not the client's.
        return Problem::from(AppError::internal(rejection.body_text()));
    }
    let PathRejection::FailedToDeserializePathParams(error) = rejection else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "path.invalid",
            "a path parameter is not valid",
        );
    };
    // The key is the parameter's name in the route template, never the client's text.
    let detail = match error.kind() {
        axum::extract::path::ErrorKind::InvalidUtf8InPathParam { key } => {
            format!("the `{key}` path parameter is not valid UTF-8 once percent-decoded")
        }
        axum::extract::path::ErrorKind::ParseErrorAtKey { key, .. }
        | axum::extract::path::ErrorKind::DeserializeError { key, .. } => {
            format!("the `{key}` path parameter is not valid")
        }
        _ => "a path parameter is not valid".to_owned(),
    };
    Problem::new(StatusCode::BAD_REQUEST, "path.invalid", detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        api_key: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        credential: Option<Inner>,
        max_tokens: Option<serde_json::Value>,
        steps: Option<Vec<Inner>>,
        count: Option<u8>,
    }

    fn problem(body: &str) -> Problem {
        match parse_json::<Outer>(body.as_bytes()) {
            Ok(_) => panic!("{body} parsed"),
            Err(problem) => problem,
        }
    }

    #[test]
    fn shape_errors_name_the_field_and_never_quote_the_value() {
        let cases = [
            (
                r#"{"credential": "sk-canary-1"}"#,
                "credential: found a string, expected struct Inner",
            ),
            (
                r#""sk-canary-2""#,
                "body: found a string, expected struct Outer",
            ),
            (
                r#"{"credential": {"api_key": 12345678}}"#,
                "credential.api_key: found a number, expected a string",
            ),
            (
                r#"{"steps": [{"api_key": "k"}, {"api_key": ["sk-canary-3"]}]}"#,
                "steps[1].api_key: found an array, expected a string",
            ),
            (r#"{"count": 99999}"#, "count: invalid value, expected u8"),
            (
                r#"{"credential": {"api_key": "sk-canary-4", "colour": "sk-canary-5"}}"#,
                "credential: unknown field, expected `api_key`",
            ),
            (
                r#"{"credential": {"sk-canary-6": 1}}"#,
                "credential: unknown field, expected `api_key`",
            ),
            (
                r#"{"credential": {}}"#,
                "credential: missing field `api_key`",
            ),
            // A key with dots is cut off whole, not at its last dot.
            (
                r#"{"credential": {"eyJ.sk-canary-7.sig": 1}}"#,
                "credential: unknown field, expected `api_key`",
            ),
            (
                r#"{"credential": {"eyJ.sk-canary-8`, expected x": 1}}"#,
                "credential: unknown field, expected `api_key`",
            ),
            (
                r#"{"abc.sk-canary-9.x": 1}"#,
                "body: unknown field, expected one of `credential`, `max_tokens`, `steps`, `count`",
            ),
        ];
        for (body, detail) in cases {
            let problem = problem(body);
            assert_eq!(problem.code(), "body.invalid_shape", "{body}");
            assert_eq!(problem.0.detail, detail, "{body}");
            assert!(!problem.0.detail.contains("canary"), "{body}");
            assert!(!problem.0.detail.contains("12345678"), "{body}");
        }
    }

    #[test]
    fn a_number_out_of_range_is_not_malformed_json() {
        let out_of_range = problem(r#"{"max_tokens": 1e400}"#);
        assert_eq!(
            (out_of_range.code(), out_of_range.0.detail.as_str()),
            (
                "body.number_out_of_range",
                "max_tokens: the number is out of range"
            )
        );
        assert_eq!(problem(r#"{"max_tokens": "#).code(), "body.malformed_json");
        assert_eq!(
            problem(r#"{"max_tokens": 1e}"#).code(),
            "body.malformed_json"
        );
        assert_eq!(problem(r#"{} {}"#).code(), "body.malformed_json");
    }

    #[test]
    fn json_content_types() {
        for (value, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/problem+json", true),
            ("text/json", false),
            ("text/plain", false),
            ("application/jsonx", false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().expect("header"));
            assert_eq!(is_json(&headers), json, "{value}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
