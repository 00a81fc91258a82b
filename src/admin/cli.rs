//! The `tessera` command line: `serve`, `migrate`, and the admin commands, which print JSON
//! for scripts and talk to the same database as the server (so they work while it runs).

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::admin::{Actor, AdminError};
use crate::authn::methods::{AuthConfig, Method, SignupMode};
use crate::config::Config;
use crate::store::{self, Store, orgs};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera, an OpenID Connect identity provider"
)]
pub struct Cli {
    /// TOML configuration file (also TESSERA_CONFIG); TESSERA_* variables override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage OIDC clients (relying parties).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage organizations: sign-in methods and branding.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage admin API tokens.
    #[command(subcommand, name = "admin-token")]
    AdminToken(AdminTokenCommand),
    /// Write a consistent copy of the SQLite database to FILE, while the server runs.
    /// (PostgreSQL: use pg_dump; see README, Operations.)
    Backup { file: PathBuf },
    /// The reference companion app: enroll this machine as a device, approve QR sign-ins.
    #[command(subcommand)]
    Device(crate::companion_app::DeviceCommand),
    /// Replace the configured SQLite database with the backup FILE, after checking it.
    /// Refuses while a server uses the database. (PostgreSQL: use pg_restore.)
    Restore {
        file: PathBuf,
        /// Replace an existing database.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints {"client_id", "client_secret"} (the secret only once).
    Create(ClientCreate),
    List,
    Delete {
        client_id: String,
    },
}

#[derive(Args)]
pub struct ClientCreate {
    #[arg(long)]
    name: String,
    #[arg(long = "redirect-uri", required = true)]
    redirect_uris: Vec<String>,
    /// A public client (native or browser app): no secret, PKCE required.
    #[arg(long)]
    public: bool,
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Back-Channel Logout: where Tessera POSTs logout tokens when a session ends.
    #[arg(long = "backchannel-logout-uri")]
    backchannel_logout_uri: Option<String>,
    /// Organization slug.
    #[arg(long, default_value = orgs::DEFAULT_ORG_SLUG)]
    org: String,
    /// May call the admin API for its organization (client-credentials grant, scope admin).
    #[arg(long = "admin-api")]
    admin_api: bool,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user; prints {"id"}.
    Create(UserCreate),
    List {
        #[arg(long, default_value = orgs::DEFAULT_ORG_SLUG)]
        org: String,
    },
    Delete {
        id: String,
    },
    /// Email the user a single-use recovery link (15 minutes) through the configured SMTP
    /// server; the link itself is never printed.
    Recover {
        #[arg(long, default_value = orgs::DEFAULT_ORG_SLUG)]
        org: String,
        #[arg(long)]
        email: String,
    },
    /// Invite an address: mails a single-use sign-up link (7 days) and prints it.
    Invite {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = orgs::DEFAULT_ORG_SLUG)]
        org: String,
    },
    /// Make the user an admin of their organization (the console) or a member again.
    SetRole {
        id: String,
        #[arg(value_parser = ["admin", "member"])]
        role: String,
    },
}

#[derive(Args)]
pub struct UserCreate {
    #[arg(long)]
    email: String,
    #[arg(long)]
    name: Option<String>,
    /// Read the password from standard input (first line).
    #[arg(long)]
    password_stdin: bool,
    #[arg(long, default_value = orgs::DEFAULT_ORG_SLUG)]
    org: String,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Promote the published next key to active and publish a new next key.
    Rotate,
    List,
}

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Create an organization; prints it.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
    },
    List,
    /// The organization with its sign-in method configuration.
    Show {
        slug: String,
    },
    /// Turn sign-in methods on or off (password, passkey, qr, email_otp, phone_otp), or
    /// replace the whole configuration with a JSON file; refused if it would lock everyone out.
    SetMethods {
        slug: String,
        #[arg(long)]
        enable: Vec<String>,
        #[arg(long)]
        disable: Vec<String>,
        /// A JSON auth_config (as `org show` prints it), applied before --enable/--disable.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Who may create an account: closed (admins only), invite, or open.
        #[arg(long, value_parser = ["closed", "invite", "open"])]
        signup: Option<String>,
        /// For open sign-up: the allowed email domains, comma-separated ("" allows any).
        #[arg(long = "signup-domains")]
        signup_domains: Option<String>,
    },
    /// Set the name and look of the hosted pages; an empty value clears the logo or colour.
    SetBranding {
        slug: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "logo-url")]
        logo_url: Option<String>,
        #[arg(long = "primary-color")]
        primary_color: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum AdminTokenCommand {
    /// Create a token; prints {"id", "token"} (the token only once). Without --org the token
    /// manages every organization and the signing keys.
    Create {
        #[arg(long)]
        name: String,
        /// Organization slug.
        #[arg(long)]
        org: Option<String>,
    },
    List,
    Revoke {
        id: String,
    },
}

