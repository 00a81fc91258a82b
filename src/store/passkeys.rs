//! Stored passkeys (the serialized webauthn-rs credential, counter included) and the
//! WebAuthn ceremonies in progress.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::{passkeys, webauthn_ceremonies};
use super::{Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = passkeys)]
pub struct PasskeyRow {
    /// The credential id, base64url.
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub aaguid: Option<String>,
    /// webauthn-rs `Passkey` as JSON.
    pub credential: String,
    pub backup_eligible: bool,
    /// Set when the signature counter went backwards (a possible clone); refused from then on.
    pub flagged: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

pub async fn insert(store: &Store, row: &PasskeyRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(passkeys::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(store: &Store, id: &str) -> StoreResult<Option<PasskeyRow>> {
    if !super::storable(id) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        Ok(passkeys::table
            .find(id)
            .select(PasskeyRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn list_for_user(store: &Store, user_id: &str) -> StoreResult<Vec<PasskeyRow>> {
    with_conn!(store, |conn| {
        Ok(passkeys::table
            .filter(passkeys::user_id.eq(user_id))
            .order(passkeys::created_at.asc())
            .select(PasskeyRow::as_select())
            .load(conn)
            .await?)
    })
}

pub async fn count_usable_for_user(store: &Store, user_id: &str) -> StoreResult<i64> {
    with_conn!(store, |conn| {
        Ok(passkeys::table
            .filter(passkeys::user_id.eq(user_id))
            .filter(passkeys::flagged.eq(false))
            .count()
            .get_result(conn)
            .await?)
    })
}

/// Records a successful use: the updated credential (counter, backup state) and the time.
pub async fn record_use(store: &Store, id: &str, credential: &str, now: i64) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::update(passkeys::table.find(id))
            .set((
                passkeys::credential.eq(credential),
                passkeys::last_used_at.eq(Some(now)),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn flag(store: &Store, id: &str) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::update(passkeys::table.find(id))
            .set(passkeys::flagged.eq(true))
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn rename(store: &Store, user_id: &str, id: &str, name: &str) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        Ok(diesel::update(
            passkeys::table
                .find(id)
                .filter(passkeys::user_id.eq(user_id)),
        )
        .set(passkeys::name.eq(name))
        .execute(conn)
        .await?
            > 0)
    })
}

pub async fn delete(store: &Store, user_id: &str, id: &str) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        Ok(diesel::delete(
            passkeys::table
                .find(id)
                .filter(passkeys::user_id.eq(user_id)),
        )
        .execute(conn)
        .await?
            > 0)
    })
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = webauthn_ceremonies)]
pub struct CeremonyRow {
    pub id: String,
    /// `register`, `authenticate` or `discover`.
    pub kind: String,
    pub user_id: Option<String>,
    /// webauthn-rs ceremony state as JSON (it carries no expiry of its own).
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert_ceremony(store: &Store, row: &CeremonyRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(webauthn_ceremonies::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Takes a ceremony out of the store: only the caller whose DELETE removed the row gets it,
/// so a ceremony is used once whether the use then succeeds or fails.
pub async fn take_ceremony(store: &Store, id: &str) -> StoreResult<Option<CeremonyRow>> {
    if !super::storable(id) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        let row = webauthn_ceremonies::table
            .find(id)
            .select(CeremonyRow::as_select())
            .first(conn)
            .await
            .optional()?;
        let taken = diesel::delete(webauthn_ceremonies::table.find(id))
            .execute(conn)
            .await?;
        Ok(row.filter(|_| taken == 1))
    })
}

pub async fn purge_expired_ceremonies(store: &Store, now: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(diesel::delete(
            webauthn_ceremonies::table.filter(webauthn_ceremonies::expires_at.lt(now)),
        )
        .execute(conn)
        .await?)
    })
}

/// Removes every passkey of the user (an administrator resetting their sign-in methods).
pub async fn delete_all_for_user(store: &Store, user_id: &str) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(
            diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id)))
                .execute(conn)
                .await?,
        )
    })
}
