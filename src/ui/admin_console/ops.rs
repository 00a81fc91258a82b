//! The client and user operations the console needs, until the admin API's domain functions
//! exist.
//!
// Replaced by admin::clients / admin::users when the admin API lands.
//
// Each function has the signature of its admin-API counterpart (`(store, &actor, org_id, …)`
// returning `Result<_, AdminError>`) and records its audit entry itself, so the swap is one
// `use` line in the console. Every target is checked to belong to `org_id`: an id of another
// organization is "not found", exactly like an id that does not exist.

pub mod clients {
    use serde_json::json;

    use crate::admin::{Actor, AdminError, NewClient, record_change};
    use crate::store::Store;
    use crate::store::clients::{self, Client};

    pub async fn list(
        store: &Store,
        actor: &Actor,
        org_id: &str,
    ) -> Result<Vec<Client>, AdminError> {
        actor.require_org(org_id)?;
        Ok(clients::list(store)
            .await?
            .into_iter()
            .filter(|c| c.org_id == org_id)
            .collect())
    }

    /// Returns the new client's id and, for a confidential client, its secret (shown once).
    pub async fn create(
        store: &Store,
        actor: &Actor,
        org_id: &str,
        name: &str,
        redirect_uris: &[String],
        public: bool,
    ) -> Result<(String, Option<String>), AdminError> {
        actor.require_org(org_id)?;
        let (id, secret) = crate::admin::create_client(
            store,
            NewClient {
                org_id,
                name,
                redirect_uris,
                post_logout_redirect_uris: &[],
                public,
                id: None,
                secret: None,
                backchannel_logout_uri: None,
            },
        )
        .await
        .map_err(AdminError::Invalid)?;
        record_change(
            store,
            actor,
            Some(org_id),
            "client.create",
            Some(&id),
            json!({ "name": name.trim(), "redirect_uris": redirect_uris, "public": public }),
        )
        .await?;
        Ok((id, secret))
    }

    pub async fn delete(
        store: &Store,
        actor: &Actor,
        org_id: &str,
        client_id: &str,
    ) -> Result<(), AdminError> {
        actor.require_org(org_id)?;
        let client = clients::find(store, client_id)
            .await?
            .filter(|c| c.org_id == org_id)
            .ok_or_else(|| AdminError::NotFound("no such client".into()))?;
        if !clients::delete(store, &client.id).await? {
            return Err(AdminError::NotFound("no such client".into()));
        }
        record_change(
            store,
            actor,
            Some(org_id),
            "client.delete",
            Some(&client.id),
            json!({ "name": client.name }),
        )
        .await
    }
}

pub mod users {
    use serde_json::json;

    use crate::admin::{Actor, AdminError, NewUser, record_change};
    use crate::store::Store;
    use crate::store::users::{self, ROLE_ADMIN, ROLE_MEMBER, User};

    pub async fn list(store: &Store, actor: &Actor, org_id: &str) -> Result<Vec<User>, AdminError> {
        actor.require_org(org_id)?;
        Ok(users::list(store, org_id).await?)
    }

    pub async fn create(
        store: &Store,
        actor: &Actor,
        org_id: &str,
        email: &str,
        name: Option<&str>,
        password: Option<String>,
    ) -> Result<User, AdminError> {
        actor.require_org(org_id)?;
        let user = crate::admin::create_user(
            store,
            NewUser {
                org_id,
                email,
                name,
                password,
                email_verified: false,
            },
        )
        .await
        .map_err(|e| {
            if e.contains("already exists") {
                AdminError::Conflict(e)
            } else {
                AdminError::Invalid(e)
            }
        })?;
        record_change(
            store,
            actor,
            Some(org_id),
            "user.create",
            Some(&user.id),
            json!({ "email": user.email, "has_password": user.password_hash.is_some() }),
        )
        .await?;
        Ok(user)
    }

    async fn member(store: &Store, org_id: &str, user_id: &str) -> Result<User, AdminError> {
        users::find(store, user_id)
            .await?
            .filter(|u| u.org_id == org_id)
            .ok_or_else(|| AdminError::NotFound("no such user".into()))
    }

    pub async fn set_disabled(
        store: &Store,
        actor: &Actor,
        org_id: &str,
        user_id: &str,
        disabled: bool,
    ) -> Result<(), AdminError> {
        actor.require_org(org_id)?;
        let user = member(store, org_id, user_id).await?;
        if !users::set_disabled(store, &user.id, disabled).await? {
            return Err(AdminError::NotFound("no such user".into()));
        }
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        record_change(
            store,
            actor,
            Some(org_id),
            action,
            Some(&user.id),
            json!({ "email": user.email }),
        )
        .await
    }

    pub async fn set_role(
        store: &Store,
        actor: &Actor,
        org_id: &str,
        user_id: &str,
        role: &str,
    ) -> Result<(), AdminError> {
        actor.require_org(org_id)?;
        if role != ROLE_ADMIN && role != ROLE_MEMBER {
            return Err(AdminError::Invalid(format!(
                "{role:?}: the role is {ROLE_ADMIN} or {ROLE_MEMBER}"
            )));
        }
        let user = member(store, org_id, user_id).await?;
        if !users::set_role(store, &user.id, role).await? {
            return Err(AdminError::NotFound("no such user".into()));
        }
        record_change(
            store,
            actor,
            Some(org_id),
            "user.role.update",
            Some(&user.id),
            json!({ "email": user.email, "role": role }),
        )
        .await
    }
}
