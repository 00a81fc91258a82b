//! The interaction pages of a parked authorization request: sign in, choose the account,
//! consent. Each form echoes the request's CSRF token and ends by sending the browser back
//! to `/authorize/resume`, which decides what comes next.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::views::{CodeStep, ConsentPage, HomePage, LoginPage, LoginTab, SelectAccountPage};
use crate::app::{App, AppState};
use crate::authn::methods::{AuthConfig, Method};
use crate::authn::{self, Authentication};
use crate::error::{Code, Error, PageError};
use crate::oidc::authorize::pending::{self, Pending};
use crate::oidc::authorize::response;
use crate::oidc::scope::Scope;
use crate::session;
use crate::store::clients::Client;
use crate::store::orgs::{self, Organization};
use crate::store::users::User;
use crate::store::{auth_requests, clients, users};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route(
            "/select-account",
            get(select_account_page).post(select_account_submit),
        )
        .route("/consent", get(consent_page).post(consent_submit))
}

pub async fn home(State(app): State<AppState>) -> Response {
    super::render(&HomePage {
        issuer: &app.config.issuer,
        demo: app.config.demo,
    })
}

#[derive(Deserialize)]
pub struct RequestRef {
    request: String,
}

async fn client_name(app: &App, pending: &Pending) -> Result<String, Error> {
    Ok(clients::find(&app.store, &pending.request.client_id)
        .await?
        .map(|c| c.name)
        .unwrap_or_else(|| "the application".into()))
}

/// A parked request with its application, that application's organization, and the sign-in
/// methods the organization offers, read from the database once per request: an admin's
/// change applies to the next page load.
pub(crate) struct SignInContext {
    pub pending: Pending,
    pub client: Client,
    pub org: Organization,
    pub methods: AuthConfig,
}

impl SignInContext {
    pub async fn load(app: &App, pending: Pending) -> Result<SignInContext, Error> {
        let client = clients::find(&app.store, &pending.request.client_id)
            .await?
            .ok_or_else(|| {
                Error::bad_request_page("Unknown application", "This application no longer exists.")
            })?;
        let org = orgs::find(&app.store, &client.org_id)
            .await?
            .ok_or_else(|| Error::Internal("client without an organization".into()))?;
        let methods = org.auth_config()?;
        Ok(SignInContext {
            pending,
            client,
            org,
            methods,
        })
    }

    /// What every sign-in method's form or call checks first: this browser's parked request,
    /// its CSRF token, and that the organization offers `method`.
    pub async fn open(
        app: &App,
        headers: &HeaderMap,
        request: &str,
        csrf: &str,
        method: Method,
    ) -> Result<SignInContext, Error> {
        let pending = pending::load(app, headers, request).await?;
        pending.check_csrf(csrf)?;
        let context = SignInContext::load(app, pending).await?;
        context.require(method)?;
        Ok(context)
    }

    /// Refuses a method the organization has turned off, whatever the browser sent.
    pub fn require(&self, method: Method) -> Result<(), Error> {
        if self.methods.enabled(method) {
            Ok(())
        } else {
            Err(Error::page(
                StatusCode::FORBIDDEN,
                "Sign-in method not available",
                format!(
                    "{} does not offer sign-in by {}. Go back and choose another way.",
                    self.org.name,
                    method.label().to_lowercase()
                ),
            ))
        }
    }

    /// Passkeys are on for this organization and possible on this deployment.
    pub fn passkeys(&self, app: &App) -> bool {
        app.passkeys.is_some() && self.methods.passkey.enabled
    }
}

/// A failed sign-in: counted in the metrics and written to the audit log.
pub(crate) async fn sign_in_failed(
    app: &App,
    org_id: &str,
    method: Method,
    user_id: Option<&str>,
    ip: Option<std::net::IpAddr>,
    reason: &'static str,
) {
    let outcome = if reason == "unavailable" {
        "error"
    } else if reason == "rate_limited" {
        "rate_limited"
    } else {
        "failure"
    };
    crate::metrics::global().sign_in(method.key(), outcome);
    let recorded = crate::audit::sign_in(
        &app.store,
        org_id,
        method,
        user_id,
        crate::audit::Outcome::Failure,
        ip,
        Some(reason),
    )
    .await;
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "writing a failed sign-in to the audit log failed");
    }
}

