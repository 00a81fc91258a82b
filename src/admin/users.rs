//! User administration within one organization. Changes that take access away (disabling,
//! deleting, resetting sign-in methods) also end the user's sessions the way "sign out
//! everywhere" does, so relying parties hear of it through back-channel logout; those take
//! the running [`AppState`], which delivers the logout tokens.

use serde_json::json;

use super::{Actor, AdminError, NewUser, record_change};
use crate::account::deletion::DeletedBy;
use crate::app::AppState;
use crate::session::logout::Cause;
use crate::store::users::{self, ROLE_ADMIN, ROLE_MEMBER, User};
use crate::store::{Store, devices, passkeys};

/// The organization's users, oldest first; with `email`, only the account holding that
/// address (compared as [`users::normalize_email`] does).
pub async fn list(
    store: &Store,
    actor: &Actor,
    org_id: &str,
    email: Option<&str>,
) -> Result<Vec<User>, AdminError> {
    actor.require_org(org_id)?;
    match email {
        Some(email) => Ok(users::find_by_email(store, org_id, email)
            .await?
            .into_iter()
            .collect()),
        None => Ok(users::list(store, org_id).await?),
    }
}

/// The user, if it belongs to `org_id` (another organization's user is not found).
pub async fn get(
    store: &Store,
    actor: &Actor,
    org_id: &str,
    user_id: &str,
) -> Result<User, AdminError> {
    actor.require_org(org_id)?;
    users::find(store, user_id)
        .await?
        .filter(|u| u.org_id == org_id)
        .ok_or_else(|| AdminError::NotFound("no such user".into()))
}

fn check_role(role: &str) -> Result<(), AdminError> {
    if role == ROLE_ADMIN || role == ROLE_MEMBER {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "role must be {ROLE_ADMIN:?} or {ROLE_MEMBER:?}"
        )))
    }
}

/// Creates a user in `org_id` (whatever `new.org_id` says) with an optional phone number
/// (stored in E.164, unverified until a code sent to it is entered) and a role.
pub async fn create(
    store: &Store,
    actor: &Actor,
    org_id: &str,
    new: NewUser<'_>,
    phone: Option<&str>,
    role: &str,
) -> Result<User, AdminError> {
    actor.require_org(org_id)?;
    check_role(role)?;
    if new
        .name
        .is_some_and(|n| n.len() > 200 || n.chars().any(char::is_control))
    {
        return Err(AdminError::Invalid(
            "a name is at most 200 characters, without control characters".into(),
        ));
    }
    let phone = match phone.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => Some(crate::authn::otp::normalize_phone(p).map_err(AdminError::Invalid)?),
        None => None,
    };
    if let Some(p) = &phone
        && users::find_by_phone(store, org_id, p).await?.is_some()
    {
        return Err(AdminError::Conflict(
            "another account of this organization has that phone number".into(),
        ));
    }
    let mut user = super::create_user(store, NewUser { org_id, ..new })
        .await
        .map_err(|e| {
            if e.contains("already exists") {
                AdminError::Conflict(e)
            } else {
                AdminError::Invalid(e)
            }
        })?;
    if let Some(p) = &phone {
        users::set_phone(store, &user.id, Some(p), false).await?;
        user.phone_number = Some(p.clone());
    }
    if role != user.role {
        users::set_role(store, &user.id, role).await?;
        user.role = role.to_owned();
    }
    record_change(
        store,
        actor,
        Some(org_id),
        "user.create",
        Some(&user.id),
        json!({
            "email": user.email,
            "role": user.role,
            "has_password": user.password_hash.is_some(),
            "has_phone": user.phone_number.is_some(),
        }),
    )
    .await?;
    Ok(user)
}

