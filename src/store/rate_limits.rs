//! Fixed-window counters kept in the database, so every replica sees the same count.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;

use super::schema::rate_limits;
use super::{Store, StoreResult, with_conn};

/// Adds one hit to `bucket` (which already names its window) and returns the new count.
pub async fn hit(store: &Store, bucket: &str, expires_at: i64) -> StoreResult<i64> {
    with_conn!(store, |conn| {
        diesel::insert_into(rate_limits::table)
            .values((
                rate_limits::bucket.eq(bucket),
                rate_limits::hits.eq(1i64),
                rate_limits::expires_at.eq(expires_at),
            ))
            .on_conflict(rate_limits::bucket)
            .do_update()
            .set(rate_limits::hits.eq(rate_limits::hits + 1i64))
            .execute(conn)
            .await?;
        Ok(rate_limits::table
            .find(bucket)
            .select(rate_limits::hits)
            .first(conn)
            .await?)
    })
}

pub async fn count(store: &Store, bucket: &str) -> StoreResult<i64> {
    with_conn!(store, |conn| {
        Ok(rate_limits::table
            .find(bucket)
            .select(rate_limits::hits)
            .first::<i64>(conn)
            .await
            .optional()?
            .unwrap_or(0))
    })
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
