//! Just enough JOSE for the relying party's side of the checks: split and decode a JWS,
//! verify RS256 against a JWK, compute `at_hash`/`c_hash`. Independent of the server's own
//! token code on purpose.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Jwt {
    pub raw: String,
    pub header: Value,
    pub claims: Value,
    pub signing_input: String,
    pub signature: Vec<u8>,
}

pub fn b64url_decode(text: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| format!("not base64url: {e}"))
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Parses a compact JWS (three parts, JSON header and claims).
pub fn parse(raw: &str) -> Result<Jwt, String> {
    let parts: Vec<&str> = raw.split('.').collect();
    if parts.len() != 3 {
        return Err(format!(
            "expected a JWS with 3 parts, found {} parts",
            parts.len()
        ));
    }
    let header: Value = serde_json::from_slice(&b64url_decode(parts[0])?)
        .map_err(|e| format!("header is not JSON: {e}"))?;
    let claims: Value = serde_json::from_slice(&b64url_decode(parts[1])?)
        .map_err(|e| format!("claims are not JSON: {e}"))?;
    if !header.is_object() || !claims.is_object() {
        return Err("header and claims must be JSON objects".into());
    }
    Ok(Jwt {
        raw: raw.to_owned(),
        header,
        claims,
        signing_input: format!("{}.{}", parts[0], parts[1]),
        signature: b64url_decode(parts[2])?,
    })
}

/// Verifies an RS256 signature with an RSA JWK (`n`, `e`).
pub fn verify_rs256(jwk: &Value, jwt: &Jwt) -> Result<(), String> {
    if jwk["kty"].as_str() != Some("RSA") {
        return Err("key is not an RSA key".into());
    }
    let n = b64url_decode(jwk["n"].as_str().ok_or("RSA key without n")?)?;
    let e = b64url_decode(jwk["e"].as_str().ok_or("RSA key without e")?)?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    RsaPublicKeyComponents { n, e }
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            jwt.signing_input.as_bytes(),
            &jwt.signature,
        )
        .map_err(|_| "signature does not verify".to_owned())
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[first..]
}

pub fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// OIDC Core §3.1.3.6 / §3.3.2.11: the left half of the hash of the ASCII value, base64url,
/// with the hash of the JWS `alg` (SHA-256 for RS256).
pub fn half_hash(alg: &str, value: &str) -> Result<String, String> {
    let digest = match alg {
        "RS256" | "PS256" | "ES256" | "HS256" => sha256(value.as_bytes()),
        "RS384" | "PS384" | "ES384" | "HS384" => {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, value.as_bytes())
                .as_ref()
                .to_vec()
        }
        "RS512" | "PS512" | "ES512" | "HS512" => {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, value.as_bytes())
                .as_ref()
                .to_vec()
        }
        other => return Err(format!("cannot compute a hash claim for alg {other}")),
    };
    Ok(b64url(&digest[..digest.len() / 2]))
}

/// Shannon entropy of a string times its length, in bits, as the suite's
/// `AbstractEnsureMinimumEntropy` computes it.
pub fn shannon_entropy_bits(s: &str) -> f64 {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as f64;
    if chars.is_empty() {
        return 0.0;
    }
    let mut counts = std::collections::HashMap::new();
    for c in &chars {
        *counts.entry(*c).or_insert(0usize) += 1;
    }
    let per_char: f64 = -counts
        .values()
        .map(|c| {
            let p = *c as f64 / n;
            p * p.log2()
        })
        .sum::<f64>();
    per_char * s.len() as f64
}

/// A compact JWS with `alg: none` (an unsigned request object).
pub fn unsigned(claims: &Value) -> String {
    let header = serde_json::json!({"alg": "none"});
    format!(
        "{}.{}.",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_example() {
        // OIDC Core A.3 example access token.
        assert_eq!(
            half_hash("RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").unwrap(),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn entropy() {
        assert_eq!(shannon_entropy_bits("aaaa"), 0.0);
        assert!((shannon_entropy_bits("ab") - 2.0).abs() < 1e-9);
    }
}
