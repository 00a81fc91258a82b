//! Compact JWE with `alg` `ECDH-ES` (direct key agreement) and `enc` `A256GCM` on P-256
//! (RFC 7516, RFC 7518 §4.6 and §5.3): how a QR login grant reaches only the browser that
//! holds the private key. The page opens it with WebCrypto (`static/qr.js`); `open` exists
//! for the tests and the reference companion.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, ECDH_P256, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use super::{b64url, b64url_decode, random_bytes, sha256};

/// A P-256 public key as a JWK (RFC 7518 §6.2.1); other members are ignored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct P256Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
}

impl P256Jwk {
    /// The uncompressed SEC1 point, when the JWK names a P-256 key with 32-byte coordinates.
    pub fn point(&self) -> Option<Vec<u8>> {
        if self.kty != "EC" || self.crv != "P-256" {
            return None;
        }
        let x = b64url_decode(&self.x)?;
        let y = b64url_decode(&self.y)?;
        if x.len() != 32 || y.len() != 32 {
            return None;
        }
        let mut point = Vec::with_capacity(65);
        point.push(4);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        Some(point)
    }

    pub fn from_point(point: &[u8]) -> Option<P256Jwk> {
        if point.len() != 65 || point[0] != 4 {
            return None;
        }
        Some(P256Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: b64url(&point[1..33]),
            y: b64url(&point[33..]),
        })
    }

    /// True when the point is on the curve (checked by a throwaway key agreement), so a bad
    /// key is refused when it is registered rather than when a grant is sealed to it.
    pub fn is_valid(&self) -> bool {
        let Some(point) = self.point() else {
            return false;
        };
        let Ok(mine) = agreement::PrivateKey::generate(&ECDH_P256) else {
            return false;
        };
        agreement::agree(
            &mine,
            UnparsedPublicKey::new(&ECDH_P256, &point),
            (),
            |_| Ok(()),
        )
        .is_ok()
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    enc: String,
    epk: P256Jwk,
    apv: String,
}

/// Concat KDF (NIST SP 800-56A §5.8.1) as RFC 7518 §4.6.2 instantiates it for direct key
/// agreement: AlgorithmID is the `enc` value, keydatalen 256 bits, one SHA-256 round.
fn content_key(z: &[u8], apv: &[u8]) -> [u8; 32] {
    let mut input = Vec::with_capacity(4 + z.len() + 64 + apv.len());
    input.extend_from_slice(&1u32.to_be_bytes());
    input.extend_from_slice(z);
    for part in [b"A256GCM".as_slice(), b"".as_slice(), apv] {
        input.extend_from_slice(&(part.len() as u32).to_be_bytes());
        input.extend_from_slice(part);
    }
    input.extend_from_slice(&256u32.to_be_bytes());
    sha256(&input)
}

/// Seals `plaintext` to `recipient`, binding `apv` (the agreement's PartyVInfo) into the key.
pub fn seal(recipient: &P256Jwk, apv: &[u8], plaintext: &[u8]) -> Option<String> {
    let point = recipient.point()?;
    let ephemeral = agreement::PrivateKey::generate(&ECDH_P256).ok()?;
    let epk = P256Jwk::from_point(ephemeral.compute_public_key().ok()?.as_ref())?;
    let key = agreement::agree(
        &ephemeral,
        UnparsedPublicKey::new(&ECDH_P256, &point),
        (),
        |z| Ok(content_key(z, apv)),
    )
    .ok()?;
    let header = Header {
        alg: "ECDH-ES".into(),
        enc: "A256GCM".into(),
        epk,
        apv: b64url(apv),
    };
    let protected = b64url(&serde_json::to_vec(&header).ok()?);
    let iv = random_bytes::<12>();
    let cipher = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).ok()?);
    let mut data = plaintext.to_vec();
    // RFC 7516 §5.1 step 14: the AAD is the ASCII of the encoded protected header.
    let tag = cipher
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(protected.as_bytes()),
            &mut data,
        )
        .ok()?;
    // Direct key agreement: the encrypted-key part is empty (§4.6).
    Some(format!(
        "{protected}..{}.{}.{}",
        b64url(&iv),
        b64url(&data),
        b64url(tag.as_ref())
    ))
}

/// Opens a JWE made by [`seal`] with the recipient's private key; checks `apv`.
pub fn open(recipient: &agreement::PrivateKey, apv: &[u8], jwe: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = jwe.split('.').collect();
    let [protected, encrypted_key, iv, ciphertext, tag] = parts[..] else {
        return None;
    };
    if !encrypted_key.is_empty() {
        return None;
    }
    let header: Header = serde_json::from_slice(&b64url_decode(protected)?).ok()?;
    if header.alg != "ECDH-ES" || header.enc != "A256GCM" || b64url_decode(&header.apv)? != apv {
        return None;
    }
    let key = agreement::agree(
        recipient,
        UnparsedPublicKey::new(&ECDH_P256, header.epk.point()?),
        (),
        |z| Ok(content_key(z, apv)),
    )
    .ok()?;
    let iv: [u8; 12] = b64url_decode(iv)?.try_into().ok()?;
    let mut data = b64url_decode(ciphertext)?;
    data.extend_from_slice(&b64url_decode(tag)?);
    let cipher = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).ok()?);
    let plain = cipher
        .open_in_place(
            Nonce::assume_unique_for_key(iv),
            Aad::from(protected.as_bytes()),
            &mut data,
        )
        .ok()?;
    Some(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient() -> (agreement::PrivateKey, P256Jwk) {
        let key = agreement::PrivateKey::generate(&ECDH_P256).unwrap();
        let jwk = P256Jwk::from_point(key.compute_public_key().unwrap().as_ref()).unwrap();
        (key, jwk)
    }

    #[test]
    fn sealed_grants_open_only_for_the_recipient_and_the_bound_session() {
        let (key, jwk) = recipient();
        assert!(jwk.is_valid());
        let jwe = seal(&jwk, b"session-1", b"grant").unwrap();
        assert_eq!(jwe.split('.').nth(1), Some(""));
        assert_eq!(open(&key, b"session-1", &jwe).unwrap(), b"grant");
        assert!(open(&key, b"session-2", &jwe).is_none());
        let (other, _) = recipient();
        assert!(open(&other, b"session-1", &jwe).is_none());
        let mut tampered = jwe.clone();
        tampered.push('A');
        assert!(open(&key, b"session-1", &tampered).is_none());
    }

    #[test]
    fn keys_off_the_curve_or_of_another_kind_are_refused() {
        let (_, mut jwk) = recipient();
        jwk.y = jwk.x.clone();
        assert!(!jwk.is_valid());
        let (_, mut jwk) = recipient();
        jwk.crv = "P-384".into();
        assert!(!jwk.is_valid());
        assert!(seal(&jwk, b"s", b"g").is_none());
    }
}
