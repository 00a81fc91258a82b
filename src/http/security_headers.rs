//! Security headers on every response. The CSP forbids inline script and framing; pages load
//! only same-origin scripts and styles; images may also come from https (organization logos).
//!
//! Each header is a `tower_http` layer with a concrete future rather than one `from_fn`
//! middleware: that boxed the rest of the stack on every request, which showed in profiles of
//! the prepared GET routes (discovery, JWKS).

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
                   connect-src 'self'; font-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The headers, each replacing any value a handler set.
fn headers(hsts: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut all = vec![
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        // Codes and tokens travel in URLs of these pages: never leak them to another site.
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    if hsts {
        all.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    all
}

/// `router` with [`headers`] on every response, the fallback's included.
pub fn add<S: Clone + Send + Sync + 'static>(router: Router<S>, hsts: bool) -> Router<S> {
    headers(hsts)
        .into_iter()
        .fold(router, |router, (name, value)| {
            router.layer(SetResponseHeaderLayer::overriding(name, value))
        })
}
