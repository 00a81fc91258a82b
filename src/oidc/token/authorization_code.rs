//! `grant_type=authorization_code` (RFC 6749 §4.1.3, OIDC Core §3.1.3.2, RFC 7636 §4.6).

use crate::app::App;
use crate::error::Error;
use crate::http::params::Params;
use crate::oidc::authorize::pkce;
use crate::oidc::scope::Scope;
use crate::security::digest;
use crate::store;
use crate::store::clients::Client;
use crate::store::codes;
use crate::store::grants::{self, GrantRow};
use crate::store::users::User;

use super::issue::{self, Issue};

pub async fn exchange(
    app: &App,
    client: &Client,
    params: &Params,
) -> Result<serde_json::Value, Error> {
    let code = params
        .get("code")
        .ok_or_else(|| Error::invalid_request("code is required"))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| Error::invalid_request("redirect_uri is required"))?;
    let now = store::now();
    let hash = digest(code);
    let (row, user, org) = codes::find_with_user(&app.store, &hash)
        .await?
        .ok_or_else(|| Error::invalid_grant("the authorization code is invalid"))?;
    // Another client presenting a code learns nothing and burns nothing.
    if row.client_id != client.id {
        return Err(Error::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    let checked = check(&row, user, params.get("code_verifier"), redirect_uri, now);
    let scope = Scope::parse(&row.scope);
    let grant = grant_from(app, &row, now);
    // OIDC Core §11: refresh tokens only when offline access was requested.
    let refresh_token = (checked.is_ok() && scope.has("offline_access"))
        .then(|| issue::mint_refresh_token(app, &grant));
    let redemption = checked.is_ok().then(|| codes::Redemption {
        grant: &grant,
        refresh_token: refresh_token.as_ref().map(|(_, row)| row),
    });
    // The one conditional UPDATE decides between two concurrent redemptions; the loser is a
    // reuse. A request refused by the checks still burns the code.
    let claimed = row.consumed_at.is_none()
        && codes::consume(&app.store, &hash, now, redemption)
            .await
            .map_err(|e| match e.is_unique_violation() {
                // A replay revoked this grant before it was stored (below).
                true => Error::invalid_grant("the authorization code was already used"),
                false => e.into(),
            })?;
    if !claimed {
        // RFC 6749 §4.1.2: a reused code SHOULD revoke the tokens issued from it. The winner of
        // a simultaneous redemption may not have stored its grant yet: preempting it with a
        // revoked one makes the winner's insert fail instead of leaving its tokens alive.
        grants::revoke_or_preempt(&app.store, &grant, now).await?;
        tracing::warn!(client_id = %row.client_id, "authorization code reused; grant revoked");
        return Err(Error::invalid_grant(
            "the authorization code was already used",
        ));
    }
    let user = checked?;
    issue::respond(
        app,
        Issue {
            client_id: &client.id,
            user: Some(&user),
            org: org.as_ref(),
            grant: &grant,
            scope: &scope,
            nonce: row.nonce.as_deref(),
            refresh_token: refresh_token.map(|(token, _)| token),
        },
    )
    .await
}

/// The request against the stored code (RFC 6749 §4.1.3, RFC 7636 §4.6); the user to issue
/// for.
fn check(
    row: &codes::CodeRow,
    user: Option<User>,
    code_verifier: Option<&str>,
    redirect_uri: &str,
    now: i64,
) -> Result<User, Error> {
    if row.expires_at < now {
        return Err(Error::invalid_grant("the authorization code has expired"));
    }
    if row.redirect_uri != redirect_uri {
        return Err(Error::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&row.code_challenge, code_verifier) {
        (Some(challenge), Some(verifier)) if pkce::verify(challenge, verifier) => {}
        (Some(_), Some(_)) => return Err(Error::invalid_grant("PKCE verification failed")),
        (Some(_), None) => return Err(Error::invalid_grant("code_verifier is required")),
        // RFC 9700 §2.1.1: a verifier without a challenge means the request was tampered with.
        (None, Some(_)) => {
            return Err(Error::invalid_grant(
                "code_verifier sent but no code_challenge was used",
            ));
        }
        (None, None) => {}
    }
    user.filter(|u| !u.disabled)
        .ok_or_else(|| Error::invalid_grant("the user is no longer active"))
}

/// The grant a code's redemption stores.
fn grant_from(app: &App, row: &codes::CodeRow, now: i64) -> GrantRow {
    // A grant with a refresh token lives as long as refresh tokens may. Without one it only
    // records that the client took part in the session (for back-channel logout) and backs
    // access tokens, so it need not outlive either; housekeeping can then purge it, and the
    // table stays bounded by sign-in rate × session lifetime.
    let lifetime = if Scope::parse(&row.scope).has("offline_access") {
        app.config.tokens.refresh_token_ttl_secs
    } else {
        app.config
            .sessions
            .absolute_ttl_secs
            .max(app.config.tokens.access_token_ttl_secs)
    };
    GrantRow {
        id: row.grant_id.clone(),
        client_id: row.client_id.clone(),
        user_id: Some(row.user_id.clone()),
        session_id: Some(row.session_id.clone()),
        scope: row.scope.clone(),
        auth_time: Some(row.auth_time),
        amr: row.amr.clone(),
        acr: Some(row.acr.clone()),
        created_at: now,
        expires_at: now + lifetime,
        revoked_at: None,
    }
}
