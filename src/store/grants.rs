//! Grants: what a user (or a client, for client credentials) authorized, and the lineage of
//! every token issued from one authorization code. Revoking a grant kills its refresh-token
//! family and the access tokens that name it.

use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::schema::grants;
use super::{Backend, Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = grants)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub scope: String,
    pub auth_time: Option<i64>,
    pub amr: String,
    pub acr: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// On SQLite through the shared writer connection ([`Store::with_sqlite_writer`]): the
/// client-credentials grant inserts one per token, at the token endpoint's rate.
pub async fn insert(store: &Store, row: &GrantRow) -> StoreResult<()> {
    if let Backend::Sqlite(_) = &store.backend {
        let row = row.clone();
        return store
            .with_sqlite_writer(move |conn| {
                diesel::RunQueryDsl::execute(diesel::insert_into(grants::table).values(&row), conn)
                    .map(|_| ())
            })
            .await;
    }
    with_conn!(store, |conn| {
        diesel::insert_into(grants::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(store: &Store, id: &str) -> StoreResult<Option<GrantRow>> {
    with_conn!(store, |conn| {
        Ok(grants::table
            .find(id)
            .select(GrantRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Returns whether this call revoked it (false when it was revoked already).
pub async fn revoke(store: &Store, id: &str, now: i64) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let n = diesel::update(grants::table.find(id).filter(grants::revoked_at.is_null()))
            .set(grants::revoked_at.eq(Some(now)))
            .execute(conn)
            .await?;
        Ok(n == 1)
    })
}

/// Revokes `row.id`; when no such grant exists yet, stores `row` already revoked, so that a
/// later insert of that id fails (a code redeemed twice at once, see `authorization_code`).
pub async fn revoke_or_preempt(store: &Store, row: &GrantRow, now: i64) -> StoreResult<()> {
    with_conn!(store, |conn| {
        let live = grants::table
            .find(&row.id)
            .filter(grants::revoked_at.is_null());
        let revoked = diesel::update(live)
            .set(grants::revoked_at.eq(Some(now)))
            .execute(conn)
            .await?;
        if revoked == 0 {
            let preempting = GrantRow {
                revoked_at: Some(now),
                ..row.clone()
            };
            let inserted = diesel::insert_into(grants::table)
                .values(&preempting)
                .on_conflict(grants::id)
                .do_nothing()
                .execute(conn)
                .await?;
            if inserted == 0 {
                // The winner stored it in between (or it was revoked already): revoke again.
                diesel::update(live)
                    .set(grants::revoked_at.eq(Some(now)))
                    .execute(conn)
                    .await?;
            }
        }
        Ok(())
    })
}

/// Deletes grants that expired or were revoked more than `keep_secs` ago (their refresh
/// tokens go with them).
pub async fn purge_ended(store: &Store, now: i64, keep_secs: i64) -> StoreResult<usize> {
    let cutoff = now - keep_secs;
    with_conn!(store, |conn| {
        Ok(diesel::delete(
            grants::table.filter(
                grants::expires_at
                    .lt(cutoff)
                    .or(grants::revoked_at.lt(cutoff)),
            ),
        )
        .execute(conn)
        .await?)
    })
}

/// Revokes every grant of a user ("sign out everywhere").
pub async fn revoke_all_for_user(store: &Store, user_id: &str, now: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(diesel::update(
            grants::table
                .filter(grants::user_id.eq(user_id))
                .filter(grants::revoked_at.is_null()),
        )
        .set(grants::revoked_at.eq(Some(now)))
        .execute(conn)
        .await?)
    })
}
