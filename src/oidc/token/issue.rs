//! Builds a token response: an access token (JWT or opaque, `tokens.access_token_format`),
//! an ID token for `openid` grants, and a refresh token when one was granted. The signatures
//! (two with JWT access tokens, one with opaque ones, none for an opaque client-credentials
//! token) happen in one task on the CPU pool.

use serde_json::{Value, json};

use crate::app::App;
use crate::config::AccessTokenFormat;
use crate::error::Error;
use crate::oidc::scope::Scope;
use crate::security::{digest, random_secret};
use crate::store::grants::GrantRow;
use crate::store::orgs::Organization;
use crate::store::refresh_tokens::{self, RefreshTokenRow};
use crate::store::users::User;
use crate::store::{self, decode_list};
use crate::tokens::{access_token, id_token, jws};

pub struct Issue<'a> {
    pub client_id: &'a str,
    /// `None` for client credentials: the client acts for itself.
    pub user: Option<&'a User>,
    /// The user's organization, when the grant read it with the user (saves a statement);
    /// read here otherwise.
    pub org: Option<&'a Organization>,
    pub grant: &'a GrantRow,
    pub scope: &'a Scope,
    pub nonce: Option<&'a str>,
    /// A refresh token the grant already stored ([`new_refresh_token`] or a rotation).
    pub refresh_token: Option<String>,
}

/// A new refresh token in the grant's family, and the row that stores its digest.
pub fn mint_refresh_token(app: &App, grant: &GrantRow) -> (String, RefreshTokenRow) {
    let token = random_secret();
    let now = store::now();
    let row = RefreshTokenRow {
        token_hash: digest(&token),
        grant_id: grant.id.clone(),
        created_at: now,
        expires_at: (now + app.config.tokens.refresh_token_ttl_secs).min(grant.expires_at),
        used_at: None,
    };
    (token, row)
}

/// Stores a new refresh token in the grant's family and returns it.
pub async fn new_refresh_token(app: &App, grant: &GrantRow) -> Result<String, Error> {
    let (token, row) = mint_refresh_token(app, grant);
    refresh_tokens::insert(&app.store, &row).await?;
    Ok(token)
}

pub async fn respond(app: &App, issue: Issue<'_>) -> Result<Value, Error> {
    let now = store::now();
    let amr = decode_list(&issue.grant.amr).unwrap_or_default();
    let subject = issue.user.map(|u| u.id.as_str()).unwrap_or(issue.client_id);
    let scope_text = issue.scope.to_string();
    let at_claims = access_token::claims(&access_token::AccessTokenInput {
        issuer: &app.config.issuer,
        audience: &app.config.issuer,
        subject,
        client_id: issue.client_id,
        scope: &scope_text,
        grant_id: &issue.grant.id,
        auth_time: issue.grant.auth_time,
        acr: issue.grant.acr.as_deref(),
        amr: &amr,
        sid: issue.grant.session_id.as_deref(),
        now,
        ttl_secs: app.config.tokens.access_token_ttl_secs,
    });
    let id_input = match issue.user {
        Some(user) if issue.scope.has("openid") => {
            let can_reauthenticate = match issue.org {
                Some(org) => {
                    crate::authn::can_reauthenticate_in(&app.store, user, Some(org)).await?
                }
                None => crate::authn::can_reauthenticate(&app.store, user).await?,
            };
            Some((user.clone(), can_reauthenticate))
        }
        _ => None,
    };
    let needs_signature =
        id_input.is_some() || app.config.tokens.access_token_format == AccessTokenFormat::Jwt;
    let sealed = match app.config.tokens.access_token_format {
        AccessTokenFormat::Opaque => Some(access_token::seal(&app.access_token_key, &at_claims)),
        AccessTokenFormat::Jwt => None,
    };
    let key = app.keys.current().active.clone();
    let config = app.config.clone();
    let scope = issue.scope.clone();
    let nonce = issue.nonce.map(str::to_owned);
    let grant = issue.grant.clone();
    let client_id = issue.client_id.to_owned();
    let sign = move || {
        let access_token = sealed.unwrap_or_else(|| jws::sign(&key, access_token::TYP, &at_claims));
        let id_token = id_input.map(|(user, can_reauthenticate)| {
            let claims = id_token::claims(&id_token::IdTokenInput {
                issuer: &config.issuer,
                client_id: &client_id,
                user: &user,
                scope: &scope,
                nonce: nonce.as_deref(),
                auth_time: grant.auth_time.unwrap_or(now),
                amr: &amr,
                acr: grant
                    .acr
                    .as_deref()
                    .unwrap_or(crate::authn::ACR_SINGLE_FACTOR),
                sid: grant.session_id.as_deref(),
                access_token: Some(&access_token),
                now,
                ttl_secs: config.tokens.id_token_ttl_secs,
                reauthentication_claim: &config.reauthentication_claim,
                can_reauthenticate,
            });
            jws::sign(&key, "JWT", &claims)
        });
        (access_token, id_token)
    };
    let (access_token, id_token) = if needs_signature {
        crate::cpu::run(sign).await?
    } else {
        sign()
    };
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": app.config.tokens.access_token_ttl_secs,
        "scope": scope_text,
    });
    if let Some(id_token) = id_token {
        body["id_token"] = json!(id_token);
    }
    if let Some(refresh_token) = issue.refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    Ok(body)
}
