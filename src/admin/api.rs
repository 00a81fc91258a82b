//! The admin API: JSON over HTTP under `/admin/api/v1`, a thin layer over the domain
//! functions of `admin::*` (which scope every call to the actor's organization and write the
//! audit log). Described by `src/admin/openapi.yaml`, served at `/admin/api/v1/openapi.yaml`.
//!
//! Authentication (RFC 6750 §2.1, `Authorization: Bearer`): an admin token from the CLI
//! (`admin_token:ID`, scoped as the token is), or an access token a client with `admin_api`
//! obtained through the client-credentials grant with scope `admin` (`client:ID`, scoped to
//! the client's organization). A person's access token is refused even when the person is
//! an administrator: people administer through the console, with its reauthentication and
//! CSRF protection, and a token given to a relying party must not carry admin rights.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{Actor, AdminError};
use crate::app::AppState;
use crate::authn::methods::AuthConfig;
use crate::error::{Code, Error, JsonError};
use crate::http::params::Params;
use crate::oidc::scope::Scope;
use crate::oidc::token::client_credentials::ADMIN_SCOPE;
use crate::store::audit::AuditEntry;
use crate::store::clients::Client;
use crate::store::keys::SigningKeyRow;
use crate::store::orgs::{self, Organization};
use crate::store::sessions::SessionRow;
use crate::store::users::User;
use crate::store::{self, decode_list};
use crate::tokens::lookup::{self, Found};

pub const PREFIX: &str = "/admin/api/v1";

const OPENAPI: &str = include_str!("openapi.yaml");

pub fn routes() -> Router<AppState> {
    let api = Router::new()
        .route("/openapi.yaml", get(openapi))
        .route("/orgs", get(list_orgs).post(create_org))
        .route("/orgs/{org}", get(get_org).patch(update_org))
        .route(
            "/orgs/{org}/auth_config",
            get(get_auth_config).put(put_auth_config),
        )
        .route("/orgs/{org}/upstream_providers", get(list_upstream))
        .route(
            "/orgs/{org}/upstream_providers/{provider}",
            put(put_upstream).delete(delete_upstream),
        )
        .route("/orgs/{org}/clients", get(list_clients).post(create_client))
        .route(
            "/orgs/{org}/clients/{client_id}",
            get(get_client).delete(delete_client),
        )
        .route("/orgs/{org}/users", get(list_users).post(create_user))
        .route(
            "/orgs/{org}/invitations",
            get(list_invitations).post(create_invitation),
        )
        .route(
            "/orgs/{org}/users/{user_id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route(
            "/orgs/{org}/users/{user_id}/reset_methods",
            post(reset_methods),
        )
        .route("/orgs/{org}/users/{user_id}/recovery", post(send_recovery))
        .route("/orgs/{org}/users/{user_id}/sessions", get(list_sessions))
        .route("/orgs/{org}/sessions/{session_id}", delete(revoke_session))
        .route("/orgs/{org}/audit", get(org_audit))
        .route("/keys", get(list_keys))
        .route("/keys/rotate", post(rotate_keys))
        .route("/audit", get(deployment_audit));
    Router::new().nest(PREFIX, api)
}

type ApiResult = Result<Response, JsonError>;

impl From<AdminError> for JsonError {
    fn from(e: AdminError) -> JsonError {
        JsonError(match e {
            AdminError::Forbidden(m) => Error::page(StatusCode::FORBIDDEN, "Forbidden", m),
            AdminError::NotFound(m) => Error::page(StatusCode::NOT_FOUND, "Not found", m),
            AdminError::Invalid(m) => Error::invalid_request(m),
            AdminError::Conflict(m) => Error::page(StatusCode::CONFLICT, "Conflict", m),
            AdminError::Store(e) => e.into(),
        })
    }
}

/// The authenticated caller of an admin API request.
pub struct Admin(pub Actor);

