//! The suite's conditions, one function each, named after the Java class
//! (`net.openid.conformance.condition.{client,common}.*`). Each returns `Err(message)` when
//! the condition fails; the caller decides the severity, as the suite's test module does.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::jose::{self, Jwt};

pub type Check = Result<(), String>;

/// Clock skew the suite allows when checking token times (5 minutes).
pub const SKEW_SECS: i64 = 5 * 60;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn is_https_url(v: &str) -> bool {
    url::Url::parse(v).is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some())
}

// ---------------------------------------------------------------- server configuration

/// `CheckServerConfiguration`: the endpoints the flows need are present and are URLs.
pub fn check_server_configuration(server: &Value) -> Check {
    for key in ["authorization_endpoint", "token_endpoint", "issuer"] {
        let v = server[key]
            .as_str()
            .ok_or_else(|| format!("{key} missing from the server configuration"))?;
        url::Url::parse(v).map_err(|e| format!("{key} is not a URL: {e}"))?;
    }
    Ok(())
}

/// `EnsureServerConfigurationSupportsClientSecretBasic`
pub fn supports_client_secret_basic(server: &Value) -> Check {
    match &server["token_endpoint_auth_methods_supported"] {
        Value::Null => Ok(()), // the default is client_secret_basic
        Value::Array(a) if a.iter().any(|v| v == "client_secret_basic") => Ok(()),
        other => Err(format!(
            "token_endpoint_auth_methods_supported does not contain client_secret_basic: {other}"
        )),
    }
}

/// `EnsureServerConfigurationSupportsClientSecretPost`
pub fn supports_client_secret_post(server: &Value) -> Check {
    match &server["token_endpoint_auth_methods_supported"] {
        Value::Array(a) if a.iter().any(|v| v == "client_secret_post") => Ok(()),
        other => Err(format!(
            "token_endpoint_auth_methods_supported does not list client_secret_post: {other}"
        )),
    }
}

