//! The account page: who is signed in, their active sessions (end any of them), and
//! "sign out everywhere". It acts only on the signed-in user's own sessions.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use super::views::{AccountPage, SessionView};
use crate::app::{App, AppState};
use crate::error::{Error, PageError};
use crate::http::params::Params;
use crate::oidc::authorize::response::redirect;
use crate::security::{b64url, constant_time_eq, hmac_sha256};
use crate::session::{self, Current};
use crate::store::{self, sessions};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(page))
        .route("/account/sessions/end", post(end_one))
        .route("/account/sign-out-everywhere", post(end_all))
}

fn csrf(app: &App, session_id: &str) -> String {
    b64url(&hmac_sha256(
        &app.instance_key,
        format!("account-csrf:{session_id}").as_bytes(),
    ))
}

fn not_signed_in() -> Error {
    Error::page(
        StatusCode::UNAUTHORIZED,
        "Not signed in",
        "You are not signed in to Tessera in this browser. Sign in through an application first.",
    )
}

fn when(ts: i64) -> String {
    let ago = store::now() - ts;
    match ago {
        i64::MIN..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", ago / 60),
        3600..=86_399 => format!("{} h ago", ago / 3600),
        _ => format!("{} days ago", ago / 86_400),
    }
}

async fn page(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    let current = session::current(&app, &headers)
        .await?
        .ok_or_else(not_signed_in)?;
    let list = sessions::list_live_for_user(&app.store, &current.user.id, store::now()).await?;
    let views: Vec<SessionView> = list
        .iter()
        .map(|s| SessionView {
            id: s.id.clone(),
            device: s
                .user_agent
                .as_deref()
                .map(crate::http::describe_user_agent)
                .unwrap_or_else(|| "Unknown device".into()),
            ip: s.ip.clone().unwrap_or_default(),
            created: when(s.created_at),
            last_seen: when(s.last_seen_at),
            signed_in: when(s.auth_time),
            current: s.id == current.session.id,
        })
        .collect();
    Ok(super::render(&AccountPage {
        email: &current.user.email,
        csrf: &csrf(&app, &current.session.id),
        sessions: views,
    }))
}

async fn checked(
    app: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Current, Params), Error> {
    let current = session::current(app, headers)
        .await?
        .ok_or_else(not_signed_in)?;
    let params = Params::parse(body);
    let expected = csrf(app, &current.session.id);
    if !constant_time_eq(
        expected.as_bytes(),
        params.get("csrf").unwrap_or("").as_bytes(),
    ) {
        return Err(Error::page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "Reload the account page and try again.",
        ));
    }
    Ok((current, params))
}

async fn end_one(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (current, params) = checked(&app, &headers, &body).await?;
    let id = params.get("session").unwrap_or("");
    let target = sessions::find(&app.store, id)
        .await?
        .filter(|s| s.user_id == current.user.id && s.revoked_at.is_none())
        .ok_or_else(|| {
            Error::bad_request_page("Unknown session", "That session has already ended.")
        })?;
    session::logout::end_session(&app, &target).await?;
    if target.id == current.session.id {
        let mut response = crate::ui::render(&super::views::SignedOutPage);
        response.headers_mut().append(
            header::SET_COOKIE,
            app.cookies.clear(crate::http::cookies::SESSION),
        );
        return Ok(response);
    }
    Ok(redirect("/account"))
}

async fn end_all(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (current, _) = checked(&app, &headers, &body).await?;
    session::logout::end_all_sessions(&app, &current.user.id).await?;
    let mut response = crate::ui::render(&super::views::SignedOutPage);
    response.headers_mut().append(
        header::SET_COOKIE,
        app.cookies.clear(crate::http::cookies::SESSION),
    );
    Ok(response)
}
