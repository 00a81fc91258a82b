//! Passkeys (WebAuthn L3) with webauthn-rs: registration, username-first and discoverable
//! sign-in. Ceremony state lives in the database for five minutes and is consumed on first
//! use, so any replica can finish a ceremony another started.
//!
//! The relying-party ID is the issuer's host and the origin is the issuer's origin; an
//! issuer on an IP address cannot have passkeys (browsers refuse IP addresses as RP IDs).

use serde_json::Value;
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use super::Authentication;
use crate::config::Config;
use crate::security::{b64url, hmac_sha256, random_id};
use crate::store::passkeys::{self, CeremonyRow, PasskeyRow};
use crate::store::users::{self, User};
use crate::store::{self, Store, StoreError};

/// W3C WebAuthn recommends a ceremony timeout of a few minutes; the stored state dies with it.
pub const CEREMONY_TTL_SECS: i64 = 300;

const KIND_REGISTER: &str = "register";
const KIND_AUTHENTICATE: &str = "authenticate";
const KIND_DISCOVER: &str = "discover";

pub struct Passkeys {
    webauthn: Webauthn,
}

impl Passkeys {
    /// `None` when the issuer's host cannot be a WebAuthn relying-party ID (an IP address).
    pub fn from_config(config: &Config) -> Result<Option<Passkeys>, String> {
        let issuer = config.issuer_url();
        let Some(host) = issuer.domain() else {
            tracing::warn!(
                issuer = %config.issuer,
                "passkeys are disabled: the issuer's host is an IP address, which WebAuthn cannot use as a relying-party ID (use a hostname such as localhost)"
            );
            return Ok(None);
        };
        let origin = url::Url::parse(&issuer.origin().ascii_serialization())
            .map_err(|e| format!("issuer origin: {e}"))?;
        let webauthn = WebauthnBuilder::new(host, &origin)
            .map_err(|e| format!("WebAuthn configuration: {e}"))?
            .rp_name("Tessera")
            .build()
            .map_err(|e| format!("WebAuthn configuration: {e}"))?;
        Ok(Some(Passkeys { webauthn }))
    }
}

