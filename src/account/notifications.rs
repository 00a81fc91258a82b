//! Security notifications: a message to the account's address whenever something changes
//! how the account can be signed in to, with the time, the device that acted (its browser
//! and IP address) and a link to the account page to review sessions. Sending runs in the
//! background: a slow or failing mail server never blocks or undoes the change itself.

use std::net::IpAddr;

use askama::Template;
use axum::http::HeaderMap;

use crate::app::App;
use crate::delivery::Channel;

/// What happened, as the message names it.
pub enum Change<'a> {
    PasswordSet,
    PasswordChanged,
    PasswordRemoved,
    PasskeyAdded(&'a str),
    PasskeyRemoved(&'a str),
    DeviceEnrolled(&'a str),
    /// Sent to the old address, naming the new one.
    EmailChanged {
        new: &'a str,
    },
    AccountRecovered,
}

impl Change<'_> {
    fn subject(&self) -> &'static str {
        match self {
            Change::PasswordSet => "A password was added to your account",
            Change::PasswordChanged => "Your password was changed",
            Change::PasswordRemoved => "Your password was removed",
            Change::PasskeyAdded(_) => "A passkey was added to your account",
            Change::PasskeyRemoved(_) => "A passkey was removed from your account",
            Change::DeviceEnrolled(_) => "A device can now approve your sign-ins",
            Change::EmailChanged { .. } => "Your account's email address was changed",
            Change::AccountRecovered => "Your account was recovered",
        }
    }

    fn sentence(&self) -> String {
        match self {
            Change::PasswordSet => "A password was set on your account.".into(),
            Change::PasswordChanged => "The password of your account was changed.".into(),
            Change::PasswordRemoved => "The password of your account was removed; you now sign in with a passkey.".into(),
            Change::PasskeyAdded(name) => format!("A passkey named \"{name}\" was added to your account."),
            Change::PasskeyRemoved(name) => format!("The passkey named \"{name}\" was removed from your account."),
            Change::DeviceEnrolled(name) => format!("The device \"{name}\" was enrolled to approve QR sign-ins for your account."),
            Change::EmailChanged { new } => format!("Your account's email address was changed to {new}. Messages about the account now go there."),
            Change::AccountRecovered => "Your account was recovered with a code or link sent to this address, and a new way to sign in was set up. Every other session was signed out.".into(),
        }
    }
}

/// The browser and address of the request that made the change.
pub struct Device {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl Device {
    pub fn of(headers: &HeaderMap, ip: Option<IpAddr>) -> Device {
        Device {
            user_agent: crate::http::user_agent(headers),
            ip: ip.map(|i| i.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "messages/security_notice.txt")]
struct Notice<'a> {
    sentence: &'a str,
    when: &'a str,
    device: &'a str,
    ip: &'a str,
    review: &'a str,
    issuer: &'a str,
}

/// Subject and body of the message for `change`, made at `at` (Unix seconds).
pub fn message(app: &App, change: &Change<'_>, device: &Device, at: i64) -> (String, String) {
    let sentence = change.sentence();
    let described = device
        .user_agent
        .as_deref()
        .map(crate::http::describe_user_agent)
        .unwrap_or_else(|| "an unknown device".into());
    let review = app.config.endpoint("/account");
    let body = Notice {
        sentence: &sentence,
        when: &utc(at),
        device: &described,
        ip: device.ip.as_deref().unwrap_or("unknown"),
        review: &review,
        issuer: &app.config.issuer,
    }
    .render()
    .unwrap_or_else(|_| format!("{sentence}\n\nReview your sessions at {review}"));
    (change.subject().to_owned(), body)
}

/// Sends the message for `change` to `to` in the background.
pub fn notify(app: &App, to: &str, change: Change<'_>, device: &Device) {
    let (subject, body) = message(app, &change, device, crate::store::now());
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
            tracing::warn!(error = %e, "sending a security notification failed");
        }
    });
}

/// `2026-11-26 11:20 UTC`: a calendar date from Unix seconds (H. Hinnant's `civil_from_days`),
/// so messages need no date library.
fn utc(at: i64) -> String {
    let days = at.div_euclid(86_400);
    let secs = at.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_calendar_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(super::utc(1_795_692_000), "2026-11-26 11:20 UTC");
    }
}
