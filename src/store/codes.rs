//! Authorization codes: stored as digests, single use, bound to client, redirect URI,
//! PKCE challenge and nonce.

use diesel::{ExpressionMethods, JoinOnDsl, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::orgs::Organization;
use super::schema::{authorization_codes, organizations, users};
use super::users::User;
use super::{Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = authorization_codes)]
pub struct CodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub acr: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
}

pub async fn insert(store: &Store, row: &CodeRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(authorization_codes::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// The code with its user (`None` for a deleted user) and the user's organization, read in
/// one statement.
pub async fn find_with_user(
    store: &Store,
    code_hash: &str,
) -> StoreResult<Option<(CodeRow, Option<User>, Option<Organization>)>> {
    with_conn!(store, |conn| {
        Ok(authorization_codes::table
            .left_join(users::table.on(users::id.eq(authorization_codes::user_id)))
            .left_join(organizations::table.on(organizations::id.eq(users::org_id)))
            .filter(authorization_codes::code_hash.eq(code_hash))
            .select((
                CodeRow::as_select(),
                Option::<User>::as_select(),
                Option::<Organization>::as_select(),
            ))
            .first::<(CodeRow, Option<User>, Option<Organization>)>(conn)
            .await
            .optional()?)
    })
}

/// Marks the code used in one conditional UPDATE, so two concurrent redemptions (even on two
/// replicas) cannot both succeed. `false`: it was redeemed before (or purged) in the meantime.
pub async fn consume(store: &Store, code_hash: &str, now: i64) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let claimed = diesel::update(
            authorization_codes::table
                .find(code_hash)
                .filter(authorization_codes::consumed_at.is_null()),
        )
        .set(authorization_codes::consumed_at.eq(Some(now)))
        .execute(conn)
        .await?;
        Ok(claimed == 1)
    })
}

/// Expired codes are kept for a while after expiry so that a late replay is still
/// recognised as reuse (and revokes the grant) rather than as an unknown code.
pub async fn purge_expired(store: &Store, before: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(diesel::delete(
            authorization_codes::table.filter(authorization_codes::expires_at.lt(before)),
        )
        .execute(conn)
        .await?)
    })
}
