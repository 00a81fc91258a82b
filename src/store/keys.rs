//! Signing keys and instance secrets. Private key bytes arrive here already encrypted
//! when a master key is configured; this module only stores them.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{instance_secrets, signing_keys};
use super::{Store, StoreResult, with_conn};

pub const STATE_NEXT: &str = "next";
pub const STATE_ACTIVE: &str = "active";
pub const STATE_RETIRED: &str = "retired";

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub state: String,
    pub private_key: Vec<u8>,
    pub encrypted: bool,
    pub public_jwk: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

pub async fn list(store: &Store) -> StoreResult<Vec<SigningKeyRow>> {
    with_conn!(store, |conn| {
        Ok(signing_keys::table
            .order(signing_keys::created_at.asc())
            .select(SigningKeyRow::as_select())
            .load(conn)
            .await?)
    })
}

pub async fn insert(store: &Store, row: &SigningKeyRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(signing_keys::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Promotes the published `next` key to `active`, retires the current active key (kept in
/// JWKS until `publish_until`) and stores `new_next` as the next key, in one transaction.
pub async fn rotate(
    store: &Store,
    next_kid: &str,
    new_next: &SigningKeyRow,
    now: i64,
    publish_until: i64,
) -> StoreResult<()> {
    let next_kid = next_kid.to_owned();
    let new_next = new_next.clone();
    with_conn!(store, |conn| {
        conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
            diesel::update(signing_keys::table.filter(signing_keys::state.eq(STATE_ACTIVE)))
                .set((
                    signing_keys::state.eq(STATE_RETIRED),
                    signing_keys::retired_at.eq(Some(now)),
                    signing_keys::publish_until.eq(Some(publish_until)),
                ))
                .execute(conn)
                .await?;
            diesel::update(signing_keys::table.find(&next_kid))
                .set((
                    signing_keys::state.eq(STATE_ACTIVE),
                    signing_keys::activated_at.eq(Some(now)),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(signing_keys::table)
                .values(&new_next)
                .execute(conn)
                .await?;
            Ok(())
        })
        .await?;
        Ok(())
    })
}

/// Activates a key directly: only used when no active key exists yet (first start).
pub async fn activate(store: &Store, kid: &str, now: i64) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::update(signing_keys::table.find(kid))
            .set((
                signing_keys::state.eq(STATE_ACTIVE),
                signing_keys::activated_at.eq(Some(now)),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Drops retired keys whose every token has expired; returns how many went.
pub async fn purge_retired(store: &Store, now: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(diesel::delete(
            signing_keys::table
                .filter(signing_keys::state.eq(STATE_RETIRED))
                .filter(signing_keys::publish_until.lt(now)),
        )
        .execute(conn)
        .await?)
    })
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = instance_secrets)]
pub struct InstanceSecret {
    pub name: String,
    pub value: Vec<u8>,
    pub encrypted: bool,
    pub created_at: i64,
}

pub async fn find_secret(store: &Store, name: &str) -> StoreResult<Option<InstanceSecret>> {
    with_conn!(store, |conn| {
        Ok(instance_secrets::table
            .find(name)
            .select(InstanceSecret::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Inserts the secret unless another replica got there first; returns the stored one.
pub async fn insert_secret_once(
    store: &Store,
    secret: &InstanceSecret,
) -> StoreResult<InstanceSecret> {
    with_conn!(store, |conn| {
        diesel::insert_into(instance_secrets::table)
            .values(secret)
            .on_conflict(instance_secrets::name)
            .do_nothing()
            .execute(conn)
            .await?;
        Ok(instance_secrets::table
            .find(&secret.name)
            .select(InstanceSecret::as_select())
            .first(conn)
            .await?)
    })
}
