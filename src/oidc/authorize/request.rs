//! The authorization request, validated by a pipeline of named checks in the order OIDC Core
//! §3.1.2.6 implies: until the client and redirect URI are known good, errors are shown to
//! the person; after that they go back to the client with `state` and `iss`.

use serde::{Deserialize, Serialize};

use super::prompt::Prompt;
use super::{pkce, redirect_uri};
use crate::app::App;
use crate::error::Code;
use crate::http::params::Params;
use crate::oidc::scope::Scope;
use crate::store::clients::{self, Client};
use crate::tokens::jws;
use crate::tokens::keys::KeySet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

/// Where and how an answer (success or error) goes back to the client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplyTo {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub response_mode: ResponseMode,
}

/// A request that passed every check; stored as JSON while the user signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub reply: ReplyTo,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub hinted_subject: Option<String>,
}

#[derive(Debug)]
pub struct Rejection {
    pub code: Code,
    pub description: String,
    /// `None` while the client or redirect URI is not trustworthy: show a page instead.
    pub reply: Option<ReplyTo>,
}

fn page(description: impl Into<String>) -> Rejection {
    Rejection {
        code: Code::InvalidRequest,
        description: description.into(),
        reply: None,
    }
}

/// Parameters that must appear at most once (RFC 6749 §3.1).
const SINGLE_VALUED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "response_mode",
    "prompt",
    "max_age",
    "login_hint",
    "id_token_hint",
    "code_challenge",
    "code_challenge_method",
    "display",
    "ui_locales",
    "claims_locales",
    "acr_values",
    "request",
    "request_uri",
    "claims",
];

pub async fn validate(
    app: &App,
    params: &Params,
) -> Result<(Client, AuthorizationRequest), Rejection> {
    let client = check_client(app, params).await?;
    let redirect_uri = check_redirect_uri(&client, params)?;
    let reply = reply_to(params, redirect_uri);
    let reject = |(code, description): (Code, String)| Rejection {
        code,
        description,
        reply: Some(reply.clone()),
    };
    let checked = check_parameters(params, client.is_public()).map_err(reject)?;
    let hinted_subject = hinted_subject(&app.keys.current(), &app.config.issuer, params)
        .map_err(|d| reject((Code::InvalidRequest, d)))?;
    Ok((
        client,
        AuthorizationRequest {
            client_id: params.get("client_id").unwrap_or_default().to_owned(),
            reply,
            scope: checked.scope.to_string(),
            nonce: params.get("nonce").map(str::to_owned),
            code_challenge: checked.code_challenge,
            prompt: checked.prompt,
            max_age: checked.max_age,
            login_hint: params
                .get("login_hint")
                .map(|h| h.chars().take(256).collect()),
            hinted_subject,
        },
    ))
}

