//! The sign-up pages (README "Sign-up"), reached from "Create an account" on the sign-in page
//! of a parked authorization request (also the account page's, which signs in through one):
//! email, then the code from the mail, then the first credential. The new account finishes
//! that request like any sign-in, so the person lands back in the application.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::interaction::{SignInContext, finish_sign_in};
use super::passkeys::read;
use crate::account::signup::{self, Credential, Failure};
use crate::app::{App, AppState};
use crate::authn::methods::SignupMode;
use crate::error::{Error, PageError};
use crate::oidc::authorize::{pending, response};
use crate::store::signups::SignupRow;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/signup", get(email_page).post(start))
        .route("/signup/verify", post(verify))
        .route("/signup/credential", get(credential_page))
        .route("/signup/password", post(with_password))
        .route("/signup/email-only", post(email_only))
        .route("/signup/passkey/options", post(passkey_options))
        .route("/signup/passkey/finish", post(passkey_finish))
        .route("/signup/invitation", get(invitation_page))
        .route("/signup/invitation/password", post(invitation_password))
        .route("/signup/invitation/email-only", post(invitation_email_only))
        .route(
            "/signup/invitation/passkey/options",
            post(invitation_passkey_options),
        )
        .route(
            "/signup/invitation/passkey/finish",
            post(invitation_passkey_finish),
        )
}

/// One template for every step; `step` is `email`, `code` or `credential`.
#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignupPage<'a> {
    pub org: &'a crate::store::orgs::Organization,
    pub client_name: &'a str,
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub step: &'static str,
    pub error: Option<&'a str>,
    pub email: &'a str,
    /// The sign-up (after step one).
    pub signup: &'a str,
    pub masked: &'a str,
    pub minutes: i64,
    pub allowed_domains: String,
    /// Step three's choices, those the organization offers.
    pub passkey: bool,
    pub password: bool,
    pub email_code: bool,
}

struct View<'a> {
    step: &'static str,
    error: Option<&'a str>,
    email: &'a str,
    signup: &'a str,
    masked: &'a str,
}

fn render(app: &App, context: &SignInContext, status: StatusCode, view: View<'_>) -> Response {
    let methods = &context.methods;
    super::render_status(
        status,
        &SignupPage {
            org: &context.org,
            client_name: &context.client.name,
            request_id: &context.pending.id,
            csrf: &context.pending.csrf,
            step: view.step,
            error: view.error,
            email: view.email,
            signup: view.signup,
            masked: view.masked,
            minutes: app.config.otp.code_ttl_secs / 60,
            allowed_domains: methods.signup.allowed_domains.join(", "),
            passkey: context.passkeys(app),
            password: methods.password.enabled,
            email_code: methods.email_otp.enabled,
        },
    )
}

/// The parked request of this browser, refusing when its organization's sign-up is not open.
async fn context(app: &App, headers: &HeaderMap, request: &str) -> Result<SignInContext, Error> {
    let pending = pending::load(app, headers, request).await?;
    let context = SignInContext::load(app, pending).await?;
    if context.methods.signup.mode != SignupMode::Open {
        return Err(not_open(&context));
    }
    Ok(context)
}

async fn checked(
    app: &App,
    headers: &HeaderMap,
    request: &str,
    csrf: &str,
) -> Result<SignInContext, Error> {
    let context = context(app, headers, request).await?;
    context.pending.check_csrf(csrf)?;
    Ok(context)
}

fn not_open(context: &SignInContext) -> Error {
    let why = if context.methods.signup.mode == SignupMode::Invite {
        "joins by invitation only: ask an administrator to invite you"
    } else {
        "does not let people create their own accounts: ask an administrator"
    };
    Error::page(
        StatusCode::FORBIDDEN,
        "Sign-up not available",
        format!("{} {why}.", context.org.name),
    )
}

fn start_again() -> Error {
    Error::page(
        StatusCode::GONE,
        "Start again",
        "This sign-up has expired or was already used. Go back to the application and start again.",
    )
}

#[derive(Deserialize)]
pub struct RequestRef {
    request: String,
}

