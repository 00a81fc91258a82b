//! Tessera: an OpenID Connect identity provider.
//!
//! Where things live: `oidc/` protocol endpoints, `authn/` sign-in methods, `session/`
//! browser sessions, `tokens/` keys and JWTs, `store/` all SQL, `ui/` hosted pages,
//! `admin/` CLI, `companion_app` the reference companion app, `demo/` the demo relying party,
//! `http/` shared HTTP plumbing.

pub mod account;
pub mod admin;
pub mod app;
pub mod audit;
pub mod authn;
pub mod companion_app;
pub mod config;
pub mod cpu;
pub mod delivery;
pub mod demo;
pub mod error;
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod oidc;
pub mod ops;
pub mod security;
pub mod session;
pub mod store;
pub mod tokens;
pub mod ui;

/// Installs the global log subscriber once (text or JSON, filtered by `log_level`).
pub fn init_logging(config: &config::Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: journald, files and log shippers get
    // plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_target(false);
    let _ = if config.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
