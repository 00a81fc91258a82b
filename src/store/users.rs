//! Users: one account per normalized email within an organization.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::schema::users;
use super::{Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub email_normalized: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_verified: bool,
    pub locale: Option<String>,
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// The WebAuthn user handle, created with the user's first passkey.
    pub webauthn_handle: Option<String>,
    /// `member`, or `admin` of the organization (the admin console).
    pub role: String,
}

pub const ROLE_MEMBER: &str = "member";
pub const ROLE_ADMIN: &str = "admin";

/// Emails compare case-insensitively and without surrounding space: one address, one account.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

pub async fn insert(store: &Store, user: &User) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(users::table)
            .values(user)
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find(store: &Store, id: &str) -> StoreResult<Option<User>> {
    if !super::storable(id) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        Ok(users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn find_by_email(store: &Store, org_id: &str, email: &str) -> StoreResult<Option<User>> {
    let normalized = normalize_email(email);
    if !super::storable(&normalized) || !super::storable(org_id) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        Ok(users::table
            .filter(users::org_id.eq(org_id))
            .filter(users::email_normalized.eq(&normalized))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

pub async fn list(store: &Store, org_id: &str) -> StoreResult<Vec<User>> {
    with_conn!(store, |conn| {
        Ok(users::table
            .filter(users::org_id.eq(org_id))
            .order(users::created_at.asc())
            .select(User::as_select())
            .load(conn)
            .await?)
    })
}

/// Deletes the row alone (the conformance runner's clean-up); accounts are deleted with
/// everything that is theirs through [`erase`].
pub async fn delete(store: &Store, id: &str) -> StoreResult<bool> {
    with_conn!(store, |conn| {
        let n = diesel::delete(users::table.find(id)).execute(conn).await?;
        Ok(n > 0)
    })
}

pub async fn set_password_hash(store: &Store, id: &str, hash: Option<&str>) -> StoreResult<()> {
    let now = super::now();
    with_conn!(store, |conn| {
        diesel::update(users::table.find(id))
            .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn find_by_webauthn_handle(store: &Store, handle: &str) -> StoreResult<Option<User>> {
    if !super::storable(handle) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        Ok(users::table
            .filter(users::webauthn_handle.eq(handle))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Sets the user's WebAuthn handle unless one is already set; returns the stored handle.
pub async fn ensure_webauthn_handle(
    store: &Store,
    id: &str,
    candidate: &str,
) -> StoreResult<String> {
    with_conn!(store, |conn| {
        diesel::update(
            users::table
                .find(id)
                .filter(users::webauthn_handle.is_null()),
        )
        .set(users::webauthn_handle.eq(Some(candidate)))
        .execute(conn)
        .await?;
        let stored: Option<String> = users::table
            .find(id)
            .select(users::webauthn_handle)
            .first(conn)
            .await?;
        stored.ok_or_else(|| super::StoreError::Corrupt("user without a WebAuthn handle".into()))
    })
}

/// How many active accounts of an organization each method could sign in: the data half of
/// the lock-out guard.
#[derive(Debug, Clone, Copy, Default)]
pub struct MethodReach {
    pub active: i64,
    pub with_password: i64,
    pub with_passkey: i64,
    pub with_phone: i64,
}

pub async fn method_reach(store: &Store, org_id: &str) -> StoreResult<MethodReach> {
    use super::schema::passkeys;
    with_conn!(store, |conn| {
        let active = users::table
            .filter(users::org_id.eq(org_id))
            .filter(users::disabled.eq(false));
        let total: i64 = active.count().get_result(conn).await?;
        let with_password: i64 = active
            .filter(users::password_hash.is_not_null())
            .count()
            .get_result(conn)
            .await?;
        let with_phone: i64 = active
            .filter(users::phone_number.is_not_null())
            .count()
            .get_result(conn)
            .await?;
        let with_passkey: i64 = active
            .filter(
                users::id.eq_any(
                    passkeys::table
                        .filter(passkeys::flagged.eq(false))
                        .select(passkeys::user_id),
                ),
            )
            .count()
            .get_result(conn)
            .await?;
        Ok(MethodReach {
            active: total,
            with_password,
            with_passkey,
            with_phone,
        })
    })
}

pub async fn find_by_phone(store: &Store, org_id: &str, phone: &str) -> StoreResult<Option<User>> {
    if !super::storable(phone) || !super::storable(org_id) {
        return Ok(None);
    }
    with_conn!(store, |conn| {
        Ok(users::table
            .filter(users::org_id.eq(org_id))
            .filter(users::phone_number.eq(phone))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()?)
    })
}

/// Sets the phone number (E.164, already normalized) and whether it is verified.
pub async fn set_phone(
    store: &Store,
    id: &str,
    phone: Option<&str>,
    verified: bool,
) -> StoreResult<()> {
    let now = super::now();
    with_conn!(store, |conn| {
        diesel::update(users::table.find(id))
            .set((
                users::phone_number.eq(phone),
                users::phone_number_verified.eq(verified),
                users::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// A one-time code sent to the address proved it: mark the email verified.
pub async fn mark_email_verified(store: &Store, id: &str) -> StoreResult<()> {
    let now = super::now();
    with_conn!(store, |conn| {
        diesel::update(users::table.find(id))
            .set((users::email_verified.eq(true), users::updated_at.eq(now)))
            .execute(conn)
            .await?;
        Ok(())
    })
}

pub async fn set_disabled(store: &Store, id: &str, disabled: bool) -> StoreResult<bool> {
    let now = super::now();
    with_conn!(store, |conn| {
        let n = diesel::update(users::table.find(id))
            .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
            .execute(conn)
            .await?;
        Ok(n > 0)
    })
}

pub async fn set_role(store: &Store, id: &str, role: &str) -> StoreResult<bool> {
    let now = super::now();
    with_conn!(store, |conn| {
        let n = diesel::update(users::table.find(id))
            .set((users::role.eq(role), users::updated_at.eq(now)))
            .execute(conn)
            .await?;
        Ok(n > 0)
    })
}

/// What [`erase`] removed, per table (counts only: no personal data, fit for the audit log).
#[derive(Debug, Default, serde::Serialize)]
pub struct Erased {
    pub passkeys: usize,
    pub webauthn_ceremonies: usize,
    pub devices: usize,
    pub device_enrollments: usize,
    pub device_challenges: usize,
    pub qr_logins: usize,
    pub otp_challenges: usize,
    pub authorization_requests: usize,
    pub authorization_codes: usize,
    pub device_authorizations: usize,
    pub refresh_tokens: usize,
    pub grants: usize,
    pub sessions: usize,
    pub users: usize,
}

/// Deletes the user and everything that is theirs, in one transaction: credentials (the
/// password goes with the row; passkeys, companion devices and their enrollments and
/// challenges), sessions and the sign-ins parked on them, grants with their refresh tokens,
/// codes, device authorizations, one-time codes and QR sign-ins. Tables that other modules
/// add with `REFERENCES users(id) ON DELETE CASCADE` (linked upstream identities) go with the
/// row. Most of these cascade too, but not all (codes, ceremonies), and deleting each
/// explicitly keeps the list readable and the counts honest.
pub async fn erase(store: &Store, id: &str) -> StoreResult<Erased> {
    use super::schema::{
        authorization_codes, authorization_requests, device_authorizations, device_challenges,
        device_enrollments, devices, grants, otp_challenges, passkeys, qr_logins, refresh_tokens,
        sessions, webauthn_ceremonies,
    };
    let id = id.to_owned();
    with_conn!(store, |conn| {
        use diesel::NullableExpressionMethods;
        use diesel_async::AsyncConnection;
        let erased = conn
            .transaction::<_, diesel::result::Error, _>(async move |conn| {
                let user_sessions = sessions::table
                    .filter(sessions::user_id.eq(&id))
                    .select(sessions::id.nullable());
                let user_grants = grants::table
                    .filter(grants::user_id.eq(&id))
                    .select(grants::id);
                let user_qr = qr_logins::table
                    .filter(qr_logins::user_id.eq(&id))
                    .select(qr_logins::id_hash);
                let mut e = Erased {
                    passkeys: diesel::delete(passkeys::table.filter(passkeys::user_id.eq(&id)))
                        .execute(conn)
                        .await?,
                    webauthn_ceremonies: diesel::delete(
                        webauthn_ceremonies::table.filter(webauthn_ceremonies::user_id.eq(&id)),
                    )
                    .execute(conn)
                    .await?,
                    devices: diesel::delete(devices::table.filter(devices::user_id.eq(&id)))
                        .execute(conn)
                        .await?,
                    device_enrollments: diesel::delete(
                        device_enrollments::table.filter(device_enrollments::user_id.eq(&id)),
                    )
                    .execute(conn)
                    .await?,
                    device_challenges: diesel::delete(
                        device_challenges::table
                            .filter(device_challenges::qr_id_hash.eq_any(user_qr)),
                    )
                    .execute(conn)
                    .await?,
                    ..Erased::default()
                };
                e.qr_logins = diesel::delete(qr_logins::table.filter(qr_logins::user_id.eq(&id)))
                    .execute(conn)
                    .await?;
                e.otp_challenges =
                    diesel::delete(otp_challenges::table.filter(otp_challenges::user_id.eq(&id)))
                        .execute(conn)
                        .await?;
                e.authorization_requests = diesel::delete(authorization_requests::table.filter(
                    authorization_requests::authenticated_session_id.eq_any(user_sessions),
                ))
                .execute(conn)
                .await?;
                e.authorization_codes = diesel::delete(
                    authorization_codes::table.filter(authorization_codes::user_id.eq(&id)),
                )
                .execute(conn)
                .await?;
                e.device_authorizations = diesel::delete(
                    device_authorizations::table.filter(device_authorizations::user_id.eq(&id)),
                )
                .execute(conn)
                .await?;
                e.refresh_tokens = diesel::delete(
                    refresh_tokens::table.filter(refresh_tokens::grant_id.eq_any(user_grants)),
                )
                .execute(conn)
                .await?;
                e.grants = diesel::delete(grants::table.filter(grants::user_id.eq(&id)))
                    .execute(conn)
                    .await?;
                e.sessions = diesel::delete(sessions::table.filter(sessions::user_id.eq(&id)))
                    .execute(conn)
                    .await?;
                e.users = diesel::delete(users::table.find(&id)).execute(conn).await?;
                Ok(e)
            })
            .await?;
        Ok(erased)
    })
}

/// A new, proved address: the account's email changes and counts as verified. A unique
/// violation means another account of the organization took the address meanwhile.
pub async fn set_email(store: &Store, id: &str, email: &str) -> StoreResult<()> {
    let now = super::now();
    let normalized = normalize_email(email);
    with_conn!(store, |conn| {
        diesel::update(users::table.find(id))
            .set((
                users::email.eq(email),
                users::email_normalized.eq(&normalized),
                users::email_verified.eq(true),
                users::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
}
