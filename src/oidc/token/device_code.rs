//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4–3.5): the device
//! polls with its device code until the person has approved or denied it at `/device`, or
//! the code has expired. An approved code is redeemed once, like an authorization code, and
//! gives the same tokens, with `auth_time`, `amr`, `acr` and `sid` of the approving session.

use crate::app::App;
use crate::error::{Code, Error};
use crate::http::params::Params;
use crate::oidc::device_authorization::SLOW_DOWN_STEP_SECS;
use crate::oidc::scope::Scope;
use crate::security::digest;
use crate::store;
use crate::store::clients::Client;
use crate::store::device_authorizations::{
    self as devices, APPROVED, DENIED, DeviceAuthorizationRow, PENDING,
};
use crate::store::grants::{self, GrantRow};
use crate::store::users::User;

use super::issue::{self, Issue};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub async fn exchange(
    app: &App,
    client: &Client,
    params: &Params,
) -> Result<serde_json::Value, Error> {
    let device_code = params
        .get("device_code")
        .ok_or_else(|| Error::invalid_request("device_code is required"))?;
    let now = store::now();
    let hash = digest(device_code);
    let (row, user) = devices::find_with_user(&app.store, &hash)
        .await?
        .ok_or_else(|| Error::invalid_grant("the device code is invalid"))?;
    // Another client presenting a code learns nothing and changes nothing (not even the
    // polling clock of the rightful device).
    if row.client_id != client.id {
        return Err(Error::invalid_grant(
            "the device code was issued to another client",
        ));
    }
    if row.consumed_at.is_some() {
        return Err(Error::invalid_grant("the device code was already used"));
    }
    // §3.5: `expired_token` once the code's `expires_in` has passed, whatever its status.
    if row.expires_at <= now {
        return Err(Error::oauth(
            Code::ExpiredToken,
            "the device code has expired; start again",
        ));
    }
    match row.status.as_str() {
        PENDING => Err(pending_answer(app, &hash, now).await?),
        DENIED => Err(Error::oauth(
            Code::AccessDenied,
            "the user denied the authorization request",
        )),
        APPROVED => redeem(app, client, &hash, &row, user, now).await,
        other => Err(Error::Internal(format!(
            "device authorization has unknown status {other:?}"
        ))),
    }
}

/// §3.5: `authorization_pending` for a poll that respects the interval; `slow_down` for one
/// that does not, and the interval grows by 5 seconds "for this and all subsequent requests".
/// Only a pending code is paced: once the person has decided, the answer is given at once.
async fn pending_answer(app: &App, hash: &str, now: i64) -> Result<Error, Error> {
    if devices::record_timely_poll(&app.store, hash, now).await? {
        return Ok(Error::oauth(
            Code::AuthorizationPending,
            "the user has not yet approved the request",
        ));
    }
    if !devices::slow_down(&app.store, hash, SLOW_DOWN_STEP_SECS, now).await? {
        // Approved or denied between the read and this poll: the next poll gets the answer.
        return Ok(Error::oauth(
            Code::AuthorizationPending,
            "the user has just decided; poll again",
        ));
    }
    Ok(Error::oauth(
        Code::SlowDown,
        "polling too fast; wait 5 more seconds between requests from now on",
    ))
}

/// An approved code: consumed in one conditional UPDATE (the loser of two concurrent polls
/// gets `invalid_grant`), then tokens are issued exactly as for an authorization code.
async fn redeem(
    app: &App,
    client: &Client,
    hash: &str,
    row: &DeviceAuthorizationRow,
    user: Option<User>,
    now: i64,
) -> Result<serde_json::Value, Error> {
    if !devices::consume(&app.store, hash, now).await? {
        return Err(Error::invalid_grant("the device code was already used"));
    }
    let user = user
        .filter(|u| !u.disabled)
        .ok_or_else(|| Error::invalid_grant("the user is no longer active"))?;
    let grant = grant_from(app, row, now)?;
    grants::insert(&app.store, &grant).await.map_err(|e| {
        if e.is_unique_violation() {
            Error::invalid_grant("the device code was already used")
        } else {
            e.into()
        }
    })?;
    let scope = Scope::parse(&row.scope);
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
            org: None,
            grant: &grant,
            scope: &scope,
            // RFC 8628 has no nonce: the device never sent an authorization request.
            nonce: None,
            refresh_token,
        },
    )
    .await
}

/// The grant an approved code's redemption stores, with its lifetime chosen as for codes.
fn grant_from(app: &App, row: &DeviceAuthorizationRow, now: i64) -> Result<GrantRow, Error> {
    let approved =
        |field: &str| Error::Internal(format!("approved device authorization without {field}"));
    let lifetime = if Scope::parse(&row.scope).has("offline_access") {
        app.config.tokens.refresh_token_ttl_secs
    } else {
        app.config
            .sessions
            .absolute_ttl_secs
            .max(app.config.tokens.access_token_ttl_secs)
    };
    Ok(GrantRow {
        id: row.grant_id.clone(),
        client_id: row.client_id.clone(),
        user_id: Some(row.user_id.clone().ok_or_else(|| approved("user"))?),
        session_id: row.session_id.clone(),
        scope: row.scope.clone(),
        auth_time: Some(row.auth_time.ok_or_else(|| approved("auth_time"))?),
        amr: row.amr.clone().ok_or_else(|| approved("amr"))?,
        acr: row.acr.clone(),
        created_at: now,
        expires_at: now + lifetime,
        revoked_at: None,
    })
}
