//! The one place that knows SQL. Protocol code calls the narrow functions of one
//! submodule per artefact (codes, grants, sessions, …) and never sees a connection.
//!
//! Both backends share one `table!` schema. `#[derive(MultiConnection)]` does not
//! work with diesel-async 0.9, so [`Store`] holds an enum of two pools and
//! [`with_conn!`] expands each query body once per backend.
//!
//! Every `Insertable` row writes `NULL` for a `None` field
//! (`treat_none_as_default_value = false`; no nullable column has a default). Diesel's
//! default leaves such columns out of the SQL on SQLite, which makes the statement text depend
//! on the values, so it was parsed and planned again on every insert instead of being reused
//! from the prepared-statement cache.

pub mod account_codes;
pub mod admin_tokens;
pub mod audit;
pub mod auth_requests;
pub mod backup;
pub mod clients;
pub mod codes;
pub mod device_authorizations;
pub mod devices;
pub mod grants;
pub mod invitations;
pub mod keys;
pub mod notifications;
pub mod orgs;
pub mod otp_challenges;
pub mod passkeys;
pub mod qr_logins;
pub mod rate_limits;
pub mod refresh_tokens;
pub mod schema;
pub mod sessions;
pub mod signups;
mod sqlite_wal;
pub mod upstream_identities;
pub mod users;

use std::path::Path;
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::sqlite::SqliteConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// How long a request waits for a pooled connection before it is answered with 503.
const POOL_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub enum Backend {
    Sqlite(Pool<SqliteConn>),
    Postgres(Pool<AsyncPgConnection>),
}

#[derive(Clone)]
pub struct Store {
    pub backend: Backend,
    url: String,
    /// SQLite: see [`Store::with_sqlite_writer`].
    sqlite_writer: std::sync::Arc<SqliteWriter>,
}

/// SQLite: the shared writer connection and the thread it runs on ([`Store::with_sqlite_writer`]).
#[derive(Default)]
pub(crate) struct SqliteWriter {
    path: String,
    /// A shared lock that tells `tessera restore` the database is in use. It lives here, with
    /// the connections outside the pool (the writer's, the checkpointer's while it runs), so
    /// that it is held as long as any of them may be open.
    _in_use: Option<std::fs::File>,
    lane: std::sync::OnceLock<crate::cpu::Lane>,
    connection: std::sync::Mutex<Option<SqliteConnection>>,
}

impl SqliteWriter {
    fn new(path: &str, in_use: std::fs::File) -> SqliteWriter {
        SqliteWriter {
            path: path.to_owned(),
            _in_use: Some(in_use),
            ..Default::default()
        }
    }

    /// The writer's one thread, started on first use.
    fn lane(&self) -> &crate::cpu::Lane {
        self.lane
            .get_or_init(|| crate::cpu::Lane::new("tessera-sqlite-writer", 1, || {}))
    }

