//! Sign-up (README "Sign-up"): an address, then a code that proves it, then the account's
//! first credential (a passkey, a password, or nothing more where email codes sign in). The
//! account is created only at that last step, with its address already verified, so no
//! relying party ever receives an unverified new account.
//!
//! - The answer to step one is the same for a new address and for one that already has an
//!   account: a row is stored either way; the owner of a taken address gets a "someone tried
//!   to sign up with your address" mail instead of a code, and that row can never verify.
//! - Codes reuse the one-time-code machinery (`authn::otp`): 6 digits, an HMAC at rest, the
//!   `otp.max_attempts` try limit, and the send throttles per address and per IP.
//! - A sign-up belongs to the parked authorization request it started from, and so to the
//!   browser holding that request's cookie.
//! - One address, one account per organization: the unique index on the normalized address
//!   decides between two sign-ups racing for it.

use std::net::IpAddr;

use webauthn_rs::prelude::RegisterPublicKeyCredential;

use crate::app::App;
use crate::authn::Authentication;
use crate::authn::methods::{AuthConfig, Method, SignupMode};
use crate::authn::otp;
use crate::authn::passkey::{self, PasskeyError};
use crate::delivery::Channel;
use crate::security::random_id;
use crate::store::orgs::Organization;
use crate::store::signups::{self, SignupRow};
use crate::store::users::{self, User};
use crate::store::{self, StoreError};

/// How long a sign-up may take from the code to the first credential.
pub const SIGNUP_TTL_SECS: i64 = 30 * 60;

#[derive(Debug)]
pub enum Failure {
    /// The organization's sign-up mode does not let this person create an account here.
    NotOpen,
    /// The address's domain is not in the organization's list (said plainly: it reveals
    /// nothing about accounts).
    DomainNotAllowed,
    InvalidAddress(String),
    Throttled {
        retry_after_secs: i64,
    },
    WrongCode {
        attempts_left: i64,
    },
    /// Expired, already used, out of tries, or not this browser's: start again.
    Dead,
    /// The chosen credential is off for this organization.
    MethodOff(Method),
    /// The password was refused (length); the person can choose another.
    Password(String),
    Passkey(PasskeyError),
    /// The address got an account meanwhile (another sign-up, an admin).
    Taken,
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::Store(e)
    }
}

impl From<otp::Failure> for Failure {
    fn from(e: otp::Failure) -> Failure {
        match e {
            otp::Failure::Throttled { retry_after_secs } => Failure::Throttled { retry_after_secs },
            otp::Failure::Store(e) => Failure::Store(e),
            otp::Failure::InvalidAddress(why) => Failure::InvalidAddress(why),
            _ => Failure::Dead,
        }
    }
}

impl From<PasskeyError> for Failure {
    fn from(e: PasskeyError) -> Failure {
        match e {
            PasskeyError::Store(e) => Failure::Store(e),
            other => Failure::Passkey(other),
        }
    }
}

/// Step one answered: the same for every address the organization accepts.
pub struct Started {
    pub signup_id: String,
    pub masked: String,
}

/// Step one: record the sign-up and mail the address its code (or, when the address already
/// has an account, mail its owner a warning).
pub async fn start(
    app: &App,
    org: &Organization,
    config: &AuthConfig,
    raw_email: &str,
    auth_request_id: &str,
    ip: Option<IpAddr>,
) -> Result<Started, Failure> {
    if config.signup.mode != SignupMode::Open {
        return Err(Failure::NotOpen);
    }
    let email =
        otp::normalize_address(Channel::Email, raw_email).map_err(Failure::InvalidAddress)?;
    if !config.signup.domain_allowed(&email) {
        return Err(Failure::DomainNotAllowed);
    }
    otp::throttle(app, &email, ip).await?;
    let existing = users::find_by_email(&app.store, &org.id, &email).await?;
    let code = otp::random_code();
    let now = store::now();
    let id = random_id();
    let row = SignupRow {
        code_hash: otp::code_hash(app, &id, &code),
        id,
        org_id: org.id.clone(),
        email: email.clone(),
        auth_request_id: auth_request_id.to_owned(),
        code_sent: existing.is_none(),
        failed_attempts: 0,
        webauthn_handle: webauthn_rs::prelude::Uuid::new_v4().to_string(),
        created_at: now,
        code_expires_at: now + app.config.otp.code_ttl_secs,
        expires_at: now + SIGNUP_TTL_SECS,
        verified_at: None,
        completed_at: None,
    };
    signups::insert(&app.store, &row).await?;
    let (subject, body) = match &existing {
        None => crate::delivery::messages::signup_code(
            &code,
            app.config.otp.code_ttl_secs / 60,
            &org.name,
            &app.config.issuer,
        ),
        Some(_) => crate::delivery::messages::signup_existing(&org.name, &app.config.issuer),
    };
    app.delivery
        .send_in_background(&app.http, Channel::Email, email.clone(), subject, body);
    crate::audit::record(
        &app.store,
        crate::audit::Event {
            org_id: Some(&org.id),
            actor: "anonymous".into(),
            action: "signup.start",
            target: existing.as_ref().map(|u| u.id.clone()),
            outcome: crate::audit::Outcome::Success,
            ip: ip.map(|i| i.to_string()),
            detail: serde_json::json!({ "signup": row.id, "existing_account": existing.is_some() }),
        },
    )
    .await?;
    Ok(Started {
        signup_id: row.id,
        masked: otp::mask(Channel::Email, &email),
    })
}

