//! Signing keys: deployment-wide, so only deployment admins list or rotate them.

use serde_json::json;

use super::{Actor, AdminError, record_change};
use crate::security::master_key::MasterKey;
use crate::store::Store;
use crate::store::keys::{self, SigningKeyRow};

fn require_deployment_admin(actor: &Actor) -> Result<(), AdminError> {
    if actor.is_deployment_admin() {
        Ok(())
    } else {
        Err(AdminError::Forbidden(
            "signing keys are managed with a deployment-wide credential".into(),
        ))
    }
}

/// Every stored key, oldest first. The rows hold the (possibly encrypted) private keys:
/// callers show only the public fields.
pub async fn list(store: &Store, actor: &Actor) -> Result<Vec<SigningKeyRow>, AdminError> {
    require_deployment_admin(actor)?;
    Ok(keys::list(store).await?)
}

/// Promotes the published next key to active and publishes a new next key; returns the new
/// active kid. A running server picks the change up at its next key reload
/// (`tokens::keys::RELOAD_INTERVAL_SECS`); the API's handler reloads its own at once.
pub async fn rotate(
    store: &Store,
    actor: &Actor,
    master_key: Option<MasterKey>,
    max_token_ttl_secs: i64,
) -> Result<String, AdminError> {
    require_deployment_admin(actor)?;
    let kid = crate::tokens::keys::rotate(store, master_key, max_token_ttl_secs)
        .await
        .map_err(AdminError::Invalid)?;
    record_change(
        store,
        actor,
        None,
        "keys.rotate",
        Some(&kid),
        json!({ "active_kid": kid }),
    )
    .await?;
    Ok(kid)
}