    /// Runs `work` on the writer connection, opening it first if needed. Only ever called on
    /// the lane's thread.
    fn with_connection<T>(
        &self,
        work: impl FnOnce(&mut SqliteConnection) -> diesel::QueryResult<T>,
    ) -> StoreResult<T> {
        // Only the lane's one thread takes the lock: it is never contended, and it is poisoned
        // only by a job that panicked, which emptied the slot first (below).
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let conn = match &mut *slot {
            Some(conn) => conn,
            None => {
                let mut conn = open_sqlite(&self.path)?;
                conn.batch_execute(sqlite_wal::WRITER_PRAGMAS)?;
                slot.insert(conn)
            }
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn))) {
            Ok(result) => Ok(result?),
            Err(panic) => {
                // Closing the connection now rolls back whatever the job left open and
                // releases SQLite's lock at once, not when the next job comes to reopen it.
                *slot = None;
                std::panic::resume_unwind(panic)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (pool timeout, connection refused): callers answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The database went away under a pooled connection (restart, failover, network) or is
    /// busy beyond the wait: a temporary condition that callers answer with 503, not 500.
    pub fn is_connection_loss(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Query(Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            )) => true,
            // PostgreSQL's admin_shutdown / cannot_connect_now and SQLite's busy writer carry no
            // kind of their own in diesel; their messages are stable.
            StoreError::Query(Error::DatabaseError(DatabaseErrorKind::Unknown, info)) => {
                let message = info.message();
                message.starts_with("terminating connection")
                    || message.starts_with("the database system is")
                    || message == "database is locked"
            }
            StoreError::Query(Error::BrokenTransactionManager) => true,
            _ => false,
        }
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for StoreError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend is configured.
/// The body is compiled once per backend, so it must only use portable query DSL.
macro_rules! with_conn {
    ($store:expr, |$conn:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite(pool) => {
                let mut pooled = pool.get().await?;
                let $conn = &mut *pooled;
                $body
            }
            $crate::store::Backend::Postgres(pool) => {
                let mut pooled = pool.get().await?;
                let $conn = &mut *pooled;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

impl Store {
    /// SQLite: runs `work` on the one connection that the token endpoint's statements share
    /// (the client and code reads, and the write transactions of the refresh, code and
    /// client-credentials grants), on that connection's own thread, one job at a time in order
    /// of arrival.
    ///
    /// SQLite has one writer at a time. A connection that finds the write lock taken sleeps in
    /// its busy handler (1, 2, 5, 10 … ms), however short the transaction ahead of it, and
    /// under a burst of refresh grants those sleeps made the latency tail. Writers in this
    /// process queue for this thread instead; the busy timeout still covers every other writer
    /// (the CLI, rarer statements, other processes).
    ///
    /// One connection on one thread rather than a lock around pooled connections on the
    /// blocking pool: in WAL mode a connection drops its whole page cache when it begins a
    /// transaction after another connection wrote, so with pooled writers nearly every statement
    /// re-read its B-tree pages from the file, and each queued writer parked a blocking-pool
    /// thread on the lock. The only writer keeps its cache across its own commits, and waiting
    /// writers are just queued jobs. The thread and the connection start on first use (with
    /// the pool's pragmas). A job that panics has its connection closed at once (rolling back
    /// what it left open) and the next job opens a new one.
    pub(crate) async fn with_sqlite_writer<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection) -> diesel::QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let writer = self.sqlite_writer.clone();
        self.sqlite_writer
            .lane()
            .run(move || writer.with_connection(work))
            .await
            .map_err(|e| StoreError::Unavailable(format!("SQLite writer: {e}")))?
    }

    /// Connects to `sqlite://PATH` or `postgres://…`, creating the SQLite file's folder if needed.
    pub async fn connect(url: &str, max_connections: usize) -> Result<Store, String> {
        if let Some(path) = sqlite_path(url) {
            // Every connection to an in-memory database has a database of its own: the pool,
            // the writer thread and the migrations would each see a different, empty one.
            if path == ":memory:"
                || path.starts_with("file::memory:")
                || path.contains("mode=memory")
            {
                return Err(format!(
                    "in-memory SQLite ({url}) is not supported: each connection would get its own \
                     empty database; use a file path, for example sqlite://data/tessera.db"
                ));
            }
            if let Some(parent) = Path::new(&path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                }
            }
            let in_use = backup::hold_shared_lock(&path)?;
            // Open once synchronously so that a locked or unwritable file is a clear start-up error.
            check_sqlite_writable(&path)?;
            let mut config = ManagerConfig::<SqliteConn>::default();
            // A SQLite connection is a file handle that cannot go stale, so a checkout needs no
            // `SELECT 1` probe (the default): on the token endpoint that probe was one extra hop
            // to the blocking pool per statement.
            config.recycling_method = RecyclingMethod::Fast;
            config.custom_setup = Box::new(|url| {
                let url = url.to_owned();
                async move {
                    let mut conn = SqliteConn::establish(&url).await?;
                    conn.batch_execute(SQLITE_PRAGMAS)
                        .await
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    Ok(conn)
                }
                .boxed()
            });
            let manager = AsyncDieselConnectionManager::new_with_config(path.clone(), config);
            let pool = Pool::builder(manager)
                .max_size(max_connections)
                .wait_timeout(Some(POOL_WAIT))
                .create_timeout(Some(POOL_WAIT))
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .map_err(|e| e.to_string())?;
            let sqlite_writer = std::sync::Arc::new(SqliteWriter::new(&path, in_use));
            sqlite_wal::start_checkpoints(&sqlite_writer);
            Ok(Store {
                backend: Backend::Sqlite(pool),
                url: path.clone(),
                sqlite_writer,
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
            let pool = Pool::builder(manager)
                .max_size(max_connections)
                .wait_timeout(Some(POOL_WAIT))
                .create_timeout(Some(POOL_WAIT))
                .recycle_timeout(Some(POOL_WAIT))
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .map_err(|e| e.to_string())?;
            Ok(Store {
                backend: Backend::Postgres(pool),
                url: url.to_owned(),
                sqlite_writer: Default::default(),
            })
        } else {
            Err(format!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://…"
            ))
        }
    }

    /// The connection URL (SQLite: the file path), for connections outside the pool.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Applies pending migrations. Several replicas may start at once on PostgreSQL:
    /// an advisory lock makes them take turns.
    pub async fn migrate(&self) -> Result<(), String> {
        match &self.backend {
            Backend::Sqlite(_) => {
                let path = self.url.clone();
                tokio::task::spawn_blocking(move || {
                    let mut conn = open_sqlite(&path).map_err(|e| e.to_string())?;
                    conn.run_pending_migrations(SQLITE_MIGRATIONS)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())?
            }
            Backend::Postgres(_) => {
                let url = self.url.clone();
                let mut conn = AsyncPgConnection::establish(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                conn.batch_execute("SELECT pg_advisory_lock(7463726572)")
                    .await
                    .map_err(|e| e.to_string())?;
                let result = tokio::task::spawn_blocking(move || {
                    let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
                    let outcome = harness
                        .run_pending_migrations(POSTGRES_MIGRATIONS)
                        .map(|_| ())
                        .map_err(|e| e.to_string());
                    (outcome, harness.into_inner())
                })
                .await
                .map_err(|e| e.to_string())?;
                let (outcome, mut conn) = result;
                let _ = conn
                    .batch_execute("SELECT pg_advisory_unlock(7463726572)")
                    .await;
                outcome
            }
        }
    }

    /// Row counts of the tables that grow with traffic (the soak benchmark watches them stay
    /// bounded while housekeeping runs).
    pub async fn table_sizes(&self) -> StoreResult<Vec<(&'static str, i64)>> {
        use diesel::QueryDsl;
        use diesel_async::RunQueryDsl;
        use schema::*;
        with_conn!(self, |conn| {
            Ok(vec![
                ("sessions", sessions::table.count().get_result(conn).await?),
                (
                    "authorization_requests",
                    authorization_requests::table
                        .count()
                        .get_result(conn)
                        .await?,
                ),
                ("grants", grants::table.count().get_result(conn).await?),
                (
                    "authorization_codes",
                    authorization_codes::table.count().get_result(conn).await?,
                ),
                (
                    "device_authorizations",
                    device_authorizations::table
                        .count()
                        .get_result(conn)
                        .await?,
                ),
                (
                    "refresh_tokens",
                    refresh_tokens::table.count().get_result(conn).await?,
                ),
                (
                    "rate_limits",
                    rate_limits::table.count().get_result(conn).await?,
                ),
                (
                    "webauthn_ceremonies",
                    webauthn_ceremonies::table.count().get_result(conn).await?,
                ),
                (
                    "signing_keys",
                    signing_keys::table.count().get_result(conn).await?,
                ),
            ])
        })
    }

    /// Connections open, idle and waited for, for the metrics page.
    pub fn pool_status(&self) -> deadpool::Status {
        match &self.backend {
            Backend::Sqlite(pool) => pool.status(),
            Backend::Postgres(pool) => pool.status(),
        }
    }

    /// Cheap readiness probe.
    pub async fn ping(&self) -> StoreResult<()> {
        with_conn!(self, |conn| {
            conn.batch_execute("SELECT 1").await?;
            Ok(())
        })
    }
}

/// WAL lets readers run beside the one writer; `busy_timeout` makes writers queue instead of
/// failing with "database is locked"; `synchronous=NORMAL` in WAL mode never loses a committed
/// transaction on a process crash (only, at worst, the last ones on power loss).
/// `journal_size_limit`: SQLite restarts its WAL from the start only when no reader is inside
/// it, so under a burst of overlapping reads (the benchmark's thousands of sign-ins and code
/// flows) the file grew to 350 MB in 15 seconds, and SQLite keeps a WAL file at its largest
/// size for reuse. With the limit, the first restart after the burst truncates it to 64 MiB.
/// No `mmap_size`: measured on the token endpoint, the memory map was unmapped and remapped
/// as the file grew, and the `munmap` calls cost more than the `pread`s they saved.
/// The writer connection adds `wal_autocheckpoint = 0` ([`sqlite_wal`]).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA journal_size_limit = 67108864;";

pub fn sqlite_path(url: &str) -> Option<String> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(str::to_owned)
}

/// A connection outside the pool (the writer's, the checkpointer's), with the pool's settings.
fn open_sqlite(path: &str) -> StoreResult<SqliteConnection> {
    let mut conn =
        SqliteConnection::establish(path).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    conn.batch_execute(SQLITE_PRAGMAS)?;
    Ok(conn)
}

fn check_sqlite_writable(path: &str) -> Result<(), String> {
    let mut conn = SqliteConnection::establish(path)
        .map_err(|e| format!("cannot open SQLite database {path}: {e}"))?;
    // A bounded wait: a busy server (or the CLI beside it) holds the write lock only briefly,
    // while a file locked for good by another process must fail start-up with a clear
    // message rather than hang.
    conn.batch_execute("PRAGMA busy_timeout = 10000; BEGIN IMMEDIATE; COMMIT;")
        .map_err(|e| format!("SQLite database {path} is not writable or is locked: {e}"))
}

/// PostgreSQL text cannot hold NUL, so a key containing one can match no row on either
/// backend: lookups of caller-supplied keys answer "not found" instead of a database error.
pub(crate) fn storable(key: &str) -> bool {
    !key.contains('\0')
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// JSON-encoded string lists are how list columns (redirect URIs, `amr`) are stored portably.
pub fn encode_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

pub fn decode_list(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("list column: {e}")))
}

#[cfg(test)]
mod tests {
    use super::StoreError;
    use diesel::result::{DatabaseErrorKind, Error};

    /// What [`super::SQLITE_PRAGMAS`] documents, as SQLite reports it back.
    #[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
    struct Settings {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        busy_timeout: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        synchronous: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        foreign_keys: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        journal_size_limit: i64,
    }

    /// `PRAGMA wal_autocheckpoint` has no table-valued form to join into [`SETTINGS`].
    #[derive(Debug, PartialEq, diesel::QueryableByName)]
    struct Autocheckpoint {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        wal_autocheckpoint: i64,
    }

    const SETTINGS: &str = "SELECT (SELECT journal_mode FROM pragma_journal_mode) AS journal_mode, \
        (SELECT timeout FROM pragma_busy_timeout) AS busy_timeout, \
        (SELECT synchronous FROM pragma_synchronous) AS synchronous, \
        (SELECT foreign_keys FROM pragma_foreign_keys) AS foreign_keys, \
        (SELECT journal_size_limit FROM pragma_journal_size_limit) AS journal_size_limit";

    /// A SQLite store on a fresh file; the directory lives as long as the returned guard.
    async fn sqlite_store_in_a_temp_dir() -> (tempfile::TempDir, super::Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = super::Store::connect(&url, 2).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn pooled_and_writer_sqlite_connections_run_with_the_documented_settings() {
        let (_dir, store) = sqlite_store_in_a_temp_dir().await;
        let expected = Settings {
            journal_mode: "wal".into(),
            busy_timeout: 10_000,
            synchronous: 1, // NORMAL
            foreign_keys: 1,
            journal_size_limit: 64 * 1024 * 1024,
        };
        const AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint";
        // The writer's commits never checkpoint: the checkpointer does (`sqlite_wal`). Pooled
        // connections keep SQLite's default.
        let (default_autocheckpoint, no_autocheckpoint) = (
            Autocheckpoint {
                wal_autocheckpoint: 1000,
            },
            Autocheckpoint {
                wal_autocheckpoint: 0,
            },
        );
        async fn pooled(store: &super::Store) -> super::StoreResult<(Settings, Autocheckpoint)> {
            super::with_conn!(store, |conn| {
                use diesel_async::RunQueryDsl;
                Ok((
                    diesel::sql_query(SETTINGS).get_result(conn).await?,
                    diesel::sql_query(AUTOCHECKPOINT).get_result(conn).await?,
                ))
            })
        }
        assert_eq!(
            pooled(&store).await.unwrap(),
            (expected.clone(), default_autocheckpoint)
        );
        let writer: (Settings, Autocheckpoint) = store
            .with_sqlite_writer(|conn| {
                use diesel::RunQueryDsl;
                Ok((
                    diesel::sql_query(SETTINGS).get_result(conn)?,
                    diesel::sql_query(AUTOCHECKPOINT).get_result(conn)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(writer, (expected, no_autocheckpoint));
    }

    /// A job that panics on the writer thread is an error for its caller, and the next job gets
    /// a fresh connection: the panicked one may hold an open transaction. A TEMP table lives
    /// exactly as long as its connection, so it tells the two apart.
    #[tokio::test]
    async fn a_writer_job_that_panics_fails_alone_and_the_connection_is_reopened() {
        let (_dir, store) = sqlite_store_in_a_temp_dir().await;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        fn marker_rows(conn: &mut diesel::SqliteConnection) -> diesel::QueryResult<i64> {
            let query = diesel::sql_query(
                "SELECT count(*) AS n FROM sqlite_temp_master WHERE name = 'marker'",
            );
            diesel::RunQueryDsl::get_result::<Count>(query, conn).map(|c| c.n)
        }
        store
            .with_sqlite_writer(|conn| {
                diesel::RunQueryDsl::execute(
                    diesel::sql_query("CREATE TEMP TABLE marker (x)"),
                    conn,
                )
            })
            .await
            .unwrap();
        // Jobs share one connection while nothing goes wrong.
        assert_eq!(store.with_sqlite_writer(marker_rows).await.unwrap(), 1);

        let panicked = store
            .with_sqlite_writer(|conn| -> diesel::QueryResult<()> {
                diesel::RunQueryDsl::execute(diesel::sql_query("BEGIN IMMEDIATE"), conn)?;
                panic!("a bug in a writer job");
            })
            .await;
        assert!(
            matches!(panicked, Err(StoreError::Unavailable(_))),
            "{panicked:?}"
        );
        // The panicked job's transaction is gone at once: another connection can write before
        // the writer thread runs again (it would otherwise fail with `database is locked` after
        // the busy timeout).
        async fn write_from_the_pool(store: &super::Store) -> super::StoreResult<()> {
            super::with_conn!(store, |conn| {
                use diesel_async::RunQueryDsl;
                diesel::sql_query("CREATE TABLE written_after_panic (x)")
                    .execute(conn)
                    .await?;
                Ok(())
            })
        }
        write_from_the_pool(&store).await.unwrap();
        // And the writer runs on a new connection: the marker went with the old one.
        assert_eq!(store.with_sqlite_writer(marker_rows).await.unwrap(), 0);
    }

    /// The checkpointer copies the WAL back beside the writer; once the WAL holds
    /// `RESTART_FRAMES` it has the writer checkpoint too, so that the next commit starts the
    /// file over. A reader holding an old snapshot stands in for the commits that, under load,
    /// land while a checkpoint runs beside the writer and leave it short of the end.
    #[tokio::test]
    async fn the_writer_finishes_what_the_checkpointer_could_not_and_the_wal_starts_over() {
        use super::sqlite_wal::{RESTART_FRAMES, step};
        use diesel::connection::SimpleConnection;
        let (_dir, store) = sqlite_store_in_a_temp_dir().await;
        type Job =
            Box<dyn FnOnce(&mut diesel::SqliteConnection) -> diesel::QueryResult<usize> + Send>;
        fn execute(sql: &'static str) -> Job {
            Box::new(move |conn| diesel::RunQueryDsl::execute(diesel::sql_query(sql), conn))
        }
        /// One round, as the checkpointer thread runs it. That thread runs beside the test, and
        /// a checkpoint that finds another one running reports -1 frames: run it again then.
        async fn checkpointer_step(store: &super::Store) -> super::sqlite_wal::Checkpoint {
            loop {
                let writer = store.sqlite_writer.clone();
                let done = tokio::task::spawn_blocking(move || step(&writer))
                    .await
                    .unwrap()
                    .unwrap();
                if done.log >= 0 {
                    return done;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        store
            .with_sqlite_writer(execute("CREATE TABLE pages (b BLOB)"))
            .await
            .unwrap();
        let mut reader = super::open_sqlite(store.url()).unwrap();
        reader
            .batch_execute("BEGIN; SELECT count(*) FROM pages;")
            .unwrap();
        // Rows of 3,000 bytes, one 4 KiB page each: a little over RESTART_FRAMES in one commit.
        store
            .with_sqlite_writer(execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8300) \
                 INSERT INTO pages SELECT randomblob(3000) FROM n",
            ))
            .await
            .unwrap();
        // Hold the writer thread so that its checkpoint runs only after the reader is gone; wait
        // until the holding job runs, so that the checkpoint is queued behind it.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, holding_now) = tokio::sync::oneshot::channel::<()>();
        let holding = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .with_sqlite_writer(move |_| {
                        let _ = started.send(());
                        Ok(held.recv().map(|_| 0).unwrap_or(0))
                    })
                    .await
            }
        });
        holding_now.await.unwrap();
        let first = checkpointer_step(&store).await;
        assert!(i64::from(first.log) >= RESTART_FRAMES, "{first:?}");
        assert!(first.checkpointed < first.log, "{first:?}");
        reader.batch_execute("COMMIT").unwrap();
        drop(reader);
        release.send(()).unwrap();
        holding.await.unwrap().unwrap();
        // Queued behind the writer's checkpoint, this commit starts the WAL over.
        store
            .with_sqlite_writer(execute("INSERT INTO pages VALUES (x'00')"))
            .await
            .unwrap();
        let after = checkpointer_step(&store).await;
        assert!(after.log < 10, "the WAL did not start over: {after:?}");
    }

    #[tokio::test]
    async fn in_memory_sqlite_is_refused_with_a_reason() {
        for url in [
            "sqlite://:memory:",
            "sqlite::memory:",
            "sqlite://file::memory:?cache=shared",
        ] {
            let refused = super::Store::connect(url, 2).await.err();
            assert!(
                refused
                    .as_deref()
                    .is_some_and(|e| e.contains("in-memory SQLite")),
                "{url}: {refused:?}"
            );
        }
        // Refused before anything touches the file system (the lock file would be named after
        // the path, in the working directory).
        assert!(!super::backup::lock_path(":memory:").exists());
    }

    fn database_error(kind: DatabaseErrorKind, message: &str) -> StoreError {
        StoreError::Query(Error::DatabaseError(kind, Box::new(message.to_owned())))
    }

    #[test]
    fn a_lost_or_busy_database_is_temporary_and_other_errors_are_not() {
        for temporary in [
            database_error(
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
            database_error(
                DatabaseErrorKind::Unknown,
                "the database system is starting up",
            ),
            database_error(DatabaseErrorKind::Unknown, "database is locked"),
            database_error(DatabaseErrorKind::UnableToSendCommand, "connection closed"),
            database_error(DatabaseErrorKind::ClosedConnection, "closed"),
            StoreError::Unavailable("pool timed out".into()),
        ] {
            assert!(temporary.is_connection_loss(), "{temporary}");
        }
        for permanent in [
            database_error(DatabaseErrorKind::UniqueViolation, "duplicate key"),
            database_error(DatabaseErrorKind::Unknown, "syntax error at or near"),
            StoreError::Query(Error::NotFound),
            StoreError::Corrupt("list column".into()),
        ] {
            assert!(!permanent.is_connection_loss(), "{permanent}");
        }
    }
}
