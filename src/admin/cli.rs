//! The `tessera` command line: `serve`, `migrate`, and the admin commands, which print JSON
//! for scripts and talk to the same database as the server (so they work while it runs).

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

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
        Command::User(c) => user(&store, c).await,
        Command::Keys(c) => keys(config, &store, c).await,
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
            let (id, secret) = crate::admin::create_client(
                store,
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
            .await?;
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
        UserCommand::Delete { id } => {
            if !store::users::delete(store, &id)
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("no user {id}"));
            }
            Ok(json!({ "deleted": id }))
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
