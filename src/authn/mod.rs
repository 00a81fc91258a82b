//! Sign-in methods, one module each, testable without HTTP. This module holds what they
//! share: the RFC 8176 `amr` values and `acr` levels a sign-in produces, and whether a user
//! can re-prove presence (the reauthentication claim).

pub mod companion;
pub mod methods;
pub mod otp;
pub mod passkey;
pub mod password;
pub mod qr;
pub mod upstream;

use crate::store::users::User;
use crate::store::{Store, StoreResult};

/// `acr` values Tessera issues (documented in the README): "1" is a single factor that the
/// user knows or holds; "2" is phishing-resistant multi-factor (a passkey with user
/// verification: possession of a key bound to the origin, plus a PIN or biometric).
pub const ACR_SINGLE_FACTOR: &str = "1";
pub const ACR_PHISHING_RESISTANT_MFA: &str = "2";
pub const ACR_VALUES_SUPPORTED: &[&str] = &[ACR_SINGLE_FACTOR, ACR_PHISHING_RESISTANT_MFA];

/// Sensitive actions (deleting a passkey, approving a QR sign-in elsewhere, enrolling a
/// companion app) need a sign-in at most this old.
pub const RECENT_AUTH_SECS: i64 = 300;

/// What one successful sign-in proved, recorded on the session.
#[derive(Debug, Clone)]
pub struct Authentication {
    pub amr: Vec<String>,
    pub acr: &'static str,
    /// When presence was proven, if another party vouches for an earlier moment than now: an
    /// upstream provider's `auth_time` after a forwarded reauthentication (README "Upstream
    /// identity providers"). `None`: the sign-in happening now is the proof.
    pub at: Option<i64>,
}

impl Authentication {
    /// RFC 8176 §2: `pwd` is password-based authentication.
    pub fn password() -> Authentication {
        Authentication {
            amr: vec!["pwd".into()],
            acr: ACR_SINGLE_FACTOR,
            at: None,
        }
    }

    /// RFC 8176 §2 for a passkey: `hwk` for a device-bound key, `swk` for a synced
    /// (backup-eligible) one, whose private key leaves secure hardware; with user verification
    /// also `user` (a gesture proved presence) and `mfa` (possession plus PIN or biometric).
    pub fn passkey(backup_eligible: bool, user_verified: bool) -> Authentication {
        let key = if backup_eligible { "swk" } else { "hwk" };
        if user_verified {
            Authentication {
                amr: vec![key.into(), "user".into(), "mfa".into()],
                acr: ACR_PHISHING_RESISTANT_MFA,
                at: None,
            }
        } else {
            Authentication {
                amr: vec![key.into()],
                acr: ACR_SINGLE_FACTOR,
                at: None,
            }
        }
    }
}

impl Authentication {
    /// RFC 8176 §2: `otp` for a one-time code, with `sms` when it came by text message. The
    /// registry has no value for email; `email` is the value this deployment's relying parties
    /// agree on (README "Email and SMS codes"), following OIDC Core §2's note that parties
    /// using unregistered `amr` values must agree on their meaning.
    pub fn one_time_code(channel: crate::delivery::Channel) -> Authentication {
        Authentication {
            amr: vec!["otp".into(), channel.as_str().into()],
            acr: ACR_SINGLE_FACTOR,
            at: None,
        }
    }
}

/// True when the user holds a method that can re-prove presence interactively and that
/// their organization has enabled: a password, a passkey that has not been flagged, an
/// enrolled companion device (which approves a QR sign-in with its key), or a verified email
/// or phone number where the organization lets one-time codes count (off by default, see
/// [`methods::OtpSettings::counts_for_reauthentication`]), or a linked upstream provider that
/// the organization lets reauthenticate (`reauthenticate_upstream`).
pub async fn can_reauthenticate(store: &Store, user: &User) -> StoreResult<bool> {
    let org = crate::store::orgs::find(store, &user.org_id).await?;
    can_reauthenticate_in(store, user, org.as_ref()).await
}

/// [`can_reauthenticate`] with the user's organization already in hand (the token endpoint
/// reads it in the same statement as the grant).
pub async fn can_reauthenticate_in(
    store: &Store,
    user: &User,
    org: Option<&crate::store::orgs::Organization>,
) -> StoreResult<bool> {
    let config = match org {
        Some(org) => org.auth_config()?,
        None => return Ok(false),
    };
    if config.password.enabled && user.password_hash.is_some() {
        return Ok(true);
    }
    if config.email_otp.enabled
        && config.email_otp.counts_for_reauthentication
        && user.email_verified
    {
        return Ok(true);
    }
    if config.phone_otp.enabled
        && config.phone_otp.counts_for_reauthentication
        && user.phone_number_verified
        && user.phone_number.is_some()
    {
        return Ok(true);
    }
    if config.passkey.enabled
        && crate::store::passkeys::count_usable_for_user(store, &user.id).await? > 0
    {
        return Ok(true);
    }
    if config.qr.enabled && crate::store::devices::count_for_user(store, &user.id).await? > 0 {
        return Ok(true);
    }
    // A linked provider re-proves presence only where the organization sends the person back
    // to it with `prompt=login` and `max_age=0` (README "Upstream identity providers").
    let links = crate::store::upstream_identities::list_for_user(store, &user.id).await?;
    Ok(links.iter().any(|link| {
        config
            .upstream_provider(&link.provider_id)
            .is_some_and(|p| p.reauthenticate_upstream && p.issuer_url() == link.issuer)
    }))
}