pub async fn run_admin(config: &Config, command: Command) -> Result<serde_json::Value, String> {
    // Restore must not open (and so create or lock) the database it is about to replace.
    if let Command::Restore { file, force } = &command {
        let url = config.database_url();
        let Some(database) = store::sqlite_path(&url) else {
            return Err(store::backup::POSTGRES_HINT.into());
        };
        let (file, force) = (file.clone(), *force);
        let target = database.clone();
        tokio::task::spawn_blocking(move || store::backup::restore(&file, &target, force))
            .await
            .map_err(|e| e.to_string())??;
        return Ok(json!({ "restored": database }));
    }
    let store = Store::connect(&config.database_url(), 2).await?;
    store.migrate().await?;
    orgs::ensure_default(&store)
        .await
        .map_err(|e| e.to_string())?;
    match command {
        Command::Serve | Command::Device(_) => unreachable!("handled by main"),
        Command::Migrate => Ok(json!({ "migrated": true, "backend": store.backend_name() })),
        Command::Client(c) => client(&store, c).await,
        Command::User(UserCommand::Recover { org, email }) => {
            recover(config, &store, &org, &email).await
        }
        Command::User(UserCommand::Invite { email, org }) => {
            invite(config, &store, &email, &org).await
        }
        Command::User(UserCommand::Delete { id }) => delete_user(config, &id).await,
        Command::User(c) => user(&store, c).await,
        Command::Keys(c) => keys(config, &store, c).await,
        Command::Org(c) => org(config, &store, c).await.map_err(|e| e.to_string()),
        Command::AdminToken(c) => admin_token(&store, c).await.map_err(|e| e.to_string()),
        Command::Backup { file } => {
            store.backup_to(&file).await?;
            Ok(json!({ "backup": file.display().to_string() }))
        }
        Command::Restore { .. } => unreachable!("handled before the database is opened"),
    }
}

async fn org_id(store: &Store, slug: &str) -> Result<String, String> {
    orgs::find_by_slug(store, slug)
        .await
        .map_err(|e| e.to_string())?
        .map(|o| o.id)
        .ok_or_else(|| format!("no organization {slug:?}"))
}

async fn client(store: &Store, command: ClientCommand) -> Result<serde_json::Value, String> {
    match command {
        ClientCommand::Create(c) => {
            let org_id = org_id(store, &c.org).await?;
            let cli = Actor::cli();
            let (id, secret) = crate::admin::clients::create(
                store,
                &cli,
                &org_id,
                crate::admin::NewClient {
                    org_id: &org_id,
                    name: &c.name,
                    redirect_uris: &c.redirect_uris,
                    post_logout_redirect_uris: &c.post_logout_redirect_uris,
                    public: c.public,
                    id: None,
                    secret: None,
                    backchannel_logout_uri: c.backchannel_logout_uri.as_deref(),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            if c.admin_api {
                crate::admin::clients::set_admin_api(store, &cli, &org_id, &id, true)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(match secret {
                Some(secret) => json!({ "client_id": id, "client_secret": secret }),
                None => json!({ "client_id": id }),
            })
        }
        ClientCommand::List => {
            let list = store::clients::list(store)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!(
                list.iter()
                    .map(|c| json!({
                        "client_id": c.id,
                        "name": c.name,
                        "public": c.is_public(),
                        "org_id": c.org_id,
                        "admin_api": c.admin_api,
                        "redirect_uris": c.redirect_uris,
                        "post_logout_redirect_uris": c.post_logout_redirect_uris,
                    "backchannel_logout_uri": c.backchannel_logout_uri,
                        "created_at": c.created_at,
                    }))
                    .collect::<Vec<_>>()
            ))
        }
        ClientCommand::Delete { client_id } => {
            let deleted = store::clients::delete(store, &client_id)
                .await
                .map_err(|e| e.to_string())?;
            if !deleted {
                return Err(format!("no client {client_id}"));
            }
            Ok(json!({ "deleted": client_id }))
        }
    }
}

async fn invite(
    config: &Config,
    store: &Store,
    email: &str,
    slug: &str,
) -> Result<serde_json::Value, String> {
    let org = orgs::find_by_slug(store, slug)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no organization {slug:?}"))?;
    let created = crate::account::invitations::create(store, config, &Actor::cli(), &org.id, email)
        .await
        .map_err(|e| e.to_string())?;
    // The CLI mails through the configured transport, like the server; with the in-memory
    // outbox nothing leaves this process, so the printed link is the way to hand it over.
    let delivery = crate::delivery::Delivery::from_config(config)?;
    let http = openidconnect::reqwest::Client::new();
    let mailed = crate::account::invitations::mail(&delivery, &http, config, &org, &created)
        .await
        .map_err(|e| eprintln!("mailing the invitation failed: {e}"))
        .is_ok()
        && config.email.transport == crate::config::EmailTransport::Smtp;
    Ok(json!({
        "id": created.invitation.id,
        "email": created.invitation.email,
        "expires_at": created.invitation.expires_at,
        "link": created.link,
        "mailed": mailed,
    }))
}

async fn user(store: &Store, command: UserCommand) -> Result<serde_json::Value, String> {
    match command {
        UserCommand::Create(c) => {
            let password = if c.password_stdin {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| e.to_string())?;
                Some(text.lines().next().unwrap_or_default().to_owned())
            } else {
                None
            };
            let org_id = org_id(store, &c.org).await?;
            let user = crate::admin::create_user(
                store,
                crate::admin::NewUser {
                    org_id: &org_id,
                    email: &c.email,
                    name: c.name.as_deref(),
                    password,
                    email_verified: false,
                },
            )
            .await?;
            Ok(json!({ "id": user.id }))
        }
        UserCommand::List { org } => {
            let org_id = org_id(store, &org).await?;
            let list = store::users::list(store, &org_id)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!(
                list.iter()
                    .map(|u| json!({
                        "id": u.id,
                        "email": u.email,
                        "name": u.name,
                        "has_password": u.password_hash.is_some(),
                        "disabled": u.disabled,
                        "created_at": u.created_at,
                    }))
                    .collect::<Vec<_>>()
            ))
        }
        UserCommand::Delete { .. } => unreachable!("handled by run_admin"),
        UserCommand::Recover { .. } => {
            unreachable!("needs the configuration: handled in run_admin")
        }
        UserCommand::Invite { .. } => unreachable!("handled by run_admin, which has the config"),
        UserCommand::SetRole { id, role } => {
            let user = store::users::find(store, &id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user {id}"))?;
            crate::admin::users::set_role(store, &Actor::cli(), &user.org_id, &id, &role)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({ "id": id, "role": role }))
        }
    }
}

