//! Browser sessions: one per browser, stored server-side, named by a random cookie secret
//! whose digest is the lookup key. Each session records how and when the user last proved
//! presence (`auth_time`, `amr`, `acr`), which is what ID tokens and `prompt`/`max_age` read.

pub mod logout;

use axum::http::{HeaderMap, HeaderValue};

use crate::app::App;
use crate::authn::Authentication;
use crate::http::cookies;
use crate::security::{digest, random_id, random_secret};
use crate::store::sessions::{self, SessionRow};
use crate::store::users::{self, User};
use crate::store::{self, StoreResult, encode_list};

/// Rolling renewals are written at most this often, to keep reads cheap.
const TOUCH_EVERY_SECS: i64 = 60;

pub struct Current {
    pub session: SessionRow,
    pub user: User,
}

/// The live session of this browser, with its (enabled) user; renews the idle lifetime.
pub async fn current(app: &App, headers: &HeaderMap) -> StoreResult<Option<Current>> {
    let Some(secret) = app.cookies.read(headers, cookies::SESSION) else {
        return Ok(None);
    };
    let now = store::now();
    let Some(session) = sessions::find_live_by_secret(&app.store, &digest(&secret), now).await?
    else {
        return Ok(None);
    };
    let Some(user) = users::find(&app.store, &session.user_id).await? else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    if now - session.last_seen_at >= TOUCH_EVERY_SECS {
        let expires = (now + app.config.sessions.idle_ttl_secs).min(session.absolute_expires_at);
        sessions::touch(&app.store, &session.id, now, expires).await?;
    }
    Ok(Some(Current { session, user }))
}

/// Records a successful sign-in. The same user signing in again keeps the session (and its
/// `sid`, which relying parties hold) with a fresh `auth_time` and a new cookie secret;
/// another user replaces it. Returns the session and the cookie to set.
pub async fn establish(
    app: &App,
    previous: Option<&SessionRow>,
    user: &User,
    authentication: &Authentication,
    user_agent: Option<String>,
    ip: Option<String>,
) -> StoreResult<(SessionRow, HeaderValue)> {
    let now = store::now();
    let auth_time = authentication.at.map_or(now, |t| t.min(now));
    let secret = random_secret();
    let secret_hash = digest(&secret);
    let amr = encode_list(&authentication.amr);
    let session = match previous {
        Some(prev) if prev.user_id == user.id && prev.org_id == user.org_id => {
            let expires = (now + app.config.sessions.idle_ttl_secs).min(prev.absolute_expires_at);
            sessions::reauthenticate(
                &app.store,
                &prev.id,
                &secret_hash,
                auth_time,
                &amr,
                authentication.acr,
                expires,
            )
            .await?;
            SessionRow {
                secret_hash,
                auth_time,
                amr,
                acr: authentication.acr.to_owned(),
                last_seen_at: now,
                expires_at: expires,
                ..prev.clone()
            }
        }
        other => {
            if let Some(prev) = other {
                sessions::revoke(&app.store, &prev.id, now).await?;
            }
            let row = SessionRow {
                id: random_id(),
                secret_hash,
                user_id: user.id.clone(),
                org_id: user.org_id.clone(),
                auth_time,
                amr,
                acr: authentication.acr.to_owned(),
                created_at: now,
                last_seen_at: now,
                expires_at: now + app.config.sessions.idle_ttl_secs,
                absolute_expires_at: now + app.config.sessions.absolute_ttl_secs,
                user_agent,
                ip,
                revoked_at: None,
            };
            sessions::insert(&app.store, &row).await?;
            row
        }
    };
    let cookie = app.cookies.set(
        cookies::SESSION,
        &secret,
        app.config.sessions.absolute_ttl_secs,
    );
    Ok((session, cookie))
}

/// The browser's pre-authentication identifier, creating one (and the cookie to set) if absent.
pub fn browser_id(app: &App, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match app.cookies.read(headers, cookies::BROWSER) {
        Some(id) => (id, None),
        None => {
            let id = random_secret();
            // A year: it identifies a browser, not a person, and carries no authority alone.
            let cookie = app.cookies.set(cookies::BROWSER, &id, 365 * 24 * 3600);
            (id, Some(cookie))
        }
    }
}
