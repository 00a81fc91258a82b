//! Invitations (README "Sign-up"): an admin (console, admin API or CLI) invites an address;
//! the link, mailed to it, works once within 7 days and lets its holder choose the first
//! credential. The link proves the mailbox as a code would (it was sent there and is as
//! unguessable as a session secret), so accepting asks for no code. Invitations work in every
//! sign-up mode: they are an admin's act, and "closed" means "admins create or invite users".

use std::net::IpAddr;

use crate::admin::{Actor, AdminError, record_change};
use crate::app::App;
use crate::authn::Authentication;
use crate::authn::methods::Method;
use crate::config::Config;
use crate::delivery::{Channel, Delivery};
use crate::security::{digest, random_id, random_secret};
use crate::store::invitations::{self, Invitation};
use crate::store::orgs::{self, Organization};
use crate::store::users::{self, User};
use crate::store::{self, Store};

use super::signup::{Credential, Failure, create_account, prepare, record_signup};

pub const INVITATION_TTL_SECS: i64 = 7 * 24 * 3600;

/// A new invitation: the link is shown to the admin once (to hand over another way if the
/// mail does not arrive) and never stored.
pub struct Created {
    pub invitation: Invitation,
    pub link: String,
}

pub fn link(config: &Config, token: &str) -> String {
    config.endpoint(&format!("/signup/invitation?token={token}"))
}

/// Creates an invitation for `email` in `org_id`. An address that already has an account is
/// refused: admins may know which accounts exist.
pub async fn create(
    store: &Store,
    config: &Config,
    actor: &Actor,
    org_id: &str,
    email: &str,
) -> Result<Created, AdminError> {
    actor.require_org(org_id)?;
    let email = email.trim();
    if !crate::admin::looks_like_email(email) || email.len() > 320 {
        return Err(AdminError::Invalid(format!(
            "{email:?} is not an email address"
        )));
    }
    let email = users::normalize_email(email);
    if users::find_by_email(store, org_id, &email).await?.is_some() {
        return Err(AdminError::Conflict(format!(
            "{email} already has an account in this organization"
        )));
    }
    let token = random_secret();
    let now = store::now();
    let invitation = Invitation {
        id: random_id(),
        token_hash: digest(&token),
        org_id: org_id.to_owned(),
        email,
        invited_by: actor.name.clone(),
        webauthn_handle: webauthn_rs::prelude::Uuid::new_v4().to_string(),
        created_at: now,
        expires_at: now + INVITATION_TTL_SECS,
        used_at: None,
    };
    invitations::insert(store, &invitation).await?;
    record_change(
        store,
        actor,
        Some(org_id),
        "user.invite",
        Some(&invitation.id),
        serde_json::json!({ "email": invitation.email, "expires_at": invitation.expires_at }),
    )
    .await?;
    Ok(Created {
        link: link(config, &token),
        invitation,
    })
}

/// Mails the invitation link to its address.
pub async fn mail(
    delivery: &Delivery,
    http: &openidconnect::reqwest::Client,
    config: &Config,
    org: &Organization,
    created: &Created,
) -> Result<(), String> {
    let (subject, body) = crate::delivery::messages::invitation(
        &org.name,
        &created.link,
        INVITATION_TTL_SECS / 86_400,
        &config.issuer,
    );
    delivery
        .send(
            http,
            Channel::Email,
            &created.invitation.email,
            &subject,
            &body,
        )
        .await
}

/// The live invitation a link's token names, with its organization.
pub async fn find_live(app: &App, token: &str) -> Result<(Invitation, Organization), Failure> {
    if token.is_empty() || token.len() > 128 {
        return Err(Failure::Dead);
    }
    let invitation = invitations::find_by_token_hash(&app.store, &digest(token))
        .await?
        .filter(|i| i.used_at.is_none() && i.expires_at > store::now())
        .ok_or(Failure::Dead)?;
    let org = orgs::find(&app.store, &invitation.org_id)
        .await?
        .ok_or(Failure::Dead)?;
    Ok((invitation, org))
}

/// Accepts an invitation with the first credential: checks it, spends the invitation (once,
/// whatever races), creates the account with its address verified.
pub async fn accept(
    app: &App,
    token: &str,
    credential: Credential<'_>,
    ip: Option<IpAddr>,
) -> Result<(User, Method, Authentication), Failure> {
    let (invitation, org) = find_live(app, token).await?;
    let config = org.auth_config()?;
    let (method, prepared) = prepare(app, &config, &invitation.id, credential).await?;
    if !invitations::mark_used(&app.store, &invitation.id, store::now()).await? {
        return Err(Failure::Dead);
    }
    let (user, authentication) = create_account(
        app,
        &invitation.org_id,
        &invitation.email,
        &invitation.webauthn_handle,
        prepared,
    )
    .await?;
    record_signup(app, &user, method, "invitation", ip).await?;
    Ok((user, method, authentication))
}
