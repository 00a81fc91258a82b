//! Sends hostile requests and checks what every answer must satisfy whatever the case: no
//! 5xx, no redirect off the allow-list, nothing hostile reflected unescaped, and a server that
//! still answers a normal request afterwards. Mismatches are collected, so one run reports
//! every failing case together with the figures.

use std::time::Duration;

use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::TestServer;

/// Injected into values that may be reflected: a page or header containing it raw is an XSS.
pub const MARKUP: &str = "\"><script>alert(7)</script><img src=x onerror=alert(7)>";
const RAW_MARKERS: &[&str] = &["<script>alert(7)", "<img src=x", "onerror=alert(7)>"];

pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub content_type: String,
    pub www_authenticate: Option<String>,
    pub body: String,
}

impl Answer {
    /// The `error` member of a JSON body, or of the query of a redirect.
    pub fn error(&self) -> Option<String> {
        if let Some(location) = &self.location {
            let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
            return form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "error")
                .map(|(_, v)| v.into_owned());
        }
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
    }
}

/// A client that opens a new connection for every request: after an early 413 the server
/// closes its side, and a pooled connection could fail the next request for that reason only.
pub fn unpooled_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

pub struct Hostile<'a> {
    pub server: &'a TestServer,
    pub http: reqwest::Client,
    /// Sends the normal request after each case, on a connection of its own.
    probe_http: reqwest::Client,
    /// Where requests go: the server's address, or its issuer when cookies are bound to it.
    base: String,
    /// Where a redirect may lead: registered URIs and Tessera's own paths.
    allowed_redirects: Vec<String>,
    pub sent: usize,
    pub server_errors: usize,
    failures: Vec<String>,
}

impl<'a> Hostile<'a> {
    pub fn new(server: &'a TestServer, http: reqwest::Client, allowed: &[&str]) -> Self {
        Hostile {
            server,
            http,
            probe_http: unpooled_client(),
            base: server.url.clone(),
            allowed_redirects: allowed.iter().map(|s| s.to_string()).collect(),
            sent: 0,
            server_errors: 0,
            failures: Vec::new(),
        }
    }

    /// Sends to the issuer's origin (`http://localhost:PORT`), where a browser's cookies are.
    pub fn via_issuer(mut self) -> Self {
        self.base = self.server.issuer();
        self
    }

    pub fn fail(&mut self, label: &str, message: String) {
        self.failures.push(format!("{label}: {message}"));
    }