fn resume(pending: &Pending) -> Response {
    response::redirect(&format!("/authorize/resume?request={}", pending.id))
}

/// The email the sign-in form starts with: the hinted account, else `login_hint`, else the
/// account of the current session (reauthentication).
async fn prefill(
    app: &App,
    headers: &HeaderMap,
    pending: &Pending,
    org_id: &str,
) -> Result<(String, bool, bool), Error> {
    if let Some(sub) = &pending.request.hinted_subject
        && let Some(user) = users::find(&app.store, sub).await?
    {
        return Ok((user.email, true, true));
    }
    // A session of another organization is no account here.
    let current = session::current(app, headers)
        .await?
        .filter(|c| c.session.org_id == org_id);
    if let Some(hint) = &pending.request.login_hint {
        return Ok((hint.clone(), false, current.is_some()));
    }
    Ok(match current {
        Some(c) => (c.user.email, false, true),
        None => (String::new(), false, false),
    })
}

/// What the sign-in page shows besides its defaults: the chosen tab, an error, what was
/// typed, and the code-entry step after a one-time code was sent.
#[derive(Default)]
pub(crate) struct LoginState<'a> {
    pub tab: Option<Method>,
    pub error: Option<&'a str>,
    pub typed_email: Option<&'a str>,
    pub typed_phone: Option<&'a str>,
    pub code: Option<CodeStep>,
}

/// The methods that have a form of their own on the page, shown as tabs when more than one.
const FORM_METHODS: [Method; 3] = [Method::Password, Method::EmailOtp, Method::PhoneOtp];

pub(crate) async fn render_login(
    app: &App,
    headers: &HeaderMap,
    context: &SignInContext,
    status: StatusCode,
    state: LoginState<'_>,
) -> Result<Response, Error> {
    let pending = &context.pending;
    let (email, locked, reauthenticating) = prefill(app, headers, pending, &context.org.id).await?;
    let email = if locked {
        email
    } else {
        state.typed_email.map(str::to_owned).unwrap_or(email)
    };
    let offered: Vec<Method> = FORM_METHODS
        .into_iter()
        .filter(|m| context.methods.enabled(*m))
        .collect();
    let active = state
        .tab
        .filter(|m| offered.contains(m))
        .or_else(|| offered.first().copied());
    let tabs = offered
        .iter()
        .map(|m| LoginTab {
            key: m.key(),
            label: m.label(),
            href: format!("/login?request={}&method={}", pending.id, m.key()),
            active: Some(*m) == active,
        })
        .collect();
    let passkeys = context.passkeys(app);
    Ok(super::render_status(
        status,
        &LoginPage {
            org: &context.org,
            client_name: &context.client.name,
            request_id: &pending.id,
            csrf: &pending.csrf,
            email: &email,
            phone: state.typed_phone.unwrap_or(""),
            email_locked: locked,
            reauthenticating,
            error: state.error,
            passkeys,
            passkey_first: passkeys && passkey_first(app, pending).await?,
            qr: context.methods.qr.enabled,
            tabs,
            active: active.map(Method::key).unwrap_or(""),
            code: state.code,
            // A reauthentication is for an existing account.
            signup: context.methods.signup.mode == crate::authn::methods::SignupMode::Open
                && !reauthenticating,
            upstream: context
                .methods
                .upstream
                .iter()
                .filter(|p| p.enabled)
                .map(|p| super::views::UpstreamButton {
                    id: p.id.clone(),
                    display_name: p.display_name.clone(),
                })
                .collect(),
        },
    ))
}

/// A hinted account that holds a passkey is offered the passkey first (reauthentication).
async fn passkey_first(app: &App, pending: &Pending) -> Result<bool, Error> {
    let Some(sub) = &pending.request.hinted_subject else {
        return Ok(false);
    };
    Ok(app.passkeys.is_some()
        && crate::store::passkeys::count_usable_for_user(&app.store, sub).await? > 0)
}

#[derive(Deserialize)]
pub struct LoginQuery {
    request: String,
    /// The tab to show (an `auth_config` key); ignored when that method is off.
    method: Option<String>,
}

