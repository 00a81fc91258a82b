//! Organization administration shared by the CLI, the admin API and the console: creating
//! organizations, branding, and saving the sign-in method configuration behind the lock-out
//! guard.

use serde_json::json;

use super::{Actor, AdminError, record_change};
use crate::authn::methods::{AuthConfig, Method};
use crate::store::orgs::{self, Organization};
use crate::store::{Store, users};

/// Creates an organization (deployment admins only).
pub async fn create(
    store: &Store,
    actor: &Actor,
    slug: &str,
    name: &str,
) -> Result<Organization, AdminError> {
    if !actor.is_deployment_admin() {
        return Err(AdminError::Forbidden(
            "only a deployment-wide credential creates organizations".into(),
        ));
    }
    let slug = slug.trim();
    let valid = !slug.is_empty()
        && slug.len() <= 63
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-');
    if !valid {
        return Err(AdminError::Invalid(format!(
            "{slug:?}: an organization slug is 1 to 63 lower-case letters, digits and dashes"
        )));
    }
    check_name(name)?;
    let org = Organization::new(slug, name.trim());
    orgs::insert(store, &org).await.map_err(|e| {
        if e.is_unique_violation() {
            AdminError::Conflict(format!("an organization {slug:?} already exists"))
        } else {
            e.into()
        }
    })?;
    record_change(
        store,
        actor,
        Some(&org.id),
        "org.create",
        Some(&org.id),
        json!({ "slug": org.slug, "name": org.name }),
    )
    .await?;
    Ok(org)
}

fn check_name(name: &str) -> Result<(), AdminError> {
    if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "the organization needs a name (at most 200 characters)".into(),
        ));
    }
    Ok(())
}

/// The organization, if this actor manages it.
pub async fn get(store: &Store, actor: &Actor, org_id: &str) -> Result<Organization, AdminError> {
    actor.require_org(org_id)?;
    orgs::find(store, org_id)
        .await?
        .ok_or_else(|| AdminError::NotFound("no such organization".into()))
}

pub async fn set_branding(
    store: &Store,
    actor: &Actor,
    org_id: &str,
    name: &str,
    logo_url: Option<&str>,
    primary_color: Option<&str>,
) -> Result<(), AdminError> {
    actor.require_org(org_id)?;
    check_name(name)?;
    let logo_url = logo_url.map(str::trim).filter(|s| !s.is_empty());
    if let Some(url) = logo_url {
        if url.len() > 2000 || url.chars().any(char::is_control) {
            return Err(AdminError::Invalid(
                "logo_url must be an https URL of at most 2000 characters".into(),
            ));
        }
        // Shown as <img src> on the hosted pages: https only (the CSP allows https: images).
        let parsed =
            url::Url::parse(url).map_err(|e| AdminError::Invalid(format!("logo_url: {e}")))?;
        if parsed.scheme() != "https" {
            return Err(AdminError::Invalid("logo_url must be an https URL".into()));
        }
    }
    let primary_color = primary_color.map(str::trim).filter(|s| !s.is_empty());
    if let Some(colour) = primary_color {
        let hex = colour.strip_prefix('#').unwrap_or("");
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(AdminError::Invalid(
                "primary_color must look like #1a73e8".into(),
            ));
        }
    }
    if !orgs::set_branding(store, org_id, name.trim(), logo_url, primary_color).await? {
        return Err(AdminError::NotFound("no such organization".into()));
    }
    record_change(
        store,
        actor,
        Some(org_id),
        "org.branding.update",
        Some(org_id),
        json!({ "name": name.trim(), "logo_url": logo_url, "primary_color": primary_color }),
    )
    .await
}

/// Saves `config` unless it would lock everyone out: no method a person can start with, or
/// an organization with accounts none of which any enabled method can sign in (say, only
/// passkeys when nobody has registered one). `passkeys_available` is false when the
/// deployment cannot offer passkeys (its issuer host is an IP address).
/// Upstream providers are managed by their own calls ([`super::upstream`]): the stored list
/// is kept whatever `config` says, so a form or JSON without it cannot drop a provider or
/// its sealed secret.
pub async fn set_auth_config(
    store: &Store,
    actor: &Actor,
    org_id: &str,
    config: &AuthConfig,
    passkeys_available: bool,
) -> Result<(), AdminError> {
    let stored = get(store, actor, org_id).await?.auth_config()?;
    let config = AuthConfig {
        upstream: stored.upstream,
        ..config.clone()
    };
    save_auth_config(
        store,
        actor,
        org_id,
        &config,
        passkeys_available,
        "org.auth_config.update",
    )
    .await
}

/// Saves a whole configuration behind the lock-out guard and records `action`.
pub(crate) async fn save_auth_config(
    store: &Store,
    actor: &Actor,
    org_id: &str,
    config: &AuthConfig,
    passkeys_available: bool,
    action: &str,
) -> Result<(), AdminError> {
    actor.require_org(org_id)?;
    config.check_static().map_err(AdminError::Invalid)?;
    let mut config = config.clone();
    config.signup.normalize().map_err(AdminError::Invalid)?;
    let config = &config;
    let reach = users::method_reach(store, org_id).await?;
    let anyone_can_sign_in = reach.active == 0
        || config.enabled(Method::EmailOtp)
        || (config.enabled(Method::Password) && reach.with_password > 0)
        || (config.enabled(Method::Passkey) && passkeys_available && reach.with_passkey > 0)
        || (config.enabled(Method::PhoneOtp) && reach.with_phone > 0)
        || config.enabled(Method::Upstream);
    if !anyone_can_sign_in {
        let mut why = Vec::new();
        if config.enabled(Method::Password) {
            why.push("no account has a password".to_owned());
        }
        if config.enabled(Method::Passkey) {
            why.push(if passkeys_available {
                "no account has a passkey".to_owned()
            } else {
                "this deployment cannot offer passkeys (its issuer is an IP address)".to_owned()
            });
        }
        if config.enabled(Method::PhoneOtp) {
            why.push("no account has a phone number".to_owned());
        }
        return Err(AdminError::Invalid(format!(
            "this configuration would lock every account out ({}); enable another method first",
            why.join(", ")
        )));
    }
    if !orgs::set_auth_config(store, org_id, config).await? {
        return Err(AdminError::NotFound("no such organization".into()));
    }
    record_change(
        store,
        actor,
        Some(org_id),
        action,
        Some(org_id),
        serde_json::to_value(config.redacted()).unwrap_or_default(),
    )
    .await
}

/// Every organization for a deployment admin; the actor's own otherwise.
pub async fn list(store: &Store, actor: &Actor) -> Result<Vec<Organization>, AdminError> {
    match &actor.org_id {
        None => Ok(orgs::list(store).await?),
        Some(own) => Ok(orgs::find(store, own).await?.into_iter().collect()),
    }
}
