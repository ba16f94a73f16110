//! The one place a request leaves: sending a prepared [`Call`], reading the answer under the
//! size cap into a [`Reply`], and naming transport failures (DNS, TLS, refused, deadline,
//! blocked destination).

use std::error::Error as _;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::OutcomeClass;
use crate::classify::Verdict;
use crate::outbound::Blocked;

/// A request ready to send: everything a provider module decides, nothing it executes.
pub(crate) struct Call {
    /// POST for every probe; GET for listing models.
    pub(crate) method: reqwest::Method,
    pub(crate) url: String,
    /// Credential headers are marked sensitive, so no `Debug` of the request shows them.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Vec<u8>,
}

impl Call {
    pub(crate) fn json(url: String, body: &serde_json::Value) -> Self {
        Self {
            method: reqwest::Method::POST,
            url,
            headers: vec![(
                reqwest::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body: body.to_string().into_bytes(),
        }
    }

    /// A GET without a body.
    pub(crate) fn get(url: String) -> Self {
        Self {
            method: reqwest::Method::GET,
            url,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header holding (part of) a secret. A secret that cannot be a header value
    /// (a newline, a non-ASCII character) is an unusable credential.
    pub(crate) fn secret_header(&mut self, name: HeaderName, value: &str) -> Result<(), Verdict> {
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            Verdict::new(
                OutcomeClass::AuthInvalid,
                "the credential holds characters that cannot be sent in an HTTP header; copy it again",
            )
        })?;
        value.set_sensitive(true);
        self.headers.push((name, value));
        Ok(())
    }

    pub(crate) fn header(&mut self, name: &'static str, value: &'static str) {
        self.headers.push((
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
}

/// An HTTP answer, body read in full (under the cap).
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Bedrock's error name from `x-amzn-ErrorType` (`ThrottlingException:http://…`).
    pub(crate) fn amzn_error_type(&self) -> Option<String> {
        self.header("x-amzn-errortype")
            .and_then(|t| t.split(':').next())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    }
}

/// Sends `call` and reads the answer. Redirects are not followed (the client has none), so a
/// 3xx comes back as a reply.
pub(crate) async fn execute(
    client: &reqwest::Client,
    call: Call,
    max_body_bytes: usize,
) -> Result<Reply, Verdict> {
    let mut request = client.request(call.method, &call.url);
    if !call.body.is_empty() {
        request = request.body(call.body);
    }
    for (name, value) in call.headers {
        request = request.header(name, value);
    }
    let mut response = request.send().await.map_err(|e| transport_failure(&e))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let too_big = |read: u64| Verdict {
        class: OutcomeClass::BadResponse,
        status: Some(status),
        message: Some(format!(
            "the response body is larger than the {max_body_bytes}-byte cap ({read} bytes or more); a provider's answer to a 16-token test is a few hundred bytes"
        )),
        retry_after: None,
    };
    if let Some(declared) = response.content_length()
        && declared > max_body_bytes as u64
    {
        return Err(too_big(declared));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_failure(&e))? {
        if body.len() + chunk.len() > max_body_bytes {
            return Err(too_big((body.len() + chunk.len()) as u64));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Names a transport failure. The message is built from the error's causes, not its
/// `Display`, which quotes the URL.
pub(crate) fn transport_failure(error: &reqwest::Error) -> Verdict {
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<Blocked>() {
            return Verdict::new(OutcomeClass::DestinationBlocked, blocked.to_string());
        }
        let text = cause.to_string();
        if !causes.iter().any(|seen: &String| seen.contains(&text)) {
            causes.push(text);
        }
        source = cause.source();
    }
    if error.is_timeout() {
        return Verdict::new(OutcomeClass::Timeout, "the provider did not answer in time");
    }
    let what = if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the connection broke while reading the answer"
    } else {
        "the request failed"
    };
    let message = if causes.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {}", causes.join(": "))
    };
    Verdict::new(OutcomeClass::EndpointUnreachable, message)
}