impl FromRequestParts<AppState> for Admin {
    type Rejection = JsonError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Admin, JsonError> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| crate::http::client_ip(c).to_string());
        let Some(token) = crate::oidc::userinfo::bearer_from_header(&parts.headers)? else {
            // RFC 6750 §3.1: no credentials, so no error code.
            return Err(Error::Bearer {
                code: None,
                description: "an admin token or an admin access token is required".into(),
                status: StatusCode::UNAUTHORIZED,
            }
            .into());
        };
        if let Some(actor) = super::tokens::authenticate(&app.store, &token, ip.clone()).await? {
            return Ok(Admin(actor));
        }
        let Some(Found::Access(claims, grant)) = lookup::access(app, &token).await? else {
            return Err(invalid_token("unknown, expired or malformed token").into());
        };
        if grant.revoked_at.is_some() {
            return Err(invalid_token("the access token has been revoked").into());
        }
        if grant.user_id.is_some() {
            return Err(insufficient_scope(
                "a person's access token cannot call the admin API (use the admin console)",
            )
            .into());
        }
        if !Scope::parse(&claims.scope).has(ADMIN_SCOPE) {
            return Err(insufficient_scope("the access token lacks the admin scope").into());
        }
        // The flag is read again: clearing it cuts the client off before its token expires.
        let client = store::clients::find(&app.store, &grant.client_id)
            .await?
            .filter(|c| c.admin_api)
            .ok_or_else(|| insufficient_scope("this client may not use the admin API"))?;
        Ok(Admin(Actor {
            name: format!("client:{}", client.id),
            org_id: Some(client.org_id),
            ip,
        }))
    }
}

fn invalid_token(description: &str) -> Error {
    Error::Bearer {
        code: Some(Code::InvalidToken),
        description: description.into(),
        status: StatusCode::UNAUTHORIZED,
    }
}

/// RFC 6750 §3.1: a valid token that does not allow this (403).
fn insufficient_scope(description: &str) -> Error {
    Error::Bearer {
        code: Some(Code::InsufficientScope),
        description: description.into(),
        status: StatusCode::FORBIDDEN,
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn ok(body: Value) -> ApiResult {
    Ok(reply(StatusCode::OK, body))
}

fn no_content() -> ApiResult {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// A JSON request body: malformed JSON, unknown fields, wrong types and strings holding NUL
/// (which PostgreSQL cannot store in text) are `invalid_request`.
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let value: Value = crate::http::json_body(bytes)?;
    if holds_nul(&value) {
        return Err(Error::invalid_request("strings must not contain NUL"));
    }
    serde_json::from_value(value).map_err(|e| Error::invalid_request(format!("invalid body: {e}")))
}

fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// The query string's parameters, each at most once.
fn query(raw: Option<String>, names: &[&str]) -> Result<Params, Error> {
    let params = Params::parse(raw.unwrap_or_default().as_bytes());
    if let Some(name) = params.duplicated_among(names) {
        return Err(Error::invalid_request(format!(
            "parameter {name} was sent more than once"
        )));
    }
    Ok(params)
}

/// PATCH fields: absent (`None`, keep), `null` (`Some(None)`, clear) or a value.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The organization named in the path by id or by slug. An organization the actor does not
/// manage is 403 whether or not it exists; an unknown one is 404 for deployment admins.
async fn org(app: &AppState, actor: &Actor, segment: &str) -> Result<Organization, JsonError> {
    let found = match orgs::find(&app.store, segment).await? {
        Some(org) => Some(org),
        None => orgs::find_by_slug(&app.store, segment).await?,
    };
    match found {
        Some(org) => {
            actor.require_org(&org.id)?;
            Ok(org)
        }
        None if actor.is_deployment_admin() => {
            Err(AdminError::NotFound("no such organization".into()).into())
        }
        None => {
            Err(AdminError::Forbidden("this credential manages another organization".into()).into())
        }
    }
}

async fn openapi() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/yaml; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        OPENAPI,
    )
        .into_response()
}

// Organizations.

fn org_json(org: &Organization) -> Value {
    json!({
        "id": org.id,
        "slug": org.slug,
        "name": org.name,
        "logo_url": org.logo_url,
        "primary_color": org.primary_color,
        "created_at": org.created_at,
        "updated_at": org.updated_at,
    })
}

