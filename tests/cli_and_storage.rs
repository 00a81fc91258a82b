//! The admin CLI against a live server's database, restarts, a second replica on the same
//! database, and encryption of signing keys at rest.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Browser, PASSWORD, TestServer, authorize_url, exchange};

fn tessera(
    server: &TestServer,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, serde_json::Value, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("TESSERA_DATABASE_URL", &server.database_url)
        .env("TESSERA_ISSUER", server.issuer())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tessera");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null),
        stderr,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_provisions_clients_users_and_keys_while_the_server_runs() {
    let server = TestServer::start().await;
    let redirect = "https://cli.example.com/cb";
    let (ok, created, err) = tessera(
        &server,
        &[
            "client",
            "create",
            "--name",
            "CLI app",
            "--redirect-uri",
            redirect,
        ],
        None,
    );
    assert!(ok, "{err}");
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let (ok, public, _) = tessera(
        &server,
        &[
            "client",
            "create",
            "--name",
            "SPA",
            "--redirect-uri",
            redirect,
            "--public",
        ],
        None,
    );
    assert!(ok && public.get("client_secret").is_none());
    let (ok, _, err) = tessera(
        &server,
        &[
            "client",
            "create",
            "--name",
            "Bad",
            "--redirect-uri",
            "http://not-local.example/cb",
        ],
        None,
    );
    assert!(!ok && err.contains("plain http"), "{err}");

    let (ok, user, err) = tessera(
        &server,
        &[
            "user",
            "create",
            "--email",
            "cli@example.com",
            "--name",
            "Cli",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok, "{err}");
    assert!(user["id"].as_str().is_some());
    let (ok, _, err) = tessera(
        &server,
        &[
            "user",
            "create",
            "--email",
            "CLI@example.com",
            "--password-stdin",
        ],
        Some("another password\n"),
    );
    assert!(
        !ok && err.contains("already exists"),
        "one email, one account: {err}"
    );

    // The running server sees what the CLI wrote: a full flow with the CLI's client and user.
    let browser = Browser::new(&server.url);
    let (url, verifier) = authorize_url(&server, &client_id, redirect, &[]);
    let q = browser
        .authorize(&url, "cli@example.com", PASSWORD)
        .await
        .params();
    let (status, body) = exchange(
        &server,
        &client_id,
        Some(&secret),
        &q["code"],
        redirect,
        &verifier,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (ok, list, _) = tessera(&server, &["client", "list"], None);
    assert!(
        ok && list
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == client_id.as_str())
    );
    let (ok, users, _) = tessera(&server, &["user", "list"], None);
    assert!(
        ok && users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["email"] == "cli@example.com")
    );

    let (ok, keys, _) = tessera(&server, &["keys", "list"], None);
    assert!(ok);
    assert_eq!(keys.as_array().unwrap().len(), 2);
    let (ok, rotated, err) = tessera(&server, &["keys", "rotate"], None);
    assert!(ok, "{err}");
    server.app().keys.reload().await.unwrap();
    assert_eq!(
        server.app().keys.current().active.kid,
        rotated["active_kid"].as_str().unwrap()
    );

    let (ok, _, err) = tessera(&server, &["client", "delete", &client_id], None);
    assert!(ok, "{err}");
    let (ok, _, err) = tessera(&server, &["client", "delete", &client_id], None);
    assert!(!ok && err.contains("no client"));
    let (ok, migrated, _) = tessera(&server, &["migrate"], None);
    assert!(ok && migrated["migrated"] == true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_replica_on_the_same_database_finishes_what_the_first_started() {
    let first = TestServer::start().await;
    let (client_id, secret) = first.client(false, "https://rp.example.com/cb").await;
    first.user("rep@example.com").await;
    let second = TestServer::start_on(
        first.database_url.clone(),
        tempfile::tempdir().unwrap(),
        |_| {},
    )
    .await;
    // Both replicas answer for the same issuer in production; here each has its own port, so
    // the browser moves between them by URL. The code is issued by the first...
    let browser = Browser::new(&first.url);
    let (url, verifier) = authorize_url(&first, &client_id, "https://rp.example.com/cb", &[]);
    let q = browser
        .authorize(&url, "rep@example.com", PASSWORD)
        .await
        .params();
    // ...and redeemed at the second, which shares the keys (same JWKS) and the database.
    let (status, body) = exchange(
        &second,
        &client_id,
        secret.as_deref(),
        &q["code"],
        "https://rp.example.com/cb",
        &verifier,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let jwks1 = first.get("/jwks").await.text().await.unwrap();
    let jwks2 = second.get("/jwks").await.text().await.unwrap();
    assert_eq!(jwks1, jwks2);
    // A refresh at the first replica of a token issued by the second.
    let (status, body) = common::refresh(
        &first,
        &client_id,
        secret.as_deref().unwrap(),
        body["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_keys_sessions_and_refresh_tokens() {
    let first = TestServer::start().await;
    let database_url = first.database_url.clone();
    let (client_id, secret) = first.client(false, "https://rp.example.com/cb").await;
    first.user("keep@example.com").await;
    let browser = Browser::new(&first.url);
    let (url, verifier) = authorize_url(&first, &client_id, "https://rp.example.com/cb", &[]);
    let q = browser
        .authorize(&url, "keep@example.com", PASSWORD)
        .await
        .params();
    let (_, tokens) = exchange(
        &first,
        &client_id,
        secret.as_deref(),
        &q["code"],
        "https://rp.example.com/cb",
        &verifier,
    )
    .await;
    let kid = first.app().keys.current().active.kid.clone();
    let dir = first.stop().await;

    let again = TestServer::start_on(database_url, dir, |_| {}).await;
    assert_eq!(
        again.app().keys.current().active.kid,
        kid,
        "the signing key survives a restart"
    );
    let (status, body) = common::refresh(
        &again,
        &client_id,
        secret.as_deref().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "refresh token survives: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_keys_are_encrypted_at_rest_with_a_master_key() {
    use base64::Engine;
    let master = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let m = master.clone();
    let server = TestServer::start_with(move |c| c.master_key = Some(m)).await;
    let rows = tessera::store::keys::list(&server.app().store)
        .await
        .unwrap();
    assert!(rows.iter().all(|r| r.encrypted));
    for row in &rows {
        assert!(
            aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&row.private_key).is_err(),
            "stored bytes are not a usable key"
        );
    }
    // Without the master key the server refuses to start rather than run without its keys.
    let url = server.database_url.clone();
    let store = tessera::store::Store::connect(&url, 2).await.unwrap();
    let result = tessera::tokens::Keys::init(store.clone(), None, 3600).await;
    assert!(result.err().unwrap().contains("TESSERA_MASTER_KEY"));
    let with_key = tessera::tokens::Keys::init(
        store,
        tessera::security::master_key::MasterKey::from_base64(&master).ok(),
        3600,
    )
    .await;
    assert!(with_key.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env("TESSERA_DATA_DIR", dir.path())
        .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
        .env("TESSERA_ISSUER", format!("http://127.0.0.1:{port}"))
        .env("TESSERA_METRICS_BIND", "127.0.0.1:0")
        .env_remove("TESSERA_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let mut up = false;
    for _ in 0..100 {
        if common::plain_client()
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "server became ready");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exit = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            exit = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let exit = exit.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("the server did not exit within 10 s of SIGTERM")
    });
    assert!(exit.success(), "exit status {exit}");
    assert!(
        common::plain_client().get(&ready).send().await.is_err(),
        "no longer accepting"
    );
}
