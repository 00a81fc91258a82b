//! The admin console at `/admin`: server-rendered pages where an organization's admins (users
//! whose role is `admin`) choose its sign-in methods and branding, manage its clients,
//! upstream sign-in providers and users, and read its audit log.
//!
//! Like the account page, the console signs people in through Tessera itself. Sessions
//! belong to one organization and a client only accepts sessions of its own, so each
//! organization gets a first-party console client (`tessera-admin-<org id>`), created on
//! demand by `/admin/login?org=<slug>`. The console always shows the organization of the
//! current session; every change is made as `user:<id>` scoped to that organization, and
//! every id a form names is checked to belong to it.

use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::account::when;
use crate::admin::upstream::{self, ProviderInput};
use crate::admin::{Actor, AdminError};
use crate::admin::{clients, users};
use crate::app::{App, AppState};
use crate::authn::methods::{AuthConfig, Method, SignupMode};
use crate::authn::upstream::Kind;
use crate::error::{Error, PageError};
use crate::http::params::Params;
use crate::oidc::authorize::response::redirect;
use crate::security::{b64url, constant_time_eq, hmac_sha256, random_secret};
use crate::session;
use crate::store::orgs::{self, Organization};
use crate::store::users::{ROLE_ADMIN, ROLE_MEMBER, User};

/// Console clients are `tessera-admin-<org id>`; every `tessera-*` client is Tessera's own and
/// is neither listed nor deletable in the console.
const CONSOLE_CLIENT_PREFIX: &str = "tessera-admin-";
const INTERNAL_CLIENT_PREFIX: &str = "tessera-";
const AUDIT_ENTRIES: i64 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(methods_page))
        .route("/admin/login", get(login))
        .route("/admin/callback", get(callback))
        .route("/admin/methods", post(save_methods))
        .route("/admin/branding", post(save_branding))
        .route("/admin/clients", get(clients_page).post(create_client))
        .route("/admin/clients/delete", post(delete_client))
        .route("/admin/providers", get(providers_page).post(save_provider))
        .route("/admin/providers/delete", post(delete_provider))
        .route("/admin/users", get(users_page).post(create_user))
        .route("/admin/users/invite", post(invite_user))
        .route("/admin/users/disable", post(disable_user))
        .route("/admin/users/enable", post(enable_user))
        .route("/admin/users/role", post(set_role))
        .route("/admin/users/recover", post(send_recovery))
        .route("/admin/audit", get(audit_page))
}

pub fn console_client_id(org_id: &str) -> String {
    format!("{CONSOLE_CLIENT_PREFIX}{org_id}")
}

fn csrf(app: &App, session_id: &str) -> String {
    b64url(&hmac_sha256(
        &app.instance_key,
        format!("admin-csrf:{session_id}").as_bytes(),
    ))
}

/// The signed-in admin, their organization, and the actor their changes are recorded under.
struct Admin {
    user: User,
    org: Organization,
    actor: Actor,
    csrf: String,
}

fn not_signed_in() -> Error {
    Error::page(
        StatusCode::UNAUTHORIZED,
        "Not signed in",
        "You are not signed in to Tessera in this browser. Open /admin/login to sign in.",
    )
}

fn not_found(what: &str) -> Error {
    Error::page(
        StatusCode::NOT_FOUND,
        "Not found",
        format!("There is no such {what} in this organization."),
    )
}

/// An admin operation's refusal as a plain page with the matching status.
fn refused(e: AdminError) -> Error {
    match e {
        AdminError::Forbidden(m) => Error::page(StatusCode::FORBIDDEN, "Not allowed", m),
        AdminError::NotFound(m) => Error::page(StatusCode::NOT_FOUND, "Not found", m),
        AdminError::Invalid(m) => Error::bad_request_page("Not saved", m),
        AdminError::Conflict(m) => Error::page(StatusCode::CONFLICT, "Not saved", m),
        AdminError::Store(e) => e.into(),
    }
}

