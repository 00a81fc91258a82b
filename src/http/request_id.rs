//! Request ids and per-request observation: every response carries `x-request-id` (the
//! caller's, when it is well formed, so one id follows a request through a load balancer),
//! the id is on the request's log span, and the request is counted in the metrics by its
//! route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming id that is kept; longer ones are replaced.
const MAX_LEN: usize = 64;

/// Only characters that cannot break a log line or a header are accepted from outside.
fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub fn incoming_or_new(request: &Request) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable(id))
        .map(str::to_owned)
        .unwrap_or_else(new_id)
}

/// Unique, not secret, and cheap: drawing from the system RNG for every request showed in
/// profiles of the prepared GET routes. A random prefix per process, then a counter passed
/// through a keyed bijection (splitmix64's finalizer between two random masks), so ids never
/// repeat within a process and do not read as a count of the requests served.
fn new_id() -> String {
    use base64::Engine;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KEYS: OnceLock<[u8; 24]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let keys = KEYS.get_or_init(crate::security::random_bytes::<24>);
    let mask = |i: usize| u64::from_le_bytes(keys[i..i + 8].try_into().expect("8 bytes"));
    let mut x = COUNTER.fetch_add(1, Ordering::Relaxed) ^ mask(8);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&keys[..8]);
    id[8..].copy_from_slice(&(x ^ mask(16)).to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = incoming_or_new(&request);
    // The template, not the path: paths can carry identifiers, and the metrics need a bounded
    // set of label values.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().clone();
    let header = HeaderValue::from_str(&id).expect("ids are checked or generated header-safe");
    request
        .headers_mut()
        .insert(REQUEST_ID.clone(), header.clone());
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    crate::metrics::global().request(&route, &method, response.status(), elapsed);
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_ms = elapsed.as_millis() as u64,
            "request answered"
        )
    });
    response.headers_mut().insert(REQUEST_ID.clone(), header);
    response
}

#[cfg(test)]
mod tests {
    use super::{acceptable, new_id};

    #[test]
    fn only_short_safe_ids_are_accepted() {
        assert!(acceptable("abc-123_DEF.4:5"));
        assert!(acceptable(&"a".repeat(64)));
        assert!(!acceptable(&"a".repeat(65)));
        assert!(!acceptable(""));
        assert!(!acceptable("a b"));
        assert!(!acceptable("a\r\nSet-Cookie: x"));
        assert!(!acceptable("<script>"));
    }

    #[test]
    fn new_ids_are_acceptable_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| acceptable(id) && id.len() == 22));
        let prefixes: std::collections::HashSet<&str> = ids.iter().map(|id| &id[..10]).collect();
        assert_eq!(prefixes.len(), 1, "one prefix per process");
    }
}
