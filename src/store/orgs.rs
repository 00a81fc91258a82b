//! Organizations own users, clients and (later) their sign-in method configuration.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::organizations;
use super::{Store, StoreResult, with_conn};

pub const DEFAULT_ORG_SLUG: &str = "default";

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

pub async fn insert(store: &Store, org: &Organization) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(organizations::table)
            .values(org)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(store: &Store, id: &str) -> StoreResult<Option<Organization>> {
    with_conn!(store, |conn| {
        Ok(organizations::table
            .find(id)
            .select(Organization::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn find_by_slug(store: &Store, slug: &str) -> StoreResult<Option<Organization>> {
    if !super::storable(slug) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        Ok(organizations::table
            .filter(organizations::slug.eq(slug))
            .select(Organization::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// The default organization exists in every deployment so that a single-tenant setup never
/// has to name one. Safe to call from several replicas at once.
pub async fn ensure_default(store: &Store) -> StoreResult<Organization> {
    if let Some(org) = find_by_slug(store, DEFAULT_ORG_SLUG).await? {
        return Ok(org);
    }
    let org = Organization {
        id: crate::security::random_id(),
        slug: DEFAULT_ORG_SLUG.into(),
        name: "Default organization".into(),
        created_at: super::now(),
    };
    match insert(store, &org).await {
        Ok(()) => Ok(org),
        Err(e) if e.is_unique_violation() => find_by_slug(store, DEFAULT_ORG_SLUG).await?.ok_or(e),
        Err(e) => Err(e),
    }
}
