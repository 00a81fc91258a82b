//! Operations: request ids in responses and logs, logs without colour codes when not on a
//! terminal, and backup / restore of a running SQLite server, after which the old password
//! and the old passkey still sign in.

mod common;

use std::time::Duration;

use common::passkey::{self, REDIRECT, origin, passkey_sign_in, register, sign_in_page};
use common::process::{Process, admin};
use common::{Browser, Landing, PASSWORD, TestServer, exchange};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

async fn get_with_id(url: &str, id: Option<&str>) -> String {
    let mut request = common::plain_client().get(url);
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    let response = request.send().await.unwrap();
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

fn looks_generated(id: &str) -> bool {
    (16..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_are_echoed_or_generated_and_appear_in_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let env = |format: &str| {
        vec![
            ("TESSERA_DATA_DIR", dir.path().display().to_string()),
            ("TESSERA_LOG_FORMAT", format.to_owned()),
            ("TESSERA_LOG", "debug".to_owned()),
        ]
    };
    let mut json = Process::start("json", dir.path(), &env("json")).await;
    let healthz = format!("{}/healthz", json.url);
    assert_eq!(
        get_with_id(&healthz, Some("ops-test-42")).await,
        "ops-test-42",
        "a well-formed incoming id is kept"
    );
    let generated = get_with_id(&healthz, None).await;
    assert!(looks_generated(&generated), "{generated}");
    assert_ne!(
        generated,
        get_with_id(&healthz, None).await,
        "one id per request"
    );
    for hostile in ["has spaces", "<script>", &"x".repeat(65)] {
        let answered = get_with_id(&healthz, Some(hostile)).await;
        assert!(
            looks_generated(&answered) && answered != hostile,
            "{hostile:?} is replaced by {answered:?}"
        );
    }
    // A 404 carries one too.
    let response = common::plain_client()
        .get(format!("{}/no-such-page", json.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key("x-request-id"));
    json.terminate();

    let log = json.log_text();
    assert!(!log.contains('\u{1b}'), "no colour codes in a piped log");
    let tagged: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["span"]["request_id"] == "ops-test-42")
        .collect();
    assert!(
        tagged
            .iter()
            .any(|l| l["span"]["route"] == "/healthz" && l["fields"]["status"] == 200),
        "the request's log lines carry its id: {log}"
    );

    let mut text = Process::start("text", dir.path(), &env("text")).await;
    get_with_id(&format!("{}/healthz", text.url), Some("ops-text-7")).await;
    text.terminate();
    let log = text.log_text();
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes in a piped log: {log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("request_id=ops-text-7") && l.contains("request answered")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_while_serving_then_restore_and_sign_in_with_the_old_password_and_passkey() {
    if std::env::var("TESSERA_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        eprintln!("backup/restore is SQLite's; PostgreSQL uses pg_dump (README): skipped");
        let (ok, _, err) = admin(
            &["backup", "/nonexistent/x.db"],
            &[(
                "TESSERA_DATABASE_URL",
                std::env::var("TESSERA_TEST_DATABASE_URL").unwrap(),
            )],
        );
        assert!(
            !ok && err.contains("pg_dump"),
            "the CLI points at pg_dump: {err}"
        );
        return;
    }
    let server = passkey::server().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("backup@example.com").await;
    let mut soft = SoftPasskey::new(true);
    let browser = Browser::new(&server.issuer());
    let (page, _) = sign_in_page(&server, &browser, &client_id, &[]).await;
    let Landing::Page(200, offer) = browser
        .submit_login(&page, "backup@example.com", PASSWORD)
        .await
    else {
        panic!("the passkey offer follows a password sign-in")
    };
    register(&browser, &offer, &mut soft, origin(&server), "Backed up").await;

    // Writes keep going while the backup runs.
    let writer = {
        let store = server.app().store.clone();
        let org = server.app().default_org.id.clone();
        tokio::spawn(async move {
            let mut written = 0;
            for i in 0..40 {
                tessera::admin::create_user(
                    &store,
                    tessera::admin::NewUser {
                        org_id: &org,
                        email: &format!("during-{i}@example.com"),
                        name: None,
                        password: None,
                        email_verified: false,
                    },
                )
                .await
                .unwrap();
                written += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            written
        })
    };
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("tessera-backup.db");
    let serving = [("TESSERA_DATABASE_URL", server.database_url.clone())];
    let (ok, out, err) = admin(&["backup", file.to_str().unwrap()], &serving);
    assert!(ok, "backup while serving: {err}");
    assert_eq!(out["backup"], file.display().to_string());
    assert!(writer.await.unwrap() == 40);
    let (ok, _, err) = admin(&["backup", file.to_str().unwrap()], &serving);
    assert!(!ok && err.contains("already exists"), "{err}");

    // Restoring over the database the server has open is refused.
    let (ok, _, err) = admin(&["restore", file.to_str().unwrap(), "--force"], &serving);
    assert!(!ok && err.contains("in use"), "{err}");
    // A file that is not a sound Tessera database is refused before anything is touched.
    let garbage = backups.path().join("garbage.db");
    std::fs::write(&garbage, b"SQLite format 3\0 but not really").unwrap();
    let target = tempfile::tempdir().unwrap();
    let restore_env = [("TESSERA_DATA_DIR", target.path().display().to_string())];
    let (ok, _, err) = admin(&["restore", garbage.to_str().unwrap()], &restore_env);
    assert!(!ok, "a corrupt backup is refused");
    assert!(err.contains("garbage.db"), "{err}");
    assert!(!target.path().join("tessera.db").exists());

    let (ok, _, err) = admin(&["restore", file.to_str().unwrap()], &restore_env);
    assert!(ok, "restore into a new data directory: {err}");
    let (ok, _, err) = admin(&["restore", file.to_str().unwrap()], &restore_env);
    assert!(
        !ok && err.contains("--force"),
        "an existing database is kept without --force: {err}"
    );
    let (ok, _, err) = admin(
        &["restore", file.to_str().unwrap(), "--force"],
        &restore_env,
    );
    assert!(ok, "--force replaces it: {err}");

    let restored_url = format!("sqlite://{}", target.path().join("tessera.db").display());
    let restored = TestServer::start_on(restored_url, target, |c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost")
    })
    .await;
    assert_eq!(
        restored.app().keys.current().active.kid,
        server.app().keys.current().active.kid,
        "the signing keys came along"
    );
    // The old password, with the old client secret.
    let fresh = Browser::new(&restored.issuer());
    let (page, verifier) = sign_in_page(&restored, &fresh, &client_id, &[]).await;
    let landing = fresh
        .submit_login(&page, "backup@example.com", PASSWORD)
        .await;
    let code = match landing {
        Landing::Client(q) => q["code"].clone(),
        Landing::Page(s, p) => panic!("password sign-in after restore: {s} {p}"),
    };
    let (status, body) = exchange(
        &restored,
        &client_id,
        secret.as_deref(),
        &code,
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The old passkey.
    let other = Browser::new(&restored.issuer());
    let (page, _) = sign_in_page(&restored, &other, &client_id, &[]).await;
    let (status, finished, _) = passkey_sign_in(
        &other,
        &page,
        "backup@example.com",
        &mut soft,
        origin(&restored),
    )
    .await;
    assert_eq!(status, 200, "passkey sign-in after restore: {finished}");
    let code = passkey::code_after(&other, finished["redirect"].as_str().unwrap()).await;
    assert!(!code.is_empty());
    // What was written during the backup is either wholly there or wholly absent: the copy
    // is one transaction.
    let users = tessera::store::users::list(&restored.app().store, &restored.app().default_org.id)
        .await
        .unwrap();
    let during: Vec<_> = users
        .iter()
        .filter(|u| u.email.starts_with("during-"))
        .map(|u| u.email.clone())
        .collect();
    let mut expected: Vec<_> = (0..during.len())
        .map(|i| format!("during-{i}@example.com"))
        .collect();
    let mut got = during.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "a consistent prefix of the writes");
    eprintln!(
        "backup taken while {} of 40 concurrent user writes had committed",
        during.len()
    );
}
