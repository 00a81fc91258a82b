//! Account recovery: "Forgot password?" / "Lost your passkey?" on the sign-in page, and
//! recovery links sent by an admin. Both end the same way: the person sets up a new way in
//! (a passkey, or a password where the organization uses passwords), then every session of
//! the account ends, its refresh tokens are revoked, relying parties get back-channel logout,
//! the account's address is told, and the audit log records it.
//!
//! - A code is 6 digits (the one-time code generator of `authn::otp`), stored as an HMAC under
//!   the instance key with a purpose label of its own (`recovery:`), so a sign-in code can
//!   never pass as a recovery code or the other way round. It lives 15 minutes, dies after
//!   `otp.max_attempts` wrong tries, and belongs to the browser that asked for it (a cookie
//!   whose digest is the row's holder).
//! - Sending shares the one-time codes' throttles per address and per IP: both put a message
//!   in the same mailbox, so one budget covers both.
//! - The answer is the same whether or not an account holds the address: a row is stored
//!   either way, the message goes out in the background, and a row without an account can
//!   never be verified.
//! - An admin's link carries 256 random bits, stored as a digest; opening it binds it to the
//!   browser that opened it, once.

use std::net::IpAddr;

use super::notifications::{self, Change, Device};
use crate::app::App;
use crate::authn::otp;
use crate::delivery::Channel;
use crate::security::{constant_time_eq, digest, hex, hmac_sha256, random_id, random_secret};
use crate::store::account_codes::{
    self, AccountCode, PURPOSE_RECOVERY_CODE, PURPOSE_RECOVERY_LINK,
};
use crate::store::users::{self, User};
use crate::store::{self, StoreError};

/// How long a recovery code or link can be used, and then how long the new credential may
/// take to set up.
pub const TTL_SECS: i64 = 15 * 60;
const PURPOSES: [&str; 2] = [PURPOSE_RECOVERY_CODE, PURPOSE_RECOVERY_LINK];

