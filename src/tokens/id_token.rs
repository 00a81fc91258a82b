//! ID token claims (OIDC Core 1.0 §2, §3.1.3.6) and the user claims released per scope (§5.4).

use serde_json::{Map, Value, json};

use crate::oidc::scope::Scope;
use crate::security::{b64url, sha256};
use crate::store::users::User;

pub struct IdTokenInput<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub user: &'a User,
    pub scope: &'a Scope,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a [String],
    pub acr: &'a str,
    pub sid: Option<&'a str>,
    pub access_token: Option<&'a str>,
    pub now: i64,
    pub ttl_secs: i64,
    pub reauthentication_claim: &'a str,
    pub can_reauthenticate: bool,
}

pub fn claims(input: &IdTokenInput<'_>) -> Value {
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(input.issuer));
    claims.insert("sub".into(), json!(input.user.id));
    claims.insert("aud".into(), json!(input.client_id));
    claims.insert("exp".into(), json!(input.now + input.ttl_secs));
    claims.insert("iat".into(), json!(input.now));
    // Always present, not only when max_age or the auth_time claim was requested (§2 allows it),
    // because relying parties decide on reauthentication from it.
    claims.insert("auth_time".into(), json!(input.auth_time));
    if let Some(nonce) = input.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    claims.insert("amr".into(), json!(input.amr));
    claims.insert("acr".into(), json!(input.acr));
    claims.insert("azp".into(), json!(input.client_id));
    if let Some(sid) = input.sid {
        claims.insert("sid".into(), json!(sid));
    }
    if let Some(access_token) = input.access_token {
        claims.insert("at_hash".into(), json!(at_hash(access_token)));
    }
    claims.insert(
        input.reauthentication_claim.into(),
        json!(input.can_reauthenticate),
    );
    for (k, v) in user_claims(input.user, input.scope) {
        claims.entry(k).or_insert(v);
    }
    Value::Object(claims)
}

/// §3.1.3.6: the left-most half of the SHA-256 of the access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    b64url(&sha256(access_token.as_bytes())[..16])
}

/// Claims released by scope value (§5.4). Absent values are omitted, never sent as null.
pub fn user_claims(user: &User, scope: &Scope) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(v) = value {
            out.insert(name.to_owned(), v);
        }
    };
    if scope.has("profile") {
        put("name", user.name.clone().map(Value::from));
        put("given_name", user.given_name.clone().map(Value::from));
        put("family_name", user.family_name.clone().map(Value::from));
        put("locale", user.locale.clone().map(Value::from));
        put("updated_at", Some(json!(user.updated_at)));
    }
    if scope.has("email") {
        put("email", Some(json!(user.email)));
        put("email_verified", Some(json!(user.email_verified)));
    }
    if scope.has("phone") && user.phone_number.is_some() {
        put("phone_number", user.phone_number.clone().map(Value::from));
        put(
            "phone_number_verified",
            Some(json!(user.phone_number_verified)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_core_example() {
        // OIDC Core A.3 / A.4 example pair.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
