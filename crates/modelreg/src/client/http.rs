//! The registry's HTTP client: requests with the token, an `If-Match` or a query, sent under
//! the CLI's timeouts; answers read as the wire contract's types, and errors that say what
//! went wrong (the registry's problem, or what answered instead of it).

use std::fmt;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::args::Remote;

/// How long opening a connection to the registry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take: above the longest long poll the CLI asks for.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);
/// How much of a body that is not the registry's JSON an error message quotes.
const BODY_PREFIX_CHARS: usize = 300;

/// A client of one registry, with the caller's token and output mode.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    /// Print the API's JSON answers instead of summaries (`--json`).
    pub(crate) json: bool,
}

impl Client {
    pub(crate) fn new(remote: &Remote) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self {
            http,
            base: remote.server.trim_end_matches('/').to_owned(),
            token: api_token(remote)?,
            json: remote.json,
        })
    }

    pub(crate) fn get(&self, path: &str) -> Request<'_> {
        self.request(Method::GET, path)
    }

    pub(crate) fn post(&self, path: &str) -> Request<'_> {
        self.request(Method::POST, path)
    }

    pub(crate) fn put(&self, path: &str) -> Request<'_> {
        self.request(Method::PUT, path)
    }

    pub(crate) fn patch(&self, path: &str) -> Request<'_> {
        self.request(Method::PATCH, path)
    }

    pub(crate) fn delete(&self, path: &str) -> Request<'_> {
        self.request(Method::DELETE, path)
    }

    fn request(&self, method: Method, path: &str) -> Request<'_> {
        Request {
            client: self,
            builder: self
                .http
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(&self.token),
        }
    }

    /// A 2xx answer as the type the contract names for it. A body that is not that type is
    /// an error, not an empty value: it is what a wrong `--server` looks like.
    fn read<T: DeserializeOwned>(
        &self,
        status: StatusCode,
        text: &str,
    ) -> anyhow::Result<Answer<T>> {
        let Ok(json) = serde_json::from_str::<Value>(text) else {
            bail!(
                "{} answered {status} with something other than the registry's JSON; is --server (MODELREG_SERVER) the registry's URL? The answer began: {}",
                self.base,
                prefix(text)
            );
        };
        match T::deserialize(&json) {
            Ok(value) => Ok(Answer { value, json }),
            // Neither the answer nor serde's message (which quotes the value it met) is
            // repeated: a registry's answer may hold a credential (resolve, a new token).
            Err(error) => Err(anyhow!(
                "{} answered {status} with JSON that is not the registry's answer ({}); is --server (MODELREG_SERVER) the registry's URL, and the registry as new as this CLI?",
                self.base,
                app::JsonMistake::of(&error)
                    .detail
                    .unwrap_or_else(|| "not the expected shape".to_owned())
            )),
        }
    }

    fn unreachable(&self, error: reqwest::Error) -> anyhow::Error {
        let what = if error.is_builder() {
            "cannot build the request".to_owned()
        } else if error.is_connect() {
            format!(
                "cannot reach the registry at {}: is `modelreg serve` running? (--server / MODELREG_SERVER)",
                self.base
            )
        } else if error.is_timeout() {
            format!(
                "the registry at {} did not answer within {} s",
                self.base,
                REQUEST_TIMEOUT.as_secs()
            )
        } else {
            format!("no answer from the registry at {}", self.base)
        };
        anyhow::Error::new(error).context(what)
    }
}

/// One request being built; [`Request::answer`] sends it.
pub(crate) struct Request<'a> {
    client: &'a Client,
    builder: reqwest::RequestBuilder,
}