#[derive(Debug)]
pub enum Failure {
    InvalidAddress(String),
    Throttled {
        retry_after_secs: i64,
    },
    WrongCode {
        attempts_left: i64,
    },
    /// Expired, used, out of attempts, or never issued: start again.
    Dead,
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

fn code_hash(app: &App, id: &str, code: &str) -> String {
    hex(&hmac_sha256(
        &app.instance_key,
        format!("recovery:{id}:{code}").as_bytes(),
    ))
}

/// A code was (or, for an address without an account, was not) sent.
pub struct Sent {
    /// The cookie value that alone may use the code.
    pub holder_secret: String,
    pub masked: String,
}

/// Step one of self-service recovery: a code to `raw_email` if an account of `org_id` holds
/// it. `auth_request_id` is the sign-in the person came from, resumed once recovery is done.
pub async fn send_code(
    app: &App,
    org_id: &str,
    raw_email: &str,
    auth_request_id: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<Sent, Failure> {
    let address =
        otp::normalize_address(Channel::Email, raw_email).map_err(Failure::InvalidAddress)?;
    otp::throttle(app, &address, ip).await?;
    let user = users::find_by_email(&app.store, org_id, &address)
        .await?
        .filter(|u| !u.disabled);
    let code = otp::random_code();
    let holder_secret = random_secret();
    let now = store::now();
    let id = random_id();
    let row = AccountCode {
        secret_hash: code_hash(app, &id, &code),
        id,
        org_id: org_id.to_owned(),
        user_id: user.as_ref().map(|u| u.id.clone()),
        purpose: PURPOSE_RECOVERY_CODE.into(),
        address: address.clone(),
        holder: Some(digest(&holder_secret)),
        auth_request_id: auth_request_id.map(str::to_owned),
        failed_attempts: 0,
        created_at: now,
        expires_at: now + TTL_SECS,
        verified_at: None,
        completed_at: None,
    };
    account_codes::insert(&app.store, &row).await?;
    if user.is_some() {
        let subject = format!("Your account recovery code: {code}");
        let body =
            crate::delivery::messages::recovery_code(&code, TTL_SECS / 60, &app.config.issuer);
        send_in_background(app, &address, subject, body);
    }
    Ok(Sent {
        holder_secret,
        masked: otp::mask(Channel::Email, &address),
    })
}

/// In the background: an address with an account must not answer slower than one without.
fn send_in_background(app: &App, to: &str, subject: String, body: String) {
    let (http, delivery, to) = (
        app.http.clone(),
        std::sync::Arc::clone(&app.delivery),
        to.to_owned(),
    );
    tokio::spawn(async move {
        if let Err(e) = delivery
            .send(&http, Channel::Email, &to, &subject, &body)
            .await
        {
            tracing::warn!(error = %e, "sending a recovery message failed");
        }
    });
}

/// The code this browser is waiting for, if any (to show its masked address again).
pub async fn pending_code(app: &App, holder_secret: &str) -> Result<Option<AccountCode>, Failure> {
    Ok(
        account_codes::find_held(&app.store, &[PURPOSE_RECOVERY_CODE], &digest(holder_secret))
            .await?
            .filter(|r| r.guessable(store::now(), app.config.otp.max_attempts)),
    )
}

/// Step two: the code typed in the browser holding `holder_secret`.
pub async fn verify_code(app: &App, holder_secret: &str, typed: &str) -> Result<(), Failure> {
    let max = app.config.otp.max_attempts;
    let holder = digest(holder_secret);
    let row = account_codes::find_held(&app.store, &[PURPOSE_RECOVERY_CODE], &holder)
        .await?
        .ok_or(Failure::Dead)?;
    let now = store::now();
    if !row.guessable(now, max) {
        return Err(Failure::Dead);
    }
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    let well_formed = typed.len() == otp::CODE_DIGITS && typed.bytes().all(|b| b.is_ascii_digit());
    let matches = well_formed
        && constant_time_eq(
            code_hash(app, &row.id, &typed).as_bytes(),
            row.secret_hash.as_bytes(),
        );
    // A code for an address without an account was never sent: a lucky guess is wrong too.
    if !matches || row.user_id.is_none() {
        let attempts_left = account_codes::record_failure(&app.store, &row.id, max).await?;
        return Err(if attempts_left == 0 {
            Failure::Dead
        } else {
            Failure::WrongCode { attempts_left }
        });
    }
    if !account_codes::verify(&app.store, &row.id, &holder, max, now, TTL_SECS).await? {
        return Err(Failure::Dead);
    }
    Ok(())
}

/// A message to send: address, subject, body.
pub struct Outgoing {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// An admin's recovery link for `user`: stored, and returned as the message that carries it
/// to the user's address (the caller sends it). The admin never sees the link: they must not
/// be able to take the account over.
pub async fn issue_link(
    store: &crate::store::Store,
    config: &crate::config::Config,
    user: &User,
) -> Result<Outgoing, StoreError> {
    let token = random_secret();
    let now = store::now();
    let row = AccountCode {
        id: random_id(),
        org_id: user.org_id.clone(),
        user_id: Some(user.id.clone()),
        purpose: PURPOSE_RECOVERY_LINK.into(),
        address: user.email_normalized.clone(),
        secret_hash: digest(&token),
        holder: None,
        auth_request_id: None,
        failed_attempts: 0,
        created_at: now,
        expires_at: now + TTL_SECS,
        verified_at: None,
        completed_at: None,
    };
    account_codes::insert(store, &row).await?;
    let mut link = url::Url::parse(&config.endpoint("/recover/link")).expect("issuer URL");
    link.query_pairs_mut().append_pair("token", &token);
    Ok(Outgoing {
        to: user.email.clone(),
        subject: "Recover your account".into(),
        body: crate::delivery::messages::recovery_link(
            link.as_str(),
            TTL_SECS / 60,
            &config.issuer,
        ),
    })
}

/// Sends an admin's link from the server, in the background.
pub fn deliver_link(app: &App, message: Outgoing) {
    send_in_background(app, &message.to, message.subject, message.body);
}

/// Opens an admin's link in this browser, once. Returns the cookie value that now holds it.
pub async fn open_link(app: &App, token: &str) -> Result<String, Failure> {
    if token.is_empty() || token.len() > 128 {
        return Err(Failure::Dead);
    }
    let row = account_codes::find_by_secret(&app.store, PURPOSE_RECOVERY_LINK, &digest(token))
        .await?
        .ok_or(Failure::Dead)?;
    let holder_secret = random_secret();
    let now = store::now();
    if !row.guessable(now, 1)
        || !account_codes::verify(
            &app.store,
            &row.id,
            &digest(&holder_secret),
            1,
            now,
            TTL_SECS,
        )
        .await?
    {
        return Err(Failure::Dead);
    }
    Ok(holder_secret)
}

/// A recovery this browser proved (code or link) and has not finished, with its account.
pub struct Proved {
    pub row: AccountCode,
    pub user: User,
}

pub async fn proved(app: &App, holder_secret: &str) -> Result<Option<Proved>, StoreError> {
    let Some(row) = account_codes::find_held(&app.store, &PURPOSES, &digest(holder_secret))
        .await?
        .filter(|r| {
            r.verified_at.is_some() && r.completed_at.is_none() && r.expires_at > store::now()
        })
    else {
        return Ok(None);
    };
    let Some(user_id) = row.user_id.as_deref() else {
        return Ok(None);
    };
    Ok(users::find(&app.store, user_id)
        .await?
        .filter(|u| !u.disabled)
        .map(|user| Proved { row, user }))
}

/// The last step, after the new credential was saved: ends the recovery (once), every
/// session of the account with its refresh tokens (and back-channel logout), tells the
/// account's address and writes the audit log. `how` names the new credential.
pub async fn complete(
    app: &crate::app::AppState,
    proved: &Proved,
    how: &str,
    device: &Device,
) -> Result<(), Failure> {
    if !account_codes::complete(&app.store, &proved.row.id, store::now()).await? {
        return Err(Failure::Dead);
    }
    let ended = crate::session::logout::end_all_sessions(app, &proved.user.id).await?;
    crate::audit::record(
        &app.store,
        crate::audit::Event {
            org_id: Some(&proved.user.org_id),
            actor: format!("user:{}", proved.user.id),
            action: "account.recover",
            target: Some(proved.user.id.clone()),
            outcome: crate::audit::Outcome::Success,
            ip: device.ip.clone(),
            detail: serde_json::json!({
                "via": if proved.row.purpose == PURPOSE_RECOVERY_LINK { "admin_link" } else { "email_code" },
                "new_credential": how,
                "sessions_ended": ended,
            }),
        },
    )
    .await?;
    notifications::notify(app, &proved.user.email, Change::AccountRecovered, device);
    tracing::info!(user_id = %proved.user.id, sessions_ended = ended, "account recovered");
    Ok(())
}