async fn email_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<RequestRef>,
) -> Result<Response, PageError> {
    let context = context(&app, &headers, &q.request).await?;
    let view = View {
        step: "email",
        error: None,
        email: "",
        signup: "",
        masked: "",
    };
    Ok(render(&app, &context, StatusCode::OK, view))
}

#[derive(Deserialize)]
pub struct StartForm {
    request: String,
    csrf: String,
    email: String,
}

async fn start(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<StartForm>,
) -> Result<Response, PageError> {
    let context = checked(&app, &headers, &form.request, &form.csrf).await?;
    let ip = Some(crate::http::client_ip(&connect));
    let email: String = form.email.chars().take(320).collect();
    let started = signup::start(
        &app,
        &context.org,
        &context.methods,
        &email,
        &context.pending.id,
        ip,
    )
    .await;
    let (status, message, retry) = match started {
        Ok(started) => {
            let view = View {
                step: "code",
                error: None,
                email: &email,
                signup: &started.signup_id,
                masked: &started.masked,
            };
            return Ok(render(&app, &context, StatusCode::OK, view));
        }
        Err(Failure::InvalidAddress(why)) => (StatusCode::BAD_REQUEST, why, None),
        Err(Failure::DomainNotAllowed) => (
            StatusCode::FORBIDDEN,
            format!(
                "{} accepts sign-ups from these email domains only: {}.",
                context.org.name,
                context.methods.signup.allowed_domains.join(", ")
            ),
            None,
        ),
        Err(Failure::Throttled { retry_after_secs }) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "A code was sent a moment ago. Wait {retry_after_secs} seconds before asking for another."
            ),
            Some(retry_after_secs),
        ),
        Err(Failure::Store(e)) => return Err(Error::from(e).into()),
        Err(_) => return Err(not_open(&context).into()),
    };
    let view = View {
        step: "email",
        error: Some(&message),
        email: &email,
        signup: "",
        masked: "",
    };
    let mut page = render(&app, &context, status, view);
    if let Some(secs) = retry {
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    Ok(page)
}

#[derive(Deserialize)]
pub struct VerifyForm {
    request: String,
    csrf: String,
    signup: String,
    email: String,
    code: String,
}

async fn verify(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<VerifyForm>,
) -> Result<Response, PageError> {
    let context = checked(&app, &headers, &form.request, &form.csrf).await?;
    let code: String = form.code.chars().take(32).collect();
    let email: String = form.email.chars().take(320).collect();
    match signup::verify(
        &app,
        &context.org.id,
        &form.signup,
        &context.pending.id,
        &code,
    )
    .await
    {
        Ok(row) => Ok(response::redirect(&format!(
            "/signup/credential?request={}&signup={}",
            context.pending.id, row.id
        ))),
        Err(Failure::WrongCode { attempts_left }) => {
            let message = format!(
                "That code is not right. {attempts_left} {} left.",
                if attempts_left == 1 { "try" } else { "tries" }
            );
            let masked = crate::authn::otp::mask(crate::delivery::Channel::Email, &email);
            let view = View {
                step: "code",
                error: Some(&message),
                email: &email,
                signup: &form.signup,
                masked: &masked,
            };
            Ok(render(&app, &context, StatusCode::UNAUTHORIZED, view))
        }
        Err(Failure::Store(e)) => Err(Error::from(e).into()),
        Err(_) => {
            let view = View {
                step: "email",
                error: Some(
                    "That code has expired, was already used or was typed wrong too often. Ask for a new one.",
                ),
                email: &email,
                signup: "",
                masked: "",
            };
            Ok(render(&app, &context, StatusCode::UNAUTHORIZED, view))
        }
    }
}

#[derive(Deserialize)]
pub struct SignupRef {
    request: String,
    signup: String,
}

/// The verified sign-up of this browser's parked request.
async fn verified(app: &App, context: &SignInContext, signup_id: &str) -> Result<SignupRow, Error> {
    match signup::verified(app, &context.org.id, signup_id, &context.pending.id).await {
        Ok(row) => Ok(row),
        Err(Failure::Store(e)) => Err(e.into()),
        Err(_) => Err(start_again()),
    }
}