/// The admin of this browser's session; `None` without a session, a 403 page when its user
/// does not administer the session's organization.
async fn current_admin(
    app: &App,
    headers: &HeaderMap,
    ip: SocketAddr,
) -> Result<Option<Admin>, Error> {
    let Some(current) = session::current(app, headers).await? else {
        return Ok(None);
    };
    let org = orgs::find(&app.store, &current.session.org_id)
        .await?
        .ok_or_else(not_signed_in)?;
    if current.user.role != ROLE_ADMIN || current.user.org_id != org.id {
        return Err(Error::page(
            StatusCode::FORBIDDEN,
            "Not an administrator",
            format!(
                "Your account is not an administrator of {}. Ask one of its administrators to make you one.",
                org.name
            ),
        ));
    }
    Ok(Some(Admin {
        actor: Actor {
            name: format!("user:{}", current.user.id),
            org_id: Some(org.id.clone()),
            ip: Some(ip.ip().to_string()),
        },
        csrf: csrf(app, &current.session.id),
        user: current.user,
        org,
    }))
}

/// The admin behind a form post, which must carry the console's CSRF token.
async fn checked(
    app: &App,
    headers: &HeaderMap,
    ip: SocketAddr,
    body: &[u8],
) -> Result<(Admin, Params), Error> {
    let params = Params::parse(body);
    let admin = current_admin(app, headers, ip)
        .await?
        .ok_or_else(not_signed_in)?;
    let token = params.get("csrf").unwrap_or("");
    if !constant_time_eq(admin.csrf.as_bytes(), token.as_bytes()) {
        return Err(Error::page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "Reload the admin console and try again.",
        ));
    }
    Ok((admin, params))
}

// ---- Sign-in -----------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct LoginQuery {
    org: Option<String>,
}

/// Signs in to the console of an organization through the ordinary authorization endpoint,
/// with that organization's console client. Only the session matters, so the code at the
/// callback is not exchanged.
async fn login(
    State(app): State<AppState>,
    Query(q): Query<LoginQuery>,
) -> Result<Response, PageError> {
    let org = match q.org.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => app.default_org.clone(),
        Some(slug) => orgs::find_by_slug(&app.store, slug)
            .await?
            .ok_or_else(|| not_found("organization"))?,
    };
    let client_id = console_client_id(&org.id);
    super::account::ensure_first_party_client(
        &app,
        &client_id,
        &org.id,
        &format!("{} admin console", org.name),
        "/admin/callback",
    )
    .await
    .map_err(Error::Internal)?;
    let verifier = random_secret();
    let mut url = url::Url::parse(&app.config.endpoint("/authorize")).expect("issuer URL");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &app.config.endpoint("/admin/callback"))
        .append_pair("scope", "openid")
        .append_pair(
            "code_challenge",
            &crate::oidc::authorize::pkce::s256(&verifier),
        )
        .append_pair("code_challenge_method", "S256");
    Ok(redirect(url.as_str()))
}

async fn callback(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    match session::current(&app, &headers).await? {
        Some(_) => Ok(redirect("/admin")),
        None => Err(not_signed_in().into()),
    }
}

// ---- Sign-in methods and branding --------------------------------------------------------

pub struct MethodView {
    pub key: &'static str,
    pub label: &'static str,
    pub enabled: bool,
}

#[derive(Template)]
#[template(path = "admin/methods.html")]
pub struct MethodsPage<'a> {
    pub org_name: &'a str,
    pub admin_email: &'a str,
    pub csrf: &'a str,
    pub section: &'a str,
    pub methods: Vec<MethodView>,
    pub email_otp_reauth: bool,
    pub phone_otp_reauth: bool,
    pub signup_mode: &'static str,
    pub signup_domains: String,
    pub passkeys_available: bool,
    pub methods_error: Option<&'a str>,
    pub branding_name: &'a str,
    pub logo_url: &'a str,
    pub primary_color: &'a str,
    pub branding_error: Option<&'a str>,
    pub notice: Option<&'a str>,
}

/// What the methods page shows: the stored values, or a refused form as it was submitted.
struct MethodsForm<'a> {
    config: AuthConfig,
    methods_error: Option<&'a str>,
    branding: (String, String, String),
    branding_error: Option<&'a str>,
}

