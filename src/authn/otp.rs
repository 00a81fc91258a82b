//! Email and SMS one-time codes (passwordless): send, then verify.
//!
//! - Codes are 6 digits from the CSPRNG, stored as an HMAC under the instance key, live
//!   `otp.code_ttl_secs` (10 min), are used once, and die after `otp.max_attempts` wrong tries.
//! - Sending is throttled per address and per client IP (`rate_limits.otp_send_*`).
//! - The answer to "send" is the same whether or not the address has an account: a challenge
//!   is stored either way, the message goes out in the background (so timing does not tell
//!   either), and a challenge for an address without an account can never be verified.
//! - A code belongs to the parked authorization request it was sent for, and so to the
//!   browser holding that request's cookie: a code read over someone's shoulder is useless in
//!   another browser.

use std::net::IpAddr;

use crate::app::App;
use crate::authn::Authentication;
use crate::authn::methods::{AuthConfig, Method};
use crate::delivery::Channel;
use crate::security::rate_limit::{self, Decision, Policy};
use crate::security::{constant_time_eq, hex, hmac_sha256, random_id};
use crate::store::otp_challenges::{self, OtpChallenge};
use crate::store::users::{self, User};
use crate::store::{self, StoreError};

pub const CODE_DIGITS: usize = 6;

#[derive(Debug)]
pub enum Failure {
    /// The organization has this method off.
    Disabled,
    /// Not an email address / not a phone number in international format.
    InvalidAddress(String),
    /// Too many codes sent to this address or from this IP.
    Throttled {
        retry_after_secs: i64,
    },
    /// Wrong code (also: a code for an address without an account).
    WrongCode {
        attempts_left: i64,
    },
    /// Expired, used, or out of attempts: a new code is needed.
    Dead,
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::Store(e)
    }
}

impl Failure {
    /// Short cause for the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Disabled => "method_disabled",
            Failure::InvalidAddress(_) => "invalid_address",
            Failure::Throttled { .. } => "rate_limited",
            Failure::WrongCode { .. } => "wrong_code",
            Failure::Dead => "expired_or_used",
            Failure::Store(_) => "unavailable",
        }
    }
}

pub fn method_of(channel: Channel) -> Method {
    match channel {
        Channel::Email => Method::EmailOtp,
        Channel::Sms => Method::PhoneOtp,
    }
}

pub fn channel_from(text: &str) -> Option<Channel> {
    match text {
        "email" => Some(Channel::Email),
        "sms" => Some(Channel::Sms),
        _ => None,
    }
}

/// E.164 (ITU-T E.164 §6): `+`, a country code that does not start with 0, at most 15 digits
/// in all. Spaces, dashes, dots and parentheses people type are dropped; `00` is read as `+`.
/// Without a default region a number must be written in international form.
pub fn normalize_phone(input: &str) -> Result<String, String> {
    let trimmed = input.trim();
    let rest = if let Some(r) = trimmed.strip_prefix('+') {
        r
    } else if let Some(r) = trimmed.strip_prefix("00") {
        r
    } else {
        return Err(
            "write the number in international form, starting with + and the country code".into(),
        );
    };
    let mut digits = String::with_capacity(15);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err("a phone number holds only digits after the +".into()),
        }
    }
    if digits.starts_with('0') || !(8..=15).contains(&digits.len()) {
        return Err("that is not a valid international phone number".into());
    }
    Ok(format!("+{digits}"))
}

pub fn normalize_address(channel: Channel, input: &str) -> Result<String, String> {
    match channel {
        Channel::Email => {
            if crate::admin::looks_like_email(input.trim()) {
                Ok(users::normalize_email(input))
            } else {
                Err("enter a valid email address".into())
            }
        }
        Channel::Sms => normalize_phone(input),
    }
}

/// `a***@example.com`, `+4477******89`: enough for the person to recognise, not to learn.
pub fn mask(channel: Channel, address: &str) -> String {
    match channel {
        Channel::Email => match address.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".into(),
        },
        Channel::Sms => {
            let n = address.chars().count();
            address
                .chars()
                .enumerate()
                .map(|(i, c)| if i < 4 || i + 2 >= n { c } else { '*' })
                .collect()
        }
    }
}

