//! Failure counters kept in the database, so every replica sees the same count. A counter's
//! window opens at its first hit and ends at `expires_at`; a hit after that opens a new one.

use diesel::dsl::case_when;
use diesel::sql_types::BigInt;
use diesel::upsert::excluded;
use diesel::{ExpressionMethods, IntoSql, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;

use super::schema::rate_limits;
use super::{Store, StoreResult, with_conn};

/// The failures counted in a bucket's window, and when that window ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub failures: i64,
    pub ends_at: i64,
}

impl From<Option<(i64, i64)>> for Tally {
    fn from(row: Option<(i64, i64)>) -> Self {
        row.map(|(failures, ends_at)| Tally { failures, ends_at })
            .unwrap_or_default()
    }
}

/// Adds one hit to `bucket`, opening a new `length`-second window if the last one has ended.
pub async fn hit(store: &Store, bucket: &str, now: i64, length: i64) -> StoreResult<()> {
    // Both SET expressions read the row as it was before the update (SQL's UPDATE semantics).
    let ended = || rate_limits::expires_at.le(now);
    with_conn!(store, |conn| {
        diesel::insert_into(rate_limits::table)
            .values((
                rate_limits::bucket.eq(bucket),
                rate_limits::hits.eq(1i64),
                rate_limits::expires_at.eq(now + length),
            ))
            .on_conflict(rate_limits::bucket)
            .do_update()
            .set((
                rate_limits::hits.eq(case_when(ended(), 1i64.into_sql::<BigInt>())
                    .otherwise(rate_limits::hits + 1i64)),
                rate_limits::expires_at.eq(case_when(ended(), excluded(rate_limits::expires_at))
                    .otherwise(rate_limits::expires_at)),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// The bucket `$bucket`'s hits and window end: one statement for the async and the blocking
/// connection.
macro_rules! tally_query {
    ($bucket:expr) => {
        rate_limits::table
            .find($bucket)
            .select((rate_limits::hits, rate_limits::expires_at))
    };
}

/// The bucket's tally; a window that has ended counts nothing (`Window::decision` checks it).
pub async fn count(store: &Store, bucket: &str) -> StoreResult<Tally> {
    let row: Option<(i64, i64)> = with_conn!(store, |conn| {
        tally_query!(bucket).first(conn).await.optional()?
    });
    Ok(row.into())
}

/// [`count`] on the SQLite writer's connection, inside a writer job.
pub(super) fn count_on(
    conn: &mut diesel::SqliteConnection,
    bucket: &str,
) -> diesel::QueryResult<Tally> {
    let row: Option<(i64, i64)> =
        diesel::RunQueryDsl::first(tally_query!(bucket), conn).optional()?;
    Ok(row.into())
}

pub async fn clear(store: &Store, bucket: &str) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::delete(rate_limits::table.find(bucket))
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn purge_expired(store: &Store, now: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(
            diesel::delete(rate_limits::table.filter(rate_limits::expires_at.lt(now)))
                .execute(conn)
                .await?,
        )
    })
}
