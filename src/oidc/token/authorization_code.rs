//! `grant_type=authorization_code` (RFC 6749 §4.1.3, OIDC Core §3.1.3.2, RFC 7636 §4.6).

use crate::app::App;
use crate::error::{Code, Error};
use crate::http::params::Params;
use crate::oidc::authorize::pkce;
use crate::oidc::scope::Scope;
use crate::security::digest;
use crate::store;
use crate::store::clients::Client;
use crate::store::codes;
use crate::store::grants::{self, GrantRow};

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
    // The one conditional UPDATE decides between two concurrent redemptions; the loser is a reuse.
    if row.consumed_at.is_some() || !codes::consume(&app.store, &hash, now).await? {
        // RFC 6749 §4.1.2: a reused code SHOULD revoke the tokens issued from it. The winner of
        // a simultaneous redemption may not have stored its grant yet: preempting it with a
        // revoked one makes the winner's insert fail instead of leaving its tokens alive.
        grants::revoke_or_preempt(&app.store, &grant_from(app, &row, now), now).await?;
        tracing::warn!(client_id = %row.client_id, "authorization code reused; grant revoked");
        return Err(Error::invalid_grant(
            "the authorization code was already used",
        ));
    }
    if row.expires_at < now {
        return Err(Error::invalid_grant("the authorization code has expired"));
    }
    if row.redirect_uri != redirect_uri {
        return Err(Error::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&row.code_challenge, params.get("code_verifier")) {
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
    let user = user
        .filter(|u| !u.disabled)
        .ok_or_else(|| Error::invalid_grant("the user is no longer active"))?;
    let scope = Scope::parse(&row.scope);
    let grant = grant_from(app, &row, now);
    grants::insert(&app.store, &grant).await.map_err(|e| {
        if e.is_unique_violation() {
            Error::oauth(
                Code::InvalidGrant,
                "the authorization code was already used",
            )
        } else {
            e.into()
        }
    })?;
    // OIDC Core §11: refresh tokens only when offline access was requested.
    let refresh_token = match scope.has("offline_access") {
        true => Some(issue::new_refresh_token(app, &grant).await?),
        false => None,
    };
    issue::respond(
        app,
        Issue {
            client_id: &client.id,
            user: Some(&user),
            org: org.as_ref(),
            grant: &grant,
            scope: &scope,
            nonce: row.nonce.as_deref(),
            refresh_token,
        },
    )
    .await
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
