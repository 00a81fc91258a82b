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

const KIND: &str = "client-auth";

/// The credentials a request presents, before they are checked against the store.
#[derive(Debug, Clone)]
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
    Attempt::new(app, headers, params)?.authenticate(app).await
}

/// One client authentication: the presented credentials and the rate-limit window they count
/// in. [`Attempt::judge`] is pure, so that a grant may run it inside its own store round trip
/// (the refresh grant, `refresh_tokens::redeem`); [`Attempt::refusal`] counts a failure.
#[derive(Clone)]
pub struct Attempt {
    presented: Presented,
    window: rate_limit::Window,
    policy: rate_limit::Policy,
}

/// Why [`Attempt::judge`] refused a client.
#[derive(Debug)]
pub enum Refused {
    Limited { retry_after_secs: i64 },
    Failed(&'static str),
}

impl Attempt {
    pub fn new(app: &App, headers: &HeaderMap, params: &Params) -> Result<Attempt, Error> {
        let presented = presented(headers, params)?;
        let policy = app.config.rate_limits.client_auth_per_client;
        let window = rate_limit::window(KIND, &presented.client_id, &policy);
        Ok(Attempt {
            presented,
            window,
            policy,
        })
    }

    pub fn client_id(&self) -> &str {
        &self.presented.client_id
    }

    /// The rate-limit bucket the client's failures count in.
    pub fn bucket(&self) -> &str {
        &self.window.bucket
    }

    /// Reads the client and judges it: [`authenticate`] for a request already parsed.
    pub async fn authenticate(&self, app: &App) -> Result<Client, Error> {
        let found =
            clients::find_with_failures(&app.store, self.client_id(), self.bucket()).await?;
        match self.judge(found) {
            Ok(client) => Ok(client),
            Err(refused) => Err(self.refusal(app, refused).await),
        }
    }

    /// The presented credentials against the stored client: the limit is checked before the
    /// secret.
    pub fn judge(&self, (client, tally): clients::WithFailures) -> Result<Client, Refused> {
        if let Decision::Limited { retry_after_secs } = self.window.decision(tally, &self.policy) {
            return Err(Refused::Limited { retry_after_secs });
        }
        let client = client.ok_or(Refused::Failed("unknown client"))?;
        match &self.presented.secret {
            None if client.is_public() => Ok(client),
            None => Err(Refused::Failed(
                "client authentication is required for this client",
            )),
            Some(_) if client.is_public() => Err(Refused::Failed("public clients have no secret")),
            Some(secret) => {
                let stored = client.secret_hash.as_deref().unwrap_or_default();
                if constant_time_eq(stored.as_bytes(), digest(secret).as_bytes()) {
                    Ok(client)
                } else {
                    Err(Refused::Failed("client authentication failed"))
                }
            }
        }
    }

    /// A refusal as the endpoint answers it; a failed authentication is counted.
    pub async fn refusal(&self, app: &App, refused: Refused) -> Error {
        match refused {
            Refused::Limited { retry_after_secs } => Error::RateLimited {
                retry_after_secs,
                description: "too many failed client authentications; try again later".into(),
            },
            Refused::Failed(reason) => {
                let counted =
                    rate_limit::record_failure(&app.store, KIND, self.client_id(), &self.policy)
                        .await;
                match counted {
                    Ok(()) => Error::InvalidClient(reason.into()),
                    Err(e) => e.into(),
                }
            }
        }
    }
}
