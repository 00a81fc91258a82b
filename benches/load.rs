//! Load test of a real `tessera serve` process: `cargo bench --bench load`.
//!
//! The server runs as a child process (the release binary cargo builds for this bench) on a free
//! loopback port with a fresh data directory; a tokio load generator in this process drives it
//! with a fixed number of keep-alive connections, one phase at a time:
//!
//! 1. `GET /.well-known/openid-configuration`
//! 2. `GET /jwks`
//! 3. `POST /token` with `grant_type=authorization_code` (PKCE S256, access + ID token signed);
//!    the codes are made beforehand with `GET /authorize` and a session cookie, in segments
//!    short enough that none nears its 60 s lifetime
//! 4. `POST /token` with `grant_type=refresh_token`: one token family per connection, each
//!    rotated strictly in sequence (a reused refresh token would revoke its family)
//!
//! Only 200 responses count as completed; anything else is an error, and the first few are
//! printed. Results go to stdout (Markdown) and to `target/bench/load.{json,md}`.
//!
//! The server binary is the one `cargo bench` builds alongside this bench (same profile as
//! `--release`, found through `CARGO_BIN_EXE_tessera`), so no nested `cargo build` is needed:
//! one would wait on the cargo lock and could pick up half-finished edits made since.
//!
//! Each phase also reports the server's RSS (idle before load, peak while the phase ran) and the
//! average CPU cores used by the server, by this load generator and by everything else on the
//! host during the measured window: the generator shares the machine, so read GET figures as
//! "server + client" throughput, and distrust a run where "other" is well above zero.
//!
//! Settings (environment): `LOAD_SECONDS` (10) measured seconds per phase, `LOAD_CONCURRENCY`
//! (32) connections, `LOAD_WARMUP_SECONDS` (2), `LOAD_MAX_REQUESTS` (5 000 000) cap per phase,
//! `TESSERA_DATABASE_URL` (passed to the server; SQLite in the temp dir otherwise),
//! `TESSERA_BIN` (another server binary instead of the one cargo built).

use std::fmt::Write as _;
use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderValue, LOCATION};
use serde::Serialize;

type R<T> = Result<T, String>;

trait Context<T> {
    fn ctx(self, what: &str) -> R<T>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn ctx(self, what: &str) -> R<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// Registered for the bench client; never fetched (port 9 is "discard").
const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
/// RFC 7636 appendix B: a valid verifier and its S256 challenge.
const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const DEMO_EMAIL: &str = "demo@example.com";
const DEMO_PASSWORD: &str = "tessera-demo";
/// Codes live 60 s on the server; older ones are skipped rather than sent.
const CODE_MAX_AGE: Duration = Duration::from_secs(45);
/// Longest stretch of the code-exchange phase run on one batch of pre-made codes.
const CODE_SEGMENT_SECS: f64 = 15.0;
const ERROR_SAMPLES: usize = 5;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Settings

#[derive(Debug, Clone, Serialize)]
struct Settings {
    seconds: f64,
    warmup_seconds: f64,
    concurrency: usize,
    max_requests_per_phase: u64,
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> R<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a number")),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> R<Settings> {
        let s = Settings {
            seconds: env_num("LOAD_SECONDS", 10.0)?,
            warmup_seconds: env_num("LOAD_WARMUP_SECONDS", 2.0)?,
            concurrency: env_num("LOAD_CONCURRENCY", 32)?,
            max_requests_per_phase: env_num("LOAD_MAX_REQUESTS", 5_000_000)?,
        };
        if !(s.seconds > 0.0 && s.seconds <= 3600.0) {
            return Err("LOAD_SECONDS must be in (0, 3600]".into());
        }
        if !(0.0..=600.0).contains(&s.warmup_seconds) {
            return Err("LOAD_WARMUP_SECONDS must be in [0, 600]".into());
        }
        if !(1..=1024).contains(&s.concurrency) {
            return Err("LOAD_CONCURRENCY must be in [1, 1024]".into());
        }
        if s.max_requests_per_phase == 0 {
            return Err("LOAD_MAX_REQUESTS must be positive".into());
        }
        Ok(s)
    }
}

// ---------------------------------------------------------------------------------------------
// The server process

/// The server child process; killed (and its data directory removed) when dropped, so also on
/// errors, panics and Ctrl-C (the run future is dropped).
struct Server {
    child: Child,
    pid: u32,
    base: String,
    bin: PathBuf,
    log_path: PathBuf,
    // Declared last: removed after the child is dead.
    data_dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Variables passed through to the server and CLI; every other `TESSERA_*` is removed so that
/// a developer's environment does not change what is measured.
const PASS_THROUGH: &[&str] = &["TESSERA_DATABASE_URL", "TESSERA_LOG"];

fn tessera_command(bin: &Path, data_dir: &Path, port: u16) -> Command {
    let mut cmd = Command::new(bin);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("TESSERA_") && !PASS_THROUGH.contains(&name.as_str()) {
            cmd.env_remove(&name);
        }
    }
    cmd.env("TESSERA_DATA_DIR", data_dir)
        .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
        .env("TESSERA_ISSUER", format!("http://127.0.0.1:{port}"))
        .env("TESSERA_DEMO", "true")
        .stdin(Stdio::null());
    cmd
}

