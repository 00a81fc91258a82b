//! QR cross-device sign-ins (one row per QR code). Every state change is one conditional
//! UPDATE that names the state it leaves, so two phones, two tabs or two replicas racing on
//! the same code cannot both win; each change bumps `version`, which watchers compare.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::qr_logins;
use super::{Store, StoreResult, with_conn};

pub const WAITING: &str = "waiting";
pub const CLAIMED: &str = "claimed";
pub const APPROVED: &str = "approved";
pub const DENIED: &str = "denied";
pub const REDEEMED: &str = "redeemed";

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = qr_logins)]
pub struct QrLoginRow {
    pub id_hash: String,
    pub browser_hash: String,
    pub request_id: String,
    pub client_id: String,
    /// The waiting browser's P-256 public key (JWK) that the login grant is sealed to.
    pub browser_key: String,
    pub desktop_user_agent: Option<String>,
    pub desktop_ip: Option<String>,
    pub state: String,
    pub match_code: String,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<i64>,
    pub phone_user_agent: Option<String>,
    pub phone_ip: Option<String>,
    pub wrong_codes: i32,
    pub user_id: Option<String>,
    pub approved_amr: Option<String>,
    pub grant_hash: Option<String>,
    /// The login grant as a JWE only the waiting browser can open; cleared on redemption.
    pub sealed_grant: Option<String>,
    pub grant_expires_at: Option<i64>,
    pub version: i32,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(store: &Store, row: &QrLoginRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(qr_logins::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(store: &Store, id_hash: &str) -> StoreResult<Option<QrLoginRow>> {
    with_conn!(store, |conn| {
        Ok(qr_logins::table
            .find(id_hash)
            .select(QrLoginRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// The first scan wins: `waiting` → `claimed` by this phone session.
pub async fn claim(
    store: &Store,
    id_hash: &str,
    session_id: &str,
    phone_user_agent: Option<&str>,
    phone_ip: Option<&str>,
    now: i64,
) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        Ok(diesel::update(
            qr_logins::table
                .find(id_hash)
                .filter(qr_logins::state.eq(WAITING))
                .filter(qr_logins::expires_at.gt(now)),
        )
        .set((
            qr_logins::state.eq(CLAIMED),
            qr_logins::claimed_by.eq(Some(session_id)),
            qr_logins::claimed_at.eq(Some(now)),
            qr_logins::phone_user_agent.eq(phone_user_agent),
            qr_logins::phone_ip.eq(phone_ip),
            qr_logins::version.eq(qr_logins::version + 1),
        ))
        .execute(conn)
        .await?
            == 1)
    })
}

/// Counts a wrong match code; at `max` the code is denied for good. Returns true when this
/// entry used up the last try.
pub async fn record_wrong_code(
    store: &Store,
    id_hash: &str,
    session_id: &str,
    max: i32,
) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let claimed_by_this_phone = qr_logins::table
            .find(id_hash)
            .filter(qr_logins::state.eq(CLAIMED))
            .filter(qr_logins::claimed_by.eq(session_id));
        diesel::update(claimed_by_this_phone)
            .set(qr_logins::wrong_codes.eq(qr_logins::wrong_codes + 1))
            .execute(conn)
            .await?;
        Ok(
            diesel::update(claimed_by_this_phone.filter(qr_logins::wrong_codes.ge(max)))
                .set((
                    qr_logins::state.eq(DENIED),
                    qr_logins::version.eq(qr_logins::version + 1),
                ))
                .execute(conn)
                .await?
                == 1,
        )
    })
}

pub struct Approval<'a> {
    pub user_id: &'a str,
    pub amr: &'a str,
    pub grant_hash: &'a str,
    pub sealed_grant: &'a str,
    pub grant_expires_at: i64,
}

/// `claimed` by this phone session → `approved`, with the sealed login grant for the browser.
pub async fn approve(
    store: &Store,
    id_hash: &str,
    session_id: &str,
    approval: &Approval<'_>,
    now: i64,
) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        Ok(diesel::update(
            qr_logins::table
                .find(id_hash)
                .filter(qr_logins::state.eq(CLAIMED))
                .filter(qr_logins::claimed_by.eq(session_id))
                .filter(qr_logins::expires_at.gt(now)),
        )
        .set((
            qr_logins::state.eq(APPROVED),
            qr_logins::user_id.eq(Some(approval.user_id)),
            qr_logins::approved_amr.eq(Some(approval.amr)),
            qr_logins::grant_hash.eq(Some(approval.grant_hash)),
            qr_logins::sealed_grant.eq(Some(approval.sealed_grant)),
            qr_logins::grant_expires_at.eq(Some(approval.grant_expires_at)),
            // The row lives exactly as long as the grant it now carries.
            qr_logins::expires_at.eq(approval.grant_expires_at),
            qr_logins::version.eq(qr_logins::version + 1),
        ))
        .execute(conn)
        .await?
            == 1)
    })
}

/// `claimed` by this phone session → `denied`.
pub async fn deny(store: &Store, id_hash: &str, session_id: &str) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        Ok(diesel::update(
            qr_logins::table
                .find(id_hash)
                .filter(qr_logins::state.eq(CLAIMED))
                .filter(qr_logins::claimed_by.eq(session_id)),
        )
        .set((
            qr_logins::state.eq(DENIED),
            qr_logins::version.eq(qr_logins::version + 1),
        ))
        .execute(conn)
        .await?
            == 1)
    })
}

/// `approved` → `redeemed`, once, while the grant is fresh. The grant is compared by its
/// digest (a 256-bit secret's SHA-256, like every stored code), never stored in the clear.
pub async fn redeem(store: &Store, id_hash: &str, grant_hash: &str, now: i64) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        Ok(diesel::update(
            qr_logins::table
                .find(id_hash)
                .filter(qr_logins::state.eq(APPROVED))
                .filter(qr_logins::grant_hash.eq(grant_hash))
                .filter(qr_logins::grant_expires_at.gt(now)),
        )
        .set((
            qr_logins::state.eq(REDEEMED),
            qr_logins::sealed_grant.eq(None::<String>),
            qr_logins::version.eq(qr_logins::version + 1),
        ))
        .execute(conn)
        .await?
            == 1)
    })
}

pub async fn purge_expired(store: &Store, now: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(
            diesel::delete(qr_logins::table.filter(qr_logins::expires_at.lt(now)))
                .execute(conn)
                .await?,
        )
    })
}
