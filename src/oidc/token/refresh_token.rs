//! `grant_type=refresh_token` (RFC 6749 §6, OIDC Core §12). Tokens rotate on every use; a
//! second use of a rotated token revokes the family (RFC 9700 §4.14.2). The new ID token keeps
//! the original `auth_time` and `sid`: refreshing never counts as signing in.

use crate::app::App;
use crate::error::{Code, Error};
use crate::http::params::Params;
use crate::oidc::scope::Scope;
use crate::security::digest;
use crate::store::clients::Client;
use crate::store::grants;
use crate::store::refresh_tokens::{self, Used};
use crate::store::{self, users};

use super::issue::{self, Issue};

pub async fn exchange(
    app: &App,
    client: &Client,
    params: &Params,
) -> Result<serde_json::Value, Error> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| Error::invalid_request("refresh_token is required"))?;
    let now = store::now();
    let row = match refresh_tokens::use_once(&app.store, &digest(token), now).await? {
        Used::First(row) => row,
        Used::Reused(row) => {
            grants::revoke(&app.store, &row.grant_id, now).await?;
            tracing::warn!(grant = %row.grant_id, "refresh token reused; token family revoked");
            return Err(Error::invalid_grant("the refresh token was already used"));
        }
        Used::Unknown => return Err(Error::invalid_grant("the refresh token is invalid")),
    };
    if row.expires_at < now {
        return Err(Error::invalid_grant("the refresh token has expired"));
    }
    let grant = grants::find(&app.store, &row.grant_id)
        .await?
        .filter(|g| g.revoked_at.is_none() && g.expires_at >= now)
        .ok_or_else(|| Error::invalid_grant("the refresh token has been revoked"))?;
    if grant.client_id != client.id {
        return Err(Error::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let user = match &grant.user_id {
        Some(id) => Some(
            users::find(&app.store, id)
                .await?
                .filter(|u| !u.disabled)
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
    issue::respond(
        app,
        Issue {
            client_id: &client.id,
            user: user.as_ref(),
            grant: &grant,
            scope: &scope,
            nonce: None,
            with_refresh_token: true,
        },
    )
    .await
}