/// Why a ceremony failed, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("This passkey request has expired or was already used. Try again.")]
    CeremonyExpired,
    #[error("The passkey response could not be read.")]
    Malformed,
    #[error("This passkey is not registered here, or not for this account.")]
    UnknownCredential,
    #[error("This passkey is already registered to an account.")]
    AlreadyRegistered,
    #[error(
        "This passkey was refused because it may have been copied. Use another method and remove it from your account."
    )]
    PossibleClone,
    #[error("The passkey check failed. Try again.")]
    Verification(String),
    #[error("This account has been disabled. Contact your administrator.")]
    Disabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn verification(e: WebauthnError) -> PasskeyError {
    match e {
        WebauthnError::CredentialPossibleCompromise => PasskeyError::PossibleClone,
        other => PasskeyError::Verification(other.to_string()),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(value).map_err(|e| PasskeyError::Verification(e.to_string()))
}

async fn save_ceremony(
    store: &Store,
    kind: &str,
    user_id: Option<&str>,
    state: String,
) -> Result<String, PasskeyError> {
    let now = store::now();
    let row = CeremonyRow {
        id: random_id(),
        kind: kind.into(),
        user_id: user_id.map(str::to_owned),
        state,
        created_at: now,
        expires_at: now + CEREMONY_TTL_SECS,
    };
    passkeys::insert_ceremony(store, &row).await?;
    Ok(row.id)
}

async fn take_ceremony(store: &Store, id: &str) -> Result<CeremonyRow, PasskeyError> {
    passkeys::take_ceremony(store, id)
        .await?
        .filter(|c| c.expires_at >= store::now())
        .ok_or(PasskeyError::CeremonyExpired)
}

fn stored_passkey(row: &PasskeyRow) -> Result<Passkey, PasskeyError> {
    serde_json::from_str(&row.credential)
        .map_err(|e| PasskeyError::Store(StoreError::Corrupt(e.to_string())))
}

fn user_handle(user_id: &str, handle: &str) -> Result<Uuid, PasskeyError> {
    Uuid::parse_str(handle).map_err(|_| {
        PasskeyError::Store(StoreError::Corrupt(format!(
            "user {user_id}: bad WebAuthn handle"
        )))
    })
}

/// Starts adding a passkey to `user`'s account. Returns the ceremony id and the options for
/// `navigator.credentials.create()`.
pub async fn start_registration(
    pk: &Passkeys,
    store: &Store,
    user: &User,
) -> Result<(String, Value), PasskeyError> {
    let handle =
        users::ensure_webauthn_handle(store, &user.id, &Uuid::new_v4().to_string()).await?;
    let existing = passkeys::list_for_user(store, &user.id).await?;
    let exclude = existing
        .iter()
        .filter_map(|r| stored_passkey(r).ok())
        .map(|p| p.cred_id().clone())
        .collect::<Vec<_>>();
    let display = user.name.as_deref().unwrap_or(&user.email);
    begin_registration(pk, store, &user.id, &handle, &user.email, display, exclude).await
}

/// Starts the passkey of an account a sign-up is about to create: the ceremony belongs to the
/// sign-up (`signup_id`) until the account exists.
pub async fn start_signup_registration(
    pk: &Passkeys,
    store: &Store,
    signup_id: &str,
    handle: &str,
    email: &str,
) -> Result<(String, Value), PasskeyError> {
    begin_registration(pk, store, signup_id, handle, email, email, Vec::new()).await
}

async fn begin_registration(
    pk: &Passkeys,
    store: &Store,
    owner: &str,
    handle: &str,
    email: &str,
    display: &str,
    exclude: Vec<webauthn_rs::prelude::CredentialID>,
) -> Result<(String, Value), PasskeyError> {
    let (options, state): (CreationChallengeResponse, PasskeyRegistration) = pk
        .webauthn
        .start_passkey_registration(user_handle(owner, handle)?, email, display, Some(exclude))
        .map_err(verification)?;
    let mut options =
        serde_json::to_value(&options).map_err(|e| PasskeyError::Verification(e.to_string()))?;
    // webauthn-rs asks for non-discoverable credentials; usernameless sign-in needs
    // discoverable ones. "preferred" lets authenticators that cannot store them still register.
    let selection = &mut options["publicKey"]["authenticatorSelection"];
    selection["residentKey"] = Value::from("preferred");
    selection["requireResidentKey"] = Value::from(false);
    // No attachment restriction: a phone's passkey over the hybrid transport must work.
    if let Some(map) = selection.as_object_mut() {
        map.remove("authenticatorAttachment");
    }
    let id = save_ceremony(store, KIND_REGISTER, Some(owner), to_json(&state)?).await?;
    Ok((id, options))
}

pub async fn finish_registration(
    pk: &Passkeys,
    store: &Store,
    user: &User,
    ceremony: &str,
    credential: &RegisterPublicKeyCredential,
    name: &str,
) -> Result<PasskeyRow, PasskeyError> {
    let row = verify_registration(pk, store, &user.id, ceremony, credential, name).await?;
    save(store, &row).await?;
    Ok(row)
}

/// Checks a registration response against the ceremony `owner` started; returns the passkey
/// for `owner`, not yet stored (a sign-up stores it once the account exists).
pub async fn verify_registration(
    pk: &Passkeys,
    store: &Store,
    owner: &str,
    ceremony: &str,
    credential: &RegisterPublicKeyCredential,
    name: &str,
) -> Result<PasskeyRow, PasskeyError> {
    let row = take_ceremony(store, ceremony).await?;
    if row.kind != KIND_REGISTER || row.user_id.as_deref() != Some(owner) {
        return Err(PasskeyError::CeremonyExpired);
    }
    let state: PasskeyRegistration = serde_json::from_str(&row.state)
        .map_err(|e| PasskeyError::Store(StoreError::Corrupt(e.to_string())))?;
    let passkey = pk
        .webauthn
        .finish_passkey_registration(credential, &state)
        .map_err(verification)?;
    let id = b64url(passkey.cred_id().as_ref());
    if passkeys::find(store, &id).await?.is_some() {
        return Err(PasskeyError::AlreadyRegistered);
    }
    let aaguid = aaguid(&credential.response.attestation_object);
    let label = aaguid.as_deref().and_then(authenticator_name);
    let name = match name.trim() {
        "" => label.unwrap_or("Passkey").to_owned(),
        n => n.chars().take(64).collect(),
    };
    let backup_eligible = serde_json::to_value(&passkey)
        .ok()
        .and_then(|v| v["cred"]["backup_eligible"].as_bool())
        .unwrap_or(false);
    Ok(PasskeyRow {
        id,
        user_id: owner.to_owned(),
        name,
        aaguid,
        credential: to_json(&passkey)?,
        backup_eligible,
        flagged: false,
        created_at: store::now(),
        last_used_at: None,
    })
}

/// Stores a verified passkey; a credential id already held by any account is refused.
pub async fn save(store: &Store, row: &PasskeyRow) -> Result<(), PasskeyError> {
    passkeys::insert(store, row).await.map_err(|e| {
        if e.is_unique_violation() {
            PasskeyError::AlreadyRegistered
        } else {
            e.into()
        }
    })
}

/// Starts a sign-in. With an email, the options list that account's passkeys
/// (`allowCredentials`); an unknown email, or one without passkeys, gets options of the same
/// shape listing credential ids derived from the email, which no authenticator holds (no
/// account enumeration). Without an email the ceremony is discoverable (usernameless).
pub async fn start_authentication(
    pk: &Passkeys,
    store: &Store,
    instance_key: &[u8],
    org_id: &str,
    email: Option<&str>,
) -> Result<(String, RequestChallengeResponse), PasskeyError> {
    if let Some(email) = email.filter(|e| !e.trim().is_empty()) {
        let user = users::find_by_email(store, org_id, email).await?;
        let rows = match &user {
            Some(u) => passkeys::list_for_user(store, &u.id).await?,
            None => Vec::new(),
        };
        let usable: Vec<Passkey> = rows
            .iter()
            .filter(|r| !r.flagged)
            .filter_map(|r| stored_passkey(r).ok())
            .collect();
        if let (Some(user), false) = (&user, usable.is_empty()) {
            let (options, state): (RequestChallengeResponse, PasskeyAuthentication) = pk
                .webauthn
                .start_passkey_authentication(&usable)
                .map_err(verification)?;
            let id =
                save_ceremony(store, KIND_AUTHENTICATE, Some(&user.id), to_json(&state)?).await?;
            return Ok((id, options));
        }
        let (mut options, state) = start_discoverable(pk)?;
        let decoy = hmac_sha256(
            instance_key,
            format!("passkey-decoy:{org_id}:{}", users::normalize_email(email)).as_bytes(),
        );
        let mut value = serde_json::to_value(&options)
            .map_err(|e| PasskeyError::Verification(e.to_string()))?;
        value["publicKey"]["allowCredentials"] =
            serde_json::json!([{ "type": "public-key", "id": b64url(&decoy) }]);
        value["mediation"] = Value::Null;
        options =
            serde_json::from_value(value).map_err(|e| PasskeyError::Verification(e.to_string()))?;
        let id = save_ceremony(store, KIND_DISCOVER, None, to_json(&state)?).await?;
        return Ok((id, options));
    }
    let (options, state) = start_discoverable(pk)?;
    let id = save_ceremony(store, KIND_DISCOVER, None, to_json(&state)?).await?;
    Ok((id, options))
}

fn start_discoverable(
    pk: &Passkeys,
) -> Result<(RequestChallengeResponse, DiscoverableAuthentication), PasskeyError> {
    pk.webauthn
        .start_discoverable_authentication()
        .map_err(verification)
}

/// Finishes a sign-in: the user, and what the assertion proved (for `amr`/`acr`).
pub async fn finish_authentication(
    pk: &Passkeys,
    store: &Store,
    org_id: &str,
    ceremony: &str,
    credential: &PublicKeyCredential,
) -> Result<(User, Authentication), PasskeyError> {
    let row = take_ceremony(store, ceremony).await?;
    let credential_id = b64url(credential.get_credential_id());
    let stored = passkeys::find(store, &credential_id)
        .await?
        .ok_or(PasskeyError::UnknownCredential)?;
    if stored.flagged {
        return Err(PasskeyError::PossibleClone);
    }
    let passkey = stored_passkey(&stored)?;
    let user = users::find(store, &stored.user_id)
        .await?
        .ok_or(PasskeyError::UnknownCredential)?;
    if user.org_id != org_id {
        return Err(PasskeyError::UnknownCredential);
    }
    let outcome = match row.kind.as_str() {
        KIND_AUTHENTICATE => {
            if row.user_id.as_deref() != Some(user.id.as_str()) {
                return Err(PasskeyError::UnknownCredential);
            }
            let state: PasskeyAuthentication = serde_json::from_str(&row.state)
                .map_err(|e| PasskeyError::Store(StoreError::Corrupt(e.to_string())))?;
            pk.webauthn
                .finish_passkey_authentication(credential, &state)
        }
        KIND_DISCOVER => {
            // The assertion names its user by handle; it must be this credential's owner.
            let (handle, _) = pk
                .webauthn
                .identify_discoverable_authentication(credential)
                .map_err(|_| PasskeyError::UnknownCredential)?;
            if user.webauthn_handle.as_deref() != Some(handle.to_string().as_str()) {
                return Err(PasskeyError::UnknownCredential);
            }
            let state: DiscoverableAuthentication = serde_json::from_str(&row.state)
                .map_err(|e| PasskeyError::Store(StoreError::Corrupt(e.to_string())))?;
            pk.webauthn
                .finish_discoverable_authentication_v2(credential, state, &passkey)
        }
        _ => return Err(PasskeyError::CeremonyExpired),
    };
    let result = match outcome {
        Ok(r) => r,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            // W3C WebAuthn §7.2 step 21: a counter that does not increase may mean a clone.
            passkeys::flag(store, &stored.id).await?;
            tracing::warn!(user_id = %user.id, credential = %stored.id, "passkey signature counter went backwards: credential flagged");
            return Err(PasskeyError::PossibleClone);
        }
        Err(e) => return Err(verification(e)),
    };
    let mut updated = passkey;
    updated.update_credential(&result);
    passkeys::record_use(store, &stored.id, &to_json(&updated)?, store::now()).await?;
    if user.disabled {
        return Err(PasskeyError::Disabled);
    }
    Ok((
        user,
        Authentication::passkey(result.backup_eligible(), result.user_verified()),
    ))
}

