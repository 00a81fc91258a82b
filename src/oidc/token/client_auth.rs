//! Client authentication at the token endpoint: `client_secret_basic`, `client_secret_post`,
//! or `none` for public clients (RFC 6749 §2.3). Exactly one method per request; failures are
//! counted per client so that secret guessing is throttled on every replica.

use axum::http::{HeaderMap, header};
use base64::Engine;

use crate::app::App;
use crate::error::Error;
use crate::http::params::Params;
use crate::security::rate_limit::{self, Decision};
use crate::security::{constant_time_eq, digest};
use crate::store::clients::{self, Client};
use crate::store::rate_limits;

const KIND: &str = "client-auth";

/// The credentials a request presents, before they are checked against the store.
#[derive(Debug)]
pub struct Presented {
    pub client_id: String,
    pub secret: Option<String>,
}

/// `client_secret_basic`: `None` without an Authorization header.
pub fn from_basic_header(headers: &HeaderMap) -> Result<Option<Presented>, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || Error::InvalidClient("malformed Basic authorization header".into());
    let text = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Error::InvalidClient(
            "unsupported authorization scheme".into(),
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    // §2.3.1: both parts are form-urlencoded before base64.
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (unescape(id), unescape(secret));
    if id.is_empty() {
        return Err(malformed());
    }
    Ok(Some(Presented {
        client_id: id,
        secret: Some(secret),
    }))
}

/// Which credentials the request presents: Basic or form, never both (RFC 6749 §2.3: one
/// method per request). Pure, and the fuzzing surface of client authentication (`fuzz/`).
pub fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, Error> {
    match from_basic_header(headers)? {
        Some(p) => {
            if params.contains("client_secret") {
                return Err(Error::invalid_request(
                    "use one client authentication method, not both Basic and client_secret",
                ));
            }
            if params.get("client_id").is_some_and(|id| id != p.client_id) {
                return Err(Error::invalid_request(
                    "client_id does not match the Basic credentials",
                ));
            }
            Ok(p)
        }
        None => Ok(Presented {
            client_id: params
                .get("client_id")
                .ok_or_else(|| Error::InvalidClient("client authentication is required".into()))?
                .to_owned(),
            secret: params.get("client_secret").map(str::to_owned),
        }),
    }
}

pub async fn authenticate(
    app: &App,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client, Error> {
    let presented = presented(headers, params)?;
    let policy = &app.config.rate_limits.client_auth_per_client;
    let window = rate_limit::window(KIND, &presented.client_id, policy);
    // The limit is checked before the secret, with the client read in the same statement.
    let found = if presented.client_id.len() <= 256 {
        clients::find_with_failures(&app.store, &presented.client_id, &window.bucket).await?
    } else {
        None
    };
    let (client, tally) = match found {
        Some((client, tally)) => (Some(client), tally),
        None => (None, rate_limits::count(&app.store, &window.bucket).await?),
    };
    if let Decision::Limited { retry_after_secs } = window.decision(tally, policy) {
        return Err(Error::RateLimited {
            retry_after_secs,
            description: "too many failed client authentications; try again later".into(),
        });
    }
    let verdict = match (&client, &presented.secret) {
        (None, _) => Err("unknown client"),
        (Some(c), None) if c.is_public() => Ok(()),
        (Some(_), None) => Err("client authentication is required for this client"),
        (Some(c), Some(_)) if c.is_public() => Err("public clients have no secret"),
        (Some(c), Some(secret)) => {
            let stored = c.secret_hash.as_deref().unwrap_or_default();
            if constant_time_eq(stored.as_bytes(), digest(secret).as_bytes()) {
                Ok(())
            } else {
                Err("client authentication failed")
            }
        }
    };
    match verdict {
        Ok(()) => Ok(client.expect("verdict Ok implies a client")),
        Err(reason) => {
            rate_limit::record_failure(&app.store, KIND, &presented.client_id, policy).await?;
            Err(Error::InvalidClient(reason.into()))
        }
    }
}
