//! OIDC clients (relying parties). Secrets are stored as SHA-256 digests: they are 256-bit
//! random values, so a slow password hash would add cost without adding safety.

use diesel::{
    ExpressionMethods, JoinOnDsl, NullableExpressionMethods, OptionalExtension, QueryDsl,
    SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::schema::clients;
use super::{Backend, Store, StoreResult, decode_list, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = clients)]
pub struct ClientRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub created_at: i64,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    /// May obtain the admin scope with the client-credentials grant (the admin API).
    pub admin_api: bool,
}

/// A client as the protocol code sees it.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub created_at: i64,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub admin_api: bool,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }
}

impl TryFrom<ClientRow> for Client {
    type Error = super::StoreError;
    fn try_from(row: ClientRow) -> StoreResult<Client> {
        Ok(Client {
            redirect_uris: decode_list(&row.redirect_uris)?,
            post_logout_redirect_uris: decode_list(&row.post_logout_redirect_uris)?,
            id: row.id,
            org_id: row.org_id,
            name: row.name,
            secret_hash: row.secret_hash,
            created_at: row.created_at,
            backchannel_logout_uri: row.backchannel_logout_uri,
            backchannel_logout_session_required: row.backchannel_logout_session_required,
            admin_api: row.admin_api,
        })
    }
}

pub async fn insert(store: &Store, row: &ClientRow) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(clients::table)
            .values(row)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(store: &Store, id: &str) -> StoreResult<Option<Client>> {
    if !super::storable(id) {
        return Ok(None);
    }
    let row: Option<ClientRow> = with_conn!(store, |conn| {
        clients::table
            .find(id)
            .select(ClientRow::as_select())
            .first(conn)
            .await
            .optional()?
    });
    row.map(Client::try_from).transpose()
}

/// What client authentication reads: the client (`None` if unknown) and the failures counted
/// in its rate-limit bucket.
pub type WithFailures = (Option<Client>, super::rate_limits::Tally);

/// Whether a presented client id is worth a lookup: ids longer than 256 bytes are not (no
/// client has one; they are generated), and the id is untrusted input.
fn may_exist(id: &str) -> bool {
    id.len() <= 256 && super::storable(id)
}

/// The client `$id` with the failures counted in bucket `$bucket`: one statement, written once
/// for the async and the blocking connection.
macro_rules! with_failures_query {
    ($id:expr, $bucket:expr) => {
        clients::table
            .left_join(
                super::schema::rate_limits::table
                    .on(super::schema::rate_limits::bucket.eq($bucket)),
            )
            .filter(clients::id.eq($id))
            .select((
                ClientRow::as_select(),
                (
                    super::schema::rate_limits::hits,
                    super::schema::rate_limits::expires_at,
                )
                    .nullable(),
            ))
    };
}

/// [`WithFailures`] before the client's row is decoded.
pub(super) type WithFailuresRow = (Option<ClientRow>, super::rate_limits::Tally);

/// The client and the failures counted in a rate-limit bucket, in one statement: client
/// authentication runs on every token request and must check the limit before the secret.
/// An unknown client's failures are read by a second statement (that path is not hot).
pub async fn find_with_failures(
    store: &Store,
    id: &str,
    bucket: &str,
) -> StoreResult<WithFailures> {
    let row: WithFailuresRow = match &store.backend {
        // Every token request starts here: on SQLite it runs on the token endpoint's connection
        // and thread, whose page cache stays warm ([`Store::with_sqlite_writer`]), instead of
        // a pooled connection that another connection's last write left with a cold cache.
        Backend::Sqlite(_) => {
            let (id, bucket) = (id.to_owned(), bucket.to_owned());
            store
                .with_sqlite_writer(move |conn| find_with_failures_on(conn, &id, &bucket))
                .await?
        }
        Backend::Postgres(_) => {
            let found: Option<(ClientRow, Option<(i64, i64)>)> = if may_exist(id) {
                with_conn!(store, |conn| {
                    with_failures_query!(id, bucket)
                        .first(conn)
                        .await
                        .optional()?
                })
            } else {
                None
            };
            match found {
                Some((client, tally)) => (Some(client), tally.into()),
                None => (None, super::rate_limits::count(store, bucket).await?),
            }
        }
    };
    decoded(row)
}

/// [`find_with_failures`] on the SQLite writer's connection, also for a writer job that goes on
/// to use what it read ([`super::refresh_tokens::redeem`]).
pub(super) fn find_with_failures_on(
    conn: &mut diesel::SqliteConnection,
    id: &str,
    bucket: &str,
) -> diesel::QueryResult<WithFailuresRow> {
    let found: Option<(ClientRow, Option<(i64, i64)>)> = if may_exist(id) {
        diesel::RunQueryDsl::first(with_failures_query!(id, bucket), conn).optional()?
    } else {
        None
    };
    Ok(match found {
        Some((client, tally)) => (Some(client), tally.into()),
        None => (None, super::rate_limits::count_on(conn, bucket)?),
    })
}

/// The client's row decoded ([`Client::try_from`]).
pub(super) fn decoded((client, tally): WithFailuresRow) -> StoreResult<WithFailures> {
    Ok((client.map(Client::try_from).transpose()?, tally))
}

pub async fn list(store: &Store) -> StoreResult<Vec<Client>> {
    let rows: Vec<ClientRow> = with_conn!(store, |conn| {
        clients::table
            .order(clients::created_at.asc())
            .select(ClientRow::as_select())
            .load(conn)
            .await?
    });
    rows.into_iter().map(Client::try_from).collect()
}

pub async fn delete(store: &Store, id: &str) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let n = diesel::delete(clients::table.find(id))
            .execute(conn)
            .await?;
        Ok(n > 0)
    })
}

pub async fn update_registration(
    store: &Store,
    id: &str,
    secret_hash: Option<&str>,
    redirect_uris: &str,
    post_logout_redirect_uris: &str,
) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::update(clients::table.find(id))
            .set((
                clients::secret_hash.eq(secret_hash),
                clients::redirect_uris.eq(redirect_uris),
                clients::post_logout_redirect_uris.eq(post_logout_redirect_uris),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// The clients that received tokens in a session: who must hear of its end.
pub async fn with_grants_in_session(store: &Store, session_id: &str) -> StoreResult<Vec<Client>> {
    use super::schema::grants;
    let rows: Vec<ClientRow> = with_conn!(store, |conn| {
        clients::table
            .filter(
                clients::id.eq_any(
                    grants::table
                        .filter(grants::session_id.eq(session_id))
                        .select(grants::client_id),
                ),
            )
            .select(ClientRow::as_select())
            .load(conn)
            .await?
    });
    rows.into_iter().map(Client::try_from).collect()
}

/// Allows or forbids the client the admin scope (client-credentials grant, admin API).
pub async fn set_admin_api(store: &Store, id: &str, admin_api: bool) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let n = diesel::update(clients::table.find(id))
            .set(clients::admin_api.eq(admin_api))
            .execute(conn)
            .await?;
        Ok(n > 0)
    })
}
