//! Access tokens, short-lived, in one of two formats (`tokens.access_token_format`):
//! - JWT per RFC 9068: `typ: at+jwt`, RS256, verifiable by resource servers through JWKS;
//! - opaque: the same claims sealed with AES-256-GCM under a key derived from the instance
//!   secret, `tat_` + base64url. Costs no RSA signature and no database write; only Tessera
//!   can read it (userinfo, introspection).
//!
//! Each names its grant (`gid`) so that revoking a grant (code reuse, refresh-token theft,
//! session end) also stops its access tokens. Both formats are accepted whatever the setting,
//! so switching it never invalidates tokens already issued.

use serde::Deserialize;
use serde_json::{Value, json};

use super::jws::{self, JwsError};
use super::keys::KeySet;
use crate::security::master_key::MasterKey;

pub const TYP: &str = "at+jwt";
/// Marks an opaque token (and lets secret scanners recognise one).
pub const OPAQUE_PREFIX: &str = "tat_";
/// Bound as associated data: a value sealed for another purpose never opens as a token.
const OPAQUE_LABEL: &str = "tessera opaque access token v1";
/// Label of the sealing key derived from the instance secret.
const SEALING_KEY_LABEL: &[u8] = b"tessera access-token sealing key v1";

/// The key that seals opaque access tokens; the same on every replica (derived from the
/// instance secret in the database).
pub fn sealing_key(instance_key: &[u8]) -> MasterKey {
    MasterKey::from_bytes(&crate::security::hmac_sha256(
        instance_key,
        SEALING_KEY_LABEL,
    ))
    .expect("an HMAC-SHA256 output is 32 bytes")
}

/// An opaque access token for these claims: cheap (one AES-GCM seal), no signature.
pub fn seal(key: &MasterKey, claims: &Value) -> String {
    let plaintext = serde_json::to_vec(claims).expect("JSON values serialise");
    format!(
        "{OPAQUE_PREFIX}{}",
        crate::security::b64url(&key.seal(OPAQUE_LABEL, &plaintext))
    )
}

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
    #[error("access token is malformed or was not sealed by this deployment")]
    Opaque,
    #[error("not an access token")]
    WrongType,
    #[error("access token claims are invalid")]
    Claims,
    #[error("access token was issued by another issuer")]
    Issuer,
    #[error("access token has expired")]
    Expired,
}

/// Opaque tokens are at most this long; anything longer is refused before base64 decoding.
const MAX_OPAQUE_LEN: usize = 8 * 1024;

/// Signature or seal, type, issuer and expiry; revocation is checked by the caller against
/// the grant.
pub fn validate(
    keys: &KeySet,
    sealing_key: &MasterKey,
    token: &str,
    issuer: &str,
    now: i64,
    leeway: i64,
) -> Result<AccessTokenClaims, AccessTokenError> {
    let claims = if token.starts_with(OPAQUE_PREFIX) {
        unseal(sealing_key, token)?
    } else {
        verify_jwt(keys, token)?
    };
    check(claims, issuer, now, leeway)
}

fn verify_jwt(keys: &KeySet, token: &str) -> Result<Value, AccessTokenError> {
    let (header, claims) = jws::verify(keys, token)?;
    // RFC 9068 §4: reject tokens whose typ is not at+jwt (so an ID token is never a bearer token).
    if !header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(TYP) || t.eq_ignore_ascii_case("application/at+jwt")
    }) {
        return Err(AccessTokenError::WrongType);
    }
    Ok(claims)
}

fn check(
    claims: Value,
    issuer: &str,
    now: i64,
    leeway: i64,
) -> Result<AccessTokenClaims, AccessTokenError> {
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

/// The claims of an opaque token, if this deployment's key sealed it unaltered.
pub fn unseal(key: &MasterKey, token: &str) -> Result<Value, AccessTokenError> {
    let sealed = token
        .strip_prefix(OPAQUE_PREFIX)
        .ok_or(AccessTokenError::Opaque)?;
    if sealed.len() > MAX_OPAQUE_LEN {
        return Err(AccessTokenError::Opaque);
    }
    let bytes = crate::security::b64url_decode(sealed).ok_or(AccessTokenError::Opaque)?;
    let plaintext = key
        .open(OPAQUE_LABEL, &bytes)
        .map_err(|_| AccessTokenError::Opaque)?;
    serde_json::from_slice(&plaintext).map_err(|_| AccessTokenError::Claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://id.example.com";

    fn input(now: i64) -> Value {
        claims(&AccessTokenInput {
            issuer: ISSUER,
            audience: ISSUER,
            subject: "user-1",
            client_id: "client-1",
            scope: "openid",
            grant_id: "grant-1",
            auth_time: Some(now),
            acr: Some("1"),
            amr: &["pwd".to_owned()],
            sid: Some("sid-1"),
            now,
            ttl_secs: 900,
        })
    }

    #[test]
    fn opaque_tokens_open_only_under_their_deployment_key_and_unaltered() {
        let key = sealing_key(b"instance secret A");
        let token = seal(&key, &input(1_000));
        assert!(token.starts_with(OPAQUE_PREFIX));
        let claims = check(unseal(&key, &token).unwrap(), ISSUER, 1_000, 0).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.gid.as_str(), claims.exp),
            ("user-1", "grant-1", 1_900)
        );
        let other = sealing_key(b"instance secret B");
        assert!(matches!(
            unseal(&other, &token),
            Err(AccessTokenError::Opaque)
        ));
        let mut altered = token.clone().into_bytes();
        altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(matches!(
            unseal(&key, &altered),
            Err(AccessTokenError::Opaque)
        ));
        assert!(matches!(
            check(
                unseal(&key, &token).unwrap(),
                "https://other.example.com",
                1_000,
                0
            ),
            Err(AccessTokenError::Issuer)
        ));
        assert!(matches!(
            check(unseal(&key, &token).unwrap(), ISSUER, 2_000, 30),
            Err(AccessTokenError::Expired)
        ));
        let huge = format!("{OPAQUE_PREFIX}{}", "A".repeat(MAX_OPAQUE_LEN + 1));
        assert!(matches!(unseal(&key, &huge), Err(AccessTokenError::Opaque)));
    }
}
