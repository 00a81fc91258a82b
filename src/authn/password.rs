//! Password sign-in: argon2id hashes, one generic failure for a wrong email or password
//! with equal work in both cases, and failure counting per account and per client IP.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::RateLimitSettings;
use crate::security::rate_limit::{self, Decision};
use crate::store::users::{self, User};
use crate::store::{Store, StoreError};

/// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 1024;

/// Hashes on the CPU pool. Rejects passwords outside the accepted length.
pub async fn hash(password: String) -> Result<String, String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(format!("password must be at least {MIN_LENGTH} characters"));
    }
    if password.len() > MAX_LENGTH {
        return Err(format!("password must be at most {MAX_LENGTH} bytes"));
    }
    crate::cpu::run_low_priority(move || hash_blocking(&password))
        .await
        .map_err(|e| e.to_string())?
}

fn hash_blocking(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&crate::security::random_bytes::<16>())
        .map_err(|e| e.to_string())?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_blocking(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A real hash of a random password: verifying against it costs what a real check costs,
/// so an unknown email takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_blocking(&crate::security::random_secret()).expect("hashing a random password")
    })
}

#[derive(Debug)]
pub enum Failure {
    /// Wrong email or password (deliberately indistinguishable).
    Invalid,
    /// Too many failures for this account or address.
    RateLimited {
        retry_after_secs: i64,
    },
    /// The account exists, the password was right, and an admin disabled it.
    Disabled,
    Store(StoreError),
    Cpu(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::Store(e)
    }
}

const KIND_ACCOUNT: &str = "login-account";
const KIND_IP: &str = "login-ip";

/// Checks an email and password within an organization.
pub async fn authenticate(
    store: &Store,
    limits: &RateLimitSettings,
    org_id: &str,
    email: &str,
    password: &str,
    client_ip: Option<std::net::IpAddr>,
) -> Result<User, Failure> {
    let account_key = format!("{org_id}:{}", users::normalize_email(email));
    let ip_key = client_ip.map(|ip| ip.to_string()).unwrap_or_default();
    for (kind, key, policy) in [
        (
            KIND_ACCOUNT,
            account_key.as_str(),
            &limits.login_per_account,
        ),
        (KIND_IP, ip_key.as_str(), &limits.login_per_ip),
    ] {
        if let Decision::Limited { retry_after_secs } =
            rate_limit::check(store, kind, key, policy).await?
        {
            return Err(Failure::RateLimited { retry_after_secs });
        }
    }
    let user = if password.len() > MAX_LENGTH {
        None
    } else {
        users::find_by_email(store, org_id, email).await?
    };
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let candidate = password.to_owned();
    let matches = crate::cpu::run_low_priority(move || match stored {
        Some(hash) => verify_blocking(&hash, &candidate),
        None => {
            verify_blocking(dummy_hash(), &candidate);
            false
        }
    })
    .await
    .map_err(|e| Failure::Cpu(e.to_string()))?;
    match user {
        Some(user) if matches => {
            rate_limit::clear(store, KIND_ACCOUNT, &account_key, &limits.login_per_account).await?;
            if user.disabled {
                return Err(Failure::Disabled);
            }
            Ok(user)
        }
        _ => {
            rate_limit::record_failure(
                store,
                KIND_ACCOUNT,
                &account_key,
                &limits.login_per_account,
            )
            .await?;
            rate_limit::record_failure(store, KIND_IP, &ip_key, &limits.login_per_ip).await?;
            Err(Failure::Invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_blocking("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_blocking(&h, "correct horse battery"));
        assert!(!verify_blocking(&h, "wrong"));
        assert!(!verify_blocking("not a hash", "x"));
    }
}
