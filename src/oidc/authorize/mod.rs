//! The authorization endpoint (OIDC Core §3.1.2): validate, then either answer the client at
//! once (SSO, `prompt=none`) or park the request and send the person to the sign-in page,
//! coming back through `/authorize/resume` when they are done.

pub mod pending;
pub mod pkce;
pub mod prompt;
pub mod redirect_uri;
pub mod request;
pub mod response;

use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use self::prompt::{Needs, SessionFacts, Step};
use self::request::{AuthorizationRequest, Rejection};
use crate::app::{App, AppState};
use crate::error::{Code, Error, PageError};
use crate::http::params::Params;
use crate::security::{digest, random_secret};
use crate::session::{self, Current};
use crate::store;
use crate::store::clients::Client;
use crate::store::codes::{self, CodeRow};

pub async fn get_handler(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    begin(&app, &headers, params).await
}

/// §3.1.2.1: the endpoint must support POST with a form body as well as GET.
pub async fn post_handler(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return PageError(Error::bad_request_page(
            "Invalid request",
            "The authorization request must be sent as a form (application/x-www-form-urlencoded).",
        ))
        .into_response();
    }
    begin(&app, &headers, Params::parse(&body)).await
}

async fn begin(app: &App, headers: &HeaderMap, params: Params) -> Response {
    let (client, req) = match request::validate(app, &params).await {
        Ok(ok) => ok,
        Err(rejection) => return reject(app, rejection),
    };
    let (browser, browser_cookie) = session::browser_id(app, headers);
    let mut response = match proceed(app, headers, &client, &req, None, &browser).await {
        Ok(r) => r,
        Err(e) => PageError(e).into_response(),
    };
    if let Some(cookie) = browser_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
pub struct ResumeQuery {
    request: String,
}

pub async fn resume_handler(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ResumeQuery>,
) -> Result<Response, PageError> {
    let pending = pending::load(&app, &headers, &q.request).await?;
    let client = crate::store::clients::find(&app.store, &pending.request.client_id)
        .await?
        .ok_or_else(|| {
            Error::bad_request_page("Unknown application", "This application no longer exists.")
        })?;
    let browser = app
        .cookies
        .read(&headers, crate::http::cookies::BROWSER)
        .unwrap_or_default();
    Ok(proceed(
        &app,
        &headers,
        &client,
        &pending.request,
        Some(&pending),
        &browser,
    )
    .await?)
}

/// Decides the next step for a validated request, with or without a parked copy of it.
async fn proceed(
    app: &App,
    headers: &HeaderMap,
    client: &Client,
    req: &AuthorizationRequest,
    parked: Option<&pending::Pending>,
    browser: &str,
) -> Result<Response, Error> {
    let current = session::current(app, headers)
        .await?
        // A session of another organization does not count for this client.
        .filter(|c| c.session.org_id == client.org_id);
    let now = store::now();
    let progress = parked.map(|p| p.progress()).unwrap_or_default();
    let needs = Needs {
        prompt: req.prompt,
        max_age: req.max_age,
        hinted_subject: req.hinted_subject.as_deref(),
    };
    let facts = current.as_ref().map(|c| SessionFacts {
        user_id: &c.user.id,
        session_id: &c.session.id,
        auth_time: c.session.auth_time,
    });
    let step = prompt::next_step(&needs, facts.as_ref(), &progress, now);
    if step == Step::Issue {
        let current = current.ok_or_else(|| Error::Internal("issue without a session".into()))?;
        if let Some(p) = parked {
            // Finishing consumes the parked request: a second tab cannot reuse it.
            if !crate::store::auth_requests::delete(&app.store, &p.id).await? {
                return Err(Error::bad_request_page(
                    "Sign-in already completed",
                    "This sign-in request was already completed. Return to the application and start again.",
                ));
            }
        }
        let code = issue_code(app, req, &current).await?;
        return Ok(response::success(&app.config.issuer, &req.reply, &code));
    }
    if req.prompt.none {
        // §3.1.2.6: with prompt=none, any needed interaction is an error to the client.
        let code = match step {
            Step::SignIn => Code::LoginRequired,
            Step::SelectAccount => Code::AccountSelectionRequired,
            Step::Consent => Code::ConsentRequired,
            Step::Issue => unreachable!("handled above"),
        };
        return Ok(response::error(
            &app.config.issuer,
            &req.reply,
            code,
            "user interaction is required",
        ));
    }
    let id = match parked {
        Some(p) => p.id.clone(),
        None => pending::park(app, browser, req).await?,
    };
    let page = match step {
        Step::SignIn => "/login",
        Step::SelectAccount => "/select-account",
        Step::Consent => "/consent",
        Step::Issue => unreachable!("handled above"),
    };
    Ok(response::redirect(&format!("{page}?request={id}")))
}

fn reject(app: &App, rejection: Rejection) -> Response {
    match rejection.reply {
        Some(reply) => response::error(
            &app.config.issuer,
            &reply,
            rejection.code,
            &rejection.description,
        ),
        None if rejection.code == Code::TemporarilyUnavailable => {
            PageError(Error::Unavailable(rejection.description)).into_response()
        }
        None => PageError(Error::bad_request_page(
            "This sign-in link is not valid",
            rejection.description,
        ))
        .into_response(),
    }
}

/// Stores the code's digest with everything the token endpoint must check and copy into the
/// ID token; returns the code itself, which exists nowhere else.
async fn issue_code(
    app: &App,
    req: &AuthorizationRequest,
    current: &Current,
) -> Result<String, Error> {
    let code = random_secret();
    let now = store::now();
    let row = CodeRow {
        code_hash: digest(&code),
        grant_id: crate::security::random_id(),
        client_id: req.client_id.clone(),
        user_id: current.user.id.clone(),
        session_id: current.session.id.clone(),
        redirect_uri: req.reply.redirect_uri.clone(),
        scope: req.scope.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time: current.session.auth_time,
        amr: current.session.amr.clone(),
        acr: current.session.acr.clone(),
        created_at: now,
        expires_at: now + app.config.tokens.code_ttl_secs,
        consumed_at: None,
    };
    codes::insert(&app.store, &row).await?;
    Ok(code)
}

/// Sets the cookie a response must carry (used by the interaction pages).
pub fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}