async fn login_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, PageError> {
    let pending = pending::load(&app, &headers, &q.request).await?;
    let context = SignInContext::load(&app, pending).await?;
    let state = LoginState {
        tab: q.method.as_deref().and_then(Method::from_key),
        ..Default::default()
    };
    Ok(render_login(&app, &headers, &context, StatusCode::OK, state).await?)
}

#[derive(Deserialize)]
pub struct LoginForm {
    request: String,
    csrf: String,
    email: String,
    password: String,
}

async fn login_submit(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let form = match form {
        Ok(Form(form)) => form,
        // A body over `MAX_BODY_BYTES` is 413 (RFC 9110 §15.5.14), not an incomplete form.
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(Error::page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request too large",
                "The sign-in form was too large. Go back and try again.",
            )
            .into());
        }
        Err(_) => {
            return Err(Error::bad_request_page(
                "Invalid form",
                "The sign-in form was incomplete. Go back and try again.",
            )
            .into());
        }
    };
    let context =
        SignInContext::open(&app, &headers, &form.request, &form.csrf, Method::Password).await?;
    let client = &context.client;
    let ip = Some(crate::http::client_ip(&connect));
    let outcome = authn::password::authenticate(
        &app.store,
        &app.config.rate_limits,
        &client.org_id,
        &form.email,
        &form.password,
        ip,
    )
    .await;
    let user = match outcome {
        Ok(user) => user,
        Err(failure) => {
            use authn::password::Failure;
            let reason = match failure {
                Failure::Invalid => "wrong_email_or_password",
                Failure::RateLimited { .. } => "rate_limited",
                Failure::Disabled => "account_disabled",
                Failure::Store(_) | Failure::Cpu(_) => "unavailable",
            };
            sign_in_failed(&app, &client.org_id, Method::Password, None, ip, reason).await;
            let (status, message) = match failure {
                Failure::Invalid => (
                    StatusCode::UNAUTHORIZED,
                    "The email or password is incorrect.".to_owned(),
                ),
                Failure::RateLimited { retry_after_secs } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Too many failed attempts. Try again in {} minutes.",
                        (retry_after_secs + 59) / 60
                    ),
                ),
                Failure::Disabled => (
                    StatusCode::FORBIDDEN,
                    "This account has been disabled. Contact your administrator.".to_owned(),
                ),
                Failure::Store(e) => return Err(Error::from(e).into()),
                Failure::Cpu(e) => return Err(Error::Internal(e).into()),
            };
            let state = LoginState {
                tab: Some(Method::Password),
                error: Some(&message),
                typed_email: Some(&form.email),
                ..Default::default()
            };
            let mut response = render_login(&app, &headers, &context, status, state).await?;
            if status == StatusCode::TOO_MANY_REQUESTS {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(60));
            }
            return Ok(response);
        }
    };
    if let Some(hinted) = &context.pending.request.hinted_subject {
        // Reauthentication never switches accounts silently.
        if hinted != &user.id {
            let state = LoginState {
                tab: Some(Method::Password),
                error: Some(WRONG_ACCOUNT),
                ..Default::default()
            };
            return Ok(render_login(&app, &headers, &context, StatusCode::FORBIDDEN, state).await?);
        }
    }
    let (next, cookie) = finish_sign_in(
        &app,
        &headers,
        &context,
        &user,
        Method::Password,
        &Authentication::password(),
        ip,
    )
    .await?;
    Ok(crate::oidc::authorize::with_cookie(
        response::redirect(&next),
        cookie,
    ))
}

/// Once a person is offered to add a passkey after a password sign-in and says "not now",
/// this cookie keeps the offer away for 30 days.
pub(crate) const NUDGE_COOKIE: &str = "tessera_passkey_nudge";

pub(crate) const WRONG_ACCOUNT: &str = "The application asked you to confirm a different account. Sign in as that account, or go back to the application.";

