//! PKCE (RFC 7636) with S256 only: `plain` offers nothing once the challenge can leak.

use crate::security::{b64url, constant_time_eq, sha256};

/// §4.1: 43 to 128 characters of the unreserved set.
pub fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// An S256 challenge is the base64url of a SHA-256: exactly 43 characters.
pub fn is_valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn s256(verifier: &str) -> String {
    b64url(&sha256(verifier.as_bytes()))
}

pub fn verify(challenge: &str, verifier: &str) -> bool {
    is_valid_verifier(verifier) && constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            s256(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(verify(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            verifier
        ));
        assert!(!verify(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN",
            verifier
        ));
        assert!(!is_valid_verifier("short"));
        assert!(is_valid_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!is_valid_challenge("plain-challenge"));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// A verifier proves exactly its own challenge.
        #[test]
        fn verifier_matches_only_its_challenge(a in "[A-Za-z0-9._~-]{43,128}", b in "[A-Za-z0-9._~-]{43,128}") {
            prop_assert!(is_valid_challenge(&s256(&a)));
            prop_assert!(verify(&s256(&a), &a));
            prop_assume!(a != b);
            prop_assert!(!verify(&s256(&a), &b));
        }

        /// Malformed verifiers never verify, whatever the challenge.
        #[test]
        fn malformed_verifiers_fail(v in "[^A-Za-z0-9._~-]{1,10}[A-Za-z0-9]{0,60}") {
            prop_assert!(!verify(&s256(&v), &v));
        }
    }
}