async fn credential_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignupRef>,
) -> Result<Response, PageError> {
    let context = context(&app, &headers, &q.request).await?;
    let row = verified(&app, &context, &q.signup).await?;
    Ok(credential_step(&app, &context, &row, StatusCode::OK, None))
}

fn credential_step(
    app: &App,
    context: &SignInContext,
    row: &SignupRow,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let view = View {
        step: "credential",
        error,
        email: &row.email,
        signup: &row.id,
        masked: "",
    };
    render(app, context, status, view)
}

/// Creates the account and signs it in to the parked request; says where the browser goes.
async fn finish(
    app: &App,
    headers: &HeaderMap,
    context: &SignInContext,
    row: &SignupRow,
    credential: Credential<'_>,
    ip: std::net::IpAddr,
) -> Result<Result<(String, HeaderValue), (StatusCode, String)>, Error> {
    match signup::complete(app, &context.methods, row, credential, Some(ip)).await {
        Ok((user, method, authentication)) => Ok(Ok(finish_sign_in(
            app,
            headers,
            context,
            &user,
            method,
            &authentication,
            Some(ip),
        )
        .await?)),
        Err(Failure::Password(why)) => Ok(Err((StatusCode::BAD_REQUEST, capitalized(&why)))),
        Err(Failure::Passkey(e)) => Ok(Err((StatusCode::BAD_REQUEST, e.to_string()))),
        Err(Failure::MethodOff(m)) => Ok(Err((
            StatusCode::FORBIDDEN,
            format!(
                "{} does not offer sign-in by {}.",
                context.org.name,
                m.label().to_lowercase()
            ),
        ))),
        Err(Failure::Taken) => Ok(Err((
            StatusCode::CONFLICT,
            "An account with this address was created meanwhile. Go back and sign in.".into(),
        ))),
        Err(Failure::Store(e)) => Err(e.into()),
        Err(_) => Err(start_again()),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    request: String,
    csrf: String,
    signup: String,
    password: String,
}

async fn with_password(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    let context = checked(&app, &headers, &form.request, &form.csrf).await?;
    let row = verified(&app, &context, &form.signup).await?;
    let ip = crate::http::client_ip(&connect);
    let credential = Credential::Password(form.password);
    match finish(&app, &headers, &context, &row, credential, ip).await? {
        Ok((next, cookie)) => Ok(crate::oidc::authorize::with_cookie(
            response::redirect(&next),
            cookie,
        )),
        Err((status, message)) => Ok(credential_step(
            &app,
            &context,
            &row,
            status,
            Some(&message),
        )),
    }
}

#[derive(Deserialize)]
pub struct EmailOnlyForm {
    request: String,
    csrf: String,
    signup: String,
}

async fn email_only(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<EmailOnlyForm>,
) -> Result<Response, PageError> {
    let context = checked(&app, &headers, &form.request, &form.csrf).await?;
    let row = verified(&app, &context, &form.signup).await?;
    let ip = crate::http::client_ip(&connect);
    match finish(&app, &headers, &context, &row, Credential::EmailCode, ip).await? {
        Ok((next, cookie)) => Ok(crate::oidc::authorize::with_cookie(
            response::redirect(&next),
            cookie,
        )),
        Err((status, message)) => Ok(credential_step(
            &app,
            &context,
            &row,
            status,
            Some(&message),
        )),
    }
}

/// JSON calls answer errors as `{"error", "message"}`, which `static/webauthn.js` shows.
fn refused(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": "signup_refused", "message": message })),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct PasskeyOptions {
    request: String,
    csrf: String,
    signup: String,
}

async fn passkey_options(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<PasskeyOptions>, JsonRejection>,
) -> Result<Response, Response> {
    let body = read(body)?;
    let context = checked(&app, &headers, &body.request, &body.csrf)
        .await
        .map_err(IntoResponse::into_response)?;
    if !context.passkeys(&app) {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "Passkeys are not available here.",
        ));
    }
    let row = verified(&app, &context, &body.signup)
        .await
        .map_err(IntoResponse::into_response)?;
    registration_options(
        signup::start_passkey(&app, &row.id, &row.webauthn_handle, &row.email).await,
    )
}

