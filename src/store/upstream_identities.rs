//! Upstream identities (an account at an upstream OpenID provider, linked to a user), the
//! trips to a provider in flight, and links waiting for the account holder's proof.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::{upstream_identities, upstream_logins, upstream_pending_links};
use super::{Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = upstream_identities)]
pub struct UpstreamIdentity {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    /// The organization's provider entry it came through (its `id` slug).
    pub provider_id: String,
    pub issuer: String,
    pub subject: String,
    /// The email the provider reported when the link was made (shown on the account page).
    pub email: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// Links an identity; false when that issuer and subject are already linked in the
/// organization (the unique constraint decides, so two concurrent first sign-ins cannot both
/// link).
pub async fn insert(store: &Store, identity: &UpstreamIdentity) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let inserted = diesel::insert_into(upstream_identities::table)
            .values(identity)
            .execute(conn)
            .await
            .map_err(super::StoreError::from);
        match inserted {
            Ok(_) => Ok(true),
            Err(e) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e),
        }
    })
}

pub async fn find(
    store: &Store,
    org_id: &str,
    issuer: &str,
    subject: &str,
) -> StoreResult<Option<UpstreamIdentity>> {
    if !super::storable(subject) || !super::storable(issuer) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        Ok(upstream_identities::table
            .filter(upstream_identities::org_id.eq(org_id))
            .filter(upstream_identities::issuer.eq(issuer))
            .filter(upstream_identities::subject.eq(subject))
            .select(UpstreamIdentity::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn list_for_user(store: &Store, user_id: &str) -> StoreResult<Vec<UpstreamIdentity>> {
    with_conn!(store, |conn| {
        Ok(upstream_identities::table
            .filter(upstream_identities::user_id.eq(user_id))
            .order(upstream_identities::created_at.asc())
            .select(UpstreamIdentity::as_select())
            .load(conn)
            .await?)
    })
}

pub async fn touch(store: &Store, id: &str, now: i64) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::update(upstream_identities::table.find(id))
            .set(upstream_identities::last_used_at.eq(Some(now)))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Removes one of this user's links; false when it is not theirs.
pub async fn delete_for_user(store: &Store, user_id: &str, id: &str) -> StoreResult<bool> {
    if !super::storable(id) {
        return Ok(false);
    }
    with_conn!(store, |conn| {
        let n = diesel::delete(
            upstream_identities::table
                .find(id)
                .filter(upstream_identities::user_id.eq(user_id)),
        )
        .execute(conn)
        .await?;
        Ok(n == 1)
    })
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = upstream_logins)]
pub struct UpstreamLogin {
    pub state_hash: String,
    /// The parked authorization request, which is bound to the browser that started it.
    pub request_id: String,
    pub org_id: String,
    pub provider_id: String,
    /// `prompt=login` and `max_age=0` were forwarded: the provider's `auth_time` must be fresh.
    pub reauthenticate: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert_login(store: &Store, login: &UpstreamLogin) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(upstream_logins::table)
            .values(login)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Takes the trip for `state_hash` out of the table: a `state` is good for one callback.
pub async fn take_login(
    store: &Store,
    state_hash: &str,
    now: i64,
) -> StoreResult<Option<UpstreamLogin>> {
    if !super::storable(state_hash) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        let found = upstream_logins::table
            .find(state_hash)
            .select(UpstreamLogin::as_select())
            .first(conn)
            .await
            .optional()?;
        let Some(login) = found else {
            return Ok(None);
        };
        // The DELETE decides between two concurrent callbacks with the same state.
        let n = diesel::delete(upstream_logins::table.find(state_hash))
            .execute(conn)
            .await?;
        Ok((n == 1 && login.expires_at > now).then_some(login))
    })
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = upstream_pending_links)]
pub struct PendingLink {
    pub id: String,
    pub request_id: String,
    pub org_id: String,
    /// The existing account that must prove it is the same person.
    pub user_id: String,
    pub provider_id: String,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub expires_at: i64,
}

pub async fn insert_pending_link(store: &Store, link: &PendingLink) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(upstream_pending_links::table)
            .values(link)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Takes the unexpired pending link of this parked request for this user, if any.
pub async fn take_pending_link(
    store: &Store,
    request_id: &str,
    user_id: &str,
    now: i64,
) -> StoreResult<Option<PendingLink>> {
    with_conn!(store, |conn| {
        let found = upstream_pending_links::table
            .filter(upstream_pending_links::request_id.eq(request_id))
            .filter(upstream_pending_links::user_id.eq(user_id))
            .filter(upstream_pending_links::expires_at.gt(now))
            .order(upstream_pending_links::expires_at.desc())
            .select(PendingLink::as_select())
            .first(conn)
            .await
            .optional()?;
        let Some(link) = found else {
            return Ok(None);
        };
        let n = diesel::delete(upstream_pending_links::table.find(&link.id))
            .execute(conn)
            .await?;
        Ok((n == 1).then_some(link))
    })
}

pub async fn purge_expired(store: &Store, now: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        let logins =
            diesel::delete(upstream_logins::table.filter(upstream_logins::expires_at.lt(now)))
                .execute(conn)
                .await?;
        let links = diesel::delete(
            upstream_pending_links::table.filter(upstream_pending_links::expires_at.lt(now)),
        )
        .execute(conn)
        .await?;
        Ok(logins + links)
    })
}
