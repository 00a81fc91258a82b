//! Housekeeping reads only the rows it deletes. On SQLite a DELETE holds the write lock from
//! its first read to its commit, and the token endpoint's writes wait behind it; a purge that
//! scanned its table (a day of rotated refresh tokens, every grant) held the lock for as long
//! as the table took to read, every minute. So every DELETE that housekeeping runs must find
//! its rows through an index: SQLite's own query plan says so. And what it deletes of the
//! sessions is only what has been over for the reuse window.

mod common;

use std::sync::Mutex;

use diesel::connection::{Instrumentation, InstrumentationEvent, set_default_instrumentation};
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection, sql_query};

use common::TestServer;

/// Every statement that connections opened after [`record_statements`] ran, as SQL text.
static STATEMENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record_statements() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(|event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            STATEMENTS.lock().unwrap().push(query.to_string());
        }
    }))
}

#[derive(QueryableByName)]
struct PlanStep {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// Tables small by construction, where reading them whole costs nothing: signing keys (the
/// current, the next and the few retired ones still published).
const SMALL_TABLES: &[&str] = &["signing_keys"];

/// A server on SQLite whatever the environment says (the plans checked are SQLite's), with a
/// connection of the test's own to its file.
async fn sqlite_server() -> (TestServer, SqliteConnection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    let url = format!("sqlite://{}", path.display());
    let server = TestServer::start_on(url, dir, |_| {}).await;
    let conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    (server, conn)
}

#[tokio::test]
async fn every_purge_finds_its_rows_through_an_index() {
    set_default_instrumentation(record_statements).unwrap();
    let (server, mut conn) = sqlite_server().await;
    tessera::ops::housekeeping(&server.running.as_ref().unwrap().app).await;

    let deletes: Vec<String> = STATEMENTS
        .lock()
        .unwrap()
        .iter()
        .filter(|sql| sql.starts_with("DELETE"))
        // Diesel's text ends with the bound values; the plan needs only the placeholders.
        .map(|sql| sql.split(" -- binds:").next().unwrap_or(sql).to_owned())
        .collect();
    for sql in &deletes {
        let plan: Vec<PlanStep> = sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load(&mut conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        for step in &plan {
            let Some(table) = step.detail.strip_prefix("SCAN ") else {
                continue;
            };
            let table = table.split_whitespace().next().unwrap_or(table);
            assert!(
                SMALL_TABLES.contains(&table),
                "a purge reads its whole table: {sql}\nplan: {}",
                step.detail
            );
        }
    }
    // The check above covers what housekeeping ran: make sure that was all of it.
    for table in [
        "authorization_codes",
        "device_authorizations",
        "refresh_tokens",
        "authorization_requests",
        "sessions",
        "grants",
        "otp_challenges",
        "account_codes",
        "signups",
        "audit_log",
        "rate_limits",
        "webauthn_ceremonies",
        "qr_logins",
        "device_challenges",
        "device_enrollments",
        "upstream_logins",
        "upstream_pending_links",
    ] {
        assert!(
            deletes
                .iter()
                .any(|sql| sql.starts_with(&format!("DELETE FROM `{table}`"))),
            "housekeeping did not purge {table}: {deletes:#?}"
        );
    }
}

/// Sessions go once their logout went out more than the reuse window ago, whatever ended them.
#[tokio::test]
async fn ended_sessions_are_purged_a_reuse_window_after_their_logout_went_out() {
    let (server, mut conn) = sqlite_server().await;
    let user = server.user("kept@example.com").await;
    let org = &server.app().default_org.id;
    let now = tessera::store::now();
    let (long_ago, lately) = (now - 2 * 86_400, now - 2 * 3_600);
    // (id, expires_at, revoked_at, logout_sent_at)
    let sessions = [
        ("ended-and-told-long-ago", long_ago, None, Some(long_ago)),
        ("ended-long-ago-never-told", long_ago, None, None),
        (
            "revoked-and-told-lately",
            now + 3_600,
            Some(lately),
            Some(lately),
        ),
        ("live", now + 3_600, None, None),
    ];
    for (id, expires_at, revoked_at, logout_sent_at) in sessions {
        let null_or = |v: Option<i64>| v.map_or("NULL".to_owned(), |v| v.to_string());
        sql_query(format!(
            "INSERT INTO sessions (id, secret_hash, user_id, org_id, auth_time, amr, acr, \
             created_at, last_seen_at, expires_at, absolute_expires_at, revoked_at, \
             logout_sent_at) VALUES ('{id}', 'hash-{id}', '{user}', '{org}', {long_ago}, \
             '[\"pwd\"]', '0', {long_ago}, {long_ago}, {expires_at}, {expires_at}, {}, {})",
            null_or(revoked_at),
            null_or(logout_sent_at),
        ))
        .execute(&mut conn)
        .unwrap();
    }
    tessera::ops::housekeeping(&server.running.as_ref().unwrap().app).await;
    #[derive(QueryableByName)]
    struct Kept {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        logout_sent_at: Option<i64>,
    }
    let kept: Vec<Kept> = sql_query(
        "SELECT id, logout_sent_at FROM sessions WHERE id IN \
         ('ended-and-told-long-ago', 'ended-long-ago-never-told', 'revoked-and-told-lately', \
         'live') ORDER BY id",
    )
    .load(&mut conn)
    .unwrap();
    let ids: Vec<&str> = kept.iter().map(|k| k.id.as_str()).collect();
    // Purged once its logout went out more than the reuse window ago; the one never told is
    // told now (the sweep runs first) and kept for the window; the others are kept.
    assert_eq!(
        ids,
        [
            "ended-long-ago-never-told",
            "live",
            "revoked-and-told-lately"
        ]
    );
    assert!(kept[0].logout_sent_at.is_some_and(|t| t >= now));
    assert_eq!(kept[1].logout_sent_at, None);
}