/// This browser's sign-up `id` in `org_id`, whatever its state.
async fn load(
    app: &App,
    org_id: &str,
    id: &str,
    auth_request_id: &str,
) -> Result<SignupRow, Failure> {
    signups::find(&app.store, id)
        .await?
        .filter(|s| s.org_id == org_id && s.auth_request_id == auth_request_id)
        .filter(|s| s.completed_at.is_none() && s.expires_at > store::now())
        .ok_or(Failure::Dead)
}

/// Step two: the code from the mail. A row for a taken address (no code was sent) fails like
/// a wrong code, so guessing tells nothing either.
pub async fn verify(
    app: &App,
    org_id: &str,
    id: &str,
    auth_request_id: &str,
    typed: &str,
) -> Result<SignupRow, Failure> {
    let row = load(app, org_id, id, auth_request_id).await?;
    if row.verified_at.is_some() {
        return Ok(row);
    }
    let max = app.config.otp.max_attempts;
    let now = store::now();
    if row.code_expires_at <= now || row.failed_attempts >= max {
        return Err(Failure::Dead);
    }
    if !(otp::code_matches(app, &row.id, &row.code_hash, typed) && row.code_sent) {
        let attempts_left = signups::record_failure(&app.store, &row.id, max).await?;
        return Err(if attempts_left == 0 {
            Failure::Dead
        } else {
            Failure::WrongCode { attempts_left }
        });
    }
    if !signups::mark_verified(&app.store, &row.id, max, now).await? {
        return Err(Failure::Dead);
    }
    Ok(SignupRow {
        verified_at: Some(now),
        ..row
    })
}

/// A sign-up of this browser whose address is verified and whose account is not created yet.
pub async fn verified(
    app: &App,
    org_id: &str,
    id: &str,
    auth_request_id: &str,
) -> Result<SignupRow, Failure> {
    let row = load(app, org_id, id, auth_request_id).await?;
    if row.verified_at.is_none() {
        return Err(Failure::Dead);
    }
    Ok(row)
}

/// The new account's first way to sign in.
pub enum Credential<'a> {
    Password(String),
    Passkey {
        ceremony: &'a str,
        credential: &'a RegisterPublicKeyCredential,
    },
    /// Nothing more: the account signs in with email codes (where the organization has them).
    EmailCode,
}

/// Starts the passkey ceremony of an account to be created for `email`: the ceremony
/// belongs to `owner` (the sign-up or the invitation) until the account exists.
pub async fn start_passkey(
    app: &App,
    owner: &str,
    handle: &str,
    email: &str,
) -> Result<(String, serde_json::Value), Failure> {
    let pk = app
        .passkeys
        .as_ref()
        .ok_or(Failure::MethodOff(Method::Passkey))?;
    Ok(passkey::start_signup_registration(pk, &app.store, owner, handle, email).await?)
}

