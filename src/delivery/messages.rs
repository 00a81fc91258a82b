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
