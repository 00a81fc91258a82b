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

fn bucket(kind: &str, key: &str, policy: &Policy, now: i64) -> (String, i64) {
    let window = now.div_euclid(policy.window_secs.max(1));
    let window_end = (window + 1) * policy.window_secs.max(1);
    // The key may hold an email or an IP: digest it so the table holds no personal data.
    (
        format!("{kind}:{}:{window}", crate::security::digest(key)),
        window_end,
    )
}

pub async fn check(store: &Store, kind: &str, key: &str, policy: &Policy) -> StoreResult<Decision> {
    let now = store::now();
    let (bucket, window_end) = bucket(kind, key, policy, now);
    let failures = store::rate_limits::count(store, &bucket).await?;
    Ok(if failures >= policy.max_failures {
        Decision::Limited {
            retry_after_secs: (window_end - now).max(1),
        }
    } else {
        Decision::Allowed
    })
}

pub async fn record_failure(
    store: &Store,
    kind: &str,
    key: &str,
    policy: &Policy,
) -> StoreResult<()> {
    let now = store::now();
    let (bucket, window_end) = bucket(kind, key, policy, now);
    store::rate_limits::hit(store, &bucket, window_end).await?;
    Ok(())
}

pub async fn clear(store: &Store, kind: &str, key: &str, policy: &Policy) -> StoreResult<()> {
    let (bucket, _) = bucket(kind, key, policy, store::now());
    store::rate_limits::clear(store, &bucket).await
}