fn free_port() -> R<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").ctx("binding a probe socket")?;
    Ok(listener.local_addr().ctx("probe socket address")?.port())
}

fn server_binary() -> PathBuf {
    match std::env::var_os("TESSERA_BIN") {
        Some(p) => PathBuf::from(p),
        // Cargo builds the package's binaries (same profile) before running a bench.
        None => PathBuf::from(env!("CARGO_BIN_EXE_tessera")),
    }
}

fn tail(path: &Path, bytes: u64) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(std::io::SeekFrom::Start(len.saturating_sub(bytes)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    s
}

async fn start_server(bin: &Path) -> R<Server> {
    let mut last_error = String::new();
    // The probed port could be taken before the server binds it: try a few times.
    for _attempt in 0..3 {
        let data_dir = tempfile::Builder::new()
            .prefix("tessera-load-")
            .tempdir()
            .ctx("creating the data directory")?;
        let port = free_port()?;
        let log_path = data_dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).ctx("creating the server log")?;
        let log2 = log.try_clone().ctx("cloning the log handle")?;
        let child = tessera_command(bin, data_dir.path(), port)
            .arg("serve")
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .ctx(&format!("starting {}", bin.display()))?;
        let pid = child.id();
        let mut server = Server {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            bin: bin.to_owned(),
            log_path,
            data_dir,
        };
        match wait_ready(&mut server).await {
            Ok(()) => return Ok(server),
            // Exited early (the port was taken, say): try again. Still running: give up.
            Err(e) if matches!(server.child.try_wait(), Ok(Some(_))) => last_error = e,
            Err(e) => return Err(e),
        }
    }
    Err(last_error)
}

async fn wait_ready(server: &mut Server) -> R<()> {
    let http = plain_client()?;
    let url = format!("{}/readyz", server.base);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.child.try_wait().ctx("polling the server")? {
            return Err(format!(
                "the server exited during start-up ({status}); log:\n{}",
                tail(&server.log_path, 4000)
            ));
        }
        if let Ok(resp) = http.get(&url).send().await
            && resp.status() == 200
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{url} not ready after 60 s; log:\n{}",
                tail(&server.log_path, 4000)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// `tessera client create` against the server's database.
fn create_client(server: &Server) -> R<(String, String)> {
    let out = tessera_command(&server.bin, server.data_dir.path(), port_of(&server.base))
        .args([
            "client",
            "create",
            "--name",
            "load-bench",
            "--redirect-uri",
            REDIRECT_URI,
        ])
        .output()
        .ctx("running tessera client create")?;
    if !out.status.success() {
        return Err(format!(
            "tessera client create failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).ctx("tessera client create output is not JSON")?;
    let id = v["client_id"]
        .as_str()
        .ok_or("no client_id in the CLI output")?;
    let secret = v["client_secret"]
        .as_str()
        .ok_or("no client_secret in the CLI output")?;
    Ok((id.to_owned(), secret.to_owned()))
}

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Samples the server's VmRSS every 50 ms until stopped; returns the largest value seen.
struct RssSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak = 0;
            loop {
                peak = peak.max(rss_kib(pid, "VmRSS").unwrap_or(0));
                if flag.load(Ordering::Relaxed) {
                    return peak;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        RssSampler { stop, task }
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or(0)
    }
}

/// Clock ticks of `/proc` (USER_HZ), 100 on every common Linux build.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time so far of the server, of this load generator, and of the whole host.
#[derive(Clone, Copy)]
struct CpuSnapshot {
    at: Instant,
    server: u64,
    loadgen: u64,
    host_busy: u64,
}

fn process_ticks(stat_path: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(stat_path) else {
        return 0;
    };
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(14) + get(15)
}

fn host_busy_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    total.saturating_sub(v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0))
}

impl CpuSnapshot {
    fn take(server_pid: u32) -> CpuSnapshot {
        CpuSnapshot {
            at: Instant::now(),
            server: process_ticks(&format!("/proc/{server_pid}/stat")),
            loadgen: process_ticks("/proc/self/stat"),
            host_busy: host_busy_ticks(),
        }
    }
}

/// CPU used during measured windows, summed over windows (segments).
#[derive(Clone, Copy, Default)]
struct CpuUsage {
    wall: f64,
    server: u64,
    loadgen: u64,
    other: u64,
}

impl CpuUsage {
    fn between(a: CpuSnapshot, b: CpuSnapshot) -> CpuUsage {
        let server = b.server.saturating_sub(a.server);
        let loadgen = b.loadgen.saturating_sub(a.loadgen);
        CpuUsage {
            wall: b.at.saturating_duration_since(a.at).as_secs_f64(),
            server,
            loadgen,
            other: b
                .host_busy
                .saturating_sub(a.host_busy)
                .saturating_sub(server + loadgen),
        }
    }

    fn add(&mut self, o: CpuUsage) {
        self.wall += o.wall;
        self.server += o.server;
        self.loadgen += o.loadgen;
        self.other += o.other;
    }

    /// Average cores busy: (server, load generator, everything else on the host).
    fn cores(&self) -> (f64, f64, f64) {
        let d = (self.wall * TICKS_PER_SECOND).max(1.0);
        let c = |t: u64| round(t as f64 / d, 2);
        (c(self.server), c(self.loadgen), c(self.other))
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing

/// One client per load worker: its own pool, so each worker holds exactly one keep-alive
/// connection.
fn plain_client() -> R<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .no_gzip()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .ctx("building an HTTP client")
}

/// What every worker needs to talk to the server as the bench client and the signed-in user.
struct Target {
    base: String,
    /// The server process, for CPU accounting.
    pid: u32,
    token_url: String,
    /// `GET /authorize` for `scope=openid` and for `scope=openid offline_access`.
    authorize_url: String,
    authorize_offline_url: String,
    /// `tessera_browser=…; tessera_session=…`.
    cookie: HeaderValue,
    basic: HeaderValue,
    redirect_uri_enc: String,
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s: String = s.chars().take(300).collect();
    s.replace('\n', " ")
}

impl Target {
    fn new(
        base: &str,
        pid: u32,
        client_id: &str,
        client_secret: &str,
        cookie: HeaderValue,
    ) -> R<Target> {
        let authorize = |scope: &str| {
            format!(
                "{base}/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}\
                 &state=load&nonce=n-load&code_challenge={PKCE_CHALLENGE}&code_challenge_method=S256",
                enc(client_id),
                enc(REDIRECT_URI),
                enc(scope),
            )
        };
        // RFC 6749 §2.3.1: id and secret are form-encoded before base64.
        let credentials = format!("{}:{}", enc(client_id), enc(client_secret));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        );
        Ok(Target {
            base: base.to_owned(),
            pid,
            token_url: format!("{base}/token"),
            authorize_url: authorize("openid"),
            authorize_offline_url: authorize("openid offline_access"),
            cookie,
            basic: HeaderValue::from_str(&basic).ctx("basic header")?,
            redirect_uri_enc: enc(REDIRECT_URI),
        })
    }

    /// `GET /authorize` with the session cookie: expects 303 to the redirect URI with a code.
    async fn code(&self, http: &reqwest::Client, offline: bool) -> R<String> {
        let url = if offline {
            &self.authorize_offline_url
        } else {
            &self.authorize_url
        };
        let resp = http
            .get(url)
            .header(COOKIE, self.cookie.clone())
            .send()
            .await
            .ctx("GET /authorize")?;
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes().await.ctx("GET /authorize body")?;
        let location = match (status.as_u16(), location) {
            (303, Some(l)) => l,
            _ => return Err(format!("GET /authorize: {status} {}", snippet(&body))),
        };
        let url = url::Url::parse(&location).ctx("GET /authorize: Location")?;
        url.query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| format!("GET /authorize: 303 without a code: {location}"))
    }

    /// `POST /token` with the given form body; returns the JSON body of a 200.
    async fn token(&self, http: &reqwest::Client, form: String) -> R<bytes::Bytes> {
        let resp = http
            .post(&self.token_url)
            .header(AUTHORIZATION, self.basic.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .ctx("POST /token")?;
        let status = resp.status();
        let body = resp.bytes().await.ctx("POST /token body")?;
        if status != 200 {
            return Err(format!("POST /token: {status} {}", snippet(&body)));
        }
        Ok(body)
    }

    fn code_form(&self, code: &str) -> String {
        format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={PKCE_VERIFIER}",
            enc(code),
            self.redirect_uri_enc
        )
    }

    /// A new refresh-token family: authorize with `offline_access`, exchange the code.
    async fn new_family(&self, http: &reqwest::Client) -> R<String> {
        let code = self.code(http, true).await?;
        let body = self.token(http, self.code_form(&code)).await?;
        let v: serde_json::Value = serde_json::from_slice(&body).ctx("token response")?;
        v["refresh_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no refresh_token in {}", snippet(&body)))
    }
}

