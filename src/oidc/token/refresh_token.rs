//! `grant_type=refresh_token` (RFC 6749 §6, OIDC Core §12). Tokens rotate on every use; a
//! second use of a rotated token revokes the family (RFC 9700 §4.14.2). The new ID token keeps
//! the original `auth_time` and `sid`: refreshing never counts as signing in.
//!
//! Reuse ends that client's access in the session, not the session: the client whose family
//! is revoked gets a back-channel logout token for the grant's `sid`, so it drops its local
//! session too (its tokens are dead). The browser session and the other clients' grants stay:
//! what leaked is one client's refresh token, not the session cookie, and ending the whole
//! session would let anyone holding an old token sign the user out of every app.

use crate::app::AppState;
use crate::error::{Code, Error};
use crate::http::params::Params;
use crate::oidc::scope::Scope;
use crate::security::digest;
use crate::session::logout;
use crate::store::clients::{self, Client};
use crate::store::grants;
use crate::store::{self, refresh_tokens};

use super::issue::{self, Issue};

pub async fn exchange(
    app: &AppState,
    client: &Client,
    params: &Params,
) -> Result<serde_json::Value, Error> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| Error::invalid_request("refresh_token is required"))?;
    let now = store::now();
    let hash = digest(token);
    // Every check runs before the token is marked used: a request that is refused (another
    // client's token, a wider scope) must not burn the owner's token or trip reuse detection.
    let refresh_tokens::WithGrant {
        token: row,
        grant,
        user,
        org,
    } = refresh_tokens::find_with_grant(&app.store, &hash)
        .await?
        .ok_or_else(|| Error::invalid_grant("the refresh token is invalid"))?;
    if grant.client_id != client.id {
        return Err(Error::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if row.used_at.is_some() {
        return Err(reused(app, &grant, now).await);
    }
    if row.expires_at < now || grant.expires_at < now {
        return Err(Error::invalid_grant("the refresh token has expired"));
    }
    if grant.revoked_at.is_some() {
        return Err(Error::invalid_grant("the refresh token has been revoked"));
    }
    let user = match &grant.user_id {
        Some(_) => Some(
            user.filter(|u| !u.disabled)
                .ok_or_else(|| Error::invalid_grant("the user is no longer active"))?,
        ),
        None => None,
    };
    let granted = Scope::parse(&grant.scope);
    // §6: a narrower scope may be requested, never a wider one.
    let scope = match params.get("scope") {
        Some(requested) => {
            let requested = Scope::parse(requested);
            if !requested.is_subset_of(&granted) {
                return Err(Error::oauth(
                    Code::InvalidScope,
                    "scope exceeds the original grant",
                ));
            }
            requested
        }
        None => granted,
    };
    // The one conditional UPDATE decides between two concurrent uses; the loser is a reuse.
    let (next, next_row) = issue::mint_refresh_token(app, &grant);
    if !refresh_tokens::rotate(&app.store, &hash, now, &next_row).await? {
        return Err(reused(app, &grant, now).await);
    }
    issue::respond(
        app,
        Issue {
            client_id: &client.id,
            user: user.as_ref(),
            org: org.as_ref(),
            grant: &grant,
            scope: &scope,
            nonce: None,
            refresh_token: Some(next),
        },
    )
    .await
}

/// A second use of a rotated token by its own client: theft or a bug, so the family goes, and
/// the client hears of it through back-channel logout (see the module comment).
async fn reused(app: &AppState, grant: &grants::GrantRow, now: i64) -> Error {
    let revoked_now = match grants::revoke(&app.store, &grant.id, now).await {
        Ok(r) => r,
        Err(e) => return e.into(),
    };
    tracing::warn!(grant = %grant.id, "refresh token reused; token family revoked");
    // Only the call that revoked the family notifies (the conditional UPDATE picks one among
    // concurrent replays); a grant without a browser session (device flow) has no `sid` for
    // a logout token to name.
    if revoked_now && let (Some(sub), Some(sid)) = (&grant.user_id, &grant.session_id) {
        match clients::find(&app.store, &grant.client_id).await {
            Ok(Some(client)) => {
                logout::notify_clients(
                    app,
                    vec![client],
                    sub,
                    sid,
                    logout::Cause::RefreshTokenReuse,
                );
            }
            Ok(None) => {}
            Err(e) => return e.into(),
        }
    }
    Error::invalid_grant("the refresh token was already used")
}