async fn list_orgs(State(app): State<AppState>, Admin(actor): Admin) -> ApiResult {
    let list = super::orgs::list(&app.store, &actor).await?;
    ok(json!(list.iter().map(org_json).collect::<Vec<_>>()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    slug: String,
    name: String,
}

async fn create_org(State(app): State<AppState>, Admin(actor): Admin, bytes: Bytes) -> ApiResult {
    let new: NewOrg = body(&bytes)?;
    let org = super::orgs::create(&app.store, &actor, &new.slug, &new.name).await?;
    Ok(reply(StatusCode::CREATED, org_json(&org)))
}

async fn get_org(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path(segment): Path<String>,
) -> ApiResult {
    ok(org_json(&org(&app, &actor, &segment).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgUpdate {
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    logo_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    primary_color: Option<Option<String>>,
}

async fn update_org(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path(segment): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let change: OrgUpdate = body(&bytes)?;
    let current = org(&app, &actor, &segment).await?;
    let name = change.name.unwrap_or(current.name);
    let logo_url = change.logo_url.unwrap_or(current.logo_url);
    let primary_color = change.primary_color.unwrap_or(current.primary_color);
    super::orgs::set_branding(
        &app.store,
        &actor,
        &current.id,
        &name,
        logo_url.as_deref(),
        primary_color.as_deref(),
    )
    .await?;
    ok(org_json(
        &super::orgs::get(&app.store, &actor, &current.id).await?,
    ))
}

async fn get_auth_config(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path(segment): Path<String>,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    ok(serde_json::to_value(org.auth_config()?.redacted()).unwrap_or_default())
}

async fn put_auth_config(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path(segment): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let config: AuthConfig = body(&bytes)?;
    let org = org(&app, &actor, &segment).await?;
    super::orgs::set_auth_config(&app.store, &actor, &org.id, &config, app.passkeys.is_some())
        .await?;
    let saved = super::orgs::get(&app.store, &actor, &org.id).await?;
    ok(serde_json::to_value(saved.auth_config()?.redacted()).unwrap_or_default())
}

// Upstream identity providers.

async fn list_upstream(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path(segment): Path<String>,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    let providers = super::upstream::list(&app.store, &actor, &org.id).await?;
    ok(json!({ "providers": providers }))
}

async fn put_upstream(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path((segment, provider)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let input: super::upstream::ProviderInput = body(&bytes)?;
    let org = org(&app, &actor, &segment).await?;
    let saved = super::upstream::put(
        &app.store,
        &actor,
        &crate::authn::upstream::secret_key(&app.instance_key),
        &org.id,
        &provider,
        input,
        app.passkeys.is_some(),
    )
    .await?;
    ok(serde_json::to_value(saved).unwrap_or_default())
}

async fn delete_upstream(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path((segment, provider)): Path<(String, String)>,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    super::upstream::delete(
        &app.store,
        &actor,
        &org.id,
        &provider,
        app.passkeys.is_some(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// Clients.

fn client_json(c: &Client) -> Value {
    json!({
        "client_id": c.id,
        "org_id": c.org_id,
        "name": c.name,
        "public": c.is_public(),
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "admin_api": c.admin_api,
        "created_at": c.created_at,
    })
}

async fn list_clients(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path(segment): Path<String>,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    let list = super::clients::list(&app.store, &actor, &org.id).await?;
    ok(json!(list.iter().map(client_json).collect::<Vec<_>>()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClient {
    name: String,
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    public: bool,
    backchannel_logout_uri: Option<String>,
    #[serde(default)]
    admin_api: bool,
}

async fn create_client(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path(segment): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let new: NewClient = body(&bytes)?;
    let org = org(&app, &actor, &segment).await?;
    if new.admin_api && new.public {
        return Err(Error::invalid_request(
            "a public client cannot use the client credentials grant, so not the admin API",
        )
        .into());
    }
    let (id, secret) = super::clients::create(
        &app.store,
        &actor,
        &org.id,
        super::NewClient {
            org_id: &org.id,
            name: &new.name,
            redirect_uris: &new.redirect_uris,
            post_logout_redirect_uris: &new.post_logout_redirect_uris,
            public: new.public,
            id: None,
            secret: None,
            backchannel_logout_uri: new.backchannel_logout_uri.as_deref(),
        },
    )
    .await?;
    if new.admin_api {
        super::clients::set_admin_api(&app.store, &actor, &org.id, &id, true).await?;
    }
    let client = super::clients::get(&app.store, &actor, &org.id, &id).await?;
    let mut answer = client_json(&client);
    if let Some(secret) = secret {
        answer["client_secret"] = json!(secret);
    }
    Ok(reply(StatusCode::CREATED, answer))
}

async fn get_client(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path((segment, client_id)): Path<(String, String)>,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    ok(client_json(
        &super::clients::get(&app.store, &actor, &org.id, &client_id).await?,
    ))
}

async fn delete_client(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path((segment, client_id)): Path<(String, String)>,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    super::clients::delete(&app.store, &actor, &org.id, &client_id).await?;
    no_content()
}

// Users.

fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "org_id": u.org_id,
        "email": u.email,
        "email_verified": u.email_verified,
        "name": u.name,
        "phone_number": u.phone_number,
        "phone_number_verified": u.phone_number_verified,
        "role": u.role,
        "disabled": u.disabled,
        "has_password": u.password_hash.is_some(),
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}

async fn list_users(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path(segment): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let params = query(raw, &["email"])?;
    let org = org(&app, &actor, &segment).await?;
    let list = super::users::list(&app.store, &actor, &org.id, params.get("email")).await?;
    ok(json!(list.iter().map(user_json).collect::<Vec<_>>()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: String,
    name: Option<String>,
    password: Option<String>,
    #[serde(default)]
    email_verified: bool,
    phone_number: Option<String>,
    role: Option<String>,
}

async fn create_user(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path(segment): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let new: NewUser = body(&bytes)?;
    let org = org(&app, &actor, &segment).await?;
    let user = super::users::create(
        &app.store,
        &actor,
        &org.id,
        super::NewUser {
            org_id: &org.id,
            email: &new.email,
            name: new.name.as_deref(),
            password: new.password,
            email_verified: new.email_verified,
        },
        new.phone_number.as_deref(),
        new.role.as_deref().unwrap_or(store::users::ROLE_MEMBER),
    )
    .await?;
    Ok(reply(StatusCode::CREATED, user_json(&user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInvitation {
    email: String,
}

fn invitation_json(i: &crate::store::invitations::Invitation) -> serde_json::Value {
    json!({
        "id": i.id,
        "org_id": i.org_id,
        "email": i.email,
        "invited_by": i.invited_by,
        "created_at": i.created_at,
        "expires_at": i.expires_at,
        "used_at": i.used_at,
    })
}

/// Creates an invitation and mails its link; the link is in the answer too (once), for an
/// admin who hands it over another way.
async fn create_invitation(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path(segment): Path<String>,
    bytes: Bytes,
) -> ApiResult {
    let new: NewInvitation = body(&bytes)?;
    let org = org(&app, &actor, &segment).await?;
    let created =
        crate::account::invitations::create(&app.store, &app.config, &actor, &org.id, &new.email)
            .await?;
    let mailed =
        crate::account::invitations::mail(&app.delivery, &app.http, &app.config, &org, &created)
            .await;
    if let Err(e) = &mailed {
        tracing::warn!(error = %e, "mailing an invitation failed");
    }
    let mut answer = invitation_json(&created.invitation);
    answer["link"] = json!(created.link);
    answer["mailed"] = json!(mailed.is_ok());
    Ok(reply(StatusCode::CREATED, answer))
}

async fn list_invitations(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path(segment): Path<String>,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    let list = store::invitations::list(&app.store, &org.id).await?;
    ok(json!(list.iter().map(invitation_json).collect::<Vec<_>>()))
}

async fn get_user(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path((segment, user_id)): Path<(String, String)>,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    ok(user_json(
        &super::users::get(&app.store, &actor, &org.id, &user_id).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserUpdate {
    disabled: Option<bool>,
    role: Option<String>,
}

async fn update_user(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path((segment, user_id)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let change: UserUpdate = body(&bytes)?;
    let org = org(&app, &actor, &segment).await?;
    let user = super::users::get(&app.store, &actor, &org.id, &user_id).await?;
    if let Some(role) = change.role.as_deref().filter(|r| *r != user.role) {
        super::users::set_role(&app.store, &actor, &org.id, &user.id, role).await?;
    }
    if let Some(disabled) = change.disabled.filter(|d| *d != user.disabled) {
        super::users::set_disabled(&app, &actor, &org.id, &user.id, disabled).await?;
    }
    ok(user_json(
        &super::users::get(&app.store, &actor, &org.id, &user.id).await?,
    ))
}

async fn delete_user(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path((segment, user_id)): Path<(String, String)>,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    super::users::delete(&app, &actor, &org.id, &user_id).await?;
    no_content()
}

async fn reset_methods(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path((segment, user_id)): Path<(String, String)>,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    super::users::reset_methods(&app, &actor, &org.id, &user_id).await?;
    ok(user_json(
        &super::users::get(&app.store, &actor, &org.id, &user_id).await?,
    ))
}

/// Emails the user a recovery link; answers 202 (the message leaves in the background).
async fn send_recovery(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path((segment, user_id)): Path<(String, String)>,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    let message =
        super::users::recovery_link(&app.store, &app.config, &actor, &org.id, &user_id).await?;
    crate::account::recovery::deliver_link(&app, message);
    Ok(reply(
        StatusCode::ACCEPTED,
        json!({ "sent": true, "expires_in": crate::account::recovery::TTL_SECS }),
    ))
}

// Sessions.

fn session_json(s: &SessionRow) -> Value {
    json!({
        "id": s.id,
        "user_id": s.user_id,
        "auth_time": s.auth_time,
        "amr": decode_list(&s.amr).unwrap_or_default(),
        "acr": s.acr,
        "created_at": s.created_at,
        "last_seen_at": s.last_seen_at,
        "expires_at": s.expires_at.min(s.absolute_expires_at),
        "user_agent": s.user_agent,
        "ip": s.ip,
    })
}

async fn list_sessions(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path((segment, user_id)): Path<(String, String)>,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    let list = super::sessions::list(&app.store, &actor, &org.id, &user_id).await?;
    ok(json!(list.iter().map(session_json).collect::<Vec<_>>()))
}

async fn revoke_session(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path((segment, session_id)): Path<(String, String)>,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    super::sessions::revoke(&app, &actor, &org.id, &session_id).await?;
    no_content()
}

// Signing keys.

fn key_json(k: &SigningKeyRow) -> Value {
    json!({
        "kid": k.kid,
        "alg": k.alg,
        "state": k.state,
        "encrypted": k.encrypted,
        "created_at": k.created_at,
        "activated_at": k.activated_at,
        "retired_at": k.retired_at,
        "published_until": k.publish_until,
    })
}

async fn list_keys(State(app): State<AppState>, Admin(actor): Admin) -> ApiResult {
    let list = super::keys::list(&app.store, &actor).await?;
    ok(json!(list.iter().map(key_json).collect::<Vec<_>>()))
}

async fn rotate_keys(State(app): State<AppState>, Admin(actor): Admin) -> ApiResult {
    let ttl = app
        .config
        .tokens
        .id_token_ttl_secs
        .max(app.config.tokens.access_token_ttl_secs);
    let kid = super::keys::rotate(&app.store, &actor, app.config.master_key(), ttl).await?;
    // This replica signs with the new key at once; the others at their next reload.
    app.keys.reload().await.map_err(Error::Internal)?;
    ok(json!({ "active_kid": kid }))
}

// Audit log.

fn audit_json(e: &AuditEntry) -> Value {
    json!({
        "id": e.id,
        "org_id": e.org_id,
        "at": e.at,
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "outcome": e.outcome,
        "ip": e.ip,
        "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or(Value::Null),
    })
}

async fn audit(
    app: &AppState,
    actor: &Actor,
    org_id: Option<&str>,
    raw: Option<String>,
) -> ApiResult {
    let params = query(raw, &["action", "limit"])?;
    let limit = match params.get("limit") {
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| Error::invalid_request("limit must be an integer"))?,
        ),
        None => None,
    };
    let list = super::audit::list(&app.store, actor, org_id, params.get("action"), limit).await?;
    ok(json!(list.iter().map(audit_json).collect::<Vec<_>>()))
}

async fn org_audit(
    State(app): State<AppState>,
    Admin(actor): Admin,
    Path(segment): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let org = org(&app, &actor, &segment).await?;
    audit(&app, &actor, Some(&org.id), raw).await
}

async fn deployment_audit(
    State(app): State<AppState>,
    Admin(actor): Admin,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    audit(&app, &actor, None, raw).await
}
