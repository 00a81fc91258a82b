//! Token introspection (RFC 7662) for confidential clients and resource servers. Any token
//! that is unknown, expired, revoked, or belongs to a disabled user is `{"active": false}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::{App, AppState};
use crate::error::Error;
use crate::http::params::Params;
use crate::oidc::token::{client_auth, is_form};
use crate::store::users;
use crate::tokens::lookup::{self, Found};

pub async fn handler(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&app, &headers, &body).await {
        Ok(v) => {
            let mut r = Json(v).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn handle(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Value, Error> {
    if !is_form(headers) {
        return Err(Error::invalid_request(
            "the request must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body);
    if let Some(name) =
        params.duplicated_among(&["token", "token_type_hint", "client_id", "client_secret"])
    {
        return Err(Error::invalid_request(format!(
            "parameter {name} was sent more than once"
        )));
    }
    let client = client_auth::authenticate(app, headers, &params).await?;
    // §2.1: the endpoint requires authorization; public clients cannot hold credentials.
    if client.is_public() {
        return Err(Error::InvalidClient(
            "public clients cannot introspect tokens".into(),
        ));
    }
    let token = params
        .get("token")
        .ok_or_else(|| Error::invalid_request("token is required"))?;
    let inactive = json!({ "active": false });
    let Some(found) = lookup::find(app, token, params.get("token_type_hint")).await? else {
        return Ok(inactive);
    };
    let grant = found.grant();
    if grant.revoked_at.is_some() {
        return Ok(inactive);
    }
    // A client may introspect only tokens of its own organization.
    let owner = crate::store::clients::find(&app.store, &grant.client_id).await?;
    if owner.as_ref().map(|c| &c.org_id) != Some(&client.org_id) {
        return Ok(inactive);
    }
    if let Some(user_id) = &grant.user_id {
        match users::find(&app.store, user_id).await? {
            Some(u) if !u.disabled => {}
            _ => return Ok(inactive),
        }
    }
    let sub = grant
        .user_id
        .clone()
        .unwrap_or_else(|| grant.client_id.clone());
    Ok(match found {
        Found::Access(claims, grant) => json!({
            "active": true,
            "token_type": "Bearer",
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "exp": claims.exp,
            "iss": claims.iss,
            "aud": app.config.issuer,
            "jti": claims.jti,
            "auth_time": grant.auth_time,
            "sid": grant.session_id,
        }),
        Found::Refresh(row, grant) => {
            if row.used_at.is_some() {
                return Ok(inactive);
            }
            json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": grant.scope,
                "client_id": grant.client_id,
                "sub": sub,
                "exp": row.expires_at,
                "iat": row.created_at,
                "iss": app.config.issuer,
                "auth_time": grant.auth_time,
                "sid": grant.session_id,
            })
        }
    })
}
