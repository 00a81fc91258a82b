//! The texts of outgoing messages; the wording lives in `templates/messages/`.

use askama::Template;

use super::Channel;

#[derive(Template)]
#[template(path = "messages/otp_email.txt")]
struct OtpEmail<'a> {
    code: &'a str,
    minutes: i64,
    issuer: &'a str,
}

#[derive(Template)]
#[template(path = "messages/otp_sms.txt")]
struct OtpSms<'a> {
    code: &'a str,
    minutes: i64,
    host: &'a str,
}

/// Subject and body of a one-time code message.
pub fn otp(channel: Channel, code: &str, minutes: i64, issuer: &str) -> (String, String) {
    let subject = format!("Your sign-in code: {code}");
    let body = match channel {
        Channel::Email => OtpEmail {
            code,
            minutes,
            issuer,
        }
        .render(),
        Channel::Sms => OtpSms {
            code,
            minutes,
            host: url::Url::parse(issuer)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .as_deref()
                .unwrap_or(issuer),
        }
        .render(),
    }
    .unwrap_or_else(|_| format!("Your sign-in code is {code}."));
    (subject, body)
}

#[derive(Template)]
#[template(path = "messages/recovery_code.txt")]
struct RecoveryCode<'a> {
    code: &'a str,
    minutes: i64,
    issuer: &'a str,
}

/// Body of a self-service recovery code message.
pub fn recovery_code(code: &str, minutes: i64, issuer: &str) -> String {
    RecoveryCode {
        code,
        minutes,
        issuer,
    }
    .render()
    .unwrap_or_else(|_| format!("Your account recovery code is {code}."))
}

#[derive(Template)]
#[template(path = "messages/recovery_link.txt")]
struct RecoveryLink<'a> {
    link: &'a str,
    minutes: i64,
    issuer: &'a str,
}

/// Body of a recovery link an administrator sent.
pub fn recovery_link(link: &str, minutes: i64, issuer: &str) -> String {
    RecoveryLink {
        link,
        minutes,
        issuer,
    }
    .render()
    .unwrap_or_else(|_| format!("Recover your account: {link}"))
}

#[derive(Template)]
#[template(path = "messages/email_change.txt")]
struct EmailChangeCode<'a> {
    code: &'a str,
    minutes: i64,
    issuer: &'a str,
}

/// Body of the code that proves a new email address.
pub fn email_change_code(code: &str, minutes: i64, issuer: &str) -> String {
    EmailChangeCode {
        code,
        minutes,
        issuer,
    }
    .render()
    .unwrap_or_else(|_| format!("Your confirmation code is {code}."))
}

#[derive(Template)]
#[template(path = "messages/signup_code.txt")]
struct SignupCode<'a> {
    code: &'a str,
    minutes: i64,
    org: &'a str,
    issuer: &'a str,
}

/// The code that proves a new account's address.
pub fn signup_code(code: &str, minutes: i64, org: &str, issuer: &str) -> (String, String) {
    let body = SignupCode {
        code,
        minutes,
        org,
        issuer,
    }
    .render()
    .unwrap_or_else(|_| format!("Your code to create an account is {code}."));
    (format!("Your code to create an account: {code}"), body)
}

#[derive(Template)]
#[template(path = "messages/signup_existing.txt")]
struct SignupExisting<'a> {
    org: &'a str,
    issuer: &'a str,
}

/// To the owner of an address someone tried to sign up with: the page said "check your
/// email" either way, so only the owner learns that the account exists.
pub fn signup_existing(org: &str, issuer: &str) -> (String, String) {
    let body = SignupExisting { org, issuer }
        .render()
        .unwrap_or_else(|_| "Someone tried to create an account with your address.".into());
    (
        "Someone tried to create an account with your address".into(),
        body,
    )
}

#[derive(Template)]
#[template(path = "messages/invitation.txt")]
struct InvitationEmail<'a> {
    org: &'a str,
    link: &'a str,
    days: i64,
    issuer: &'a str,
}

pub fn invitation(org: &str, link: &str, days: i64, issuer: &str) -> (String, String) {
    let body = InvitationEmail {
        org,
        link,
        days,
        issuer,
    }
    .render()
    .unwrap_or_else(|_| format!("You are invited to {org}: {link}"));
    (format!("You are invited to {org}"), body)
}
