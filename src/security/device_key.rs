//! ES256 compact JWS (RFC 7515, RFC 7518 §3.4) for companion-app device keys: the app signs
//! with its P-256 key, Tessera verifies against the key enrolled for that device.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use serde_json::Value;

use super::jwe::P256Jwk;
use super::{b64url, b64url_decode};

/// Device-signed messages are small; anything larger is refused before parsing.
const MAX_JWS_BYTES: usize = 4096;

/// A device's key pair (the reference companion keeps its PKCS#8 in a local file).
pub struct DeviceKey(EcdsaKeyPair);

impl DeviceKey {
    /// A new key pair and its PKCS#8 encoding.
    pub fn generate() -> Result<(DeviceKey, Vec<u8>), String> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| "key generation failed".to_owned())?;
        let bytes = pkcs8.as_ref().to_vec();
        Ok((DeviceKey::from_pkcs8(&bytes)?, bytes))
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<DeviceKey, String> {
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map(DeviceKey)
            .map_err(|_| "not a P-256 PKCS#8 key".to_owned())
    }

    pub fn public_jwk(&self) -> P256Jwk {
        P256Jwk::from_point(self.0.public_key().as_ref()).expect("P-256 public key is 65 bytes")
    }

    /// `header.claims.signature` with `alg` ES256, this `typ` and `kid`.
    pub fn sign(&self, typ: &str, kid: Option<&str>, claims: &Value) -> Result<String, String> {
        let mut header = serde_json::json!({"alg": "ES256", "typ": typ});
        if let Some(kid) = kid {
            header["kid"] = kid.into();
        }
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = self
            .0
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| "signing failed".to_owned())?;
        Ok(format!("{input}.{}", b64url(signature.as_ref())))
    }
}

/// The header of an ES256 JWS, read before its signature is checked (to find the key).
pub struct Unverified {
    pub typ: String,
    pub kid: Option<String>,
    signing_input: String,
    signature: Vec<u8>,
    claims: Vec<u8>,
}

pub fn parse(jws: &str) -> Option<Unverified> {
    if jws.len() > MAX_JWS_BYTES {
        return None;
    }
    let mut parts = jws.split('.');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&b64url_decode(header)?).ok()?;
    // RFC 8725 §3.1: the algorithm is fixed by the key's use, never taken from the token.
    if header.get("alg")?.as_str()? != "ES256" {
        return None;
    }
    Some(Unverified {
        typ: header.get("typ")?.as_str()?.to_owned(),
        kid: header.get("kid").and_then(Value::as_str).map(str::to_owned),
        signing_input: jws[..jws.rfind('.')?].to_owned(),
        signature: b64url_decode(signature)?,
        claims: b64url_decode(claims)?,
    })
}

impl Unverified {
    /// The claims, when the signature verifies under `key`.
    pub fn verify(&self, key: &P256Jwk) -> Option<Value> {
        let point = key.point()?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .ok()?;
        serde_json::from_slice(&self.claims).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_under_the_signing_key() {
        let (key, pkcs8) = DeviceKey::generate().unwrap();
        let reloaded = DeviceKey::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(reloaded.public_jwk(), key.public_jwk());
        let jws = key
            .sign("t+jwt", Some("d1"), &serde_json::json!({"a": 1}))
            .unwrap();
        let parsed = parse(&jws).unwrap();
        assert_eq!(parsed.typ, "t+jwt");
        assert_eq!(parsed.kid.as_deref(), Some("d1"));
        assert_eq!(parsed.verify(&key.public_jwk()).unwrap()["a"], 1);
        let (other, _) = DeviceKey::generate().unwrap();
        assert!(parsed.verify(&other.public_jwk()).is_none());
        let mut tampered = jws.clone();
        tampered.insert(jws.find('.').unwrap() + 2, 'x');
        assert!(parse(&tampered).is_none_or(|p| p.verify(&key.public_jwk()).is_none()));
    }
}