/// Step three: checks the credential, takes the sign-up (once), creates the account with its
/// address verified and that credential. A passkey-only account never gets a password.
pub async fn complete(
    app: &App,
    config: &AuthConfig,
    signup: &SignupRow,
    credential: Credential<'_>,
    ip: Option<IpAddr>,
) -> Result<(User, Method, Authentication), Failure> {
    let (method, prepared) = prepare(app, config, &signup.id, credential).await?;
    if !signups::mark_completed(&app.store, &signup.id, store::now()).await? {
        return Err(Failure::Dead);
    }
    let (user, authentication) = create_account(
        app,
        &signup.org_id,
        &signup.email,
        &signup.webauthn_handle,
        prepared,
    )
    .await?;
    record_signup(app, &user, method, "code", ip).await?;
    Ok((user, method, authentication))
}

/// Checks the chosen credential (on for the organization, a password of a valid length, a
/// passkey response for the ceremony `owner` started). Everything that can fail for a reason
/// the person can fix happens here, before the sign-up or invitation is spent.
pub(crate) async fn prepare(
    app: &App,
    config: &AuthConfig,
    owner: &str,
    credential: Credential<'_>,
) -> Result<(Method, Prepared), Failure> {
    let method = match credential {
        Credential::Password(_) => Method::Password,
        Credential::Passkey { .. } => Method::Passkey,
        Credential::EmailCode => Method::EmailOtp,
    };
    let usable = config.enabled(method) && (method != Method::Passkey || app.passkeys.is_some());
    if !usable {
        return Err(Failure::MethodOff(method));
    }
    let prepared = match credential {
        Credential::Password(password) => Prepared::Password(
            crate::authn::password::hash(password)
                .await
                .map_err(Failure::Password)?,
        ),
        Credential::Passkey {
            ceremony,
            credential,
        } => {
            let pk = app
                .passkeys
                .as_ref()
                .ok_or(Failure::MethodOff(Method::Passkey))?;
            Prepared::Passkey(Box::new(
                passkey::verify_registration(pk, &app.store, owner, ceremony, credential, "")
                    .await?,
            ))
        }
        Credential::EmailCode => Prepared::Nothing,
    };
    Ok((method, prepared))
}

/// A checked credential, ready to store with the account.
pub(crate) enum Prepared {
    /// An argon2id hash.
    Password(String),
    /// A verified passkey (its `user_id` is replaced by the new account's).
    Passkey(Box<crate::store::passkeys::PasskeyRow>),
    Nothing,
}

/// Creates an account with a verified address and its first credential. Loses cleanly to an
/// account created meanwhile for the same address (the unique index decides).
pub(crate) async fn create_account(
    app: &App,
    org_id: &str,
    email: &str,
    webauthn_handle: &str,
    prepared: Prepared,
) -> Result<(User, Authentication), Failure> {
    let mut user = crate::admin::create_user(
        &app.store,
        crate::admin::NewUser {
            org_id,
            email,
            name: None,
            password: None,
            email_verified: true,
        },
    )
    .await
    .map_err(|_| Failure::Taken)?;
    let authentication = match prepared {
        Prepared::Password(hash) => {
            users::set_password_hash(&app.store, &user.id, Some(&hash)).await?;
            user.password_hash = Some(hash);
            Authentication::password()
        }
        Prepared::Passkey(row) => {
            let handle =
                users::ensure_webauthn_handle(&app.store, &user.id, webauthn_handle).await?;
            user.webauthn_handle = Some(handle);
            let row = crate::store::passkeys::PasskeyRow {
                user_id: user.id.clone(),
                ..*row
            };
            if let Err(e) = passkey::save(&app.store, &row).await {
                // An account without its only credential could never sign in: undo it.
                users::delete(&app.store, &user.id).await?;
                return Err(e.into());
            }
            // webauthn-rs registers passkeys with user verification required.
            Authentication::passkey(row.backup_eligible, true)
        }
        Prepared::Nothing => Authentication::one_time_code(Channel::Email),
    };
    Ok((user, authentication))
}

/// The audit entry of a new account: `proof` is how its address was verified.
pub(crate) async fn record_signup(
    app: &App,
    user: &User,
    method: Method,
    proof: &str,
    ip: Option<IpAddr>,
) -> Result<(), StoreError> {
    crate::audit::record(
        &app.store,
        crate::audit::Event {
            org_id: Some(&user.org_id),
            actor: format!("user:{}", user.id),
            action: "user.signup",
            target: Some(user.id.clone()),
            outcome: crate::audit::Outcome::Success,
            ip: ip.map(|i| i.to_string()),
            detail: serde_json::json!({ "credential": method.key(), "email_verified_by": proof }),
        },
    )
    .await
}