pub(crate) fn random_code() -> String {
    // Rejection sampling keeps every code equally likely: 2^32 is not a multiple of 10^6.
    const RANGE: u32 = 1_000_000;
    const LIMIT: u32 = u32::MAX - (u32::MAX % RANGE);
    loop {
        let n = u32::from_le_bytes(crate::security::random_bytes::<4>());
        if n < LIMIT {
            return format!("{:06}", n % RANGE);
        }
    }
}

/// The stored form of a code: an HMAC under the instance key, bound to its challenge id.
pub(crate) fn code_hash(app: &App, challenge_id: &str, code: &str) -> String {
    hex(&hmac_sha256(
        &app.instance_key,
        format!("otp:{challenge_id}:{code}").as_bytes(),
    ))
}

/// Whether `typed` (spaces ignored) is the code stored as `stored_hash`, in constant time.
pub(crate) fn code_matches(app: &App, challenge_id: &str, stored_hash: &str, typed: &str) -> bool {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    let well_formed = typed.len() == CODE_DIGITS && typed.bytes().all(|b| b.is_ascii_digit());
    well_formed
        && constant_time_eq(
            code_hash(app, challenge_id, &typed).as_bytes(),
            stored_hash.as_bytes(),
        )
}

/// A code was (or, for an address without an account, was not) sent.
pub struct Sent {
    pub challenge_id: String,
    /// The address as the person will recognise it.
    pub masked: String,
    pub address: String,
}

/// Checks every send window, then counts this send in each; refused sends count nothing.
pub(crate) async fn throttle(app: &App, address: &str, ip: Option<IpAddr>) -> Result<(), Failure> {
    let limits = &app.config.rate_limits;
    let ip = ip.map(|i| i.to_string()).unwrap_or_default();
    let windows: [(&str, &str, &Policy); 4] = [
        ("otp-send-address", address, &limits.otp_send_per_address),
        (
            "otp-send-address-hourly",
            address,
            &limits.otp_send_per_address_hourly,
        ),
        ("otp-send-ip", &ip, &limits.otp_send_per_ip),
        ("otp-send-ip-hourly", &ip, &limits.otp_send_per_ip_hourly),
    ];
    let mut retry_after = 0;
    for (kind, key, policy) in windows {
        if let Decision::Limited { retry_after_secs } =
            rate_limit::check(&app.store, kind, key, policy).await?
        {
            retry_after = retry_after.max(retry_after_secs);
        }
    }
    if retry_after > 0 {
        return Err(Failure::Throttled {
            retry_after_secs: retry_after,
        });
    }
    for (kind, key, policy) in windows {
        rate_limit::record_failure(&app.store, kind, key, policy).await?;
    }
    Ok(())
}

/// Step one: make a code for `raw_address` and send it if the address can sign in.
pub async fn send(
    app: &App,
    org_id: &str,
    config: &AuthConfig,
    channel: Channel,
    raw_address: &str,
    auth_request_id: &str,
    ip: Option<IpAddr>,
) -> Result<Sent, Failure> {
    if !config.enabled(method_of(channel)) {
        return Err(Failure::Disabled);
    }
    let address = normalize_address(channel, raw_address).map_err(Failure::InvalidAddress)?;
    throttle(app, &address, ip).await?;
    let user = match channel {
        Channel::Email => users::find_by_email(&app.store, org_id, &address).await?,
        Channel::Sms => users::find_by_phone(&app.store, org_id, &address).await?,
    }
    .filter(|u| !u.disabled);
    // Sign-up by code is for email only: accounts are keyed on their email address.
    let deliver = user.is_some() || (channel == Channel::Email && config.signup.open_to(&address));
    let code = random_code();
    let now = store::now();
    let id = random_id();
    let challenge = OtpChallenge {
        code_hash: code_hash(app, &id, &code),
        id,
        org_id: org_id.to_owned(),
        channel: channel.as_str().to_owned(),
        address: address.clone(),
        user_id: user.as_ref().map(|u| u.id.clone()),
        auth_request_id: auth_request_id.to_owned(),
        failed_attempts: 0,
        created_at: now,
        expires_at: now + app.config.otp.code_ttl_secs,
        consumed_at: None,
    };
    otp_challenges::insert(&app.store, &challenge).await?;
    if deliver {
        let (subject, body) = crate::delivery::messages::otp(
            channel,
            &code,
            app.config.otp.code_ttl_secs / 60,
            &app.config.issuer,
        );
        // In the background: an address with an account must not answer slower than one
        // without (the SMTP round trip would tell them apart).
        app.delivery
            .send_in_background(&app.http, channel, address.clone(), subject, body);
    }
    Ok(Sent {
        challenge_id: challenge.id,
        masked: mask(channel, &address),
        address,
    })
}

