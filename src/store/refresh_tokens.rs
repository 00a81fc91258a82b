//! Refresh tokens: digests only, rotated on every use; a second use of a rotated token
//! is theft or a bug, and revokes the whole family (its grant).

use diesel::{
    ExpressionMethods, JoinOnDsl, NullableExpressionMethods, OptionalExtension, QueryDsl,
    SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::grants::GrantRow;
use super::schema::{grants, refresh_tokens, users};
use super::users::User;
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

/// A refresh token with its grant and the grant's user (`None` for a deleted user), read in
/// one statement: the refresh grant is a hot path and each statement is a round trip.
pub struct WithGrant {
    pub token: RefreshTokenRow,
    pub grant: GrantRow,
    pub user: Option<User>,
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

/// Marks the token used in one conditional UPDATE, so two concurrent uses (even on two
/// replicas) cannot both succeed. `false`: it was used before (or purged) in the meantime.
pub async fn use_once(store: &Store, token_hash: &str, now: i64) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let claimed = diesel::update(
            refresh_tokens::table
                .find(token_hash)
                .filter(refresh_tokens::used_at.is_null()),
        )
        .set(refresh_tokens::used_at.eq(Some(now)))
        .execute(conn)
        .await?;
        Ok(claimed == 1)
    })
}

pub async fn find_with_grant(store: &Store, token_hash: &str) -> StoreResult<Option<WithGrant>> {
    with_conn!(store, |conn| {
        let found = refresh_tokens::table
            .inner_join(grants::table.on(grants::id.eq(refresh_tokens::grant_id)))
            .left_join(users::table.on(grants::user_id.eq(users::id.nullable())))
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .select((
                RefreshTokenRow::as_select(),
                GrantRow::as_select(),
                Option::<User>::as_select(),
            ))
            .first::<(RefreshTokenRow, GrantRow, Option<User>)>(conn)
            .await
            .optional()?;
        Ok(found.map(|(token, grant, user)| WithGrant { token, grant, user }))
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