/// Where errors go once the redirect URI is known good. Request objects are refused (see
/// [`check_parameters`]), but a client that sent one may have put `response_mode` and `state`
/// only inside it: read those two, untrusted, so the refusal reaches the client the way it
/// expects (OIDC Core §6.1). The redirect URI itself is never taken from the object.
pub fn reply_to(params: &Params, redirect_uri: String) -> ReplyTo {
    let object = params.get("request").and_then(unverified_request_object);
    let from_object = |name: &str| {
        object
            .as_ref()
            .and_then(|o| o.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let response_mode = match params
        .get("response_mode")
        .map(str::to_owned)
        .or_else(|| from_object("response_mode"))
        .as_deref()
    {
        Some("form_post") => ResponseMode::FormPost,
        _ => ResponseMode::Query,
    };
    ReplyTo {
        redirect_uri,
        state: params
            .get("state")
            .filter(|_| !params.is_duplicated("state"))
            .map(str::to_owned)
            .or_else(|| from_object("state")),
        response_mode,
    }
}

/// What the checks that need neither the database nor the signing keys made of a request.
#[derive(Debug)]
pub struct CheckedParameters {
    pub scope: Scope,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
}

/// Every check of an authorization request that needs neither the database nor the keys, in
/// the order [`validate`] applies them after the client and redirect URI. Public because it
/// is also the fuzzing surface of the authorization-request parser (`fuzz/`).
pub fn check_parameters(
    params: &Params,
    public_client: bool,
) -> Result<CheckedParameters, (Code, String)> {
    let owned = |(code, d): (Code, &str)| (code, d.to_owned());
    check_single_values(params).map_err(|d| (Code::InvalidRequest, d))?;
    if let Some(mode) = params.get("response_mode")
        && !matches!(mode, "query" | "form_post")
    {
        return Err((Code::InvalidRequest, "unsupported response_mode".into()));
    }
    if let Some(name) = params.oversized() {
        return Err((
            Code::InvalidRequest,
            format!("parameter {name} is too long"),
        ));
    }
    check_request_object(params).map_err(owned)?;
    check_response_type(params).map_err(owned)?;
    let scope = check_scope(params).map_err(owned)?;
    let code_challenge =
        check_pkce(public_client, params).map_err(|d| (Code::InvalidRequest, d.to_owned()))?;
    let prompt = Prompt::parse(params.get("prompt")).map_err(|d| (Code::InvalidRequest, d))?;
    let max_age = check_max_age(params).map_err(|d| (Code::InvalidRequest, d.to_owned()))?;
    Ok(CheckedParameters {
        scope,
        code_challenge,
        prompt,
        max_age,
    })
}

/// The claims of a request object, without verifying anything (see the caller).
fn unverified_request_object(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    if jwt.len() > jws::MAX_JWT_LEN {
        return None;
    }
    let payload = jwt.split('.').nth(1)?;
    let bytes = crate::security::b64url_decode(payload)?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

async fn check_client(app: &App, params: &Params) -> Result<Client, Rejection> {
    if params.is_duplicated("client_id") {
        return Err(page("The client_id parameter was sent more than once."));
    }
    let id = params
        .get("client_id")
        .ok_or_else(|| page("The request does not name an application (client_id is missing)."))?;
    if id.len() > 256 {
        return Err(page("This application is not registered with Tessera."));
    }
    match clients::find(&app.store, id).await {
        Ok(Some(client)) => Ok(client),
        Ok(None) => Err(page("This application is not registered with Tessera.")),
        Err(e) => Err(Rejection {
            code: Code::TemporarilyUnavailable,
            description: e.to_string(),
            reply: None,
        }),
    }
}

fn check_redirect_uri(client: &Client, params: &Params) -> Result<String, Rejection> {
    if params.is_duplicated("redirect_uri") {
        return Err(page("The redirect_uri parameter was sent more than once."));
    }
    // OIDC Core §3.1.2.1: redirect_uri is REQUIRED, even with one registered URI.
    let uri = params
        .get("redirect_uri")
        .ok_or_else(|| page("The redirect_uri parameter is missing."))?;
    if !redirect_uri::is_registered(&client.redirect_uris, uri) {
        return Err(page(
            "The redirect URI in this request is not registered for this application, so Tessera will not send you there.",
        ));
    }
    Ok(uri.to_owned())
}

fn check_single_values(params: &Params) -> Result<(), String> {
    match params.duplicated_among(SINGLE_VALUED) {
        Some(name) => Err(format!("parameter {name} was sent more than once")),
        None => Ok(()),
    }
}

/// Request objects are not supported: refused with the errors §6.1 / §6.2 name, which the
/// conformance suite accepts as "rejected as unsupported".
fn check_request_object(params: &Params) -> Result<(), (Code, &'static str)> {
    if params.contains("request") {
        return Err((
            Code::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.contains("request_uri") {
        return Err((Code::RequestUriNotSupported, "request_uri is not supported"));
    }
    Ok(())
}

fn check_response_type(params: &Params) -> Result<(), (Code, &'static str)> {
    match params.get("response_type") {
        None => Err((Code::InvalidRequest, "response_type is required")),
        Some("code") => Ok(()),
        Some(_) => Err((
            Code::UnsupportedResponseType,
            "only response_type=code is supported",
        )),
    }
}

fn check_scope(params: &Params) -> Result<Scope, (Code, &'static str)> {
    let scope = Scope::parse(
        params
            .get("scope")
            .ok_or((Code::InvalidRequest, "scope is required"))?,
    );
    if !scope.has("openid") {
        return Err((Code::InvalidScope, "scope must include openid"));
    }
    Ok(scope.supported_only())
}

fn check_pkce(public_client: bool, params: &Params) -> Result<Option<String>, &'static str> {
    let challenge = params.get("code_challenge");
    match (challenge, params.get("code_challenge_method")) {
        (None, Some(_)) => Err("code_challenge_method without code_challenge"),
        (None, None) if public_client => {
            Err("public clients must use PKCE (code_challenge with S256)")
        }
        (None, None) => Ok(None),
        // RFC 7636 §4.3: a missing method means "plain", which is refused.
        (Some(_), None | Some("plain")) => Err("code_challenge_method must be S256"),
        (Some(_), Some(m)) if m != "S256" => Err("code_challenge_method must be S256"),
        (Some(c), Some(_)) if !pkce::is_valid_challenge(c) => Err("code_challenge is malformed"),
        (Some(c), Some(_)) => Ok(Some(c.to_owned())),
    }
}

fn check_max_age(params: &Params) -> Result<Option<i64>, &'static str> {
    params
        .get("max_age")
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or("max_age must be a non-negative integer")
        })
        .transpose()
}

/// §3.1.2.1: the hint is an ID token this issuer signed; an expired one is still a valid hint.
/// Pure (keys passed in), so it is also the fuzzing surface for `id_token_hint`.
pub fn hinted_subject(
    keys: &KeySet,
    issuer: &str,
    params: &Params,
) -> Result<Option<String>, String> {
    let Some(hint) = params.get("id_token_hint") else {
        return Ok(None);
    };
    let (_, claims) = jws::verify(keys, hint).map_err(|e| format!("id_token_hint: {e}"))?;
    if claims["iss"].as_str() != Some(issuer) {
        return Err("id_token_hint was issued by another issuer".into());
    }
    claims["sub"]
        .as_str()
        .map(|s| Some(s.to_owned()))
        .ok_or_else(|| "id_token_hint has no sub".into())
}
