//! QR cross-device sign-in (README "QR sign-in"), following the IETF OAuth "Cross-Device
//! Flows: Security Best Current Practice" draft: a short-lived code bound to one browser,
//! claimed by the first phone that scans it, approved there only with the match code typed
//! from the large screen and a recent user verification, and finished by a single-use login
//! grant sealed to a key that only the waiting browser holds.
//!
//! Each step is a function over the store; the HTTP side (`ui::qr`) only parses and renders.

use std::net::IpAddr;

use axum::http::StatusCode;
use serde::Serialize;

use super::Authentication;
use crate::app::App;
use crate::error::Error;
use crate::oidc::authorize::pending::Pending;
use crate::security::jwe::{self, P256Jwk};
use crate::security::{constant_time_eq, digest, random_bytes, random_id, random_secret};
use crate::session::Current;
use crate::store::qr_logins::{self, Approval, QrLoginRow};
use crate::store::users::{self, User};
use crate::store::{self, decode_list, encode_list};

// Lifetimes are settings (`config.qr`): a QR code lives two minutes by default, the phone
// decides within 60 s of scanning, the browser redeems within 30 s of the approval.
/// Wrong match codes before the QR code is refused for good.
pub const MAX_WRONG_CODES: i32 = 3;

/// What the waiting browser learns from a watch or a poll.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Status {
    /// `waiting`, `scanned`, `approved`, `denied`, `expired` or `redeemed`.
    pub state: &'static str,
    /// The code the person types on the phone; shown once a phone has scanned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_code: Option<String>,
    /// The login grant sealed to the browser's key (compact JWE), once approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    pub expires_in: i64,
    #[serde(skip)]
    pub version: i32,
}

pub struct Started {
    pub id: String,
    pub url: String,
    pub expires_in: i64,
}

pub(crate) fn id_hash(id: &str) -> String {
    digest(&format!("qr:{id}"))
}

/// A uniformly random three-digit code (rejection sampling keeps it unbiased).
fn match_code() -> String {
    loop {
        let n = u16::from_be_bytes(random_bytes::<2>());
        if n < 64_000 {
            return format!("{:03}", n % 1000);
        }
    }
}

/// Creates a QR code for a parked request of this browser, sealed later to `key`.
pub async fn start(
    app: &App,
    browser: &str,
    pending: &Pending,
    key: &P256Jwk,
    user_agent: Option<String>,
    ip: Option<IpAddr>,
) -> Result<Started, Error> {
    if !key.is_valid() {
        return Err(Error::invalid_request(
            "key must be a P-256 public key as a JWK",
        ));
    }
    let id = random_id();
    let now = store::now();
    let row = QrLoginRow {
        id_hash: id_hash(&id),
        browser_hash: digest(browser),
        request_id: pending.id.clone(),
        client_id: pending.request.client_id.clone(),
        browser_key: serde_json::to_string(key).map_err(|e| Error::Internal(e.to_string()))?,
        desktop_user_agent: user_agent,
        desktop_ip: ip.map(|i| i.to_string()),
        state: qr_logins::WAITING.into(),
        match_code: match_code(),
        claimed_by: None,
        claimed_at: None,
        phone_user_agent: None,
        phone_ip: None,
        wrong_codes: 0,
        user_id: None,
        approved_amr: None,
        grant_hash: None,
        sealed_grant: None,
        grant_expires_at: None,
        version: 0,
        created_at: now,
        expires_at: now + app.config.qr.code_ttl_secs,
    };
    qr_logins::insert(&app.store, &row).await?;
    Ok(Started {
        url: app.config.endpoint(&format!("/qr/{id}")),
        id,
        expires_in: app.config.qr.code_ttl_secs,
    })
}

fn not_yours() -> Error {
    Error::page(
        StatusCode::NOT_FOUND,
        "QR code not found",
        "This QR code has expired or belongs to another browser. Start again from the sign-in page.",
    )
}

/// The row of the QR code `id` (from a URL, so of any length); "not found" when there is none.
pub(crate) async fn find(app: &App, id: &str) -> Result<QrLoginRow, Error> {
    if id.len() > 64 {
        return Err(not_yours());
    }
    qr_logins::find(&app.store, &id_hash(id))
        .await?
        .ok_or_else(not_yours)
}

/// The row of a QR code for the browser that created it; any other browser gets "not found".
pub async fn for_browser(app: &App, id: &str, browser: &str) -> Result<QrLoginRow, Error> {
    let row = find(app, id).await?;
    if !constant_time_eq(row.browser_hash.as_bytes(), digest(browser).as_bytes()) {
        return Err(not_yours());
    }
    Ok(row)
}

