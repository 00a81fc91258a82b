//! OpenID Connect RP-Initiated Logout 1.0. A request tied to the current session by a valid
//! `id_token_hint` signs out at once; any other request asks the person first (§2, §6: a
//! logout request can be forged by any site). `post_logout_redirect_uri` must be registered
//! for the client exactly, or nobody is redirected anywhere.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::{App, AppState};
use crate::error::{Error, PageError};
use crate::http::params::Params;
use crate::oidc::authorize::response::redirect;
use crate::security::{b64url, constant_time_eq, hmac_sha256};
use crate::session::{self, logout::Cause};
use crate::store::clients::{self, Client};
use crate::tokens::jws;
use crate::ui::views::{LogoutConfirmPage, SignedOutPage};

/// A logout request after validation: where to go afterwards, if anywhere.
struct Validated {
    client: Option<Client>,
    redirect: Option<String>,
    state: Option<String>,
    hint_sub: Option<String>,
    hint_sid: Option<String>,
}

pub async fn handler(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, PageError> {
    // §2: the OP supports GET and POST (form-encoded).
    let params = if method == Method::POST {
        Params::parse(&body)
    } else {
        Params::parse(query.unwrap_or_default().as_bytes())
    };
    let request = validate(&app, &params).await?;
    let current = session::current(&app, &headers).await?;
    let Some(current) = current else {
        // Nothing to end: the person is already signed out.
        return Ok(finish(&app, &request, false));
    };
    let tied = request.hint_sub.as_deref() == Some(current.user.id.as_str())
        && request
            .hint_sid
            .as_deref()
            .is_none_or(|sid| sid == current.session.id);
    if tied {
        session::logout::end_session_because(&app, &current.session, Cause::RpLogout).await?;
        return Ok(finish(&app, &request, true));
    }
    let client_name = request.client.as_ref().map(|c| c.name.clone());
    let csrf = logout_csrf(&app, &current.session.id);
    Ok(crate::ui::render(&LogoutConfirmPage {
        email: &current.user.email,
        client_name: client_name.as_deref(),
        csrf: &csrf,
        client_id: request.client.as_ref().map(|c| c.id.as_str()).unwrap_or(""),
        post_logout_redirect_uri: request.redirect.as_deref().unwrap_or(""),
        state: request.state.as_deref().unwrap_or(""),
    }))
}

/// The confirmation form's answer.
pub async fn confirm(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = Params::parse(&body);
    let request = validate(&app, &params).await?;
    let Some(current) = session::current(&app, &headers).await? else {
        return Ok(finish(&app, &request, false));
    };
    let expected = logout_csrf(&app, &current.session.id);
    if !constant_time_eq(
        expected.as_bytes(),
        params.get("csrf").unwrap_or("").as_bytes(),
    ) {
        return Err(Error::page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This sign-out form is no longer valid. Reload the page and try again.",
        )
        .into());
    }
    if params.get("decision") != Some("logout") {
        return Ok(match &request.redirect {
            Some(_) => finish(&app, &request, false),
            None => redirect("/"),
        });
    }
    session::logout::end_session_because(&app, &current.session, Cause::RpLogout).await?;
    Ok(finish(&app, &request, true))
}

fn logout_csrf(app: &App, session_id: &str) -> String {
    b64url(&hmac_sha256(
        &app.instance_key,
        format!("logout-csrf:{session_id}").as_bytes(),
    ))
}

/// Redirects to the validated `post_logout_redirect_uri` (with `state`) or shows the
/// signed-out page; clears the session cookie when a session was ended.
fn finish(app: &App, request: &Validated, ended: bool) -> Response {
    let mut response = match &request.redirect {
        Some(uri) => {
            let mut url = url::Url::parse(uri).expect("registered URIs parse");
            if let Some(state) = &request.state {
                url.query_pairs_mut().append_pair("state", state);
            }
            redirect(url.as_str())
        }
        None => crate::ui::render(&SignedOutPage),
    };
    if ended {
        response.headers_mut().append(
            header::SET_COOKIE,
            app.cookies.clear(crate::http::cookies::SESSION),
        );
    }
    response.into_response()
}

async fn validate(app: &App, params: &Params) -> Result<Validated, Error> {
    let bad = |m: &str| Error::bad_request_page("This sign-out link is not valid", m);
    if let Some(name) = params.duplicated_among(&[
        "id_token_hint",
        "client_id",
        "post_logout_redirect_uri",
        "state",
        "logout_hint",
    ]) {
        return Err(bad(&format!(
            "The parameter {name} was sent more than once."
        )));
    }
    let (hint_sub, hint_sid, hint_aud) = match params.get("id_token_hint") {
        None => (None, None, None),
        Some(hint) => {
            let keys = app.keys.current();
            // §2: an expired ID token is still a valid hint.
            let (_, claims) = jws::verify(&keys, hint)
                .map_err(|_| bad("The id_token_hint was not issued by this server."))?;
            if claims["iss"].as_str() != Some(app.config.issuer.as_str()) {
                return Err(bad("The id_token_hint was issued by another server."));
            }
            let aud = match &claims["aud"] {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Array(a) => {
                    a.first().and_then(|v| v.as_str()).map(str::to_owned)
                }
                _ => None,
            };
            (
                claims["sub"].as_str().map(str::to_owned),
                claims["sid"].as_str().map(str::to_owned),
                aud,
            )
        }
    };
    let client_id = match (params.get("client_id"), hint_aud.as_deref()) {
        (Some(a), Some(b)) if a != b => {
            return Err(bad("The client_id does not match the id_token_hint."));
        }
        (Some(a), _) => Some(a.to_owned()),
        (None, b) => b.map(str::to_owned),
    };
    let client = match &client_id {
        Some(id) if id.len() <= 256 => clients::find(&app.store, id).await?,
        _ => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let client = client.as_ref().ok_or_else(|| {
                bad("A post_logout_redirect_uri needs a client_id or an id_token_hint naming the application.")
            })?;
            // Exact match only, as for redirect URIs: no open redirect through logout.
            if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return Err(bad(
                    "The post_logout_redirect_uri is not registered for this application.",
                ));
            }
            Some(uri.to_owned())
        }
    };
    Ok(Validated {
        client,
        redirect,
        state: params.get("state").map(|s| s.chars().take(512).collect()),
        hint_sub,
        hint_sid,
    })
}
