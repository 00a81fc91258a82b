//! Ending sessions, and telling every client that received tokens in a session that it
//! ended (OpenID Connect Back-Channel Logout 1.0).

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

/// Revokes the session and its grants (refresh-token families and their access tokens), then
/// notifies the clients in the background.
pub async fn end_session(app: &AppState, session: &SessionRow) -> StoreResult<()> {
    let notify = clients::with_grants_in_session(&app.store, &session.id).await?;
    sessions::revoke(&app.store, &session.id, store::now()).await?;
    tracing::info!(sid = %session.id, clients = notify.len(), "session ended");
    for client in notify {
        if client.backchannel_logout_uri.is_some() {
            tokio::spawn(deliver(
                app.clone(),
                client,
                session.user_id.clone(),
                session.id.clone(),
            ));
        }
    }
    Ok(())
}

/// "Sign out everywhere": ends every live session of the user and revokes every grant.
pub async fn end_all_sessions(app: &AppState, user_id: &str) -> StoreResult<usize> {
    let now = store::now();
    let live = sessions::list_live_for_user(&app.store, user_id, now).await?;
    for session in &live {
        end_session(app, session).await?;
    }
    grants::revoke_all_for_user(&app.store, user_id, now).await?;
    Ok(live.len())
}

/// Ends every live session of the user except `keep` (the one the user is acting from), for
/// a password change or removal: other browsers must prove the new state of the account.
pub async fn end_other_sessions(app: &AppState, user_id: &str, keep: &str) -> StoreResult<usize> {
    let live = sessions::list_live_for_user(&app.store, user_id, store::now()).await?;
    let mut ended = 0;
    for session in live.iter().filter(|s| s.id != keep) {
        end_session(app, session).await?;
        ended += 1;
    }
    Ok(ended)
}

/// POSTs a logout token, retrying with backoff; each attempt is bounded by the client's
/// timeout. The outcome is logged; delivery never blocks the person signing out.
async fn deliver(app: AppState, client: Client, sub: String, sid: String) {
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
    for attempt in 1..=ATTEMPTS {
        let result = app
            .http
            .post(&uri)
            .form(&[("logout_token", token.as_str())])
            .send()
            .await;
        match result {
            // §2.8: the RP answers 200 (or 204) on success.
            Ok(r) if r.status().is_success() => {
                tracing::info!(client_id = %client.id, attempt, "back-channel logout delivered");
                return;
            }
            Ok(r) => {
                tracing::warn!(client_id = %client.id, attempt, status = %r.status(), "back-channel logout refused")
            }
            Err(e) => {
                tracing::warn!(client_id = %client.id, attempt, error = %e, "back-channel logout failed")
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt - 1))).await;
        }
    }
    tracing::error!(client_id = %client.id, "back-channel logout not delivered after retries");
}