/// The registration options for the page's script, whoever the passkey is for.
fn registration_options(started: Result<(String, Value), Failure>) -> Result<Response, Response> {
    match started {
        Ok((ceremony, options)) => {
            Ok(Json(json!({ "ceremony": ceremony, "options": options })).into_response())
        }
        Err(Failure::Store(e)) => Err(Error::from(e).into_response()),
        Err(_) => Err(refused(
            StatusCode::BAD_REQUEST,
            "The passkey could not be started. Try again.",
        )),
    }
}

/// The authenticator's answer as the page's script posted it.
fn registration(credential: Value) -> Result<RegisterPublicKeyCredential, Response> {
    serde_json::from_value(credential).map_err(|_| {
        refused(
            StatusCode::BAD_REQUEST,
            "The passkey response could not be read.",
        )
    })
}

#[derive(Deserialize)]
pub struct PasskeyFinish {
    request: String,
    csrf: String,
    signup: String,
    ceremony: String,
    credential: Value,
}

async fn passkey_finish(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<PasskeyFinish>, JsonRejection>,
) -> Result<Response, Response> {
    let body = read(body)?;
    let context = checked(&app, &headers, &body.request, &body.csrf)
        .await
        .map_err(IntoResponse::into_response)?;
    let row = verified(&app, &context, &body.signup)
        .await
        .map_err(IntoResponse::into_response)?;
    let credential = registration(body.credential)?;
    let ip = crate::http::client_ip(&connect);
    let credential = Credential::Passkey {
        ceremony: &body.ceremony,
        credential: &credential,
    };
    match finish(&app, &headers, &context, &row, credential, ip).await {
        Ok(Ok((next, cookie))) => {
            let mut response = Json(json!({ "redirect": next })).into_response();
            response.headers_mut().append(header::SET_COOKIE, cookie);
            Ok(response)
        }
        Ok(Err((status, message))) => Err(refused(status, &message)),
        Err(e) => Err(e.into_response()),
    }
}

// ---- Invitations ---------------------------------------------------------------------------
// The link's token travels in every form and call of these pages: it is the proof (of the
// mailbox, and against cross-site requests, as an unguessable value the attacker lacks).

#[derive(Template)]
#[template(path = "signup_invitation.html")]
pub struct InvitationPage<'a> {
    pub org: &'a crate::store::orgs::Organization,
    pub token: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub passkey: bool,
    pub password: bool,
    pub email_code: bool,
}

fn invitation_dead() -> Error {
    Error::page(
        StatusCode::GONE,
        "Invitation not valid",
        "This invitation link has expired or was already used. Ask for a new invitation.",
    )
}

async fn live_invitation(
    app: &App,
    token: &str,
) -> Result<
    (
        crate::store::invitations::Invitation,
        crate::store::orgs::Organization,
    ),
    Error,
> {
    match crate::account::invitations::find_live(app, token).await {
        Ok(found) => Ok(found),
        Err(Failure::Store(e)) => Err(e.into()),
        Err(_) => Err(invitation_dead()),
    }
}