fn render_methods(
    app: &App,
    admin: &Admin,
    status: StatusCode,
    form: MethodsForm<'_>,
    notice: Option<&str>,
) -> Response {
    let methods = Method::ALL
        .into_iter()
        .map(|m| MethodView {
            key: m.key(),
            label: m.label(),
            enabled: form.config.enabled(m),
        })
        .collect();
    super::render_status(
        status,
        &MethodsPage {
            org_name: &admin.org.name,
            admin_email: &admin.user.email,
            csrf: &admin.csrf,
            section: "methods",
            methods,
            email_otp_reauth: form.config.email_otp.counts_for_reauthentication,
            phone_otp_reauth: form.config.phone_otp.counts_for_reauthentication,
            signup_mode: form.config.signup.mode.key(),
            signup_domains: form.config.signup.allowed_domains.join(", "),
            passkeys_available: app.passkeys.is_some(),
            methods_error: form.methods_error,
            branding_name: &form.branding.0,
            logo_url: &form.branding.1,
            primary_color: &form.branding.2,
            branding_error: form.branding_error,
            notice,
        },
    )
}

fn stored_branding(org: &Organization) -> (String, String, String) {
    (
        org.name.clone(),
        org.logo_url.clone().unwrap_or_default(),
        org.primary_color.clone().unwrap_or_default(),
    )
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

fn notice_text(key: Option<&str>) -> Option<&'static str> {
    match key? {
        "methods-saved" => Some("Sign-in methods saved."),
        "branding-saved" => Some("Branding saved."),
        "client-deleted" => Some("The client was deleted."),
        "provider-saved" => Some("The sign-in provider was saved."),
        "provider-deleted" => Some("The sign-in provider was deleted."),
        "user-created" => Some("The user was created."),
        "invitation-sent" => Some("The invitation was sent. Its link works once, for 7 days."),
        "user-updated" => Some("The user was updated."),
        "recovery-sent" => Some("A recovery link was sent to the user's email address."),
        _ => None,
    }
}

async fn methods_page(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let Some(admin) = current_admin(&app, &headers, ip).await? else {
        return Ok(redirect("/admin/login"));
    };
    let form = MethodsForm {
        config: admin.org.auth_config()?,
        methods_error: None,
        branding: stored_branding(&admin.org),
        branding_error: None,
    };
    Ok(render_methods(
        &app,
        &admin,
        StatusCode::OK,
        form,
        notice_text(q.notice.as_deref()),
    ))
}

/// The configuration a methods form describes: a checkbox is on when it is sent at all.
fn config_from_form(params: &Params) -> AuthConfig {
    let on = |name: &str| params.get(name).is_some();
    let mut config = AuthConfig::default();
    for m in Method::ALL {
        config.set_enabled(m, on(m.key()));
    }
    config.email_otp.counts_for_reauthentication = on("email_otp_reauth");
    config.phone_otp.counts_for_reauthentication = on("phone_otp_reauth");
    config.signup.mode = params
        .get("signup_mode")
        .and_then(SignupMode::from_key)
        .unwrap_or_default();
    config.signup.allowed_domains = params
        .get("signup_domains")
        .unwrap_or("")
        .split([',', ' ', '\n'])
        .filter(|d| !d.trim().is_empty())
        .map(str::to_owned)
        .collect();
    config
}

async fn save_methods(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (admin, params) = checked(&app, &headers, ip, &body).await?;
    let config = config_from_form(&params);
    match crate::admin::orgs::set_auth_config(
        &app.store,
        &admin.actor,
        &admin.org.id,
        &config,
        app.passkeys.is_some(),
    )
    .await
    {
        Ok(()) => Ok(redirect("/admin?notice=methods-saved")),
        // The lock-out guard: show why, with the form as it was submitted.
        Err(AdminError::Invalid(message)) => Ok(render_methods(
            &app,
            &admin,
            StatusCode::BAD_REQUEST,
            MethodsForm {
                config,
                methods_error: Some(&message),
                branding: stored_branding(&admin.org),
                branding_error: None,
            },
            None,
        )),
        Err(e) => Err(refused(e).into()),
    }
}

async fn save_branding(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (admin, params) = checked(&app, &headers, ip, &body).await?;
    let name = params.get("name").unwrap_or("");
    let logo_url = params.get("logo_url").unwrap_or("");
    let colour = params.get("primary_color").unwrap_or("");
    match crate::admin::orgs::set_branding(
        &app.store,
        &admin.actor,
        &admin.org.id,
        name,
        Some(logo_url),
        Some(colour),
    )
    .await
    {
        Ok(()) => Ok(redirect("/admin?notice=branding-saved")),
        Err(AdminError::Invalid(message)) => Ok(render_methods(
            &app,
            &admin,
            StatusCode::BAD_REQUEST,
            MethodsForm {
                config: admin.org.auth_config()?,
                methods_error: None,
                branding: (name.to_owned(), logo_url.to_owned(), colour.to_owned()),
                branding_error: Some(&message),
            },
            None,
        )),
        Err(e) => Err(refused(e).into()),
    }
}