/// `OIDCCCheckScopesSupportedContainScopeTest`
pub fn scopes_supported_contain(server: &Value, scope: &str) -> Check {
    let supported = server["scopes_supported"]
        .as_array()
        .ok_or("'scope_supported' is null or not an array")?;
    for s in scope.split(' ') {
        if !supported.iter().any(|v| v == s) {
            return Err("'scope_supported' doesn't contain expected scopes".into());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- JWKS

/// `CheckServerKeysIsValid`: parses as a JWK set (Nimbus `JWKSet.parse`).
pub fn server_keys_is_valid(jwks: &Value) -> Check {
    let keys = jwks["keys"].as_array().ok_or("no 'keys' array")?;
    for key in keys {
        let kty = key["kty"].as_str().ok_or("a key has no kty")?;
        if kty == "RSA" {
            for p in ["n", "e"] {
                jose::b64url_decode(key[p].as_str().ok_or(format!("RSA key without {p}"))?)
                    .map_err(|e| format!("RSA key member {p}: {e}"))?;
            }
        }
    }
    Ok(())
}

/// `ValidateServerJWKs` (structure; private/symmetric material is the next check).
pub fn validate_server_jwks(jwks: &Value) -> Check {
    let keys = jwks["keys"].as_array().ok_or("JWKS has no 'keys' array")?;
    if keys.is_empty() {
        return Err("JWKS 'keys' is empty".into());
    }
    for key in keys {
        let kty = key["kty"]
            .as_str()
            .ok_or("a key in the JWKS has no 'kty'")?;
        match kty {
            "RSA" => {
                for p in ["n", "e"] {
                    let v = key[p]
                        .as_str()
                        .ok_or_else(|| format!("RSA key is missing '{p}'"))?;
                    if v.contains('=') || v.contains('+') || v.contains('/') {
                        return Err(format!(
                            "RSA key member '{p}' is not base64url (no padding)"
                        ));
                    }
                    jose::b64url_decode(v)?;
                }
            }
            "EC" => {
                for p in ["crv", "x", "y"] {
                    key[p]
                        .as_str()
                        .ok_or_else(|| format!("EC key is missing '{p}'"))?;
                }
            }
            "OKP" | "oct" => {}
            other => return Err(format!("unknown kty {other}")),
        }
    }
    Ok(())
}

/// `CheckForKeyIdInServerJWKs` (OIDCC-10.1)
pub fn key_id_in_server_jwks(jwks: &Value) -> Check {
    for key in jwks["keys"].as_array().into_iter().flatten() {
        match key["kid"].as_str() {
            Some(k) if !k.trim().is_empty() => {}
            _ => return Err("a key in the server's JWKS has no 'kid'".into()),
        }
    }
    Ok(())
}

/// `CheckDistinctKeyIdValueInServerJWKs`
pub fn distinct_key_ids(jwks: &Value) -> Check {
    let mut seen = BTreeSet::new();
    for key in jwks["keys"].as_array().into_iter().flatten() {
        if let Some(kid) = key["kid"].as_str()
            && !seen.insert(kid.to_owned())
        {
            return Err(format!("duplicate kid {kid} in the server's JWKS"));
        }
    }
    Ok(())
}

/// `EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys`
pub fn no_private_or_symmetric_keys(jwks: &Value) -> Check {
    for key in jwks["keys"].as_array().into_iter().flatten() {
        if key["kty"] == "oct" {
            return Err("the server's JWKS contains a symmetric key".into());
        }
        for p in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            if !key[p].is_null() {
                return Err(format!(
                    "the server's JWKS contains private key material ('{p}')"
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- authorization response

/// `CheckMatchingCallbackParameters`: query parameters of the registered redirect URI come back.
pub fn matching_callback_parameters(redirect_uri: &str, callback_url: &str) -> Check {
    let registered = url::Url::parse(redirect_uri).map_err(|e| e.to_string())?;
    let received = url::Url::parse(callback_url).map_err(|e| e.to_string())?;
    let got: Vec<(String, String)> = received.query_pairs().into_owned().collect();
    for (k, v) in registered.query_pairs() {
        if !got.iter().any(|(gk, gv)| *gk == k && *gv == v) {
            return Err(format!(
                "the redirect URI's query parameter {k}={v} is missing from the callback"
            ));
        }
    }
    Ok(())
}

/// `ValidateIssIfPresentInAuthorizationResponse` (RFC 9207)
pub fn iss_if_present(params: &BTreeMap<String, String>, issuer: &str) -> Check {
    match params.get("iss") {
        None => Ok(()),
        Some(iss) if iss == issuer => Ok(()),
        Some(iss) => Err(format!(
            "'iss' in the authorization response ({iss}) does not match the issuer ({issuer})"
        )),
    }
}

/// `CheckIfAuthorizationEndpointError`
pub fn no_authorization_endpoint_error(params: &BTreeMap<String, String>) -> Check {
    match params.get("error") {
        None => Ok(()),
        Some(e) => Err(format!(
            "authorization endpoint returned an error: {e}{}",
            params
                .get("error_description")
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )),
    }
}

/// `CheckStateInAuthorizationResponse`
pub fn state_in_authorization_response(
    params: &BTreeMap<String, String>,
    expected: Option<&str>,
) -> Check {
    match (expected, params.get("state")) {
        (Some(e), Some(s)) if e == s => Ok(()),
        (Some(e), Some(s)) => Err(format!(
            "state in the authorization response ({s:?}) does not match the request ({e:?})"
        )),
        (Some(_), None) => Err("state missing from the authorization response".into()),
        (None, None) => Ok(()),
        (None, Some(s)) => Err(format!(
            "state {s:?} returned although none was sent in the request"
        )),
    }
}

/// `EnsureErrorFromAuthorizationEndpointResponse`
pub fn error_present(params: &BTreeMap<String, String>) -> Check {
    match params.get("error") {
        Some(e) if !e.is_empty() => Ok(()),
        _ => Err("the authorization endpoint response has no 'error'".into()),
    }
}

/// `RejectAuthCodeInAuthorizationEndpointResponse`
pub fn no_code_in_error_response(params: &BTreeMap<String, String>) -> Check {
    if params.contains_key("code") {
        return Err("an authorization code was returned with an error response".into());
    }
    Ok(())
}

/// `CheckForUnexpectedParametersInErrorResponseFromAuthorizationEndpoint`
pub fn no_unexpected_error_parameters(params: &BTreeMap<String, String>) -> Check {
    const ALLOWED: &[&str] = &[
        "error",
        "error_description",
        "error_uri",
        "state",
        "session_state",
        "iss",
    ];
    let extra: Vec<&String> = params
        .keys()
        .filter(|k| !ALLOWED.contains(&k.as_str()))
        .collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the error response contains unexpected parameters: {extra:?}"
        ))
    }
}

/// `CheckErrorDescriptionFrom…ContainsCRLFTAB`
pub fn error_description_has_no_crlftab(params: &BTreeMap<String, String>) -> Check {
    match params.get("error_description") {
        Some(d) if d.contains(['\r', '\n', '\t']) => {
            Err("'error_description' contains CR, LF or TAB characters".into())
        }
        _ => Ok(()),
    }
}

/// `ValidateErrorDescriptionFromAuthorizationEndpointResponseError`
pub fn authorization_error_description_chars(params: &BTreeMap<String, String>) -> Check {
    match params.get("error_description") {
        Some(d)
            if !d.chars().all(|c| {
                matches!(c as u32, 0x09..=0x0A | 0x0D | 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
            }) =>
        {
            Err(format!(
                "'error_description' uses characters outside %x09-0A / %x0D / %x20-21 / %x23-5B / %x5D-7E: {d:?}"
            ))
        }
        _ => Ok(()),
    }
}

/// `ValidateErrorUriFrom…ResponseError`
pub fn error_uri_valid(error_uri: Option<&str>) -> Check {
    match error_uri {
        None => Ok(()),
        Some(u) => {
            let chars_ok = u
                .chars()
                .all(|c| matches!(c as u32, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
            if !chars_ok || url::Url::parse(u).is_err() {
                Err(format!(
                    "'error_uri' is not a valid URI in %x21 / %x23-5B / %x5D-7E: {u:?}"
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// `CheckErrorFromAuthorizationEndpointErrorInvalidRequestOrUnsupportedResponseType`
pub fn error_invalid_request_or_unsupported_response_type(
    params: &BTreeMap<String, String>,
) -> Check {
    match params.get("error").map(String::as_str) {
        Some("invalid_request" | "unsupported_response_type") => Ok(()),
        other => Err(format!(
            "expected error invalid_request or unsupported_response_type, got {other:?}"
        )),
    }
}

/// `CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface`
pub fn error_requires_user_interface(params: &BTreeMap<String, String>) -> Check {
    match params.get("error").map(String::as_str) {
        Some(
            "login_required"
            | "interaction_required"
            | "consent_required"
            | "account_selection_required",
        ) => Ok(()),
        other => Err(format!(
            "expected login_required, interaction_required, consent_required or account_selection_required, got {other:?}"
        )),
    }
}

/// `EnsureMinimumAuthorizationCodeLength`: at least 128 bits.
pub fn code_length(code: &str) -> Check {
    let bits = code.len() * 8;
    if bits >= 128 {
        Ok(())
    } else {
        Err(format!(
            "Authorization code is not long enough ({bits} bits, 128 required)"
        ))
    }
}

/// `EnsureMinimum…Entropy`: Shannon entropy above `required` bits.
pub fn entropy(what: &str, value: &str, required: f64) -> Check {
    let bits = jose::shannon_entropy_bits(value);
    if bits > required {
        Ok(())
    } else {
        Err(format!(
            "Calculated shannon entropy of the {what} ({bits:.1} bits) does not seem to meet the minimum of {required}"
        ))
    }
}

// ---------------------------------------------------------------- token endpoint

/// `ValidateExpiresIn`
pub fn validate_expires_in(v: &Value) -> Check {
    let n = v
        .as_f64()
        .ok_or_else(|| format!("expires_in is not a number: {v}"))?;
    if n <= 0.0 {
        return Err(format!("expires_in is not positive: {v}"));
    }
    if n > 31_536_000.0 {
        return Err(format!("expires_in is more than a year: {v}"));
    }
    Ok(())
}

/// `CheckTokenEndpointReturnedJsonContentType` / `EnsureContentTypeJson`
pub fn content_type_json(content_type: Option<&str>) -> Check {
    let mime = content_type
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    if mime.as_deref() == Some("application/json") {
        Ok(())
    } else {
        Err(format!(
            "Content-Type is not application/json: {content_type:?}"
        ))
    }
}

/// `CheckTokenEndpointCacheHeaders`
pub fn token_endpoint_cache_headers(cache_control: Option<&str>, pragma: Option<&str>) -> Check {
    if let Some(cc) = cache_control
        && !cc.split(',').any(|p| p.trim() == "no-store")
    {
        return Err(format!("'cache-control' does not contain no-store: {cc:?}"));
    }
    if let Some(p) = pragma
        && !p.split(',').any(|x| x.trim() == "no-cache")
    {
        return Err(format!("'pragma' does not contain no-cache: {p:?}"));
    }
    Ok(())
}

/// `ValidateErrorFromTokenEndpointResponseError`
pub fn token_error_valid(body: &Value) -> Check {
    let e = body["error"]
        .as_str()
        .ok_or("token endpoint error response has no 'error' string")?;
    if e.is_empty()
        || !e
            .chars()
            .all(|c| matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
    {
        return Err(format!(
            "'error' uses characters outside %x20-21 / %x23-5B / %x5D-7E: {e:?}"
        ));
    }
    Ok(())
}

/// `ValidateErrorDescriptionFromTokenEndpointResponseError`
pub fn token_error_description_chars(body: &Value) -> Check {
    match body["error_description"].as_str() {
        Some(d)
            if !d.is_empty()
                && !d
                    .chars()
                    .all(|c| matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)) =>
        {
            Err(format!(
                "'error_description' field MUST NOT include characters outside the set %x20-21 / %x23-5B / %x5D-7E: {d:?}"
            ))
        }
        _ => Ok(()),
    }
}

/// `CheckErrorDescriptionFromTokenEndpointResponseErrorContainsCRLFTAB`
pub fn token_error_description_no_crlftab(body: &Value) -> Check {
    match body["error_description"].as_str() {
        Some(d) if d.contains(['\r', '\n', '\t']) => {
            Err("'error_description' contains CR, LF or TAB".into())
        }
        _ => Ok(()),
    }
}

/// `CheckErrorFromTokenEndpointResponseErrorInvalidGrant`
pub fn token_error_is_invalid_grant(body: &Value) -> Check {
    match body["error"].as_str() {
        Some("invalid_grant") => Ok(()),
        other => Err(format!("expected error invalid_grant, got {other:?}")),
    }
}

/// `EnsureRefreshTokenContainsAllowedCharactersOnly` / `EnsureAccessTokenContains…` (VSCHAR).
pub fn vschar_only(what: &str, value: &str) -> Check {
    if value.chars().all(|c| matches!(c as u32, 0x20..=0x7E)) {
        Ok(())
    } else {
        Err(format!("the {what} contains characters outside %x20-7E"))
    }
}

// ---------------------------------------------------------------- ID token

/// `ValidateIdToken` (and the newer checks on exp, iat, auth_time and acr).
pub fn validate_id_token(jwt: &Jwt, issuer: &str, client_id: &str) -> Check {
    let c = &jwt.claims;
    let now = now();
    let iss = c["iss"].as_str().ok_or("Missing issuer")?;
    if iss != issuer {
        return Err(format!("Issuer mismatch: expected {issuer}, got {iss}"));
    }
    match &c["aud"] {
        Value::Null => return Err("Missing audience".into()),
        Value::Array(a) => {
            if !a.iter().any(|v| v == client_id) {
                return Err(format!("Audience not found: {a:?}"));
            }
        }
        Value::String(s) if s == client_id => {}
        other => {
            return Err(format!(
                "Audience mismatch: expected {client_id}, got {other}"
            ));
        }
    }
    let exp = c["exp"].as_i64().ok_or("Missing expiration")?;
    if now - SKEW_SECS > exp {
        return Err(format!("Token expired (exp {exp}, now {now})"));
    }
    if exp > now + 50 * 365 * 24 * 3600 {
        return Err(format!("exp {exp} is unreasonably far in the future"));
    }
    let iat = c["iat"].as_i64().ok_or("Missing issuance time")?;
    if now + SKEW_SECS < iat {
        return Err(format!("Token issued in the future (iat {iat}, now {now})"));
    }
    if iat < now - SKEW_SECS {
        return Err(format!(
            "Token issued more than 5 minutes ago (iat {iat}, now {now})"
        ));
    }
    if !c["auth_time"].is_null() {
        let auth_time = c["auth_time"].as_i64().ok_or("auth_time is not a number")?;
        if auth_time > now + SKEW_SECS {
            return Err(format!("auth_time {auth_time} is in the future"));
        }
        if auth_time < now - 365 * 24 * 3600 {
            return Err(format!("auth_time {auth_time} is more than a year ago"));
        }
    }
    if c["acr"] == "" {
        return Err("acr is an empty string".into());
    }
    Ok(())
}

fn standard_claim_kind(name: &str) -> Option<&'static str> {
    Some(match name {
        "sub" | "name" | "given_name" | "family_name" | "middle_name" | "nickname"
        | "preferred_username" | "profile" | "picture" | "website" | "email" | "gender"
        | "birthdate" | "zoneinfo" | "locale" | "phone_number" => "string",
        "email_verified" | "phone_number_verified" => "boolean",
        "address" => "address",
        "updated_at" => "number",
        "_claim_names" | "_claim_sources" => "object",
        _ => return None,
    })
}

/// `ValidateIdTokenStandardClaims` / `ValidateUserInfoStandardClaims`: identity claims have
/// the types OIDC Core §5.1 gives them.
pub fn standard_claims(claims: &Value) -> Check {
    let Some(map) = claims.as_object() else {
        return Err("claims are not a JSON object".into());
    };
    let mut problems = Vec::new();
    for (name, value) in map {
        let Some(kind) = standard_claim_kind(name) else {
            continue;
        };
        let ok = match kind {
            "string" => value
                .as_str()
                .is_some_and(|s| !s.trim().is_empty() && s != "null"),
            "boolean" => value.is_boolean(),
            "number" => value.is_number(),
            "object" => value.is_object(),
            "address" => value.as_object().is_some_and(|o| {
                !o.is_empty()
                    && o.iter().all(|(k, v)| {
                        !matches!(
                            k.as_str(),
                            "formatted"
                                | "street_address"
                                | "locality"
                                | "region"
                                | "postal_code"
                                | "country"
                        ) || v.is_string()
                    })
            }),
            _ => true,
        };
        if !ok {
            problems.push(format!("{name} is not a valid {kind}: {value}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// `ValidateIdTokenNonce`
pub fn id_token_nonce(jwt: &Jwt, expected: Option<&str>) -> Check {
    match (expected, jwt.claims["nonce"].as_str()) {
        (Some(e), Some(n)) if e == n => Ok(()),
        (Some(e), Some(n)) => Err(format!("nonce mismatch: expected {e:?}, got {n:?}")),
        (Some(_), None) => Err("nonce missing from the ID token".into()),
        (None, None) => Ok(()),
        (None, Some(n)) => Err(format!(
            "the ID token has a nonce ({n:?}) although the request had none"
        )),
    }
}

/// `ValidateIdTokenSignature`: the signature verifies with a key of the server's JWKS.
pub fn id_token_signature(jwt: &Jwt, jwks: &Value) -> Check {
    let alg = jwt.header["alg"].as_str().unwrap_or("");
    if alg != "RS256" {
        return Err(format!(
            "cannot verify alg {alg:?} (the runner verifies RS256, the only algorithm the discovery document lists)"
        ));
    }
    let keys: Vec<&Value> = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|k| k["kty"] == "RSA")
        .filter(|k| k["use"].is_null() || k["use"] == "sig")
        .filter(|k| k["alg"].is_null() || k["alg"] == alg)
        .collect();
    let candidates: Vec<&Value> = match jwt.header["kid"].as_str() {
        Some(kid) => keys.into_iter().filter(|k| k["kid"] == kid).collect(),
        None => keys,
    };
    if candidates.is_empty() {
        return Err("no key in the server's JWKS matches the ID token header".into());
    }
    if candidates
        .iter()
        .any(|k| jose::verify_rs256(k, jwt).is_ok())
    {
        Ok(())
    } else {
        Err("Unable to verify ID token signature based on server key".into())
    }
}

/// `ValidateIdTokenSignatureUsingKid`: with a `kid`, exactly one key of that kid (and a
/// compatible kty/alg/use) and it verifies.
pub fn id_token_signature_using_kid(jwt: &Jwt, jwks: &Value) -> Check {
    let Some(kid) = jwt.header["kid"].as_str() else {
        return Ok(()); // the condition only applies when the header names a key
    };
    let alg = jwt.header["alg"].as_str().unwrap_or("");
    let matching: Vec<&Value> = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|k| k["kid"] == kid)
        .collect();
    if matching.is_empty() {
        return Err(format!("no key with kid {kid} in the server's JWKS"));
    }
    let usable: Vec<&Value> = matching
        .iter()
        .copied()
        .filter(|k| k["kty"] == "RSA")
        .filter(|k| k["use"].is_null() || k["use"] == "sig")
        .filter(|k| k["alg"].is_null() || k["alg"] == alg)
        .collect();
    if usable.len() > 1 {
        return Err(format!("more than one signing key with kid {kid}"));
    }
    let key = usable
        .first()
        .ok_or_else(|| format!("the key with kid {kid} is not an RS256 signing key"))?;
    jose::verify_rs256(key, jwt).map_err(|e| format!("key {kid}: {e}"))
}

/// `CheckForSubjectInIdToken`
pub fn subject_in_id_token(jwt: &Jwt) -> Check {
    let sub = jwt.claims["sub"]
        .as_str()
        .ok_or("sub missing from the ID token")?;
    if sub.is_empty() || sub.len() > 255 {
        return Err(format!(
            "sub must be 1 to 255 characters, has {}",
            sub.len()
        ));
    }
    if !sub.chars().all(|c| matches!(c as u32, 0x20..=0x7E)) {
        return Err("sub contains characters outside printable ASCII".into());
    }
    Ok(())
}

/// `EnsureIdTokenUpdatedAtValid` / `EnsureUserInfoUpdatedAtValid`
pub fn updated_at_valid(claims: &Value) -> Check {
    match &claims["updated_at"] {
        Value::Null => Ok(()),
        v => {
            let t = v
                .as_f64()
                .ok_or(format!("updated_at is not a number: {v}"))? as i64;
            if t > now() + SKEW_SECS {
                return Err(format!("updated_at {t} is in the future"));
            }
            if t < 631_152_000 {
                return Err(format!("updated_at {t} is before 1990"));
            }
            Ok(())
        }
    }
}

/// `EnsureUserInfoBirthDateValid`
pub fn birthdate_valid(claims: &Value) -> Check {
    let Some(b) = claims["birthdate"].as_str() else {
        return Ok(());
    };
    let year_ok = |y: &str| {
        y.len() == 4
            && y.parse::<i32>()
                .is_ok_and(|y| y == 0 || (1850..=2100).contains(&y))
    };
    let parts: Vec<&str> = b.split('-').collect();
    let ok = match parts.as_slice() {
        [y] => year_ok(y) && *y != "0000",
        [y, m, d] => {
            year_ok(y)
                && m.len() == 2
                && d.len() == 2
                && m.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
                && d.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "birthdate {b:?} is not YYYY-MM-DD, 0000-MM-DD or YYYY"
        ))
    }
}

/// `EnsureMemberValuesInClaimNameReferenceToMemberNamesInClaimSources`
pub fn claim_names_reference_sources(claims: &Value) -> Check {
    let Some(names) = claims["_claim_names"].as_object() else {
        return Ok(());
    };
    let sources = claims["_claim_sources"]
        .as_object()
        .ok_or("_claim_names present without _claim_sources")?;
    for (claim, source) in names {
        let s = source.as_str().unwrap_or("");
        if !sources.contains_key(s) {
            return Err(format!(
                "_claim_names.{claim} refers to unknown source {s:?}"
            ));
        }
    }
    Ok(())
}

/// `ExtractAtHash` + `ValidateAtHash` / `ValidateCHash`: when present, the hash claim matches.
pub fn hash_claim(jwt: &Jwt, claim: &str, value: &str) -> Option<Check> {
    let present = jwt.claims[claim].as_str()?;
    let alg = jwt.header["alg"].as_str().unwrap_or("");
    Some(match jose::half_hash(alg, value) {
        Ok(expected) if expected == present => Ok(()),
        Ok(expected) => Err(format!(
            "{claim} {present} does not match the value ({expected})"
        )),
        Err(e) => Err(e),
    })
}

/// `EnsureIdTokenDoesNotContainName`
pub fn id_token_has_no_name(jwt: &Jwt) -> Check {
    if jwt.claims["name"].is_string() {
        return Err("Unexpectedly found name in id_token. The conformance suite did not request the 'name' claim is returned in the id_token and hence did not expect the server to include it. Technically this does not violate the specifications but it is likely a bug in the server and may result in user data being exposed in unintended ways.".into());
    }
    Ok(())
}

/// `EnsureIdTokenDoesNotContainEmailForScopeEmail`
pub fn id_token_has_no_email(jwt: &Jwt) -> Check {
    if jwt.claims["email"].is_string() {
        return Err("Unexpectedly found email in id_token. The conformance suite did not request the 'email' claim is returned in the id_token and hence did not expect the server to include it; as per the spec link for this response_type scope=email is a short hand for 'please give me access to the user's email address in the userinfo response'. Technically returning unrequested claims does not violate the specifications but it could be a bug in the server and may result in user data being exposed in unintended ways if the relying party did not expect the email to be in the id_token, and then uses the id_token to provide proof of the authentication event to other parties.".into());
    }
    Ok(())
}

/// `EnsureUserInfoDoesNotContainName`
pub fn userinfo_has_no_name(userinfo: &Value) -> Check {
    if userinfo["name"].is_string() {
        return Err(
            "Unexpectedly found name in userinfo although only the email scope was requested"
                .into(),
        );
    }
    Ok(())
}

/// `EnsureUserInfoContainsName`
pub fn userinfo_contains_name(userinfo: &Value) -> Check {
    match userinfo["name"].as_str() {
        Some(n) if !n.is_empty() => Ok(()),
        _ => Err("name not found in userinfo".into()),
    }
}

/// `EnsureUserInfoContainsSub`
pub fn userinfo_contains_sub(userinfo: &Value) -> Check {
    match userinfo["sub"].as_str() {
        Some(s) if !s.is_empty() => Ok(()),
        _ => Err("sub not found in userinfo".into()),
    }
}

/// `VerifyScopesReturnedInUserInfoClaims` (AbstractVerifyScopesReturnedInClaims)
pub fn scopes_returned_in_claims(claims: &Value, scope: &str) -> Check {
    let expected: Vec<&str> = scope
        .split(' ')
        .flat_map(|s| match s {
            "openid" => vec!["sub"],
            "profile" => vec![
                "name",
                "given_name",
                "family_name",
                "middle_name",
                "nickname",
                "profile",
                "picture",
                "website",
                "gender",
                "birthdate",
                "zoneinfo",
                "locale",
                "updated_at",
                "preferred_username",
            ],
            "email" => vec!["email", "email_verified"],
            "address" => vec!["address"],
            "phone" => vec!["phone_number", "phone_number_verified"],
            _ => vec![],
        })
        .collect();
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|c| claims.get(c).is_none())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "'claims' in userinfo doesn't contain all scope items of scope in authorization request (corresponds to scope standard claims); missing: {}",
            missing.join(", ")
        ))
    }
}

/// `ValidateIdTokenACRClaimAgainstAcrValuesRequest`
pub fn acr_against_acr_values(jwt: &Jwt, requested: &str) -> Check {
    let acr = &jwt.claims["acr"];
    if acr.is_null() {
        return Err("An acr value was requested using acr_values, so the server 'SHOULD' return an acr claim, but it did not.".into());
    }
    let acr = acr
        .as_str()
        .ok_or("acr value in id_token must be a string")?;
    if requested.split(' ').any(|r| r == acr) {
        Ok(())
    } else {
        Err(format!(
            "acr value in id_token ({acr}) is not (one of the) requested values ({requested})"
        ))
    }
}

/// `CheckIdTokenAuthTimeClaimPresentDueToMaxAge`
pub fn auth_time_present_due_to_max_age(jwt: &Jwt) -> Check {
    if jwt.claims["auth_time"].is_number() {
        Ok(())
    } else {
        Err("auth_time is required in the id_token because max_age was requested".into())
    }
}

/// `CheckSecondIdTokenAuthTimeIsLaterIfPresent`
pub fn second_auth_time_later(first: &Jwt, second: &Jwt, why: &str) -> Check {
    match (
        first.claims["auth_time"].as_i64(),
        second.claims["auth_time"].as_i64(),
    ) {
        (Some(a), Some(b)) if a == b => Err(format!(
            "{why} means the server was required to reauthenticate the user, the id_token from the second authorization incorrectly has the same auth_time as the id_token from the first authorization ({a})"
        )),
        (Some(a), Some(b)) if a > b => Err(format!(
            "The id_token from the second authorization incorrectly has an earlier auth_time ({b}) than the id_token from the first authorization ({a})"
        )),
        _ => Ok(()),
    }
}

/// `CheckIdTokenAuthTimeIsRecentIfPresent`
pub fn auth_time_recent(jwt: &Jwt) -> Check {
    match jwt.claims["auth_time"].as_i64() {
        Some(t) if t < now() - SKEW_SECS - 1 => Err(format!(
            "id_token auth_time {t} is older than 1 second (allowing 5 minutes skews)"
        )),
        _ => Ok(()),
    }
}

/// `CheckIdTokenAuthTimeClaimsSameIfPresent`
pub fn auth_time_same(first: &Jwt, second: &Jwt) -> Check {
    match (
        first.claims["auth_time"].as_i64(),
        second.claims["auth_time"].as_i64(),
    ) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "auth_time differs between the two id_tokens ({a} then {b}) although the second authorization must not reauthenticate"
        )),
        _ => Ok(()),
    }
}

/// `CheckIdTokenSubConsistentForSecondAuthorization`
pub fn sub_consistent(first: &Jwt, second: &Jwt) -> Check {
    if first.claims["sub"] == second.claims["sub"] {
        Ok(())
    } else {
        Err(format!(
            "sub differs between the two id_tokens ({} then {})",
            first.claims["sub"], second.claims["sub"]
        ))
    }
}

/// `CompareIdTokenClaims` (OIDC Core §12.2)
pub fn compare_id_token_claims(first: &Jwt, second: &Jwt) -> Check {
    let (a, b) = (&first.claims, &second.claims);
    for claim in ["iss", "sub"] {
        if a[claim].is_null() || b[claim].is_null() {
            return Err(format!("an id token does not contain a {claim} claim"));
        }
        if a[claim] != b[claim] {
            return Err(format!(
                "{claim} claims are not the same: {} vs {}",
                a[claim], b[claim]
            ));
        }
    }
    if a["iat"].is_null() || b["iat"].is_null() {
        return Err("an id token does not contain an iat claim".into());
    }
    if a["iat"] == b["iat"] {
        return Err("iat for the second id token MUST represent the time that the new ID Token is issued, cannot be the same as the initial id token".into());
    }
    let aud_set = |v: &Value| -> BTreeSet<String> {
        match v {
            Value::Array(x) => x
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
            Value::String(s) => [s.clone()].into(),
            _ => BTreeSet::new(),
        }
    };
    if aud_set(&a["aud"]) != aud_set(&b["aud"]) {
        return Err("aud Claim Value MUST be the same as in the ID Token issued when the original authentication occurred".into());
    }
    if !b["auth_time"].is_null() && a["auth_time"] != b["auth_time"] {
        return Err(format!(
            "auth_time claims are not the same: {} vs {}",
            a["auth_time"], b["auth_time"]
        ));
    }
    if a["azp"].is_null() && !b["azp"].is_null() {
        return Err("Second id token cannot contain an azp claim because the initial id token does not have an azp claim".into());
    }
    if a["azp"] != b["azp"] {
        return Err("azp claims are not the same".into());
    }
    Ok(())
}

// ---------------------------------------------------------------- form_post callback

/// `CheckCallbackHttpMethodIsPost`
pub fn callback_method_is_post(method: &str) -> Check {
    if method == "POST" {
        Ok(())
    } else {
        Err(format!(
            "the browser reached the redirect_uri with {method}, not POST (response_mode=form_post)"
        ))
    }
}

/// `CheckCallbackContentTypeIsFormUrlEncoded` (string equality, as in the suite)
pub fn callback_content_type_form(content_type: Option<&str>) -> Check {
    if content_type == Some("application/x-www-form-urlencoded") {
        Ok(())
    } else {
        Err(format!(
            "callback Content-Type is not exactly application/x-www-form-urlencoded: {content_type:?}"
        ))
    }
}

/// `RejectAuthCodeInUrlQuery`
pub fn no_code_in_url_query(query: &BTreeMap<String, String>) -> Check {
    if query.contains_key("code") {
        Err("the authorization code was returned in the URL query".into())
    } else {
        Ok(())
    }
}

/// `RejectErrorInUrlQuery`
pub fn no_error_in_url_query(query: &BTreeMap<String, String>) -> Check {
    if query.contains_key("error") {
        Err(format!(
            "an error was returned in the URL query: {}",
            query["error"]
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(claims: Value) -> Jwt {
        Jwt {
            raw: String::new(),
            header: json!({"alg": "RS256", "kid": "k1"}),
            claims,
            signing_input: String::new(),
            signature: Vec::new(),
        }
    }

    #[test]
    fn id_token_claims() {
        let now = now();
        let good =
            json!({"iss": "https://op", "aud": "c", "exp": now + 60, "iat": now, "sub": "s"});
        assert!(validate_id_token(&jwt(good.clone()), "https://op", "c").is_ok());
        let mut wrong_iss = good.clone();
        wrong_iss["iss"] = json!("https://op/");
        assert!(validate_id_token(&jwt(wrong_iss), "https://op", "c").is_err());
        let mut array_aud = good.clone();
        array_aud["aud"] = json!(["x", "c"]);
        assert!(validate_id_token(&jwt(array_aud), "https://op", "c").is_ok());
        let mut old = good.clone();
        old["iat"] = json!(now - 600);
        assert!(validate_id_token(&jwt(old), "https://op", "c").is_err());
        assert!(id_token_nonce(&jwt(json!({"nonce": "n"})), Some("n")).is_ok());
        assert!(id_token_nonce(&jwt(json!({"nonce": "n"})), None).is_err());
        assert!(id_token_nonce(&jwt(json!({})), Some("n")).is_err());
    }

    #[test]
    fn standard_claim_types() {
        assert!(standard_claims(&json!({"email_verified": true, "updated_at": 1})).is_ok());
        assert!(standard_claims(&json!({"email_verified": "true"})).is_err());
        assert!(standard_claims(&json!({"name": ""})).is_err());
        assert!(standard_claims(&json!({"address": {"country": 1}})).is_err());
    }

    #[test]
    fn error_characters() {
        let mut p = BTreeMap::new();
        p.insert(
            "error_description".to_owned(),
            "a \"quoted\" word".to_owned(),
        );
        assert!(authorization_error_description_chars(&p).is_err());
        p.insert("error_description".to_owned(), "line\nbreak".to_owned());
        assert!(authorization_error_description_chars(&p).is_ok());
        assert!(error_description_has_no_crlftab(&p).is_err());
        assert!(token_error_description_chars(&json!({"error_description": "é"})).is_err());
    }

    #[test]
    fn refresh_id_token_comparison() {
        let a =
            jwt(json!({"iss": "i", "sub": "s", "aud": "c", "iat": 1, "auth_time": 0, "azp": "c"}));
        let b = jwt(
            json!({"iss": "i", "sub": "s", "aud": ["c"], "iat": 2, "auth_time": 0, "azp": "c"}),
        );
        assert!(compare_id_token_claims(&a, &b).is_ok());
        let same_iat = jwt(json!({"iss": "i", "sub": "s", "aud": "c", "iat": 1, "azp": "c"}));
        assert!(compare_id_token_claims(&a, &same_iat).is_err());
        let no_azp = jwt(json!({"iss": "i", "sub": "s", "aud": "c", "iat": 1}));
        assert!(compare_id_token_claims(&no_azp, &b).is_err());
    }

    #[test]
    fn scope_claims_and_entropy() {
        assert!(
            scopes_returned_in_claims(
                &json!({"sub": "s", "email": "e", "email_verified": true}),
                "email openid"
            )
            .is_ok()
        );
        assert!(scopes_returned_in_claims(&json!({"sub": "s"}), "openid phone").is_err());
        assert!(entropy("code", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 96.0).is_err());
        assert!(entropy("code", "Qw3rTy7uIo9pAs1dFg2hJk4lZx6cVb8nM0", 96.0).is_ok());
        assert!(code_length("short").is_err());
    }
}
