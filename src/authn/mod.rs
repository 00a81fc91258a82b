//! Sign-in methods, one module each, testable without HTTP. This module holds what they
//! share: the RFC 8176 `amr` values and `acr` levels a sign-in produces, and whether a user
//! can re-prove presence (the reauthentication claim).

pub mod password;

use crate::store::users::User;

/// `acr` values Tessera issues (documented in the README): "1" is a single factor that the
/// user knows or holds.
pub const ACR_SINGLE_FACTOR: &str = "1";
pub const ACR_VALUES_SUPPORTED: &[&str] = &[ACR_SINGLE_FACTOR];

/// What one successful sign-in proved, recorded on the session.
#[derive(Debug, Clone)]
pub struct Authentication {
    pub amr: Vec<String>,
    pub acr: &'static str,
}

impl Authentication {
    /// RFC 8176 §2: `pwd` is password-based authentication.
    pub fn password() -> Authentication {
        Authentication {
            amr: vec!["pwd".into()],
            acr: ACR_SINGLE_FACTOR,
        }
    }
}

/// True when the user holds a method that can re-prove presence interactively. For now
/// that is a password; passkeys and enrolled devices will count too.
pub fn can_reauthenticate(user: &User) -> bool {
    user.password_hash.is_some()
}
