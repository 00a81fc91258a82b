//! What a presented token is, for revocation and introspection: one of our access tokens
//! or one of our refresh tokens, with the grant it belongs to.

use crate::app::App;
use crate::error::Error;
use crate::security::digest;
use crate::store;
use crate::store::grants::{self, GrantRow};
use crate::store::refresh_tokens::{self, RefreshTokenRow};
use crate::tokens::access_token::{self, AccessTokenClaims};

pub enum Found {
    Access(AccessTokenClaims, GrantRow),
    Refresh(RefreshTokenRow, GrantRow),
}

impl Found {
    pub fn grant(&self) -> &GrantRow {
        match self {
            Found::Access(_, g) | Found::Refresh(_, g) => g,
        }
    }
}

/// Finds the token, trying the hinted type first (RFC 7009 §2.1 / RFC 7662 §2.1: the hint
/// only speeds the search up). Expired or malformed tokens are `None`.
pub async fn find(app: &App, token: &str, hint: Option<&str>) -> Result<Option<Found>, Error> {
    if hint == Some("refresh_token") {
        if let Some(found) = refresh(app, token).await? {
            return Ok(Some(found));
        }
        return access(app, token).await;
    }
    if let Some(found) = access(app, token).await? {
        return Ok(Some(found));
    }
    refresh(app, token).await
}

/// An access token (signature or seal, issuer, expiry) and its grant, revoked or not: the
/// caller decides what a revoked grant means. Refresh tokens are not bearer credentials.
pub async fn access(app: &App, token: &str) -> Result<Option<Found>, Error> {
    let keys = app.keys.current();
    let Ok(claims) = access_token::validate(
        &keys,
        &app.access_token_key,
        token,
        &app.config.issuer,
        store::now(),
        0,
    ) else {
        return Ok(None);
    };
    Ok(grants::find(&app.store, &claims.gid)
        .await?
        .map(|g| Found::Access(claims, g)))
}

async fn refresh(app: &App, token: &str) -> Result<Option<Found>, Error> {
    if token.len() > 256 {
        return Ok(None);
    }
    let Some(row) = refresh_tokens::find(&app.store, &digest(token)).await? else {
        return Ok(None);
    };
    if row.expires_at < store::now() {
        return Ok(None);
    }
    Ok(grants::find(&app.store, &row.grant_id)
        .await?
        .map(|g| Found::Refresh(row, g)))
}
