//! Refresh tokens: digests only, rotated on every use; a second use of a rotated token
//! is theft or a bug, and revokes the whole family (its grant).

use diesel::{
    ExpressionMethods, JoinOnDsl, NullableExpressionMethods, OptionalExtension, QueryDsl,
    SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::clients::{self, Client, WithFailures};
use super::grants::GrantRow;
use super::orgs::Organization;
use super::schema::{grants, organizations, refresh_tokens, users};
use super::users::User;
use super::{Backend, Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// A refresh token with its grant, the grant's user (`None` for a deleted user) and the
/// user's organization, read in one statement: the refresh grant is a hot path and each
/// statement is a round trip.
pub struct WithGrant {
    pub token: RefreshTokenRow,
    pub grant: GrantRow,
    pub user: Option<User>,
    pub org: Option<Organization>,
}

pub async fn insert(store: &Store, row: &RefreshTokenRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(refresh_tokens::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// The refresh token `$hash` joined to its grant, the grant's user and the user's
/// organization: one statement, written once for the async and the blocking connection.
macro_rules! with_grant_query {
    ($hash:expr) => {
        refresh_tokens::table
            .inner_join(grants::table.on(grants::id.eq(refresh_tokens::grant_id)))
            .left_join(users::table.on(grants::user_id.eq(users::id.nullable())))
            .left_join(organizations::table.on(organizations::id.eq(users::org_id)))
            .filter(refresh_tokens::token_hash.eq($hash))
            .select((
                RefreshTokenRow::as_select(),
                GrantRow::as_select(),
                Option::<User>::as_select(),
                Option::<Organization>::as_select(),
            ))
    };
}

type WithGrantTuple = (
    RefreshTokenRow,
    GrantRow,
    Option<User>,
    Option<Organization>,
);

impl From<WithGrantTuple> for WithGrant {
    fn from((token, grant, user, org): WithGrantTuple) -> Self {
        WithGrant {
            token,
            grant,
            user,
            org,
        }
    }
}

/// Marks the token `$hash` used at `$now` unless it was used already: the one conditional
/// UPDATE that decides between concurrent uses.
macro_rules! mark_used {
    ($hash:expr, $now:expr) => {
        diesel::update(
            refresh_tokens::table
                .find($hash)
                .filter(refresh_tokens::used_at.is_null()),
        )
        .set(refresh_tokens::used_at.eq(Some($now)))
    };
}

/// [`redeem`]'s read, judged before anything is written: the token with its successor and
/// `decide`'s value, or the answer already (unknown, refused).
// Both sides carry the token's rows by value once per request, on their way to the caller:
// boxing the error side would only add an allocation.
#[allow(clippy::result_large_err)]
fn decided<T, E>(
    found: Option<WithGrantTuple>,
    decide: impl FnOnce(&WithGrant) -> Result<(RefreshTokenRow, T), E>,
) -> Result<(WithGrant, RefreshTokenRow, T), Redeemed<T, E>> {
    let Some(found) = found.map(WithGrant::from) else {
        return Err(Redeemed::Unknown);
    };
    match decide(&found) {
        Ok((next, value)) => Ok((found, next, value)),
        Err(e) => Err(Redeemed::Refused(found, e)),
    }
}

/// What [`redeem`] did with a presented refresh token.
pub enum Redeemed<T, E> {
    /// No such token (never issued, or purged).
    Unknown,
    /// `decide` refused it; nothing was written.
    Refused(WithGrant, E),
    /// `decide` accepted it, but a concurrent use marked it used first: a reuse.
    Reused(WithGrant),
    /// Marked used, and its successor stored.
    Rotated(WithGrant, T),
}

/// The conditional UPDATE's verdict: this call marked the token used, or a concurrent one did.
fn rotated_or_reused<T, E>(claimed: bool, found: WithGrant, value: T) -> Redeemed<T, E> {
    if claimed {
        Redeemed::Rotated(found, value)
    } else {
        Redeemed::Reused(found)
    }
}

/// Authenticates the client and redeems its refresh token. `authenticate` judges the client
/// row and its failure tally ([`clients::find_with_failures`]); only a client it accepts goes
/// on. Then the token is read with its grant, `decide` checks the request against them
/// (client, whether it was used already, expiry, scope) and mints the successor, and the token
/// is marked used in one conditional UPDATE, so that two concurrent uses (even on two
/// replicas) cannot both succeed; the successor is stored only if this call won. `decide` runs
/// before anything is written: a refused request (another client's token, a wider scope) must
/// not burn the owner's token.
///
/// On SQLite all of it is one job on the writer thread ([`Store::with_sqlite_writer`]) and one
/// IMMEDIATE transaction (one lock, one commit): each job is a hand-off between threads and
/// each transaction takes and drops SQLite's file locks, and the refresh grant is the token
/// endpoint's hot path. On PostgreSQL it is four statements: the UPDATE alone decides, and a
/// failed insert after it only costs the client its token.
///
/// [`clients::find_with_failures`]: super::clients::find_with_failures
pub async fn redeem<V, T, E>(
    store: &Store,
    client: (&str, &str),
    token_hash: &str,
    now: i64,
    authenticate: impl FnOnce(WithFailures) -> Result<Client, V> + Send + 'static,
    decide: impl FnOnce(&Client, &WithGrant) -> Result<(RefreshTokenRow, T), E> + Send + 'static,
) -> StoreResult<Result<(Client, Redeemed<T, E>), V>>
where
    V: Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let (client_id, bucket) = client;
    match &store.backend {
        Backend::Sqlite(_) => {
            let (client_id, bucket) = (client_id.to_owned(), bucket.to_owned());
            let token_hash = token_hash.to_owned();
            store
                .with_sqlite_writer(move |conn| {
                    // The transaction's error type also carries a corrupt client row.
                    Ok(conn.immediate_transaction(|conn| -> StoreResult<_> {
                        let found = clients::find_with_failures_on(conn, &client_id, &bucket)?;
                        let client = match authenticate(clients::decoded(found)?) {
                            Ok(client) => client,
                            Err(refused) => return Ok(Err(refused)),
                        };
                        let found = diesel::RunQueryDsl::first::<WithGrantTuple>(
                            with_grant_query!(&token_hash),
                            conn,
                        )
                        .optional()?;
                        let (found, next, value) = match decided(found, |f| decide(&client, f)) {
                            Ok(decided) => decided,
                            Err(answer) => return Ok(Ok((client, answer))),
                        };
                        let claimed =
                            diesel::RunQueryDsl::execute(mark_used!(&token_hash, now), conn)? == 1;
                        if claimed {
                            diesel::RunQueryDsl::execute(
                                diesel::insert_into(refresh_tokens::table).values(&next),
                                conn,
                            )?;
                        }
                        Ok(Ok((client, rotated_or_reused(claimed, found, value))))
                    }))
                })
                .await?
        }
        Backend::Postgres(pool) => {
            let found = clients::find_with_failures(store, client_id, bucket).await?;
            let client = match authenticate(found) {
                Ok(client) => client,
                Err(refused) => return Ok(Err(refused)),
            };
            let conn = &mut *pool.get().await?;
            let found = with_grant_query!(token_hash)
                .first::<WithGrantTuple>(conn)
                .await
                .optional()?;
            let (found, next, value) = match decided(found, |f| decide(&client, f)) {
                Ok(decided) => decided,
                Err(answer) => return Ok(Ok((client, answer))),
            };
            let claimed = mark_used!(token_hash, now).execute(conn).await? == 1;
            if claimed {
                diesel::insert_into(refresh_tokens::table)
                    .values(&next)
                    .execute(conn)
                    .await?;
            }
            Ok(Ok((client, rotated_or_reused(claimed, found, value))))
        }
    }
}

pub async fn find(store: &Store, token_hash: &str) -> StoreResult<Option<RefreshTokenRow>> {
    with_conn!(store, |conn| {
        Ok(refresh_tokens::table
            .find(token_hash)
            .select(RefreshTokenRow::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Deletes rotated tokens used before `before`: past the reuse-detection window a replay is
/// answered as an unknown token (`invalid_grant`) instead of revoking the family.
pub async fn purge_used(store: &Store, before: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(
            diesel::delete(refresh_tokens::table.filter(refresh_tokens::used_at.lt(before)))
                .execute(conn)
                .await?,
        )
    })
}
