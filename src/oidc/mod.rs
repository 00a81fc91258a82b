//! Protocol endpoints: thin handlers over the checks, grants and token builders below them.

pub mod authorize;
pub mod device_authorization;
pub mod discovery;
pub mod end_session;
pub mod introspect;
pub mod jwks;
pub mod revoke;
pub mod scope;
pub mod token;
pub mod userinfo;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery::handler))
        .route("/jwks", get(jwks::handler))
        .route(
            "/authorize",
            get(authorize::get_handler).post(authorize::post_handler),
        )
        .route("/authorize/resume", get(authorize::resume_handler))
        .route("/token", post(token::handler))
        .route("/device_authorization", post(device_authorization::handler))
        .route("/userinfo", get(userinfo::handler).post(userinfo::handler))
        .route("/revoke", post(revoke::handler))
        .route("/introspect", post(introspect::handler))
        .route(
            "/logout",
            get(end_session::handler).post(end_session::handler),
        )
        .route("/logout/confirm", post(end_session::confirm))
}

/// A strong validator for prepared bytes: the first 128 bits of their SHA-256, quoted.
pub(crate) fn etag_of(body: &[u8]) -> axum::http::HeaderValue {
    let etag = format!(
        "\"{}\"",
        &crate::security::hex(&crate::security::sha256(body))[..32]
    );
    axum::http::HeaderValue::from_str(&etag).expect("hex digits in quotes")
}

/// Answers `If-None-Match` with 304 and otherwise sends prepared bytes with validators.
pub(crate) fn prepared_json(
    headers: &axum::http::HeaderMap,
    body: bytes::Bytes,
    etag: &axum::http::HeaderValue,
    cache_control: &'static str,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t.as_bytes() == etag.as_bytes() || t == "*")
        });
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    h.insert(header::ETAG, etag.clone());
    // Browsers-based relying parties fetch these cross-origin.
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}
