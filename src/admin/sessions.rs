//! A user's browser sessions, as an administrator sees and ends them.

use serde_json::json;

use super::{Actor, AdminError, record_change};
use crate::app::AppState;
use crate::session::logout::Cause;
use crate::store::sessions::{self, SessionRow};
use crate::store::{self, Store};

/// The user's live sessions, most recently used first.
pub async fn list(
    store: &Store,
    actor: &Actor,
    org_id: &str,
    user_id: &str,
) -> Result<Vec<SessionRow>, AdminError> {
    let user = super::users::get(store, actor, org_id, user_id).await?;
    Ok(sessions::list_live_for_user(store, &user.id, store::now()).await?)
}

/// Ends one session the way signing out does: its grants are revoked and the relying parties
/// that received tokens in it get a back-channel logout token.
pub async fn revoke(
    app: &AppState,
    actor: &Actor,
    org_id: &str,
    session_id: &str,
) -> Result<(), AdminError> {
    actor.require_org(org_id)?;
    let session = sessions::find(&app.store, session_id)
        .await?
        .filter(|s| s.org_id == org_id)
        .ok_or_else(|| AdminError::NotFound("no such session".into()))?;
    let was_live = session.revoked_at.is_none();
    if was_live {
        crate::session::logout::end_session_because(app, &session, Cause::AdminRevoke).await?;
    }
    record_change(
        &app.store,
        actor,
        Some(org_id),
        "session.revoke",
        Some(&session.id),
        json!({ "user_id": session.user_id, "was_live": was_live }),
    )
    .await
}