async fn recover(
    config: &Config,
    store: &Store,
    slug: &str,
    email: &str,
) -> Result<serde_json::Value, String> {
    // The demo outbox lives in the server's memory: this process's copy would vanish with it.
    if config.email.transport != crate::config::EmailTransport::Smtp {
        return Err(
            "email.transport is not smtp: send the link from the admin API or console".into(),
        );
    }
    let delivery = crate::delivery::Delivery::from_config(config)?;
    let org_id = org_id(store, slug).await?;
    let user = store::users::find_by_email(store, &org_id, email)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user {email:?} in {slug:?}"))?;
    let message =
        crate::admin::users::recovery_link(store, config, &Actor::cli(), &org_id, &user.id)
            .await
            .map_err(|e| e.to_string())?;
    let http = openidconnect::reqwest::Client::new();
    delivery
        .send(
            &http,
            crate::delivery::Channel::Email,
            &message.to,
            &message.subject,
            &message.body,
        )
        .await?;
    Ok(
        json!({ "id": user.id, "sent_to": message.to, "expires_in": crate::account::recovery::TTL_SECS }),
    )
}

/// Deletes the way the server does (`account::deletion`: one transaction, the audit record,
/// back-channel logout), and waits for the logout tokens to be delivered before exiting.
async fn delete_user(config: &Config, id: &str) -> Result<serde_json::Value, String> {
    let app = crate::app::build(config.clone()).await?;
    let deleted = crate::account::deletion::delete_user(
        &app,
        id,
        crate::account::deletion::DeletedBy::Admin(&Actor::cli()),
    )
    .await
    .map_err(|e| e.to_string())?
    .ok_or_else(|| format!("no user {id}"))?;
    for delivery in deleted.deliveries {
        let _ = delivery.await;
    }
    Ok(json!({ "deleted": id }))
}

async fn org_by_slug(store: &Store, slug: &str) -> Result<orgs::Organization, AdminError> {
    orgs::find_by_slug(store, slug)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no organization {slug:?}")))
}

fn org_json(org: &orgs::Organization) -> Result<serde_json::Value, AdminError> {
    Ok(json!({
        "id": org.id,
        "slug": org.slug,
        "name": org.name,
        "logo_url": org.logo_url,
        "primary_color": org.primary_color,
        "created_at": org.created_at,
        "auth_config": serde_json::to_value(org.auth_config()?.redacted()).unwrap_or_default(),
    }))
}

