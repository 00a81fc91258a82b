//! Refresh tokens: digests only, rotated on every use; a second use of a rotated token
//! is theft or a bug, and revokes the whole family (its grant).

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::refresh_tokens;
use super::{Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub enum Used {
    First(RefreshTokenRow),
    Reused(RefreshTokenRow),
    Unknown,
}

pub async fn insert(store: &Store, row: &RefreshTokenRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(refresh_tokens::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Marks the token used in one conditional UPDATE (see `codes::consume`).
pub async fn use_once(store: &Store, token_hash: &str, now: i64) -> StoreResult<Used> {
    with_conn!(store, |conn| {
        let claimed = diesel::update(
            refresh_tokens::table
                .find(token_hash)
                .filter(refresh_tokens::used_at.is_null()),
        )
        .set(refresh_tokens::used_at.eq(Some(now)))
        .execute(conn)
        .await?;
        let row = refresh_tokens::table
            .find(token_hash)
            .select(RefreshTokenRow::as_select())
            .first(conn)
            .await
            .optional()?;
        Ok(match (claimed, row) {
            (1, Some(row)) => Used::First(row),
            (_, Some(row)) => Used::Reused(row),
            (_, None) => Used::Unknown,
        })
    })
}

pub async fn find(store: &Store, token_hash: &str) -> StoreResult<Option<RefreshTokenRow>> {
    with_conn!(store, |conn| {
        Ok(refresh_tokens::table
            .find(token_hash)
            .select(RefreshTokenRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Deletes rotated tokens used before `before`: past the reuse-detection window a replay is
/// answered as an unknown token (`invalid_grant`) instead of revoking the family.
pub async fn purge_used(store: &Store, before: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(
            diesel::delete(refresh_tokens::table.filter(refresh_tokens::used_at.lt(before)))
                .execute(conn)
                .await?,
        )
    })
}
