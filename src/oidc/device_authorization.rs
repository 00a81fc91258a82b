//! The device authorization endpoint (RFC 8628 §3.1–3.2): a device with no browser (or no
//! keyboard) asks for a device code to poll the token endpoint with and a short user code for
//! the person to type at `/device` on their phone or computer.
//!
//! The user code has 8 characters from 20 consonants (§6.1: no vowels, so no words, and no
//! look-alike digits), about 34.6 bits; guessing is limited per signed-in session at `/device`
//! and by the code's 10-minute life. The device code is a 256-bit secret, stored as a digest.

use axum::Json;
use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::{App, AppState};
use crate::error::{Code, Error};
use crate::http::params::Params;
use crate::oidc::scope::Scope;
use crate::security::{digest, random_bytes, random_id, random_secret};
use crate::store::device_authorizations::{self, DeviceAuthorizationRow, PENDING};
use crate::store::{self, clients::Client};

/// RFC 8628 §6.1: the 20 upper-case consonants.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const USER_CODE_LEN: usize = 8;
/// §3.2: the minimum polling interval when the device is told none; we tell it this one.
pub const POLL_INTERVAL_SECS: i64 = 5;
/// §3.5: how much `slow_down` adds to the interval.
pub const SLOW_DOWN_STEP_SECS: i64 = 5;
/// A fresh user code colliding with a stored one is retried (the column is unique).
const USER_CODE_ATTEMPTS: usize = 5;

pub async fn handler(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ip = crate::http::client_ip(&connect);
    match handle(&app, &headers, &body, ip).await {
        Ok(body) => {
            let mut response = Json(body).into_response();
            let h = response.headers_mut();
            // The answer holds the device code, a credential: like a token response (RFC
            // 6749 §5.1), it must not be cached.
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn handle(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
    ip: std::net::IpAddr,
) -> Result<Value, Error> {
    // §3.1: the same form encoding and client authentication as the token endpoint.
    let params = super::token::parse_request(headers, body)?;
    let client = super::token::client_auth::authenticate(app, headers, &params).await?;
    let scope = requested_scope(&params)?;
    let (device_code, user_code, row) = store_new(app, &client, &scope, ip).await?;
    Ok(answer(app, &device_code, &user_code, &row))
}

/// The requested scope, checked as at the authorization endpoint: `openid` is required (an
/// absent scope is refused with `invalid_scope`, RFC 6749 §3.3) and values Tessera does not
/// know are ignored (OIDC Core §3.1.2.1).
pub fn requested_scope(params: &Params) -> Result<Scope, Error> {
    let scope = Scope::parse(params.get("scope").unwrap_or(""));
    if !scope.has("openid") {
        return Err(Error::oauth(
            Code::InvalidScope,
            "scope must include openid",
        ));
    }
    Ok(scope.supported_only())
}

/// Stores a new pending authorization; returns the device code and the user code in clear.
async fn store_new(
    app: &App,
    client: &Client,
    scope: &Scope,
    ip: std::net::IpAddr,
) -> Result<(String, String, DeviceAuthorizationRow), Error> {
    let now = store::now();
    let device_code = random_secret();
    for _ in 0..USER_CODE_ATTEMPTS {
        let user_code = generate_user_code();
        let row = DeviceAuthorizationRow {
            device_code_hash: digest(&device_code),
            user_code_hash: digest(&user_code),
            grant_id: random_id(),
            client_id: client.id.clone(),
            scope: scope.to_string(),
            status: PENDING.to_owned(),
            user_id: None,
            session_id: None,
            auth_time: None,
            amr: None,
            acr: None,
            interval_secs: POLL_INTERVAL_SECS,
            last_polled_at: None,
            created_at: now,
            expires_at: now + app.config.tokens.device_code_ttl_secs,
            decided_at: None,
            consumed_at: None,
            device_ip: Some(ip.to_string()),
        };
        match device_authorizations::insert(&app.store, &row).await {
            Ok(()) => return Ok((device_code, user_code, row)),
            Err(e) if e.is_unique_violation() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Internal(
        "no free user code after several attempts".into(),
    ))
}

/// The §3.2 response.
fn answer(app: &App, device_code: &str, user_code: &str, row: &DeviceAuthorizationRow) -> Value {
    let shown = display_user_code(user_code);
    let verification_uri = app.config.endpoint("/device");
    let mut complete = url::Url::parse(&verification_uri).expect("issuer URL");
    complete.query_pairs_mut().append_pair("user_code", &shown);
    json!({
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": verification_uri,
        "verification_uri_complete": complete.as_str(),
        "expires_in": row.expires_at - row.created_at,
        "interval": row.interval_secs,
    })
}

/// Eight characters drawn uniformly from [`USER_CODE_ALPHABET`] (rejection sampling: bytes
/// of 240 and above would favour the first 16 letters).
pub fn generate_user_code() -> String {
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        for b in random_bytes::<16>() {
            if b < 240 && code.len() < USER_CODE_LEN {
                code.push(USER_CODE_ALPHABET[usize::from(b % 20)] as char);
            }
        }
    }
    code
}

/// §6.1: shown as two groups of four, `WDJB-MJHT`.
pub fn display_user_code(code: &str) -> String {
    match (code.get(..4), code.get(4..)) {
        (Some(a), Some(b)) if !b.is_empty() => format!("{a}-{b}"),
        _ => code.to_owned(),
    }
}

/// What a person typed, as stored: case, spaces and dashes are ignored (§6.1). `None` when
/// it cannot be a user code at all.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let well_formed =
        code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    well_formed.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_use_the_alphabet_and_normalize_back() {
        for _ in 0..200 {
            let code = generate_user_code();
            assert_eq!(code.len(), USER_CODE_LEN);
            assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
            let shown = display_user_code(&code);
            assert_eq!(shown.len(), 9);
            assert_eq!(normalize_user_code(&shown).as_deref(), Some(code.as_str()));
        }
        assert_eq!(
            normalize_user_code(" wdjb mjht ").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(
            normalize_user_code("wdjb-mjht").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(normalize_user_code("WDJB-MJH"), None);
        assert_eq!(
            normalize_user_code("WDJB-MJHA"),
            None,
            "vowels are not used"
        );
        assert_eq!(normalize_user_code("WDJB-MJHTX"), None);
        assert_eq!(normalize_user_code("ẞẞẞẞẞẞẞẞ"), None);
    }
}
