//! Upstream identity providers of an organization, shared by the admin API and the console.
//! The client secret is write-only: sealed when saved, shown afterwards only as "set".

use serde::Deserialize;

use super::{Actor, AdminError};
use crate::authn::methods::AuthConfig;
use crate::authn::upstream::{self, Kind, UpstreamProvider};
use crate::security::master_key::MasterKey;
use crate::store::Store;

/// A provider as an admin sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    pub kind: Kind,
    pub display_name: String,
    #[serde(default)]
    pub issuer: String,
    pub client_id: String,
    /// Absent or `null`: keep the stored secret. Empty: remove it (a public client).
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default = "upstream::default_scopes")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub trusted_for_email: bool,
    #[serde(default = "upstream::yes")]
    pub enabled: bool,
    #[serde(default = "upstream::yes")]
    pub create_accounts: bool,
    #[serde(default)]
    pub reauthenticate_upstream: bool,
}

/// The organization's providers, secrets redacted.
pub async fn list(
    store: &Store,
    actor: &Actor,
    org_id: &str,
) -> Result<Vec<UpstreamProvider>, AdminError> {
    let org = super::orgs::get(store, actor, org_id).await?;
    Ok(org.auth_config()?.redacted().upstream)
}

/// Creates or replaces provider `id`; returns it redacted.
pub async fn put(
    store: &Store,
    actor: &Actor,
    secrets: &MasterKey,
    org_id: &str,
    id: &str,
    input: ProviderInput,
    passkeys_available: bool,
) -> Result<UpstreamProvider, AdminError> {
    let org = super::orgs::get(store, actor, org_id).await?;
    let mut config = org.auth_config()?;
    let existing = config.upstream.iter().position(|p| p.id == id);
    let sealed = match input.client_secret.as_deref() {
        None => existing.and_then(|i| config.upstream[i].client_secret_sealed.clone()),
        Some("") => None,
        Some(secret) if secret.len() > 1000 || secret.chars().any(char::is_control) => {
            return Err(AdminError::Invalid(
                "a client secret is at most 1000 printable characters".into(),
            ));
        }
        Some(secret) => Some(upstream::seal_secret(secrets, org_id, id, secret)),
    };
    let provider = UpstreamProvider {
        id: id.to_owned(),
        kind: input.kind,
        display_name: input.display_name.trim().to_owned(),
        issuer: input.issuer.trim().to_owned(),
        client_id: input.client_id.trim().to_owned(),
        client_secret_sealed: sealed,
        scopes: input.scopes,
        trusted_for_email: input.trusted_for_email,
        enabled: input.enabled,
        create_accounts: input.create_accounts,
        reauthenticate_upstream: input.reauthenticate_upstream,
    };
    provider.check().map_err(AdminError::Invalid)?;
    match existing {
        Some(i) => config.upstream[i] = provider.clone(),
        None if config.upstream.len() >= 20 => {
            return Err(AdminError::Invalid(
                "an organization has at most 20 upstream providers".into(),
            ));
        }
        None => config.upstream.push(provider.clone()),
    }
    super::orgs::save_auth_config(
        store,
        actor,
        org_id,
        &config,
        passkeys_available,
        "org.upstream.put",
    )
    .await?;
    Ok(AuthConfig {
        upstream: vec![provider],
        ..AuthConfig::default()
    }
    .redacted()
    .upstream
    .remove(0))
}

/// Removes provider `id`. Links made through it stay (they name the issuer), but no sign-in
/// goes through them until a provider for that issuer is configured again.
pub async fn delete(
    store: &Store,
    actor: &Actor,
    org_id: &str,
    id: &str,
    passkeys_available: bool,
) -> Result<(), AdminError> {
    let org = super::orgs::get(store, actor, org_id).await?;
    let mut config = org.auth_config()?;
    let before = config.upstream.len();
    config.upstream.retain(|p| p.id != id);
    if config.upstream.len() == before {
        return Err(AdminError::NotFound("no such provider".into()));
    }
    super::orgs::save_auth_config(
        store,
        actor,
        org_id,
        &config,
        passkeys_available,
        "org.upstream.delete",
    )
    .await
}
