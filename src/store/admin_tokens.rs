//! Admin API bearer tokens. The token is 256 random bits shown once; only its SHA-256 digest
//! is stored, and a presented token is found by its digest (a random value needs no slow
//! hash, and looking up the digest leaks nothing about the token through timing).

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::admin_tokens;
use super::{Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = admin_tokens)]
pub struct AdminTokenRow {
    pub id: String,
    pub token_hash: String,
    /// `None`: the token manages every organization and the signing keys.
    pub org_id: Option<String>,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub async fn insert(store: &Store, row: &AdminTokenRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(admin_tokens::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// The unrevoked token whose digest is `token_hash`, if any.
pub async fn find_live_by_digest(
    store: &Store,
    token_hash: &str,
) -> StoreResult<Option<AdminTokenRow>> {
    with_conn!(store, |conn| {
        Ok(admin_tokens::table
            .filter(admin_tokens::token_hash.eq(token_hash))
            .filter(admin_tokens::revoked_at.is_null())
            .select(AdminTokenRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn find(store: &Store, id: &str) -> StoreResult<Option<AdminTokenRow>> {
    if !super::storable(id) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        Ok(admin_tokens::table
            .find(id)
            .select(AdminTokenRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Oldest first; `org_id` `None` lists every token (deployment-wide ones included).
pub async fn list(store: &Store, org_id: Option<&str>) -> StoreResult<Vec<AdminTokenRow>> {
    with_conn!(store, |conn| {
        let mut query = admin_tokens::table
            .order((admin_tokens::created_at.asc(), admin_tokens::id.asc()))
            .select(AdminTokenRow::as_select())
            .into_boxed();
        if let Some(org) = org_id {
            query = query.filter(admin_tokens::org_id.eq(org));
        }
        Ok(query.load(conn).await?)
    })
}

/// Returns whether a live token was revoked.
pub async fn revoke(store: &Store, id: &str, now: i64) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let n = diesel::update(
            admin_tokens::table
                .find(id)
                .filter(admin_tokens::revoked_at.is_null()),
        )
        .set(admin_tokens::revoked_at.eq(Some(now)))
        .execute(conn)
        .await?;
        Ok(n > 0)
    })
}

pub async fn touch(store: &Store, id: &str, now: i64) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::update(admin_tokens::table.find(id))
            .set(admin_tokens::last_used_at.eq(Some(now)))
            .execute(conn)
            .await?;
        Ok(())
    })
}
