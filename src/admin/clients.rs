//! Client (relying party) administration within one organization.

use serde_json::json;

use super::{Actor, AdminError, NewClient, record_change};
use crate::store::Store;
use crate::store::clients::{self, Client};

/// The organization's clients, oldest first.
pub async fn list(store: &Store, actor: &Actor, org_id: &str) -> Result<Vec<Client>, AdminError> {
    actor.require_org(org_id)?;
    Ok(clients::list(store)
        .await?
        .into_iter()
        .filter(|c| c.org_id == org_id)
        .collect())
}

/// The client, if it belongs to `org_id` (another organization's client is not found).
pub async fn get(
    store: &Store,
    actor: &Actor,
    org_id: &str,
    client_id: &str,
) -> Result<Client, AdminError> {
    actor.require_org(org_id)?;
    clients::find(store, client_id)
        .await?
        .filter(|c| c.org_id == org_id)
        .ok_or_else(|| AdminError::NotFound("no such client".into()))
}

/// Registers a client in `org_id` (whatever `new.org_id` says); returns its id and, for a
/// confidential client, the secret, shown only this once.
pub async fn create(
    store: &Store,
    actor: &Actor,
    org_id: &str,
    new: NewClient<'_>,
) -> Result<(String, Option<String>), AdminError> {
    actor.require_org(org_id)?;
    if new.name.len() > 200 || new.name.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "a client name is at most 200 characters, without control characters".into(),
        ));
    }
    let public = new.public;
    let name = new.name.trim().to_owned();
    let (id, secret) = super::create_client(store, NewClient { org_id, ..new })
        .await
        .map_err(AdminError::Invalid)?;
    record_change(
        store,
        actor,
        Some(org_id),
        "client.create",
        Some(&id),
        json!({ "name": name, "public": public }),
    )
    .await?;
    Ok((id, secret))
}

/// Allows or forbids the client the `admin` scope of the client-credentials grant, with
/// which it calls the admin API for its organization.
pub async fn set_admin_api(
    store: &Store,
    actor: &Actor,
    org_id: &str,
    client_id: &str,
    admin_api: bool,
) -> Result<(), AdminError> {
    let client = get(store, actor, org_id, client_id).await?;
    if admin_api && client.is_public() {
        return Err(AdminError::Invalid(
            "a public client cannot use the client credentials grant, so not the admin API".into(),
        ));
    }
    clients::set_admin_api(store, client_id, admin_api).await?;
    record_change(
        store,
        actor,
        Some(org_id),
        "client.admin_api.update",
        Some(client_id),
        json!({ "admin_api": admin_api }),
    )
    .await
}

/// Deletes the client; its grants and tokens go with it (ON DELETE CASCADE).
pub async fn delete(
    store: &Store,
    actor: &Actor,
    org_id: &str,
    client_id: &str,
) -> Result<(), AdminError> {
    let client = get(store, actor, org_id, client_id).await?;
    if !clients::delete(store, &client.id).await? {
        return Err(AdminError::NotFound("no such client".into()));
    }
    record_change(
        store,
        actor,
        Some(org_id),
        "client.delete",
        Some(&client.id),
        json!({ "name": client.name }),
    )
    .await
}
