//! The demo app's page: the verified ID token's claims, the reauthentication facts first.

use askama::Template;

use super::DemoSession;

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
}

impl DemoPage {
    pub fn new(session: Option<&DemoSession>, reauth_claim: &str) -> DemoPage {
        let Some(s) = session else {
            return DemoPage {
                signed_in: false,
                rows: Vec::new(),
                auth_time: String::new(),
                auth_age: String::new(),
                reauth_claim: reauth_claim.into(),
                can_reauthenticate: String::new(),
                amr: String::new(),
                raw_claims: String::new(),
            };
        };
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let auth_time = s
            .claims
            .get("auth_time")
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        let age = crate::store::now() - auth_time;
        DemoPage {
            signed_in: true,
            rows: s.claims.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
            auth_time: auth_time.to_string(),
            auth_age: format!("{} min {} s ago", age / 60, age % 60),
            reauth_claim: reauth_claim.into(),
            can_reauthenticate: s
                .claims
                .get(reauth_claim)
                .map(text)
                .unwrap_or_else(|| "absent".into()),
            amr: s.claims.get("amr").map(text).unwrap_or_default(),
            raw_claims: serde_json::to_string_pretty(&s.claims).unwrap_or_default(),
        }
    }
}
