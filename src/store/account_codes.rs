//! Codes and links of the account's own flows: recovery by emailed code, recovery link sent
//! by an admin, and the code that proves a new email address. Secrets are never stored:
//! `secret_hash` is an HMAC (codes) or a digest (links), so a copy of the database does not
//! reveal a live one. A row is used in two steps, each a conditional UPDATE so that
//! concurrent requests cannot both win: `verify` (the secret was right) and `complete` (the
//! flow's last step ran).

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::account_codes;
use super::{Store, StoreResult, with_conn};

pub const PURPOSE_RECOVERY_CODE: &str = "recovery-code";
pub const PURPOSE_RECOVERY_LINK: &str = "recovery-link";
pub const PURPOSE_EMAIL_CHANGE: &str = "email-change";

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = account_codes)]
pub struct AccountCode {
    pub id: String,
    pub org_id: String,
    /// `None` when no account holds the address: nothing was sent.
    pub user_id: Option<String>,
    pub purpose: String,
    /// Normalized email address the secret was sent to.
    pub address: String,
    pub secret_hash: String,
    /// Who alone may use it: digest of the recovering browser's cookie, or the session id
    /// that asked for an email change. `None` for an admin's link until it is opened.
    pub holder: Option<String>,
    /// The parked authorization request to resume once recovery completes.
    pub auth_request_id: Option<String>,
    pub failed_attempts: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub verified_at: Option<i64>,
    pub completed_at: Option<i64>,
}

impl AccountCode {
    /// Still open for a right guess: unverified, unexpired, under the attempt limit.
    pub fn guessable(&self, now: i64, max_attempts: i64) -> bool {
        self.verified_at.is_none()
            && self.completed_at.is_none()
            && self.expires_at > now
            && self.failed_attempts < max_attempts
    }
}

pub async fn insert(store: &Store, row: &AccountCode) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(account_codes::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// The newest row of one of `purposes` held by `holder`.
pub async fn find_held(
    store: &Store,
    purposes: &[&str],
    holder: &str,
) -> StoreResult<Option<AccountCode>> {
    with_conn!(store, |conn| {
        Ok(account_codes::table
            .filter(account_codes::purpose.eq_any(purposes.to_vec()))
            .filter(account_codes::holder.eq(holder))
            .order(account_codes::created_at.desc())
            .select(AccountCode::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn find_by_secret(
    store: &Store,
    purpose: &str,
    secret_hash: &str,
) -> StoreResult<Option<AccountCode>> {
    with_conn!(store, |conn| {
        Ok(account_codes::table
            .filter(account_codes::purpose.eq(purpose))
            .filter(account_codes::secret_hash.eq(secret_hash))
            .select(AccountCode::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Counts a wrong code unless the limit is reached (one conditional UPDATE, so concurrent
/// guesses cannot exceed it). Returns the attempts left.
pub async fn record_failure(store: &Store, id: &str, max_attempts: i64) -> StoreResult<i64> {
    with_conn!(store, |conn| {
        diesel::update(
            account_codes::table
                .find(id)
                .filter(account_codes::failed_attempts.lt(max_attempts)),
        )
        .set(account_codes::failed_attempts.eq(account_codes::failed_attempts + 1i64))
        .execute(conn)
        .await?;
        let failed: i64 = account_codes::table
            .find(id)
            .select(account_codes::failed_attempts)
            .first(conn)
            .await?;
        Ok((max_attempts - failed).max(0))
    })
}

/// Marks the secret as proved by `holder`, once: true for the one caller that did it while
/// the row was unverified, unexpired and under the limit. The next step gets `ttl` from now.
pub async fn verify(
    store: &Store,
    id: &str,
    holder: &str,
    max_attempts: i64,
    now: i64,
    ttl: i64,
) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let n = diesel::update(
            account_codes::table
                .find(id)
                .filter(account_codes::verified_at.is_null())
                .filter(account_codes::expires_at.gt(now))
                .filter(account_codes::failed_attempts.lt(max_attempts)),
        )
        .set((
            account_codes::verified_at.eq(Some(now)),
            account_codes::holder.eq(Some(holder)),
            account_codes::expires_at.eq(now + ttl),
        ))
        .execute(conn)
        .await?;
        Ok(n == 1)
    })
}

/// Ends the flow, once: true for the one caller that did it on a verified, live row.
pub async fn complete(store: &Store, id: &str, now: i64) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let n = diesel::update(
            account_codes::table
                .find(id)
                .filter(account_codes::verified_at.is_not_null())
                .filter(account_codes::completed_at.is_null())
                .filter(account_codes::expires_at.gt(now)),
        )
        .set(account_codes::completed_at.eq(Some(now)))
        .execute(conn)
        .await?;
        Ok(n == 1)
    })
}

pub async fn purge_expired(store: &Store, now: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(
            diesel::delete(account_codes::table.filter(account_codes::expires_at.lt(now)))
                .execute(conn)
                .await?,
        )
    })
}
