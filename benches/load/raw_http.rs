//! The generator's token-endpoint connection: one keep-alive HTTP/1.1 connection that writes a
//! `POST` and reads one response, nothing more.
//!
//! Why not reqwest, which the rest of the harness uses: on the token phases reqwest (its pool,
//! its tower stack, header maps, a task per connection) cost the generator about 160 µs of CPU
//! per request, on the same two cores as the server it measures, so roughly a quarter of the
//! machine went to the client. This writes a prepared request and parses the status line and
//! `Content-Length` (or chunks) itself. Both providers are driven by it, so the comparison
//! stays like for like; it only leaves the servers more of the machine.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::R;

/// Largest response head or body accepted (a token response is about 2 KiB).
const MAX_RESPONSE: usize = 1 << 20;

pub struct TokenConn {
    /// `host:port`, for connecting and for the `Host` header.
    authority: String,
    /// The request line and headers that do not change between requests, ending before
    /// `Content-Length`.
    head: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    timeout: Duration,
}

/// One answer: its status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl TokenConn {
    /// `url` is `http://host:port/path`; `authorization` the whole header value.
    pub fn new(url: &str, authorization: &str, timeout: Duration) -> R<TokenConn> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: {authorization}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n"
        );
        Ok(TokenConn {
            authority: authority.to_owned(),
            head,
            stream: None,
            buf: Vec::with_capacity(8 * 1024),
            timeout,
        })
    }

    /// Posts `form` and reads the answer. A connection the server closed while it sat idle is
    /// reopened once, as any keep-alive client does; any other failure drops the connection.
    pub async fn post(&mut self, form: &str) -> R<Answer> {
        let reused = self.stream.is_some();
        match tokio::time::timeout(self.timeout, self.exchange(form)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(Failure::ClosedBeforeAnswer)) if reused => {
                self.stream = None;
                match tokio::time::timeout(self.timeout, self.exchange(form)).await {
                    Ok(Ok(answer)) => Ok(answer),
                    Ok(Err(e)) => Err(self.fail(e)),
                    Err(_) => Err(self.fail(Failure::Other("timed out".into()))),
                }
            }
            Ok(Err(e)) => Err(self.fail(e)),
            Err(_) => Err(self.fail(Failure::Other("timed out".into()))),
        }
    }

    fn fail(&mut self, failure: Failure) -> String {
        self.stream = None;
        match failure {
            Failure::ClosedBeforeAnswer => "connection closed before an answer".into(),
            Failure::Other(e) => e,
        }
    }

    async fn exchange(&mut self, form: &str) -> Result<Answer, Failure> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.authority)
                .await
                .map_err(|e| Failure::Other(format!("connect {}: {e}", self.authority)))?;
            stream
                .set_nodelay(true)
                .map_err(|e| Failure::Other(e.to_string()))?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected above");
        let request = format!("{}Content-Length: {}\r\n\r\n{form}", self.head, form.len());
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|_| Failure::ClosedBeforeAnswer)?;
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_RESPONSE {
                return Err(Failure::Other("response head too large".into()));
            }
            if read_more(stream, &mut self.buf).await? == 0 {
                return Err(if self.buf.is_empty() {
                    Failure::ClosedBeforeAnswer
                } else {
                    Failure::Other("connection closed inside the response head".into())
                });
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| Failure::Other("response head is not UTF-8".into()))?;
        let status = head
            .get(9..12)
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|_| head.starts_with("HTTP/1.1 ") || head.starts_with("HTTP/1.0 "))
            .ok_or_else(|| Failure::Other(format!("bad status line: {:.40}", head)))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = head.starts_with("HTTP/1.0 ");
        for line in head.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let body = if chunked {
            self.read_chunked(head_end).await?
        } else {
            let length =
                length.ok_or_else(|| Failure::Other("response without Content-Length".into()))?;
            if length > MAX_RESPONSE {
                return Err(Failure::Other("response body too large".into()));
            }
            let stream = self.stream.as_mut().expect("connected above");
            while self.buf.len() < head_end + length {
                if read_more(stream, &mut self.buf).await? == 0 {
                    return Err(Failure::Other("connection closed inside the body".into()));
                }
            }
            self.buf[head_end..head_end + length].to_vec()
        };
        if close {
            self.stream = None;
        }
        Ok(Answer { status, body })
    }

    /// RFC 9112 §7.1: size line, data, CRLF, until a zero-size chunk (trailers are skipped).
    async fn read_chunked(&mut self, mut at: usize) -> Result<Vec<u8>, Failure> {
        let stream = self.stream.as_mut().expect("connected");
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf[at..], b"\r\n") {
                    break at + i;
                }
                if read_more(stream, &mut self.buf).await? == 0 {
                    return Err(Failure::Other("connection closed inside a chunk".into()));
                }
            };
            let size_text = std::str::from_utf8(&self.buf[at..line_end]).unwrap_or("");
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| Failure::Other(format!("bad chunk size {size_text:?}")))?;
            at = line_end + 2;
            if size == 0 {
                // Trailers (none expected), then the final CRLF.
                while find(&self.buf[at..], b"\r\n").is_none() {
                    if read_more(stream, &mut self.buf).await? == 0 {
                        break;
                    }
                }
                return Ok(body);
            }
            if body.len() + size > MAX_RESPONSE {
                return Err(Failure::Other("response body too large".into()));
            }
            while self.buf.len() < at + size + 2 {
                if read_more(stream, &mut self.buf).await? == 0 {
                    return Err(Failure::Other("connection closed inside a chunk".into()));
                }
            }
            body.extend_from_slice(&self.buf[at..at + size]);
            at += size + 2;
        }
    }
}

enum Failure {
    /// Nothing of an answer arrived: the server had closed the idle connection.
    ClosedBeforeAnswer,
    Other(String),
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, Failure> {
    let mut chunk = [0u8; 8 * 1024];
    match stream.read(&mut chunk).await {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        Err(_) if buf.is_empty() => Err(Failure::ClosedBeforeAnswer),
        Err(e) => Err(Failure::Other(format!("read: {e}"))),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
