//! Reading the audit log: an organization's entries, or (deployment admins) everyone's.

use super::{Actor, AdminError};
use crate::store::Store;
use crate::store::audit::{self, AuditEntry};

/// At most this many entries per read.
pub const MAX_LIMIT: i64 = 1000;
pub const DEFAULT_LIMIT: i64 = 100;

/// Newest first. `org_id` `None` reads every organization's entries and the deployment-wide
/// ones (key rotation), for deployment admins only. `action_prefix` such as `user.` or
/// `sign_in.`.
pub async fn list(
    store: &Store,
    actor: &Actor,
    org_id: Option<&str>,
    action_prefix: Option<&str>,
    limit: Option<i64>,
) -> Result<Vec<AuditEntry>, AdminError> {
    match org_id {
        Some(org) => actor.require_org(org)?,
        None if !actor.is_deployment_admin() => {
            return Err(AdminError::Forbidden(
                "the whole audit log is for deployment-wide credentials".into(),
            ));
        }
        None => {}
    }
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AdminError::Invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if action_prefix.is_some_and(|p| p.len() > 100 || p.contains('\0')) {
        return Err(AdminError::Invalid("action prefix is invalid".into()));
    }
    Ok(audit::list(store, org_id, action_prefix, limit).await?)
}
