//! The demo app's page: the verified ID token's claims, the reauthentication facts first,
//! and the outcome of the sensitive operation.

use askama::Template;

use super::DemoSession;

pub struct OperationView {
    pub performed_at: i64,
    pub auth_time_before: String,
    pub auth_time_after: i64,
    pub reauthenticated: bool,
}

#[derive(Template)]
#[template(path = "demo.html")]
pub struct DemoPage {
    pub signed_in: bool,
    pub rows: Vec<(String, String)>,
    pub auth_time: String,
    pub auth_age: String,
    pub reauth_claim: String,
    pub can_reauthenticate: String,
    pub amr: String,
    pub raw_claims: String,
    pub window_secs: i64,
    pub operation: Option<OperationView>,
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

impl DemoPage {
    pub fn new(session: Option<&DemoSession>, reauth_claim: &str, window_secs: i64) -> DemoPage {
        let mut page = DemoPage {
            signed_in: false,
            rows: Vec::new(),
            auth_time: String::new(),
            auth_age: String::new(),
            reauth_claim: reauth_claim.into(),
            can_reauthenticate: String::new(),
            amr: String::new(),
            raw_claims: String::new(),
            window_secs,
            operation: None,
        };
        let Some(s) = session else { return page };
        let auth_time = s.auth_time();
        let age = crate::store::now() - auth_time;
        page.signed_in = true;
        page.rows = s.claims.iter().map(|(k, v)| (k.clone(), text(v))).collect();
        page.auth_time = auth_time.to_string();
        page.auth_age = format!("{} min {} s ago", age / 60, age % 60);
        page.can_reauthenticate = s
            .claims
            .get(reauth_claim)
            .map(text)
            .unwrap_or_else(|| "absent".into());
        page.amr = s.claims.get("amr").map(text).unwrap_or_default();
        page.raw_claims = serde_json::to_string_pretty(&s.claims).unwrap_or_default();
        page.operation = s.operation.as_ref().map(|o| OperationView {
            performed_at: o.performed_at,
            auth_time_before: o
                .auth_time_before
                .map(|t| t.to_string())
                .unwrap_or_default(),
            auth_time_after: o.auth_time_after,
            reauthenticated: o.reauthenticated,
        });
        page
    }
}

/// The development outbox: messages that would have been emailed or texted.
#[derive(Template)]
#[template(path = "outbox.html")]
pub struct OutboxPage {
    pub messages: Vec<crate::delivery::Message>,
}
