//! The email and text-message code forms of the sign-in page: send a code, then type it.
//! Every answer to "send" looks the same whether or not the address has an account.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;

use super::interaction::{
    LoginState, SignInContext, WRONG_ACCOUNT, finish_sign_in, render_login, sign_in_failed,
};
use super::views::CodeStep;
use crate::app::AppState;
use crate::authn::otp::{self, Failure};
use crate::delivery::Channel;
use crate::error::{Error, PageError};
use crate::oidc::authorize::response;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login/code/send", post(send))
        .route("/login/code/verify", post(verify))
}

#[derive(Deserialize)]
pub struct SendForm {
    request: String,
    csrf: String,
    channel: String,
    address: String,
}

fn channel(text: &str) -> Result<Channel, Error> {
    otp::channel_from(text)
        .ok_or_else(|| Error::bad_request_page("Invalid form", "Unknown kind of code."))
}

fn typed(channel: Channel, address: &str) -> (Option<&str>, Option<&str>) {
    match channel {
        Channel::Email => (Some(address), None),
        Channel::Sms => (None, Some(address)),
    }
}

/// What both steps check first: the parked request of this browser, its CSRF token, and that
/// the organization offers this kind of code.
struct Step {
    channel: Channel,
    method: crate::authn::methods::Method,
    context: SignInContext,
}

impl Step {
    async fn open(
        app: &crate::app::App,
        headers: &HeaderMap,
        request: &str,
        csrf: &str,
        channel_text: &str,
    ) -> Result<Step, Error> {
        let channel = channel(channel_text)?;
        let method = otp::method_of(channel);
        let context = SignInContext::open(app, headers, request, csrf, method).await?;
        Ok(Step {
            channel,
            method,
            context,
        })
    }
}

async fn send(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SendForm>,
) -> Result<Response, PageError> {
    let Step {
        channel,
        method,
        context,
    } = Step::open(&app, &headers, &form.request, &form.csrf, &form.channel).await?;
    let pending = &context.pending;
    let ip = Some(crate::http::client_ip(&connect));
    // A reauthentication sends the code to the hinted account's address only.
    let hinted = match &pending.request.hinted_subject {
        Some(sub) => crate::store::users::find(&app.store, sub).await?,
        None => None,
    };
    let address = match (&hinted, channel) {
        (Some(user), Channel::Email) => user.email.clone(),
        _ => form.address.chars().take(320).collect(),
    };
    let (typed_email, typed_phone) = typed(channel, &address);
    match otp::send(
        &app,
        &context.org.id,
        &context.methods,
        channel,
        &address,
        &pending.id,
        ip,
    )
    .await
    {
        Ok(sent) => {
            let state = LoginState {
                tab: Some(method),
                typed_email,
                typed_phone,
                code: Some(CodeStep {
                    challenge: sent.challenge_id,
                    channel: channel.as_str(),
                    address: sent.address,
                    masked: sent.masked,
                    minutes: app.config.otp.code_ttl_secs / 60,
                }),
                ..Default::default()
            };
            Ok(render_login(&app, &headers, &context, StatusCode::OK, state).await?)
        }
        Err(failure) => {
            let (status, message, retry) = match failure {
                Failure::InvalidAddress(why) => (StatusCode::BAD_REQUEST, why, None),
                Failure::Throttled { retry_after_secs } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "A code was sent a moment ago. Wait {retry_after_secs} seconds before asking for another."
                    ),
                    Some(retry_after_secs),
                ),
                Failure::Store(e) => return Err(Error::from(e).into()),
                // Checked above; `send` does not check codes.
                Failure::Disabled | Failure::WrongCode { .. } | Failure::Dead => {
                    return Err(
                        Error::bad_request_page("Start again", "Go back and start again.").into(),
                    );
                }
            };
            let state = LoginState {
                tab: Some(method),
                error: Some(&message),
                typed_email,
                typed_phone,
                ..Default::default()
            };
            let mut page = render_login(&app, &headers, &context, status, state).await?;
            if let Some(secs) = retry {
                page.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Ok(page)
        }
    }
}

#[derive(Deserialize)]
pub struct VerifyForm {
    request: String,
    csrf: String,
    challenge: String,
    channel: String,
    address: String,
    code: String,
}

async fn verify(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<VerifyForm>,
) -> Result<Response, PageError> {
    let Step {
        channel,
        method,
        context,
    } = Step::open(&app, &headers, &form.request, &form.csrf, &form.channel).await?;
    let pending = &context.pending;
    let ip = Some(crate::http::client_ip(&connect));
    let code: String = form.code.chars().take(32).collect();
    let (user, authentication) = match otp::verify(
        &app,
        &context.org.id,
        &context.methods,
        &form.challenge,
        &pending.id,
        &code,
    )
    .await
    {
        Ok(done) => done,
        Err(Failure::Store(e)) => {
            sign_in_failed(&app, &context.org.id, method, None, ip, "unavailable").await;
            return Err(Error::from(e).into());
        }
        Err(failure) => {
            sign_in_failed(&app, &context.org.id, method, None, ip, failure.reason()).await;
            let (typed_email, typed_phone) = typed(channel, &form.address);
            let (status, message, code_step) = match failure {
                Failure::WrongCode { attempts_left } => (
                    StatusCode::UNAUTHORIZED,
                    format!(
                        "That code is not right. {attempts_left} {} left.",
                        if attempts_left == 1 { "try" } else { "tries" }
                    ),
                    // Same challenge: the person types again.
                    Some(CodeStep {
                        challenge: form.challenge.chars().take(64).collect(),
                        channel: channel.as_str(),
                        address: form.address.chars().take(320).collect(),
                        masked: otp::mask(channel, &form.address),
                        minutes: app.config.otp.code_ttl_secs / 60,
                    }),
                ),
                _ => (
                    StatusCode::UNAUTHORIZED,
                    "That code has expired, was already used or was typed wrong too often. Ask for a new one."
                        .to_owned(),
                    None,
                ),
            };
            let state = LoginState {
                tab: Some(method),
                error: Some(&message),
                typed_email,
                typed_phone,
                code: code_step,
            };
            return Ok(render_login(&app, &headers, &context, status, state).await?);
        }
    };
    if pending
        .request
        .hinted_subject
        .as_deref()
        .is_some_and(|sub| sub != user.id)
    {
        // Reauthentication never switches accounts silently.
        return Err(Error::page(StatusCode::FORBIDDEN, "Different account", WRONG_ACCOUNT).into());
    }
    let (next, cookie) =
        finish_sign_in(&app, &headers, &context, &user, method, &authentication, ip).await?;
    Ok(crate::oidc::authorize::with_cookie(
        response::redirect(&next),
        cookie,
    ))
}
