//! What gets written to the audit log: every admin change and every sign-in outcome. Entries
//! name who acted and on what, never a secret (no passwords, codes or tokens).

use serde_json::Value;

use crate::store::audit::{self, AuditEntry};
use crate::store::{Store, StoreResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One audit entry before it is stored.
pub struct Event<'a> {
    pub org_id: Option<&'a str>,
    /// `user:ID`, `admin_token:ID`, `client:ID`, `anonymous`, or `system` (the server acting
    /// on its own, such as delivering a back-channel logout).
    pub actor: String,
    /// Dotted, e.g. `sign_in.password`, `org.auth_config.update`, `user.disable`.
    pub action: &'a str,
    pub target: Option<String>,
    pub outcome: Outcome,
    pub ip: Option<String>,
    pub detail: Value,
}

pub async fn record(store: &Store, event: Event<'_>) -> StoreResult<()> {
    let entry = AuditEntry {
        id: crate::security::random_id(),
        org_id: event.org_id.map(str::to_owned),
        at: crate::store::now(),
        actor: event.actor,
        action: event.action.to_owned(),
        target: event.target,
        outcome: event.outcome.as_str().to_owned(),
        ip: event.ip,
        detail: event.detail.to_string(),
    };
    audit::insert(store, &entry).await
}

/// A sign-in outcome: `method` is the `auth_config` key, `user_id` the account when known,
/// `reason` a short machine-readable cause for a failure (`wrong_password`, `rate_limited`…).
pub async fn sign_in(
    store: &Store,
    org_id: &str,
    method: crate::authn::methods::Method,
    user_id: Option<&str>,
    outcome: Outcome,
    ip: Option<std::net::IpAddr>,
    reason: Option<&str>,
) -> StoreResult<()> {
    let action = format!("sign_in.{}", method.key());
    record(
        store,
        Event {
            org_id: Some(org_id),
            actor: user_id
                .map(|id| format!("user:{id}"))
                .unwrap_or_else(|| "anonymous".into()),
            action: &action,
            target: user_id.map(str::to_owned),
            outcome,
            ip: ip.map(|i| i.to_string()),
            detail: match reason {
                Some(r) => serde_json::json!({ "reason": r }),
                None => serde_json::json!({}),
            },
        },
    )
    .await
}

/// One back-channel logout token's delivery to a client (Back-Channel Logout 1.0 §2.7).
pub struct BackchannelDelivery<'a> {
    pub org_id: &'a str,
    pub client_id: &'a str,
    /// The user the token names (`sub`).
    pub sub: &'a str,
    pub sid: &'a str,
    /// Why the session ended (`session::logout::Cause`).
    pub cause: &'a str,
    pub attempts: u32,
    /// `None` when delivered; otherwise why the last attempt failed.
    pub error: Option<&'a str>,
}

/// `logout.backchannel`: the server acted on its own (actor `system`), on the client.
pub async fn backchannel_logout(store: &Store, d: BackchannelDelivery<'_>) -> StoreResult<()> {
    record(
        store,
        Event {
            org_id: Some(d.org_id),
            actor: "system".into(),
            action: "logout.backchannel",
            target: Some(d.client_id.to_owned()),
            outcome: if d.error.is_none() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            ip: None,
            detail: serde_json::json!({
                "sub": d.sub,
                "sid": d.sid,
                "cause": d.cause,
                "attempts": d.attempts,
                "error": d.error,
            }),
        },
    )
    .await
}