/// Records a successful sign-in for a parked request (the session, and that this request's
/// sign-in happened) and says where the browser goes next, with the session cookie to set.
pub(crate) async fn finish_sign_in(
    app: &App,
    headers: &HeaderMap,
    context: &SignInContext,
    user: &User,
    method: Method,
    authentication: &Authentication,
    ip: Option<std::net::IpAddr>,
) -> Result<(String, HeaderValue), Error> {
    let pending = &context.pending;
    crate::metrics::global().sign_in(method.key(), "success");
    crate::audit::sign_in(
        &app.store,
        &user.org_id,
        method,
        Some(&user.id),
        crate::audit::Outcome::Success,
        ip,
        None,
    )
    .await?;
    let previous = session::current(app, headers).await?;
    let (session, cookie) = session::establish(
        app,
        previous.as_ref().map(|c| &c.session),
        user,
        authentication,
        crate::http::user_agent(headers),
        ip.map(|i| i.to_string()),
    )
    .await?;
    auth_requests::mark_authenticated(&app.store, &pending.id, &session.id).await?;
    tracing::info!(amr = %authentication.amr.join(" "), "sign-in succeeded");
    let offer_passkey = authentication.amr == ["pwd"]
        && context.passkeys(app)
        && app.cookies.read(headers, NUDGE_COOKIE).is_none()
        && crate::store::passkeys::count_usable_for_user(&app.store, &user.id).await? == 0;
    let next =
        if let Some(linked) = super::upstream::complete_pending_link(app, pending, user).await? {
            linked
        } else if offer_passkey {
            format!("/passkeys/offer?request={}", pending.id)
        } else {
            format!("/authorize/resume?request={}", pending.id)
        };
    Ok((next, cookie))
}

async fn select_account_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(r): Query<RequestRef>,
) -> Result<Response, PageError> {
    let pending = pending::load(&app, &headers, &r.request).await?;
    let Some(current) = session::current(&app, &headers).await? else {
        return Ok(response::redirect(&format!(
            "/login?request={}",
            pending.id
        )));
    };
    let name = client_name(&app, &pending).await?;
    Ok(super::render(&SelectAccountPage {
        client_name: &name,
        request_id: &pending.id,
        csrf: &pending.csrf,
        email: &current.user.email,
    }))
}

#[derive(Deserialize)]
pub struct ChoiceForm {
    request: String,
    csrf: String,
    choice: String,
}

async fn select_account_submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ChoiceForm>,
) -> Result<Response, PageError> {
    let pending = pending::load(&app, &headers, &form.request).await?;
    pending.check_csrf(&form.csrf)?;
    match (
        form.choice.as_str(),
        session::current(&app, &headers).await?,
    ) {
        ("current", Some(current)) => {
            auth_requests::mark_authenticated(&app.store, &pending.id, &current.session.id).await?;
            Ok(resume(&pending))
        }
        _ => Ok(response::redirect(&format!(
            "/login?request={}",
            pending.id
        ))),
    }
}

async fn consent_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(r): Query<RequestRef>,
) -> Result<Response, PageError> {
    let pending = pending::load(&app, &headers, &r.request).await?;
    let name = client_name(&app, &pending).await?;
    let scope = Scope::parse(&pending.request.scope);
    let scopes = scope.values().iter().map(|s| describe_scope(s)).collect();
    Ok(super::render(&ConsentPage {
        client_name: &name,
        request_id: &pending.id,
        csrf: &pending.csrf,
        scopes,
    }))
}

pub(crate) fn describe_scope(scope: &str) -> &'static str {
    match scope {
        "openid" => "Know who you are",
        "profile" => "See your name and profile",
        "email" => "See your email address",
        "phone" => "See your phone number",
        "address" => "See your postal address",
        "offline_access" => "Stay signed in when you are not using it",
        _ => "Other access",
    }
}

#[derive(Deserialize)]
pub struct ConsentForm {
    request: String,
    csrf: String,
    decision: String,
}

async fn consent_submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Result<Response, PageError> {
    let pending = pending::load(&app, &headers, &form.request).await?;
    pending.check_csrf(&form.csrf)?;
    if form.decision == "allow" {
        auth_requests::mark_interaction_done(&app.store, &pending.id).await?;
        return Ok(resume(&pending));
    }
    auth_requests::delete(&app.store, &pending.id).await?;
    Ok(response::error(
        &app.config.issuer,
        &pending.request.reply,
        Code::AccessDenied,
        "the user denied the request",
    ))
}