// ---- Clients -----------------------------------------------------------------------------

pub struct ClientView {
    pub id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub public: bool,
    pub created: String,
}

/// A client just created: its secret is shown this once.
pub struct CreatedClient {
    pub id: String,
    pub secret: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/clients.html")]
pub struct ClientsPage<'a> {
    pub org_name: &'a str,
    pub admin_email: &'a str,
    pub csrf: &'a str,
    pub section: &'a str,
    pub clients: Vec<ClientView>,
    pub created: Option<CreatedClient>,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    /// The create form as submitted, when it was refused.
    pub form_name: &'a str,
    pub form_redirect_uris: &'a str,
    pub form_public: bool,
}

struct ClientsForm<'a> {
    created: Option<CreatedClient>,
    error: Option<&'a str>,
    name: &'a str,
    redirect_uris: &'a str,
    public: bool,
}

async fn render_clients(
    app: &App,
    admin: &Admin,
    status: StatusCode,
    form: ClientsForm<'_>,
    notice: Option<&str>,
) -> Result<Response, Error> {
    let clients = clients::list(&app.store, &admin.actor, &admin.org.id)
        .await
        .map_err(refused)?
        .into_iter()
        .filter(|c| !c.id.starts_with(INTERNAL_CLIENT_PREFIX))
        .map(|c| ClientView {
            public: c.is_public(),
            created: when(c.created_at),
            id: c.id,
            name: c.name,
            redirect_uris: c.redirect_uris,
        })
        .collect();
    Ok(super::render_status(
        status,
        &ClientsPage {
            org_name: &admin.org.name,
            admin_email: &admin.user.email,
            csrf: &admin.csrf,
            section: "clients",
            clients,
            created: form.created,
            error: form.error,
            notice,
            form_name: form.name,
            form_redirect_uris: form.redirect_uris,
            form_public: form.public,
        },
    ))
}

const EMPTY_CLIENTS_FORM: ClientsForm<'static> = ClientsForm {
    created: None,
    error: None,
    name: "",
    redirect_uris: "",
    public: false,
};

async fn clients_page(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let Some(admin) = current_admin(&app, &headers, ip).await? else {
        return Ok(redirect("/admin/login"));
    };
    Ok(render_clients(
        &app,
        &admin,
        StatusCode::OK,
        EMPTY_CLIENTS_FORM,
        notice_text(q.notice.as_deref()),
    )
    .await?)
}

async fn create_client(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (admin, params) = checked(&app, &headers, ip, &body).await?;
    let name = params.get("name").unwrap_or("");
    let uris_text = params.get("redirect_uris").unwrap_or("");
    let redirect_uris: Vec<String> = uris_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let public = params.get("public").is_some();
    match clients::create(
        &app.store,
        &admin.actor,
        &admin.org.id,
        crate::admin::NewClient {
            org_id: &admin.org.id,
            name,
            redirect_uris: &redirect_uris,
            post_logout_redirect_uris: &[],
            public,
            id: None,
            secret: None,
            backchannel_logout_uri: None,
        },
    )
    .await
    {
        // Rendered, not redirected: the secret exists only in this response.
        Ok((id, secret)) => Ok(render_clients(
            &app,
            &admin,
            StatusCode::OK,
            ClientsForm {
                created: Some(CreatedClient { id, secret }),
                ..EMPTY_CLIENTS_FORM
            },
            None,
        )
        .await?),
        Err(AdminError::Invalid(message) | AdminError::Conflict(message)) => Ok(render_clients(
            &app,
            &admin,
            StatusCode::BAD_REQUEST,
            ClientsForm {
                created: None,
                error: Some(&message),
                name,
                redirect_uris: uris_text,
                public,
            },
            None,
        )
        .await?),
        Err(e) => Err(refused(e).into()),
    }
}

async fn delete_client(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (admin, params) = checked(&app, &headers, ip, &body).await?;
    let id = params.get("id").unwrap_or("");
    // Tessera's own clients (this console's among them) are not the admin's to delete.
    if id.starts_with(INTERNAL_CLIENT_PREFIX) {
        return Err(not_found("client").into());
    }
    clients::delete(&app.store, &admin.actor, &admin.org.id, id)
        .await
        .map_err(refused)?;
    Ok(redirect("/admin/clients?notice=client-deleted"))
}

