//! The sign-in methods a user holds, and changing them: set, change or remove the password,
//! remove a passkey. [`held`] is the one answer to "what can this user sign in with, and may
//! this one go": the last remaining method can never be removed, whatever removes it.

use crate::app::App;
use crate::authn::methods::AuthConfig;
use crate::store::passkeys::PasskeyRow;
use crate::store::users::{self, User};
use crate::store::{self, StoreError, devices, orgs, passkeys};

/// One credential a removal would take away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    Password,
    Passkey(&'a str),
}

/// Every way the user can sign in today. Only methods their organization has on count: a
/// password in an organization without password sign-in opens nothing.
pub struct Held {
    pub config: AuthConfig,
    pub password: bool,
    /// Usable (not flagged as possibly copied) passkeys.
    pub passkeys: Vec<PasskeyRow>,
    pub companions: i64,
    /// One-time codes to the account's email address.
    pub email_code: bool,
    /// One-time codes by text message to the account's verified phone.
    pub phone_code: bool,
}

impl Held {
    /// How many independent ways in there are.
    pub fn count(&self) -> usize {
        usize::from(self.password)
            + self.passkeys.len()
            + usize::try_from(self.companions).unwrap_or(0)
            + usize::from(self.email_code)
            + usize::from(self.phone_code)
    }

    fn holds(&self, credential: Credential<'_>) -> bool {
        match credential {
            Credential::Password => self.password,
            Credential::Passkey(id) => self.passkeys.iter().any(|p| p.id == id),
        }
    }

    /// True when `credential` is held and another method remains without it. The password
    /// goes only once a passkey exists (the account then signs in with the passkey).
    pub fn can_remove(&self, credential: Credential<'_>) -> bool {
        let other_exists = !self.holds(credential) || self.count() > 1;
        match credential {
            Credential::Password => self.password && !self.passkeys.is_empty() && other_exists,
            // A flagged passkey is not counted, so it can always be deleted.
            Credential::Passkey(_) => other_exists,
        }
    }
}

pub async fn held(app: &App, user: &User) -> Result<Held, StoreError> {
    let config = match orgs::find(&app.store, &user.org_id).await? {
        Some(org) => org.auth_config()?,
        None => AuthConfig::default(),
    };
    let passkeys = if config.passkey.enabled && app.passkeys.is_some() {
        passkeys::list_for_user(&app.store, &user.id)
            .await?
            .into_iter()
            .filter(|p| !p.flagged)
            .collect()
    } else {
        Vec::new()
    };
    let companions = if config.qr.enabled {
        devices::count_for_user(&app.store, &user.id).await?
    } else {
        0
    };
    Ok(Held {
        password: config.password.enabled && user.password_hash.is_some(),
        passkeys,
        companions,
        email_code: config.email_otp.enabled,
        phone_code: config.phone_otp.enabled
            && user.phone_number_verified
            && user.phone_number.is_some(),
        config,
    })
}

#[derive(Debug)]
pub enum Refused {
    /// The organization has password sign-in off.
    PasswordsOff,
    /// Too short or too long; the text says which.
    Weak(String),
    /// It is the last way in (or the password without a passkey).
    LastMethod,
    NotHeld,
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Refused {
        Refused::Store(e)
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::PasswordsOff => f.write_str("Your organization does not use passwords."),
            Refused::Weak(why) => write!(f, "That password cannot be used: {why}."),
            Refused::LastMethod => f.write_str(
                "This is the only way you can sign in. Add a passkey first, then remove it.",
            ),
            Refused::NotHeld => f.write_str("That is not on your account."),
            Refused::Store(_) => f.write_str("The change could not be saved. Try again."),
        }
    }
}

/// Sets or replaces the password. Returns whether one existed before (a change, not a set).
pub async fn set_password(app: &App, user: &User, new: String) -> Result<bool, Refused> {
    let held = held(app, user).await?;
    if !held.config.password.enabled {
        return Err(Refused::PasswordsOff);
    }
    let hash = crate::authn::password::hash(new)
        .await
        .map_err(Refused::Weak)?;
    users::set_password_hash(&app.store, &user.id, Some(&hash)).await?;
    Ok(user.password_hash.is_some())
}

/// Removes the password of a user who holds a passkey.
pub async fn remove_password(app: &App, user: &User) -> Result<(), Refused> {
    if user.password_hash.is_none() {
        return Err(Refused::NotHeld);
    }
    if !held(app, user).await?.can_remove(Credential::Password) {
        return Err(Refused::LastMethod);
    }
    users::set_password_hash(&app.store, &user.id, None).await?;
    Ok(())
}

/// Deletes one of the user's passkeys unless it is their last way in. Returns its name.
pub async fn remove_passkey(app: &App, user: &User, id: &str) -> Result<String, Refused> {
    let row = passkeys::find(&app.store, id)
        .await?
        .filter(|p| p.user_id == user.id)
        .ok_or(Refused::NotHeld)?;
    if !held(app, user).await?.can_remove(Credential::Passkey(id)) {
        return Err(Refused::LastMethod);
    }
    if !passkeys::delete(&app.store, &user.id, id).await? {
        return Err(Refused::NotHeld);
    }
    Ok(row.name)
}

/// Records a credential change in the audit log; a failure to write it is logged, never
/// undoes the change.
pub async fn audit(app: &App, user: &User, action: &str, ip: Option<String>) {
    let recorded = crate::audit::record(
        &app.store,
        crate::audit::Event {
            org_id: Some(&user.org_id),
            actor: format!("user:{}", user.id),
            action,
            target: Some(user.id.clone()),
            outcome: crate::audit::Outcome::Success,
            ip,
            detail: serde_json::json!({ "at": store::now() }),
        },
    )
    .await;
    if let Err(e) = recorded {
        tracing::warn!(error = %e, action, "writing to the audit log failed");
    }
}
