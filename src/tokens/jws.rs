//! Compact JWS with RS256, built by hand so that each signature reuses the parsed key
//! (jsonwebtoken's `encode` re-parses the private key on every call, halving throughput).

use serde::Deserialize;
use serde_json::Value;

use super::keys::{KeySet, SigningKey};
use crate::security::{b64url, b64url_decode};

/// Tokens larger than this are refused before any parsing (a 1 MB header is hostile).
pub const MAX_JWT_LEN: usize = 16 * 1024;

pub fn sign(key: &SigningKey, typ: &str, claims: &Value) -> String {
    let header = serde_json::json!({ "alg": "RS256", "kid": key.kid, "typ": typ });
    let mut input = b64url(header.to_string().as_bytes());
    input.push('.');
    input.push_str(&b64url(claims.to_string().as_bytes()));
    let started = std::time::Instant::now();
    let signature = key.sign(input.as_bytes());
    crate::metrics::global().signing(started.elapsed());
    input.push('.');
    input.push_str(&b64url(&signature));
    input
}

#[derive(Debug, Deserialize)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("token is too large")]
    TooLarge,
    #[error("token is not a compact JWS")]
    Malformed,
    #[error("token algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("token was not signed by a key of this issuer")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
}

/// Verifies an RS256 JWS against this issuer's published keys and returns its header and
/// claims. Time and audience checks are the caller's: what they must be depends on use.
pub fn verify(keys: &KeySet, token: &str) -> Result<(Header, Value), JwsError> {
    if token.len() > MAX_JWT_LEN {
        return Err(JwsError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let header: Header = b64url_decode(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwsError::Malformed)?;
    // RFC 8725 §3.1: accept exactly the algorithm we sign with; never "none".
    if header.alg != "RS256" {
        return Err(JwsError::Algorithm(header.alg.chars().take(16).collect()));
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.verification_key(kid))
        .ok_or(JwsError::UnknownKey)?;
    let signature = b64url_decode(s).ok_or(JwsError::Malformed)?;
    let signed_len = h.len() + 1 + p.len();
    key.verify(token[..signed_len].as_bytes(), &signature)
        .map_err(|_| JwsError::BadSignature)?;
    let claims: Value = b64url_decode(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwsError::Malformed)?;
    if !claims.is_object() {
        return Err(JwsError::Malformed);
    }
    Ok((header, claims))
}
