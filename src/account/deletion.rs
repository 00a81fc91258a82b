//! Leaving: deleting an account, by the user (the account page, after a fresh sign-in) or by
//! an administrator (API, console, CLI).
//!
//! The clients to tell are collected first, then everything of the user goes in one
//! transaction ([`users::erase`]), then each session's clients get a back-channel logout
//! token. The audit record names the account by its `sub` only: the random identifier that
//! relying parties already hold, which says nothing about the person once the row is gone,
//! and which an operator needs to answer "when and by whom was this account deleted". Email
//! and name are left out.
//!
//! A `sub` is never reused: user ids are 128 random bits (`security::random_id`), not a
//! counter or a function of the email, so an account created again with the same email gets
//! a new `sub`, and relying parties do not take the new account for the old one.

use serde_json::json;

use crate::admin::Actor;
use crate::app::AppState;
use crate::audit::{self, Outcome};
use crate::session::logout::{self, Cause};
use crate::store::users::{self, Erased};
use crate::store::{StoreResult, clients, sessions};

/// Who deleted the account.
pub enum DeletedBy<'a> {
    /// The user, from the account page; `ip` is the request's address.
    TheUser {
        ip: Option<String>,
    },
    Admin(&'a Actor),
}

pub struct Deleted {
    pub erased: Erased,
    /// The back-channel logout deliveries under way (dropping them lets them run on).
    pub deliveries: Vec<tokio::task::JoinHandle<()>>,
}

/// Deletes the user and everything that is theirs (see [`users::erase`]), notifies the
/// relying parties of every session whose end they have not heard of yet, and records
/// `user.delete` in the audit log. `None` when there is no such user.
pub async fn delete_user(
    app: &AppState,
    user_id: &str,
    by: DeletedBy<'_>,
) -> StoreResult<Option<Deleted>> {
    let Some(user) = users::find(&app.store, user_id).await? else {
        return Ok(None);
    };
    // Known before the rows go: each session, and the clients that received tokens in it.
    let mut notify = Vec::new();
    for session in sessions::unnotified_for_user(&app.store, &user.id).await? {
        let clients = clients::with_grants_in_session(&app.store, &session.id).await?;
        notify.push((session.id, clients));
    }
    let erased = users::erase(&app.store, &user.id).await?;
    if erased.users == 0 {
        // Deleted concurrently: the other call notifies and records.
        return Ok(None);
    }
    let mut deliveries = Vec::new();
    for (sid, clients) in notify {
        deliveries.extend(logout::notify_clients(
            app,
            clients,
            &user.id,
            &sid,
            Cause::UserDeleted,
        ));
    }
    let (actor, ip) = match by {
        DeletedBy::TheUser { ip } => (format!("user:{}", user.id), ip),
        DeletedBy::Admin(a) => (a.name.clone(), a.ip.clone()),
    };
    audit::record(
        &app.store,
        audit::Event {
            org_id: Some(&user.org_id),
            actor,
            action: "user.delete",
            target: Some(user.id.clone()),
            outcome: Outcome::Success,
            ip,
            detail: json!({ "removed": &erased }),
        },
    )
    .await?;
    tracing::info!(user_id = %user.id, "account deleted");
    Ok(Some(Deleted { erased, deliveries }))
}
