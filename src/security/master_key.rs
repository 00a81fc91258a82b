//! Encryption at rest for signing keys and instance secrets, with AES-256-GCM under the
//! operator's master key (`TESSERA_MASTER_KEY`, 32 bytes in base64). Without a master key the
//! private material is stored in the clear and the server says so at start.
//!
//! The same sealing serves keys derived from the instance secret (`from_bytes`), e.g. the one
//! that seals opaque access tokens.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;

#[derive(Clone)]
pub struct MasterKey {
    key: std::sync::Arc<LessSafeKey>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    pub fn from_base64(text: &str) -> Result<MasterKey, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim()))
            .map_err(|_| "master key is not valid base64".to_string())?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, String> {
        if bytes.len() != 32 {
            return Err(format!("master key must be 32 bytes, got {}", bytes.len()));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| "bad master key")?;
        Ok(MasterKey {
            key: std::sync::Arc::new(LessSafeKey::new(unbound)),
        })
    }

    /// `nonce || ciphertext || tag`; `label` is bound as associated data so that a value
    /// cannot be swapped into another row.
    pub fn seal(&self, label: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = super::random_bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(label.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM sealing cannot fail for in-memory buffers");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err("sealed value too short".into());
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce")?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(label.as_bytes()), &mut buf)
            .map_err(|_| "cannot decrypt: wrong master key or tampered value".to_string())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_label_binding() {
        let key =
            MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32]))
                .unwrap();
        let sealed = key.seal("signing-key:abc", b"secret");
        assert_eq!(key.open("signing-key:abc", &sealed).unwrap(), b"secret");
        assert!(key.open("signing-key:other", &sealed).is_err());
        let other =
            MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([8u8; 32]))
                .unwrap();
        assert!(other.open("signing-key:abc", &sealed).is_err());
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
    }
}
