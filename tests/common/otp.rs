//! Helpers for the organization and one-time-code tests: switching an organization's methods,
//! driving the code forms of the sign-in page, and real message sinks (an aiosmtpd process
//! and an HTTP server standing in for an SMS provider).

use std::sync::{Arc, Mutex};

use tessera::admin::Actor;
use tessera::authn::methods::AuthConfig;

use super::{Browser, Landing, TestServer, hidden};

pub const REDIRECT: &str = "https://rp.example.com/cb";

/// Saves the organization's methods through the admin domain (with its lock-out guard).
pub async fn set_methods(server: &TestServer, org_id: &str, change: impl FnOnce(&mut AuthConfig)) {
    let app = server.app();
    let org = tessera::store::orgs::find(&app.store, org_id)
        .await
        .unwrap()
        .unwrap();
    let mut config = org.auth_config().unwrap();
    change(&mut config);
    tessera::admin::orgs::set_auth_config(
        &app.store,
        &Actor::cli(),
        org_id,
        &config,
        app.passkeys.is_some(),
    )
    .await
    .expect("configuration saved");
}

/// Posts a form of the sign-in page; returns (status, location or body).
pub async fn post_form(browser: &Browser, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let response = browser
        .http
        .post(format!("{}{path}", browser.base))
        .form(fields)
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    if status == 303 {
        return (
            status,
            response.headers()["location"].to_str().unwrap().to_owned(),
        );
    }
    (status, response.text().await.unwrap())
}

/// Opens the sign-in page for `client_id`; returns (page, PKCE verifier).
pub async fn sign_in_page(browser: &Browser, client_id: &str) -> (String, String) {
    let (url, verifier) = super::authorize_url_at(&browser.base, client_id, REDIRECT, &[]);
    match browser.follow(&url).await {
        Landing::Page(200, page) => (page, verifier),
        Landing::Page(s, p) => panic!("sign-in page expected, got {s}: {p}"),
        Landing::Client(q) => panic!("sign-in page expected, got a redirect {q:?}"),
    }
}

/// Asks for a code on `page`; returns (status, the page shown next).
pub async fn send_code(
    browser: &Browser,
    page: &str,
    channel: &str,
    address: &str,
) -> (u16, String) {
    let request = hidden(page, "request");
    let csrf = hidden(page, "csrf");
    post_form(
        browser,
        "/login/code/send",
        &[
            ("request", &request),
            ("csrf", &csrf),
            ("channel", channel),
            ("address", address),
        ],
    )
    .await
}

/// Types `code` on the code-entry page; returns (status, location or page).
pub async fn verify_code(browser: &Browser, page: &str, code: &str) -> (u16, String) {
    let fields =
        ["request", "csrf", "challenge", "channel", "address"].map(|f| (f, hidden(page, f)));
    let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.push(("code", code));
    post_form(browser, "/login/code/verify", &form).await
}

/// The six-digit code in a message body.
pub fn code_in(text: &str) -> String {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(5))
        .find(|&i| {
            bytes[i..i + 6].iter().all(u8::is_ascii_digit)
                && (i == 0 || !bytes[i - 1].is_ascii_digit())
                && bytes.get(i + 6).is_none_or(|b| !b.is_ascii_digit())
        })
        .map(|i| text[i..i + 6].to_owned())
        .unwrap_or_else(|| panic!("no code in {text:?}"))
}

