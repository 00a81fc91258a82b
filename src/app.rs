//! Assembles the server: shared state, routes, middleware, background jobs, and start-up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;

use crate::config::Config;
use crate::http::cookies::CookiePolicy;
use crate::store::orgs::{self, Organization};
use crate::store::{self, Store};
use crate::tokens::Keys;

/// Largest request body any endpoint reads; bigger bodies get 413 before they are buffered.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct App {
    pub config: Config,
    pub store: Store,
    pub keys: Keys,
    pub cookies: CookiePolicy,
    pub default_org: Organization,
    /// Random per deployment, stored in the database: derives values that must agree across
    /// replicas and restarts (the demo client's secret).
    pub instance_key: Vec<u8>,
    /// Seals and opens opaque access tokens (derived from `instance_key`).
    pub access_token_key: crate::security::master_key::MasterKey,
    pub discovery: crate::oidc::discovery::Prepared,
    /// Outbound HTTP (back-channel logout): no redirects, bounded timeouts.
    pub http: openidconnect::reqwest::Client,
    /// WebAuthn relying party; `None` when the issuer's host is an IP address.
    pub passkeys: Option<crate::authn::passkey::Passkeys>,
    /// Wakes watchers (a waiting QR page) when a row they watch changes, across replicas.
    pub changes: crate::store::notifications::Changes,
    /// Email and SMS out (one-time codes), or the demo's in-memory outbox.
    pub delivery: Arc<crate::delivery::Delivery>,
    /// Discovery documents and key sets of upstream identity providers.
    pub upstream: crate::authn::upstream::MetadataCache,
}

pub type AppState = Arc<App>;

/// Connects, migrates, loads keys and seeds what the configuration asks for.
pub async fn build(config: Config) -> Result<AppState, String> {
    let store = Store::connect(&config.database_url(), config.database_max_connections).await?;
    store
        .migrate()
        .await
        .map_err(|e| format!("migrations failed: {e}"))?;
    let default_org = orgs::ensure_default(&store)
        .await
        .map_err(|e| e.to_string())?;
    let master_key = config.master_key();
    if master_key.is_none() {
        tracing::warn!(
            "no master key configured: signing keys are stored unencrypted (set TESSERA_MASTER_KEY)"
        );
    }
    let max_ttl = config
        .tokens
        .id_token_ttl_secs
        .max(config.tokens.access_token_ttl_secs);
    let keys = Keys::init(store.clone(), master_key.clone(), max_ttl).await?;
    let instance_key = instance_key(&store, master_key.as_ref()).await?;
    let cookies = CookiePolicy {
        secure: config.is_https(),
    };
    let discovery = crate::oidc::discovery::Prepared::new(&config);
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let passkeys = crate::authn::passkey::Passkeys::from_config(&config)?;
    let delivery = Arc::new(crate::delivery::Delivery::from_config(&config)?);
    let app = Arc::new(App {
        config,
        store,
        keys,
        cookies,
        default_org,
        access_token_key: crate::tokens::access_token::sealing_key(&instance_key),
        instance_key,
        discovery,
        http,
        passkeys,
        changes: Default::default(),
        delivery,
        upstream: Default::default(),
    });
    crate::ui::account::ensure_client(&app).await?;
    if app.config.demo {
        crate::demo::seed(&app).await?;
    }
    Ok(app)
}

async fn instance_key(
    store: &Store,
    master_key: Option<&crate::security::master_key::MasterKey>,
) -> Result<Vec<u8>, String> {
    const NAME: &str = "instance-key";
    let stored = match store::keys::find_secret(store, NAME)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(s) => s,
        None => {
            let value = crate::security::random_bytes::<32>().to_vec();
            let (value, encrypted) = match master_key {
                Some(mk) => (mk.seal(NAME, &value), true),
                None => (value, false),
            };
            let secret = store::keys::InstanceSecret {
                name: NAME.into(),
                value,
                encrypted,
                created_at: store::now(),
            };
            store::keys::insert_secret_once(store, &secret)
                .await
                .map_err(|e| e.to_string())?
        }
    };
    if stored.encrypted {
        master_key
            .ok_or("the instance key is encrypted: set TESSERA_MASTER_KEY")?
            .open(NAME, &stored.value)
    } else {
        Ok(stored.value)
    }
}

pub fn router(app: AppState) -> Router {
    let hsts = app.config.is_https();
    let mut router = Router::new()
        .route("/", get(crate::ui::interaction::home))
        .route("/healthz", get(crate::ops::healthz))
        .route("/readyz", get(crate::ops::readyz))
        .route("/static/{file}", get(crate::ops::static_file))
        .merge(crate::oidc::routes())
        .merge(crate::ui::interaction::routes())
        .merge(crate::ui::one_time_codes::routes())
        .merge(crate::ui::signup::routes())
        .merge(crate::ui::branding::routes())
        .merge(crate::ui::account::routes())
        .merge(crate::ui::admin_console::routes())
        .merge(crate::ui::passkeys::routes())
        .merge(crate::ui::recovery::routes())
        .merge(crate::ui::qr::routes())
        .merge(crate::ui::upstream::routes())
        .merge(crate::ui::companion::routes())
        .merge(crate::ui::device_grant::routes())
        .merge(crate::admin::api::routes());
    if app.config.demo {
        router = router.nest("/demo", crate::demo::routes());
    }
    crate::http::security_headers::add(router, hsts)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(crate::ops::panic_response))
        .layer(axum::middleware::from_fn(crate::http::request_id::observe))
        .with_state(app)
}

/// A server that is running; dropping the handle does not stop it, [`Running::shutdown`] does.
pub struct Running {
    pub addr: SocketAddr,
    /// The `/metrics` listener's address, when enabled.
    pub metrics_addr: Option<SocketAddr>,
    pub app: AppState,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Starts serving on `listener` with background jobs; used by `tessera serve` and the tests.
pub async fn start(config: Config, listener: TcpListener) -> Result<Running, String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // Bound before the database work so a taken port fails start-up at once.
    let metrics_listener = match config.metrics_addr() {
        Some(at) => Some(TcpListener::bind(at).await.map_err(|e| {
            format!("cannot listen for metrics on {at}: {e} (set TESSERA_METRICS_BIND, or off)")
        })?),
        None => None,
    };
    let app = build(config).await?;
    let (shutdown, mut watch) = tokio::sync::watch::channel(false);
    let metrics_addr = match metrics_listener {
        Some(listener) => {
            let at = listener.local_addr().map_err(|e| e.to_string())?;
            let mut stop = shutdown.subscribe();
            let service = crate::metrics::router(app.clone());
            tokio::spawn(async move {
                let served = axum::serve(listener, service)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "metrics listener failed");
                }
            });
            Some(at)
        }
        None => None,
    };
    spawn_background_jobs(app.clone(), shutdown.subscribe());
    app.changes.spawn_listener(&app.store, shutdown.subscribe());
    let service = router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = watch.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(Running {
        addr,
        metrics_addr,
        app,
        shutdown,
        task,
    })
}

fn spawn_background_jobs(app: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut reload = tokio::time::interval(Duration::from_secs(
            crate::tokens::keys::RELOAD_INTERVAL_SECS as u64,
        ));
        let mut housekeeping =
            tokio::time::interval(Duration::from_secs(app.config.sessions.sweep_interval_secs));
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = reload.tick() => {
                    if let Err(e) = app.keys.reload().await {
                        tracing::warn!(error = %e, "reloading signing keys failed");
                    }
                }
                _ = housekeeping.tick() => crate::ops::housekeeping(&app).await,
            }
        }
    });
}
