//! `grant_type=refresh_token` (RFC 6749 §6, OIDC Core §12). Tokens rotate on every use; a
//! second use of a rotated token revokes the family (RFC 9700 §4.14.2). The new ID token keeps
//! the original `auth_time` and `sid`: refreshing never counts as signing in.
//!
//! Reuse ends that client's access in the session, not the session: the client whose family
//! is revoked gets a back-channel logout token for the grant's `sid`, so it drops its local
//! session too (its tokens are dead). The browser session and the other clients' grants stay:
//! what leaked is one client's refresh token, not the session cookie, and ending the whole
//! session would let anyone holding an old token sign the user out of every app.

use axum::http::HeaderMap;

use crate::app::AppState;
use crate::error::{Code, Error};
use crate::http::params::Params;
use crate::oidc::scope::Scope;
use crate::security::digest;
use crate::session::logout;
use crate::store;
use crate::store::clients::Client;
use crate::store::grants;
use crate::store::refresh_tokens::{self, Redeemed};

use super::client_auth;
use super::issue::{self, Issue};

/// Why [`check`] refused a refresh request.
enum Refusal {
    /// The client's own token was used before: the family goes ([`reused`]).
    Reused,
    Invalid(Error),
}

/// Authenticates the client and exchanges its refresh token. Unlike the other grants, this one
/// authenticates the client itself: the client's row is read in the same store round trip as
/// the token ([`refresh_tokens::redeem`]), which on SQLite saves a hop to the writer thread on
/// the token endpoint's busiest path.
pub async fn exchange(
    app: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<serde_json::Value, Error> {
    let attempt = client_auth::Attempt::new(app, headers, params)?;
    let Some(token) = params.get("refresh_token") else {
        // The client is authenticated first, as for every grant: its errors come first.
        attempt.authenticate(app).await?;
        return Err(Error::invalid_request("refresh_token is required"));
    };
    let now = store::now();
    let hash = digest(token);
    let requested = params.get("scope").map(Scope::parse);
    let mint_app = app.clone();
    let judge = attempt.clone();
    // Every check runs before the token is marked used: a request that is refused (another
    // client's token, a wider scope) must not burn the owner's token or trip reuse detection.
    let redeemed = refresh_tokens::redeem(
        &app.store,
        (attempt.client_id(), attempt.bucket()),
        &hash,
        now,
        move |found| judge.judge(found),
        move |client, found| {
            let scope = check(found, &client.id, requested, now)?;
            let (next, next_row) = issue::mint_refresh_token(&mint_app, &found.grant);
            Ok((next_row, (next, scope)))
        },
    )
    .await?;
    let (client, redeemed) = match redeemed {
        Ok(redeemed) => redeemed,
        Err(refused) => return Err(attempt.refusal(app, refused).await),
    };
    let (found, (next, scope)) = match redeemed {
        Redeemed::Unknown => return Err(Error::invalid_grant("the refresh token is invalid")),
        Redeemed::Refused(_, Refusal::Invalid(e)) => return Err(e),
        // The one conditional UPDATE decides between two concurrent uses; the loser is a reuse.
        Redeemed::Refused(found, Refusal::Reused) | Redeemed::Reused(found) => {
            return Err(reused(app, client, &found.grant, now).await);
        }
        Redeemed::Rotated(found, value) => (found, value),
    };
    issue::respond(
        app,
        Issue {
            client_id: &client.id,
            user: found.user.as_ref(),
            org: found.org.as_ref(),
            grant: &found.grant,
            scope: &scope,
            nonce: None,
            refresh_token: Some(next),
        },
    )
    .await
}

/// The request against the stored token and grant; the scope to issue.
fn check(
    found: &refresh_tokens::WithGrant,
    client_id: &str,
    requested: Option<Scope>,
    now: i64,
) -> Result<Scope, Refusal> {
    let invalid = |description: &'static str| Refusal::Invalid(Error::invalid_grant(description));
    let (row, grant) = (&found.token, &found.grant);
    if grant.client_id != client_id {
        return Err(invalid("the refresh token was issued to another client"));
    }
    if row.used_at.is_some() {
        return Err(Refusal::Reused);
    }
    if row.expires_at < now || grant.expires_at < now {
        return Err(invalid("the refresh token has expired"));
    }
    if grant.revoked_at.is_some() {
        return Err(invalid("the refresh token has been revoked"));
    }
    if grant.user_id.is_some() && found.user.as_ref().is_none_or(|u| u.disabled) {
        return Err(invalid("the user is no longer active"));
    }
    let granted = Scope::parse(&grant.scope);
    // §6: a narrower scope may be requested, never a wider one.
    match requested {
        Some(requested) if !requested.is_subset_of(&granted) => Err(Refusal::Invalid(
            Error::oauth(Code::InvalidScope, "scope exceeds the original grant"),
        )),
        Some(requested) => Ok(requested),
        None => Ok(granted),
    }
}

/// A second use of a rotated token by its own client: theft or a bug, so the family goes, and
/// the client hears of it through back-channel logout (see the module comment).
async fn reused(app: &AppState, client: Client, grant: &grants::GrantRow, now: i64) -> Error {
    let revoked_now = match grants::revoke(&app.store, &grant.id, now).await {
        Ok(r) => r,
        Err(e) => return e.into(),
    };
    tracing::warn!(grant = %grant.id, "refresh token reused; token family revoked");
    // Only the call that revoked the family notifies (the conditional UPDATE picks one among
    // concurrent replays); a grant without a browser session (device flow) has no `sid` for
    // a logout token to name. `client` is the grant's client: `check` refused any other.
    if revoked_now && let (Some(sub), Some(sid)) = (&grant.user_id, &grant.session_id) {
        logout::notify_clients(
            app,
            vec![client],
            sub,
            sid,
            logout::Cause::RefreshTokenReuse,
        );
    }
    Error::invalid_grant("the refresh token was already used")
}
