//! Rate limiting of guessing (passwords, client secrets), counted in the database so that
//! every replica enforces the same limit. Only failures are counted: a user who signs in
//! correctly is never slowed down by their own successes.

use crate::store::{self, Store, StoreResult};

#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
pub struct Policy {
    /// Failures allowed per window.
    pub max_failures: i64,
    /// Window length in seconds.
    pub window_secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Limited { retry_after_secs: i64 },
}

/// The fixed window a failure counts in now, named by its bucket.
pub struct Window {
    pub bucket: String,
    ends_at: i64,
    now: i64,
}

pub fn window(kind: &str, key: &str, policy: &Policy) -> Window {
    let now = store::now();
    let length = policy.window_secs.max(1);
    let index = now.div_euclid(length);
    // The key may hold an email or an IP: digest it so the table holds no personal data.
    Window {
        bucket: format!("{kind}:{}:{index}", crate::security::digest(key)),
        ends_at: (index + 1) * length,
        now,
    }
}

impl Window {
    /// What `failures` counted so far in this window allow.
    pub fn decision(&self, failures: i64, policy: &Policy) -> Decision {
        if failures >= policy.max_failures {
            Decision::Limited {
                retry_after_secs: (self.ends_at - self.now).max(1),
            }
        } else {
            Decision::Allowed
        }
    }
}

pub async fn check(store: &Store, kind: &str, key: &str, policy: &Policy) -> StoreResult<Decision> {
    let window = window(kind, key, policy);
    let failures = store::rate_limits::count(store, &window.bucket).await?;
    Ok(window.decision(failures, policy))
}

pub async fn record_failure(
    store: &Store,
    kind: &str,
    key: &str,
    policy: &Policy,
) -> StoreResult<()> {
    let window = window(kind, key, policy);
    store::rate_limits::hit(store, &window.bucket, window.ends_at).await?;
    Ok(())
}

pub async fn clear(store: &Store, kind: &str, key: &str, policy: &Policy) -> StoreResult<()> {
    store::rate_limits::clear(store, &window(kind, key, policy).bucket).await
}