impl Request<'_> {
    /// The JSON body: one of the contract's request types.
    pub(crate) fn body<B: Serialize>(self, body: &B) -> Self {
        Self {
            builder: self.builder.json(body),
            ..self
        }
    }

    /// The query: one of the contract's query types.
    pub(crate) fn query<Q: Serialize>(self, query: &Q) -> Self {
        Self {
            builder: self.builder.query(query),
            ..self
        }
    }

    /// Refuse the command unless its target is still at `version`.
    pub(crate) fn if_match(self, version: Option<u64>) -> Self {
        match version {
            Some(version) => Self {
                builder: self.builder.header("if-match", format!("\"{version}\"")),
                ..self
            },
            None => self,
        }
    }

    /// Sends the request: the answer as `T` on success, else an [`ApiError`] (or, when nothing
    /// usable came back, an error that says what to check).
    pub(crate) async fn answer<T: DeserializeOwned>(self) -> anyhow::Result<Answer<T>> {
        let client = self.client;
        let response = self
            .builder
            .send()
            .await
            .map_err(|e| client.unreachable(e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| client.unreachable(e))?;
        if !status.is_success() {
            return Err(ApiError::of(status, &client.base, &text).into());
        }
        client.read(status, &text)
    }
}

/// A success answer: the typed value people's output is made from, and the JSON as received,
/// which `--json` prints whole so that no field is lost (not even one this CLI does not know).
pub(crate) struct Answer<T> {
    pub(crate) value: T,
    json: Value,
}

impl<T> Answer<T> {
    /// The JSON as received, pretty-printed.
    pub(crate) fn pretty(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(&self.json)?)
    }
}

/// An error answer from the registry (or whatever answered at its URL), kept whole so that
/// callers act on its `code` and fields instead of matching its text.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    /// The URL the CLI spoke to.
    server: String,
    body: ErrorBody,
}

#[derive(Debug)]
enum ErrorBody {
    /// The registry's problem+json.
    Problem(Box<api::Problem>),
    /// A capped prefix of a body that is not the registry's problem (a proxy's error page).
    Other(String),
}

impl ApiError {
    fn of(status: StatusCode, server: &str, text: &str) -> Self {
        let body = match serde_json::from_str::<api::Problem>(text) {
            Ok(problem) => ErrorBody::Problem(Box::new(problem)),
            Err(_) => ErrorBody::Other(prefix(text)),
        };
        Self {
            status,
            server: server.to_owned(),
            body,
        }
    }

