//! Organizations own users, clients, their sign-in method configuration and their branding.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::organizations;
use super::{Store, StoreResult, with_conn};
use crate::authn::methods::AuthConfig;

pub const DEFAULT_ORG_SLUG: &str = "default";

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
    /// JSON of [`AuthConfig`]; read it with [`Organization::auth_config`].
    pub auth_config: String,
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    pub primary_color: Option<String>,
    pub updated_at: i64,
}

impl Organization {
    pub fn new(slug: &str, name: &str) -> Organization {
        let now = super::now();
        Organization {
            id: crate::security::random_id(),
            slug: slug.into(),
            name: name.into(),
            created_at: now,
            auth_config: AuthConfig::default().to_json(),
            logo_url: None,
            primary_color: None,
            updated_at: now,
        }
    }

    /// The stored configuration; `{}` (the migration's default) reads as the defaults.
    pub fn auth_config(&self) -> StoreResult<AuthConfig> {
        AuthConfig::from_json(&self.auth_config)
            .map_err(|e| super::StoreError::Corrupt(format!("organization auth_config: {e}")))
    }
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
    if !super::storable(id) {
        return Ok(None);
    }
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

pub async fn list(store: &Store) -> StoreResult<Vec<Organization>> {
    with_conn!(store, |conn| {
        Ok(organizations::table
            .order(organizations::created_at.asc())
            .select(Organization::as_select())
            .load(conn)
            .await?)
    })
}

/// Stores an already validated configuration (see `admin::orgs::set_auth_config`).
pub async fn set_auth_config(store: &Store, id: &str, config: &AuthConfig) -> StoreResult<bool> {
    let json = config.to_json();
    let now = super::now();
    with_conn!(store, |conn| {
        let n = diesel::update(organizations::table.find(id))
            .set((
                organizations::auth_config.eq(&json),
                organizations::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok(n > 0)
    })
}

pub async fn set_branding(
    store: &Store,
    id: &str,
    name: &str,
    logo_url: Option<&str>,
    primary_color: Option<&str>,
) -> StoreResult<bool> {
    let now = super::now();
    with_conn!(store, |conn| {
        let n = diesel::update(organizations::table.find(id))
            .set((
                organizations::name.eq(name),
                organizations::logo_url.eq(logo_url),
                organizations::primary_color.eq(primary_color),
                organizations::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok(n > 0)
    })
}

/// The default organization exists in every deployment so that a single-tenant setup never
/// has to name one. Safe to call from several replicas at once.
pub async fn ensure_default(store: &Store) -> StoreResult<Organization> {
    if let Some(org) = find_by_slug(store, DEFAULT_ORG_SLUG).await? {
        return Ok(org);
    }
    let org = Organization::new(DEFAULT_ORG_SLUG, "Default organization");
    match insert(store, &org).await {
        Ok(()) => Ok(org),
        Err(e) if e.is_unique_violation() => find_by_slug(store, DEFAULT_ORG_SLUG).await?.ok_or(e),
        Err(e) => Err(e),
    }
}
