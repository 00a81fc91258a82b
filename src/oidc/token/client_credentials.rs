//! `grant_type=client_credentials` (RFC 6749 §4.4): a confidential client acting for itself.
//! No ID token and no refresh token (§4.4.3).

use crate::app::App;
use crate::error::{Code, Error};
use crate::http::params::Params;
use crate::oidc::scope::Scope;
use crate::store::clients::Client;
use crate::store::grants::{self, GrantRow};
use crate::store::{self, encode_list};

use super::issue::{self, Issue};

/// The scope of client-credentials access tokens accepted by the admin API.
pub const ADMIN_SCOPE: &str = "admin";

pub async fn exchange(
    app: &App,
    client: &Client,
    params: &Params,
) -> Result<serde_json::Value, Error> {
    if client.is_public() {
        return Err(Error::oauth(
            Code::UnauthorizedClient,
            "public clients cannot use the client credentials grant",
        ));
    }
    // User-facing scopes mean nothing without a user.
    let scope = Scope::parse(params.get("scope").unwrap_or(""))
        .without("openid")
        .without("offline_access");
    // The admin API's scope: only for clients registered for it (RFC 6749 §5.2 invalid_scope
    // for the rest). The API re-checks the flag on every call, so clearing it takes effect
    // before the token expires.
    if scope.has(ADMIN_SCOPE) && !client.admin_api {
        return Err(Error::oauth(
            Code::InvalidScope,
            "this client may not use the admin API",
        ));
    }
    let now = store::now();
    let grant = GrantRow {
        id: crate::security::random_id(),
        client_id: client.id.clone(),
        user_id: None,
        session_id: None,
        scope: scope.to_string(),
        auth_time: None,
        amr: encode_list(&[]),
        acr: None,
        created_at: now,
        expires_at: now + app.config.tokens.access_token_ttl_secs,
        revoked_at: None,
    };
    grants::insert(&app.store, &grant).await?;
    issue::respond(
        app,
        Issue {
            client_id: &client.id,
            user: None,
            org: None,
            grant: &grant,
            scope: &scope,
            nonce: None,
            refresh_token: None,
        },
    )
    .await
}
