//! A minimal HTTP/1.1 client for load generation: keep-alive connections that write whole
//! prepared requests and read `Content-Length` framed answers.

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive HTTP/1.1 connection: a load generator's client (like wrk's), so the bench
/// spends little CPU on its own side and every server is driven the same way. It sends one
/// prepared GET again and again (`call`), or any request given (`call_with`).
pub(crate) struct Connection {
    stream: TcpStream,
    request: Vec<u8>,
    buffer: Vec<u8>,
    /// Bytes of `buffer` read from the socket.
    filled: usize,
    /// Bytes of `buffer` that belong to the answer already returned.
    consumed: usize,
}

impl Connection {
    pub(crate) async fn open(addr: &str, path: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        Ok(Self {
            stream,
            request: request.into_bytes(),
            buffer: vec![0; 16 * 1024],
            filled: 0,
            consumed: 0,
        })
    }

    /// Sends the prepared GET and reads one answer: its status and body.
    pub(crate) async fn call(&mut self) -> anyhow::Result<(u16, &[u8])> {
        self.compact();
        self.stream.write_all(&self.request).await?;
        let (status, _, body) = self.receive().await?;
        Ok((status, body))
    }

    /// Sends `request` (a whole HTTP/1.1 request) and reads one answer: status, head, body.
    pub(crate) async fn call_with(&mut self, request: &[u8]) -> anyhow::Result<(u16, &str, &[u8])> {
        self.compact();
        self.stream.write_all(request).await?;
        self.receive().await
    }

    /// Drops the answer already returned from the buffer.
    fn compact(&mut self) {
        if self.consumed > 0 {
            self.buffer.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
            self.consumed = 0;
        }
    }

    /// Reads one answer (`Content-Length` framed; the servers here answer so).
    async fn receive(&mut self) -> anyhow::Result<(u16, &str, &[u8])> {
        let head_end = loop {
            if let Some(at) = find(&self.buffer[..self.filled], b"\r\n\r\n") {
                break at + 4;
            }
            self.read_more().await?;
        };
        let (status, length) = {
            let head = std::str::from_utf8(&self.buffer[..head_end])
                .context("an answer head that is not UTF-8")?;
            let status: u16 = head
                .get(9..12)
                .and_then(|code| code.parse().ok())
                .with_context(|| format!("no status line in {head:?}"))?;
            let length: usize = head
                .split("\r\n")
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())
                        .flatten()
                })
                .with_context(|| format!("an answer without Content-Length: {head:?}"))?;
            (status, length)
        };
        let end = head_end + length;
        while self.filled < end {
            self.read_more().await?;
        }
        self.consumed = end;
        let head = std::str::from_utf8(&self.buffer[..head_end]).unwrap_or_default();
        Ok((status, head, &self.buffer[head_end..end]))
    }

    async fn read_more(&mut self) -> anyhow::Result<()> {
        if self.filled == self.buffer.len() {
            self.buffer.resize(self.buffer.len() * 2, 0);
        }
        let read = self.stream.read(&mut self.buffer[self.filled..]).await?;
        if read == 0 {
            bail!("the server closed the connection");
        }
        self.filled += read;
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
