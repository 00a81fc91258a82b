//! Invitation links. The token is kept as its SHA-256 digest; using one is a conditional
//! UPDATE, so a link works once however many browsers race on it.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::invitations;
use super::{Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = invitations)]
pub struct Invitation {
    pub id: String,
    pub token_hash: String,
    pub org_id: String,
    /// Normalized; the account created from the invitation gets this address.
    pub email: String,
    /// The audit actor who sent it (`user:…`, `admin_token:…`, `cli`).
    pub invited_by: String,
    /// The WebAuthn user handle the account gets if its first credential is a passkey.
    pub webauthn_handle: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub async fn insert(store: &Store, row: &Invitation) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(invitations::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find_by_token_hash(
    store: &Store,
    token_hash: &str,
) -> StoreResult<Option<Invitation>> {
    with_conn!(store, |conn| {
        Ok(invitations::table
            .filter(invitations::token_hash.eq(token_hash))
            .select(Invitation::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn list(store: &Store, org_id: &str) -> StoreResult<Vec<Invitation>> {
    with_conn!(store, |conn| {
        Ok(invitations::table
            .filter(invitations::org_id.eq(org_id))
            .order(invitations::created_at.desc())
            .select(Invitation::as_select())
            .load(conn)
            .await?)
    })
}

/// Uses the invitation: true for the one caller that found it unused and unexpired.
pub async fn mark_used(store: &Store, id: &str, now: i64) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let n = diesel::update(
            invitations::table
                .find(id)
                .filter(invitations::used_at.is_null())
                .filter(invitations::expires_at.gt(now)),
        )
        .set(invitations::used_at.eq(Some(now)))
        .execute(conn)
        .await?;
        Ok(n == 1)
    })
}
