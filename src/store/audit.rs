//! The audit log: append-only rows, read newest first.

use diesel::expression_methods::EscapeExpressionMethods;
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper, TextExpressionMethods};
use diesel_async::RunQueryDsl;

use super::schema::audit_log;
use super::{Store, StoreResult, with_conn};

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: String,
    pub org_id: Option<String>,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    /// JSON object.
    pub detail: String,
}

pub async fn insert(store: &Store, entry: &AuditEntry) -> StoreResult<()> {
    with_conn!(store, |conn| {
        diesel::insert_into(audit_log::table)
            .values(entry)
            .execute(conn)
            .await?;
        Ok(())
    })
}

/// Newest first; `org_id` `None` reads every organization's entries (deployment admins).
pub async fn list(
    store: &Store,
    org_id: Option<&str>,
    action_prefix: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<AuditEntry>> {
    // LIKE with `\` as the escape character, so `_` and `%` in the prefix match themselves.
    let prefix = action_prefix.map(|p| {
        let escaped = p
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("{escaped}%")
    });
    with_conn!(store, |conn| {
        let mut query = audit_log::table
            .select(AuditEntry::as_select())
            .order((audit_log::at.desc(), audit_log::id.desc()))
            .limit(limit)
            .into_boxed();
        if let Some(org) = org_id {
            query = query.filter(audit_log::org_id.eq(org));
        }
        if let Some(prefix) = &prefix {
            query = query.filter(audit_log::action.like(prefix).escape('\\'));
        }
        Ok(query.load(conn).await?)
    })
}

pub async fn purge_older_than(store: &Store, cutoff: i64) -> StoreResult<usize> {
    with_conn!(store, |conn| {
        Ok(
            diesel::delete(audit_log::table.filter(audit_log::at.lt(cutoff)))
                .execute(conn)
                .await?,
        )
    })
}
