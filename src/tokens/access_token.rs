//! JWT access tokens per RFC 9068: `typ: at+jwt`, RS256, short-lived. Each names its grant
//! (`gid`) so that revoking a grant (code reuse, refresh-token theft, session end) also
//! stops its access tokens at userinfo.

use serde::Deserialize;
use serde_json::{Value, json};

use super::jws::{self, JwsError};
use super::keys::KeySet;

pub const TYP: &str = "at+jwt";

pub struct AccessTokenInput<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub subject: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub grant_id: &'a str,
    pub auth_time: Option<i64>,
    pub acr: Option<&'a str>,
    pub amr: &'a [String],
    pub sid: Option<&'a str>,
    pub now: i64,
    pub ttl_secs: i64,
}

pub fn claims(input: &AccessTokenInput<'_>) -> Value {
    let mut claims = json!({
        "iss": input.issuer,
        "sub": input.subject,
        "aud": input.audience,
        "client_id": input.client_id,
        "scope": input.scope,
        "iat": input.now,
        "exp": input.now + input.ttl_secs,
        "jti": crate::security::random_id(),
        "gid": input.grant_id,
    });
    if let Some(t) = input.auth_time {
        claims["auth_time"] = json!(t);
    }
    if let Some(acr) = input.acr {
        claims["acr"] = json!(acr);
    }
    if !input.amr.is_empty() {
        claims["amr"] = json!(input.amr);
    }
    if let Some(sid) = input.sid {
        claims["sid"] = json!(sid);
    }
    claims
}

#[derive(Debug, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub client_id: String,
    pub scope: String,
    pub exp: i64,
    pub gid: String,
    #[serde(default)]
    pub jti: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessTokenError {
    #[error(transparent)]
    Jws(#[from] JwsError),
    #[error("not an access token")]
    WrongType,
    #[error("access token claims are invalid")]
    Claims,
    #[error("access token was issued by another issuer")]
    Issuer,
    #[error("access token has expired")]
    Expired,
}

/// Signature, type, issuer and expiry; revocation is checked by the caller against the grant.
pub fn validate(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    now: i64,
    leeway: i64,
) -> Result<AccessTokenClaims, AccessTokenError> {
    let (header, claims) = jws::verify(keys, token)?;
    // RFC 9068 §4: reject tokens whose typ is not at+jwt (so an ID token is never a bearer token).
    if !header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(TYP) || t.eq_ignore_ascii_case("application/at+jwt")
    }) {
        return Err(AccessTokenError::WrongType);
    }
    let claims: AccessTokenClaims =
        serde_json::from_value(claims).map_err(|_| AccessTokenError::Claims)?;
    if claims.iss != issuer {
        return Err(AccessTokenError::Issuer);
    }
    if claims.exp + leeway < now {
        return Err(AccessTokenError::Expired);
    }
    Ok(claims)
}
