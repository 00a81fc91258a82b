//! Sign-in through an upstream OpenID provider, hanging off a parked authorization request:
//! the button posts here, the browser goes to the provider, and comes back to
//! `/login/upstream/callback`, which verifies what the provider says, finds or links the
//! account (README "Upstream identity providers" has the linking rules) and finishes the
//! sign-in like every other method.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::interaction::{SignInContext, WRONG_ACCOUNT, finish_sign_in, sign_in_failed};
use super::views::UpstreamPage;
use crate::app::{App, AppState};
use crate::authn::methods::Method;
use crate::authn::upstream::{self, UpstreamProvider, Verified};
use crate::error::{Error, PageError};
use crate::oidc::authorize::pending::{self, Pending};
use crate::oidc::authorize::response;
use crate::security::{digest, random_id, random_secret};
use crate::store::upstream_identities::{
    self as links, PendingLink, UpstreamIdentity, UpstreamLogin,
};
use crate::store::users::{self, User};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login/upstream", post(start))
        .route("/login/upstream/callback", get(callback))
        .route("/login/upstream/linked", get(linked))
}

/// The one redirect URI to register at every provider.
pub fn callback_url(app: &App) -> String {
    format!(
        "{}/login/upstream/callback",
        app.config.issuer.trim_end_matches('/')
    )
}

/// The relying party asked for a fresh sign-in (`prompt=login`, `max_age`, or a hinted
/// account): with `reauthenticate_upstream` this is forwarded to the provider.
fn wants_reauthentication(pending: &Pending) -> bool {
    let request = &pending.request;
    request.prompt.login || request.max_age.is_some() || request.hinted_subject.is_some()
}

/// A page about this sign-in, with the way back to the other methods.
fn page(status: StatusCode, pending: &Pending, title: &str, message: &str) -> Response {
    super::render_status(
        status,
        &UpstreamPage {
            title,
            message,
            try_again: Some(format!("/login?request={}", pending.id)),
            continue_to: None,
        },
    )
}

#[derive(Deserialize)]
pub struct StartForm {
    request: String,
    csrf: String,
    provider: String,
}

async fn start(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<StartForm>,
) -> Result<Response, PageError> {
    let context =
        SignInContext::open(&app, &headers, &form.request, &form.csrf, Method::Upstream).await?;
    let pending = &context.pending;
    let Some(provider) = context.methods.upstream_provider(&form.provider) else {
        return Ok(page(
            StatusCode::FORBIDDEN,
            pending,
            "Sign-in method not available",
            &format!(
                "{} does not offer this provider. Choose another way to sign in.",
                context.org.name
            ),
        ));
    };
    let reauthenticate = provider.reauthenticate_upstream && wants_reauthentication(pending);
    let state = random_secret();
    let url = upstream::authorization_url(
        &app.upstream,
        &app.http,
        &app.instance_key,
        provider,
        &callback_url(&app),
        &state,
        reauthenticate,
    )
    .await;
    let url = match url {
        Ok(url) => url,
        Err(failure) => {
            tracing::warn!(provider = %provider.id, error = %failure, "upstream sign-in could not start");
            let ip = Some(crate::http::client_ip(&connect));
            sign_in_failed(
                &app,
                &context.org.id,
                Method::Upstream,
                None,
                ip,
                failure.reason(),
            )
            .await;
            return Ok(unavailable(pending, provider));
        }
    };
    let now = crate::store::now();
    links::insert_login(
        &app.store,
        &UpstreamLogin {
            state_hash: digest(&state),
            request_id: pending.id.clone(),
            org_id: context.org.id.clone(),
            provider_id: provider.id.clone(),
            reauthenticate,
            created_at: now,
            expires_at: now + upstream::LOGIN_TTL_SECS,
        },
    )
    .await?;
    Ok(response::redirect(&url))
}

fn unavailable(pending: &Pending, provider: &UpstreamProvider) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        pending,
        &format!("{} is not available", provider.display_name),
        &format!(
            "Signing in with {} did not work this time. Try again later, or choose another way to sign in.",
            provider.display_name
        ),
    )
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

const EXPIRED: &str = "This sign-in has expired, was already used, or was started in another browser. Go back to the application and try again.";