pub fn status(row: &QrLoginRow, now: i64) -> Status {
    let live = row.expires_at > now;
    let state = match row.state.as_str() {
        qr_logins::REDEEMED => "redeemed",
        qr_logins::DENIED => "denied",
        _ if !live => "expired",
        qr_logins::CLAIMED => "scanned",
        qr_logins::APPROVED => "approved",
        _ => "waiting",
    };
    Status {
        state,
        match_code: (state == "scanned").then(|| row.match_code.clone()),
        grant: if state == "approved" {
            row.sealed_grant.clone()
        } else {
            None
        },
        expires_in: (row.expires_at - now).max(0),
        version: row.version,
    }
}

/// The key watchers of one QR code listen for (see `store::notifications`).
pub fn watch_key(row: &QrLoginRow) -> String {
    format!("qr:{}", row.id_hash)
}

/// Who decides on the phone side: a signed-in browser session, or an enrolled companion app
/// whose request was signed with its device key (`authn::device`).
pub enum Approver<'a> {
    Session(&'a Current),
    Device {
        device: &'a crate::store::devices::DeviceRow,
        user: &'a User,
    },
}

impl Approver<'_> {
    /// What the QR row records as its claimant.
    fn claimant(&self) -> String {
        match self {
            Approver::Session(current) => current.session.id.clone(),
            Approver::Device { device, .. } => format!("device:{}", device.id),
        }
    }

    fn user(&self) -> &User {
        match self {
            Approver::Session(current) => &current.user,
            Approver::Device { user, .. } => user,
        }
    }

    /// A session must have verified the user within five minutes; a device proves itself by
    /// its signature on this very request (the app does its own local user check).
    fn verified_recently(&self, now: i64) -> bool {
        match self {
            Approver::Session(current) => recently_verified(current, now),
            Approver::Device { .. } => true,
        }
    }

    /// RFC 8176 for what the approver proved: the session's methods, or `swk` (proof of
    /// possession of a software-held key) for a device.
    fn amr(&self) -> Vec<String> {
        match self {
            Approver::Session(current) => decode_list(&current.session.amr).unwrap_or_default(),
            Approver::Device { .. } => vec!["swk".into()],
        }
    }
}

/// True when this browser's own sign-in proved presence recently enough to approve a sign-in
/// elsewhere or enroll a companion app: a password, or a passkey with user verification
/// (`user`), within five minutes. A session that itself came from a QR approval (`mca`) never
/// counts: otherwise a relayed (phished) QR login could approve further QR logins or enroll a
/// device key of the attacker's, turning one phished sign-in into lasting access.
pub fn recently_verified(current: &Current, now: i64) -> bool {
    let amr = decode_list(&current.session.amr).unwrap_or_default();
    now - current.session.auth_time <= super::RECENT_AUTH_SECS
        && !amr.iter().any(|m| m == "mca")
        && amr.iter().any(|m| m == "pwd" || m == "user")
}

/// What the phone sees before deciding.
pub struct Context {
    pub row: QrLoginRow,
    pub client_name: String,
    pub redirect_host: String,
    pub desktop_browser: String,
    pub desktop_ip: String,
    pub phone_ip: String,
    pub network_verdict: &'static str,
    pub new_browser: bool,
    pub seconds_left: i64,
}

pub enum Scan {
    /// This phone holds the QR code (now or from an earlier scan): show the context.
    Claimed(Box<Context>),
    /// The phone must verify the user again first (then scan again).
    NeedsVerification,
}

fn refused(title: &str, message: &str) -> Error {
    Error::page(StatusCode::CONFLICT, title, message)
}