/// Waits for the demo outbox to hold its `nth` message (1-based) to `to`, and returns that
/// message's code. Delivery runs in the background, so an older message to the same address
/// must not be mistaken for the one just asked for.
pub async fn outbox_code(server: &TestServer, to: &str, nth: usize) -> String {
    for _ in 0..100 {
        let mut to_them: Vec<_> = server
            .app()
            .delivery
            .outbox
            .recent()
            .into_iter()
            .filter(|m| m.to == to)
            .collect();
        to_them.reverse(); // oldest first
        if let Some(m) = to_them.get(nth - 1) {
            return code_in(&m.body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no message number {nth} to {to} in the outbox");
}

/// Requests captured by [`CaptureServer`]: (path, headers, body).
pub type Captured = Arc<Mutex<Vec<(String, axum::http::HeaderMap, String)>>>;

/// A real HTTP server on an ephemeral port that records every request and answers 200 (201
/// for the Twilio-style path, as Twilio does).
pub async fn capture_server() -> (String, Captured) {
    let captured: Captured = Arc::default();
    let sink = captured.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                sink.lock()
                    .unwrap()
                    .push((uri.path().to_owned(), headers, body));
                if uri.path().ends_with("/Messages.json") {
                    (axum::http::StatusCode::CREATED, "{}")
                } else {
                    (axum::http::StatusCode::OK, "{}")
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, captured)
}

pub async fn wait_for_capture(captured: &Captured) -> (String, axum::http::HeaderMap, String) {
    for _ in 0..200 {
        if let Some(first) = captured.lock().unwrap().first().cloned() {
            return first;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the SMS sender made no request");
}

/// An aiosmtpd process listening on a free port, appending messages to a file.
pub struct SmtpSink {
    pub port: u16,
    file: tempfile::NamedTempFile,
    child: std::process::Child,
}

impl SmtpSink {
    /// `None` when the Python interpreter lacks aiosmtpd (see `TESSERA_PYTHON`); fails instead
    /// when `TESSERA_REQUIRE_AIOSMTPD=1` (set by `.ci/run`).
    pub fn start() -> Option<SmtpSink> {
        use std::io::BufRead;
        let python = std::env::var("TESSERA_PYTHON").unwrap_or_else(|_| "python3".into());
        let available = std::process::Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        if !available {
            assert!(
                std::env::var("TESSERA_REQUIRE_AIOSMTPD").as_deref() != Ok("1"),
                "aiosmtpd is required here but {python} cannot import it"
            );
            eprintln!(
                "aiosmtpd not installed for {python}: skipping (CI sets TESSERA_REQUIRE_AIOSMTPD=1)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let file = tempfile::NamedTempFile::new().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/smtp_sink.py");
        let mut child = std::process::Command::new(&python)
            .args([script, &port.to_string(), file.path().to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the SMTP sink");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        Some(SmtpSink { port, file, child })
    }

    /// Waits for a message to `to`; returns its raw text (headers and body).
    pub async fn message_to(&self, to: &str) -> String {
        for _ in 0..250 {
            let text = std::fs::read_to_string(self.file.path()).unwrap_or_default();
            for line in text.lines() {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                if record["to"].as_array().unwrap().iter().any(|t| t == to) {
                    return record["data"].as_str().unwrap().to_owned();
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no email to {to} reached the SMTP server");
    }

    /// Every message to `to` that arrived so far, oldest first, bodies decoded.
    pub fn all_to(&self, to: &str) -> Vec<String> {
        std::fs::read_to_string(self.file.path())
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter(|r| r["to"].as_array().unwrap().iter().any(|t| t == to))
            .map(|r| decoded_body(r["data"].as_str().unwrap()))
            .collect()
    }

    /// Waits for a message to `to` whose text contains `needle` (after decoding a base64 or
    /// quoted-printable body); returns the decoded body.
    pub async fn message_with(&self, to: &str, needle: &str) -> String {
        for _ in 0..250 {
            let found = self.all_to(to).into_iter().find(|m| m.contains(needle));
            if let Some(m) = found {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no message to {to} containing {needle:?} reached the SMTP server");
    }

    pub fn count(&self) -> usize {
        std::fs::read_to_string(self.file.path())
            .unwrap_or_default()
            .lines()
            .count()
    }
}

/// Headers and the body of a raw message, the body decoded from base64 or quoted-printable.
pub fn decoded_body(raw: &str) -> String {
    use base64::Engine;
    let (headers, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let body = if headers.contains("Content-Transfer-Encoding: base64") {
        let joined: String = body.split_whitespace().collect();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(joined)
                .unwrap_or_default(),
        )
        .unwrap_or_default()
    } else if headers.contains("Content-Transfer-Encoding: quoted-printable") {
        body.replace("=\r\n", "").replace("=3D", "=")
    } else {
        body.to_owned()
    };
    format!("{headers}\r\n\r\n{body}")
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
