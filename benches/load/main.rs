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

mod peer;
mod raw_http;
mod soak;

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
    /// GET phases run under `wrk` (installed, and `LOAD_WRK` is not `0`).
    wrk: bool,
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
            wrk: std::env::var("LOAD_WRK").map_or(true, |v| v != "0") && wrk_installed(),
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

fn wrk_installed() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
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
    /// Settings (`TESSERA_*`) this server was started with; a restart reuses them.
    env: Vec<(&'static str, String)>,
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

fn tessera_command(
    bin: &Path,
    data_dir: &Path,
    port: u16,
    env: &[(&'static str, String)],
) -> Command {
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
        // Several servers run at once (and a developer's own may hold the default port).
        .env("TESSERA_METRICS_BIND", "off")
        .envs(env.iter().map(|(k, v)| (k, v)))
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

async fn start_server(bin: &Path, env: &[(&'static str, String)]) -> R<Server> {
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
        let child = tessera_command(bin, data_dir.path(), port, env)
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
            env: env.to_vec(),
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

impl Server {
    /// Cold start: stops the server and starts it again on its existing database; returns the
    /// time from spawning the process to the first 200 from `/healthz`.
    async fn restart(&mut self) -> R<Duration> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = port_of(&self.base);
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .ctx("opening the server log")?;
        let log2 = log.try_clone().ctx("cloning the log handle")?;
        let url = format!("{}/healthz", self.base);
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(2))
            .build()
            .ctx("building the probe client")?;
        let spawned = Instant::now();
        self.child = tessera_command(&self.bin, self.data_dir.path(), port, &self.env)
            .arg("serve")
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .ctx("restarting the server")?;
        self.pid = self.child.id();
        loop {
            if let Ok(resp) = http.get(&url).send().await
                && resp.status() == 200
            {
                return Ok(spawned.elapsed());
            }
            if let Some(status) = self.child.try_wait().ctx("polling the server")? {
                return Err(format!("the restarted server exited ({status})"));
            }
            if spawned.elapsed() > Duration::from_secs(30) {
                return Err("the restarted server did not answer within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
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
    let out = tessera_command(
        &server.bin,
        server.data_dir.path(),
        port_of(&server.base),
        &server.env,
    )
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

/// CPU time so far of the server, of its signing threads, of this load generator, and of the
/// whole host.
#[derive(Clone, Copy)]
struct CpuSnapshot {
    at: Instant,
    server: u64,
    signing: u64,
    loadgen: u64,
    host_busy: u64,
}

/// The sum of the given fields (1-based, as in proc(5)) of a `/proc/PID/stat` file.
fn stat_ticks(stat_path: &str, fields: &[usize]) -> u64 {
    let Ok(stat) = std::fs::read_to_string(stat_path) else {
        return 0;
    };
    // Fields after the parenthesised command name: state is field 3.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let values: Vec<&str> = rest.split_whitespace().collect();
    fields
        .iter()
        .filter_map(|&n| values.get(n - 3).and_then(|v| v.parse::<u64>().ok()))
        .sum()
}

/// utime + stime.
fn process_ticks(stat_path: &str) -> u64 {
    stat_ticks(stat_path, &[14, 15])
}

/// CPU time of this process's children that have been waited for (cutime + cstime).
fn children_ticks() -> u64 {
    stat_ticks("/proc/self/stat", &[16, 17])
}

/// Tessera's RSA signing threads (`cpu::run`'s lane) are named `tessera-cpu-N`.
const SIGNING_THREAD_PREFIX: &str = "tessera-cpu-";

/// utime + stime of the process's threads whose name starts with `prefix` (0 for a process
/// without such threads, like the peer).
fn thread_ticks(pid: u32, prefix: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with(prefix))
        })
        .map(|task| process_ticks(&task.path().join("stat").to_string_lossy()))
        .sum()
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
            signing: thread_ticks(server_pid, SIGNING_THREAD_PREFIX),
            // This process and its finished children: `wrk` is waited for before the snapshot.
            loadgen: process_ticks("/proc/self/stat") + children_ticks(),
            host_busy: host_busy_ticks(),
        }
    }
}

/// CPU used during measured windows, summed over windows (segments).
#[derive(Clone, Copy, Default)]
struct CpuUsage {
    wall: f64,
    server: u64,
    signing: u64,
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
            signing: b.signing.saturating_sub(a.signing),
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
        self.signing += o.signing;
        self.loadgen += o.loadgen;
        self.other += o.other;
    }

    /// Average cores that `ticks` kept busy over the measured windows.
    fn average_cores(&self, ticks: u64) -> f64 {
        round(ticks as f64 / (self.wall * TICKS_PER_SECOND).max(1.0), 2)
    }

    /// Average cores busy: (server, load generator, everything else on the host).
    fn cores(&self) -> (f64, f64, f64) {
        let c = |t| self.average_cores(t);
        (c(self.server), c(self.loadgen), c(self.other))
    }

    /// Average cores busy in the server's signing threads (part of the server's cores).
    fn signing_cores(&self) -> f64 {
        self.average_cores(self.signing)
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

/// How a provider hands out codes to the signed-in bench user.
enum Flavor {
    /// Tessera: `GET /authorize` with the session cookie (`tessera_browser=…; tessera_session=…`).
    Tessera { cookie: HeaderValue },
    /// node-oidc-provider: its interaction flow, answered by the peer script.
    Peer,
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
    flavor: Flavor,
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
        flavor: Flavor,
    ) -> R<Target> {
        let authorize = |scope: &str| {
            if matches!(flavor, Flavor::Peer) {
                return peer::authorize_url(base, scope);
            }
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
            flavor,
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
        let cookie = match &self.flavor {
            Flavor::Tessera { cookie } => cookie.clone(),
            Flavor::Peer => return peer::code(url).await,
        };
        let resp = http
            .get(url)
            .header(COOKIE, cookie)
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
        if location.starts_with("/login") || location.contains("/login?") {
            return Err(format!(
                "GET /authorize: no session, sent to /login ({location})"
            ));
        }
        let url = url::Url::parse(&location).ctx("GET /authorize: Location")?;
        url.query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| format!("GET /authorize: 303 without a code: {location}"))
    }

    fn token_conn(&self) -> R<raw_http::TokenConn> {
        let authorization = self.basic.to_str().ctx("basic header")?;
        raw_http::TokenConn::new(&self.token_url, authorization, REQUEST_TIMEOUT)
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
    ClientCredentials,
}

struct Worker {
    /// Setup and recovery (codes, new families) and the GET job.
    http: reqwest::Client,
    /// The measured token requests ([`raw_http`]).
    conn: raw_http::TokenConn,
    job: Job,
}

enum Outcome {
    Ok,
    Err(String),
    /// Nothing left to do (the code pool is empty).
    Done,
}

impl Worker {
    fn new(target: &Target, job: Job) -> R<Worker> {
        Worker::with_client(target, plain_client()?, job)
    }

    fn with_client(target: &Target, http: reqwest::Client, job: Job) -> R<Worker> {
        Ok(Worker {
            http,
            conn: target.token_conn()?,
            job,
        })
    }
}

/// `POST /token` on a worker's own connection; the body of a 200.
async fn post_token(conn: &mut raw_http::TokenConn, form: &str) -> R<Vec<u8>> {
    let answer = conn
        .post(form)
        .await
        .map_err(|e| format!("POST /token: {e}"))?;
    if answer.status != 200 {
        return Err(format!(
            "POST /token: {} {}",
            answer.status,
            snippet(&answer.body)
        ));
    }
    Ok(answer.body)
}

impl Worker {
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
                let form = target.code_form(code);
                match post_token(&mut self.conn, &form).await {
                    Ok(body) if contains(&body, b"\"id_token\"") => Outcome::Ok,
                    Ok(body) => Outcome::Err(format!(
                        "code exchange without id_token: {}",
                        snippet(&body)
                    )),
                    Err(e) => Outcome::Err(e),
                }
            }
            Job::ClientCredentials => {
                match post_token(&mut self.conn, "grant_type=client_credentials").await {
                    Ok(body) if contains(&body, b"\"access_token\"") => Outcome::Ok,
                    Ok(body) => Outcome::Err(format!(
                        "client credentials without access_token: {}",
                        snippet(&body)
                    )),
                    Err(e) => Outcome::Err(e),
                }
            }
            Job::Refresh(token) => {
                let form = format!("grant_type=refresh_token&refresh_token={}", enc(token));
                let body = match post_token(&mut self.conn, &form).await {
                    Ok(b) => b,
                    Err(e) => return Outcome::Err(e),
                };
                let answer: RefreshAnswer = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => return Outcome::Err(format!("refresh response is not JSON: {e}")),
                };
                match (answer.refresh_token, answer.id_token) {
                    (Some(next), Some(_)) => {
                        *token = next;
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

/// The parts of a refresh answer the generator reads (the rest is skipped, not built).
#[derive(serde::Deserialize)]
struct RefreshAnswer {
    refresh_token: Option<String>,
    id_token: Option<serde::de::IgnoredAny>,
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
    /// Of `cpu_server_cores`, the RSA signing threads (Tessera only; 0 for the peer).
    cpu_signing_cores: f64,
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
        cpu_signing_cores: cpu.signing_cores(),
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

/// Phases 1 and 2: a GET of a prepared document, driven by `wrk` when it is installed.
///
/// At tens of thousands of requests per second the in-process generator (reqwest) needs more
/// CPU than the server it measures, and both share the two cores, so it measured itself. `wrk`
/// (C, one event loop per thread) costs a fraction of that per request, which leaves the
/// cores to the servers; both providers get the same `wrk` settings.
async fn phase_get(
    name: &str,
    path: &str,
    target: &Arc<Target>,
    s: &Settings,
    pid: u32,
) -> R<PhaseResult> {
    if s.wrk {
        return phase_get_wrk(name, path, target, s, pid).await;
    }
    let rss = RssSampler::start(pid);
    let shared = PhaseShared::new(s.max_requests_per_phase);
    let url = format!("{}{path}", target.base);
    let workers = (0..s.concurrency)
        .map(|_| Worker::new(target, Job::Get(url.clone())))
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

/// What `wrk --latency` printed, read back.
struct WrkRun {
    requests: u64,
    seconds: f64,
    errors: u64,
    /// 50, 90 and 99th percentile and maximum latency, in ms.
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// `449.00us`, `1.15ms`, `2.00s` → milliseconds.
fn wrk_duration_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e3)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60e3)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

fn parse_wrk(out: &str) -> R<WrkRun> {
    let mut run = WrkRun {
        requests: 0,
        seconds: 0.0,
        errors: 0,
        p50_ms: 0.0,
        p90_ms: 0.0,
        p99_ms: 0.0,
        max_ms: 0.0,
    };
    let mut seen_total = false;
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Latency", _avg, _stdev, max, ..] => {
                run.max_ms = wrk_duration_ms(max).unwrap_or(0.0);
            }
            ["50%", v] => run.p50_ms = wrk_duration_ms(v).unwrap_or(0.0),
            ["90%", v] => run.p90_ms = wrk_duration_ms(v).unwrap_or(0.0),
            ["99%", v] => run.p99_ms = wrk_duration_ms(v).unwrap_or(0.0),
            [n, "requests", "in", secs, ..] => {
                run.requests = n.parse().ctx("wrk request count")?;
                run.seconds =
                    wrk_duration_ms(secs.trim_end_matches(',')).ok_or("wrk duration")? / 1e3;
                seen_total = true;
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => {
                run.errors += n.parse::<u64>().unwrap_or(0);
            }
            ["Socket", "errors:", rest @ ..] => {
                run.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    if !seen_total {
        return Err(format!("could not read wrk's output:\n{out}"));
    }
    Ok(run)
}

async fn wrk(url: &str, connections: usize, seconds: f64) -> R<WrkRun> {
    // Two threads at most: the machine's cores are shared with the servers.
    let threads = connections.min(2);
    let out = tokio::process::Command::new("wrk")
        .args([
            "--latency",
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{}s", seconds.ceil().max(1.0) as u64),
            "--timeout",
            "30s",
            url,
        ])
        .output()
        .await
        .ctx("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse_wrk(&text)
}

async fn phase_get_wrk(
    name: &str,
    path: &str,
    target: &Arc<Target>,
    s: &Settings,
    pid: u32,
) -> R<PhaseResult> {
    let url = format!("{}{path}", target.base);
    if s.warmup_seconds > 0.0 {
        wrk(&url, s.concurrency, s.warmup_seconds).await?;
    }
    let rss = RssSampler::start(pid);
    let first = CpuSnapshot::take(pid);
    let run = wrk(&url, s.concurrency, s.seconds).await?;
    let last = CpuSnapshot::take(pid);
    let peak = rss.finish().await;
    let after = rss_kib(pid, "VmRSS").unwrap_or(0);
    let usage = CpuUsage::between(first, last);
    let (cpu_server_cores, cpu_loadgen_cores, cpu_other_cores) = usage.cores();
    let secs = run.seconds.max(1e-3);
    Ok(PhaseResult {
        name: name.to_owned(),
        requests: run.requests,
        measured_seconds: round(secs, 3),
        requests_per_second: round(run.requests as f64 / secs, 1),
        p50_ms: round(run.p50_ms, 3),
        p90_ms: round(run.p90_ms, 3),
        p99_ms: round(run.p99_ms, 3),
        max_ms: round(run.max_ms, 3),
        errors: run.errors,
        error_samples: Vec::new(),
        rss_peak_kib: peak,
        rss_after_kib: after,
        cpu_server_cores,
        cpu_loadgen_cores,
        cpu_other_cores,
        cpu_signing_cores: usage.signing_cores(),
        notes: vec![format!("driven by wrk, {} connections", s.concurrency)],
    })
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
            .map(|_| Worker::new(target, Job::Exchange(pool.clone())))
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
            .map(|_| Worker::new(target, Job::Exchange(pool.clone())))
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

/// Phase 4: each connection rotates its own refresh-token family. Also returns every
/// refresh answered with 200 (warm-up included), for the lost-writes check.
async fn phase_refresh(target: &Arc<Target>, s: &Settings, pid: u32) -> R<(PhaseResult, u64)> {
    let rss = RssSampler::start(pid);
    let shared = PhaseShared::new(s.max_requests_per_phase);
    let mut families = Vec::new();
    for _ in 0..s.concurrency {
        let target = target.clone();
        families.push(tokio::spawn(async move {
            let http = plain_client()?;
            let token = target.new_family(&http).await?;
            Worker::with_client(&target, http, Job::Refresh(token))
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
    let ok_all = tally.ok_all;
    Ok((
        finish_phase(
            "token: refresh_token",
            tally.latencies,
            measured,
            &shared,
            (peak, after),
            tally.cpu,
            notes,
        ),
        ok_all,
    ))
}

/// `grant_type=client_credentials`: no user, no ID token.
async fn phase_client_credentials(target: &Arc<Target>, s: &Settings, pid: u32) -> R<PhaseResult> {
    let rss = RssSampler::start(pid);
    let shared = PhaseShared::new(s.max_requests_per_phase);
    let workers = (0..s.concurrency)
        .map(|_| Worker::new(target, Job::ClientCredentials))
        .collect::<R<Vec<_>>>()?;
    let start = Instant::now();
    let measure_from = start + secs(s.warmup_seconds);
    let end = measure_from + secs(s.seconds);
    let (_, tally) = drive(target, workers, measure_from, end, &shared).await?;
    let measured = window(&shared, measure_from, end);
    let peak = rss.finish().await;
    let after = rss_kib(pid, "VmRSS").unwrap_or(0);
    Ok(finish_phase(
        "token: client_credentials",
        tally.latencies,
        measured,
        &shared,
        (peak, after),
        tally.cpu,
        Vec::new(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Side-by-side run

/// Medians over the rounds of one provider's runs of one endpoint.
#[derive(Debug, Clone, Serialize)]
struct Stats {
    runs: usize,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    server_cores: f64,
    signing_cores: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Stats {
    fn of(runs: &[PhaseResult]) -> Option<Stats> {
        if runs.is_empty() {
            return None;
        }
        let m = |f: fn(&PhaseResult) -> f64| round(median(runs.iter().map(f).collect()), 2);
        Some(Stats {
            runs: runs.len(),
            requests_per_second: round(
                median(runs.iter().map(|r| r.requests_per_second).collect()),
                1,
            ),
            p50_ms: m(|r| r.p50_ms),
            p99_ms: m(|r| r.p99_ms),
            errors: runs.iter().map(|r| r.errors).sum(),
            server_cores: m(|r| r.cpu_server_cores),
            signing_cores: m(|r| r.cpu_signing_cores),
        })
    }
}

/// One endpoint in the side-by-side table.
#[derive(Debug, Serialize)]
struct Row {
    endpoint: String,
    /// RSA signatures per response, Tessera / peer.
    signatures: String,
    tessera: Option<Stats>,
    peer: Option<Stats>,
    /// Tessera's req/s over the peer's.
    ratio: Option<f64>,
}

/// Discovery latency while password sign-ins (argon2id) run flat out.
#[derive(Debug, Serialize)]
struct Interference {
    probe_connections: usize,
    signin_loops: usize,
    idle: PhaseResult,
    loaded: PhaseResult,
    signins_completed: u64,
    signins_per_second: f64,
    signin_errors: u64,
    /// Loaded p99 over idle p99.
    p99_ratio: f64,
}

/// The refresh phase at 64 connections on SQLite, with the writes counted.
#[derive(Debug, Serialize)]
struct SqliteConcurrency {
    connections: usize,
    phase: PhaseResult,
    refreshes_answered: u64,
    refresh_rows_before: i64,
    refresh_rows_after: i64,
    /// Rows that a 200 promised and the database does not hold (must be 0).
    lost_writes: i64,
    locked_errors_in_log: usize,
}

#[derive(Debug, Serialize)]
struct Signing {
    /// One thread of this process, nothing else running.
    single_thread_signatures_per_second: f64,
    /// Refresh grant with JWT access tokens: 2 signatures per response.
    server_signatures_per_second: f64,
    server_cores: f64,
    /// server rate / (single-thread rate × server cores).
    efficiency: f64,
    /// Of `server_cores`, the signing threads': the rest is HTTP, storage and JSON.
    signing_thread_cores: f64,
    /// server rate / (single-thread rate × signing threads' cores): how close the signing
    /// threads come to a lone thread's rate (no contention, no re-parsed keys).
    signing_thread_efficiency: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    unix_time: u64,
    git_commit: Option<String>,
    machine: String,
    backend: String,
    cpus: usize,
    settings: Settings,
    rounds: usize,
    server_binary: String,
    peer: String,
    rows: Vec<Row>,
    interference: Option<Interference>,
    sqlite_concurrency: Option<SqliteConcurrency>,
    signing: Signing,
    cold_start_ms: Vec<f64>,
    cold_start_median_ms: f64,
    rss_idle_kib: u64,
    rss_high_water_kib: u64,
    peer_rss_idle_kib: u64,
    peer_rss_high_water_kib: u64,
    /// Every run, in the order they ran.
    phases: Vec<(String, PhaseResult)>,
    /// WARN/ERROR lines the server logged while under load.
    server_log_problems: usize,
    server_log_samples: Vec<String>,
}

fn mib(kib: u64) -> f64 {
    round(kib as f64 / 1024.0, 1)
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cpus} × {model}, {}", std::env::consts::ARCH)
}

fn markdown(r: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Tessera vs node-oidc-provider\n");
    let _ = writeln!(
        md,
        "{}; Tessera on **{}**; {} connections, {} s per run after {} s warm-up, medians of {} \
         alternating rounds; GET phases driven by {}, token phases by the in-process generator; \
         server, peer and load generator share the CPUs{}.\n",
        r.machine,
        r.backend,
        r.settings.concurrency,
        r.settings.seconds,
        r.settings.warmup_seconds,
        r.rounds,
        if r.settings.wrk {
            "wrk"
        } else {
            "the in-process generator (wrk not installed)"
        },
        r.git_commit
            .as_deref()
            .map(|c| format!("; commit {c}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        md,
        "| Endpoint | RSA signatures (T / peer) | Tessera req/s | p50 ms | p99 ms | {} req/s | p50 ms | p99 ms | Ratio |",
        r.peer
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let cell = |s: &Option<Stats>| match s {
        Some(s) => format!(
            "{:.0} | {:.2} | {:.2}",
            s.requests_per_second, s.p50_ms, s.p99_ms
        ),
        None => "– | – | –".into(),
    };
    for row in &r.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            row.endpoint,
            row.signatures,
            cell(&row.tessera),
            cell(&row.peer),
            row.ratio.map(|x| format!("{x:.2}×")).unwrap_or("–".into())
        );
    }
    let _ = writeln!(
        md,
        "\nRSS: Tessera {:.1} MiB idle, {:.1} MiB high-water mark; {} {:.1} MiB idle, {:.1} MiB high-water mark.",
        mib(r.rss_idle_kib),
        mib(r.rss_high_water_kib),
        r.peer,
        mib(r.peer_rss_idle_kib),
        mib(r.peer_rss_high_water_kib),
    );
    let _ = writeln!(
        md,
        "\nCold start on an existing database (spawn → first `/healthz` 200): median {:.0} ms of {:?}.",
        r.cold_start_median_ms, r.cold_start_ms
    );
    let g = &r.signing;
    let _ = writeln!(
        md,
        "\nRSA signing: one thread signs {:.0}/s; under the refresh grant with JWT access tokens the \
         server signed {:.0}/s on {:.2} cores: {:.0} % of single-thread rate × cores. Of those \
         cores its signing threads used {:.2} ({:.0} %; the rest is HTTP, storage and JSON), \
         signing at {:.0} % of the single-thread rate on them.",
        g.single_thread_signatures_per_second,
        g.server_signatures_per_second,
        g.server_cores,
        g.efficiency * 100.0,
        g.signing_thread_cores,
        g.signing_thread_cores / g.server_cores.max(0.01) * 100.0,
        g.signing_thread_efficiency * 100.0
    );
    if let Some(i) = &r.interference {
        let _ = writeln!(
            md,
            "\nPassword sign-ins vs discovery ({} probe connections): idle p50 {:.2} ms / p99 {:.2} ms; \
             with {} argon2id sign-in loops ({:.1} sign-ins/s, {} errors) p50 {:.2} ms / p99 {:.2} ms: p99 ratio {:.2}.",
            i.probe_connections,
            i.idle.p50_ms,
            i.idle.p99_ms,
            i.signin_loops,
            i.signins_per_second,
            i.signin_errors,
            i.loaded.p50_ms,
            i.loaded.p99_ms,
            i.p99_ratio
        );
    }
    if let Some(c) = &r.sqlite_concurrency {
        let _ = writeln!(
            md,
            "\nSQLite, {} connections on the refresh grant: {:.0} req/s, p99 {:.2} ms, {} errors; \
             {} refreshes answered, refresh-token rows {} → {}: {} lost writes; `database is locked` \
             in the log: {}.",
            c.connections,
            c.phase.requests_per_second,
            c.phase.p99_ms,
            c.phase.errors,
            c.refreshes_answered,
            c.refresh_rows_before,
            c.refresh_rows_after,
            c.lost_writes,
            c.locked_errors_in_log
        );
    }
    for (who, p) in &r.phases {
        for e in &p.error_samples {
            let _ = writeln!(md, "\n- {who} {} error: `{e}`", p.name);
        }
    }
    if r.server_log_problems > 0 {
        let _ = writeln!(
            md,
            "\nTessera logged {} WARN/ERROR line(s) under load, e.g.:\n",
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

/// `target/` of this build: the server binary lives in `target/<profile>/`.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_tessera"))
        .parent()
        .and_then(Path::parent)
        .map(Path::to_owned)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// RS256 signatures per second on one thread of this process (the ceiling per core).
fn single_thread_signing_rate() -> R<f64> {
    let keys = tessera::tokens::keys::KeySet::generate()?;
    let key = &keys.active;
    let claims = serde_json::json!({
        "iss": "https://id.example.com", "sub": "usr_8Qm2x1cZpA0tY7wB", "aud": "app_3c9dJq",
        "exp": 1_700_003_700, "iat": 1_700_000_100, "auth_time": 1_700_000_000,
        "nonce": "n-0S6_WzA2Mj", "amr": ["pwd"], "acr": "1", "azp": "app_3c9dJq",
        "sid": "sid_1f8a", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "can_reauthenticate": true,
    });
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        std::hint::black_box(tessera::tokens::jws::sign(key, "JWT", &claims));
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Runs `f` on `tessera_first` and `peer` alternately (the order flips each round, so that
/// neither always runs on a warmer or cooler machine).
async fn both<F, Fut>(
    round: usize,
    tessera: &Arc<Target>,
    peer: &Arc<Target>,
    mut f: F,
) -> R<(PhaseResult, PhaseResult)>
where
    F: FnMut(Arc<Target>) -> Fut,
    Fut: std::future::Future<Output = R<PhaseResult>>,
{
    if round % 2 == 0 {
        let t = f(tessera.clone()).await?;
        settle().await;
        let p = f(peer.clone()).await?;
        settle().await;
        Ok((t, p))
    } else {
        let p = f(peer.clone()).await?;
        settle().await;
        let t = f(tessera.clone()).await?;
        settle().await;
        Ok((t, p))
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

fn announce(who: &str, r: &PhaseResult) {
    eprintln!(
        "  {who:<26} {:<28} {:>8.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  {} errors",
        r.name, r.requests_per_second, r.p50_ms, r.p99_ms, r.errors
    );
    for e in &r.error_samples {
        eprintln!("    error: {e}");
    }
}

async fn tessera_target(server: &Server) -> R<(Arc<Target>, String)> {
    let (client_id, client_secret) = create_client(server)?;
    let cookie = sign_in(&server.base, &client_id).await?;
    let target = Arc::new(Target::new(
        &server.base,
        server.pid,
        &client_id,
        &client_secret,
        Flavor::Tessera { cookie },
    )?);
    // One full round trip before measuring anything.
    target
        .new_family(&plain_client()?)
        .await
        .ctx("sanity check of the code flow")?;
    Ok((target, client_id))
}

/// 8 loops of full password sign-ins (each one argon2id verification) while 4 connections
/// fetch discovery; compared with the same probe on an idle server.
async fn phase_interference(
    target: &Arc<Target>,
    client_id: &str,
    s: &Settings,
) -> R<Interference> {
    const PROBES: usize = 4;
    const LOOPS: usize = 8;
    // The in-process generator, also where `wrk` is installed: this phase measures latency
    // under a moderate probe, and `wrk` on 4 connections saturates both cores by itself
    // (README "Benchmarks" has what it showed).
    let probe = Settings {
        concurrency: PROBES,
        wrk: false,
        ..s.clone()
    };
    let path = "/.well-known/openid-configuration";
    let idle = phase_get("GET discovery (idle)", path, target, &probe, target.pid).await?;
    settle().await;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut loops = Vec::new();
    for _ in 0..LOOPS {
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        let (base, client_id) = (target.base.clone(), client_id.to_owned());
        loops.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match sign_in(&base, &client_id).await {
                    Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    // Let the sign-ins reach full flow before the probe's warm-up starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded = phase_get(
        "GET discovery (8 sign-ins)",
        path,
        target,
        &probe,
        target.pid,
    )
    .await?;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        let _ = l.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let signins = done.load(Ordering::Relaxed);
    Ok(Interference {
        probe_connections: PROBES,
        signin_loops: LOOPS,
        p99_ratio: round(loaded.p99_ms / idle.p99_ms.max(0.001), 2),
        idle,
        loaded,
        signins_completed: signins,
        signins_per_second: round(signins as f64 / elapsed, 1),
        signin_errors: failed.load(Ordering::Relaxed),
    })
}

async fn refresh_rows(db: &Path) -> R<i64> {
    let store = tessera::store::Store::connect(&format!("sqlite://{}", db.display()), 1).await?;
    let sizes = store.table_sizes().await.map_err(|e| e.to_string())?;
    Ok(sizes
        .iter()
        .find(|(t, _)| *t == "refresh_tokens")
        .map(|(_, n)| *n)
        .unwrap_or(0))
}

/// 64 connections rotating refresh tokens on SQLite: every 200 must be a row in the database
/// (one new token per refresh, one per family's first code exchange).
async fn phase_sqlite_concurrency(
    server: &Server,
    target: &Arc<Target>,
    s: &Settings,
) -> R<SqliteConcurrency> {
    const CONNECTIONS: usize = 64;
    let db = server.data_dir.path().join("tessera.db");
    let log_from = std::fs::metadata(&server.log_path)
        .map(|m| m.len())
        .unwrap_or(0);
    let before = refresh_rows(&db).await?;
    let wide = Settings {
        concurrency: CONNECTIONS,
        ..s.clone()
    };
    let (phase, answered) = phase_refresh(target, &wide, server.pid).await?;
    let after = refresh_rows(&db).await?;
    let log = std::fs::read(&server.log_path).unwrap_or_default();
    let log = String::from_utf8_lossy(&log[(log_from as usize).min(log.len())..]).into_owned();
    let families = CONNECTIONS as u64 + phase.errors;
    Ok(SqliteConcurrency {
        connections: CONNECTIONS,
        lost_writes: (before + (answered + families) as i64 - after).max(0),
        refreshes_answered: answered,
        refresh_rows_before: before,
        refresh_rows_after: after,
        locked_errors_in_log: log.matches("database is locked").count(),
        phase,
    })
}

/// `LOAD_MODE=token`: Tessera alone (opaque access tokens), the refresh grant and the code
/// exchange for `LOAD_ROUNDS` rounds, printed only. For working on the token endpoint (attach a
/// profiler to the printed pid); the full run above is what the README reports.
async fn run_token_only(s: Settings) -> R<()> {
    let bin = server_binary();
    let signing_rate = tokio::task::spawn_blocking(single_thread_signing_rate)
        .await
        .ctx("signing-rate task")??;
    eprintln!("load: one thread signs {signing_rate:.0} RS256/s");
    let server = start_server(
        &bin,
        &[("TESSERA_ACCESS_TOKEN_FORMAT", "opaque".to_owned())],
    )
    .await?;
    eprintln!("load: Tessera pid {} at {}", server.pid, server.base);
    let (target, _) = tessera_target(&server).await?;
    for round in 0..env_num("LOAD_ROUNDS", 3)? {
        eprintln!("load: round {}", round + 1);
        let (r, _) = phase_refresh(&target, &s, target.pid).await?;
        announce("tessera", &r);
        eprintln!(
            "    cores: server {:.2} (signing threads {:.2}), load generator {:.2}, other {:.2}",
            r.cpu_server_cores, r.cpu_signing_cores, r.cpu_loadgen_cores, r.cpu_other_cores
        );
        settle().await;
        let r = phase_code_exchange(&target, &s, target.pid).await?;
        announce("tessera", &r);
        settle().await;
    }
    Ok(())
}

/// `LOAD_MODE=signins`: Tessera alone, only the password sign-ins vs discovery phase, for
/// work on keeping hashing away from the other requests.
async fn run_signins_only(s: Settings) -> R<()> {
    let server = start_server(&server_binary(), &[]).await?;
    eprintln!("load: Tessera pid {} at {}", server.pid, server.base);
    let (target, client_id) = tessera_target(&server).await?;
    let i = phase_interference(&target, &client_id, &s).await?;
    eprintln!(
        "  discovery p99 idle {:.2} ms, with sign-ins {:.2} ms: ratio {:.2} ({:.1} sign-ins/s)",
        i.idle.p99_ms, i.loaded.p99_ms, i.p99_ratio, i.signins_per_second
    );
    Ok(())
}

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
    let signing_rate = tokio::task::spawn_blocking(single_thread_signing_rate)
        .await
        .ctx("signing-rate task")??;
    eprintln!("load: one thread signs {signing_rate:.0} RS256/s");

    eprintln!(
        "load: starting {} ({backend}) twice: opaque and JWT access tokens",
        bin.display()
    );
    let opaque = start_server(
        &bin,
        &[("TESSERA_ACCESS_TOKEN_FORMAT", "opaque".to_owned())],
    )
    .await?;
    let jwt = start_server(&bin, &[("TESSERA_ACCESS_TOKEN_FORMAT", "jwt".to_owned())]).await?;
    let peer_server = peer::start().await?;
    eprintln!(
        "load: Tessera (opaque) pid {} at {}, Tessera (JWT) pid {} at {}, node-oidc-provider pid {} at {}",
        opaque.pid, opaque.base, jwt.pid, jwt.base, peer_server.pid, peer_server.base
    );
    let (t_opaque, opaque_client) = tessera_target(&opaque).await?;
    let (t_jwt, _) = tessera_target(&jwt).await?;
    let t_peer = Arc::new(Target::new(
        &peer_server.base,
        peer_server.pid,
        peer::CLIENT_ID,
        peer::CLIENT_SECRET,
        Flavor::Peer,
    )?);
    t_peer
        .new_family(&plain_client()?)
        .await
        .ctx("sanity check of the peer's code flow")?;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_kib(opaque.pid, "VmRSS").unwrap_or(0);
    let peer_rss_idle = rss_kib(peer_server.pid, "VmRSS").unwrap_or(0);
    let log_from = std::fs::metadata(&opaque.log_path)
        .map(|m| m.len())
        .unwrap_or(0);

    let rounds: usize = env_num("LOAD_ROUNDS", 3)?;
    let mut runs: Vec<(String, PhaseResult)> = Vec::new();
    let mut keyed: std::collections::BTreeMap<(&str, &str), Vec<PhaseResult>> = Default::default();
    let mut record = |endpoint: &'static str, who: &'static str, r: PhaseResult| {
        announce(&format!("{who}"), &r);
        runs.push((who.to_owned(), r.clone()));
        keyed.entry((endpoint, who)).or_default().push(r);
    };
    const T: &str = "tessera";
    const P: &str = "peer";
    const TJ: &str = "tessera (JWT access tokens)";
    for round in 0..rounds {
        eprintln!("load: round {} of {rounds}", round + 1);
        let s2 = s.clone();
        let (t, p) = both(round, &t_opaque, &t_peer, |target| {
            let s = s2.clone();
            async move {
                let pid = target.pid;
                phase_get(
                    "GET discovery",
                    "/.well-known/openid-configuration",
                    &target,
                    &s,
                    pid,
                )
                .await
            }
        })
        .await?;
        record("discovery", T, t);
        record("discovery", P, p);
        let s2 = s.clone();
        let (t, p) = both(round, &t_opaque, &t_peer, |target| {
            let s = s2.clone();
            async move {
                let pid = target.pid;
                phase_get("GET jwks", "/jwks", &target, &s, pid).await
            }
        })
        .await?;
        record("jwks", T, t);
        record("jwks", P, p);
        let s2 = s.clone();
        let (t, p) = both(round, &t_opaque, &t_peer, |target| {
            let s = s2.clone();
            async move {
                let pid = target.pid;
                phase_refresh(&target, &s, pid).await.map(|(r, _)| r)
            }
        })
        .await?;
        record("refresh", T, t);
        record("refresh", P, p);
        let s2 = s.clone();
        let (t, p) = both(round, &t_opaque, &t_peer, |target| {
            let s = s2.clone();
            async move {
                let pid = target.pid;
                phase_client_credentials(&target, &s, pid).await
            }
        })
        .await?;
        record("client_credentials", T, t);
        record("client_credentials", P, p);
        let r = phase_code_exchange(&t_opaque, &s, t_opaque.pid).await?;
        record("code", T, r);
        settle().await;
        let (r, _) = phase_refresh(&t_jwt, &s, t_jwt.pid).await?;
        record("refresh_jwt", TJ, r);
        settle().await;
        let r = phase_code_exchange(&t_jwt, &s, t_jwt.pid).await?;
        record("code_jwt", TJ, r);
        settle().await;
    }
    drop(record);

    eprintln!("load: password sign-ins against discovery");
    let interference = phase_interference(&t_opaque, &opaque_client, &s).await?;
    eprintln!(
        "  discovery p99 idle {:.2} ms, with sign-ins {:.2} ms ({:.1} sign-ins/s)",
        interference.idle.p99_ms, interference.loaded.p99_ms, interference.signins_per_second
    );
    let sqlite_concurrency = if backend == "sqlite" {
        eprintln!("load: SQLite at 64 connections");
        let c = phase_sqlite_concurrency(&opaque, &t_opaque, &s).await?;
        eprintln!(
            "  {:.0} req/s, {} errors, {} lost writes, {} locked errors",
            c.phase.requests_per_second, c.phase.errors, c.lost_writes, c.locked_errors_in_log
        );
        Some(c)
    } else {
        None
    };

    let mut opaque = opaque;
    if let Ok(Some(status)) = opaque.child.try_wait() {
        return Err(format!(
            "the server exited during the run ({status}); log:\n{}",
            tail(&opaque.log_path, 4000)
        ));
    }
    let rss_high_water = rss_kib(opaque.pid, "VmHWM").unwrap_or(0);
    let peer_rss_high_water = rss_kib(peer_server.pid, "VmHWM").unwrap_or(0);
    let (problems, samples) = log_problems(&opaque.log_path, log_from);
    drop(peer_server);

    eprintln!("load: cold starts");
    let mut jwt = jwt;
    let mut cold_start_ms = Vec::new();
    for _ in 0..5 {
        cold_start_ms.push(round(jwt.restart().await?.as_secs_f64() * 1000.0, 1));
    }
    drop(jwt);
    drop(opaque);

    let stats = |endpoint: &str, who: &str| keyed.get(&(endpoint, who)).and_then(|r| Stats::of(r));
    let row = |name: &str, sigs: &str, endpoint: &str, who: &str, with_peer: bool| {
        let tessera = stats(endpoint, who);
        let peer = if with_peer { stats(endpoint, P) } else { None };
        let ratio = match (&tessera, &peer) {
            (Some(t), Some(p)) if p.requests_per_second > 0.0 => {
                Some(round(t.requests_per_second / p.requests_per_second, 2))
            }
            _ => None,
        };
        Row {
            endpoint: name.to_owned(),
            signatures: sigs.to_owned(),
            tessera,
            peer,
            ratio,
        }
    };
    let rows = vec![
        row("GET discovery", "0 / 0", "discovery", T, true),
        row("GET jwks", "0 / 0", "jwks", T, true),
        row(
            "refresh_token grant (ID token, opaque access token)",
            "1 / 1",
            "refresh",
            T,
            true,
        ),
        row(
            "client_credentials grant (opaque access token)",
            "0 / 0",
            "client_credentials",
            T,
            true,
        ),
        row(
            "authorization_code grant (opaque access token)",
            "1 / –",
            "code",
            T,
            false,
        ),
        row(
            "refresh_token grant, JWT access tokens",
            "2 / –",
            "refresh_jwt",
            TJ,
            false,
        ),
        row(
            "authorization_code grant, JWT access tokens",
            "2 / –",
            "code_jwt",
            TJ,
            false,
        ),
    ];
    let refresh_jwt = stats("refresh_jwt", TJ);
    let signing = match refresh_jwt {
        Some(r) => Signing {
            single_thread_signatures_per_second: round(signing_rate, 0),
            server_signatures_per_second: round(r.requests_per_second * 2.0, 0),
            server_cores: r.server_cores,
            efficiency: round(
                r.requests_per_second * 2.0 / (signing_rate * r.server_cores.max(0.01)),
                3,
            ),
            signing_thread_cores: r.signing_cores,
            signing_thread_efficiency: round(
                r.requests_per_second * 2.0 / (signing_rate * r.signing_cores.max(0.01)),
                3,
            ),
        },
        None => Signing {
            single_thread_signatures_per_second: round(signing_rate, 0),
            server_signatures_per_second: 0.0,
            server_cores: 0.0,
            efficiency: 0.0,
            signing_thread_cores: 0.0,
            signing_thread_efficiency: 0.0,
        },
    };
    Ok(Report {
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        git_commit,
        machine: machine(),
        backend: backend.to_owned(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        settings: s,
        rounds,
        server_binary: bin.display().to_string(),
        peer: "node-oidc-provider 9.13.3".into(),
        rows,
        interference: Some(interference),
        sqlite_concurrency,
        signing,
        cold_start_median_ms: round(median(cold_start_ms.clone()), 1),
        cold_start_ms,
        rss_idle_kib: rss_idle,
        rss_high_water_kib: rss_high_water,
        peer_rss_idle_kib: peer_rss_idle,
        peer_rss_high_water_kib: peer_rss_high_water,
        phases: runs,
        server_log_problems: problems,
        server_log_samples: samples,
    })
}

fn write_report(name: &str, json: String, md: &str) -> R<(PathBuf, PathBuf)> {
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).ctx(&format!("creating {}", dir.display()))?;
    let (json_path, md_path) = (
        dir.join(format!("{name}.json")),
        dir.join(format!("{name}.md")),
    );
    std::fs::write(&json_path, json + "\n").ctx(&format!("writing {}", json_path.display()))?;
    std::fs::write(&md_path, md).ctx(&format!("writing {}", md_path.display()))?;
    Ok((json_path, md_path))
}

fn main() {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(2);
        }
    };
    let mode = std::env::var("LOAD_MODE").unwrap_or_default();
    let soak = mode == "soak";
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if mode == "token" || mode == "signins" {
        let outcome = runtime.block_on(async {
            match mode.as_str() {
                "token" => run_token_only(settings).await,
                _ => run_signins_only(settings).await,
            }
        });
        runtime.shutdown_timeout(Duration::from_secs(1));
        if let Err(e) = outcome {
            eprintln!("load: FAILED: {e}");
            std::process::exit(1);
        }
        return;
    }
    let outcome = runtime.block_on(async {
        let work = async {
            if soak {
                let report = soak::run(settings).await?;
                let md = soak::markdown(&report);
                let json = serde_json::to_string_pretty(&report).ctx("serialising the report")?;
                Ok::<_, String>((md, json, "soak", report.errors))
            } else {
                let report = run(settings).await?;
                let md = markdown(&report);
                let json = serde_json::to_string_pretty(&report).ctx("serialising the report")?;
                let errors = report
                    .rows
                    .iter()
                    .flat_map(|r| [&r.tessera, &r.peer])
                    .flatten()
                    .map(|s| s.errors)
                    .sum::<u64>();
                Ok((md, json, "load", errors))
            }
        };
        tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
        }
    });
    // The servers are dead by now (dropped with the run future); stop stray tasks too.
    runtime.shutdown_timeout(Duration::from_secs(1));
    let (md, json, name, errors) = match outcome {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load: FAILED: {e}");
            std::process::exit(1);
        }
    };
    println!("{md}");
    match write_report(name, json, &md) {
        Ok((json, md_path)) => {
            eprintln!("load: wrote {} and {}", json.display(), md_path.display())
        }
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(1);
        }
    }
    if errors > 0 {
        eprintln!("load: {errors} error(s) in total");
        std::process::exit(1);
    }
}
