//! The signing key set and its rotation.
//!
//! A key goes `next` → `active` → `retired`. The `next` key is published in JWKS from the
//! moment it is created, so verifiers that cache JWKS already hold it when it starts signing;
//! a retired key stays published until every token it signed has expired. Every replica
//! reloads the set from the database periodically, so a rotation on one reaches all.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::json;

use crate::security::master_key::MasterKey;
use crate::security::{b64url, sha256};
use crate::store::keys::{STATE_ACTIVE, STATE_NEXT, STATE_RETIRED, SigningKeyRow};
use crate::store::{self, Store};

/// How often each replica re-reads the key set.
pub const RELOAD_INTERVAL_SECS: i64 = 30;

pub struct SigningKey {
    pub kid: String,
    pair: RsaKeyPair,
}

impl SigningKey {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RS256). CPU-heavy: call it through `crate::cpu::run`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("RSA signing with a valid key cannot fail");
        signature
    }
}

pub struct VerificationKey {
    components: RsaPublicKeyComponents<Vec<u8>>,
}

impl VerificationKey {
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), ()> {
        self.components
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
            .map_err(|_| ())
    }
}

/// An immutable snapshot: the key that signs now, every key verifiers may meet, and the
/// prepared JWKS document.
pub struct KeySet {
    pub active: Arc<SigningKey>,
    verification: HashMap<String, VerificationKey>,
    pub jwks_json: bytes::Bytes,
    pub jwks_etag: axum::http::HeaderValue,
}

impl KeySet {
    pub fn verification_key(&self, kid: &str) -> Option<&VerificationKey> {
        self.verification.get(kid)
    }
}

pub struct Keys {
    store: Store,
    master_key: Option<MasterKey>,
    /// Longest lifetime of anything we sign: how long a retired key stays published.
    max_token_ttl_secs: i64,
    current: RwLock<Arc<KeySet>>,
}

