//! JWKS (RFC 7517): public RSA keys only. The document always holds the next key before it
//! signs, so a verifier's cached copy never misses a key it is about to meet.

use axum::extract::Request;
use axum::extract::State;
use axum::response::Response;

use crate::app::AppState;

// The request, not a `HeaderMap` extractor: that one clones every header, and this is one of
// the two hottest GET routes.
pub async fn handler(State(app): State<AppState>, request: Request) -> Response {
    let keys = app.keys.current();
    crate::oidc::prepared_json(
        request.headers(),
        keys.jwks_json.clone(),
        &keys.jwks_etag,
        "public, max-age=300",
    )
}
