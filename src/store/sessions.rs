//! Server-side browser sessions. The cookie carries a random secret; only its digest is stored.

use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::schema::{grants, sessions};
use super::{Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub secret_hash: String,
    pub user_id: String,
    pub org_id: String,
    pub auth_time: i64,
    pub amr: String,
    pub acr: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub absolute_expires_at: i64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub revoked_at: Option<i64>,
}

pub async fn insert(store: &Store, row: &SessionRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(sessions::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// The live session whose cookie secret hashes to `secret_hash`, if any.
pub async fn find_live_by_secret(
    store: &Store,
    secret_hash: &str,
    now: i64,
) -> StoreResult<Option<SessionRow>> {
    with_conn!(store, |conn| {
        Ok(sessions::table
            .filter(sessions::secret_hash.eq(secret_hash))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now))
            .filter(sessions::absolute_expires_at.gt(now))
            .select(SessionRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn find(store: &Store, id: &str) -> StoreResult<Option<SessionRow>> {
    if !super::storable(id) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        Ok(sessions::table
            .find(id)
            .select(SessionRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Rolls the idle expiry forward (never past the absolute cap).
pub async fn touch(store: &Store, id: &str, now: i64, expires_at: i64) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::update(sessions::table.find(id))
            .set((
                sessions::last_seen_at.eq(now),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Records a fresh authentication on an existing session and rotates its cookie secret.
pub async fn reauthenticate(
    store: &Store,
    id: &str,
    new_secret_hash: &str,
    auth_time: i64,
    amr: &str,
    acr: &str,
    expires_at: i64,
) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::update(sessions::table.find(id))
            .set((
                sessions::secret_hash.eq(new_secret_hash),
                sessions::auth_time.eq(auth_time),
                sessions::amr.eq(amr),
                sessions::acr.eq(acr),
                sessions::last_seen_at.eq(auth_time),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Ends a session and revokes every grant (refresh-token family) issued in it.
pub async fn revoke(store: &Store, id: &str, now: i64) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::update(
            sessions::table
                .find(id)
                .filter(sessions::revoked_at.is_null()),
        )
        .set(sessions::revoked_at.eq(Some(now)))
        .execute(conn)
        .await?;
        diesel::update(
            grants::table
                .filter(grants::session_id.eq(id))
                .filter(grants::revoked_at.is_null()),
        )
        .set(grants::revoked_at.eq(Some(now)))
        .execute(conn)
        .await?;
        Ok(())
    })
}

/// Claims the duty to send the back-channel logout of a session's end: true for exactly one
/// caller, whichever request or sweeping replica gets there first (one conditional UPDATE).
pub async fn claim_logout(store: &Store, id: &str, now: i64) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let n = diesel::update(
            sessions::table
                .find(id)
                .filter(sessions::logout_sent_at.is_null()),
        )
        .set(sessions::logout_sent_at.eq(Some(now)))
        .execute(conn)
        .await?;
        Ok(n == 1)
    })
}

/// Sessions that ended (idle or absolute expiry passed, or revoked by a path that does not
/// notify, such as another user signing in in the same browser) and whose relying parties
/// have not been told yet, oldest first, at most `limit`.
pub async fn ended_unnotified(store: &Store, now: i64, limit: i64) -> StoreResult<Vec<SessionRow>> {
    with_conn!(store, |conn| {
        Ok(sessions::table
            .filter(sessions::logout_sent_at.is_null())
            .filter(
                sessions::expires_at
                    .le(now)
                    .or(sessions::absolute_expires_at.le(now))
                    .or(sessions::revoked_at.is_not_null()),
            )
            .order(sessions::expires_at.asc())
            .limit(limit)
            .select(SessionRow::as_select())
            .load(conn)
            .await?)
    })
}

/// The user's sessions, live or ended, whose end has not been notified yet.
pub async fn unnotified_for_user(store: &Store, user_id: &str) -> StoreResult<Vec<SessionRow>> {
    with_conn!(store, |conn| {
        Ok(sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::logout_sent_at.is_null())
            .select(SessionRow::as_select())
            .load(conn)
            .await?)
    })
}

/// Deletes sessions whose back-channel logout was sent more than `keep_secs` ago (the sweeper
/// runs first; see `ops::housekeeping`). The logout is claimed when, or after, the session
/// ends (revoked or expired), never before, so each of these ended at least that long ago; and
/// the one condition reads only the rows it deletes, through `sessions_unnotified`.
pub async fn purge_ended(store: &Store, now: i64, keep_secs: i64) -> StoreResult<usize> {
    let cutoff = now - keep_secs;
    with_conn!(store, |conn| {
        Ok(
            diesel::delete(sessions::table.filter(sessions::logout_sent_at.lt(cutoff)))
                .execute(conn)
                .await?,
        )
    })
}

/// The user's live sessions, most recently used first (the account page's list).
pub async fn list_live_for_user(
    store: &Store,
    user_id: &str,
    now: i64,
) -> StoreResult<Vec<SessionRow>> {
    with_conn!(store, |conn| {
        Ok(sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now))
            .filter(sessions::absolute_expires_at.gt(now))
            .order(sessions::last_seen_at.desc())
            .select(SessionRow::as_select())
            .load(conn)
            .await?)
    })
}

/// Live sessions across every user and replica (the `tessera_active_sessions` gauge).
pub async fn count_live(store: &Store, now: i64) -> StoreResult<i64> {
    with_conn!(store, |conn| {
        Ok(sessions::table
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now))
            .filter(sessions::absolute_expires_at.gt(now))
            .count()
            .get_result::<i64>(conn)
            .await?)
    })
}