async fn callback(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, PageError> {
    let ip = Some(crate::http::client_ip(&connect));
    let Some(state) = q.state.as_deref().filter(|s| s.len() <= 200) else {
        return Err(Error::bad_request_page("Sign-in failed", EXPIRED).into());
    };
    let now = crate::store::now();
    // Single use: the row is gone whatever happens next.
    let Some(login) = links::take_login(&app.store, &digest(state), now).await? else {
        return Err(Error::bad_request_page("Sign-in failed", EXPIRED).into());
    };
    // The parked request is bound to the browser that started the trip (its cookie).
    let pending = pending::load(&app, &headers, &login.request_id).await?;
    let context = SignInContext::load(&app, pending).await?;
    let pending = &context.pending;
    let Some(provider) = context.methods.upstream_provider(&login.provider_id) else {
        sign_in_failed(
            &app,
            &login.org_id,
            Method::Upstream,
            None,
            ip,
            "upstream_disabled",
        )
        .await;
        return Ok(page(
            StatusCode::FORBIDDEN,
            pending,
            "Sign-in method not available",
            &format!(
                "{} no longer offers this provider. Choose another way to sign in.",
                context.org.name
            ),
        ));
    };
    if let Some(error) = q.error.as_deref() {
        // RFC 6749 §4.1.2.1: the provider answered with an error instead of a code.
        let cancelled = error == "access_denied";
        let reason = if cancelled {
            "upstream_cancelled"
        } else {
            "upstream_error"
        };
        sign_in_failed(&app, &context.org.id, Method::Upstream, None, ip, reason).await;
        let (title, message) = if cancelled {
            (
                "Sign-in cancelled".to_owned(),
                format!(
                    "Signing in with {} was cancelled. You can try again or choose another way to sign in.",
                    provider.display_name
                ),
            )
        } else {
            (
                format!("{} could not sign you in", provider.display_name),
                format!(
                    "{} reported a problem and did not sign you in. Try again, or choose another way to sign in.",
                    provider.display_name
                ),
            )
        };
        let status = if cancelled {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        return Ok(page(status, pending, &title, &message));
    }
    let Some(code) = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2000)
    else {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            pending,
            "Sign-in failed",
            "The provider sent you back without a sign-in. Try again, or choose another way to sign in.",
        ));
    };
    let verified = upstream::finish(
        &app.upstream,
        &app.http,
        &app.instance_key,
        &upstream::secret_key(&app.instance_key),
        &context.org.id,
        provider,
        &callback_url(&app),
        state,
        code,
        login.reauthenticate.then_some(context.pending.created_at),
    )
    .await;
    let verified = match verified {
        Ok(v) => v,
        Err(failure) => {
            tracing::warn!(provider = %provider.id, error = %failure, "upstream sign-in refused");
            sign_in_failed(
                &app,
                &context.org.id,
                Method::Upstream,
                None,
                ip,
                failure.reason(),
            )
            .await;
            return Ok(page(
                StatusCode::BAD_REQUEST,
                pending,
                &format!("{} could not sign you in", provider.display_name),
                &format!(
                    "We could not confirm your sign-in with {}. Try again, or choose another way to sign in.",
                    provider.display_name
                ),
            ));
        }
    };
    let user = match resolve(&app, &context, provider, &verified).await? {
        Resolved::User(user) => user,
        Resolved::Page(response) => return Ok(response),
    };
    if user.disabled {
        sign_in_failed(
            &app,
            &context.org.id,
            Method::Upstream,
            Some(&user.id),
            ip,
            "account_disabled",
        )
        .await;
        return Ok(page(
            StatusCode::FORBIDDEN,
            pending,
            "Account disabled",
            "This account has been disabled. Contact your administrator.",
        ));
    }
    if let Some(hinted) = &pending.request.hinted_subject
        && hinted != &user.id
    {
        sign_in_failed(
            &app,
            &context.org.id,
            Method::Upstream,
            Some(&user.id),
            ip,
            "wrong_account",
        )
        .await;
        return Ok(page(
            StatusCode::FORBIDDEN,
            pending,
            "Wrong account",
            WRONG_ACCOUNT,
        ));
    }
    let (next, cookie) = finish_sign_in(
        &app,
        &headers,
        &context,
        &user,
        Method::Upstream,
        &verified.authentication(),
        ip,
    )
    .await?;
    Ok(crate::oidc::authorize::with_cookie(
        response::redirect(&next),
        cookie,
    ))
}

enum Resolved {
    User(User),
    Page(Response),
}

