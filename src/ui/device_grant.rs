//! The verification page of the device grant (RFC 8628 §3.3): the person types the user code
//! shown on the device (or arrives with it prefilled from `verification_uri_complete`), sees
//! which application asks for what, and approves or denies.
//!
//! Nothing here is decided by a link alone: a prefilled code is only shown in the form, and
//! approval always takes a CSRF-protected confirmation (§5.4, remote phishing). Wrong codes
//! are counted per signed-in session (§5.1, brute forcing).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;

use super::views::{DeviceConfirmView, DeviceDoneView, DevicePage};
use crate::app::{App, AppState};
use crate::error::{Error, PageError};
use crate::http::params::Params;
use crate::oidc::authorize::response::redirect;
use crate::oidc::device_authorization::{display_user_code, normalize_user_code};
use crate::oidc::scope::Scope;
use crate::security::rate_limit::{self, Decision};
use crate::security::{constant_time_eq, digest};
use crate::session::{self, Current};
use crate::store::device_authorizations::{self as devices, Approval, DeviceAuthorizationRow};
use crate::store::{self, clients};

const RATE_LIMIT_KIND: &str = "device-user-code";
/// Longer input is not a user code; it is cut before being shown back or put in a URL.
const MAX_TYPED_CHARS: usize = 32;

pub fn routes() -> Router<AppState> {
    Router::new().route("/device", get(page).post(submit))
}

/// The code entry form, prefilled from `?user_code=` (never looked up or approved on GET).
async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let typed = shown_back(params.get("user_code").unwrap_or(""));
    let Some(current) = session::current(&app, &headers).await? else {
        return Ok(redirect(&login_url(&typed)));
    };
    Ok(entry_form(&app, &current, &typed, None, StatusCode::OK))
}

/// One form for both steps: without `decision` it checks the typed code and shows the
/// confirmation; with `decision=approve|deny` it records the person's answer.
async fn submit(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = Params::parse(&body);
    let typed = params.get("user_code").unwrap_or("");
    let Some(current) = session::current(&app, &headers).await? else {
        return Ok(redirect(&login_url(&shown_back(typed))));
    };
    check_csrf(&app, &current, params.get("csrf").unwrap_or(""))?;
    let (row, code) = match entered_code(&app, &current, typed).await? {
        Entered::Live { row, code } => (row, code),
        Entered::Wrong(message) => {
            return Ok(entry_form(
                &app,
                &current,
                &shown_back(typed),
                Some(message),
                StatusCode::BAD_REQUEST,
            ));
        }
    };
    match params.get("decision") {
        None => {
            let viewer_ip = crate::http::client_ip(&connect).to_string();
            confirmation(&app, &current, &row, &code, &viewer_ip).await
        }
        Some("approve") => decide(&app, &current, &row, true).await,
        Some("deny") => decide(&app, &current, &row, false).await,
        Some(_) => Err(Error::bad_request_page("Unknown choice", "Choose Approve or Deny.").into()),
    }
}

/// Where a browser without a session goes: the account sign-in, then back here.
fn login_url(typed: &str) -> String {
    let next = if typed.is_empty() {
        "/device".to_owned()
    } else {
        format!(
            "/device?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("user_code", typed)
                .finish()
        )
    };
    format!(
        "/account/login?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next)
            .finish()
    )
}

/// The typed code as shown back in the form: formatted when it is a well-formed code,
/// otherwise as typed (cut short).
fn shown_back(typed: &str) -> String {
    match normalize_user_code(typed) {
        Some(code) => display_user_code(&code),
        None => typed.trim().chars().take(MAX_TYPED_CHARS).collect(),
    }
}

fn check_csrf(app: &App, current: &Current, token: &str) -> Result<(), Error> {
    let expected = super::account::csrf(app, &current.session.id);
    if constant_time_eq(expected.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(Error::page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "Reload the page and enter the code again.",
        ))
    }
}