// ---- Upstream sign-in providers ----------------------------------------------------------

pub struct ProviderView {
    pub id: String,
    pub kind: &'static str,
    pub display_name: String,
    pub issuer: String,
    pub client_id: String,
    pub scopes: String,
    pub secret_set: bool,
    pub enabled: bool,
    pub trusted_for_email: bool,
    pub create_accounts: bool,
    pub reauthenticate_upstream: bool,
}

#[derive(Template)]
#[template(path = "admin/providers.html")]
pub struct ProvidersPage<'a> {
    pub org_name: &'a str,
    pub admin_email: &'a str,
    pub csrf: &'a str,
    pub section: &'a str,
    pub providers: Vec<ProviderView>,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
}

fn kind_key(kind: Kind) -> &'static str {
    match kind {
        Kind::Google => "google",
        Kind::Auth0 => "auth0",
        Kind::Oidc => "oidc",
    }
}

async fn render_providers(
    app: &App,
    admin: &Admin,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
) -> Result<Response, Error> {
    let providers = upstream::list(&app.store, &admin.actor, &admin.org.id)
        .await
        .map_err(refused)?
        .into_iter()
        .map(|p| ProviderView {
            kind: kind_key(p.kind),
            scopes: p.scopes.join(" "),
            secret_set: p.client_secret_sealed.is_some(),
            id: p.id,
            display_name: p.display_name,
            issuer: p.issuer,
            client_id: p.client_id,
            enabled: p.enabled,
            trusted_for_email: p.trusted_for_email,
            create_accounts: p.create_accounts,
            reauthenticate_upstream: p.reauthenticate_upstream,
        })
        .collect();
    Ok(super::render_status(
        status,
        &ProvidersPage {
            org_name: &admin.org.name,
            admin_email: &admin.user.email,
            csrf: &admin.csrf,
            section: "providers",
            providers,
            error,
            notice,
        },
    ))
}

async fn providers_page(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let Some(admin) = current_admin(&app, &headers, ip).await? else {
        return Ok(redirect("/admin/login"));
    };
    Ok(render_providers(
        &app,
        &admin,
        StatusCode::OK,
        None,
        notice_text(q.notice.as_deref()),
    )
    .await?)
}

/// The provider a form describes. The secret field left empty keeps the stored secret (a
/// browser cannot show it back); `remove_secret` makes the provider a public client.
fn provider_from_form(params: &Params) -> Result<ProviderInput, String> {
    let on = |name: &str| params.get(name).is_some();
    let kind = match params.get("kind").unwrap_or("") {
        "google" => Kind::Google,
        "auth0" => Kind::Auth0,
        "oidc" => Kind::Oidc,
        _ => return Err("choose the kind of provider: google, auth0 or oidc".into()),
    };
    let client_secret = match params.get("client_secret").unwrap_or("") {
        _ if on("remove_secret") => Some(String::new()),
        "" => None,
        secret => Some(secret.to_owned()),
    };
    let scopes: Vec<String> = params
        .get("scopes")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    Ok(ProviderInput {
        kind,
        display_name: params.get("display_name").unwrap_or("").to_owned(),
        issuer: params.get("issuer").unwrap_or("").to_owned(),
        client_id: params.get("client_id").unwrap_or("").to_owned(),
        client_secret,
        scopes: if scopes.is_empty() {
            crate::authn::upstream::default_scopes()
        } else {
            scopes
        },
        trusted_for_email: on("trusted_for_email"),
        enabled: on("enabled"),
        create_accounts: on("create_accounts"),
        reauthenticate_upstream: on("reauthenticate_upstream"),
    })
}

