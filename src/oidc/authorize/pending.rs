//! A validated authorization request parked while the person signs in. It is bound to the
//! browser that started it (the pre-authentication cookie) and carries the CSRF token that
//! every interaction form must echo.

use axum::http::{HeaderMap, StatusCode};

use super::prompt::Progress;
use super::request::AuthorizationRequest;
use crate::app::App;
use crate::error::Error;
use crate::http::cookies;
use crate::security::{constant_time_eq, digest, random_id, random_secret};
use crate::store;
use crate::store::auth_requests::{self, PendingRequestRow};

pub struct Pending {
    pub id: String,
    pub request: AuthorizationRequest,
    pub csrf: String,
    pub confirmed_session: Option<String>,
    pub consented: bool,
    pub created_at: i64,
}

impl Pending {
    pub fn progress(&self) -> Progress<'_> {
        Progress {
            confirmed_session: self.confirmed_session.as_deref(),
            started_at: self.created_at,
            consented: self.consented,
        }
    }

    pub fn check_csrf(&self, token: &str) -> Result<(), Error> {
        if constant_time_eq(self.csrf.as_bytes(), token.as_bytes()) {
            Ok(())
        } else {
            Err(Error::page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form is no longer valid. Go back to the application and start signing in again.",
            ))
        }
    }
}

pub async fn park(app: &App, browser: &str, req: &AuthorizationRequest) -> Result<String, Error> {
    let now = store::now();
    let row = PendingRequestRow {
        id: random_id(),
        browser_hash: digest(browser),
        client_id: req.client_id.clone(),
        params: serde_json::to_string(req).map_err(|e| Error::Internal(e.to_string()))?,
        csrf: random_secret(),
        authenticated_session_id: None,
        interaction_done: false,
        created_at: now,
        expires_at: now + app.config.tokens.authorization_request_ttl_secs,
    };
    auth_requests::insert(&app.store, &row).await?;
    Ok(row.id)
}

fn expired() -> Error {
    Error::bad_request_page(
        "Sign-in request expired",
        "This sign-in request has expired or was started in another browser. Go back to the application and try again.",
    )
}

/// Loads a parked request for this browser only.
pub async fn load(app: &App, headers: &HeaderMap, id: &str) -> Result<Pending, Error> {
    if id.len() > 64 {
        return Err(expired());
    }
    let browser = app
        .cookies
        .read(headers, cookies::BROWSER)
        .ok_or_else(expired)?;
    let row = auth_requests::find_live(&app.store, id, store::now())
        .await?
        .ok_or_else(expired)?;
    if !constant_time_eq(row.browser_hash.as_bytes(), digest(&browser).as_bytes()) {
        return Err(expired());
    }
    let request: AuthorizationRequest =
        serde_json::from_str(&row.params).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Pending {
        id: row.id,
        request,
        csrf: row.csrf,
        confirmed_session: row.authenticated_session_id,
        consented: row.interaction_done,
        created_at: row.created_at,
    })
}
