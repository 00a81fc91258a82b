//! Companion-app devices (a P-256 public key per device), their single-use enrollment codes,
//! and the single-use challenges a device signs to act on one QR code.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::{device_challenges, device_enrollments, devices};
use super::{Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = devices)]
pub struct DeviceRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// The device's P-256 public key as a JWK.
    pub public_key: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

pub async fn insert(store: &Store, row: &DeviceRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(devices::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(store: &Store, id: &str) -> StoreResult<Option<DeviceRow>> {
    if !super::storable(id) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        Ok(devices::table
            .find(id)
            .select(DeviceRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn list_for_user(store: &Store, user_id: &str) -> StoreResult<Vec<DeviceRow>> {
    with_conn!(store, |conn| {
        Ok(devices::table
            .filter(devices::user_id.eq(user_id))
            .order(devices::created_at.asc())
            .select(DeviceRow::as_select())
            .load(conn)
            .await?)
    })
}

pub async fn count_for_user(store: &Store, user_id: &str) -> StoreResult<i64> {
    with_conn!(store, |conn| {
        Ok(devices::table
            .filter(devices::user_id.eq(user_id))
            .count()
            .get_result(conn)
            .await?)
    })
}

pub async fn record_use(store: &Store, id: &str, now: i64) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::update(devices::table.find(id))
            .set(devices::last_used_at.eq(Some(now)))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Removes one of the user's devices; false when it is not theirs (or already gone).
pub async fn delete(store: &Store, user_id: &str, id: &str) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        Ok(
            diesel::delete(devices::table.find(id).filter(devices::user_id.eq(user_id)))
                .execute(conn)
                .await?
                == 1,
        )
    })
}

pub async fn insert_enrollment(
    store: &Store,
    code_hash: &str,
    user_id: &str,
    expires_at: i64,
) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(device_enrollments::table)
            .values((
                device_enrollments::code_hash.eq(code_hash),
                device_enrollments::user_id.eq(user_id),
                device_enrollments::expires_at.eq(expires_at),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Consumes a live enrollment code: the user it enrolls a device for, once.
pub async fn take_enrollment(
    store: &Store,
    code_hash: &str,
    now: i64,
) -> StoreResult<Option<String>> {
    with_conn!(store, |conn| {
        let user: Option<String> = device_enrollments::table
            .find(code_hash)
            .filter(device_enrollments::expires_at.gt(now))
            .select(device_enrollments::user_id)
            .first(conn)
            .await
            .optional()?;
        let deleted = diesel::delete(device_enrollments::table.find(code_hash))
            .execute(conn)
            .await?;
        // Two enrollments racing on one code: only the one whose DELETE removed it wins.
        Ok(user.filter(|_| deleted == 1))
    })
}

pub async fn insert_challenge(
    store: &Store,
    challenge_hash: &str,
    qr_id_hash: &str,
    expires_at: i64,
) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(device_challenges::table)
            .values((
                device_challenges::challenge_hash.eq(challenge_hash),
                device_challenges::qr_id_hash.eq(qr_id_hash),
                device_challenges::expires_at.eq(expires_at),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Consumes a live challenge issued for this QR code; false if unknown, used or expired.
pub async fn use_challenge(
    store: &Store,
    challenge_hash: &str,
    qr_id_hash: &str,
    now: i64,
) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        Ok(diesel::delete(
            device_challenges::table
                .find(challenge_hash)
                .filter(device_challenges::qr_id_hash.eq(qr_id_hash))
                .filter(device_challenges::expires_at.gt(now)),
        )
        .execute(conn)
        .await?
            == 1)
    })
}

pub async fn purge_expired(store: &Store, now: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        let challenges =
            diesel::delete(device_challenges::table.filter(device_challenges::expires_at.lt(now)))
                .execute(conn)
                .await?;
        let enrollments = diesel::delete(
            device_enrollments::table.filter(device_enrollments::expires_at.lt(now)),
        )
        .execute(conn)
        .await?;
        Ok(challenges + enrollments)
    })
}

/// Removes every companion device of the user (an administrator resetting their methods).
pub async fn delete_all_for_user(store: &Store, user_id: &str) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(
            diesel::delete(devices::table.filter(devices::user_id.eq(user_id)))
                .execute(conn)
                .await?,
        )
    })
}