/// Adds (`new` sent) or edits provider `id`, through the same call as the admin API.
async fn save_provider(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (admin, params) = checked(&app, &headers, ip, &body).await?;
    let id = params.get("id").unwrap_or("").trim();
    let adding = params.get("new").is_some();
    let exists = upstream::list(&app.store, &admin.actor, &admin.org.id)
        .await
        .map_err(refused)?
        .iter()
        .any(|p| p.id == id);
    let outcome = match provider_from_form(&params) {
        // Adding never replaces a provider silently, and editing never creates one.
        _ if adding && exists => Err(AdminError::Conflict(format!(
            "there is already a provider with the id {id:?}"
        ))),
        _ if !adding && !exists => Err(AdminError::NotFound("no such provider".into())),
        Err(message) => Err(AdminError::Invalid(message)),
        Ok(input) => upstream::put(
            &app.store,
            &admin.actor,
            &crate::authn::upstream::secret_key(&app.instance_key),
            &admin.org.id,
            id,
            input,
            app.passkeys.is_some(),
        )
        .await
        .map(drop),
    };
    match outcome {
        Ok(()) => Ok(redirect("/admin/providers?notice=provider-saved")),
        Err(AdminError::Invalid(message) | AdminError::Conflict(message)) => {
            Ok(
                render_providers(&app, &admin, StatusCode::BAD_REQUEST, Some(&message), None)
                    .await?,
            )
        }
        Err(e) => Err(refused(e).into()),
    }
}

async fn delete_provider(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (admin, params) = checked(&app, &headers, ip, &body).await?;
    upstream::delete(
        &app.store,
        &admin.actor,
        &admin.org.id,
        params.get("id").unwrap_or(""),
        app.passkeys.is_some(),
    )
    .await
    .map_err(refused)?;
    Ok(redirect("/admin/providers?notice=provider-deleted"))
}

// ---- Users -------------------------------------------------------------------------------

pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    pub has_password: bool,
    pub created: String,
    /// The signed-in admin: they cannot disable or demote themselves here.
    pub is_self: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct UsersPage<'a> {
    pub org_name: &'a str,
    pub admin_email: &'a str,
    pub csrf: &'a str,
    pub section: &'a str,
    pub users: Vec<UserView>,
    pub search: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub form_email: &'a str,
    pub form_name: &'a str,
}

#[derive(Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    notice: Option<String>,
}

async fn render_users(
    app: &App,
    admin: &Admin,
    status: StatusCode,
    search: &str,
    error: Option<&str>,
    form: (&str, &str),
    notice: Option<&str>,
) -> Result<Response, Error> {
    let needle = search.trim().to_lowercase();
    let users = users::list(&app.store, &admin.actor, &admin.org.id, None)
        .await
        .map_err(refused)?
        .into_iter()
        .filter(|u| needle.is_empty() || u.email_normalized.contains(&needle))
        .map(|u| UserView {
            is_self: u.id == admin.user.id,
            admin: u.role == ROLE_ADMIN,
            has_password: u.password_hash.is_some(),
            created: when(u.created_at),
            name: u.name.unwrap_or_default(),
            id: u.id,
            email: u.email,
            disabled: u.disabled,
        })
        .collect();
    Ok(super::render_status(
        status,
        &UsersPage {
            org_name: &admin.org.name,
            admin_email: &admin.user.email,
            csrf: &admin.csrf,
            section: "users",
            users,
            search,
            error,
            notice,
            form_email: form.0,
            form_name: form.1,
        },
    ))
}

async fn users_page(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<UsersQuery>,
) -> Result<Response, PageError> {
    let Some(admin) = current_admin(&app, &headers, ip).await? else {
        return Ok(redirect("/admin/login"));
    };
    Ok(render_users(
        &app,
        &admin,
        StatusCode::OK,
        q.q.as_deref().unwrap_or(""),
        None,
        ("", ""),
        notice_text(q.notice.as_deref()),
    )
    .await?)
}

async fn create_user(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (admin, params) = checked(&app, &headers, ip, &body).await?;
    let email = params.get("email").unwrap_or("");
    let name = params.get("name").unwrap_or("");
    let password = params.get("password").filter(|p| !p.is_empty());
    let created = users::create(
        &app.store,
        &admin.actor,
        &admin.org.id,
        crate::admin::NewUser {
            org_id: &admin.org.id,
            email,
            name: Some(name.trim()).filter(|n| !n.is_empty()),
            password: password.map(str::to_owned),
            email_verified: false,
        },
        None,
        ROLE_MEMBER,
    )
    .await;
    match created {
        Ok(_) => Ok(redirect("/admin/users?notice=user-created")),
        Err(AdminError::Invalid(message) | AdminError::Conflict(message)) => Ok(render_users(
            &app,
            &admin,
            StatusCode::BAD_REQUEST,
            "",
            Some(&message),
            (email, name),
            None,
        )
        .await?),
        Err(e) => Err(refused(e).into()),
    }
}

