//! The real `tessera` binary as a child process, for what an in-process server cannot show:
//! SIGKILL, what the process writes to its log, and start-up failures.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Process {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Process {
    /// Starts `tessera serve` on a free port with `env` (which names the database, issuer, …)
    /// and waits until `/readyz` answers; stdout and stderr go to `log_dir/NAME.log`.
    pub async fn start(name: &str, log_dir: &Path, env: &[(&str, String)]) -> Process {
        let port = free_port();
        Self::start_on_port(name, port, log_dir, env).await
    }

    pub async fn start_on_port(
        name: &str,
        port: u16,
        log_dir: &Path,
        env: &[(&str, String)],
    ) -> Process {
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .arg("serve")
            .env_remove("TESSERA_DATABASE_URL")
            .env_remove("TESSERA_CONFIG")
            .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
            .env("TESSERA_ISSUER", format!("http://127.0.0.1:{port}"))
            .env("TESSERA_METRICS_BIND", "off")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("spawn tessera");
        let mut process = Process {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        process.wait_ready().await;
        process
    }

    async fn wait_ready(&mut self) {
        let ready = format!("{}/readyz", self.url);
        for _ in 0..300 {
            if super::plain_client()
                .get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("tessera exited with {status}: {}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("tessera did not become ready: {}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown code runs, as in a crash or an OOM kill.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a `tessera` admin command with `env`; returns (success, stdout JSON, stderr).
pub fn admin(args: &[&str], env: &[(&str, String)]) -> (bool, serde_json::Value, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .args(args)
        .env_remove("TESSERA_DATABASE_URL")
        .env_remove("TESSERA_CONFIG");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run tessera");
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The PostgreSQL server the suite runs on, if any (`TESSERA_TEST_DATABASE_URL`).
pub fn using_postgres() -> Option<String> {
    std::env::var("TESSERA_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A fresh database for spawned replicas: a SQLite file in `dir`, or a new PostgreSQL
/// database when the suite runs on PostgreSQL.
pub async fn shared_database(dir: &Path) -> String {
    match using_postgres() {
        Some(base) => super::fresh_postgres_database(&base).await,
        None => format!("sqlite://{}", dir.join("tessera.db").display()),
    }
}

/// A client (redirecting to `redirect`) and a user with the suite's password, written
/// straight through the library into the replicas' database: (client_id, secret).
pub async fn provision(
    database_url: &str,
    redirect: &str,
    public: bool,
    email: &str,
) -> (String, Option<String>) {
    let store = tessera::store::Store::connect(database_url, 2)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let org = tessera::store::orgs::ensure_default(&store).await.unwrap();
    let client = tessera::admin::create_client(
        &store,
        tessera::admin::NewClient {
            org_id: &org.id,
            name: "Replica app",
            redirect_uris: &[redirect.to_owned()],
            post_logout_redirect_uris: &[],
            public,
            id: None,
            secret: None,
            backchannel_logout_uri: None,
        },
    )
    .await
    .unwrap();
    tessera::admin::create_user(
        &store,
        tessera::admin::NewUser {
            org_id: &org.id,
            email,
            name: Some("Replica User"),
            password: Some(super::PASSWORD.into()),
            email_verified: true,
        },
    )
    .await
    .unwrap();
    client
}