/// The AAGUID from a registration's attestation object (W3C WebAuthn §6.1: authenticator
/// data = rpIdHash(32) flags(1) signCount(4) then, with the AT flag, the AAGUID(16)).
pub fn aaguid(attestation_object: &[u8]) -> Option<String> {
    // The CBOR map holds the text key "authData" followed by a byte string.
    let key = b"\x68authData";
    let at = attestation_object
        .windows(key.len())
        .position(|w| w == key)?
        + key.len();
    let rest = attestation_object.get(at..)?;
    let (len, start) = match *rest.first()? {
        b @ 0x40..=0x57 => ((b - 0x40) as usize, 1),
        0x58 => (*rest.get(1)? as usize, 2),
        0x59 => (
            u16::from_be_bytes([*rest.get(1)?, *rest.get(2)?]) as usize,
            3,
        ),
        _ => return None,
    };
    let auth_data = rest.get(start..start + len)?;
    if auth_data.get(32)? & 0x40 == 0 {
        return None;
    }
    let raw = auth_data.get(37..53)?;
    if raw.iter().all(|b| *b == 0) {
        return None;
    }
    let hex = crate::security::hex(raw);
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// Labels for well-known authenticators, from the FIDO metadata and passkey-provider lists.
pub fn authenticator_name(aaguid: &str) -> Option<&'static str> {
    Some(match aaguid {
        "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4" => "Google Password Manager",
        "adce0002-35bc-c60a-648b-0b25f1f05503" => "Chrome on Mac",
        "fbfc3007-154e-4ecc-8c0b-6e020557d7bd" => "iCloud Keychain",
        "dd4ec289-e01d-41c9-bb89-70fa845d4bf2" => "iCloud Keychain (managed)",
        "08987058-cadc-4b81-b6e1-30de50dcbe96" => "Windows Hello",
        "9ddd1817-af5a-4672-a2b9-3e3dd95000a9" => "Windows Hello",
        "6028b017-b1d4-4c02-b4b3-afcdafc96bb2" => "Windows Hello",
        "bada5566-a7aa-401f-bd96-45619a55120d" => "1Password",
        "d548826e-79b4-db40-a3d8-11116f7e8349" => "Bitwarden",
        "531126d6-e717-415c-9320-3d9aa6981239" => "Dashlane",
        "53414d53-554e-4700-0000-000000000000" => "Samsung Pass",
        "cb69481e-8ff7-4039-93ec-0a2729a154a8" => "YubiKey 5",
        "ee882879-721c-4913-9775-3dfcce97072a" => "YubiKey 5 NFC",
        "fa2b99dc-9e39-4257-8f92-4a30d23c4118" => "YubiKey 5 NFC",
        _ => return None,
    })
}
