//! Changing the account's email address: from a session that signed in within the last
//! five minutes, a 6-digit code goes to the new address; typing it in the same session
//! switches the account to it (now verified) and tells the old address. The code is stored
//! as an HMAC with a purpose label of its own, lives 15 minutes, dies after
//! `otp.max_attempts` wrong tries, and sending shares the one-time codes' throttles.

use std::net::IpAddr;

use super::notifications::{self, Change, Device};
use crate::app::App;
use crate::authn::{RECENT_AUTH_SECS, otp};
use crate::delivery::Channel;
use crate::security::{constant_time_eq, hex, hmac_sha256, random_id};
use crate::session::Current;
use crate::store::account_codes::{self, AccountCode, PURPOSE_EMAIL_CHANGE};
use crate::store::{self, StoreError, users};

pub const TTL_SECS: i64 = 15 * 60;

#[derive(Debug)]
pub enum Failure {
    /// The session's sign-in is older than five minutes.
    Reauthenticate,
    InvalidAddress(String),
    /// Another account of the organization uses the address, or it is the current one.
    Taken,
    Throttled {
        retry_after_secs: i64,
    },
    WrongCode {
        attempts_left: i64,
    },
    Dead,
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::Store(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Reauthenticate => {
                f.write_str("Confirm it's you first: sign in again, then repeat the change.")
            }
            Failure::InvalidAddress(why) => write!(f, "That address cannot be used: {why}."),
            Failure::Taken => f.write_str("That address is already the email of an account."),
            Failure::Throttled { retry_after_secs } => write!(
                f,
                "Too many codes were sent. Try again in {retry_after_secs} seconds."
            ),
            Failure::WrongCode { attempts_left } => {
                write!(f, "That code is not right. {attempts_left} tries left.")
            }
            Failure::Dead => {
                f.write_str("That code has expired or was used up. Ask for a new one.")
            }
            Failure::Store(_) => f.write_str("The change could not be saved. Try again."),
        }
    }
}

fn code_hash(app: &App, id: &str, code: &str) -> String {
    hex(&hmac_sha256(
        &app.instance_key,
        format!("email-change:{id}:{code}").as_bytes(),
    ))
}

fn fresh(current: &Current) -> Result<(), Failure> {
    if store::now() - current.session.auth_time > RECENT_AUTH_SECS {
        return Err(Failure::Reauthenticate);
    }
    Ok(())
}

/// Sends a code to `raw_email` for the signed-in user. Returns the normalized address.
pub async fn start(
    app: &App,
    current: &Current,
    raw_email: &str,
    ip: Option<IpAddr>,
) -> Result<String, Failure> {
    fresh(current)?;
    let address =
        otp::normalize_address(Channel::Email, raw_email).map_err(Failure::InvalidAddress)?;
    // Telling a signed-in member that an address is in use is what any sign-up form tells.
    if users::find_by_email(&app.store, &current.user.org_id, &address)
        .await?
        .is_some()
    {
        return Err(Failure::Taken);
    }
    otp::throttle(app, &address, ip)
        .await
        .map_err(|e| match e {
            otp::Failure::Throttled { retry_after_secs } => Failure::Throttled { retry_after_secs },
            otp::Failure::Store(e) => Failure::Store(e),
            _ => Failure::Dead,
        })?;
    let code = otp::random_code();
    let now = store::now();
    let id = random_id();
    let row = AccountCode {
        secret_hash: code_hash(app, &id, &code),
        id,
        org_id: current.user.org_id.clone(),
        user_id: Some(current.user.id.clone()),
        purpose: PURPOSE_EMAIL_CHANGE.into(),
        address: address.clone(),
        holder: Some(current.session.id.clone()),
        auth_request_id: None,
        failed_attempts: 0,
        created_at: now,
        expires_at: now + TTL_SECS,
        verified_at: None,
        completed_at: None,
    };
    account_codes::insert(&app.store, &row).await?;
    let body =
        crate::delivery::messages::email_change_code(&code, TTL_SECS / 60, &app.config.issuer);
    let (http, delivery, to) = (
        app.http.clone(),
        std::sync::Arc::clone(&app.delivery),
        address.clone(),
    );
    let subject = format!("Confirm your new email address: {code}");
    tokio::spawn(async move {
        if let Err(e) = delivery
            .send(&http, Channel::Email, &to, &subject, &body)
            .await
        {
            tracing::warn!(error = %e, "sending an email-change code failed");
        }
    });
    Ok(address)
}

/// The change this session is waiting to confirm: the new address.
pub async fn pending(app: &App, current: &Current) -> Result<Option<String>, StoreError> {
    Ok(
        account_codes::find_held(&app.store, &[PURPOSE_EMAIL_CHANGE], &current.session.id)
            .await?
            .filter(|r| r.guessable(store::now(), app.config.otp.max_attempts))
            .map(|r| r.address),
    )
}

/// The code typed in the session that asked: switches the address and tells the old one.
/// Returns the new address.
pub async fn confirm(
    app: &App,
    current: &Current,
    typed: &str,
    device: &Device,
) -> Result<String, Failure> {
    fresh(current)?;
    let max = app.config.otp.max_attempts;
    let row = account_codes::find_held(&app.store, &[PURPOSE_EMAIL_CHANGE], &current.session.id)
        .await?
        .ok_or(Failure::Dead)?;
    let now = store::now();
    if !row.guessable(now, max) || row.user_id.as_deref() != Some(current.user.id.as_str()) {
        return Err(Failure::Dead);
    }
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    let matches = typed.len() == otp::CODE_DIGITS
        && typed.bytes().all(|b| b.is_ascii_digit())
        && constant_time_eq(
            code_hash(app, &row.id, &typed).as_bytes(),
            row.secret_hash.as_bytes(),
        );
    if !matches {
        let attempts_left = account_codes::record_failure(&app.store, &row.id, max).await?;
        return Err(if attempts_left == 0 {
            Failure::Dead
        } else {
            Failure::WrongCode { attempts_left }
        });
    }
    if !account_codes::verify(&app.store, &row.id, &current.session.id, max, now, TTL_SECS).await?
        || !account_codes::complete(&app.store, &row.id, now).await?
    {
        return Err(Failure::Dead);
    }
    users::set_email(&app.store, &current.user.id, &row.address)
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                Failure::Taken
            } else {
                e.into()
            }
        })?;
    notifications::notify(
        app,
        &current.user.email,
        Change::EmailChanged { new: &row.address },
        device,
    );
    super::credentials::audit(
        app,
        &current.user,
        "account.email.change",
        device.ip.clone(),
    )
    .await;
    Ok(row.address)
}
