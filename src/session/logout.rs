//! Ending sessions, and telling every client that received tokens in a session that it
//! ended (OpenID Connect Back-Channel Logout 1.0).
//!
//! Every end of a session goes through one claim ([`sessions::claim_logout`], a conditional
//! UPDATE), so the logout tokens for it go out exactly once whoever ends it: a request
//! (sign-out, an admin, an account change) or the housekeeping sweeper on any replica, which
//! finds the sessions that ended without anyone calling (idle or absolute expiry).

use std::time::Duration;

use serde_json::json;

use crate::app::AppState;
use crate::store::clients::{self, Client};
use crate::store::sessions::{self, SessionRow};
use crate::store::{self, StoreResult, grants};
use crate::tokens::jws;

/// Back-Channel Logout §2.4.
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// §2.4 recommends explicit typing so a logout token is never taken for an ID token.
pub const TYP: &str = "logout+jwt";
const ATTEMPTS: u32 = 3;
/// Sessions the sweeper handles per query; it loops until a batch comes back short.
const SWEEP_BATCH: i64 = 200;

/// Why a session (or a client's access in it) ended: recorded with each delivery outcome in
/// the audit log (`logout.backchannel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// [`end_session`] without a more specific cause.
    Ended,
    /// RP-initiated logout (`/logout`).
    RpLogout,
    /// The user ended this session on the account page.
    AccountPage,
    /// "Sign out everywhere" ([`end_all_sessions`] without a more specific cause).
    SignOutEverywhere,
    /// The user's other sessions, after a password change or removal.
    CredentialsChanged,
    /// Account recovery.
    Recovery,
    /// An administrator ended the session.
    AdminRevoke,
    /// An administrator removed the user's sign-in methods.
    MethodsReset,
    UserDisabled,
    UserDeleted,
    /// The idle lifetime passed (found by the sweeper).
    IdleExpiry,
    /// The absolute lifetime passed (found by the sweeper).
    AbsoluteExpiry,
    /// Revoked by a path that does not notify by itself (another user signing in in the same
    /// browser replaces the session); found by the sweeper.
    Revoked,
    /// A rotated refresh token was used again: its family is revoked (RFC 9700 §4.14.2).
    RefreshTokenReuse,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Ended => "ended",
            Cause::RpLogout => "rp_logout",
            Cause::AccountPage => "account_page",
            Cause::SignOutEverywhere => "sign_out_everywhere",
            Cause::CredentialsChanged => "credentials_changed",
            Cause::Recovery => "recovery",
            Cause::AdminRevoke => "admin_revoke",
            Cause::MethodsReset => "methods_reset",
            Cause::UserDisabled => "user_disabled",
            Cause::UserDeleted => "user_deleted",
            Cause::IdleExpiry => "idle_expiry",
            Cause::AbsoluteExpiry => "absolute_expiry",
            Cause::Revoked => "revoked",
            Cause::RefreshTokenReuse => "refresh_token_reuse",
        }
    }
}

/// Revokes the session and its grants (refresh-token families and their access tokens), then
/// notifies the clients in the background.
pub async fn end_session(app: &AppState, session: &SessionRow) -> StoreResult<()> {
    end_session_because(app, session, Cause::Ended).await
}

/// [`end_session`], recording `cause` with the delivery outcomes.
pub async fn end_session_because(
    app: &AppState,
    session: &SessionRow,
    cause: Cause,
) -> StoreResult<()> {
    let now = store::now();
    sessions::revoke(&app.store, &session.id, now).await?;
    notify_once(app, session, cause, now).await?;
    Ok(())
}

/// "Sign out everywhere": ends every live session of the user and revokes every grant.
pub async fn end_all_sessions(app: &AppState, user_id: &str) -> StoreResult<usize> {
    end_all_sessions_because(app, user_id, Cause::SignOutEverywhere).await
}

/// [`end_all_sessions`], recording `cause` with the delivery outcomes.
pub async fn end_all_sessions_because(
    app: &AppState,
    user_id: &str,
    cause: Cause,
) -> StoreResult<usize> {
    let now = store::now();
    let live = sessions::list_live_for_user(&app.store, user_id, now).await?;
    for session in &live {
        end_session_because(app, session, cause).await?;
    }
    grants::revoke_all_for_user(&app.store, user_id, now).await?;
    Ok(live.len())
}

/// Ends every live session of the user except `keep` (the one the user is acting from), for
/// a password change or removal: other browsers must prove the new state of the account.
pub async fn end_other_sessions(app: &AppState, user_id: &str, keep: &str) -> StoreResult<usize> {
    end_other_sessions_because(app, user_id, keep, Cause::CredentialsChanged).await
}

/// [`end_other_sessions`], recording `cause` with the delivery outcomes.
pub async fn end_other_sessions_because(
    app: &AppState,
    user_id: &str,
    keep: &str,
    cause: Cause,
) -> StoreResult<usize> {
    let live = sessions::list_live_for_user(&app.store, user_id, store::now()).await?;
    let mut ended = 0;
    for session in live.iter().filter(|s| s.id != keep) {
        end_session_because(app, session, cause).await?;
        ended += 1;
    }
    Ok(ended)
}