async fn org(
    config: &Config,
    store: &Store,
    command: OrgCommand,
) -> Result<serde_json::Value, AdminError> {
    let cli = Actor::cli();
    match command {
        OrgCommand::Create { slug, name } => {
            org_json(&crate::admin::orgs::create(store, &cli, &slug, &name).await?)
        }
        OrgCommand::List => {
            let list = crate::admin::orgs::list(store, &cli).await?;
            Ok(json!(
                list.iter().map(org_json).collect::<Result<Vec<_>, _>>()?
            ))
        }
        OrgCommand::Show { slug } => org_json(&org_by_slug(store, &slug).await?),
        OrgCommand::SetMethods {
            slug,
            enable,
            disable,
            file,
            signup,
            signup_domains,
        } => {
            let org = org_by_slug(store, &slug).await?;
            let mut auth = match file {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| AdminError::Invalid(format!("{}: {e}", path.display())))?;
                    AuthConfig::from_json(&text).map_err(AdminError::Invalid)?
                }
                None => org.auth_config()?,
            };
            for (keys, on) in [(&enable, true), (&disable, false)] {
                for key in keys {
                    let method = Method::from_key(key).ok_or_else(|| {
                        AdminError::Invalid(format!(
                            "unknown method {key:?} (password, passkey, qr, email_otp, phone_otp)"
                        ))
                    })?;
                    auth.set_enabled(method, on);
                }
            }
            if let Some(mode) = signup.as_deref().and_then(SignupMode::from_key) {
                auth.signup.mode = mode;
            }
            if let Some(domains) = signup_domains {
                auth.signup.allowed_domains = domains
                    .split(',')
                    .filter(|d| !d.trim().is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            // The CLI has no WebAuthn relying party of its own: the configured issuer decides,
            // as it does for the server.
            let passkeys_available = crate::authn::passkey::Passkeys::from_config(config)
                .ok()
                .flatten()
                .is_some();
            crate::admin::orgs::set_auth_config(store, &cli, &org.id, &auth, passkeys_available)
                .await?;
            org_json(&org_by_slug(store, &slug).await?)
        }
        OrgCommand::SetBranding {
            slug,
            name,
            logo_url,
            primary_color,
        } => {
            let org = org_by_slug(store, &slug).await?;
            crate::admin::orgs::set_branding(
                store,
                &cli,
                &org.id,
                name.as_deref().unwrap_or(&org.name),
                logo_url.as_deref().or(org.logo_url.as_deref()),
                primary_color.as_deref().or(org.primary_color.as_deref()),
            )
            .await?;
            org_json(&org_by_slug(store, &slug).await?)
        }
    }
}

async fn admin_token(
    store: &Store,
    command: AdminTokenCommand,
) -> Result<serde_json::Value, AdminError> {
    let cli = Actor::cli();
    match command {
        AdminTokenCommand::Create { name, org } => {
            let org_id = match org {
                Some(slug) => Some(org_by_slug(store, &slug).await?.id),
                None => None,
            };
            let (row, token) =
                crate::admin::tokens::create(store, &cli, org_id.as_deref(), &name).await?;
            Ok(json!({ "id": row.id, "org_id": row.org_id, "name": row.name, "token": token }))
        }
        AdminTokenCommand::List => {
            let list = crate::admin::tokens::list(store, &cli).await?;
            Ok(json!(
                list.iter()
                    .map(|t| json!({
                        "id": t.id,
                        "org_id": t.org_id,
                        "name": t.name,
                        "created_at": t.created_at,
                        "last_used_at": t.last_used_at,
                        "revoked_at": t.revoked_at,
                    }))
                    .collect::<Vec<_>>()
            ))
        }
        AdminTokenCommand::Revoke { id } => {
            crate::admin::tokens::revoke(store, &cli, &id).await?;
            Ok(json!({ "revoked": id }))
        }
    }
}

async fn keys(
    config: &Config,
    store: &Store,
    command: KeysCommand,
) -> Result<serde_json::Value, String> {
    match command {
        KeysCommand::Rotate => {
            let ttl = config
                .tokens
                .id_token_ttl_secs
                .max(config.tokens.access_token_ttl_secs);
            let kid = crate::tokens::keys::rotate(store, config.master_key(), ttl).await?;
            Ok(json!({ "active_kid": kid }))
        }
        KeysCommand::List => {
            let rows = store::keys::list(store).await.map_err(|e| e.to_string())?;
            Ok(json!(
                rows.iter()
                    .map(|k| json!({
                        "kid": k.kid,
                        "alg": k.alg,
                        "state": k.state,
                        "encrypted": k.encrypted,
                        "created_at": k.created_at,
                        "activated_at": k.activated_at,
                        "retired_at": k.retired_at,
                        "published_until": k.publish_until,
                    }))
                    .collect::<Vec<_>>()
            ))
        }
    }
}
