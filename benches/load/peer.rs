//! The peer: node-oidc-provider (npm `oidc-provider`), configured by
//! `benches/peer/node-oidc-provider.mjs` as close to Tessera as it allows, installed with
//! `npm ci` into a temporary folder and run with the machine's Node.js on loopback.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::LOCATION;

use super::{Context, R, REDIRECT_URI, Server, free_port, plain_client, tail};

/// Must match the defaults in `node-oidc-provider.mjs`.
pub const CLIENT_ID: &str = "bench";
pub const CLIENT_SECRET: &str = "bench-secret-0123456789abcdef0123456789";

/// Installs the pinned package (with its lock file) into a fresh folder and starts it.
pub async fn start() -> R<Server> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer");
    let dir = tempfile::Builder::new()
        .prefix("tessera-peer-")
        .tempdir()
        .ctx("creating the peer folder")?;
    for file in [
        "package.json",
        "package-lock.json",
        "node-oidc-provider.mjs",
    ] {
        std::fs::copy(source.join(file), dir.path().join(file)).ctx(&format!("copying {file}"))?;
    }
    let started = Instant::now();
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .ctx("running npm ci for node-oidc-provider (is npm installed?)")?;
    if !out.status.success() {
        return Err(format!(
            "npm ci failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!(
        "load: node-oidc-provider installed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let port = free_port()?;
    let log_path = dir.path().join("peer.log");
    let log = std::fs::File::create(&log_path).ctx("creating the peer log")?;
    let log2 = log.try_clone().ctx("cloning the log handle")?;
    let child = Command::new("node")
        .arg("node-oidc-provider.mjs")
        .arg(port.to_string())
        .current_dir(dir.path())
        .env("NODE_ENV", "production")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .ctx("starting node")?;
    let mut server = Server {
        pid: child.id(),
        child,
        base: format!("http://127.0.0.1:{port}"),
        bin: "node".into(),
        env: Vec::new(),
        log_path,
        data_dir: dir,
    };
    let http = plain_client()?;
    let url = format!("{}/.well-known/openid-configuration", server.base);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().ctx("polling node")? {
            return Err(format!(
                "node-oidc-provider exited ({status}): {}",
                tail(&server.log_path, 4000)
            ));
        }
        if let Ok(resp) = http.get(&url).send().await
            && resp.status() == 200
        {
            return Ok(server);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "node-oidc-provider not ready after 30 s: {}",
                tail(&server.log_path, 4000)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The peer's authorization URL. `prompt=consent` because node-oidc-provider grants
/// `offline_access` (a refresh token) only after an explicit consent (OIDC Core §11).
pub fn authorize_url(base: &str, scope: &str) -> String {
    format!(
        "{base}/auth?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope={}\
         &state=load&nonce=n-load&code_challenge={}&code_challenge_method=S256&prompt=consent",
        super::enc(REDIRECT_URI),
        super::enc(scope),
        super::PKCE_CHALLENGE,
    )
}

/// A code through the peer's real interaction flow (authorize → interaction → resume →
/// consent interaction → resume → redirect URI), with a cookie jar like a browser's. The
/// peer script answers login and consent for its bench account.
pub async fn code(authorize_url: &str) -> R<String> {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar)
        .no_proxy()
        .timeout(super::REQUEST_TIMEOUT)
        .build()
        .ctx("building the peer's browser client")?;
    let mut url = url::Url::parse(authorize_url).ctx("peer authorize URL")?;
    for _ in 0..10 {
        let resp = http.get(url.clone()).send().await.ctx("peer code flow")?;
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Some(location) = location else {
            let body = resp.text().await.unwrap_or_default();
            return Err(format!(
                "peer code flow: {status} without a redirect at {url}: {}",
                super::snippet(body.as_bytes())
            ));
        };
        let next = url.join(&location).ctx("peer redirect")?;
        if next.as_str().starts_with(REDIRECT_URI) {
            return next
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .ok_or_else(|| format!("peer redirected without a code: {next}"));
        }
        url = next;
    }
    Err("peer code flow: too many redirects".into())
}