impl Keys {
    /// Loads the key set, creating the first active and next keys on a new database.
    pub async fn init(
        store: Store,
        master_key: Option<MasterKey>,
        max_token_ttl_secs: i64,
    ) -> Result<Keys, String> {
        let rows = store::keys::list(&store).await.map_err(|e| e.to_string())?;
        let now = store::now();
        if !rows.iter().any(|r| r.state == STATE_ACTIVE) {
            match rows.iter().find(|r| r.state == STATE_NEXT) {
                Some(next) => store::keys::activate(&store, &next.kid, now)
                    .await
                    .map_err(|e| e.to_string())?,
                None => {
                    let row = new_key_row(master_key.clone()).await?;
                    store::keys::insert(&store, &row)
                        .await
                        .map_err(|e| e.to_string())?;
                    store::keys::activate(&store, &row.kid, now)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        let rows = store::keys::list(&store).await.map_err(|e| e.to_string())?;
        if !rows.iter().any(|r| r.state == STATE_NEXT) {
            let row = new_key_row(master_key.clone()).await?;
            store::keys::insert(&store, &row)
                .await
                .map_err(|e| e.to_string())?;
        }
        let set = load_set(&store, master_key.as_ref()).await?;
        Ok(Keys {
            store,
            master_key,
            max_token_ttl_secs,
            current: RwLock::new(Arc::new(set)),
        })
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub async fn reload(&self) -> Result<(), String> {
        let set = load_set(&self.store, self.master_key.as_ref()).await?;
        match self.current.write() {
            Ok(mut guard) => *guard = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
        Ok(())
    }

    /// Promotes the published next key and publishes a new next key. Returns the new active kid.
    pub async fn rotate(&self) -> Result<String, String> {
        rotate(
            &self.store,
            self.master_key.clone(),
            self.max_token_ttl_secs,
        )
        .await?;
        self.reload().await?;
        Ok(self.current().active.kid.clone())
    }
}

/// Rotation as a function of the store, so the CLI can rotate while servers run.
pub async fn rotate(
    store: &Store,
    master_key: Option<MasterKey>,
    max_token_ttl_secs: i64,
) -> Result<String, String> {
    let rows = store::keys::list(store).await.map_err(|e| e.to_string())?;
    let next = rows
        .iter()
        .find(|r| r.state == STATE_NEXT)
        .ok_or("no next key is published; start the server once to create one")?;
    let new_next = new_key_row(master_key).await?;
    let now = store::now();
    // Replicas may sign with the old key until their next reload, hence the extra interval.
    let publish_until = now + max_token_ttl_secs + 2 * RELOAD_INTERVAL_SECS;
    store::keys::rotate(store, &next.kid, &new_next, now, publish_until)
        .await
        .map_err(|e| e.to_string())?;
    Ok(next.kid.clone())
}

async fn new_key_row(master_key: Option<MasterKey>) -> Result<SigningKeyRow, String> {
    crate::cpu::run(move || key_row(master_key))
        .await
        .map_err(|e| e.to_string())?
}

/// A new `next` key; CPU-heavy (RSA key generation).
fn key_row(master_key: Option<MasterKey>) -> Result<SigningKeyRow, String> {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| "RSA key generation failed")?;
    let der = pair.as_der().map_err(|_| "cannot encode the key")?;
    let jwk = public_jwk(&pair);
    let kid = jwk["kid"].as_str().unwrap_or_default().to_owned();
    let (private_key, encrypted) = match &master_key {
        Some(mk) => (mk.seal(&format!("signing-key:{kid}"), der.as_ref()), true),
        None => (der.as_ref().to_vec(), false),
    };
    Ok(SigningKeyRow {
        kid,
        alg: "RS256".into(),
        state: STATE_NEXT.into(),
        private_key,
        encrypted,
        public_jwk: jwk.to_string(),
        created_at: store::now(),
        activated_at: None,
        retired_at: None,
        publish_until: None,
    })
}

fn public_jwk(pair: &RsaKeyPair) -> serde_json::Value {
    let public = pair.public_key();
    let n = b64url(public.modulus().big_endian_without_leading_zero());
    let e = b64url(public.exponent().big_endian_without_leading_zero());
    // RFC 7638 thumbprint: the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = b64url(&sha256(canonical.as_bytes()));
    json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e })
}

async fn load_set(store: &Store, master_key: Option<&MasterKey>) -> Result<KeySet, String> {
    let rows = store::keys::list(store).await.map_err(|e| e.to_string())?;
    set_from_rows(&rows, master_key, store::now())
}

impl KeySet {
    /// A set of one freshly generated active key, outside any store: what the fuzz targets
    /// (`fuzz/`) and the corpus tests verify tokens against.
    pub fn generate() -> Result<KeySet, String> {
        let mut row = key_row(None)?;
        row.state = STATE_ACTIVE.into();
        row.activated_at = Some(store::now());
        set_from_rows(&[row], None, store::now())
    }
}

fn set_from_rows(
    rows: &[SigningKeyRow],
    master_key: Option<&MasterKey>,
    now: i64,
) -> Result<KeySet, String> {
    let mut active: Option<&SigningKeyRow> = None;
    let mut published = Vec::new();
    let mut verification = HashMap::new();
    for row in rows {
        let live = match row.state.as_str() {
            STATE_ACTIVE | STATE_NEXT => true,
            STATE_RETIRED => row.publish_until.is_some_and(|t| t > now),
            _ => false,
        };
        if !live {
            continue;
        }
        if row.state == STATE_ACTIVE
            && active.is_none_or(|a| a.activated_at.unwrap_or(0) <= row.activated_at.unwrap_or(0))
        {
            active = Some(row);
        }
        let jwk: serde_json::Value = serde_json::from_str(&row.public_jwk)
            .map_err(|e| format!("key {}: bad public JWK: {e}", row.kid))?;
        let decode = |field: &str| {
            jwk[field]
                .as_str()
                .and_then(crate::security::b64url_decode)
                .ok_or_else(|| format!("key {}: bad JWK member {field}", row.kid))
        };
        verification.insert(
            row.kid.clone(),
            VerificationKey {
                components: RsaPublicKeyComponents {
                    n: decode("n")?,
                    e: decode("e")?,
                },
            },
        );
        published.push((row.state == STATE_ACTIVE, jwk));
    }
    let active = active.ok_or("no active signing key")?;
    let der = if active.encrypted {
        let mk = master_key.ok_or(
            "signing keys are encrypted at rest: set TESSERA_MASTER_KEY to the master key",
        )?;
        mk.open(&format!("signing-key:{}", active.kid), &active.private_key)?
    } else {
        active.private_key.clone()
    };
    let pair = RsaKeyPair::from_pkcs8(&der).map_err(|e| format!("active key unreadable: {e}"))?;
    // Active key first: some verifiers try keys in order.
    published.sort_by_key(|(is_active, _)| !is_active);
    let keys: Vec<_> = published.into_iter().map(|(_, jwk)| jwk).collect();
    let body = serde_json::to_vec(&json!({ "keys": keys })).map_err(|e| e.to_string())?;
    let etag = crate::oidc::etag_of(&body);
    Ok(KeySet {
        active: Arc::new(SigningKey {
            kid: active.kid.clone(),
            pair,
        }),
        verification,
        jwks_json: bytes::Bytes::from(body),
        jwks_etag: etag,
    })
}