/// Mails an invitation link (README "Sign-up").
async fn invite_user(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (admin, params) = checked(&app, &headers, ip, &body).await?;
    let email = params.get("email").unwrap_or("");
    let created = crate::account::invitations::create(
        &app.store,
        &app.config,
        &admin.actor,
        &admin.org.id,
        email,
    )
    .await;
    match created {
        Ok(created) => {
            crate::account::invitations::mail(
                &app.delivery,
                &app.http,
                &app.config,
                &admin.org,
                &created,
            )
            .await
            .map_err(|e| {
                Error::page(
                    StatusCode::BAD_GATEWAY,
                    "Invitation not sent",
                    format!("The invitation was created but the mail could not be sent: {e}"),
                )
            })?;
            Ok(redirect("/admin/users?notice=invitation-sent"))
        }
        Err(AdminError::Invalid(message) | AdminError::Conflict(message)) => Ok(render_users(
            &app,
            &admin,
            StatusCode::BAD_REQUEST,
            "",
            Some(&message),
            (email, ""),
            None,
        )
        .await?),
        Err(e) => Err(refused(e).into()),
    }
}

/// The user a form names, refusing the admin's own account: disabling or demoting yourself
/// could leave the organization without an admin who can undo it.
fn target_user<'a>(admin: &Admin, params: &'a Params) -> Result<&'a str, Error> {
    let id = params.get("id").unwrap_or("");
    if id == admin.user.id {
        return Err(Error::bad_request_page(
            "Not on your own account",
            "You cannot disable your own account or remove your own admin role. Ask another administrator.",
        ));
    }
    Ok(id)
}

async fn disable_user(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    set_disabled(app, ip, headers, body, true).await
}

async fn enable_user(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    set_disabled(app, ip, headers, body, false).await
}

async fn set_disabled(
    app: AppState,
    ip: SocketAddr,
    headers: HeaderMap,
    body: Bytes,
    disabled: bool,
) -> Result<Response, PageError> {
    let (admin, params) = checked(&app, &headers, ip, &body).await?;
    let id = target_user(&admin, &params)?;
    users::set_disabled(&app, &admin.actor, &admin.org.id, id, disabled)
        .await
        .map_err(refused)?;
    Ok(redirect("/admin/users?notice=user-updated"))
}

/// Emails the user a recovery link (README "Account recovery"); the admin never sees it.
async fn send_recovery(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (admin, params) = checked(&app, &headers, ip, &body).await?;
    let id = target_user(&admin, &params)?;
    let message = users::recovery_link(&app.store, &app.config, &admin.actor, &admin.org.id, id)
        .await
        .map_err(refused)?;
    crate::account::recovery::deliver_link(&app, message);
    Ok(redirect("/admin/users?notice=recovery-sent"))
}

async fn set_role(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (admin, params) = checked(&app, &headers, ip, &body).await?;
    let id = target_user(&admin, &params)?;
    let role = match params.get("role") {
        Some(ROLE_ADMIN) => ROLE_ADMIN,
        Some(ROLE_MEMBER) => ROLE_MEMBER,
        _ => {
            return Err(
                Error::bad_request_page("Unknown role", "A user is an admin or a member.").into(),
            );
        }
    };
    users::set_role(&app.store, &admin.actor, &admin.org.id, id, role)
        .await
        .map_err(refused)?;
    Ok(redirect("/admin/users?notice=user-updated"))
}

// ---- Audit log ---------------------------------------------------------------------------

pub struct AuditView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub ip: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
pub struct AuditPage<'a> {
    pub org_name: &'a str,
    pub admin_email: &'a str,
    pub csrf: &'a str,
    pub section: &'a str,
    pub entries: Vec<AuditView>,
}

async fn audit_page(
    State(app): State<AppState>,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some(admin) = current_admin(&app, &headers, ip).await? else {
        return Ok(redirect("/admin/login"));
    };
    let entries = crate::store::audit::list(&app.store, Some(&admin.org.id), None, AUDIT_ENTRIES)
        .await?
        .into_iter()
        .map(|e| AuditView {
            at: when(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target.unwrap_or_default(),
            outcome: e.outcome,
            ip: e.ip.unwrap_or_default(),
            detail: e.detail,
        })
        .collect();
    Ok(super::render(&AuditPage {
        org_name: &admin.org.name,
        admin_email: &admin.user.email,
        csrf: &admin.csrf,
        section: "audit",
        entries,
    }))
}