enum Entered {
    /// A pending code that has not expired, and the code normalized.
    Live {
        row: DeviceAuthorizationRow,
        code: String,
    },
    /// Not a code: show the form again with this message.
    Wrong(&'static str),
}

/// Looks the typed code up, counting wrong codes per session; a real code that can no longer
/// be used is a plain page (and not a wrong entry).
async fn entered_code(app: &App, current: &Current, typed: &str) -> Result<Entered, Error> {
    let policy = &app.config.rate_limits.device_user_code_per_session;
    let session_id = &current.session.id;
    // Checked before the lookup, so that a guess beyond the limit learns nothing.
    if let Decision::Limited { retry_after_secs } =
        rate_limit::check(&app.store, RATE_LIMIT_KIND, session_id, policy).await?
    {
        return Err(Error::RateLimited {
            retry_after_secs,
            description: "Too many wrong codes. Wait a few minutes, then try again.".into(),
        });
    }
    if typed.trim().is_empty() {
        return Ok(Entered::Wrong("Enter the code shown on your device."));
    }
    let code = normalize_user_code(typed);
    let row = match &code {
        Some(code) => devices::find_by_user_code(&app.store, &digest(code)).await?,
        None => None,
    };
    let (Some(row), Some(code)) = (row, code) else {
        rate_limit::record_failure(&app.store, RATE_LIMIT_KIND, session_id, policy).await?;
        return Ok(Entered::Wrong(
            "That code is not valid. Check the code shown on your device and try again.",
        ));
    };
    if row.status != devices::PENDING || row.consumed_at.is_some() {
        return Err(Error::bad_request_page(
            "Code already used",
            "This code has already been used. Start again on your device to get a new one.",
        ));
    }
    if row.expires_at <= store::now() {
        return Err(Error::bad_request_page(
            "Code expired",
            "This code has expired. Start again on your device to get a new one.",
        ));
    }
    Ok(Entered::Live { row, code })
}

/// The client the code was issued to, which must belong to the signed-in user's organization.
async fn client_of(
    app: &App,
    current: &Current,
    row: &DeviceAuthorizationRow,
) -> Result<clients::Client, Error> {
    let client = clients::find(&app.store, &row.client_id)
        .await?
        .ok_or_else(|| {
            Error::bad_request_page(
                "Unknown application",
                "The application that asked for this code no longer exists.",
            )
        })?;
    if client.org_id != current.session.org_id {
        return Err(Error::page(
            StatusCode::FORBIDDEN,
            "Another organization's application",
            "This code belongs to an application of another organization. Sign in with an \
             account of that organization.",
        ));
    }
    Ok(client)
}

async fn confirmation(
    app: &App,
    current: &Current,
    row: &DeviceAuthorizationRow,
    code: &str,
    viewer_ip: &str,
) -> Result<Response, PageError> {
    let client = client_of(app, current, row).await?;
    let device_ip = row.device_ip.clone().unwrap_or_default();
    let scope = Scope::parse(&row.scope);
    let scopes = scope
        .values()
        .iter()
        .map(|s| super::interaction::describe_scope(s))
        .collect();
    Ok(super::render(&DevicePage {
        email: &current.user.email,
        csrf: &super::account::csrf(app, &current.session.id),
        user_code: "",
        error: None,
        confirm: Some(DeviceConfirmView {
            client_name: &client.name,
            scopes,
            user_code: &display_user_code(code),
            network_verdict: crate::authn::qr::network_verdict(&device_ip, viewer_ip),
            device_ip: &device_ip,
            viewer_ip,
        }),
        done: None,
    }))
}

/// Records Approve (with the session's user, sid, auth_time, amr and acr) or Deny.
async fn decide(
    app: &App,
    current: &Current,
    row: &DeviceAuthorizationRow,
    approve: bool,
) -> Result<Response, PageError> {
    let client = client_of(app, current, row).await?;
    let now = store::now();
    let session = &current.session;
    let recorded = if approve {
        let approval = Approval {
            user_id: &current.user.id,
            session_id: &session.id,
            auth_time: session.auth_time,
            amr: &session.amr,
            acr: &session.acr,
        };
        devices::approve(&app.store, &row.user_code_hash, &approval, now).await?
    } else {
        devices::deny(&app.store, &row.user_code_hash, now).await?
    };
    if !recorded {
        // Decided in another tab, or expired, since the code was checked.
        return Err(Error::bad_request_page(
            "Code no longer valid",
            "This code has expired or has already been used. Start again on your device.",
        )
        .into());
    }
    tracing::info!(
        client_id = %client.id,
        user_id = %current.user.id,
        approved = approve,
        "device authorization decided"
    );
    let done = if approve {
        DeviceDoneView {
            title: "Device connected",
            message: format!(
                "{} can now continue on your device. You can close this page.",
                client.name
            ),
        }
    } else {
        DeviceDoneView {
            title: "Request denied",
            message: format!(
                "{} was not given access. You can close this page.",
                client.name
            ),
        }
    };
    Ok(super::render(&DevicePage {
        email: &current.user.email,
        csrf: "",
        user_code: "",
        error: None,
        confirm: None,
        done: Some(done),
    }))
}

fn entry_form(
    app: &App,
    current: &Current,
    typed: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    super::render_status(
        status,
        &DevicePage {
            email: &current.user.email,
            csrf: &super::account::csrf(app, &current.session.id),
            user_code: typed,
            error,
            confirm: None,
            done: None,
        },
    )
}