async fn invitation_view(
    app: &App,
    token: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, Error> {
    let (invitation, org) = live_invitation(app, token).await?;
    let methods = org.auth_config()?;
    Ok(super::render_status(
        status,
        &InvitationPage {
            org: &org,
            token,
            email: &invitation.email,
            error,
            passkey: app.passkeys.is_some() && methods.passkey.enabled,
            password: methods.password.enabled,
            email_code: methods.email_otp.enabled,
        },
    ))
}

#[derive(Deserialize)]
pub struct TokenRef {
    token: String,
}

async fn invitation_page(
    State(app): State<AppState>,
    Query(q): Query<TokenRef>,
) -> Result<Response, PageError> {
    Ok(invitation_view(&app, &q.token, StatusCode::OK, None).await?)
}

/// Accepts the invitation and signs the new account in; the account page is where it lands
/// (an invitation starts from no application).
async fn accept(
    app: &App,
    headers: &HeaderMap,
    token: &str,
    credential: Credential<'_>,
    ip: std::net::IpAddr,
) -> Result<Result<HeaderValue, (StatusCode, String)>, Error> {
    let (user, _, authentication) =
        match crate::account::invitations::accept(app, token, credential, Some(ip)).await {
            Ok(done) => done,
            Err(Failure::Password(why)) => {
                return Ok(Err((StatusCode::BAD_REQUEST, capitalized(&why))));
            }
            Err(Failure::Passkey(e)) => return Ok(Err((StatusCode::BAD_REQUEST, e.to_string()))),
            Err(Failure::MethodOff(m)) => {
                return Ok(Err((
                    StatusCode::FORBIDDEN,
                    format!(
                        "Sign-in by {} is not offered here.",
                        m.label().to_lowercase()
                    ),
                )));
            }
            Err(Failure::Taken) => {
                return Ok(Err((
                    StatusCode::CONFLICT,
                    "This address already has an account. Sign in instead.".into(),
                )));
            }
            Err(Failure::Store(e)) => return Err(e.into()),
            Err(_) => return Err(invitation_dead()),
        };
    let previous = crate::session::current(app, headers).await?;
    let (_, cookie) = crate::session::establish(
        app,
        previous.as_ref().map(|c| &c.session),
        &user,
        &authentication,
        crate::http::user_agent(headers),
        Some(ip.to_string()),
    )
    .await?;
    Ok(Ok(cookie))
}

#[derive(Deserialize)]
pub struct InvitationPasswordForm {
    token: String,
    password: String,
}

async fn invitation_password(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<InvitationPasswordForm>,
) -> Result<Response, PageError> {
    let ip = crate::http::client_ip(&connect);
    let credential = Credential::Password(form.password);
    match accept(&app, &headers, &form.token, credential, ip).await? {
        Ok(cookie) => Ok(crate::oidc::authorize::with_cookie(
            response::redirect("/account"),
            cookie,
        )),
        Err((status, message)) => {
            Ok(invitation_view(&app, &form.token, status, Some(&message)).await?)
        }
    }
}

async fn invitation_email_only(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<TokenRef>,
) -> Result<Response, PageError> {
    let ip = crate::http::client_ip(&connect);
    match accept(&app, &headers, &form.token, Credential::EmailCode, ip).await? {
        Ok(cookie) => Ok(crate::oidc::authorize::with_cookie(
            response::redirect("/account"),
            cookie,
        )),
        Err((status, message)) => {
            Ok(invitation_view(&app, &form.token, status, Some(&message)).await?)
        }
    }
}

#[derive(Deserialize)]
pub struct InvitationPasskeyOptions {
    invitation: String,
}

async fn invitation_passkey_options(
    State(app): State<AppState>,
    body: Result<Json<InvitationPasskeyOptions>, JsonRejection>,
) -> Result<Response, Response> {
    let body = read(body)?;
    let (invitation, _) = live_invitation(&app, &body.invitation)
        .await
        .map_err(IntoResponse::into_response)?;
    registration_options(
        signup::start_passkey(
            &app,
            &invitation.id,
            &invitation.webauthn_handle,
            &invitation.email,
        )
        .await,
    )
}

#[derive(Deserialize)]
pub struct InvitationPasskeyFinish {
    invitation: String,
    ceremony: String,
    credential: Value,
}

async fn invitation_passkey_finish(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<InvitationPasskeyFinish>, JsonRejection>,
) -> Result<Response, Response> {
    let body = read(body)?;
    let credential = registration(body.credential)?;
    let ip = crate::http::client_ip(&connect);
    let credential = Credential::Passkey {
        ceremony: &body.ceremony,
        credential: &credential,
    };
    match accept(&app, &headers, &body.invitation, credential, ip).await {
        Ok(Ok(cookie)) => {
            let mut response = Json(json!({ "redirect": "/account" })).into_response();
            response.headers_mut().append(header::SET_COOKIE, cookie);
            Ok(response)
        }
        Ok(Err((status, message))) => Err(refused(status, &message)),
        Err(e) => Err(e.into_response()),
    }
}
