//! SQLite backup and restore. A backup is `VACUUM INTO` on a pooled connection: one read
//! transaction, so the copy is consistent while the server keeps serving. A restore checks
//! the file, refuses a database that a server has open, and replaces the database together
//! with its WAL (a stale WAL beside a restored file would corrupt it).
//!
//! PostgreSQL deployments use `pg_dump` / `pg_restore` (README "Operations").

use std::fs::File;
use std::path::{Path, PathBuf};

use diesel::Connection;
use diesel::RunQueryDsl as _;
use diesel::sqlite::SqliteConnection;
use diesel_async::SimpleAsyncConnection;

use super::{Backend, Store};

pub const POSTGRES_HINT: &str = "this deployment uses PostgreSQL: back up with `pg_dump --format=custom` and restore with `pg_restore` (see README, Operations)";

/// The advisory lock file beside a SQLite database. Every process that opens the database
/// through [`Store::connect`] holds a shared lock on it; a restore needs it exclusively.
pub(crate) fn lock_path(database: &str) -> PathBuf {
    PathBuf::from(format!("{database}.lock"))
}

pub(crate) fn hold_shared_lock(database: &str) -> Result<File, String> {
    let path = lock_path(database);
    // A shared lock needs no write access: an existing lock file beside a read-only database
    // opens read-only, so that start-up goes on to report the database itself as unwritable.
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .or_else(|e| File::open(&path).map_err(|_| e))
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.lock_shared()
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    Ok(file)
}

fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Store {
    /// Writes a consistent copy of the SQLite database to `destination`, which must not exist.
    pub async fn backup_to(&self, destination: &Path) -> Result<(), String> {
        let Backend::Sqlite(pool) = &self.backend else {
            return Err(POSTGRES_HINT.into());
        };
        if destination.exists() {
            return Err(format!(
                "{} already exists: choose a new file",
                destination.display()
            ));
        }
        let target = destination
            .to_str()
            .ok_or("the backup path must be valid UTF-8")?;
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        conn.batch_execute(&format!("VACUUM INTO {}", sql_string(target)))
            .await
            .map_err(|e| format!("backup failed: {e}"))?;
        drop(conn);
        check_backup_file(destination)
    }
}

#[derive(diesel::QueryableByName)]
struct IntegrityRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

#[derive(diesel::QueryableByName)]
struct CountRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A backup is usable when SQLite's integrity check passes and it holds Tessera's schema.
pub fn check_backup_file(file: &Path) -> Result<(), String> {
    if !file.is_file() {
        return Err(format!("{} is not a file", file.display()));
    }
    let uri = format!(
        "file:{}?mode=ro",
        file.to_str().ok_or("the backup path must be valid UTF-8")?
    );
    let mut conn = SqliteConnection::establish(&uri)
        .map_err(|e| format!("{} cannot be opened as SQLite: {e}", file.display()))?;
    let rows: Vec<IntegrityRow> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .map_err(|e| format!("{} is not a SQLite database: {e}", file.display()))?;
    if rows.len() != 1 || rows[0].integrity_check != "ok" {
        let problems: Vec<_> = rows.into_iter().map(|r| r.integrity_check).collect();
        return Err(format!(
            "{} failed the integrity check: {}",
            file.display(),
            problems.join("; ")
        ));
    }
    let tables: Vec<CountRow> = diesel::sql_query(
        "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' \
         AND name IN ('__diesel_schema_migrations', 'users', 'signing_keys')",
    )
    .load(&mut conn)
    .map_err(|e| e.to_string())?;
    if tables.first().map(|r| r.n) != Some(3) {
        return Err(format!("{} is not a Tessera database", file.display()));
    }
    Ok(())
}

/// Replaces the SQLite database at `database` with the checked copy `backup`.
/// Refuses while any process has the database open, and refuses to overwrite an existing
/// database unless `force`.
pub fn restore(backup: &Path, database: &str, force: bool) -> Result<(), String> {
    check_backup_file(backup)?;
    let target = Path::new(database);
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let lock_path = lock_path(database);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        return Err(format!(
            "{database} is in use by a running Tessera (or its CLI): stop it before restoring"
        ));
    }
    if target.exists() && !force {
        return Err(format!(
            "{database} already exists: pass --force to replace it"
        ));
    }
    let staging = PathBuf::from(format!("{database}.restoring"));
    std::fs::copy(backup, &staging).map_err(|e| format!("cannot copy the backup: {e}"))?;
    File::open(&staging)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot flush the restored copy: {e}"))?;
    for stale in ["-wal", "-shm"] {
        let path = PathBuf::from(format!("{database}{stale}"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
        }
    }
    std::fs::rename(&staging, target).map_err(|e| format!("cannot move the restored copy: {e}"))?;
    drop(lock);
    Ok(())
}
