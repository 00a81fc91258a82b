//! Device authorizations (RFC 8628): one row per device authorization request, keyed by the
//! digest of its device code and findable by the digest of its normalized user code. Every
//! change of state is one conditional UPDATE, so concurrent polls, approvals and redemptions
//! (even on several replicas) cannot both win.

use diesel::{
    BoolExpressionMethods, ExpressionMethods, JoinOnDsl, NullableExpressionMethods,
    OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::schema::{device_authorizations, users};
use super::users::User;
use super::{Store, StoreResult, with_conn};

/// The `status` column: the user's decision, if any.
pub const PENDING: &str = "pending";
pub const APPROVED: &str = "approved";
pub const DENIED: &str = "denied";

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = device_authorizations)]
pub struct DeviceAuthorizationRow {
    pub device_code_hash: String,
    pub user_code_hash: String,
    /// The id the grant gets when the device redeems the approved code.
    pub grant_id: String,
    pub client_id: String,
    pub scope: String,
    pub status: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub auth_time: Option<i64>,
    pub amr: Option<String>,
    pub acr: Option<String>,
    pub interval_secs: i64,
    pub last_polled_at: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub consumed_at: Option<i64>,
    /// The address the device asked from, shown on the confirmation page.
    pub device_ip: Option<String>,
}

/// What an approval copies from the approving browser session.
#[derive(Debug, Clone)]
pub struct Approval<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub auth_time: i64,
    pub amr: &'a str,
    pub acr: &'a str,
}

pub async fn insert(store: &Store, row: &DeviceAuthorizationRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(device_authorizations::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(
    store: &Store,
    device_code_hash: &str,
) -> StoreResult<Option<DeviceAuthorizationRow>> {
    with_conn!(store, |conn| {
        Ok(device_authorizations::table
            .find(device_code_hash)
            .select(DeviceAuthorizationRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// The authorization with its approving user (`None` before approval or for a deleted user),
/// read in one statement.
pub async fn find_with_user(
    store: &Store,
    device_code_hash: &str,
) -> StoreResult<Option<(DeviceAuthorizationRow, Option<User>)>> {
    with_conn!(store, |conn| {
        Ok(device_authorizations::table
            .left_join(users::table.on(users::id.nullable().eq(device_authorizations::user_id)))
            .filter(device_authorizations::device_code_hash.eq(device_code_hash))
            .select((
                DeviceAuthorizationRow::as_select(),
                Option::<User>::as_select(),
            ))
            .first::<(DeviceAuthorizationRow, Option<User>)>(conn)
            .await
            .optional()?)
    })
}

pub async fn find_by_user_code(
    store: &Store,
    user_code_hash: &str,
) -> StoreResult<Option<DeviceAuthorizationRow>> {
    with_conn!(store, |conn| {
        Ok(device_authorizations::table
            .filter(device_authorizations::user_code_hash.eq(user_code_hash))
            .select(DeviceAuthorizationRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Records a poll of a pending authorization that came at least `interval_secs` after the
/// previous one. `false`: it came too early (or the row is no longer pending) and nothing was
/// written.
pub async fn record_timely_poll(
    store: &Store,
    device_code_hash: &str,
    now: i64,
) -> StoreResult<bool> {
    use device_authorizations::dsl;
    with_conn!(store, |conn| {
        let updated = diesel::update(
            dsl::device_authorizations
                .find(device_code_hash)
                .filter(dsl::status.eq(PENDING))
                .filter(
                    dsl::last_polled_at
                        .is_null()
                        .or((dsl::last_polled_at + dsl::interval_secs.nullable()).le(now)),
                ),
        )
        .set(dsl::last_polled_at.eq(Some(now)))
        .execute(conn)
        .await?;
        Ok(updated == 1)
    })
}

/// A poll of a pending authorization that came too early: the interval grows by `step`
/// seconds for this and every later poll (RFC 8628 §3.5), and the poll counts as the latest
/// one. `false`: the person decided in the meantime, and nothing was written.
pub async fn slow_down(
    store: &Store,
    device_code_hash: &str,
    step: i64,
    now: i64,
) -> StoreResult<bool> {
    use device_authorizations::dsl;
    with_conn!(store, |conn| {
        let updated = diesel::update(
            dsl::device_authorizations
                .find(device_code_hash)
                .filter(dsl::status.eq(PENDING)),
        )
        .set((
            dsl::interval_secs.eq(dsl::interval_secs + step),
            dsl::last_polled_at.eq(Some(now)),
        ))
        .execute(conn)
        .await?;
        Ok(updated == 1)
    })
}

/// Records the user's approval of a pending, live authorization. `false`: it was decided,
/// redeemed or expired in the meantime.
pub async fn approve(
    store: &Store,
    user_code_hash: &str,
    approval: &Approval<'_>,
    now: i64,
) -> StoreResult<bool> {
    use device_authorizations::dsl;
    with_conn!(store, |conn| {
        let updated = diesel::update(
            dsl::device_authorizations
                .filter(dsl::user_code_hash.eq(user_code_hash))
                .filter(dsl::status.eq(PENDING))
                .filter(dsl::expires_at.gt(now)),
        )
        .set((
            dsl::status.eq(APPROVED),
            dsl::user_id.eq(Some(approval.user_id)),
            dsl::session_id.eq(Some(approval.session_id)),
            dsl::auth_time.eq(Some(approval.auth_time)),
            dsl::amr.eq(Some(approval.amr)),
            dsl::acr.eq(Some(approval.acr)),
            dsl::decided_at.eq(Some(now)),
        ))
        .execute(conn)
        .await?;
        Ok(updated == 1)
    })
}

/// Records the user's refusal of a pending, live authorization. `false` as for [`approve`].
pub async fn deny(store: &Store, user_code_hash: &str, now: i64) -> StoreResult<bool> {
    use device_authorizations::dsl;
    with_conn!(store, |conn| {
        let updated = diesel::update(
            dsl::device_authorizations
                .filter(dsl::user_code_hash.eq(user_code_hash))
                .filter(dsl::status.eq(PENDING))
                .filter(dsl::expires_at.gt(now)),
        )
        .set((dsl::status.eq(DENIED), dsl::decided_at.eq(Some(now))))
        .execute(conn)
        .await?;
        Ok(updated == 1)
    })
}

/// Marks an approved authorization redeemed in one conditional UPDATE, so that two
/// concurrent polls cannot both receive tokens. `false`: redeemed before.
pub async fn consume(store: &Store, device_code_hash: &str, now: i64) -> StoreResult<bool> {
    use device_authorizations::dsl;
    with_conn!(store, |conn| {
        let claimed = diesel::update(
            dsl::device_authorizations
                .find(device_code_hash)
                .filter(dsl::status.eq(APPROVED))
                .filter(dsl::consumed_at.is_null()),
        )
        .set(dsl::consumed_at.eq(Some(now)))
        .execute(conn)
        .await?;
        Ok(claimed == 1)
    })
}

/// Rows are kept for a while after expiry, so that a late poll is answered `expired_token`
/// or `invalid_grant` for what it is rather than as an unknown code.
pub async fn purge_expired(store: &Store, before: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(diesel::delete(
            device_authorizations::table.filter(device_authorizations::expires_at.lt(before)),
        )
        .execute(conn)
        .await?)
    })
}
