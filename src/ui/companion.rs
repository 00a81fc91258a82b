//! Companion apps over HTTP: the JSON API an enrolled app uses (README "Companion API"), and
//! the account page's part (show an enrollment code, remove a device). The checks live in
//! `authn::device` and `authn::qr`.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::authn::companion;
use crate::authn::qr::{self, Approver, Decided, Decision, Scan};
use crate::error::{Error, JsonError, PageError};
use crate::http::params::Params;
use crate::oidc::authorize::response::redirect;
use crate::security::jwe::P256Jwk;
use crate::store::devices;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/devices", post(enroll))
        .route("/api/qr/{id}/challenge", post(challenge))
        .route("/api/qr/{id}/scan", post(scan))
        .route("/api/qr/{id}/decision", post(decide))
        .route("/account/devices/enroll", post(enrollment_code))
        .route("/account/devices/delete", post(remove))
}

#[derive(Deserialize)]
struct EnrollBody {
    code: String,
    name: String,
    public_key: P256Jwk,
    proof: String,
}

async fn enroll(
    State(app): State<AppState>,
    connect: axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
    bytes: Bytes,
) -> Result<Response, JsonError> {
    let b: EnrollBody = crate::http::json_body(&bytes)?;
    let row = companion::enroll(&app, &b.code, &b.name, &b.public_key, &b.proof).await?;
    if let Some(user) = crate::store::users::find(&app.store, &row.user_id).await? {
        use crate::account::notifications::{self, Change, Device};
        let device = Device::of(&headers, Some(crate::http::client_ip(&connect)));
        notifications::notify(
            &app,
            &user.email,
            Change::DeviceEnrolled(&row.name),
            &device,
        );
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"device_id": row.id, "name": row.name})),
    )
        .into_response())
}

async fn challenge(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, JsonError> {
    let challenge = companion::challenge(&app, &id).await?;
    Ok(
        Json(json!({"challenge": challenge, "expires_in": companion::CHALLENGE_TTL_SECS}))
            .into_response(),
    )
}

#[derive(Deserialize)]
struct SignedBody {
    /// The device-signed JWS (`typ` `tessera-qr-approval+jwt`).
    request: String,
}

fn decision_of(signed: &companion::Signed) -> &str {
    signed
        .claims
        .get("decision")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Claims the QR code for this device (the first scan wins) and returns what is asking.
async fn scan(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, JsonError> {
    let b: SignedBody = crate::http::json_body(&bytes)?;
    let signed = companion::verify(&app, &id, &b.request).await?;
    if decision_of(&signed) != "scan" {
        return Err(Error::invalid_request("decision must be \"scan\" here").into());
    }
    let approver = Approver::Device {
        device: &signed.device,
        user: &signed.user,
    };
    let ua = crate::http::user_agent(&headers);
    let Scan::Claimed(context) = qr::scan(
        &app,
        &id,
        &approver,
        ua.as_deref(),
        Some(crate::http::client_ip(&connect)),
    )
    .await?
    else {
        return Err(Error::Internal("a device needs no fresh sign-in".into()).into());
    };
    Ok(Json(json!({
        "account": signed.user.email,
        "application": context.client_name,
        "redirect_host": context.redirect_host,
        "requesting_browser": context.desktop_browser,
        "requesting_ip": context.desktop_ip,
        "approver_ip": context.phone_ip,
        "network": context.network_verdict,
        "new_browser": context.new_browser,
        "started_at": context.row.created_at,
        "seconds_left": context.seconds_left,
        "challenge": companion::challenge(&app, &id).await?,
    }))
    .into_response())
}

async fn decide(
    State(app): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, JsonError> {
    let b: SignedBody = crate::http::json_body(&bytes)?;
    let signed = companion::verify(&app, &id, &b.request).await?;
    let decision = match decision_of(&signed) {
        "approve" => Decision::Approve {
            typed_code: signed
                .claims
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or(""),
        },
        "deny" => Decision::Deny,
        _ => {
            return Err(Error::invalid_request("decision must be \"approve\" or \"deny\"").into());
        }
    };
    let approver = Approver::Device {
        device: &signed.device,
        user: &signed.user,
    };
    let answer = match qr::decide(&app, &id, &approver, decision).await? {
        Decided::Approved => json!({"result": "approved"}),
        Decided::Denied => json!({"result": "denied"}),
        Decided::WrongCode { tries_left: 0 } => json!({"result": "refused", "tries_left": 0}),
        Decided::WrongCode { tries_left } => json!({
            "result": "wrong_code",
            "tries_left": tries_left,
            "challenge": companion::challenge(&app, &id).await?,
        }),
    };
    Ok(Json(answer).into_response())
}

/// Shows a single-use enrollment code; needs a sign-in within the last five minutes.
async fn enrollment_code(
    State(app): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, PageError> {
    let params = Params::parse(&bytes);
    let current =
        super::account::signed_in_with_csrf(&app, &headers, params.get("csrf").unwrap_or(""))
            .await?;
    // A fresh password or passkey sign-in in this browser, not one that came from a QR
    // approval: a device key is lasting access (see `qr::recently_verified`).
    if !qr::recently_verified(&current, crate::store::now()) {
        return Ok(redirect("/account?notice=reauthenticate"));
    }
    let code = companion::new_enrollment_code(&app, &current.user.id).await?;
    Ok(super::render(&super::views::CompanionEnrollPage {
        code: &code,
        issuer: &app.config.issuer,
        minutes: companion::ENROLLMENT_TTL_SECS / 60,
    }))
}

async fn remove(
    State(app): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, PageError> {
    let params = Params::parse(&bytes);
    let current =
        super::account::signed_in_with_csrf(&app, &headers, params.get("csrf").unwrap_or(""))
            .await?;
    if !devices::delete(&app.store, &current.user.id, params.get("id").unwrap_or("")).await? {
        return Err(
            Error::bad_request_page("Unknown device", "That device was already removed.").into(),
        );
    }
    Ok(redirect("/account?notice=device-removed"))
}