fn attr_value<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let v = rest.find("value=\"")? + "value=\"".len();
    let end = rest[v..].find('"')?;
    Some(&rest[v..v + end])
}

/// Signs the demo user in once, like a browser without following redirects; returns the
/// cookies (`tessera_browser` and `tessera_session`) to send with `/authorize` from then on.
async fn sign_in(base: &str, client_id: &str) -> R<HeaderValue> {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar.clone())
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .ctx("building the sign-in client")?;
    let base_url = url::Url::parse(base).ctx("base URL")?;
    let expect_redirect = |resp: &reqwest::Response, what: &str| -> R<url::Url> {
        let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok());
        match (resp.status().as_u16(), location) {
            (303, Some(l)) => base_url.join(l).ctx(what),
            (s, l) => Err(format!("{what}: expected 303, got {s} (Location {l:?})")),
        }
    };
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s&nonce=n",
        enc(client_id),
        enc(REDIRECT_URI)
    );
    let resp = http.get(&authorize).send().await.ctx("GET /authorize")?;
    let login = expect_redirect(&resp, "GET /authorize without a session")?;
    if login.path() != "/login" {
        return Err(format!(
            "GET /authorize without a session went to {login}, not /login"
        ));
    }
    let resp = http.get(login.clone()).send().await.ctx("GET /login")?;
    let status = resp.status();
    let html = resp.text().await.ctx("GET /login body")?;
    if status != 200 {
        return Err(format!("GET /login: {status} {}", snippet(html.as_bytes())));
    }
    let request = attr_value(&html, "request").ok_or("no hidden input request on /login")?;
    let csrf = attr_value(&html, "csrf").ok_or("no hidden input csrf on /login")?;
    let resp = http
        .post(format!("{base}/login"))
        .form(&[
            ("request", request),
            ("csrf", csrf),
            ("email", DEMO_EMAIL),
            ("password", DEMO_PASSWORD),
        ])
        .send()
        .await
        .ctx("POST /login")?;
    let resume = expect_redirect(&resp, "POST /login")?;
    if resume.path() != "/authorize/resume" {
        return Err(format!(
            "POST /login went to {resume}, not /authorize/resume"
        ));
    }
    let resp = http.get(resume).send().await.ctx("GET /authorize/resume")?;
    let back = expect_redirect(&resp, "GET /authorize/resume")?;
    if !back.as_str().starts_with(REDIRECT_URI) || !back.query_pairs().any(|(k, _)| k == "code") {
        return Err(format!(
            "GET /authorize/resume went to {back}, expected {REDIRECT_URI}?code=…"
        ));
    }
    let cookies = reqwest::cookie::CookieStore::cookies(&*jar, &base_url)
        .ok_or("the sign-in set no cookies")?;
    let text = cookies.to_str().unwrap_or_default();
    for name in ["tessera_browser=", "tessera_session="] {
        if !text.contains(name) {
            return Err(format!(
                "cookie {name}… missing after sign-in (have: {text})"
            ));
        }
    }
    Ok(cookies)
}

