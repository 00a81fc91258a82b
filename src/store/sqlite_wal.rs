//! SQLite WAL checkpoints, off the writer thread.
//!
//! Left to itself, SQLite checkpoints in whichever connection's commit takes the WAL past 1,000
//! pages: on the token endpoint that is the writer thread ([`Store::with_sqlite_writer`]), and
//! a checkpoint copies the pages back into the database file and calls `fsync` three times
//! (9 ms on the benchmark host, measured with `strace -T`), while every token request queued
//! behind it waits. Under the refresh grant that happened four to five times a second: the
//! latency tail, and idle cores while the signing threads ran out of work.
//!
//! So the writer's commits never checkpoint ([`WRITER_PRAGMAS`]), and a thread of its own
//! checkpoints every [`INTERVAL`]: PASSIVE, so it waits for no one and the writer goes on
//! appending beside it. A WAL that is appended to without pause is never entirely copied back
//! by a checkpoint that runs beside the writer, and SQLite only starts the file over from the
//! beginning once it is. So when the WAL holds [`RESTART_FRAMES`] or more, the writer itself
//! runs one checkpoint between two jobs; it has little left to copy, and the next commit starts
//! the file over (SQLite, "Write-Ahead Logging", §"Checkpointing").
//!
//! Pooled connections keep SQLite's automatic checkpoint: their writes (sign-ins, sessions,
//! authorization requests) come in bursts from many connections at once, with readers inside
//! the WAL, and checkpointing right after a commit is what gives the file its chances to
//! start over there. Turned off for them too, the WAL grew by 60 MB a second while the
//! benchmark made its authorization codes.
//!
//! [`Store::with_sqlite_writer`]: super::Store::with_sqlite_writer

use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::RunQueryDsl;
use diesel::sqlite::SqliteConnection;

use super::{SqliteWriter, StoreResult, open_sqlite};

/// Added to the pool's settings on the writer connection: its commits leave checkpoints to the
/// checkpointer.
pub(super) const WRITER_PRAGMAS: &str = "PRAGMA wal_autocheckpoint = 0;";

/// How often the checkpointer copies committed pages back.
pub(super) const INTERVAL: Duration = Duration::from_millis(200);

/// WAL frames (pages) at which the writer checkpoints, so that the file starts over: 32 MiB of
/// 4 KiB pages, about two seconds of the refresh grant at full load on the benchmark host.
pub(super) const RESTART_FRAMES: i64 = 8192;

/// What `PRAGMA wal_checkpoint` reports.
#[derive(Debug, diesel::QueryableByName)]
pub(super) struct Checkpoint {
    /// Frames in the WAL; -1 when another checkpoint was running (a pooled connection's, the
    /// writer's, or in tests this thread's own beside the test), and
    /// the next round tries again.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub log: i32,
    /// Frames of those now copied back into the database file.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub checkpointed: i32,
}

/// One PASSIVE checkpoint on `conn`: copies back what no reader still needs, waits for no lock.
pub(super) fn checkpoint(conn: &mut SqliteConnection) -> diesel::QueryResult<Checkpoint> {
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(conn)
}

/// Starts the checkpointer thread; it ends within one [`INTERVAL`] of the store's last clone.
pub(super) fn start_checkpoints(writer: &Arc<SqliteWriter>) {
    let writer = Arc::downgrade(writer);
    let spawned = std::thread::Builder::new()
        .name("tessera-sqlite-checkpoint".into())
        .spawn(move || run(writer));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the SQLite checkpointer");
    }
}

fn run(writer: Weak<SqliteWriter>) {
    let mut failing = false;
    loop {
        std::thread::sleep(INTERVAL);
        let Some(writer) = writer.upgrade() else {
            return;
        };
        match step(&writer) {
            Ok(_) => failing = false,
            // Once per run of failures, not five times a second.
            Err(e) if !failing => {
                tracing::warn!(error = %e, "SQLite checkpoint failed; retrying");
                failing = true;
            }
            Err(e) => tracing::debug!(error = %e, "SQLite checkpoint failed again"),
        }
    }
}

/// One round of the checkpointer: a PASSIVE checkpoint, and the writer's checkpoint queued
/// when the WAL has grown to [`RESTART_FRAMES`]. The connection is opened for the round only:
/// one left open after the store is gone could, on closing, delete the WAL of a database that
/// `tessera restore` has put in its place (the lock that stops a restore is the store's).
pub(super) fn step(writer: &Arc<SqliteWriter>) -> StoreResult<Checkpoint> {
    let done = checkpoint(&mut open_sqlite(&writer.path)?)?;
    if i64::from(done.log) >= RESTART_FRAMES {
        tracing::debug!(
            frames = done.log,
            copied = done.checkpointed,
            "WAL at its restart size; the writer checkpoints"
        );
        let on_writer = writer.clone();
        writer.lane().submit(move || {
            if let Err(e) = on_writer.with_connection(checkpoint) {
                tracing::warn!(error = %e, "SQLite checkpoint on the writer failed");
            }
        });
    }
    Ok(done)
}