    /// The registry's problem, when the answer was one.
    pub(crate) fn problem(&self) -> Option<&api::Problem> {
        match &self.body {
            ErrorBody::Problem(problem) => Some(problem),
            ErrorBody::Other(_) => None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let problem = match &self.body {
            ErrorBody::Problem(problem) => problem,
            ErrorBody::Other(text) => {
                let text = if text.is_empty() {
                    "(empty body)"
                } else {
                    text
                };
                return write!(
                    f,
                    "{} from {} (not a registry answer): {text}",
                    self.status, self.server
                );
            }
        };
        // A problem about one field says it once, on that field's line.
        let said_by_a_field = problem
            .errors
            .iter()
            .any(|error| error.detail == problem.detail && error.code == problem.code);
        if said_by_a_field {
            write!(f, "{}:", self.status)?;
        } else {
            write!(f, "{}: {} ({})", self.status, problem.detail, problem.code)?;
        }
        for error in &problem.errors {
            write!(f, "\n  {}: {} ({})", error.field, error.detail, error.code)?;
        }
        for model in &problem.models {
            write!(f, "\n  used by {model}")?;
        }
        for failure in &problem.failures {
            write!(
                f,
                "\n  {}: {} ({})",
                failure.model, failure.hint, failure.class
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// The API token, refused here when it is empty or not one token: the server would only
/// answer 401 to `Bearer ` and could not say why.
fn api_token(remote: &Remote) -> anyhow::Result<String> {
    // An empty MODELREG_TOKEN_FILE= (as a template leaves it) means no token file.
    let token_file = remote.token_file.as_deref().filter(|path| !path.is_empty());
    let (token, source) = match (token_file, std::env::var("MODELREG_TOKEN")) {
        (Some(path), _) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read token file {path}"))?
                .trim()
                .to_owned(),
            format!("token file {path}"),
        ),
        (None, Ok(token)) => (token.trim().to_owned(), "MODELREG_TOKEN".to_owned()),
        (None, Err(std::env::VarError::NotUnicode(_))) => {
            bail!("MODELREG_TOKEN is not valid UTF-8")
        }
        (None, Err(std::env::VarError::NotPresent)) => {
            bail!("no API token: set MODELREG_TOKEN or MODELREG_TOKEN_FILE (or --token-file)")
        }
    };
    if token.is_empty() {
        bail!("{source} is empty: it must hold an API token");
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("{source} holds more than a token (spaces or line breaks inside it)");
    }
    Ok(token)
}

/// The start of a body that is not the registry's JSON, on one line and capped, for an
/// error message (an HTML error page from a proxy, say).
fn prefix(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= BODY_PREFIX_CHARS {
        return flat;
    }
    let mut capped: String = flat.chars().take(BODY_PREFIX_CHARS).collect();
    capped.push('…');
    capped
}

/// What a path segment keeps as it is: RFC 3986's unreserved characters. Everything else
/// (`/`, `?`, `#`, `%`, spaces, non-ASCII) is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `value` as one path segment, so a slug typed as `x?confirm=true` stays a (not found) slug
/// instead of becoming a query. A segment of dots alone (`.`, `..`) would be resolved away
/// by URL parsing, moving the request to another route, so its dots are sent encoded twice:
/// the registry reads `%2E` back, a name no slug or id has.
pub(crate) fn segment(value: &str) -> String {
    if !value.is_empty() && value.chars().all(|c| c == '.') {
        return value.replace('.', "%252E");
    }
    utf8_percent_encode(value, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("team-gpt"), "team-gpt");
        assert_eq!(segment("x?confirm=true"), "x%3Fconfirm%3Dtrue");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("é"), "%C3%A9");
        // Dots alone would be resolved away by URL parsing and reach another route.
        for dots in [".", ".."] {
            let url = reqwest::Url::parse(&format!(
                "http://127.0.0.1/v1/models/{}/workflows",
                segment(dots)
            ))
            .expect("a URL");
            assert!(url.path().starts_with("/v1/models/%252E"), "{url}");
            assert!(url.path().ends_with("/workflows"), "{url}");
        }
        assert_eq!(segment("gpt-4.1"), "gpt-4.1");
    }

    /// An answer of another shape is an error that repeats neither the answer nor the value
    /// serde met: a registry's answer may hold a credential.
    #[test]
    fn an_answer_of_another_shape_is_not_repeated() {
        let client = Client {
            http: reqwest::Client::new(),
            base: "http://127.0.0.1:8080".into(),
            token: String::new(),
            json: false,
        };
        let answer = r#"{"moved": "sk-canary-123456", "position": 3}"#;
        let Err(error) = client.read::<api::Positioned<api::ViewsPosition>>(StatusCode::OK, answer)
        else {
            panic!("{answer} was read as a token");
        };
        let text = format!("{error:#}");
        assert!(!text.contains("canary"), "{text}");
        assert!(text.contains("not the registry's answer"), "{text}");
    }

    #[test]
    fn every_field_error_is_shown_with_its_name_and_code() {
        let mut problem = api::Problem::new(422, "provider.unknown", "unknown provider");
        problem.errors = vec![
            api::FieldProblem {
                field: "provider".into(),
                code: "provider.unknown".into(),
                detail: "unknown provider".into(),
            },
            api::FieldProblem {
                field: "max_tokens".into(),
                code: "max_tokens.too_large".into(),
                detail: "too large".into(),
            },
        ];
        let body = serde_json::to_string(&problem).expect("problem");
        let error = ApiError::of(
            StatusCode::UNPROCESSABLE_ENTITY,
            "http://127.0.0.1:8080",
            &body,
        );
        assert_eq!(
            error.problem().map(|p| p.code.as_str()),
            Some("provider.unknown")
        );
        assert_eq!(
            error.to_string(),
            "422 Unprocessable Entity:\n  provider: unknown provider (provider.unknown)\n  max_tokens: too large (max_tokens.too_large)",
            "each problem once, with its field and code"
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_quoted_capped() {
        let page = format!(
            "<html>\n<h1>502 Bad Gateway</h1>{}</html>",
            "x".repeat(1000)
        );
        let error = ApiError::of(StatusCode::BAD_GATEWAY, "http://proxy", &page);
        let text = error.to_string();
        assert!(
            text.starts_with("502 Bad Gateway from http://proxy (not a registry answer): <html> <h1>502 Bad Gateway</h1>"),
            "{text}"
        );
        assert!(text.ends_with('…') && text.chars().count() < 400, "{text}");
    }
}
