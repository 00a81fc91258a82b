//! The UserInfo endpoint (OIDC Core §5.3) as an RFC 6750 protected resource: the bearer token
//! comes in the `Authorization` header or (POST) the form body, never both (§2).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::{App, AppState};
use crate::error::{Code, Error};
use crate::http::params::Params;
use crate::oidc::scope::Scope;
use crate::store::{self, grants, users};
use crate::tokens::{access_token, id_token};

pub async fn handler(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&app, &method, &headers, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

fn invalid_token(description: &str) -> Error {
    Error::Bearer {
        code: Some(Code::InvalidToken),
        description: description.into(),
        status: StatusCode::UNAUTHORIZED,
    }
}

/// The RFC 6750 §2.1 bearer token of the `Authorization` header (also the admin API's).
pub fn bearer_from_header(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| invalid_token("malformed Authorization header"))?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(Error::Bearer {
            code: Some(Code::InvalidRequest),
            description: "the Authorization header must use the Bearer scheme".into(),
            status: StatusCode::BAD_REQUEST,
        }),
    }
}

async fn handle(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Error> {
    let from_header = bearer_from_header(headers)?;
    let from_body = if method == Method::POST && crate::oidc::token::is_form(headers) {
        let params = Params::parse(body);
        if params.is_duplicated("access_token") {
            return Err(Error::Bearer {
                code: Some(Code::InvalidRequest),
                description: "access_token was sent more than once".into(),
                status: StatusCode::BAD_REQUEST,
            });
        }
        params.get("access_token").map(str::to_owned)
    } else {
        None
    };
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return Err(Error::Bearer {
                code: Some(Code::InvalidRequest),
                description: "send the access token in one place only".into(),
                status: StatusCode::BAD_REQUEST,
            });
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => {
            return Err(Error::Bearer {
                code: None,
                description: "an access token is required".into(),
                status: StatusCode::UNAUTHORIZED,
            });
        }
    };
    let now = store::now();
    let keys = app.keys.current();
    let claims = access_token::validate(
        &keys,
        &app.access_token_key,
        &token,
        &app.config.issuer,
        now,
        app.config.tokens.leeway_secs,
    )
    .map_err(|e| invalid_token(&e.to_string()))?;
    let grant = grants::find(&app.store, &claims.gid)
        .await?
        .filter(|g| g.revoked_at.is_none())
        .ok_or_else(|| invalid_token("the access token has been revoked"))?;
    let user_id = grant
        .user_id
        .as_deref()
        .ok_or_else(|| invalid_token("the access token has no user"))?;
    let user = users::find(&app.store, user_id)
        .await?
        .filter(|u| !u.disabled && u.id == claims.sub)
        .ok_or_else(|| invalid_token("the user is no longer active"))?;
    let scope = Scope::parse(&claims.scope);
    if !scope.has("openid") {
        return Err(Error::Bearer {
            code: Some(Code::InsufficientScope),
            description: "the access token was not granted the openid scope".into(),
            status: StatusCode::FORBIDDEN,
        });
    }
    let mut body = json!({ "sub": user.id });
    for (k, v) in id_token::user_claims(&user, &scope) {
        body[k] = v;
    }
    body[app.config.reauthentication_claim.as_str()] =
        json!(crate::authn::can_reauthenticate(&app.store, &user).await?);
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(response)
}