// ---------------------------------------------------------------------------------------------
// Load workers

/// Pre-made authorization codes, handed out oldest first.
struct CodePool {
    codes: Vec<(String, Instant)>,
    next: AtomicUsize,
    stale: AtomicU64,
}

impl CodePool {
    fn take(&self) -> Option<&str> {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let (code, made) = self.codes.get(i)?;
            if made.elapsed() < CODE_MAX_AGE {
                return Some(code);
            }
            self.stale.fetch_add(1, Ordering::Relaxed);
        }
    }
}

enum Job {
    Get(String),
    Exchange(Arc<CodePool>),
    Refresh(String),
}

struct Worker {
    http: reqwest::Client,
    job: Job,
}

enum Outcome {
    Ok,
    Err(String),
    /// Nothing left to do (the code pool is empty).
    Done,
}

impl Worker {
    fn new(job: Job) -> R<Worker> {
        Ok(Worker {
            http: plain_client()?,
            job,
        })
    }

    async fn step(&mut self, target: &Target) -> Outcome {
        match &mut self.job {
            Job::Get(url) => {
                let resp = match self.http.get(url.as_str()).send().await {
                    Ok(r) => r,
                    Err(e) => return Outcome::Err(format!("GET {url}: {e}")),
                };
                let status = resp.status();
                match resp.bytes().await {
                    Ok(_) if status == 200 => Outcome::Ok,
                    Ok(body) => Outcome::Err(format!("GET {url}: {status} {}", snippet(&body))),
                    Err(e) => Outcome::Err(format!("GET {url}: body: {e}")),
                }
            }
            Job::Exchange(pool) => {
                let Some(code) = pool.take() else {
                    return Outcome::Done;
                };
                match target.token(&self.http, target.code_form(code)).await {
                    Ok(body) if contains(&body, b"\"id_token\"") => Outcome::Ok,
                    Ok(body) => Outcome::Err(format!(
                        "code exchange without id_token: {}",
                        snippet(&body)
                    )),
                    Err(e) => Outcome::Err(e),
                }
            }
            Job::Refresh(token) => {
                let form = format!("grant_type=refresh_token&refresh_token={}", enc(token));
                let body = match target.token(&self.http, form).await {
                    Ok(b) => b,
                    Err(e) => return Outcome::Err(e),
                };
                let v: serde_json::Value = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => return Outcome::Err(format!("refresh response is not JSON: {e}")),
                };
                match (v["refresh_token"].as_str(), v["id_token"].as_str()) {
                    (Some(next), Some(_)) => {
                        *token = next.to_owned();
                        Outcome::Ok
                    }
                    _ => Outcome::Err(format!("refresh response lacks tokens: {}", snippet(&body))),
                }
            }
        }
    }

    /// After an error a refresh family may be dead (or its newest token unknown): start a new one.
    async fn recover(&mut self, target: &Target) -> R<()> {
        if let Job::Refresh(token) = &mut self.job {
            *token = target.new_family(&self.http).await?;
        }
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Counters of one phase shared by its workers.
struct PhaseShared {
    cap: u64,
    issued: AtomicU64,
    errors: AtomicU64,
    samples: Mutex<Vec<String>>,
    /// Set when a worker stops before the deadline (pool empty, cap reached, dead worker).
    stopped_early: Mutex<Option<Instant>>,
}

impl PhaseShared {
    fn new(cap: u64) -> Arc<PhaseShared> {
        Arc::new(PhaseShared {
            cap,
            issued: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            samples: Mutex::new(Vec::new()),
            stopped_early: Mutex::new(None),
        })
    }

    fn error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut samples = self.samples.lock().unwrap();
        if samples.len() < ERROR_SAMPLES {
            samples.push(message);
        }
    }

    /// Adds the errors and requests of a sub-run (warm-up, segment) to this phase.
    fn absorb(&self, other: &PhaseShared, prefix: &str) {
        let samples = other.samples.lock().unwrap().clone();
        let errors = other.errors.load(Ordering::Relaxed);
        for e in &samples {
            self.error(format!("{prefix}{e}"));
        }
        self.errors
            .fetch_add(errors - samples.len() as u64, Ordering::Relaxed);
        self.issued
            .fetch_add(other.issued.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    fn stop_early(&self, at: Instant, why: &str) {
        let mut first = self.stopped_early.lock().unwrap();
        if first.is_none() {
            *first = Some(at);
            if why == "cap" {
                eprintln!("  request cap reached");
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    /// Latencies (µs) of the 200s that started and finished inside the measured window.
    latencies: Vec<u32>,
    /// Every 200, warm-up included.
    ok_all: u64,
    /// CPU used from `measure_from` until the workers stopped.
    cpu: CpuUsage,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.ok_all += other.ok_all;
    }
}

/// Runs the workers until `end`, counting requests that start after `measure_from` and finish
/// before `end`. Returns the workers (their refresh tokens live on) and the tally.
async fn drive(
    target: &Arc<Target>,
    workers: Vec<Worker>,
    measure_from: Instant,
    end: Instant,
    shared: &Arc<PhaseShared>,
) -> R<(Vec<Worker>, Tally)> {
    let pid = target.pid;
    let first = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        CpuSnapshot::take(pid)
    });
    let mut tasks = Vec::with_capacity(workers.len());
    for mut w in workers {
        let target = target.clone();
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                if shared.issued.fetch_add(1, Ordering::Relaxed) >= shared.cap {
                    shared.stop_early(t0, "cap");
                    break;
                }
                let outcome = w.step(&target).await;
                let done = Instant::now();
                match outcome {
                    Outcome::Ok => {
                        tally.ok_all += 1;
                        if t0 >= measure_from && done <= end {
                            let us = done.duration_since(t0).as_micros().min(u32::MAX as u128);
                            tally.latencies.push(us as u32);
                        }
                    }
                    Outcome::Err(e) => {
                        shared.error(e);
                        if let Err(e) = w.recover(&target).await {
                            shared.error(format!("worker gave up: {e}"));
                            shared.stop_early(Instant::now(), "dead");
                            break;
                        }
                    }
                    Outcome::Done => {
                        shared.stop_early(t0, "empty");
                        break;
                    }
                }
            }
            (w, tally)
        }));
    }
    let mut workers = Vec::with_capacity(tasks.len());
    let mut tally = Tally::default();
    for t in tasks {
        let (w, part) = t.await.ctx("load worker panicked")?;
        workers.push(w);
        tally.merge(part);
    }
    let last = CpuSnapshot::take(pid);
    let first = first.await.ctx("CPU snapshot task")?;
    tally.cpu = CpuUsage::between(first, last);
    Ok((workers, tally))
}

