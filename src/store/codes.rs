//! Authorization codes: stored as digests, single use, bound to client, redirect URI,
//! PKCE challenge and nonce.

use diesel::{ExpressionMethods, JoinOnDsl, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::grants::GrantRow;
use super::orgs::Organization;
use super::refresh_tokens::RefreshTokenRow;
use super::schema::{authorization_codes, grants, organizations, refresh_tokens, users};
use super::users::User;
use super::{Backend, Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = authorization_codes)]
pub struct CodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub acr: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
}

pub async fn insert(store: &Store, row: &CodeRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(authorization_codes::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// The code with its user (`None` for a deleted user) and the user's organization, read in
/// one statement.
pub async fn find_with_user(
    store: &Store,
    code_hash: &str,
) -> StoreResult<Option<(CodeRow, Option<User>, Option<Organization>)>> {
    macro_rules! query {
        ($code_hash:expr) => {
            authorization_codes::table
                .left_join(users::table.on(users::id.eq(authorization_codes::user_id)))
                .left_join(organizations::table.on(organizations::id.eq(users::org_id)))
                .filter(authorization_codes::code_hash.eq($code_hash))
                .select((
                    CodeRow::as_select(),
                    Option::<User>::as_select(),
                    Option::<Organization>::as_select(),
                ))
        };
    }
    type Found = (CodeRow, Option<User>, Option<Organization>);
    match &store.backend {
        // On the token endpoint's connection, like the client read before it and the
        // redemption after it ([`Store::with_sqlite_writer`]): a warm page cache.
        Backend::Sqlite(_) => {
            let code_hash = code_hash.to_owned();
            store
                .with_sqlite_writer(move |conn| {
                    diesel::RunQueryDsl::first::<Found>(query!(&code_hash), conn).optional()
                })
                .await
        }
        Backend::Postgres(_) => with_conn!(store, |conn| {
            Ok(query!(code_hash).first::<Found>(conn).await.optional()?)
        }),
    }
}

/// What a successful redemption stores once it has claimed the code: the grant, and its first
/// refresh token when offline access was granted.
pub struct Redemption<'a> {
    pub grant: &'a GrantRow,
    pub refresh_token: Option<&'a RefreshTokenRow>,
}

/// Marks the code used in one conditional UPDATE, so two concurrent redemptions (even on two
/// replicas) cannot both succeed, and, if this call won, stores what `redemption` holds
/// (`None`: a refused request that still burns the code). `false`: it was redeemed before (or
/// purged) in the meantime, and nothing was stored.
///
/// On SQLite it is one hop to the writer thread and one IMMEDIATE transaction on its
/// connection ([`Store::with_sqlite_writer`]); the claim and the grant commit together,
/// so a replay never finds the code used but its grant missing. On PostgreSQL the statements
/// run one after the other: the UPDATE alone decides.
pub async fn consume(
    store: &Store,
    code_hash: &str,
    now: i64,
    redemption: Option<Redemption<'_>>,
) -> StoreResult<bool> {
    macro_rules! claim {
        ($code_hash:expr) => {
            diesel::update(
                authorization_codes::table
                    .find($code_hash)
                    .filter(authorization_codes::consumed_at.is_null()),
            )
            .set(authorization_codes::consumed_at.eq(Some(now)))
        };
    }
    match &store.backend {
        Backend::Sqlite(_) => {
            let code_hash = code_hash.to_owned();
            let grant = redemption.as_ref().map(|r| r.grant.clone());
            let refresh_token = redemption.and_then(|r| r.refresh_token.cloned());
            store
                .with_sqlite_writer(move |conn| {
                    conn.immediate_transaction(|conn| {
                        let claimed = diesel::RunQueryDsl::execute(claim!(&code_hash), conn)? == 1;
                        if claimed && let Some(grant) = &grant {
                            diesel::RunQueryDsl::execute(
                                diesel::insert_into(grants::table).values(grant),
                                conn,
                            )?;
                            if let Some(token) = &refresh_token {
                                diesel::RunQueryDsl::execute(
                                    diesel::insert_into(refresh_tokens::table).values(token),
                                    conn,
                                )?;
                            }
                        }
                        Ok(claimed)
                    })
                })
                .await
        }
        Backend::Postgres(pool) => {
            let conn = &mut *pool.get().await?;
            if claim!(code_hash).execute(conn).await? != 1 {
                return Ok(false);
            }
            if let Some(redemption) = redemption {
                diesel::insert_into(grants::table)
                    .values(redemption.grant)
                    .execute(conn)
                    .await?;
                if let Some(token) = redemption.refresh_token {
                    diesel::insert_into(refresh_tokens::table)
                        .values(token)
                        .execute(conn)
                        .await?;
                }
            }
            Ok(true)
        }
    }
}

/// Expired codes are kept for a while after expiry so that a late replay is still
/// recognised as reuse (and revokes the grant) rather than as an unknown code.
pub async fn purge_expired(store: &Store, before: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(diesel::delete(
            authorization_codes::table.filter(authorization_codes::expires_at.lt(before)),
        )
        .execute(conn)
        .await?)
    })
}
