//! One view struct per page; the markup lives in `templates/`.

use askama::Template;

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// Name, logo and colours of the application's organization.
    pub org: &'a crate::store::orgs::Organization,
    pub client_name: &'a str,
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    /// The account is fixed (reauthentication for an `id_token_hint`): the email is read-only.
    pub email_locked: bool,
    pub reauthenticating: bool,
    pub error: Option<&'a str>,
    /// Passkeys are on for the organization and possible here (the issuer has a hostname).
    pub passkeys: bool,
    /// The hinted account holds a passkey: offer it before the password.
    pub passkey_first: bool,
    /// QR cross-device sign-in is on.
    pub qr: bool,
    /// Password / email code / text message code, those the organization enabled.
    pub tabs: Vec<LoginTab>,
    /// The `auth_config` key of the form shown; empty when no form method is on.
    pub active: &'a str,
    /// A one-time code was sent: ask for it.
    pub code: Option<CodeStep>,
    /// The organization's sign-up is open: link to "Create an account".
    pub signup: bool,
    /// One button per enabled upstream provider.
    pub upstream: Vec<UpstreamButton>,
}

pub struct LoginTab {
    pub key: &'static str,
    pub label: &'static str,
    pub href: String,
    pub active: bool,
}

pub struct CodeStep {
    pub challenge: String,
    /// `email` or `sms`.
    pub channel: &'static str,
    pub address: String,
    pub masked: String,
    pub minutes: i64,
}

#[derive(Template)]
#[template(path = "select_account.html")]
pub struct SelectAccountPage<'a> {
    pub client_name: &'a str,
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub email: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub client_name: &'a str,
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub scopes: Vec<&'a str>,
}

/// OAuth 2.0 Form Post Response Mode: a form that a static script submits on load.
#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage<'a> {
    pub action: &'a str,
    pub fields: &'a [(String, String)],
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    pub issuer: &'a str,
    pub demo: bool,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage;

#[derive(Template)]
#[template(path = "logout_confirm.html")]
pub struct LogoutConfirmPage<'a> {
    pub email: &'a str,
    pub client_name: Option<&'a str>,
    pub csrf: &'a str,
    pub client_id: &'a str,
    pub post_logout_redirect_uri: &'a str,
    pub state: &'a str,
}

pub struct SessionView {
    pub id: String,
    pub device: String,
    pub ip: String,
    pub created: String,
    pub last_seen: String,
    pub signed_in: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub email: &'a str,
    /// "Ways to sign in": every method the user holds that the organization offers.
    pub methods: Vec<String>,
    pub passwords_enabled: bool,
    pub has_password: bool,
    /// The last-method rule allows it (a passkey exists).
    pub can_remove_password: bool,
    /// A new address waiting for its code.
    pub pending_email: Option<&'a str>,
    pub csrf: &'a str,
    pub sessions: Vec<SessionView>,
    pub passkeys_enabled: bool,
    pub passkeys: Vec<PasskeyView>,
    pub companions: Vec<CompanionView>,
    pub notice: Option<&'a str>,
    /// Upstream providers linked to the account (README "Upstream identity providers").
    pub upstream_links: Vec<UpstreamLinkView>,
}

pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub authenticator: String,
    pub created: String,
    pub last_used: String,
    pub flagged: bool,
}

#[derive(Template)]
#[template(path = "passkey_offer.html")]
pub struct PasskeyOfferPage<'a> {
    pub csrf: &'a str,
    pub request_id: &'a str,
    pub continue_url: &'a str,
}

/// The phone's view of a QR sign-in: what is asking, and the match code to type.
#[derive(Template)]
#[template(path = "qr_approve.html")]
pub struct QrApprovePage<'a> {
    pub id: &'a str,
    pub csrf: &'a str,
    pub email: &'a str,
    pub client_name: &'a str,
    pub redirect_host: &'a str,
    pub desktop_browser: &'a str,
    pub desktop_ip: &'a str,
    pub phone_ip: &'a str,
    pub network_verdict: &'a str,
    pub new_browser: bool,
    pub started_at: &'a str,
    pub seconds_left: i64,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "qr_decided.html")]
pub struct QrDecidedPage {
    pub approved: bool,
}

#[derive(Template)]
#[template(path = "companion_enroll.html")]
pub struct CompanionEnrollPage<'a> {
    pub code: &'a str,
    pub issuer: &'a str,
    pub minutes: i64,
}

/// A companion app on the account page.
pub struct CompanionView {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

/// The device verification page (RFC 8628 §3.3): code entry, then confirmation, then done.
#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage<'a> {
    pub email: &'a str,
    pub csrf: &'a str,
    /// Prefilled (from `verification_uri_complete`) or typed code shown back in the form.
    pub user_code: &'a str,
    pub error: Option<&'a str>,
    pub confirm: Option<DeviceConfirmView<'a>>,
    pub done: Option<DeviceDoneView>,
}

pub struct DeviceConfirmView<'a> {
    pub client_name: &'a str,
    pub scopes: Vec<&'a str>,
    pub user_code: &'a str,
    /// Where the device asked from and where this page is viewed from, with the same plain
    /// verdict the QR approval page gives.
    pub device_ip: &'a str,
    pub viewer_ip: &'a str,
    pub network_verdict: &'a str,
}

pub struct DeviceDoneView {
    pub title: &'static str,
    pub message: String,
}

/// Account recovery, one step at a time: `start` (ask for a code), `code` (type it), `link`
/// (continue with an admin's link), `new` (set up a new passkey or password).
#[derive(Template)]
#[template(path = "recover.html")]
pub struct RecoverPage<'a> {
    pub step: &'a str,
    pub csrf: &'a str,
    /// The parked sign-in to return to (`start`, `code`).
    pub request: &'a str,
    pub masked: &'a str,
    pub token: &'a str,
    /// The account being recovered (`new`).
    pub email: &'a str,
    pub passkeys: bool,
    pub password: bool,
    pub error: Option<&'a str>,
}

/// The pages of an upstream sign-in that are not the provider's: failures, a link waiting for
/// proof, a link made.
#[derive(Template)]
#[template(path = "upstream.html")]
pub struct UpstreamPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    /// Back to the sign-in page of the same request.
    pub try_again: Option<String>,
    /// On to the application.
    pub continue_to: Option<String>,
}

/// A sign-in button for one upstream provider.
pub struct UpstreamButton {
    pub id: String,
    pub display_name: String,
}

pub struct UpstreamLinkView {
    pub id: String,
    pub provider: String,
    pub email: String,
    pub created: String,
}