/// Disables or re-enables the account. Disabling ends every session and revokes every grant
/// (a disabled user's tokens already stop working at userinfo and introspection; this also
/// tells relying parties through back-channel logout).
pub async fn set_disabled(
    app: &AppState,
    actor: &Actor,
    org_id: &str,
    user_id: &str,
    disabled: bool,
) -> Result<(), AdminError> {
    let user = get(&app.store, actor, org_id, user_id).await?;
    users::set_disabled(&app.store, &user.id, disabled).await?;
    let ended = if disabled {
        end_sessions(app, &user.id, Cause::UserDisabled).await?
    } else {
        0
    };
    record_change(
        &app.store,
        actor,
        Some(org_id),
        if disabled {
            "user.disable"
        } else {
            "user.enable"
        },
        Some(&user.id),
        json!({ "sessions_ended": ended }),
    )
    .await
}

pub async fn set_role(
    store: &Store,
    actor: &Actor,
    org_id: &str,
    user_id: &str,
    role: &str,
) -> Result<(), AdminError> {
    check_role(role)?;
    let user = get(store, actor, org_id, user_id).await?;
    users::set_role(store, &user.id, role).await?;
    record_change(
        store,
        actor,
        Some(org_id),
        "user.role.update",
        Some(&user.id),
        json!({ "from": user.role, "to": role }),
    )
    .await
}

/// Deletes the account and everything that is theirs in one transaction, after which the
/// relying parties of its sessions get back-channel logout tokens (`account::deletion`).
pub async fn delete(
    app: &AppState,
    actor: &Actor,
    org_id: &str,
    user_id: &str,
) -> Result<(), AdminError> {
    let user = get(&app.store, actor, org_id, user_id).await?;
    crate::account::deletion::delete_user(app, &user.id, DeletedBy::Admin(actor))
        .await?
        .ok_or_else(|| AdminError::NotFound("no such user".into()))?;
    Ok(())
}

/// Removes the password, every passkey and every companion device, and ends every session:
/// the person signs in again with what the organization still offers (an emailed code) and
/// sets up new credentials. The phone number stays (it is contact data, not a credential).
pub async fn reset_methods(
    app: &AppState,
    actor: &Actor,
    org_id: &str,
    user_id: &str,
) -> Result<(), AdminError> {
    let user = get(&app.store, actor, org_id, user_id).await?;
    users::set_password_hash(&app.store, &user.id, None).await?;
    let passkeys = passkeys::delete_all_for_user(&app.store, &user.id).await?;
    let devices = devices::delete_all_for_user(&app.store, &user.id).await?;
    let ended = end_sessions(app, &user.id, Cause::MethodsReset).await?;
    record_change(
        &app.store,
        actor,
        Some(org_id),
        "user.reset_methods",
        Some(&user.id),
        json!({
            "had_password": user.password_hash.is_some(),
            "passkeys_removed": passkeys,
            "devices_removed": devices,
            "sessions_ended": ended,
        }),
    )
    .await
}

/// "Sign out everywhere" on the user's behalf.
async fn end_sessions(app: &AppState, user_id: &str, cause: Cause) -> Result<usize, AdminError> {
    Ok(crate::session::logout::end_all_sessions_because(app, user_id, cause).await?)
}

/// Stores a single-use recovery link for the user (README "Account recovery") and returns
/// the message carrying it; the caller delivers it to the user's own address.
pub async fn recovery_link(
    store: &Store,
    config: &crate::config::Config,
    actor: &Actor,
    org_id: &str,
    user_id: &str,
) -> Result<crate::account::recovery::Outgoing, AdminError> {
    let user = get(store, actor, org_id, user_id).await?;
    if user.disabled {
        return Err(AdminError::Invalid(
            "the account is disabled: enable it before sending a recovery link".into(),
        ));
    }
    let message = crate::account::recovery::issue_link(store, config, &user).await?;
    record_change(
        store,
        actor,
        Some(org_id),
        "user.recovery_link",
        Some(&user.id),
        json!({ "expires_in": crate::account::recovery::TTL_SECS }),
    )
    .await?;
    Ok(message)
}