/// Step two: check the code typed for `challenge_id` in the browser of `auth_request_id`.
/// On success the challenge is spent, the address is marked verified, and an account is
/// created where the organization allows sign-up.
pub async fn verify(
    app: &App,
    org_id: &str,
    config: &AuthConfig,
    challenge_id: &str,
    auth_request_id: &str,
    typed: &str,
) -> Result<(User, Authentication), Failure> {
    let max = app.config.otp.max_attempts;
    let challenge = otp_challenges::find(&app.store, challenge_id)
        .await?
        .filter(|c| c.org_id == org_id && c.auth_request_id == auth_request_id)
        .ok_or(Failure::Dead)?;
    let channel = channel_from(&challenge.channel).ok_or(Failure::Dead)?;
    if !config.enabled(method_of(channel)) {
        return Err(Failure::Disabled);
    }
    let now = store::now();
    if challenge.consumed_at.is_some()
        || challenge.expires_at <= now
        || challenge.failed_attempts >= max
    {
        return Err(Failure::Dead);
    }
    let matches = code_matches(app, &challenge.id, &challenge.code_hash, typed);
    let signup = channel == Channel::Email && config.signup.open_to(&challenge.address);
    // A code for an address without an account was never sent: treat a lucky guess as wrong.
    if !matches || (challenge.user_id.is_none() && !signup) {
        let attempts_left = otp_challenges::record_failure(&app.store, &challenge.id, max).await?;
        return Err(if attempts_left == 0 {
            Failure::Dead
        } else {
            Failure::WrongCode { attempts_left }
        });
    }
    if !otp_challenges::consume(&app.store, &challenge.id, max, now).await? {
        return Err(Failure::Dead);
    }
    let user = match &challenge.user_id {
        Some(id) => users::find(&app.store, id).await?,
        None => Some(sign_up(app, org_id, &challenge.address).await?),
    }
    .filter(|u| !u.disabled)
    .ok_or(Failure::Dead)?;
    match channel {
        Channel::Email => users::mark_email_verified(&app.store, &user.id).await?,
        Channel::Sms => {
            users::set_phone(&app.store, &user.id, Some(&challenge.address), true).await?
        }
    }
    Ok((user, Authentication::one_time_code(channel)))
}

/// The first verified email code of an address without an account creates it (the
/// organization's sign-up is open to the address's domain). Two browsers racing end on the same account.
async fn sign_up(app: &App, org_id: &str, email: &str) -> Result<User, Failure> {
    let created = crate::admin::create_user(
        &app.store,
        crate::admin::NewUser {
            org_id,
            email,
            name: None,
            password: None,
            email_verified: true,
        },
    )
    .await;
    match created {
        Ok(user) => Ok(user),
        Err(_) => users::find_by_email(&app.store, org_id, email)
            .await?
            .ok_or(Failure::Dead),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_normalize_to_e164() {
        assert_eq!(
            normalize_phone("+44 20 7946 0958").unwrap(),
            "+442079460958"
        );
        assert_eq!(
            normalize_phone("0049 (30) 123-4567").unwrap(),
            "+49301234567"
        );
        assert!(normalize_phone("020 7946 0958").is_err());
        assert!(normalize_phone("+0 123 456 789").is_err());
        assert!(normalize_phone("+1 555").is_err());
        assert!(normalize_phone("+1234567890123456").is_err());
        assert!(normalize_phone("+1 555 0100 ext 4").is_err());
        assert!(normalize_phone("5551234567").is_err());
        assert!(normalize_phone("").is_err());
        assert_eq!(
            normalize_phone("+1 (555) 123-4567").unwrap(),
            "+15551234567"
        );
    }

    #[test]
    fn codes_are_six_digits_and_masks_hide_most() {
        for _ in 0..100 {
            let c = random_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(mask(Channel::Email, "ada@example.com"), "a***@example.com");
        assert_eq!(mask(Channel::Sms, "+442079460958"), "+442*******58");
    }
}
