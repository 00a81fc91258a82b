//! Admin API tokens: bearer credentials for scripts, scoped to one organization or (no
//! organization) to the whole deployment. Created with the CLI or by an administrator who
//! holds at least the same scope.

use serde_json::json;

use super::{Actor, AdminError, record_change};
use crate::security::{digest, random_id, random_secret};
use crate::store::admin_tokens::{self, AdminTokenRow};
use crate::store::{self, Store};

/// Creates a token for `org_id` (`None`: deployment-wide, only by a deployment admin);
/// returns the row and the token, which is shown only this once.
pub async fn create(
    store: &Store,
    actor: &Actor,
    org_id: Option<&str>,
    name: &str,
) -> Result<(AdminTokenRow, String), AdminError> {
    match org_id {
        Some(org) => {
            actor.require_org(org)?;
            if store::orgs::find(store, org).await?.is_none() {
                return Err(AdminError::NotFound("no such organization".into()));
            }
        }
        None if !actor.is_deployment_admin() => {
            return Err(AdminError::Forbidden(
                "only a deployment-wide credential creates deployment-wide tokens".into(),
            ));
        }
        None => {}
    }
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "the token needs a name (at most 200 characters)".into(),
        ));
    }
    let token = random_secret();
    let row = AdminTokenRow {
        id: random_id(),
        token_hash: digest(&token),
        org_id: org_id.map(str::to_owned),
        name: name.to_owned(),
        created_at: store::now(),
        last_used_at: None,
        revoked_at: None,
    };
    admin_tokens::insert(store, &row).await?;
    record_change(
        store,
        actor,
        org_id,
        "admin_token.create",
        Some(&row.id),
        json!({ "name": row.name }),
    )
    .await?;
    Ok((row, token))
}

/// The tokens this actor may see: every token for a deployment admin, else its organization's.
pub async fn list(store: &Store, actor: &Actor) -> Result<Vec<AdminTokenRow>, AdminError> {
    Ok(admin_tokens::list(store, actor.org_id.as_deref()).await?)
}

pub async fn revoke(store: &Store, actor: &Actor, token_id: &str) -> Result<(), AdminError> {
    let row = admin_tokens::find(store, token_id)
        .await?
        .filter(|t| t.org_id.as_deref().is_none_or(|org| actor.manages(org)))
        .filter(|t| t.org_id.is_some() || actor.is_deployment_admin())
        .ok_or_else(|| AdminError::NotFound("no such admin token".into()))?;
    if !admin_tokens::revoke(store, &row.id, store::now()).await? {
        return Err(AdminError::NotFound(
            "no such admin token (or already revoked)".into(),
        ));
    }
    record_change(
        store,
        actor,
        row.org_id.as_deref(),
        "admin_token.revoke",
        Some(&row.id),
        json!({ "name": row.name }),
    )
    .await
}

/// The actor a presented admin token stands for, if it is a live token. Tokens are found by
/// digest, so there is nothing to compare in constant time.
pub async fn authenticate(
    store: &Store,
    token: &str,
    ip: Option<String>,
) -> Result<Option<Actor>, AdminError> {
    // Our tokens are 43 characters; anything much longer is not one (and is not hashed).
    if token.len() > 256 {
        return Ok(None);
    }
    let Some(row) = admin_tokens::find_live_by_digest(store, &digest(token)).await? else {
        return Ok(None);
    };
    admin_tokens::touch(store, &row.id, store::now()).await?;
    Ok(Some(Actor {
        name: format!("admin_token:{}", row.id),
        org_id: row.org_id,
        ip,
    }))
}