/// The account an upstream identity signs in to: the linked one; else the account with the
/// same email when the provider is trusted for email and says the address is verified (linked
/// now); else, when such an account exists, nothing until its holder proves it is theirs;
/// else a new account when the provider may create them.
async fn resolve(
    app: &App,
    context: &SignInContext,
    provider: &UpstreamProvider,
    verified: &Verified,
) -> Result<Resolved, Error> {
    let org_id = &context.org.id;
    let pending = &context.pending;
    let now = crate::store::now();
    if let Some(link) = links::find(&app.store, org_id, &verified.issuer, &verified.subject).await?
    {
        links::touch(&app.store, &link.id, now).await?;
        return match users::find(&app.store, &link.user_id).await? {
            Some(user) => Ok(Resolved::User(user)),
            None => Err(Error::Internal("upstream link without its user".into())),
        };
    }
    let existing = match &verified.email {
        Some(email) => users::find_by_email(&app.store, org_id, email).await?,
        None => None,
    };
    if let Some(user) = existing {
        if provider.trusted_for_email && verified.email_verified {
            link(app, org_id, &user, provider, verified).await?;
            return Ok(Resolved::User(user));
        }
        // No silent takeover: an untrusted provider, or an address the provider has not
        // verified, links only after the account's holder signs in to it here.
        links::insert_pending_link(
            &app.store,
            &PendingLink {
                id: random_id(),
                request_id: pending.id.clone(),
                org_id: org_id.clone(),
                user_id: user.id.clone(),
                provider_id: provider.id.clone(),
                issuer: verified.issuer.clone(),
                subject: verified.subject.clone(),
                email: verified.email.clone(),
                expires_at: now + upstream::PENDING_LINK_TTL_SECS,
            },
        )
        .await?;
        return Ok(Resolved::Page(super::render_status(
            StatusCode::OK,
            &UpstreamPage {
                title: "You already have an account",
                message: &format!(
                    "{} belongs to an existing account. To link your {} sign-in to it, first sign in to that account with one of its own methods, here in this browser, within {} minutes.",
                    verified.email.as_deref().unwrap_or_default(),
                    provider.display_name,
                    upstream::PENDING_LINK_TTL_SECS / 60
                ),
                try_again: Some(format!("/login?request={}", pending.id)),
                continue_to: None,
            },
        )));
    }
    let email = match &verified.email {
        Some(email) if provider.create_accounts && crate::admin::looks_like_email(email) => email,
        _ => {
            let message = if provider.create_accounts {
                format!(
                    "{} did not share a usable email address, which an account here needs. Choose another way to sign in.",
                    provider.display_name
                )
            } else {
                format!(
                    "No account here is linked to your {} sign-in. Ask your administrator for an account, or choose another way to sign in.",
                    provider.display_name
                )
            };
            return Ok(Resolved::Page(page(
                StatusCode::FORBIDDEN,
                pending,
                "No account",
                &message,
            )));
        }
    };
    let user = crate::admin::create_user(
        &app.store,
        crate::admin::NewUser {
            org_id,
            email,
            name: verified.name.as_deref(),
            password: None,
            // An address counts as verified only on the word of a provider trusted for it.
            email_verified: provider.trusted_for_email && verified.email_verified,
        },
    )
    .await
    .map_err(Error::Internal)?;
    link(app, org_id, &user, provider, verified).await?;
    Ok(Resolved::User(user))
}

async fn link(
    app: &App,
    org_id: &str,
    user: &User,
    provider: &UpstreamProvider,
    verified: &Verified,
) -> Result<(), Error> {
    let now = crate::store::now();
    let identity = UpstreamIdentity {
        id: random_id(),
        org_id: org_id.to_owned(),
        user_id: user.id.clone(),
        provider_id: provider.id.clone(),
        issuer: verified.issuer.clone(),
        subject: verified.subject.clone(),
        email: verified.email.clone(),
        created_at: now,
        last_used_at: Some(now),
    };
    if !links::insert(&app.store, &identity).await? {
        // A concurrent first sign-in linked the same identity: fine if to the same account.
        let winner = links::find(&app.store, org_id, &identity.issuer, &identity.subject).await?;
        if winner.is_none_or(|w| w.user_id != user.id) {
            return Err(Error::page(
                StatusCode::CONFLICT,
                "Sign-in failed",
                "This sign-in was linked to another account at the same moment. Go back and try again.",
            ));
        }
        return Ok(());
    }
    record_link_change(
        app,
        &identity,
        "user.upstream.link",
        serde_json::json!({ "provider": provider.id, "issuer": identity.issuer }),
    )
    .await
}

/// After any successful sign-in: the link this browser's request was waiting for, made now
/// that the account's holder has proved it is theirs. Returns the page that says so.
pub(crate) async fn complete_pending_link(
    app: &App,
    pending: &Pending,
    user: &User,
) -> Result<Option<String>, Error> {
    let now = crate::store::now();
    let Some(waiting) = links::take_pending_link(&app.store, &pending.id, &user.id, now).await?
    else {
        return Ok(None);
    };
    let identity = UpstreamIdentity {
        id: random_id(),
        org_id: waiting.org_id.clone(),
        user_id: user.id.clone(),
        provider_id: waiting.provider_id.clone(),
        issuer: waiting.issuer.clone(),
        subject: waiting.subject.clone(),
        email: waiting.email.clone(),
        created_at: now,
        last_used_at: None,
    };
    if !links::insert(&app.store, &identity).await? {
        // Linked meanwhile (to this or another account): nothing to announce.
        return Ok(None);
    }
    record_link_change(
        app,
        &identity,
        "user.upstream.link",
        serde_json::json!({ "provider": waiting.provider_id, "issuer": waiting.issuer, "after_proof": true }),
    )
    .await?;
    Ok(Some(format!(
        "/login/upstream/linked?request={}&provider={}",
        pending.id, waiting.provider_id
    )))
}

