//! What the modules run against: an issuer, the three static clients the suite asks for
//! (`client`, `client2`, `client_secret_post`), a test account, and HTTP clients that trust
//! the server's certificate. Either an in-process Tessera with its own database, or a running
//! server named by `--issuer`.

use std::path::PathBuf;
use std::time::Duration;

use openidconnect::reqwest;

/// The suite's registered redirect URI is `https://<suite>/test/a/<alias>/callback`. Nothing
/// listens there: the runner's browser stops at every redirect that leaves the OP and reads
/// it, as the suite reads the request its callback endpoint receives.
pub const DEFAULT_REDIRECT_URI: &str = "https://rp.conformance.test/test/a/tessera/callback";

#[derive(Debug, Clone)]
pub struct ClientCreds {
    pub id: String,
    pub secret: String,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub email: String,
    pub password: String,
}

pub struct Target {
    pub issuer: String,
    pub discovery_url: String,
    /// `client`: client_secret_basic, used by nearly every module.
    pub client: ClientCreds,
    /// `client2`: the second client of `oidcc-refresh-token`.
    pub client2: ClientCreds,
    /// `client_secret_post`: used only by `oidcc-server-client-secret-post`.
    pub client_post: ClientCreds,
    pub redirect_uri: String,
    pub account: Account,
    /// PEM of an extra root certificate to trust (the in-process server's self-signed one).
    pub ca_pem: Option<String>,
    /// Where `ca_pem` is written, for Node's `NODE_EXTRA_CA_CERTS`.
    pub ca_file: Option<PathBuf>,
    pub database: String,
    in_process: Option<InProcess>,
}

struct InProcess {
    running: tessera::app::Running,
    proxy: tokio::task::JoinHandle<()>,
    dir: PathBuf,
}

impl Target {
    /// A client that follows no redirects (every hop is checked) and trusts `ca_pem`.
    pub fn http(&self) -> reqwest::Client {
        http_client(self.ca_pem.as_deref())
    }

    /// The suite's test base URL (`https://<suite>/test/a/<alias>`) that `CreateRedirectUri`
    /// and `CreateBadRedirectUri` build on: the redirect URI minus its last path segment.
    pub fn redirect_base(&self) -> String {
        match self.redirect_uri.rsplit_once('/') {
            Some((base, _)) => base.to_owned(),
            None => self.redirect_uri.clone(),
        }
    }

    /// Targets a running server. Its clients must accept `redirect_uri` and the account must
    /// exist; nothing is provisioned.
    pub fn external(
        issuer: &str,
        client: ClientCreds,
        client2: ClientCreds,
        client_post: ClientCreds,
        redirect_uri: &str,
        account: Account,
        ca_file: Option<PathBuf>,
    ) -> Result<Target, String> {
        let issuer = issuer.trim_end_matches('/').to_owned();
        let ca_pem = match &ca_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(Target {
            discovery_url: format!("{issuer}/.well-known/openid-configuration"),
            issuer,
            client,
            client2,
            client_post,
            redirect_uri: redirect_uri.to_owned(),
            account,
            ca_pem,
            ca_file,
            database: "external".into(),
            in_process: None,
        })
    }

