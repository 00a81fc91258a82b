//! Passkey endpoints used by `static/webauthn.js`: sign-in at the hosted page (username-first
//! and discoverable), and registration from the account page or the offer shown after a
//! password sign-in. JSON in, JSON out; every call carries the CSRF token of its page.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::interaction::{SignInContext, sign_in_failed};
use crate::app::{App, AppState};
use crate::authn::methods::Method;
use crate::authn::passkey::{self, PasskeyError, Passkeys};
use crate::error::{Error, PageError};
use crate::oidc::authorize::pending;
use crate::session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login/passkey/options", post(sign_in_options))
        .route("/login/passkey/finish", post(sign_in_finish))
        .route("/account/passkeys/options", post(register_options))
        .route("/account/passkeys/finish", post(register_finish))
        .route("/passkeys/offer", get(offer_page))
        .route("/passkeys/offer/dismiss", post(offer_dismiss))
}

/// A JSON error the page shows as it is.
pub(crate) fn refused(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": "passkey_refused", "message": message })),
    )
        .into_response()
}

pub(crate) fn passkey_error(e: PasskeyError) -> Response {
    match e {
        PasskeyError::Store(inner) => Error::from(inner).into_response(),
        PasskeyError::Verification(detail) => {
            tracing::info!(detail = %detail, "passkey verification failed");
            refused(
                StatusCode::BAD_REQUEST,
                &PasskeyError::Verification(String::new()).to_string(),
            )
        }
        other => refused(StatusCode::BAD_REQUEST, &other.to_string()),
    }
}

/// Handlers answer `Err` with a ready response (a refusal or an error), so `?` works on both.
pub(crate) type Answer = Result<Response, Response>;

pub(crate) fn fail(e: impl Into<Error>) -> Response {
    e.into().into_response()
}

pub(crate) fn read<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Response> {
    body.map(|Json(b)| b).map_err(|rejection| {
        // A body over `MAX_BODY_BYTES` is 413 (RFC 9110 §15.5.14), not a malformed request.
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            refused(StatusCode::PAYLOAD_TOO_LARGE, "The request is too large.")
        } else {
            refused(StatusCode::BAD_REQUEST, "The request could not be read.")
        }
    })
}

pub(crate) fn enabled(app: &App) -> Result<&Passkeys, Response> {
    app.passkeys.as_ref().ok_or_else(|| {
        refused(
            StatusCode::NOT_FOUND,
            "Passkeys are not available on this server.",
        )
    })
}

#[derive(Deserialize)]
pub struct SignInOptions {
    request: String,
    csrf: String,
    #[serde(default)]
    email: Option<String>,
    /// `conditional` for passkey autofill in the email field.
    #[serde(default)]
    mediation: Option<String>,
}

async fn sign_in_options(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<SignInOptions>, JsonRejection>,
) -> Answer {
    let body = read(body)?;
    let pk = enabled(&app)?;
    let context = sign_in_context(&app, &headers, &body.request, &body.csrf).await?;
    let (pending, org_id) = (&context.pending, &context.org.id);
    // A reauthentication is for the hinted account only, whatever was typed.
    let hinted_email = match &pending.request.hinted_subject {
        Some(sub) => crate::store::users::find(&app.store, sub)
            .await
            .map_err(fail)?
            .map(|u| u.email),
        None => None,
    };
    let email = hinted_email.or(body.email.filter(|e| e.len() <= 320));
    let (ceremony, options) =
        passkey::start_authentication(pk, &app.store, &app.instance_key, org_id, email.as_deref())
            .await
            .map_err(passkey_error)?;
    let mut options =
        serde_json::to_value(&options).map_err(|e| fail(Error::Internal(e.to_string())))?;
    if body.mediation.as_deref() != Some("conditional") {
        options["mediation"] = Value::Null;
    }
    Ok(Json(json!({ "ceremony": ceremony, "options": options })).into_response())
}

/// The parked request of this browser (its CSRF token checked) with its organization,
/// refusing when that organization has passkeys turned off.
async fn sign_in_context(
    app: &App,
    headers: &HeaderMap,
    request: &str,
    csrf: &str,
) -> Result<SignInContext, Response> {
    SignInContext::open(app, headers, request, csrf, Method::Passkey)
        .await
        .map_err(fail)
}

#[derive(Deserialize)]
pub struct SignInFinish {
    request: String,
    csrf: String,
    ceremony: String,
    credential: Value,
}