#[derive(Deserialize)]
pub struct LinkedQuery {
    request: String,
    provider: String,
}

/// Says that the link was made, then continues to the application.
async fn linked(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LinkedQuery>,
) -> Result<Response, PageError> {
    let pending = pending::load(&app, &headers, &q.request).await?;
    let context = SignInContext::load(&app, pending).await?;
    let name = context
        .methods
        .upstream
        .iter()
        .find(|p| p.id == q.provider)
        .map(|p| p.display_name.as_str())
        .unwrap_or("the provider");
    Ok(super::render(&UpstreamPage {
        title: "Sign-in linked",
        message: &format!(
            "Your {name} sign-in is now linked to this account. Next time you can use either."
        ),
        try_again: None,
        continue_to: Some(format!("/authorize/resume?request={}", context.pending.id)),
    }))
}

/// An audit entry for a link made or removed, by the user it belongs to.
pub(crate) async fn record_link_change(
    app: &App,
    identity: &UpstreamIdentity,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), Error> {
    crate::audit::record(
        &app.store,
        crate::audit::Event {
            org_id: Some(&identity.org_id),
            actor: format!("user:{}", identity.user_id),
            action,
            target: Some(identity.user_id.clone()),
            outcome: crate::audit::Outcome::Success,
            ip: None,
            detail,
        },
    )
    .await?;
    Ok(())
}

/// The account page's list of linked providers.
pub(crate) async fn link_views(
    app: &App,
    user: &User,
) -> Result<Vec<super::views::UpstreamLinkView>, Error> {
    let config = context_config(app, &user.org_id).await?;
    Ok(links::list_for_user(&app.store, &user.id)
        .await?
        .into_iter()
        .map(|link| super::views::UpstreamLinkView {
            provider: config
                .upstream
                .iter()
                .find(|p| p.id == link.provider_id)
                .map(|p| p.display_name.clone())
                .unwrap_or_else(|| link.issuer.clone()),
            email: link.email.unwrap_or_default(),
            created: super::account::when(link.created_at),
            id: link.id,
        })
        .collect())
}

/// Unlinks a provider from the signed-in account, unless it is the last way in: the account
/// must keep a password, a usable passkey, or another link to an enabled provider.
pub(crate) async fn unlink(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let params = crate::http::params::Params::parse(&body);
    let current =
        super::account::signed_in_with_csrf(&app, &headers, params.get("csrf").unwrap_or(""))
            .await?;
    let user = &current.user;
    let id = params.get("id").unwrap_or("");
    let all = links::list_for_user(&app.store, &user.id).await?;
    let Some(target) = all.iter().find(|l| l.id == id) else {
        return Err(Error::bad_request_page(
            "Unknown link",
            "That provider is not linked to your account.",
        )
        .into());
    };
    let config = context_config(&app, &user.org_id).await?;
    let other_link = all
        .iter()
        .any(|l| l.id != target.id && config.upstream_provider(&l.provider_id).is_some());
    let remains = user.password_hash.is_some()
        || other_link
        || (app.passkeys.is_some()
            && crate::store::passkeys::count_usable_for_user(&app.store, &user.id).await? > 0);
    if !remains {
        return Err(Error::page(
            StatusCode::CONFLICT,
            "Cannot unlink",
            "This is the only way you can sign in. Add a passkey or another sign-in method first.",
        )
        .into());
    }
    if links::delete_for_user(&app.store, &user.id, &target.id).await? {
        record_link_change(
            &app,
            target,
            "user.upstream.unlink",
            serde_json::json!({ "provider": target.provider_id, "issuer": target.issuer }),
        )
        .await?;
    }
    Ok(response::redirect("/account?notice=upstream-unlinked"))
}

async fn context_config(
    app: &App,
    org_id: &str,
) -> Result<crate::authn::methods::AuthConfig, Error> {
    match crate::store::orgs::find(&app.store, org_id).await? {
        Some(org) => Ok(org.auth_config()?),
        None => Err(Error::Internal("user without an organization".into())),
    }
}
