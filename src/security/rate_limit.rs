//! Rate limiting of guessing (passwords, client secrets), counted in the database so that
//! every replica enforces the same limit. Only failures are counted: a user who signs in
//! correctly is never slowed down by their own successes.

use crate::store::rate_limits::Tally;
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

/// The window a failure counts in. A window opens at its first failure and lasts
/// `window_secs`, so "one per 30 seconds" holds from any failure: a window aligned to the
/// clock would let two through a second apart across its boundary.
#[derive(Clone)]
pub struct Window {
    pub bucket: String,
    now: i64,
    length: i64,
}

pub fn window(kind: &str, key: &str, policy: &Policy) -> Window {
    // The key may hold an email or an IP: digest it so the table holds no personal data.
    Window {
        bucket: format!("{kind}:{}", crate::security::digest(key)),
        now: store::now(),
        length: policy.window_secs.max(1),
    }
}

impl Window {
    /// What the failures counted so far in this window allow.
    pub fn decision(&self, tally: Tally, policy: &Policy) -> Decision {
        if tally.ends_at > self.now && tally.failures >= policy.max_failures {
            Decision::Limited {
                retry_after_secs: (tally.ends_at - self.now).max(1),
            }
        } else {
            Decision::Allowed
        }
    }
}

pub async fn check(store: &Store, kind: &str, key: &str, policy: &Policy) -> StoreResult<Decision> {
    let window = window(kind, key, policy);
    let tally = store::rate_limits::count(store, &window.bucket).await?;
    Ok(window.decision(tally, policy))
}

pub async fn record_failure(
    store: &Store,
    kind: &str,
    key: &str,
    policy: &Policy,
) -> StoreResult<()> {
    let window = window(kind, key, policy);
    store::rate_limits::hit(store, &window.bucket, window.now, window.length).await?;
    Ok(())
}

pub async fn clear(store: &Store, kind: &str, key: &str, policy: &Policy) -> StoreResult<()> {
    store::rate_limits::clear(store, &window(kind, key, policy).bucket).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_limits_until_it_ends_and_an_ended_one_counts_nothing() {
        let policy = Policy {
            max_failures: 2,
            window_secs: 30,
        };
        let at = |now| Window {
            bucket: "b".into(),
            now,
            length: 30,
        };
        let full = Tally {
            failures: 2,
            ends_at: 130,
        };
        assert_eq!(
            at(101).decision(full, &policy),
            Decision::Limited {
                retry_after_secs: 29
            }
        );
        assert_eq!(at(130).decision(full, &policy), Decision::Allowed);
        let one = Tally {
            failures: 1,
            ends_at: 130,
        };
        assert_eq!(at(101).decision(one, &policy), Decision::Allowed);
    }
}