async fn sign_in_finish(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<SignInFinish>, JsonRejection>,
) -> Answer {
    let body = read(body)?;
    let pk = enabled(&app)?;
    let context = sign_in_context(&app, &headers, &body.request, &body.csrf).await?;
    let credential = serde_json::from_value::<PublicKeyCredential>(body.credential)
        .map_err(|_| passkey_error(PasskeyError::Malformed))?;
    let org_id = context.org.id.as_str();
    let ip = Some(crate::http::client_ip(&connect));
    let (user, authentication) =
        match passkey::finish_authentication(pk, &app.store, org_id, &body.ceremony, &credential)
            .await
        {
            Ok(done) => done,
            Err(e) => {
                let reason = match e {
                    PasskeyError::Store(_) => "unavailable",
                    _ => "passkey_rejected",
                };
                sign_in_failed(&app, org_id, Method::Passkey, None, ip, reason).await;
                return Err(passkey_error(e));
            }
        };
    if context
        .pending
        .request
        .hinted_subject
        .as_deref()
        .is_some_and(|sub| sub != user.id)
    {
        return Err(refused(
            StatusCode::FORBIDDEN,
            super::interaction::WRONG_ACCOUNT,
        ));
    }
    let (next, cookie) = super::interaction::finish_sign_in(
        &app,
        &headers,
        &context,
        &user,
        Method::Passkey,
        &authentication,
        ip,
    )
    .await
    .map_err(fail)?;
    let mut response = Json(json!({ "redirect": next })).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

#[derive(Deserialize)]
pub struct RegisterOptions {
    csrf: String,
}

async fn register_options(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<RegisterOptions>, JsonRejection>,
) -> Answer {
    let body = read(body)?;
    let pk = enabled(&app)?;
    let current = super::account::signed_in_with_csrf(&app, &headers, &body.csrf)
        .await
        .map_err(fail)?;
    let (ceremony, options) = passkey::start_registration(pk, &app.store, &current.user)
        .await
        .map_err(passkey_error)?;
    Ok(Json(json!({ "ceremony": ceremony, "options": options })).into_response())
}

#[derive(Deserialize)]
pub struct RegisterFinish {
    csrf: String,
    ceremony: String,
    credential: Value,
    #[serde(default)]
    name: String,
}

async fn register_finish(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<RegisterFinish>, JsonRejection>,
) -> Answer {
    let body = read(body)?;
    let pk = enabled(&app)?;
    let current = super::account::signed_in_with_csrf(&app, &headers, &body.csrf)
        .await
        .map_err(fail)?;
    let credential = serde_json::from_value::<RegisterPublicKeyCredential>(body.credential)
        .map_err(|_| passkey_error(PasskeyError::Malformed))?;
    let row = passkey::finish_registration(
        pk,
        &app.store,
        &current.user,
        &body.ceremony,
        &credential,
        &body.name,
    )
    .await
    .map_err(passkey_error)?;
    tracing::info!(user_id = %current.user.id, "passkey registered");
    let device =
        crate::account::notifications::Device::of(&headers, Some(crate::http::client_ip(&connect)));
    crate::account::notifications::notify(
        &app,
        &current.user.email,
        crate::account::notifications::Change::PasskeyAdded(&row.name),
        &device,
    );
    Ok(Json(json!({ "id": row.id, "name": row.name })).into_response())
}

#[derive(Deserialize)]
pub struct RequestRef {
    request: String,
}

/// Offered once after a password sign-in to an account without passkeys.
async fn offer_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(r): Query<RequestRef>,
) -> Result<Response, PageError> {
    let pending = pending::load(&app, &headers, &r.request).await?;
    let continue_url = format!("/authorize/resume?request={}", pending.id);
    let Some(current) = session::current(&app, &headers).await? else {
        return Ok(crate::oidc::authorize::response::redirect(&continue_url));
    };
    let csrf = super::account::csrf(&app, &current.session.id);
    Ok(super::render(&super::views::PasskeyOfferPage {
        csrf: &csrf,
        request_id: &pending.id,
        continue_url: &continue_url,
    }))
}

async fn offer_dismiss(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(r): Form<RequestRef>,
) -> Result<Response, PageError> {
    let pending = pending::load(&app, &headers, &r.request).await?;
    let mut response = crate::oidc::authorize::response::redirect(&format!(
        "/authorize/resume?request={}",
        pending.id
    ));
    response.headers_mut().append(
        header::SET_COOKIE,
        app.cookies.set(
            super::interaction::NUDGE_COOKIE,
            "dismissed",
            30 * 24 * 3600,
        ),
    );
    Ok(response)
}
