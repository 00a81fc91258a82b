//! Companion apps enrolled as devices of a user (README "QR sign-in", companion API). An app
//! registers a P-256 key with a single-use enrollment code shown on the account page, proving
//! possession by signing the code; it then acts on a QR code by signing, with that key, claims
//! that bind the issuer, the QR id, a single-use server challenge, the typed match code, the
//! decision and the time. Public QR-login products sign only a timestamp and let anyone
//! register a key without signing in: this does neither.

use axum::http::StatusCode;
use serde_json::Value;

use super::qr;
use crate::app::App;
use crate::error::Error;
use crate::security::device_key::{self, Unverified};
use crate::security::jwe::P256Jwk;
use crate::security::{digest, random_id, random_secret};
use crate::store;
use crate::store::devices::{self, DeviceRow};
use crate::store::users::{self, User};

/// An enrollment code is shown for ten minutes.
pub const ENROLLMENT_TTL_SECS: i64 = 600;
/// A challenge must be signed and sent back within a minute.
pub const CHALLENGE_TTL_SECS: i64 = 60;
/// A signed request whose `iat` is older than this (or this far in the future) is stale.
pub const MAX_SIGNATURE_AGE_SECS: i64 = 60;
pub const ENROLLMENT_TYP: &str = "tessera-device-enrollment+jwt";
pub const QR_TYP: &str = "tessera-qr-approval+jwt";

fn refused(message: &str) -> Error {
    Error::page(StatusCode::UNAUTHORIZED, "Refused", message)
}

/// A new single-use enrollment code for the user (the account page checks the recent sign-in).
pub async fn new_enrollment_code(app: &App, user_id: &str) -> Result<String, Error> {
    let code = random_secret();
    devices::insert_enrollment(
        &app.store,
        &digest(&code),
        user_id,
        store::now() + ENROLLMENT_TTL_SECS,
    )
    .await?;
    Ok(code)
}

fn fresh(claims: &Value, now: i64) -> bool {
    claims
        .get("iat")
        .and_then(Value::as_i64)
        .is_some_and(|iat| (now - iat).abs() <= MAX_SIGNATURE_AGE_SECS)
}

fn audience_is_us(app: &App, claims: &Value) -> bool {
    claims.get("aud").and_then(Value::as_str) == Some(app.config.issuer.as_str())
}

/// Enrolls a device: the code must be live and unused, and `proof` an ES256 JWS by `key`
/// over `{aud: issuer, code, iat}`.
pub async fn enroll(
    app: &App,
    code: &str,
    name: &str,
    key: &P256Jwk,
    proof: &str,
) -> Result<DeviceRow, Error> {
    if !key.is_valid() {
        return Err(Error::invalid_request("public_key must be a P-256 JWK"));
    }
    let name: String = name.trim().chars().take(64).collect();
    if name.is_empty() {
        return Err(Error::invalid_request("name is required"));
    }
    let now = store::now();
    let claims = device_key::parse(proof)
        .filter(|p| p.typ == ENROLLMENT_TYP)
        .and_then(|p| p.verify(key))
        .ok_or_else(|| refused("the proof is not signed by this key"))?;
    if !audience_is_us(app, &claims)
        || claims.get("code").and_then(Value::as_str) != Some(code)
        || !fresh(&claims, now)
    {
        return Err(refused("the proof does not match this enrollment"));
    }
    let user_id = devices::take_enrollment(&app.store, &digest(code), now)
        .await?
        .ok_or_else(|| refused("the enrollment code is unknown, used or expired"))?;
    let row = DeviceRow {
        id: random_id(),
        user_id,
        name,
        public_key: serde_json::to_string(key).map_err(|e| Error::Internal(e.to_string()))?,
        created_at: now,
        last_used_at: None,
    };
    devices::insert(&app.store, &row).await?;
    Ok(row)
}

/// A single-use challenge for acting on a live QR code.
pub async fn challenge(app: &App, qr_id: &str) -> Result<String, Error> {
    let now = store::now();
    let row = qr::find(app, qr_id).await?;
    if row.expires_at <= now {
        return Err(Error::page(
            StatusCode::NOT_FOUND,
            "QR code not found",
            "This QR code has expired or does not exist.",
        ));
    }
    let challenge = random_secret();
    devices::insert_challenge(
        &app.store,
        &digest(&challenge),
        &row.id_hash,
        now + CHALLENGE_TTL_SECS,
    )
    .await?;
    Ok(challenge)
}

/// A device request that passed every check.
pub struct Signed {
    pub device: DeviceRow,
    pub user: User,
    pub claims: Value,
}

/// Verifies a device-signed request about a QR code: a known (not removed) device of an
/// enabled user, its signature, `aud` = issuer, `qr` = this QR id, a fresh `iat`, and a
/// challenge issued for this QR code and not used before (consumed here).
pub async fn verify(app: &App, qr_id: &str, jws: &str) -> Result<Signed, Error> {
    let unverified: Unverified = device_key::parse(jws)
        .filter(|p| p.typ == QR_TYP)
        .ok_or_else(|| Error::invalid_request("the request must be an ES256 JWS of this typ"))?;
    let device = match &unverified.kid {
        Some(kid) => devices::find(&app.store, kid).await?,
        None => None,
    }
    .ok_or_else(|| refused("this device is not enrolled (or was removed)"))?;
    let key: P256Jwk = serde_json::from_str(&device.public_key)
        .map_err(|e| Error::Internal(format!("stored device key: {e}")))?;
    let claims = unverified
        .verify(&key)
        .ok_or_else(|| refused("the signature does not verify with this device's key"))?;
    let now = store::now();
    if !audience_is_us(app, &claims) || claims.get("qr").and_then(Value::as_str) != Some(qr_id) {
        return Err(refused("the request is for another issuer or QR code"));
    }
    if !fresh(&claims, now) {
        return Err(refused(
            "the request is stale: sign it again with the current time",
        ));
    }
    let challenge = claims
        .get("challenge")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !devices::use_challenge(&app.store, &digest(challenge), &qr::id_hash(qr_id), now).await? {
        return Err(refused(
            "the challenge is unknown, used or expired: ask for a new one",
        ));
    }
    let user = users::find(&app.store, &device.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| refused("this account is disabled"))?;
    devices::record_use(&app.store, &device.id, now).await?;
    Ok(Signed {
        device,
        user,
        claims,
    })
}