    /// Sends one request; `None` when the server closed the connection instead of answering
    /// (only acceptable for oversized requests, which the caller says with `may_close`).
    pub async fn send(
        &mut self,
        label: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Option<Answer> {
        // The `http` crate refuses URIs over 64 KiB; such requests go out byte for byte.
        if path.len() > 60 * 1024 {
            let head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
            let status = self.send_raw(label, head.as_bytes(), 0).await?;
            return Some(Answer {
                status,
                location: None,
                content_type: String::new(),
                www_authenticate: None,
                body: String::new(),
            });
        }
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.sent += 1;
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                // A server may answer 413 from Content-Length alone and close while the client
                // is still writing: the client then sees a broken request, not the answer.
                if !e.is_request() {
                    self.fail(label, format!("transport error {e}"));
                }
                self.probe(label).await;
                return None;
            }
        };
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let mut answer = Answer {
            status: response.status().as_u16(),
            location: header("location"),
            content_type: header("content-type").unwrap_or_default(),
            www_authenticate: header("www-authenticate"),
            body: String::new(),
        };
        for value in response.headers().values() {
            let text = String::from_utf8_lossy(value.as_bytes());
            if text.contains('<') || RAW_MARKERS.iter().any(|m| text.contains(m)) {
                self.fail(label, format!("markup reflected into a header: {text}"));
            }
        }
        answer.body = response.text().await.unwrap_or_default();
        self.check_answer(label, &answer);
        self.probe(label).await;
        Some(answer)
    }

    /// A request written byte for byte on a new connection (what reqwest refuses to send:
    /// invalid UTF-8 in the target, bodies without a length). Returns the status, if any.
    pub async fn send_raw(
        &mut self,
        label: &str,
        head: &[u8],
        chunked_body_bytes: usize,
    ) -> Option<u16> {
        self.sent += 1;
        let addr = self.server.url.trim_start_matches("http://").to_owned();
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let (mut reader, mut writer) = stream.into_split();
        let read = tokio::spawn(async move {
            let mut received = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        received.extend_from_slice(&buf[..n]);
                        if received.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            received
        });
        let head = head.to_vec();
        let write = tokio::spawn(async move {
            if writer.write_all(&head).await.is_err() {
                return;
            }
            let chunk = vec![b'a'; 64 * 1024];
            let mut sent = 0;
            while sent < chunked_body_bytes {
                let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                if writer.write_all(&frame).await.is_err() {
                    return;
                }
                sent += chunk.len();
            }
            let _ = writer.write_all(b"0\r\n\r\n").await;
        });
        let received = tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        write.abort();
        let text = String::from_utf8_lossy(&received).into_owned();
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|s| s.parse::<u16>().ok());
        match status {
            Some(s) if s >= 500 => {
                self.server_errors += 1;
                self.fail(label, format!("answered {s}"));
            }
            None => self.fail(label, format!("no HTTP answer: {text:?}")),
            _ => {}
        }
        if RAW_MARKERS.iter().any(|m| text.contains(m)) {
            self.fail(label, "markup reflected unescaped".into());
        }
        self.probe(label).await;
        status
    }

    fn check_answer(&mut self, label: &str, answer: &Answer) {
        if answer.status >= 500 {
            self.server_errors += 1;
            self.fail(
                label,
                format!("answered {}: {}", answer.status, answer.body),
            );
        }
        if RAW_MARKERS.iter().any(|m| answer.body.contains(m)) {
            self.fail(label, "markup reflected unescaped into the body".into());
        }
        if answer.body.contains("panicked") || answer.body.contains("stack backtrace") {
            self.fail(label, "a panic or stack trace leaked".into());
        }
        if let Some(location) = &answer.location {
            let own_path = (location.starts_with('/') && !location.starts_with("//"))
                || location.starts_with(&format!("{}/", self.server.issuer()));
            let registered = self
                .allowed_redirects
                .iter()
                .any(|r| location == r || location.starts_with(&format!("{r}?")));
            if !own_path && !registered {
                self.fail(label, format!("redirect off the allow-list: {location}"));
            }
        }
    }

    /// The server still answers a normal request correctly.
    pub async fn probe(&mut self, label: &str) {
        let ok = match self
            .probe_http
            .get(format!("{}/.well-known/openid-configuration", self.base))
            .send()
            .await
        {
            Ok(r) => r.status() == 200 && r.text().await.is_ok_and(|b| b.contains("\"issuer\"")),
            Err(_) => false,
        };
        if !ok {
            self.fail(label, "the next normal request failed".into());
        }
    }

    pub fn expect_status(&mut self, label: &str, answer: &Option<Answer>, status: u16) {
        match answer {
            Some(a) if a.status == status => {}
            Some(a) => {
                let body: String = a.body.chars().take(200).collect();
                self.fail(label, format!("expected {status}, got {} {body}", a.status))
            }
            None if status == 413 => {}
            None => self.fail(label, format!("expected {status}, the connection closed")),
        }
    }

    /// An OAuth error answer (JSON body, or the query of a redirect to the client).
    pub fn expect_error(&mut self, label: &str, answer: &Option<Answer>, status: u16, code: &str) {
        self.expect_status(label, answer, status);
        if let Some(a) = answer
            && a.error().as_deref() != Some(code)
        {
            self.fail(label, format!("expected error {code}, got {:?}", a.error()));
        }
    }

    /// A page shown to the person, with no redirect anywhere.
    pub fn expect_page(&mut self, label: &str, answer: &Option<Answer>, status: u16) {
        self.expect_status(label, answer, status);
        if let Some(a) = answer
            && (a.location.is_some() || !a.content_type.starts_with("text/html"))
        {
            self.fail(
                label,
                format!("expected a page, got {:?} {}", a.location, a.content_type),
            );
        }
    }

    /// Prints the figures and fails with every mismatch at once.
    pub fn finish(self, suite: &str) {
        println!(
            "hostile input ({suite}): {} cases sent, {} answered with 5xx, {} mismatches",
            self.sent,
            self.server_errors,
            self.failures.len()
        );
        assert!(
            self.failures.is_empty(),
            "{suite}: {} mismatches:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        assert_eq!(self.server_errors, 0);
    }
}
