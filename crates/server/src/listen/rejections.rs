//! hyper's own rejections as problem+json. hyper answers a request it cannot parse (a
//! malformed request line or header, a URI over its limit, too many or too large headers, an
//! unknown HTTP version) itself, with a bare status and no body, before any handler runs,
//! and offers no hook to shape that answer. This wrapper of the connection recognises such an
//! answer as hyper writes it and writes a problem+json answer of the same status instead.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::problem::Problem;

/// A connection whose bodiless error answers from hyper become problem+json.
pub(crate) struct ProblemAnswers<S> {
    inner: S,
    /// The replacement answer and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<S> ProblemAnswers<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            replacement: None,
        }
    }
}

impl<S: AsyncWrite + Unpin> ProblemAnswers<S> {
    /// Writes what is left of a replacement answer; ready once it is all written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = self.replacement.as_mut() {
            if *written == bytes.len() {
                self.replacement = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `head` (all hyper writes) in place of the inner stream when it is hyper's own
    /// rejection; true when it did.
    fn replaced(&mut self, head: &[u8]) -> bool {
        let Some(answer) = replacement_for(head) else {
            return false;
        };
        self.replacement = Some((answer, 0));
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProblemAnswers<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProblemAnswers<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_replacement(cx))?;
        if self.replaced(buf) {
            // hyper closes the connection after a rejection: flush and shutdown finish the
            // replacement if the socket did not take it all now.
            let _ = self.poll_replacement(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_replacement(cx))?;
        // hyper writes a head as one slice; a rejection has nothing after it.
        if let Some(first) = bufs.first()
            && self.replaced(first)
        {
            let _ = self.poll_replacement(cx)?;
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The problem+json answer that stands in for `head` when `head` is one of hyper's own
/// rejections: a status hyper answers a parse error with, and no `content-type` (every
/// answer of ours to a bad request is problem+json, so it has one).
fn replacement_for(head: &[u8]) -> Option<Vec<u8>> {
    let rest = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))?;
    let status = rest.get(..3)?;
    let problem = match status {
        b"400" => Problem::new(
            axum::http::StatusCode::BAD_REQUEST,
            "request.malformed",
            "the request is not well-formed HTTP/1.1 (request line or a header)",
        ),
        b"414" => Problem::new(
            axum::http::StatusCode::URI_TOO_LONG,
            "request.uri_too_long",
            "the request's path and query are longer than the server reads",
        ),
        b"431" => Problem::new(
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request.headers_too_large",
            "the request has more headers, or larger ones, than the server reads",
        ),
        b"505" => Problem::new(
            axum::http::StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "request.http_version",
            "the server speaks HTTP/1.1 (and 1.0)",
        ),
        _ => return None,
    };
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let has_content_type = head[..end]
        .split(|&b| b == b'\n')
        .any(|line| line.len() >= 13 && line[..13].eq_ignore_ascii_case(b"content-type:"));
    if has_content_type {
        return None;
    }
    let body = serde_json::to_vec(&*problem.0).unwrap_or_default();
    let reason = match status {
        b"400" => "Bad Request",
        b"414" => "URI Too Long",
        b"431" => "Request Header Fields Too Large",
        _ => "HTTP Version Not Supported",
    };
    let mut answer = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        String::from_utf8_lossy(status),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bodiless_rejection_is_replaced() {
        let hyper_400 = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let answer = String::from_utf8(replacement_for(hyper_400).expect("replaced")).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(answer.contains("content-type: application/problem+json"));
        assert!(answer.ends_with("}"), "{answer}");
        assert!(
            answer.contains("\"code\":\"request.malformed\""),
            "{answer}"
        );
        let ours = b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(replacement_for(ours), None, "our own answers pass");
        for passing in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"{\"body\": 1}",
            b"HTTP/1.1 431",
        ] {
            assert_eq!(replacement_for(passing), None);
        }
        for status in ["414", "431", "505"] {
            let head = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            let answer = replacement_for(head.as_bytes()).expect("replaced");
            assert!(answer.starts_with(format!("HTTP/1.1 {status} ").as_bytes()));
        }
    }
}
