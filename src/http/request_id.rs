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
        .unwrap_or_else(crate::security::random_id)
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
    use super::acceptable;

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
}
