//! Email and SMS one-time code challenges. The code itself is never stored: `code_hash` is an
//! HMAC under the instance key, so a copy of the database does not reveal live codes.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::otp_challenges;
use super::{Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = otp_challenges)]
pub struct OtpChallenge {
    pub id: String,
    pub org_id: String,
    /// `email` or `sms`.
    pub channel: String,
    /// Normalized: lower-case email or E.164 number.
    pub address: String,
    /// The account the code was sent for; `None` when nothing was sent (no account).
    pub user_id: Option<String>,
    /// The parked authorization request (and so the browser) the code belongs to.
    pub auth_request_id: String,
    pub code_hash: String,
    pub failed_attempts: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
}

pub async fn insert(store: &Store, challenge: &OtpChallenge) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(otp_challenges::table)
            .values(challenge)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(store: &Store, id: &str) -> StoreResult<Option<OtpChallenge>> {
    if !super::storable(id) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        Ok(otp_challenges::table
            .find(id)
            .select(OtpChallenge::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Counts a wrong code, unless the challenge already reached `max_attempts` (one conditional
/// UPDATE, so concurrent guesses cannot exceed the limit). Returns the attempts left.
pub async fn record_failure(store: &Store, id: &str, max_attempts: i64) -> StoreResult<i64> {
    with_conn!(store, |conn| {
        diesel::update(
            otp_challenges::table
                .find(id)
                .filter(otp_challenges::failed_attempts.lt(max_attempts)),
        )
        .set(otp_challenges::failed_attempts.eq(otp_challenges::failed_attempts + 1i64))
        .execute(conn)
        .await?;
        let failed: i64 = otp_challenges::table
            .find(id)
            .select(otp_challenges::failed_attempts)
            .first(conn)
            .await?;
        Ok((max_attempts - failed).max(0))
    })
}

/// Uses the challenge once: true for the one caller that consumed it while it was unused,
/// unexpired and under the attempt limit.
pub async fn consume(store: &Store, id: &str, max_attempts: i64, now: i64) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let n = diesel::update(
            otp_challenges::table
                .find(id)
                .filter(otp_challenges::consumed_at.is_null())
                .filter(otp_challenges::expires_at.gt(now))
                .filter(otp_challenges::failed_attempts.lt(max_attempts)),
        )
        .set(otp_challenges::consumed_at.eq(Some(now)))
        .execute(conn)
        .await?;
        Ok(n == 1)
    })
}

pub async fn purge_expired(store: &Store, now: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(
            diesel::delete(otp_challenges::table.filter(otp_challenges::expires_at.lt(now)))
                .execute(conn)
                .await?,
        )
    })
}