    /// Starts Tessera in this process behind a TLS front, on a fresh database: a new SQLite
    /// file in a temporary folder, or a new PostgreSQL database when
    /// `TESSERA_TEST_DATABASE_URL` names a server. Registers the three clients and the account.
    pub async fn start_in_process() -> Result<Target, String> {
        let dir = std::env::temp_dir().join(format!(
            "tessera-conformance-{}",
            tessera::security::random_id().to_lowercase()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let database_url = match std::env::var("TESSERA_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => fresh_postgres_database(&url).await?,
            _ => format!("sqlite://{}", dir.join("tessera.db").display()),
        };
        let backend = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let front = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let port = front.local_addr().map_err(|e| e.to_string())?.port();
        let backend_addr = backend.local_addr().map_err(|e| e.to_string())?;
        let cert = super::tls::self_signed()?;
        let issuer = format!("https://127.0.0.1:{port}");
        let mut config = tessera::config::Config {
            issuer: issuer.clone(),
            data_dir: dir.clone(),
            database_url: Some(database_url.clone()),
            database_max_connections: 8,
            demo: false,
            metrics_bind: "off".into(),
            ..tessera::config::Config::default()
        };
        config.validate()?;
        let running = tessera::app::start(config, backend).await?;
        let proxy = super::tls::spawn_proxy(front, backend_addr, &cert)?;
        let ca_file = dir.join("conformance-ca.pem");
        std::fs::write(&ca_file, &cert.cert_pem).map_err(|e| e.to_string())?;

        let store = &running.app.store;
        let org = running.app.default_org.id.clone();
        let redirect = vec![DEFAULT_REDIRECT_URI.to_owned()];
        // The logout plans' static client: `/post_logout_redirect` registered beside the
        // callback, as the suite's RP-Initiated Logout modules ask.
        let post_logout = vec![post_logout_redirect_uri(DEFAULT_REDIRECT_URI)];
        let client = register(
            store,
            &org,
            "Conformance client",
            &redirect,
            &post_logout,
            None,
        )
        .await?;
        let client2 = register(store, &org, "Conformance client2", &redirect, &[], None).await?;
        let client_post = register(
            store,
            &org,
            "Conformance client_secret_post",
            &redirect,
            &[],
            None,
        )
        .await?;
        let account = Account {
            email: "conformance@tessera.test".into(),
            password: "conformance-suite-password-1".into(),
        };
        insert_account(store, &org, &account).await?;
        let database = if database_url.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        Ok(Target {
            discovery_url: format!("{issuer}/.well-known/openid-configuration"),
            issuer,
            client,
            client2,
            client_post,
            redirect_uri: DEFAULT_REDIRECT_URI.to_owned(),
            account,
            ca_pem: Some(cert.cert_pem),
            ca_file: Some(ca_file),
            database: database.into(),
            in_process: Some(InProcess {
                running,
                proxy,
                dir,
            }),
        })
    }

    /// Stops an in-process server and removes its folder.
    pub async fn shutdown(mut self) {
        if let Some(p) = self.in_process.take() {
            p.proxy.abort();
            p.running.shutdown().await;
            let _ = std::fs::remove_dir_all(&p.dir);
        }
    }

    pub fn is_in_process(&self) -> bool {
        self.in_process.is_some()
    }

    /// The suite's `CreatePostLogoutRedirectUri`: the test base + `/post_logout_redirect`.
    pub fn post_logout_redirect_uri(&self) -> String {
        post_logout_redirect_uri(&self.redirect_uri)
    }

    /// Registers the Back-Channel Logout module's client on an in-process server: the
    /// callback, `/post_logout_redirect`, and `backchannel_logout_uri` pointing at the
    /// runner's listener (a static client registered by the tester, in the suite).
    pub async fn register_backchannel_client(
        &self,
        backchannel_logout_uri: &str,
    ) -> Result<ClientCreds, String> {
        let p = self.in_process.as_ref().ok_or(
            "a running server needs a client whose backchannel_logout_uri reaches the runner",
        )?;
        register(
            &p.running.app.store,
            &p.running.app.default_org.id,
            "Conformance back-channel logout client",
            &[self.redirect_uri.clone()],
            &[self.post_logout_redirect_uri()],
            Some(backchannel_logout_uri),
        )
        .await
    }
}

/// The redirect URI with its last path segment replaced by `post_logout_redirect`.
pub fn post_logout_redirect_uri(redirect_uri: &str) -> String {
    match redirect_uri.rsplit_once('/') {
        Some((base, _)) => format!("{base}/post_logout_redirect"),
        None => format!("{redirect_uri}/post_logout_redirect"),
    }
}

async fn register(
    store: &tessera::store::Store,
    org: &str,
    name: &str,
    redirect_uris: &[String],
    post_logout_redirect_uris: &[String],
    backchannel_logout_uri: Option<&str>,
) -> Result<ClientCreds, String> {
    let (id, secret) = tessera::admin::create_client(
        store,
        tessera::admin::NewClient {
            org_id: org,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            public: false,
            id: None,
            secret: None,
            backchannel_logout_uri,
        },
    )
    .await?;
    Ok(ClientCreds {
        id,
        secret: secret.ok_or("confidential client without a secret")?,
    })
}

/// The test account, with the profile a tester would give it so that the scope modules
/// have claims to find (Tessera stores name, given/family name, locale and phone; it has
/// no address, nickname, picture, … fields).
async fn insert_account(
    store: &tessera::store::Store,
    org: &str,
    account: &Account,
) -> Result<(), String> {
    // create_user applies the usual validation (and keeps up with new columns); the profile
    // fields it does not take are then written by re-inserting the row.
    let created = tessera::admin::create_user(
        store,
        tessera::admin::NewUser {
            org_id: org,
            email: &account.email,
            name: Some("Buffy Summers"),
            password: Some(account.password.clone()),
            email_verified: true,
        },
    )
    .await?;
    tessera::store::users::delete(store, &created.id)
        .await
        .map_err(|e| e.to_string())?;
    let user = tessera::store::users::User {
        given_name: Some("Buffy".into()),
        family_name: Some("Summers".into()),
        phone_number: Some("+15555550100".into()),
        phone_number_verified: true,
        locale: Some("en-US".into()),
        ..created
    };
    tessera::store::users::insert(store, &user)
        .await
        .map_err(|e| e.to_string())
}

async fn fresh_postgres_database(base: &str) -> Result<String, String> {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    // The `tessera_test_` prefix lets CI's clean-up find it.
    let name = format!(
        "tessera_test_conformance_{}",
        tessera::security::random_id()
            .to_lowercase()
            .replace(['-', '_'], "")
    );
    let mut conn = AsyncPgConnection::establish(base)
        .await
        .map_err(|e| format!("connect to PostgreSQL: {e}"))?;
    conn.batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| format!("create database: {e}"))?;
    let mut url = url::Url::parse(base).map_err(|e| e.to_string())?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

pub fn http_client(ca_pem: Option<&str>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .user_agent("tessera-conformance/1 (openid conformance suite reproduction)");
    if let Some(pem) = ca_pem {
        let cert = reqwest::Certificate::from_pem(pem.as_bytes()).expect("CA certificate");
        builder = builder.add_root_certificate(cert);
    }
    builder.build().expect("HTTP client")
}
