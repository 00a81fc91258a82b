//! Pending authorization requests: a validated `/authorize` request waiting for the user
//! to sign in (or choose an account, or consent), bound to one browser.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::authorization_requests;
use super::{Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = authorization_requests)]
pub struct PendingRequestRow {
    pub id: String,
    pub browser_hash: String,
    pub client_id: String,
    pub params: String,
    pub csrf: String,
    pub authenticated_session_id: Option<String>,
    pub interaction_done: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(store: &Store, row: &PendingRequestRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(authorization_requests::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find_live(
    store: &Store,
    id: &str,
    now: i64,
) -> StoreResult<Option<PendingRequestRow>> {
    if !super::storable(id) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        Ok(authorization_requests::table
            .find(id)
            .filter(authorization_requests::expires_at.gt(now))
            .select(PendingRequestRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Records which session completed the sign-in this request was waiting for.
pub async fn mark_authenticated(store: &Store, id: &str, session_id: &str) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::update(authorization_requests::table.find(id))
            .set(authorization_requests::authenticated_session_id.eq(Some(session_id)))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Records that the account choice or consent this request needed has been given.
pub async fn mark_interaction_done(store: &Store, id: &str) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::update(authorization_requests::table.find(id))
            .set(authorization_requests::interaction_done.eq(true))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Consumes the request: returns false when another tab already finished it.
pub async fn delete(store: &Store, id: &str) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        Ok(diesel::delete(authorization_requests::table.find(id))
            .execute(conn)
            .await?
            > 0)
    })
}

pub async fn purge_expired(store: &Store, now: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(diesel::delete(
            authorization_requests::table.filter(authorization_requests::expires_at.lt(now)),
        )
        .execute(conn)
        .await?)
    })
}