/// The first scan claims the QR code for this phone session; any other phone is refused.
pub async fn scan(
    app: &App,
    id: &str,
    phone: &Approver<'_>,
    user_agent: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<Scan, Error> {
    let now = store::now();
    let mut row = find(app, id).await?;
    let claimant = phone.claimant();
    let mine = row.claimed_by.as_deref() == Some(claimant.as_str());
    if row.state == qr_logins::WAITING {
        if row.expires_at <= now {
            return Err(expired());
        }
        // Sessions and accounts belong to one organization: a phone signed in to another
        // organization cannot sign anyone in to this application.
        let client_org = store::clients::find(&app.store, &row.client_id)
            .await?
            .map(|c| c.org_id);
        if client_org.as_deref() != Some(phone.user().org_id.as_str()) {
            return Err(refused(
                "Different organization",
                "This QR code is for an application of another organization. Your account there cannot approve it.",
            ));
        }
        // Verify before claiming, so the decision window starts after the verification.
        if !phone.verified_recently(now) {
            return Ok(Scan::NeedsVerification);
        }
        let ip_text = ip.map(|i| i.to_string());
        if !qr_logins::claim(
            &app.store,
            &row.id_hash,
            &claimant,
            user_agent,
            ip_text.as_deref(),
            now,
        )
        .await?
        {
            return Err(already_scanned());
        }
        app.changes.publish(&app.store, &watch_key(&row)).await?;
        // What the claim wrote, without reading the row back.
        row.state = qr_logins::CLAIMED.into();
        row.claimed_by = Some(claimant);
        row.claimed_at = Some(now);
        row.phone_ip = ip_text;
        row.phone_user_agent = user_agent.map(str::to_owned);
    } else if !(mine && row.state == qr_logins::CLAIMED) {
        return Err(match row.state.as_str() {
            qr_logins::CLAIMED => already_scanned(),
            _ => refused(
                "QR code already used",
                "This QR code has already been used. Start again on the other screen.",
            ),
        });
    }
    Ok(Scan::Claimed(Box::new(
        context(app, row, phone, now).await?,
    )))
}

fn already_scanned() -> Error {
    refused(
        "QR code already scanned",
        "Another device already scanned this QR code. If that was not you, do not continue: start again on the other screen.",
    )
}

fn expired() -> Error {
    Error::page(
        StatusCode::GONE,
        "QR code expired",
        "This QR code has expired. Start again on the other screen.",
    )
}

async fn context(
    app: &App,
    row: QrLoginRow,
    phone: &Approver<'_>,
    now: i64,
) -> Result<Context, Error> {
    let client = store::clients::find(&app.store, &row.client_id).await?;
    let (client_name, redirect_host) = match &client {
        Some(c) => (
            c.name.clone(),
            c.redirect_uris
                .first()
                .and_then(|u| url::Url::parse(u).ok())
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default(),
        ),
        None => ("an application".into(), String::new()),
    };
    let desktop_browser = row
        .desktop_user_agent
        .as_deref()
        .map(crate::http::describe_user_agent)
        .unwrap_or_else(|| "an unknown browser".into());
    let own_session = match phone {
        Approver::Session(current) => Some(current.session.id.as_str()),
        Approver::Device { .. } => None,
    };
    let sessions = store::sessions::list_live_for_user(&app.store, &phone.user().id, now).await?;
    let new_browser = !sessions.iter().any(|s| {
        Some(s.id.as_str()) != own_session
            && s.user_agent.is_some()
            && s.user_agent == row.desktop_user_agent
    });
    let desktop_ip = row.desktop_ip.clone().unwrap_or_default();
    let phone_ip = row.phone_ip.clone().unwrap_or_default();
    let network_verdict = network_verdict(&desktop_ip, &phone_ip);
    let decide_by = row.claimed_at.unwrap_or(now) + app.config.qr.decide_within_secs;
    Ok(Context {
        seconds_left: (decide_by.min(row.expires_at) - now).max(0),
        row,
        client_name,
        redirect_host,
        desktop_browser,
        desktop_ip,
        phone_ip,
        network_verdict,
        new_browser,
    })
}

/// A plain verdict on where the two devices are: the same address or the same local
/// network (IPv4 /24, IPv6 /64) is what a person standing at their own screen expects.
pub fn network_verdict(desktop: &str, phone: &str) -> &'static str {
    match (desktop.parse::<IpAddr>(), phone.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) if a == b => "Both devices are on the same network.",
        (Ok(IpAddr::V4(a)), Ok(IpAddr::V4(b))) if a.octets()[..3] == b.octets()[..3] => {
            "Both devices are on the same network."
        }
        (Ok(IpAddr::V6(a)), Ok(IpAddr::V6(b))) if a.segments()[..4] == b.segments()[..4] => {
            "Both devices are on the same network."
        }
        (Ok(_), Ok(_)) => {
            "The other screen is on a different network from this phone. Be careful: someone may have sent you their code."
        }
        _ => "The other screen's network is unknown.",
    }
}

pub enum Decision<'a> {
    Approve { typed_code: &'a str },
    Deny,
}

pub enum Decided {
    Approved,
    Denied,
    /// The typed code was wrong; `tries_left` more are allowed (0: the code was refused).
    WrongCode {
        tries_left: i32,
    },
}

