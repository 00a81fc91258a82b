//! The token endpoint (RFC 6749 §3.2): authenticate the client and dispatch to one module
//! per grant type. Every answer carries `Cache-Control: no-store` (§5.1).

pub mod authorization_code;
pub mod client_auth;
pub mod client_credentials;
pub mod device_code;
pub mod issue;
pub mod refresh_token;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::{Code, Error};
use crate::http::params::Params;

pub async fn handler(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&app, &headers, &body).await {
        Ok(body) => {
            let mut response = Json(body).into_response();
            let h = response.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(e) => e.into_response(),
    }
}

pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// The token request's form, checked for what RFC 6749 §3.2 requires of its encoding: form
/// content type, no parameter twice, none oversized. Public as the fuzzing surface of the
/// token-request parser (`fuzz/`).
pub fn parse_request(headers: &HeaderMap, body: &[u8]) -> Result<Params, Error> {
    if !is_form(headers) {
        return Err(Error::invalid_request(
            "the token request must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body);
    if let Some(name) = params.duplicated_among(&[
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "scope",
        "client_id",
        "client_secret",
        "device_code",
    ]) {
        return Err(Error::invalid_request(format!(
            "parameter {name} was sent more than once"
        )));
    }
    if let Some(name) = params.oversized() {
        return Err(Error::invalid_request(format!(
            "parameter {name} is too long"
        )));
    }
    Ok(params)
}

async fn handle(
    app: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, Error> {
    let params = parse_request(headers, body)?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| Error::invalid_request("grant_type is required"))?;
    // The refresh grant authenticates the client in the same store round trip as it reads the
    // token (see there); every other grant type, known or not, is answered only to an
    // authenticated client.
    let (grant, issued) = if grant_type == "refresh_token" {
        (
            "refresh_token",
            refresh_token::exchange(app, headers, &params).await,
        )
    } else {
        let client = client_auth::authenticate(app, headers, &params).await?;
        match grant_type {
            "authorization_code" => (
                "authorization_code",
                authorization_code::exchange(app, &client, &params).await,
            ),
            "client_credentials" => (
                "client_credentials",
                client_credentials::exchange(app, &client, &params).await,
            ),
            device_code::GRANT_TYPE => (
                "device_code",
                device_code::exchange(app, &client, &params).await,
            ),
            _ => {
                return Err(Error::oauth(
                    Code::UnsupportedGrantType,
                    "this grant type is not supported",
                ));
            }
        }
    };
    if issued.is_ok() {
        crate::metrics::global().token_issued(grant);
    }
    issued
}
