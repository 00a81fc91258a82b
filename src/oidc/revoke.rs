//! Token revocation (RFC 7009). Revoking either kind of token revokes its grant: the
//! refresh-token family and every access token issued from it (§2.1 allows both).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::app::{App, AppState};
use crate::error::{Code, Error};
use crate::http::params::Params;
use crate::oidc::token::{client_auth, is_form};
use crate::store::{self, grants};
use crate::tokens::lookup;

pub async fn handler(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&app, &headers, &body).await {
        // §2.2: 200 whether or not the token was valid, so the answer tells nothing.
        Ok(()) => {
            let mut r = axum::http::StatusCode::OK.into_response();
            r.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn handle(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<(), Error> {
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
    let token = params
        .get("token")
        .ok_or_else(|| Error::invalid_request("token is required"))?;
    let hint = params.get("token_type_hint");
    if let Some(h) = hint {
        if !matches!(h, "access_token" | "refresh_token") {
            return Err(Error::oauth(
                Code::UnsupportedTokenType,
                "token_type_hint must be access_token or refresh_token",
            ));
        }
    }
    let Some(found) = lookup::find(app, token, hint).await? else {
        return Ok(());
    };
    // §2.1: only the client the token was issued to may revoke it; for anyone else the
    // token is treated as unknown, which reveals nothing about it.
    if found.grant().client_id != client.id {
        return Ok(());
    }
    grants::revoke(&app.store, &found.grant().id, store::now()).await?;
    Ok(())
}