/// The phone's decision. Approval needs the phone that claimed the code, a recent user
/// verification, the match code typed from the large screen, and to come within
/// `config.qr.decide_within_secs` of the scan.
pub async fn decide(
    app: &App,
    id: &str,
    phone: &Approver<'_>,
    decision: Decision<'_>,
) -> Result<Decided, Error> {
    let now = store::now();
    let row = find(app, id).await?;
    let hash = row.id_hash.clone();
    let claimant = phone.claimant();
    if row.claimed_by.as_deref() != Some(claimant.as_str()) || row.state != qr_logins::CLAIMED {
        return Err(refused(
            "QR code not available",
            "This QR code is not waiting for this phone's decision. Start again on the other screen.",
        ));
    }
    let key = watch_key(&row);
    let typed_code = match decision {
        Decision::Deny => {
            qr_logins::deny(&app.store, &hash, &claimant).await?;
            app.changes.publish(&app.store, &key).await?;
            return Ok(Decided::Denied);
        }
        Decision::Approve { typed_code } => typed_code,
    };
    if row.expires_at <= now || row.claimed_at.unwrap_or(0) + app.config.qr.decide_within_secs < now
    {
        return Err(expired());
    }
    if !phone.verified_recently(now) {
        return Err(Error::page(
            StatusCode::FORBIDDEN,
            "Confirm it's you first",
            "Approving a sign-in needs a recent sign-in on this phone. Sign in again, then scan a new QR code.",
        ));
    }
    let typed: String = typed_code.chars().filter(|c| c.is_ascii_digit()).collect();
    if !constant_time_eq(typed.as_bytes(), row.match_code.as_bytes()) {
        let refused =
            qr_logins::record_wrong_code(&app.store, &hash, &claimant, MAX_WRONG_CODES).await?;
        if refused {
            app.changes.publish(&app.store, &key).await?;
        }
        let tries_left = if refused {
            0
        } else {
            (MAX_WRONG_CODES - row.wrong_codes - 1).max(1)
        };
        return Ok(Decided::WrongCode { tries_left });
    }
    let grant = random_secret();
    let browser_key: P256Jwk = serde_json::from_str(&row.browser_key)
        .map_err(|e| Error::Internal(format!("stored QR key: {e}")))?;
    // The QR id is bound into the key agreement (`apv`), so a grant sealed for one QR
    // session cannot be presented for another.
    let sealed = jwe::seal(&browser_key, id.as_bytes(), grant.as_bytes())
        .ok_or_else(|| Error::Internal("sealing the QR login grant failed".into()))?;
    let amr = approval_amr(&phone.amr());
    let approved = qr_logins::approve(
        &app.store,
        &hash,
        &claimant,
        &Approval {
            user_id: &phone.user().id,
            amr: &encode_list(&amr),
            grant_hash: &digest(&grant),
            sealed_grant: &sealed,
            grant_expires_at: now + app.config.qr.grant_ttl_secs,
        },
        now,
    )
    .await?;
    if !approved {
        return Err(expired());
    }
    app.changes.publish(&app.store, &key).await?;
    Ok(Decided::Approved)
}

/// RFC 8176 for a QR approval: `mca` (multiple-channel authentication: the approval came
/// over a second device) followed by what the phone's own sign-in proved.
pub fn approval_amr(phone_amr: &[String]) -> Vec<String> {
    let mut amr = vec!["mca".to_owned()];
    for m in phone_amr {
        if !amr.contains(m) {
            amr.push(m.clone());
        }
    }
    amr
}

/// Redeems the login grant from the browser that created the QR code, once. Returns the
/// approving user and what the sign-in proved.
pub async fn redeem(
    app: &App,
    id: &str,
    browser: &str,
    pending: &Pending,
    grant: &str,
) -> Result<(User, Authentication), Error> {
    let invalid = || {
        Error::page(
            StatusCode::BAD_REQUEST,
            "Sign-in not completed",
            "This approval is not valid for this browser, has expired or was already used. Start again.",
        )
    };
    let row = for_browser(app, id, browser).await?;
    if row.request_id != pending.id || grant.len() > 64 {
        return Err(invalid());
    }
    if !qr_logins::redeem(&app.store, &row.id_hash, &digest(grant), store::now()).await? {
        return Err(invalid());
    }
    app.changes.publish(&app.store, &watch_key(&row)).await?;
    let user = match &row.user_id {
        Some(id) => users::find(&app.store, id).await?,
        None => None,
    }
    .filter(|u| !u.disabled)
    .ok_or_else(invalid)?;
    let amr = decode_list(row.approved_amr.as_deref().unwrap_or("[]")).unwrap_or_default();
    // A QR approval can be relayed by a phisher (README "QR sign-in"): never the
    // phishing-resistant level, whatever the phone used.
    Ok((
        user,
        Authentication {
            amr,
            acr: super::ACR_SINGLE_FACTOR,
            at: None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_codes_are_three_digits() {
        for _ in 0..200 {
            let code = match_code();
            assert_eq!(code.len(), 3);
            assert!(code.chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn the_approval_amr_leads_with_mca_and_keeps_the_phone_methods() {
        let amr = approval_amr(&["hwk".into(), "user".into(), "mfa".into()]);
        assert_eq!(amr, ["mca", "hwk", "user", "mfa"]);
    }

    #[test]
    fn network_verdicts() {
        assert!(network_verdict("10.0.0.1", "10.0.0.1").contains("same network"));
        assert!(network_verdict("10.0.0.1", "10.0.0.9").contains("same network"));
        assert!(network_verdict("10.0.0.1", "192.0.2.1").contains("different network"));
        assert!(network_verdict("", "192.0.2.1").contains("unknown"));
    }
}
