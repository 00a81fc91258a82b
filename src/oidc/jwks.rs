//! JWKS (RFC 7517): public RSA keys only. The document always holds the next key before it
//! signs, so a verifier's cached copy never misses a key it is about to meet.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::app::AppState;

pub async fn handler(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let keys = app.keys.current();
    crate::oidc::prepared_json(
        &headers,
        keys.jwks_json.clone(),
        &keys.jwks_etag,
        "public, max-age=300",
    )
}