/// The sweeper's part: sessions that ended without anyone calling [`end_session`] (idle or
/// absolute expiry, or a revocation that did not notify) get their grants revoked and their
/// clients notified, before `purge_ended` may delete them. Several replicas may sweep at
/// once; the claim lets exactly one of them notify each session. Returns how many it notified.
pub async fn sweep_ended(app: &AppState) -> StoreResult<usize> {
    let now = store::now();
    let mut notified = 0;
    loop {
        let batch = sessions::ended_unnotified(&app.store, now, SWEEP_BATCH).await?;
        for session in &batch {
            let cause = if session.revoked_at.is_some() {
                Cause::Revoked
            } else if session.absolute_expires_at <= now {
                Cause::AbsoluteExpiry
            } else {
                Cause::IdleExpiry
            };
            // Like end_session: the session's refresh tokens end with it.
            sessions::revoke(&app.store, &session.id, now).await?;
            if notify_once(app, session, cause, now).await? {
                notified += 1;
            }
        }
        // Every row of a batch is claimed by now (here or by another replica), so the next
        // query cannot return it again.
        if batch.len() < SWEEP_BATCH as usize {
            return Ok(notified);
        }
    }
}

/// Claims the session's notification and, if this caller won it, sends a logout token to
/// every client that received tokens in the session. Returns whether it won.
async fn notify_once(
    app: &AppState,
    session: &SessionRow,
    cause: Cause,
    now: i64,
) -> StoreResult<bool> {
    if !sessions::claim_logout(&app.store, &session.id, now).await? {
        return Ok(false);
    }
    let notify = clients::with_grants_in_session(&app.store, &session.id).await?;
    tracing::info!(sid = %session.id, clients = notify.len(), cause = cause.as_str(), "session ended");
    notify_clients(app, notify, &session.user_id, &session.id, cause);
    Ok(true)
}

/// Sends a logout token for (`sub`, `sid`) to each client that registered a back-channel
/// logout URI, in the background: delivery never blocks the person signing out. The handles
/// let a short-lived process (the CLI) wait for the deliveries before it exits.
pub(crate) fn notify_clients(
    app: &AppState,
    clients: Vec<Client>,
    sub: &str,
    sid: &str,
    cause: Cause,
) -> Vec<tokio::task::JoinHandle<()>> {
    clients
        .into_iter()
        .filter(|c| c.backchannel_logout_uri.is_some())
        .map(|client| {
            tokio::spawn(deliver(
                app.clone(),
                client,
                sub.to_owned(),
                sid.to_owned(),
                cause,
            ))
        })
        .collect()
}

/// POSTs a logout token, retrying with backoff. Each attempt is bounded by the outbound
/// client's timeouts (`App::http`: 3 s to connect, 5 s in all), so a delivery takes at most
/// about 17 s. The outcome goes to the log and the audit log (`logout.backchannel`).
async fn deliver(app: AppState, client: Client, sub: String, sid: String, cause: Cause) {
    let Some(uri) = client.backchannel_logout_uri.clone() else {
        return;
    };
    let now = store::now();
    let mut claims = json!({
        "iss": app.config.issuer,
        "aud": client.id,
        "iat": now,
        "exp": now + 120,
        "jti": crate::security::random_id(),
        "sub": sub,
        "events": { EVENT: {} },
    });
    // §2.4: `sid` is included because Tessera advertises backchannel_logout_session_supported.
    claims["sid"] = json!(sid);
    let key = app.keys.current().active.clone();
    let token = match crate::cpu::run(move || jws::sign(&key, TYP, &claims)).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "signing a logout token failed");
            return;
        }
    };
    let (attempts, error) = post_with_retries(&app, &client.id, &uri, &token).await;
    let delivery = crate::audit::BackchannelDelivery {
        org_id: &client.org_id,
        client_id: &client.id,
        sub: &sub,
        sid: &sid,
        cause: cause.as_str(),
        attempts,
        error: error.as_deref(),
    };
    if let Err(e) = crate::audit::backchannel_logout(&app.store, delivery).await {
        tracing::warn!(error = %e, "recording a back-channel logout outcome failed");
    }
}

/// Returns the attempts made and, if none succeeded, why the last one failed.
async fn post_with_retries(
    app: &AppState,
    client_id: &str,
    uri: &str,
    token: &str,
) -> (u32, Option<String>) {
    let mut last_error = String::new();
    for attempt in 1..=ATTEMPTS {
        let result = app
            .http
            .post(uri)
            .form(&[("logout_token", token)])
            .send()
            .await;
        match result {
            // §2.8: the RP answers 200 (or 204) on success.
            Ok(r) if r.status().is_success() => {
                tracing::info!(client_id, attempt, "back-channel logout delivered");
                return (attempt, None);
            }
            Ok(r) => {
                tracing::warn!(client_id, attempt, status = %r.status(), "back-channel logout refused");
                last_error = format!("HTTP status {}", r.status().as_u16());
            }
            Err(e) => {
                tracing::warn!(client_id, attempt, error = %e, "back-channel logout failed");
                // A short cause, not the error text: that may echo the URI's query.
                last_error = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                }
                .into();
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt - 1))).await;
        }
    }
    tracing::error!(client_id, "back-channel logout not delivered after retries");
    (ATTEMPTS, Some(last_error))
}
