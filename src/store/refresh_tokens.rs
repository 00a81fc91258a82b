//! Refresh tokens: digests only, rotated on every use; a second use of a rotated token
//! is theft or a bug, and revokes the whole family (its grant).

use diesel::{
    ExpressionMethods, JoinOnDsl, NullableExpressionMethods, OptionalExtension, QueryDsl,
    SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::grants::GrantRow;
use super::orgs::Organization;
use super::schema::{grants, organizations, refresh_tokens, users};
use super::users::User;
use super::{Backend, Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// A refresh token with its grant, the grant's user (`None` for a deleted user) and the
/// user's organization, read in one statement: the refresh grant is a hot path and each
/// statement is a round trip.
pub struct WithGrant {
    pub token: RefreshTokenRow,
    pub grant: GrantRow,
    pub user: Option<User>,
    pub org: Option<Organization>,
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

/// Rotation: marks `used_hash` used in one conditional UPDATE, so two concurrent uses (even on
/// two replicas) cannot both succeed, and stores `next` only if this call won. `false`: the
/// token was used before (or purged) in the meantime, and nothing was stored.
///
/// On SQLite both statements run in one hop to the blocking pool and one IMMEDIATE
/// transaction (one lock, one commit). On PostgreSQL they are two statements: the UPDATE alone
/// decides, and a failed insert after it only costs the client its token.
pub async fn rotate(
    store: &Store,
    used_hash: &str,
    now: i64,
    next: &RefreshTokenRow,
) -> StoreResult<bool> {
    match &store.backend {
        Backend::Sqlite(pool) => {
            let mut conn = pool.get().await?;
            let (used_hash, next) = (used_hash.to_owned(), next.clone());
            let claimed = conn
                .spawn_blocking(move |conn| {
                    conn.immediate_transaction(|conn| {
                        let claimed = diesel::RunQueryDsl::execute(
                            diesel::update(
                                refresh_tokens::table
                                    .find(&used_hash)
                                    .filter(refresh_tokens::used_at.is_null()),
                            )
                            .set(refresh_tokens::used_at.eq(Some(now))),
                            conn,
                        )? == 1;
                        if claimed {
                            diesel::RunQueryDsl::execute(
                                diesel::insert_into(refresh_tokens::table).values(&next),
                                conn,
                            )?;
                        }
                        Ok(claimed)
                    })
                })
                .await?;
            Ok(claimed)
        }
        Backend::Postgres(pool) => {
            let conn = &mut *pool.get().await?;
            let claimed = diesel::update(
                refresh_tokens::table
                    .find(used_hash)
                    .filter(refresh_tokens::used_at.is_null()),
            )
            .set(refresh_tokens::used_at.eq(Some(now)))
            .execute(conn)
            .await?
                == 1;
            if claimed {
                diesel::insert_into(refresh_tokens::table)
                    .values(next)
                    .execute(conn)
                    .await?;
            }
            Ok(claimed)
        }
    }
}

pub async fn find_with_grant(store: &Store, token_hash: &str) -> StoreResult<Option<WithGrant>> {
    with_conn!(store, |conn| {
        let found = refresh_tokens::table
            .inner_join(grants::table.on(grants::id.eq(refresh_tokens::grant_id)))
            .left_join(users::table.on(grants::user_id.eq(users::id.nullable())))
            .left_join(organizations::table.on(organizations::id.eq(users::org_id)))
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .select((
                RefreshTokenRow::as_select(),
                GrantRow::as_select(),
                Option::<User>::as_select(),
                Option::<Organization>::as_select(),
            ))
            .first::<(
                RefreshTokenRow,
                GrantRow,
                Option<User>,
                Option<Organization>,
            )>(conn)
            .await
            .optional()?;
        Ok(found.map(|(token, grant, user, org)| WithGrant {
            token,
            grant,
            user,
            org,
        }))
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
