//! Administration: the domain operations behind the CLI, the admin API and the console, so
//! all three apply the same validation, the same organization scoping and the same audit
//! log. Every operation takes the [`Actor`], checks that it manages the organization, checks
//! that the target belongs to that organization (another organization's user, client or
//! session is "not found", never revealed), makes the change and records it.

pub mod api;
pub mod audit;
pub mod cli;
pub mod clients;
pub mod keys;
pub mod orgs;
pub mod sessions;
pub mod tokens;
pub mod upstream;
pub mod users;

use crate::oidc::authorize::redirect_uri::validate_for_registration;
use crate::security::{digest, random_id, random_secret};
use crate::store::clients::ClientRow;
use crate::store::users::User;
use crate::store::{self, Store, encode_list};

pub struct NewClient<'a> {
    pub org_id: &'a str,
    pub name: &'a str,
    pub redirect_uris: &'a [String],
    pub post_logout_redirect_uris: &'a [String],
    pub public: bool,
    /// A fixed id (the demo client); a random one otherwise.
    pub id: Option<&'a str>,
    /// A fixed secret (the demo client); a random one otherwise.
    pub secret: Option<String>,
    /// Back-Channel Logout 1.0: where logout tokens are POSTed.
    pub backchannel_logout_uri: Option<&'a str>,
}

/// Registers a client; returns its id and, for a confidential client, the secret, which is
/// stored only as a digest and cannot be shown again.
pub async fn create_client(
    store: &Store,
    new: NewClient<'_>,
) -> Result<(String, Option<String>), String> {
    if new.name.trim().is_empty() {
        return Err("the client needs a name".into());
    }
    if new.redirect_uris.is_empty() {
        return Err("register at least one redirect URI".into());
    }
    for uri in new
        .redirect_uris
        .iter()
        .chain(new.post_logout_redirect_uris)
    {
        validate_for_registration(uri)?;
    }
    if let Some(uri) = new.backchannel_logout_uri {
        validate_backchannel_uri(uri)?;
    }
    let id = new.id.map(str::to_owned).unwrap_or_else(random_id);
    let secret = if new.public {
        None
    } else {
        Some(new.secret.unwrap_or_else(random_secret))
    };
    let row = ClientRow {
        id: id.clone(),
        org_id: new.org_id.to_owned(),
        name: new.name.trim().to_owned(),
        secret_hash: secret.as_deref().map(digest),
        redirect_uris: encode_list(new.redirect_uris),
        post_logout_redirect_uris: encode_list(new.post_logout_redirect_uris),
        created_at: store::now(),
        backchannel_logout_uri: new.backchannel_logout_uri.map(str::to_owned),
        backchannel_logout_session_required: true,
        admin_api: false,
    };
    store::clients::insert(store, &row).await.map_err(|e| {
        if e.is_unique_violation() {
            format!("a client with id {id} already exists")
        } else {
            e.to_string()
        }
    })?;
    Ok((id, secret))
}

pub struct NewUser<'a> {
    pub org_id: &'a str,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub password: Option<String>,
    pub email_verified: bool,
}

pub async fn create_user(store: &Store, new: NewUser<'_>) -> Result<User, String> {
    let email = new.email.trim();
    if !looks_like_email(email) {
        return Err(format!("{email:?} is not an email address"));
    }
    let password_hash = match new.password {
        Some(p) => Some(crate::authn::password::hash(p).await?),
        None => None,
    };
    let now = store::now();
    let user = User {
        id: random_id(),
        org_id: new.org_id.to_owned(),
        email: email.to_owned(),
        email_normalized: store::users::normalize_email(email),
        email_verified: new.email_verified,
        name: new.name.map(str::to_owned),
        given_name: None,
        family_name: None,
        phone_number: None,
        phone_number_verified: false,
        locale: None,
        password_hash,
        disabled: false,
        created_at: now,
        updated_at: now,
        webauthn_handle: None,
        role: store::users::ROLE_MEMBER.into(),
    };
    store::users::insert(store, &user).await.map_err(|e| {
        if e.is_unique_violation() {
            format!("an account with email {email} already exists in this organization")
        } else {
            e.to_string()
        }
    })?;
    Ok(user)
}

pub fn looks_like_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && email.len() <= 254
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// Back-Channel Logout 1.0 §2.2: an absolute http(s) URI without a fragment; plain http only
/// for loopback hosts.
fn validate_backchannel_uri(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("{uri}: not an absolute URI ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!(
            "{uri}: a back-channel logout URI must not contain a fragment"
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::config::is_loopback_host(url.host_str().unwrap_or("")) => Ok(()),
        _ => Err(format!(
            "{uri}: a back-channel logout URI must be https (http only for loopback)"
        )),
    }
}

/// Why an admin operation was refused; the admin API maps each onto its HTTP status (403,
/// 404, 400 or 409, 503/500) and the console and CLI show the message.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The actor does not manage this organization (or the deployment-wide part).
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The input is invalid, or the change is refused (the lock-out guard).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Actor {
    /// Refuses unless this actor manages `org_id`.
    pub fn require_org(&self, org_id: &str) -> Result<(), AdminError> {
        if self.manages(org_id) {
            Ok(())
        } else {
            Err(AdminError::Forbidden(
                "this credential manages another organization".into(),
            ))
        }
    }
}

/// Who makes an admin change, and which organizations they may touch. Every change made
/// through the CLI, the admin API or the console is written to the audit log under this name
/// ([`record_change`]).
#[derive(Debug, Clone)]
pub struct Actor {
    /// `cli`, `admin_token:ID`, `client:ID` (client-credentials grant) or `user:ID` (console).
    pub name: String,
    /// The one organization this actor manages; `None` manages every organization and the
    /// deployment-wide parts (signing keys).
    pub org_id: Option<String>,
    pub ip: Option<String>,
}

impl Actor {
    pub fn cli() -> Actor {
        Actor {
            name: "cli".into(),
            org_id: None,
            ip: None,
        }
    }

    /// May this actor manage `org_id`?
    pub fn manages(&self, org_id: &str) -> bool {
        self.org_id.as_deref().is_none_or(|own| own == org_id)
    }

    pub fn is_deployment_admin(&self) -> bool {
        self.org_id.is_none()
    }
}

/// Writes one admin change to the audit log (call it after the change succeeded).
pub async fn record_change(
    store: &Store,
    actor: &Actor,
    org_id: Option<&str>,
    action: &str,
    target: Option<&str>,
    detail: serde_json::Value,
) -> Result<(), AdminError> {
    crate::audit::record(
        store,
        crate::audit::Event {
            org_id,
            actor: actor.name.clone(),
            action,
            target: target.map(str::to_owned),
            outcome: crate::audit::Outcome::Success,
            ip: actor.ip.clone(),
            detail,
        },
    )
    .await?;
    Ok(())
}
