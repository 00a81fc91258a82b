//! Sign-ups in progress: the address, its verification code (an HMAC, never the code), and
//! the two one-way steps (verified, completed), each taken by one conditional UPDATE so two
//! concurrent requests cannot both take it.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::signups;
use super::{Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = signups)]
pub struct SignupRow {
    pub id: String,
    pub org_id: String,
    /// Normalized (lower case).
    pub email: String,
    /// The parked authorization request (and so the browser) the sign-up belongs to.
    pub auth_request_id: String,
    pub code_hash: String,
    /// False when the address already had an account: nothing was sent, nothing verifies.
    pub code_sent: bool,
    pub failed_attempts: i64,
    /// The WebAuthn user handle the account gets if its first credential is a passkey.
    pub webauthn_handle: String,
    pub created_at: i64,
    pub code_expires_at: i64,
    pub expires_at: i64,
    pub verified_at: Option<i64>,
    pub completed_at: Option<i64>,
}

pub async fn insert(store: &Store, row: &SignupRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(signups::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(store: &Store, id: &str) -> StoreResult<Option<SignupRow>> {
    if !super::storable(id) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        Ok(signups::table
            .find(id)
            .select(SignupRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Counts a wrong code unless the limit is reached; returns the attempts left.
pub async fn record_failure(store: &Store, id: &str, max_attempts: i64) -> StoreResult<i64> {
    with_conn!(store, |conn| {
        diesel::update(
            signups::table
                .find(id)
                .filter(signups::failed_attempts.lt(max_attempts)),
        )
        .set(signups::failed_attempts.eq(signups::failed_attempts + 1i64))
        .execute(conn)
        .await?;
        let failed: i64 = signups::table
            .find(id)
            .select(signups::failed_attempts)
            .first(conn)
            .await?;
        Ok((max_attempts - failed).max(0))
    })
}

/// Marks the address verified: true for the one caller that did it while the code was live.
pub async fn mark_verified(
    store: &Store,
    id: &str,
    max_attempts: i64,
    now: i64,
) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let n = diesel::update(
            signups::table
                .find(id)
                .filter(signups::verified_at.is_null())
                .filter(signups::code_sent.eq(true))
                .filter(signups::code_expires_at.gt(now))
                .filter(signups::failed_attempts.lt(max_attempts)),
        )
        .set(signups::verified_at.eq(Some(now)))
        .execute(conn)
        .await?;
        Ok(n == 1)
    })
}

/// Takes the verified sign-up to create its account: true for exactly one caller.
pub async fn mark_completed(store: &Store, id: &str, now: i64) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let n = diesel::update(
            signups::table
                .find(id)
                .filter(signups::verified_at.is_not_null())
                .filter(signups::completed_at.is_null())
                .filter(signups::expires_at.gt(now)),
        )
        .set(signups::completed_at.eq(Some(now)))
        .execute(conn)
        .await?;
        Ok(n == 1)
    })
}

pub async fn purge_expired(store: &Store, now: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(
            diesel::delete(signups::table.filter(signups::expires_at.lt(now)))
                .execute(conn)
                .await?,
        )
    })
}