/// Makes `n` codes with `concurrency` connections; a few failures are tolerated (and reported).
async fn make_codes(
    target: &Arc<Target>,
    n: usize,
    concurrency: usize,
    shared: &Arc<PhaseShared>,
) -> R<Vec<(String, Instant)>> {
    let remaining = Arc::new(AtomicUsize::new(n));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.min(n.max(1)) {
        let (target, remaining, failures, shared) = (
            target.clone(),
            remaining.clone(),
            failures.clone(),
            shared.clone(),
        );
        let http = plain_client()?;
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1))
                .is_ok()
            {
                match target.code(&http, false).await {
                    Ok(code) => out.push((code, Instant::now())),
                    Err(e) => {
                        shared.error(format!("making codes: {e}"));
                        if failures.fetch_add(1, Ordering::Relaxed) > n / 100 + 10 {
                            break;
                        }
                    }
                }
            }
            out
        }));
    }
    let mut codes = Vec::with_capacity(n);
    for t in tasks {
        codes.extend(t.await.ctx("code maker panicked")?);
    }
    if failures.load(Ordering::Relaxed) > n / 100 + 10 {
        return Err(format!(
            "too many failures making codes; first: {:?}",
            shared.samples.lock().unwrap()
        ));
    }
    codes.sort_by_key(|(_, made)| *made);
    Ok(codes)
}

// ---------------------------------------------------------------------------------------------
// Phases

#[derive(Debug, Clone, Serialize)]
struct PhaseResult {
    name: String,
    requests: u64,
    measured_seconds: f64,
    requests_per_second: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
    error_samples: Vec<String>,
    rss_peak_kib: u64,
    rss_after_kib: u64,
    /// Average cores busy during the measured window.
    cpu_server_cores: f64,
    cpu_loadgen_cores: f64,
    /// Other processes on the host: anything well above 0 disturbs the figures.
    cpu_other_cores: f64,
    notes: Vec<String>,
}

fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn finish_phase(
    name: &str,
    mut latencies: Vec<u32>,
    measured: Duration,
    shared: &PhaseShared,
    (rss_peak_kib, rss_after_kib): (u64, u64),
    cpu: CpuUsage,
    notes: Vec<String>,
) -> PhaseResult {
    let (cpu_server_cores, cpu_loadgen_cores, cpu_other_cores) = cpu.cores();
    latencies.sort_unstable();
    let secs = measured.as_secs_f64().max(1e-3);
    let requests = latencies.len() as u64;
    PhaseResult {
        name: name.to_owned(),
        requests,
        measured_seconds: round(secs, 3),
        requests_per_second: round(requests as f64 / secs, 1),
        p50_ms: round(percentile_ms(&latencies, 0.50), 3),
        p90_ms: round(percentile_ms(&latencies, 0.90), 3),
        p99_ms: round(percentile_ms(&latencies, 0.99), 3),
        max_ms: round(latencies.last().copied().unwrap_or(0) as f64 / 1000.0, 3),
        errors: shared.errors.load(Ordering::Relaxed),
        error_samples: shared.samples.lock().unwrap().clone(),
        rss_peak_kib,
        rss_after_kib,
        cpu_server_cores,
        cpu_loadgen_cores,
        cpu_other_cores,
        notes,
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// The measured window: from `measure_from` to the deadline, or to when workers began stopping.
fn window(shared: &PhaseShared, measure_from: Instant, end: Instant) -> Duration {
    let stop = shared
        .stopped_early
        .lock()
        .unwrap()
        .map_or(end, |s| s.min(end));
    stop.saturating_duration_since(measure_from)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Phases 1 and 2: a GET of a prepared document.
async fn phase_get(
    name: &str,
    path: &str,
    target: &Arc<Target>,
    s: &Settings,
    pid: u32,
) -> R<PhaseResult> {
    let rss = RssSampler::start(pid);
    let shared = PhaseShared::new(s.max_requests_per_phase);
    let url = format!("{}{path}", target.base);
    let workers = (0..s.concurrency)
        .map(|_| Worker::new(Job::Get(url.clone())))
        .collect::<R<Vec<_>>>()?;
    let start = Instant::now();
    let measure_from = start + secs(s.warmup_seconds);
    let end = measure_from + secs(s.seconds);
    let (_, tally) = drive(target, workers, measure_from, end, &shared).await?;
    let measured = window(&shared, measure_from, end);
    let peak = rss.finish().await;
    let after = rss_kib(pid, "VmRSS").unwrap_or(0);
    Ok(finish_phase(
        name,
        tally.latencies,
        measured,
        &shared,
        (peak, after),
        tally.cpu,
        Vec::new(),
    ))
}

/// Phase 3: code exchange, in segments each preceded (untimed) by making its codes.
async fn phase_code_exchange(target: &Arc<Target>, s: &Settings, pid: u32) -> R<PhaseResult> {
    let rss = RssSampler::start(pid);
    let shared = PhaseShared::new(s.max_requests_per_phase);
    let mut notes = Vec::new();
    let c = s.concurrency;

    // Warm-up, which also estimates the rate to size the batches of codes: rounds of growing
    // batches until the warm-up time is used up.
    let mut rate = 0.0_f64;
    let mut left = s.warmup_seconds;
    for _round in 0..6 {
        if left < 0.2 {
            break;
        }
        let n = ((rate * left * 1.3) as usize).max(c * 16).max(256);
        let codes = make_codes(target, n, c, &shared).await?;
        let pool = Arc::new(CodePool {
            codes,
            next: AtomicUsize::new(0),
            stale: AtomicU64::new(0),
        });
        let workers = (0..c)
            .map(|_| Worker::new(Job::Exchange(pool.clone())))
            .collect::<R<Vec<_>>>()?;
        let start = Instant::now();
        let end = start + secs(left);
        let warm = PhaseShared::new(s.max_requests_per_phase);
        let (_, tally) = drive(target, workers, start, end, &warm).await?;
        let took = window(&warm, start, end).as_secs_f64().max(0.05);
        rate = tally.latencies.len() as f64 / took;
        left -= took;
        // Warm-up errors count as errors of the phase.
        shared.absorb(&warm, "warm-up: ");
    }
    if s.warmup_seconds > 0.0 {
        eprintln!("  warm-up: {rate:.0} exchanges/s");
    }
    let mut rate = rate.max(50.0);

    let mut latencies = Vec::new();
    let mut cpu = CpuUsage::default();
    let mut measured = Duration::ZERO;
    let mut remaining = s.seconds;
    let mut made_total = 0usize;
    let mut stale_total = 0u64;
    let mut segments = 0;
    while remaining > 0.01 && segments < 100 {
        segments += 1;
        let seg = remaining.min(CODE_SEGMENT_SECS);
        let left_in_cap = shared
            .cap
            .saturating_sub(shared.issued.load(Ordering::Relaxed)) as f64;
        if left_in_cap < 1.0 {
            notes.push("request cap reached".into());
            break;
        }
        let n = ((rate * seg * 1.5) as usize + c * 8).min(left_in_cap as usize + c);
        let made_at = Instant::now();
        let codes = make_codes(target, n, c, &shared).await?;
        let making = made_at.elapsed();
        made_total += codes.len();
        let pool = Arc::new(CodePool {
            codes,
            next: AtomicUsize::new(0),
            stale: AtomicU64::new(0),
        });
        let workers = (0..c)
            .map(|_| Worker::new(Job::Exchange(pool.clone())))
            .collect::<R<Vec<_>>>()?;
        let seg_shared = PhaseShared::new(
            shared
                .cap
                .saturating_sub(shared.issued.load(Ordering::Relaxed)),
        );
        let start = Instant::now();
        let end = start + secs(seg);
        let (_, tally) = drive(target, workers, start, end, &seg_shared).await?;
        let took = window(&seg_shared, start, end);
        let seg_rate = tally.latencies.len() as f64 / took.as_secs_f64().max(1e-3);
        eprintln!(
            "  segment {segments}: {} codes made in {:.1} s, {seg_rate:.0} exchanges/s over {:.1} s",
            pool.codes.len(),
            making.as_secs_f64(),
            took.as_secs_f64()
        );
        if took.as_secs_f64() + 0.05 < seg {
            notes.push(format!(
                "segment {segments}: codes ran out after {:.1} s of {seg:.1} s (made {n})",
                took.as_secs_f64()
            ));
        }
        stale_total += pool.stale.load(Ordering::Relaxed);
        latencies.extend(tally.latencies);
        cpu.add(tally.cpu);
        measured += took;
        remaining -= took.as_secs_f64().max(0.1);
        rate = rate.max(seg_rate);
        shared.absorb(&seg_shared, "");
    }
    if stale_total > 0 {
        notes.push(format!(
            "{stale_total} codes older than {} s skipped",
            CODE_MAX_AGE.as_secs()
        ));
    }
    notes.push(format!(
        "{made_total} codes made beforehand in {segments} segment(s), untimed"
    ));
    let peak = rss.finish().await;
    let after = rss_kib(pid, "VmRSS").unwrap_or(0);
    Ok(finish_phase(
        "token: authorization_code",
        latencies,
        measured,
        &shared,
        (peak, after),
        cpu,
        notes,
    ))
}

/// Phase 4: each connection rotates its own refresh-token family.
async fn phase_refresh(target: &Arc<Target>, s: &Settings, pid: u32) -> R<PhaseResult> {
    let rss = RssSampler::start(pid);
    let shared = PhaseShared::new(s.max_requests_per_phase);
    let mut families = Vec::new();
    for _ in 0..s.concurrency {
        let target = target.clone();
        families.push(tokio::spawn(async move {
            let http = plain_client()?;
            let token = target.new_family(&http).await?;
            Ok::<_, String>(Worker {
                http,
                job: Job::Refresh(token),
            })
        }));
    }
    let mut workers = Vec::new();
    for f in families {
        workers.push(f.await.ctx("family setup panicked")??);
    }
    let start = Instant::now();
    let measure_from = start + secs(s.warmup_seconds);
    let end = measure_from + secs(s.seconds);
    let (_, tally) = drive(target, workers, measure_from, end, &shared).await?;
    let measured = window(&shared, measure_from, end);
    let peak = rss.finish().await;
    let after = rss_kib(pid, "VmRSS").unwrap_or(0);
    let notes = vec![format!(
        "{} refresh-token families, one per connection",
        s.concurrency
    )];
    Ok(finish_phase(
        "token: refresh_token",
        tally.latencies,
        measured,
        &shared,
        (peak, after),
        tally.cpu,
        notes,
    ))
}

// ---------------------------------------------------------------------------------------------
// Report

#[derive(Debug, Serialize)]
struct Report {
    unix_time: u64,
    git_commit: Option<String>,
    backend: String,
    cpus: usize,
    settings: Settings,
    server_binary: String,
    rss_idle_kib: u64,
    rss_high_water_kib: u64,
    phases: Vec<PhaseResult>,
    /// WARN/ERROR lines the server logged while under load.
    server_log_problems: usize,
    server_log_samples: Vec<String>,
}

fn mib(kib: u64) -> f64 {
    round(kib as f64 / 1024.0, 1)
}

fn markdown(r: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Tessera load test\n");
    let _ = writeln!(
        md,
        "Backend **{}**, {} connections, {} s per phase after {} s warm-up, {} CPU(s) shared by \
         server and load generator{}.\n",
        r.backend,
        r.settings.concurrency,
        r.settings.seconds,
        r.settings.warmup_seconds,
        r.cpus,
        r.git_commit
            .as_deref()
            .map(|c| format!(", commit {c}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        md,
        "| Phase | Requests | req/s | p50 ms | p99 ms | max ms | Errors | Peak RSS MiB | CPU cores server / load gen / other |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &r.phases {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {:.2} | {:.2} | {:.1} | {} | {:.1} | {:.2} / {:.2} / {:.2} |",
            p.name,
            p.requests,
            p.requests_per_second,
            p.p50_ms,
            p.p99_ms,
            p.max_ms,
            p.errors,
            mib(p.rss_peak_kib),
            p.cpu_server_cores,
            p.cpu_loadgen_cores,
            p.cpu_other_cores,
        );
    }
    let busy = r
        .phases
        .iter()
        .map(|p| p.cpu_other_cores)
        .fold(0.0, f64::max);
    if r.backend == "postgres" {
        let _ = writeln!(
            md,
            "\n\"Other\" CPU includes the PostgreSQL server (when it runs on this host)."
        );
    } else if busy > 0.25 {
        let _ = writeln!(
            md,
            "\n**Other processes used up to {busy:.2} cores during measurement: figures are disturbed.**"
        );
    }
    let _ = writeln!(
        md,
        "\nServer RSS: {:.1} MiB idle before load, {:.1} MiB high-water mark (VmHWM) at the end.",
        mib(r.rss_idle_kib),
        mib(r.rss_high_water_kib)
    );
    for p in &r.phases {
        for n in &p.notes {
            let _ = writeln!(md, "\n- {}: {n}", p.name);
        }
        for e in &p.error_samples {
            let _ = writeln!(md, "\n- {} error: `{e}`", p.name);
        }
    }
    if r.server_log_problems > 0 {
        let _ = writeln!(
            md,
            "\nServer logged {} WARN/ERROR line(s) under load, e.g.:\n",
            r.server_log_problems
        );
        for l in &r.server_log_samples {
            let _ = writeln!(md, "    {l}");
        }
    }
    md
}

fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!commit.is_empty()).then_some(commit)
}

/// Removes ANSI colour sequences (`ESC [ … m`), which the server's text log may contain.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn log_problems(path: &Path, from: u64) -> (usize, Vec<String>) {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[(from as usize).min(text.len())..]).into_owned();
    let lines: Vec<String> = text
        .lines()
        .map(strip_ansi)
        .filter(|l| {
            l.contains(" WARN ")
                || l.contains(" ERROR ")
                || l.contains("\"WARN\"")
                || l.contains("\"ERROR\"")
        })
        .map(|l| l.chars().take(300).collect())
        .collect();
    (lines.len(), lines.into_iter().take(5).collect())
}

// ---------------------------------------------------------------------------------------------

async fn run(s: Settings) -> R<Report> {
    // Read now, close to the build: others may commit while the phases run.
    let git_commit = git_commit();
    let bin = server_binary();
    if !bin.exists() {
        return Err(format!("server binary {} not found", bin.display()));
    }
    let backend = match std::env::var("TESSERA_DATABASE_URL") {
        Ok(u) if u.starts_with("postgres") => "postgres",
        _ => "sqlite",
    };
    eprintln!("load: starting {} ({backend})", bin.display());
    let server = start_server(&bin).await?;
    eprintln!("load: server pid {} at {}", server.pid, server.base);
    let (client_id, client_secret) = create_client(&server)?;
    let cookie = sign_in(&server.base, &client_id).await?;
    let target = Arc::new(Target::new(
        &server.base,
        server.pid,
        &client_id,
        &client_secret,
        cookie,
    )?);
    // One full round trip before measuring anything.
    target
        .new_family(&plain_client()?)
        .await
        .ctx("sanity check of the code flow")?;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_kib(server.pid, "VmRSS").unwrap_or(0);
    let log_from = std::fs::metadata(&server.log_path)
        .map(|m| m.len())
        .unwrap_or(0);

    let mut phases = Vec::new();
    let phase_list: [&str; 4] = ["discovery", "jwks", "code", "refresh"];
    for which in phase_list {
        eprintln!("load: phase {which}");
        let result = match which {
            "discovery" => {
                phase_get(
                    "GET discovery",
                    "/.well-known/openid-configuration",
                    &target,
                    &s,
                    server.pid,
                )
                .await?
            }
            "jwks" => phase_get("GET jwks", "/jwks", &target, &s, server.pid).await?,
            "code" => phase_code_exchange(&target, &s, server.pid).await?,
            _ => phase_refresh(&target, &s, server.pid).await?,
        };
        eprintln!(
            "  {:.1} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            result.requests_per_second, result.p50_ms, result.p99_ms, result.errors
        );
        for e in &result.error_samples {
            eprintln!("  error: {e}");
        }
        phases.push(result);
        // Let the server settle between phases.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let mut server = server;
    if let Ok(Some(status)) = server.child.try_wait() {
        return Err(format!(
            "the server exited during the run ({status}); log:\n{}",
            tail(&server.log_path, 4000)
        ));
    }
    let rss_high_water = rss_kib(server.pid, "VmHWM").unwrap_or(0);
    let (problems, samples) = log_problems(&server.log_path, log_from);
    drop(server);
    Ok(Report {
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        git_commit,
        backend: backend.to_owned(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        settings: s,
        server_binary: bin.display().to_string(),
        rss_idle_kib: rss_idle,
        rss_high_water_kib: rss_high_water,
        phases,
        server_log_problems: problems,
        server_log_samples: samples,
    })
}

/// `target/` of this build: the server binary lives in `target/<profile>/`.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_tessera"))
        .parent()
        .and_then(Path::parent)
        .map(Path::to_owned)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn write_report(report: &Report) -> R<(PathBuf, PathBuf, String)> {
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).ctx(&format!("creating {}", dir.display()))?;
    let md = markdown(report);
    let json = serde_json::to_string_pretty(report).ctx("serialising the report")?;
    let (json_path, md_path) = (dir.join("load.json"), dir.join("load.md"));
    std::fs::write(&json_path, json + "\n").ctx(&format!("writing {}", json_path.display()))?;
    std::fs::write(&md_path, &md).ctx(&format!("writing {}", md_path.display()))?;
    Ok((json_path, md_path, md))
}

fn main() {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = run(settings) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
        }
    });
    // The server is dead by now (dropped with the run future); stop stray tasks too.
    runtime.shutdown_timeout(Duration::from_secs(1));
    let report = match outcome {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load: FAILED: {e}");
            std::process::exit(1);
        }
    };
    match write_report(&report) {
        Ok((json, md_path, md)) => {
            println!("{md}");
            eprintln!("load: wrote {} and {}", json.display(), md_path.display());
        }
        Err(e) => {
            println!("{}", markdown(&report));
            eprintln!("load: {e}");
            std::process::exit(1);
        }
    }
    let errors: u64 = report.phases.iter().map(|p| p.errors).sum();
    if errors > 0 {
        eprintln!("load: {errors} error(s) in total");
        std::process::exit(1);
    }
}
